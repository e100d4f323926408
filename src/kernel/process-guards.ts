/**
 * The kernel process's own safety nets, kept in place whatever cells do.
 *
 * - Uncaught exceptions and unhandled rejections (a timer or a promise of
 *   an earlier cell) are printed to the current cell's stderr, with cell
 *   frames mapped to the cell's lines; they never end the kernel. A cell
 *   that removes these listeners (or the SIGINT one of the stop button)
 *   gets them back after it ends.
 * - The kernel exits when the process that started it dies (Jupyter killed,
 *   a notebook server crash), as ipykernel's parent poller does: an
 *   orphaned kernel would keep its ports and its memory (an open atlas).
 * - SIGTERM (batch schedulers, a client's fallback) stops the running cell
 *   as an interrupt does, so a write removes its temporary file, then exits.
 * - stdin: the kernel has no input_request; a cell reading process.stdin
 *   gets a clear error instead of waiting on a pipe nobody writes.
 */
import { Readable } from "node:stream";
import { setInterval } from "node:timers";
import { errorContent } from "./error-content";
import { exitKernel } from "./exit";

function report(kind: string) {
  return (e: unknown) => {
    const { traceback } = errorContent(e);
    process.stderr.write(`${kind}: ${traceback.join("\n")}\n`);
  };
}

const onUncaught = report("Uncaught exception");
const onUnhandled = report("Unhandled promise rejection");

let onSigint: (() => void) | undefined;
let onSigterm: (() => void) | undefined;

/**
 * Installs the handlers (the first call gives the SIGINT one: the stop
 * button); call again (after each cell) to put back any a cell removed.
 */
export function armProcessGuards(sigint?: () => void, sigterm?: () => void): void {
  onSigint ??= sigint;
  onSigterm ??= sigterm;
  if (onSigterm && !process.listeners("SIGTERM").includes(onSigterm)) process.on("SIGTERM", onSigterm);
  if (!process.listeners("uncaughtException").includes(onUncaught)) process.on("uncaughtException", onUncaught);
  if (!process.listeners("unhandledRejection").includes(onUnhandled)) process.on("unhandledRejection", onUnhandled);
  if (onSigint && !process.listeners("SIGINT").includes(onSigint)) process.on("SIGINT", onSigint);
}

/** How often the parent is checked. */
const PARENT_POLL_MS = 1000;

/**
 * Exits when the parent is gone: the process JPY_PARENT_PID names (set by
 * jupyter_client) no longer exists, or the kernel was re-parented to init.
 * Without JPY_PARENT_PID (a kernel started by hand) nothing is watched, as
 * in ipykernel.
 */
export function watchParent(log: (s: string) => void): void {
  const parent = Number(process.env.JPY_PARENT_PID);
  if (!(Number.isInteger(parent) && parent > 1)) return;
  const startPpid = process.ppid;
  const timer = setInterval(() => {
    let alive = !(startPpid !== 1 && process.ppid === 1);
    if (alive) {
      try {
        process.kill(parent, 0);
      } catch (e) {
        alive = (e as NodeJS.ErrnoException).code === "EPERM";
      }
    }
    if (!alive) {
      log(`anndata-oom kernel: parent process ${parent} is gone; exiting\n`);
      exitKernel(0);
    }
  }, PARENT_POLL_MS);
  timer.unref();
}

/** What a cell reading stdin gets (the name ipykernel uses). */
export class StdinNotImplementedError extends Error {
  constructor() {
    super("this kernel cannot ask for input (no stdin channel): put the value in the cell instead");
    this.name = "StdinNotImplementedError";
  }
}

/** Replaces process.stdin with a stream that fails on the first read. */
export function closeStdin(): void {
  const stdin = new Readable({
    read() {
      this.destroy(new StdinNotImplementedError());
    },
  });
  Object.defineProperty(process, "stdin", { value: stdin, configurable: true, enumerable: true, writable: false });
}
