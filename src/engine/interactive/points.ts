/**
 * The scatter's wire format: Arrow IPC streams (one record batch) sent as
 * binary comm buffers. Positions and colors travel separately, so a new
 * clustering re-sends only the colors and a new layout only the positions.
 */
import { tableFromArrays, tableToIPC } from "apache-arrow";
import type { AnnDataOOM } from "../anndata";
import type { DenseArray } from "../elements";
import { InvalidArgumentError } from "../errors";
import { parseComponents } from "../pl/embedding";
import type { ResolvedColor } from "./colors";

/** Two columns of an obsm embedding (1-based, as scanpy's `components`) as float32 x and y. */
export async function embeddingXY(
  adata: AnnDataOOM,
  key: string,
  given: [number, number] | string = [1, 2],
): Promise<{ x: Float32Array; y: Float32Array }> {
  const el = await adata.obsm.get(key);
  if (!("kind" in el) || el.kind !== "dense" || (el as DenseArray).shape.length !== 2) {
    throw new InvalidArgumentError(`obsm ${JSON.stringify(key)} must be a dense 2-d array to plot`);
  }
  const { shape, data } = el as DenseArray;
  const [n, d] = shape;
  const components = parseComponents(given, d, key);
  const dims = [components[0] - 1, components[1] - 1];
  const x = new Float32Array(n);
  const y = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    x[i] = Number(data[i * d + dims[0]]);
    y[i] = Number(data[i * d + dims[1]]);
  }
  return { x, y };
}

/** Positions as an Arrow IPC stream with Float32 columns x and y. */
export function positionsIpc(x: Float32Array, y: Float32Array): Uint8Array {
  return tableToIPC(tableFromArrays({ x, y }), "stream");
}

/** Colors as an Arrow IPC stream: Int32 `code` (categorical, −1 missing) or Float32 `value` (NaN missing), or no rows. */
export function colorsIpc(c: ResolvedColor): Uint8Array {
  if (c.codes) return tableToIPC(tableFromArrays({ code: c.codes }), "stream");
  if (c.values) return tableToIPC(tableFromArrays({ value: c.values }), "stream");
  return tableToIPC(tableFromArrays({ value: new Float32Array(0) }), "stream");
}
