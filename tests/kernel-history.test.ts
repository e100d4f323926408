/**
 * The kernel's input history (src/kernel/history.ts): what history_request
 * answers, how sessions follow each other through the file, and that a bad
 * file never stops the kernel.
 */

import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, describe, it } from "node:test";
import { HISTORY_LIMIT, History, historyFile } from "../src/kernel/history";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "aoom-history-"));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe("kernel input history", () => {
  it("answers tail, range and search; a new History is the next session and sees the last one's inputs", () => {
    const file = path.join(tmp, "a", "b", "history.jsonl");
    const one = new History(file);
    assert.equal(one.session, 1);
    one.record(1, "const a = 1");
    one.record(2, "a + 1");
    one.record(3, "a + 1");
    const two = new History(file);
    assert.equal(two.session, 2);
    two.record(1, "await read('x.h5ad')");
    assert.deepEqual(two.reply({ hist_access_type: "tail", n: 2 }).history, [
      [1, 3, "a + 1"],
      [2, 1, "await read('x.h5ad')"],
    ]);
    assert.deepEqual(two.reply({ hist_access_type: "range", session: -1, start: 2, stop: 3 }).history, [[1, 2, "a + 1"]]);
    assert.deepEqual(two.reply({ hist_access_type: "range", session: 0 }).history, [[2, 1, "await read('x.h5ad')"]]);
    assert.deepEqual(two.reply({ hist_access_type: "range", session: 1, start: 1 }).history.length, 3);
    assert.deepEqual(
      two.reply({ hist_access_type: "search", pattern: "a + ?" }).history.map((h) => h[1]),
      [2, 3],
    );
    assert.deepEqual(two.reply({ hist_access_type: "search", pattern: "a + ?", unique: true }).history, [[1, 3, "a + 1"]]);
    assert.deepEqual(two.reply({ hist_access_type: "search", pattern: "*read(*", n: 1, output: true }).history, [
      [2, 1, ["await read('x.h5ad')", null]],
    ]);
    // glob characters only: regular-expression syntax in a pattern is literal
    assert.deepEqual(two.reply({ hist_access_type: "search", pattern: "a.+.1" }).history, []);
    assert.deepEqual(two.reply({ hist_access_type: "tail" }).history, []);
    assert.deepEqual(two.reply({ hist_access_type: "nonsense", n: 3 }).history, []);
  });

  it("skips a line cut short by a killed kernel and keeps going", () => {
    const file = path.join(tmp, "cut.jsonl");
    fs.writeFileSync(file, `${JSON.stringify({ session: 4, line: 1, input: "x" })}\n{"session": 4, "li`);
    const h = new History(file);
    assert.equal(h.session, 5);
    assert.deepEqual(h.reply({ hist_access_type: "tail", n: 5 }).history, [[4, 1, "x"]]);
  });

  it("an unwritable file keeps the history in memory and says so once", () => {
    const blocker = path.join(tmp, "blocker");
    fs.writeFileSync(blocker, "");
    const logged: string[] = [];
    const h = new History(path.join(blocker, "history.jsonl"), (t) => logged.push(t));
    h.record(1, "1");
    h.record(2, "2");
    assert.deepEqual(h.reply({ hist_access_type: "tail", n: 5 }).history, [
      [1, 1, "1"],
      [1, 2, "2"],
    ]);
    assert.equal(logged.length, 1);
    assert.match(logged[0], /cannot (read|write) the history file .*blocker.*kept in memory only/);
    // a folder where the file should be, and /proc (where mkdir -p would spin)
    assert.doesNotThrow(() => new History(tmp).record(1, "x"));
    assert.doesNotThrow(() => new History("/proc/self/anndata-oom/history.jsonl").record(1, "x"));
  });

  it("a file longer than twice the limit is trimmed to the limit when loaded", () => {
    const file = path.join(tmp, "long.jsonl");
    const n = 2 * HISTORY_LIMIT + 5;
    fs.writeFileSync(
      file,
      Array.from({ length: n }, (_, i) => `${JSON.stringify({ session: 1, line: i + 1, input: `c${i}` })}\n`).join(""),
    );
    const h = new History(file);
    const tail = h.reply({ hist_access_type: "tail", n: 1 }).history;
    assert.deepEqual(tail, [[1, n, `c${n - 1}`]]);
    assert.equal(fs.readFileSync(file, "utf8").trimEnd().split("\n").length, HISTORY_LIMIT);
  });

  it("is kept in $ANNDATA_OOM_HISTORY, nowhere when it is off, else under XDG_DATA_HOME", () => {
    assert.equal(historyFile({ ANNDATA_OOM_HISTORY: "/x/h.jsonl" }), "/x/h.jsonl");
    assert.equal(historyFile({ ANNDATA_OOM_HISTORY: "off" }), null);
    assert.equal(historyFile({ XDG_DATA_HOME: "/d" }), path.join("/d", "anndata-oom", "history.jsonl"));
    const mem = new History(null);
    mem.record(1, "y");
    assert.deepEqual(mem.reply({ hist_access_type: "tail", n: 1 }).history, [[1, 1, "y"]]);
  });
});
