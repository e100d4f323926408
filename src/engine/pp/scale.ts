/**
 * pp.scale: a lazy scale node ((x − mean) / std, clipped), never densified.
 * mean / std (ddof = 1, 0 → 1) come from the HVG pass when it ran on the
 * same matrix (no extra pass), else from one moments pass.
 */
import { type AnnDataOOM, checkAnnData } from "../anndata";
import { InvalidArgumentError } from "../errors";
import { checkOptionNames } from "../options";
import type { PassOptions } from "../pass";
import { checkFiniteGenes, markReplacing, store, target } from "./matrix";

export interface ScaleOptions extends PassOptions {
  zeroCenter?: boolean;
  /** Clip scaled values at ±maxValue (only the upper side without zeroCenter). */
  maxValue?: number;
  layer?: string;
}

export async function scale(adata: AnnDataOOM, opts: ScaleOptions = {}): Promise<void> {
  checkAnnData("pp.scale", adata);
  checkOptionNames<ScaleOptions>("pp.scale", opts, { zeroCenter: "bool", maxValue: "num", layer: true, onProgress: true, signal: true });
  const m = target(adata, opts.layer, "pp.scale");
  if (m.chain.has("scale")) throw new InvalidArgumentError("the matrix is already scaled");
  if (opts.maxValue !== undefined && !(opts.maxValue > 0))
    throw new InvalidArgumentError(`maxValue must be positive, got ${opts.maxValue}`);
  const release = markReplacing(adata, opts.layer, "pp.scale");
  try {
    let stats = opts.layer ? null : adata.cachedVarMoments(m);
    if (!stats) {
      const out = await m.planPass({ moments: [{ name: "lin", nnz: false }] }, [], "mean/std per gene", opts);
      stats = { sum: out.get("lin.sum") as Float64Array, sumsq: out.get("lin.sumsq") as Float64Array, n: m.shape[0] };
    }
    checkFiniteGenes(adata, stats.sum, "scale");
    const n = stats.n;
    const mean = stats.sum.map((s) => s / n);
    const std = mean.map((mu, j) => {
      const v = (stats.sumsq[j] / n - mu * mu) * (n / (n - 1));
      const s = Math.sqrt(Math.max(v, 0));
      return s === 0 ? 1 : s;
    });
    const zeroCenter = opts.zeroCenter ?? true;
    store(adata, m.withChain(m.chain.append({ op: "scale", mean, std, maxValue: opts.maxValue, zeroCenter })), opts.layer);
    adata.setVar("mean", mean);
    adata.setVar("std", std);
  } finally {
    release();
  }
}
