"""Drives a real anndata-oom kernel with jupyter_client.

usage: python test_kernel.py REPO NODE [CHECK ...]

Installs our kernelspec (built launcher under REPO/dist, run by NODE) into
a temporary prefix, starts the kernel in an empty "notebook" folder and
runs the checks in order (all, or the ones named). Prints one JSON line
per check: {"check": name, "ok": bool, "detail": str}. Every wait has a
timeout, and the kernel is shut down on exit (also on SIGTERM).
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
import uuid
from collections import deque

from jupyter_client.manager import start_new_kernel

REPO, NODE = sys.argv[1], sys.argv[2]
ONLY = set(sys.argv[3:])
T = 30  # seconds for any single reply or output


class Kernel:
    def __init__(self, km, kc):
        self.km, self.kc = km, kc
        self.backlog = deque()
        self.replies = {"shell": [], "control": []}

    # -- iopub -----------------------------------------------------------
    def iopub(self, pred, timeout=T):
        """The first iopub message matching pred (others stay in the backlog)."""
        for i, m in enumerate(self.backlog):
            if pred(m):
                del self.backlog[i]
                return m
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no matching iopub message")
            m = self.kc.get_iopub_msg(timeout=left)
            if pred(m):
                return m
            self.backlog.append(m)

    def reply(self, msg_id, channel="shell", timeout=T):
        """The reply to msg_id (replies to other requests are kept for later)."""
        kept = self.replies[channel]
        for i, m in enumerate(kept):
            if m["parent_header"].get("msg_id") == msg_id:
                return kept.pop(i)
        get = self.kc.get_shell_msg if channel == "shell" else self.kc.get_control_msg
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no {channel} reply")
            m = get(timeout=left)
            if m["parent_header"].get("msg_id") == msg_id:
                return m
            kept.append(m)

    def outputs(self, msg_id, timeout=T):
        """iopub messages of a request up to (excluding) its idle status."""
        out = []
        deadline = time.monotonic() + timeout
        while True:
            m = self.iopub(lambda m: m["parent_header"].get("msg_id") == msg_id, max(0.01, deadline - time.monotonic()))
            if m["msg_type"] == "status" and m["content"]["execution_state"] == "idle":
                return out
            out.append(m)

    def run(self, code, timeout=T, **kw):
        msg_id = self.kc.execute(code, **kw)
        reply = self.reply(msg_id, timeout=timeout)
        return reply["content"], self.outputs(msg_id, timeout)

    def run_cell(self, cell_id, code, deleted=(), timeout=T):
        """Runs code as JupyterLab runs a notebook cell: its id (and deleted cells' ids) in the metadata."""
        content = {"code": code, "silent": False, "store_history": True, "user_expressions": {}, "allow_stdin": False, "stop_on_error": True}
        msg_id = self.send("execute_request", content, metadata={"cellId": cell_id, "deletedCells": list(deleted), "recordTiming": False})
        reply = self.reply(msg_id, timeout=timeout)
        return reply["content"], self.outputs(msg_id, timeout)

    def send(self, msg_type, content, buffers=None, channel="shell", metadata=None):
        msg = self.kc.session.msg(msg_type, content, metadata=metadata)
        sock = (self.kc.shell_channel if channel == "shell" else self.kc.control_channel).socket
        self.kc.session.send(sock, msg, buffers=buffers)
        return msg["header"]["msg_id"]


def stdout(outs):
    return "".join(m["content"]["text"] for m in outs if m["msg_type"] == "stream" and m["content"]["name"] == "stdout")


def expect(cond, detail):
    if not cond:
        raise AssertionError(detail)


API = "const k = (globalThis as any).__anndataOomKernel;\n"


# -- checks ----------------------------------------------------------------
def kernel_info(k):
    mid = k.kc.kernel_info()
    c = k.reply(mid)["content"]
    expect(c["status"] == "ok" and c["implementation"] == "anndata-oom", c)
    expect(c["language_info"]["name"] == "typescript" and c["protocol_version"].startswith("5."), c)
    return c["banner"]


def execute_ok(k):
    rep, outs = k.run("1 + 1")
    expect(rep["status"] == "ok", rep)
    expect(stdout(outs) == "2\n", outs)  # plain values keep tslab's stdout behaviour
    expect(any(m["msg_type"] == "execute_input" for m in outs), outs)


def mime_bundle(k):
    code = """({ _repr_mimebundle_() { return { "text/plain": "card", "text/html": "<b>card</b>",
      "application/vnd.anndata-oom.repr+json": { n_obs: 3 } }; } })"""
    rep, outs = k.run(code)
    res = [m for m in outs if m["msg_type"] == "execute_result"]
    expect(rep["status"] == "ok" and len(res) == 1, (rep, outs))
    c = res[0]["content"]
    expect(c["execution_count"] == rep["execution_count"], c)
    expect(c["data"] == {"text/plain": "card", "text/html": "<b>card</b>", "application/vnd.anndata-oom.repr+json": {"n_obs": 3}}, c)
    # async method, text/plain filled in when missing
    rep, outs = k.run('({ async _repr_mimebundle_() { return { "text/html": "<i>x</i>" }; } })')
    res = [m["content"]["data"] for m in outs if m["msg_type"] == "execute_result"]
    expect(res and res[0]["text/html"] == "<i>x</i>" and isinstance(res[0]["text/plain"], str), outs)


def display_update(k):
    code = API + """const id = k.newDisplayId();
k.display({ "text/plain": "step 1" }, { displayId: id });
k.display({ "text/plain": "step 2" }, { displayId: id, update: true });
id"""
    rep, outs = k.run(code)
    expect(rep["status"] == "ok", rep)
    ident = stdout(outs).strip()
    disp = [m for m in outs if m["msg_type"] == "display_data"]
    upd = [m for m in outs if m["msg_type"] == "update_display_data"]
    expect(len(disp) == 1 and disp[0]["content"]["data"] == {"text/plain": "step 1"}, outs)
    expect(disp[0]["content"]["transient"]["display_id"] == ident, disp)
    expect(len(upd) == 1 and upd[0]["content"]["transient"]["display_id"] == ident, upd)
    expect(upd[0]["content"]["data"] == {"text/plain": "step 2"}, upd)
    # tslab's own display API goes through the same route
    rep, outs = k.run('import * as tslab from "tslab"; tslab.display.html("<p>t</p>")')
    expect(any(m["msg_type"] == "display_data" and m["content"]["data"] == {"text/html": "<p>t</p>"} for m in outs), outs)
    # a bundle that is not an object is the cell's TypeError, never an invalid message
    for bad in ("null", "[1]", '"text"', '{ "text/plain": "x" }, { metadata: 5 as any }'):
        rep, outs = k.run(API + f"k.display({bad} as any)")
        expect(rep["status"] == "error" and rep["ename"] == "TypeError" and "display" in rep["evalue"], (bad, rep))
        expect(not any(m["msg_type"] == "display_data" for m in outs), (bad, outs))


def comm_roundtrip(k):
    code = API + """k.registerCommTarget("aoom.echo", (comm: any, open: any) => {
  comm.send({ opened: open.content.data, nbuf: open.buffers.length }, open.buffers);
  comm.onMsg((msg: any) => comm.send({ echo: msg.content.data }, msg.buffers.map((b: Uint8Array) => Buffer.from(b).reverse())));
  comm.onClose(() => { (globalThis as any).echoClosed = true; });
});"""
    rep, _ = k.run(code)
    expect(rep["status"] == "ok", rep)
    cid = uuid.uuid4().hex
    b1 = bytes([0, 1, 2, 255])
    mid = k.send("comm_open", {"comm_id": cid, "target_name": "aoom.echo", "data": {"hello": "kernel"}}, buffers=[b1])
    m = k.iopub(lambda m: m["msg_type"] == "comm_msg" and m["content"]["comm_id"] == cid)
    expect(m["content"]["data"] == {"opened": {"hello": "kernel"}, "nbuf": 1}, m["content"])
    expect([bytes(b) for b in m["buffers"]] == [b1], m["buffers"])
    k.iopub(lambda m: m["parent_header"].get("msg_id") == mid and m["content"].get("execution_state") == "idle")
    big = bytes(range(256)) * 1000
    k.send("comm_msg", {"comm_id": cid, "data": {"n": 7}}, buffers=[b"abc", big])
    m = k.iopub(lambda m: m["msg_type"] == "comm_msg" and m["content"]["comm_id"] == cid)
    expect(m["content"]["data"] == {"echo": {"n": 7}}, m["content"])
    expect([bytes(b) for b in m["buffers"]] == [b"cba", big[::-1]], "buffers not echoed reversed")
    # kernel-opened comm, messages both ways
    code = API + """const kc = k.openComm("aoom.kernel", { hi: 1 }, [new Uint8Array([1, 2, 3])]);
kc.onMsg((m: any) => kc.send({ got: m.content.data, sizes: m.buffers.map((b: Uint8Array) => b.byteLength) }, m.buffers));
(globalThis as any).kcomm = kc;
kc.commId"""
    rep, outs = k.run(code)
    opens = [m for m in outs if m["msg_type"] == "comm_open"]
    expect(rep["status"] == "ok" and len(opens) == 1, (rep, outs))
    o = opens[0]
    kid = o["content"]["comm_id"]
    expect(stdout(outs).strip() == kid and o["content"]["target_name"] == "aoom.kernel", o["content"])
    expect(o["content"]["data"] == {"hi": 1} and [bytes(b) for b in o["buffers"]] == [b"\x01\x02\x03"], o)
    k.send("comm_msg", {"comm_id": kid, "data": {"x": "y"}}, buffers=[b"\x00" * 10])
    m = k.iopub(lambda m: m["msg_type"] == "comm_msg" and m["content"]["comm_id"] == kid)
    expect(m["content"]["data"] == {"got": {"x": "y"}, "sizes": [10]} and bytes(m["buffers"][0]) == b"\x00" * 10, m)
    # comm_info lists both; filtered by target; a closed comm disappears
    mid = k.kc.comm_info()
    r = k.reply(mid)
    expect(r["msg_type"] == "comm_info_reply" and r["content"]["status"] == "ok", r)
    expect(r["content"]["comms"].get(cid) == {"target_name": "aoom.echo"} and kid in r["content"]["comms"], r["content"])
    mid = k.kc.comm_info(target_name="aoom.kernel")
    expect(list(k.reply(mid)["content"]["comms"]) == [kid], "comm_info target filter")
    k.send("comm_close", {"comm_id": cid, "data": {}})
    mid = k.kc.comm_info()
    expect(cid not in k.reply(mid)["content"]["comms"], "closed comm still listed")
    rep, outs = k.run("(globalThis as any).echoClosed")
    expect(stdout(outs) == "true\n", outs)
    # an unknown target: the kernel closes the comm again
    bad = uuid.uuid4().hex
    k.send("comm_open", {"comm_id": bad, "target_name": "no.such.target", "data": {}})
    k.iopub(lambda m: m["msg_type"] == "comm_close" and m["content"]["comm_id"] == bad)
    # a message for a comm of an earlier kernel process (restarted from outside the page):
    # closed, so the frontend drops its stale widget model
    stale = uuid.uuid4().hex
    k.send("comm_msg", {"comm_id": stale, "data": {"method": "custom", "content": {}}})
    k.iopub(lambda m: m["msg_type"] == "comm_close" and m["content"]["comm_id"] == stale)


def _interrupt_cell(k, code, how, wait_for="started"):
    mid = k.kc.execute(code)
    k.iopub(lambda m: m["parent_header"].get("msg_id") == mid and m["msg_type"] == "stream" and wait_for in m["content"]["text"])
    t0 = time.monotonic()
    if how == "signal":
        k.km.interrupt_kernel()
    else:
        imid = k.send("interrupt_request", {}, channel="control")
        r = k.reply(imid, channel="control")
        expect(r["msg_type"] == "interrupt_reply" and r["content"]["status"] == "ok", r)
    rep = k.reply(mid)["content"]
    k.outputs(mid)
    return rep, time.monotonic() - t0


def interrupt(k):
    # "started" comes after the first await: a SIGINT that lands within ~1 ms of the end of a
    # cell's synchronous part can be lost in Node's vm breakOnSigint hand-over (see README).
    loop = API + """const sig: AbortSignal = k.interruptSignal();
(globalThis as any).ticks = 0;
while (!sig.aborted) {
  (globalThis as any).ticks++;
  await new Promise((r) => setTimeout(r, 5));
  if ((globalThis as any).ticks === 2) console.log("started");
}
sig.throwIfAborted();"""
    for how in ("signal", "message"):
        rep, dt = _interrupt_cell(k, loop, how)
        expect(rep["status"] == "error" and rep["ename"] == "Interrupted", rep)
        expect(dt < 1.0, f"{how}: took {dt:.2f}s to stop")
        rep, outs = k.run("const t0 = (globalThis as any).ticks; await new Promise((r) => setTimeout(r, 100)); (globalThis as any).ticks - t0")
        expect(rep["status"] == "ok" and stdout(outs) == "0\n", (how, rep, outs))  # the loop really stopped
    # the signal is fresh for the next cell
    rep, outs = k.run(API + "k.interruptSignal().aborted")
    expect(stdout(outs) == "false\n", outs)
    # a cell that ignores the signal is abandoned after the grace period
    rep, dt = _interrupt_cell(k, 'await null; console.log("started"); await new Promise((r) => setTimeout(r, 60000));', "message")
    expect(rep["status"] == "error" and rep["ename"] == "Interrupted" and dt < 5, (rep, dt))
    # a synchronous loop is broken by SIGINT
    rep, dt = _interrupt_cell(k, 'console.log("started"); while (true) {}', "signal")
    expect(rep["status"] == "error" and rep["ename"] == "Interrupted" and dt < 5, (rep, dt))
    rep, outs = k.run("1 + 2")
    expect(rep["status"] == "ok" and stdout(outs) == "3\n", (rep, outs))


# Waits for the cell's interrupt signal in short sleeps; "ticks" tells how long it ran.
WAIT_FOR_STOP = API + """const sig: AbortSignal = k.interruptSignal();
let i = 0;
while (!sig.aborted && i < 50) { await new Promise((r) => setTimeout(r, 100)); i++; }
sig.throwIfAborted();
`ran ${i} ticks`"""


def interrupt_while_compiling(k):
    """Stop pressed while the cell is still type-checked (tslab's vm hand-over used to drop that SIGINT)."""
    for delay in (0.0, 0.02, 0.05):
        # a fresh cell text each time: nothing cached
        mid = k.kc.execute(WAIT_FOR_STOP + f"\n// {delay} {uuid.uuid4().hex}")
        k.iopub(lambda m: m["parent_header"].get("msg_id") == mid and m["msg_type"] == "execute_input")
        time.sleep(delay)
        t0 = time.monotonic()
        k.km.interrupt_kernel()
        rep = k.reply(mid, timeout=20)["content"]
        dt = time.monotonic() - t0
        k.outputs(mid)
        expect(rep["status"] == "error" and rep["ename"] == "Interrupted" and dt < 3, (delay, rep, dt))
    # an interrupt of one cell never reaches the next
    rep, outs = k.run("await new Promise((r) => setTimeout(r, 500)); 5")
    expect(rep["status"] == "ok" and stdout(outs) == "5\n", (rep, outs))


def interrupt_handled(k):
    """A cell that catches the interrupt ends ok; the queued cells are aborted, and the cell says so."""
    caught = API + """const sig: AbortSignal = k.interruptSignal();
let res = "none";
try {
  console.log("started");
  while (true) { await new Promise((r) => setTimeout(r, 20)); sig.throwIfAborted(); }
} catch (e) { res = "caught " + (e as Error).name; }
res"""
    mid = k.kc.execute(caught)
    queued = k.kc.execute("'should not run'")
    k.iopub(lambda m: m["parent_header"].get("msg_id") == mid and m["msg_type"] == "stream" and "started" in m["content"]["text"])
    k.km.interrupt_kernel()
    rep = k.reply(mid)["content"]
    outs = k.outputs(mid)
    expect(rep["status"] == "ok" and "caught" in stdout(outs), (rep, outs))
    expect("the 1 cell queued after it did not run" in stderr(outs), outs)
    rep = k.reply(queued)["content"]
    expect(rep["status"] == "aborted", rep)
    k.outputs(queued)


def stderr(outs):
    return "".join(m["content"]["text"] for m in outs if m["msg_type"] == "stream" and m["content"]["name"] == "stderr")


def stuck_loops(k):
    """The stop button ends a synchronous loop after a cell's first await or in a timer (loop-breaker.ts)."""
    k.run("const keep = 7;")
    # a synchronous part broken by SIGINT first: the next SIGINT may come within the loop
    # breaker's grace period for this one, and must not be dropped
    rep, _ = _interrupt_cell(k, 'console.log("started"); while (true) {}', "signal")
    expect(rep["status"] == "error" and rep["ename"] == "Interrupted", rep)
    # a loop after the first await: SIGINT never reaches the main thread's listeners
    for code in ('await null; console.log("started"); while (true) {}', 'await null; console.log("started"); const xs: number[] = []; for (;;) { xs.length = 0; [1, 2, 3].forEach((x) => xs.push(x)); }'):
        mid = k.kc.execute(code)
        # "started" is printed right before the loop, on the main thread that then spins
        k.iopub(lambda m: m["parent_header"].get("msg_id") == mid and m["msg_type"] == "stream" and "started" in m["content"]["text"])
        t0 = time.monotonic()
        k.km.interrupt_kernel()
        rep = k.reply(mid, timeout=20)["content"]
        dt = time.monotonic() - t0
        outs = k.outputs(mid)
        expect(rep["status"] == "error" and rep["ename"] == "Interrupted" and dt < 10, (code, rep, dt))
        expect(re.search(r"stopped a synchronous loop that kept the kernel from answering, at (\w+ \()?In\[\d+\]:1:\d+", stderr(outs)), (code, outs))
        rep, outs = k.run("keep + 1")
        expect(rep["status"] == "ok" and stdout(outs) == "8\n", (rep, outs))
    # a timer of a finished cell that spins: the stop button frees the kernel, the next cell runs
    rep, _ = k.run("setTimeout(() => { while (true) {} }, 200); 0")
    expect(rep["status"] == "ok", rep)
    time.sleep(0.8)
    k.km.interrupt_kernel()
    rep, outs = k.run("keep + 2", timeout=20)
    expect(rep["status"] == "ok" and stdout(outs) == "9\n", (rep, outs))
    # the sentinel shares the kernel's process group and nothing else is left spinning
    rep, outs = k.run("await new Promise((r) => setTimeout(r, 300)); keep")
    expect(rep["status"] == "ok" and stdout(outs) == "7\n", (rep, outs))


def errors(k):
    code = """class InvalidArgumentError extends Error {
  constructor(m: string) { super(m); this.name = "InvalidArgumentError"; }
}
function check(i: number) { if (i > 3) throw new InvalidArgumentError(`index ${i} out of range`); }
check(7);"""
    rep, outs = k.run(code)
    err = [m["content"] for m in outs if m["msg_type"] == "error"]
    expect(rep["status"] == "error" and len(err) == 1, (rep, outs))
    e = err[0]
    expect(e["ename"] == "InvalidArgumentError" and e["evalue"] == "index 7 out of range", e)
    expect(rep["ename"] == e["ename"] and rep["evalue"] == e["evalue"] and rep["traceback"] == e["traceback"], rep)
    tb = e["traceback"]
    expect(tb[0] == "InvalidArgumentError: index 7 out of range" and any(line.strip().startswith("at check") for line in tb), tb)
    expect(not any("tslab" in line or "node:internal" in line for line in tb), tb)
    # frames name the cell and its own lines (the throw on line 4, the call on line 5), not the compiled JS
    expect(re.search(r"at check \(In\[\d+\]:4:\d+\)", tb[1]) and re.search(r"at In\[\d+\]:5:1$", tb[2]) and len(tb) == 3, tb)
    # the next cell, sent right after the reply, runs (no 200 ms abort window)
    rep, outs = k.run("40 + 2")
    expect(rep["status"] == "ok" and stdout(outs) == "42\n", (rep, outs))
    # class name without a name property; rejected promise; non-Error; type error
    rep, _ = k.run('class Boom extends Error {}\nthrow new Boom("b")')
    expect(rep["ename"] == "Boom" and rep["evalue"] == "b", rep)
    rep, _ = k.run('await Promise.reject(new RangeError("r"))')
    expect(rep["status"] == "error" and rep["ename"] == "RangeError" and rep["evalue"] == "r", rep)
    rep, _ = k.run('throw "plain"')
    expect(rep["status"] == "error" and rep["evalue"] == "'plain'", rep)
    rep, _ = k.run('const n: number = "s";')
    expect(rep["status"] == "error" and rep["ename"] == "TSError" and "not assignable" in rep["evalue"], rep)
    # stop_on_error aborts only requests already queued behind the failing one
    a = k.kc.execute('await new Promise((r) => setTimeout(r, 200)); throw new Error("first")')
    b = k.kc.execute("1")
    ra, rb = k.reply(a)["content"], k.reply(b)["content"]
    expect(ra["status"] == "error" and rb["status"] == "aborted", (ra, rb))
    k.outputs(a)
    k.outputs(b)
    rep, _ = k.run("2")
    expect(rep["status"] == "ok", rep)


def bad_values(k):
    """Displaying a value never keeps a cell from replying; process.exit() is refused."""
    for code, said in [
        ("new Proxy({}, { get() { throw new Error('proxy-get') } })", "proxy-get"),
        ("({ [Symbol.for('nodejs.util.inspect.custom')]() { throw new Error('inspect-throws') } })", "inspect-throws"),
        ("({ get _repr_mimebundle_(): any { throw new Error('getter-throws') } })", "getter-throws"),
    ]:
        rep, outs = k.run(code)
        err = "".join(m["content"]["text"] for m in outs if m["msg_type"] == "stream" and m["content"]["name"] == "stderr")
        expect(rep["status"] == "ok" and said in err, (code, rep, outs))
    # a display that never settles: the stop button gives up on it, text instead
    mid = k.kc.execute("({ _repr_mimebundle_() { return new Promise(() => {}) } })")
    k.iopub(lambda m: m["parent_header"].get("msg_id") == mid and m["msg_type"] == "execute_input")
    time.sleep(0.5)
    k.km.interrupt_kernel()
    rep = k.reply(mid)["content"]
    outs = k.outputs(mid)
    expect(rep["status"] == "ok" and any("interrupted while waiting for the display" in m["content"].get("text", "") for m in outs), (rep, outs))
    k.run("const survivor = 5;")
    rep, outs = k.run("process.exit(3)")
    expect(rep["status"] == "error" and "would end the kernel" in rep["evalue"], rep)
    rep, outs = k.run("survivor + 1")
    expect(rep["status"] == "ok" and stdout(outs) == "6\n", (rep, outs))


def flood(k):
    n = 5000
    rep, outs = k.run(f'for (let i = 0; i < {n}; i++) console.log("line " + i)', timeout=120)
    lines = stdout(outs).splitlines()
    streams = sum(1 for m in outs if m["msg_type"] == "stream")
    expect(rep["status"] == "ok", rep)
    expect(lines == [f"line {i}" for i in range(n)], f"{len(lines)} of {n} lines arrived")
    # messages that cannot be merged: every update_display_data arrives
    m = 3000
    code = API + f'const id = k.newDisplayId(); k.display({{ "text/plain": "0" }}, {{ displayId: id }});\nfor (let i = 1; i <= {m}; i++) k.display({{ "text/plain": String(i) }}, {{ displayId: id, update: true }});'
    rep, outs = k.run(code, timeout=120)
    ups = [m["content"]["data"]["text/plain"] for m in outs if m["msg_type"] == "update_display_data"]
    expect(rep["status"] == "ok" and ups == [str(i) for i in range(1, m + 1)], f"{len(ups)} of {m} updates arrived")
    return f"{n} lines in {streams} stream messages, {m} display updates"


def history(k):
    """history_request answers tail, range and search from the numbered cells (and the file it keeps)."""
    rep, _ = k.run("1 + 1")
    first = rep["execution_count"]
    k.run("")  # blank: not numbered, not kept
    rep, _ = k.run("const histX = 2;\nhistX * 3")
    expect(rep["execution_count"] == first + 1, rep)

    def ask(**kw):
        r = k.reply(k.kc.history(**kw))
        expect(r["msg_type"] == "history_reply" and r["content"]["status"] == "ok", r)
        return r["content"]["history"]

    tail = ask(hist_access_type="tail", n=2, raw=True, output=False)
    expect([h[1:] for h in tail] == [[first, "1 + 1"], [first + 1, "const histX = 2;\nhistX * 3"]], tail)
    session = tail[0][0]
    expect(ask(hist_access_type="range", session=0, start=first, stop=first + 1, raw=True, output=False) == [[session, first, "1 + 1"]], "range")
    expect([h[2] for h in ask(hist_access_type="search", pattern="const hist?*", n=5, raw=True, output=False)] == ["const histX = 2;\nhistX * 3"], "search")
    expect(ask(hist_access_type="tail", n=1, raw=True, output=True)[0][2][0].startswith("const histX"), "output=True rows")
    expect(ask(hist_access_type="tail", n=0, raw=True, output=False) == [], "n=0")
    with open(os.environ["ANNDATA_OOM_HISTORY"]) as f:
        kept = [json.loads(line) for line in f]
    expect(kept[-1] == {"session": session, "line": first + 1, "input": "const histX = 2;\nhistX * 3"}, kept[-2:])
    return f"session {session}, {len(kept)} inputs kept"


def package(k):
    # the notebook folder has no node_modules: types and code come from the kernel's package
    rep, outs = k.run('import * as fs from "fs";\nimport { formatBytes } from "anndata-oom/dist/src/engine/repr";\n[fs.existsSync("/"), formatBytes(2048)]')
    expect(rep["status"] == "ok" and "[ true, '2.0 KB' ]" in stdout(outs), (rep, outs))
    if not os.path.exists(os.path.join(REPO, "native", "dist", "index.js")):
        return "native addon not built: main entry not checked"
    rep, outs = k.run('import { formatBytes as fb, slice } from "anndata-oom";\n[fb(1536), typeof slice]')
    expect(rep["status"] == "ok" and "[ '1.5 KB', 'function' ]" in stdout(outs), (rep, outs))


def nbclient_notebook(k):
    """A notebook with our kernelspec runs top to bottom under nbclient (its own kernel)."""
    import nbformat
    from nbclient import NotebookClient

    spec = {"name": "anndata-oom", "display_name": "AnnData OOM (TypeScript)", "language": "typescript"}
    nb = nbformat.v4.new_notebook(metadata={"kernelspec": spec})
    cells = ["const a = 1 + 1;\na", '({ _repr_mimebundle_: () => ({ "text/plain": "P", "text/html": "<b>h</b>" }) })', 'console.error("e")']
    nb.cells = [nbformat.v4.new_code_cell(c) for c in cells]
    NotebookClient(nb, timeout=T, kernel_name="anndata-oom", resources={"metadata": {"path": k.cwd}}).execute()
    outs = [c.outputs for c in nb.cells]
    expect(outs[0] == [{"output_type": "stream", "name": "stdout", "text": "2\n"}], outs[0])
    expect(outs[1][0]["output_type"] == "execute_result" and outs[1][0]["data"]["text/html"] == "<b>h</b>", outs[1])
    expect(outs[2][0]["name"] == "stderr" and outs[2][0]["text"] == "e\n", outs[2])


def robust(k):
    """What a cell does to the kernel's process must not stop the kernel from answering."""
    # a thrown value that cannot be inspected still gets its reply
    rep, outs = k.run('const e = new Error("m"); Object.defineProperty(e, "stack", { get() { throw new Error("stack getter") } }); throw e')
    expect(rep["status"] == "error" and rep["ename"] == "KernelError" and "stack getter" in rep["evalue"], rep)
    # globals the kernel relies on, replaced by a cell: later cells, errors and comms still answer
    rep, _ = k.run('const saved = { c: console, b: Buffer, t: setTimeout, i: setImmediate }; (globalThis as any).console = undefined; (globalThis as any).Buffer = undefined; (globalThis as any).setTimeout = undefined; (globalThis as any).setImmediate = undefined; 5')
    expect(rep["status"] == "ok", rep)
    rep, outs = k.run("6")
    expect(rep["status"] == "ok" and stdout(outs) == "6\n", (rep, outs))
    rep, _ = k.run('throw new Error("still reported")')
    expect(rep["status"] == "error" and rep["evalue"] == "still reported", rep)
    rep, _ = k.run("globalThis.console = saved.c; globalThis.Buffer = saved.b; globalThis.setTimeout = saved.t; globalThis.setImmediate = saved.i; 7")
    expect(rep["status"] == "ok", rep)
    # a cell that removes the process handlers: a later timer exception is reported, not fatal
    rep, _ = k.run('process.removeAllListeners("uncaughtException"); process.removeAllListeners("SIGINT"); 8')
    rep, outs = k.run('setTimeout(() => { throw new Error("late") }, 10); await new Promise((r) => setTimeout(r, 200)); 9')
    err = "".join(m["content"]["text"] for m in outs if m["msg_type"] == "stream" and m["content"]["name"] == "stderr")
    expect(rep["status"] == "ok" and "Uncaught exception: Error: late" in err and re.search(r"In\[\d+\]:1:", err), (rep, err))
    expect(k.km.is_alive(), "the kernel died")
    # reading stdin fails at once instead of waiting forever
    rep, outs = k.run('process.stdin.on("data", () => undefined); await new Promise((r) => setTimeout(r, 300)); 1', timeout=20)
    err = "".join(m["content"]["text"] for m in outs if m["msg_type"] == "stream" and m["content"]["name"] == "stderr")
    expect("StdinNotImplementedError" in err, (rep, outs))
    # completion positions in code points, as Jupyter counts them (an emoji is one, two UTF-16 units)
    k.run("const myVariable = 42;")
    code = '"\U0001F600\U0001F600"; myVar'
    mid = k.kc.complete(code, len(code))
    c = k.reply(mid)["content"]
    expect("myVariable" in c["matches"] and (c["cursor_start"], c["cursor_end"]) == (len(code) - 5, len(code)), c)
    # inspection (Shift-Tab): a known name, an unknown one, and inside a call's parentheses the function called
    k.run("function scaled(values: number[], by = 2): number[] { return values.map((v) => v * by); }")
    for code, pos, want in [
        ("myVariable", 3, "const myVariable: 42"),
        ("no_such_name", 3, None),
        ("scaled(", 7, "function scaled(values: number[], by?: number): number[]"),
        ("scaled([1, 2], ", 15, "function scaled(values: number[], by?: number): number[]"),
        ("scaled([1, (2)], 3", 18, "function scaled(values: number[], by?: number): number[]"),
    ]:
        mid = k.kc.inspect(code, pos)
        c = k.reply(mid)["content"]
        text = c.get("data", {}).get("text/plain", "")
        if want is None:
            expect(c["status"] == "ok" and not c["found"], (code, c))
        else:
            expect(c["status"] == "ok" and c["found"] and want in text, (code, c))
    # is_complete without code, and an open template literal
    mid = k.send("is_complete_request", {})
    expect(k.reply(mid)["content"]["status"] == "complete", "no reply without code")
    mid = k.kc.is_complete("const s = `abc")
    expect(k.reply(mid)["content"]["status"] == "incomplete", "open template literal")
    # a bracket closing nothing can never become valid; template substitutions are not brackets
    for code, want in [("}", "invalid"), ("f(1]", "invalid"), ("const t = `a ${[1].map((x) => `${x}`)} b`;", "complete"), ("if (x) {", "incomplete")]:
        mid = k.kc.is_complete(code)
        got = k.reply(mid)["content"]["status"]
        expect(got == want, f"is_complete({code!r}) = {got}, expected {want}")


def protocol_extras(k):
    """user_expressions as ipykernel evaluates them, Error values with cell positions, replayed messages refused."""
    rep, _ = k.run("const ue = 41;")
    count = rep["execution_count"]
    exprs = {"plus": "ue + 1", "text": '"a" + "b"', "missing": "nope.x", "odd": 5}  # jupyter_client would refuse the 5
    mid = k.send("execute_request", {"code": "1", "silent": False, "store_history": True, "user_expressions": exprs, "allow_stdin": False})
    rep = k.reply(mid)["content"]
    k.outputs(mid)
    ue = rep["user_expressions"]
    expect(rep["status"] == "ok" and rep["execution_count"] == count + 1, rep)
    expect(ue["plus"] == {"status": "ok", "data": {"text/plain": "42"}, "metadata": {}}, ue)
    expect(ue["text"]["data"]["text/plain"] == "'ab'", ue)  # a repr, as in IPython
    expect(ue["missing"]["status"] == "error" and "nope" in ue["missing"]["evalue"], ue)
    expect(ue["odd"]["status"] == "error" and ue["odd"]["ename"] == "InvalidRequest", ue)
    rep, _ = k.run("2")
    expect(rep["execution_count"] == count + 2, "user expressions must not count as cells")
    # a blank cell is not numbered (IPython); a comment-only one is
    blank, _ = k.run("  \n\t\n")
    commented, _ = k.run("// nothing")
    expect(blank["execution_count"] == count + 2 and commented["execution_count"] == count + 3, (blank, commented))
    # an Error shown as the cell's value points at the cell's own line, like a traceback
    code = 'const pad = 1;\nfunction make() { return new Error("shown"); }\nmake()'
    rep, outs = k.run(code)
    out = stdout(outs)
    col = code.split("\n")[1].index("new Error") + 1
    expect(rep["status"] == "ok" and f"at make (In[{rep['execution_count']}]:2:{col})" in out, out)
    expect("tslab" not in out and "node:internal" not in out, out)
    # a signed message sent twice runs once (jupyter_client's Session refuses duplicate signatures too)
    msg = k.kc.session.msg("execute_request", {"code": "(globalThis as any).replays = ((globalThis as any).replays ?? 0) + 1", "silent": False,
                                               "store_history": True, "user_expressions": {}, "allow_stdin": False, "stop_on_error": True})
    frames = k.kc.session.serialize(msg)
    sock = k.kc.shell_channel.socket
    sock.send_multipart(frames)
    k.reply(msg["header"]["msg_id"])
    sock.send_multipart(frames)
    rep, outs = k.run("(globalThis as any).replays")
    expect(stdout(outs) == "1\n", outs)


def top_level_await(k):
    """`await (…)` and `for await` at top level: tslab missed both (TypeScript
    parses `await (` as a call of a function named `await`, and reports no
    top-level-await diagnostic for `for await`), ran the cell in a plain
    function, and V8 threw (ReferenceError: await is not defined; SyntaxError:
    Unexpected reserved word); the kernel runs such a cell in the async wrapper."""
    got = []
    for code, want in [
        ("await (Promise.resolve(5))", "5\n"),
        ("const parenZ = await (async () => 9)();\nparenZ + 1", "10\n"),
        ("parenZ * 2", "18\n"),
        ("[await (Promise.resolve(1)), await Promise.resolve(2)]", "[ 1, 2 ]\n"),
        ("const parenO = { v: Promise.resolve(3) };\nawait (parenO.v)", "3\n"),
        ("import * as parenFs from \"fs\";\nawait (async () => parenFs.existsSync(\"/\"))()", "true\n"),
        # for await at top level (the README's loop over chunked()): was "SyntaxError: Unexpected reserved word"
        ("let forAwaitSum = 0;\nfor await (const x of [Promise.resolve(4), 5]) forAwaitSum += x;\nforAwaitSum", "9\n"),
        ("async function* forAwaitGen() { yield 1; yield 2; }\nfor await (const x of forAwaitGen()) console.log(x);", "1\n2\n"),
        # a dynamic import of a module whose type the declaration emit cannot name (TS4023 made the cell fail)
        ('const dynFs = await import("node:fs");\ndynFs.existsSync("/")', "true\n"),
        ("typeof dynFs.createReadStream", "function\n"),
        # a promise as the value shows as in Node's REPL, not with the cell's async context (its AbortSignal)
        ("Promise.resolve(5)", "Promise { 5 }\n"),
    ]:
        rep, outs = k.run(code)
        expect(rep["status"] == "ok" and stdout(outs) == want, (code, rep, stdout(outs)))
        got.append(stdout(outs).strip())
    return "await ( … ) and for await at top level: " + ", ".join(g.replace("\n", " ") for g in got)


def parent_death(k):
    """The kernel exits when the process that started it dies (no orphan holding ports and memory)."""
    child = r"""
import os, sys, time
from jupyter_client.manager import start_new_kernel
km, kc = start_new_kernel(kernel_name="anndata-oom", startup_timeout=60)
print(km.provisioner.pid, flush=True)
time.sleep(600)
"""
    par = subprocess.Popen([sys.executable, "-c", child], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=os.environ.copy())
    try:
        kpid = int(par.stdout.readline())
    finally:
        par.kill()
        par.wait()
    for _ in range(30):
        time.sleep(0.5)
        try:
            os.kill(kpid, 0)
        except ProcessLookupError:
            return
    os.kill(kpid, signal.SIGKILL)
    expect(False, "the kernel outlived its parent by 15 s")


CHECKS = [kernel_info, execute_ok, mime_bundle, display_update, comm_roundtrip, errors, bad_values, robust, protocol_extras, top_level_await, flood, history, package, interrupt, interrupt_while_compiling, interrupt_handled, stuck_loops, nbclient_notebook, parent_death]


def run_checks(km, kc, k, checks, only, tmp):
    """Run each check, print one JSON line per check, shut the kernel down."""

    def stop(*_):
        raise SystemExit(1)

    signal.signal(signal.SIGTERM, stop)
    failed = 0
    try:
        for check in checks:
            if only and check.__name__ not in only:
                continue
            try:
                detail = check(k) or ""
                ok = True
            except Exception as e:  # noqa: BLE001 - report every failure
                ok, detail = False, f"{type(e).__name__}: {e}\n{traceback.format_exc()}"
                failed += 1
            print(json.dumps({"check": check.__name__, "ok": ok, "detail": str(detail)[:4000]}), flush=True)
            # A check marked ends_kernel (the last one) stops the kernel on purpose.
            if not km.is_alive() and not getattr(check, "ends_kernel", False):
                print(json.dumps({"check": "kernel_alive", "ok": False, "detail": "the kernel died"}), flush=True)
                return 1
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
        shutil.rmtree(tmp, ignore_errors=True)
    return 1 if failed else 0


def main():
    tmp = tempfile.mkdtemp(prefix="aoom-kernel-test-")
    prefix, nb = os.path.join(tmp, "prefix"), os.path.join(tmp, "notebook")
    os.makedirs(nb)
    subprocess.run([NODE, os.path.join(REPO, "dist", "src", "kernel", "install.js"), "--python", sys.executable, "--prefix", prefix], check=True, stdout=sys.stderr)
    os.environ["JUPYTER_PATH"] = os.path.join(prefix, "share", "jupyter")
    os.environ["JUPYTER_RUNTIME_DIR"] = os.path.join(tmp, "runtime")
    os.environ["ANNDATA_OOM_HISTORY"] = os.path.join(tmp, "history.jsonl")
    km, kc = start_new_kernel(kernel_name="anndata-oom", cwd=nb, startup_timeout=60)
    k = Kernel(km, kc)
    k.cwd = nb
    return run_checks(km, kc, k, CHECKS, ONLY, tmp)


if __name__ == "__main__":
    sys.exit(main())
