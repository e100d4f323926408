/**
 * The progress bar in jsdom: running / done / cancelled / failed, the
 * Cancel button only while running, hostile labels as text, and the mime
 * renderer finding the kernel through its widget ancestors and sending
 * `{ action: "cancel", passId }` on a comm to "anndata-oom.progress".
 */
import * as assert from "node:assert/strict";
import { beforeEach, describe, it } from "node:test";
import { JSDOM } from "jsdom";
import { formatDuration, PROGRESS_CLASS, PROGRESS_MIME, PROGRESS_TARGET, type ProgressData, renderProgress } from "../../widgets/progress";
import { freshHost, installDomGlobals } from "./dom-globals";

const HOSTILE = "<img src=x onerror=alert(1)>";

function sample(over: Partial<ProgressData> = {}): ProgressData {
  return {
    passId: "p1-1",
    label: "X.sum(axis=1)",
    chunksDone: 25,
    chunksTotal: 100,
    rowsDone: 50_000,
    rowsTotal: 200_000,
    rate: 123_456.7,
    etaMs: 65_000,
    elapsedMs: 1_500,
    state: "running",
    ...over,
  };
}

let host: HTMLElement;
beforeEach(() => {
  ({ host } = freshHost());
});
const q = (sel: string) => host.querySelector(sel) as HTMLElement | null;
const text = (cls: string) => q(`.${cls}`)?.textContent;

describe("progress bar", () => {
  it("running: label, state, %, bar width, chunks, rate, rows, ETA and a Cancel button", () => {
    let clicks = 0;
    renderProgress(host, sample(), { onCancel: () => clicks++ });
    assert.equal(q(`.${PROGRESS_CLASS.root}`)?.dataset.state, "running");
    assert.equal(text(PROGRESS_CLASS.label), "X.sum(axis=1)");
    assert.equal(text(PROGRESS_CLASS.state), "running");
    assert.equal(text(PROGRESS_CLASS.pct), "25%");
    assert.equal(q(`.${PROGRESS_CLASS.fill}`)?.style.width, "25%");
    assert.equal(q(`.${PROGRESS_CLASS.bar}`)?.getAttribute("aria-valuenow"), "25");
    assert.equal(text(PROGRESS_CLASS.facts), "chunk 25/100 · 123,457 rows/s · 50,000/200,000 rows · ETA 1m05s");
    const b = q(`.${PROGRESS_CLASS.cancel}`) as HTMLButtonElement;
    assert.ok(b && !b.disabled && b.textContent === "Cancel");
    b.click();
    assert.equal(clicks, 1);
  });

  it("no ETA before the first chunk; cancel requested shows a disabled 'Cancelling…'", () => {
    renderProgress(host, sample({ chunksDone: 0, rowsDone: 0, etaMs: null, rate: 0 }), {
      onCancel: () => undefined,
      cancelRequested: true,
    });
    assert.equal(text(PROGRESS_CLASS.facts), "chunk 0/100 · 0 rows/s · 0/200,000 rows");
    const b = q(`.${PROGRESS_CLASS.cancel}`) as HTMLButtonElement;
    assert.ok(b.disabled && b.textContent === "Cancelling…");
  });

  it("final states: styling hook, time taken, no Cancel button", () => {
    for (const state of ["done", "cancelled", "failed"] as const) {
      renderProgress(host, sample({ state, chunksDone: state === "done" ? 100 : 40 }), { onCancel: () => assert.fail("no button") });
      assert.equal(q(`.${PROGRESS_CLASS.root}`)?.dataset.state, state);
      assert.equal(text(PROGRESS_CLASS.state), state);
      assert.equal(q(`.${PROGRESS_CLASS.cancel}`), null, `${state}: no button`);
      assert.match(text(PROGRESS_CLASS.facts) ?? "", / · in 1\.5s$/);
      assert.equal(text(PROGRESS_CLASS.pct), state === "done" ? "100%" : "40%");
    }
    // done is full even when the chunk count is off
    renderProgress(host, sample({ state: "done", chunksDone: 3, chunksTotal: 0 }));
    assert.equal(q(`.${PROGRESS_CLASS.fill}`)?.style.width, "100%");
  });

  it("updates change the same elements in place (the button survives an update)", () => {
    let clicks = 0;
    renderProgress(host, sample(), { onCancel: () => clicks++ });
    const b = q(`.${PROGRESS_CLASS.cancel}`);
    const root = q(`.${PROGRESS_CLASS.root}`);
    renderProgress(host, sample({ chunksDone: 50 }), { onCancel: () => (clicks += 10) });
    assert.equal(q(`.${PROGRESS_CLASS.cancel}`), b);
    assert.equal(q(`.${PROGRESS_CLASS.root}`), root);
    assert.equal(text(PROGRESS_CLASS.pct), "50%");
    b?.click();
    assert.equal(clicks, 10, "the latest handler");
    assert.equal(host.querySelectorAll(`.${PROGRESS_CLASS.root}`).length, 1);
    // a host emptied by someone else is rebuilt
    host.replaceChildren();
    renderProgress(host, sample({ state: "done" }));
    assert.equal(text(PROGRESS_CLASS.state), "done");
  });

  it("no onCancel: no button even while running", () => {
    renderProgress(host, sample());
    assert.equal(q(`.${PROGRESS_CLASS.cancel}`), null);
  });

  it("hostile label and note are text; junk data renders without throwing", () => {
    renderProgress(host, sample({ label: HOSTILE }), { onCancel: () => undefined, note: HOSTILE });
    assert.equal(text(PROGRESS_CLASS.label), HOSTILE);
    assert.equal(text(PROGRESS_CLASS.note), HOSTILE);
    assert.equal(host.querySelector("img, script"), null);
    for (const e of Array.from(host.querySelectorAll("*"))) {
      assert.ok(!Array.from(e.attributes).some((a) => a.name.startsWith("on")), e.outerHTML);
    }
    renderProgress(host, { state: "<b>x</b>", chunksDone: "NaN", etaMs: Number.NaN });
    assert.equal(q(`.${PROGRESS_CLASS.root}`)?.dataset.state, "unknown", "an unknown state is not shown as failed");
    assert.equal(host.querySelector("b"), null);
    renderProgress(host, null);
    assert.ok(q(`.${PROGRESS_CLASS.root}`));
  });

  it("formatDuration", () => {
    assert.deepEqual(
      [formatDuration(400), formatDuration(59_940), formatDuration(185_000), formatDuration(3_723_000)],
      ["0.4s", "59.9s", "3m05s", "1h02m"],
    );
  });
});

describe("progress mime renderer", () => {
  it("renders, keeps 'Cancelling…' across updates, and cancels over a comm via the panel's sessionContext", async () => {
    const dom = new JSDOM("<!doctype html><body></body>");
    installDomGlobals(dom.window);
    const { Widget, Panel } = await import("@lumino/widgets");
    const mime = await import("../mime");
    const ext = mime.default as unknown as { rendererFactory: { mimeTypes: string[] } }[];
    assert.ok(ext.some((e) => e.rendererFactory.mimeTypes.includes(PROGRESS_MIME)));
    const r = mime.progressRendererFactory.createRenderer({
      mimeType: PROGRESS_MIME,
      sanitizer: {} as never,
      resolver: null,
      linkHandler: null,
      latexTypesetter: null,
    }) as InstanceType<typeof mime.ProgressRenderer>;
    const model = (d: ProgressData) => ({ data: { [PROGRESS_MIME]: d }, metadata: {}, trusted: false, setData: () => undefined }) as never;
    await r.renderModel(model(sample()));
    const btn = () => r.node.querySelector(`.${PROGRESS_CLASS.cancel}`) as HTMLButtonElement | null;

    // not inside a panel with a session: a note, no crash
    btn()?.click();
    assert.match(r.node.querySelector(`.${PROGRESS_CLASS.note}`)?.textContent ?? "", /no kernel/);

    // a fake NotebookPanel: Panel > Panel (cell) > renderer
    const log: unknown[] = [];
    const panel = new Panel() as InstanceType<typeof Panel> & { sessionContext: unknown };
    panel.sessionContext = {
      session: {
        kernel: {
          createComm: (target: string) => {
            log.push(["create", target]);
            const comm: { onMsg?: (m: unknown) => void; open: unknown; send: unknown; close: unknown } = {
              open: (d: unknown) => log.push(["open", d]),
              send: (d: unknown) => {
                log.push(["send", d]);
                // The kernel answers on the same comm (found: is that pass running?).
                const { passId } = d as { passId: string };
                queueMicrotask(() => comm.onMsg?.({ content: { data: { action: "cancel", passId, found: passId !== "gone" } } }));
              },
              close: () => log.push(["close"]),
            };
            return comm;
          },
        },
      },
    };
    const cell = new Panel();
    panel.addWidget(cell);
    cell.addWidget(r as InstanceType<typeof Widget>);
    assert.ok(mime.findKernel(r));
    btn()?.click();
    await new Promise((res) => setTimeout(res, 0));
    assert.deepEqual(log, [["create", PROGRESS_TARGET], ["open", {}], ["send", { action: "cancel", passId: "p1-1" }], ["close"]]);
    assert.ok(btn()?.disabled && btn()?.textContent === "Cancelling…");
    assert.equal(r.node.querySelector(`.${PROGRESS_CLASS.note}`), null);
    // an update while the kernel stops the pass keeps the state; the final one drops the button
    await r.renderModel(model(sample({ chunksDone: 30 })));
    assert.equal(btn()?.textContent, "Cancelling…");
    await r.renderModel(model(sample({ chunksDone: 30, state: "cancelled" })));
    assert.equal(btn(), null);
    assert.equal(r.node.querySelector(`.${PROGRESS_CLASS.root}`)?.getAttribute("data-state"), "cancelled");
    // The next pass in the same display (a cell's passes after its tenth share one) gets a fresh Cancel.
    await r.renderModel(model(sample({ passId: "p1-2" })));
    assert.equal(btn()?.textContent, "Cancel");
    assert.equal(btn()?.disabled, false);
    // A pass the kernel no longer runs (a notebook saved mid-pass): no endless "Cancelling…".
    await r.renderModel(model(sample({ passId: "gone" })));
    btn()?.click();
    await new Promise((res) => setTimeout(res, 0));
    assert.equal(btn(), null);
    assert.match(r.node.querySelector(`.${PROGRESS_CLASS.note}`)?.textContent ?? "", /no longer running/);
    // Junk or a newer engine's state: a message, not a red "failed" bar.
    for (const junk of [null, "x", {}, { ...sample(), state: "queued" }]) {
      await r.renderModel({ data: { [PROGRESS_MIME]: junk }, metadata: {}, trusted: false, setData: () => undefined } as never);
      const root = r.node.querySelector(`.${PROGRESS_CLASS.root}`);
      assert.equal(root?.getAttribute("data-state"), "unknown");
      assert.match(root?.textContent ?? "", /cannot render this progress output/);
    }
    panel.dispose();
  });
});
