/**
 * Tells the kernel which cells' outputs the user cleared without running
 * them (Edit → Clear Outputs, Clear Outputs of All Cells, or a cell's
 * context menu). JupyterLab sends the kernel nothing then, so an explorer
 * shown only in those cells kept its widget model open — and with it the
 * explorer and its AnnData in the kernel, and the model's buffers here —
 * until the cells were run again or deleted (src/kernel/widget-views.ts).
 *
 * After either clear command, the ids of the notebook's code cells that
 * have no outputs go to the kernel on a comm to CELLS_TARGET, opened and
 * closed at once; the kernel closes the widgets shown in none of its other
 * cells. Only kernels whose kernel_info names this implementation are
 * told (another kernel would log an unknown comm target). The notebook is
 * reached by duck typing, as in mime.ts: no @jupyterlab/notebook import.
 */
import { CELLS_TARGET, type CellsClearedData, KERNEL_IMPLEMENTATION } from "../widgets/wire-types";
import type { KernelLike } from "./mime";

/** JupyterLab's commands that clear outputs without running (both act on the current notebook). */
export const CLEAR_OUTPUT_COMMANDS: readonly string[] = ["notebook:clear-cell-output", "notebook:clear-all-cell-outputs"];

/** The part of a kernel connection used here: comms, and its kernel_info reply. */
export interface InfoKernelLike extends KernelLike {
  info?: Promise<{ implementation?: unknown }>;
}

/** The part of JupyterLab's command registry used here. */
export interface CommandsLike {
  commandExecuted: { connect(fn: (sender: unknown, args: { id: string }) => void): unknown };
}

interface CellLike {
  model?: { id?: unknown; type?: unknown; outputs?: { length?: unknown } };
}

interface NotebookPanelLike {
  content?: { widgets?: readonly CellLike[] };
  sessionContext?: { session?: { kernel?: InfoKernelLike | null } | null };
}

/** Ids of the code cells of a notebook panel that show no outputs; [] for anything else. */
export function emptyCodeCells(panel: unknown): string[] {
  const cells = (panel as NotebookPanelLike | null)?.content?.widgets;
  if (!Array.isArray(cells)) return [];
  const ids: string[] = [];
  for (const cell of cells as readonly CellLike[]) {
    const m = cell?.model;
    if (m?.type === "code" && typeof m.id === "string" && m.outputs?.length === 0) ids.push(m.id);
  }
  return ids;
}

/**
 * Sends the panel's empty code cells to its kernel, if that is an
 * anndata-oom kernel. Resolves true when sent; never rejects (a kernel that
 * is gone or busy restarting is not told, and needs not be).
 */
export async function notifyClearedOutputs(panel: unknown): Promise<boolean> {
  try {
    const kernel = (panel as NotebookPanelLike | null)?.sessionContext?.session?.kernel;
    if (!kernel) return false;
    const cleared = emptyCodeCells(panel);
    if (!cleared.length) return false;
    const info = await kernel.info;
    if (info?.implementation !== KERNEL_IMPLEMENTATION) return false;
    const comm = kernel.createComm(CELLS_TARGET);
    const data: CellsClearedData = { cleared };
    comm.open(data);
    comm.close();
    return true;
  } catch {
    return false;
  }
}

/** After each clear-outputs command, tell the current notebook's kernel (see above). */
export function watchClearOutputCommands(commands: CommandsLike, currentPanel: () => unknown): void {
  commands.commandExecuted.connect((_, { id }) => {
    if (CLEAR_OUTPUT_COMMANDS.includes(id)) void notifyClearedOutputs(currentPanel());
  });
}
