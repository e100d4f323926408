/**
 * What a scatter is colored by, resolved from an obs column or a gene:
 * categories with their colors (scanpy's rules) or continuous values with a
 * colormap. Values come back per cell of the view, ready to be sent.
 */
import { DataType, type Vector } from "apache-arrow";
import type { AnnDataOOM } from "../anndata";
import { InvalidArgumentError } from "../errors";
import type { PassOptions } from "../pass";

/** scanpy's default_20 palette (used for ≤ 20 categories, as scanpy). */
export const DEFAULT_20 = [
  "#1f77b4", "#ff7f0e", "#279e68", "#d62728", "#aa40fc", "#8c564b", "#e377c2", "#b5bd61", "#17becf", "#aec7e8",
  "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94", "#f7b6d2", "#dbdb8d", "#9edae5", "#ad494a", "#8c6d31",
];

/** matplotlib's viridis at 17 evenly spaced stops (the frontend interpolates between them). */
export const VIRIDIS = [
  "#440154", "#48186a", "#472d7b", "#424086", "#3b528b", "#33638d", "#2c728e", "#26828e", "#21918c",
  "#1fa088", "#28ae80", "#3fbc73", "#5ec962", "#84d44b", "#addc30", "#d8e219", "#fde725",
];

/** Color used for missing values (scanpy's `na_color`). */
export const NA_COLOR = "#d3d3d3";

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

/** scanpy's color choice for categories: uns[`${key}_colors`] when it has enough, else its default palette. */
export function categoryColors(adata: AnnDataOOM, key: string, n: number): string[] {
  const stored = adata.uns[`${key}_colors`];
  const list = stored && (Array.isArray(stored) || ArrayBuffer.isView(stored)) ? Array.from(stored as ArrayLike<unknown>) : null;
  if (list && list.length >= n && list.every((c) => typeof c === "string")) return (list as string[]).slice(0, n);
  return Array.from({ length: n }, (_, i) => DEFAULT_20[i % DEFAULT_20.length]);
}

function fromDictionary(col: Vector): { codes: Int32Array; categories: string[] } {
  const categories = Array.from(col.data[0].dictionary?.toArray() ?? [], (c) => String(c));
  const codes = new Int32Array(col.length);
  let at = 0;
  for (const d of col.data) {
    const keys = d.values as ArrayLike<number>;
    for (let i = 0; i < d.length; i++) codes[at + i] = d.getValid(i) ? Number(keys[i]) : -1;
    at += d.length;
  }
  return { codes, categories };
}

function fromLabels(col: Vector): { codes: Int32Array; categories: string[] } {
  const labels = Array.from(col.toArray() as ArrayLike<unknown>, (v) => (v === null || v === undefined ? null : String(v)));
  const categories = [...new Set(labels.filter((v): v is string => v !== null))].sort();
  const index = new Map(categories.map((c, i) => [c, i]));
  return { codes: Int32Array.from(labels, (v) => (v === null ? -1 : (index.get(v) ?? -1))), categories };
}

function continuous(key: string, source: "obs" | "gene", raw: ArrayLike<number | null | bigint>): ResolvedColor {
  const values = new Float32Array(raw.length);
  let vmin = Number.POSITIVE_INFINITY;
  let vmax = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < raw.length; i++) {
    const v = raw[i] === null ? Number.NaN : Number(raw[i]);
    values[i] = v;
    if (Number.isFinite(v)) {
      if (v < vmin) vmin = v;
      if (v > vmax) vmax = v;
    }
  }
  if (vmin > vmax) vmin = vmax = 0;
  return { spec: { kind: "continuous", key, source, vmin, vmax, colormap: VIRIDIS, naColor: NA_COLOR }, values };
}

/**
 * Resolves `key` as scanpy's `color=` does: an obs column (categorical,
 * boolean and string columns as categories, numbers as continuous), else a
 * gene of var_names (its values over the view's cells, transform chain applied).
 */
export async function resolveColor(adata: AnnDataOOM, key: string | null | undefined, opts: PassOptions = {}): Promise<ResolvedColor> {
  if (key === null || key === undefined) return { spec: { kind: "none", key: null } };
  if (typeof key !== "string") throw new InvalidArgumentError(`color must be an obs column or a gene name, got ${typeof key}`);
  const col = adata.obs.getChild(key) as Vector | null;
  if (col) {
    const t = col.type;
    if (DataType.isDictionary(t) || DataType.isBool(t) || DataType.isUtf8(t) || DataType.isLargeUtf8(t)) {
      const { codes, categories } = DataType.isDictionary(t) ? fromDictionary(col) : fromLabels(col);
      const colors = categoryColors(adata, key, categories.length);
      return { spec: { kind: "categorical", key, source: "obs", categories, colors, naColor: NA_COLOR }, codes };
    }
    if (DataType.isInt(t) || DataType.isFloat(t)) return continuous(key, "obs", col.toArray() as ArrayLike<number>);
    throw new InvalidArgumentError(`obs column ${JSON.stringify(key)} has type ${String(t)}: cannot color by it`);
  }
  const names = adata.varNames;
  let gene = -1;
  for (let j = 0; j < names.length && gene < 0; j++) if (names.get(j) === key) gene = j;
  if (gene < 0) throw new InvalidArgumentError(`color ${JSON.stringify(key)} is neither an obs column nor a var name`);
  const values = (await adata.obsVector(gene, opts)) as Float64Array;
  return continuous(key, "gene", values);
}
