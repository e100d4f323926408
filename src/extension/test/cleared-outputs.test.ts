/**
 * Outputs cleared without a run (cleared-outputs.ts): after JupyterLab's
 * clear-output commands, the ids of the current notebook's empty code cells
 * go to an anndata-oom kernel on a comm to "anndata-oom.cells", opened and
 * closed at once; other kernels, other commands and other panels send
 * nothing, and a kernel that is gone does not throw. The kernel's side is
 * tested in tests/kernel/test_engine_kernel.py (engine_widget_lifetime).
 */
import * as assert from "node:assert/strict";
import { describe, it } from "node:test";
import { CLEAR_OUTPUT_COMMANDS, emptyCodeCells, notifyClearedOutputs, watchClearOutputCommands } from "../cleared-outputs";

type Sent = { target: string; calls: [string, unknown][] };

function fakeKernel(implementation: string, sent: Sent[], opts: { throws?: boolean } = {}) {
  return {
    info: Promise.resolve({ implementation }),
    createComm(target: string) {
      if (opts.throws) throw new Error("kernel disposed");
      const s: Sent = { target, calls: [] };
      sent.push(s);
      return {
        open: (d?: unknown) => s.calls.push(["open", d]),
        send: (d: unknown) => s.calls.push(["send", d]),
        close: (d?: unknown) => s.calls.push(["close", d]),
      };
    },
  };
}

const cell = (id: unknown, type: string, outputs: number) => ({ model: { id, type, outputs: { length: outputs } } });

function panel(kernel: unknown, cells = [cell("a", "code", 0), cell("b", "code", 2), cell("c", "markdown", 0), cell("d", "code", 0)]) {
  return { content: { widgets: cells }, sessionContext: { session: { kernel } } };
}

describe("outputs cleared in JupyterLab", () => {
  it("lists the code cells without outputs", () => {
    assert.deepEqual(emptyCodeCells(panel(null)), ["a", "d"]);
    assert.deepEqual(emptyCodeCells(panel(null, [cell(7, "code", 0), { model: undefined } as never, cell("e", "code", 0)])), ["e"]);
    for (const notANotebook of [null, undefined, {}, { content: {} }, { content: { widgets: "x" } }]) {
      assert.deepEqual(emptyCodeCells(notANotebook), []);
    }
  });

  it("sends them to an anndata-oom kernel on a comm opened and closed at once", async () => {
    const sent: Sent[] = [];
    assert.equal(await notifyClearedOutputs(panel(fakeKernel("anndata-oom", sent))), true);
    assert.deepEqual(sent, [
      {
        target: "anndata-oom.cells",
        calls: [
          ["open", { cleared: ["a", "d"] }],
          ["close", undefined],
        ],
      },
    ]);
  });

  it("sends nothing to another kernel, without a kernel or empty cells, and never throws", async () => {
    const sent: Sent[] = [];
    assert.equal(await notifyClearedOutputs(panel(fakeKernel("ipython", sent))), false);
    assert.equal(await notifyClearedOutputs(panel(null)), false);
    assert.equal(await notifyClearedOutputs(panel(fakeKernel("anndata-oom", sent), [cell("b", "code", 1)])), false);
    assert.equal(await notifyClearedOutputs({ sessionContext: { session: { kernel: fakeKernel("anndata-oom", sent) } } }), false);
    assert.equal(await notifyClearedOutputs(panel(fakeKernel("anndata-oom", sent, { throws: true }))), false);
    const rejecting = { info: Promise.reject(new Error("gone")), createComm: () => assert.fail("no comm") };
    assert.equal(await notifyClearedOutputs(panel(rejecting)), false);
    assert.deepEqual(sent, []);
  });

  it("runs after JupyterLab's two clear-output commands only, on the current panel", async () => {
    let slot: ((sender: unknown, args: { id: string }) => void) | undefined;
    const commands = { commandExecuted: { connect: (fn: typeof slot) => (slot = fn) } };
    const sent: Sent[] = [];
    const current = panel(fakeKernel("anndata-oom", sent));
    watchClearOutputCommands(commands, () => current);
    for (const id of ["notebook:run-cell", "notebook:delete-cell", "notebook:clear-outputs-typo"]) slot?.(commands, { id });
    await new Promise((r) => setTimeout(r, 0));
    assert.equal(sent.length, 0);
    for (const id of CLEAR_OUTPUT_COMMANDS) slot?.(commands, { id });
    await new Promise((r) => setTimeout(r, 0));
    assert.deepEqual(
      sent.map((s) => s.calls[0]),
      [
        ["open", { cleared: ["a", "d"] }],
        ["open", { cleared: ["a", "d"] }],
      ],
    );
  });
});
