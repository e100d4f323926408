/**
 * Colors as scanpy/matplotlib pick them: category palettes (scanpy's
 * `_set_default_colors_for_categorical_obs` rules) and continuous
 * colormaps (matplotlib's 256-entry lookup tables, Normalize(vmin, vmax)).
 */
import { InvalidArgumentError } from "../errors";
import { percentile } from "../percentile";
import { COLORMAP_LUTS, DEFAULT_20, DEFAULT_28, DEFAULT_102, MPL_CYCLE, NAMED_COLORS, QUALITATIVE } from "./colormap-data";

export { DEFAULT_20, DEFAULT_28, DEFAULT_102, MPL_CYCLE };

/** scanpy's `na_color` ("lightgray"). */
export const NA_COLOR = "#d3d3d3";

export type Rgb = [number, number, number];

/** "#rrggbb" (or "#rrggbbaa", alpha ignored) → [r, g, b] in 0..255; null if not a hex color. */
export function parseHex(color: string): Rgb | null {
  const m = /^#([0-9a-fA-F]{6})([0-9a-fA-F]{2})?$/.exec(color.trim());
  if (!m) return null;
  const v = Number.parseInt(m[1], 16);
  return [(v >> 16) & 255, (v >> 8) & 255, v & 255];
}

export function toHex([r, g, b]: Rgb): string {
  const h = (x: number) =>
    Math.max(0, Math.min(255, Math.round(x)))
      .toString(16)
      .padStart(2, "0");
  return `#${h(r)}${h(g)}${h(b)}`;
}

/**
 * The default colors of `n` categories, as scanpy picks them when
 * `uns[key_colors]` is missing or too short: matplotlib's color cycle
 * (tab10) when it is long enough, else default_20 / default_28 /
 * default_102, else all grey.
 */
export function defaultPalette(n: number): string[] {
  if (n <= MPL_CYCLE.length) return MPL_CYCLE.slice(0, n);
  if (n <= 20) return DEFAULT_20.slice(0, n);
  if (n <= 28) return DEFAULT_28.slice(0, n);
  if (n <= DEFAULT_102.length) return DEFAULT_102.slice(0, n);
  return new Array<string>(n).fill("#808080");
}

/** What `palette` may be: a colormap name ("Set1", "tab20", "viridis"), colors (cycled), or a color per category. */
export type Palette = string | string[] | Record<string, string>;

/**
 * n colors sampled from a named colormap as scanpy does for `palette="Set1"`:
 * `cmap(np.linspace(0, 1, n))`, i.e. entry trunc(x · N) (N − 1 at x = 1) of
 * its N colors.
 */
function colormapPalette(name: string, n: number): string[] {
  const listed = Object.hasOwn(QUALITATIVE, name) ? QUALITATIVE[name] : undefined;
  const isMap = Object.hasOwn(COLORMAP_LUTS, name) || (name.endsWith("_r") && Object.hasOwn(COLORMAP_LUTS, name.slice(0, -2)));
  const lut = listed ? null : isMap ? colormapLut(name) : null;
  if (!listed && !lut)
    throw new InvalidArgumentError(
      `palette ${JSON.stringify(name)} is not a colormap name (${[...Object.keys(QUALITATIVE), ...colormapNames()].join(", ")}); give a list of colors or { category: color } instead`,
    );
  const size = listed ? listed.length : (lut as Float64Array).length / 3;
  const step = n > 1 ? 1 / (n - 1) : 0;
  return Array.from({ length: n }, (_, i) => {
    const x = i === n - 1 && n > 1 ? 1 : i * step; // numpy's linspace ends exactly at 1
    const at = Math.min(Math.trunc(x * size), size - 1);
    if (listed) return listed[at];
    const l = lut as Float64Array;
    return toHex([l[3 * at] * 255, l[3 * at + 1] * 255, l[3 * at + 2] * 255]);
  });
}

/**
 * Category colors: an explicit `palette` (a colormap name sampled over the
 * categories, a list cycled, or a color per category), else
 * `uns[key_colors]` when it has at least one color per category, else the
 * defaults.
 */
export function categoryColors(categories: string[], uns: unknown, palette?: Palette): string[] {
  const n = categories.length;
  if (palette !== undefined && palette !== null) {
    if (typeof palette === "string") return colormapPalette(palette, n);
    if (typeof palette !== "object")
      throw new InvalidArgumentError(`palette must be a colormap name, a list of colors or { category: color }, got ${String(palette)}`);
    if (Array.isArray(palette)) {
      if (palette.length === 0) throw new InvalidArgumentError("palette is empty");
      return categories.map((_, i) => normalizeColor(palette[i % palette.length]));
    }
    return categories.map((c) => {
      const col = Object.hasOwn(palette, c) ? palette[c] : undefined;
      if (col === undefined) throw new InvalidArgumentError(`palette has no color for category ${JSON.stringify(c)}`);
      return normalizeColor(col);
    });
  }
  // scanpy's _validate_palette: every stored color must be a color (names translated), else defaults.
  const stored = unsColors(uns);
  if (stored && stored.length >= n) {
    const valid = stored.slice(0, n).map(tryColor);
    if (valid.every((c) => c !== null)) return valid as string[];
  }
  return defaultPalette(n);
}

/**
 * The colors of an obs column's categories (categoryColors), left in
 * `uns[key_colors]` as scanpy's plots leave them (`_get_palette`: a
 * palette given, defaults for missing or too few colors, invalid ones
 * replaced), so that later plots and the written file use the same
 * colors. uns is set only when it would change.
 */
export function obsCategoryColors(adata: { uns: Record<string, unknown> }, key: string, categories: string[], palette?: Palette): string[] {
  const colorsKey = `${key}_colors`;
  const colors = categoryColors(categories, adata.uns[colorsKey], palette);
  const stored = unsColors(adata.uns[colorsKey]);
  const same = stored !== null && stored.length === colors.length && stored.every((c, i) => tryColor(c) === colors[i]);
  if (!same) adata.uns[colorsKey] = colors;
  return colors;
}

function unsColors(v: unknown): string[] | null {
  // An n × 3 or n × 4 array of floats in [0, 1] (matplotlib RGB(A) rows, as
  // some tools store colors): scanpy's _validate_palette takes those too.
  const d = v as { kind?: unknown; shape?: unknown; data?: ArrayLike<number> } | null;
  if (d && d.kind === "dense" && Array.isArray(d.shape) && d.shape.length === 2 && (d.shape[1] === 3 || d.shape[1] === 4) && d.data) {
    const [n, w] = d.shape as [number, number];
    const data = d.data;
    if (!Array.from(data).every((x) => x >= 0 && x <= 1)) return null;
    return Array.from({ length: n }, (_, i) => toHex([data[i * w] * 255, data[i * w + 1] * 255, data[i * w + 2] * 255]));
  }
  if (Array.isArray(v)) return v.map(String);
  if (v && typeof v === "object" && "length" in v && typeof (v as { length: unknown }).length === "number") {
    return Array.from(v as ArrayLike<unknown>, String);
  }
  return null;
}

/** Lower-case #rrggbb (matplotlib's `to_hex`) of a hex color (#rgb, #rrggbb, #rrggbbaa) or a color name; null if neither. */
export function tryColor(c: string): string | null {
  const s = String(c).trim();
  // Own keys only: "constructor" or "__proto__" are not colors.
  const named = Object.hasOwn(NAMED_COLORS, s)
    ? NAMED_COLORS[s]
    : Object.hasOwn(NAMED_COLORS, s.toLowerCase())
      ? NAMED_COLORS[s.toLowerCase()]
      : undefined;
  if (named) return named;
  // matplotlib's "CN": the N-th color of the default cycle (tab10, N mod 10), as scanpy users write it.
  const cycle = /^C(\d+)$/.exec(s);
  if (cycle) return MPL_CYCLE[Number(cycle[1]) % MPL_CYCLE.length];
  // matplotlib's grey levels: a number in [0, 1] as a string ("0.5").
  if (/^\s*(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$/.test(s)) {
    const g = Number(s);
    if (g >= 0 && g <= 1) return toHex([g * 255, g * 255, g * 255]);
  }
  const short = /^#([0-9a-fA-F])([0-9a-fA-F])([0-9a-fA-F])$/.exec(s);
  if (short) return `#${short[1]}${short[1]}${short[2]}${short[2]}${short[3]}${short[3]}`.toLowerCase();
  const rgb = parseHex(s);
  return rgb ? toHex(rgb) : null;
}

/** tryColor, with a typed error naming the value. */
export function normalizeColor(c: string): string {
  const out = tryColor(c);
  if (out === null) throw new InvalidArgumentError(`not a color: ${JSON.stringify(c)} (use #rrggbb or a matplotlib color name)`);
  return out;
}

const lutCache = new Map<string, Float64Array>();

/** Names of the colormaps available. */
export function colormapNames(): string[] {
  return Object.keys(COLORMAP_LUTS);
}

/**
 * The 256 × 3 lookup table (0..1) of a matplotlib colormap; `<name>_r` is
 * the table reversed, as matplotlib's reversed maps are (entry i of the
 * reversal is the map at 1 − i/255, i.e. entry 255 − i).
 */
export function colormapLut(name: string): Float64Array {
  let lut = lutCache.get(name);
  if (lut) return lut;
  const own = (n: string) => (typeof n === "string" && Object.hasOwn(COLORMAP_LUTS, n) ? COLORMAP_LUTS[n] : undefined);
  const b64 = own(name);
  const reversed = !b64 && typeof name === "string" && name.endsWith("_r") && own(name.slice(0, -2)) !== undefined;
  if (!b64 && !reversed)
    throw new InvalidArgumentError(
      `unknown colormap ${JSON.stringify(name)}; available: ${colormapNames().join(", ")} (and each reversed, as "<name>_r")`,
    );
  if (reversed) {
    const base = colormapLut(name.slice(0, -2));
    lut = new Float64Array(base.length);
    const n = base.length / 3;
    for (let i = 0; i < n; i++) lut.set(base.subarray(3 * (n - 1 - i), 3 * (n - i)), 3 * i);
  } else {
    const raw = Buffer.from(b64 as string, "base64");
    lut = new Float64Array(raw.length / 2);
    for (let i = 0; i < lut.length; i++) lut[i] = raw.readUInt16LE(2 * i) / 65535;
  }
  lutCache.set(name, lut);
  return lut;
}

/**
 * A continuous color scale as matplotlib applies it: t = (v − vmin) /
 * (vmax − vmin) (0 when vmin = vmax), clipped to [0, 1], entry
 * min(floor(t · 256), 255) of the table. NaN → null (scanpy draws na_color).
 */
export class ColorScale {
  readonly lut: Float64Array;
  constructor(
    readonly name: string,
    readonly vmin: number,
    readonly vmax: number,
  ) {
    this.lut = colormapLut(name);
    if (!(Number.isFinite(vmin) && Number.isFinite(vmax)))
      throw new InvalidArgumentError(`vmin and vmax must be finite numbers, got ${vmin} and ${vmax}`);
  }

  index(v: number): number {
    // ±Infinity too: matplotlib masks non-finite values ("bad": the NA colour).
    if (!Number.isFinite(v)) return -1;
    const span = this.vmax - this.vmin;
    const t = span === 0 ? 0 : (v - this.vmin) / span;
    const n = this.lut.length / 3;
    return Math.max(0, Math.min(n - 1, Math.floor(t * n)));
  }

  /** [r, g, b] in 0..1, or null for NaN. */
  rgb01(v: number): Rgb | null {
    const i = this.index(v);
    if (i < 0) return null;
    return [this.lut[3 * i], this.lut[3 * i + 1], this.lut[3 * i + 2]];
  }

  hex(v: number, na = NA_COLOR): string {
    const c = this.rgb01(v);
    return c ? toHex([c[0] * 255, c[1] * 255, c[2] * 255]) : na;
  }
}

/** A color limit as scanpy takes it: a number, or "pNN" for the NN-th percentile of the values. */
export type ColorLimit = number | `p${number}`;

/**
 * vmin / vmax of a continuous color scale: the finite values' minimum and
 * maximum (NaN and ±Infinity are left out, as matplotlib masks them), or
 * the limits given, numbers or scanpy's percentile strings ("p1", "p99.5").
 */
export function colorRange(values: ArrayLike<number>, vmin?: ColorLimit, vmax?: ColorLimit): [number, number] {
  let finite: Float64Array | undefined;
  let notNaN: Float64Array | undefined;
  const sortedFinite = () => {
    if (!finite) {
      finite = Float64Array.from(Array.prototype.filter.call(values, (v: number) => Number.isFinite(v)) as number[]);
      finite.sort();
    }
    return finite;
  };
  // np.nanpercentile (scanpy's "pNN") keeps ±Infinity in the sample.
  const sortedNotNaN = () => {
    if (!notNaN) {
      notNaN = Float64Array.from(Array.prototype.filter.call(values, (v: number) => !Number.isNaN(v)) as number[]);
      notNaN.sort();
    }
    return notNaN;
  };
  const limit = (v: ColorLimit | undefined, name: string, end: "min" | "max"): number => {
    if (v === undefined || v === null) {
      const f = sortedFinite();
      return f.length ? f[end === "min" ? 0 : f.length - 1] : end === "min" ? 0 : 1;
    }
    if (typeof v === "number") {
      if (!Number.isFinite(v)) throw new InvalidArgumentError(`${name} must be a finite number or "pNN" (a percentile), got ${v}`);
      return v;
    }
    const m = typeof v === "string" ? /^p(\d+(?:\.\d+)?)$/.exec(v) : null;
    const q = m ? Number(m[1]) : Number.NaN;
    if (!(q >= 0 && q <= 100))
      throw new InvalidArgumentError(`${name} must be a finite number or "pNN" with NN in 0..100, got ${JSON.stringify(v)}`);
    const f = sortedNotNaN();
    if (!f.length) return end === "min" ? 0 : 1;
    const x = percentile(f, q);
    if (!Number.isFinite(x))
      throw new InvalidArgumentError(
        `${name} ${JSON.stringify(v)} is ${x}: the values hold ±Infinity there; give a number or a lower percentile`,
      );
    return x;
  };
  let lo = limit(vmin, "vmin", "min");
  let hi = limit(vmax, "vmax", "max");
  // matplotlib refuses these too ("minvalue must be less than or equal to maxvalue").
  if (lo > hi) throw new InvalidArgumentError(`vmin (${lo}) must not be greater than vmax (${hi})`);
  if (lo === hi) {
    // matplotlib widens an empty range (transforms.nonsingular, expander
    // 0.1): a constant colours every cell with the map's middle, not its
    // bottom (a gene with no counts in the view, a constant column).
    [lo, hi] = hi === 0 ? [-0.1, 0.1] : [lo - 0.1 * Math.abs(lo), hi + 0.1 * Math.abs(hi)];
  }
  if (!Number.isFinite(hi - lo)) throw new InvalidArgumentError(`vmax − vmin overflows (${lo} to ${hi}); give a narrower range`);
  return [lo, hi];
}
