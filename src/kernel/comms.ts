/**
 * Jupyter comms: targets registered by kernel code, comms opened by either
 * side, messages with binary buffers both ways.
 */
import { randomUUID } from "node:crypto";
import { WIDGET_TARGET } from "../engine/interactive/widget-comm";
import type { Iopub } from "./iopub";
import { type Message, toBuffers } from "./wire";

export type BufferLike = ArrayBuffer | ArrayBufferView;

/** A comm message as the callbacks see it (the shape of JupyterLab's IMessage). */
export interface CommMessage {
  header: Message["header"];
  metadata: Record<string, unknown>;
  content: { comm_id: string; data: any; target_name?: string };
  buffers: Uint8Array[];
}

export interface Comm {
  readonly commId: string;
  readonly targetName: string;
  readonly closed: boolean;
  send(data: unknown, buffers?: BufferLike[]): void;
  close(data?: unknown, buffers?: BufferLike[]): void;
  onMsg(cb: (msg: CommMessage) => void): void;
  onClose(cb: (msg: CommMessage | undefined) => void): void;
}

export type CommTarget = (comm: Comm, openMsg: CommMessage) => void;

class CommImpl implements Comm {
  closed = false;
  /** Opened by kernel code (comm_open on iopub), not by the frontend. */
  kernelOpened = false;
  private readonly msgHandlers: ((msg: CommMessage) => void)[] = [];
  private readonly closeHandlers: ((msg: CommMessage | undefined) => void)[] = [];

  constructor(
    readonly commId: string,
    readonly targetName: string,
    private readonly owner: Comms,
  ) {}

  send(data: unknown, buffers?: BufferLike[]): void {
    if (this.closed) throw new Error(`comm ${this.commId} is closed`);
    this.owner.io.publish("comm_msg", { comm_id: this.commId, data: data ?? {} }, undefined, toBuffers(buffers));
  }

  close(data?: unknown, buffers?: BufferLike[]): void {
    if (this.closed) return;
    this.owner.io.publish("comm_close", { comm_id: this.commId, data: data ?? {} }, undefined, toBuffers(buffers));
    this.closedBy(undefined);
  }

  onMsg(cb: (msg: CommMessage) => void): void {
    this.msgHandlers.push(cb);
  }

  onClose(cb: (msg: CommMessage | undefined) => void): void {
    this.closeHandlers.push(cb);
  }

  deliver(msg: CommMessage): void {
    for (const cb of this.msgHandlers) this.owner.guard(() => cb(msg));
  }

  closedBy(msg: CommMessage | undefined): void {
    if (this.closed) return;
    this.closed = true;
    this.owner.forget(this.commId);
    for (const cb of this.closeHandlers) this.owner.guard(() => cb(msg));
  }
}

function commMessage(m: Message): CommMessage {
  return { header: m.header, metadata: m.metadata, content: m.content, buffers: m.buffers };
}

export class Comms {
  private readonly targets = new Map<string, CommTarget>();
  private readonly comms = new Map<string, CommImpl>();

  /** `report` prints a handler's exception (to the cell's stderr). */
  constructor(
    readonly io: Iopub,
    private readonly report: (e: unknown) => void,
  ) {}

  registerTarget(name: string, cb: CommTarget): void {
    this.targets.set(name, cb);
  }

  hasTarget(name: string): boolean {
    return this.targets.has(name);
  }

  /** A kernel-opened comm (comm_open on iopub). */
  open(targetName: string, data?: unknown, buffers?: BufferLike[], metadata: Record<string, unknown> = {}): Comm {
    const comm = new CommImpl(randomUUID().replaceAll("-", ""), targetName, this);
    comm.kernelOpened = true;
    this.comms.set(comm.commId, comm);
    const m = this.io.message("comm_open", { comm_id: comm.commId, target_name: targetName, data: data ?? {} });
    m.metadata = metadata;
    m.buffers = toBuffers(buffers);
    this.io.queue.push(m);
    return comm;
  }

  /** A frontend-opened comm; an unknown target closes it again, as ipykernel does. */
  handleOpen(msg: Message): void {
    const { comm_id, target_name } = msg.content as { comm_id: string; target_name: string };
    const target = this.targets.get(target_name);
    if (!target) {
      this.io.publish("comm_close", { comm_id, data: {} });
      this.report(new Error(`no comm target registered for '${target_name}'`));
      return;
    }
    const comm = new CommImpl(comm_id, target_name, this);
    this.comms.set(comm_id, comm);
    this.guard(() => target(comm, commMessage(msg)));
  }

  /**
   * A message for a comm this process does not have: the frontend holds a
   * comm of an earlier kernel process (restarted from outside the page, so
   * its widget manager was not told). Closing it lets the frontend drop the
   * stale model (a live explorer then shows its snapshot) instead of
   * sending into the void.
   */
  handleMsg(msg: Message): void {
    const comm = this.comms.get(msg.content.comm_id);
    if (comm) comm.deliver(commMessage(msg));
    else if (typeof msg.content.comm_id === "string") this.io.publish("comm_close", { comm_id: msg.content.comm_id, data: {} });
  }

  handleClose(msg: Message): void {
    this.comms.get(msg.content.comm_id)?.closedBy(commMessage(msg));
  }

  /** comm_info_reply content: open comms, optionally of one target. */
  info(targetName?: string): Record<string, { target_name: string }> {
    const out: Record<string, { target_name: string }> = {};
    for (const [id, c] of this.comms) if (!targetName || c.targetName === targetName) out[id] = { target_name: c.targetName };
    return out;
  }

  forget(commId: string): void {
    this.comms.delete(commId);
    this.onClosed?.(commId);
  }

  /** Called with a comm's id when it closes, from either side. */
  onClosed: ((commId: string) => void) | undefined;

  /** A Jupyter widget model this kernel opened, still open. */
  isOpenWidget(commId: string): boolean {
    const c = this.comms.get(commId);
    return !!c && !c.closed && c.kernelOpened && c.targetName === WIDGET_TARGET;
  }

  /** Closes a comm from the kernel side (comm_close on iopub, then its close handlers). */
  close(commId: string): void {
    this.comms.get(commId)?.close();
  }

  /** Runs a user callback; a throw or a rejected promise is reported, never propagated. */
  guard(f: () => unknown): void {
    try {
      const r = f() as { then?: unknown } | undefined;
      if (r && typeof r.then === "function") (r as Promise<unknown>).then(undefined, this.report);
    } catch (e) {
      this.report(e);
    }
  }
}
