/**
 * The loop breaker's worker thread (see loop-breaker.ts for why).
 *
 * - A sentinel child process, in the kernel's process group, writes a
 *   byte for each SIGINT the group gets; it exits when its stdin (this
 *   worker's pipe) closes, i.e. with the kernel. Each is passed on to the
 *   main thread at once, with the job running then.
 * - On a SIGINT, if the main thread's heartbeat stands still for graceMs,
 *   the main thread is paused through the inspector and its stack judged:
 *   - entered by the kernel (or tslab), i.e. the kernel's own work or a
 *     cell's code the kernel called (a `_repr_mimebundle_`): left alone,
 *     since terminating would kill the kernel's pending work with it;
 *   - entered by a cell (an await's continuation) or a library (a timer),
 *     with a cell's frame on top: terminated;
 *   - the same with a library or the kernel on top (the engine, Arrow,
 *     tslab's exports proxy, console.log): resumed and paused again a few
 *     times to catch the cell's own code, then terminated anyway (a kernel
 *     that answers is worth more than one half-updated object).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, writeSync } from "node:fs";
import { Session } from "node:inspector";
import { fileURLToPath } from "node:url";
import { parentPort, workerData } from "node:worker_threads";
import { LOOP_BREAKER_HOOK, type LoopBreakerData, type LoopBreakerReport, type LoopBreakerSigint } from "./loop-breaker";

/**
 * The sentinel: SIGINT → one byte on stdout; stdin closed → exit. bash
 * where there is one (~4 MB; its `read` returns > 128 when a trapped
 * signal interrupts it, 1 at end of input), else a second Node (~40 MB).
 * Not sh: dash's `read` returns 1 for both, so it cannot tell them apart.
 */
const BASH_SENTINEL = `trap 'printf i' INT; while :; do read -r _; s=$?; [ "$s" -eq 0 ] || [ "$s" -gt 128 ] || exit 0; done`;
const NODE_SENTINEL = `process.on("SIGINT", () => process.stdout.write("i"));
process.stdin.on("end", () => process.exit(0));
process.stdin.on("error", () => process.exit(0));
process.stdout.on("error", () => process.exit(0));
process.stdin.resume();`;

function sentinelCommand(): [string, string[]] {
  const bash = ["/bin/bash", "/usr/bin/bash"].find((p) => existsSync(p));
  return bash ? [bash, ["--norc", "--noprofile", "-c", BASH_SENTINEL]] : [process.execPath, ["-e", NODE_SENTINEL]];
}

/** Run in the paused frame before terminating (see loop-breaker.ts, which defines it). */
const PREPARE = `globalThis[Symbol.for("${LOOP_BREAKER_HOOK}")]?.()`;

/** How many times a pause that lands in library code is retried before terminating there. */
const PAUSE_ATTEMPTS = 5;
/** How long a paused-and-resumed main thread runs before the next pause. */
const RETRY_MS = 100;
/** How long to wait for the main thread to pause (it cannot while inside native code). */
const PAUSE_TIMEOUT_MS = 2000;
/** A sentinel that dies this many times is not started again. */
const MAX_SENTINEL_STARTS = 5;

interface CallFrame {
  callFrameId: string;
  functionName: string;
  /** 0-based, in the script V8 ran (a cell's compiled code). */
  location: { scriptId: string; lineNumber: number; columnNumber: number };
  /** Filled in from Debugger.scriptParsed (V8 leaves the frame's own url empty). */
  url: string;
}

type Place = "kernel" | "cell" | "library";

const data = workerData as LoopBreakerData;
const beats = new Int32Array(data.heartbeat);
let sentinelStarts = 0;

/** To the main thread (the cell's stderr, once it runs again) and, at once, the kernel's log. */
function send(text: string, terminated = false): void {
  log(text);
  parentPort?.postMessage({ text, terminated } satisfies LoopBreakerReport);
}

function log(text: string): void {
  try {
    writeSync(2, `anndata-oom kernel (loop breaker): ${text}`);
  } catch {
    /* no log */
  }
}

function startSentinel(): void {
  if (++sentinelStarts > MAX_SENTINEL_STARTS) return;
  let child: ChildProcess;
  try {
    // Same process group as the kernel (not detached), no inherited --inspect or --require.
    const [command, args] = sentinelCommand();
    child = spawn(command, args, { stdio: ["pipe", "pipe", "ignore"], env: { ...process.env, NODE_OPTIONS: "", BASH_ENV: "" } });
  } catch {
    return;
  }
  child.on("error", () => undefined);
  child.stdout?.on("data", onSigint);
  child.on("exit", () => setTimeout(startSentinel, 1000));
}

/** One SIGINT re-sent per stuck episode (cleared when the main thread runs again). */
let resent = false;
let lastBeat = -1;

/** The heartbeat when the latest SIGINT not yet looked at came (one arriving during another's grace period is kept, not dropped). */
let pendingBeat: number | undefined;
let handling = false;

function onSigint(): void {
  // First, at once: the main thread acts on it as soon as its event loop turns.
  parentPort?.postMessage({ sigint: Atomics.load(beats, 1) } satisfies LoopBreakerSigint);
  const beat = Atomics.load(beats, 0);
  if (beat !== lastBeat) resent = false;
  lastBeat = beat;
  pendingBeat = beat;
  if (!handling) void handleSigints();
}

/** Acts on each SIGINT only when the main thread did not move on its own within graceMs. */
async function handleSigints(): Promise<void> {
  handling = true;
  try {
    while (pendingBeat !== undefined) {
      const before = pendingBeat;
      pendingBeat = undefined;
      await sleep(data.graceMs);
      if (Atomics.load(beats, 0) === before) {
        log(`SIGINT, and the main thread has not run for ${data.graceMs} ms: pausing it\n`);
        await breakLoop(before);
      }
    }
  } catch (e) {
    send(`the kernel could not stop the loop: ${e instanceof Error ? e.message : String(e)}\n`);
  } finally {
    handling = false;
  }
}

async function breakLoop(beat: number): Promise<void> {
  const dbg = new MainThreadDebugger();
  try {
    await dbg.post("Debugger.enable");
    for (let attempt = 1; attempt <= PAUSE_ATTEMPTS; attempt++) {
      const frames = await dbg.pause();
      if (!frames) {
        send("Interrupt: the kernel is busy in native code and cannot be stopped there; it goes on when that call returns\n");
        return;
      }
      // The loop ended by itself just now: nothing to stop.
      if (Atomics.load(beats, 0) !== beat) return void (await dbg.post("Debugger.resume"));
      const places = frames.map((f) => placeOf(f.url));
      // Who entered JavaScript: the outermost frame that is not a library's
      // (timers, events, zeromq's wrappers call whoever registered).
      const entry = [...places].reverse().find((p) => p !== "library");
      if (entry === "kernel") {
        await dbg.post("Debugger.resume");
        if (places.includes("cell") && !resent) {
          // Cell code the kernel runs synchronously: a cell's first part,
          // which Node's breakOnSigint breaks, unless the signal was lost
          // in its hand-over; or a display the kernel called. Signalling
          // the kernel again breaks the first and queues an interrupt for
          // the second.
          resent = true;
          process.kill(process.pid, "SIGINT");
          log(`the main thread is in a cell's code run by the kernel (${describe(frames[0])}): sent SIGINT again\n`);
          return;
        }
        send(
          `Interrupt: the kernel is busy in its own code (type-checking the cell, showing a value or handling a message, now in ${describe(frames[0])}), which cannot be stopped safely; press stop again once the cell's code runs\n`,
        );
        return;
      }
      if (places[0] === "cell" || attempt === PAUSE_ATTEMPTS) {
        // Node checks its async-context stack after every callback; the frames
        // terminated below never pop what they pushed, so it is emptied first
        // (as Node does itself after an uncaught exception).
        await dbg.post("Debugger.evaluateOnCallFrame", { callFrameId: frames[0].callFrameId, expression: PREPARE });
        const done = dbg.post("Runtime.terminateExecution");
        await dbg.post("Debugger.resume");
        await done;
        send(
          `Interrupt: stopped a synchronous loop that kept the kernel from answering, at ${describe(frames.find((_, i) => places[i] === "cell") ?? frames[0])}\n`,
          true,
        );
        return;
      }
      await dbg.post("Debugger.resume");
      await sleep(RETRY_MS);
    }
  } finally {
    dbg.close();
  }
}

function placeOf(url: string): Place {
  if (url.startsWith("In[")) return "cell";
  let file = url;
  try {
    if (url.startsWith("file:")) file = fileURLToPath(url);
  } catch {
    /* not a file URL after all */
  }
  return data.kernelDirs.some((d) => file.startsWith(d)) ? "kernel" : "library";
}

/** A frame as a stack line names it (`fn (In[3]:4:9)`); the kernel maps a cell's position to the cell's own lines. */
function describe(f: CallFrame | undefined): string {
  if (!f) return "unknown code";
  const file = f.url.startsWith("In[") ? f.url : f.url.split("/").pop() || "(no file)";
  const where = `${file}:${f.location.lineNumber + 1}:${f.location.columnNumber + 1}`;
  return f.functionName ? `${f.functionName} (${where})` : where;
}

/** An inspector session on the main thread, with a timeout on every request. */
class MainThreadDebugger {
  private readonly session = new Session();
  /** scriptId → url, from the Debugger.scriptParsed events that Debugger.enable sends for every script. */
  private readonly scripts = new Map<string, string>();

  constructor() {
    this.session.connectToMainThread();
    this.session.on("Debugger.scriptParsed", (m) => {
      const { scriptId, url } = m.params as { scriptId: string; url: string };
      this.scripts.set(scriptId, url);
    });
  }

  post(method: string, params: object = {}, timeoutMs = 5000): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${method}: no answer from the main thread`)), timeoutMs);
      this.session.post(method, params, (err, result) => {
        clearTimeout(timer);
        if (err) reject(err);
        else resolve(result);
      });
    });
  }

  /** Pauses the main thread and returns its stack, innermost first (undefined if it did not pause). */
  async pause(): Promise<CallFrame[] | undefined> {
    const paused = new Promise<CallFrame[] | undefined>((resolve) => {
      const timer = setTimeout(() => resolve(undefined), PAUSE_TIMEOUT_MS);
      this.session.once("Debugger.paused", (m) => {
        clearTimeout(timer);
        const frames = (m.params as { callFrames: CallFrame[] }).callFrames;
        for (const f of frames) f.url = this.scripts.get(f.location.scriptId) ?? "";
        resolve(frames);
      });
    });
    await this.post("Debugger.pause");
    return paused;
  }

  /** Disconnecting also resumes a main thread left paused by a failed step. */
  close(): void {
    try {
      this.session.disconnect();
    } catch {
      /* already gone */
    }
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

startSentinel();
