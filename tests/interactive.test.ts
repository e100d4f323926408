/**
 * pl.explore / pl.controls in the engine with a fake kernel (the global
 * `__anndataOomKernel` with `openComm`): what the widget comm carries
 * (Arrow IPC positions and colors equal to obsm / obs / the gene, scanpy's
 * category colors), frontend updates (lasso → plot.selection, hover),
 * in-place updates (setColor sends only colors, refreshPositions only
 * positions), controls re-runs (Leiden on a real graph; a newer value
 * cancels the older run; failures shown), typed errors, and plain Node.
 */
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, afterEach, before, describe, it } from "node:test";
import { tableFromIPC } from "apache-arrow";
import { type AnnDataOOM, InvalidArgumentError, pl, pp, read } from "../src/engine";
import { joinBuffers, splitBuffers } from "../src/engine/interactive/widget-comm";
import { FIXTURES } from "./helpers";

const P = path.join(FIXTURES, "plots");
const oracle = require(path.join(P, "plot_oracle.json")) as { colors: Record<string, string[]> };

interface Sent {
  data: Record<string, any>;
  buffers: Uint8Array[];
}

class FakeComm {
  readonly sent: Sent[] = [];
  private handlers: ((m: { content: { data: unknown }; buffers?: Uint8Array[] }) => void)[] = [];
  closed = false;
  constructor(
    readonly commId: string,
    readonly target: string,
    readonly open: Sent,
    readonly metadata: Record<string, unknown>,
  ) {}
  send(data: Record<string, any>, buffers: ArrayBufferView[] = []): void {
    this.sent.push({ data, buffers: buffers.map((b) => new Uint8Array(b.buffer, b.byteOffset, b.byteLength)) });
  }
  onMsg(cb: (m: { content: { data: unknown }; buffers?: Uint8Array[] }) => void): void {
    this.handlers.push(cb);
  }
  private closeHandlers: (() => void)[] = [];
  onClose(cb: () => void): void {
    this.closeHandlers.push(cb);
  }
  close(): void {
    this.closed = true;
  }
  /** The kernel closed it (every cell showing it was re-run or deleted). */
  closeFromKernel(): void {
    this.closed = true;
    for (const h of this.closeHandlers) h();
  }
  /** A message from the frontend. */
  receive(data: unknown, buffers: Uint8Array[] = []): void {
    for (const h of this.handlers) h({ content: { data }, buffers });
  }
  /** The value of a buffer in a message (by its buffer path). */
  static buffer(m: Sent, key: string): Uint8Array {
    const i = (m.data.buffer_paths as string[][]).findIndex((p) => p[0] === key);
    assert.ok(i >= 0, `no buffer ${key} in ${JSON.stringify(m.data.buffer_paths)}`);
    return m.buffers[i];
  }
}

const comms: FakeComm[] = [];

/** What a notebook does with a cell's value: shows it, which opens the widget's comm. */
async function shown<T extends { _repr_mimebundle_(): unknown }>(w: T | Promise<T>): Promise<T> {
  const v = await w;
  await v._repr_mimebundle_();
  return v;
}
function installFakeKernel(): void {
  (globalThis as Record<string, unknown>).__anndataOomKernel = {
    apiVersion: 1,
    display() {},
    newDisplayId: () => "d",
    interruptSignal: () => new AbortController().signal,
    registerCommTarget() {},
    openComm(target: string, data: Record<string, any>, buffers: ArrayBufferView[] = [], metadata: Record<string, unknown> = {}) {
      const c = new FakeComm(
        `comm${comms.length}`,
        target,
        { data, buffers: buffers.map((b) => new Uint8Array(b.buffer, b.byteOffset, b.byteLength)) },
        metadata,
      );
      comms.push(c);
      return c;
    },
  };
}
function removeFakeKernel(): void {
  delete (globalThis as Record<string, unknown>).__anndataOomKernel;
}

function ipc(bytes: Uint8Array, col: string): number[] {
  return Array.from(tableFromIPC(bytes).getChild(col)?.toArray() as ArrayLike<number>);
}

let adata: AnnDataOOM;
before(async () => {
  adata = await read(path.join(P, "plots.h5ad"));
});
after(() => adata?.close());

describe("pl.explore in the kernel", () => {
  before(installFakeKernel);
  after(removeFakeKernel);
  afterEach(() => {
    comms.length = 0;
  });

  it("opens a jupyter.widget comm (protocol 2.1) with positions and colors as Arrow IPC buffers", async () => {
    const plot = await pl.explore(adata, { color: "leiden" });
    assert.equal(comms.length, 0, "nothing goes to the browser before the plot is shown");
    await plot._repr_mimebundle_();
    assert.equal(comms.length, 1);
    const c = comms[0];
    assert.equal(c.target, "jupyter.widget");
    assert.deepEqual(c.metadata, { version: "2.1.0" });
    const { state } = c.open.data;
    assert.equal(state._model_name, "ScatterModel");
    assert.equal(state._view_module, "anndata-oom-lab");
    assert.equal(state.positions, null, "binary values are buffers, not JSON");
    const umap = (await adata.obsm.get("X_umap")) as { data: Float32Array };
    const x = ipc(FakeComm.buffer(c.open, "positions"), "x");
    const y = ipc(FakeComm.buffer(c.open, "positions"), "y");
    assert.equal(x.length, adata.nObs);
    for (const i of [0, 1, 450, 899]) {
      assert.equal(x[i], umap.data[2 * i]);
      assert.equal(y[i], umap.data[2 * i + 1]);
    }
    const codes = ipc(FakeComm.buffer(c.open, "colors"), "code");
    const leiden = adata.obs.getChild("leiden")!;
    const cats = state.color.categories as string[];
    for (const i of [0, 7, 899]) assert.equal(cats[codes[i]], String(leiden.get(i)));
    assert.deepEqual(state.color.colors, oracle.colors.leiden, "scanpy's colors for the categories");
    const bundle = await plot._repr_mimebundle_();
    assert.deepEqual(bundle["application/vnd.jupyter.widget-view+json"], { model_id: "comm0", version_major: 2, version_minor: 1 });
    assert.ok(String(bundle["image/png"]).length > 100 && String(bundle["image/svg+xml"]).startsWith("<svg"));
    assert.equal((bundle["application/vnd.anndata-oom.scatter+json"] as { n: number }).n, 900);
    assert.equal((bundle["application/vnd.anndata-oom.scatter+json"] as { na: boolean }).na, false);
  });

  it("the snapshot summary says when cells have no category (its legend then lists NA)", async () => {
    const b = await read(path.join(P, "plots.h5ad"));
    try {
      b.setObs(
        "partial",
        Array.from({ length: b.nObs }, (_, i) => (i % 3 === 0 ? null : i % 2 ? "a" : "b")),
      );
      const plot = await shown(pl.explore(b, { color: "partial" }));
      const summary = (await plot._repr_mimebundle_())["application/vnd.anndata-oom.scatter+json"] as { na: boolean };
      assert.equal(summary.na, true);
    } finally {
      b.close();
    }
  });

  it("uses uns colors as scanpy does, and colors by a gene with its values", async () => {
    await shown(pl.explore(adata, { color: "cell_type" }));
    assert.deepEqual(comms[0].open.data.state.color.colors, oracle.colors.cell_type);
    await shown(pl.explore(adata, { color: "G3", colorMap: "viridis" }));
    const { state } = comms[1].open.data;
    const g3 = (await adata.obsVector("G3")) as Float64Array;
    const values = ipc(FakeComm.buffer(comms[1].open, "colors"), "value");
    assert.equal(state.color.kind, "continuous");
    assert.equal(state.color.source, "gene");
    assert.equal(state.color.colormap.length, 256);
    assert.equal(state.color.colormap[0], "#440154");
    for (const i of [0, 5, 899]) assert.ok(Math.abs(values[i] - g3[i]) < 1e-6);
    assert.equal(state.color.vmax, Math.max(...Array.from(g3).map(Math.fround)));
  });

  it("a gene color goes through the gene index: built on first use when asked (auto: big files only)", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "aoom-gidx-"));
    const prev = process.env.ANNDATA_OOM_GENE_INDEX_DIR;
    process.env.ANNDATA_OOM_GENE_INDEX_DIR = dir;
    try {
      const a = await read(path.join(P, "plots.h5ad"));
      await shown(pl.explore(a, { color: "G5" }));
      assert.equal(a.X.geneIndexInfo().built, false, "a small file gets no index by default");
      await shown(pl.explore(a, { color: "G5", geneIndex: true }));
      assert.equal(a.X.geneIndexInfo().built, true);
      const viaIndex = ipc(FakeComm.buffer(comms[1].open, "colors"), "value");
      const viaPass = ipc(FakeComm.buffer(comms[0].open, "colors"), "value");
      assert.deepEqual(viaIndex, viaPass);
      a.close();
    } finally {
      if (prev === undefined) delete process.env.ANNDATA_OOM_GENE_INDEX_DIR;
      else process.env.ANNDATA_OOM_GENE_INDEX_DIR = prev;
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("a lasso update becomes plot.selection, a mask usable as a subset", async () => {
    const plot = await shown(pl.explore(adata, { color: "leiden" }));
    const seen: number[][] = [];
    plot.onSelect((idx) => seen.push(Array.from(idx)));
    assert.equal(
      plot.selection.reduce((s, v) => s + v, 0),
      0,
    );
    const sel = Uint32Array.of(9, 2, 4, 5000, 4); // 5000 is out of range, the second 4 a repeat: dropped
    comms[0].receive({ method: "update", state: { selection: null, selection_count: 4 }, buffer_paths: [["selection"]] }, [
      new Uint8Array(sel.buffer),
    ]);
    assert.deepEqual(Array.from(plot.selectedIndices), [2, 4, 9]);
    assert.deepEqual(seen, [[2, 4, 9]]);
    const sub = adata.subset({ obs: plot.selection });
    assert.equal(sub.nObs, 3);
    assert.equal(String(sub.obsNames.get(0)), String(adata.obsNames.get(2)));
    // a malformed buffer (not whole uint32s) is ignored
    comms[0].receive({ method: "update", state: { selection: null }, buffer_paths: [["selection"]] }, [new Uint8Array(3)]);
    assert.deepEqual(Array.from(plot.selectedIndices), [2, 4, 9]);
  });

  it("answers hover and request_state", async () => {
    await shown(pl.explore(adata, { color: "with_na" }));
    const c = comms[0];
    c.receive({ method: "custom", content: { event: "hover", index: 3 } });
    const hover = c.sent.at(-1)!.data;
    assert.equal(hover.method, "custom");
    assert.equal(hover.content.name, String(adata.obsNames.get(3)));
    assert.equal(hover.content.key, "with_na");
    const v = adata.obs.getChild("with_na")!.get(3);
    assert.equal(hover.content.value, v === null ? null : String(v));
    c.receive({ method: "custom", content: { event: "hover", index: -1 } });
    c.receive({ method: "custom", content: { event: "hover", index: 10 ** 9 } });
    assert.equal(c.sent.length, 1, "out-of-range hovers get no answer");
    // A view may change the selection only, not the model's name or cell count.
    c.receive({ method: "update", state: { _model_name: "Evil", n: 3, title: "x" }, buffer_paths: [] });
    c.receive({ method: "request_state" });
    const st = c.sent.at(-1)!;
    assert.equal(st.data.method, "update");
    assert.equal(st.data.state._model_name, "ScatterModel");
    assert.equal(st.data.state.n, adata.nObs);
    assert.ok(FakeComm.buffer(st, "positions").byteLength > 900 * 8);
  });

  it("setColor re-sends only the colors; refreshPositions only the positions", async () => {
    const plot = await shown(pl.explore(adata, { color: "leiden" }));
    const c = comms[0];
    await plot.setColor("score");
    const m = c.sent.at(-1)!;
    assert.deepEqual(m.data.buffer_paths, [["colors"]]);
    assert.equal(m.data.state.color.kind, "continuous");
    assert.ok(Number.isNaN(ipc(FakeComm.buffer(m, "colors"), "value").find((v) => Number.isNaN(v)) ?? 0), "missing values travel as NaN");
    await plot.refreshPositions();
    assert.deepEqual(c.sent.at(-1)!.data.buffer_paths, [["positions"]]);
    await plot.setColor(null);
    assert.deepEqual(c.sent.at(-1)!.data.state.color, { kind: "none", key: null });
  });

  it("a model the kernel closed (its cells cleared) reopens with the current state when shown again; close() is final", async () => {
    const plot = await shown(pl.explore(adata, { color: "leiden" }));
    comms[0].receive({ method: "update", state: { selection: null }, buffer_paths: [["selection"]] }, [
      new Uint8Array(Uint32Array.of(3, 8).buffer),
    ]);
    comms[0].closeFromKernel();
    assert.equal(plot.isLive, true, "dormant, not closed");
    await plot.setColor("score");
    assert.equal(comms[0].sent.length, 0, "nothing is sent to a closed model");
    assert.equal(comms.length, 1, "no model is opened until the plot is shown");
    // a message still in flight from the closed model is not this plot's any more
    comms[0].receive({ method: "update", state: { selection: null }, buffer_paths: [["selection"]] }, [
      new Uint8Array(Uint32Array.of(5).buffer),
    ]);
    assert.deepEqual(Array.from(plot.selectedIndices), [3, 8]);
    const bundle = await plot._repr_mimebundle_();
    assert.equal(comms.length, 2);
    const { state } = comms[1].open.data;
    assert.equal(state.color.key, "score", "the new model has the current color");
    assert.equal(state.title, "score");
    assert.deepEqual(Array.from(new Uint32Array(FakeComm.buffer(comms[1].open, "selection").slice().buffer)), [3, 8], "and selection");
    assert.equal((bundle["application/vnd.jupyter.widget-view+json"] as { model_id: string }).model_id, "comm1");
    assert.equal((bundle["application/vnd.anndata-oom.scatter+json"] as { model_id: string }).model_id, "comm1");
    await plot.setColor("leiden");
    assert.deepEqual(comms[1].sent.at(-1)!.data.buffer_paths, [["colors"]]);
    plot.close();
    assert.equal(comms[1].closed, true);
    assert.equal(plot.isLive, false);
    const after = await plot._repr_mimebundle_();
    assert.equal(after["application/vnd.jupyter.widget-view+json"], undefined, "a closed plot shows its snapshot only");
    assert.ok(after["image/png"]);
    assert.equal(comms.length, 2);
  });

  it("a title given to pl.explore is shown (live and in the snapshot) for the first coloring; setColor sets its own or the key", async () => {
    const plot = await shown(pl.explore(adata, { color: "leiden", title: "My UMAP" }));
    const c = comms[0];
    assert.equal(c.open.data.state.title, "My UMAP");
    const summary = async () => ((await plot._repr_mimebundle_())["application/vnd.anndata-oom.scatter+json"] as { title: string }).title;
    assert.equal(await summary(), "My UMAP", "the snapshot has the title the live view shows");
    await plot.setColor("score");
    assert.equal(c.sent.at(-1)!.data.state.title, "score", "another coloring: the user's title no longer describes it");
    await plot.setColor("leiden", { title: "clusters again" });
    assert.equal(c.sent.at(-1)!.data.state.title, "clusters again");
    assert.equal(await summary(), "clusters again");
    await plot.setColor(null);
    assert.equal(c.sent.at(-1)!.data.state.title, "X_umap");
    await assert.rejects(plot.setColor("leiden", { title: 3 as never }), InvalidArgumentError);
  });

  it("bad input: typed errors naming the key", async () => {
    await assert.rejects(
      pl.explore(adata, { color: "nope" }),
      (e: Error) => e instanceof InvalidArgumentError && e.message.includes('"nope"'),
    );
    await assert.rejects(
      pl.explore(adata, { basis: "tsne" }),
      (e: Error) => e instanceof InvalidArgumentError && e.message.includes("tsne"),
    );
    await assert.rejects(
      pl.explore(adata, { components: [1, 3] }),
      (e: Error) => e instanceof InvalidArgumentError && e.message.includes("components: 3 is out of range 1..2"),
    );
    await assert.rejects(pl.explore(adata, { pointSize: 0 }), InvalidArgumentError);
    for (const o of [{ pointSize: 1e9 }, { height: -5 }, { height: "abc" as never }, { height: 1e7 }, { title: {} as never }])
      await assert.rejects(pl.explore(adata, o), InvalidArgumentError);
    assert.equal(comms.length, 0, "no widget is opened for bad input");
  });
});

describe("pl.controls", () => {
  before(installFakeKernel);
  after(removeFakeKernel);
  afterEach(() => {
    comms.length = 0;
  });

  it("a Leiden resolution change re-runs Leiden and recolors the scatter in place", async () => {
    const a = adata.subset({ obs: Array.from({ length: 900 }, (_, i) => i) });
    await pp.neighbors(a, { useRep: "X_pca", nNeighbors: 10 });
    const plot = await shown(pl.explore(a, { color: "leiden" }));
    const ctl = await shown(pl.controls(plot, "leiden"));
    const [scatterComm, ctlComm] = comms;
    assert.equal(ctlComm.open.data.state._model_name, "ControlsModel");
    assert.equal(ctlComm.open.data.state.params[0].name, "resolution");
    ctlComm.receive({ method: "update", state: { values: { resolution: 0.3 } }, buffer_paths: [] });
    await ctl.idle;
    const low = a.obs.getChild("leiden")!;
    const nLow = new Set(low.toArray()).size;
    const sent = scatterComm.sent.at(-1)!;
    assert.deepEqual(sent.data.buffer_paths, [["colors"]]);
    assert.equal(sent.data.state.color.categories.length, nLow);
    assert.match(ctlComm.sent.at(-1)!.data.state.status, new RegExp(`resolution 0.3\\): ${nLow} cluster`));
    await ctl.set({ resolution: 2.5 });
    assert.ok(new Set(a.obs.getChild("leiden")!.toArray()).size > nLow, "a higher resolution gives more clusters");
  });

  it("a UMAP min_dist change re-runs UMAP and moves the points in place", async () => {
    const a = adata.subset({ obs: Array.from({ length: 900 }, (_, i) => i) });
    await pp.neighbors(a, { useRep: "X_pca", nNeighbors: 10 });
    const plot = await shown(pl.explore(a, { color: "leiden" }));
    const before = Float32Array.from(((await a.obsm.get("X_umap")) as { data: Float32Array }).data);
    const ctl = await shown(pl.controls(plot, "umap", { minDist: 0.5 }));
    await ctl.set({ minDist: 0.1 });
    const sent = comms[0].sent.at(-1)!;
    assert.deepEqual(sent.data.buffer_paths, [["positions"]]);
    const after = ((await a.obsm.get("X_umap")) as { data: Float32Array }).data;
    assert.notDeepEqual(Array.from(after.slice(0, 10)), Array.from(before.slice(0, 10)), "a new layout");
    assert.equal(ipc(FakeComm.buffer(sent, "positions"), "x")[3], after[6]);
    assert.match(comms[1].sent.at(-1)!.data.state.status, /min_dist 0.1/);
  });

  it("a number-of-HVGs change re-runs HVG → scale → PCA → neighbors → UMAP (→ Leiden) and updates the plot", async () => {
    const from = adata.subset({ obs: Array.from({ length: 900 }, (_, i) => i) });
    const plotted = from.subset({ obs: Array.from({ length: 900 }, (_, i) => i) });
    const plot = await shown(pl.explore(plotted, { color: "leiden" }));
    plotted.uns.leiden = { params: { resolution: 1 } };
    const ctl = await shown(pl.controls(plot, "hvg", { from, nTopGenes: 20 }));
    await ctl.set({ nTopGenes: 200 });
    const status = comms[1].sent.at(-1)!.data.state.status as string;
    assert.match(status, /^\d+ highly variable genes → \d+ clusters?$/, status);
    const nHvg = Number(status.split(" ")[0]);
    assert.ok(nHvg > 0 && nHvg <= 30, "at most the genes there are");
    const kinds = comms[0].sent.map((m) => m.data.buffer_paths.flat().join(","));
    assert.ok(kinds.includes("positions") && kinds.includes("colors"), kinds.join(" | "));
    assert.throws(() => pl.controls(plot, "hvg", { from: adata.subset({ obs: [0, 1] }) }), /'from' has 2 cells/);
  });

  it("a newer value cancels the run still going; errors show in the status", async () => {
    const plot = await shown(pl.explore(adata, { color: "leiden" }));
    const signals: AbortSignal[] = [];
    const ctl = await shown(
      pl.controls(plot, {
        step: "slow",
        params: [{ name: "k", min: 0, max: 10, step: 1, value: 1 }],
        run: async ({ k }, { signal }) => {
          signals.push(signal);
          if (k === 7) throw new Error("boom");
          await new Promise((r) => setTimeout(r, 50));
          return `k=${k}`;
        },
      }),
    );
    const ctlComm = comms[1];
    void ctl.set({ k: 2 });
    await ctl.set({ k: 3 });
    assert.equal(signals[0].aborted, true);
    assert.equal(signals[1].aborted, false);
    assert.equal(ctlComm.sent.at(-1)!.data.state.status, "k=3");
    await ctl.set({ k: 7 });
    assert.equal(ctlComm.sent.at(-1)!.data.state.status, "failed: boom");
    assert.throws(
      () => ctl.set({ k: 11 }),
      (e: Error) => e instanceof InvalidArgumentError && e.message.includes("k must be a number in [0, 10]"),
    );
    // Values are numbers, never coerced ("" or null would have become 0).
    for (const bad of [{ k: null }, { k: "" }, { k: true }, { k: [3] }, { other: 1 }, null, "3"])
      assert.throws(() => ctl.set(bad as never), InvalidArgumentError);
    // Refused values from the sliders: no re-run, and the sliders go back.
    const runs = signals.length;
    ctlComm.receive({ method: "update", state: { values: { k: 99 } }, buffer_paths: [] });
    ctlComm.receive({ method: "update", state: { values: { k: 7 } }, buffer_paths: [] }); // unchanged: no re-run
    await ctl.idle;
    assert.equal(signals.length, runs);
    const last = ctlComm.sent.at(-1)!.data.state;
    assert.deepEqual(last.values, { k: 7 });
    assert.match(last.status, /not run: k must be a number/);
    const binding = { step: "x", params: [{ name: "r", min: 0, max: 1, step: 0.1, value: 0.5 }], run: async () => "" };
    assert.throws(() => pl.controls(plot, { ...binding, params: [binding.params[0], binding.params[0]] }), /two params are named "r"/);
    assert.throws(() => pl.controls(plot, { ...binding, params: null as never }), InvalidArgumentError);
    assert.throws(() => pl.controls(plot, { ...binding, params: [{ ...binding.params[0], value: 2 }] }), /min ≤ value ≤ max/);
    assert.throws(() => pl.controls(plot, "hvg"), InvalidArgumentError);
    assert.throws(() => pl.controls(plot, "tsne" as "umap"), InvalidArgumentError);
  });
});

describe("pl.explore outside a kernel", () => {
  it("works without comms: no widget, a text and snapshot bundle", async () => {
    removeFakeKernel();
    const plot = await pl.explore(adata, { color: "leiden" });
    assert.equal(plot.isLive, false);
    const b = await plot._repr_mimebundle_();
    assert.equal(b["application/vnd.jupyter.widget-view+json"], undefined);
    assert.match(String(b["text/plain"]), /interactive X_umap of 900 cells colored by leiden/);
    assert.ok(b["image/png"]);
  });
});

describe("widget buffers", () => {
  it("split and join top-level binary values", () => {
    const bytes = new Uint8Array([1, 2, 3]);
    const { state, bufferPaths, buffers } = splitBuffers({ a: 1, b: bytes, c: "x" });
    assert.deepEqual(state, { a: 1, b: null, c: "x" });
    assert.deepEqual(bufferPaths, [["b"]]);
    assert.deepEqual(Array.from(buffers[0]), [1, 2, 3]);
    assert.deepEqual(joinBuffers(state, bufferPaths, buffers), { a: 1, b: buffers[0], c: "x" });
    assert.deepEqual(joinBuffers({ a: 1 }, "junk", undefined), { a: 1 });
  });
});
