/** Which matrix a step works on: X, or a layer when `layer` is given. */
import type { AnnDataOOM } from "../anndata";
import type { BackedMatrix } from "../backed";

export function target(adata: AnnDataOOM, layer?: string): BackedMatrix {
  return layer ? adata.layers.get(layer) : adata.X;
}

/** Put a transformed matrix back where it came from. */
export function store(adata: AnnDataOOM, m: BackedMatrix, layer?: string): void {
  if (layer) adata.layers.set(layer, m);
  else adata.setX(m);
}

export const log1pf = (a: Float64Array): Float64Array => a.map((x) => Math.log1p(x));
