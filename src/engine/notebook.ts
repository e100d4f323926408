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

/**
 * A reporter for one pass: the first report creates a display, later ones
 * update it (at most 10 a second); a final state (done, cancelled, failed)
 * is always sent.
 */
export function kernelProgress(k: KernelHandle): (p: Progress) => void {
  let id: string | null = null;
  let last = 0;
  let finished = false;
  return (p) => {
    if (finished) return;
    const final = p.state !== "running";
    const now = Date.now();
    if (!final && id !== null && now - last < MIN_UPDATE_MS) return;
    last = now;
    finished = final;
    const bundle = progressBundle(p);
    if (id === null) {
      id = k.newDisplayId();
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
  const rate = `${Math.round(p.rate).toLocaleString("en-US")} rows/s`;
  const time = p.state === "running" ? (Number.isFinite(p.etaMs) ? `ETA ${seconds(p.etaMs)}` : "") : `in ${seconds(p.elapsedMs)}`;
  return { pct, chunks, rate, time };
}

/** text/plain and text/html of a progress state. */
export function progressBundle(p: Progress): Record<string, string> {
  const { pct, chunks, rate, time } = parts(p);
  const text = `${p.label}: ${pct} ${chunks} ${rate}${time ? ` ${time}` : ""} [${p.state}]`;
  const color = { running: "#3b82f6", done: "#16a34a", cancelled: "#d97706", failed: "#dc2626" }[p.state];
  const width = (100 * fraction(p)).toFixed(1);
  const html =
    `<div class="aoom-progress" data-state="${p.state}" style="font:12px/1.4 system-ui,sans-serif;max-width:640px;margin:2px 0">` +
    `<div style="display:flex;gap:8px;align-items:baseline"><b>${escapeHtml(p.label)}</b>` +
    `<span style="color:${color}">${p.state}</span><span>${pct}</span></div>` +
    `<div style="background:#e5e7eb;height:8px;border-radius:4px;overflow:hidden">` +
    `<div style="background:${color};width:${width}%;height:100%"></div></div>` +
    `<div style="color:#6b7280">${chunks} · ${rate}${time ? ` · ${time}` : ""}</div></div>`;
  return { "text/plain": text, "text/html": html };
}
