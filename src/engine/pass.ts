/**
 * Drives a native pass from JS: polls progress without blocking the event
 * loop, forwards it to the caller (throttled), and cancels the pass when
 * the AbortSignal fires. The pass always runs to a stop before this
 * returns, so a cancelled object stays usable.
 */
import { CancelledError, ClosedError, InvalidArgumentError, nativeCall } from "./errors";
import type { Native } from "./native";
import { kernelHandle, kernelPass, kernelSignal } from "./notebook";
import type { Source } from "./source";

export interface Progress {
  /** A short label of what the pass computes. */
  label: string;
  chunksDone: number;
  chunksTotal: number;
  rowsDone: number;
  rowsTotal: number;
  bytesDone: number;
  elapsedMs: number;
  /** Rows per second so far. */
  rate: number;
  /** Estimated milliseconds left, from the rows or, for jobs that count no rows (graph steps), the chunks (NaN before the first chunk and once done). */
  etaMs: number;
  state: "running" | "done" | "cancelled" | "failed";
}

export interface PassOptions {
  /** Stops the pass within one chunk; the promise rejects with CancelledError. */
  signal?: AbortSignal;
  /**
   * Called as chunks complete (at most ~10 times a second) and at the end.
   * A step that runs several passes or jobs (randomized PCA, UMAP's
   * spectral initialisation then layout) reports each one under its own
   * `label`, each ending in its own final state.
   */
  onProgress?: (p: Progress) => void;
}

type Reporter = (p: Progress) => void;
let defaultReporter: Reporter | undefined;

/**
 * Set the reporter used when a call passes no onProgress. Without one,
 * inside the notebook kernel each pass shows a display updated in place.
 */
export function setDefaultProgress(r: Reporter | undefined): void {
  defaultReporter = r;
}

/** A typed error for a `signal` or `onProgress` of the wrong kind (before any work starts). */
export function checkPassOptions(opts: PassOptions): void {
  // Duck-typed: a signal made in another realm (a vm context) is not an
  // instanceof this one's AbortSignal.
  const sig = opts.signal as Partial<AbortSignal> | undefined | null;
  if (sig !== undefined && (sig === null || typeof sig.addEventListener !== "function" || typeof sig.aborted !== "boolean"))
    throw new InvalidArgumentError("signal must be an AbortSignal (e.g. new AbortController().signal)");
  if (opts.onProgress !== undefined && typeof opts.onProgress !== "function")
    throw new InvalidArgumentError("onProgress must be a function");
}

/** The reporter and signal of a pass starting now (looked up lazily, per pass). */
function passDefaults(opts: PassOptions): { report: Reporter | undefined; signal: AbortSignal | undefined } {
  checkPassOptions(opts);
  const k = opts.onProgress || defaultReporter ? undefined : kernelHandle();
  const outer = opts.signal ?? kernelSignal();
  if (!k) return { report: opts.onProgress ?? defaultReporter, signal: outer };
  // inside the kernel: a display with a cancel button that stops this pass only
  const shown = kernelPass(k);
  return { report: shown.report, signal: outer ? AbortSignal.any([outer, shown.signal]) : shown.signal };
}

/** A reporter that redraws one progress line on stderr. */
export function stderrProgress(): Reporter {
  return (p) => {
    const pct = p.chunksTotal ? Math.round((100 * p.chunksDone) / p.chunksTotal) : 100;
    const eta = Number.isFinite(p.etaMs) ? `${(p.etaMs / 1000).toFixed(1)}s left` : "";
    const rate = p.rowsTotal > 0 ? `${Math.round(p.rate).toLocaleString("en-US")} rows/s ` : "";
    const line = `${p.label}: ${pct}% chunk ${p.chunksDone}/${p.chunksTotal} ${rate}${eta} [${p.state}]`;
    process.stderr.write(`\r${line.padEnd(90)}${p.state === "running" ? "" : "\n"}`);
  };
}

/** A native progress report as the callback gets it. @internal (exported for tests) */
export function toProgress(label: string, p: Native.ProgressOut, state: Progress["state"]): Progress {
  const rate = p.elapsedMs > 0 ? (p.rowsDone * 1000) / p.elapsedMs : 0;
  const left = p.rowsTotal - p.rowsDone;
  // Passes over X count rows; most graph jobs (NN-descent iterations, UMAP
  // epochs, Leiden levels) count chunks only, so their ETA comes from the
  // chunks.
  const chunksLeft = p.chunksTotal - p.chunksDone;
  const done = state === "done";
  // The first chunks also pay for starting the pass (threads, first reads):
  // an ETA from them alone overshoots many times, so none before 1 % of
  // the work or a second has gone by.
  const early = p.elapsedMs < 1000 && (p.rowsTotal > 0 ? p.rowsDone < 0.01 * p.rowsTotal : p.chunksDone < 0.01 * p.chunksTotal);
  const etaMs =
    done || early
      ? Number.NaN
      : rate > 0 && left > 0
        ? (left / rate) * 1000
        : p.rowsTotal === 0 && p.chunksDone > 0 && chunksLeft > 0
          ? (p.elapsedMs * chunksLeft) / p.chunksDone
          : Number.NaN;
  // Iterative jobs (the spectral initialisation, NN-descent) may converge
  // before their planned chunks: a finished job is complete all the same.
  const chunksTotal = done ? Math.max(p.chunksTotal, p.chunksDone) : p.chunksTotal;
  return {
    label,
    chunksDone: done ? chunksTotal : p.chunksDone,
    chunksTotal,
    rowsDone: p.rowsDone,
    rowsTotal: p.rowsTotal,
    bytesDone: p.bytesDone,
    elapsedMs: p.elapsedMs,
    rate,
    etaMs,
    state,
  };
}

const MIN_REPORT_MS = 100;

const NO_PROGRESS: Native.ProgressOut = {
  chunksDone: 0,
  chunksTotal: 0,
  rowsDone: 0,
  rowsTotal: 0,
  entriesDone: 0,
  entriesTotal: 0,
  bytesDone: 0,
  elapsedMs: 0,
  finished: false,
};

/** Run `pass` to completion and return `take()` of its result. */
export async function drive<T>(
  source: Source,
  label: string,
  pass: Native.NativePass,
  take: (p: Native.NativePass) => T,
  opts: PassOptions = {},
): Promise<T> {
  const { report, signal } = passDefaults(opts);
  source.passes.add(pass);
  const onAbort = () => pass.cancel();
  signal?.addEventListener("abort", onAbort);
  // Already aborted: cancel, and never return a result even if a tiny pass
  // finished before the native side saw the cancel (that race made tests flaky).
  const abortedAtStart = signal?.aborted === true;
  if (abortedAtStart) pass.cancel();
  let seen = 0;
  let lastReport = 0;
  let p: Native.ProgressOut = NO_PROGRESS;
  try {
    for (;;) {
      p = (await pass.wait(seen, 200)) as Native.ProgressOut;
      seen = p.chunksDone;
      if (p.finished) break;
      const now = Date.now();
      if (report && now - lastReport >= MIN_REPORT_MS) {
        lastReport = now;
        safeReport(report, toProgress(label, p, "running"));
      }
    }
  } catch (e) {
    // Every pass ends with a final report (a kernel cell waits for it when it fails).
    if (report) safeReport(report, toProgress(label, p, e instanceof CancelledError ? "cancelled" : "failed"));
    throw e;
  } finally {
    signal?.removeEventListener("abort", onAbort);
    source.passes.delete(pass);
  }
  try {
    if (abortedAtStart) throw new CancelledError(`${label} was cancelled`);
    // close() while the pass ran: its result is dropped even when the pass
    // finished before the cancel reached it (a race that made close() flaky).
    if (source.closed) throw new CancelledError(`${label} was cancelled`);
    // A file written in place during (or before) the pass: its result, or
    // its failure, may come from a mix of old and new bytes. Say that instead.
    nativeCall(() => source.native.checkUnchanged());
    const out = nativeCall(() => take(pass));
    if (report) safeReport(report, toProgress(label, p, "done"));
    return out;
  } catch (e) {
    if (report) safeReport(report, toProgress(label, p, e instanceof CancelledError ? "cancelled" : "failed"));
    // close() cancels the passes it finds running: say so.
    if (e instanceof CancelledError && source.closed)
      throw new ClosedError(`${label} stopped: the AnnDataOOM for ${source.path} was closed`, { path: source.path });
    throw e;
  }
}

// A throwing reporter must not break the pass (or the kernel), but its
// author should hear of it once: a warning, then its reports are skipped.
const failedReporters = new WeakSet<Reporter>();
function safeReport(r: Reporter, p: Progress): void {
  if (failedReporters.has(r)) return;
  const fail = (e: unknown) => {
    if (failedReporters.has(r)) return;
    failedReporters.add(r);
    process.emitWarning(`onProgress threw during "${p.label}" (${String((e as Error)?.message ?? e)}); its later reports are skipped`);
  };
  try {
    // An async reporter's rejection counts as a throw (not one unhandled rejection per report).
    const out = (r as (p: Progress) => unknown)(p);
    if (out && typeof (out as Promise<unknown>).then === "function") (out as Promise<unknown>).then(undefined, fail);
  } catch (e) {
    fail(e);
  }
}

/**
 * Progress and cancellation for work done in JS (e.g. umap-js epochs),
 * reported like native passes: `tick(done)` between units of work yields
 * to the event loop, reports at most ~10 times a second and throws
 * CancelledError once the signal fired.
 */
export class JsTask {
  private readonly started = Date.now();
  private lastReport = 0;
  private lastYield = Date.now();
  private readonly report: Reporter | undefined;
  private readonly signal: AbortSignal | undefined;

  constructor(
    private readonly label: string,
    private readonly total: number,
    private readonly rows: number,
    opts: PassOptions = {},
  ) {
    ({ report: this.report, signal: this.signal } = passDefaults(opts));
  }

  private progress(done: number, state: Progress["state"]): Progress {
    const elapsedMs = Date.now() - this.started;
    const rate = elapsedMs > 0 ? (done * this.rows * 1000) / Math.max(this.total, 1) / elapsedMs : 0;
    const left = this.total - done;
    return {
      label: this.label,
      chunksDone: done,
      chunksTotal: this.total,
      rowsDone: Math.round((done / Math.max(this.total, 1)) * this.rows),
      rowsTotal: this.rows,
      bytesDone: 0,
      elapsedMs,
      rate,
      // No ETA once it ends (as native jobs report it), nor before the first unit.
      etaMs: done > 0 && state === "running" ? (elapsedMs / done) * left : Number.NaN,
      state,
    };
  }

  /** Call after each unit; resolves quickly unless it is time to yield. */
  async tick(done: number): Promise<void> {
    const now = Date.now();
    if (this.report && now - this.lastReport >= MIN_REPORT_MS) {
      this.lastReport = now;
      safeReport(this.report, this.progress(done, "running"));
    }
    if (now - this.lastYield >= 50) {
      this.lastYield = now;
      await new Promise((r) => setImmediate(r));
    }
    if (this.signal?.aborted) {
      if (this.report) safeReport(this.report, this.progress(done, "cancelled"));
      throw new CancelledError(`${this.label} was cancelled`);
    }
  }

  done(): void {
    if (this.report) safeReport(this.report, this.progress(this.total, "done"));
  }

  failed(done: number): void {
    if (this.report) safeReport(this.report, this.progress(done, "failed"));
  }
}
