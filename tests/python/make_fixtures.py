#!/usr/bin/env python
"""Write the .h5ad conformance fixtures and their JSON expectations.

Usage (main venv, anndata 0.12):

    python make_fixtures.py OUTDIR [--skip-legacy] [--self-check]

For every fixture NAME it writes OUTDIR/NAME.h5ad and OUTDIR/NAME.expected.json,
and finally OUTDIR/manifest.json = [{"name", "file", "writer", "features"}].

Writers:
  * anndata 0.12 (this interpreter), sometimes followed by an h5py pass that
    rewrites datasets with other storage options (contiguous / chunked /
    blosc) while keeping their data and attributes;
  * anndata 0.9.2: this same script re-run by the legacy venv's python with
    --legacy-only (env LEGACY_PYTHON overrides the interpreter path);
  * h5py by hand, reproducing the anndata 0.7.x layout (see write_legacy07);
  * old anndata releases: the files anndata's sdist keeps for its own
    backwards-compatibility tests (see run_archives), among them
    pbmc68k_reduced in anndata 0.5/0.6's record-array layout.

Expectations are computed from the in-memory objects that were written (never
by reading the file back); expectations.py documents the JSON format.
--self-check additionally reads every file back with anndata 0.12 and reports
where that disagrees with the expectation (a development aid only).

Everything is seeded, so the JSON output is byte-for-byte reproducible (the
.h5ad files carry HDF5 timestamps, so only their content is reproducible).
"""

import argparse
import inspect
import json
import os
import subprocess
import sys
import warnings
from importlib.metadata import version

import h5py
import numpy as np
import pandas as pd
import scipy.sparse as sp

import anndata as ad

sys.dont_write_bytecode = True  # keep tests/python free of __pycache__
from expectations import expect_adata  # noqa: E402  (sibling module)

warnings.filterwarnings("ignore")  # anndata's FutureWarning / OldFormatWarning noise

AD_VERSION = version("anndata")
AD_MAJOR_MINOR = tuple(int(p) for p in AD_VERSION.split(".")[:2])
WRITER = f"anndata {AD_VERSION}"
LEGACY07_WRITER = "h5py (anndata 0.7 layout)"
DEFAULT_LEGACY_PYTHON = os.path.expanduser("~/.cache/anndata-oom/venv-legacy/bin/python")

if AD_MAJOR_MINOR >= (0, 11):
    # Needed to write pd.StringDtype columns / indexes as nullable-string-array.
    ad.settings.allow_write_nullable_strings = True


# ==========================================================================
# small data helpers
# ==========================================================================

def quantized(rng, shape, dtype):
    """Random non-zero values that print short in JSON (multiples of 1/4 for
    floats, small ints otherwise)."""
    dtype = np.dtype(dtype)
    ints = rng.integers(1, 40, size=shape)
    if dtype.kind == "f":
        return (ints / 4).astype(dtype)
    return ints.astype(dtype)


def random_dense(rng, n, m, dtype, density=1.0):
    vals = quantized(rng, (n, m), dtype)
    if density < 1.0:
        vals[rng.random((n, m)) >= density] = 0
    return vals


def random_sparse(rng, n, m, dtype, fmt="csr", density=0.3, index_dtype=np.int32):
    """scipy sparse matrix with the given format and index/indptr dtype."""
    mat = sp.csr_matrix(random_dense(rng, n, m, dtype, density)) if fmt == "csr" \
        else sp.csc_matrix(random_dense(rng, n, m, dtype, density))
    # scipy picks the index dtype itself; force the one we want to exercise.
    mat.indices = mat.indices.astype(index_dtype)
    mat.indptr = mat.indptr.astype(index_dtype)
    return mat


def simple_obs(rng, n, prefix="cell"):
    """A small obs frame: one categorical and one float column."""
    return pd.DataFrame(
        {
            "group": pd.Categorical.from_codes(rng.integers(0, 3, n), ["A", "B", "C"]),
            "score": rng.integers(0, 100, n) / 8.0,
        },
        index=[f"{prefix}_{i}" for i in range(n)],
    )


def simple_var(rng, m, prefix="gene"):
    return pd.DataFrame(
        {"highly_variable": rng.random(m) < 0.5},
        index=[f"{prefix}_{j}" for j in range(m)],
    )


def rewrite_dataset(f, path, **create_kwargs):
    """Recreate dataset `path` with new storage options (chunks, filters, or
    contiguous when no kwargs), keeping its data, dtype and attributes."""
    old = f[path]
    data, dtype = old[()], old.dtype
    attrs = {k: old.attrs[k] for k in old.attrs.keys()}
    del f[path]
    new = f.create_dataset(path, data=data, dtype=dtype, **create_kwargs)
    for k, v in attrs.items():
        new.attrs[k] = v


def rewrite_sparse(f, group, **create_kwargs):
    for part in ("data", "indices", "indptr"):
        rewrite_dataset(f, f"{group}/{part}", **create_kwargs)


# ==========================================================================
# fixture writing
# ==========================================================================

def write_json(path, obj, compact=True):
    with open(path, "w", encoding="utf-8") as fh:
        if compact:
            json.dump(obj, fh, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        else:
            json.dump(obj, fh, ensure_ascii=False, allow_nan=False, indent=2)
        fh.write("\n")


def finish(outdir, name, adata, writer, features):
    """Write NAME.expected.json for an in-memory object; return manifest row."""
    file = f"{name}.h5ad"
    exp = expect_adata(adata, file=file, writer=writer, features=features)
    write_json(os.path.join(outdir, f"{name}.expected.json"), exp)
    return {"name": name, "file": file, "writer": writer, "features": list(features)}


def write_with_anndata(outdir, name, adata, features, post=None, **write_kwargs):
    """anndata write (+ optional h5py post-processing), then expectations
    from the in-memory object *after* writing (0.9 may mutate it)."""
    path = os.path.join(outdir, f"{name}.h5ad")
    if "convert_strings_to_categoricals" in inspect.signature(ad.AnnData.write_h5ad).parameters:
        write_kwargs.setdefault("convert_strings_to_categoricals", False)
    adata.write_h5ad(path, **write_kwargs)
    if post is not None:
        with h5py.File(path, "r+") as f:
            post(f)
    return finish(outdir, name, adata, WRITER, features)


# ==========================================================================
# anndata 0.12 fixtures
# ==========================================================================

UNICODE_CATS = ["T-Zelle", "β细胞", "🦠 microbe", "NK (unused)"]


def fx_full_csr(rng):
    """Kitchen sink: every dataframe column kind, unicode everywhere, all
    AnnData slots, raw with a different var set, uns with every value kind."""
    n, m = 12, 8
    obs_names = pd.Index(
        [["Zellé_β_", "细胞_", "🧬cell_"][i % 3] + str(i) for i in range(n)],
        dtype="string",  # -> written as nullable-string-array
    )
    obs = pd.DataFrame(
        {
            "cell_type": pd.Categorical.from_codes(
                [0, 1, 2, -1, 0, 1, 2, 0, -1, 1, 2, 0], UNICODE_CATS),
            "stage": pd.Categorical.from_codes(
                [0, 1, 2, 2, -1, 0, 1, 2, 0, 1, -1, 2], ["early", "mid", "late"], ordered=True),
            "barcode": np.array([f"AAAC{i:02d}-1" for i in range(n)], dtype=object),
            "n_genes": rng.integers(100, 5000, n).astype(np.int64),
            "n_counts_i32": rng.integers(1000, 90000, n).astype(np.int32),
            "score": np.where(np.arange(n) % 5 == 1, np.nan, rng.integers(0, 64, n) / 16),
            "frac": (rng.integers(0, 8, n) / 8).astype(np.float32),
            "is_doublet": rng.random(n) < 0.3,
            "batch_size": pd.array([5, None, 7, 8, None, 1, 2, 3, 4, 5, 6, -7], dtype="Int64"),
            "qc_pass": pd.array([True, False, None] * 4, dtype="boolean"),
            "note": pd.array(["ok", None, "ünïcödé", "🙂", None, "x", "y", "z", "a", "b", "c", "d"],
                             dtype="string"),
            "Zellé_β": rng.integers(0, 10, n) * 0.5,
            "细胞": np.array([f"名{i}" for i in range(n)], dtype=object),
            "🧪": rng.integers(0, 60000, n).astype(np.uint16),
        },
        index=obs_names,
    )
    var_names = ["GAPDH", "ACTB", "CD3E", "MS4A1", "NKG7", "ß-Globin", "线粒体-ND1", "🧫Gene"]
    var = pd.DataFrame(
        {
            "highly_variable": [True, False, True, True, False, False, True, False],
            "means": [0.5, np.nan, 1.25, 2.0, np.inf, 0.0, -np.inf, 3.5],
            "chrom": pd.Categorical.from_codes([0, 1, 1, 2, 3, -1, 0, 2], [1, 2, 7, 22]),
            "gene_name_ß": np.array([v.lower() for v in var_names], dtype=object),
            "n_cells": pd.array([1, 2, None, 4, 5, 6, None, 8], dtype="Int32"),
        },
        index=pd.Index(var_names, name="gene_symbol"),
    )
    adata = ad.AnnData(X=random_sparse(rng, n, m, np.float32, "csr", 0.4), obs=obs, var=var)

    # raw: X's genes plus two more, in a different order, float64 CSR
    raw_names = var_names[:2] + ["MT-CO1"] + var_names[2:7] + ["RPL13"] + var_names[7:]
    raw_var = pd.DataFrame({"in_x": [v in var_names for v in raw_names]}, index=raw_names)
    adata.raw = ad.AnnData(
        X=random_sparse(rng, n, len(raw_names), np.float64, "csr", 0.5),
        obs=pd.DataFrame(index=obs_names), var=raw_var)

    adata.obsm["X_pca"] = random_dense(rng, n, 3, np.float32)
    adata.obsm["X_sparse"] = random_sparse(rng, n, 5, np.float64, "csr", 0.3)
    adata.obsm["meta_df"] = pd.DataFrame(
        {
            "a": np.arange(n, dtype=np.int64),
            "b": pd.Categorical.from_codes(np.arange(n) % 2, ["left", "right"]),
            "c": rng.integers(0, 9, n) / 2,
        },
        index=obs_names,
    )
    adata.varm["PCs"] = random_dense(rng, m, 3, np.float64)
    conn = random_sparse(rng, n, n, np.float32, "csr", 0.2)
    adata.obsp["connectivities"] = (conn + conn.T).tocsr()
    adata.obsp["distances"] = random_sparse(rng, n, n, np.float64, "csc", 0.2)
    adata.varp["corr"] = random_dense(rng, m, m, np.float64)
    adata.layers["counts"] = random_dense(rng, n, m, np.int32, 0.5)
    adata.layers["spliced"] = random_sparse(rng, n, m, np.float32, "csr", 0.3)
    adata.layers["small_i16"] = (random_dense(rng, n, m, np.int16) - 20).astype(np.int16)

    adata.uns.update({
        "title": "unicode ✓ 细胞 🧬",
        "n_pcs": 42,
        "pi": 3.14159,
        "flag": True,
        "flag_off": False,
        "nothing": None,  # anndata >= 0.12 writes a "null" dataset
        "vec_f64": np.array([1.5, np.nan, np.inf, -np.inf, 0.0]),
        "vec_i32": np.arange(5, dtype=np.int32),
        "mat_f32": random_dense(rng, 2, 3, np.float32),
        "bools": np.array([True, False, True]),
        "names": np.array(["α", "β", "细胞", "🧬"], dtype=object),
        "cell_type_colors": np.array(["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728"], dtype=object),
        "empty": {},
        "nested": {
            "level": 1,
            "deeper": {"x": 2.5, "s": "deep", "arr": np.array([[1, 2], [3, 4]], dtype=np.int64),
                       "none_too": None},
        },
        "table": pd.DataFrame(
            {"k": np.array([1, 2, 3], dtype=np.int64), "name": np.array(["u", "v", "w"], dtype=object)},
            index=["r0", "r1", "r2"]),
    })
    return adata, [
        "csr", "float32", "indices-int32", "chunked", "nullable-string-index", "unicode",
        "categorical", "categorical-ordered", "categorical-missing", "categorical-unused",
        "categorical-int-categories", "string-array", "numeric", "int32", "uint16", "nan", "inf",
        "bool", "nullable-integer", "nullable-boolean", "nullable-string-array", "index-name",
        "obsm", "obsm-sparse", "obsm-dataframe", "varm", "obsp", "obsp-csc", "varp",
        "layers", "layers-sparse", "int16", "raw", "uns", "uns-null", "uns-dataframe",
        "uns-nested", "uns-empty-dict",
    ]


def fx_csc_f64_idx64(rng):
    n, m = 10, 7
    X = random_sparse(rng, n, m, np.float64, "csc", 0.35, index_dtype=np.int64)
    X.data[::4] = 0.0  # explicit stored zeros
    return ad.AnnData(X=X, obs=simple_obs(rng, n), var=simple_var(rng, m)), \
        ["csc", "float64", "indices-int64", "explicit-zeros", "chunked"]


def fx_csr_unsorted_zeros(rng):
    """Hand-built CSR: column indices unsorted within rows, explicit zeros,
    an empty first row and an empty last row."""
    n, m = 9, 6
    indptr = np.array([0, 0, 3, 5, 5, 8, 9, 12, 14, 14], dtype=np.int32)
    indices = np.array([4, 0, 2, 5, 1, 3, 0, 5, 2, 5, 1, 0, 4, 2], dtype=np.int32)
    data = np.array([1.5, 0.0, 2.0, 3.25, 0.0, 4.0, 5.5, 6.0, 0.0, 7.0, 8.5, 9.0, 0.0, 10.0],
                    dtype=np.float32)
    X = sp.csr_matrix((data, indices, indptr), shape=(n, m))
    assert not X.has_sorted_indices and X.nnz == len(data)
    return ad.AnnData(X=X, obs=simple_obs(rng, n), var=simple_var(rng, m)), \
        ["csr", "float32", "indices-int32", "unsorted-indices", "explicit-zeros", "empty-rows", "chunked"]


def fx_csr_int32_contiguous(rng):
    n, m = 8, 6
    adata = ad.AnnData(X=random_sparse(rng, n, m, np.int32, "csr", 0.4),
                       obs=simple_obs(rng, n), var=simple_var(rng, m))
    # anndata writes sparse parts resizable (chunked); make them contiguous.
    return adata, ["csr", "int32", "indices-int32", "contiguous"], lambda f: rewrite_sparse(f, "X")


def fx_csr_int64_idx64(rng):
    n, m = 7, 9
    return ad.AnnData(X=random_sparse(rng, n, m, np.int64, "csr", 0.3, index_dtype=np.int64),
                      obs=simple_obs(rng, n), var=simple_var(rng, m)), \
        ["csr", "int64", "indices-int64", "chunked"]


def fx_dense_f64_nan(rng):
    n, m = 6, 5
    X = random_dense(rng, n, m, np.float64)
    X[0, 1], X[2, 3], X[4, 0], X[5, 4] = np.nan, np.inf, -np.inf, -0.5
    return ad.AnnData(X=X, obs=simple_obs(rng, n), var=simple_var(rng, m)), \
        ["dense", "float64", "nan", "inf", "contiguous"]


def fx_dense_f32_chunked(rng):
    n, m = 11, 7
    adata = ad.AnnData(X=random_dense(rng, n, m, np.float32, 0.6),
                       obs=simple_obs(rng, n), var=simple_var(rng, m))
    # chunk shape deliberately not dividing the shape: partial edge chunks
    return adata, ["dense", "float32", "chunked"], lambda f: rewrite_dataset(f, "X", chunks=(4, 3))


def fx_dense_int64(rng):
    n, m = 5, 4
    X = random_dense(rng, n, m, np.int64) - 20
    X[0, 0] = 2**40  # beyond int32
    return ad.AnnData(X=X, obs=simple_obs(rng, n), var=simple_var(rng, m)), \
        ["dense", "int64", "contiguous"]


def fx_dense_uint8(rng):
    n, m = 6, 4
    X = random_dense(rng, n, m, np.uint8)
    X[1, 1] = 255
    adata = ad.AnnData(X=X, obs=simple_obs(rng, n), var=simple_var(rng, m))
    adata.layers["i16"] = (random_dense(rng, n, m, np.int16) * -100).astype(np.int16)
    return adata, ["dense", "uint8", "int16", "layers", "contiguous"]


def fx_csr_gzip(rng):
    n, m = 10, 8
    adata = ad.AnnData(X=random_sparse(rng, n, m, np.float32, "csr", 0.3),
                       obs=simple_obs(rng, n), var=simple_var(rng, m))
    adata.obsm["X_pca"] = random_dense(rng, n, 2, np.float32)
    # anndata applies compression to every non-scalar dataset, obs/var included
    return adata, ["csr", "float32", "gzip", "chunked", "obsm"], None, \
        dict(compression="gzip", compression_opts=4)


def fx_dense_lzf(rng):
    n, m = 9, 6
    adata = ad.AnnData(X=random_dense(rng, n, m, np.float32, 0.5),
                       obs=simple_obs(rng, n), var=simple_var(rng, m))
    return adata, ["dense", "float32", "lzf", "chunked"], None, dict(compression="lzf")


def fx_csr_blosc_zstd(rng):
    import hdf5plugin
    n, m = 10, 8
    adata = ad.AnnData(X=random_sparse(rng, n, m, np.float32, "csr", 0.35),
                       obs=simple_obs(rng, n), var=simple_var(rng, m))
    blosc = hdf5plugin.Blosc(cname="zstd", clevel=5, shuffle=hdf5plugin.Blosc.SHUFFLE)
    return adata, ["csr", "float32", "blosc-zstd", "chunked"], \
        lambda f: rewrite_sparse(f, "X", chunks=True, **blosc)


def fx_dense_blosc_lz4(rng):
    import hdf5plugin
    n, m = 9, 7
    adata = ad.AnnData(X=random_dense(rng, n, m, np.float64, 0.5),
                       obs=simple_obs(rng, n), var=simple_var(rng, m))
    blosc = hdf5plugin.Blosc(cname="lz4", clevel=5, shuffle=hdf5plugin.Blosc.BITSHUFFLE)
    return adata, ["dense", "float64", "blosc-lz4", "chunked"], \
        lambda f: rewrite_dataset(f, "X", chunks=(4, 4), **blosc)


def fx_csr_large_gzip(rng):
    """The one bigger matrix: 200 x 150, ~5% dense, data/indices split over
    many small gzip(+shuffle) chunks so reads cross chunk boundaries."""
    n, m = 200, 150
    adata = ad.AnnData(X=random_sparse(rng, n, m, np.float32, "csr", 0.05),
                       obs=simple_obs(rng, n), var=simple_var(rng, m))

    def post(f):
        rewrite_dataset(f, "X/data", chunks=(128,), compression="gzip", compression_opts=6,
                        shuffle=True)
        rewrite_dataset(f, "X/indices", chunks=(128,), compression="gzip")
        rewrite_dataset(f, "X/indptr", chunks=(64,), compression="gzip")
    return adata, ["csr", "float32", "indices-int32", "gzip", "shuffle", "chunked", "large"], post


def fx_zero_obs(rng):
    m = 5
    obs = pd.DataFrame(
        {
            "group": pd.Categorical([], categories=["A", "B"]),
            "score": np.array([], dtype=np.float64),
            "flag": np.array([], dtype=bool),
        },
        index=pd.Index([], dtype=object),
    )
    return ad.AnnData(X=np.zeros((0, m), dtype=np.float32), obs=obs, var=simple_var(rng, m)), \
        ["dense", "float32", "zero-obs", "contiguous"]


def fx_zero_var(rng):
    n = 6
    var = pd.DataFrame({"gene_type": pd.Categorical([], categories=["coding"]),
                        "means": np.array([], dtype=np.float32)},
                       index=pd.Index([], dtype=object))
    X = sp.csr_matrix((n, 0), dtype=np.float32)
    return ad.AnnData(X=X, obs=simple_obs(rng, n), var=var), \
        ["csr", "float32", "zero-var", "chunked"]


MAIN_FIXTURES = {
    "full_csr": fx_full_csr,
    "csc_f64_idx64": fx_csc_f64_idx64,
    "csr_unsorted_zeros": fx_csr_unsorted_zeros,
    "csr_int32_contiguous": fx_csr_int32_contiguous,
    "csr_int64_idx64": fx_csr_int64_idx64,
    "dense_f64_nan": fx_dense_f64_nan,
    "dense_f32_chunked": fx_dense_f32_chunked,
    "dense_int64": fx_dense_int64,
    "dense_uint8": fx_dense_uint8,
    "csr_gzip": fx_csr_gzip,
    "dense_lzf": fx_dense_lzf,
    "csr_blosc_zstd": fx_csr_blosc_zstd,
    "dense_blosc_lz4": fx_dense_blosc_lz4,
    "csr_large_gzip": fx_csr_large_gzip,
    "zero_obs": fx_zero_obs,
    "zero_var": fx_zero_var,
}


# ==========================================================================
# anndata 0.9 fixtures (run in the legacy venv via --legacy-only)
# ==========================================================================

def fx_ad09_csr(rng):
    n, m = 12, 6
    obs = pd.DataFrame(
        {
            "cell_type": pd.Categorical.from_codes([0, 1, 2, -1] * 3, UNICODE_CATS[:3]),
            "stage": pd.Categorical.from_codes([2, 1, 0, -1, 0, 1] * 2, ["lo", "mid", "hi"],
                                               ordered=True),
            # unique strings, so 0.9's strings_to_categoricals leaves it alone
            "barcode": np.array([f"BC{i:03d}" for i in range(n)], dtype=object),
            "n_genes": rng.integers(0, 1000, n).astype(np.int64),
            "score": np.where(np.arange(n) % 4 == 0, np.nan, rng.integers(0, 40, n) / 4),
            "is_doublet": rng.random(n) < 0.5,
            "batch_size": pd.array([1, None, 3] * 4, dtype="Int64"),
            "qc_pass": pd.array([None, True, False] * 4, dtype="boolean"),
        },
        index=[f"Zellé_{i}" for i in range(n)],
    )
    var = pd.DataFrame({"hv": [True, False] * 3, "dispersion": np.arange(m, dtype=np.float32) / 2},
                       index=pd.Index([f"g{j}" for j in range(m)], name="gene"))
    adata = ad.AnnData(X=random_sparse(rng, n, m, np.float32, "csr", 0.4), obs=obs, var=var)
    raw_names = [f"g{j}" for j in range(m)] + ["extra_0", "extra_1", "extra_2"]
    adata.raw = ad.AnnData(X=random_sparse(rng, n, len(raw_names), np.float32, "csr", 0.4),
                           obs=pd.DataFrame(index=obs.index),
                           var=pd.DataFrame(index=raw_names))
    adata.obsm["X_pca"] = random_dense(rng, n, 2, np.float32)
    adata.layers["counts"] = random_sparse(rng, n, m, np.int64, "csr", 0.4)
    adata.uns.update({
        "title": "anndata 0.9 ✓",
        "n": 7,
        "x": 0.25,
        "ok": True,
        "vec": np.array([1.0, 2.0, np.nan]),
        "names": np.array(["a", "b", "细胞"], dtype=object),
        "params": {"k": 15, "metric": "euclidean", "deep": {"arr": np.arange(4, dtype=np.int32)}},
        "table": pd.DataFrame({"v": np.array([0.5, 1.5])}, index=["p", "q"]),
    })
    return adata, ["anndata-0.9", "csr", "float32", "indices-int32", "chunked", "categorical",
                   "categorical-ordered", "categorical-missing", "string-array", "numeric", "nan",
                   "bool", "nullable-integer", "nullable-boolean", "unicode", "index-name", "raw",
                   "obsm", "layers-sparse", "int64", "uns", "uns-nested", "uns-dataframe"]


def fx_ad09_dense(rng):
    n, m = 8, 5
    X = random_dense(rng, n, m, np.float64)
    X[3, 2] = np.nan
    adata = ad.AnnData(X=X, obs=simple_obs(rng, n), var=simple_var(rng, m))
    adata.obsm["X_sparse"] = random_sparse(rng, n, 4, np.float32, "csc", 0.4)
    adata.varm["PCs"] = random_dense(rng, m, 2, np.float64)
    adata.obsp["distances"] = random_sparse(rng, n, n, np.float64, "csr", 0.3)
    adata.varp["corr"] = random_dense(rng, m, m, np.float32)
    adata.layers["dense_i16"] = random_dense(rng, n, m, np.int16)
    adata.uns["group_colors"] = np.array(["#ff0000", "#00ff00", "#0000ff"], dtype=object)
    return adata, ["anndata-0.9", "dense", "float64", "nan", "contiguous", "obsm-sparse",
                   "obsm-csc", "varm", "obsp", "varp", "int16", "layers", "uns"]


LEGACY09_FIXTURES = {
    "ad09_csr": fx_ad09_csr,
    "ad09_dense": fx_ad09_dense,
}


# ==========================================================================
# hand-written anndata 0.7 layout (h5py only)
# ==========================================================================
#
# Reproduces what anndata 0.7.8 (anndata/_io/h5ad.py, write_h5ad and friends)
# wrote; the same layout was used from 0.7.0 through 0.7.8:
#   * X dense: a plain dataset with no attributes.
#   * X sparse: 0.7 wrote a group with encoding-type "csr_matrix"/0.1.0 and
#     attr "shape"; the older h5sparse convention (anndata <= 0.6, still read
#     by 0.7 and 0.12) is a group with attrs h5sparse_format="csr" and
#     h5sparse_shape=(n, m). legacy07_h5sparse uses the h5sparse one.
#   * obs / var: group with attrs encoding-type="dataframe",
#     encoding-version="0.1.0", column-order (list of str; an empty list
#     becomes an empty float64 array, as h5py stores it) and _index (name of
#     the index dataset: the index name, or "_index").
#     Columns are plain datasets (vlen utf-8 strings for object columns).
#     A categorical column is its integer codes dataset (-1 = missing) with
#     attr "categories" = an HDF5 object reference to
#     <df>/__categories/<col>, a string dataset carrying attr "ordered".
#   * raw: group with encoding-type="raw", encoding-version="0.1.0",
#     shape attr, holding X, var (dataframe as above) and an empty varm group.
#   * obsm / varm / obsp / varp / layers / uns (and nested dicts): plain
#     groups with no attributes; values are plain datasets (0-d for scalars,
#     vlen strings for str and string arrays). Empty mappings were not
#     written at all, so e.g. a file without obsm has no /obsm group.

def _h5_array(g, key, value):
    value = np.asarray(value)
    if value.dtype.kind in "OU":
        return g.create_dataset(key, data=value.astype(object), dtype=h5py.string_dtype("utf-8"))
    return g.create_dataset(key, data=value)


def _write07_series(grp, key, values):
    if isinstance(values.dtype, pd.CategoricalDtype):
        cat_key = f"__categories/{key}"
        cats = _h5_array(grp, cat_key, values.cat.categories.to_numpy())
        codes = _h5_array(grp, key, values.cat.codes.to_numpy())
        codes.attrs["categories"] = cats.ref
        cats.attrs["ordered"] = bool(values.cat.ordered)
    else:
        _h5_array(grp, key, np.asarray(values))


def _write07_dataframe(parent, key, df):
    grp = parent.create_group(key)
    grp.attrs["encoding-type"] = "dataframe"
    grp.attrs["encoding-version"] = "0.1.0"
    grp.attrs["column-order"] = [str(c) for c in df.columns]
    index_name = df.index.name if df.index.name is not None else "_index"
    grp.attrs["_index"] = index_name
    _write07_series(grp, index_name, pd.Series(df.index.to_numpy(dtype=object)))
    for col in df.columns:
        _write07_series(grp, col, df[col])


def _write07_matrix(parent, key, value, h5sparse):
    if not sp.issparse(value):
        return _h5_array(parent, key, value)  # plain dataset, no attrs
    g = parent.create_group(key)
    if h5sparse:
        g.attrs["h5sparse_format"] = value.format
        g.attrs["h5sparse_shape"] = np.array(value.shape)
    else:
        g.attrs["encoding-type"] = f"{value.format}_matrix"
        g.attrs["encoding-version"] = "0.1.0"
        g.attrs["shape"] = np.array(value.shape)
    for part in ("data", "indices", "indptr"):
        g.create_dataset(part, data=getattr(value, part), maxshape=(None,))


def _write07_mapping(parent, key, mapping):
    # 0.7's write_mapping only wrote the items, so an empty mapping (e.g. an
    # AnnData without obsm) left no group at all.
    if not mapping:
        return
    g = parent.require_group(key)  # no attrs
    for k, v in mapping.items():
        if isinstance(v, dict):
            _write07_mapping(g, k, v)
        else:
            _h5_array(g, k, v)


def write_legacy07(path, X, obs, var, obsm=None, layers=None, uns=None, raw=None,
                   h5sparse=False):
    with h5py.File(path, "w") as f:
        _write07_matrix(f, "X", X, h5sparse)
        if raw is not None:
            raw_X, raw_var = raw
            g = f.create_group("raw")
            g.attrs["encoding-type"] = "raw"
            g.attrs["encoding-version"] = "0.1.0"
            g.attrs["shape"] = np.array(raw_X.shape)
            _write07_matrix(g, "X", raw_X, h5sparse)
            _write07_dataframe(g, "var", raw_var)  # (raw.varm was empty: no group)
        _write07_dataframe(f, "obs", obs)
        _write07_dataframe(f, "var", var)
        for key, mapping in (("obsm", obsm), ("varm", {}), ("obsp", {}), ("varp", {}),
                             ("layers", layers), ("uns", uns)):
            _write07_mapping(f, key, mapping or {})


def fx_legacy07_dense(rng, outdir, name):
    n, m = 10, 6
    obs = pd.DataFrame(
        {
            "louvain": pd.Categorical.from_codes([0, 1, 2, 0, -1, 1, 2, 2, 0, 1],
                                                 ["0", "1", "Zellé_β"]),
            "phase": pd.Categorical.from_codes([0, 1, 2, -1, 0, 1, 2, 0, 1, 2],
                                               ["G1", "S", "G2M"], ordered=True),
            "sample": np.array([f"s{i}" for i in range(n)], dtype=object),
            "n_counts": np.where(np.arange(n) == 3, np.nan, rng.integers(0, 99, n) / 2).astype(np.float32),
            "n_genes": rng.integers(0, 500, n).astype(np.int64),
            "is_good": rng.random(n) < 0.5,
        },
        index=pd.Index([f"细胞{i}" for i in range(n)], name="cell"),
    )
    var_names = [f"gene{j}" for j in range(m)]
    var = pd.DataFrame(
        {
            "gene_ids": np.array([f"ENSG{j:05d}" for j in range(m)], dtype=object),
            "feature_types": pd.Categorical.from_codes([0] * (m - 1) + [1],
                                                       ["Gene Expression", "Antibody"]),
        },
        index=var_names,
    )
    X = random_dense(rng, n, m, np.float32, 0.5)
    raw_names = var_names + ["mt-1", "mt-2"]
    raw_X = random_dense(rng, n, len(raw_names), np.float32, 0.5)
    raw_var = pd.DataFrame({"gene_ids": np.array([f"R{j}" for j in range(len(raw_names))],
                                                 dtype=object)}, index=raw_names)
    obsm = {"X_pca": random_dense(rng, n, 2, np.float32)}
    layers = {"counts": random_dense(rng, n, m, np.int64, 0.5)}
    uns = {
        "title": "anndata 0.7 ✓",
        "n": np.int64(3),
        "f": np.float64(0.125),
        "flag": np.bool_(True),
        "arr": np.arange(4, dtype=np.int64),
        "names": np.array(["x", "y", "ζ"], dtype=object),
        "louvain_params": {"resolution": np.float64(1.0), "method": "louvain"},
    }
    write_legacy07(os.path.join(outdir, f"{name}.h5ad"), X, obs, var, obsm=obsm, layers=layers,
                   uns=uns, raw=(raw_X, raw_var))
    # expectations: the same objects, held in an AnnData purely as a container
    adata = ad.AnnData(X=X, obs=obs, var=var, obsm=obsm, layers=layers, uns=uns)
    adata.raw = ad.AnnData(X=raw_X, obs=pd.DataFrame(index=obs.index), var=raw_var)
    return finish(outdir, name, adata, LEGACY07_WRITER,
                  ["legacy-0.7", "dense", "float32", "contiguous", "dataframe-0.1.0",
                   "__categories", "categorical", "categorical-ordered", "categorical-missing",
                   "string-array", "numeric", "nan", "bool", "unicode", "index-name", "raw",
                   "obsm", "layers", "int64", "uns", "uns-nested"])


def fx_legacy07_h5sparse(rng, outdir, name):
    n, m = 8, 5
    obs = pd.DataFrame(
        {
            "cluster": pd.Categorical.from_codes([0, 1, 1, -1, 0, 1, 0, 1], ["a", "b"]),
            "name": np.array([f"n{i}" for i in range(n)], dtype=object),
        },
        index=[f"c{i}" for i in range(n)],
    )
    var = pd.DataFrame(index=[f"g{j}" for j in range(m)])  # no columns: empty column-order
    X = random_sparse(rng, n, m, np.float32, "csr", 0.4)
    write_legacy07(os.path.join(outdir, f"{name}.h5ad"), X, obs, var, h5sparse=True)
    adata = ad.AnnData(X=X, obs=obs, var=var)
    return finish(outdir, name, adata, LEGACY07_WRITER,
                  ["legacy-0.7", "h5sparse", "csr", "float32", "indices-int32", "chunked",
                   "dataframe-0.1.0", "__categories", "categorical", "categorical-missing",
                   "string-array", "empty-column-order", "no-optional-groups"])


LEGACY07_FIXTURES = {
    "legacy07_dense": fx_legacy07_dense,
    "legacy07_h5sparse": fx_legacy07_h5sparse,
}


# ==========================================================================
# driver
# ==========================================================================

# ==========================================================================
# Files written by old anndata releases, as anndata's own sdist ships them
# (tests/data/archives: anndata 0.5/0.6's layout, pbmc68k_reduced; 0.7.0,
# 0.7.8 and 0.11.4 test objects). Fetched from PyPI into the cache once and
# pinned by hash; expectations are what this anndata reads from them.
# ==========================================================================

ARCHIVE_SDIST = "anndata-0.12.19.tar.gz"
ARCHIVE_SDIST_SHA256 = "336ccc88463b56c22969634ca5256c3829af8b087a5a4ecfdac3504fedaa27cc"
ARCHIVES = {
    "archive_v0_5_0": ("v0.5.0", "anndata 0.5/0.6 (record-array obs/var/obsm/varm, raw.X, uns categories)"),
    "archive_v0_7_0": ("v0.7.0", "anndata 0.7.0"),
    "archive_v0_7_8": ("v0.7.8", "anndata 0.7.8"),
    "archive_v0_11_4": ("v0.11.4", "anndata 0.11.4 (no X)"),
}


def archive_sdist():
    import hashlib
    cache = os.path.join(os.environ.get("ANNDATA_OOM_CACHE", os.path.expanduser("~/.cache/anndata-oom")),
                         "anndata-sdist")
    os.makedirs(cache, exist_ok=True)
    sdist = os.path.join(cache, ARCHIVE_SDIST)
    if not os.path.isfile(sdist):
        cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:",
               "anndata==" + ARCHIVE_SDIST[len("anndata-"):-len(".tar.gz")], "-d", cache]
        print("fetching the anndata sdist:", " ".join(cmd), file=sys.stderr)
        subprocess.run(cmd, check=True, stdout=sys.stderr)
    with open(sdist, "rb") as fh:
        digest = hashlib.sha256(fh.read()).hexdigest()
    if digest != ARCHIVE_SDIST_SHA256:
        raise SystemExit(f"{sdist}: sha256 {digest} != expected {ARCHIVE_SDIST_SHA256}")
    return sdist


def run_archives(outdir):
    import tarfile
    rows = []
    with tarfile.open(archive_sdist(), "r:gz") as tar:
        root = ARCHIVE_SDIST[:-len(".tar.gz")]
        for name, (version_dir, features) in ARCHIVES.items():
            member = tar.extractfile(f"{root}/tests/data/archives/{version_dir}/adata.h5ad")
            path = os.path.join(outdir, f"{name}.h5ad")
            with open(path, "wb") as fh:
                fh.write(member.read())
            adata = ad.read_h5ad(path)
            rows.append(finish(outdir, name, adata, f"anndata {version_dir[1:]} (archive)", [features]))
    return rows


def seed_for(name):
    """Stable per-fixture seed (Python's hash() is salted per process)."""
    return sum((i + 1) * ord(c) for i, c in enumerate(name))


def run_anndata_fixtures(outdir, table):
    rows = []
    for name, builder in table.items():
        built = builder(np.random.default_rng(seed_for(name)))
        adata, features = built[0], built[1]
        post = built[2] if len(built) > 2 else None
        kwargs = built[3] if len(built) > 3 else {}
        rows.append(write_with_anndata(outdir, name, adata, features, post, **kwargs))
    return rows


def run_legacy_venv(outdir):
    python = os.environ.get("LEGACY_PYTHON", DEFAULT_LEGACY_PYTHON)
    part = os.path.join(outdir, "manifest.legacy-part.json")
    subprocess.run([python, os.path.abspath(__file__), outdir, "--legacy-only"], check=True)
    with open(part, encoding="utf-8") as fh:
        rows = json.load(fh)
    os.remove(part)
    return rows


def self_check(outdir, rows):
    """Read every file back with anndata and diff against the expectation."""
    import hdf5plugin  # noqa: F401  (blosc filters)
    problems = 0
    for row in rows:
        with open(os.path.join(outdir, f"{row['name']}.expected.json"), encoding="utf-8") as fh:
            expected = json.load(fh)
        back = ad.read_h5ad(os.path.join(outdir, row["file"]))
        got = expect_adata(back, file=row["file"], writer=row["writer"], features=row["features"])
        got = json.loads(json.dumps(got, allow_nan=False))
        if got != expected:
            problems += 1
            diffs = [k for k in expected if expected[k] != got.get(k)]
            print(f"self-check: {row['name']}: read-back differs in {diffs}", file=sys.stderr)
    print(f"self-check: {len(rows) - problems}/{len(rows)} fixtures read back as expected",
          file=sys.stderr)
    return problems == 0


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("outdir")
    p.add_argument("--legacy-only", action="store_true",
                   help="(internal) write only the anndata 0.9 fixtures; run by the legacy venv")
    p.add_argument("--skip-legacy", action="store_true",
                   help="do not run the legacy venv (the 0.9 fixtures will be missing)")
    p.add_argument("--self-check", action="store_true",
                   help="read every fixture back with anndata and compare to its expectation")
    args = p.parse_args()
    os.makedirs(args.outdir, exist_ok=True)

    if args.legacy_only:
        rows = run_anndata_fixtures(args.outdir, LEGACY09_FIXTURES)
        write_json(os.path.join(args.outdir, "manifest.legacy-part.json"), rows)
        return 0

    rows = run_anndata_fixtures(args.outdir, MAIN_FIXTURES)
    if not args.skip_legacy:
        rows += run_legacy_venv(args.outdir)
    for name, builder in LEGACY07_FIXTURES.items():
        rows.append(builder(np.random.default_rng(seed_for(name)), args.outdir, name))
    rows += run_archives(args.outdir)
    write_json(os.path.join(args.outdir, "manifest.json"), rows, compact=False)
    print(f"wrote {len(rows)} fixtures to {args.outdir}", file=sys.stderr)
    if args.self_check and not self_check(args.outdir, rows):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
