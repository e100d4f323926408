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

/** A Float32/Int32 column of a one-table IPC stream (copied when it spans batches). */
export function ipcColumn(bytes: Uint8Array, name: string): Float32Array | Int32Array | null {
  const table = tableFromIPC(bytes);
  const col = table.getChild(name);
  if (!col) return null;
  const arr = col.toArray() as unknown;
  return arr instanceof Float32Array || arr instanceof Int32Array ? arr : null;
}

/** x/y scaled by one factor (keeping the aspect ratio) and centered into [-0.95, 0.95]. */
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
    nx[i] = Number.isFinite(x[i]) ? (x[i] - cx) * s : 0;
    ny[i] = Number.isFinite(y[i]) ? (y[i] - cy) * s : 0;
  }
  return { x: nx, y: ny };
}

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

/** What regl-scatterplot needs to color: one value per point and the color list it indexes. */
export interface PointColors {
  /** Per point: a category index (categorical) or a value in [0, 1] (continuous). */
  values: Float32Array;
  palette: string[];
  categorical: boolean;
}

/**
 * Per-point color values. Categories index `colors` (missing → an extra
 * last color, scanpy's na_color); continuous values map [vmin, vmax] onto
 * the colormap (missing → the lowest color).
 */
export function pointColors(spec: ColorSpec, n: number, data: Float32Array | Int32Array | null): PointColors {
  const values = new Float32Array(n);
  if (spec.kind === "categorical" && data) {
    const na = spec.categories.length;
    for (let i = 0; i < n; i++) values[i] = data[i] >= 0 && data[i] < na ? data[i] : na;
    return { values, palette: [...spec.colors.slice(0, na), spec.naColor], categorical: true };
  }
  if (spec.kind === "continuous" && data) {
    const span = spec.vmax - spec.vmin;
    for (let i = 0; i < n; i++) {
      const v = data[i];
      values[i] = Number.isFinite(v) && span > 0 ? Math.min(1, Math.max(0, (v - spec.vmin) / span)) : 0;
    }
    return { values, palette: interpolateColormap(spec.colormap), categorical: false };
  }
  return { values, palette: ["#4c72b0"], categorical: true };
}
