/**
 * The controls widget's DOM: one slider per parameter of a step (Leiden
 * resolution, UMAP min_dist, number of HVGs, …) and a status line. A
 * slider reports its value on release (`change`), not on every move.
 */
export type { ParamSpec } from "./wire-types";

import type { ParamSpec } from "./wire-types";

export const CONTROLS_CLASS = {
  root: "aoom-Controls",
  param: "aoom-Controls-param",
  slider: "aoom-Controls-slider",
  value: "aoom-Controls-value",
  status: "aoom-Controls-status",
} as const;

export class ControlsPanel {
  readonly root: HTMLDivElement;
  private readonly sliders = new Map<string, { input: HTMLInputElement; out: HTMLSpanElement }>();
  private readonly statusEl: HTMLSpanElement;

  constructor(host: HTMLElement, step: string, params: ParamSpec[], onChange: (values: Record<string, number>) => void) {
    const d = host.ownerDocument;
    this.root = d.createElement("div");
    this.root.className = CONTROLS_CLASS.root;
    this.root.dataset.step = step;
    for (const p of params) {
      const row = d.createElement("label");
      row.className = CONTROLS_CLASS.param;
      row.dataset.param = p.name;
      const name = d.createElement("span");
      name.textContent = p.label ?? p.name;
      const input = d.createElement("input");
      input.type = "range";
      input.className = CONTROLS_CLASS.slider;
      input.min = String(p.min);
      input.max = String(p.max);
      input.step = String(p.step);
      input.value = String(p.value);
      input.setAttribute("aria-label", p.label ?? p.name);
      const out = d.createElement("span");
      out.className = CONTROLS_CLASS.value;
      out.textContent = String(p.value);
      input.addEventListener("input", () => {
        out.textContent = input.value;
      });
      input.addEventListener("change", () => onChange(this.values()));
      row.append(name, input, out);
      this.root.append(row);
      this.sliders.set(p.name, { input, out });
    }
    this.statusEl = d.createElement("span");
    this.statusEl.className = CONTROLS_CLASS.status;
    this.root.append(this.statusEl);
    host.append(this.root);
  }

  values(): Record<string, number> {
    return Object.fromEntries([...this.sliders].map(([k, s]) => [k, Number(s.input.value)]));
  }

  /** Shows values set from the kernel (without firing onChange). */
  setValues(values: Record<string, unknown>): void {
    for (const [k, s] of this.sliders) {
      const v = values[k];
      if (typeof v === "number" && Number.isFinite(v)) {
        s.input.value = String(v);
        s.out.textContent = String(v);
      }
    }
  }

  setStatus(text: string, running: boolean): void {
    this.statusEl.textContent = text;
    this.root.dataset.running = String(running);
  }
}

/** The controls without a kernel (a saved notebook): the last values, disabled, and a note. */
export function renderControlsSnapshot(host: HTMLElement, spec: unknown): void {
  const s = (spec ?? {}) as { step?: unknown; params?: unknown };
  const params = Array.isArray(s.params) ? (s.params as ParamSpec[]).filter((p) => p && typeof p.name === "string") : [];
  host.replaceChildren();
  const panel = new ControlsPanel(host, String(s.step ?? ""), params, () => undefined);
  for (const input of panel.root.querySelectorAll("input")) input.disabled = true;
  panel.setStatus("saved output: run the cell again to use the controls", false);
}
