/**
 * Jupyter widget models and views (@jupyter-widgets/base) for the models
 * the kernel opens on "jupyter.widget" (src/engine/interactive): the
 * scatter (ScatterModel / ScatterView) and the step controls
 * (ControlsModel / ControlsView). The DOM lives in src/widgets.
 */
import { DOMWidgetModel, DOMWidgetView } from "@jupyter-widgets/base";
import { ControlsPanel, type ParamSpec } from "../widgets/controls";
import { observeWidth, ScatterPanel } from "../widgets/scatter";
import { bytesOf, type ColorSpec, ipcColumn, releaseBuffers } from "../widgets/scatter-data";
import { reglBackend } from "./regl-backend";

export const MODULE_NAME = "anndata-oom-lab";
export const MODULE_VERSION = "0.1.0";

const base = {
  _model_module: MODULE_NAME,
  _model_module_version: MODULE_VERSION,
  _view_module: MODULE_NAME,
  _view_module_version: MODULE_VERSION,
};

/** Buffers arrive as DataViews; keep them as they are (no JSON round trip). */
const bytesSerializer = { serialize: (v: unknown) => v, deserialize: (v: unknown) => v };

export class ScatterModel extends DOMWidgetModel {
  static override serializers = {
    ...DOMWidgetModel.serializers,
    positions: bytesSerializer,
    colors: bytesSerializer,
    selection: bytesSerializer,
  };

  override defaults() {
    return { ...super.defaults(), ...base, _model_name: "ScatterModel", _view_name: "ScatterView" };
  }

  /** The comm closed (explorer.close()) or the model is dropped: its views go, and its buffers. */
  override close(comm_closed = false): Promise<void> {
    const done = super.close(comm_closed);
    releaseBuffers(this.attributes, SCATTER_BUFFERS);
    return done;
  }
}

/** The scatter model's binary attributes (Arrow IPC / Uint32 buffers). */
export const SCATTER_BUFFERS = ["positions", "colors", "selection"] as const;

export class ScatterView extends DOMWidgetView {
  private panel: ScatterPanel | null = null;
  private stopObserving: (() => void) | null = null;

  override render(): void {
    this.el.classList.add("jp-RenderedAnnDataOOMScatter");
    const panel = new ScatterPanel(this.el, {
      height: Number(this.model.get("height")) || 420,
      pointSize: Number(this.model.get("point_size")) || 3,
      backend: reglBackend,
      onHover: (index) => {
        // The kernel may be gone (restart, shutdown): hovering must not throw into the renderer.
        try {
          this.send({ event: "hover", index });
        } catch {
          panel.setStatus("no kernel: hover shows no values");
        }
      },
      onSelect: (indices) => {
        this.model.set("selection", new DataView(indices.buffer, indices.byteOffset, indices.byteLength));
        this.model.set("selection_count", indices.length);
        this.touch();
      },
    });
    this.panel = panel;
    this.showPositions();
    panel.setStatus(String(this.model.get("status") ?? ""));
    // One update per model change, however many attributes it sets (a recolor
    // sets colors, color and title together).
    this.listenTo(this.model, "change", () => {
      const changed = this.model.changedAttributes() || {};
      if ("positions" in changed) this.showPositions();
      else if ("colors" in changed || "color" in changed || "title" in changed) this.showColors();
    });
    this.listenTo(this.model, "change:status", () => panel.setStatus(String(this.model.get("status") ?? "")));
    this.listenTo(
      this.model,
      "msg:custom",
      (content: { event?: string; index?: number; name?: string; key?: string | null; value?: unknown }) => {
        if (content.event === "hover" && typeof content.index === "number")
          panel.showHover(content.index, String(content.name ?? ""), content.key ?? null, content.value);
      },
    );
    // The canvas takes its box's width once attached (and on resize); CSS must never scale
    // the canvas, or regl-scatterplot's mouse coordinates (hover, lasso) drift from the pixels.
    // observeWidth lets go of the panel when stopped (JupyterLab's ResizeObserver keeps
    // callbacks of disconnected observers, which kept every removed plot alive).
    this.stopObserving = observeWidth(panel.canvasHost, (w) => this.panel?.layout(w));
  }

  override remove(): this {
    this.stopObserving?.();
    this.stopObserving = null;
    this.panel?.dispose();
    this.panel = null;
    return super.remove();
  }

  /** Positions (and then colors) from the model; a buffer that does not decode says so in the status line. */
  private showPositions(): void {
    const panel = this.panel;
    const bytes = bytesOf(this.model.get("positions"));
    if (!bytes || !panel) return;
    try {
      const x = ipcColumn(bytes, "x");
      const y = ipcColumn(bytes, "y");
      if (x instanceof Float32Array && y instanceof Float32Array && x.length === y.length) panel.setPositions(x, y);
      else panel.setStatus("cannot show these positions (not two float32 columns x and y of one length)");
    } catch (e) {
      panel.setStatus(`cannot decode the positions: ${e instanceof Error ? e.message : String(e)}`);
    }
    this.showColors();
  }

  private showColors(): void {
    const panel = this.panel;
    if (!panel) return;
    panel.setTitle(String(this.model.get("title") ?? ""), Number(this.model.get("n")) || 0);
    let data: Float32Array | Int32Array | null = null;
    const bytes = bytesOf(this.model.get("colors"));
    try {
      data = bytes ? (ipcColumn(bytes, "code") ?? ipcColumn(bytes, "value")) : null;
      if (bytes && !data) panel.setStatus("cannot show these colors (no int32 code or float32 value column)");
    } catch (e) {
      panel.setStatus(`cannot decode the colors: ${e instanceof Error ? e.message : String(e)}`);
    }
    panel.setColors(this.model.get("color") as ColorSpec, data);
  }
}

export class ControlsModel extends DOMWidgetModel {
  override defaults() {
    return { ...super.defaults(), ...base, _model_name: "ControlsModel", _view_name: "ControlsView" };
  }
}

export class ControlsView extends DOMWidgetView {
  override render(): void {
    this.el.classList.add("jp-RenderedAnnDataOOMControls");
    // As the snapshot: only well-formed sliders (an output of another version may differ).
    const raw = this.model.get("params");
    const params = (Array.isArray(raw) ? raw : []).filter(
      (p): p is ParamSpec =>
        !!p && typeof p.name === "string" && [p.min, p.max, p.step, p.value].every((v) => typeof v === "number" && Number.isFinite(v)),
    );
    const panel = new ControlsPanel(this.el, String(this.model.get("step") ?? ""), params, (values) => {
      this.model.set("values", values);
      this.touch();
    });
    const status = () => panel.setStatus(String(this.model.get("status") ?? ""), Boolean(this.model.get("running")));
    status();
    this.listenTo(this.model, "change:status change:running", status);
    this.listenTo(this.model, "change:values", () => panel.setValues((this.model.get("values") ?? {}) as Record<string, unknown>));
  }
}
