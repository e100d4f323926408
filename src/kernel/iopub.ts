/**
 * Publishing on iopub: status, streams, displays and comm messages, each
 * with a parent header. Output produced outside a request (timers, late
 * promises) goes to the most recent execute request, as ipykernel does.
 */

import { Buffer } from "node:buffer";
import { randomBytes } from "node:crypto";
import type { SendQueue } from "./send-queue";
import { Message } from "./wire";

export type MimeBundle = Record<string, unknown>;

export interface DisplayOptions {
  displayId?: string;
  update?: boolean;
  metadata?: Record<string, unknown>;
}

export class Iopub {
  /** The request that output is attributed to (the current or last execute_request). */
  parent: Message | undefined;
  private readonly session = randomBytes(16).toString("hex");

  constructor(readonly queue: SendQueue) {}

  /** Build an iopub message of `msgType` under `parent` (or the current parent). */
  message(msgType: string, content: unknown, parent: Message | undefined = this.parent): Message {
    const m = parent ? parent.reply(msgType, content) : new Message(msgType, this.session);
    m.content = content;
    m.identity = [Buffer.from(`kernel.${msgType}`)];
    return m;
  }

  /** Sees every display bundle published, with its request (widget lifetimes, widget-views.ts). */
  onDisplay: ((data: unknown, parent: Message | undefined, update: boolean) => void) | undefined;

  publish(msgType: string, content: unknown, parent?: Message, buffers?: Buffer[]): void {
    const under = parent ?? this.parent;
    if (msgType === "display_data" || msgType === "execute_result" || msgType === "update_display_data")
      this.onDisplay?.((content as { data?: unknown } | null)?.data, under, msgType === "update_display_data");
    const m = this.message(msgType, content, under);
    if (buffers) m.buffers = buffers;
    this.queue.push(m);
  }

  status(state: "busy" | "idle" | "starting", parent?: Message): void {
    this.publish("status", { execution_state: state }, parent);
  }

  stream(name: "stdout" | "stderr", text: string): void {
    if (!text) return;
    this.queue.pushStream(this.message("stream", { name, text }));
  }

  display(data: MimeBundle, opts: DisplayOptions = {}): void {
    // The protocol needs objects here; a frontend may throw rendering anything else.
    const isDict = (x: unknown) => typeof x === "object" && x !== null && !Array.isArray(x);
    if (!isDict(data))
      throw new TypeError(`display: the bundle must be an object { [mime type]: data }, got ${data === null ? "null" : typeof data}`);
    if (opts.metadata !== undefined && !isDict(opts.metadata)) throw new TypeError("display: metadata must be an object");
    const content: Record<string, unknown> = { data, metadata: opts.metadata ?? {}, transient: {} };
    if (opts.displayId) content.transient = { display_id: opts.displayId };
    if (opts.update && !opts.displayId) throw new Error("display: update needs a displayId");
    this.publish(opts.update ? "update_display_data" : "display_data", content);
  }
}
