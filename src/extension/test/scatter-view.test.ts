/**
 * The explorer's view over its lifetime (jsdom, fake WebGL): nothing keeps
 * a removed plot's points alive (JupyterLab's ResizeObserver keeps the
 * callbacks of disconnected observers: the fake ones here do too), the
 * camera fits the canvas and is bounded, the reset button, the tooltip
 * flips at the edges, shift + drag stays in the plot, the NA legend entry.
 */
import * as assert from "node:assert/strict";
import { beforeEach, describe, it } from "node:test";
import * as v8 from "node:v8";
import * as vm from "node:vm";
import {
  type BackendEvents,
  hasMissingCategory,
  observeWidth,
  SCATTER_CLASS,
  type ScatterBackend,
  ScatterPanel,
  tooltipPosition,
} from "../../widgets/scatter";
import { type ColorSpec, fitDistance, MAX_ZOOM_IN, MAX_ZOOM_OUT, releaseBuffers } from "../../widgets/scatter-data";
import { CANVAS_PLOT_KEY, detachingResizeObserver, type PlotLike, withDetachingResizeObserver, wrapPlot } from "../regl-wrap";
import { freshHost } from "./dom-globals";

v8.setFlagsFromString("--expose-gc");
const gc = vm.runInNewContext("gc") as () => void;
/** Lets the WeakRefs created in this job go (a WeakRef keeps its target until the job ends), then collects. */
async function collect(): Promise<void> {
  for (let i = 0; i < 3; i++) {
    await new Promise((r) => setImmediate(r));
    gc();
  }
}

/** As JupyterLab's notebook ResizeObserver: callbacks stay reachable after disconnect(). */
class RetainingResizeObserver {
  static kept: ResizeObserverCallback[] = [];
  constructor(readonly cb: ResizeObserverCallback) {
    RetainingResizeObserver.kept.push(cb);
  }
  observe() {}
  unobserve() {}
  disconnect() {}
}

const noEvents: BackendEvents = { onSelect() {}, onDeselect() {}, onPointOver() {}, onPointOut() {} };

class FakeBackend implements ScatterBackend {
  resets = 0;
  destroyed = false;
  constructor(readonly events: BackendEvents) {}
  async draw() {}
  setPointSize() {}
  setMode() {}
  resize() {}
  resetView() {
    this.resets++;
  }
  clearSelection() {}
  destroy() {
    this.destroyed = true;
  }
}

let doc: Document;
let host: HTMLElement;
beforeEach(() => {
  ({ doc, host } = freshHost());
  RetainingResizeObserver.kept = [];
  (doc.defaultView as unknown as { ResizeObserver: unknown }).ResizeObserver = RetainingResizeObserver;
});

function makePanel(backends: FakeBackend[] = []) {
  return new ScatterPanel(host, {
    height: 300,
    pointSize: 3,
    backend: (_c, _w, _h, events) => {
      const b = new FakeBackend(events);
      backends.push(b);
      return b;
    },
  });
}

/** A regl-scatterplot stand-in: keeps its subscriptions (and the points) until destroyed, a camera whose view zooms. */
function fakePlot() {
  const camera = {
    view: Float32Array.of(1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1),
    bounds: null as [[number, number], [number, number]] | null,
    setScaleBounds(b: [[number, number], [number, number]]) {
      this.bounds = b;
    },
  };
  const handlers = new Map<string, ((p: any) => void)[]>();
  const log: string[] = [];
  const plot = {
    camera,
    handlers,
    log,
    points: null as Record<string, Float32Array> | null,
    destroyed: false,
    set(props: Record<string, unknown>) {
      log.push(`set ${Object.keys(props).join(",")}`);
    },
    get: () => camera,
    async draw(points: Record<string, Float32Array>) {
      plot.points = points;
    },
    select() {},
    deselect() {},
    async zoomToLocation(_t: [number, number], d: number) {
      log.push(`zoom ${d}`);
      camera.view = Float32Array.of(1 / d, 0, 0, 0, 0, 1 / d, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1);
    },
    subscribe(ev: string, h: (p: any) => void) {
      handlers.set(ev, [...(handlers.get(ev) ?? []), h]);
    },
    destroy() {
      plot.destroyed = true;
      plot.points = null;
    },
  };
  return plot;
}

describe("a removed explorer lets go of its points", () => {
  it("dispose destroys the renderer and drops the positions and colors", async () => {
    const backends: FakeBackend[] = [];
    const p = makePanel(backends);
    p.setPositions(new Float32Array(1000).fill(1), new Float32Array(1000));
    p.setColors({ kind: "none", key: null }, new Float32Array(1000));
    p.layout(400);
    assert.ok(p.holdsPoints);
    p.dispose();
    assert.ok(backends[0].destroyed);
    assert.equal(p.holdsPoints, false, "no x / y / colors / backend left");
    assert.equal(host.childElementCount, 0);
  });

  it("observeWidth: a stopped observer's (retained) callback reaches nothing; the panel it fed is collected", async () => {
    const widths: number[] = [];
    const stop = observeWidth(host, (w) => widths.push(w));
    const [cb] = RetainingResizeObserver.kept;
    cb([{ contentRect: { width: 300 } } as ResizeObserverEntry], {} as ResizeObserver);
    assert.deepEqual(widths, [300]);
    stop();
    cb([{ contentRect: { width: 500 } } as ResizeObserverEntry], {} as ResizeObserver);
    assert.deepEqual(widths, [300], "no call after stop");

    // As ScatterView: the observer feeds a panel holding 1M points; the view is removed.
    const ref = ((): WeakRef<ScatterPanel> => {
      const p = makePanel();
      const stopIt = observeWidth(p.canvasHost, (w) => p.layout(w));
      p.setPositions(new Float32Array(1_000_000), new Float32Array(1_000_000));
      stopIt();
      p.dispose();
      return new WeakRef(p);
    })();
    assert.equal(RetainingResizeObserver.kept.length, 2, "the fake still holds both callbacks");
    await collect();
    assert.equal(ref.deref(), undefined, "the panel is garbage although its observer's callback is still reachable");
  });

  it("detachingResizeObserver: regl-scatterplot's observer callback (its whole plot) is let go on disconnect", async () => {
    const RO = detachingResizeObserver(RetainingResizeObserver as never);
    let calls = 0;
    const ref = ((): WeakRef<Float32Array> => {
      const points = new Float32Array(1_000_000);
      const o = new RO(() => {
        calls += points.length > 0 ? 1 : 0;
      });
      o.observe(host);
      RetainingResizeObserver.kept[0]([], {} as ResizeObserver);
      o.disconnect();
      return new WeakRef(points);
    })();
    assert.equal(calls, 1);
    RetainingResizeObserver.kept[0]([], {} as ResizeObserver);
    assert.equal(calls, 1, "no call after disconnect");
    await collect();
    assert.equal(ref.deref(), undefined, "the callback's data is garbage");
    // While a plot is created, the window's ResizeObserver is the detaching one; afterwards the page's again.
    const win = doc.defaultView as unknown as { ResizeObserver: unknown };
    let during: unknown = null;
    withDetachingResizeObserver(doc.defaultView as unknown as Window, () => {
      during = win.ResizeObserver;
    });
    assert.notEqual(during, RetainingResizeObserver);
    assert.equal(win.ResizeObserver, RetainingResizeObserver);
  });

  it("a closed model lets go of its buffers (JupyterLab's closed comms keep their models)", () => {
    const attributes: Record<string, unknown> = {
      positions: new DataView(new ArrayBuffer(8)),
      colors: new DataView(new ArrayBuffer(4)),
      title: "t",
    };
    releaseBuffers(attributes, ["positions", "colors", "selection"]);
    assert.deepEqual(attributes, { positions: null, colors: null, title: "t" });
  });

  it("the regl backend: destroy() destroys the plot, deletes canvas.reglScatterplot; the plot's kept handlers reach no panel", () => {
    const plot = fakePlot();
    const canvas = doc.createElement("canvas");
    const got: string[] = [];
    const b = wrapPlot(plot as unknown as PlotLike, canvas, 400, 300, {
      ...noEvents,
      onSelect: (i) => got.push(`select ${i.length}`),
      onPointOver: (i) => got.push(`over ${i}`),
    });
    assert.equal((canvas as unknown as Record<string, unknown>)[CANVAS_PLOT_KEY], plot);
    plot.handlers.get("pointOver")?.[0](3);
    plot.handlers.get("select")?.[0]({ points: [1, 2] });
    assert.deepEqual(got, ["over 3", "select 2"]);
    b.destroy();
    assert.ok(plot.destroyed);
    assert.equal(CANVAS_PLOT_KEY in canvas, false);
    for (const [ev, hs] of plot.handlers) for (const h of hs) h(ev === "select" ? { points: [5] } : 5);
    assert.deepEqual(got, ["over 3", "select 2"], "handlers kept by the plot no longer reach the panel");
    b.resize(10, 10);
    b.resetView();
  });
});

describe("camera: all points visible at any aspect ratio, zoom bounded, reset", () => {
  it("fitDistance: the default view on landscape canvases, zoomed out by height / width on portrait ones", () => {
    assert.equal(fitDistance(600, 420), 1);
    assert.equal(fitDistance(420, 420), 1);
    assert.ok(Math.abs(fitDistance(278, 420) - 420 / 278) < 1e-12);
    // x spans ±d·w/h: with the fit the whole [-1, 1] square is inside.
    for (const [w, h] of [
      [278, 420],
      [100, 4096],
      [1800, 420],
    ])
      assert.ok(fitDistance(w, h) * (w / h) >= 1 - 1e-12 && fitDistance(w, h) >= 1);
    assert.equal(fitDistance(0, 420), 1);
  });

  it("a portrait canvas starts fitted; resizes re-fit until the user zooms; reset fits again; zoom bounds around the fit", () => {
    const plot = fakePlot();
    const b = wrapPlot(plot as unknown as PlotLike, doc.createElement("canvas"), 278, 420, noEvents);
    const d = 420 / 278;
    assert.deepEqual(plot.log, [`zoom ${d}`]);
    assert.deepEqual(plot.camera.bounds, [
      [1 / (d * MAX_ZOOM_OUT), MAX_ZOOM_IN / d],
      [1 / (d * MAX_ZOOM_OUT), MAX_ZOOM_IN / d],
    ]);
    b.resize(600, 420);
    assert.deepEqual(plot.log.slice(1), ["set width,height", "zoom 1"], "untouched view: fitted to the new size");
    b.resize(210, 420);
    assert.deepEqual(plot.log.slice(3), ["set width,height", "zoom 2"]);
    // The user zooms: a resize keeps their view.
    plot.camera.view = Float32Array.of(3, 0, 0, 0, 0, 3, 0, 0, 0, 0, 1, 0, 0.2, 0, 0, 1);
    b.resize(500, 420);
    assert.deepEqual(plot.log.slice(5), ["set width,height"]);
    b.resetView();
    assert.deepEqual(plot.log.slice(6), ["zoom 1"]);
    assert.deepEqual(plot.camera.bounds?.[0], [1 / MAX_ZOOM_OUT, MAX_ZOOM_IN]);
    b.destroy();
  });

  it("the Reset view button resets the backend's view", () => {
    const backends: FakeBackend[] = [];
    const p = makePanel(backends);
    p.layout(300);
    const reset = host.querySelector(`button.${SCATTER_CLASS.reset}`) as HTMLButtonElement;
    assert.equal(reset.textContent, "Reset view");
    reset.click();
    assert.equal(backends[0].resets, 1);
    p.dispose();
    reset.click();
  });
});

describe("interaction details", () => {
  it("the tooltip flips left / up where it would leave the plot", () => {
    assert.deepEqual(tooltipPosition([10, 20], [100, 30], [500, 400]), [22, 32]);
    assert.deepEqual(tooltipPosition([490, 395], [100, 30], [500, 400]), [378, 353]);
    // Wider than the room on both sides: kept inside the box, from its left edge at worst.
    assert.deepEqual(tooltipPosition([50, 10], [480, 30], [500, 400]), [20, 22]);
    assert.deepEqual(tooltipPosition([50, 10], [600, 30], [500, 400]), [0, 22]);

    const backends: FakeBackend[] = [];
    const p = makePanel(backends);
    p.layout(500);
    const wrap = p.canvasHost;
    const tip = host.querySelector(`.${SCATTER_CLASS.tooltip}`) as HTMLElement;
    Object.defineProperty(wrap, "clientWidth", { value: 500 });
    Object.defineProperty(wrap, "clientHeight", { value: 300 });
    Object.defineProperty(tip, "offsetWidth", { value: 130 });
    Object.defineProperty(tip, "offsetHeight", { value: 26 });
    wrap.getBoundingClientRect = () => ({ left: 0, top: 0, width: 500, height: 300 }) as DOMRect;
    wrap.dispatchEvent(new doc.defaultView!.MouseEvent("mousemove", { clientX: 480, clientY: 290, bubbles: true }));
    backends[0].events.onPointOver(4);
    p.showHover(4, "cell424", "group", "B");
    assert.equal(tip.style.left, `${480 - 12 - 130}px`);
    assert.equal(tip.style.top, `${290 - 12 - 26}px`);
    wrap.dispatchEvent(new doc.defaultView!.MouseEvent("mousemove", { clientX: 40, clientY: 30, bubbles: true }));
    p.showHover(4, "cell424", "group", "B");
    assert.equal(tip.style.left, "52px");
    assert.equal(tip.style.top, "42px");
  });

  it("shift + mousedown stays in the plot (JupyterLab's notebook would take the drag for cell selection)", () => {
    const p = makePanel();
    p.layout(300);
    const seen: boolean[] = [];
    host.addEventListener("mousedown", (e) => seen.push((e as MouseEvent).shiftKey));
    const canvasSeen: boolean[] = [];
    p.canvas.addEventListener("mousedown", (e) => canvasSeen.push(e.shiftKey));
    p.canvas.dispatchEvent(new doc.defaultView!.MouseEvent("mousedown", { shiftKey: true, bubbles: true, buttons: 1 }));
    p.canvas.dispatchEvent(new doc.defaultView!.MouseEvent("mousedown", { shiftKey: false, bubbles: true, buttons: 1 }));
    assert.deepEqual(canvasSeen, [true, false], "the canvas (regl-scatterplot) gets both");
    assert.deepEqual(seen, [false], "the notebook gets only the plain press");
  });

  it("a categorical with missing codes gets an NA legend entry in the na color, as scanpy's", () => {
    const spec: ColorSpec = {
      kind: "categorical",
      key: "group",
      source: "obs",
      categories: ["A", "B"],
      colors: ["#1f77b4", "#ff7f0e"],
      naColor: "#d3d3d3",
    };
    assert.equal(hasMissingCategory(spec, Int32Array.of(0, 1, 1)), false);
    assert.equal(hasMissingCategory(spec, Int32Array.of(0, -1, 1)), true);
    const p = makePanel();
    p.setColors(spec, Int32Array.of(0, 1, 1));
    assert.equal(host.querySelector('[data-na="true"]'), null);
    p.setColors(spec, Int32Array.of(0, -1, 1));
    const items = Array.from(host.querySelectorAll(`.${SCATTER_CLASS.legendItem}`));
    assert.deepEqual(
      items.map((i) => i.textContent),
      ["A", "B", "NA"],
    );
    const na = items[2] as HTMLElement;
    assert.equal(na.dataset.na, "true");
    assert.equal((na.querySelector(".aoom-Scatter-chip") as HTMLElement).style.background, "rgb(211, 211, 211)");
  });
});
