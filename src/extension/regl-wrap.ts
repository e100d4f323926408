/**
 * A regl-scatterplot instance as the panel's ScatterBackend: point data in,
 * selection / hover events out, the camera kept fitted to the canvas and
 * bounded, and everything let go on destroy. It only sees the plot through
 * the small `PlotLike` interface (no regl-scatterplot import), so the jsdom
 * tests drive it with a fake plot; regl-backend.ts creates the real one.
 */
import type { BackendEvents, MouseMode, ScatterBackend } from "../widgets/scatter";
import { fitDistance, MAX_ZOOM_IN, MAX_ZOOM_OUT, type PointColors } from "../widgets/scatter-data";

/** The part of dom-2d-camera used here. */
export interface CameraLike {
  readonly view: ArrayLike<number>;
  setScaleBounds(bounds: [[number, number], [number, number]]): void;
}

/** The part of a regl-scatterplot instance used here. */
export interface PlotLike {
  set(props: Record<string, unknown>): unknown;
  get(prop: "camera"): unknown;
  draw(points: Record<string, Float32Array>, opts: { zDataType: "categorical" | "continuous" }): Promise<unknown>;
  select(points: number[]): unknown;
  deselect(): unknown;
  zoomToLocation(target: [number, number], distance: number): Promise<unknown>;
  subscribe(event: string, handler: (payload: any) => void): unknown;
  destroy(): void;
}

/** The property of the canvas that exposes its plot (debugging, UI tests); removed on destroy. */
export const CANVAS_PLOT_KEY = "reglScatterplot";

function sameView(a: ArrayLike<number> | null, b: ArrayLike<number>): boolean {
  if (!a || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export function wrapPlot(
  created: PlotLike,
  canvas: HTMLCanvasElement,
  width: number,
  height: number,
  events: BackendEvents,
): ScatterBackend {
  // Every closure below reaches the plot through this variable, cleared on destroy:
  // whatever keeps one of them (an event list, a stale promise) no longer pins the
  // plot and its point buffers.
  let plot: PlotLike | null = created;
  let ev: BackendEvents | null = events;
  (canvas as unknown as Record<string, unknown>)[CANVAS_PLOT_KEY] = plot;
  let size: [number, number] = [width, height];
  /** The camera view after our last fit; the user has not moved the view while it is unchanged. */
  let fitted: number[] | null = null;

  const camera = (): CameraLike | null => {
    const c = plot?.get("camera") as CameraLike | undefined;
    return c && typeof c.setScaleBounds === "function" ? c : null;
  };
  /** All points visible on this canvas, and the zoom bounded around that view. */
  const fit = () => {
    const p = plot;
    if (!p) return;
    const d = fitDistance(size[0], size[1]);
    // scaling = 1 / distance. Unbounded, the wheel zoomed out to distance 1e20 and
    // regl-scatterplot's mouse → data conversion threw on every move after that.
    const lo = 1 / (d * MAX_ZOOM_OUT);
    const hi = MAX_ZOOM_IN / d;
    camera()?.setScaleBounds([
      [lo, hi],
      [lo, hi],
    ]);
    void p.zoomToLocation([0, 0], d);
    const c = camera();
    fitted = c ? Array.from(c.view) : null;
  };
  const untouched = () => {
    const c = camera();
    return c !== null && sameView(fitted, c.view);
  };

  // A lasso that ends where it began also counts as a click, and regl-scatterplot then
  // replaces the lasso's selection with the point under the cursor: keep the lasso's.
  let lasso: { points: number[]; at: number } | null = null;
  plot.subscribe("lassoEnd", () => {
    lasso = { points: [], at: performance.now() };
  });
  plot.subscribe("select", ({ points }: { points: number[] }) => {
    const justLassoed = lasso !== null && performance.now() - lasso.at < 400;
    if (justLassoed && lasso && lasso.points.length > 0 && points.length === 1) {
      plot?.select(lasso.points);
      return;
    }
    if (justLassoed && lasso) lasso.points = [...points];
    ev?.onSelect(points);
  });
  plot.subscribe("deselect", () => ev?.onDeselect());
  plot.subscribe("pointOver", (i: number) => ev?.onPointOver(i));
  plot.subscribe("pointOut", () => ev?.onPointOut());
  fit();

  return {
    async draw(x: Float32Array, y: Float32Array, colors: PointColors) {
      const p = plot;
      if (!p) return;
      p.set({ pointColor: colors.palette, colorBy: "valueA" });
      await p.draw({ x, y, valueA: colors.values }, { zDataType: colors.categorical ? "categorical" : "continuous" });
    },
    setPointSize: (px) => plot?.set({ pointSize: px }),
    setMode: (mode: MouseMode) => plot?.set({ mouseMode: mode }),
    resize: (w, h) => {
      if (!plot) return;
      const keep = untouched();
      size = [w, h];
      plot.set({ width: w, height: h });
      if (keep) fit();
    },
    resetView: () => fit(),
    clearSelection: () => plot?.deselect(),
    destroy: () => {
      const p = plot;
      plot = null;
      ev = null;
      lasso = null;
      fitted = null;
      delete (canvas as unknown as Record<string, unknown>)[CANVAS_PLOT_KEY];
      p?.destroy();
    },
  };
}

type ROClass = new (cb: ResizeObserverCallback) => ResizeObserver;

/**
 * A ResizeObserver class over `Base` whose callback is let go on
 * disconnect(). JupyterLab's notebook replaces `window.ResizeObserver` by a
 * subclass that keeps its callback (and a throttler) reachable after
 * disconnect(); regl-scatterplot observes its canvas with a callback that
 * closes over the whole plot, point buffers included.
 */
export function detachingResizeObserver(Base: ROClass): ROClass {
  return class DetachingResizeObserver {
    private readonly inner: ResizeObserver;
    /** The only way from the inner observer's callback to `cb`; emptied on disconnect(). */
    private readonly holder: { cb: ResizeObserverCallback | null; self: unknown };
    constructor(cb: ResizeObserverCallback) {
      const holder: { cb: ResizeObserverCallback | null; self: unknown } = { cb, self: this };
      this.holder = holder;
      this.inner = new Base((entries) => holder.cb?.(entries, holder.self as ResizeObserver));
    }
    observe(target: Element, options?: ResizeObserverOptions): void {
      this.inner.observe(target, options);
    }
    unobserve(target: Element): void {
      this.inner.unobserve(target);
    }
    disconnect(): void {
      this.inner.disconnect();
      this.holder.cb = null;
      this.holder.self = null;
    }
  } as unknown as ROClass;
}

/** Runs `create` (which may construct ResizeObservers) with `win.ResizeObserver` made detaching. */
export function withDetachingResizeObserver<T>(win: Window, create: () => T): T {
  const w = win as unknown as { ResizeObserver?: ROClass };
  const saved = w.ResizeObserver;
  if (typeof saved !== "function") return create();
  w.ResizeObserver = detachingResizeObserver(saved);
  try {
    return create();
  } finally {
    w.ResizeObserver = saved;
  }
}
