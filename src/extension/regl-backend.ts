/**
 * The scatter's renderer: regl-scatterplot (WebGL) behind the small
 * ScatterBackend interface of src/widgets/scatter.ts, so the panel stays
 * testable in jsdom. regl-scatterplot is ESM-only; only the bundle loads it.
 */
import createScatterplot from "regl-scatterplot";
import type { BackendEvents, MouseMode, ScatterBackend } from "../widgets/scatter";
import type { PointColors } from "../widgets/scatter-data";

export function reglBackend(canvas: HTMLCanvasElement, width: number, height: number, events: BackendEvents): ScatterBackend {
  const plot = createScatterplot({
    canvas,
    width,
    height,
    pointSize: 3,
    opacity: 0.9,
    backgroundColor: [1, 1, 1, 0],
    pointColorActive: [0.1, 0.1, 0.1, 1],
    pointColorHover: [0.2, 0.2, 0.2, 1],
    lassoColor: [0.1, 0.4, 0.9, 1],
    // Faster than the default freeform-with-delay lasso on big plots, and it keeps
    // the drag a plain drag (galata's lasso test moves the mouse in steps).
    lassoMinDelay: 5,
    lassoMinDist: 2,
    deselectOnDblClick: true,
    deselectOnEscape: true,
  });
  // For debugging in the browser console and for the UI tests: the canvas knows its plot.
  (canvas as unknown as { reglScatterplot?: unknown }).reglScatterplot = plot;
  // A lasso that ends where it began also counts as a click, and regl-scatterplot then
  // replaces the lasso's selection with the point under the cursor: keep the lasso's.
  let lasso: { points: number[]; at: number } | null = null;
  plot.subscribe("lassoEnd", () => {
    lasso = { points: [], at: performance.now() };
  });
  plot.subscribe("select", ({ points }) => {
    const justLassoed = lasso !== null && performance.now() - lasso.at < 400;
    if (justLassoed && lasso && lasso.points.length > 0 && points.length === 1) {
      plot.select(lasso.points);
      return;
    }
    if (justLassoed && lasso) lasso.points = [...points];
    events.onSelect(points);
  });
  plot.subscribe("deselect", () => events.onDeselect());
  plot.subscribe("pointOver", (i) => events.onPointOver(i));
  plot.subscribe("pointOut", () => events.onPointOut());
  return {
    async draw(x: Float32Array, y: Float32Array, colors: PointColors) {
      plot.set({ pointColor: colors.palette, colorBy: "valueA" });
      await plot.draw({ x, y, valueA: colors.values }, { zDataType: colors.categorical ? "categorical" : "continuous" });
    },
    setPointSize: (px) => plot.set({ pointSize: px }),
    setMode: (mode: MouseMode) => plot.set({ mouseMode: mode }),
    resize: (w, h) => plot.set({ width: w, height: h }),
    clearSelection: () => plot.deselect(),
    destroy: () => plot.destroy(),
  };
}
