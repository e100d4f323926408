/**
 * Names that write() stores as HDF5 group members (obs/var columns, obsm /
 * obsp / layers keys, uns keys): a "/" would nest groups, an empty name is
 * not a member, "." names the group itself in HDF5 paths, and HDF5 names
 * end at a NUL.
 */
export function isMemberName(name: unknown): name is string {
  return typeof name === "string" && name !== "" && name !== "." && !name.includes("/") && !name.includes("\0");
}
