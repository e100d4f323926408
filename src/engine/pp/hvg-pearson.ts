/**
 * highlyVariableGenes flavor 'pearson_residuals' (scanpy.experimental) on
 * counts, in two passes: per-gene and per-cell sums, then the stored-entry
 * part of the residual variances. The zero entries' part — a residual that
 * depends only on the cell total — is summed over cells grouped by total.
 * Reproduces scanpy's float32 products and totals and its clip default
 * (√n of the FIRST batch, used for every batch). SCANPY_NOTES.md §7.
 */
import type { AnnDataOOM } from "../anndata";
import { InvalidArgumentError } from "../errors";
import type { PassOptions } from "../pass";
import { checkFiniteCells, unscaledTarget } from "./matrix";
import { aggregateRanks, ranksOf, sortedBatchCodes } from "./ranks";

export interface PearsonOptions extends PassOptions {
  nTopGenes?: number;
  theta?: number;
  clip?: number;
  batchKey?: string;
  layer?: string;
}

/** numpy's pairwise float32 sum (np.sum of a float32 array). */
export function float32PairwiseSum(a: ArrayLike<number>, lo = 0, n = a.length): number {
  const f = Math.fround;
  if (n < 8) {
    let s = f(0);
    for (let i = 0; i < n; i++) s = f(s + a[lo + i]);
    return s;
  }
  if (n <= 128) {
    const r = [0, 1, 2, 3, 4, 5, 6, 7].map((k) => f(a[lo + k]));
    let i = 8;
    for (; i < n - (n % 8); i += 8) for (let k = 0; k < 8; k++) r[k] = f(r[k] + a[lo + i + k]);
    let res = f(f(f(r[0] + r[1]) + f(r[2] + r[3])) + f(f(r[4] + r[5]) + f(r[6] + r[7])));
    for (; i < n; i++) res = f(res + a[lo + i]);
    return res;
  }
  let n2 = Math.floor(n / 2);
  n2 -= n2 % 8;
  return f(float32PairwiseSum(a, lo, n2) + float32PairwiseSum(a, lo + n2, n - n2));
}

const finite = (x: number) => Math.min(x, Number.MAX_VALUE);

function residual(x: number, mu: number, theta: number, clip: number): number {
  return Math.min(Math.max((x - mu) / Math.sqrt(mu + (mu * mu) / theta), -clip), clip);
}

export async function pearsonResiduals(adata: AnnDataOOM, opts: PearsonOptions): Promise<void> {
  const nTop = opts.nTopGenes;
  if (!(nTop !== undefined && Number.isInteger(nTop) && nTop > 0))
    throw new InvalidArgumentError("flavor pearson_residuals needs nTopGenes (a positive integer)");
  const theta = opts.theta ?? 100;
  if (!(theta > 0)) throw new InvalidArgumentError(`theta must be positive, got ${theta}`);
  if (opts.clip !== undefined && !(opts.clip >= 0)) throw new InvalidArgumentError(`clip must be non-negative, got ${opts.clip}`);
  const m = unscaledTarget(adata, opts.layer, "pp.highlyVariableGenes");
  if (m.chain.has("log1p") || m.chain.has("normalize")) {
    throw new InvalidArgumentError('pearson_residuals expects raw counts; pass layer: "counts"');
  }
  const p = adata.nVars;
  const { codes, n: nb } = sortedBatchCodes(adata, opts.batchKey);
  const base = m.extraBase();
  const first = await m.planPass(
    { moments: [{ name: "b", batches: base }, { name: "all" }], qc: { masks: [], percent_top: [] } },
    [codes],
    "HVG pearson_residuals: sums",
    opts,
  );
  const geneSum = first.get("b.sum") as Float64Array;
  const rows = first.get("b.rows") as Float64Array;
  const cellTotals = first.get("qc.total_counts") as Float64Array;
  checkFiniteCells(adata, cellTotals, opts.layer, "highlyVariableGenes (pearson_residuals)");
  // A cell without counts has an expected count of 0 for every gene: its
  // residuals are 0/0 (scanpy fills the result with NaN without a word).
  const empty = cellTotals.indexOf(0);
  if (empty >= 0)
    throw new InvalidArgumentError(
      `highlyVariableGenes (pearson_residuals): cell ${JSON.stringify(String(adata.obsNames.get(empty)))} has no counts; filter such cells first (pp.filterCells({ minCounts: 1 }))`,
    );
  const sg = Float64Array.from(geneSum, (x) => Math.fround(x));
  const totals = Float64Array.from({ length: nb }, (_, b) => {
    const nz = Array.from(sg.subarray(b * p, (b + 1) * p)).filter((x) => x !== 0);
    return float32PairwiseSum(nz);
  });
  const clip = opts.clip ?? Math.sqrt(rows[0]); // scanpy: set once, from the first batch
  const second = await m.planPass(
    // JSON has no Infinity (scanpy's theta=np.inf is a Poisson model, clip=np.inf no clipping):
    // the largest double gives the same residuals (mu²/theta vanishes next to mu).
    { pearson: { gene_sums: base + 1, totals: base + 2, theta: finite(theta), clip: finite(clip), batches: base } },
    [codes, sg, totals],
    "HVG pearson_residuals: residuals",
    opts,
  );
  const d1 = second.get("pearson.d1") as Float64Array;
  const d2 = second.get("pearson.d2") as Float64Array;
  const residualVar = Array.from({ length: nb }, () => new Float64Array(p));
  for (let b = 0; b < nb; b++) {
    // cells of this batch grouped by their (float32) total
    const groups = new Map<number, number>();
    for (let c = 0; c < codes.length; c++) {
      if (codes[c] !== b) continue;
      const t = Math.fround(cellTotals[c]);
      groups.set(t, (groups.get(t) ?? 0) + 1);
    }
    const n = rows[b];
    for (let j = 0; j < p; j++) {
      const g = sg[b * p + j];
      if (g === 0) continue;
      let s1 = d1[b * p + j];
      let s2 = d2[b * p + j];
      for (const [sc, count] of groups) {
        const mu = Math.fround(g * sc) / totals[b];
        const r0 = residual(0, mu, theta, clip);
        s1 += count * r0;
        s2 += count * r0 * r0;
      }
      const mean = s1 / n;
      residualVar[b][j] = Math.max(s2 / n - mean * mean, 0);
    }
  }
  const agg = aggregateRanks(
    residualVar.map((v) => ranksOf(v)),
    nTop,
    "batches-first",
  );
  const all = (k: string) => first.get(`all.${k}`) as Float64Array;
  const nObs = adata.nObs;
  const means = all("sum").map((s) => s / nObs);
  const variances = means.map((mu, j) => (all("sumsq")[j] / nObs - mu * mu) * (nObs / (nObs - 1)));
  adata.setVar("means", means);
  adata.setVar("variances", variances);
  adata.setVar(
    "residual_variances",
    Float64Array.from({ length: p }, (_, j) => residualVar.reduce((a, v) => a + v[j], 0) / nb),
  );
  adata.setVar("highly_variable_rank", Float32Array.from(agg.medianRank));
  if (opts.batchKey) {
    adata.setVar("highly_variable_nbatches", BigInt64Array.from(agg.nbatches, BigInt));
    adata.setVar(
      "highly_variable_intersection",
      Array.from(agg.nbatches, (x) => x === nb),
    );
  }
  adata.setVar("highly_variable", agg.hv);
  adata.uns.hvg = { flavor: "pearson_residuals", computed_on: opts.layer ?? "adata.X" };
}
