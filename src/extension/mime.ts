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

/** Sends `{ action: "cancel", passId }` on a fresh comm to the progress target. */
export function sendCancel(kernel: KernelLike, passId: string): void {
  const comm = kernel.createComm(PROGRESS_TARGET);
  comm.open({});
  comm.send({ action: "cancel", passId });
  comm.close();
}

/**
 * One pass's progress bar. update_display_data re-renders it in place;
 * a cancel request is remembered across updates (button "Cancelling…").
 */
export class ProgressRenderer extends Widget implements IRenderMime.IRenderer {
  private data: unknown = null;
  private cancelRequested = false;
  private note: string | undefined;

  constructor(private readonly options: IRenderMime.IRendererOptions) {
    super();
    this.addClass(RENDERED_CLASS);
  }

  /** Kernel lookup, replaceable in tests. */
  kernel: () => KernelLike | null = () => findKernel(this);

  async renderModel(model: IRenderMime.IMimeModel): Promise<void> {
    this.data = model.data[this.options.mimeType];
    this.draw();
  }

  private draw(): void {
    renderProgress(this.node, this.data, {
      onCancel: () => this.cancel(),
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
      sendCancel(kernel, passId);
    } catch (e) {
      this.cancelRequested = false;
      this.note = `Cancel failed: ${e instanceof Error ? e.message : String(e)}`;
    }
    this.draw();
  }
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
