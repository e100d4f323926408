/**
 * The kernel API for the engine and other libraries, published as
 * `globalThis.__anndataOomKernel` (documented in README.md). Libraries
 * must reach the kernel only through this global: never by importing
 * tslab or this folder, so that they also run in plain Node.
 */
import { randomBytes } from "node:crypto";
import type { BufferLike, Comm, CommTarget } from "./comms";
import type { DisplayOptions, MimeBundle } from "./iopub";
import type { KernelServer } from "./server";

export const API_GLOBAL = "__anndataOomKernel";

export interface KernelApi {
  /** Protocol version of this API (bumped on incompatible changes). */
  readonly apiVersion: 1;
  /** display_data (or update_display_data with `update` and a `displayId`) in the current cell. */
  display(bundle: MimeBundle, opts?: DisplayOptions): void;
  /** A fresh id for display() / update. */
  newDisplayId(): string;
  /** Aborts when the current cell is interrupted; a fresh signal per execute_request. */
  interruptSignal(): AbortSignal;
  /** Opens a comm from the kernel side (comm_open on iopub; `metadata`, e.g. the widget protocol version, goes in the message metadata). */
  openComm(targetName: string, data?: unknown, buffers?: BufferLike[], metadata?: Record<string, unknown>): Comm;
  /** Handles comms the frontend opens on `name`. */
  registerCommTarget(name: string, cb: CommTarget): void;
  /**
   * Work of the current cell whose last output should reach that cell: when
   * the cell ends with an error or an interrupt while it is pending (a
   * `Promise.all` of passes that rejected on the first), the reply waits
   * for it, at most a few seconds.
   */
  holdCell(work: PromiseLike<unknown>): void;
}

export function installKernelApi(server: KernelServer): KernelApi {
  const api: KernelApi = {
    apiVersion: 1,
    display: (bundle, opts) => server.io.display(bundle, opts),
    newDisplayId: () => randomBytes(8).toString("hex"),
    interruptSignal: () => server.runner.signal,
    openComm: (targetName, data, buffers, metadata) => server.comms.open(targetName, data, buffers, metadata),
    registerCommTarget: (name, cb) => server.comms.registerTarget(name, cb),
    holdCell: (work) => server.runner.hold(work),
  };
  Object.defineProperty(globalThis, API_GLOBAL, { value: Object.freeze(api), configurable: true, enumerable: false });
  return api;
}
