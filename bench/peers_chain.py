#!/usr/bin/env python
"""The preprocessing chain run by a Python peer, for comparison with the engine.

    PY="$(bash bench/setup-peers-venv.sh | tail -n1)"
    nice -n 10 "$PY" bench/peers_chain.py FILE --peer scanpy|anndataoom --json OUT.json
        [--max-rss-gb 20] [--timeout-s 7200] [--save-pca OUT.npy] [--drop-caches] [--no-warmup]
        [--oom-chunk-size 1000] [--oom-pca-materialize-gb 16] [--oom-hvg seurat|pearson]

The chain (scanpy names):

    read -> calculate_qc_metrics(qc_vars=['mt'], var['mt'] = var_names.str.startswith('MT-'))
         -> filter_cells(min_genes=200) -> filter_genes(min_cells=3)
         -> normalize_total(target_sum=1e4) -> log1p
         -> highly_variable_genes(n_top_genes=2000, flavor='seurat') -> subset to the HVGs
         -> scale(max_value=10) -> pca(n_comps=50)

Peers:

* scanpy: everything in memory; 'read' is sc.read_h5ad (the whole file).
* anndataoom (0.1.8): X stays on disk; its chunked / lazy functions are used
  where they exist (chunked_qc_metrics + chunked_gene_group_pct,
  chunked_normalize_total, chunked_log1p, chunked_scale, chunked_pca).
  Where it has none, the step is built from its primitives and the JSON
  says so in that step's 'note':
    - filter_cells / filter_genes: no OOM version (omicverse's table marks them
      "not yet OOM-adapted"); done as masks on its QC columns + AnnDataOOM's lazy
      subsetting (a view). The per-gene cell count is recomputed with one
      chunked pass (X.getnnz) only if cells were removed.
    - HVG flavor='seurat': no OOM version (only Pearson residuals, "use the
      fused HVG inside omicverse preprocess"). Computed as scanpy does (expm1
      of the log data -> per-gene mean/var -> binned normalised dispersion ->
      top n) with the mean/var from its chunked_mean_var over one chunked pass.
      --oom-hvg pearson runs its own chunked_highly_variable_genes_pearson
      instead (a different method: the HVG set will differ from scanpy's).
    - calculate_qc_metrics' percent_top (pct_counts_in_top_N_genes) and the
      per-gene mean/total counts have no OOM version: skipped.

The JSON has per step: wall seconds, the step's own peak RSS (VmHWM reset
before the step through /proc/self/clear_refs), RSS at its end, and the
running peak; then a fingerprint of the results (cells / genes left, QC sums,
the HVG names, PCA explained variance) to check against the engine.

By default the chain runs in a child process (this script with --child) that
the parent polls for RSS (whole process tree, every --poll-s) and wall time;
past --max-rss-gb or --timeout-s the child is killed and the JSON says
status 'rss_limit' / 'timeout' with the steps finished until then.
--child on its own runs the chain in this process with no limits.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
import traceback

STEPS = [
    "read",
    "qc",
    "filter_cells",
    "filter_genes",
    "normalize_total",
    "log1p",
    "hvg",
    "subset_hvg",
    "scale",
    "pca",
]

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from memory import MIB, hwm_mb, reset_hwm, rss_mb, ru_maxrss_mb  # noqa: E402


# --------------------------------------------------------------------------
# The child: runs the chain, one JSON line per event on the progress stream


class Recorder:
    def __init__(self, out):
        self.out = out
        self.steps = []
        self.peak = 0.0
        self.hwm_resettable = reset_hwm()

    def emit(self, obj):
        if self.out is not None:
            self.out.write(json.dumps(obj) + "\n")
            self.out.flush()

    def step(self, name, fn, *args, **kwargs):
        """Run fn; record wall time and RSS. fn may return (value, note)."""
        reset_hwm()
        c0 = os.times()
        t0 = time.perf_counter()
        ret = fn(*args, **kwargs)
        wall = time.perf_counter() - t0
        c1 = os.times()
        cpu = (c1.user - c0.user) + (c1.system - c0.system)
        step_peak = hwm_mb() if self.hwm_resettable else ru_maxrss_mb()
        self.peak = max(self.peak, step_peak, ru_maxrss_mb() if not self.hwm_resettable else 0)
        note = None
        if isinstance(ret, tuple) and len(ret) == 2 and (ret[1] is None or isinstance(ret[1], str)):
            ret, note = ret
        rec = {
            "step": name,
            "wall_s": round(wall, 4),
            "cpu_s": round(cpu, 2),
            "step_peak_rss_mb": round(step_peak, 1),
            "rss_end_mb": round(rss_mb(), 1),
            "peak_rss_so_far_mb": round(self.peak, 1),
        }
        if note:
            rec["note"] = note
        self.steps.append(rec)
        self.emit({"event": "step", **rec})
        return ret


def _summ(x) -> float:
    import numpy as np

    return float(np.asarray(x, dtype=np.float64).sum())


def _mean(x) -> float:
    import numpy as np

    return float(np.asarray(x, dtype=np.float64).mean())


def pca_fingerprint(X_pca, reported_ratio, n_vars) -> dict:
    import numpy as np

    X = np.asarray(X_pca, dtype=np.float64)
    ev = X.var(axis=0, ddof=1)
    return {
        "n_comps": int(X.shape[1]),
        "explained_variance_first5": [float(v) for v in ev[:5]],
        # explained variance / number of scaled genes: each unclipped scaled gene
        # has variance 1, so this is close to scanpy's ratio (clipping lowers the
        # true total a little); comparable across peers whatever they report.
        "explained_variance_over_n_vars_first5": [float(v / n_vars) for v in ev[:5]],
        "variance_ratio_reported_first5": [float(v) for v in np.asarray(reported_ratio)[:5]],
        "variance_ratio_reported_sum": float(np.asarray(reported_ratio).sum()),
        "pc1_abs_mean": float(np.abs(X[:, 0]).mean()),
    }


def hvg_fingerprint(var_names, mask) -> dict:
    import hashlib

    import numpy as np

    names = [str(n) for n in np.asarray(var_names)[np.asarray(mask, dtype=bool)]]
    return {
        "n_hvg": len(names),
        "hvg_sha256_sorted": hashlib.sha256("\n".join(sorted(names)).encode()).hexdigest(),
        "hvg_names": names,
    }


def seurat_hvg_from_mean_var(mean, var, var_names, n_top_genes=2000, n_bins=20):
    """scanpy 1.11's flavor='seurat' selection (single batch, n_top_genes)
    from the per-gene mean and variance (ddof=1) of expm1(log data)."""
    import numpy as np
    import pandas as pd

    mean = np.array(mean, dtype=np.float64)
    var = np.asarray(var, dtype=np.float64)
    mean[mean == 0] = 1e-12
    dispersion = var / mean
    dispersion[dispersion == 0] = np.nan
    with np.errstate(invalid="ignore", divide="ignore"):
        dispersion = np.log(dispersion)
    mean = np.log1p(mean)
    df = pd.DataFrame({"means": mean, "dispersions": dispersion})
    df["mean_bin"] = pd.cut(df["means"], bins=n_bins)
    stats = df.groupby("mean_bin", observed=True)["dispersions"].agg(avg="mean", dev="std")
    one = stats["dev"].isnull()
    stats.loc[one, "dev"] = stats.loc[one, "avg"]
    stats.loc[one, "avg"] = 0
    stats = stats.loc[df["mean_bin"]].set_index(df.index)
    df["dispersions_norm"] = (df["dispersions"] - stats["avg"]) / stats["dev"]
    dn = df["dispersions_norm"].to_numpy()
    x = dn[~np.isnan(dn)].copy()
    n = min(n_top_genes, len(var_names), x.size)
    x[::-1].sort()
    cutoff = x[n - 1]
    df["highly_variable"] = np.nan_to_num(dn, nan=-np.inf) >= cutoff
    df.index = var_names
    return df


def _scanpy_warmup(sc) -> None:
    import anndata as ad
    import numpy as np
    import pandas as pd
    import scipy.sparse as sp

    rng = np.random.default_rng(0)
    x = sp.random(600, 1000, density=0.3, format="csr", dtype=np.float32, random_state=rng)
    x.data = np.ceil(x.data * 10)
    names = [f"MT-{i}" if i < 5 else f"G{i}" for i in range(1000)]
    a = ad.AnnData(x, var=pd.DataFrame(index=names))
    a.var["mt"] = a.var_names.str.startswith("MT-")
    sc.pp.calculate_qc_metrics(a, qc_vars=["mt"], inplace=True)
    sc.pp.filter_cells(a, min_genes=200)
    sc.pp.filter_genes(a, min_cells=3)
    sc.pp.normalize_total(a, target_sum=1e4)
    sc.pp.log1p(a)
    sc.pp.highly_variable_genes(a, n_top_genes=100, flavor="seurat")
    a = a[:, a.var["highly_variable"].to_numpy()].copy()
    sc.pp.scale(a, max_value=10)
    sc.pp.pca(a, n_comps=20)


def run_scanpy(path: str, rec: Recorder, args) -> dict:
    t0 = time.perf_counter()
    import numpy as np
    import scanpy as sc

    from importlib.metadata import version

    rec.emit({"event": "meta", "import_s": round(time.perf_counter() - t0, 3),
              "rss_after_import_mb": round(rss_mb(), 1),
              "versions": {"scanpy": version("scanpy"), "anndata": version("anndata"),
                           "numpy": version("numpy"), "scipy": version("scipy"),
                           "scikit-learn": version("scikit-learn")}})
    if args.warmup:
        # numba kernels (calculate_qc_metrics, HVG mean/var, scale) compile on
        # first use (~15 s on this machine when the venv's numba cache is cold);
        # compile them on a tiny matrix first so the timed steps measure the work.
        tw = time.perf_counter()
        _scanpy_warmup(sc)
        rec.emit({"event": "meta", "warmup_s": round(time.perf_counter() - tw, 3)})
    res: dict = {}

    def read():
        a = sc.read_h5ad(path)
        x = a.X
        note = None
        if hasattr(x, "indptr") and x.indices.dtype != x.indptr.dtype:
            # anndata 0.12 hands back CSR with int32 indices + int64 indptr as
            # stored; scipy 1.17's in-place eliminate_zeros (called by
            # calculate_qc_metrics) then fails "Output dtype not compatible
            # with inputs". Unify the index dtypes as scipy would.
            was = f"{x.indices.dtype}/{x.indptr.dtype}"
            if x.nnz < 2**31 - 1 and max(x.shape) < 2**31 - 1:
                x.indptr = x.indptr.astype(np.int32)
            else:
                x.indices = x.indices.astype(np.int64)
            note = (f"index dtypes (indices/indptr) {was} unified to "
                    f"{x.indices.dtype}/{x.indptr.dtype} (scipy 1.17 needs them equal)")
        return a, note

    adata = rec.step("read", read)
    res["n_obs_in"], res["n_vars_in"] = map(int, adata.shape)

    def qc():
        adata.var["mt"] = adata.var_names.str.startswith("MT-")
        sc.pp.calculate_qc_metrics(adata, qc_vars=["mt"], inplace=True)

    rec.step("qc", qc)
    res["qc"] = {
        "n_mt_genes": int(adata.var["mt"].sum()),
        "total_counts_sum": _summ(adata.obs["total_counts"]),
        "n_genes_by_counts_mean": _mean(adata.obs["n_genes_by_counts"]),
        "pct_counts_mt_mean": _mean(adata.obs["pct_counts_mt"]),
        "pct_counts_in_top_50_genes_mean": _mean(adata.obs["pct_counts_in_top_50_genes"]),
        "n_cells_by_counts_sum": _summ(adata.var["n_cells_by_counts"]),
    }

    rec.step("filter_cells", sc.pp.filter_cells, adata, min_genes=200)
    rec.step("filter_genes", sc.pp.filter_genes, adata, min_cells=3)
    res["n_obs_filtered"], res["n_vars_filtered"] = map(int, adata.shape)

    rec.step("normalize_total", sc.pp.normalize_total, adata, target_sum=1e4)
    rec.step("log1p", sc.pp.log1p, adata)
    rec.step("hvg", sc.pp.highly_variable_genes, adata, n_top_genes=2000, flavor="seurat")
    res["hvg"] = hvg_fingerprint(adata.var_names, adata.var["highly_variable"])

    def subset():
        return adata[:, adata.var["highly_variable"].to_numpy()].copy()

    adata = rec.step("subset_hvg", subset)
    rec.step("scale", sc.pp.scale, adata, max_value=10)
    res["scale"] = {"x_mean_abs_max": float(np.abs(np.asarray(adata.X).mean(axis=0)).max()),
                    "x_max": float(np.asarray(adata.X).max())}

    def pca():
        sc.pp.pca(adata, n_comps=50)
        return None, "sklearn PCA, svd_solver='arpack' (scanpy's default for dense X), random_state=0"

    rec.step("pca", pca)
    X_pca = adata.obsm["X_pca"]
    res["pca"] = pca_fingerprint(X_pca, adata.uns["pca"]["variance_ratio"], adata.n_vars)
    res["pca"]["params"] = {k: str(v) for k, v in adata.uns["pca"].get("params", {}).items()}
    res["n_obs_out"], res["n_vars_out"] = map(int, adata.shape)
    if args.save_pca:
        np.save(args.save_pca, np.asarray(X_pca[:, :10], dtype=np.float32))
    return res


class _Expm1View:
    """Chunked view of a lazy X with expm1 applied to the stored values
    (what scanpy's seurat flavor computes before mean/var)."""

    def __init__(self, X):
        self._X = X
        self.shape = X.shape

    def chunked(self, chunk_size):
        import numpy as np
        from scipy.sparse import issparse

        for start, end, chunk in self._X.chunked(chunk_size):
            if issparse(chunk):
                chunk = chunk.copy()
                chunk.data = np.expm1(chunk.data)
            else:
                chunk = np.expm1(chunk)
            yield start, end, chunk


def run_anndataoom(path: str, rec: Recorder, args) -> dict:
    t0 = time.perf_counter()
    from types import SimpleNamespace

    import numpy as np

    import anndataoom as oom

    from importlib.metadata import version

    import sklearn.utils.extmath  # noqa: F401  (chunked_pca imports it lazily; keep that out of 'pca')

    cs = args.oom_chunk_size
    sidecar = path + ".layers.h5"
    sidecar_existed = os.path.exists(sidecar)
    rec.emit({"event": "meta", "import_s": round(time.perf_counter() - t0, 3),
              "rss_after_import_mb": round(rss_mb(), 1),
              "versions": {"anndataoom": version("anndataoom"), "anndata": version("anndata"),
                           "numpy": version("numpy"), "scipy": version("scipy"),
                           "scikit-learn": version("scikit-learn")},
              "oom_chunk_size": cs, "oom_pca_materialize_gb": args.oom_pca_materialize_gb,
              "oom_hvg": args.oom_hvg})
    res: dict = {}

    adata = rec.step("read", oom.read, path)
    res["n_obs_in"], res["n_vars_in"] = map(int, adata.shape)
    # Every AnnDataOOM made on the way is kept alive: a subset (adata[mask])
    # is a new object whose X reads through its parent's, and dropping the
    # parent runs AnnDataOOM.__del__ -> close(), which closes the Rust file
    # under the subset ("PanicException: accessing an empty slot").
    keep_alive = [adata]

    def qc():
        mt = np.asarray(adata.var_names.str.startswith("MT-"))
        adata.var["mt"] = mt
        oom.chunked_qc_metrics(adata, chunk_size=cs)  # obs nUMIs, detected_genes; var n_cells
        frac = oom.chunked_gene_group_pct(adata, mt, chunk_size=cs)  # 2nd pass over X
        adata.obs["pct_counts_mt"] = frac * 100.0
        return None, ("chunked_qc_metrics + chunked_gene_group_pct (2 passes); percent_top "
                      "and per-gene mean/total counts: no OOM version, skipped")

    rec.step("qc", qc)
    res["qc"] = {
        "n_mt_genes": int(adata.var["mt"].sum()),
        "total_counts_sum": _summ(adata.obs["nUMIs"]),
        "n_genes_by_counts_mean": _mean(adata.obs["detected_genes"]),
        "pct_counts_mt_mean": _mean(adata.obs["pct_counts_mt"]),
        "n_cells_by_counts_sum": _summ(adata.var["n_cells"]),
    }

    state = {"cells_removed": 0}

    def filter_cells():
        nonlocal adata
        keep = np.asarray(adata.obs["detected_genes"]) >= 200
        state["cells_removed"] = int((~keep).sum())
        if not keep.all():
            adata = adata[keep]
            keep_alive.append(adata)
        return None, (f"no OOM filter_cells: mask on detected_genes + lazy AnnDataOOM subset; "
                      f"removed {state['cells_removed']}")

    rec.step("filter_cells", filter_cells)

    def filter_genes():
        nonlocal adata
        if state["cells_removed"]:
            n_cells = adata.X.getnnz(axis=0, chunk_size=cs)  # one chunked pass
            how = "recounted with X.getnnz (one pass)"
        else:
            n_cells = np.asarray(adata.var["n_cells"])
            how = "reused the QC count (no cell removed)"
        keep = n_cells >= 3
        removed = int((~keep).sum())
        if not keep.all():
            adata = adata[:, keep]
            keep_alive.append(adata)
        return None, f"no OOM filter_genes: cells per gene {how} + lazy subset; removed {removed}"

    rec.step("filter_genes", filter_genes)
    res["n_obs_filtered"], res["n_vars_filtered"] = map(int, adata.shape)

    rec.step("normalize_total", oom.chunked_normalize_total, adata, target_sum=1e4, chunk_size=cs)
    rec.step("log1p", oom.chunked_log1p, adata)

    def hvg():
        if args.oom_hvg == "pearson":
            oom.chunked_highly_variable_genes_pearson(adata, n_top_genes=2000, layer="counts",
                                                      chunk_size=cs)
            return None, ("chunked_highly_variable_genes_pearson on layer 'counts' "
                          "(NOT seurat: a different HVG set)")
        mean, var = oom.chunked_mean_var(SimpleNamespace(X=_Expm1View(adata.X)), chunk_size=cs)
        df = seurat_hvg_from_mean_var(mean, var, adata.var_names, n_top_genes=2000)
        for col in ("highly_variable", "means", "dispersions", "dispersions_norm"):
            adata.var[col] = df[col].to_numpy()
        return None, ("no OOM seurat HVG: chunked_mean_var over expm1(lazy log data) "
                      "(one pass) + scanpy's seurat dispersion binning")

    rec.step("hvg", hvg)
    hv = np.asarray(adata.var["highly_variable"], dtype=bool)
    res["hvg"] = hvg_fingerprint(adata.var_names, hv)

    def subset():
        return adata[:, hv], "lazy AnnDataOOM subset (a view)"

    adata = rec.step("subset_hvg", subset)
    keep_alive.append(adata)
    rec.step("scale", oom.chunked_scale, adata, max_value=10.0, chunk_size=cs)

    def pca():
        n_obs, n_vars = adata.shape
        dense_gb = n_obs * n_vars * 4 / 1024**3
        path_taken = ("materialised dense scaled matrix + sklearn randomized_svd"
                      if dense_gb <= args.oom_pca_materialize_gb
                      else "implicit-centred chunked randomized SVD (clip not applied)")
        out = oom.chunked_pca(adata, layer="scaled", n_comps=50, chunk_size=cs, random_state=0,
                              materialize_threshold_gb=args.oom_pca_materialize_gb)
        return out, (f"chunked_pca (n_power_iters=4): {path_taken}; dense would be "
                     f"{dense_gb:.2f} GB vs threshold {args.oom_pca_materialize_gb} GB")

    X_pca, _components, ratio = rec.step("pca", pca)
    res["pca"] = pca_fingerprint(X_pca, ratio, adata.n_vars)
    res["pca"]["params"] = {"reported_ratio_definition": "S^2 / sum(S^2 over the k=60 computed)"}
    res["n_obs_out"], res["n_vars_out"] = map(int, adata.shape)
    if args.save_pca:
        np.save(args.save_pca, np.asarray(X_pca[:, :10], dtype=np.float32))
    for a in reversed(keep_alive):
        try:
            a.close()
        except Exception:
            pass
    if not sidecar_existed and os.path.exists(sidecar):
        os.remove(sidecar)
        res["note_sidecar"] = f"anndataoom created {sidecar} (BackedLayers); removed"
    return res


def child_main(args) -> int:
    out = open(args.progress, "w") if args.progress else None
    rec = Recorder(out)
    rec.emit({"event": "start", "pid": os.getpid(), "hwm_resettable": rec.hwm_resettable})
    t0 = time.perf_counter()
    try:
        fn = run_scanpy if args.peer == "scanpy" else run_anndataoom
        res = fn(args.file, rec, args)
    except BaseException as e:  # noqa: BLE001
        rec.emit({"event": "error", "error": f"{type(e).__name__}: {e}",
                  "traceback": traceback.format_exc()})
        if args.progress is None and args.json:
            _write_report(args, _assemble(args, _events_from_recorder(rec, None), None, None))
        raise
    total = time.perf_counter() - t0
    chain = sum(st["wall_s"] for st in rec.steps)
    rec.emit({"event": "result", "result": res, "chain_wall_s": round(chain, 3),
              "child_total_s": round(total, 3), "ru_maxrss_mb": round(ru_maxrss_mb(), 1)})
    if out is not None:
        out.close()
    elif args.json:
        events = _events_from_recorder(rec, {"result": res, "chain_wall_s": round(chain, 3),
                                             "child_total_s": round(total, 3),
                                             "ru_maxrss_mb": round(ru_maxrss_mb(), 1)})
        _write_report(args, _assemble(args, events, None, "ok"))
    return 0


def _events_from_recorder(rec: Recorder, result):
    ev = [{"event": "step", **s} for s in rec.steps]
    if result is not None:
        ev.append({"event": "result", **result})
    return ev


# --------------------------------------------------------------------------
# The parent: runs the child, enforces the limits, writes the report


def _tree_rss(proc) -> int:
    import psutil

    total = 0
    try:
        procs = [proc] + proc.children(recursive=True)
    except psutil.Error:
        return 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


def parent_main(args) -> int:
    import psutil

    fd, progress = tempfile.mkstemp(prefix="peers_chain_", suffix=".jsonl")
    os.close(fd)
    cmd = [sys.executable, os.path.abspath(__file__), args.file, "--peer", args.peer, "--child",
           "--progress", progress, "--oom-chunk-size", str(args.oom_chunk_size),
           "--oom-pca-materialize-gb", str(args.oom_pca_materialize_gb), "--oom-hvg", args.oom_hvg]
    if args.save_pca:
        cmd += ["--save-pca", args.save_pca]
    if not args.warmup:
        cmd += ["--no-warmup"]
    limit = args.max_rss_gb * 1024**3
    sidecar = args.file + ".layers.h5"  # anndataoom's BackedLayers file
    sidecar_existed = os.path.exists(sidecar)
    dropped = None
    if args.drop_caches:
        # as bench/foundation.js does: a cold page cache for the file (root only)
        r = subprocess.run(["sh", "-c", "sync; echo 3 > /proc/sys/vm/drop_caches"],
                           capture_output=True)
        dropped = r.returncode == 0
    load_start = os.getloadavg()
    t0 = time.perf_counter()
    child = subprocess.Popen(cmd, stdout=sys.stdout, stderr=subprocess.PIPE, text=True)
    proc = psutil.Process(child.pid)
    sampled_peak = 0
    status = None
    # drain stderr in a thread so a chatty child cannot block on a full pipe
    import threading

    err_tail: list[str] = []

    def drain():
        for line in child.stderr:
            err_tail.append(line)
            del err_tail[:-200]

    th = threading.Thread(target=drain, daemon=True)
    th.start()
    while True:
        rc = child.poll()
        if rc is not None:
            break
        r = _tree_rss(proc)
        sampled_peak = max(sampled_peak, r)
        if r > limit:
            status = "rss_limit"
        elif args.timeout_s and time.perf_counter() - t0 > args.timeout_s:
            status = "timeout"
        if status:
            for p in [proc] + proc.children(recursive=True):
                try:
                    p.send_signal(signal.SIGKILL)
                except psutil.Error:
                    pass
            child.wait()
            break
        time.sleep(args.poll_s)
    wall = time.perf_counter() - t0
    th.join(timeout=5)
    events = []
    with open(progress) as f:
        for line in f:
            line = line.strip()
            if line:
                try:
                    events.append(json.loads(line))
                except json.JSONDecodeError:
                    pass
    os.remove(progress)
    if not sidecar_existed and os.path.exists(sidecar):
        os.remove(sidecar)
    if status is None:
        if any(e["event"] == "result" for e in events):
            status = "ok"
        else:
            status = "error"
    extra = {"process_wall_s": round(wall, 3), "sampled_peak_rss_mb": round(sampled_peak / MIB, 1),
             "exit_code": child.returncode,
             # other work on the machine skews the timings: loadavg (1/5/15 min)
             # before the run and at its end, for the reader to judge
             "loadavg_start": [round(v, 2) for v in load_start],
             "loadavg_end": [round(v, 2) for v in os.getloadavg()],
             "page_cache": ("dropped before the run" if dropped else
                            "drop failed" if dropped is False else "as found (warm if read recently)")}
    if status == "error":
        extra["stderr_tail"] = "".join(err_tail[-40:])
    rep = _assemble(args, events, extra, status)
    _write_report(args, rep)
    _print_summary(rep)
    return 0 if status == "ok" else 1


def _assemble(args, events, extra, status) -> dict:
    steps = [{k: v for k, v in e.items() if k != "event"} for e in events if e["event"] == "step"]
    meta = {}
    for e in events:
        if e["event"] == "meta":
            meta.update(e)
    result = next((e for e in events if e["event"] == "result"), None)
    err = next((e for e in events if e["event"] == "error"), None)
    done = {s["step"] for s in steps}
    rep = {
        "tool": "bench/peers_chain.py",
        "peer": args.peer,
        "file": os.path.abspath(args.file),
        "file_bytes": os.path.getsize(args.file),
        "status": status or ("error" if err else "ok"),
        "limits": {"max_rss_gb": args.max_rss_gb, "timeout_s": args.timeout_s},
        "chain": "qc(mt) > filter_cells(200) > filter_genes(3) > normalize_total(1e4) > log1p"
                 " > hvg(seurat, 2000) > subset > scale(10) > pca(50)",
        "steps": steps,
        "steps_not_run": [s for s in STEPS if s not in done],
        "chain_wall_s": result.get("chain_wall_s") if result else round(sum(s["wall_s"] for s in steps), 3),
        "peak_rss_mb": max([s["step_peak_rss_mb"] for s in steps] or [0]),
        "meta": {k: v for k, v in meta.items() if k != "event"},
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "threads_env": {k: os.environ[k] for k in
                                    ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                                     "RAYON_NUM_THREADS", "NUMBA_NUM_THREADS") if k in os.environ}},
    }
    if extra:
        rep.update(extra)
        rep["peak_rss_mb"] = max(rep["peak_rss_mb"], extra.get("sampled_peak_rss_mb", 0))
    if result:
        rep["result"] = result["result"]
        rep["ru_maxrss_mb"] = result.get("ru_maxrss_mb")
        rep["child_total_s"] = result.get("child_total_s")
    if err:
        rep["error"] = err["error"]
        rep["traceback"] = err["traceback"]
    return rep


def _write_report(args, rep) -> None:
    if args.json:
        d = os.path.dirname(os.path.abspath(args.json))
        os.makedirs(d, exist_ok=True)
        with open(args.json, "w") as f:
            json.dump(rep, f, indent=1)
            f.write("\n")


def _print_summary(rep) -> None:
    print(f"{rep['peer']} on {os.path.basename(rep['file'])}: {rep['status']}, "
          f"chain {rep['chain_wall_s']} s, peak RSS {rep['peak_rss_mb']:.0f} MB")
    for s in rep["steps"]:
        print(f"  {s['step']:<16}{s['wall_s']:>9.2f} s{s.get('cpu_s', 0):>8.1f} cpu s"
              f"{s['step_peak_rss_mb']:>8.0f} MB"
              + (f"   {s['note']}" if s.get("note") else ""))
    r = rep.get("result")
    if r:
        print(f"  cells {r['n_obs_in']} -> {r['n_obs_filtered']}, genes {r['n_vars_in']} -> "
              f"{r['n_vars_filtered']}, hvg {r['hvg']['n_hvg']}, "
              f"pca explained var[:5] {[round(v, 3) for v in r['pca']['explained_variance_first5']]}")
    if rep.get("error"):
        print("  error:", rep["error"])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("file")
    ap.add_argument("--peer", choices=["scanpy", "anndataoom"], required=True)
    ap.add_argument("--json", help="write the report here")
    ap.add_argument("--max-rss-gb", type=float, default=20.0)
    ap.add_argument("--timeout-s", type=float, default=7200.0, help="0 = none")
    ap.add_argument("--poll-s", type=float, default=0.1)
    ap.add_argument("--save-pca", help="save the first 10 PCs (float32 .npy) for cross-checks")
    ap.add_argument("--oom-chunk-size", type=int, default=1000, help="anndataoom rows per chunk")
    ap.add_argument("--oom-pca-materialize-gb", type=float, default=16.0,
                    help="anndataoom chunked_pca materialize_threshold_gb (its default 16; "
                         "0 forces the out-of-core path)")
    ap.add_argument("--oom-hvg", choices=["seurat", "pearson"], default="seurat")
    ap.add_argument("--drop-caches", action="store_true",
                    help="drop the page cache before the run (root; affects the whole machine)")
    ap.add_argument("--no-warmup", dest="warmup", action="store_false",
                    help="scanpy: skip compiling its numba kernels on a tiny matrix first")
    ap.add_argument("--child", action="store_true", help="run the chain in this process")
    ap.add_argument("--progress", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child_main(args)
    return parent_main(args)


if __name__ == "__main__":
    sys.exit(main())
