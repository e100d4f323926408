/**
 * An outgoing message queue for one socket: awaits each send (zeromq.js
 * allows one pending send per socket, and fails with "Socket is busy
 * writing" after ~512 synchronous sends), and merges consecutive stream
 * output into one message while earlier messages are on their way, as
 * ipykernel batches stdout.
 *
 * Backpressure: iopub is a PUB socket with ZMQ_XPUB_NODROP and a zero send
 * timeout, so a send to a subscriber whose queue is full fails at once
 * with EAGAIN instead of being dropped silently; we retry it (backing off)
 * before anything later, so order is kept. Only a subscriber that reads
 * nothing for RETRY_LIMIT_MS loses messages (logged to the kernel log).
 */

import type { Buffer } from "node:buffer";
import { setImmediate, setTimeout } from "node:timers";
import { KPromise } from "./intrinsics";
import type { Message } from "./wire";

export interface Sendable {
  send(frames: Buffer[]): Promise<void>;
}

/** Merged stream messages stop growing beyond this many characters. */
const MAX_STREAM_CHARS = 1 << 20;
/** How long a message waits for room in a full subscriber queue before it is dropped. */
export const RETRY_LIMIT_MS = 30_000;
/** Sends between yields to the event loop (sends resolve as microtasks). */
const YIELD_EVERY = 256;

const sleep = (ms: number) => new KPromise((r) => setTimeout(r, ms));

export class SendQueue {
  private readonly items: { msg: Message; frames?: Buffer[] }[] = [];
  private pumping = false;
  private waiters: (() => void)[] = [];
  /** Bumped by restart(): a pump of an older generation stops at its next step. */
  private generation = 0;
  /** The send handed to the socket last (zeromq.js allows one at a time). */
  private inFlight: Promise<unknown> | undefined;

  constructor(
    private readonly sock: Sendable,
    private readonly key: string,
    private readonly log: (text: string) => void,
  ) {}

  /** Queue a message; it is serialized now, so a bad payload throws to the caller. */
  push(msg: Message): void {
    this.items.push({ msg, frames: msg.toFrames(this.key) });
    this.pump();
  }

  /** Queue stream text, appended to the last queued message when it is the same stream of the same parent. */
  pushStream(msg: Message): void {
    const last = this.items[this.items.length - 1];
    const { name, text } = msg.content as { name: string; text: string };
    if (
      last &&
      !last.frames &&
      last.msg.content.name === name &&
      last.msg.parent.msg_id === msg.parent.msg_id &&
      last.msg.content.text.length + text.length <= MAX_STREAM_CHARS
    ) {
      last.msg.content.text += text;
      return;
    }
    this.items.push({ msg });
    this.pump();
  }

  /** Resolves once everything queued so far has been handed to the socket. */
  drained(): Promise<void> {
    if (!this.items.length && !this.pumping) return KPromise.resolve();
    return new KPromise((resolve) => this.waiters.push(resolve));
  }

  /**
   * Starts a new pump after the loop breaker terminated JavaScript: V8 then
   * drops every queued microtask, and with it, often, the running pump's
   * next step (a send resolves as a microtask), which would leave this
   * queue waiting forever. The new pump waits for the last send first.
   */
  restart(): void {
    this.generation++;
    this.pumping = false;
    this.pump(this.inFlight);
  }

  /** Sends what is queued; the first send goes out synchronously (a cell's output even from a synchronous loop) unless `after` must settle first. */
  private async pump(after?: Promise<unknown>): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    const generation = this.generation;
    const current = () => generation === this.generation;
    try {
      if (after) await after.catch(() => undefined);
      for (let sent = 1; this.items.length && current(); sent++) {
        const item = this.items.shift()!;
        await this.sendOne(item.frames ?? item.msg.toFrames(this.key), item.msg);
        if (sent % YIELD_EVERY === 0) await new KPromise((r) => setImmediate(r));
      }
    } finally {
      if (current()) {
        this.pumping = false;
        const w = this.waiters;
        this.waiters = [];
        for (const f of w) f();
      }
    }
  }

  private async sendOne(frames: Buffer[], msg: Message): Promise<void> {
    const deadline = Date.now() + RETRY_LIMIT_MS;
    for (let wait = 1; ; wait = Math.min(wait * 2, 50)) {
      try {
        this.inFlight = this.sock.send(frames);
        await this.inFlight;
        return;
      } catch (e) {
        if ((e as { code?: string }).code !== "EAGAIN" || Date.now() > deadline) {
          this.log(`anndata-oom kernel: dropped a ${msg.header.msg_type} message: ${String(e)}\n`);
          return;
        }
        await sleep(wait);
      }
    }
  }
}
