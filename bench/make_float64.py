#!/usr/bin/env python
"""Copy a CSR .h5ad with X/data stored as float64 instead of float32.

Usage (main venv):  python bench/make_float64.py IN.h5ad OUT.h5ad

The same counts, indices and chunk size in elements, so a float32 file and
its copy compare the float64 path (log1p in float64, float64 output) with
the float32 one on the same data. X/data is converted in 16M-value slices,
never held whole.
"""

import shutil
import sys

import h5py
import numpy as np


def main() -> None:
    src, out = sys.argv[1], sys.argv[2]
    shutil.copyfile(src, out)
    with h5py.File(out, "r+") as f:
        old = f["X/data"]
        n = old.shape[0]
        chunks = old.chunks
        f.move("X/data", "X/data_f32")
        new = f["X"].create_dataset("data", shape=(n,), dtype=np.float64, chunks=chunks)
        step = 1 << 24
        for a in range(0, n, step):
            new[a : a + step] = f["X/data_f32"][a : a + step].astype(np.float64)
        del f["X/data_f32"]
    # The deleted float32 dataset leaves free space in the file: repack it.
    tmp = out + ".repack"
    with h5py.File(out, "r") as f, h5py.File(tmp, "w") as g:
        for k in f.attrs:
            g.attrs[k] = f.attrs[k]
        for k in f:
            f.copy(f[k], g, k)
    shutil.move(tmp, out)


if __name__ == "__main__":
    main()
