/**
 * pp.filterCells / pp.filterGenes: lazy subsets (views), like scanpy's
 * filter_cells / filter_genes with inplace=True but returning the view.
 * Counts come from one pass over the current X (or reuse the QC columns).
 */
import { type AnnDataOOM, checkAnnData } from "../anndata";
import type { BackedMatrix } from "../backed";
import { InvalidArgumentError, shown } from "../errors";
import { checkOptionNames } from "../options";
import type { PassOptions } from "../pass";
import { storedAs } from "../typed";
import { sumDtype, unscaledTarget } from "./matrix";

export interface FilterOptions extends PassOptions {
  minCounts?: number;
  maxCounts?: number;
  layer?: string;
}

/**
 * Per-gene counts over this object's cells without a pass over X: from the
 * QC var columns when QC ran on this matrix, or — after filterCells — the
 * parent's QC columns minus what the removed cells hold (a read of those
 * rows only). Returns null when neither applies.
 */
async function geneCountsFromQc(
  adata: AnnDataOOM,
  column: "n_cells_by_counts" | "total_counts",
  opts: PassOptions,
): Promise<Float64Array | null> {
  const read = (a: AnnDataOOM) => {
    const col = a.var.getChild(column);
    return col ? Float64Array.from({ length: col.length }, (_, i) => Number(col.get(i))) : null;
  };
  if (adata.qcSource === adata.matrixKey(adata.X)) return read(adata);
  const cf = adata.cellFilter;
  if (!cf || cf.parent.qcSource !== cf.parent.matrixKey(cf.parent.X) || !adata.X.chain.isEmpty) return null;
  const base = read(cf.parent);
  if (!base) return null;
  if (cf.removed.length === 0) return base;
  // Reading the kept cells directly is cheaper when most were removed.
  if (cf.removed.length * 2 > cf.parent.nObs) return null;
  const gone = cf.parent.subset({ obs: cf.removed });
  const out = await gone.X.planPass({ qc: { masks: [], percent_top: [] } }, [], `gene counts of ${cf.removed.length} removed cells`, opts);
  const sub = out.get(column === "n_cells_by_counts" ? "qc.n_cells_by_counts" : "qc.gene_total_counts") as Float64Array;
  return base.map((x, j) => x - sub[j]);
}

/** The QC column computed on this very matrix, if calculateQcMetrics ran (saves a pass). */
async function reuseQc(adata: AnnDataOOM, m: BackedMatrix, column: string): Promise<Float64Array | null> {
  if (adata.qcSource !== adata.matrixKey(m)) return null;
  const col = adata.obs.getChild(column);
  if (!col) return null;
  return Float64Array.from({ length: col.length }, (_, i) => Number(col.get(i)));
}

function checkOne(opts: Record<string, number | undefined>, names: string[]): void {
  const given = names.filter((n) => opts[n] !== undefined);
  if (given.length !== 1) throw new InvalidArgumentError(`give exactly one of ${names.join(", ")} (scanpy allows one per call)`);
  const v = opts[given[0]];
  if (typeof v !== "number" || Number.isNaN(v)) throw new InvalidArgumentError(`${given[0]} must be a number, got ${shown(v)}`);
}

/**
 * Keep cells with at least / at most so many counts or genes. Writes
 * obs n_counts or n_genes like scanpy, and returns the filtered view.
 *
 * @example
 * adata = await pp.filterCells(adata, { minGenes: 200 });
 */
export async function filterCells(
  adata: AnnDataOOM,
  opts: FilterOptions & { minGenes?: number; maxGenes?: number } = {},
): Promise<AnnDataOOM> {
  checkAnnData("pp.filterCells", adata);
  checkOptionNames<FilterOptions & { minGenes?: number; maxGenes?: number }>("pp.filterCells", opts, {
    minCounts: "num",
    maxCounts: "num",
    layer: true,
    minGenes: "num",
    maxGenes: "num",
    onProgress: true,
    signal: true,
  });
  checkOne(opts as Record<string, number | undefined>, ["minCounts", "maxCounts", "minGenes", "maxGenes"]);
  const m = unscaledTarget(adata, opts.layer, "pp.filterCells");
  const byGenes = opts.minGenes !== undefined || opts.maxGenes !== undefined;
  const values =
    (await reuseQc(adata, m, byGenes ? "n_genes_by_counts" : "total_counts")) ??
    ((await m.planPass({ qc: { masks: [], percent_top: [] } }, [], "cell counts", opts)).get(
      byGenes ? "qc.n_genes_by_counts" : "qc.total_counts",
    ) as Float64Array);
  const lo = opts.minGenes ?? opts.minCounts ?? -Infinity;
  const hi = opts.maxGenes ?? opts.maxCounts ?? Infinity;
  // scanpy's dtypes: n_genes int64, n_counts the values' sum dtype.
  adata.setObs(byGenes ? "n_genes" : "n_counts", storedAs(values, byGenes ? "int64" : sumDtype(m.valueDtype)));
  const keep = Array.from(values, (v) => v >= lo && v <= hi);
  const view = adata.subset({ obs: keep });
  if (!opts.layer && adata.qcSource === adata.matrixKey(m)) {
    const removed: number[] = [];
    keep.forEach((k, i) => {
      if (!k) removed.push(i);
    });
    view.cellFilter = { parent: adata, removed: Uint32Array.from(removed) };
  }
  return view;
}

/**
 * Keep genes expressed in at least / at most so many cells, or with so many
 * counts. Writes var n_cells or n_counts and returns the filtered view.
 */
export async function filterGenes(
  adata: AnnDataOOM,
  opts: FilterOptions & { minCells?: number; maxCells?: number } = {},
): Promise<AnnDataOOM> {
  checkAnnData("pp.filterGenes", adata);
  checkOptionNames<FilterOptions & { minCells?: number; maxCells?: number }>("pp.filterGenes", opts, {
    minCounts: "num",
    maxCounts: "num",
    layer: true,
    minCells: "num",
    maxCells: "num",
    onProgress: true,
    signal: true,
  });
  checkOne(opts as Record<string, number | undefined>, ["minCounts", "maxCounts", "minCells", "maxCells"]);
  const m = unscaledTarget(adata, opts.layer, "pp.filterGenes");
  const byCells = opts.minCells !== undefined || opts.maxCells !== undefined;
  const values =
    (opts.layer ? null : await geneCountsFromQc(adata, byCells ? "n_cells_by_counts" : "total_counts", opts)) ??
    ((await m.planPass({ qc: { masks: [], percent_top: [] } }, [], "gene counts", opts)).get(
      byCells ? "qc.n_cells_by_counts" : "qc.gene_total_counts",
    ) as Float64Array);
  const lo = opts.minCells ?? opts.minCounts ?? -Infinity;
  const hi = opts.maxCells ?? opts.maxCounts ?? Infinity;
  adata.setVar(byCells ? "n_cells" : "n_counts", storedAs(values, byCells ? "int64" : sumDtype(m.valueDtype)));
  const keep = Array.from(values, (v) => v >= lo && v <= hi);
  return adata.subset({ var: keep });
}
