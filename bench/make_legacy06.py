#!/usr/bin/env python
"""A synthetic file in anndata 0.5/0.6's layout (record-array obs, var and
obsm, h5sparse X, categories in uns/<column>_categories), for
bench/legacy-open.ts. 20 stored values per cell keep X small: the benchmark
is about the record arrays that are converted at open.

    python bench/make_legacy06.py OUT.h5ad [N_CELLS]   # default 1,000,000
"""
import sys

import h5py
import numpy as np

n, m = (int(sys.argv[2]) if len(sys.argv) > 2 else 1_000_000), 2000
rng = np.random.default_rng(0)
with h5py.File(sys.argv[1], "w") as f:
    nnz_row = 20
    indptr = np.arange(0, (n + 1) * nnz_row, nnz_row, dtype=np.int64)
    g = f.create_group("X"); g.attrs["h5sparse_format"] = "csr"; g.attrs["h5sparse_shape"] = (n, m)
    g["indptr"] = indptr
    g.create_dataset("indices", data=np.tile(np.arange(0, m, m // nnz_row, dtype=np.int32), n), chunks=True)
    g.create_dataset("data", data=np.ones(n * nnz_row, np.float32), chunks=True)
    names = np.array([f"cell{i}".encode() for i in range(n)])
    obs = np.zeros(n, dtype=[("index", "S11"), ("louvain", "i1"), ("n_genes", "i8"), ("n_counts", "f4"), ("percent_mito", "f4"), ("phase", "i1")])
    obs["index"] = names; obs["louvain"] = rng.integers(0, 12, n); obs["n_genes"] = rng.integers(200, 3000, n)
    obs["n_counts"] = rng.random(n); obs["percent_mito"] = rng.random(n); obs["phase"] = rng.integers(0, 3, n)
    f["obs"] = obs
    var = np.zeros(m, dtype=[("index", "S8"), ("means", "f4")]); var["index"] = [f"g{j}".encode() for j in range(m)]
    f["var"] = var
    obsm = np.zeros(n, dtype=[("X_pca", "f4", (50,)), ("X_umap", "f8", (2,))])
    obsm["X_pca"] = rng.random((n, 50), dtype=np.float32); obsm["X_umap"] = rng.random((n, 2))
    f["obsm"] = obsm
    f["uns/louvain_categories"] = np.array([str(i).encode() for i in range(12)])
    f["uns/phase_categories"] = np.array([b"G1", b"S", b"G2M"])
