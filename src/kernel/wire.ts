/**
 * Jupyter wire messages: parsing and signing multipart frames.
 *
 * The signature covers header, parent header, metadata and content only
 * (binary buffers follow unsigned, as the protocol says), unlike tslab's
 * parser, which signs every frame and so rejects messages with buffers.
 * `createReply` / `signAndSend` keep tslab's ZmqMessage shape so that its
 * handlers (complete, inspect, is_complete) can reply through our queues.
 */

import { Buffer } from "node:buffer";
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { jsonParse, jsonStringify } from "./intrinsics";

export const DELIM = Buffer.from("<IDS|MSG>");
export const PROTOCOL_VERSION = "5.3";

export interface Header {
  msg_id: string;
  msg_type: string;
  session: string;
  username: string;
  date: string;
  version: string;
}

/** Where a message is sent: set on a parsed request, copied to its replies. */
export type Sink = (sock: unknown, msg: Message) => void;

export class Message {
  identity: Buffer[] = [];
  header: Header;
  parent: Header | Record<string, never> = {};
  metadata: Record<string, unknown> = {};
  content: any = {};
  buffers: Buffer[] = [];
  sink?: Sink;

  constructor(msgType: string, session: string, username = "kernel") {
    this.header = {
      msg_id: randomBytes(16).toString("hex"),
      msg_type: msgType,
      session,
      username,
      date: new Date().toISOString(),
      version: PROTOCOL_VERSION,
    };
  }

  /** tslab compatibility: its handlers read `extra`. */
  get extra(): Buffer[] {
    return this.buffers;
  }

  /** A reply (or iopub message) whose parent is this message. */
  reply(msgType: string, content: unknown = {}): Message {
    const r = new Message(msgType, this.header.session, this.header.username);
    r.identity = this.identity;
    r.parent = this.header;
    r.content = content;
    r.sink = this.sink;
    return r;
  }

  /** tslab compatibility: a reply with the same msg_type (tslab sets it afterwards). */
  createReply(): Message {
    return this.reply(this.header.msg_type);
  }

  /** tslab compatibility: hands the message to the sink (our send queue), ignoring the key. */
  signAndSend(_key: string, sock: unknown): void {
    if (!this.sink) throw new Error("message has no sink");
    this.sink(sock, this);
  }

  /** The frames to send, signed with `key` (HMAC-SHA256; empty key = unsigned). */
  toFrames(key: string): Buffer[] {
    const parts = [this.header, this.parent, this.metadata, this.content].map((p) => Buffer.from(jsonStringify(p)));
    return [...this.identity, DELIM, Buffer.from(sign(key, parts)), ...parts, ...this.buffers];
  }

  /**
   * Parse incoming frames; throws on a missing delimiter, a bad signature,
   * or (with `seen`) a signature already accepted: a replayed message.
   */
  static parse(key: string, frames: Buffer[], seen?: SignatureHistory): Message {
    const d = frames.findIndex((f) => f.equals(DELIM));
    if (d < 0) throw new Error("message missing delimiter");
    if (frames.length < d + 6) throw new Error("message has too few frames");
    const parts = frames.slice(d + 2, d + 6);
    const expected = sign(key, parts);
    const got = frames[d + 1].toString();
    if (key && !safeEqual(got, expected)) throw new Error("invalid message signature");
    if (key && seen && !seen.add(got)) throw new Error("duplicate message signature (a replayed message)");
    const header = jsonParse(parts[0].toString()) as Header;
    const m = new Message(header.msg_type, header.session, header.username);
    m.header = header;
    m.identity = frames.slice(0, d);
    m.parent = jsonParse(parts[1].toString());
    m.metadata = jsonParse(parts[2].toString());
    m.content = jsonParse(parts[3].toString());
    m.buffers = frames.slice(d + 6);
    return m;
  }
}

/**
 * The signatures of accepted messages, so that a captured message sent
 * again is refused (jupyter_client's Session keeps the same history). The
 * oldest are forgotten past `capacity`; a signature covers the message's
 * unique msg_id and date, so a legitimate client never repeats one.
 */
export class SignatureHistory {
  private readonly seen = new Set<string>();

  constructor(private readonly capacity = 1 << 16) {}

  /** Records `signature`; false if it was already recorded. */
  add(signature: string): boolean {
    if (this.seen.has(signature)) return false;
    this.seen.add(signature);
    if (this.seen.size > this.capacity) this.seen.delete(this.seen.values().next().value as string);
    return true;
  }
}

function sign(key: string, parts: Buffer[]): string {
  if (!key) return "";
  const h = createHmac("sha256", key);
  for (const p of parts) h.update(p);
  return h.digest("hex");
}

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** Buffers as Node Buffers without copying (for frames). */
export function toBuffers(buffers: readonly (ArrayBuffer | ArrayBufferView)[] | undefined): Buffer[] {
  return (buffers ?? []).map((b) =>
    ArrayBuffer.isView(b) ? Buffer.from(b.buffer, b.byteOffset, b.byteLength) : Buffer.from(b as ArrayBuffer),
  );
}
