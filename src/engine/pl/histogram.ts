/**
 * pl.qcHistograms: one histogram per QC column (numpy.histogram's bins:
 * equal-width edges from min to max, the last bin closed), in a grid.
 */
import { type AnnDataOOM, checkAnnData } from "../anndata";
import { InvalidArgumentError, shown } from "../errors";
import { fmt, linear, niceTicks } from "./axes";
import { normalizeColor } from "./colors";
import { checkOptions, type HoverRegion, Plot, panelSide } from "./plot";
import { Svg } from "./svg";
import { type GeneSource, type KeyValues, keysValues } from "./values";

export interface Histogram {
  /** bins + 1 edges. */
  edges: number[];
  /** Values per bin. */
  counts: number[];
  /** NaN values left out (numpy would refuse them). */
  nMissing: number;
}

const f32 = Math.fround;

/**
 * numpy.histogram(values, bins) with numpy's arithmetic: edges by
 * linspace in the array's float type (float32 columns get float32 edges),
 * the bin index as ((x − first) / (last − first)) · bins, then the ±1 ULP
 * corrections against the edges. `dtype` is the stored type ("float32",
 * "int32", …); anything else is treated as float64. NaN values are skipped.
 */
/** More bins than any plot can show; beyond it the edges alone take gigabytes. */
const MAX_BINS = 100_000;

export function histogram(values: ArrayLike<number>, bins = 50, dtype = "float64"): Histogram {
  if (values === null || typeof values !== "object" || typeof (values as { length?: unknown }).length !== "number")
    throw new InvalidArgumentError(`pl.histogram takes an array of numbers, got ${shown(values)}`);
  if (!Number.isInteger(bins) || bins < 1 || bins > MAX_BINS)
    throw new InvalidArgumentError(`bins must be an integer in [1, ${MAX_BINS.toLocaleString("en-US")}], got ${bins}`);
  const single = dtype === "float32" || dtype === "float16";
  const r = single ? f32 : (x: number) => x;
  const xs: number[] = [];
  let nMissing = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (Number.isNaN(v)) nMissing++;
    // Cast to the bin type first, as numpy holds them: a double below the
    // float32-rounded first edge fell out of every bin.
    else xs.push(r(v));
  }
  let first = 0;
  let last = 1;
  if (xs.length) {
    first = Infinity;
    last = -Infinity;
    for (const v of xs) {
      if (v < first) first = v;
      if (v > last) last = v;
    }
    if (!Number.isFinite(first) || !Number.isFinite(last) || !Number.isFinite(last - first))
      throw new InvalidArgumentError(`autodetected range of [${first}, ${last}] is not finite`);
  }
  if (first === last) {
    first = r(first - 0.5);
    last = r(last + 0.5);
  }
  // np.linspace(first, last, bins + 1) in the bin type.
  const delta = r(last - first);
  const step = r(delta / bins);
  const edges = new Array<number>(bins + 1);
  for (let i = 0; i <= bins; i++) edges[i] = step === 0 ? r(r(r(i / bins) * delta) + first) : r(r(i * step) + first);
  edges[bins] = last;
  const counts = new Array<number>(bins).fill(0);
  for (const x of xs) {
    if (x < first || x > last) continue;
    let k = Math.trunc(r(r(r(x - first) / delta) * bins));
    if (k === bins) k--;
    if (x < edges[k]) k--;
    else if (x >= edges[k + 1] && k !== bins - 1) k++;
    counts[Math.min(Math.max(k, 0), bins - 1)]++;
  }
  return { edges, counts, nMissing };
}

export interface QcHistogramsOptions extends GeneSource {
  bins?: number;
  /** Log-scaled count axis (log10(1 + count) heights). */
  log?: boolean;
  /** Size of one histogram in px (default 260 × 180). */
  width?: number;
  height?: number;
  /** Histograms per row (default 3). */
  ncols?: number;
  color?: string;
}

export interface QcHistogramsData {
  keys: string[];
  histograms: Record<string, Histogram>;
}

export const DEFAULT_QC_KEYS = ["total_counts", "n_genes_by_counts", "pct_counts_mt"];

/**
 * @example
 * await pp.calculateQcMetrics(adata, { qcVars: ["mt"] });
 * const p = await pl.qcHistograms(adata); // total_counts, n_genes_by_counts, pct_counts_mt
 * p.data.histograms.total_counts.counts;
 */
export async function qcHistograms(
  adata: AnnDataOOM,
  keys?: string | string[],
  opts: QcHistogramsOptions = {},
): Promise<Plot<QcHistogramsData>> {
  checkAnnData("pl.qcHistograms", adata);
  checkOptions<QcHistogramsOptions>("pl.qcHistograms", opts, 'pl.qcHistograms(adata, ["total_counts"], { bins: 60 })', {
    bins: "num",
    log: "bool",
    width: "num",
    height: "num",
    ncols: "num",
    color: true,
    useRaw: "bool",
    layer: true,
    geneIndex: true,
    signal: true,
    onProgress: true,
  });
  const list = keys === undefined ? DEFAULT_QC_KEYS.filter((k) => adata.obs.getChild(k)) : Array.isArray(keys) ? keys : [keys];
  if (list.length === 0) {
    throw new InvalidArgumentError(
      `qcHistograms: none of ${DEFAULT_QC_KEYS.join(", ")} is an obs column; run pp.calculateQcMetrics first or pass keys`,
    );
  }
  const bins = opts.bins ?? 50;
  const histograms: Record<string, Histogram> = {};
  const read = await keysValues(adata, list, opts, "key", "qcHistograms");
  for (const key of list) {
    const kv = read.get(key) as KeyValues;
    if (kv.kind !== "continuous") throw new InvalidArgumentError(`key ${JSON.stringify(key)} is categorical; a histogram needs numbers`);
    try {
      histograms[key] = histogram(kv.values, bins, kv.dtype === "gene" ? "float64" : kv.dtype);
    } catch (e) {
      // Name the column: several are drawn at once.
      if (e instanceof InvalidArgumentError) throw new InvalidArgumentError(`pl.qcHistograms ${JSON.stringify(key)}: ${e.message}`);
      throw e;
    }
  }
  const pw = panelSide(opts.width, 260, "width");
  const ph = panelSide(opts.height, 180, "height");
  if (opts.ncols !== undefined && !(Number.isInteger(opts.ncols) && opts.ncols >= 1))
    throw new InvalidArgumentError(`ncols must be a positive integer, got ${opts.ncols}`);
  const ncols = Math.max(1, Math.min(list.length, opts.ncols ?? 3));
  const cellW = 58 + pw + 16;
  const cellH = 26 + ph + 40;
  const W = ncols * cellW;
  const H = Math.ceil(list.length / ncols) * cellH;
  const svg = new Svg();
  const regions: HoverRegion[] = [];
  // #rrggbb: the PNG renderer draws hex colors only.
  const fill = normalizeColor(opts.color ?? "#1f77b4");
  list.forEach((key, i) => {
    const h = histograms[key];
    const ox = (i % ncols) * cellW + 58;
    const oy = Math.floor(i / ncols) * cellH + 26;
    const tf = opts.log ? (c: number) => Math.log10(1 + c) : (c: number) => c;
    const cmax = h.counts.reduce((a, b) => Math.max(a, b), 1);
    const sx = linear(h.edges[0], h.edges[h.edges.length - 1], ox, ox + pw);
    const sy = linear(0, tf(cmax) * 1.05, oy + ph, oy);
    svg.text(ox + pw / 2, oy - 9, key, { "text-anchor": "middle", "font-size": 13, class: "aoom-title" });
    h.counts.forEach((c, b) => {
      const x0 = sx(h.edges[b]);
      const x1 = sx(h.edges[b + 1]);
      const y = sy(tf(c));
      if (c > 0)
        svg.el("rect", { x: x0, y, width: Math.max(0.5, x1 - x0), height: oy + ph - y, fill, stroke: "#ffffff", "stroke-width": 0.3 });
      regions.push({
        x: x0,
        y: oy,
        w: x1 - x0,
        h: ph,
        label: `${key} [${fmt(h.edges[b])}, ${fmt(h.edges[b + 1])}${b === h.counts.length - 1 ? "]" : ")"}: ${c.toLocaleString("en-US")} cells`,
      });
    });
    svg.el("rect", { x: ox, y: oy, width: pw, height: ph, fill: "none", stroke: "#000000", "stroke-width": 0.8 });
    for (const t of niceTicks(h.edges[0], h.edges[h.edges.length - 1], 5)) {
      const x = sx(t);
      svg.el("line", { x1: x, y1: oy + ph, x2: x, y2: oy + ph + 4, stroke: "#000000", "stroke-width": 0.8 });
      svg.text(x, oy + ph + 15, fmt(t), { "text-anchor": "middle", "font-size": 10 });
    }
    const yt = opts.log
      ? niceTicks(0, Math.log10(1 + cmax), 4)
          .map((t) => Math.round(10 ** t - 1))
          .filter((v, k, a) => a.indexOf(v) === k)
      : niceTicks(0, cmax, 4);
    for (const t of yt) {
      const y = sy(tf(t));
      svg.el("line", { x1: ox - 4, y1: y, x2: ox, y2: y, stroke: "#000000", "stroke-width": 0.8 });
      svg.text(ox - 6, y + 3.5, fmt(t), { "text-anchor": "end", "font-size": 10 });
    }
    svg.text(ox + pw / 2, oy + ph + 30, h.nMissing ? `(${h.nMissing} NaN left out)` : "", { "text-anchor": "middle", "font-size": 10 });
  });
  return new Plot({
    kind: "histogram",
    title: list.join(" | "),
    width: W,
    height: H,
    svg: svg.document(W, H),
    ops: svg.ops,
    data: { keys: list, histograms },
    regions,
    text: `<qcHistograms of ${list.join(", ")} (${bins} bins)>`,
    summary: { keys: list, histograms },
  });
}
