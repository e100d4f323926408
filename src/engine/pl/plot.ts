/**
 * The result of every `pl.*` call: an SVG, a PNG of the same drawing,
 * the numbers drawn (`data`), and a notebook bundle that a saved notebook
 * re-renders without a kernel.
 */
import { rename, rm, writeFile } from "node:fs/promises";
import { basename, dirname, extname, join } from "node:path";
import { FileAccessError, InvalidArgumentError } from "../errors";
import { kernelHandle } from "../notebook";
import { checkOptionNames, type OptionNames } from "../options";
import { renderPng } from "./render-png";
import type { SvgOp } from "./svg";

export const PLOT_MIME = "application/vnd.anndata-oom.plot+json";

/** A rectangle (SVG user units) with the text a tooltip shows over it. */
export interface HoverRegion {
  x: number;
  y: number;
  w: number;
  h: number;
  label: string;
}

/** The `application/vnd.anndata-oom.plot+json` wire format (version 1). */
export interface PlotSpec {
  type: "AnnDataOOMPlot";
  version: 1;
  kind: PlotKind;
  title: string;
  width: number;
  height: number;
  svg: string;
  /** At most MAX_REGIONS hover rectangles. */
  regions: HoverRegion[];
  /** Small plot-specific numbers (never per-cell data). */
  summary: Record<string, unknown>;
}

export type PlotKind = "embedding" | "qcScatter" | "violin" | "dotplot" | "histogram";

export const MAX_REGIONS = 5000;

/** Largest panel side in pixels (a 4096² RGBA raster is 64 MB). */
export const MAX_PANEL_PX = 4096;

/**
 * The options argument of a plot function must be an object: scanpy's
 * positional arguments (`violin(adata, "x", "leiden")`) would otherwise be
 * ignored without a word.
 */
export function checkOptions<T>(fn: string, opts: unknown, usage: string, names: OptionNames<T>): void {
  if (opts === undefined) return;
  if (opts === null || typeof opts !== "object" || Array.isArray(opts))
    throw new InvalidArgumentError(`${fn}: the last argument must be an options object, e.g. ${usage}; got ${JSON.stringify(opts)}`);
  checkOptionNames(fn, opts, names);
}

/** A panel width or height option: an integer in [16, MAX_PANEL_PX]. */
export function panelSide(value: number | undefined, fallback: number, name: "width" | "height"): number {
  const v = value ?? fallback;
  if (!(Number.isInteger(v) && v >= 16 && v <= MAX_PANEL_PX))
    throw new InvalidArgumentError(`${name} must be an integer number of pixels in [16, ${MAX_PANEL_PX}], got ${value}`);
  return v;
}

export interface PlotParts<D> {
  kind: PlotKind;
  title: string;
  width: number;
  height: number;
  svg: string;
  data: D;
  /** One line for text/plain. */
  text: string;
  /** The SVG's drawing operations, for the PNG. */
  ops: SvgOp[];
  regions?: HoverRegion[];
  summary?: Record<string, unknown>;
}

export class Plot<D = unknown> {
  readonly kind: PlotKind;
  readonly title: string;
  readonly width: number;
  readonly height: number;
  private readonly parts: PlotParts<D>;
  private pngCache: Buffer | null = null;

  constructor(parts: PlotParts<D>) {
    this.parts = parts;
    this.kind = parts.kind;
    this.title = parts.title;
    this.width = parts.width;
    this.height = parts.height;
  }

  /** The SVG document. */
  get svg(): string {
    return this.parts.svg;
  }

  /** The numbers the plot shows (see each function's result type). */
  get data(): D {
    return this.parts.data;
  }

  /** The whole plot as a PNG (2 px per SVG unit), rendered on first use. */
  get png(): Buffer {
    this.pngCache ??= renderPng(this.parts.ops, this.width, this.height, 2);
    return this.pngCache;
  }

  /** The plot+json spec (small: no per-cell data). */
  spec(): PlotSpec {
    return {
      type: "AnnDataOOMPlot",
      version: 1,
      kind: this.kind,
      title: this.title,
      width: this.width,
      height: this.height,
      svg: this.svg,
      regions: (this.parts.regions ?? []).slice(0, MAX_REGIONS),
      summary: this.parts.summary ?? {},
    };
  }

  toString(): string {
    return this.parts.text;
  }

  /** Notebook bundle: SVG, PNG, text and our JSON spec. */
  _repr_mimebundle_(): Record<string, unknown> {
    const bundle: Record<string, unknown> = {
      "text/plain": this.toString(),
      "image/svg+xml": this.svg,
      "image/png": this.png.toString("base64"),
    };
    bundle[PLOT_MIME] = this.spec();
    return bundle;
  }

  /**
   * Show the plot now, e.g. from a loop (a cell only shows its last value).
   * Inside our kernel: a display_data with the bundle; elsewhere nothing.
   * Returns whether it was shown.
   */
  show(): boolean {
    const k = kernelHandle();
    if (!k) return false;
    k.display(this._repr_mimebundle_());
    return true;
  }

  /** Write the SVG (`.svg`) or the PNG (`.png`). */
  async save(path: string): Promise<void> {
    if (typeof path !== "string" || !path)
      throw new InvalidArgumentError(`save: give a file path ending in .svg or .png, got ${String(path)}`);
    const ext = extname(path).toLowerCase();
    if (ext !== ".svg" && ext !== ".png")
      throw new InvalidArgumentError(`save: unknown extension ${JSON.stringify(ext)} (use .svg or .png)`);
    // A temporary file renamed over the path: a symlink there is replaced,
    // never written through (it could point at the .h5ad being read), and
    // a failed write leaves no half-written plot.
    const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${Date.now()}.tmp`);
    try {
      await (ext === ".svg" ? writeFile(tmp, this.svg, "utf8") : writeFile(tmp, this.png));
      await rename(tmp, path);
    } catch (e) {
      await rm(tmp, { force: true }).catch(() => undefined);
      throw new FileAccessError(`save: cannot write ${path}: ${(e as Error).message}`, { path });
    }
  }
}
