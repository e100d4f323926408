#!/usr/bin/env python
"""The raw read floor of a CSR/CSC .h5ad matrix: read X/indptr whole, then
X/indices and X/data fully in blocks with h5py (read_direct into reused
buffers, results discarded). Prints one JSON line.

    python bench/raw_read.py FILE [--element X] [--block-entries 8388608] [--checksum]
    python bench/raw_read.py FILE --file-floor     # plain sequential read of the whole file

--block-entries defaults to the engine's block budget (64 MB of value + index
bytes = 8 Mi entries for float32 + int32). --checksum also sums the values in
float64 (not part of the floor; used once to check the engine's answer).
"""

import argparse
import json
import os
import resource
import time

import h5py
import numpy as np


def vm_hwm_kb() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return -1


def raw_read(path: str, element: str, block: int, checksum: bool) -> dict:
    t0 = time.perf_counter()
    with h5py.File(path, "r") as f:
        g = f[element]
        data, indices, indptr_ds = g["data"], g["indices"], g["indptr"]
        indptr = indptr_ds[:]
        n = data.shape[0]
        buf_d = np.empty(min(block, max(n, 1)), dtype=data.dtype)
        buf_i = np.empty(min(block, max(n, 1)), dtype=indices.dtype)
        total = 0.0
        for a in range(0, n, block):
            e = min(a + block, n)
            m = e - a
            indices.read_direct(buf_i, np.s_[a:e], np.s_[0:m])
            data.read_direct(buf_d, np.s_[a:e], np.s_[0:m])
            if checksum:
                total += float(buf_d[:m].sum(dtype=np.float64))
        nbytes = n * (data.dtype.itemsize + indices.dtype.itemsize) + indptr.nbytes
        chunks = list(data.chunks) if data.chunks else None
    wall = time.perf_counter() - t0
    out = {
        "kind": "raw",
        "wall_ms": wall * 1e3,
        "bytes": int(nbytes),
        "mb_per_s": nbytes / 1e6 / wall,
        "nnz": int(n),
        "n_major": int(indptr.size - 1),
        "chunks": chunks,
        "peak_rss_kb": vm_hwm_kb(),
        "cpu_s": sum(resource.getrusage(resource.RUSAGE_SELF)[:2]),
    }
    if checksum:
        out["total"] = total
    return out


def file_floor(path: str, block: int = 8 << 20) -> dict:
    t0 = time.perf_counter()
    n = 0
    buf = bytearray(block)
    with open(path, "rb", buffering=0) as f:
        while True:
            k = f.readinto(buf)
            if not k:
                break
            n += k
    wall = time.perf_counter() - t0
    return {"kind": "file", "wall_ms": wall * 1e3, "bytes": n, "mb_per_s": n / 1e6 / wall, "peak_rss_kb": vm_hwm_kb()}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("file")
    ap.add_argument("--element", default="X")
    ap.add_argument("--block-entries", type=int, default=(64 << 20) // 8)
    ap.add_argument("--checksum", action="store_true")
    ap.add_argument("--file-floor", action="store_true")
    a = ap.parse_args()
    if a.file_floor:
        out = file_floor(a.file)
    else:
        out = raw_read(a.file, a.element, a.block_entries, a.checksum)
    out["file"] = os.path.abspath(a.file)
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
