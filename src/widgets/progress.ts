/**
 * The progress bar of one pass (`application/vnd.anndata-oom.progress+json`):
 * label, state, %, chunks, rows/s, ETA (or the time taken once finished),
 * and a Cancel button while the pass runs. Every string is set as text.
 */

/** The mime type the engine puts in each pass's display. */
export const PROGRESS_MIME = "application/vnd.anndata-oom.progress+json";
/** The comm target the kernel registers for `{ action: "cancel", passId }`. */
export const PROGRESS_TARGET = "anndata-oom.progress";

export type ProgressState = "running" | "done" | "cancelled" | "failed";

/** The wire format (a copy of the engine's `ProgressJson`). */
export interface ProgressData {
  passId: string;
  label: string;
  chunksDone: number;
  chunksTotal: number;
  rowsDone: number;
  rowsTotal: number;
  rate: number;
  etaMs: number | null;
  elapsedMs?: number;
  state: ProgressState;
}

export const PROGRESS_CLASS = {
  root: "aoom-Progress",
  head: "aoom-Progress-head",
  label: "aoom-Progress-label",
  state: "aoom-Progress-state",
  pct: "aoom-Progress-pct",
  bar: "aoom-Progress-bar",
  fill: "aoom-Progress-fill",
  facts: "aoom-Progress-facts",
  cancel: "aoom-Progress-cancel",
  note: "aoom-Progress-note",
} as const;

export interface ProgressViewOptions {
  /** Called when Cancel is clicked; without it no button is shown. */
  onCancel?: () => void;
  /** A cancel was already requested: the button shows "Cancelling…", disabled. */
  cancelRequested?: boolean;
  /** A one-line note (e.g. why cancelling failed), shown as text. */
  note?: string;
}

const STATES: ProgressState[] = ["running", "done", "cancelled", "failed"];

function num(x: unknown): number {
  return typeof x === "number" && Number.isFinite(x) ? x : 0;
}

function fmtInt(x: number): string {
  return Math.round(x).toLocaleString("en-US");
}

/** 1.2s, 3m05s, 1h02m. */
export function formatDuration(ms: number): string {
  const s = Math.max(0, ms) / 1000;
  if (s < 60) return `${s.toFixed(1)}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(Math.floor(s % 60)).padStart(2, "0")}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, "0")}m`;
}

/** The bar's fraction in [0, 1]. */
export function progressFraction(d: ProgressData): number {
  if (d.state === "done") return 1;
  const total = num(d.chunksTotal);
  return total > 0 ? Math.min(1, Math.max(0, num(d.chunksDone) / total)) : 0;
}

function el<K extends keyof HTMLElementTagNameMap>(doc: Document, tag: K, cls: string, text?: string): HTMLElementTagNameMap[K] {
  const e = doc.createElement(tag);
  e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

/** Renders (or re-renders) the bar into `host`, replacing its children. */
export function renderProgress(host: HTMLElement, data: unknown, opts: ProgressViewOptions = {}): void {
  const doc = host.ownerDocument;
  host.replaceChildren();
  const d = (data ?? {}) as Partial<ProgressData>;
  const state: ProgressState = STATES.includes(d.state as ProgressState) ? (d.state as ProgressState) : "failed";
  const p: ProgressData = {
    passId: String(d.passId ?? ""),
    label: String(d.label ?? "pass"),
    chunksDone: num(d.chunksDone),
    chunksTotal: num(d.chunksTotal),
    rowsDone: num(d.rowsDone),
    rowsTotal: num(d.rowsTotal),
    rate: num(d.rate),
    etaMs: typeof d.etaMs === "number" && Number.isFinite(d.etaMs) ? d.etaMs : null,
    elapsedMs: num(d.elapsedMs),
    state,
  };
  const frac = progressFraction(p);
  const root = el(doc, "div", PROGRESS_CLASS.root);
  root.dataset.state = state;
  root.setAttribute("role", "group");

  const head = el(doc, "div", PROGRESS_CLASS.head);
  head.append(
    el(doc, "span", PROGRESS_CLASS.label, p.label),
    el(doc, "span", PROGRESS_CLASS.state, state),
    el(doc, "span", PROGRESS_CLASS.pct, `${Math.round(100 * frac)}%`),
  );
  if (state === "running" && opts.onCancel) {
    const b = el(doc, "button", PROGRESS_CLASS.cancel, opts.cancelRequested ? "Cancelling…" : "Cancel");
    b.type = "button";
    b.title = "Stop this pass only";
    b.disabled = Boolean(opts.cancelRequested);
    const onCancel = opts.onCancel;
    b.addEventListener("click", () => onCancel());
    head.append(b);
  }
  root.append(head);

  const bar = el(doc, "div", PROGRESS_CLASS.bar);
  bar.setAttribute("role", "progressbar");
  bar.setAttribute("aria-valuemin", "0");
  bar.setAttribute("aria-valuemax", "100");
  bar.setAttribute("aria-valuenow", String(Math.round(100 * frac)));
  const fill = el(doc, "div", PROGRESS_CLASS.fill);
  fill.style.width = `${(100 * frac).toFixed(1)}%`;
  bar.append(fill);
  root.append(bar);

  const facts = [`chunk ${fmtInt(p.chunksDone)}/${fmtInt(p.chunksTotal)}`, `${fmtInt(p.rate)} rows/s`];
  if (p.rowsTotal > 0) facts.push(`${fmtInt(p.rowsDone)}/${fmtInt(p.rowsTotal)} rows`);
  if (state === "running") {
    if (p.etaMs !== null) facts.push(`ETA ${formatDuration(p.etaMs)}`);
  } else if (p.elapsedMs) {
    facts.push(`in ${formatDuration(p.elapsedMs)}`);
  }
  root.append(el(doc, "div", PROGRESS_CLASS.facts, facts.join(" · ")));
  if (opts.note) root.append(el(doc, "div", PROGRESS_CLASS.note, opts.note));
  host.append(root);
}
