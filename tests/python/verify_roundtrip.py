#!/usr/bin/env python
"""Check that WRITTEN.h5ad holds the same AnnData as SOURCE.h5ad.

Usage (main venv):

    python verify_roundtrip.py SOURCE.h5ad WRITTEN.h5ad [--subset-json FILE]
                               [--keep-unused-categories]

Both files are read with anndata and compared element by element: X (same
dense / csr / csc class, dtype, shape and values), obs and var (index, column
order, per-column dtype incl. categorical categories / ordered, values with
NaN / NA equality), obsm / varm / obsp / varp / layers (same keys; each value
same type, dtype, shape and values), raw (X, var, varm) and uns (recursive;
arrays by dtype and value, scalars by type and value).

Sparse values are compared after canonicalising both sides (duplicates
summed, explicit zeros dropped, indices sorted), so a writer may drop or keep
explicit zeros and may sort indices. Everything else is compared strictly.

--subset-json FILE: {"obs": [int, ...], "var": [int, ...]} (either key may be
omitted = all). WRITTEN is then compared with SOURCE[obs, var].copy(), i.e.
anndata's semantics: obsm/obsp/layers and varm/varp are sliced, raw is
sliced along obs only, and -- as anndata does by default -- categories that
no longer occur in an obs/var categorical column are dropped (and a matching
uns["<col>_colors"] is sliced). --keep-unused-categories turns that last step
off (anndata.settings.remove_unused_categories = False).

SOURCE is compared as anndata's write_h5ad would store it: obs/var string
columns with repeated values become categoricals (strings_to_categoricals).

Prints {"ok": bool, "mismatches": [str, ...]} on stdout; exit status 0 if ok,
1 if not (including WRITTEN not being readable by anndata), 2 for usage
errors or an unreadable SOURCE.
"""

import argparse
import json
import os
import sys
import tempfile
import warnings
from collections.abc import Mapping

import numpy as np
import pandas as pd
import scipy.sparse as sp

import anndata as ad

try:  # registers the blosc/zstd/lz4/... HDF5 filters so compressed files read
    import hdf5plugin  # noqa: F401
except ImportError:
    pass

warnings.filterwarnings("ignore")


class Report:
    def __init__(self):
        self.mismatches = []

    def add(self, where, msg):
        self.mismatches.append(f"{where}: {msg}")


# --------------------------------------------------------------------------
# leaves
# --------------------------------------------------------------------------

def kind_of(v):
    """Coarse type used to decide how to compare (and reported on mismatch)."""
    if v is None:
        return "None"
    if isinstance(v, pd.DataFrame):
        return "dataframe"
    if sp.issparse(v):
        return v.format  # csr / csc / coo ...
    if isinstance(v, np.ndarray):
        return "ndarray"
    if isinstance(v, Mapping):
        return "dict"
    return type(v).__name__


def arrays_equal(a, b):
    """Dense array value equality, NaN == NaN, strings compared as str."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        return False
    if a.dtype.kind in "OUS" or b.dtype.kind in "OUS":
        return a.astype(str).tolist() == b.astype(str).tolist() and \
            [x is None for x in a.ravel()] == [x is None for x in b.ravel()]
    if a.dtype.kind in "fc" or b.dtype.kind in "fc":
        return bool(np.array_equal(a, b, equal_nan=True))
    return bool(np.array_equal(a, b))


def canonical_csr(m):
    m = m.tocsr(copy=True)
    m.sum_duplicates()
    m.eliminate_zeros()
    m.sort_indices()
    return m


def is_str_array(a):
    """A numpy array of str, fixed-width (<U) or object: anndata writes both
    as the same string-array and reads it back as object, so an in-memory
    <U array (e.g. sliced colors of a file stored as bytes) equals it."""
    return isinstance(a, np.ndarray) and (
        a.dtype.kind == "U" or (a.dtype.kind == "O" and all(isinstance(x, str) for x in a.flat)))


def compare_matrix(rep, where, a, b):
    """X-like value: ndarray or scipy sparse (or a DataFrame in obsm)."""
    ka, kb = kind_of(a), kind_of(b)
    if ka != kb:
        rep.add(where, f"type {ka} != {kb}")
        return
    if ka == "dataframe":
        compare_df(rep, where, a, b, check_index=True)
        return
    if ka == "None":
        return
    if not hasattr(a, "dtype") or not hasattr(a, "shape"):
        compare_uns(rep, where, a, b)
        return
    if a.dtype != b.dtype and not (is_str_array(a) and is_str_array(b)):
        rep.add(where, f"dtype {a.dtype} != {b.dtype}")
    if tuple(a.shape) != tuple(b.shape):
        rep.add(where, f"shape {tuple(a.shape)} != {tuple(b.shape)}")
        return
    if sp.issparse(a):
        ca, cb = canonical_csr(a), canonical_csr(b)
        if not (np.array_equal(ca.indptr, cb.indptr) and np.array_equal(ca.indices, cb.indices)
                and arrays_equal(ca.data, cb.data)):
            rep.add(where, f"values differ (nnz {a.nnz} vs {b.nnz}; "
                           f"{(ca != cb).nnz} differing entries)")
    elif not arrays_equal(a, b):
        diff = int(np.sum(~np.isclose(np.asarray(a, dtype=float), np.asarray(b, dtype=float),
                                      equal_nan=True))) if a.dtype.kind in "biuf" else "?"
        rep.add(where, f"values differ ({diff} differing entries)")


# --------------------------------------------------------------------------
# dataframes
# --------------------------------------------------------------------------

def compare_df(rep, where, a, b, check_index=True):
    if check_index:
        if a.index.name != b.index.name:
            rep.add(f"{where}.index", f"name {a.index.name!r} != {b.index.name!r}")
        if str(a.index.dtype) != str(b.index.dtype):
            rep.add(f"{where}.index", f"dtype {a.index.dtype} != {b.index.dtype}")
        if len(a.index) != len(b.index) or list(map(str, a.index)) != list(map(str, b.index)):
            rep.add(f"{where}.index", f"values differ (len {len(a.index)} vs {len(b.index)})")
    cols_a, cols_b = [str(c) for c in a.columns], [str(c) for c in b.columns]
    if cols_a != cols_b:
        rep.add(where, f"columns {cols_a} != {cols_b}")
    for col in a.columns:
        if col not in b.columns:
            continue
        sa, sb = a[col], b[col]
        w = f"{where}[{col!r}]"
        if str(sa.dtype) != str(sb.dtype):
            rep.add(w, f"dtype {sa.dtype} != {sb.dtype}")
            continue
        if isinstance(sa.dtype, pd.CategoricalDtype):
            if sa.cat.ordered != sb.cat.ordered:
                rep.add(w, f"ordered {sa.cat.ordered} != {sb.cat.ordered}")
            ca, cb = sa.cat.categories, sb.cat.categories
            if ca.dtype != cb.dtype or not arrays_equal(ca.to_numpy(), cb.to_numpy()):
                rep.add(w, f"categories {list(ca)} != {list(cb)}")
            elif not np.array_equal(sa.cat.codes.to_numpy(), sb.cat.codes.to_numpy()):
                rep.add(w, "values (codes) differ")
            continue
        try:
            pd.testing.assert_series_equal(sa.reset_index(drop=True), sb.reset_index(drop=True),
                                           check_dtype=True, check_names=False, check_exact=True)
        except AssertionError as e:
            rep.add(w, "values differ: " + " ".join(str(e).split())[:200])


# --------------------------------------------------------------------------
# uns (recursive)
# --------------------------------------------------------------------------

def compare_uns(rep, where, a, b):
    ka, kb = kind_of(a), kind_of(b)
    if ka != kb:
        rep.add(where, f"type {ka} != {kb}")
        return
    if ka == "dict":
        compare_mapping(rep, where, a, b, compare_uns)
    elif ka == "dataframe":
        compare_df(rep, where, a, b, check_index=True)
    elif ka == "ndarray" or sp.issparse(a):
        compare_matrix(rep, where, a, b)
    elif ka == "None":
        pass
    elif isinstance(a, (float, np.floating)) and np.isnan(a):
        if not np.isnan(b):
            rep.add(where, f"value {a!r} != {b!r}")
    elif isinstance(a, (pd.Categorical, pd.api.extensions.ExtensionArray)):
        if not a.equals(b):
            rep.add(where, "values differ")
    elif a != b:
        rep.add(where, f"value {a!r} != {b!r}")


def compare_mapping(rep, where, a, b, compare_value):
    ka, kb = set(a.keys()), set(b.keys())
    for k in sorted(ka - kb):
        rep.add(f"{where}/{k}", "missing in WRITTEN")
    for k in sorted(kb - ka):
        rep.add(f"{where}/{k}", "unexpected in WRITTEN")
    for k in sorted(ka & kb):
        compare_value(rep, f"{where}/{k}", a[k], b[k])


# --------------------------------------------------------------------------
# whole object
# --------------------------------------------------------------------------

def compare_adata(src, out):
    rep = Report()
    if src.shape != out.shape:
        rep.add("shape", f"{src.shape} != {out.shape}")
    compare_matrix(rep, "X", src.X, out.X)
    compare_df(rep, "obs", src.obs, out.obs)
    compare_df(rep, "var", src.var, out.var)
    for slot in ("obsm", "varm", "obsp", "varp", "layers"):
        compare_mapping(rep, slot, dict(getattr(src, slot)), dict(getattr(out, slot)),
                        compare_matrix)
    if (src.raw is None) != (out.raw is None):
        rep.add("raw", f"present in {'SOURCE' if out.raw is None else 'WRITTEN'} only")
    elif src.raw is not None:
        if src.raw.shape != out.raw.shape:
            rep.add("raw", f"shape {src.raw.shape} != {out.raw.shape}")
        compare_matrix(rep, "raw/X", src.raw.X, out.raw.X)
        compare_df(rep, "raw/var", src.raw.var, out.raw.var)
        compare_mapping(rep, "raw/varm", dict(src.raw.varm), dict(out.raw.varm), compare_matrix)
    compare_uns(rep, "uns", dict(src.uns), dict(out.uns))
    return rep


def main():
    p = argparse.ArgumentParser(description="Compare two .h5ad files element by element.")
    p.add_argument("source")
    p.add_argument("written")
    p.add_argument("--subset-json", help='{"obs": [ints], "var": [ints]}: WRITTEN should '
                                         "equal SOURCE[obs, var]")
    p.add_argument("--keep-unused-categories", action="store_true",
                   help="with --subset-json: do not drop categories that become unused")
    args = p.parse_args()

    try:
        src = ad.read_h5ad(args.source)
    except Exception as e:  # a broken SOURCE is a test-setup error
        print(f"cannot read SOURCE {args.source}: {e}", file=sys.stderr)
        return 2
    try:
        out = ad.read_h5ad(args.written)
    except Exception as e:  # an unreadable WRITTEN file is a mismatch
        msg = " ".join(f"{type(e).__name__}: {e}".split())
        print(json.dumps({"ok": False, "mismatches": [f"WRITTEN: anndata cannot read it: {msg}"]},
                         ensure_ascii=False, indent=2))
        return 1
    if args.subset_json:
        with open(args.subset_json, encoding="utf-8") as fh:
            subset = json.load(fh)
        obs_idx = np.asarray(subset.get("obs", range(src.n_obs)), dtype=np.int64)
        var_idx = np.asarray(subset.get("var", range(src.n_vars)), dtype=np.int64)
        ad.settings.remove_unused_categories = not args.keep_unused_categories
        src = src[obs_idx, var_idx].copy()
    # What anndata's write_h5ad would store: obs/var string columns with
    # repeated values become categoricals (raw/var copied from the file
    # stays as stored). Only obs and var are taken from anndata's write and
    # read-back; the rest is compared with SOURCE as read.
    src.strings_to_categoricals()
    with tempfile.TemporaryDirectory() as tmp:
        ref = os.path.join(tmp, "anndata.h5ad")
        # A nullable-string column or index (written by anndata ≥ 0.11 on request) is written back as such.
        ad.settings.allow_write_nullable_strings = True
        ad.AnnData(obs=src.obs, var=src.var).write_h5ad(ref)
        back = ad.read_h5ad(ref)
        src.obs, src.var = back.obs, back.var

    rep = compare_adata(src, out)
    print(json.dumps({"ok": not rep.mismatches, "mismatches": rep.mismatches},
                     ensure_ascii=False, indent=2))
    return 0 if not rep.mismatches else 1


if __name__ == "__main__":
    sys.exit(main())
