/**
 * The kernel ↔ frontend wire types of the progress bar and the widgets, in
 * one DOM-free file so that tests/widget-types.test.ts can check them against
 * the engine's own types at compile time (the extension cannot import the
 * engine: it is built and bundled separately).
 */

export type ProgressState = "running" | "done" | "cancelled" | "failed";

/**
 * The kernel's comm target for outputs the user cleared (Edit → Clear
 * Outputs): JupyterLab sends the kernel nothing then, so the extension
 * opens a comm to this target with the cleared cells' ids and closes it.
 */
export const CELLS_TARGET = "anndata-oom.cells";

/** The kernel's kernel_info `implementation`: the extension talks to CELLS_TARGET only on such kernels. */
export const KERNEL_IMPLEMENTATION = "anndata-oom";

/** The data of that comm_open. */
export interface CellsClearedData {
  cleared: string[];
}

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

/** What the explorer is colored by (engine: src/engine/interactive/colors.ts). */
export type ColorSpec =
  | { kind: "none"; key: null }
  | { kind: "categorical"; key: string; source: "obs"; categories: string[]; colors: string[]; naColor: string }
  | { kind: "continuous"; key: string; source: "obs" | "gene"; vmin: number; vmax: number; colormap: string[]; naColor: string };

/** One slider of a controls widget (engine: src/engine/interactive/controls.ts). */
export interface ParamSpec {
  name: string;
  label?: string;
  min: number;
  max: number;
  step: number;
  value: number;
}
