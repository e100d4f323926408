/**
 * Our kernel server: tslab's ZmqServer (sockets, heartbeat, its
 * completion / inspection handlers) with our own message parsing and
 * dispatch. Adds comms, interrupt and history replies, execute through
 * the Runner, and queued sends on every socket.
 */

import { setTimeout } from "node:timers";
import { type JupyterHandlerImpl, ZmqServer } from "tslab/dist/jupyter";
import { CELLS_TARGET } from "../widgets/wire-types";
import { Comms } from "./comms";
import { errorContent } from "./error-content";
import { exitKernel } from "./exit";
import type { History } from "./history";
import { inspectReply } from "./inspect";
import { KPromise } from "./intrinsics";
import { Iopub } from "./iopub";
import { isCompleteReply } from "./is-complete";
import type { Runner } from "./runner";
import { type Sendable, SendQueue } from "./send-queue";
import { clearedCellsOf, WidgetViews } from "./widget-views";
import { Message, SignatureHistory } from "./wire";

type TslabMessage = Parameters<ZmqServer["handleKernelInfo"]>[1];

export interface KernelInfoExtras {
  implementation: string;
  implementation_version: string;
  banner: string;
  languageVersion: string;
}

export class KernelServer extends ZmqServer {
  io!: Iopub;
  comms!: Comms;
  widgetViews!: WidgetViews;
  runner!: Runner;
  private readonly queues = new Map<unknown, SendQueue>();
  private readonly signatures = new SignatureHistory();
  private readonly ready: Promise<void>;
  private markReady!: () => void;

  constructor(
    handler: JupyterHandlerImpl,
    configPath: string,
    private readonly makeRunner: (server: KernelServer) => Runner,
    private readonly info: KernelInfoExtras,
    private readonly log: (text: string) => void,
    private readonly history: History,
  ) {
    super(handler, configPath);
    // Configure iopub before tslab binds it (zeromq.js warns about options set later).
    const self = this as unknown as { bindSocket: (sock: unknown, port: number) => Promise<void> };
    const bind = self.bindSocket;
    self.bindSocket = (sock, port) => {
      if (sock === this.iopub) {
        // A full subscriber queue makes send() fail at once (EAGAIN) instead of
        // dropping silently or blocking; SendQueue retries in order.
        this.iopub.noDrop = true;
        this.iopub.sendTimeout = 0;
      }
      return bind.call(this, sock, port);
    };
    this.ready = new KPromise((r) => {
      this.markReady = r;
    });
  }

  override async init(): Promise<void> {
    await super.init();
    this.io = new Iopub(this.queueFor(this.iopub));
    this.comms = new Comms(this.io, (e) => this.io.stream("stderr", `${errorContent(e).traceback.join("\n")}\n`));
    const views = new WidgetViews(this.comms);
    this.widgetViews = views;
    this.comms.onClosed = (id) => views.forget(id);
    this.io.onDisplay = (data, parent, update) => views.noteDisplay(data, parent, update);
    // Outputs the user cleared without running their cells (the extension
    // opens this comm with their ids, then closes it).
    this.comms.registerTarget(CELLS_TARGET, (_comm, open) => views.cellsCleared(clearedCellsOf(open.content.data)));
    this.runner = this.makeRunner(this);
    this.markReady();
  }

  /** Send `msg` on `sock` through that socket's queue. */
  send(sock: unknown, msg: Message): void {
    this.queueFor(sock).push(msg);
  }

  override publishStatus(status: string, parent: TslabMessage): void {
    this.io.status(status as "busy" | "idle", parent as unknown as Message);
  }

  override async handleShellMessage(sock: ZmqServer["shell"], ...frames: Buffer[]): Promise<void> {
    await this.ready;
    let msg: Message;
    try {
      msg = Message.parse(this.connInfo.key, frames, this.signatures);
    } catch (e) {
      this.log(`anndata-oom kernel: ignored a message: ${String(e)}\n`);
      return;
    }
    msg.sink = (s, m) => this.send(s, m);
    const type = msg.header.msg_type;
    if (type === "execute_request") {
      this.runner.enqueue(msg, sock);
      return;
    }
    this.io.status("busy", msg);
    try {
      await this.dispatch(sock, msg);
    } catch (e) {
      this.log(`anndata-oom kernel: ${type} failed: ${String(e)}\n`);
    } finally {
      if (type !== "shutdown_request") this.io.status("idle", msg);
    }
  }

  private async dispatch(sock: unknown, msg: Message): Promise<void> {
    const c = msg.content;
    const reply = (type: string, content: unknown) => this.send(sock, msg.reply(type, content));
    switch (msg.header.msg_type) {
      case "kernel_info_request":
        return reply("kernel_info_reply", this.kernelInfo());
      case "is_complete_request":
        return this.orReply(
          () => reply("is_complete_reply", isCompleteReply(codeOf(c), this.handler.handleIsComplete({ code: codeOf(c) }))),
          reply,
          "is_complete_reply",
          {
            status: "unknown",
          },
        );
      case "inspect_request": {
        // Jupyter counts the cursor in code points, TypeScript in UTF-16 units.
        const code = codeOf(c);
        const at = cursorOf(code, c);
        return this.orReply(() => reply("inspect_reply", inspectReply(this.handler, code, toUtf16(code, at))), reply, "inspect_reply", {
          found: false,
          data: {},
          metadata: {},
        });
      }
      case "complete_request": {
        const code = codeOf(c);
        const at = cursorOf(code, c);
        return this.orReply(
          () => {
            const r = this.handler.handleComplete({ code, cursor_pos: toUtf16(code, at) });
            reply("complete_reply", {
              ...r,
              cursor_start: toCodePoints(code, r.cursor_start),
              cursor_end: toCodePoints(code, r.cursor_end),
            });
          },
          reply,
          "complete_reply",
          { matches: [], cursor_start: at, cursor_end: at, metadata: {} },
        );
      }
      case "history_request":
        return this.orReply(() => reply("history_reply", this.history.reply(c ?? {})), reply, "history_reply", { history: [] });
      case "comm_info_request":
        return reply("comm_info_reply", { status: "ok", comms: this.comms.info(c.target_name) });
      case "comm_open":
        // A target registered by a cell still running or queued: wait for it.
        if (!this.comms.hasTarget(c.target_name) && this.runner.busy) await this.runner.idle();
        return this.comms.handleOpen(msg);
      case "comm_msg":
        return this.comms.handleMsg(msg);
      case "comm_close":
        return this.comms.handleClose(msg);
      case "interrupt_request":
        this.runner.interrupt();
        return reply("interrupt_reply", { status: "ok" });
      case "shutdown_request":
        return this.shutdown(sock, msg);
      default:
        this.log(`anndata-oom kernel: unhandled msg_type ${msg.header.msg_type}\n`);
    }
  }

  private orReply(f: () => void, reply: (t: string, c: unknown) => void, type: string, fallback: Record<string, unknown>): void {
    try {
      f();
    } catch {
      reply(type, { status: "ok", ...fallback });
    }
  }

  private kernelInfo(): Record<string, unknown> {
    const base = this.handler.handleKernel();
    return {
      ...base,
      status: "ok",
      protocol_version: "5.3",
      implementation: this.info.implementation,
      implementation_version: this.info.implementation_version,
      banner: this.info.banner,
      language_info: { ...base.language_info, version: this.info.languageVersion },
      help_links: [],
    };
  }

  private async shutdown(sock: unknown, msg: Message): Promise<void> {
    const restart = !!msg.content.restart;
    this.send(sock, msg.reply("shutdown_reply", { status: "ok", restart }));
    // Idle before the queues drain, so it goes out before the exit (and
    // only here: handleShellMessage skips it for a shutdown).
    this.io.status("idle", msg);
    await KPromise.all([...this.queues.values()].map((q) => q.drained()));
    setTimeout(() => {
      this.close();
      exitKernel(0);
    }, 50);
  }

  /** After the loop breaker terminated JavaScript (see SendQueue.restart). */
  restartQueues(): void {
    for (const q of this.queues.values()) q.restart();
  }

  private queueFor(sock: unknown): SendQueue {
    let q = this.queues.get(sock);
    if (!q) {
      q = new SendQueue(sock as Sendable, this.connInfo.key, this.log);
      this.queues.set(sock, q);
    }
    return q;
  }
}

/** The request's code (a string; anything else is empty). */
function codeOf(content: Record<string, unknown> | null | undefined): string {
  return typeof content?.code === "string" ? content.code : "";
}

/** The request's cursor in code points, clamped to the code (default: its end). */
function cursorOf(code: string, content: Record<string, unknown> | null | undefined): number {
  const n = [...code].length;
  const at = content?.cursor_pos;
  return typeof at === "number" && Number.isInteger(at) ? Math.max(0, Math.min(n, at)) : n;
}

/** A code-point offset into `code` as a UTF-16 index. */
export function toUtf16(code: string, codePoints: number): number {
  let i = 0;
  for (let k = 0; k < codePoints && i < code.length; k++) i += (code.codePointAt(i) ?? 0) > 0xffff ? 2 : 1;
  return i;
}

/** A UTF-16 index into `code` as a code-point offset. */
export function toCodePoints(code: string, utf16: number): number {
  let k = 0;
  for (let i = 0; i < utf16 && i < code.length; k++) i += (code.codePointAt(i) ?? 0) > 0xffff ? 2 : 1;
  return k;
}
