#!/usr/bin/env python
"""Write malformed .h5ad files for the error-handling conformance tests.

Usage (main venv):

    python make_bad_fixtures.py OUTDIR

Writes one file per case plus OUTDIR/bad-manifest.json:

    [{"file", "case", "error", "element", "note"}]

  error    the TypeScript error class the engine must throw:
           H5adFormatError (unreadable container or malformed content) or
           UnsupportedEncodingError (well-formed but unsupported encoding).
           FileAccessError (nonexistent path / permissions) has no fixture:
           the TS test creates those situations itself.
  element  the HDF5 path the error must name, or null when the container
           itself cannot be opened.
  note     what was broken, and when the error is expected (at open, or
           only when the named element is accessed).

Every case starts from the same valid base file written by anndata (a 6 x 4
CSR float32 matrix, obs with a categorical column, obsm/X_pca), copied and
then damaged with h5py.
"""

import json
import os
import shutil
import sys
import warnings

import h5py
import numpy as np
import pandas as pd
import scipy.sparse as sp

import anndata as ad

warnings.filterwarnings("ignore")

N_OBS, N_VARS = 6, 4


def write_base(path):
    X = sp.csr_matrix(np.array(
        [[1, 0, 2, 0],
         [0, 0, 3, 0],
         [4, 5, 0, 0],
         [0, 0, 0, 6],
         [7, 0, 0, 8],
         [0, 9, 0, 0]], dtype=np.float32))
    obs = pd.DataFrame(
        {"cat": pd.Categorical.from_codes([0, 1, 2, 0, 1, 2], ["a", "b", "c"]),
         "score": np.arange(N_OBS, dtype=np.float64)},
        index=[f"cell_{i}" for i in range(N_OBS)])
    var = pd.DataFrame(index=[f"gene_{j}" for j in range(N_VARS)])
    adata = ad.AnnData(X=X, obs=obs, var=var)
    adata.obsm["X_pca"] = np.arange(N_OBS * 2, dtype=np.float32).reshape(N_OBS, 2)
    adata.write_h5ad(path)


def replace_dataset(f, path, data, dtype=None):
    """Swap a dataset's content (and possibly dtype), keeping its attributes."""
    attrs = {k: f[path].attrs[k] for k in f[path].attrs.keys()}
    del f[path]
    d = f.create_dataset(path, data=data, dtype=dtype)
    for k, v in attrs.items():
        d.attrs[k] = v


# --- the damage, one function per case (f is the copy opened "r+") ---------

def missing_x(f):
    del f["X"]


def missing_obs(f):
    del f["obs"]


def missing_var(f):
    del f["var"]


def indptr_shape_mismatch(f):
    # 7 rows' worth of indptr while the shape attribute (and obs) say 6
    ip = f["X/indptr"][()]
    replace_dataset(f, "X/indptr", np.append(ip, ip[-1]))


def indptr_non_monotonic(f):
    ip = f["X/indptr"][()]  # [0 2 3 5 6 8 9]
    ip[2], ip[3] = ip[3], ip[2]  # -> [0 2 5 3 6 8 9]
    replace_dataset(f, "X/indptr", ip)


def indices_out_of_range(f):
    idx = f["X/indices"][()]
    idx[3] = N_VARS  # column index == n_vars
    replace_dataset(f, "X/indices", idx)


def indptr_last_mismatch(f):
    # drop the last stored entry from data and indices; indptr[-1] still 9
    for part in ("data", "indices"):
        replace_dataset(f, f"X/{part}", f[f"X/{part}"][:-1])


def categorical_code_out_of_range(f):
    codes = f["obs/cat/codes"][()]
    codes[4] = 3  # 3 categories -> valid codes are -1..2
    replace_dataset(f, "obs/cat/codes", codes)


def data_as_strings(f):
    vals = np.array([str(v) for v in f["X/data"][()]], dtype=object)
    replace_dataset(f, "X/data", vals, dtype=h5py.string_dtype("utf-8"))


def indptr_as_float(f):
    replace_dataset(f, "X/indptr", f["X/indptr"][()].astype(np.float64))


def absurd_shape(f):
    # 10**12 rows claimed by the shape attribute; datasets stay tiny. The
    # engine must reject this without trying to allocate anything that big.
    f["X"].attrs["shape"] = np.array([10**12, N_VARS], dtype=np.int64)


def awkward_obsm(f):
    g = f["obsm"].create_group("ak")
    g.attrs["encoding-type"] = "awkward-array"
    g.attrs["encoding-version"] = "0.1.0"
    g.attrs["length"] = N_OBS
    g.attrs["form"] = json.dumps({"class": "ListOffsetArray", "offsets": "i64",
                                  "content": {"class": "NumpyArray", "primitive": "int64",
                                              "form_key": "node1"},
                                  "form_key": "node0"})
    g.create_dataset("node0-offsets", data=np.array([0, 1, 1, 3, 3, 4, 5], dtype=np.int64))
    g.create_dataset("node1-data", data=np.arange(5, dtype=np.int64))


def column_order_missing(f):
    f["obs"].attrs["column-order"] = np.array(["cat", "score", "ghost"], dtype=object)


def obs_index_length_mismatch(f):
    # obs is a self-consistent 5-row dataframe, X has 6 rows
    for key in ("_index", "score", "cat/codes"):
        replace_dataset(f, f"obs/{key}", f[f"obs/{key}"][:N_OBS - 1],
                        dtype=f[f"obs/{key}"].dtype)


def unknown_x_encoding(f):
    f["X"].attrs["encoding-type"] = "bsr_matrix"


def _dict_group(parent, name):
    g = parent.create_group(name)
    g.attrs["encoding-type"] = "dict"
    g.attrs["encoding-version"] = "0.1.0"
    return g


def _unallocated(f, path, shape, dtype):
    """A chunked dataset of `shape` with nothing written: tiny on disk,
    absurd in memory (a corrupt size must be refused before any read)."""
    attrs = {k: f[path].attrs[k] for k in f[path].attrs.keys()} if path in f else {}
    if path in f:
        del f[path]
    d = f.create_dataset(path, shape=shape, dtype=dtype, chunks=(1 << 16,) + (1,) * (len(shape) - 1))
    for k, v in attrs.items():
        d.attrs[k] = v


def uns_soft_link_cycle(f):
    _dict_group(f["uns"], "nested")["loop"] = h5py.SoftLink("/uns/nested")


def uns_hard_link_cycle(f):
    _dict_group(f["uns"], "nested")
    f["uns/nested/loop"] = f["uns"]


def uns_too_deep(f):
    g = _dict_group(f["uns"], "deep")
    for _ in range(300):
        g = _dict_group(g, "a")


def categorical_codes_unallocated(f):
    _unallocated(f, "obs/cat/codes", (1 << 32,), np.int8)


def obsm_wrong_rows(f):
    replace_dataset(f, "obsm/X_pca", np.zeros((N_OBS - 1, 2), np.float32))


def layer_wrong_shape(f):
    d = f["layers"].create_dataset("counts", data=np.ones((N_OBS, N_VARS + 3), np.float32))
    d.attrs["encoding-type"] = "array"
    d.attrs["encoding-version"] = "0.2.0"


def row_longer_than_n_vars(f):
    n = 3_000_000_000
    _unallocated(f, "X/data", (n,), np.float32)
    _unallocated(f, "X/indices", (n,), np.int32)
    ip = f["X/indptr"][()].astype(np.int64)
    ip[-1] = n
    replace_dataset(f, "X/indptr", ip)


def data_complex(f):
    replace_dataset(f, "X/data", f["X/data"][()].astype(np.complex64))


def unknown_filter(f):
    # a dense X compressed with bitshuffle (filter 32008, from hdf5plugin),
    # which the engine's HDF5 build does not include
    import hdf5plugin

    g = f["X"]
    dense = sp.csr_matrix((g["data"][()], g["indices"][()], g["indptr"][()]),
                          shape=(N_OBS, N_VARS)).toarray()
    del f["X"]
    ds = f.create_dataset("X", data=dense, chunks=(2, N_VARS), **hdf5plugin.Bitshuffle())
    ds.attrs["encoding-type"] = "array"
    ds.attrs["encoding-version"] = "0.2.0"


def zero_free_space(blob):
    """Set the size of every global heap collection's free-space object
    (index 0) to 0, the one byte pattern that makes HDF5's decoder loop
    forever (h5py and anndata hang on such a file). A collection: "GCOL",
    version 1, 3 reserved bytes, its 8-byte size, then objects of a 16-byte
    header (index u16, refcount u16, 4 reserved, size u64) and their data
    padded to 8 bytes; the free-space object's size includes its header."""
    data = bytearray(blob)
    patched = 0
    pos = data.find(b"GCOL")
    while pos >= 0:
        size = int.from_bytes(data[pos + 8:pos + 16], "little")
        p = pos + 16
        while p + 16 <= pos + size:
            index = int.from_bytes(data[p:p + 2], "little")
            object_size = int.from_bytes(data[p + 8:p + 16], "little")
            if index == 0:
                data[p + 8:p + 16] = bytes(8)
                patched += 1
                break
            p += 16 + (object_size + 7) // 8 * 8
        pos = data.find(b"GCOL", pos + 4)
    assert patched, "no global heap free-space object found"
    return bytes(data)


# (file stem, damage function or special marker, error class, element, note)
CASES = [
    ("not_hdf5", "text", "H5adFormatError", None,
     "a UTF-8 text file with an .h5ad name; fails at open"),
    ("zero_byte", "empty", "H5adFormatError", None, "an empty file; fails at open"),
    ("truncated", "truncate", "H5adFormatError", None,
     "the valid base file cut at half its size; fails at open (or at the first read)"),
    ("missing_x", missing_x, "InvalidArgumentError", "/X",
     "no /X (X = None is valid anndata): open succeeds, using X is a typed error"),
    ("missing_obs", missing_obs, "H5adFormatError", "/obs", "no /obs group"),
    ("missing_var", missing_var, "H5adFormatError", "/var", "no /var group"),
    ("indptr_shape_mismatch", indptr_shape_mismatch, "H5adFormatError", "/X/indptr",
     "len(indptr) - 1 == 7 but /X shape attribute (and obs) say 6 rows"),
    ("indptr_non_monotonic", indptr_non_monotonic, "H5adFormatError", "/X/indptr",
     "indptr decreases between rows 2 and 3"),
    ("indices_out_of_range", indices_out_of_range, "H5adFormatError", "/X/indices",
     "a column index equal to n_vars (4)"),
    ("indptr_last_mismatch", indptr_last_mismatch, "H5adFormatError", "/X/indptr",
     "indptr[-1] == 9 but data/indices hold 8 entries"),
    ("categorical_code_out_of_range", categorical_code_out_of_range, "H5adFormatError",
     "/obs/cat/codes", "code 3 with 3 categories"),
    ("data_as_strings", data_as_strings, "H5adFormatError", "/X/data",
     "X/data is a variable-length string dataset"),
    ("indptr_as_float", indptr_as_float, "H5adFormatError", "/X/indptr",
     "X/indptr is float64"),
    ("absurd_shape", absurd_shape, "H5adFormatError", "/X",
     "/X shape attribute says 10**12 rows; indptr has 7 entries, obs has 6 rows"),
    ("awkward_obsm", awkward_obsm, "UnsupportedEncodingError", "/obsm/ak",
     "obsm/ak has encoding-type awkward-array; the rest of the file is valid, "
     "the error comes when obsm/ak is accessed"),
    ("column_order_missing", column_order_missing, "H5adFormatError", "/obs/ghost",
     "obs column-order lists 'ghost', which has no dataset"),
    ("obs_index_length_mismatch", obs_index_length_mismatch, "H5adFormatError", "/obs",
     "obs (index and every column) has 5 rows, X has 6"),
    ("unknown_x_encoding", unknown_x_encoding, "UnsupportedEncodingError", "/X",
     "X has encoding-type bsr_matrix (not part of the spec)"),
    ("uns_soft_link_cycle", uns_soft_link_cycle, "H5adFormatError", "/uns/nested/loop",
     "uns/nested/loop is a soft link to uns/nested: describing uns must not recurse forever"),
    ("uns_hard_link_cycle", uns_hard_link_cycle, "H5adFormatError", "/uns/nested/loop",
     "uns/nested/loop is a hard link to uns itself"),
    ("uns_too_deep", uns_too_deep, "H5adFormatError", "/uns/deep/a",
     "300 nested dicts (the limit is 256; ~10,000 used to overflow the stack)"),
    ("categorical_codes_unallocated", categorical_codes_unallocated, "H5adFormatError", "/obs/cat",
     "obs/cat/codes declares 2**32 rows (never written): refused from its shape, before any read"),
    ("obsm_wrong_rows", obsm_wrong_rows, "H5adFormatError", "/obsm/X_pca",
     "obsm/X_pca has 5 rows, obs 6 (anndata refuses the file too)"),
    ("layer_wrong_shape", layer_wrong_shape, "H5adFormatError", "/layers/counts",
     "layers/counts is 6 x 7, X is 6 x 4"),
    ("row_longer_than_n_vars", row_longer_than_n_vars, "H5adFormatError", "/X/indptr",
     "the last row claims 3e9 stored entries (data/indices declared, never written) with 4 columns"),
    ("data_complex", data_complex, "UnsupportedEncodingError", "/X/data",
     "X/data is complex64"),
    ("global_heap_free_space_zero", "heap", "H5adFormatError", "/obs",
     "the global heap collection holding the string attributes and categories has a free-space "
     "object of size 0: HDF5 (and h5py/anndata) loop forever decoding it; the engine's file "
     "driver refuses the read instead"),
    ("unknown_filter", unknown_filter, "UnsupportedEncodingError", "/X",
     "dense X is compressed with bitshuffle (filter 32008), which is not built in"),
]


def main():
    if len(sys.argv) != 2:
        sys.exit(f"usage: {sys.argv[0]} OUTDIR")
    outdir = sys.argv[1]
    os.makedirs(outdir, exist_ok=True)
    base = os.path.join(outdir, "_base.tmp.h5ad")
    write_base(base)

    manifest = []
    for stem, damage, error, element, note in CASES:
        path = os.path.join(outdir, f"bad_{stem}.h5ad")
        if damage == "text":
            with open(path, "w", encoding="utf-8") as fh:
                fh.write("this is not an HDF5 file\nobs,var\n1,2\n")
        elif damage == "empty":
            open(path, "wb").close()
        elif damage == "truncate":
            with open(base, "rb") as fh:
                blob = fh.read()
            with open(path, "wb") as fh:
                fh.write(blob[: len(blob) // 2])
        elif damage == "heap":
            with open(base, "rb") as fh:
                blob = fh.read()
            with open(path, "wb") as fh:
                fh.write(zero_free_space(blob))
        else:
            shutil.copyfile(base, path)
            with h5py.File(path, "r+") as f:
                damage(f)
        manifest.append({"file": os.path.basename(path), "case": stem, "error": error,
                         "element": element, "note": note})
    os.remove(base)

    with open(os.path.join(outdir, "bad-manifest.json"), "w", encoding="utf-8") as fh:
        json.dump(manifest, fh, ensure_ascii=False, indent=2)
        fh.write("\n")
    print(f"wrote {len(manifest)} bad fixtures to {outdir}", file=sys.stderr)


if __name__ == "__main__":
    main()
