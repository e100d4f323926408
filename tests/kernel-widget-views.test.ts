/**
 * Which cells show each widget (src/kernel/widget-views.ts): a widget is
 * closed once every cell showing it was re-run or deleted, never while one
 * still shows it, never when a view of it was shown outside a known cell,
 * and never for comms that are not open widgets. The real kernel's flow is
 * tested in tests/kernel/test_engine_kernel.py (engine_widget_lifetime).
 */

import * as assert from "node:assert/strict";
import { describe, it } from "node:test";
import { WIDGET_VIEW_MIME } from "../src/engine/interactive/widget-comm";
import { clearedCells, clearedCellsOf, WidgetViews } from "../src/kernel/widget-views";
import { Message } from "../src/kernel/wire";

function request(cellId?: unknown, deletedCells?: unknown): Message {
  const m = new Message("execute_request", "session");
  if (cellId !== undefined) m.metadata.cellId = cellId;
  if (deletedCells !== undefined) m.metadata.deletedCells = deletedCells;
  return m;
}

function host(open: string[]) {
  const openIds = new Set(open);
  const closed: string[] = [];
  return {
    closed,
    isOpenWidget: (id: string) => openIds.has(id),
    close: (id: string) => {
      openIds.delete(id);
      closed.push(id);
    },
  };
}

const view = (id: string) => ({ "text/plain": "x", [WIDGET_VIEW_MIME]: { model_id: id, version_major: 2, version_minor: 1 } });

describe("kernel: widget lifetimes by cell", () => {
  it("cleared cells: the request's own cell unless silent, and deleted cells (strings only)", () => {
    assert.deepEqual(clearedCells(request("a", ["b", 3, "", null, "c"]), false), ["a", "b", "c"]);
    assert.deepEqual(clearedCells(request("a", ["b"]), true), ["b"]);
    assert.deepEqual(clearedCells(request(undefined, "b"), false), []);
    assert.deepEqual(clearedCells(request(42), false), []);
  });

  it("outputs cleared in the frontend (the extension's comm data): string ids only, malformed data names none", () => {
    assert.deepEqual(clearedCellsOf({ cleared: ["a", "", 3, null, "b"] }), ["a", "b"]);
    for (const bad of [null, undefined, "a", 1, {}, { cleared: "a" }, { cleared: { 0: "a" } }]) assert.deepEqual(clearedCellsOf(bad), []);
  });

  it("closes a widget when the last cell showing it is cleared, not before", () => {
    const h = host(["w1", "w2"]);
    const v = new WidgetViews(h);
    v.noteDisplay(view("w1"), request("a"), false);
    v.noteDisplay(view("w1"), request("b"), false);
    v.noteDisplay(view("w2"), request("b"), false);
    v.cellsCleared(["a"]);
    assert.deepEqual(h.closed, []);
    v.cellsCleared(["b"]);
    assert.deepEqual(h.closed.sort(), ["w1", "w2"]);
    v.cellsCleared(["a", "b"]);
    assert.equal(h.closed.length, 2, "closed once");
  });

  it("a view outside a known cell (no cell id, update_display_data) pins the widget open", () => {
    const h = host(["w1", "w2"]);
    const v = new WidgetViews(h);
    v.noteDisplay(view("w1"), request("a"), false);
    v.noteDisplay(view("w1"), request(), false);
    v.noteDisplay(view("w2"), request("a"), false);
    v.noteDisplay(view("w2"), request("b"), true);
    v.noteDisplay(view("w1"), request("c"), false);
    v.cellsCleared(["a", "b", "c"]);
    assert.deepEqual(h.closed, []);
  });

  it("ignores bundles without a view, and comms that are not open widgets", () => {
    const h = host(["w1"]);
    const v = new WidgetViews(h);
    v.noteDisplay({ "text/plain": "1" }, request("a"), false);
    v.noteDisplay(null, request("a"), false);
    v.noteDisplay(view("other"), request("a"), false);
    v.noteDisplay({ [WIDGET_VIEW_MIME]: { model_id: 7 } }, request("a"), false);
    v.cellsCleared(["a"]);
    assert.deepEqual(h.closed, []);
  });

  it("forgets a widget closed another way; a reopened model is tracked afresh", () => {
    const h = host(["w1"]);
    const v = new WidgetViews(h);
    v.noteDisplay(view("w1"), request(), false);
    v.forget("w1");
    v.noteDisplay(view("w1"), request("a"), false);
    v.cellsCleared(["a"]);
    assert.deepEqual(h.closed, ["w1"], "the pin went with the closed comm");
  });
});
