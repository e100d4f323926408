/**
 * highlyVariableGenes, flavors 'seurat_v3' and 'seurat_v3_paper', on
 * counts (usually layer "counts"), in two passes: per-gene (× batch) mean
 * and variance, then — after a LOESS fit of log10 variance on log10 mean
 * per batch — sums of values clipped at reg_std·√n + mean, giving the
 * standardized variance. See tests/python/SCANPY_NOTES.md §6.
 */
import type { AnnDataOOM } from "../anndata";
import { InvalidArgumentError } from "../errors";
import type { PassOptions } from "../pass";
import { loess1d } from "./loess";
import { checkFiniteGenes, unscaledTarget } from "./matrix";
import { aggregateRanks, ranksOf, sortedBatchCodes } from "./ranks";

export interface SeuratV3Options extends PassOptions {
  nTopGenes?: number;
  span?: number;
  batchKey?: string;
  layer?: string;
}

export async function seuratV3(adata: AnnDataOOM, flavor: "seurat_v3" | "seurat_v3_paper", opts: SeuratV3Options): Promise<void> {
  const nTop = opts.nTopGenes;
  if (!(nTop !== undefined && Number.isInteger(nTop) && nTop > 0))
    throw new InvalidArgumentError(`flavor ${flavor} needs nTopGenes (a positive integer)`);
  const m = unscaledTarget(adata, opts.layer, "pp.highlyVariableGenes");
  if (m.chain.has("log1p") || m.chain.has("normalize")) {
    throw new InvalidArgumentError(`flavor ${flavor} expects raw counts; pass layer: "counts" (the X chain is normalized/log-transformed)`);
  }
  const span = opts.span ?? 0.3;
  if (!(typeof span === "number" && span > 0 && span <= 1)) throw new InvalidArgumentError(`span must be in (0, 1], got ${opts.span}`);
  const p = adata.nVars;
  const { codes, n: nb, labels } = sortedBatchCodes(adata, opts.batchKey);
  const base = m.extraBase();
  const first = await m.planPass({ moments: [{ name: "b", batches: base }, { name: "all" }] }, [codes], `HVG ${flavor}: moments`, opts);
  const get = (k: string) => first.get(k) as Float64Array;
  const sum = get("b.sum");
  checkFiniteGenes(adata, sum, `highlyVariableGenes (${flavor})`);
  const sumsq = get("b.sumsq");
  const rows = get("b.rows");
  // A gene's variance within a batch needs two cells (scanpy's skmisc
  // crashes on a one-cell batch).
  const tiny = labels.filter((_, b) => rows[b] < 2);
  if (tiny.length)
    throw new InvalidArgumentError(
      opts.batchKey
        ? `flavor ${flavor}: batch ${tiny.map((l) => JSON.stringify(l)).join(", ")} of ${opts.batchKey} has fewer than 2 cells`
        : `flavor ${flavor} needs at least 2 cells`,
    );
  const meanVar = (s: Float64Array, ss: Float64Array, n: number, off: number) => {
    const mean = new Float64Array(p);
    const v = new Float64Array(p);
    for (let j = 0; j < p; j++) {
      mean[j] = s[off + j] / n;
      v[j] = (ss[off + j] / n - mean[j] ** 2) * (n / (n - 1));
    }
    return { mean, v };
  };
  const clip = new Float64Array(nb * p);
  const perBatch = Array.from({ length: nb }, (_, b) => {
    const n = rows[b];
    const { mean, v } = meanVar(sum, sumsq, n, b * p);
    const nc: number[] = [];
    for (let j = 0; j < p; j++) if (v[j] > 0) nc.push(j);
    const fit = loess1d(
      Float64Array.from(nc, (j) => Math.log10(mean[j])),
      Float64Array.from(nc, (j) => Math.log10(v[j])),
      span,
    );
    const regStd = new Float64Array(p).fill(1);
    nc.forEach((j, k) => {
      regStd[j] = Math.sqrt(10 ** fit[k]);
    });
    for (let j = 0; j < p; j++) clip[b * p + j] = regStd[j] * Math.sqrt(n) + mean[j];
    return { n, mean, regStd };
  });
  const second = await m.planPass({ clipped: { clip: base + 1, batches: base } }, [codes, clip], `HVG ${flavor}: clipped variance`, opts);
  const s1 = second.get("clipped.s1") as Float64Array;
  const s2 = second.get("clipped.s2") as Float64Array;
  const scores = perBatch.map(({ n, mean, regStd }, b) =>
    Float64Array.from({ length: p }, (_, j) => {
      const i = b * p + j;
      return (1 / ((n - 1) * regStd[j] ** 2)) * (n * mean[j] ** 2 + s2[i] - 2 * s1[i] * mean[j]);
    }),
  );
  const agg = aggregateRanks(
    scores.map((s) => ranksOf(s)),
    nTop,
    flavor === "seurat_v3" ? "rank-first" : "batches-first",
  );
  const all = meanVar(get("all.sum"), get("all.sumsq"), adata.nObs, 0);
  adata.setVar("highly_variable", agg.hv);
  adata.setVar("highly_variable_rank", Float32Array.from(agg.medianRank));
  adata.setVar("means", all.mean);
  adata.setVar("variances", all.v);
  adata.setVar(
    "variances_norm",
    Float64Array.from({ length: p }, (_, j) => scores.reduce((a, s) => a + s[j], 0) / nb),
  );
  if (opts.batchKey) adata.setVar("highly_variable_nbatches", BigInt64Array.from(agg.nbatches, BigInt));
  adata.uns.hvg = { flavor };
}
