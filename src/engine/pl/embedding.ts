/**
 * pl.embedding: scanpy's `sc.pl.embedding` (umap/pca/any obsm basis) as an
 * SVG with the points drawn into an embedded PNG raster (fixed pixel
 * grid, so 1M points cost a fixed-size image) and vector axes, titles,
 * legends and color bars.
 */
import { type AnnDataOOM, checkAnnData } from "../anndata";
import type { DenseArray } from "../elements";
import { InvalidArgumentError } from "../errors";
import type { OptionNames } from "../options";
import { fmt, linear, niceTicks, textWidth } from "./axes";
import { type ColorLimit, ColorScale, colorRange, NA_COLOR, normalizeColor, obsCategoryColors, type Palette, parseHex } from "./colors";
import { checkOptions, type HoverRegion, Plot, panelSide } from "./plot";
import { encodePng } from "./png";
import { Raster } from "./raster";
import { Svg } from "./svg";
import { type GeneSource, type KeyValues, keysValues } from "./values";

export interface EmbeddingOptions extends GeneSource {
  /** obsm key or its name without "X_" (default "umap"; "pca" → X_pca). */
  basis?: string;
  /** 1-based components to plot: [1, 2] or scanpy's "1,2". */
  components?: [number, number] | string;
  /** obs column or gene; several give one panel each. */
  color?: string | string[] | null;
  /** Category colors: a colormap name ("Set1", "tab20", "viridis": sampled as scanpy does), a list (cycled), or category → color. Default: uns[key_colors] or scanpy's defaults. */
  palette?: Palette;
  /** matplotlib colormap for continuous values (default "viridis"). */
  colorMap?: string;
  /** Color limits: numbers, or scanpy's percentiles ("p1", "p99"); default the finite values' range. */
  vmin?: ColorLimit;
  vmax?: ColorLimit;
  /** Marker area in pt² as in scanpy (default 120000 / n_obs). */
  size?: number;
  /** Panel title(s); default: the color key. */
  title?: string | string[];
  legendLoc?: "right margin" | "on data" | "none";
  /** Color of missing values (default "lightgray"). */
  naColor?: string;
  /** Draw higher values on top (scanpy's sort_order, default true). */
  sortOrder?: boolean;
  /** Plot area of one panel in px (default 320 × 320). */
  width?: number;
  height?: number;
  /** Panels per row (default 4). */
  ncols?: number;
  /** Raster pixels per SVG px (default 2). */
  pixelRatio?: number;
}

export interface EmbeddingPanel {
  color: string | null;
  kind: "categorical" | "continuous" | "none";
  title: string;
  categories?: string[];
  /** One color per category (what scanpy puts in uns[key_colors]). */
  colors?: string[];
  /** Cells per category. */
  counts?: number[];
  colorMap?: string;
  vmin?: number;
  vmax?: number;
  /** Cells with a missing value (drawn first, in naColor). */
  nMissing: number;
}

export interface EmbeddingData {
  /** obsm key (embeddings) or null (pl.qcScatter). */
  basis: string | null;
  components: [number, number] | null;
  /** pl.qcScatter's x and y keys (null for embeddings). */
  x: string | null;
  y: string | null;
  nObs: number;
  /** Data range of the two components. */
  extent: { x: [number, number]; y: [number, number] };
  panels: EmbeddingPanel[];
}

/** Pixels painted by all markers of a panel at most (~3 s of drawing). */
const MAX_PAINTED_PIXELS = 4e8;

const BARE = { top: 26, left: 22, bottom: 22, gap: 14 };
const TICKED = { top: 26, left: 58, bottom: 40, gap: 14 };

/** obsm key of a basis: the key itself when present, else "X_" + basis (scanpy's _get_basis). */
export function basisKey(adata: AnnDataOOM, basis: string): string {
  if (adata.obsm.has(basis)) return basis;
  if (adata.obsm.has(`X_${basis}`)) return `X_${basis}`;
  throw new InvalidArgumentError(
    `basis ${JSON.stringify(basis)} not found: obsm has no ${JSON.stringify(basis)} or ${JSON.stringify(`X_${basis}`)} (keys: ${adata.obsm.keys().join(", ") || "none"})`,
  );
}

function axisLabel(basis: string, key: string): string {
  const name = key.replace(/^X_/, "");
  return basis === "umap" || name === "umap" ? "UMAP" : name === "pca" ? "PC" : name === "tsne" ? "tSNE" : name === "diffmap" ? "DC" : name;
}

/** Draw order as scanpy's sort_order: missing first, then data order (categories) or ascending value (continuous). */
export function drawOrder(v: KeyValues | null, sortOrder: boolean, n: number): Uint32Array {
  const idx = new Uint32Array(n);
  for (let i = 0; i < n; i++) idx[i] = i;
  if (!v || !sortOrder) return idx;
  if (v.kind === "categorical") {
    const missing: number[] = [];
    const rest: number[] = [];
    for (let i = 0; i < n; i++) (v.codes[i] < 0 ? missing : rest).push(i);
    return Uint32Array.from([...missing, ...rest]);
  }
  // numpy: argsort(-v, kind="stable")[::-1] (NaN sorts last, so ends up first).
  const vals = v.values;
  const sorted = Array.from(idx).sort((a, b) => {
    const x = -vals[a];
    const y = -vals[b];
    const xn = Number.isNaN(x);
    const yn = Number.isNaN(y);
    if (xn || yn) return xn === yn ? a - b : xn ? 1 : -1;
    return x - y || a - b;
  });
  return Uint32Array.from(sorted.reverse());
}

interface PanelLayout {
  x: number;
  y: number;
  legendW: number;
}

/** scanpy's legend columns: 1 up to 14 entries, 2 up to 30, else 3. */
function legendColumns(k: number): number {
  return k <= 14 ? 1 : k <= 30 ? 2 : 3;
}

/** Legend entries drawn at most (a column of all obs names would otherwise be a million rows). */
const LEGEND_MAX = 150;

/** Rows of a panel's right-margin legend (0 without one). */
function legendRows(pn: EmbeddingPanel, legendLoc: string): number {
  if (pn.kind !== "categorical" || legendLoc !== "right margin") return 0;
  const k = Math.min(LEGEND_MAX, (pn.categories?.length ?? 0) + (pn.nMissing ? 1 : 0));
  return Math.ceil(k / legendColumns(k)) + ((pn.categories?.length ?? 0) + (pn.nMissing ? 1 : 0) > LEGEND_MAX ? 1 : 0);
}

/** scanpy's `components`: [1, 2] or "1,2" (1-based), checked against an embedding of `d` columns. */
export function parseComponents(given: [number, number] | string | undefined, d: number, key: string): [number, number] {
  const g = given ?? [1, 2];
  const comps = typeof g === "string" ? g.split(",").map((c) => Number(c.trim())) : g;
  if (!Array.isArray(comps) || comps.length !== 2)
    throw new InvalidArgumentError(`components must be two 1-based components, [1, 2] or "1,2"; got ${JSON.stringify(given)}`);
  for (const c of comps) {
    if (!Number.isInteger(c) || c < 1 || c > d)
      throw new InvalidArgumentError(`components: ${c} is out of range 1..${d} for obsm ${JSON.stringify(key)}`);
  }
  return comps as [number, number];
}

/**
 * scanpy's `sc.pl.umap`: `pl.embedding` on obsm X_umap.
 *
 * @example
 * await pl.umap(adata, { color: ["leiden", "CD3E"] });
 */
export async function umap(adata: AnnDataOOM, opts: Omit<EmbeddingOptions, "basis"> = {}): Promise<Plot<EmbeddingData>> {
  checkAnnData("pl.umap", adata);
  return embedding(adata, withBasis("pl.umap", opts, "umap"));
}

/**
 * scanpy's `sc.pl.pca`: `pl.embedding` on obsm X_pca (components 1 and 2 unless asked).
 *
 * @example
 * await pl.pca(adata, { color: "leiden", components: "2,3" });
 */
export async function pca(adata: AnnDataOOM, opts: Omit<EmbeddingOptions, "basis"> = {}): Promise<Plot<EmbeddingData>> {
  checkAnnData("pl.pca", adata);
  return embedding(adata, withBasis("pl.pca", opts, "pca"));
}

function withBasis(fn: string, opts: Omit<EmbeddingOptions, "basis">, basis: string): EmbeddingOptions {
  if (opts && typeof opts === "object" && "basis" in opts)
    throw new InvalidArgumentError(`${fn} plots obsm X_${basis}; for another basis use pl.embedding(adata, { basis })`);
  return opts && typeof opts === "object" && !Array.isArray(opts) ? { ...opts, basis } : (opts as EmbeddingOptions);
}

/**
 * @example
 * const p = await pl.embedding(adata, { basis: "umap", color: ["leiden", "CD3E"] });
 * p // shows in the notebook; p.data.panels[0].colors are the category colors
 * await p.save("umap.png");
 */
export async function embedding(adata: AnnDataOOM, opts: EmbeddingOptions = {}): Promise<Plot<EmbeddingData>> {
  checkAnnData("pl.embedding", adata);
  checkOptions<EmbeddingOptions>("pl.embedding", opts, 'pl.embedding(adata, { basis: "umap", color: "leiden" })', {
    basis: true,
    components: true,
    ...QC_SCATTER_OPTION_NAMES,
  });
  const basis = opts.basis ?? "umap";
  const key = basisKey(adata, basis);
  const el = await adata.obsm.get(key);
  if (!("kind" in el) || el.kind !== "dense" || el.shape.length !== 2) {
    throw new InvalidArgumentError(`basis ${JSON.stringify(basis)}: obsm ${JSON.stringify(key)} must be a dense 2-d array`);
  }
  const coords = el as DenseArray;
  const [n, d] = coords.shape;
  const comps = parseComponents(opts.components, d, key);
  const xs = new Float64Array(n);
  const ys = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    xs[i] = Number(coords.data[i * d + comps[0] - 1]);
    ys[i] = Number(coords.data[i * d + comps[1] - 1]);
  }
  const label = axisLabel(basis, key);
  return drawPoints(adata, xs, ys, opts, {
    kind: "embedding",
    xlabel: `${label}${comps[0]}`,
    ylabel: `${label}${comps[1]}`,
    ticks: false,
    basis: key,
    components: comps,
    what: `embedding ${key}`,
  });
}

interface Frame {
  kind: "embedding" | "qcScatter";
  xlabel: string;
  ylabel: string;
  /** Tick marks and labels on both axes (pl.qcScatter), or a bare frame (embeddings, as scanpy). */
  ticks: boolean;
  basis: string | null;
  components: [number, number] | null;
  what: string;
}

/** The shared body of pl.embedding and pl.qcScatter: panels of points colored by keys. */
async function drawPoints(
  adata: AnnDataOOM,
  xs: Float64Array,
  ys: Float64Array,
  opts: EmbeddingOptions,
  frame: Frame,
): Promise<Plot<EmbeddingData>> {
  const n = xs.length;
  const colorKeys: (string | null)[] = opts.color == null ? [null] : Array.isArray(opts.color) ? opts.color : [opts.color];
  if (colorKeys.length === 0) colorKeys.push(null);
  const titles = Array.isArray(opts.title) ? opts.title : opts.title !== undefined ? [opts.title] : [];
  const naColor = normalizeColor(opts.naColor ?? NA_COLOR);
  const legendLoc = opts.legendLoc ?? "right margin";
  const pw = panelSide(opts.width, 320, "width");
  const ph = panelSide(opts.height, 320, "height");
  const pr = opts.pixelRatio ?? 2;
  if (!(Number.isFinite(pr) && pr > 0 && pr <= 4)) throw new InvalidArgumentError(`pixelRatio must be in (0, 4], got ${opts.pixelRatio}`);
  if (!["right margin", "on data", "none"].includes(legendLoc))
    throw new InvalidArgumentError(`legendLoc must be "right margin", "on data" or "none", got ${JSON.stringify(opts.legendLoc)}`);
  if (opts.ncols !== undefined && !(Number.isInteger(opts.ncols) && opts.ncols >= 1))
    throw new InvalidArgumentError(`ncols must be a positive integer, got ${opts.ncols}`);
  const size = opts.size ?? 120000 / Math.max(1, n);
  if (!(typeof size === "number" && Number.isFinite(size) && size > 0))
    throw new InvalidArgumentError(`size (marker area in pt²) must be a positive number, got ${opts.size}`);
  // Marker area s in pt² → radius in px at 100 dpi (matplotlib's default figure dpi).
  const radius = 0.5 * Math.sqrt(size) * (100 / 72) * pr;
  // Painting is synchronous (the stop button cannot break it): bound the work.
  const painted = n * Math.PI * radius * radius;
  if (painted > MAX_PAINTED_PIXELS) {
    const largest = MAX_PAINTED_PIXELS / (n * Math.PI) / (0.5 * (100 / 72) * pr) ** 2;
    throw new InvalidArgumentError(
      `size ${size} pt² is too large for ${n.toLocaleString("en-US")} cells (each marker would cover ${Math.round(Math.PI * radius * radius).toLocaleString("en-US")} px); use size ≤ ${fmt(largest)}`,
    );
  }

  const ext = { x: range(xs), y: range(ys) };
  const pad = (r: [number, number]): [number, number] => {
    // The span itself may overflow a double (-1e308 to 1e308): then from half of each end.
    const span = r[1] - r[0];
    const m = (Number.isFinite(span) ? span * 0.05 : (r[1] * 0.5 - r[0] * 0.5) * 0.1) || 0.5;
    const lo = r[0] - m;
    const hi = r[1] + m;
    // Near the largest double the margin would overflow: no margin then.
    return Number.isFinite(lo) && Number.isFinite(hi) ? [lo, hi] : r;
  };
  const xr = pad(ext.x);
  const yr = pad(ext.y);
  const sx = linear(xr[0], xr[1], 0, pw * pr);
  const sy = linear(yr[0], yr[1], ph * pr, 0);

  const MARGIN = frame.ticks ? TICKED : BARE;
  const panels: EmbeddingPanel[] = [];
  const rasters: Raster[] = [];
  const values: (KeyValues | null)[] = [];
  const read = await keysValues(
    adata,
    colorKeys.filter((k): k is string => k !== null),
    opts,
    "color",
    frame.kind,
  );
  for (let p = 0; p < colorKeys.length; p++) {
    const ck = colorKeys[p];
    const v = ck === null ? null : (read.get(ck) as KeyValues);
    values.push(v);
    const raster = new Raster(Math.round(pw * pr), Math.round(ph * pr));
    const order = drawOrder(v, opts.sortOrder ?? true, n);
    const na = parseHex(naColor) as [number, number, number];
    const title = titles[p] ?? ck ?? "";
    let panel: EmbeddingPanel;
    if (!v) {
      panel = { color: null, kind: "none", title, nMissing: 0 };
      for (const i of order) raster.disc(sx(xs[i]), sy(ys[i]), radius, na[0] / 255, na[1] / 255, na[2] / 255);
    } else if (v.kind === "categorical") {
      const colors = obsCategoryColors(adata, ck as string, v.categories, opts.palette);
      const rgb = colors.map((c) => parseHex(c) as [number, number, number]);
      const counts = new Array<number>(v.categories.length).fill(0);
      let nMissing = 0;
      for (const c of v.codes) c < 0 ? nMissing++ : counts[c]++;
      for (const i of order) {
        const c = v.codes[i];
        const col = c < 0 ? na : rgb[c];
        raster.disc(sx(xs[i]), sy(ys[i]), radius, col[0] / 255, col[1] / 255, col[2] / 255);
      }
      panel = { color: ck, kind: "categorical", title, categories: v.categories, colors, counts, nMissing };
    } else {
      let nMissing = 0;
      for (const x of v.values) if (!Number.isFinite(x)) nMissing++; // drawn in naColor, as matplotlib's masked values
      const [lo, hi] = colorRange(v.values, opts.vmin, opts.vmax);
      const scale = new ColorScale(opts.colorMap ?? "viridis", lo, hi);
      for (const i of order) {
        const c = scale.rgb01(v.values[i]);
        if (c) raster.disc(sx(xs[i]), sy(ys[i]), radius, c[0], c[1], c[2]);
        else raster.disc(sx(xs[i]), sy(ys[i]), radius, na[0] / 255, na[1] / 255, na[2] / 255);
      }
      panel = { color: ck, kind: "continuous", title, colorMap: scale.name, vmin: scale.vmin, vmax: scale.vmax, nMissing };
    }
    panels.push(panel);
    rasters.push(raster);
  }

  // Layout: a grid of panels, each with its own legend / color bar on the right.
  const legendW = panels.map((pn) => {
    if (pn.kind === "categorical" && legendLoc === "right margin") {
      const labels = [...(pn.categories ?? []), ...(pn.nMissing ? ["NA"] : [])].slice(0, LEGEND_MAX);
      const w = Math.max(0, ...labels.map((l) => textWidth(l))) + 24;
      return legendColumns(labels.length) * w + 8;
    }
    if (pn.kind === "continuous") return 62;
    return 0;
  });
  const ncols = Math.max(1, Math.min(panels.length, opts.ncols ?? 4));
  const colW = Array.from({ length: ncols }, (_, c) => Math.max(0, ...legendW.filter((_, i) => i % ncols === c)));
  // Row height: the panel, or its legend when that is taller.
  const nrows = Math.ceil(panels.length / ncols);
  const rowH = Array.from({ length: nrows }, (_, r) => {
    const legend = Math.max(0, ...panels.slice(r * ncols, (r + 1) * ncols).map((pn) => 16 + legendRows(pn, legendLoc) * 16));
    return MARGIN.top + Math.max(ph + MARGIN.bottom, legend) + MARGIN.gap;
  });
  const layout: PanelLayout[] = panels.map((_, i) => {
    const c = i % ncols;
    let x = 0;
    for (let k = 0; k < c; k++) x += MARGIN.left + pw + colW[k] + MARGIN.gap;
    const r = Math.floor(i / ncols);
    return { x, y: rowH.slice(0, r).reduce((a, b) => a + b, 0), legendW: colW[c] };
  });
  let W = 0;
  for (let k = 0; k < ncols; k++) W += MARGIN.left + pw + colW[k] + MARGIN.gap;
  // Whole pixels, so the figure PNG is exactly W × H at pixelRatio 1.
  W = Math.ceil(W);
  const H = Math.ceil(rowH.reduce((a, b) => a + b, 0));

  const svg = new Svg();
  const regions: HoverRegion[] = [];
  panels.forEach((pn, i) => {
    const { x, y } = layout[i];
    const ax = x + MARGIN.left;
    const ay = y + MARGIN.top;
    svg.text(ax + pw / 2, y + 17, pn.title, { "text-anchor": "middle", "font-size": 13, class: "aoom-title" });
    svg.el("image", {
      x: ax,
      y: ay,
      width: pw,
      height: ph,
      preserveAspectRatio: "none",
      href: `data:image/png;base64,${rasters[i].png().toString("base64")}`,
      class: "aoom-points",
    });
    svg.el("rect", { x: ax, y: ay, width: pw, height: ph, fill: "none", stroke: "#000000", "stroke-width": 0.8 });
    if (frame.ticks) {
      const tx = linear(xr[0], xr[1], ax, ax + pw);
      const ty = linear(yr[0], yr[1], ay + ph, ay);
      for (const t of niceTicks(ext.x[0], ext.x[1], 5)) {
        svg.el("line", { x1: tx(t), y1: ay + ph, x2: tx(t), y2: ay + ph + 4, stroke: "#000000", "stroke-width": 0.8 });
        svg.text(tx(t), ay + ph + 15, fmt(t), { "text-anchor": "middle", "font-size": 10 });
      }
      for (const t of niceTicks(ext.y[0], ext.y[1], 5)) {
        svg.el("line", { x1: ax - 4, y1: ty(t), x2: ax, y2: ty(t), stroke: "#000000", "stroke-width": 0.8 });
        svg.text(ax - 6, ty(t) + 3.5, fmt(t), { "text-anchor": "end", "font-size": 10 });
      }
      svg.text(ax + pw / 2, ay + ph + 32, frame.xlabel, { "text-anchor": "middle", "font-size": 11 });
      const lx = ax - 46;
      const ly = ay + ph / 2;
      svg.text(lx, ly, frame.ylabel, { "text-anchor": "middle", "font-size": 11, transform: `rotate(-90 ${lx} ${ly})` });
    } else {
      svg.text(ax + 2, ay + ph + 15, frame.xlabel, { "font-size": 11 });
      svg.text(ax - 8, ay + ph - 2, frame.ylabel, { "font-size": 11, transform: `rotate(-90 ${ax - 8} ${ay + ph - 2})` });
    }
    const v = values[i];
    if (pn.kind === "categorical" && v?.kind === "categorical") {
      const cats = pn.categories ?? [];
      const cols = pn.colors ?? [];
      if (legendLoc === "right margin") {
        const all = cats.map((c, k) => ({ label: c, color: cols[k], count: pn.counts?.[k] ?? 0 }));
        if (pn.nMissing) all.push({ label: "NA", color: naColor, count: pn.nMissing });
        const entries = all.slice(0, LEGEND_MAX);
        const nc = legendColumns(entries.length);
        const perCol = Math.ceil(entries.length / nc);
        const colWidth = (layout[i].legendW - 8) / nc;
        entries.forEach((e, k) => {
          const lx = ax + pw + 10 + Math.floor(k / perCol) * colWidth;
          const ly = ay + 8 + (k % perCol) * 16;
          svg.el("circle", { cx: lx + 5, cy: ly, r: 4.5, fill: e.color });
          svg.text(lx + 14, ly + 4, e.label, { "font-size": 11 });
          regions.push({ x: lx, y: ly - 8, w: colWidth, h: 16, label: `${e.label}: ${e.count.toLocaleString("en-US")} cells` });
        });
        if (all.length > entries.length) {
          svg.text(ax + pw + 10, ay + 12 + perCol * 16, `... and ${(all.length - entries.length).toLocaleString("en-US")} more`, {
            "font-size": 11,
          });
        }
      } else if (legendLoc === "on data") {
        // One pass: each category's finite coordinates, for its median.
        const px: number[][] = cats.map(() => []);
        const py: number[][] = cats.map(() => []);
        for (let j = 0; j < v.codes.length; j++) {
          const k = v.codes[j];
          if (k >= 0 && Number.isFinite(xs[j]) && Number.isFinite(ys[j])) {
            px[k].push(xs[j]);
            py[k].push(ys[j]);
          }
        }
        cats.forEach((c, k) => {
          if (!px[k].length) return;
          const mx = ax + sx(median(px[k])) / pr;
          const my = ay + sy(median(py[k])) / pr;
          svg.text(mx, my, c, {
            "text-anchor": "middle",
            "font-weight": "bold",
            "font-size": 11,
            stroke: "#ffffff",
            "stroke-width": 2.5,
            "paint-order": "stroke",
          });
        });
      }
    } else if (pn.kind === "continuous") {
      colorBar(svg, ax + pw + 10, ay + ph * 0.05, 12, ph * 0.9, pn.colorMap ?? "viridis", pn.vmin ?? 0, pn.vmax ?? 1);
      regions.push({ x: ax + pw + 10, y: ay, w: 50, h: ph, label: `${pn.title}: ${fmt(pn.vmin ?? 0)} … ${fmt(pn.vmax ?? 1)}` });
    }
  });

  const data: EmbeddingData = {
    basis: frame.basis,
    components: frame.components,
    x: frame.kind === "qcScatter" ? frame.xlabel : null,
    y: frame.kind === "qcScatter" ? frame.ylabel : null,
    nObs: n,
    extent: ext,
    panels,
  };
  const what = panels.map((p) => p.color ?? "no color").join(", ");
  return new Plot({
    kind: frame.kind,
    title: panels.map((p) => p.title).join(" | "),
    width: W,
    height: H,
    svg: svg.document(W, H),
    ops: svg.ops,
    data,
    regions,
    text: `<${frame.what} of ${n.toLocaleString("en-US")} cells colored by ${what}>`,
    summary: {
      basis: frame.basis,
      x: data.x,
      y: data.y,
      nObs: n,
      // Small: at most LEGEND_MAX categories per panel.
      panels: panels.map(({ counts: _c, categories, colors, ...rest }) => ({
        ...rest,
        categories: categories?.slice(0, LEGEND_MAX),
        colors: colors?.slice(0, LEGEND_MAX),
      })),
    },
  });
}

function range(v: Float64Array): [number, number] {
  let lo = Infinity;
  let hi = -Infinity;
  for (const x of v) {
    if (Number.isFinite(x)) {
      if (x < lo) lo = x;
      if (x > hi) hi = x;
    }
  }
  return lo > hi ? [0, 1] : [lo, hi];
}

function median(v: number[]): number {
  const s = [...v].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** A vertical color bar: the colormap as a 1 × 256 PNG, with ticks. */
export function colorBar(svg: Svg, x: number, y: number, w: number, h: number, cmap: string, vmin: number, vmax: number): void {
  const scale = new ColorScale(cmap, 0, 255);
  const px = new Uint8Array(256 * 4);
  for (let k = 0; k < 256; k++) {
    const c = scale.rgb01(255 - k) as number[];
    px.set([Math.round(c[0] * 255), Math.round(c[1] * 255), Math.round(c[2] * 255), 255], k * 4);
  }
  svg.el("image", {
    x,
    y,
    width: w,
    height: h,
    preserveAspectRatio: "none",
    href: `data:image/png;base64,${encodePng(px, 1, 256).toString("base64")}`,
    class: "aoom-colorbar",
  });
  svg.el("rect", { x, y, width: w, height: h, fill: "none", stroke: "#000000", "stroke-width": 0.6 });
  const ty = linear(vmin, vmax, y + h, y);
  for (const t of niceTicks(vmin, vmax, 5)) {
    const yy = ty(t);
    svg.el("line", { x1: x + w, y1: yy, x2: x + w + 3, y2: yy, stroke: "#000000", "stroke-width": 0.6 });
    svg.text(x + w + 5, yy + 3.5, fmt(t), { "font-size": 10 });
  }
}

export type QcScatterOptions = Omit<EmbeddingOptions, "basis" | "components">;

/** Every option of pl.qcScatter, hence of pl.embedding but its basis and components. */
const QC_SCATTER_OPTION_NAMES: OptionNames<QcScatterOptions> = {
  color: true,
  palette: true,
  colorMap: true,
  vmin: true,
  vmax: true,
  size: "num",
  title: true,
  legendLoc: true,
  naColor: true,
  sortOrder: "bool",
  width: "num",
  height: "num",
  ncols: "num",
  pixelRatio: "num",
  useRaw: "bool",
  layer: true,
  geneIndex: true,
  signal: true,
  onProgress: true,
};

/**
 * pl.qcScatter: two obs columns or genes against each other (scanpy's
 * `sc.pl.scatter(adata, x, y, color=…)`), e.g. the QC view total_counts ×
 * n_genes_by_counts colored by pct_counts_mt. Same colors and draw order
 * as pl.embedding, with ticked axes; cells with NaN x or y are not drawn.
 * (Named apart from the interactive WebGL `pl.scatter` of the widgets.)
 *
 * @example
 * await pl.qcScatter(adata, "total_counts", "n_genes_by_counts", { color: "pct_counts_mt" });
 */
export async function qcScatter(adata: AnnDataOOM, x: string, y: string, opts: QcScatterOptions = {}): Promise<Plot<EmbeddingData>> {
  checkAnnData("pl.qcScatter", adata);
  checkOptions<QcScatterOptions>(
    "pl.qcScatter",
    opts,
    'pl.qcScatter(adata, "total_counts", "n_genes_by_counts", { color: "pct_counts_mt" })',
    QC_SCATTER_OPTION_NAMES,
  );
  const read = await keysValues(adata, [x, y], opts, "key", "qcScatter");
  const col = (k: string) => {
    const v = read.get(k) as KeyValues;
    if (v.kind !== "continuous")
      throw new InvalidArgumentError(`key ${JSON.stringify(k)} is categorical; scatter needs numbers on both axes`);
    return v.values;
  };
  return drawPoints(adata, col(x), col(y), opts as EmbeddingOptions, {
    kind: "qcScatter",
    xlabel: x,
    ylabel: y,
    ticks: true,
    basis: null,
    components: null,
    what: `scatter ${x} × ${y}`,
  });
}
