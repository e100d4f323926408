"""The engine inside a real anndata-oom kernel, driven with jupyter_client.

usage: python test_engine_kernel.py REPO NODE FIXTURES [CHECK ...]

Like test_kernel.py (whose Kernel helper it reuses): installs our
kernelspec into a temporary prefix, generates a larger h5ad (200,000 x
2,000 CSR, gzip) with this Python's anndata, starts the kernel with
ANNDATA_OOM_BLOCK_BYTES=65536 (thousands of chunks per pass) in an empty
notebook folder, and prints one JSON line per check. Cells import the
engine as `import { read } from "anndata-oom"`.
"""

import base64
import json
import signal
import os
import re
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_kernel import Kernel, expect, run_checks, stdout  # noqa: E402

from jupyter_client.manager import start_new_kernel  # noqa: E402

REPO, NODE, FIXTURES = sys.argv[1], sys.argv[2], sys.argv[3]
ONLY = set(sys.argv[4:])
T = 60
MIME = "application/vnd.anndata-oom.repr+json"
PLOT_MIME = "application/vnd.anndata-oom.plot+json"
HOSTILE = "<img src=x onerror=alert(1)>"


def make_big(path):
    import anndata as ad
    import numpy as np
    import scipy.sparse as sp

    n, m, k = 200_000, 2_000, 100
    rng = np.random.default_rng(0)
    idx = np.sort(rng.integers(0, m, size=(n, k), dtype=np.int32), axis=1).ravel()
    data = rng.integers(1, 20, size=n * k).astype(np.float32)
    X = sp.csr_matrix((data, idx, np.arange(0, n * k + 1, k, dtype=np.int64)), shape=(n, m))
    ad.AnnData(X).write_h5ad(path, compression="gzip")


def displays(outs):
    """display_data / update_display_data messages as (type, display_id, text/plain)."""
    return [
        (m["msg_type"], m["content"].get("transient", {}).get("display_id"), m["content"]["data"].get("text/plain", ""))
        for m in outs
        if m["msg_type"] in ("display_data", "update_display_data")
    ]


def one_display_per_pass(ds):
    """Each display id: first a display_data, then only updates; returns {id: [texts]}."""
    by_id = {}
    for typ, did, text in ds:
        expect(did, ds)
        if did not in by_id:
            expect(typ == "display_data", ("first message of a display is not display_data", ds))
            by_id[did] = []
        else:
            expect(typ == "update_display_data", ("a second display_data for one id", ds))
        by_id[did].append(text)
    return by_id


# -- checks ----------------------------------------------------------------
def engine_repr(k):
    fixture = os.path.join(FIXTURES, "full_csr.h5ad")
    code = f'import {{ read }} from "anndata-oom";\nconst adata = await read({json.dumps(fixture)});\nadata.setVar({json.dumps(HOSTILE)}, new Float64Array(8));\nadata'
    rep, outs = k.run(code, timeout=T)
    expect(rep["status"] == "ok", rep)
    res = [m["content"] for m in outs if m["msg_type"] == "execute_result"]
    expect(len(res) == 1, outs)
    data = res[0]["data"]
    expect({"text/plain", "text/html", MIME} <= set(data), list(data))
    expect(data["text/plain"].startswith("AnnDataOOM object with n_obs × n_vars = 12 × 8"), data["text/plain"])
    html = data["text/html"]
    expect("<b>12</b> obs × <b>8</b> vars" in html and "cell_type" in html and "<script" not in html.lower(), html[:2000])
    expect("<img" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html, "hostile var name not escaped")
    j = data[MIME]
    if isinstance(j, str):  # some frontends/transports keep JSON as text
        j = json.loads(j)
    expect(j["type"] == "AnnDataOOM" and j["shape"] == [12, 8] and j["X"]["format"] == "csr", j)
    expect(any(c["name"] == HOSTILE for c in j["var"]), j["var"])
    # a lazy X has its own bundle
    rep, outs = k.run("adata.X", timeout=T)
    res = [m["content"] for m in outs if m["msg_type"] == "execute_result"]
    expect(rep["status"] == "ok" and len(res) == 1 and set(res[0]["data"]) >= {"text/plain", "text/html", MIME}, outs)
    expect(res[0]["data"]["text/plain"].startswith("BackedMatrix X 12 × 8"), res[0]["data"])
    # obs / var (Arrow) in top-level variables: later cells see their types
    rep, outs = k.run("const obs = adata.obs;\nconst ct = obs.getChild('cell_type');", timeout=T)
    expect(rep["status"] == "ok", rep)
    rep, outs = k.run("[obs.numRows, ct?.length]", timeout=T)
    expect(rep["status"] == "ok" and "12" in stdout(outs), (rep, outs))
    # tab completion offers the API, not the members marked @internal (stripped from the .d.ts)
    mid = k.kc.complete("adata.", len("adata."))
    matches = k.reply(mid)["content"]["matches"]
    expect({"subset", "write", "obsNames"} <= set(matches), matches)
    expect(not {"runJob", "cachedVarMoments", "matrixKey", "qcSource"} & set(matches), matches)


def engine_progress(k):
    big = os.path.join(k.tmp, "big.h5ad")
    rep, outs = k.run(f'const big = await read({json.dumps(big)});\nconst perCell = (await big.X.sum(1)) as Float64Array;\nperCell.length', timeout=T)
    expect(rep["status"] == "ok" and stdout(outs) == "200000\n", (rep, outs))
    by_id = one_display_per_pass(displays(outs))
    expect(len(by_id) == 1, by_id)
    texts = next(iter(by_id.values()))
    expect(len(texts) >= 2, ("no update_display_data", texts))
    expect(texts[-1].endswith("[done]") and " 100% " in texts[-1], texts[-1])
    expect(all(t.endswith("[running]") for t in texts[:-1]), texts)
    html = [m["content"]["data"]["text/html"] for m in outs if m["msg_type"] in ("display_data", "update_display_data")]
    expect('data-state="done"' in html[-1], html[-1])
    # an explicit onProgress: no display
    rep, outs = k.run("await big.X.sum(0, { onProgress: () => {} }); 1", timeout=T)
    expect(rep["status"] == "ok" and not displays(outs), outs)
    return f"{len(texts)} messages for one pass"


def engine_interrupt(k):
    # a loop of passes over fresh views (no cache): each pass ~1 s in thousands of chunks
    code = """let i = 0;
for (;;) {
  const v = big.subset({ var: Array.from({ length: 1000 + i }, (_, j) => j) });
  await v.X.mean(1);
  i++;
}"""
    mid = k.kc.execute(code)
    # the first progress display: a pass is running
    k.iopub(lambda m: m["parent_header"].get("msg_id") == mid and m["msg_type"] == "display_data", timeout=T)
    time.sleep(0.2)
    t0 = time.monotonic()
    imid = k.send("interrupt_request", {}, channel="control")
    r = k.reply(imid, channel="control")
    expect(r["content"]["status"] == "ok", r)
    rep = k.reply(mid, timeout=T)["content"]
    dt = time.monotonic() - t0
    outs = k.outputs(mid, timeout=T)
    expect(rep["status"] == "error" and rep["ename"] in ("CancelledError", "Interrupted"), rep)
    expect(dt < 1.0, f"took {dt:.2f}s to stop (more than a chunk)")
    ds = displays(outs)
    # the display of the interrupted pass ends cancelled
    expect(ds and ds[-1][2].endswith("[cancelled]"), ds[-3:])
    stopped = f"stopped in {dt * 1000:.0f} ms with {rep['ename']}: {ds[-1][2]}"
    # the kernel and the object stay usable; passes are not cancelled any more
    rep, outs = k.run("const s = (await big.X.var(0)) as Float64Array; // not cached: a new pass\n[big.shape, s.length, big.isClosed]", timeout=T)
    expect(rep["status"] == "ok" and "[ [ 200000, 2000 ], 2000, false ]" in stdout(outs), (rep, stdout(outs)))
    texts = next(iter(one_display_per_pass(displays(outs)).values()))
    expect(texts[-1].endswith("[done]"), texts)
    # Promise.all of two passes rejects on the first cancelled one: the other's final progress
    # still belongs to the cell, before its error (a frontend stops listening at the reply)
    code = """const cols = (m: number) => Array.from({ length: m }, (_, j) => j);
await Promise.all([big.subset({ var: cols(1500) }).X.mean(1), big.subset({ var: cols(1600) }).X.var(1)]);"""
    mid = k.kc.execute(code)
    firsts = [k.iopub(lambda m: m["parent_header"].get("msg_id") == mid and m["msg_type"] == "display_data", timeout=T) for _ in range(2)]
    time.sleep(0.2)
    k.km.interrupt_kernel()
    rep = k.reply(mid, timeout=T)["content"]
    outs = firsts + k.outputs(mid, timeout=T)
    expect(rep["status"] == "error", rep)
    finals = {did: texts[-1] for did, texts in one_display_per_pass(displays(outs)).items()}
    expect(len(finals) == 2 and all(re.search(r"\[(cancelled|done)\]$", t) for t in finals.values()), finals)
    last_display = max(i for i, m in enumerate(outs) if m["msg_type"] in ("display_data", "update_display_data"))
    error_at = [i for i, m in enumerate(outs) if m["msg_type"] == "error"]
    expect(error_at and error_at[0] > last_display, [m["msg_type"] for m in outs])
    return stopped


def engine_interrupt_abandoned(k):
    """A loop that catches the CancelledError and goes on outlives the interrupt
    grace period, and tslab abandons the cell. Its later passes must see that
    cell's aborted signal (they fail at once), not the next cell's (they ran
    on, under the next cell, and a second interrupt could not reach them)."""
    code = """(globalThis as any).passes = 0; (globalThis as any).failures = 0;
for (let i = 0; i < 30; i++) {
  try {
    const v = big.subset({ var: Array.from({ length: 1000 + i }, (_, j) => j) });
    await v.X.mean(1);
    (globalThis as any).passes++;
  } catch {
    (globalThis as any).failures++;
    await new Promise((r) => setTimeout(r, 100));
  }
}"""
    mid = k.kc.execute(code)
    k.iopub(lambda m: m["parent_header"].get("msg_id") == mid and m["msg_type"] == "display_data", timeout=T)
    time.sleep(0.2)
    imid = k.send("interrupt_request", {}, channel="control")
    k.reply(imid, channel="control")
    rep = k.reply(mid, timeout=T)["content"]
    k.outputs(mid, timeout=T)
    expect(rep["status"] == "error" and rep["ename"] in ("CancelledError", "Interrupted"), rep)
    # The next cell runs a pass of its own while the abandoned loop goes through its iterations.
    rep, outs = k.run(
        """const before = (globalThis as any).passes;
const own = (await big.X.var(1)) as Float64Array;
await new Promise((r) => setTimeout(r, 4000));
console.log(JSON.stringify([before, (globalThis as any).passes, (globalThis as any).failures, own.length]));""",
        timeout=T,
    )
    expect(rep["status"] == "ok", rep)
    before, after, failures, n = json.loads(stdout(outs).strip().splitlines()[-1])
    expect(after == before, f"the abandoned loop ran {after - before} passes under the next cell")
    expect(after + failures == 30 and n == 200000, (after, failures, n))
    return f"abandoned loop: {after} passes before the interrupt, the other {failures} failed at once"


def engine_stuck_loop(k):
    """The stop button ends a synchronous loop that follows a pass (loop-breaker.ts);
    the object, the progress displays and later passes keep working."""
    code = """const means = (await big.X.mean(0)) as Float64Array;
(globalThis as any).meansLength = means.length;
console.log("started");
let acc = 0;
for (let i = 0; ; i++) acc += means[i % means.length];"""
    mid = k.kc.execute(code)
    k.iopub(lambda m: m["parent_header"].get("msg_id") == mid and m["msg_type"] == "stream" and "started" in m["content"]["text"], timeout=T)
    time.sleep(0.3)
    t0 = time.monotonic()
    k.km.interrupt_kernel()
    rep = k.reply(mid, timeout=T)["content"]
    dt = time.monotonic() - t0
    outs = k.outputs(mid, timeout=T)
    err = "".join(m["content"]["text"] for m in outs if m["msg_type"] == "stream" and m["content"]["name"] == "stderr")
    expect(rep["status"] == "error" and rep["ename"] == "Interrupted", rep)
    expect(re.search(r"stopped a synchronous loop that kept the kernel from answering, at In\[\d+\]:5:\d+", err), outs)
    # a fresh view, so the pass is not answered from a cache of an earlier check
    rep, outs = k.run(
        "const v2 = (await big.subset({ var: Array.from({ length: 1999 }, (_, j) => j) }).X.var(0)) as Float64Array;\n[v2.length, (globalThis as any).meansLength, big.isClosed]",
        timeout=T,
    )
    expect(rep["status"] == "ok" and "[ 1999, 2000, false ]" in stdout(outs), (rep, stdout(outs)))
    texts = next(iter(one_display_per_pass(displays(outs)).values()))
    expect(texts[-1].endswith("[done]"), texts)
    return f"stopped {dt:.2f} s after SIGINT"


def engine_sigterm(k):
    """SIGTERM during write() (a batch scheduler's time limit, a client's
    fallback) stops the cell as an interrupt does, so the temporary file is
    removed, and then the kernel exits. Must run last: the kernel is gone."""
    out_dir = os.path.join(k.tmp, "sigterm-out")
    os.makedirs(out_dir)
    target = os.path.join(out_dir, "written.h5ad")
    mid = k.kc.execute(f"await big.write({json.dumps(target)});")
    k.iopub(lambda m: m["parent_header"].get("msg_id") == mid and m["msg_type"] == "display_data", timeout=T)
    time.sleep(0.3)
    during = os.listdir(out_dir)
    expect(any(f.endswith(".tmp") for f in during), f"no temporary file while writing: {during}")
    k.km.signal_kernel(signal.SIGTERM)
    deadline = time.monotonic() + 15
    while k.km.is_alive() and time.monotonic() < deadline:
        time.sleep(0.1)
    expect(not k.km.is_alive(), "the kernel did not exit after SIGTERM")
    left = os.listdir(out_dir)
    expect(left == [], f"left behind after SIGTERM: {left}")
    return f"temporary {during[0]} removed, kernel exited"


engine_sigterm.ends_kernel = True


PROGRESS = "application/vnd.anndata-oom.progress+json"
PROGRESS = "application/vnd.anndata-oom.progress+json"
PROGRESS = "application/vnd.anndata-oom.progress+json"


def engine_progress_cancel(k):
    """The frontend's Cancel button: a comm to "anndata-oom.progress" with
    {action: "cancel", passId} stops that pass only; the other pass of the
    cell finishes and the next cell runs."""
    big = os.path.join(k.tmp, "big.h5ad")
    code = f"""import {{ read as readC }} from "anndata-oom";
const bc = await readC({json.dumps(big)});
const v1 = bc.subset({{ var: Array.from({{ length: 1500 }}, (_, j) => j) }});
const v2 = bc.subset({{ var: Array.from({{ length: 1600 }}, (_, j) => j) }});
const rs = await Promise.allSettled([v1.X.mean(1), v2.X.mean(1)]);
console.log(rs.map((r) => (r.status === "fulfilled" ? "ok" : r.reason.name)).join(","));"""
    mid = k.kc.execute(code)
    # the first progress display of the cell: that pass is running
    first = k.iopub(lambda m: m["parent_header"].get("msg_id") == mid and m["msg_type"] == "display_data", timeout=T)
    k.backlog.appendleft(first)  # keep it for outputs()
    j = first["content"]["data"][PROGRESS]
    expect(j["state"] == "running" and isinstance(j["passId"], str), j)
    expect(set(j) >= {"passId", "label", "chunksDone", "chunksTotal", "rowsDone", "rowsTotal", "rate", "etaMs", "state"}, j)
    target_id = j["passId"]
    # what JupyterLab's renderer does: open a comm, send the cancel, close it
    cid = "cancel-" + target_id
    k.send("comm_open", {"comm_id": cid, "target_name": "anndata-oom.progress", "data": {}})
    k.send("comm_msg", {"comm_id": cid, "data": {"action": "cancel", "passId": target_id}})
    ack = k.iopub(lambda m: m["msg_type"] == "comm_msg" and m["content"]["comm_id"] == cid, timeout=T)
    expect(ack["content"]["data"] == {"action": "cancel", "passId": target_id, "found": True}, ack["content"])
    k.send("comm_close", {"comm_id": cid, "data": {}})
    rep = k.reply(mid, timeout=T)["content"]
    outs = k.outputs(mid, timeout=T)
    expect(rep["status"] == "ok", rep)
    # which of the two passes showed its bar first is up to the scheduler: one was cancelled, the other finished
    expect(sorted(stdout(outs).strip().split(",")) == ["CancelledError", "ok"], stdout(outs))
    # per display: the cancelled pass ends cancelled, the other one done
    last = {}
    for m in outs:
        if m["msg_type"] in ("display_data", "update_display_data"):
            pj = m["content"]["data"][PROGRESS]
            last[pj["passId"]] = (pj["state"], m["content"]["data"]["text/plain"])
    expect(last.get(target_id, ("",))[0] == "cancelled" and last[target_id][1].endswith("[cancelled]"), last)
    others = [v for pid, v in last.items() if pid != target_id]
    expect(others and all(st == "done" for st, _ in others), last)
    # a stale passId is answered found: false; the next cell runs
    cid2 = "cancel-stale"
    k.send("comm_open", {"comm_id": cid2, "target_name": "anndata-oom.progress", "data": {"action": "cancel", "passId": target_id}})
    ack = k.iopub(lambda m: m["msg_type"] == "comm_msg" and m["content"]["comm_id"] == cid2, timeout=T)
    expect(ack["content"]["data"]["found"] is False, ack["content"])
    rep, outs = k.run("1 + 1", timeout=T)
    expect(rep["status"] == "ok" and stdout(outs) == "2\n", (rep, outs))
    return f"cancelled {j['label']} ({target_id}); the other pass: {others[0][1]}"


def engine_error(k):
    rep, outs = k.run('await read("/no/such/file.h5ad")', timeout=T)
    err = [m["content"] for m in outs if m["msg_type"] == "error"]
    expect(rep["status"] == "error" and len(err) == 1, (rep, outs))
    e = err[0]
    expect(e["ename"] == "FileAccessError" and e["evalue"] == "no such file: /no/such/file.h5ad", e)
    tb = e["traceback"]
    expect(tb[0] == "FileAccessError: no such file: /no/such/file.h5ad", tb)
    expect(any("readSync" in line and ".ts:" in line for line in tb), ("no TS frame of the engine", tb))
    expect(not any("tslab" in line or "node:internal" in line or "src/kernel" in line for line in tb), tb)
    # the next cell runs
    rep, outs = k.run("1 + 1", timeout=T)
    expect(rep["status"] == "ok" and stdout(outs) == "2\n", (rep, outs))
    return tb[1] if len(tb) > 1 else ""


def engine_plot(k):
    """pl.* results are execute_results with SVG, PNG, text and plot+json;
    a dotplot's genes are read together: one pass, one progress display."""
    fixture = os.path.join(FIXTURES, "plots", "plots.h5ad")
    code = f'import {{ pl, read as readPlots }} from "anndata-oom";\nconst pa = await readPlots({json.dumps(fixture)});\nawait pl.dotplot(pa, ["G0", "G1", {json.dumps(HOSTILE)}], "leiden")'
    rep, outs = k.run(code, timeout=T)
    expect(rep["status"] == "ok", (rep, outs))
    res = [m["content"] for m in outs if m["msg_type"] == "execute_result"]
    expect(len(res) == 1, outs)
    data = res[0]["data"]
    expect(set(data) == {"text/plain", "image/svg+xml", "image/png", PLOT_MIME}, list(data))
    expect(data["text/plain"] == '<dotplot of 3 genes × 6 groups of "leiden">', data["text/plain"])
    spec = data[PLOT_MIME]
    if isinstance(spec, str):
        spec = json.loads(spec)
    expect(spec["type"] == "AnnDataOOMPlot" and spec["kind"] == "dotplot" and spec["svg"] == data["image/svg+xml"], spec.get("kind"))
    expect("&lt;img src=x onerror=alert(1)&gt;" in data["image/svg+xml"] and "<img" not in data["image/svg+xml"], "hostile name not escaped")
    by_id = one_display_per_pass(displays(outs))
    expect(len(by_id) == 1, by_id)
    texts = next(iter(by_id.values()))
    expect("3 columns" in texts[-1] and texts[-1].endswith("[done]"), texts)
    expect(base64.b64decode(data["image/png"])[:8] == b"\x89PNG\r\n\x1a\n", data["image/png"][:40])
    # pl. completion lists the plots, not the drawing helpers (@internal)
    mid = k.kc.complete("pl.", len("pl."))
    matches = set(k.reply(mid)["content"]["matches"])
    expect({"embedding", "dotplot", "violin", "explore", "Plot"} <= matches, matches)
    expect(not {"crc32", "encodePng", "Svg", "Raster", "escapeXml", "drawOrder"} & matches, matches)
    rep, outs = k.run('await pl.embedding(pa, { color: "leiden" })', timeout=T)
    res = [m["content"] for m in outs if m["msg_type"] == "execute_result"]
    expect(rep["status"] == "ok" and len(res) == 1, outs)
    data = res[0]["data"]
    expect(set(data) == {"text/plain", "image/svg+xml", "image/png", PLOT_MIME}, list(data))
    expect(base64.b64decode(data["image/png"])[:8] == b"\x89PNG\r\n\x1a\n", data["image/png"][:40])
    return f"{len(texts)} progress messages for 3 genes"


def make_embedded(path, n=500):
    import anndata as ad
    import numpy as np
    import pandas as pd
    import scipy.sparse as sp

    rng = np.random.default_rng(1)
    grp = pd.Categorical(rng.choice(["x", "y", HOSTILE], n), categories=["x", "y", HOSTILE])
    a = ad.AnnData(sp.random(n, 10, density=0.3, format="csr", dtype=np.float32, random_state=rng), obs=pd.DataFrame({"grp": grp}, index=[f"cell_{i}" for i in range(n)]))
    a.obsm["X_umap"] = rng.normal(size=(n, 2)).astype(np.float32)
    a.write_h5ad(path)


def comm_msgs(k, comm_id, pred=lambda d: True, timeout=T):
    return k.iopub(lambda m: m["msg_type"] == "comm_msg" and m["content"]["comm_id"] == comm_id and pred(m["content"]["data"]), timeout=timeout)


def engine_widget(k):
    """pl.explore / pl.controls as Jupyter widgets (protocol 2.1): the comm_open
    carries the state with positions and colors as binary buffers (Arrow IPC
    streams, not base64 JSON); a lasso (an `update` with a selection buffer)
    becomes plot.selection; hover is answered; request_state re-sends it all;
    a controls update re-runs its step and updates the scatter in place."""
    path = os.path.join(k.tmp, "embedded.h5ad")
    make_embedded(path)
    rep, outs = k.run(f"""import {{ pl, read as readW }} from "anndata-oom";
const w = await readW({json.dumps(path)});
const plot = await pl.explore(w, {{ color: "grp" }});
plot""", timeout=T)
    expect(rep["status"] == "ok", (rep, outs))
    opens = [m for m in outs if m["msg_type"] == "comm_open"]
    expect(len(opens) == 1 and opens[0]["content"]["target_name"] == "jupyter.widget", opens)
    op = opens[0]
    expect(op["metadata"].get("version") == "2.1.0", op["metadata"])
    state, paths, bufs = op["content"]["data"]["state"], op["content"]["data"]["buffer_paths"], op["buffers"]
    expect(state["_model_name"] == "ScatterModel" and state["_model_module"] == "anndata-oom-lab" and state["n"] == 500, state)
    expect(["positions"] in paths and ["colors"] in paths and state["positions"] is None, (paths, state.get("positions")))
    pos = bytes(bufs[paths.index(["positions"])])
    # an Arrow IPC stream (continuation marker), holding 2 x 500 float32
    expect(pos[:4] == b"\xff\xff\xff\xff" and len(pos) >= 500 * 8, (pos[:8], len(pos)))
    expect(state["color"]["kind"] == "categorical" and state["color"]["categories"] == ["x", "y", HOSTILE], state["color"])
    res = [m for m in outs if m["msg_type"] == "execute_result"]
    data = res[0]["content"]["data"]
    cid = op["content"]["comm_id"]
    expect(data["application/vnd.jupyter.widget-view+json"]["model_id"] == cid, data.keys())
    expect(data["application/vnd.anndata-oom.scatter+json"]["n"] == 500, data["application/vnd.anndata-oom.scatter+json"])
    import base64

    expect(base64.b64decode(data["image/png"])[:8] == b"\x89PNG\r\n\x1a\n", "png snapshot")
    expect(HOSTILE not in data["image/svg+xml"], "hostile category escaped in the SVG")

    # a lasso: the frontend's update with the selected indices as a buffer
    import struct

    sel = struct.pack("<3I", 7, 1, 5)
    k.send("comm_msg", {"comm_id": cid, "data": {"method": "update", "state": {"selection": None, "selection_count": 3}, "buffer_paths": [["selection"]]}}, buffers=[sel])
    rep, outs = k.run("console.log(plot.selectedIndices.join(','), plot.selection.reduce((s, x) => s + x, 0), w.subset({ obs: plot.selection }).nObs)", timeout=T)
    expect(stdout(outs) == "1,5,7 3 3\n", stdout(outs))

    # hover: the kernel answers with the cell's name and value
    k.send("comm_msg", {"comm_id": cid, "data": {"method": "custom", "content": {"event": "hover", "index": 5}}})
    hov = comm_msgs(k, cid, lambda d: d.get("method") == "custom")["content"]["data"]["content"]
    expect(hov["event"] == "hover" and hov["index"] == 5 and hov["name"] == "cell_5" and hov["key"] == "grp" and hov["value"] in ("x", "y", HOSTILE), hov)

    # request_state (a reloaded page): the full state again, buffers included
    k.send("comm_msg", {"comm_id": cid, "data": {"method": "request_state"}})
    st = comm_msgs(k, cid, lambda d: d.get("method") == "update" and "_model_name" in d.get("state", {}))
    expect(["positions"] in st["content"]["data"]["buffer_paths"] and len(st["buffers"]) >= 2, st["content"]["data"]["buffer_paths"])

    # a controls widget: a new value re-runs its step, which recolors the scatter in place
    rep, outs = k.run("""pl.controls(plot, { step: "demo", params: [{ name: "k", min: 1, max: 5, step: 1, value: 1 }],
  run: async ({ k }) => { await plot.setColor(k > 2 ? null : "grp"); return `k=${k}`; } })""", timeout=T)
    ctl = [m for m in outs if m["msg_type"] == "comm_open"][0]
    expect(ctl["content"]["data"]["state"]["_model_name"] == "ControlsModel", ctl["content"]["data"]["state"])
    ccid = ctl["content"]["comm_id"]
    k.send("comm_msg", {"comm_id": ccid, "data": {"method": "update", "state": {"values": {"k": 4}}, "buffer_paths": []}})
    upd = comm_msgs(k, cid, lambda d: d.get("method") == "update" and "colors" in d.get("state", {}))
    expect(upd["content"]["data"]["state"]["color"] == {"kind": "none", "key": None} and len(upd["buffers"]) == 1, upd["content"]["data"])
    done = comm_msgs(k, ccid, lambda d: d.get("method") == "update" and d["state"].get("status") == "k=4")
    expect(done["content"]["data"]["state"]["running"] is False, done["content"]["data"])
    # an out-of-range value is refused with a message, the kernel stays usable
    rep, outs = k.run("1 + 2", timeout=T)
    expect(stdout(outs) == "3\n", outs)
    return f"scatter comm {cid[:8]}: {len(pos)} B positions (Arrow IPC), lasso 3 cells, hover, request_state, controls re-run"


def engine_widget_lifetime(k):
    """A widget whose every view was cleared (its cell re-run, or deleted: the
    cell ids JupyterLab sends in execute_request metadata) is closed by the
    kernel, which lets its AnnData go; showing it again opens a new model;
    a view shown outside a known cell keeps its widget open."""
    path = os.path.join(k.tmp, "lifetime.h5ad")
    make_embedded(path, n=300)

    def closed(outs):
        return [m["content"]["comm_id"] for m in outs if m["msg_type"] == "comm_close"]

    def model_of(outs):
        res = [m for m in outs if m["msg_type"] in ("execute_result", "display_data")]
        return res[-1]["content"]["data"]["application/vnd.jupyter.widget-view+json"]["model_id"]

    def open_comms():
        return k.reply(k.kc.comm_info(target_name="jupyter.widget"))["content"]["comms"]

    rep, outs = k.run_cell("cell-a", f"""import {{ pl as plL, read as readL }} from "anndata-oom";
const lifeW = await readL({json.dumps(path)});
const lifePlot = await plL.explore(lifeW, {{ color: "grp" }});
lifePlot""")
    expect(rep["status"] == "ok", (rep, outs))
    m1 = model_of(outs)
    expect([m["content"]["comm_id"] for m in outs if m["msg_type"] == "comm_open"] == [m1], "one model, opened when shown")
    # shown again in cell B: two cells show one model
    rep, outs = k.run_cell("cell-b", "lifePlot")
    expect(model_of(outs) == m1 and not [m for m in outs if m["msg_type"] == "comm_open"], outs)
    # cell A re-run: B still shows it
    rep, outs = k.run_cell("cell-a", "1 + 1")
    expect(m1 in open_comms() and not closed(outs), "closed while cell B shows it")
    # cell B deleted (reported with the next request): no view is left, the kernel closes the model
    rep, outs = k.run_cell("cell-c", "2 + 2", deleted=["cell-b"])
    expect(closed(outs) == [m1], outs)
    expect(m1 not in open_comms(), "closed model still listed")
    rep, outs = k.run_cell("cell-c", "console.log(lifePlot.isLive)")
    expect(stdout(outs) == "true\n", stdout(outs))
    # shown again: a new model with the current state
    rep, outs = k.run_cell("cell-d", "lifePlot")
    m2 = model_of(outs)
    opens = [m for m in outs if m["msg_type"] == "comm_open"]
    expect(m2 != m1 and [m["content"]["comm_id"] for m in opens] == [m2], (m1, m2, opens))
    expect(opens[0]["content"]["data"]["state"]["n"] == 300, opens[0]["content"]["data"]["state"].get("n"))
    # shown by a request without a cell id (another frontend): open for good
    rep, outs = k.run("lifePlot")
    expect(model_of(outs) == m2, outs)
    k.run_cell("cell-d", "3 + 3")
    expect(m2 in open_comms(), "a view outside a known cell: the model stays open")

    # A re-run cell's explorer lets its AnnData go (its comm handlers no longer reach it).
    rep, outs = k.run_cell("cell-g", """const lifeGc = (() => { require("v8").setFlagsFromString("--expose-gc"); return require("vm").runInNewContext("gc"); })();
const lifeRefs: any[] = [];""")
    expect(rep["status"] == "ok", (rep, outs))
    rep, outs = k.run_cell("cell-e", f"""await (async () => {{
  const a = await readL({json.dumps(path)});
  lifeRefs.push(new (globalThis as any).WeakRef(a));
  return plL.explore(a, {{ color: "grp" }});
}})()""")
    expect(rep["status"] == "ok", (rep, outs))
    m3 = model_of(outs)
    rep, outs = k.run_cell("cell-f", "lifeGc(); await new Promise((r) => setTimeout(r, 50)); lifeGc(); console.log(lifeRefs[0].deref() === undefined)")
    expect(stdout(outs) == "false\n", ("shown: kept", stdout(outs)))
    rep, outs = k.run_cell("cell-e", "0")
    expect(closed(outs) == [m3], outs)
    rep, outs = k.run_cell("cell-f", "lifeGc(); await new Promise((r) => setTimeout(r, 50)); lifeGc(); console.log(lifeRefs[0].deref() === undefined)")
    expect(stdout(outs) == "true\n", ("cleared: collected", stdout(outs)))

    # Outputs cleared without a run (Edit → Clear Outputs): the extension opens a comm to
    # "anndata-oom.cells" with the cleared cells' ids and closes it.
    def clear_outputs(comm_id, data):
        k.send("comm_open", {"comm_id": comm_id, "target_name": "anndata-oom.cells", "data": data})
        k.send("comm_close", {"comm_id": comm_id, "data": {}})

    rep, outs = k.run_cell("cell-h", "const clearPlot = await plL.explore(lifeW, { color: 'grp' });\nclearPlot")
    m4 = model_of(outs)
    k.run_cell("cell-i", "clearPlot")
    # malformed messages name no cell; another cell's clearing leaves it open
    clear_outputs("clear-1", {"cleared": "cell-h"})
    clear_outputs("clear-2", {"cleared": [1, None, ""]})
    clear_outputs("clear-3", {"cleared": ["cell-h", "cell-x"]})
    rep, outs = k.run("1 + 1")
    expect(rep["status"] == "ok" and m4 in open_comms(), ("closed while cell-i shows it", outs))
    # the last cell showing it cleared: closed (comm_close on iopub), and the kernel goes on
    clear_outputs("clear-4", {"cleared": ["cell-i"]})
    k.iopub(lambda m: m["msg_type"] == "comm_close" and m["content"]["comm_id"] == m4, timeout=T)
    expect(m4 not in open_comms(), "cleared model still listed")
    rep, outs = k.run_cell("cell-j", "clearPlot")
    expect(rep["status"] == "ok" and model_of(outs) != m4, ("shown again after clearing", outs))
    return (
        f"model {m1[:8]} closed when its last cell was deleted, reopened as {m2[:8]}; a cleared explorer's AnnData collected; "
        f"{m4[:8]} closed when its cells' outputs were cleared"
    )


CHECKS = [engine_repr, engine_progress, engine_interrupt, engine_interrupt_abandoned, engine_progress_cancel, engine_error, engine_plot, engine_widget, engine_widget_lifetime, engine_stuck_loop, engine_sigterm]


def main():
    tmp = tempfile.mkdtemp(prefix="aoom-engine-kernel-test-")
    prefix, nb = os.path.join(tmp, "prefix"), os.path.join(tmp, "notebook")
    os.makedirs(nb)
    subprocess.run([NODE, os.path.join(REPO, "dist", "src", "kernel", "install.js"), "--python", sys.executable, "--prefix", prefix], check=True, stdout=sys.stderr)
    make_big(os.path.join(tmp, "big.h5ad"))
    os.environ["JUPYTER_PATH"] = os.path.join(prefix, "share", "jupyter")
    os.environ["JUPYTER_RUNTIME_DIR"] = os.path.join(tmp, "runtime")
    env = {**os.environ, "ANNDATA_OOM_BLOCK_BYTES": "65536"}
    km, kc = start_new_kernel(kernel_name="anndata-oom", cwd=nb, startup_timeout=60, env=env)

    k = Kernel(km, kc)
    k.cwd, k.tmp = nb, tmp
    return run_checks(km, kc, k, CHECKS, ONLY, tmp)


if __name__ == "__main__":
    sys.exit(main())
