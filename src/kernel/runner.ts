/**
 * Runs execute_requests one at a time through tslab's executor and
 * answers each with the right iopub messages and execute_reply:
 * execute_input, the result (execute_result for mime-bundle values,
 * stdout like tslab otherwise), an `error` message with
 * ename/evalue/traceback, and an interrupt signal fresh per request.
 *
 * After an error (with stop_on_error) or an interrupt, only the requests
 * already queued are aborted; a request sent after the reply runs (tslab
 * aborted everything for 200 ms instead).
 */

import { AsyncLocalStorage } from "node:async_hooks";
import { clearTimeout, setImmediate, setTimeout } from "node:timers";
import type { Executor } from "tslab/dist/executor";
import type { CellConsole } from "./cell-console";
import { setNextCell } from "./cell-sources";
import {
  diagnosticsContent,
  type ErrorContent,
  errorContent,
  inspectValue,
  invalidRequest,
  KernelInterrupt,
  kernelFailure,
} from "./error-content";
import type { History } from "./history";
import { KPromise, kernelConsole } from "./intrinsics";
import type { Iopub } from "./iopub";
import { hasMimeBundle, mimeBundleOf } from "./mimebundle";
import type { Message } from "./wire";

/** How long an interrupted cell may take to stop on its own before tslab abandons its promise. */
export const INTERRUPT_GRACE_MS = 1500;

interface Job {
  msg: Message;
  sock: unknown;
}

export class Runner {
  private count = 0;
  private readonly queue: Job[] = [];
  private running: Job | undefined;
  /** Execute requests are numbered as they start (silent ones too); the running one's, or 0. */
  private lastJob = 0;
  private runningJobId = 0;
  private interrupted = false;
  private controller = new AbortController();
  /**
   * The signal of the cell whose code is running, followed through awaits
   * and timers: an interrupted cell that tslab abandoned (a loop that
   * catches the CancelledError and goes on) keeps its aborted signal, so
   * its later passes stop at once instead of running under the next cell's.
   */
  private readonly cellSignal = new AsyncLocalStorage<AbortSignal>();
  private idleWaiters: (() => void)[] = [];
  private ignoreSignalsUntil = 0;

  constructor(
    private readonly executor: Executor,
    private readonly capture: CellConsole,
    private readonly io: Iopub,
    private readonly reply: (sock: unknown, msg: Message) => void,
    /** Runs after every cell (puts back the process guards a cell may have removed). */
    private readonly afterCell: () => void = () => undefined,
    /** Where numbered cells' inputs are kept (history_request). */
    private readonly history: History | null = null,
    /** Runs before each execute_request's code (closes widgets whose cells the frontend cleared). */
    private readonly beforeCell: (msg: Message, silent: boolean) => void = () => undefined,
  ) {}

  /**
   * Aborts when the cell this code belongs to is interrupted (a new one per
   * execute_request); code outside any cell (comm handlers) gets the
   * current cell's.
   */
  get signal(): AbortSignal {
    return this.cellSignal.getStore() ?? this.controller.signal;
  }

  /** Work of the running cell to wait for before an error or interrupted reply (KernelApi.holdCell). */
  private holds: PromiseLike<unknown>[] = [];

  /** See KernelApi.holdCell. */
  hold(work: PromiseLike<unknown>): void {
    if (this.running) this.holds.push(work);
  }

  /** The running execute request's number (0: none), for SIGINTs the loop breaker reports. */
  get runningJob(): number {
    return this.runningJobId;
  }

  /** A SIGINT that came while job `job` ran (the loop breaker saw it): interrupts that job if it still runs. */
  interruptJob(job: number): void {
    if (job !== 0 && job === this.runningJobId) this.interrupt();
  }

  /** True while a request runs or waits. */
  get busy(): boolean {
    return this.running !== undefined || this.queue.length > 0;
  }

  /** Resolves when no request runs or waits. */
  idle(): Promise<void> {
    if (!this.busy) return KPromise.resolve();
    return new KPromise((r) => this.idleWaiters.push(r));
  }

  enqueue(msg: Message, sock: unknown): void {
    this.queue.push({ msg, sock });
    if (!this.running) void this.loop();
  }

  /**
   * SIGINT: like interrupt(), except right after SIGINT broke a synchronous cell, when Node
   * sometimes delivers the same signal again to process listeners (it must not hit the next cell).
   */
  signalInterrupt(): void {
    if (Date.now() < this.ignoreSignalsUntil) return;
    this.interrupt();
  }

  /**
   * SIGTERM: interrupt the running cell and wait (at most `graceMs`) until
   * nothing runs, so that a cancelled write has removed its temporary file
   * before the process exits.
   */
  async terminate(graceMs = INTERRUPT_GRACE_MS * 2): Promise<void> {
    this.interrupt();
    let timer: ReturnType<typeof setTimeout> | undefined;
    await KPromise.race([this.idle(), new KPromise<void>((r) => (timer = setTimeout(r, graceMs)))]);
    clearTimeout(timer);
  }

  /**
   * The loop breaker terminated a loop that held the event loop (the stop
   * button was pressed): its cell, if one runs, cannot settle any more, so
   * it is given up on now rather than after the grace period. The SIGINT
   * that Node delivers once the main thread is free again is the same one.
   */
  loopTerminated(): void {
    this.interrupt();
    this.ignoreSignalsUntil = Date.now() + 250;
    if (this.running) this.executor.interrupt();
  }

  /** Cancel the running cell: abort its signal, then stop waiting for it after a grace period. */
  interrupt(): void {
    const job = this.running;
    if (!job || this.interrupted) return;
    this.interrupted = true;
    this.controller.abort(new KernelInterrupt());
    setTimeout(() => {
      if (this.running === job) this.executor.interrupt();
    }, INTERRUPT_GRACE_MS).unref();
  }

  private async loop(): Promise<void> {
    while (this.queue.length) {
      const job = this.queue.shift()!;
      this.running = job;
      this.runningJobId = ++this.lastJob;
      try {
        await this.run(job);
      } catch (e) {
        // Last resort: the request still gets its reply and the idle status.
        const failure = kernelFailure(e);
        process.stderr.write(`anndata-oom kernel: execute failed: ${failure.evalue}\n`);
        try {
          this.reply(job.sock, job.msg.reply("execute_reply", { status: "error", execution_count: this.count, ...failure }));
          this.io.status("idle", job.msg);
        } catch {
          /* nothing more can be sent */
        }
      } finally {
        this.running = undefined;
        this.runningJobId = 0;
        this.afterCell();
      }
    }
    const w = this.idleWaiters;
    this.idleWaiters = [];
    for (const f of w) f();
  }

  private async run({ msg, sock }: Job): Promise<void> {
    const raw = (msg.content ?? {}) as {
      code?: unknown;
      silent?: boolean;
      store_history?: boolean;
      stop_on_error?: boolean;
      user_expressions?: unknown;
    };
    const req = { ...raw, code: typeof raw.code === "string" ? raw.code : "" };
    const silent = !!req.silent;
    this.io.status("busy", msg);
    // A blank cell is not numbered, as in IPython.
    const numbered = req.store_history !== false && !silent && req.code.trim() !== "";
    if (numbered) {
      this.count++;
      this.history?.record(this.count, req.code);
    }
    this.controller = new AbortController();
    this.interrupted = false;
    this.io.parent = msg;
    if (!silent) this.io.publish("execute_input", { code: req.code, execution_count: this.count }, msg);
    try {
      this.beforeCell(msg, silent);
    } catch (e) {
      this.io.stream("stderr", `${errorContent(e).traceback.join("\n")}\n`);
    }
    // With nothing in flight, the cell's first output is sent at once, even from a synchronous loop.
    await this.io.queue.drained();

    setNextCell(numbered ? this.count : undefined);
    let err: ErrorContent | undefined;
    try {
      err =
        typeof raw.code === "string"
          ? await this.execute(req.code, silent)
          : invalidRequest("execute_request content.code must be a string");
    } catch (e) {
      // Whatever fails while running or reporting the cell (a thrown value
      // that cannot be inspected, a broken global), the cell still replies.
      err = kernelFailure(e);
    }
    // A cell that failed or was stopped may leave passes winding down (a
    // Promise.all rejects on the first): their final progress belongs
    // before the error and the reply, which ends the cell's output.
    const holds = this.holds.splice(0);
    if ((err || this.interrupted) && holds.length) await settledWithin(holds, HOLD_MS);
    let content: Record<string, unknown>;
    if (err) {
      this.io.publish("error", err, msg);
      content = { status: "error", execution_count: this.count, ...err };
    } else {
      const userExpressions = this.interrupted ? {} : await this.evaluateUserExpressions(raw.user_expressions);
      content = { status: "ok", execution_count: this.count, user_expressions: userExpressions, payload: [] };
    }
    // Stop ends a "Run All" even when the cell caught the interrupt and
    // finished; it then says so, since nothing else would show why the
    // cells after it did not run.
    if ((err && req.stop_on_error !== false) || this.interrupted) {
      const aborted = await this.abortQueued();
      if (!err && aborted > 0)
        this.io.stream(
          "stderr",
          `Interrupted: this cell handled the interrupt and finished; the ${aborted} cell${aborted === 1 ? "" : "s"} queued after it did not run.\n`,
        );
    }
    await this.io.queue.drained();
    this.reply(sock, msg.reply("execute_reply", content));
    this.io.status("idle", msg);
  }

  /** Runs the code and shows its value; returns the error to report, if any. */
  private async execute(code: string, silent: boolean): Promise<ErrorContent | undefined> {
    const c = this.capture;
    c.reset();
    let ok: boolean;
    try {
      const signal = this.controller.signal;
      ok = await this.cellSignal.run(signal, () => this.executor.execute(code));
    } catch (e) {
      ok = false;
      c.thrown ??= { value: e };
    }
    if (!ok && (c.thrown?.value as { code?: string } | undefined)?.code === "ERR_SCRIPT_EXECUTION_INTERRUPTED") {
      this.ignoreSignalsUntil = Date.now() + 250;
    }
    if (!ok) return c.thrown ? errorContent(c.thrown.value) : diagnosticsContent(c.diagnostics);
    if (c.diagnostics.length) this.io.stream("stderr", `${c.diagnostics.join("\n")}\n`);
    if (c.hasValue && !silent) await this.show(c.value);
    return undefined;
  }

  /**
   * The reply's `user_expressions`: each named expression evaluated after
   * the cell, as ipykernel does, to `{ status: "ok", data, metadata }` or
   * an error content. They run as unnumbered cells; their output is not shown.
   */
  private async evaluateUserExpressions(requested: unknown): Promise<Record<string, unknown>> {
    const out: Record<string, unknown> = {};
    if (typeof requested !== "object" || requested === null) return out;
    for (const [name, expr] of Object.entries(requested)) {
      if (typeof expr !== "string") {
        out[name] = { status: "error", ...invalidRequest("a user expression must be a string") };
        continue;
      }
      out[name] = await this.evaluateExpression(expr);
    }
    return out;
  }

  private async evaluateExpression(expr: string): Promise<Record<string, unknown>> {
    const c = this.capture;
    c.reset();
    setNextCell(undefined);
    try {
      const ok = await this.executor.execute(expr);
      if (!ok) return { status: "error", ...(c.thrown ? errorContent(c.thrown.value) : diagnosticsContent(c.diagnostics)) };
      if (!c.hasValue) return { status: "ok", data: { "text/plain": "undefined" }, metadata: {} };
      if (hasMimeBundle(c.value)) {
        const { data, metadata } = await settleOrGiveUp(mimeBundleOf(c.value), this.controller.signal, REPR_TIMEOUT_MS);
        return { status: "ok", data, metadata };
      }
      return { status: "ok", data: { "text/plain": inspectValue(c.value) }, metadata: {} };
    } catch (e) {
      return { status: "error", ...errorContent(e) };
    }
  }

  /**
   * Shows the cell's value. Displaying must never keep the cell from
   * replying: a value whose inspection throws (a Proxy, a throwing getter
   * or custom inspect) is reported on stderr, and a `_repr_mimebundle_()`
   * that never settles is given up on when the cell is interrupted or after
   * REPR_TIMEOUT_MS, falling back to text.
   */
  private async show(value: unknown): Promise<void> {
    try {
      if (!hasMimeBundle(value)) {
        // tslab's behaviour for plain values (printed to stdout), with cell frames mapped
        kernelConsole.log(typeof value === "string" ? value : inspectValue(value));
        return;
      }
      try {
        const { data, metadata } = await settleOrGiveUp(mimeBundleOf(value), this.controller.signal, REPR_TIMEOUT_MS);
        this.io.publish("execute_result", { execution_count: this.count, data, metadata });
      } catch (e) {
        const { ename, evalue } = errorContent(e);
        this.io.stream("stderr", `_repr_mimebundle_() failed: ${ename}: ${evalue}\n`);
        kernelConsole.log(value);
      }
    } catch (e) {
      const { ename, evalue } = errorContent(e);
      this.io.stream("stderr", `cannot display the cell's value: ${ename}: ${evalue}\n`);
    }
  }

  /** Replies "aborted" to every queued execute request; returns how many there were. */
  private async abortQueued(): Promise<number> {
    await new KPromise((r) => setImmediate(r)); // let requests already received reach the queue
    const queued = this.queue.splice(0);
    for (const { msg, sock } of queued) {
      this.io.status("busy", msg);
      this.reply(sock, msg.reply("execute_reply", { status: "aborted", execution_count: this.count }));
      this.io.status("idle", msg);
    }
    return queued.length;
  }
}

/** How long an error or interrupted reply waits for the cell's held work. */
const HOLD_MS = 3000;

/** Resolves when every one of `work` has settled, or after `ms`. */
function settledWithin(work: PromiseLike<unknown>[], ms: number): Promise<void> {
  return new KPromise<void>((resolve) => {
    const timer = setTimeout(resolve, ms);
    KPromise.allSettled(work).then(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** How long a value's `_repr_mimebundle_()` may take before the text is shown instead. */
const REPR_TIMEOUT_MS = 60_000;

/** `p`, or a rejection once `signal` aborts or `ms` pass. */
function settleOrGiveUp<T>(p: Promise<T>, signal: AbortSignal, ms: number): Promise<T> {
  return new KPromise<T>((resolve, reject) => {
    const stop = (why: string) => () => reject(new Error(why));
    const onAbort = stop("interrupted while waiting for the display");
    const timer = setTimeout(stop(`no answer after ${ms / 1000} s`), ms);
    signal.addEventListener("abort", onAbort, { once: true });
    p.then(resolve, reject).finally(() => {
      clearTimeout(timer);
      signal.removeEventListener("abort", onAbort);
    });
  });
}
