"""Turn in-memory AnnData pieces into the JSON expectation format.

Shared by make_fixtures.py, which runs under two interpreters (the main venv
with anndata 0.12 and the legacy venv with anndata 0.9 / numpy 1.x), so this
module only uses numpy, pandas and scipy APIs that exist in both.

NAME.expected.json (consumed by the TypeScript conformance tests):

  {"file": "NAME.h5ad", "writer": "anndata 0.12.19" | "anndata 0.9.2" |
       "h5py (anndata 0.7 layout)",
   "features": [tags],
   "shape": [n_obs, n_vars],
   "X": null | {"format": "csr"|"csc"|"dense", "dtype": DTYPE,
                "nnz": stored entries (explicit zeros included; n_obs*n_vars
                       for dense),
                "dense": row-major nested lists of the full matrix},
   "obs_names": [...], "var_names": [...],
   "obs": DF, "var": DF,
   "obsm" / "varm" / "obsp" / "varp" / "layers": {KEY: ELEM},
   "raw": null | {"shape", "X" (as X), "var_names", "var": DF},
   "uns": UNS}

  DF   = {"index_name": str|null, "column_order": [...], "columns": {NAME: COL}}
         (+ "index": [...] when inside obsm or uns)
  COL  = {"kind": "numeric"|"bool"|"string"|"categorical"|"nullable-integer"|
                  "nullable-boolean"|"nullable-string",
          "dtype": DTYPE, "values": [... null where missing],
          "categories": [...], "ordered": bool}     (last two: categorical only;
          categorical "values" are the category labels, null for code -1)
  ELEM = {"kind": "dense", "dtype", "shape", "values": nested lists}
       | {"kind": "csr"|"csc", "dtype", "shape", "nnz", "dense": nested lists}
       | {"kind": "dataframe", ...DF, "index": [...]}
  UNS  : dict -> object; str/number/bool scalar -> JSON scalar; None -> null;
         numeric/bool array -> {"__array__": nested lists, "dtype": DTYPE};
         string array -> {"__array__": [...], "dtype": "str"};
         dataframe -> {"__dataframe__": DF + "index"};
         record array -> {"__records__": [[field, UNS of its values], ...]}

Conventions decided here:

* NaN / +inf / -inf become {"__float__": "nan" | "inf" | "-inf"} because
  JSON.parse cannot read them; missing values (pd.NA, categorical code -1,
  masked entries) become null.
* DTYPE is a numpy dtype name ("float32", "int64", "bool", "uint8", ...),
  or "str" for anything string-valued. For dataframe columns it describes the
  values as stored on disk:
    numeric / bool        -> dtype of the array
    string                -> "str"
    categorical           -> dtype of the *categories* ("str" or e.g. "int64")
    nullable-integer      -> dtype of the values array ("int64", "int32", ...)
    nullable-boolean      -> "bool"
    nullable-string       -> "str"
* index_name is the pandas index name (null when the file's _index attr is
  "_index").
"""

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd
import scipy.sparse as sp


# --------------------------------------------------------------------------
# scalars and arrays
# --------------------------------------------------------------------------

def jv(x):
    """One scalar -> JSON-safe value."""
    if x is None or x is pd.NA or x is pd.NaT:
        return None
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    if isinstance(x, (int, np.integer)):
        return int(x)
    if isinstance(x, (float, np.floating)):
        x = float(x)
        if math.isnan(x):
            return {"__float__": "nan"}
        if math.isinf(x):
            return {"__float__": "inf" if x > 0 else "-inf"}
        return x
    if isinstance(x, (str, np.str_)):
        return str(x)
    if isinstance(x, bytes):
        return x.decode("utf-8")
    raise TypeError(f"no JSON form for scalar {x!r} of type {type(x)}")


def jlist(a):
    """Array-like -> nested lists of JSON-safe values (row-major)."""
    a = np.asarray(a)
    if a.ndim == 0:
        return jv(a[()])
    if a.ndim == 1:
        return [jv(v) for v in a.tolist()] if a.dtype.kind != "O" else [jv(v) for v in a]
    return [jlist(row) for row in a]


def dtype_name(dt):
    """numpy dtype -> name used in expectations ("str" for strings)."""
    if isinstance(dt, pd.StringDtype):
        return "str"
    if isinstance(dt, pd.api.extensions.ExtensionDtype):
        return np.dtype(dt.numpy_dtype).name  # e.g. Int64 categories
    dt = np.dtype(dt)
    return "str" if dt.kind in ("O", "U", "S") else dt.name


# --------------------------------------------------------------------------
# matrices (X, layers, obsm, ...)
# --------------------------------------------------------------------------

def expect_matrix(m):
    """X / raw.X -> {"format", "dtype", "nnz", "dense"}."""
    if m is None:
        return None
    if sp.issparse(m):
        return {
            "format": m.format,  # "csr" or "csc"
            "dtype": dtype_name(m.dtype),
            "nnz": int(m.nnz),  # stored entries, explicit zeros included
            "dense": jlist(m.toarray()),
        }
    m = np.asarray(m)
    return {
        "format": "dense",
        "dtype": dtype_name(m.dtype),
        "nnz": int(m.size),
        "dense": jlist(m),
    }


def expect_elem(v):
    """An obsm/varm/obsp/varp/layers value -> ELEM."""
    if isinstance(v, pd.DataFrame):
        return {"kind": "dataframe", **expect_df(v, with_index=True)}
    if sp.issparse(v):
        return {
            "kind": v.format,
            "dtype": dtype_name(v.dtype),
            "shape": list(v.shape),
            "nnz": int(v.nnz),
            "dense": jlist(v.toarray()),
        }
    v = np.asarray(v)
    return {
        "kind": "dense",
        "dtype": dtype_name(v.dtype),
        "shape": list(v.shape),
        "values": jlist(v),
    }


# --------------------------------------------------------------------------
# dataframes (obs, var, raw.var, dataframes in obsm/uns)
# --------------------------------------------------------------------------

def expect_col(s):
    dt = s.dtype
    if isinstance(dt, pd.CategoricalDtype):
        cats = dt.categories
        codes = s.cat.codes.to_numpy()
        cat_vals = jlist(cats.to_numpy())
        return {
            "kind": "categorical",
            "dtype": dtype_name(cats.dtype),
            "values": [None if c < 0 else cat_vals[c] for c in codes],
            "categories": cat_vals,
            "ordered": bool(dt.ordered),
        }
    if isinstance(dt, pd.StringDtype):
        return {
            "kind": "nullable-string",
            "dtype": "str",
            "values": [None if v is pd.NA else str(v) for v in s.array],
        }
    if isinstance(dt, pd.BooleanDtype):
        return {
            "kind": "nullable-boolean",
            "dtype": "bool",
            "values": [None if v is pd.NA else bool(v) for v in s.array],
        }
    if isinstance(dt, pd.api.extensions.ExtensionDtype) and dt.kind in "iu":
        return {
            "kind": "nullable-integer",
            "dtype": np.dtype(dt.numpy_dtype).name,
            "values": [None if v is pd.NA else int(v) for v in s.array],
        }
    arr = s.to_numpy()
    if arr.dtype.kind == "b":
        return {"kind": "bool", "dtype": "bool", "values": jlist(arr)}
    if arr.dtype.kind in "iuf":
        return {"kind": "numeric", "dtype": arr.dtype.name, "values": jlist(arr)}
    if arr.dtype.kind in "OU":
        assert all(isinstance(v, str) for v in arr), f"non-string object column {s.name!r}"
        return {"kind": "string", "dtype": "str", "values": [str(v) for v in arr]}
    raise TypeError(f"no expectation for column {s.name!r} of dtype {dt}")


def expect_df(df, with_index=False):
    out = {
        "index_name": None if df.index.name is None else str(df.index.name),
        "column_order": [str(c) for c in df.columns],
        "columns": {str(c): expect_col(df[c]) for c in df.columns},
    }
    if with_index:
        out["index"] = [str(v) for v in df.index]
    return out


# --------------------------------------------------------------------------
# uns
# --------------------------------------------------------------------------

def expect_uns(v):
    if isinstance(v, Mapping):
        return {str(k): expect_uns(v[k]) for k in v.keys()}
    if isinstance(v, pd.DataFrame):
        return {"__dataframe__": expect_df(v, with_index=True)}
    if isinstance(v, np.ndarray) and v.dtype.names is not None:
        # A record array (rank_genes_groups): each field, in order.
        return {"__records__": [[str(n), expect_uns(np.asarray(v[n]))] for n in v.dtype.names]}
    if isinstance(v, np.ndarray) and v.ndim > 0:
        if v.dtype.kind in "OUS":
            return {"__array__": [str(x) for x in v.tolist()], "dtype": "str"}
        return {"__array__": jlist(v), "dtype": v.dtype.name}
    if isinstance(v, np.ndarray):  # 0-d array: treat as scalar
        v = v[()]
    return jv(v)


# --------------------------------------------------------------------------
# whole object
# --------------------------------------------------------------------------

def expect_adata(adata, *, file, writer, features):
    """Expectation dict for an in-memory AnnData (as it was written)."""
    raw = None
    if adata.raw is not None:
        raw = {
            "shape": list(adata.raw.shape),
            "X": expect_matrix(adata.raw.X),
            "var_names": [str(v) for v in adata.raw.var_names],
            "var": expect_df(adata.raw.var),
        }
    return {
        "file": file,
        "writer": writer,
        "features": list(features),
        "shape": [int(adata.n_obs), int(adata.n_vars)],
        "X": expect_matrix(adata.X),
        "obs_names": [str(v) for v in adata.obs_names],
        "var_names": [str(v) for v in adata.var_names],
        "obs": expect_df(adata.obs),
        "var": expect_df(adata.var),
        "obsm": {k: expect_elem(adata.obsm[k]) for k in adata.obsm.keys()},
        "varm": {k: expect_elem(adata.varm[k]) for k in adata.varm.keys()},
        "obsp": {k: expect_elem(adata.obsp[k]) for k in adata.obsp.keys()},
        "varp": {k: expect_elem(adata.varp[k]) for k in adata.varp.keys()},
        "layers": {k: expect_elem(adata.layers[k]) for k in adata.layers.keys()},
        "raw": raw,
        "uns": expect_uns(dict(adata.uns)),
    }
