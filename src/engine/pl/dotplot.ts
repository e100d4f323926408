/**
 * pl.dotplot: scanpy's DotPlot. Per group × gene, the dot's color is the
 * mean expression (`dot_color_df`) and its size the fraction of cells with
 * expression > expressionCutoff (`dot_size_df`), with scanpy's
 * standard_scale, mean_only_expressed, dot_min/dot_max and size rules.
 */
import { type AnnDataOOM, checkAnnData } from "../anndata";
import { InvalidArgumentError } from "../errors";
import { fmt, niceTicks, textWidth } from "./axes";
import { type ColorLimit, ColorScale, colorRange } from "./colors";
import { checkOptions, type HoverRegion, Plot } from "./plot";
import { Svg, type SvgOp } from "./svg";
import { type GeneSource, groupbyColumn, type KeyValues, keysValues } from "./values";

export interface DotplotOptions extends GeneSource {
  /** "var": each gene scaled to [0, 1] over groups; "group": each group over genes. */
  standardScale?: "var" | "group" | null;
  /** A cell expresses a gene when its value is > this (default 0). */
  expressionCutoff?: number;
  /** Mean over expressing cells only (default false). */
  meanOnlyExpressed?: boolean;
  /** matplotlib colormap (default "Reds"). */
  colorMap?: string;
  /** Fractions above are drawn at the largest size (default: max fraction rounded up to 0.1). */
  dotMax?: number;
  /** Fractions below are drawn at the smallest size (default 0). */
  dotMin?: number;
  vmin?: ColorLimit;
  vmax?: ColorLimit;
  title?: string;
  /** Groups to show, in this order (scanpy's categories_order). */
  categoriesOrder?: string[];
}

/** Rows drawn at most: at 22 px a row, 1,000 rows are already a 22,000 px tall image. */
const MAX_GROUPS = 1000;

export interface DotplotData {
  groupby: string;
  /** Rows: the observed groups in category order. */
  groups: string[];
  /** Cells per group. */
  groupSizes: number[];
  /** Columns: the genes (a gene listed twice appears twice). */
  varNames: string[];
  /** Labelled gene groups when varNames was a record: column ranges [start, end]. */
  varGroups: { label: string; start: number; end: number }[];
  /** scanpy's dot_color_df (after standard_scale): groups × genes. */
  dotColor: number[][];
  /** scanpy's dot_size_df: fraction of cells > expressionCutoff, groups × genes. */
  dotSize: number[][];
  /** Mean expression before any standard_scale. */
  mean: number[][];
  dotMax: number;
  dotMin: number;
  colorMap: string;
  vmin: number;
  vmax: number;
}

const SMALLEST_DOT = 0;
const LARGEST_DOT = 200;
const SIZE_EXPONENT = 1.5;
const CELL = 22;

/** Marker area (pt²) → radius in px at 100 dpi. */
const radiusPx = (area: number) => 0.5 * Math.sqrt(area) * (100 / 72);

/** scanpy's fraction → marker area rule (dot_min/dot_max clip and rescale, exponent 1.5, 0..200 pt²). */
export function dotArea(frac: number, dotMin: number, dotMax: number): number {
  let f = frac;
  if (dotMin !== 0 || dotMax !== 1) {
    f = (Math.min(Math.max(f, dotMin), dotMax) - dotMin) / (dotMax - dotMin);
  }
  return f ** SIZE_EXPONENT * (LARGEST_DOT - SMALLEST_DOT) + SMALLEST_DOT;
}

/** Gene values held at once while a dotplot aggregates them. */
const GENE_VALUES_BYTES = 64 << 20;

/**
 * @example
 * const p = await pl.dotplot(adata, { T: ["CD3E", "CD8A"], B: ["MS4A1"] }, "leiden", { standardScale: "var" });
 * p.data.dotColor[0][1]; // group 0, CD8A
 */
export async function dotplot(
  adata: AnnDataOOM,
  varNames: string | string[] | Record<string, string[]>,
  groupby: string,
  opts: DotplotOptions = {},
): Promise<Plot<DotplotData>> {
  checkAnnData("pl.dotplot", adata);
  checkOptions<DotplotOptions>("pl.dotplot", opts, 'pl.dotplot(adata, ["CD3E"], "leiden", { standardScale: "var" })', {
    standardScale: true,
    expressionCutoff: "num",
    meanOnlyExpressed: "bool",
    colorMap: true,
    dotMax: "num",
    dotMin: "num",
    vmin: true,
    vmax: true,
    title: true,
    categoriesOrder: true,
    useRaw: "bool",
    layer: true,
    geneIndex: true,
    signal: true,
    onProgress: true,
  });
  const genes: string[] = [];
  const varGroups: DotplotData["varGroups"] = [];
  if (typeof varNames === "string") genes.push(varNames);
  else if (Array.isArray(varNames)) genes.push(...varNames);
  else if (varNames && typeof varNames === "object") {
    for (const [label, list] of Object.entries(varNames)) {
      const l = typeof list === "string" ? [list] : list;
      if (!Array.isArray(l) || l.length === 0) continue;
      varGroups.push({ label, start: genes.length, end: genes.length + l.length - 1 });
      genes.push(...l);
    }
  }
  if (genes.length === 0) throw new InvalidArgumentError("dotplot: varNames is empty");
  if (genes.length > MAX_GROUPS) throw new InvalidArgumentError(`dotplot: ${genes.length} genes; at most ${MAX_GROUPS} columns are drawn`);
  const cutoff = opts.expressionCutoff ?? 0;
  if (typeof cutoff !== "number" || Number.isNaN(cutoff))
    throw new InvalidArgumentError(`expressionCutoff must be a number, got ${opts.expressionCutoff}`);
  const sscale = opts.standardScale ?? null;
  if (sscale !== null && sscale !== "var" && sscale !== "group")
    throw new InvalidArgumentError(`standardScale must be "var", "group" or null, got ${JSON.stringify(sscale)}`);

  const grp = groupbyColumn(adata, groupby);
  const k = grp.categories.length;
  const sizes = new Array<number>(k).fill(0);
  for (const c of grp.codes) if (c >= 0) sizes[c]++;
  // Observed groups only (pandas groupby(observed=True)), in category order or categoriesOrder.
  let rows = grp.categories.map((_, i) => i).filter((i) => sizes[i] > 0);
  if (opts.categoriesOrder !== undefined) {
    const order = opts.categoriesOrder;
    if (!Array.isArray(order) || order.length === 0 || new Set(order).size !== order.length)
      throw new InvalidArgumentError("categoriesOrder must be a non-empty list of distinct categories");
    rows = order.map((c) => {
      const i = grp.categories.indexOf(c);
      if (i < 0 || sizes[i] === 0)
        throw new InvalidArgumentError(`categoriesOrder: ${JSON.stringify(c)} is not an observed category of ${JSON.stringify(groupby)}`);
      return i;
    });
  }
  if (rows.length === 0) throw new InvalidArgumentError(`dotplot: no cell has a value in groupby ${JSON.stringify(groupby)}`);
  if (rows.length > MAX_GROUPS)
    throw new InvalidArgumentError(
      `dotplot: groupby ${JSON.stringify(groupby)} has ${rows.length.toLocaleString("en-US")} observed groups; at most ${MAX_GROUPS} rows are drawn (pick them with categoriesOrder)`,
    );
  const G = genes.length;
  const mean = rows.map(() => new Array<number>(G).fill(0));
  const frac = rows.map(() => new Array<number>(G).fill(0));
  const rowOf = new Int32Array(k).fill(-1);
  rows.forEach((c, r) => {
    rowOf[c] = r;
  });
  // Genes are read in batches whose values fit GENE_VALUES_BYTES: a dot
  // needs only group sums and counts, and 1,000 genes at 100k cells peaked
  // at 1.2 GB read at once (8–16 GB at 1M); in batches, 0.40 GB and the same
  // time. With the gene index a batch costs nothing extra; without it, each
  // batch is one pass.
  const perBatch = Math.max(1, Math.floor(GENE_VALUES_BYTES / (8 * Math.max(1, adata.nObs))));
  let read = new Map<string, KeyValues>();
  for (let g = 0; g < G; g++) {
    if (g % perBatch === 0) read = await keysValues(adata, genes.slice(g, g + perBatch), opts, "varNames entry", "dotplot");
    const kv = read.get(genes[g]) as KeyValues;
    if (kv.kind !== "continuous")
      throw new InvalidArgumentError(`varNames entry ${JSON.stringify(genes[g])} is a categorical obs column, not a gene`);
    const v = kv.values;
    const sum = new Float64Array(rows.length);
    const sumExpr = new Float64Array(rows.length);
    const nExpr = new Float64Array(rows.length);
    const nAll = new Float64Array(rows.length);
    const nCells = new Float64Array(rows.length);
    for (let i = 0; i < v.length; i++) {
      const code = grp.codes[i];
      if (code < 0) continue;
      const r = rowOf[code];
      if (r < 0) continue;
      const x = v[i];
      // The fraction is over every cell of the group (scanpy counts the
      // boolean frame `x > cutoff`, where NaN is False); the mean skips NaN.
      nCells[r]++;
      if (Number.isNaN(x)) continue;
      nAll[r]++;
      sum[r] += x;
      if (x > cutoff) {
        nExpr[r]++;
        sumExpr[r] += x;
      }
    }
    for (let r = 0; r < rows.length; r++) {
      frac[r][g] = nCells[r] ? nExpr[r] / nCells[r] : 0;
      mean[r][g] = opts.meanOnlyExpressed ? (nExpr[r] ? sumExpr[r] / nExpr[r] : 0) : nAll[r] ? sum[r] / nAll[r] : Number.NaN;
    }
  }
  const color = standardScale(mean, sscale);

  const flatFrac = frac.flat();
  const dotMax = opts.dotMax ?? Math.ceil(flatFrac.reduce((a, b) => Math.max(a, b), 0) * 10) / 10;
  const dotMin = opts.dotMin ?? 0;
  for (const [name, v] of [
    ["dotMax", dotMax],
    ["dotMin", dotMin],
  ] as const) {
    if (!(v >= 0 && v <= 1)) throw new InvalidArgumentError(`${name} has to be between 0 and 1, got ${v}`);
  }
  const [vmin, vmax] = colorRange(color.flat(), opts.vmin, opts.vmax);
  const cmap = new ColorScale(opts.colorMap ?? "Reds", vmin, vmax);
  const groups = rows.map((c) => grp.categories[c]);
  const data: DotplotData = {
    groupby,
    groups,
    groupSizes: rows.map((c) => sizes[c]),
    varNames: genes,
    varGroups,
    dotColor: color,
    dotSize: frac,
    mean,
    dotMax,
    dotMin,
    colorMap: cmap.name,
    vmin,
    vmax,
  };
  const { svg, ops, width, height, regions } = draw(data, cmap, opts.title ?? "", sscale);
  return new Plot({
    kind: "dotplot",
    title: opts.title ?? "",
    width,
    height,
    svg,
    ops,
    data,
    regions,
    text: `<dotplot of ${G} genes × ${groups.length} groups of ${JSON.stringify(groupby)}>`,
    summary: { groupby, groups, varNames: genes, dotColor: color, dotSize: frac, standardScale: sscale },
  });
}

/** scanpy's standard_scale on a groups × genes matrix (NaN → 0 after scaling, as fillna(0)). */
export function standardScale(m: number[][], how: "var" | "group" | null): number[][] {
  if (how === null) return m.map((r) => [...r]);
  const R = m.length;
  const C = m[0]?.length ?? 0;
  const out = m.map((r) => [...r]);
  const nanMin = (v: number[]) => v.reduce((a, b) => (Number.isNaN(b) ? a : Number.isNaN(a) ? b : Math.min(a, b)), Number.NaN);
  const nanMax = (v: number[]) => v.reduce((a, b) => (Number.isNaN(b) ? a : Number.isNaN(a) ? b : Math.max(a, b)), Number.NaN);
  const fix = (x: number) => (Number.isNaN(x) ? 0 : x);
  if (how === "group") {
    for (let r = 0; r < R; r++) {
      const lo = nanMin(out[r]);
      for (let c = 0; c < C; c++) out[r][c] -= lo;
      const hi = nanMax(out[r]);
      for (let c = 0; c < C; c++) out[r][c] = fix(out[r][c] / hi);
    }
  } else {
    for (let c = 0; c < C; c++) {
      const col = out.map((r) => r[c]);
      const lo = nanMin(col);
      for (let r = 0; r < R; r++) out[r][c] -= lo;
      const hi = nanMax(out.map((r) => r[c]));
      for (let r = 0; r < R; r++) out[r][c] = fix(out[r][c] / hi);
    }
  }
  return out;
}

function sizeLegendFractions(dotMin: number, dotMax: number): number[] {
  const diff = dotMax - dotMin;
  const step = diff > 0.3 && diff <= 0.6 ? 0.1 : diff <= 0.3 ? 0.05 : 0.2;
  const out: number[] = [];
  // np.arange(dot_max, dot_min, -step)[::-1]
  for (let i = 0; dotMax - i * step > dotMin + 1e-12; i++) out.push(dotMax - i * step);
  return out.reverse();
}

function draw(
  d: DotplotData,
  cmap: ColorScale,
  title: string,
  sscale: string | null,
): { svg: string; ops: SvgOp[]; width: number; height: number; regions: HoverRegion[] } {
  const R = d.groups.length;
  const C = d.varNames.length;
  const left = Math.max(30, ...d.groups.map((g) => textWidth(g))) + 12;
  const top = (title ? 26 : 8) + (d.varGroups.length ? 26 : 0);
  const gridW = C * CELL;
  const gridH = R * CELL;
  const bottom = Math.max(30, ...d.varNames.map((g) => textWidth(g))) + 12;
  const legendX = left + gridW + 24;
  const width = legendX + 150;
  const height = Math.max(top + gridH + bottom, top + 250);
  const svg = new Svg();
  const regions: HoverRegion[] = [];
  if (title) svg.text(left + gridW / 2, 18, title, { "text-anchor": "middle", "font-size": 13, class: "aoom-title" });
  for (const vg of d.varGroups) {
    const x0 = left + vg.start * CELL + 3;
    const x1 = left + (vg.end + 1) * CELL - 3;
    const y = top - 6;
    svg.el("path", { d: `M${x0} ${y} V${y - 5} H${x1} V${y}`, fill: "none", stroke: "#000000", "stroke-width": 0.8 });
    svg.text((x0 + x1) / 2, y - 9, vg.label, { "text-anchor": "middle", "font-size": 11 });
  }
  svg.el("rect", { x: left, y: top, width: gridW, height: gridH, fill: "none", stroke: "#000000", "stroke-width": 0.8 });
  d.groups.forEach((g, r) => {
    svg.text(left - 6, top + r * CELL + CELL / 2 + 4, g, { "text-anchor": "end", "font-size": 11 });
  });
  d.varNames.forEach((gene, c) => {
    const x = left + c * CELL + CELL / 2 + 4;
    const y = top + gridH + 6;
    svg.text(x, y, gene, { "text-anchor": "end", "font-size": 11, transform: `rotate(-90 ${x} ${y})` });
  });
  for (let r = 0; r < R; r++) {
    for (let c = 0; c < C; c++) {
      const cx = left + c * CELL + CELL / 2;
      const cy = top + r * CELL + CELL / 2;
      const rad = radiusPx(dotArea(d.dotSize[r][c], d.dotMin, d.dotMax));
      if (rad > 0) svg.el("circle", { cx, cy, r: rad, fill: cmap.hex(d.dotColor[r][c]), stroke: "#000000", "stroke-width": 0.2 });
      const label = `${d.groups[r]} · ${d.varNames[c]}: mean ${fmt(d.mean[r][c])}${sscale ? ` (scaled ${fmt(d.dotColor[r][c])})` : ""}, ${fmt(100 * d.dotSize[r][c])}% of ${d.groupSizes[r]} cells > cutoff`;
      regions.push({ x: left + c * CELL, y: top + r * CELL, w: CELL, h: CELL, label });
    }
  }
  // Color bar and size legend on the right.
  svg.text(legendX, top + 10, "Mean expression", { "font-size": 11 });
  svg.text(legendX, top + 23, "in group", { "font-size": 11 });
  colorBarHorizontal(svg, legendX + 10, top + 30, 110, 10, cmap);
  const sy = top + 90;
  svg.text(legendX, sy, "Fraction of cells", { "font-size": 11 });
  svg.text(legendX, sy + 13, "in group (%)", { "font-size": 11 });
  const fr = sizeLegendFractions(d.dotMin, d.dotMax);
  let x = legendX + 6;
  for (const f of fr) {
    const rad = radiusPx(dotArea(f, d.dotMin, d.dotMax));
    svg.el("circle", { cx: x + rad, cy: sy + 34, r: Math.max(rad, 0.5), fill: "#808080", stroke: "#000000", "stroke-width": 0.2 });
    svg.text(x + rad, sy + 60, String(Math.round(f * 100)), { "text-anchor": "middle", "font-size": 10 });
    x += Math.max(2 * rad + 8, 22);
  }
  return { svg: svg.document(width, height), ops: svg.ops, width, height, regions };
}

function colorBarHorizontal(svg: Svg, x: number, y: number, w: number, h: number, cmap: ColorScale): void {
  // 64 rects: vector, so no raster inside the legend.
  const steps = 64;
  for (let i = 0; i < steps; i++) {
    const v = cmap.vmin + ((i + 0.5) / steps) * (cmap.vmax - cmap.vmin);
    svg.el("rect", { x: x + (i * w) / steps, y, width: w / steps + 0.3, height: h, fill: cmap.hex(v), stroke: "none" });
  }
  svg.el("rect", { x, y, width: w, height: h, fill: "none", stroke: "#000000", "stroke-width": 0.6 });
  // Round ticks inside [vmin, vmax], as a matplotlib colour bar; the ends when there are none.
  let ticks = niceTicks(cmap.vmin, cmap.vmax, 4).filter((t) => t >= cmap.vmin - 1e-12 && t <= cmap.vmax + 1e-12);
  if (ticks.length < 2) ticks = [cmap.vmin, cmap.vmax];
  for (const t of ticks) {
    const tx = cmap.vmax === cmap.vmin ? x : x + ((t - cmap.vmin) / (cmap.vmax - cmap.vmin)) * w;
    svg.el("line", { x1: tx, y1: y + h, x2: tx, y2: y + h + 3, stroke: "#000000", "stroke-width": 0.6 });
    svg.text(tx, y + h + 13, fmt(t), { "text-anchor": "middle", "font-size": 10 });
  }
}
