/**
 * Stops a synchronous loop that holds the kernel's event loop, so the stop
 * button works on every cell, not only on its synchronous first part.
 *
 * Node's `breakOnSigint` breaks a loop only while tslab's `vm` call runs,
 * i.e. before the cell's first `await`. Almost every cell here awaits a
 * pass first, and a loop after that (or in a timer) keeps the main thread
 * from ever seeing SIGINT: before, only a restart ended it, losing every
 * result held in memory.
 *
 * The watchman is a worker thread (loop-breaker-worker.ts), which has its
 * own event loop. It learns of the stop button from a tiny child process in
 * the kernel's process group (Jupyter signals the whole group; a worker
 * thread gets no signals). When the main thread's heartbeat has not moved
 * for a second after a SIGINT, the worker pauses it through the inspector,
 * and terminates the running JavaScript if no frame on the stack belongs
 * to the kernel itself (terminating kernel code would leave the kernel
 * unable to reply). The kernel then ends the cell as any interrupt does.
 * The worker also passes every SIGINT on at once, tagged with the job
 * running when it came, so a stop pressed while a cell is type-checked
 * (when the main thread's listener can miss it) still stops that cell.
 */
import * as path from "node:path";
import { clearInterval, setInterval } from "node:timers";
import { Worker } from "node:worker_threads";

/** How often the main thread shows it is alive. */
const HEARTBEAT_MS = 100;

/**
 * The global symbol (Symbol.for) of the function the worker runs in the
 * paused frame before terminating it: it empties Node's async-context
 * stack, which the terminated frames leave unbalanced (Node aborts the
 * process on an unbalanced stack after a callback).
 */
export const LOOP_BREAKER_HOOK = "anndata-oom.loop-breaker.prepare";

/** What the worker is given (loop-breaker-worker.ts reads the same shape). */
export interface LoopBreakerData {
  /**
   * Two Int32s: [0] the main thread increments every HEARTBEAT_MS; [1] the
   * running job (LoopBreaker.markJob), which the worker reads when a SIGINT
   * comes, even while the main thread is blocked.
   */
  heartbeat: SharedArrayBuffer;
  /** Folders whose code is the kernel's: a stack through them is never terminated. */
  kernelDirs: string[];
  /** How long the heartbeat may stand still after a SIGINT before the worker acts. */
  graceMs: number;
}

/** What the worker reports back (read when the main thread runs again). */
export interface LoopBreakerReport {
  /** For the interrupted cell's stderr. */
  text: string;
  /** JavaScript was terminated: V8 dropped the queued microtasks with it. */
  terminated: boolean;
}

/**
 * Every SIGINT the sentinel saw, with the job that was running then. The
 * main thread's own SIGINT listener misses one that comes while a cell is
 * type-checked: tslab's `vm` call with breakOnSigint then swaps the
 * process's SIGINT listeners out, and Node drops a signal still pending.
 */
export interface LoopBreakerSigint {
  sigint: number;
}

export interface LoopBreaker {
  /** The job now running (0: none); a SIGINT is reported with it. */
  markJob(job: number): void;
  stop(): void;
}

/**
 * Starts the worker and the heartbeat; `report` gets the worker's messages
 * (what it stopped, or why it could not) once the main thread is free.
 * Returns undefined where the inspector is missing (a Node built without
 * it): the kernel then works as before.
 */
export function startLoopBreaker(
  log: (s: string) => void,
  report: (r: LoopBreakerReport) => void,
  onSigint: (job: number) => void,
  graceMs = 1000,
): LoopBreaker | undefined {
  try {
    require("node:inspector");
  } catch {
    log("anndata-oom kernel: no inspector in this Node; a loop after a cell's first await cannot be interrupted\n");
    return undefined;
  }
  installPrepareHook();
  const heartbeat = new SharedArrayBuffer(8);
  const beats = new Int32Array(heartbeat);
  const timer = setInterval(() => Atomics.add(beats, 0, 1), HEARTBEAT_MS);
  timer.unref();
  const data: LoopBreakerData = {
    heartbeat,
    kernelDirs: [__dirname, path.dirname(require.resolve("tslab/package.json"))],
    graceMs,
  };
  const worker = new Worker(path.join(__dirname, "loop-breaker-worker.js"), {
    workerData: data,
    stdout: true,
    stderr: true,
    resourceLimits: { maxOldGenerationSizeMb: 64 },
  });
  worker.unref();
  worker.on("message", (m: LoopBreakerReport | LoopBreakerSigint) => ("sigint" in m ? onSigint(m.sigint) : report(m)));
  worker.on("error", (e) => log(`anndata-oom kernel: loop breaker failed: ${e instanceof Error ? e.message : String(e)}\n`));
  return {
    markJob(job: number) {
      Atomics.store(beats, 1, job);
    },
    stop() {
      clearInterval(timer);
      void worker.terminate();
    },
  };
}

function installPrepareHook(): void {
  // process.binding is deprecated but keeps async_wrap on its allow-list; its
  // clearAsyncIdStack is what Node runs itself after an uncaught exception.
  const quiet = process.noDeprecation;
  process.noDeprecation = true; // its DEP0111 warning would reach the kernel log on every start
  let clear: (() => void) | undefined;
  try {
    clear = (process as unknown as { binding(name: string): { clearAsyncIdStack?: () => void } }).binding("async_wrap").clearAsyncIdStack;
  } catch {
    clear = undefined;
  } finally {
    process.noDeprecation = quiet;
  }
  if (typeof clear !== "function") return;
  const run = clear;
  Object.defineProperty(globalThis, Symbol.for(LOOP_BREAKER_HOOK), { value: () => run(), enumerable: false });
}
