/**
 * The interactive embedding scatter. In our kernel it is a Jupyter widget
 * (model "ScatterModel" of the anndata-oom-lab extension, drawn with
 * regl-scatterplot): positions and colors go to the browser as Arrow IPC
 * in binary comm buffers; pan/zoom and hover are local, hover asks the
 * kernel for the cell's name and value, and a lasso sends the selected
 * cell indices back, where they become `plot.selection`, a boolean mask
 * usable as `adata.subset({ obs: plot.selection })`.
 */
import { type AnnDataOOM, checkAnnData } from "../anndata";
import { InvalidArgumentError } from "../errors";
import type { PassOptions } from "../pass";
import { basisKey, embedding, parseComponents } from "../pl/embedding";
import { checkOptions } from "../pl/plot";
import { type ColorOptions, type ColorSpec, type ResolvedColor, resolveColor } from "./colors";
import { colorsIpc, embeddingXY, positionsIpc } from "./points";
import { KernelWidget, widgetKernel } from "./widget-comm";

export const SCATTER_MIME = "application/vnd.anndata-oom.scatter+json";

export interface ExploreOptions extends ColorOptions {
  /** An obsm key or scanpy basis name: "umap" (X_umap, the default), "pca", "X_tsne", … */
  basis?: string;
  /** Which two columns of the embedding, 1-based as scanpy's `components`: [1, 2] (default) or "1,2". */
  components?: [number, number] | string;
  /** An obs column or a gene name (obs columns win, as in scanpy). */
  color?: string | null;
  title?: string;
  /** Point size in CSS pixels (default from the number of points, as scanpy's 120000 / n). */
  pointSize?: number;
  /** Plot height in CSS pixels (default 420). */
  height?: number;
}

/** scanpy's default point size (120000 / n, in points²) as a pixel diameter for regl-scatterplot. */
export function defaultPointSize(n: number): number {
  const area = 120000 / Math.max(n, 1);
  return Math.min(12, Math.max(1, Math.sqrt(area) * 1.3));
}

export class EmbeddingExplorer {
  readonly adata: AnnDataOOM;
  readonly basis: string;
  readonly components: [number, number];
  private colorState: ResolvedColor;
  private readonly widget: KernelWidget | null;
  private selected: Uint32Array = new Uint32Array(0);
  private readonly selectHandlers: ((indices: Uint32Array) => void)[] = [];
  private readonly colorOptions: ColorOptions;
  /** The title shown: the user's for the initial color, else the color key (or the basis). */
  private title: string;

  private constructor(
    adata: AnnDataOOM,
    basis: string,
    components: [number, number],
    color: ResolvedColor,
    widget: KernelWidget | null,
    colorOptions: ColorOptions,
    title: string,
  ) {
    this.adata = adata;
    this.title = title;
    this.colorOptions = colorOptions;
    this.basis = basis;
    this.components = components;
    this.colorState = color;
    this.widget = widget;
    widget?.onChange((changed) => {
      if (changed.includes("selection")) this.receiveSelection(widget.get("selection"));
    });
    widget?.onCustom((content) => {
      if (content.event === "hover" && typeof content.index === "number") this.answerHover(content.index);
    });
  }

  /** Builds the plot (and, inside our kernel, its widget). */
  static async create(adata: AnnDataOOM, opts: ExploreOptions = {}): Promise<EmbeddingExplorer> {
    const basis = basisKey(adata, opts.basis ?? "umap");
    const el = await adata.obsm.get(basis);
    // Not a dense 2-d array: embeddingXY says so.
    const dense = !("table" in el) && el.kind === "dense" && el.shape.length === 2;
    const components: [number, number] = dense ? parseComponents(opts.components, el.shape[1], basis) : [1, 2];
    const { x, y } = await embeddingXY(adata, basis, components);
    const { basis: _b, components: _c, color: key, title: _t, pointSize: _p, height: _h, ...colorOptions } = opts;
    const color = await resolveColor(adata, key, colorOptions);
    if (opts.pointSize !== undefined && !(typeof opts.pointSize === "number" && opts.pointSize > 0 && opts.pointSize <= 100))
      throw new InvalidArgumentError(`pointSize must be a number of pixels in (0, 100], got ${opts.pointSize}`);
    // The browser's WebGL canvas is this tall: keep it a sensible size.
    if (opts.height !== undefined && !(Number.isInteger(opts.height) && opts.height >= 100 && opts.height <= 4096))
      throw new InvalidArgumentError(`height must be an integer number of pixels in [100, 4096], got ${opts.height}`);
    if (opts.title !== undefined && typeof opts.title !== "string") throw new InvalidArgumentError("title must be a string");
    const title = opts.title ?? color.spec.key ?? basis;
    const k = widgetKernel();
    const widget = k
      ? new KernelWidget(
          k,
          { model: "ScatterModel", view: "ScatterView", writable: ["selection", "selection_count"] },
          {
            n: x.length,
            basis,
            title,
            point_size: opts.pointSize ?? defaultPointSize(x.length),
            height: opts.height ?? 420,
            positions: positionsIpc(x, y),
            colors: colorsIpc(color),
            color: color.spec,
            selection: new Uint8Array(0),
            selection_count: 0,
            status: "",
          },
        )
      : null;
    return new EmbeddingExplorer(adata, basis, components, color, widget, colorOptions, title);
  }

  /** Number of points. */
  get n(): number {
    return this.adata.nObs;
  }

  /** Whether a live widget backs this plot (inside our kernel). */
  get isLive(): boolean {
    return this.widget !== null && !this.widget.closed;
  }

  get color(): ColorSpec {
    return this.colorState.spec;
  }

  /** Per-cell colour data currently shown (codes for categories, values otherwise). */
  get colorData(): ResolvedColor {
    return this.colorState;
  }

  /** The lasso selection as a boolean mask over the plotted cells (all false before a lasso). */
  get selection(): Uint8Array {
    const mask = new Uint8Array(this.n);
    for (const i of this.selected) mask[i] = 1;
    return mask;
  }

  /** The selected cells' positions in the plotted object (sorted). */
  get selectedIndices(): Uint32Array {
    return this.selected.slice();
  }

  /** Calls `cb` after each lasso with the selected positions. */
  onSelect(cb: (indices: Uint32Array) => void): void {
    this.selectHandlers.push(cb);
  }

  /**
   * Recolors in place (an obs column or gene; null for none): only the colors are re-sent.
   * The title becomes `opts.title`, else the new key (or the basis): a title given to
   * `pl.explore` described the first coloring, so it does not stay for another one.
   */
  async setColor(key: string | null, opts: PassOptions & { title?: string } = {}): Promise<void> {
    const { title, ...pass } = opts;
    if (title !== undefined && typeof title !== "string") throw new InvalidArgumentError("title must be a string");
    const color = await resolveColor(this.adata, key, { ...this.colorOptions, ...pass });
    this.colorState = color;
    this.title = title ?? color.spec.key ?? this.basis;
    this.widget?.set({ colors: colorsIpc(color), color: color.spec, title: this.title });
  }

  /** Re-reads the embedding (e.g. after tl.umap ran again) and moves the points in place. */
  async refreshPositions(): Promise<void> {
    const { x, y } = await embeddingXY(this.adata, this.basis, this.components);
    if (x.length !== this.n) throw new InvalidArgumentError(`obsm ${JSON.stringify(this.basis)} has ${x.length} rows, the plot ${this.n}`);
    this.widget?.set({ positions: positionsIpc(x, y) });
  }

  /** A status line shown under the plot (e.g. while a control re-runs a step). */
  setStatus(text: string): void {
    this.widget?.set({ status: text });
  }

  /** Closes the widget (the view shows the static snapshot afterwards). */
  close(): void {
    this.widget?.close();
  }

  toString(): string {
    const what = this.color.key ? ` colored by ${this.color.key}` : "";
    return `interactive ${this.basis} of ${this.n.toLocaleString("en-US")} cells${what}${this.selected.length ? `, ${this.selected.length} selected` : ""}`;
  }

  /**
   * The notebook bundle: the widget view, our summary (title, legend) and a
   * static snapshot — pl.embedding's PNG and SVG — that a saved notebook
   * shows without a kernel (and GitHub shows as an image).
   */
  async _repr_mimebundle_(): Promise<Record<string, unknown>> {
    const still = await embedding(this.adata, {
      ...this.colorOptions,
      basis: this.basis,
      components: this.components,
      color: this.color.key,
    });
    const stillBundle = still._repr_mimebundle_();
    // Opens the model (again, if its cells were cleared) before the summary names it.
    const view = this.widget?.viewBundle() ?? {};
    const summary = {
      n: this.n,
      basis: this.basis,
      title: this.title,
      color: this.color,
      // cells without a category: the snapshot's legend lists "NA" as the live one does
      na: this.colorState.codes?.some((c) => c < 0) ?? false,
      model_id: this.widget?.modelId || null,
    };
    return {
      "text/plain": this.toString(),
      ...(stillBundle["image/png"] ? { "image/png": stillBundle["image/png"] } : {}),
      ...(stillBundle["image/svg+xml"] ? { "image/svg+xml": stillBundle["image/svg+xml"] } : {}),
      ...view,
      [SCATTER_MIME]: summary,
    };
  }

  private receiveSelection(v: unknown): void {
    const bytes = v instanceof Uint8Array ? v : new Uint8Array(0);
    if (bytes.byteLength % 4 !== 0) return;
    const idx = new Uint32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
    const n = this.n;
    const valid = Uint32Array.from(new Set(idx.filter((i) => i < n))).sort();
    this.selected = valid;
    for (const cb of this.selectHandlers) cb(valid.slice());
  }

  private answerHover(index: number): void {
    if (!Number.isInteger(index) || index < 0 || index >= this.n) return;
    const name = String(this.adata.obsNames.get(index));
    const c = this.colorState;
    let value: string | number | null = null;
    if (c.codes && c.spec.kind === "categorical") value = c.codes[index] >= 0 ? c.spec.categories[c.codes[index]] : null;
    else if (c.values) value = Number.isFinite(c.values[index]) ? c.values[index] : null;
    this.widget?.sendCustom({ event: "hover", index, name, key: c.spec.key, value });
  }
}

/**
 * An interactive scatter of an embedding: the live counterpart of
 * `pl.embedding` (which draws the same picture as a static image).
 *
 * @example
 * const plot = await pl.explore(adata, { basis: "umap", color: "leiden" });
 * plot   // last expression of a cell: the WebGL plot
 * // … lasso some cells in the browser, then:
 * const picked = adata.subset({ obs: plot.selection });
 */
export async function explore(adata: AnnDataOOM, opts: ExploreOptions = {}): Promise<EmbeddingExplorer> {
  checkAnnData("pl.explore", adata);
  checkOptions<ExploreOptions>("pl.explore", opts, 'pl.explore(adata, { color: "leiden" })', {
    basis: true,
    components: true,
    color: true,
    title: true,
    pointSize: "num",
    height: "num",
    palette: true,
    colorMap: true,
    vmin: true,
    vmax: true,
    naColor: true,
    useRaw: "bool",
    layer: true,
    geneIndex: true,
    signal: true,
    onProgress: true,
  });
  return EmbeddingExplorer.create(adata, opts);
}
