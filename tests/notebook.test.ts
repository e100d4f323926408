/**
 * The engine's notebook hooks with a stand-in for the kernel global: one
 * display per pass updated in place (≤ 10/s) ending in done / cancelled,
 * the kernel's interrupt signal as the default signal of passes, and no
 * effect when a call brings its own onProgress / signal or when the
 * global is absent (checked at pass start, not at import).
 */
import * as assert from "node:assert/strict";
import * as path from "node:path";
import { afterEach, describe, it } from "node:test";
import { CancelledError, type Progress, read, setDefaultProgress } from "../src/engine";
import {
  type KernelHandle,
  kernelProgress,
  MAX_BARS_PER_CELL,
  PROGRESS_MIME,
  PROGRESS_TARGET,
  progressBundle,
  runningPassCount,
} from "../src/engine/notebook";
import { toProgress } from "../src/engine/pass";
import { FIXTURES } from "./helpers";

const LARGE = path.join(FIXTURES, "csr_large_gzip.h5ad");

interface Sent {
  bundle: Record<string, unknown>;
  opts: { displayId?: string; update?: boolean } | undefined;
  at: number;
}

function fakeKernel(signal: AbortSignal): Sent[] {
  const sent: Sent[] = [];
  let ids = 0;
  (globalThis as Record<string, unknown>).__anndataOomKernel = {
    apiVersion: 1,
    display: (bundle: Record<string, unknown>, opts?: { displayId?: string; update?: boolean }) =>
      sent.push({ bundle: JSON.parse(JSON.stringify(bundle)), opts, at: Date.now() }),
    newDisplayId: () => `id${++ids}`,
    interruptSignal: () => signal,
  };
  return sent;
}

afterEach(() => {
  delete (globalThis as Record<string, unknown>).__anndataOomKernel;
  setDefaultProgress(undefined);
});

describe("progress lines", () => {
  const base: Progress = {
    label: "job",
    chunksDone: 50,
    chunksTotal: 200,
    rowsDone: 0,
    rowsTotal: 0,
    bytesDone: 0,
    elapsedMs: 1000,
    rate: 0,
    etaMs: 3000,
    state: "running",
  };

  it("a job counted in chunks shows its ETA and no row rate", () => {
    const text = progressBundle(base)["text/plain"];
    assert.equal(text, "job: 25% chunk 50/200 ETA 3.0s [running]");
    assert.doesNotMatch(progressBundle(base)["text/html"], /rows\/s/);
  });

  it("no ETA from the first chunks alone (they also pay for starting the pass): from 1 % of the work or 1 s on", () => {
    const native = {
      chunksDone: 1,
      chunksTotal: 19_647,
      rowsDone: 100,
      rowsTotal: 1_964_700,
      entriesDone: 0,
      entriesTotal: 0,
      bytesDone: 0,
      finished: false,
    };
    assert.ok(Number.isNaN(toProgress("X", { ...native, elapsedMs: 15 }, "running").etaMs), "one chunk in");
    // a second in, or 1 % of the rows: the rate is measured well enough
    assert.ok(Math.abs(toProgress("X", { ...native, elapsedMs: 1000 }, "running").etaMs - 19_646_000) < 1);
    const onePercent = toProgress("X", { ...native, rowsDone: 19_647, chunksDone: 197, elapsedMs: 30 }, "running").etaMs;
    assert.ok(Math.abs(onePercent - 2970) < 1e-6, String(onePercent));
    // jobs counted in chunks only
    const epochs = { ...native, chunksTotal: 30, rowsDone: 0, rowsTotal: 0 };
    assert.ok(Math.abs(toProgress("UMAP", { ...epochs, elapsedMs: 20 }, "running").etaMs - 580) < 1e-6);
    assert.ok(Number.isNaN(toProgress("UMAP", { ...epochs, chunksTotal: 1000, elapsedMs: 20 }, "running").etaMs));
  });

  it("a pass over rows shows its row rate", () => {
    const p = { ...base, rowsDone: 5000, rowsTotal: 20000, rate: 5000 };
    assert.equal(progressBundle(p)["text/plain"], "job: 25% chunk 50/200 5,000 rows/s ETA 3.0s [running]");
    assert.match(progressBundle(p)["text/html"], /5,000 rows\/s/);
  });
});

describe("notebook progress and interrupt (fake kernel global)", () => {
  it("a pass shows one display, updated in place, ending in done", async () => {
    const a = await read(LARGE); // opened before the global exists: looked up per pass
    const sent = fakeKernel(new AbortController().signal);
    await a.X.sum(1);
    await a.X.var(0); // a second pass
    assert.ok(sent.length >= 2, JSON.stringify(sent));
    const ids = [...new Set(sent.map((s) => s.opts?.displayId))];
    assert.deepEqual(ids, ["id1", "id2"], "one display per pass");
    for (const id of ids) {
      const mine = sent.filter((s) => s.opts?.displayId === id);
      assert.equal(mine[0].opts?.update, undefined, "first a display");
      assert.ok(
        mine.slice(1).every((s) => s.opts?.update === true),
        "then updates",
      );
      const last = mine[mine.length - 1].bundle;
      assert.match(String(last["text/plain"]), /100% .*\[done\]$/);
      assert.match(String(last["text/html"]), /data-state="done"/);
      const running = mine.filter((s) => String(s.bundle["text/plain"]).endsWith("[running]"));
      for (let i = 1; i < running.length; i++) assert.ok(running[i].at - running[i - 1].at >= 90, "≤ 10 updates/s");
    }
    a.close();
  });

  it("a step stuck on one chunk (a long graph job) updates its bar about once a second, not ten times", async () => {
    const sent = fakeKernel(new AbortController().signal);
    const report = kernelProgress((globalThis as Record<string, unknown>).__anndataOomKernel as KernelHandle, "stuck");
    const started = Date.now();
    const at = (chunksDone: number, state: Progress["state"] = "running"): Progress => ({
      label: "umap",
      chunksDone,
      chunksTotal: 20,
      rowsDone: 0,
      rowsTotal: 0,
      bytesDone: 0,
      elapsedMs: Date.now() - started,
      rate: 0,
      etaMs: Number.NaN,
      state,
    });
    const pause = () => new Promise((r) => setTimeout(r, 150));
    report(at(2));
    for (let i = 0; i < 4; i++) {
      await pause();
      report(at(2)); // the same chunk, only the clock moved: held back below 1 s
    }
    assert.equal(sent.length, 1, "one display, no updates within the second");
    report(at(3)); // a new chunk is shown at once
    assert.equal(sent.length, 2);
    await new Promise((r) => setTimeout(r, 1050));
    report(at(3)); // the clock is refreshed after a second
    report(at(20, "done"));
    assert.equal(sent.length, 4);
    assert.match(String(sent[3].bundle["text/plain"]), /\[done\]$/);
  });

  it("a cell running many passes gets MAX_BARS_PER_CELL bars, then one shared display", async () => {
    const a = await read(LARGE);
    const sent = fakeKernel(new AbortController().signal); // one cell: one interrupt signal
    const n = MAX_BARS_PER_CELL + 15;
    for (let j = 0; j < n; j++) await a.X.obsVector(j % a.nVars);
    const ids = [...new Set(sent.map((s) => s.opts?.displayId))];
    assert.equal(ids.length, MAX_BARS_PER_CELL + 1);
    const shared = sent.filter((s) => s.opts?.displayId === ids[ids.length - 1]);
    assert.equal(shared[0].opts?.update, undefined, "first a display");
    assert.ok(
      shared.slice(1).every((s) => s.opts?.update === true),
      "then updates",
    );
    const finals = shared.filter((s) => /\[done\]$/.test(String(s.bundle["text/plain"])));
    assert.equal(finals.length, n - MAX_BARS_PER_CELL, "each later pass ends in the shared display");
    a.close();
  });

  it("the kernel's interrupt signal cancels a pass that has no signal; the object stays usable", async () => {
    const a = await read(LARGE);
    const ctrl = new AbortController();
    ctrl.abort();
    const sent = fakeKernel(ctrl.signal);
    await assert.rejects(a.X.sum(1), CancelledError);
    assert.match(String(sent[sent.length - 1].bundle["text/plain"]), /\[cancelled\]$/);
    // an explicit signal wins over the kernel's
    const total = await a.X.sum(undefined, { signal: new AbortController().signal });
    assert.equal(typeof total, "number");
    // chunked() too
    await assert.rejects(async () => {
      for await (const _ of a.X.chunked(100)) {
        /* nothing */
      }
    });
    a.close();
  });

  it("progress+json carries a passId; a cancel message on the progress comm stops that pass only", async () => {
    // a pass of many small blocks, so that the cancel lands mid-pass (the tiny
    // LARGE fixture could finish before the cancel message arrives)
    const a = await read(path.join(FIXTURES, "pp", "synth_3k.h5ad"));
    process.env.ANNDATA_OOM_BLOCK_BYTES = String(64 << 10);
    const sent = fakeKernel(new AbortController().signal);
    type Handler = (comm: unknown, open: { content: { data: unknown } }) => void;
    const targets: Record<string, Handler> = {};
    const k = (globalThis as Record<string, unknown>).__anndataOomKernel as Record<string, unknown>;
    k.registerCommTarget = (name: string, cb: Handler) => {
      targets[name] = cb;
    };
    const replies: unknown[] = [];
    let onMsg: ((m: { content: { data: unknown } }) => void) | undefined;
    const comm = { send: (d: unknown) => replies.push(d), onMsg: (cb: typeof onMsg) => (onMsg = cb) };
    // a display callback that cancels the first pass at its first running report
    const display = k.display as (b: Record<string, unknown>, o?: object) => void;
    let cancelled: string | undefined;
    k.display = (b: Record<string, unknown>, o?: object) => {
      display(b, o);
      const j = b[PROGRESS_MIME] as { passId: string; state: string };
      if (!cancelled && j.state === "running") {
        cancelled = j.passId;
        targets[PROGRESS_TARGET](comm, { content: { data: {} } });
        onMsg?.({ content: { data: { action: "cancel", passId: j.passId } } });
      }
    };
    await assert.rejects(a.X.sum(1), CancelledError).finally(() => {
      delete process.env.ANNDATA_OOM_BLOCK_BYTES;
    });
    assert.ok(cancelled, "no running report");
    assert.deepEqual(replies, [{ action: "cancel", passId: cancelled, found: true }]);
    const last = sent[sent.length - 1].bundle;
    assert.match(String(last["text/plain"]), /\[cancelled\]$/);
    const j = last[PROGRESS_MIME] as Record<string, unknown>;
    assert.equal(j.passId, cancelled);
    assert.equal(j.state, "cancelled");
    assert.deepEqual(Object.keys(j).sort(), [
      "chunksDone",
      "chunksTotal",
      "elapsedMs",
      "etaMs",
      "label",
      "passId",
      "rate",
      "rowsDone",
      "rowsTotal",
      "state",
    ]);
    assert.equal(runningPassCount(), 0, "finished passes are forgotten");
    // the next pass runs (a new passId); an unknown or stale passId does nothing
    const before = sent.length;
    await a.X.sum(0);
    const next = sent.slice(before).map((s) => s.bundle[PROGRESS_MIME] as { passId: string; state: string });
    assert.equal(next[next.length - 1].state, "done");
    assert.notEqual(next[0].passId, cancelled);
    onMsg?.({ content: { data: { action: "cancel", passId: cancelled } } });
    onMsg?.({ content: { data: "<junk>" } });
    assert.deepEqual(replies[1], { action: "cancel", passId: cancelled, found: false });
    a.close();
  });

  it("onProgress, setDefaultProgress and plain Node keep their behaviour", async () => {
    const a = await read(LARGE);
    await a.X.nnz(1); // no global: no display, no error
    const sent = fakeKernel(new AbortController().signal);
    const mine: Progress[] = [];
    await a.X.var(0, { onProgress: (p) => mine.push(p) });
    assert.equal(sent.length, 0);
    assert.equal(mine[mine.length - 1].state, "done");
    const dflt: Progress[] = [];
    setDefaultProgress((p) => dflt.push(p));
    await a.subset({ obs: [0, 1, 2] }).X.var(1);
    assert.equal(sent.length, 0);
    assert.equal(dflt[dflt.length - 1].state, "done");
    a.close();
  });
});
