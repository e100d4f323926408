/**
 * JupyterLab mime extension: renders `application/vnd.anndata-oom.repr+json`
 * with the repr card, `application/vnd.anndata-oom.progress+json` with
 * the progress bar and `application/vnd.anndata-oom.plot+json` (static
 * pl.* plots) from src/widgets. Only wiring lives here.
 */
import type { IRenderMime } from "@jupyterlab/rendermime-interfaces";
import { Widget } from "@lumino/widgets";
import { renderPlot } from "../widgets/plot";
import { PLOT_MIME } from "../widgets/plot-types";
import { PROGRESS_MIME, PROGRESS_TARGET, type ProgressData, renderProgress } from "../widgets/progress";
import { renderReprCard } from "../widgets/repr-card";
import { REPR_MIME } from "../widgets/repr-types";
import { controlsRendererFactory, scatterRendererFactory } from "./live-renderer";

/** The CSS class on the renderer widget's node (tests look for it). */
export const RENDERED_CLASS = "jp-RenderedAnnDataOOM";

/** Renders one repr bundle; re-rendering replaces the card. */
export class ReprRenderer extends Widget implements IRenderMime.IRenderer {
  constructor(private readonly options: IRenderMime.IRendererOptions) {
    super();
    this.addClass(RENDERED_CLASS);
  }

  async renderModel(model: IRenderMime.IMimeModel): Promise<void> {
    renderReprCard(this.node, model.data[this.options.mimeType]);
  }
}

export const rendererFactory: IRenderMime.IRendererFactory = {
  safe: true,
  mimeTypes: [REPR_MIME],
  createRenderer: (options) => new ReprRenderer(options),
};

/** The extra class on a plot renderer's node (`.jp-RenderedAnnDataOOMPlot img` in galata). */
export const PLOT_RENDERED_CLASS = "jp-RenderedAnnDataOOMPlot";

/** Renders one static plot (pl.embedding, pl.violin, pl.dotplot, pl.qcHistograms). */
export class PlotRenderer extends Widget implements IRenderMime.IRenderer {
  constructor(private readonly options: IRenderMime.IRendererOptions) {
    super();
    this.addClass(RENDERED_CLASS);
    this.addClass(PLOT_RENDERED_CLASS);
  }

  async renderModel(model: IRenderMime.IMimeModel): Promise<void> {
    renderPlot(this.node, model.data[this.options.mimeType]);
  }
}

/**
 * `safe: true`: the SVG is shown only as an <img> (no script runs in an
 * image), every label is textContent, so untrusted notebooks show plots too.
 */
export const plotRendererFactory: IRenderMime.IRendererFactory = {
  safe: true,
  mimeTypes: [PLOT_MIME],
  createRenderer: (options) => new PlotRenderer(options),
};

/** The part of a kernel comm (`IComm` of @jupyterlab/services) the renderer uses. */
export interface CommLike {
  open(data?: unknown): unknown;
  send(data: unknown): unknown;
  close(data?: unknown): unknown;
  onMsg?: (msg: { content: { data: unknown } }) => void;
}

/** The part of a kernel connection the renderer uses. */
export interface KernelLike {
  createComm(targetName: string): CommLike;
}

/**
 * The kernel of the notebook (or console) holding `widget`: the first
 * Lumino ancestor with a `sessionContext` (NotebookPanel, ConsolePanel).
 * Mime renderers get no session; walking up the widget tree is the least
 * coupled way to reach it (no @jupyterlab/notebook import).
 */
export function findKernel(widget: Widget): KernelLike | null {
  for (let w: Widget | null = widget; w; w = w.parent) {
    const ctx = (w as unknown as { sessionContext?: { session?: { kernel?: KernelLike | null } | null } }).sessionContext;
    if (ctx) return ctx.session?.kernel ?? null;
  }
  return null;
}

/** How long to wait for the kernel's answer to a cancel before closing the comm. */
const CANCEL_ANSWER_MS = 10_000;

/**
 * Sends `{ action: "cancel", passId }` on a fresh comm to the progress
 * target. The kernel answers `{ found }`; `onNotFound` runs when no pass by
 * that id is running (an output saved mid-pass, a pass that just ended).
 */
export function sendCancel(kernel: KernelLike, passId: string, onNotFound?: () => void): void {
  const comm = kernel.createComm(PROGRESS_TARGET);
  let closed = false;
  const close = () => {
    if (closed) return;
    closed = true;
    try {
      comm.close();
    } catch {
      /* the kernel is gone */
    }
  };
  comm.onMsg = (msg) => {
    const d = msg?.content?.data as { passId?: unknown; found?: unknown } | null;
    if (d?.passId === passId && d.found === false) onNotFound?.();
    close();
  };
  comm.open({});
  comm.send({ action: "cancel", passId });
  setTimeout(close, CANCEL_ANSWER_MS);
}

/**
 * One pass's progress bar. update_display_data re-renders it in place;
 * a cancel request is remembered across updates (button "Cancelling…").
 */
export class ProgressRenderer extends Widget implements IRenderMime.IRenderer {
  private data: unknown = null;
  private cancelRequested = false;
  /** The kernel runs no pass by this id: no Cancel button. */
  private notRunning = false;
  private note: string | undefined;

  constructor(private readonly options: IRenderMime.IRendererOptions) {
    super();
    this.addClass(RENDERED_CLASS);
  }

  /** Kernel lookup, replaceable in tests. */
  kernel: () => KernelLike | null = () => findKernel(this);

  async renderModel(model: IRenderMime.IMimeModel): Promise<void> {
    const data = model.data[this.options.mimeType];
    // One display can show several passes in turn (a cell's passes after its
    // tenth share one): a new pass starts with a fresh Cancel button.
    if (passIdOf(data) !== passIdOf(this.data)) {
      this.cancelRequested = false;
      this.notRunning = false;
      this.note = undefined;
    }
    this.data = data;
    this.draw();
  }

  private draw(): void {
    renderProgress(this.node, this.data, {
      onCancel: this.notRunning ? undefined : () => this.cancel(),
      cancelRequested: this.cancelRequested,
      note: this.note,
    });
  }

  private cancel(): void {
    const passId = (this.data as Partial<ProgressData> | null)?.passId;
    let kernel: KernelLike | null = null;
    try {
      kernel = this.kernel();
    } catch {
      kernel = null;
    }
    if (!kernel || typeof passId !== "string") {
      this.note = "Cannot cancel: no kernel connected to this output.";
      this.draw();
      return;
    }
    this.cancelRequested = true;
    this.note = undefined;
    try {
      sendCancel(kernel, passId, () => {
        if (passIdOf(this.data) !== passId || this.isDisposed) return;
        this.cancelRequested = false;
        this.notRunning = true;
        this.note = "This pass is no longer running (the output was saved while it ran).";
        this.draw();
      });
    } catch (e) {
      this.cancelRequested = false;
      this.note = `Cancel failed: ${e instanceof Error ? e.message : String(e)}`;
    }
    this.draw();
  }
}

function passIdOf(data: unknown): unknown {
  return data && typeof data === "object" ? (data as { passId?: unknown }).passId : undefined;
}

export const progressRendererFactory: IRenderMime.IRendererFactory = {
  safe: true,
  mimeTypes: [PROGRESS_MIME],
  createRenderer: (options) => new ProgressRenderer(options),
};

const extensions: IRenderMime.IExtension[] = [
  {
    id: "anndata-oom-lab:repr",
    description: "Renders AnnDataOOM / BackedMatrix repr cards",
    rendererFactory,
    // Ahead of text/html (rank 50), so our card wins over the engine's HTML fallback.
    rank: 10,
    dataType: "json",
  },
  {
    id: "anndata-oom-lab:progress",
    description: "Renders a pass's progress bar with a Cancel button",
    rendererFactory: progressRendererFactory,
    rank: 10,
    dataType: "json",
  },
  {
    id: "anndata-oom-lab:scatter",
    description: "Shows the embedding scatter: the live widget with a kernel, the snapshot without",
    rendererFactory: scatterRendererFactory,
    // Ahead of the widget-view renderer (rank -10, added per notebook by jupyterlab-manager):
    // this renderer delegates to it when the model is live and keeps the snapshot otherwise.
    rank: -20,
    dataType: "json",
  },
  {
    id: "anndata-oom-lab:controls",
    description: "Shows step controls: the live widget with a kernel, their last values without",
    rendererFactory: controlsRendererFactory,
    rank: -20,
    dataType: "json",
  },
  {
    id: "anndata-oom-lab:plot",
    description: "Renders static anndata-oom plots (SVG as an image, hover tooltips)",
    rendererFactory: plotRendererFactory,
    // Ahead of image/svg+xml and image/png, which the bundle also carries for other frontends.
    rank: 10,
    dataType: "json",
  },
];

export default extensions;
