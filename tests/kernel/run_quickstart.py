"""Runs examples/quickstart.ipynb top to bottom under nbclient with our kernel.

usage: python run_quickstart.py REPO NODE [--save EXECUTED.ipynb]

Installs our kernelspec (built launcher under REPO/dist, run by NODE) into
a temporary prefix, as tests/kernel/test_kernel.py does, removes the
notebook's previous output file, executes the notebook in its own folder
(examples/) and checks what it produced: no error outputs, the cluster
count it printed (> 1), and examples/.data/quickstart_out.h5ad read back
with anndata (obsm X_umap, obs leiden). The kernel gets AOOM_PYTHON = this
Python, so a missing dataset is generated with it.

Prints one JSON line: {"ok", "stage", "detail", "seconds": {...}, "cells": [...]}.
Timeouts everywhere: CELL_TIMEOUT per cell (nbclient interrupts the cell),
RUN_TIMEOUT for the whole run (a watchdog kills the kernel, nbclient then
fails with a dead kernel), STARTUP_TIMEOUT for the kernel to start.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from datetime import datetime

REPO, NODE = sys.argv[1], sys.argv[2]
SAVE = sys.argv[sys.argv.index("--save") + 1] if "--save" in sys.argv else None
CELL_TIMEOUT = int(os.environ.get("AOOM_QUICKSTART_CELL_TIMEOUT", "300"))
RUN_TIMEOUT = int(os.environ.get("AOOM_QUICKSTART_RUN_TIMEOUT", "600"))
STARTUP_TIMEOUT = 60
NOTEBOOK = os.path.join(REPO, "examples", "quickstart.ipynb")
OUT = os.path.join(REPO, "examples", ".data", "quickstart_out.h5ad")


class Failure(Exception):
    def __init__(self, stage, detail):
        super().__init__(detail)
        self.stage, self.detail = stage, detail


def text_of(cell, name="stdout"):
    return "".join(o.get("text", "") for o in cell.outputs if o["output_type"] == "stream" and o["name"] == name)


def tagged(nb, tag):
    cells = [c for c in nb.cells if tag in c.metadata.get("tags", [])]
    if len(cells) != 1:
        raise Failure("notebook", f"expected one cell tagged {tag!r}, found {len(cells)}")
    return cells[0]


def cell_seconds(cell):
    ex = cell.metadata.get("execution", {})
    a, b = ex.get("iopub.execute_input"), ex.get("shell.execute_reply")
    if not (a and b):
        return None
    parse = lambda s: datetime.fromisoformat(s.replace("Z", "+00:00"))  # noqa: E731
    return round((parse(b) - parse(a)).total_seconds(), 3)


def run(result):
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    nb = nbformat.read(NOTEBOOK, as_version=4)
    spec = nb.metadata.get("kernelspec", {})
    if spec.get("name") != "anndata-oom" or spec.get("language") != "typescript":
        raise Failure("notebook", f"kernelspec is not ours: {spec}")
    stale = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and (c.outputs or c.execution_count)]
    if stale:
        raise Failure("notebook", f"committed with outputs in code cells {stale} (clear them)")
    if not os.path.exists(os.path.join(REPO, "native", "dist", "index.js")):
        raise Failure("setup", "native addon not built (native/dist/index.js missing): run npm run build")

    tmp = tempfile.mkdtemp(prefix="aoom-quickstart-")
    try:
        prefix = os.path.join(tmp, "prefix")
        t0 = time.monotonic()
        inst = subprocess.run(
            [NODE, os.path.join(REPO, "dist", "src", "kernel", "install.js"), "--python", sys.executable, "--prefix", prefix],
            capture_output=True, text=True, timeout=120,
        )
        if inst.returncode != 0:
            raise Failure("install", f"kernelspec install failed ({inst.returncode}): {inst.stdout}\n{inst.stderr}")
        os.environ["JUPYTER_PATH"] = os.path.join(prefix, "share", "jupyter")
        os.environ["JUPYTER_RUNTIME_DIR"] = os.path.join(tmp, "runtime")
        os.environ["AOOM_PYTHON"] = sys.executable  # the notebook generates its dataset with this Python
        if os.path.exists(OUT):
            os.remove(OUT)
        result["dataset_existed"] = os.path.exists(os.path.join(REPO, "examples", ".data", "quickstart_5k.h5ad"))

        client = NotebookClient(
            nb, timeout=CELL_TIMEOUT, startup_timeout=STARTUP_TIMEOUT, kernel_name="anndata-oom",
            resources={"metadata": {"path": os.path.dirname(NOTEBOOK)}}, record_timing=True,
        )
        timed_out = threading.Event()

        def watchdog():
            if done.wait(RUN_TIMEOUT):
                return
            timed_out.set()
            pid = getattr(getattr(client.km, "provisioner", None), "pid", None)
            if pid:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass

        done = threading.Event()
        threading.Thread(target=watchdog, daemon=True).start()
        t1 = time.monotonic()
        try:
            client.execute()
        except CellTimeoutError as e:
            raise Failure("execute", f"a cell ran over {CELL_TIMEOUT} s: {e}") from None
        except (CellExecutionError, DeadKernelError, RuntimeError, TimeoutError) as e:
            if timed_out.is_set():
                raise Failure("execute", f"the whole run took over {RUN_TIMEOUT} s (kernel killed): {e}") from None
            stage = "kernel" if not any(c.get("outputs") for c in nb.cells if c.cell_type == "code") else "execute"
            raise Failure(stage, f"{type(e).__name__}: {e}") from None
        finally:
            done.set()
            result["seconds"] = {"install": round(t1 - t0, 2), "notebook": round(time.monotonic() - t1, 2)}
            result["cells"] = [
                {"index": i, "seconds": cell_seconds(c), "first_line": c.source.splitlines()[0] if c.source else ""}
                for i, c in enumerate(nb.cells) if c.cell_type == "code"
            ]
            if SAVE:
                nbformat.write(nb, SAVE)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    # -- what the notebook produced ------------------------------------------
    errors = [(i, o) for i, c in enumerate(nb.cells) if c.cell_type == "code" for o in c.outputs if o["output_type"] == "error"]
    if errors:
        i, o = errors[0]
        raise Failure("outputs", f"cell {i}: error output {o['ename']}: {o['evalue']}")
    unrun = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and not c.execution_count]
    if unrun:
        raise Failure("outputs", f"code cells {unrun} did not run")
    # the object as the cell's value: an execute_result once it has a mime bundle, else tslab's stdout text
    cell = tagged(nb, "open")
    shown = text_of(cell) + "".join(o["data"].get("text/plain", "") for o in cell.outputs if o["output_type"] == "execute_result")
    if "n_obs × n_vars = 5,000 × 2,000" not in shown:
        raise Failure("outputs", f"the open cell does not show the AnnDataOOM: {cell.outputs}")
    if "mean counts per cell" not in text_of(tagged(nb, "pass")):
        raise Failure("outputs", f"the pass cell printed: {text_of(tagged(nb, 'pass'))!r}")
    lines = text_of(tagged(nb, "clusters")).splitlines()
    if not lines or not lines[0].startswith("clusters: "):
        raise Failure("outputs", f"the clusters cell printed: {lines}")
    n_clusters = int(lines[0].split(": ")[1])
    result["n_clusters"] = n_clusters
    if n_clusters <= 1 or len(lines) != n_clusters + 1:
        raise Failure("outputs", f"cluster count {n_clusters}: {lines}")
    if "wrote examples/.data/quickstart_out.h5ad" not in text_of(tagged(nb, "write")):
        raise Failure("outputs", f"the write cell printed: {text_of(tagged(nb, 'write'))!r}")
    if not os.path.exists(OUT):
        raise Failure("file", f"{OUT} was not written")

    import anndata

    a = anndata.read_h5ad(OUT)
    if "X_umap" not in a.obsm or a.obsm["X_umap"].shape != (a.n_obs, 2):
        raise Failure("file", f"obsm X_umap missing or misshapen: {list(a.obsm)}")
    if "leiden" not in a.obs or a.obs["leiden"].nunique() != n_clusters:
        raise Failure("file", f"obs leiden missing or not {n_clusters} clusters: {list(a.obs.columns)}")
    result["written"] = {"shape": list(a.shape), "obsm": sorted(a.obsm), "obsp": sorted(a.obsp), "uns": sorted(a.uns)}


def main():
    result = {"ok": False, "stage": "", "detail": ""}
    terminated = []

    def stop(*_):
        terminated.append(True)
        raise SystemExit(1)

    signal.signal(signal.SIGTERM, stop)  # the caller's timeout: nbclient's cleanup shuts the kernel down
    try:
        run(result)
        result["ok"] = True
    except Failure as f:
        result["stage"], result["detail"] = f.stage, f.detail[:6000]
    except BaseException as e:  # noqa: BLE001 - report every failure, also SIGTERM
        why = "terminated by SIGTERM (the caller's timeout); " if terminated else ""
        result["stage"], result["detail"] = "crash", f"{why}{type(e).__name__}: {e}\n{traceback.format_exc()}"[:6000]
    print(json.dumps(result), flush=True)
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
