/** Which matrix a step works on: X, or a layer when `layer` is given. */
import type { AnnDataOOM } from "../anndata";
import type { BackedMatrix } from "../backed";
import { InvalidArgumentError } from "../errors";

export function target(adata: AnnDataOOM, layer: string | undefined, step: string): BackedMatrix {
  const pending = adata.pendingSteps.get(layer ?? "X");
  if (pending) {
    throw new InvalidArgumentError(
      `${step}: ${pending} is still running on ${layer ? `layers.${layer}` : "X"} and will replace it; await it before ${step}`,
    );
  }
  return layer ? adata.layers.get(layer) : adata.X;
}

/** numpy's dtype for sums of `dtype` values (scanpy's total_counts): 64-bit integers for integers and booleans. */
export function sumDtype(dtype: string): "float32" | "float64" | "int64" | "uint64" {
  if (dtype === "float32" || dtype === "float64") return dtype;
  if (dtype.startsWith("uint")) return "uint64";
  if (dtype.startsWith("int") || dtype === "bool") return "int64";
  return "float64";
}

/**
 * Mark a matrix as about to be replaced by `step` (normalize with a median
 * target, scale: a pass, then a new chain); returns the release. Until it
 * is released, other steps on that matrix are refused: without this,
 * `pp.normalizeTotal(a); pp.log1p(a)` (no await) lost the log1p when
 * normalize stored its result. Release in a `finally` right after storing,
 * so that a step that never awaits leaves nothing marked when it returns.
 */
export function markReplacing(adata: AnnDataOOM, layer: string | undefined, step: string): () => void {
  const key = layer ?? "X";
  adata.pendingSteps.set(key, step);
  return () => adata.pendingSteps.delete(key);
}

/**
 * The matrix a statistics step (QC, filters, HVG) reads. Refused after
 * pp.scale: those passes read the values before scaling, while scanpy
 * computes on the scaled ones, so the results would silently differ.
 */
export function unscaledTarget(adata: AnnDataOOM, layer: string | undefined, step: string): BackedMatrix {
  const m = target(adata, layer, step);
  if (m.chain.has("scale"))
    throw new InvalidArgumentError(
      `${step} cannot follow pp.scale on ${layer ? `layers.${layer}` : "X"}: it would read the values before scaling. Run it before pp.scale`,
    );
  return m;
}

/** Put a transformed matrix back where it came from. */
export function store(adata: AnnDataOOM, m: BackedMatrix, layer?: string): void {
  if (layer) adata.layers.set(layer, m);
  else adata.setX(m);
}

export const log1pf = (a: Float64Array): Float64Array => a.map((x) => Math.log1p(x));

/**
 * Per-cell sums of a pass must be finite: NaN or ±Infinity in X would
 * otherwise run silently through every later step (scanpy stops at them
 * too). Names the matrix and the first such cell.
 */
export function checkFiniteCells(adata: AnnDataOOM, sums: ArrayLike<number>, layer: string | undefined, step: string): void {
  for (let i = 0; i < sums.length; i++) {
    if (!Number.isFinite(sums[i])) {
      throw new InvalidArgumentError(
        `${step}: ${layer ? `layer ${JSON.stringify(layer)}` : "X"} holds NaN or infinite values (first in cell ${i}, ${JSON.stringify(String(adata.obsNames.get(i)))}); clean or drop them first`,
      );
    }
  }
}

/**
 * The same for per-gene statistics of a transformed matrix (log1p of a
 * value below −1 is NaN too); `stats` may hold one block of genes per batch.
 */
export function checkFiniteGenes(adata: AnnDataOOM, stats: ArrayLike<number>, step: string): void {
  for (let j = 0; j < stats.length; j++) {
    if (!Number.isFinite(stats[j])) {
      throw new InvalidArgumentError(
        `${step}: the values of gene ${JSON.stringify(String(adata.varNames.get(j % adata.nVars)))} are not finite (NaN or infinite): the matrix holds such values there, or negative ones that log1p makes NaN`,
      );
    }
  }
}
