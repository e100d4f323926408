/**
 * The static plot renderer in jsdom: the SVG only as a data: URI <img>
 * (decoded back and parsed: hostile names are text, no element from them),
 * hover tooltips from the spec's regions (scaled images too), unknown data,
 * and `PlotRenderer.renderModel` on a mime model.
 */
import * as assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { JSDOM } from "jsdom";
import { PLOT_CLASS, regionAt, renderPlot, utf8Base64 } from "../../widgets/plot";
import { PLOT_MIME, type PlotData } from "../../widgets/plot-types";
import { installDomGlobals } from "./dom-globals";

const HOSTILE = "<img src=x onerror=alert(1)>";
const dom = new JSDOM("<!doctype html><body></body>");
const doc = dom.window.document;

function esc(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

function sample(over: Partial<PlotData> = {}): PlotData {
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="200" height="100" viewBox="0 0 200 100"><text x="10" y="20">${esc(HOSTILE)} · Zelle · 细胞</text><circle cx="50" cy="50" r="5" fill="#ff0000"/></svg>`;
  return {
    type: "AnnDataOOMPlot",
    version: 1,
    kind: "dotplot",
    title: HOSTILE,
    width: 200,
    height: 100,
    svg,
    regions: [
      { x: 0, y: 0, w: 100, h: 100, label: `${HOSTILE} · G0: mean 1.5, 40% of 10 cells > cutoff` },
      { x: 100, y: 0, w: 100, h: 100, label: "1 · G1: mean 0.2" },
    ],
    summary: {},
    ...over,
  };
}

function mouse(type: string, x: number, y: number): MouseEvent {
  return new dom.window.MouseEvent(type, { clientX: x, clientY: y, bubbles: true });
}

describe("renderPlot", () => {
  let host: HTMLElement;
  before(() => {
    host = doc.createElement("div");
    doc.body.appendChild(host);
  });

  it("shows the SVG as a data: URI image only; decoded, it is the engine's SVG and parses with names as text", () => {
    renderPlot(host, sample());
    const root = host.querySelector(`.${PLOT_CLASS.root}`) as HTMLElement;
    assert.equal(root.dataset.kind, "dotplot");
    const img = host.querySelector(`img.${PLOT_CLASS.image}`) as HTMLImageElement;
    assert.ok(img.src.startsWith("data:image/svg+xml;base64,"));
    assert.equal(img.alt, HOSTILE, "title as an attribute value, not markup");
    assert.equal(img.width, 200);
    // Only our elements in the DOM: no <img> from the name, no <svg> inline.
    assert.equal(host.querySelectorAll("img").length, 1);
    assert.equal(host.querySelectorAll("svg, script").length, 0);
    const decoded = Buffer.from(img.src.slice("data:image/svg+xml;base64,".length), "base64").toString("utf8");
    assert.equal(decoded, sample().svg);
    const parsed = new dom.window.DOMParser().parseFromString(decoded, "image/svg+xml");
    assert.equal(parsed.getElementsByTagName("parsererror").length, 0);
    assert.equal(parsed.getElementsByTagName("img").length, 0);
    assert.equal(parsed.getElementsByTagName("text")[0].textContent, `${HOSTILE} · Zelle · 细胞`);
  });

  it("hover shows the region's label as text, scaled images map to SVG units, leaving hides it", () => {
    renderPlot(host, sample());
    const img = host.querySelector("img") as HTMLImageElement;
    const tip = host.querySelector(`.${PLOT_CLASS.tooltip}`) as HTMLElement;
    assert.equal(tip.hidden, true);
    // Displayed at half size at (10, 20): SVG x = (clientX − 10) · 2.
    img.getBoundingClientRect = () => ({
      left: 10,
      top: 20,
      width: 100,
      height: 50,
      right: 110,
      bottom: 70,
      x: 10,
      y: 20,
      toJSON: () => ({}),
    });
    img.dispatchEvent(mouse("mousemove", 30, 30)); // SVG (40, 20) → region 0
    assert.equal(tip.hidden, false);
    assert.equal(tip.dataset.region, "0");
    assert.match(tip.textContent ?? "", /^<img src=x onerror=alert\(1\)> · G0: mean 1.5/);
    assert.equal(tip.querySelectorAll("*").length, 0, "label is text, no elements");
    img.dispatchEvent(mouse("mousemove", 80, 30)); // SVG (140, 20) → region 1
    assert.equal(tip.dataset.region, "1");
    assert.equal(tip.textContent, "1 · G1: mean 0.2");
    img.dispatchEvent(mouse("mousemove", 200, 30)); // outside
    assert.equal(tip.hidden, true);
    img.dispatchEvent(mouse("mousemove", 30, 30));
    img.dispatchEvent(mouse("mouseleave", 30, 30));
    assert.equal(tip.hidden, true);
    assert.equal(tip.dataset.region, undefined);
  });

  it("regionAt: last drawn wins, edges half-open", () => {
    const r = [
      { x: 0, y: 0, w: 10, h: 10, label: "a" },
      { x: 5, y: 5, w: 10, h: 10, label: "b" },
    ];
    assert.equal(regionAt(r, 6, 6), 1);
    assert.equal(regionAt(r, 1, 1), 0);
    assert.equal(regionAt(r, 15, 15), -1);
  });

  it("utf8Base64 round-trips non-Latin-1 text", () => {
    assert.equal(Buffer.from(utf8Base64("Zelle 细胞 ✓"), "base64").toString("utf8"), "Zelle 细胞 ✓");
  });

  it("unknown or broken data renders a message; re-render replaces", () => {
    renderPlot(host, { type: "AnnDataOOMPlot", version: 2 });
    assert.match(host.querySelector(`.${PLOT_CLASS.message}`)?.textContent ?? "", /cannot render this plot \(AnnDataOOMPlot v2\)/);
    renderPlot(host, null);
    assert.ok(host.querySelector(`.${PLOT_CLASS.message}`));
    renderPlot(host, sample({ regions: [] }));
    assert.equal(host.querySelectorAll(`.${PLOT_CLASS.root}`).length, 1);
    assert.equal(host.querySelector(`.${PLOT_CLASS.message}`), null);
    // Sizes an <img> cannot hold, and malformed hover regions, from a saved output.
    renderPlot(host, sample({ width: 2 ** 32 + 10 }));
    assert.ok(host.querySelector(`.${PLOT_CLASS.message}`));
    renderPlot(host, sample({ regions: [null, { x: "a" }, { x: 0, y: 0, w: 1e9, h: 1e9, label: "ok" }] as never }));
    const img = host.querySelector(`.${PLOT_CLASS.image}`) as HTMLImageElement;
    img.dispatchEvent(new dom.window.MouseEvent("mousemove", { clientX: 3, clientY: 3 }));
    assert.equal((host.querySelector(`.${PLOT_CLASS.tooltip}`) as HTMLElement).textContent, "ok");
  });
});

describe("plot mime renderer", () => {
  it("is registered (safe) and renderModel fills the node", async () => {
    installDomGlobals(dom.window);
    const mime = await import("../mime");
    const ext = mime.default as unknown as { id: string; rendererFactory: { mimeTypes: string[]; safe: boolean }; rank: number }[];
    const entry = ext.find((e) => e.rendererFactory.mimeTypes.includes(PLOT_MIME));
    assert.ok(entry);
    assert.equal(entry.id, "anndata-oom-lab:plot");
    assert.equal(entry.rendererFactory.safe, true);
    assert.ok(entry.rank < 80, "ahead of image/svg+xml and image/png");
    const r = mime.plotRendererFactory.createRenderer({
      mimeType: PLOT_MIME,
      sanitizer: {} as never,
      resolver: null,
      linkHandler: null,
      latexTypesetter: null,
    });
    await r.renderModel({
      data: { [PLOT_MIME]: sample(), "image/svg+xml": sample().svg },
      metadata: {},
      trusted: false,
      setData: () => undefined,
    } as never);
    assert.ok(r.node.classList.contains(mime.RENDERED_CLASS));
    assert.ok(r.node.classList.contains(mime.PLOT_RENDERED_CLASS));
    assert.ok(r.node.querySelector(`.${mime.PLOT_RENDERED_CLASS} img, img.${PLOT_CLASS.image}`));
    r.dispose();
  });
});
