/**
 * pp.normalizeTotal and pp.log1p: lazy nodes on X's chain. normalize needs
 * a pass only to find scanpy's default target (the median total) or the
 * highly expressed genes; with a targetSum it costs nothing until the next
 * pass, which computes each row's total on the fly.
 */
import { type AnnDataOOM, checkAnnData } from "../anndata";
import { InvalidArgumentError, shown } from "../errors";
import { checkOptionNames } from "../options";
import type { PassOptions } from "../pass";
import { checkFiniteCells, markReplacing, store, target } from "./matrix";

export interface NormalizeOptions extends PassOptions {
  /** Total per cell after normalization; default: the median of the totals (scanpy). */
  targetSum?: number;
  /** Leave out of the totals genes above maxFraction of any cell's total. */
  excludeHighlyExpressed?: boolean;
  maxFraction?: number;
  layer?: string;
}

function median(v: Float64Array): number {
  const s = Float64Array.from(v).sort();
  const n = s.length;
  if (!n) return Number.NaN;
  return n % 2 ? s[(n - 1) >> 1] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

export async function normalizeTotal(adata: AnnDataOOM, opts: NormalizeOptions = {}): Promise<void> {
  checkAnnData("pp.normalizeTotal", adata);
  checkOptionNames<NormalizeOptions>("pp.normalizeTotal", opts, {
    targetSum: "num",
    excludeHighlyExpressed: "bool",
    maxFraction: "num",
    layer: true,
    onProgress: true,
    signal: true,
  });
  const m = target(adata, opts.layer, "pp.normalizeTotal");
  if (m.chain.has("normalize")) throw new InvalidArgumentError("this matrix is already normalized");
  if (m.chain.has("log1p")) throw new InvalidArgumentError("normalize before log1p (the matrix is log-transformed)");
  const maxFraction = opts.maxFraction ?? 0.05;
  if (!(maxFraction > 0 && maxFraction <= 1)) throw new InvalidArgumentError(`maxFraction must be in (0, 1], got ${maxFraction}`);
  const release = markReplacing(adata, opts.layer, "pp.normalizeTotal");
  try {
    let exclude: Uint8Array | undefined;
    let sizeFactors: Float64Array | undefined;
    if (opts.excludeHighlyExpressed) {
      const base = m.extraBase();
      const out = await m.planPass({ highly_expressed: { max_fraction: maxFraction } }, [], "highly expressed genes", opts);
      void base;
      const flags = out.get("he.flags") as Float64Array;
      exclude = Uint8Array.from(flags, (x) => (x ? 1 : 0));
    }
    let targetSum = opts.targetSum;
    if (targetSum === undefined) {
      const probe = exclude ? m.withChain(m.chain.append({ op: "normalize", target: 1, exclude, basis: m.selections[1] })) : m;
      const out = await probe.planPass({ qc: { masks: [], percent_top: [] } }, [], "cell totals", opts);
      sizeFactors = exclude ? (out.get("size_factors") as Float64Array) : (out.get("qc.total_counts") as Float64Array);
      checkFiniteCells(adata, sizeFactors, opts.layer, "normalizeTotal");
      // scanpy 1.11 takes the median over every cell for sparse X and over
      // the cells with counts for dense X; the same here, so that both agree.
      targetSum = median(m.format === "dense" ? sizeFactors.filter((x) => x > 0) : sizeFactors);
      if (!(targetSum > 0)) {
        // Most cells have no counts over the genes used: scanpy's target is
        // then 0 and every cell becomes 0 (or NaN). Say so instead.
        const withCounts = sizeFactors.reduce((c, x) => c + (x > 0 ? 1 : 0), 0);
        if (withCounts > 0) {
          const genes = exclude ? "the genes left after excluding the highly expressed ones" : "its genes";
          throw new InvalidArgumentError(
            `pp.normalizeTotal: the median cell total is 0 (${sizeFactors.length - withCounts} of ${sizeFactors.length} cells have no counts over ${genes}), so the default target would make every cell 0; pass targetSum`,
          );
        }
        // No cell has counts over the genes kept, but the excluded ones hold
        // some: there is no median to take (scanpy's target is NaN, and so
        // is every value after it).
        if (exclude?.some((x) => x === 1) && (await m.nnz()) > 0)
          throw new InvalidArgumentError(
            `pp.normalizeTotal: no cell has counts outside the ${exclude.reduce((c, x) => c + x, 0)} highly expressed genes excluded, so there is no median total to normalize to (scanpy's target is NaN); pass targetSum, or a larger maxFraction`,
          );
        // No cell with counts (all-zero X, or no cells left): every row
        // stays zero whatever the target; 1 keeps the plan valid.
        targetSum = 1;
      }
    } else if (!(typeof targetSum === "number" && Number.isFinite(targetSum) && targetSum > 0)) {
      throw new InvalidArgumentError(`targetSum must be a finite number > 0, got ${shown(targetSum)}`);
    }
    const note = opts.targetSum === undefined ? `median total ${targetSum}` : undefined;
    const basis = m.selections[1];
    store(adata, m.withChain(m.chain.append({ op: "normalize", target: targetSum, sizeFactors, exclude, basis, note })), opts.layer);
  } finally {
    release();
  }
}

export interface Log1pOptions {
  base?: number;
  layer?: string;
  /** Apply even if the matrix already looks log-transformed. */
  force?: boolean;
}

export function log1p(adata: AnnDataOOM, opts: Log1pOptions = {}): void {
  checkAnnData("pp.log1p", adata);
  checkOptionNames<Log1pOptions>("pp.log1p", opts, { base: "num", layer: true, force: "bool" });
  const m = target(adata, opts.layer, "pp.log1p");
  const already = m.chain.has("log1p") || (!opts.layer && "log1p" in adata.uns);
  if (already && !opts.force) {
    throw new InvalidArgumentError("the matrix is already log-transformed (uns.log1p is set); pass force: true to apply log1p again");
  }
  const base = opts.base;
  if (base !== undefined && !(typeof base === "number" && Number.isFinite(base) && base > 0 && base !== 1))
    throw new InvalidArgumentError(`log1p base must be a finite number > 0 and not 1, got ${shown(base)}`);
  // scanpy keeps float32 data float32; anything else (float64, or counts
  // not normalized first) becomes float64.
  const float64 = m.valueDtype !== "float32";
  store(adata, m.withChain(m.chain.append({ op: "log1p", base: opts.base, float64 })), opts.layer);
  if (!opts.layer) adata.uns.log1p = { base: opts.base ?? null };
}
