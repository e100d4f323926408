"""Kernel memory when a notebook cell that builds an explorer is re-run.

usage: python bench/widget_lifetime.py [--cells 1000000] [--runs 6]

Writes a file of N cells (obs "grp", obsm X_umap, a tiny X), starts the
anndata-oom kernel with jupyter_client (kernelspec installed into a
temporary prefix), and runs the cell

    await (async () => pl.explore(await read(F), { color: "grp" }))()

RUNS times, as JupyterLab runs one cell again and again (the same
`metadata.cellId`), then as a frontend that sends no cell id. After each
run a second cell forces a full GC and prints the kernel's heap, external
and ArrayBuffer bytes. With a cell id, the previous explorer's widget is
closed when its cell is re-run and its AnnData freed; without one it stays.
Prints one JSON line per mode.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tests", "kernel"))
from test_kernel import Kernel  # noqa: E402

from jupyter_client.manager import start_new_kernel  # noqa: E402

MEASURE = """(() => { require("v8").setFlagsFromString("--expose-gc"); const gc = require("vm").runInNewContext("gc"); gc(); gc();
const m = process.memoryUsage(); console.log(JSON.stringify({ heap: m.heapUsed, external: m.external, arrayBuffers: m.arrayBuffers, rss: m.rss })); })()"""


def make_file(path, n):
    import anndata as ad
    import numpy as np
    import pandas as pd
    import scipy.sparse as sp

    rng = np.random.default_rng(0)
    obs = pd.DataFrame({"grp": pd.Categorical(rng.choice([f"c{i}" for i in range(10)], n))}, index=[f"cell_{i}" for i in range(n)])
    a = ad.AnnData(sp.random(n, 10, density=0.05, format="csr", dtype=np.float32, random_state=rng), obs=obs)
    a.obsm["X_umap"] = rng.normal(size=(n, 2)).astype(np.float32)
    a.write_h5ad(path)


def run_mode(k, path, runs, with_cell_id):
    code = f"""import {{ pl as plB, read as readB }} from "anndata-oom";
await (async () => plB.explore(await readB({json.dumps(path)}), {{ color: "grp" }}))()"""
    mb = []
    for _ in range(runs):
        rep, outs = k.run_cell("bench-cell", code) if with_cell_id else k.run(code, timeout=300)
        assert rep["status"] == "ok", (rep, outs)
        rep, outs = k.run_cell("measure-cell", MEASURE) if with_cell_id else k.run(MEASURE)
        text = "".join(m["content"]["text"] for m in outs if m["msg_type"] == "stream" and m["content"]["name"] == "stdout")
        m = json.loads(text.strip().splitlines()[-1])
        mb.append(round((m["heap"] + m["external"]) / 2**20, 1))
    return mb


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cells", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=6)
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="aoom-widget-bench-")
    try:
        path = os.path.join(tmp, "cells.h5ad")
        make_file(path, args.cells)
        prefix = os.path.join(tmp, "prefix")
        subprocess.run(["node", os.path.join(REPO, "dist", "src", "kernel", "install.js"), "--python", sys.executable, "--prefix", prefix], check=True, stdout=subprocess.DEVNULL)
        os.environ["JUPYTER_PATH"] = os.path.join(prefix, "share", "jupyter")
        os.environ["JUPYTER_RUNTIME_DIR"] = os.path.join(tmp, "runtime")
        for with_cell_id in (True, False):
            km, kc = start_new_kernel(kernel_name="anndata-oom", cwd=tmp, startup_timeout=60)
            try:
                mb = run_mode(Kernel(km, kc), path, args.runs, with_cell_id)
            finally:
                kc.stop_channels()
                km.shutdown_kernel(now=True)
            mode = "cell id (JupyterLab)" if with_cell_id else "no cell id"
            print(json.dumps({"cells": args.cells, "mode": mode, "heap_plus_external_mb_after_each_run": mb}), flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
