#!/usr/bin/env python
"""The graph steps (neighbors -> UMAP -> Leiden) run by scanpy, in memory, for
comparison with the engine (bench/graph.ts). They use obsm['X_pca'] only.

    PY="$(bash bench/setup-peers-venv.sh | tail -n1)"
    nice -n 10 "$PY" bench/peers_graph.py FILE --out result.json
        [--steps neighbors,umap,leiden,leiden_igraph] [--step-timeout 1800]
        [--max-rss-gb 20] [--recall-sample 1000] [--no-warmup]

Steps (scanpy 1.11.5 calls, defaults as a user would run them):

    read           sc.read_h5ad(FILE)
    neighbors      sc.pp.neighbors(a, n_neighbors=15, use_rep='X_pca')
                   (n_obs >= 8192: scanpy's default transformer is pynndescent's
                   PyNNDescentTransformer with UMAP's n_trees / n_iters and
                   scanpy's settings.n_jobs, which is 1 by default)
    umap           sc.tl.umap(a)
    leiden         sc.tl.leiden(a)   (default flavor: leidenalg, n_iterations=-1,
                   directed graph; scanpy warns that the default will change)
    leiden_igraph  sc.tl.leiden(a, flavor='igraph', n_iterations=2, directed=False)
                   (what scanpy's warning recommends; key_added='leiden_igraph')

--steps picks among umap / leiden / leiden_igraph; neighbors is added when any
of them is asked for (they need its graph). Per step: wall seconds, CPU
seconds (user+sys of the process, so cpu_s / wall_s is the cores in use), the
largest thread count seen, and the peak RSS during the step: the larger of
(a) this script's sampler, which reads the child's RSS with psutil every
--poll-s (0.05 s), and (b) the child's own VmHWM, reset at the step's start
through /proc/self/clear_refs (catches spikes shorter than a poll). For the
Leiden steps also n_clusters and the adjusted Rand index against obs['truth']
(and obs['lineage'] if present). For neighbors also the kNN recall of
scanpy's graph against the exact neighbours (brute force, float64) of
--recall-sample seeded random cells, computed after the step, untimed.

How a step that runs too long is stopped: the steps run in a child process
(this script with --child) that writes one JSON line per event (step start,
step end) to a progress file; this parent polls that file and the child's RSS
every --poll-s. When the current step has run longer than --step-timeout
(or the child's RSS passes --max-rss-gb), the parent SIGKILLs the child, records
the step as 'timeout' ('rss_limit') with the time and peak RSS seen so far, and
starts a new child for the steps left. After neighbors the child saves the
kNN graph (obsp + uns['neighbors']) to a temporary pickle, so a new child
reloads it instead of recomputing it (the new child's import, warm-up, read
and reload are untimed). Killing a whole process is the only reliable way to
stop numba / C++ code (leidenalg, igraph) mid-call; the graph file makes the
restart cheap. If neighbors itself times out, the steps needing it are
recorded as skipped.

Warm-up (untimed, --no-warmup to skip): pynndescent and umap compile numba
kernels on first use (tens of seconds when numba's on-disk cache is cold);
each child first runs the same calls on 3,000 synthetic cells (neighbors with
transformer='pynndescent', as the real size gets) so the timed steps measure
the work, as bench/peers_chain.py does.

Threads are left as a user would have them (numba: all cores unless
NUMBA_NUM_THREADS is set); the JSON records the cores, NUMBA_NUM_THREADS and
the numba threading layer.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import platform
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import warnings

ALL_STEPS = ["neighbors", "umap", "leiden", "leiden_igraph"]
NEEDS_NEIGHBORS = {"umap", "leiden", "leiden_igraph"}
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from memory import MIB, hwm_mb, reset_hwm, rss_mb, ru_maxrss_mb  # noqa: E402


# --------------------------------------------------------------------------
# the child: runs the steps, one JSON line per event


class Child:
    def __init__(self, progress_path):
        self.out = open(progress_path, "a") if progress_path else sys.stdout

    def emit(self, obj):
        self.out.write(json.dumps(obj, default=_json_default) + "\n")
        self.out.flush()


def _json_default(o):
    try:
        import numpy as np

        if isinstance(o, np.integer):
            return int(o)
        if isinstance(o, np.floating):
            return float(o)
        if isinstance(o, np.ndarray):
            return o.tolist()
    except ImportError:
        pass
    return str(o)


def _warmup(sc) -> None:
    import anndata as ad
    import numpy as np

    rng = np.random.default_rng(0)
    centres = rng.standard_normal((6, 50)).astype(np.float32) * 4
    lab = rng.integers(0, 6, 3000)
    x = centres[lab] + rng.standard_normal((3000, 50), dtype=np.float32)
    a = ad.AnnData(obsm={"X_pca": x})
    sc.pp.neighbors(a, n_neighbors=15, use_rep="X_pca", transformer="pynndescent")
    sc.tl.umap(a)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sc.tl.leiden(a)
        sc.tl.leiden(a, flavor="igraph", n_iterations=2, directed=False, key_added="leiden_igraph")


def knn_recall(X, distances, n_sample: int, k: int, seed: int = 0) -> dict:
    """kNN recall of the stored graph for n_sample seeded random cells against
    the exact nearest other cells (euclidean on X_pca, brute force, float64).

    recall: the k nearest stored other cells of the row (by stored distance;
    the cell itself left out) against the exact k nearest other cells, k =
    n_neighbors - 1 (what the connectivities are built from).
    recall_all_stored: every stored other cell of the row (m of them) against
    the exact m nearest."""
    import numpy as np

    n = X.shape[0]
    rng = np.random.default_rng(seed)
    q_idx = np.sort(rng.choice(n, size=min(n_sample, n), replace=False))
    D = distances.tocsr()
    stored = []
    for i in q_idx:
        ind = D.indices[D.indptr[i]:D.indptr[i + 1]]
        dist = D.data[D.indptr[i]:D.indptr[i + 1]]
        keep = ind != i
        ind, dist = ind[keep], dist[keep]
        stored.append(ind[np.argsort(dist, kind="stable")])
    kmax = max(k, max(len(x) for x in stored))
    Q = np.asarray(X[q_idx], dtype=np.float64)
    qn = (Q * Q).sum(1)
    best_d = np.full((len(q_idx), kmax + 1), np.inf)
    best_i = np.full((len(q_idx), kmax + 1), -1, dtype=np.int64)
    step = 20000
    for s in range(0, n, step):
        B = np.asarray(X[s:s + step], dtype=np.float64)
        d2 = qn[:, None] - 2.0 * (Q @ B.T) + (B * B).sum(1)[None, :]
        cd = np.concatenate([best_d, d2], axis=1)
        ci = np.concatenate([best_i, np.broadcast_to(np.arange(s, s + B.shape[0]), d2.shape)], axis=1)
        part = np.argpartition(cd, kmax, axis=1)[:, :kmax + 1]
        best_d = np.take_along_axis(cd, part, 1)
        best_i = np.take_along_axis(ci, part, 1)
    hits_k = tot_k = hits_all = tot_all = 0
    for r, i in enumerate(q_idx):
        order = np.argsort(best_d[r])
        exact = [j for j in best_i[r][order] if j != i]
        st = stored[r].tolist()
        hits_k += len(set(exact[:k]) & set(st[:k]))
        tot_k += k
        m = len(st)
        hits_all += len(set(exact[:m]) & set(st))
        tot_all += m
    return {"recall": round(hits_k / tot_k, 5), "recall_k": k,
            "recall_all_stored": round(hits_all / max(tot_all, 1), 5),
            "recall_sample": int(len(q_idx)),
            "recall_definition": f"over {len(q_idx)} seeded random cells: |the {k} nearest stored "
                                 f"other cells ∩ the exact {k} nearest other cells| / {k}, averaged "
                                 "(euclidean on X_pca, brute force float64); recall_all_stored: "
                                 "all stored other cells of a row against as many exact ones"}


def child_main(args) -> int:
    ch = Child(args.progress)
    t0 = time.perf_counter()
    import numpy as np

    import scanpy as sc
    from importlib.metadata import version

    import numba

    threads = {"cores": os.cpu_count(),
               "NUMBA_NUM_THREADS_env": os.environ.get("NUMBA_NUM_THREADS"),
               "numba_num_threads": int(numba.config.NUMBA_NUM_THREADS),
               "scanpy_settings_n_jobs": sc.settings.n_jobs}
    for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        if k in os.environ:
            threads[k] = os.environ[k]
    vers = {p: version(p) for p in ("scanpy", "anndata", "numpy", "scipy", "scikit-learn", "numba",
                                    "pynndescent", "umap-learn", "igraph", "leidenalg")}
    ch.emit({"event": "meta", "pid": os.getpid(), "import_s": round(time.perf_counter() - t0, 3),
             "versions": vers, "threads": threads, "hwm_resettable": reset_hwm()})
    if args.warmup:
        tw = time.perf_counter()
        _warmup(sc)
        try:
            threads["numba_threading_layer"] = numba.threading_layer()
        except Exception:  # noqa: BLE001  (no parallel kernel run yet)
            pass
        ch.emit({"event": "meta", "warmup_s": round(time.perf_counter() - tw, 3), "threads": threads})

    steps = args.steps.split(",")
    holder = {}

    def run_step(name, fn):
        ch.emit({"event": "step_start", "step": name, "t": time.time()})
        rss0 = rss_mb()
        reset_hwm()
        c0 = os.times()
        w0 = time.perf_counter()
        with warnings.catch_warnings(record=True) as wl:
            warnings.simplefilter("always")
            ret = fn()
        wall = time.perf_counter() - w0
        c1 = os.times()
        rec = {"event": "step_end", "step": name, "wall_s": round(wall, 3),
               "cpu_s": round((c1.user - c0.user) + (c1.system - c0.system), 2),
               "hwm_mb": round(hwm_mb(), 1), "rss_start_mb": round(rss0, 1),
               "rss_end_mb": round(rss_mb(), 1)}
        ws = sorted({f"{w.category.__name__}: {str(w.message).splitlines()[0][:300]}" for w in wl})
        if ws:
            rec["warnings"] = ws
        if isinstance(ret, dict):
            rec.update(ret)
        ch.emit(rec)

    def read():
        holder["a"] = sc.read_h5ad(args.file)
        return {"n_obs": int(holder["a"].n_obs)}

    try:
        cur = "read"
        run_step("read", read)
        a = holder["a"]
        if "neighbors" not in steps and args.graph_cache and os.path.exists(args.graph_cache):
            tg = time.perf_counter()
            with open(args.graph_cache, "rb") as f:
                g = pickle.load(f)
            a.obsp["connectivities"] = g["connectivities"]
            a.obsp["distances"] = g["distances"]
            a.uns["neighbors"] = g["uns"]
            ch.emit({"event": "meta", "graph_reloaded_s": round(time.perf_counter() - tg, 3)})

        for name in steps:
            cur = name
            if name == "neighbors":
                def fn():
                    sc.pp.neighbors(a, n_neighbors=15, use_rep="X_pca")
                    p = a.uns["neighbors"]["params"]
                    n = a.n_obs
                    if n >= 8192:
                        tr = (f"pynndescent PyNNDescentTransformer(n_trees={min(64, 5 + round(n ** 0.5 / 20.0))}, "
                              f"n_iters={max(5, round(np.log2(n)))}, n_jobs={sc.settings.n_jobs})")
                    else:
                        tr = "sklearn KNeighborsTransformer(algorithm='brute')"
                    D = a.obsp["distances"].tocsr()
                    rows = np.repeat(np.arange(n), np.diff(D.indptr))
                    n_self = int((D.indices == rows).sum())
                    return {"transformer": tr, "params": {k: v for k, v in p.items()},
                            "stored_neighbors_per_cell": round(D.nnz / n, 3),
                            "stored_self_entries": n_self,
                            "other_neighbors_per_cell": round((D.nnz - n_self) / n, 3)}
                run_step("neighbors", fn)
                if args.recall_sample > 0:
                    tr0 = time.perf_counter()
                    r = knn_recall(a.obsm["X_pca"], a.obsp["distances"], args.recall_sample, k=15 - 1)
                    r["recall_s"] = round(time.perf_counter() - tr0, 2)
                    ch.emit({"event": "step_extra", "step": "neighbors", **r})
                if args.graph_cache and any(s in NEEDS_NEIGHBORS for s in steps):
                    with open(args.graph_cache + ".tmp", "wb") as f:
                        pickle.dump({"connectivities": a.obsp["connectivities"],
                                     "distances": a.obsp["distances"],
                                     "uns": dict(a.uns["neighbors"])}, f, protocol=5)
                    os.replace(args.graph_cache + ".tmp", args.graph_cache)
            elif name == "umap":
                def fn():
                    sc.tl.umap(a)
                    n = a.n_obs
                    return {"n_epochs": 500 if n <= 10000 else 200}
                run_step("umap", fn)
            elif name in ("leiden", "leiden_igraph"):
                key = name

                def fn(key=key):
                    if key == "leiden":
                        sc.tl.leiden(a)
                    else:
                        sc.tl.leiden(a, flavor="igraph", n_iterations=2, directed=False,
                                     key_added="leiden_igraph")
                    return {}
                run_step(name, fn)
                from sklearn.metrics import adjusted_rand_score

                lab = a.obs[key].to_numpy()
                extra = {"n_clusters": int(a.obs[key].nunique())}
                if "truth" in a.obs:
                    extra["ari"] = round(float(adjusted_rand_score(a.obs["truth"].to_numpy(), lab)), 5)
                if "lineage" in a.obs:
                    extra["ari_lineage"] = round(float(adjusted_rand_score(a.obs["lineage"].to_numpy(), lab)), 5)
                extra["params"] = dict(a.uns[key].get("params", {}))
                ch.emit({"event": "step_extra", "step": name, **extra})
            else:
                raise ValueError(f"unknown step {name!r}")
    except BaseException as e:  # noqa: BLE001
        ch.emit({"event": "error", "step": cur, "error": f"{type(e).__name__}: {e}",
                 "traceback": traceback.format_exc()})
        return 1
    ch.emit({"event": "done", "ru_maxrss_mb": round(ru_maxrss_mb(), 1)})
    return 0


# --------------------------------------------------------------------------
# the parent: the watchdog and RSS sampler


def _tree(proc):
    import psutil

    try:
        return [proc] + proc.children(recursive=True)
    except psutil.Error:
        return [proc]


def _tree_rss_threads(proc):
    import psutil

    rss = 0
    nth = 0
    for p in _tree(proc):
        try:
            rss += p.memory_info().rss
            nth += p.num_threads()
        except psutil.Error:
            pass
    return rss, nth


def run_child(args, steps, progress, graph_cache, log_path):
    """Runs one child for these steps. Returns (events, killed_step, kill_reason,
    step_samples {step: (peak_rss_bytes, max_threads)}, elapsed_in_killed_step,
    child_peak_bytes, exit_code)."""
    import psutil

    cmd = [sys.executable, os.path.abspath(__file__), args.file, "--child", "--steps", ",".join(steps),
           "--progress", progress, "--graph-cache", graph_cache,
           "--recall-sample", str(args.recall_sample)]
    if not args.warmup:
        cmd.append("--no-warmup")
    open(progress, "w").close()
    with open(log_path, "a") as log:
        child = subprocess.Popen(cmd, stdout=log, stderr=log)
    proc = psutil.Process(child.pid)
    events = []
    pos = 0
    buf = ""
    cur = None
    cur_t0 = None
    samples = {}
    child_peak = 0
    killed = None
    reason = None
    elapsed_killed = None
    limit = args.max_rss_gb * 1024**3 if args.max_rss_gb else None
    cur_cpu0 = [None]
    killed_cpu = [None]

    def drain():
        nonlocal pos, buf, cur, cur_t0
        with open(progress) as f:
            f.seek(pos)
            data = f.read()
            pos = f.tell()
        buf += data
        while "\n" in buf:
            line, buf = buf.split("\n", 1)
            if not line.strip():
                continue
            try:
                e = json.loads(line)
            except json.JSONDecodeError:
                continue
            events.append(e)
            if e["event"] == "step_start":
                cur, cur_t0 = e["step"], time.perf_counter()
                samples.setdefault(cur, [0, 0])
                try:
                    ct = proc.cpu_times()
                    cur_cpu0[0] = ct.user + ct.system
                except psutil.Error:
                    cur_cpu0[0] = None
            elif e["event"] == "step_end":
                cur, cur_t0 = None, None

    while True:
        rc = child.poll()
        drain()
        if rc is not None:
            break
        rss, nth = _tree_rss_threads(proc)
        child_peak = max(child_peak, rss)
        if cur is not None:
            s = samples[cur]
            s[0] = max(s[0], rss)
            s[1] = max(s[1], nth)
            if time.perf_counter() - cur_t0 > args.step_timeout:
                reason = "timeout"
            elif limit and rss > limit:
                reason = "rss_limit"
            if reason:
                killed = cur
                elapsed_killed = time.perf_counter() - cur_t0
                try:
                    ct = proc.cpu_times()
                    if cur_cpu0[0] is not None:
                        killed_cpu[0] = round(ct.user + ct.system - cur_cpu0[0], 1)
                except psutil.Error:
                    pass
                for p in _tree(proc):
                    try:
                        p.send_signal(signal.SIGKILL)
                    except psutil.Error:
                        pass
                child.wait()
                drain()
                break
        time.sleep(args.poll_s)
    samples["_killed_cpu_s"] = killed_cpu[0]
    return events, killed, reason, samples, elapsed_killed, child_peak, child.returncode


def parent_main(args) -> int:
    want = ALL_STEPS if args.steps in ("all", "") else [s.strip() for s in args.steps.split(",") if s.strip()]
    for s in want:
        if s not in ALL_STEPS:
            sys.exit(f"unknown step {s!r}; choose from {ALL_STEPS}")
    notes = []
    if any(s in NEEDS_NEIGHBORS for s in want) and "neighbors" not in want:
        want = ["neighbors"] + want
        notes.append("neighbors added: the other steps need its graph")
    want = [s for s in ALL_STEPS if s in want]

    tmpdir = tempfile.mkdtemp(prefix="peers_graph_")
    progress = os.path.join(tmpdir, "progress.jsonl")
    graph_cache = os.path.join(tmpdir, "graph.pkl")
    log_path = os.path.join(tmpdir, "child.log")
    load_start = os.getloadavg()
    t_start = time.perf_counter()

    steps_out: dict = {}
    meta: dict = {"children": []}
    remaining = list(want)
    peak_process = 0
    ru_max = 0.0
    first = True
    while remaining:
        events, killed, reason, samples, el_killed, child_peak, rc = run_child(
            args, remaining, progress, graph_cache, log_path)
        peak_process = max(peak_process, child_peak)
        cmeta = {"steps": list(remaining), "exit_code": rc}
        for e in events:
            ev = e["event"]
            if ev == "meta":
                for k, v in e.items():
                    if k in ("event",):
                        continue
                    if k in ("versions", "threads"):
                        meta[k] = v
                    else:
                        cmeta[k] = v
            elif ev == "step_end":
                name = e["step"]
                if name == "read" and not first:
                    continue  # a restarted child's read: untimed bookkeeping
                smp = samples.get(name, [0, 0])
                rec = {k: v for k, v in e.items() if k not in ("event", "step", "hwm_mb")}
                rec["status"] = "ok"
                rec["peak_rss_mb"] = round(max(e.get("hwm_mb", 0), smp[0] / MIB), 1)
                rec["peak_rss_sampled_mb"] = round(smp[0] / MIB, 1)
                rec["peak_rss_hwm_mb"] = e.get("hwm_mb")
                rec["max_threads"] = smp[1]
                if rec["wall_s"] > 0:
                    rec["cores_used"] = round(rec["cpu_s"] / rec["wall_s"], 2)
                steps_out[name] = rec
            elif ev == "step_extra":
                steps_out.setdefault(e["step"], {}).update(
                    {k: v for k, v in e.items() if k not in ("event", "step")})
            elif ev == "error":
                name = e.get("step") or "?"
                steps_out[name] = {"status": "error", "error": e["error"],
                                   "traceback": e.get("traceback", "")[-3000:]}
            elif ev == "done":
                ru_max = max(ru_max, e.get("ru_maxrss_mb", 0))
        meta["children"].append(cmeta)
        first = False

        done_now = [s for s in remaining if s in steps_out and steps_out[s].get("status") == "ok"]
        failed = None
        if killed:
            smp = samples.get(killed, [0, 0])
            steps_out[killed] = {"status": reason, "wall_s": round(el_killed, 1),
                                 "peak_rss_mb": round(smp[0] / MIB, 1), "max_threads": smp[1],
                                 "note": (f"stopped after {el_killed:.0f} s (--step-timeout "
                                          f"{args.step_timeout:g} s)" if reason == "timeout" else
                                          f"stopped at {smp[0] / MIB / 1024:.1f} GB RSS (--max-rss-gb "
                                          f"{args.max_rss_gb:g})")}
            if samples.get("_killed_cpu_s") is not None:
                steps_out[killed]["cpu_s"] = samples["_killed_cpu_s"]
                steps_out[killed]["cores_used"] = round(samples["_killed_cpu_s"] / max(el_killed, 1e-9), 2)
            failed = killed
        else:
            errs = [s for s in remaining + ["read"] if steps_out.get(s, {}).get("status") == "error"]
            if errs:
                failed = errs[0]
            elif rc != 0 and len(done_now) < len(remaining):
                nxt = next(s for s in remaining if s not in done_now)
                steps_out[nxt] = {"status": "error", "error": f"child exited {rc} (see stderr_tail)"}
                failed = nxt
                try:
                    with open(log_path) as f:
                        meta["stderr_tail"] = f.read()[-4000:]
                except OSError:
                    pass
        remaining = [s for s in remaining if s not in done_now and s != failed]
        if failed == "read":
            for s in remaining:
                steps_out[s] = {"status": "skipped", "note": "read failed"}
            remaining = []
        if failed == "neighbors":
            for s in remaining:
                steps_out[s] = {"status": "skipped", "note": "needs neighbors, which did not finish"}
            remaining = []
        if failed is None and remaining:
            # the child ended without running them and without an error: stop
            for s in remaining:
                steps_out.setdefault(s, {"status": "error", "error": "not run"})
            remaining = []

    try:
        with open(log_path) as f:
            log_text = f.read()
    except OSError:
        log_text = ""
    for p in (progress, graph_cache, log_path):
        if os.path.exists(p):
            os.remove(p)
    os.rmdir(tmpdir)

    ok_peaks = [v.get("peak_rss_mb", 0) or 0 for v in steps_out.values()]
    n_obs = steps_out.get("read", {}).get("n_obs")
    nb = steps_out.get("neighbors", {})
    if "transformer" in nb:
        notes.append(f"neighbors transformer: {nb['transformer']}")
    if nb.get("stored_self_entries"):
        notes.append(f"obsp['distances'] stores each cell itself (explicit 0) plus "
                     f"{nb.get('other_neighbors_per_cell')} other cells per row (scanpy's docs say "
                     "n_neighbors - 1 others; the pynndescent path keeps self, cf. scanpy issue 3809); "
                     "the connectivities use self + the 14 nearest; 'recall' is over those 14, "
                     "'recall_all_stored' over every stored other cell")
    ws = [c["warmup_s"] for c in meta["children"] if "warmup_s" in c]
    if ws:
        notes.append(f"untimed JIT warm-up (numba kernels of pynndescent / umap compiled on 3,000 "
                     f"cells; a user pays this on the first call of a session): {ws[0]:.0f} s")
    if len(meta["children"]) > 1:
        notes.append("a step was stopped, so the steps after it ran in a new process (graph reloaded "
                     "from the pickle, no UMAP embedding or earlier clustering in memory): their RSS "
                     "starts lower than in one uninterrupted session")
    if "read" in steps_out and "rss_start_mb" in steps_out["read"]:
        notes.append(f"RSS before read (python + scanpy/numba imports + JIT warm-up): "
                     f"{steps_out['read']['rss_start_mb']:.0f} MB; every step's peak includes it")
    th = meta.get("threads", {})
    notes.append(f"threads: {th.get('cores')} cores, NUMBA_NUM_THREADS env "
                 f"{th.get('NUMBA_NUM_THREADS_env')!s} (numba uses {th.get('numba_num_threads')}), "
                 f"scanpy settings.n_jobs {th.get('scanpy_settings_n_jobs')} (passed to pynndescent, which "
                 "sets numba's threads to it while building the index); umap's layout runs single-"
                 "threaded because scanpy passes random_state=0")
    notes.append("peak_rss_mb per step: max of a 50 ms psutil sampler (parent) and the child's VmHWM "
                 "reset at the step start; top-level peak_rss_mb: max over the steps incl. read "
                 "(the pipeline's peak); process_peak_rss_mb: every sample of the child processes "
                 "incl. untimed warm-up / recall check")
    if log_text.strip():
        meta["child_log_tail"] = log_text[-3000:]
    rep = {
        "tool": "scanpy",
        "version": meta.get("versions", {}).get("scanpy"),
        "file": os.path.abspath(args.file),
        "n_obs": n_obs,
        "steps": steps_out,
        "steps_requested": want,
        "peak_rss_mb": round(max(ok_peaks or [0]), 1),
        "process_peak_rss_mb": round(max(peak_process / MIB, ru_max), 1),
        "total_wall_s": round(time.perf_counter() - t_start, 1),
        "limits": {"step_timeout_s": args.step_timeout, "max_rss_gb": args.max_rss_gb},
        "versions": meta.get("versions"),
        "threads": th,
        "children": meta["children"],
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    # other work on the machine skews the timings
                    "loadavg_start": [round(v, 2) for v in load_start],
                    "loadavg_end": [round(v, 2) for v in os.getloadavg()]},
        "notes": notes,
    }
    if "stderr_tail" in meta:
        rep["stderr_tail"] = meta["stderr_tail"]
    if "child_log_tail" in meta:
        rep["child_log_tail"] = meta["child_log_tail"]
    d = os.path.dirname(os.path.abspath(args.out))
    os.makedirs(d, exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(rep, f, indent=1, default=_json_default)
        f.write("\n")
    print(f"scanpy {rep['version']} on {os.path.basename(args.file)} ({n_obs} cells): "
          f"peak RSS {rep['peak_rss_mb']:.0f} MB, total {rep['total_wall_s']} s")
    for name in ["read"] + want:
        s = steps_out.get(name)
        if not s:
            continue
        extra = "".join(f", {k} {s[k]}" for k in ("n_clusters", "ari", "recall", "cores_used") if k in s)
        wall = f"{s['wall_s']:.2f} s" if "wall_s" in s else "–"
        peak = f"{s['peak_rss_mb']:.0f} MB" if s.get("peak_rss_mb") else "–"
        print(f"  {name:<14} {s.get('status', '?'):<8} {wall:>10} {peak:>9}{extra}")
    return 0 if all(v.get("status") == "ok" for v in steps_out.values()) else 1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("file")
    ap.add_argument("--out", help="write the JSON report here (parent mode: required)")
    ap.add_argument("--steps", default=",".join(ALL_STEPS),
                    help=f"comma-separated, from {ALL_STEPS} (or 'all')")
    ap.add_argument("--step-timeout", type=float, default=1800.0, help="seconds per step")
    ap.add_argument("--max-rss-gb", type=float, default=20.0, help="0 = none")
    ap.add_argument("--poll-s", type=float, default=0.05)
    ap.add_argument("--recall-sample", type=int, default=1000, help="0 = skip the kNN recall check")
    ap.add_argument("--no-warmup", dest="warmup", action="store_false")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--progress", help=argparse.SUPPRESS)
    ap.add_argument("--graph-cache", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child_main(args)
    if not args.out:
        ap.error("--out is required")
    return parent_main(args)


if __name__ == "__main__":
    sys.exit(main())
