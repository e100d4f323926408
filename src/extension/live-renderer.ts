/**
 * Renders our widget outputs: `application/vnd.anndata-oom.scatter+json`
 * (and `…controls+json`), which the kernel puts next to the widget view
 * (`application/vnd.jupyter.widget-view+json`) and, for the scatter, a PNG
 * snapshot. It ranks ahead of the widget renderer so that one output works
 * in both situations:
 * - a live kernel holds the model: the notebook's own widget renderer
 *   (from @jupyter-widgets/jupyterlab-manager, found through the output
 *   area's rendermime) draws the interactive plot here;
 * - no kernel or no model (a saved notebook reopened, a restarted kernel):
 *   the static snapshot and legend stay, instead of "Error displaying widget";
 * - the model's comm goes (kernel restarted or shut down, websocket lost):
 *   the manager marks the view `jupyter-widgets-disconnected`; the snapshot
 *   comes back (and the live view again if the class goes).
 */
import type { IRenderMime } from "@jupyterlab/rendermime-interfaces";
import { Panel, Widget } from "@lumino/widgets";
import { renderControlsSnapshot } from "../widgets/controls";
import { renderScatterSnapshot } from "../widgets/scatter";

export const SCATTER_MIME = "application/vnd.anndata-oom.scatter+json";
export const CONTROLS_MIME = "application/vnd.anndata-oom.controls+json";
export const WIDGET_VIEW_MIME = "application/vnd.jupyter.widget-view+json";
export const LIVE_RENDERED_CLASS = "jp-RenderedAnnDataOOMLive";
/** The class @jupyter-widgets/base gives a view whose model's comm is not live (comm_live false). */
export const DISCONNECTED_CLASS = "jupyter-widgets-disconnected";

/** Draws the static version of an output from its bundle (no kernel needed). */
export type StaticRender = (host: HTMLElement, model: IRenderMime.IMimeModel, mimeType: string) => void;

/** The part of a rendermime registry used here. */
export interface RendermimeLike {
  readonly mimeTypes: readonly string[];
  createRenderer(mimeType: string): IRenderMime.IRenderer;
}

/** The rendermime of the output area holding `widget` (the notebook's, with its widget manager). */
export function findRendermime(widget: Widget): RendermimeLike | null {
  for (let w: Widget | null = widget.parent; w; w = w.parent) {
    const rm = (w as unknown as { rendermime?: RendermimeLike }).rendermime;
    if (rm && typeof rm.createRenderer === "function") return rm;
  }
  return null;
}

export class LiveWidgetRenderer extends Panel implements IRenderMime.IRenderer {
  private readonly snapshot = new Widget();
  private live: IRenderMime.IRenderer | null = null;
  private observers: MutationObserver[] = [];
  private attachedOnce: () => void = () => undefined;
  private readonly attached = new Promise<void>((resolve) => {
    this.attachedOnce = resolve;
  });
  /** Rendermime lookup, replaceable in tests. */
  rendermime: () => RendermimeLike | null = () => findRendermime(this);

  constructor(
    private readonly options: IRenderMime.IRendererOptions,
    private readonly renderStatic: StaticRender,
    className: string,
  ) {
    super();
    this.addClass(LIVE_RENDERED_CLASS);
    this.addClass(className);
    this.snapshot.addClass("aoom-ScatterSnapshotHost");
    this.addWidget(this.snapshot);
  }

  /** "live" once the widget view is drawn here, else "static". */
  get mode(): "live" | "static" {
    return this.node.dataset.mode === "live" ? "live" : "static";
  }

  async renderModel(model: IRenderMime.IMimeModel): Promise<void> {
    this.renderStatic(this.snapshot.node, model, this.options.mimeType);
    this.setMode("static");
    const view = model.data[WIDGET_VIEW_MIME] as { model_id?: string; version_major?: number; version_minor?: number } | undefined;
    if (!model.trusted || !view || typeof view.model_id !== "string" || view.model_id === "") return;
    await this.attached;
    if (this.isDisposed) return;
    const rm = this.rendermime();
    if (!rm?.mimeTypes.includes(WIDGET_VIEW_MIME)) return;
    this.disposeLive();
    let live: IRenderMime.IRenderer;
    try {
      live = rm.createRenderer(WIDGET_VIEW_MIME);
    } catch {
      return; // the snapshot stays
    }
    this.live = live;
    live.hide();
    this.addWidget(live);
    // The widget renderer fills itself with the view once the model exists (maybe later,
    // after the manager restores state); switch when a view appears.
    const views = new MutationObserver(() => this.checkLive());
    views.observe(live.node, { childList: true });
    // A view whose comm closed gets DISCONNECTED_CLASS (a kernel restart leaves the
    // models in place with comm_live false: no view goes, nothing answers hover or lasso).
    const comms = new MutationObserver(() => this.checkLive());
    comms.observe(live.node, { subtree: true, attributes: true, attributeFilter: ["class"] });
    this.observers = [views, comms];
    const liveModel: IRenderMime.IMimeModel = {
      trusted: true,
      data: { [WIDGET_VIEW_MIME]: view },
      metadata: {},
      setData: () => undefined,
    };
    try {
      await live.renderModel(liveModel);
    } catch {
      /* the snapshot stays */
    }
    this.checkLive();
  }

  protected override onAfterAttach(msg: Parameters<Panel["onAfterAttach"]>[0]): void {
    super.onAfterAttach(msg);
    this.attachedOnce();
  }

  override dispose(): void {
    this.disposeLive();
    // A renderModel still waiting for the attach must not wait forever.
    this.attachedOnce();
    super.dispose();
  }

  /**
   * Shows the live view when the widget renderer holds one whose comm is
   * live, else the snapshot. Whatever state the widget renderer left itself in: when its
   * view goes (the kernel closed the comm, explorer.close()), JupyterLab's
   * widget renderer hides itself, and the snapshot must come back.
   */
  private checkLive(): void {
    const live = this.live;
    if (!live || live.isDisposed) return;
    const hasView = (live as unknown as Panel).widgets?.length > 0;
    const connected = live.node.querySelector(`.${DISCONNECTED_CLASS}`) === null && !live.node.classList.contains(DISCONNECTED_CLASS);
    if (hasView && connected) {
      this.snapshot.hide();
      live.show();
      this.setMode("live");
    } else {
      live.hide();
      this.snapshot.show();
      this.setMode("static");
    }
  }

  private setMode(mode: "live" | "static"): void {
    this.node.dataset.mode = mode;
  }

  private disposeLive(): void {
    for (const o of this.observers) o.disconnect();
    this.observers = [];
    this.live?.dispose();
    this.live = null;
  }
}

export const scatterRendererFactory: IRenderMime.IRendererFactory = {
  safe: true,
  mimeTypes: [SCATTER_MIME],
  createRenderer: (options) =>
    new LiveWidgetRenderer(
      options,
      (host, model, mime) => renderScatterSnapshot(host, model.data[mime], model.data["image/png"]),
      "jp-RenderedAnnDataOOMScatterOutput",
    ),
};

export const controlsRendererFactory: IRenderMime.IRendererFactory = {
  safe: true,
  mimeTypes: [CONTROLS_MIME],
  createRenderer: (options) =>
    new LiveWidgetRenderer(
      options,
      (host, model, mime) => renderControlsSnapshot(host, model.data[mime]),
      "jp-RenderedAnnDataOOMControlsOutput",
    ),
};
