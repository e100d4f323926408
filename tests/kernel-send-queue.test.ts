/**
 * The kernel's outgoing queue (src/kernel/send-queue.ts) after the loop
 * breaker terminated JavaScript: V8 drops queued microtasks, so the pump
 * can be left waiting on a step that never comes. restart() must send what
 * is queued, in order, each message once, and settle drained().
 */

import * as assert from "node:assert/strict";
import type { Buffer } from "node:buffer";
import { describe, it } from "node:test";
import { SendQueue } from "../src/kernel/send-queue";
import { Message } from "../src/kernel/wire";

/**
 * A socket whose first send hangs until `release()` (a pump stuck on it);
 * later sends complete on the next turn of the event loop. It counts the
 * sends pending at once: zeromq.js refuses a second one.
 */
class HangingSocket {
  readonly sent: string[] = [];
  pending = 0;
  maxPending = 0;
  private releaseFirst: (() => void) | undefined;

  send(frames: Buffer[]): Promise<void> {
    const id = JSON.parse(frames[frames.length - 1].toString()).n as string;
    this.sent.push(id);
    this.maxPending = Math.max(this.maxPending, ++this.pending);
    const done = () => {
      this.pending--;
    };
    if (this.sent.length > 1) return new Promise((r) => setImmediate(() => r(done())));
    return new Promise((r) => (this.releaseFirst = () => r(done())));
  }

  release(): void {
    this.releaseFirst?.();
  }
}

function message(n: string): Message {
  const m = new Message("display_data", "session");
  m.content = { n };
  return m;
}

const tick = () => new Promise((r) => setImmediate(r));

describe("kernel send queue", () => {
  it("restart() after a stuck pump sends the rest once each, in order, even if the stuck send completes later", async () => {
    const sock = new HangingSocket();
    const q = new SendQueue(sock, "", () => undefined);
    q.push(message("a"));
    q.push(message("b"));
    q.push(message("c"));
    await tick();
    assert.deepEqual(sock.sent, ["a"], "the first send hangs, nothing else goes out");
    let drained = false;
    void q.drained().then(() => (drained = true));
    q.restart();
    await tick();
    // The new pump waits for the send in flight: zeromq.js allows one at a time.
    assert.deepEqual(sock.sent, ["a"]);
    sock.release();
    for (let i = 0; i < 8; i++) await tick();
    assert.deepEqual(sock.sent, ["a", "b", "c"], "b and c sent once each");
    assert.equal(sock.maxPending, 1, "the old pump stopped: never two sends at once");
    assert.ok(drained, "drained() settles");
    q.push(message("d"));
    await tick();
    assert.deepEqual(sock.sent, ["a", "b", "c", "d"]);
    assert.equal(sock.maxPending, 1);
  });

  it("a queue with nothing in flight sends its first message synchronously (a cell's output before a synchronous loop)", () => {
    const sock = new HangingSocket();
    const q = new SendQueue(sock, "", () => undefined);
    q.push(message("x"));
    assert.deepEqual(sock.sent, ["x"]);
  });
});
