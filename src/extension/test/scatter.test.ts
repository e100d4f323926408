/**
 * The scatter and controls views in jsdom (WebGL is replaced by a fake
 * backend that records what regl-scatterplot would get): Arrow decoding,
 * position normalization, per-point colors, legend / color bar, hover
 * tooltip from the kernel's answer (text only), lasso selection count,
 * Pan / Lasso modes, the controls' sliders and snapshot, and the live /
 * static switch of the output renderer.
 */
import * as assert from "node:assert/strict";
import { beforeEach, describe, it } from "node:test";
import { tableFromArrays, tableToIPC } from "apache-arrow";
import { JSDOM } from "jsdom";
import { ControlsPanel, renderControlsSnapshot } from "../../widgets/controls";
import { type BackendEvents, type MouseMode, renderScatterSnapshot, SCATTER_CLASS, ScatterPanel } from "../../widgets/scatter";
import {
  bytesOf,
  type ColorSpec,
  checkedSpec,
  HIDDEN_AT,
  interpolateColormap,
  ipcColumn,
  normalizePositions,
  type PointColors,
  pointColors,
  TRANSPARENT,
} from "../../widgets/scatter-data";
import { freshHost, installDomGlobals } from "./dom-globals";

const HOSTILE = "<img src=x onerror=alert(1)>";
const CATS: ColorSpec = {
  kind: "categorical",
  key: "leiden",
  source: "obs",
  categories: ["0", "1", HOSTILE],
  colors: ["#1f77b4", "#ff7f0e", "#279e68"],
  naColor: "#d3d3d3",
};
const CONT: ColorSpec = {
  kind: "continuous",
  key: "CD3E",
  source: "gene",
  vmin: 0,
  vmax: 4,
  colormap: ["#000000", "#ffffff"],
  naColor: "#d3d3d3",
};

let doc: Document;
let host: HTMLElement;
beforeEach(() => {
  ({ doc, host } = freshHost());
});

class FakeBackend {
  draws: { x: Float32Array; y: Float32Array; colors: PointColors }[] = [];
  modes: MouseMode[] = [];
  sizes: number[] = [];
  resized: [number, number][] = [];
  destroyed = false;
  constructor(
    readonly width: number,
    readonly height: number,
    readonly events: BackendEvents,
  ) {}
  async draw(x: Float32Array, y: Float32Array, colors: PointColors) {
    this.draws.push({ x, y, colors });
  }
  setPointSize(px: number) {
    this.sizes.push(px);
  }
  setMode(m: MouseMode) {
    this.modes.push(m);
  }
  resize(w: number, h: number) {
    this.resized.push([w, h]);
  }
  resets = 0;
  resetView() {
    this.resets++;
  }
  clearSelection() {}
  destroy() {
    this.destroyed = true;
  }
}

function panel(opts: { onHover?: (i: number) => void; onSelect?: (i: Uint32Array) => void } = {}) {
  const backends: FakeBackend[] = [];
  const p = new ScatterPanel(host, {
    height: 300,
    pointSize: 4,
    backend: (_canvas, w, h, events) => {
      const b = new FakeBackend(w, h, events);
      backends.push(b);
      return b;
    },
    ...opts,
  });
  return { p, backends };
}

describe("scatter data", () => {
  it("decodes the kernel's Arrow IPC columns (from a DataView too)", () => {
    const x = Float32Array.of(1, 2, 3);
    const bytes = tableToIPC(tableFromArrays({ x, y: Float32Array.of(4, 5, 6) }), "stream");
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const b = bytesOf(view);
    assert.ok(b);
    assert.deepEqual(Array.from(ipcColumn(b, "x") ?? []), [1, 2, 3]);
    assert.equal(ipcColumn(b, "nope"), null);
    const codes = tableToIPC(tableFromArrays({ code: Int32Array.of(0, -1, 2) }), "stream");
    assert.ok(ipcColumn(codes, "code") instanceof Int32Array);
    assert.equal(bytesOf("junk"), null);
  });

  it("normalizes positions into [-0.95, 0.95] keeping the aspect ratio; a cell without coordinates far away", () => {
    const { x, y } = normalizePositions(Float32Array.of(0, 10, 5, Number.NaN), Float32Array.of(0, 5, 2.5, 1));
    assert.ok(Math.abs(x[0] + 0.95) < 1e-6 && Math.abs(x[1] - 0.95) < 1e-6);
    assert.ok(Math.abs(y[0] + 0.475) < 1e-6 && Math.abs(y[1] - 0.475) < 1e-6, "y spans half of x: half the range");
    // Not at the centre, where it would be drawn, hovered and lassoed.
    assert.deepEqual([x[3], y[3]], [HIDDEN_AT, HIDDEN_AT]);
    const one = normalizePositions(Float32Array.of(3), Float32Array.of(3));
    assert.deepEqual([one.x[0], one.y[0]], [0, 0]);
  });

  it("per-point colors: categories index the colors, missing → na color; values pick colormap entries as matplotlib, NaN and ±∞ → na color, as scanpy", () => {
    const c = pointColors(CATS, 4, Int32Array.of(0, 2, -1, 7));
    assert.deepEqual(Array.from(c.values), [0, 2, 3, 3]);
    assert.deepEqual(c.palette, [...CATS.colors, "#d3d3d3", TRANSPARENT]);
    assert.equal(c.categorical, true);
    // vmin 0, vmax 4: entry min(floor(256 t), 255), clipped; ±Infinity in the na color, as scanpy draws it.
    const v = pointColors(CONT, 6, Float32Array.of(0, 2, 8, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY));
    assert.deepEqual(Array.from(v.values), [0, 128, 255, 256, 256, 256]);
    assert.equal(v.palette.length, 258);
    assert.equal(v.palette[0], "#000000");
    assert.equal(v.palette[255], "#ffffff");
    assert.equal(v.palette[256], CONT.naColor, "NaN gets the na color, not the lowest one");
    // A cell without coordinates is transparent.
    const pos = normalizePositions(Float32Array.of(0, Number.NaN), Float32Array.of(0, 1));
    const h = pointColors(CATS, 2, Int32Array.of(0, 1), pos.x);
    assert.deepEqual(h.palette[h.values[1]], TRANSPARENT);
    // Colors from a saved output are data: only #rrggbb reaches the renderer or CSS.
    const hostile = pointColors({ ...CATS, colors: ["url(http://x/t.png)", "red", "#123456"] }, 1, Int32Array.of(0));
    assert.deepEqual(hostile.palette.slice(0, 3), ["#d3d3d3", "#d3d3d3", "#123456"]);
    assert.equal(checkedSpec({ kind: "categorical", key: "k" }).spec.kind, "none", "no categories: nothing to color by");
    assert.match(checkedSpec({ kind: "continuous", vmin: 0 }).problem ?? "", /cannot show these colors/);
    assert.equal(interpolateColormap(["#000000", "#ffffff"], 3)[1], "#808080");
  });
});

describe("ScatterPanel", () => {
  it("creates the renderer once it has a width and draws normalized points with their colors", async () => {
    const { p, backends } = panel();
    p.setTitle("leiden", 1234567);
    p.setPositions(Float32Array.of(0, 2), Float32Array.of(0, 2));
    p.setColors(CATS, Int32Array.of(1, 0));
    assert.equal(backends.length, 0, "no renderer before layout");
    p.layout(0);
    assert.equal(backends.length, 0);
    p.layout(480.6);
    p.layout(480);
    assert.equal(backends.length, 1);
    assert.equal(backends[0].width, 480);
    assert.equal(p.canvas.width, 480);
    assert.deepEqual(backends[0].sizes, [4]);
    await p.whenDrawn();
    const last = backends[0].draws.at(-1)!;
    assert.deepEqual(
      Array.from(last.x, (v) => Math.round(v * 100) / 100),
      [-0.95, 0.95],
    );
    assert.deepEqual(Array.from(last.colors.values), [1, 0]);
    p.layout(600);
    assert.deepEqual(backends[0].resized, [[600, 300]]);
    assert.equal(host.querySelector(`.${SCATTER_CLASS.title}`)?.textContent, "leiden");
    assert.equal(host.querySelector(`.${SCATTER_CLASS.count}`)?.textContent, "1,234,567 cells");
    p.dispose();
    assert.ok(backends[0].destroyed);
    assert.equal(host.querySelector(`.${SCATTER_CLASS.root}`), null);
  });

  it("updates in one tick are one draw (a recolor sets three attributes; 1M points rebuild buffers per draw)", async () => {
    const { p, backends } = panel();
    p.setPositions(Float32Array.of(0, 2), Float32Array.of(0, 2));
    p.layout(400);
    await p.whenDrawn();
    const before = backends[0].draws.length;
    p.setColors(CATS, Int32Array.of(1, 0));
    p.setColors(CATS, Int32Array.of(0, 1));
    p.setPositions(Float32Array.of(0, 4), Float32Array.of(0, 4));
    p.setColors(CONT, Float32Array.of(0, 4));
    await p.whenDrawn();
    assert.equal(backends[0].draws.length, before + 1);
    assert.deepEqual(Array.from(backends[0].draws.at(-1)!.colors.values), [0, 255], "the latest colors");
    // A legend color from a saved output is never CSS.
    p.setColors({ ...CATS, colors: ["url(http://evil.example/t.png)", "#ff7f0e", "#279e68"] }, Int32Array.of(0, 1));
    const chip = host.querySelector(".aoom-Scatter-chip") as HTMLElement;
    assert.doesNotMatch(chip.style.background, /url/);
    // 100k categories (one per cell): the legend lists 150 and says how many more.
    const many = Array.from({ length: 100_000 }, (_, i) => `c${i}`);
    p.setColors({ ...CATS, categories: many, colors: many.map(() => "#123456") }, Int32Array.of(0, 1));
    assert.equal(host.querySelectorAll(`.${SCATTER_CLASS.legendItem}`).length, 150);
    assert.match(host.querySelector(".aoom-Scatter-legendMore")?.textContent ?? "", /99,850 more/);
    // A spec of another version: nothing to color by, a note, no throw.
    p.setColors({ kind: "continuous", key: "x" }, Float32Array.of(0, 1));
    assert.match(host.querySelector(`.${SCATTER_CLASS.status}`)?.textContent ?? "", /cannot show these colors/);
    p.dispose();
  });

  it("legend: one item per category (names as text), or a color bar with vmin / vmax", () => {
    const { p } = panel();
    p.setColors(CATS, Int32Array.of(0));
    const items = host.querySelectorAll(`.${SCATTER_CLASS.legendItem}`);
    assert.equal(items.length, 3);
    assert.equal(items[2].getAttribute("data-category"), HOSTILE);
    assert.equal(items[2].textContent, HOSTILE);
    assert.equal(host.querySelector("img"), null, "a hostile name never becomes an element");
    assert.equal((items[1].querySelector(".aoom-Scatter-chip") as HTMLElement).style.background, "rgb(255, 127, 14)");
    p.setColors(CONT, Float32Array.of(1));
    assert.equal(host.querySelectorAll(`.${SCATTER_CLASS.legendItem}`).length, 0);
    assert.ok(host.querySelector(`.${SCATTER_CLASS.colorbar}`));
    assert.equal(host.querySelector(".aoom-Scatter-vmax")?.textContent, "4");
    assert.equal(host.querySelector(".aoom-Scatter-vmin")?.textContent, "0");
    p.setColors({ kind: "none", key: null }, null);
    assert.equal(host.querySelector(`.${SCATTER_CLASS.legend}`)?.childElementCount, 0);
  });

  it("hover asks the kernel; only the still-hovered point's answer shows, as text", () => {
    const asked: number[] = [];
    const { p, backends } = panel({ onHover: (i) => asked.push(i) });
    p.layout(300);
    const tip = host.querySelector(`.${SCATTER_CLASS.tooltip}`) as HTMLElement;
    backends[0].events.onPointOver(7);
    assert.deepEqual(asked, [7]);
    p.showHover(3, "stale", "leiden", "1");
    assert.equal(tip.hidden, true);
    p.showHover(7, HOSTILE, "leiden", HOSTILE);
    assert.equal(tip.hidden, false);
    assert.equal(tip.textContent, `${HOSTILE} leiden: ${HOSTILE}`);
    assert.equal(tip.querySelector("img"), null);
    p.showHover(7, "c7", "CD3E", 0.000012345);
    assert.equal(tip.textContent, "c7 CD3E: 1.23e-5");
    p.showHover(7, "c7", "CD3E", null);
    assert.match(tip.textContent ?? "", /CD3E: NA/);
    backends[0].events.onPointOut();
    assert.equal(tip.hidden, true);
  });

  it("lasso: the selection goes to onSelect and its count shows; deselect clears; Pan / Lasso modes", () => {
    const got: number[][] = [];
    const { p, backends } = panel({ onSelect: (i) => got.push(Array.from(i)) });
    p.layout(300);
    const sel = host.querySelector(`.${SCATTER_CLASS.selection}`) as HTMLElement;
    backends[0].events.onSelect([4, 1, 9000]);
    assert.deepEqual(got, [[4, 1, 9000]]);
    assert.equal(sel.textContent, "3 selected");
    assert.equal(sel.getAttribute("data-count"), "3");
    backends[0].events.onDeselect();
    assert.deepEqual(got.at(-1), []);
    assert.equal(sel.textContent, "");
    const lassoBtn = host.querySelector(`button.${SCATTER_CLASS.mode}[data-mode="lasso"]`) as HTMLButtonElement;
    lassoBtn.click();
    assert.deepEqual(backends[0].modes, ["lasso"]);
    assert.equal(lassoBtn.getAttribute("aria-pressed"), "true");
    assert.equal(host.querySelector(`.${SCATTER_CLASS.root}`)?.getAttribute("data-mode"), "lasso");
    (host.querySelector(`button.${SCATTER_CLASS.mode}[data-mode="panZoom"]`) as HTMLButtonElement).click();
    assert.deepEqual(backends[0].modes, ["lasso", "panZoom"]);
  });

  it("the static snapshot: the PNG as an image, the legend; junk input shows a note", () => {
    renderScatterSnapshot(host, { n: 900, title: "leiden", color: CATS }, "iVBORw0KGgo=");
    const img = host.querySelector("img.aoom-Scatter-snapshot") as HTMLImageElement;
    assert.equal(img.getAttribute("src"), "data:image/png;base64,iVBORw0KGgo=");
    assert.equal(host.querySelectorAll(`.${SCATTER_CLASS.legendItem}`).length, 3);
    assert.equal(host.querySelector(`.${SCATTER_CLASS.count}`)?.textContent, "900 cells");
    assert.equal(host.querySelector(".aoom-Scatter-legendNA"), null);
    renderScatterSnapshot(host, { n: 900, title: "leiden", color: CATS, na: true }, "iVBORw0KGgo=");
    assert.equal(host.querySelectorAll(`.${SCATTER_CLASS.legendItem}`).length, 4);
    assert.equal(host.querySelector(".aoom-Scatter-legendNA")?.textContent, "NA");
    renderScatterSnapshot(host, null, '"><script>alert(1)</script>');
    assert.equal(host.querySelector("img"), null);
    assert.equal(host.querySelector("script"), null);
    assert.match(host.textContent ?? "", /no snapshot/);
  });
});

describe("ControlsPanel", () => {
  const params = [{ name: "resolution", label: "Leiden resolution", min: 0.05, max: 3, step: 0.05, value: 1 }];

  it("reports values on change (not on every move) and shows the kernel's status and values", () => {
    const seen: Record<string, number>[] = [];
    const c = new ControlsPanel(host, "leiden", params, (v) => seen.push(v));
    const input = host.querySelector('.aoom-Controls-param[data-param="resolution"] input') as HTMLInputElement;
    assert.equal(input.type, "range");
    input.value = "0.5";
    input.dispatchEvent(new doc.defaultView!.Event("input"));
    assert.equal(host.querySelector(".aoom-Controls-value")?.textContent, "0.5");
    assert.deepEqual(seen, []);
    input.dispatchEvent(new doc.defaultView!.Event("change"));
    assert.deepEqual(seen, [{ resolution: 0.5 }]);
    c.setStatus("leiden (resolution 0.5): 4 clusters", false);
    assert.equal(host.querySelector(".aoom-Controls-status")?.textContent, "leiden (resolution 0.5): 4 clusters");
    c.setValues({ resolution: 2, junk: "x" });
    assert.equal(input.value, "2");
    assert.equal(seen.length, 1);
  });

  it("snapshot: disabled sliders with the saved values and a note; junk params dropped", () => {
    renderControlsSnapshot(host, { step: "leiden", params: [...params, { junk: true }, null] });
    const inputs = host.querySelectorAll("input");
    assert.equal(inputs.length, 1);
    assert.ok((inputs[0] as HTMLInputElement).disabled);
    assert.match(host.querySelector(".aoom-Controls-status")?.textContent ?? "", /run the cell again/);
  });
});

describe("live / static output renderer", () => {
  async function setup() {
    const dom = new JSDOM("<!doctype html><body></body>");
    installDomGlobals(dom.window);
    const { Widget, Panel } = await import("@lumino/widgets");
    const live = await import("../live-renderer");
    return { Widget, Panel, live, dom };
  }
  const opts = {
    mimeType: "application/vnd.anndata-oom.scatter+json",
    sanitizer: {} as never,
    resolver: null,
    linkHandler: null,
    latexTypesetter: null,
  };
  const bundle = (trusted: boolean, withView = true) =>
    ({
      trusted,
      metadata: {},
      setData: () => undefined,
      data: {
        "application/vnd.anndata-oom.scatter+json": { n: 3, title: "leiden", color: CATS },
        "image/png": "iVBORw0KGgo=",
        ...(withView ? { "application/vnd.jupyter.widget-view+json": { model_id: "abc", version_major: 2, version_minor: 1 } } : {}),
      },
    }) as never;

  it("draws the widget view when the notebook's widget renderer finds the model, else keeps the snapshot", async () => {
    const { Widget, Panel, live, dom } = await setup();
    const created: string[] = [];
    const views: InstanceType<typeof Widget>[] = [];
    // a fake output area: its rendermime makes widget renderers that add a view (model found) or not
    let modelExists = true;
    const area = new Panel() as InstanceType<typeof Panel> & { rendermime: unknown };
    area.rendermime = {
      mimeTypes: ["application/vnd.jupyter.widget-view+json"],
      createRenderer: (mime: string) => {
        created.push(mime);
        const r = new Panel() as InstanceType<typeof Panel> & {
          renderModel: (m: { data: Record<string, { model_id: string }> }) => Promise<void>;
        };
        r.renderModel = async (m) => {
          if (modelExists) {
            const v = new Widget();
            v.node.textContent = `view of ${m.data["application/vnd.jupyter.widget-view+json"].model_id}`;
            // As jupyterlab-manager's WidgetRenderer: it hides itself when its view goes.
            v.disposed.connect(() => r.hide());
            views.push(v);
            r.addWidget(v);
          } else r.node.textContent = "Loading widget...";
        };
        return r;
      },
    };
    Widget.attach(area, dom.window.document.body);

    const r1 = live.scatterRendererFactory.createRenderer(opts) as InstanceType<typeof live.LiveWidgetRenderer>;
    area.addWidget(r1);
    await r1.renderModel(bundle(true));
    assert.equal(r1.mode, "live");
    assert.deepEqual(created, ["application/vnd.jupyter.widget-view+json"]);
    assert.match(r1.node.textContent ?? "", /view of abc/);
    // A kernel restart leaves the model with comm_live false: the manager marks the view
    // jupyter-widgets-disconnected (no view goes); the snapshot must come back, and the
    // live view again when the comm is back (a websocket reconnect).
    views[0].node.classList.add("jupyter-widgets-disconnected");
    await new Promise((r) => setTimeout(r, 0));
    assert.equal(r1.mode, "static", "a disconnected view is not shown as live");
    assert.ok(!(r1.node.querySelector(".aoom-ScatterSnapshotHost") as HTMLElement).classList.contains("lm-mod-hidden"));
    views[0].node.classList.remove("jupyter-widgets-disconnected");
    await new Promise((r) => setTimeout(r, 0));
    assert.equal(r1.mode, "live");
    // The comm closes (explorer.close(), kernel restart): the view goes, the snapshot comes back.
    views[0].dispose();
    await new Promise((r) => setTimeout(r, 0));
    assert.equal(r1.mode, "static");
    const snapshotHost = r1.node.querySelector(".aoom-ScatterSnapshotHost") as HTMLElement;
    assert.ok(snapshotHost && !snapshotHost.classList.contains("lm-mod-hidden"), "the snapshot is visible again");

    modelExists = false;
    const r2 = live.scatterRendererFactory.createRenderer(opts) as InstanceType<typeof live.LiveWidgetRenderer>;
    area.addWidget(r2);
    await r2.renderModel(bundle(true));
    assert.equal(r2.mode, "static");
    assert.ok(r2.node.querySelector("img.aoom-Scatter-snapshot"));

    // untrusted output or no widget view: static, no widget renderer created
    const r3 = live.scatterRendererFactory.createRenderer(opts) as InstanceType<typeof live.LiveWidgetRenderer>;
    area.addWidget(r3);
    await r3.renderModel(bundle(false));
    await r3.renderModel(bundle(true, false));
    assert.equal(r3.mode, "static");
    assert.equal(created.length, 2);
    area.dispose();
  });

  it("a renderer outside any output area (no rendermime) shows the snapshot", async () => {
    const { Widget, live, dom } = await setup();
    const r = live.controlsRendererFactory.createRenderer({
      ...opts,
      mimeType: "application/vnd.anndata-oom.controls+json",
    }) as InstanceType<typeof live.LiveWidgetRenderer>;
    Widget.attach(r, dom.window.document.body);
    await r.renderModel({
      trusted: true,
      metadata: {},
      setData: () => undefined,
      data: {
        "application/vnd.anndata-oom.controls+json": {
          step: "leiden",
          params: [{ name: "resolution", min: 0, max: 3, step: 0.1, value: 1 }],
        },
        "application/vnd.jupyter.widget-view+json": { model_id: "x", version_major: 2, version_minor: 1 },
      },
    } as never);
    assert.equal(r.mode, "static");
    assert.ok((r.node.querySelector("input") as HTMLInputElement).disabled);
    r.dispose();
  });
});
