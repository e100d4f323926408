/**
 * Lumino and the mime renderers touch browser globals when they load:
 * take them from a jsdom window (set before `await import("../mime")`).
 */
import { JSDOM } from "jsdom";

const NAMES = [
  "window",
  "document",
  "navigator",
  "HTMLElement",
  "Element",
  "Node",
  "Event",
  "MouseEvent",
  "KeyboardEvent",
  "MutationObserver",
  "requestAnimationFrame",
];

export function installDomGlobals(win: JSDOM["window"]): void {
  const g = globalThis as Record<string, unknown>;
  for (const k of NAMES) {
    Object.defineProperty(g, k, { value: (win as unknown as Record<string, unknown>)[k], configurable: true, writable: true });
  }
  // jsdom has no DragEvent, which @lumino/dragdrop subclasses at load time.
  if (!("DragEvent" in g)) g.DragEvent = win.MouseEvent;
}

/** A fresh jsdom document (scripts never run) and an attached host element to render into. */
export function freshHost(): { doc: Document; host: HTMLElement } {
  const dom = new JSDOM("<!doctype html><body></body>", { runScripts: "outside-only" });
  const doc = dom.window.document;
  const host = doc.createElement("div");
  doc.body.append(host);
  return { doc, host };
}
