/**
 * Rank aggregation shared by seurat_v3 and pearson_residuals HVG: per-batch
 * ranks (0 = most variable), genes outside a batch's top n get no rank, the
 * median over the batches where a gene made the top n, and the final pick.
 * numpy's argsort breaks ties arbitrarily; here ties keep gene order.
 */
import type { AnnDataOOM } from "../anndata";
import { InvalidArgumentError } from "../errors";

/** Batch code per cell in np.unique order (sorted labels), or one batch. */
export function sortedBatchCodes(adata: AnnDataOOM, key?: string): { codes: Float64Array; n: number; labels: string[] } {
  const codes = new Float64Array(adata.nObs);
  if (!key) return { codes, n: 1, labels: ["0"] };
  const col = adata.obs.getChild(key);
  if (!col) throw new InvalidArgumentError(`batchKey: obs has no column ${JSON.stringify(key)}`);
  const values = Array.from({ length: adata.nObs }, (_, i) => {
    const v = col.get(i);
    if (v === null || v === undefined) throw new InvalidArgumentError(`batchKey ${key}: missing value in cell ${i}`);
    return v as unknown;
  });
  const labels = values.map(String);
  // In np.unique's order, as scanpy loops over the batches: numbers (and
  // categories that are numbers) by value, so 2 comes before 10; the
  // first batch sets the default clip of pearson residuals.
  const numeric = values.every((v) => typeof v === "number" || typeof v === "bigint");
  const uniq = numeric
    ? [...new Set(values as (number | bigint)[])].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)).map(String)
    : [...new Set(labels)].sort();
  const at = new Map(uniq.map((l, i) => [l, i]));
  labels.forEach((l, i) => {
    codes[i] = at.get(l) as number;
  });
  return { codes, n: uniq.length, labels: uniq };
}

/** 0-based ranks by descending score (ties in gene order). */
export function ranksOf(scores: Float64Array): Float64Array {
  const order = Array.from({ length: scores.length }, (_, j) => j).sort((a, b) => scores[b] - scores[a] || a - b);
  const r = new Float64Array(scores.length);
  order.forEach((j, i) => {
    r[j] = i;
  });
  return r;
}

export interface RankResult {
  hv: boolean[];
  /** Median rank over batches where the gene is in the top n (NaN: none). */
  medianRank: Float64Array;
  nbatches: Float64Array;
}

export function aggregateRanks(ranksPerBatch: Float64Array[], nTop: number, order: "rank-first" | "batches-first"): RankResult {
  const p = ranksPerBatch[0]?.length ?? 0;
  const medianRank = new Float64Array(p);
  const nbatches = new Float64Array(p);
  for (let j = 0; j < p; j++) {
    const rs = ranksPerBatch.map((r) => Math.fround(r[j])).filter((r) => r < nTop);
    nbatches[j] = rs.length;
    rs.sort((a, b) => a - b);
    const k = rs.length;
    medianRank[j] = k === 0 ? Number.NaN : k % 2 ? rs[(k - 1) >> 1] : (rs[k / 2 - 1] + rs[k / 2]) / 2;
  }
  const key = (j: number) => (Number.isNaN(medianRank[j]) ? Number.POSITIVE_INFINITY : medianRank[j]);
  const idx = Array.from({ length: p }, (_, j) => j).sort((a, b) => {
    const byRank = key(a) - key(b);
    const byBatches = nbatches[b] - nbatches[a];
    const first = order === "rank-first" ? byRank || byBatches : byBatches || byRank;
    return first || a - b;
  });
  const hv = new Array<boolean>(p).fill(false);
  for (const j of idx.slice(0, Math.min(nTop, p))) hv[j] = true;
  return { hv, medianRank, nbatches };
}
