/**
 * The kernel side of the Jupyter widgets message protocol (version 2.1),
 * enough for our own models: the kernel opens a comm on "jupyter.widget"
 * with the model's full state, binary values travel as comm buffers (never
 * base64 JSON), `update` goes both ways, `request_state` is answered with
 * the full state and `custom` carries events (hover, re-run). The frontend
 * side is @jupyter-widgets/base in the JupyterLab extension
 * (src/extension/plugin.ts). Spec:
 * https://github.com/jupyter-widgets/ipywidgets/blob/main/packages/schema/messages.md
 */
import { InvalidArgumentError } from "../errors";
import { type KernelComm, type KernelHandle, kernelHandle } from "../notebook";

export const WIDGET_TARGET = "jupyter.widget";
export const WIDGET_PROTOCOL_VERSION = "2.1.0";
export const WIDGET_VIEW_MIME = "application/vnd.jupyter.widget-view+json";
/** The npm module and version the frontend registers the models under. */
export const WIDGET_MODULE = "anndata-oom-lab";
export const WIDGET_MODULE_VERSION = "^0.1.0";

/** A JSON state value, or bytes (sent as a buffer). */
export type StateValue = unknown;
export type State = Record<string, StateValue>;

/** Splits top-level binary values out of a state patch (the protocol's buffer_paths). */
export function splitBuffers(patch: State): { state: State; bufferPaths: string[][]; buffers: Uint8Array[] } {
  const state: State = {};
  const bufferPaths: string[][] = [];
  const buffers: Uint8Array[] = [];
  for (const [k, v] of Object.entries(patch)) {
    if (ArrayBuffer.isView(v)) {
      bufferPaths.push([k]);
      buffers.push(new Uint8Array(v.buffer, v.byteOffset, v.byteLength));
      state[k] = null;
    } else {
      state[k] = v;
    }
  }
  return { state, bufferPaths, buffers };
}

/** Puts the buffers of a frontend message back at their (top-level) paths. */
export function joinBuffers(state: State, bufferPaths: unknown, buffers: Uint8Array[] | undefined): State {
  const out = { ...state };
  if (!Array.isArray(bufferPaths)) return out;
  bufferPaths.forEach((path, i) => {
    if (Array.isArray(path) && path.length === 1 && typeof path[0] === "string" && buffers?.[i]) out[path[0]] = buffers[i];
  });
  return out;
}

export interface WidgetModelNames {
  model: string;
  view: string;
  /** State keys the views may change (e.g. the selection); updates of others are ignored. */
  writable?: string[];
}

type ChangeHandler = (changed: string[], widget: KernelWidget) => void;
type CustomHandler = (content: Record<string, unknown>, buffers: Uint8Array[]) => void;

/**
 * One widget model living in the kernel. `set` sends an update; frontend
 * updates (e.g. a lasso selection) land in `state` and call `onChange`.
 *
 * The comm opens when the widget is first shown (`viewBundle`), with the
 * full state. The kernel closes it when every cell showing it has been
 * re-run or deleted (src/kernel/widget-views.ts), which frees the browser's
 * model and this comm's handlers; showing the widget again opens a new
 * model with the current state. Only `close()` is final.
 */
export class KernelWidget {
  private readonly openComm: NonNullable<KernelHandle["openComm"]>;
  private comm: KernelComm | null = null;
  private readonly state: State;
  private readonly changeHandlers: ChangeHandler[] = [];
  private readonly customHandlers: CustomHandler[] = [];
  private isClosed = false;
  private readonly writable: Set<string>;

  constructor(k: KernelHandle, names: WidgetModelNames, initial: State) {
    this.writable = new Set(names.writable ?? []);
    if (typeof k.openComm !== "function")
      throw new InvalidArgumentError("this kernel has no comms: interactive widgets need the AnnData OOM kernel");
    this.openComm = k.openComm.bind(k);
    this.state = {
      _model_name: names.model,
      _model_module: WIDGET_MODULE,
      _model_module_version: WIDGET_MODULE_VERSION,
      _view_name: names.view,
      _view_module: WIDGET_MODULE,
      _view_module_version: WIDGET_MODULE_VERSION,
      _dom_classes: [],
      ...initial,
    };
  }

  /** The model id views refer to: the open comm's ("" while none is open). */
  get modelId(): string {
    return this.comm?.commId ?? "";
  }

  /** Closed by `close()`: views keep their snapshot and showing it again opens nothing. */
  get closed(): boolean {
    return this.isClosed;
  }

  get(key: string): StateValue {
    return this.state[key];
  }

  /** Updates the state here and in every view (binary values as buffers). */
  set(patch: State): void {
    Object.assign(this.state, patch);
    if (!this.comm) return;
    const { state, bufferPaths, buffers } = splitBuffers(patch);
    this.comm.send({ method: "update", state, buffer_paths: bufferPaths }, buffers);
  }

  /** A `custom` message to the views. */
  sendCustom(content: Record<string, unknown>, buffers: ArrayBufferView[] = []): void {
    this.comm?.send({ method: "custom", content }, buffers);
  }

  onChange(cb: ChangeHandler): void {
    this.changeHandlers.push(cb);
  }

  onCustom(cb: CustomHandler): void {
    this.customHandlers.push(cb);
  }

  /**
   * The display bundle's widget view, opening the model first if none is
   * open; empty after `close()`.
   */
  viewBundle(): Record<string, unknown> {
    if (this.isClosed) return {};
    const comm = this.comm ?? this.open();
    return { [WIDGET_VIEW_MIME]: { model_id: comm.commId ?? "", version_major: 2, version_minor: 1 } };
  }

  close(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    const comm = this.comm;
    this.comm = null;
    comm?.close?.();
  }

  private open(): KernelComm {
    const { state, bufferPaths, buffers } = splitBuffers(this.state);
    const comm = this.openComm(WIDGET_TARGET, { state, buffer_paths: bufferPaths }, buffers, { version: WIDGET_PROTOCOL_VERSION });
    this.comm = comm;
    // Messages of an earlier model of this widget (closed since) are not this one's.
    comm.onMsg((msg) => {
      if (this.comm === comm) this.receive(msg.content.data, msg.buffers ?? []);
    });
    comm.onClose?.(() => {
      if (this.comm === comm) this.comm = null;
    });
    return comm;
  }

  private receive(data: unknown, buffers: Uint8Array[]): void {
    const d = (data ?? {}) as { method?: unknown; state?: unknown; buffer_paths?: unknown; content?: unknown };
    if (d.method === "update" && d.state && typeof d.state === "object") {
      // A view changes what it owns only: not the model's name, positions or cell count.
      const patch = Object.fromEntries(
        Object.entries(joinBuffers(d.state as State, d.buffer_paths, buffers)).filter(([k]) => this.writable.has(k)),
      );
      const changed = Object.keys(patch);
      if (!changed.length) return;
      Object.assign(this.state, patch);
      for (const cb of this.changeHandlers) cb(changed, this);
    } else if (d.method === "request_state") {
      const { state, bufferPaths, buffers: bufs } = splitBuffers(this.state);
      this.comm?.send({ method: "update", state, buffer_paths: bufferPaths }, bufs);
    } else if (d.method === "custom" && d.content && typeof d.content === "object") {
      for (const cb of this.customHandlers) cb(d.content as Record<string, unknown>, buffers);
    }
  }
}

/** The kernel handle when widgets can be shown (our kernel with comms), else undefined. */
export function widgetKernel(): KernelHandle | undefined {
  const k = kernelHandle();
  return k && typeof k.openComm === "function" ? k : undefined;
}
