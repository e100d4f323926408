/**
 * Names that write() stores as HDF5 group members (obs/var columns, obsm /
 * obsp / layers keys, uns keys): a "/" would nest groups and an empty name
 * is not a member.
 */
export function isMemberName(name: unknown): name is string {
  return typeof name === "string" && name !== "" && !name.includes("/");
}
