/**
 * What the interactive scatter is colored by: the same key rules and
 * colors as the static plots (src/engine/pl: obs column or gene, scanpy's
 * palettes and matplotlib colormaps), turned into what travels to the
 * browser — per-cell category codes or values, and the color lists.
 */
import type { AnnDataOOM } from "../anndata";
import { type ColorLimit, colormapLut, colorRange, NA_COLOR, normalizeColor, obsCategoryColors, type Palette, toHex } from "../pl/colors";
import { type GeneSource, keyValues } from "../pl/values";

export type ColorSpec =
  | { kind: "none"; key: null }
  | { kind: "categorical"; key: string; source: "obs"; categories: string[]; colors: string[]; naColor: string }
  | { kind: "continuous"; key: string; source: "obs" | "gene"; vmin: number; vmax: number; colormap: string[]; naColor: string };

/** A color spec and, per cell, a category code (−1 missing) or a value (NaN missing). */
export interface ResolvedColor {
  spec: ColorSpec;
  codes?: Int32Array;
  values?: Float32Array;
}

export interface ColorOptions extends GeneSource {
  /** Category colors: a colormap name, a list (cycled), or category → color; default uns[`${key}_colors`] or scanpy's. */
  palette?: Palette;
  /** matplotlib colormap for continuous values (default "viridis"). */
  colorMap?: string;
  /** Color limits: numbers, or scanpy's percentiles ("p1", "p99"); default the finite values' range. */
  vmin?: ColorLimit;
  vmax?: ColorLimit;
  naColor?: string;
}

/** The 256 colors of a matplotlib colormap as #rrggbb. */
export function colormapHex(name: string): string[] {
  const lut = colormapLut(name);
  return Array.from({ length: lut.length / 3 }, (_, i) =>
    toHex([Math.round(lut[3 * i] * 255), Math.round(lut[3 * i + 1] * 255), Math.round(lut[3 * i + 2] * 255)]),
  );
}

/** Resolves `key` as scanpy's `color=`: an obs column (categories or numbers), else a gene. */
export async function resolveColor(adata: AnnDataOOM, key: string | null | undefined, opts: ColorOptions = {}): Promise<ResolvedColor> {
  if (key === null || key === undefined) return { spec: { kind: "none", key: null } };
  const { palette, colorMap, vmin, vmax, naColor, ...src } = opts;
  const na = normalizeColor(naColor ?? NA_COLOR);
  const kv = await keyValues(adata, key, src, "color");
  if (kv.kind === "categorical") {
    const colors = obsCategoryColors(adata, key, kv.categories, palette);
    return { spec: { kind: "categorical", key, source: "obs", categories: kv.categories, colors, naColor: na }, codes: kv.codes };
  }
  const [lo, hi] = colorRange(kv.values, vmin, vmax);
  const spec: ColorSpec = {
    kind: "continuous",
    key,
    source: kv.dtype === "gene" ? "gene" : "obs",
    vmin: lo,
    vmax: hi,
    colormap: colormapHex(colorMap ?? "viridis"),
    naColor: na,
  };
  return { spec, values: Float32Array.from(kv.values) };
}
