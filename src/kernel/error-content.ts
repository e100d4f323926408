/**
 * Turns what a cell threw (or tslab's type-check diagnostics) into the
 * content of a Jupyter `error` message: ename, evalue, traceback.
 */
import { inspect } from "node:util";
import { mapStackLine } from "./cell-sources";

export interface ErrorContent {
  ename: string;
  evalue: string;
  traceback: string[];
}

/**
 * Stack frames from the kernel's own machinery, hidden from tracebacks
 * (with source maps on, the kernel's frames point at src/kernel/*.ts).
 */
const INTERNAL_FRAME =
  /node_modules[\\/](tslab|@tslab)[\\/]|[\\/]src[\\/]kernel[\\/][\w.-]+\.[jt]s:|\(node:(internal|vm|async_hooks)|^\s+at node:(internal|vm|async_hooks)/;

/** The reason of an aborted interruptSignal(); also what an interrupted cell reports. */
export class KernelInterrupt extends Error {
  constructor() {
    super("the cell was interrupted");
    this.name = "Interrupted";
  }
}

/** Ours, tslab's error when an interrupt ends an awaiting cell, and Node's when SIGINT breaks a synchronous one. */
function isInterrupt(e: Error): boolean {
  return (
    e instanceof KernelInterrupt ||
    e.message === "Interrupted asynchronously" ||
    (e as { code?: string }).code === "ERR_SCRIPT_EXECUTION_INTERRUPTED"
  );
}

function errorName(e: Error): string {
  const own = typeof e.name === "string" ? e.name : "";
  const ctor = (e.constructor as { name?: string } | undefined)?.name;
  if (own && own !== "Error") return own;
  if (ctor && ctor !== "Object") return ctor;
  return own || "Error";
}

function stackLines(e: Error, ename: string): string[] {
  const head = `${ename}: ${e.message}`;
  if (typeof e.stack !== "string") return [head];
  const lines = e.stack.split("\n");
  const frames = lines
    .filter((l) => /^\s+at /.test(l) && !INTERNAL_FRAME.test(l))
    .map(mapStackLine)
    .filter((l) => l !== undefined);
  // Before the frames: the error's header and message (possibly multi-line), preceded
  // by the source line and a caret when the error was thrown synchronously by a cell.
  const firstFrame = lines.findIndex((l) => /^\s+at /.test(l));
  const before = firstFrame < 0 ? lines : lines.slice(0, firstFrame);
  const names = [e.name, ename, "Error"].filter(Boolean).map((n) => `${n}:`);
  const start = before.findIndex((l) => names.some((n) => l.startsWith(n)));
  const message = start < 0 ? [head] : [before[start].replace(/^[^:]*:/, `${ename}:`), ...before.slice(start + 1)];
  return [...message, ...frames];
}

/**
 * The error content of a thrown value; never throws. A value whose
 * inspection throws (a throwing `stack` or `message` getter, a revoked
 * Proxy, a throwing `Error.prepareStackTrace`) gets a plain description.
 */
export function errorContent(thrown: unknown): ErrorContent {
  try {
    return describeThrown(thrown);
  } catch (e) {
    return kernelFailure(e, "the cell threw a value that cannot be inspected");
  }
}

/** What the kernel reports when it cannot describe a cell's outcome. */
export function kernelFailure(e: unknown, what = "the kernel failed while running the cell"): ErrorContent {
  let why: string;
  try {
    why = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
  } catch {
    why = "(no description)";
  }
  return { ename: "KernelError", evalue: `${what}: ${why}`, traceback: [`KernelError: ${what}`, `  ${why}`] };
}

/** A request the kernel cannot run (malformed content). */
export function invalidRequest(why: string): ErrorContent {
  return { ename: "InvalidRequest", evalue: why, traceback: [`InvalidRequest: ${why}`] };
}

function describeThrown(thrown: unknown): ErrorContent {
  if (!(thrown instanceof Error) && !isErrorLike(thrown)) {
    const evalue = inspect(thrown);
    return { ename: "Error", evalue, traceback: [`Uncaught ${evalue}`] };
  }
  const e = thrown as Error;
  if (isInterrupt(e))
    return { ename: "Interrupted", evalue: "the cell was interrupted", traceback: ["Interrupted: the cell was interrupted"] };
  const ename = errorName(e);
  const traceback = stackLines(e, ename);
  let cause = (e as { cause?: unknown }).cause;
  for (let depth = 0; cause !== undefined && depth < 5; depth++) {
    traceback.push("", "Caused by:");
    if (cause instanceof Error) {
      traceback.push(...stackLines(cause, errorName(cause)));
      cause = (cause as { cause?: unknown }).cause;
    } else {
      traceback.push(inspect(cause));
      cause = undefined;
    }
  }
  return { ename, evalue: String(e.message ?? ""), traceback };
}

/** Type errors reported by tslab stop a cell before it runs. */
export function diagnosticsContent(lines: string[]): ErrorContent {
  return { ename: "TSError", evalue: lines[0] ?? "type check failed", traceback: ["TSError: the cell does not type-check", ...lines] };
}

function isErrorLike(x: unknown): boolean {
  return typeof x === "object" && x !== null && typeof (x as Error).message === "string" && typeof (x as Error).stack === "string";
}

const STACK_FRAME = /^\s+at /;

/**
 * A value as util.inspect shows it, except that stack frames (of an Error
 * shown as a cell's value, or inside one) point at the cell's own lines,
 * as tracebacks do, and the kernel's frames are left out.
 */
export function inspectValue(value: unknown): string {
  if (value instanceof Promise) hideAsyncContext(value);
  return inspect(value)
    .split("\n")
    .map((l) => (STACK_FRAME.test(l) ? (INTERNAL_FRAME.test(l) ? undefined : mapStackLine(l)) : l))
    .filter((l) => l !== undefined)
    .join("\n");
}

/**
 * Node stores async-hook ids and the AsyncLocalStorage context (here the
 * cell's AbortSignal) on promises as enumerable symbol properties, which
 * util.inspect then prints: `Promise { 5, [Symbol(kResourceStore)]: AbortSignal {…} }`.
 * Made non-enumerable, the promise shows as in Node's REPL (`Promise { 5 }`);
 * Node reads them by symbol, so nothing else changes.
 */
function hideAsyncContext(p: Promise<unknown>): void {
  for (const sym of Object.getOwnPropertySymbols(p)) {
    if (!/^Symbol\((async_id_symbol|trigger_async_id_symbol|kResourceStore)\)$/.test(String(sym))) continue;
    const d = Object.getOwnPropertyDescriptor(p, sym);
    if (d?.enumerable && d.configurable) Object.defineProperty(p, sym, { enumerable: false });
  }
}
