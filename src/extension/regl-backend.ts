/**
 * The scatter's renderer: regl-scatterplot (WebGL) behind the small
 * ScatterBackend interface of src/widgets/scatter.ts, so the panel stays
 * testable in jsdom. regl-scatterplot is ESM-only; only the bundle loads it.
 * The wiring (events, camera fit and bounds, destroy) is in regl-wrap.ts.
 */
import createScatterplot from "regl-scatterplot";
import type { BackendEvents, ScatterBackend } from "../widgets/scatter";
import { type PlotLike, withDetachingResizeObserver, wrapPlot } from "./regl-wrap";

export function reglBackend(canvas: HTMLCanvasElement, width: number, height: number, events: BackendEvents): ScatterBackend {
  // regl-scatterplot observes the canvas; under JupyterLab's ResizeObserver that
  // observer's callback (the whole plot) would outlive destroy().
  const plot = withDetachingResizeObserver(canvas.ownerDocument.defaultView ?? window, () =>
    createScatterplot({
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
    }),
  );
  return wrapPlot(plot as unknown as PlotLike, canvas, width, height, events);
}
