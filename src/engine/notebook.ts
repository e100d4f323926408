/**
 * The engine's side of the notebook: when it runs inside our kernel
 * (`globalThis.__anndataOomKernel`, see src/kernel/README.md), passes that
 * get no onProgress show one display per pass that updates in place, and
 * passes that get no signal stop when the cell is interrupted. The global
 * is looked up when a pass starts, never at import; in plain Node nothing
 * here does anything. This module must not import the kernel.
 */
import type { Progress } from "./pass";
import { escapeHtml } from "./repr-html";

/** The part of the kernel API the engine uses. */
export interface KernelHandle {
  display(bundle: Record<string, unknown>, opts?: { displayId?: string; update?: boolean }): void;
  newDisplayId(): string;
  interruptSignal(): AbortSignal;
  /** Present in kernels with comms (apiVersion 1); used for the progress cancel button. */
  registerCommTarget?(name: string, cb: (comm: KernelComm, openMsg: { content: { data: unknown } }) => void): void;
  /** Present in kernels with comms: a kernel-opened comm (used by the interactive widgets). */
  openComm?(targetName: string, data?: unknown, buffers?: ArrayBufferView[], metadata?: Record<string, unknown>): KernelComm;
  /** Present in newer kernels: the cell's error or interrupted reply waits for this work (a pass's final progress). */
  holdCell?(work: PromiseLike<unknown>): void;
}

/** The part of a kernel comm the engine uses. */
export interface KernelComm {
  readonly commId?: string;
  send(data: unknown, buffers?: ArrayBufferView[]): void;
  onMsg(cb: (msg: { content: { data: unknown }; buffers?: Uint8Array[] }) => void): void;
  close?(data?: unknown): void;
  onClose?(cb: () => void): void;
}

/** The mime type of a pass's progress (rendered by the JupyterLab extension). */
export const PROGRESS_MIME = "application/vnd.anndata-oom.progress+json";
/** The comm target the frontend opens to cancel a pass: messages `{ action: "cancel", passId }`. */
export const PROGRESS_TARGET = "anndata-oom.progress";

/** `application/vnd.anndata-oom.progress+json`. */
export interface ProgressJson {
  passId: string;
  label: string;
  chunksDone: number;
  chunksTotal: number;
  rowsDone: number;
  rowsTotal: number;
  /** Rows per second. */
  rate: number;
  /** Milliseconds left; null when unknown. */
  etaMs: number | null;
  elapsedMs: number;
  state: Progress["state"];
}

const API_GLOBAL = "__anndataOomKernel";

/** The kernel API when running inside our kernel, else undefined. */
export function kernelHandle(): KernelHandle | undefined {
  const k = (globalThis as Record<string, unknown>)[API_GLOBAL] as Partial<KernelHandle> | undefined;
  if (!k || typeof k.display !== "function" || typeof k.newDisplayId !== "function" || typeof k.interruptSignal !== "function") {
    return undefined;
  }
  return k as KernelHandle;
}

/** The current cell's interrupt signal inside the kernel (undefined in plain Node). */
export function kernelSignal(): AbortSignal | undefined {
  try {
    return kernelHandle()?.interruptSignal();
  } catch {
    return undefined;
  }
}

const MIN_UPDATE_MS = 100;
/** An update whose position has not changed (only its clock) waits this long: a graph step's chunk can stay the same for minutes. */
const SAME_POSITION_UPDATE_MS = 1000;

/** Cancel functions of the running passes that have a kernel display, by passId. */
const running = new Map<string, () => void>();
/** Kernel handles on which the progress comm target is registered. */
const targets = new WeakSet<object>();
let passCount = 0;

/** Registers the progress comm target once per kernel (lazily, at the first pass). */
function ensureProgressTarget(k: KernelHandle): void {
  if (targets.has(k) || typeof k.registerCommTarget !== "function") return;
  targets.add(k);
  try {
    k.registerCommTarget(PROGRESS_TARGET, (comm, openMsg) => {
      const handle = (data: unknown) => {
        const d = data as { action?: unknown; passId?: unknown } | null;
        if (d?.action !== "cancel" || typeof d.passId !== "string") return;
        const cancel = running.get(d.passId);
        cancel?.();
        comm.send({ action: "cancel", passId: d.passId, found: cancel !== undefined });
      };
      handle(openMsg.content.data);
      comm.onMsg((m) => handle(m.content.data));
    });
  } catch {
    /* no comms: no cancel button; the pass still shows progress */
  }
}

/**
 * A pass shown in the kernel: its reporter (a display updated in place
 * with a passId) and a signal that aborts when the frontend sends
 * `{ action: "cancel", passId }` on the "anndata-oom.progress" comm.
 * The passId is forgotten when the pass reports a final state.
 */
export function kernelPass(k: KernelHandle): { passId: string; report: (p: Progress) => void; signal: AbortSignal } {
  ensureProgressTarget(k);
  const passId = `p${Date.now().toString(36)}-${++passCount}`;
  const ctl = new AbortController();
  running.set(passId, () => ctl.abort());
  // The cell's reply waits for the final report if the cell fails or is stopped meanwhile.
  let settle = () => {};
  k.holdCell?.(new Promise<void>((r) => (settle = r)));
  const report = kernelProgress(
    k,
    passId,
    () => {
      running.delete(passId);
      settle();
    },
    sharedDisplayOfCell(k),
  );
  return { passId, report, signal: ctl.signal };
}

/** Progress displays a cell gets of its own; later passes share one. */
export const MAX_BARS_PER_CELL = 10;

/** Passes started per cell (the cell's interrupt signal is its identity). */
const barsOfCell = new WeakMap<AbortSignal, { count: number; shared?: SharedDisplay }>();

/** A display that several passes update in turn. */
interface SharedDisplay {
  id: string;
  shown: boolean;
}

/**
 * Past MAX_BARS_PER_CELL passes in one cell (a loop over genes, say), each
 * new pass updates one shared display instead of adding a bar: the output
 * stays readable and the frontend is not flooded.
 */
function sharedDisplayOfCell(k: KernelHandle): SharedDisplay | undefined {
  let cell: AbortSignal;
  try {
    cell = k.interruptSignal();
  } catch {
    return undefined;
  }
  const st = barsOfCell.get(cell) ?? { count: 0 };
  barsOfCell.set(cell, st);
  st.count++;
  if (st.count <= MAX_BARS_PER_CELL) return undefined;
  st.shared ??= { id: k.newDisplayId(), shown: false };
  return st.shared;
}

/** Number of passes a cancel message can reach now (for tests). */
export function runningPassCount(): number {
  return running.size;
}

/**
 * A reporter for one pass: the first report creates a display, later ones
 * update it (at most 10 a second, once a second while the chunk count
 * stands still); a final state (done, cancelled, failed)
 * is always sent.
 */
export function kernelProgress(
  k: KernelHandle,
  passId = `p${Date.now().toString(36)}-${++passCount}`,
  onFinal?: () => void,
  shared?: SharedDisplay,
): (p: Progress) => void {
  let id: string | null = shared?.shown ? shared.id : null;
  let last = 0;
  let lastPosition = "";
  let finished = false;
  return (p) => {
    if (finished) return;
    const final = p.state !== "running";
    const now = Date.now();
    if (!final && id !== null && now - last < MIN_UPDATE_MS) return;
    const { pct, chunks } = parts(p);
    const position = `${pct} ${chunks}`;
    if (!final && id !== null && position === lastPosition && now - last < SAME_POSITION_UPDATE_MS) return;
    last = now;
    lastPosition = position;
    finished = final;
    if (final) onFinal?.();
    const bundle: Record<string, unknown> = { ...progressBundle(p), [PROGRESS_MIME]: progressJson(p, passId) };
    if (id === null) {
      id = shared?.id ?? k.newDisplayId();
      if (shared) shared.shown = true;
      k.display(bundle, { displayId: id });
    } else {
      k.display(bundle, { displayId: id, update: true });
    }
  };
}

function seconds(ms: number): string {
  if (!Number.isFinite(ms)) return "";
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)}s`;
  const m = Math.floor(s / 60);
  return `${m}m${String(Math.round(s % 60)).padStart(2, "0")}s`;
}

function fraction(p: Progress): number {
  if (p.state === "done") return 1;
  return p.chunksTotal > 0 ? Math.min(1, p.chunksDone / p.chunksTotal) : 0;
}

/** The pieces of a progress line, shared by text and HTML. */
function parts(p: Progress): { pct: string; chunks: string; rate: string; time: string } {
  const pct = `${Math.round(100 * fraction(p))}%`;
  const chunks = `chunk ${p.chunksDone.toLocaleString("en-US")}/${p.chunksTotal.toLocaleString("en-US")}`;
  // Graph jobs count chunks (epochs, levels), not rows: no row rate.
  const rate = p.rowsTotal > 0 ? `${Math.round(p.rate).toLocaleString("en-US")} rows/s` : "";
  const time = p.state === "running" ? (Number.isFinite(p.etaMs) ? `ETA ${seconds(p.etaMs)}` : "") : `in ${seconds(p.elapsedMs)}`;
  return { pct, chunks, rate, time };
}

/** The progress+json of a state (finite numbers only: JSON has no NaN). */
export function progressJson(p: Progress, passId: string): ProgressJson {
  const num = (x: number) => (Number.isFinite(x) ? x : 0);
  return {
    passId,
    label: p.label,
    chunksDone: num(p.chunksDone),
    chunksTotal: num(p.chunksTotal),
    rowsDone: num(p.rowsDone),
    rowsTotal: num(p.rowsTotal),
    rate: num(p.rate),
    etaMs: Number.isFinite(p.etaMs) ? p.etaMs : null,
    elapsedMs: num(p.elapsedMs),
    state: p.state,
  };
}

/** text/plain and text/html of a progress state. */
export function progressBundle(p: Progress): Record<string, string> {
  const { pct, chunks, rate, time } = parts(p);
  const text = `${p.label}: ${pct} ${chunks}${rate ? ` ${rate}` : ""}${time ? ` ${time}` : ""} [${p.state}]`;
  const color = { running: "#3b82f6", done: "#16a34a", cancelled: "#d97706", failed: "#dc2626" }[p.state];
  const width = (100 * fraction(p)).toFixed(1);
  const html =
    `<div class="aoom-progress" data-state="${p.state}" style="font:12px/1.4 system-ui,sans-serif;max-width:640px;margin:2px 0">` +
    `<div style="display:flex;gap:8px;align-items:baseline"><b>${escapeHtml(p.label)}</b>` +
    `<span style="color:${color}">${p.state}</span><span>${pct}</span></div>` +
    `<div style="background:#e5e7eb;height:8px;border-radius:4px;overflow:hidden">` +
    `<div style="background:${color};width:${width}%;height:100%"></div></div>` +
    `<div style="color:#6b7280">${chunks}${rate ? ` · ${rate}` : ""}${time ? ` · ${time}` : ""}</div></div>`;
  return { "text/plain": text, "text/html": html };
}
