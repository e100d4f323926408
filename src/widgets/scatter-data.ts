/**
 * The scatter's data on the wire (see src/engine/interactive): Arrow IPC
 * streams decoded into typed arrays, positions normalized into the
 * [-1, 1] square regl-scatterplot draws, colors into its per-point values.
 */
import { tableFromIPC } from "apache-arrow";

export type { ColorSpec } from "./wire-types";

import type { ColorSpec } from "./wire-types";

/** Bytes of a widget buffer (a DataView from @jupyter-widgets, or any view). */
export function bytesOf(v: unknown): Uint8Array | null {
  if (v instanceof Uint8Array) return v;
  if (ArrayBuffer.isView(v)) return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
  if (v instanceof ArrayBuffer) return new Uint8Array(v);
  return null;
}

/**
 * Drops a closed widget model's binary attributes (sets them to null, no
 * change events). JupyterLab's comm objects stay connected to their
 * kernel's signals after they close, and through their close handler
 * keep the model: without this every closed explorer kept its positions
 * and colors (12 MB at 1M cells).
 */
export function releaseBuffers(attributes: Record<string, unknown>, keys: readonly string[]): void {
  for (const k of keys) if (k in attributes) attributes[k] = null;
}

/** A Float32/Int32 column of a one-table IPC stream (copied when it spans batches). */
export function ipcColumn(bytes: Uint8Array, name: string): Float32Array | Int32Array | null {
  const table = tableFromIPC(bytes);
  const col = table.getChild(name);
  if (!col) return null;
  const arr = col.toArray() as unknown;
  return arr instanceof Float32Array || arr instanceof Int32Array ? arr : null;
}

/**
 * Where a cell without finite coordinates goes: far outside the [-1, 1]
 * square, so it is never under the cursor or a lasso (its color is also
 * transparent, see pointColors). The static plot leaves such cells out.
 */
export const HIDDEN_AT = 1e6;

/** x/y scaled by one factor (keeping the aspect ratio) and centered into [-0.95, 0.95]; non-finite cells at HIDDEN_AT. */
export function normalizePositions(x: Float32Array, y: Float32Array): { x: Float32Array; y: Float32Array } {
  let x0 = Number.POSITIVE_INFINITY;
  let x1 = Number.NEGATIVE_INFINITY;
  let y0 = Number.POSITIVE_INFINITY;
  let y1 = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < x.length; i++) {
    if (Number.isFinite(x[i]) && Number.isFinite(y[i])) {
      if (x[i] < x0) x0 = x[i];
      if (x[i] > x1) x1 = x[i];
      if (y[i] < y0) y0 = y[i];
      if (y[i] > y1) y1 = y[i];
    }
  }
  const span = Math.max(x1 - x0, y1 - y0);
  const s = span > 0 && Number.isFinite(span) ? 1.9 / span : 1;
  const cx = Number.isFinite(x0) ? (x0 + x1) / 2 : 0;
  const cy = Number.isFinite(y0) ? (y0 + y1) / 2 : 0;
  const nx = new Float32Array(x.length);
  const ny = new Float32Array(y.length);
  for (let i = 0; i < x.length; i++) {
    const ok = Number.isFinite(x[i]) && Number.isFinite(y[i]);
    nx[i] = ok ? (x[i] - cx) * s : HIDDEN_AT;
    ny[i] = ok ? (y[i] - cy) * s : HIDDEN_AT;
  }
  return { x: nx, y: ny };
}

/**
 * The camera distance at which regl-scatterplot shows all of the [-1, 1]
 * square on a `width` × `height` canvas. It maps y ∈ [-d, d] to the
 * canvas height and x ∈ [-d·w/h, d·w/h] to its width, so a portrait canvas
 * (w < h) needs d = h / w, or the left and right of the embedding are cut off.
 */
export function fitDistance(width: number, height: number): number {
  if (!(width > 0 && height > 0)) return 1;
  return Math.max(1, height / width);
}

/** How far the wheel may zoom: in to 1/MAX_ZOOM_IN of the fitted view, out to MAX_ZOOM_OUT times it. */
export const MAX_ZOOM_IN = 2000;
export const MAX_ZOOM_OUT = 4;

function hex(c: string): [number, number, number] {
  const m = /^#?([0-9a-f]{6})/i.exec(c);
  const v = m ? Number.parseInt(m[1], 16) : 0x888888;
  return [(v >> 16) & 255, (v >> 8) & 255, v & 255];
}

function toHex([r, g, b]: [number, number, number]): string {
  return `#${[r, g, b].map((v) => Math.round(v).toString(16).padStart(2, "0")).join("")}`;
}

/** `n` colors linearly interpolated along the stops of a colormap. */
export function interpolateColormap(stops: string[], n = 256): string[] {
  if (stops.length === 0) return ["#888888"];
  if (stops.length === 1) return [stops[0]];
  const rgb = stops.map(hex);
  return Array.from({ length: n }, (_, i) => {
    const t = (i / (n - 1)) * (rgb.length - 1);
    const k = Math.min(Math.floor(t), rgb.length - 2);
    const f = t - k;
    return toHex([0, 1, 2].map((c) => rgb[k][c] + f * (rgb[k + 1][c] - rgb[k][c])) as [number, number, number]);
  });
}

/** An RGBA color, components in [0, 1]. */
export type Rgba = [number, number, number, number];
/** The color of cells without coordinates. */
export const TRANSPARENT: Rgba = [1, 1, 1, 0];

/** What regl-scatterplot needs to color: one palette index per point and the palette. */
export interface PointColors {
  /** Per point: an index into `palette`. */
  values: Float32Array;
  palette: (string | Rgba)[];
  categorical: true;
}

/** `#rrggbb` or the fallback: colors from a saved output are data, never CSS. */
export function safeColor(c: unknown, fallback = "#888888"): string {
  return typeof c === "string" && /^#[0-9a-fA-F]{6}$/.test(c) ? c : fallback;
}

/**
 * Per-point palette indices. Categories index their colors, missing ones
 * scanpy's na_color; continuous values pick one of 256 colormap entries as
 * matplotlib does (t = (v − vmin) / (vmax − vmin) clipped, entry
 * min(floor(256 t), 255)), NaN and ±∞ na_color (scanpy masks them). Cells
 * whose position is not finite (`x` at HIDDEN_AT) get a transparent color.
 */
export function pointColors(spec: ColorSpec, n: number, data: Float32Array | Int32Array | null, x?: Float32Array): PointColors {
  const values = new Float32Array(n);
  let palette: (string | Rgba)[];
  if (spec.kind === "categorical" && data && data.length === n) {
    const na = spec.categories.length;
    for (let i = 0; i < n; i++) values[i] = data[i] >= 0 && data[i] < na ? data[i] : na;
    palette = [...spec.categories.map((_, i) => safeColor(spec.colors[i], safeColor(spec.naColor))), safeColor(spec.naColor)];
  } else if (spec.kind === "continuous" && data && data.length === n) {
    const lut = interpolateColormap(spec.colormap.map((c) => safeColor(c)));
    const span = spec.vmax - spec.vmin;
    for (let i = 0; i < n; i++) {
      const v = data[i];
      if (!Number.isFinite(v)) values[i] = lut.length;
      else {
        const t = span > 0 ? (v - spec.vmin) / span : 0;
        values[i] = Math.max(0, Math.min(lut.length - 1, Math.floor(t * lut.length)));
      }
    }
    palette = [...lut, safeColor(spec.naColor, "#d3d3d3")];
  } else palette = ["#4c72b0"];
  if (x) {
    const hidden = palette.length;
    for (let i = 0; i < n; i++) if (x[i] === HIDDEN_AT) values[i] = hidden;
  }
  palette.push(TRANSPARENT);
  return { values, palette, categorical: true };
}

/**
 * A color spec from the wire, checked: a saved output from another version
 * (fields missing or of another type) colors nothing rather than throwing.
 */
export function checkedSpec(raw: unknown): { spec: ColorSpec; problem: string | null } {
  const none: ColorSpec = { kind: "none", key: null };
  if (raw === null || raw === undefined) return { spec: none, problem: null };
  const s = raw as Partial<Record<string, unknown>>;
  const strings = (v: unknown) => Array.isArray(v) && v.every((x) => typeof x === "string");
  if (s.kind === "none") return { spec: none, problem: null };
  if (s.kind === "categorical" && strings(s.categories) && strings(s.colors))
    return {
      spec: { ...(s as ColorSpec & { kind: "categorical" }), key: String(s.key ?? ""), naColor: safeColor(s.naColor, "#d3d3d3") },
      problem: null,
    };
  if (
    s.kind === "continuous" &&
    typeof s.vmin === "number" &&
    typeof s.vmax === "number" &&
    Number.isFinite(s.vmin) &&
    Number.isFinite(s.vmax) &&
    strings(s.colormap) &&
    (s.colormap as string[]).length > 0
  )
    return {
      spec: { ...(s as ColorSpec & { kind: "continuous" }), key: String(s.key ?? ""), naColor: safeColor(s.naColor, "#d3d3d3") },
      problem: null,
    };
  return { spec: none, problem: "cannot show these colors (an output of another anndata-oom version?)" };
}
