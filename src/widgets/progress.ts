/**
 * The progress bar of one pass (`application/vnd.anndata-oom.progress+json`):
 * label, state, %, chunks, rows/s, ETA (or the time taken once finished),
 * and a Cancel button while the pass runs. Every string is set as text.
 */

/** The mime type the engine puts in each pass's display. */
export const PROGRESS_MIME = "application/vnd.anndata-oom.progress+json";
/** The comm target the kernel registers for `{ action: "cancel", passId }`. */
export const PROGRESS_TARGET = "anndata-oom.progress";

export type { ProgressData, ProgressState } from "./wire-types";

import type { ProgressData, ProgressState } from "./wire-types";

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
  if (m >= 100 * 60) return "> 99h";
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

interface Parts {
  root: HTMLDivElement;
  label: HTMLSpanElement;
  state: HTMLSpanElement;
  pct: HTMLSpanElement;
  bar: HTMLDivElement;
  fill: HTMLDivElement;
  facts: HTMLDivElement;
  note: HTMLDivElement;
  cancel: HTMLButtonElement;
  onCancel: (() => void) | undefined;
}

/** The bar's elements per host, so updates change them in place. */
const built = new WeakMap<HTMLElement, Parts>();

function build(host: HTMLElement): Parts {
  const doc = host.ownerDocument;
  host.replaceChildren();
  const root = el(doc, "div", PROGRESS_CLASS.root);
  root.setAttribute("role", "group");
  const head = el(doc, "div", PROGRESS_CLASS.head);
  const parts: Parts = {
    root,
    label: el(doc, "span", PROGRESS_CLASS.label),
    state: el(doc, "span", PROGRESS_CLASS.state),
    pct: el(doc, "span", PROGRESS_CLASS.pct),
    bar: el(doc, "div", PROGRESS_CLASS.bar),
    fill: el(doc, "div", PROGRESS_CLASS.fill),
    facts: el(doc, "div", PROGRESS_CLASS.facts),
    note: el(doc, "div", PROGRESS_CLASS.note),
    cancel: el(doc, "button", PROGRESS_CLASS.cancel),
    onCancel: undefined,
  };
  parts.cancel.type = "button";
  parts.cancel.title = "Stop this pass only";
  parts.cancel.addEventListener("click", () => parts.onCancel?.());
  head.append(parts.label, parts.state, parts.pct);
  parts.bar.setAttribute("role", "progressbar");
  parts.bar.setAttribute("aria-valuemin", "0");
  parts.bar.setAttribute("aria-valuemax", "100");
  parts.bar.append(parts.fill);
  root.append(head, parts.bar, parts.facts);
  host.append(root);
  built.set(host, parts);
  return parts;
}

/**
 * Renders the bar into `host`; later calls on the same host update the
 * same elements in place (the Cancel button stays the same element, so a
 * click is not lost to an update arriving between mousedown and mouseup).
 */
export function renderProgress(host: HTMLElement, data: unknown, opts: ProgressViewOptions = {}): void {
  let parts = built.get(host);
  if (!parts || parts.root.parentNode !== host) parts = build(host);
  const d = (data ?? {}) as Partial<ProgressData>;
  if (!data || typeof data !== "object" || !STATES.includes(d.state as ProgressState)) {
    // Not "failed": nothing is known to have failed (junk, or a newer engine's state).
    parts.root.dataset.state = "unknown";
    parts.label.textContent = `anndata-oom: cannot render this progress output (state ${JSON.stringify(String(d?.state))}); update the anndata_oom_lab extension.`;
    parts.state.textContent = "";
    parts.pct.textContent = "";
    parts.fill.style.width = "0%";
    parts.facts.textContent = "";
    parts.cancel.remove();
    parts.note.remove();
    return;
  }
  const state = d.state as ProgressState;
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
  const pct = `${Math.round(100 * frac)}%`;
  parts.root.dataset.state = state;
  parts.label.textContent = p.label;
  parts.state.textContent = state;
  parts.pct.textContent = pct;
  parts.bar.setAttribute("aria-valuenow", String(Math.round(100 * frac)));
  parts.fill.style.width = `${(100 * frac).toFixed(1)}%`;

  parts.onCancel = opts.onCancel;
  if (state === "running" && opts.onCancel) {
    parts.cancel.textContent = opts.cancelRequested ? "Cancelling…" : "Cancel";
    parts.cancel.disabled = Boolean(opts.cancelRequested);
    if (parts.cancel.parentNode !== parts.pct.parentNode) parts.pct.after(parts.cancel);
  } else {
    parts.cancel.remove();
  }

  const facts = [`chunk ${fmtInt(p.chunksDone)}/${fmtInt(p.chunksTotal)}`, `${fmtInt(p.rate)} rows/s`];
  if (p.rowsTotal > 0) facts.push(`${fmtInt(p.rowsDone)}/${fmtInt(p.rowsTotal)} rows`);
  if (state === "running") {
    if (p.etaMs !== null) facts.push(`ETA ${formatDuration(p.etaMs)}`);
  } else if (p.elapsedMs) {
    facts.push(`in ${formatDuration(p.elapsedMs)}`);
  }
  parts.facts.textContent = facts.join(" · ");
  if (opts.note) {
    parts.note.textContent = opts.note;
    parts.root.append(parts.note);
  } else {
    parts.note.remove();
  }
}
