/**
 * Names that write() stores as HDF5 group members (obs/var columns, obsm /
 * obsp / layers keys, uns keys): a "/" would nest groups, an empty name is
 * not a member, "." names the group itself in HDF5 paths, and HDF5 names
 * end at a NUL.
 */
export function isMemberName(name: unknown): name is string {
  return typeof name === "string" && name !== "" && name !== "." && !name.includes("/") && !name.includes("\0");
}

/** Why a string with a lone surrogate is refused (TextEncoder would silently replace it). */
export const loneSurrogate = "holds half of a UTF-16 surrogate pair (a character such as an emoji cut in two), which UTF-8 cannot store";

/** Whether `s` is valid UTF-16 (no lone surrogates); String.isWellFormed is ES2024, Node ≥ 20. */
export function isWellFormed(s: string): boolean {
  return (s as string & { isWellFormed(): boolean }).isWellFormed();
}
