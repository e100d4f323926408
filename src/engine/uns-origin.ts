/**
 * Where in the file an uns value that write() cannot rebuild from its JS
 * form came from: a dataframe or record array read as Arrow, a categorical
 * vector, or the placeholder of an element left undecoded (a sparse matrix,
 * a 2-d string array). Copied or moved to another uns key, such a value is
 * written by copying that element, as anndata copies the object (it used
 * to be written as the placeholder's own fields, or refused).
 */
export const unsOrigin = new WeakMap<object, string>();

/** Record `value`'s element path when it is an object; returns `value`. */
export function withOrigin<T>(value: T, path: string): T {
  if (value !== null && typeof value === "object") unsOrigin.set(value, path);
  return value;
}
