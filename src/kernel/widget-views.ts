/**
 * Which notebook cells show each widget the kernel opened, so that a widget
 * whose every view has been cleared (its cell re-run or deleted) is closed.
 *
 * Why: a widget's comm handlers keep the kernel objects they serve
 * reachable (an explorer holds its AnnData, obsm included) and the browser
 * keeps the model's buffers (12 MB for a million-cell scatter) until the
 * comm closes. Re-running a cell that builds an explorer would otherwise
 * leak both on every run.
 *
 * How: JupyterLab sends the cell's id (`metadata.cellId`) with each
 * execute_request, and the ids of cells deleted since the last one
 * (`metadata.deletedCells`); it clears a cell's outputs when it runs it
 * again. A widget view published (display_data / execute_result) under a
 * request with a cell id lives in that cell. A view shown where no cell id
 * is known (another frontend, `update_display_data` into an existing
 * output) pins the widget open for good, as before this module.
 * JupyterLab tells the kernel nothing when the user clears outputs without
 * running (Edit → Clear Outputs): the extension then opens a comm to
 * CELLS_TARGET with the cleared cells' ids (`clearedCellsOf`).
 */
import { WIDGET_VIEW_MIME } from "../engine/interactive/widget-comm";
import type { CellsClearedData } from "../widgets/wire-types";
import type { Message } from "./wire";

/** More ids than a notebook has cells: a message this long is not from the extension. */
const MAX_CLEARED = 1_000_000;

/** What this module needs of the comms: whether a comm is an open widget, and closing it. */
export interface WidgetCommHost {
  isOpenWidget(commId: string): boolean;
  close(commId: string): void;
}

/** The cell an execute_request runs (JupyterLab's `metadata.cellId`), if the frontend says. */
export function cellIdOf(msg: Message | undefined): string | undefined {
  const id = msg?.metadata?.cellId;
  return typeof id === "string" && id ? id : undefined;
}

/** Cells whose outputs the frontend cleared before this request: its own cell, and deleted ones. */
export function clearedCells(msg: Message, silent: boolean): string[] {
  const out: string[] = [];
  const own = cellIdOf(msg);
  // a silent request (a frontend's own query) does not clear any cell
  if (own && !silent) out.push(own);
  const deleted = msg.metadata?.deletedCells;
  if (Array.isArray(deleted)) for (const d of deleted) if (typeof d === "string" && d) out.push(d);
  return out;
}

/** The cell ids of the extension's CELLS_TARGET message; anything else (a malformed message) names none. */
export function clearedCellsOf(data: unknown): string[] {
  const cleared = (data as Partial<CellsClearedData> | null)?.cleared;
  if (!Array.isArray(cleared) || cleared.length > MAX_CLEARED) return [];
  return cleared.filter((c): c is string => typeof c === "string" && c.length > 0);
}

export class WidgetViews {
  /** comm id → the cells showing a view of it */
  private readonly shownIn = new Map<string, Set<string>>();
  /** comms with a view outside any known cell: never closed here */
  private readonly pinned = new Set<string>();

  constructor(private readonly host: WidgetCommHost) {}

  /** A display bundle was published under `parent`; `update` for update_display_data. */
  noteDisplay(data: unknown, parent: Message | undefined, update: boolean): void {
    const view = (data as Record<string, unknown> | null)?.[WIDGET_VIEW_MIME] as { model_id?: unknown } | undefined;
    const id = view?.model_id;
    if (typeof id !== "string" || !this.host.isOpenWidget(id)) return;
    const cell = update ? undefined : cellIdOf(parent);
    if (!cell) {
      this.pinned.add(id);
      this.shownIn.delete(id);
      return;
    }
    if (this.pinned.has(id)) return;
    const cells = this.shownIn.get(id) ?? new Set<string>();
    cells.add(cell);
    this.shownIn.set(id, cells);
  }

  /** The frontend cleared these cells' outputs: close the widgets shown nowhere else. */
  cellsCleared(cells: readonly string[]): void {
    if (!cells.length) return;
    for (const [id, shown] of [...this.shownIn]) {
      for (const c of cells) shown.delete(c);
      if (shown.size) continue;
      this.shownIn.delete(id);
      if (this.host.isOpenWidget(id)) this.host.close(id);
    }
  }

  /** The comm closed for another reason (the user's close(), the frontend). */
  forget(commId: string): void {
    this.shownIn.delete(commId);
    this.pinned.delete(commId);
  }
}
