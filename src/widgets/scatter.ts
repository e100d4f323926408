/**
 * The embedding scatter's DOM: a canvas drawn by a backend (regl-scatterplot
 * in JupyterLab, a fake in jsdom tests), a title, a Pan / Lasso toggle, a
 * legend (category chips or a color bar), a hover tooltip, the selection
 * count and a status line. All text from the data is set with textContent.
 */
import {
  type ColorSpec,
  checkedSpec,
  interpolateColormap,
  normalizePositions,
  type PointColors,
  pointColors,
  safeColor,
} from "./scatter-data";

export const SCATTER_CLASS = {
  root: "aoom-Scatter",
  title: "aoom-Scatter-title",
  count: "aoom-Scatter-count",
  mode: "aoom-Scatter-mode",
  reset: "aoom-Scatter-reset",
  canvasWrap: "aoom-Scatter-canvasWrap",
  canvas: "aoom-Scatter-canvas",
  tooltip: "aoom-Scatter-tooltip",
  legend: "aoom-Scatter-legend",
  legendItem: "aoom-Scatter-legendItem",
  colorbar: "aoom-Scatter-colorbar",
  selection: "aoom-Scatter-selection",
  status: "aoom-Scatter-status",
} as const;

export type MouseMode = "panZoom" | "lasso";

/** What the panel needs from a renderer (regl-scatterplot in the browser). */
export interface ScatterBackend {
  draw(x: Float32Array, y: Float32Array, colors: PointColors): Promise<void>;
  setPointSize(px: number): void;
  setMode(mode: MouseMode): void;
  /** The new canvas size; the view is re-fitted to it unless the user zoomed or panned. */
  resize(width: number, height: number): void;
  /** Back to the fitted view (all points visible). */
  resetView(): void;
  clearSelection(): void;
  /** Frees the renderer and everything it holds (point buffers, listeners). */
  destroy(): void;
}

export interface BackendEvents {
  onSelect(indices: ArrayLike<number>): void;
  onDeselect(): void;
  onPointOver(index: number): void;
  onPointOut(): void;
}

export type BackendFactory = (canvas: HTMLCanvasElement, width: number, height: number, events: BackendEvents) => ScatterBackend;

export interface ScatterPanelOptions {
  height: number;
  pointSize: number;
  backend: BackendFactory;
  /** A point is hovered: ask the kernel for its name and value (answered with showHover). */
  onHover?(index: number): void;
  /** A lasso ended (empty: selection cleared). */
  onSelect?(indices: Uint32Array): void;
}

function el<K extends keyof HTMLElementTagNameMap>(doc: Document, tag: K, cls: string, text?: string): HTMLElementTagNameMap[K] {
  const e = doc.createElement(tag);
  e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

function fmt(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  return a !== 0 && (a < 1e-3 || a >= 1e5) ? v.toExponential(2) : String(Number(v.toPrecision(4)));
}

export class ScatterPanel {
  readonly root: HTMLDivElement;
  readonly canvas: HTMLCanvasElement;
  private readonly doc: Document;
  private readonly opts: ScatterPanelOptions;
  private readonly titleEl: HTMLSpanElement;
  private readonly countEl: HTMLSpanElement;
  private readonly legendEl: HTMLDivElement;
  private readonly tooltipEl: HTMLDivElement;
  private readonly selectionEl: HTMLSpanElement;
  private readonly statusEl: HTMLSpanElement;
  private readonly wrap: HTMLDivElement;
  private readonly modeButtons = new Map<MouseMode, HTMLButtonElement>();
  private backend: ScatterBackend | null = null;
  private x: Float32Array = new Float32Array(0);
  private y: Float32Array = new Float32Array(0);
  private spec: ColorSpec = { kind: "none", key: null };
  private colorData: Float32Array | Int32Array | null = null;
  /** A draw is queued and not started: later updates ride along with it. */
  private drawQueued = false;
  private hoverIndex = -1;
  private mouse: [number, number] = [0, 0];
  private drawn: Promise<void> = Promise.resolve();
  private width = 0;

  constructor(host: HTMLElement, opts: ScatterPanelOptions) {
    this.doc = host.ownerDocument;
    this.opts = opts;
    const d = this.doc;
    this.root = el(d, "div", SCATTER_CLASS.root);
    const header = el(d, "div", "aoom-Scatter-header");
    this.titleEl = el(d, "span", SCATTER_CLASS.title);
    this.countEl = el(d, "span", SCATTER_CLASS.count);
    const tools = el(d, "span", "aoom-Scatter-tools");
    for (const [mode, label, tip] of [
      ["panZoom", "Pan", "drag to pan, wheel to zoom"],
      ["lasso", "Lasso", "drag to select cells (also: shift + drag); double-click clears"],
    ] as const) {
      const b = el(d, "button", SCATTER_CLASS.mode, label);
      b.type = "button";
      b.dataset.mode = mode;
      b.title = tip;
      b.addEventListener("click", () => this.setMode(mode));
      this.modeButtons.set(mode, b);
      tools.append(b);
    }
    const reset = el(d, "button", SCATTER_CLASS.reset, "Reset view");
    reset.type = "button";
    reset.title = "zoom and pan back to all cells";
    reset.addEventListener("click", () => this.backend?.resetView());
    tools.append(reset);
    header.append(this.titleEl, this.countEl, tools);
    const body = el(d, "div", "aoom-Scatter-body");
    this.wrap = el(d, "div", SCATTER_CLASS.canvasWrap);
    this.wrap.style.height = `${opts.height}px`;
    this.canvas = el(d, "canvas", SCATTER_CLASS.canvas);
    this.tooltipEl = el(d, "div", SCATTER_CLASS.tooltip);
    this.tooltipEl.hidden = true;
    this.wrap.append(this.canvas, this.tooltipEl);
    this.wrap.addEventListener("mousemove", (e) => {
      const r = this.wrap.getBoundingClientRect();
      this.mouse = [e.clientX - r.left, e.clientY - r.top];
    });
    // Shift + drag is a lasso (regl-scatterplot's handlers on the canvas have run by
    // now). JupyterLab's notebook takes shift + mousedown for extending the cell
    // selection and then swallows every mousemove of the drag, so no lasso ever
    // started: the press stays inside the plot.
    this.wrap.addEventListener("mousedown", (e) => {
      if (e.shiftKey) e.stopPropagation();
    });
    this.legendEl = el(d, "div", SCATTER_CLASS.legend);
    body.append(this.wrap, this.legendEl);
    const footer = el(d, "div", "aoom-Scatter-footer");
    this.selectionEl = el(d, "span", SCATTER_CLASS.selection);
    this.statusEl = el(d, "span", SCATTER_CLASS.status);
    footer.append(this.selectionEl, this.statusEl);
    this.root.append(header, body, footer);
    host.append(this.root);
    this.markMode("panZoom");
  }

  /** The element whose width the canvas takes (observe it for resizes). */
  get canvasHost(): HTMLElement {
    return this.wrap;
  }

  /** Creates the renderer once the canvas has a width (called on attach / resize). */
  layout(width: number): void {
    if (!(width > 0)) return;
    const w = Math.floor(width);
    const h = this.opts.height;
    if (this.backend) {
      if (w !== this.width) this.backend.resize(w, h);
      this.width = w;
      return;
    }
    this.width = w;
    this.canvas.width = w;
    this.canvas.height = h;
    this.canvas.style.width = `${w}px`;
    this.canvas.style.height = `${h}px`;
    this.backend = this.opts.backend(this.canvas, w, h, {
      onSelect: (idx) => this.selected(Uint32Array.from(idx)),
      onDeselect: () => this.selected(new Uint32Array(0)),
      onPointOver: (i) => {
        this.hoverIndex = i;
        this.root.dataset.hover = String(i);
        this.opts.onHover?.(i);
      },
      onPointOut: () => {
        this.hoverIndex = -1;
        delete this.root.dataset.hover;
        this.tooltipEl.hidden = true;
      },
    });
    this.backend.setPointSize(this.opts.pointSize);
    this.redraw();
  }

  get isReady(): boolean {
    return this.backend !== null;
  }

  /** Resolves when the last draw finished. */
  whenDrawn(): Promise<void> {
    return this.drawn;
  }

  setTitle(title: string, n: number): void {
    this.titleEl.textContent = title;
    this.countEl.textContent = `${n.toLocaleString("en-US")} cells`;
  }

  setPositions(x: Float32Array, y: Float32Array): void {
    const p = normalizePositions(x, y);
    this.x = p.x;
    this.y = p.y;
    this.redraw();
  }

  setColors(spec: unknown, data: Float32Array | Int32Array | null): void {
    const checked = checkedSpec(spec);
    this.spec = checked.spec;
    this.colorData = data;
    if (checked.problem) this.setStatus(checked.problem);
    this.renderLegend();
    this.redraw();
  }

  /** The colors of the current points (computed when a draw starts). */
  get pointColors(): PointColors {
    return pointColors(this.spec, this.x.length, this.colorData, this.x);
  }

  setPointSize(px: number): void {
    this.opts.pointSize = px;
    this.backend?.setPointSize(px);
  }

  setStatus(text: string): void {
    this.statusEl.textContent = text;
  }

  /** The kernel's answer to a hover: shown if that point is still hovered. */
  showHover(index: number, name: string, key: string | null, value: unknown): void {
    if (index !== this.hoverIndex) return;
    const t = this.tooltipEl;
    t.replaceChildren();
    t.append(el(this.doc, "b", "", name));
    if (key !== null)
      t.append(
        el(
          this.doc,
          "span",
          "",
          ` ${key}: ${value === null || value === undefined ? "NA" : typeof value === "number" ? fmt(value) : String(value)}`,
        ),
      );
    t.hidden = false;
    // Right of and below the cursor, flipped left / up where it would leave the
    // plot's box (which clips it).
    const [left, top] = tooltipPosition(this.mouse, [t.offsetWidth, t.offsetHeight], [this.wrap.clientWidth, this.wrap.clientHeight]);
    t.style.left = `${left}px`;
    t.style.top = `${top}px`;
  }

  setMode(mode: MouseMode): void {
    this.backend?.setMode(mode);
    this.markMode(mode);
  }

  /** The selection shown (the kernel confirms it with the same count). */
  showSelectionCount(count: number): void {
    this.selectionEl.textContent = count > 0 ? `${count.toLocaleString("en-US")} selected` : "";
    this.selectionEl.dataset.count = String(count);
  }

  /**
   * Destroys the renderer and drops the point data: something outside may
   * keep this panel reachable after its output is gone (JupyterLab keeps
   * the callbacks of disconnected ResizeObservers), and then it should be
   * a few DOM nodes, not a million points.
   */
  dispose(): void {
    const b = this.backend;
    this.backend = null;
    b?.destroy();
    this.x = new Float32Array(0);
    this.y = new Float32Array(0);
    this.colorData = null;
    this.hoverIndex = -1;
    this.root.remove();
  }

  /** Whether the panel still holds point data (false after dispose). */
  get holdsPoints(): boolean {
    return this.x.length > 0 || this.colorData !== null || this.backend !== null;
  }

  private markMode(mode: MouseMode): void {
    for (const [m, b] of this.modeButtons) b.setAttribute("aria-pressed", String(m === mode));
    this.root.dataset.mode = mode;
  }

  private selected(indices: Uint32Array): void {
    this.showSelectionCount(indices.length);
    this.opts.onSelect?.(indices);
  }

  /**
   * Queues one draw of the latest positions and colors. Updates that come
   * while a draw is queued (a recolor sets colors, color and title at once;
   * a new embedding sets positions then colors) are drawn by that one draw:
   * at 1M points each draw rebuilds the renderer's buffers.
   */
  private redraw(): void {
    const b = this.backend;
    if (!b || this.x.length === 0 || this.drawQueued) return;
    this.drawQueued = true;
    this.drawn = this.drawn
      .then(() => {
        this.drawQueued = false;
        if (this.backend !== b || this.x.length === 0) return;
        return b.draw(this.x, this.y, this.pointColors);
      })
      .catch(() => undefined);
  }
  private renderLegend(): void {
    renderLegend(this.legendEl, this.spec, { na: hasMissingCategory(this.spec, this.colorData) });
  }
}

/** Legend entries shown at most (as the static plots). */
const LEGEND_MAX = 150;

/** Whether some cell's category code is missing (−1, or beyond the categories): the legend then lists "NA", as scanpy's. */
export function hasMissingCategory(s: ColorSpec, data: Float32Array | Int32Array | null): boolean {
  if (s.kind !== "categorical" || !data) return false;
  const n = s.categories.length;
  for (let i = 0; i < data.length; i++) if (!(data[i] >= 0 && data[i] < n)) return true;
  return false;
}

/**
 * Where the tooltip goes: 12 px right of and below the mouse, or left of /
 * above it where it would overflow the box; if neither side has room, at
 * the box's far edge (never before its start).
 */
export function tooltipPosition(mouse: [number, number], size: [number, number], box: [number, number]): [number, number] {
  const place = (m: number, s: number, b: number) => {
    if (!(b > 0) || m + 12 + s <= b) return m + 12;
    const flipped = m - 12 - s;
    return flipped >= 0 ? flipped : Math.max(0, b - s);
  };
  return [place(mouse[0], size[0], box[0]), place(mouse[1], size[1], box[1])];
}

/**
 * The legend of a color spec: category chips (one `.aoom-Scatter-legendItem` per category) or a color bar;
 * `na`: cells without a category exist, listed last as "NA" in the na color (`data-na`).
 */
export function renderLegend(host: HTMLElement, s: ColorSpec, opts: { na?: boolean } = {}): void {
  const d = host.ownerDocument;
  host.replaceChildren();
  host.dataset.kind = s.kind;
  if (s.kind === "categorical") {
    host.append(el(d, "div", "aoom-Scatter-legendTitle", s.key));
    s.categories.slice(0, LEGEND_MAX).forEach((c, i) => {
      const item = el(d, "div", SCATTER_CLASS.legendItem);
      item.dataset.category = c;
      const chip = el(d, "span", "aoom-Scatter-chip");
      // Only #rrggbb: a saved output's colors are data, not CSS (no url(…) beacons).
      chip.style.background = safeColor(s.colors[i], safeColor(s.naColor));
      item.append(chip, el(d, "span", "aoom-Scatter-label", c));
      host.append(item);
    });
    if (s.categories.length > LEGEND_MAX)
      host.append(el(d, "div", "aoom-Scatter-legendMore", `… and ${(s.categories.length - LEGEND_MAX).toLocaleString("en-US")} more`));
    if (opts.na) {
      const item = el(d, "div", `${SCATTER_CLASS.legendItem} aoom-Scatter-legendNA`);
      item.dataset.na = "true";
      const chip = el(d, "span", "aoom-Scatter-chip");
      chip.style.background = safeColor(s.naColor, "#d3d3d3");
      item.append(chip, el(d, "span", "aoom-Scatter-label", "NA"));
      host.append(item);
    }
  } else if (s.kind === "continuous") {
    host.append(el(d, "div", "aoom-Scatter-legendTitle", s.key));
    const bar = el(d, "div", SCATTER_CLASS.colorbar);
    const stops = interpolateColormap(
      s.colormap.map((c) => safeColor(c)),
      16,
    );
    bar.style.background = `linear-gradient(to top, ${stops.join(", ")})`;
    const labels = el(d, "div", "aoom-Scatter-colorbarLabels");
    labels.append(el(d, "span", "aoom-Scatter-vmax", fmt(s.vmax)), el(d, "span", "aoom-Scatter-vmin", fmt(s.vmin)));
    const wrap = el(d, "div", "aoom-Scatter-colorbarWrap");
    wrap.append(bar, labels);
    host.append(wrap);
  }
}

/**
 * The scatter without a kernel (a saved notebook, or after the widget is
 * gone): the kernel's PNG snapshot of the points, if the bundle has one,
 * with the same title and legend (with "NA" when the summary's `na` says
 * some cells have no category).
 */
export function renderScatterSnapshot(host: HTMLElement, summary: unknown, pngBase64: unknown): void {
  const d = host.ownerDocument;
  const s = (summary ?? {}) as { n?: unknown; title?: unknown; color?: ColorSpec; na?: unknown };
  host.replaceChildren();
  const root = el(d, "div", `${SCATTER_CLASS.root} aoom-Scatter--static`);
  const header = el(d, "div", "aoom-Scatter-header");
  header.append(
    el(d, "span", SCATTER_CLASS.title, String(s.title ?? "")),
    el(d, "span", SCATTER_CLASS.count, typeof s.n === "number" ? `${s.n.toLocaleString("en-US")} cells` : ""),
  );
  const body = el(d, "div", "aoom-Scatter-body");
  const wrap = el(d, "div", SCATTER_CLASS.canvasWrap);
  if (typeof pngBase64 === "string" && /^[A-Za-z0-9+/=\s]+$/.test(pngBase64)) {
    const img = el(d, "img", "aoom-Scatter-snapshot");
    img.src = `data:image/png;base64,${pngBase64.replace(/\s+/g, "")}`;
    img.alt = `${String(s.title ?? "embedding")} (static snapshot)`;
    wrap.append(img);
  } else {
    wrap.append(el(d, "div", "aoom-Scatter-empty", "no snapshot in this output"));
  }
  const legend = el(d, "div", SCATTER_CLASS.legend);
  renderLegend(legend, checkedSpec(s.color).spec, { na: s.na === true });
  body.append(wrap, legend);
  const footer = el(d, "div", "aoom-Scatter-footer");
  footer.append(el(d, "span", SCATTER_CLASS.status, "static snapshot: run the cell again for the interactive plot"));
  root.append(header, body, footer);
  host.append(root);
}

/**
 * Calls `onWidth` with `target`'s content width on every resize until the
 * returned function stops it. The observer's callback reaches `onWidth`
 * only through a variable that stopping clears: JupyterLab's notebook
 * replaces `window.ResizeObserver` by a subclass that keeps its callback
 * reachable after disconnect(), which kept every removed plot (its canvas,
 * renderer and point data, ~95 MB at 1M cells) alive.
 */
export function observeWidth(target: HTMLElement, onWidth: (width: number) => void): () => void {
  let cb: ((width: number) => void) | null = onWidth;
  const RO = target.ownerDocument.defaultView?.ResizeObserver ?? globalThis.ResizeObserver;
  if (typeof RO !== "function") {
    onWidth(target.clientWidth);
    return () => undefined;
  }
  let observer: ResizeObserver | null = new RO((entries) => {
    for (const e of entries) cb?.(e.contentRect.width);
  });
  observer.observe(target);
  return () => {
    cb = null;
    observer?.disconnect();
    observer = null;
  };
}
