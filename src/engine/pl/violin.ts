/**
 * pl.violin: scanpy's `sc.pl.violin` — one violin per group (or per key
 * without groupby), seaborn's defaults as scanpy calls them: Gaussian KDE
 * with Scott's bandwidth, cut 0, every violin scaled to the same width
 * (density_norm "width"), and a jittered black strip plot on top (drawn
 * into an embedded PNG raster, so 1M cells stay one image).
 */
import { type AnnDataOOM, checkAnnData } from "../anndata";
import { InvalidArgumentError } from "../errors";
import { seededRandom } from "../graph-data";
import { fmt, linear, niceTicks, textWidth } from "./axes";
import { categoryColors, obsCategoryColors, type Palette } from "./colors";
import { gaussianKde } from "./kde";
import { checkOptions, type HoverRegion, MAX_PANEL_PX, Plot, panelSide } from "./plot";
import { Raster } from "./raster";
import { num, Svg, type SvgOp } from "./svg";
import { type GeneSource, groupbyColumn, type KeyValues, keysValues } from "./values";

export interface ViolinOptions extends GeneSource {
  /** Categorical obs column: one violin per category. */
  groupby?: string;
  /** Jittered points on top (default true). */
  stripplot?: boolean;
  /** Jitter half-width as a fraction of the spacing between violins (default 0.1, seaborn's `jitter=True`; false: none). */
  jitter?: number | boolean;
  /** Strip point size in pt (scanpy's `size`, default 1). */
  size?: number;
  /** y on a log scale (values ≤ 0 sit on the axis bottom). */
  log?: boolean;
  /** Category colors: a colormap name, a list (cycled) or category → color (default: uns[groupby_colors] or scanpy's defaults). */
  palette?: Palette;
  /** Plot area per panel in px (default 80 px per violin × 240). */
  width?: number;
  height?: number;
  title?: string | string[];
  /** Seed of the jitter (default 0). */
  seed?: number;
  /** Axis label below the panels. */
  xlabel?: string;
}

export interface ViolinGroup {
  /** The group (category) or, without groupby, the key. */
  name: string;
  n: number;
  /** The values (NaN and ±Infinity dropped), as `sc.get.obs_df` selects them, in cell order. */
  values: Float64Array;
  min: number;
  q1: number;
  median: number;
  q3: number;
  max: number;
  mean: number;
}

export interface ViolinPanel {
  key: string;
  title: string;
  groups: ViolinGroup[];
}

export interface ViolinData {
  groupby: string | null;
  panels: ViolinPanel[];
}

function quantile(sorted: Float64Array, q: number): number {
  if (!sorted.length) return Number.NaN;
  const h = (sorted.length - 1) * q;
  const lo = Math.floor(h);
  return sorted[lo] + (h - lo) * ((sorted[Math.min(lo + 1, sorted.length - 1)] ?? sorted[lo]) - sorted[lo]);
}

function summarize(name: string, values: Float64Array): ViolinGroup {
  const s = Float64Array.from(values).sort();
  let sum = 0;
  for (const v of values) sum += v;
  return {
    name,
    n: values.length,
    values,
    min: s.length ? s[0] : Number.NaN,
    q1: quantile(s, 0.25),
    median: quantile(s, 0.5),
    q3: quantile(s, 0.75),
    max: s.length ? s[s.length - 1] : Number.NaN,
    mean: values.length ? sum / values.length : Number.NaN,
  };
}

/** The finite values: ±Infinity would stretch the axis and flatten every density, NaN is missing. */
function finite(v: Float64Array): Float64Array {
  const out: number[] = [];
  for (let i = 0; i < v.length; i++) if (Number.isFinite(v[i])) out.push(v[i]);
  return Float64Array.from(out);
}

/** Violins per panel at most (each is a KDE and a path). */
const MAX_GROUPS = 1000;

/**
 * @example
 * const p = await pl.violin(adata, ["n_genes_by_counts", "total_counts"], { groupby: "leiden" });
 * p.data.panels[0].groups.map((g) => g.median);
 */
export async function violin(adata: AnnDataOOM, keys: string | string[], opts: ViolinOptions = {}): Promise<Plot<ViolinData>> {
  checkAnnData("pl.violin", adata);
  checkOptions<ViolinOptions>("pl.violin", opts, 'pl.violin(adata, "n_genes", { groupby: "leiden" })', {
    groupby: true,
    stripplot: "bool",
    jitter: true,
    size: "num",
    log: "bool",
    palette: true,
    width: "num",
    height: "num",
    title: true,
    seed: "num",
    xlabel: true,
    useRaw: "bool",
    layer: true,
    geneIndex: true,
    signal: true,
    onProgress: true,
  });
  const list = Array.isArray(keys) ? keys : [keys];
  if (list.length === 0) throw new InvalidArgumentError("violin: keys is empty");
  const grp = opts.groupby !== undefined ? groupbyColumn(adata, opts.groupby) : null;
  const titles = Array.isArray(opts.title) ? opts.title : opts.title !== undefined ? [opts.title] : [];
  const series: { key: string; values: Float64Array }[] = [];
  const read = await keysValues(adata, list, opts, "key", "violin");
  for (const key of list) {
    const kv = read.get(key) as KeyValues;
    if (kv.kind !== "continuous")
      throw new InvalidArgumentError(`key ${JSON.stringify(key)} is categorical; violin needs numbers (an obs column or a gene)`);
    series.push({ key, values: kv.values });
  }
  let panels: ViolinPanel[];
  let colors: string[];
  if (grp) {
    if (grp.categories.length > MAX_GROUPS)
      throw new InvalidArgumentError(
        `violin: groupby ${JSON.stringify(opts.groupby)} has ${grp.categories.length.toLocaleString("en-US")} categories; at most ${MAX_GROUPS} violins are drawn`,
      );
    panels = series.map((s, p) => {
      // One sweep over the cells into per-group lists (in cell order).
      const byGroup = grp.categories.map(() => [] as number[]);
      for (let i = 0; i < s.values.length; i++) {
        const code = grp.codes[i];
        if (code >= 0 && Number.isFinite(s.values[i])) byGroup[code].push(s.values[i]);
      }
      return {
        key: s.key,
        title: titles[p] ?? s.key,
        groups: grp.categories.map((c, k) => summarize(c, Float64Array.from(byGroup[k]))),
      };
    });
    // As scanpy's violin: its own colors are left in uns (defaults set,
    // invalid ones replaced); a palette is used for this plot only.
    colors =
      opts.palette === undefined || opts.palette === null
        ? obsCategoryColors(adata, opts.groupby as string, grp.categories)
        : categoryColors(grp.categories, adata.uns[`${opts.groupby}_colors`], opts.palette);
  } else {
    panels = [{ key: list.join(", "), title: titles[0] ?? "", groups: series.map((s) => summarize(s.key, finite(s.values))) }];
    colors = categoryColors(list, undefined, opts.palette);
  }
  const { svg, ops, width, height, regions } = draw(panels, colors, opts);
  const data: ViolinData = { groupby: opts.groupby ?? null, panels };
  const what = grp ? `${list.length} key(s) by ${JSON.stringify(opts.groupby)} (${grp.categories.length} groups)` : list.join(", ");
  return new Plot({
    kind: "violin",
    title: panels.map((p) => p.title).join(" | "),
    width,
    height,
    svg,
    ops,
    data,
    regions,
    text: `<violin of ${what}>`,
    summary: {
      groupby: opts.groupby ?? null,
      panels: panels.map((p) => ({ key: p.key, groups: p.groups.map(({ values: _v, ...rest }) => rest) })),
    },
  });
}

function draw(
  panels: ViolinPanel[],
  colors: string[],
  opts: ViolinOptions,
): { svg: string; ops: SvgOp[]; width: number; height: number; regions: HoverRegion[] } {
  const nv = panels[0].groups.length;
  const pw = panelSide(opts.width, Math.min(MAX_PANEL_PX, Math.max(120, nv * 60)), "width");
  const ph = panelSide(opts.height, 240, "height");
  const spacing = pw / nv;
  const names = panels[0].groups.map((g) => g.name);
  const bottom = Math.max(24, ...names.map((n) => textWidth(n))) + 14 + (opts.xlabel ? 16 : 0);
  const left = 52;
  const top = 28;
  const gap = 24;
  const W = panels.length * (left + pw + gap);
  const H = top + ph + bottom;
  const svg = new Svg();
  const regions: HoverRegion[] = [];
  const pr = 2;
  // scanpy's jitter=True / False, as seaborn takes them.
  const jitter = opts.jitter === true || opts.jitter === undefined ? 0.1 : opts.jitter === false ? 0 : opts.jitter;
  const size = opts.size ?? 1;
  const seed = opts.seed ?? 0;
  if (typeof jitter !== "number" || !(jitter >= 0 && jitter <= 1))
    throw new InvalidArgumentError(`jitter must be true, false or a number in [0, 1], got ${opts.jitter}`);
  if (typeof size !== "number" || !(size > 0 && size <= 1000))
    throw new InvalidArgumentError(`size (strip point size in pt) must be in (0, 1000], got ${opts.size}`);
  if (!Number.isInteger(seed)) throw new InvalidArgumentError(`seed must be an integer, got ${opts.seed}`);
  for (const [name, v] of [
    ["stripplot", opts.stripplot],
    ["log", opts.log],
  ] as const)
    if (v !== undefined && typeof v !== "boolean")
      throw new InvalidArgumentError(`${name} must be true or false, got ${JSON.stringify(v)}`);
  const rnd = seededRandom(seed);
  const pointR = 0.5 * size * (100 / 72) * pr;
  panels.forEach((panel, p) => {
    const ox = p * (left + pw + gap) + left;
    let lo = Infinity;
    let hi = -Infinity;
    let minPos = Infinity;
    for (const g of panel.groups) {
      for (const v of g.values) {
        if (v < lo) lo = v;
        if (v > hi) hi = v;
        if (v > 0 && v < minPos) minPos = v;
      }
    }
    if (lo > hi) [lo, hi] = [0, 1];
    const tf = opts.log ? (v: number) => Math.log10(Math.max(v, minPos === Infinity ? 1 : minPos)) : (v: number) => v;
    let ylo = tf(lo);
    let yhi = tf(hi);
    const m = (yhi - ylo) * 0.05 || 0.5;
    ylo -= m;
    yhi += m;
    const sy = linear(ylo, yhi, top + ph, top);
    svg.text(ox + pw / 2, 18, panel.title, { "text-anchor": "middle", "font-size": 13, class: "aoom-title" });
    // y axis
    const ticks = opts.log ? niceTicks(Math.ceil(ylo), Math.floor(yhi), 5).filter(Number.isInteger) : niceTicks(ylo, yhi, 5);
    for (const t of ticks) {
      const y = sy(t);
      svg.el("line", { x1: ox - 4, y1: y, x2: ox, y2: y, stroke: "#000000", "stroke-width": 0.8 });
      svg.text(ox - 6, y + 3.5, opts.log ? `1e${t}` : fmt(t), { "text-anchor": "end", "font-size": 10 });
    }
    svg.el("rect", { x: ox, y: top, width: pw, height: ph, fill: "none", stroke: "#000000", "stroke-width": 0.8 });
    const raster = opts.stripplot === false ? null : new Raster(Math.round(pw * pr), Math.round(ph * pr));
    panel.groups.forEach((g, k) => {
      const cx = ox + spacing * (k + 0.5);
      const half = spacing * 0.4;
      const color = colors[k % colors.length];
      const kde = gaussianKde(g.values, { cut: 0, gridsize: 100 });
      if (kde && kde.support.length > 1) {
        let dmax = 0;
        for (const d of kde.density) dmax = Math.max(dmax, d);
        const right: string[] = [];
        const leftSide: string[] = [];
        for (let i = 0; i < kde.support.length; i++) {
          const w = dmax > 0 ? (kde.density[i] / dmax) * half : 0;
          const y = sy(tf(kde.support[i]));
          right.push(`${num(cx + w)} ${num(y)}`);
          leftSide.push(`${num(cx - w)} ${num(y)}`);
        }
        const d = `M${right.join(" L")} L${leftSide.reverse().join(" L")} Z`;
        svg.el("path", { d, fill: color, stroke: "#3f3f3f", "stroke-width": 0.8, class: "aoom-violin" });
      } else if (kde) {
        const y = sy(tf(kde.support[0]));
        svg.el("line", { x1: cx - half, y1: y, x2: cx + half, y2: y, stroke: color, "stroke-width": 1.5 });
      }
      if (raster) {
        for (const v of g.values) {
          const x = (cx - ox + (rnd() * 2 - 1) * jitter * spacing) * pr;
          raster.disc(x, (sy(tf(v)) - top) * pr, pointR, 0, 0, 0);
        }
      }
      const lx = cx + 4;
      const ly = top + ph + 6;
      svg.text(lx, ly, g.name, { "text-anchor": "end", "font-size": 11, transform: `rotate(-90 ${lx} ${ly})` });
      regions.push({
        x: cx - spacing / 2,
        y: top,
        w: spacing,
        h: ph,
        label: `${g.name}: n=${g.n.toLocaleString("en-US")}, median ${fmt(g.median)}, IQR ${fmt(g.q1)}–${fmt(g.q3)}, range ${fmt(g.min)}–${fmt(g.max)}`,
      });
    });
    if (raster)
      svg.el("image", {
        x: ox,
        y: top,
        width: pw,
        height: ph,
        preserveAspectRatio: "none",
        href: `data:image/png;base64,${raster.png().toString("base64")}`,
        class: "aoom-points",
      });
    if (opts.xlabel) svg.text(ox + pw / 2, H - 6, opts.xlabel, { "text-anchor": "middle", "font-size": 11 });
  });
  return { svg: svg.document(W, H), ops: svg.ops, width: W, height: H, regions };
}
