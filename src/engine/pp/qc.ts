/**
 * pp.calculateQcMetrics: scanpy's calculate_qc_metrics in ONE pass over X,
 * with the same obs/var column names and dtypes (see below). Sums are
 * exact: float64 in memory, written in scanpy's dtype.
 */
import { type AnnDataOOM, checkAnnData } from "../anndata";
import { InvalidArgumentError, shown } from "../errors";
import { checkOptionNames } from "../options";
import type { PassOptions } from "../pass";
import { storedAs } from "../typed";
import { checkFiniteCells, log1pf, sumDtype, unscaledTarget } from "./matrix";

export interface QcOptions extends PassOptions {
  /** Boolean var columns marking gene sets (e.g. "mt"); gives *_<name> metrics. */
  qcVars?: string[];
  /** Top-N cumulative proportions (scanpy default 50, 100, 200, 500). */
  percentTop?: number[] | null;
  /** Also write log1p_* columns (default true). */
  log1p?: boolean;
  layer?: string;
}

/** Per-gene 0/1 mask from a boolean var column. */
function varMask(adata: AnnDataOOM, name: string): Float64Array {
  const col = adata.var.getChild(name);
  if (!col) throw new InvalidArgumentError(`qcVars: var has no column ${JSON.stringify(name)} (mark genes first, e.g. pp.markGenes)`);
  // scanpy indexes genes with the column as a mask: strings or counts would mark every non-empty value.
  if (String(col.type) !== "Bool")
    throw new InvalidArgumentError(
      `qcVars: var column ${JSON.stringify(name)} is ${String(col.type)}, not boolean (mark genes with pp.markGenes)`,
    );
  const out = new Float64Array(adata.nVars);
  for (let i = 0; i < out.length; i++) out[i] = col.get(i) ? 1 : 0;
  return out;
}

/**
 * Mark genes whose name matches `pattern` in a boolean var column, e.g.
 * `pp.markGenes(adata, "mt", /^MT-/)` (scanpy: `adata.var["mt"] = adata.var_names.str.startswith("MT-")`).
 */
export function markGenes(adata: AnnDataOOM, column: string, pattern: RegExp | string | ((name: string) => boolean)): number {
  checkAnnData("pp.markGenes", adata);
  if (!(pattern instanceof RegExp) && typeof pattern !== "string" && typeof pattern !== "function")
    throw new InvalidArgumentError(
      `markGenes: pattern must be a RegExp (/^MT-/), a name prefix ("MT-") or a function of the name, got ${JSON.stringify(pattern)}`,
    );
  // A /g or /y RegExp keeps state in lastIndex between test() calls; a
  // copy without those flags answers each name on its own.
  let test: (name: string) => boolean;
  if (pattern instanceof RegExp) {
    const re = new RegExp(pattern.source, pattern.flags.replace(/[gy]/g, ""));
    test = (s) => re.test(s);
  } else if (typeof pattern === "string")
    test = (s) => s.startsWith(pattern); // scanpy's var_names.str.startswith("MT-")
  else test = pattern;
  const names = adata.varNames;
  const flags = Array.from({ length: adata.nVars }, (_, i) => {
    const name = names.get(i) as string;
    const hit = test(name);
    // A number (a length, an index) would make a float column qcVars refuses.
    if (typeof hit !== "boolean")
      throw new InvalidArgumentError(`markGenes: the function must return true or false, got ${shown(hit)} for ${JSON.stringify(name)}`);
    return hit;
  });
  adata.setVar(column, flags);
  return flags.filter(Boolean).length;
}

export async function calculateQcMetrics(adata: AnnDataOOM, opts: QcOptions = {}): Promise<void> {
  checkAnnData("pp.calculateQcMetrics", adata);
  checkOptionNames<QcOptions>("pp.calculateQcMetrics", opts, {
    qcVars: true,
    percentTop: true,
    log1p: "bool",
    layer: true,
    onProgress: true,
    signal: true,
  });
  const qcVars = opts.qcVars ?? [];
  if (!Array.isArray(qcVars)) throw new InvalidArgumentError(`qcVars must be an array of var column names, got ${JSON.stringify(qcVars)}`);
  if (opts.percentTop != null && !Array.isArray(opts.percentTop))
    throw new InvalidArgumentError(`percentTop must be an array of integers or null, got ${JSON.stringify(opts.percentTop)}`);
  const percentTop = (opts.percentTop === null ? [] : (opts.percentTop ?? [50, 100, 200, 500])).slice().sort((a, b) => a - b);
  for (const n of percentTop) {
    if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError(`percentTop values must be positive integers, got ${n}`);
    if (n > adata.nVars) throw new InvalidArgumentError(`percentTop ${n} exceeds the number of genes (${adata.nVars})`);
  }
  const m = unscaledTarget(adata, opts.layer, "pp.calculateQcMetrics");
  const masks = qcVars.map((q) => varMask(adata, q));
  const base = m.extraBase();
  const request = { qc: { masks: masks.map((_, i) => base + i), percent_top: percentTop } };
  const out = await m.planPass(request, masks, "QC metrics", opts);
  const get = (k: string) => out.get(k) as Float64Array;
  const log1p = opts.log1p ?? true;
  const total = get("qc.total_counts");
  checkFiniteCells(adata, total, opts.layer, "calculateQcMetrics");
  const nGenes = get("qc.n_genes_by_counts");
  // Each column takes the dtype scanpy gives it: sums (and their log1p and
  // percentages, for float32) the values' sum dtype — float32 for float32
  // X, int64 for counts — and cell counts int64.
  // Sums stay exact float64 in memory; storedAs marks the dtype to write.
  const sums = sumDtype(m.valueDtype);
  const asSum = (x: Float64Array) => storedAs(x, sums);
  const derived = (x: Float64Array) => storedAs(x, sums === "float32" ? "float32" : "float64");
  // scipy's getnnz gives int32 for sparse X, numpy's count_nonzero int64 for dense.
  adata.setObs("n_genes_by_counts", m.format === "dense" ? storedAs(nGenes, "int64") : Int32Array.from(nGenes));
  if (log1p) adata.setObs("log1p_n_genes_by_counts", log1pf(nGenes));
  adata.setObs("total_counts", asSum(total));
  if (log1p) adata.setObs("log1p_total_counts", derived(log1pf(total)));
  for (const n of percentTop) {
    const top = get(`qc.top.${n}`);
    adata.setObs(
      `pct_counts_in_top_${n}_genes`,
      top.map((t, i) => (100 * t) / total[i]),
    );
  }
  qcVars.forEach((q, i) => {
    const t = get(`qc.mask_total.${i}`);
    adata.setObs(`total_counts_${q}`, asSum(t));
    if (log1p) adata.setObs(`log1p_total_counts_${q}`, derived(log1pf(t)));
    adata.setObs(`pct_counts_${q}`, derived(t.map((x, k) => (100 * x) / total[k])));
  });
  const nObs = adata.nObs;
  const nCells = get("qc.n_cells_by_counts");
  const geneTotal = get("qc.gene_total_counts");
  const mean = geneTotal.map((x) => x / nObs);
  adata.setVar("n_cells_by_counts", storedAs(nCells, "int64"));
  adata.setVar("mean_counts", mean);
  if (log1p) adata.setVar("log1p_mean_counts", log1pf(mean));
  adata.setVar(
    "pct_dropout_by_counts",
    nCells.map((c) => 100 * (1 - c / nObs)),
  );
  adata.setVar("total_counts", asSum(geneTotal));
  if (log1p) adata.setVar("log1p_total_counts", derived(log1pf(geneTotal)));
  // Last: setting any column filterCells/filterGenes reuse clears it.
  adata.qcSource = adata.matrixKey(m);
}

/**
 * Also write the QC names anndataoom / omicverse use, from the scanpy
 * columns calculateQcMetrics wrote: obs nUMIs (= total_counts),
 * detected_genes (= n_genes_by_counts) and mito_perc (= pct_counts_<mt> / 100,
 * a fraction as in omicverse). No pass.
 *
 * @example
 * await pp.calculateQcMetrics(adata, { qcVars: ["mt"] });
 * pp.anndataoomQcNames(adata); // obs.nUMIs, obs.detected_genes, obs.mito_perc
 */
export function anndataoomQcNames(adata: AnnDataOOM, mtVar = "mt"): void {
  checkAnnData("pp.anndataoomQcNames", adata);
  const col = (name: string) => {
    const v = adata.obs.getChild(name);
    if (!v)
      throw new InvalidArgumentError(
        `obs has no ${name}: run pp.calculateQcMetrics first${name.includes(mtVar) ? ` with qcVars: ["${mtVar}"]` : ""}`,
      );
    return Float64Array.from({ length: v.length }, (_, i) => Number(v.get(i)));
  };
  adata.setObs("nUMIs", col("total_counts"));
  adata.setObs("detected_genes", Int32Array.from(col("n_genes_by_counts")));
  adata.setObs(
    "mito_perc",
    col(`pct_counts_${mtVar}`).map((x) => x / 100),
  );
}
