#!/usr/bin/env python
"""Write scanpy reference results ("oracle") for out-of-core preprocessing.

Usage (main venv; flavor='seurat_v3' additionally needs scikit-misc):

    python make_pp_oracle.py OUTDIR [--real-source PATH] [--no-real] [--self-check]

For every dataset NAME it writes the raw-count input OUTDIR/NAME.h5ad (CSR
float32, anndata writer) and, per preprocessing step, an .h5ad holding what
scanpy computed on it (see OUTDIR/pp_manifest.json: every step lists its
scanpy call, parameters, file and the elements in that file with dtype and
shape). SCANPY_NOTES.md beside this script documents the algorithms;
check_pp_oracle.py re-derives the outputs from those notes with plain NumPy
(--self-check runs it after writing).

Datasets
  synth_3k  3,000 x 2,000 seeded negative-binomial counts: 6 cell types,
            3 batches with batch effects (obs 'batch'), 60 'MT-' genes,
            damaged (high-mito) cells, low-quality and empty cells, genes that
            are never / rarely detected and genes detected in one batch only.
  real_10k  scanpy's own test matrix tests/_data/10x-10k-subset.zarr: real
            10x Genomics mouse counts, 10,000 cells x the first 1,000 genes,
            shipped in the scanpy *sdist* (not the wheel). It is taken from
            --real-source (the sdist .tar.gz, an extracted sdist directory or
            the .zarr directory itself); without it the script runs
            `python -m pip download --no-deps --no-binary :all: scanpy==1.11.5`
            into $ANNDATA_OOM_CACHE/scanpy-sdist (default ~/.cache/anndata-oom)
            once and reuses it. obs 'batch' is ARTIFICIAL (first/second half
            of the cells) so that the batch_key code paths run on real data.

Files (NAME = synth_3k | real_10k; all reference files are gzip-compressed):
  NAME.h5ad                      input: X raw counts CSR float32, obs 'batch' (+ 'cell_type' for synth)
  NAME.qc.h5ad                   no X; obs/var = calculate_qc_metrics columns + filter masks/numbers
  NAME.pp.h5ad                   filtered data: X = log1p, layers counts / normalized, obs size factors,
                                 var ehe_excluded
  NAME.hvg_<variant>.h5ad        no X; var = exactly the columns that HVG call added; varm = extras
                                 (per-batch scores / ranks, loess fit) that scanpy does not write
  NAME.scale.h5ad                X = scale(max_value=10) of the log data on hvg_seurat genes; var mean/std
  NAME.scale_nozc.h5ad           same with zero_center=False (CSR float32)
  NAME.pca_<solver>.h5ad         no X; obsm X_pca, varm PCs, uns pca/variance, pca/variance_ratio
  pp_manifest.json               {format, versions, numba_threads, notes,
                                  datasets: {NAME: {input, config, info,
                                    steps: {STEP: {call, on, params, file, elements, ...}}}}}
  where elements maps paths inside that file (X, layers/L, obs/C, var/C, obsm/K, varm/K, uns/pca/variance)
  to {dtype, shape[, encoding, nnz]}; HVG steps add var_columns, extras, ties (cut margin, tie groups
  straddling the cut) and, for pearson_residuals, clip_used.

Determinism: numba, OpenMP and BLAS are forced to one thread before numpy is
imported (scanpy's numba kernels sum per thread, so their last bits depend on
the thread count). All randomness is seeded; the manifest and every array are
identical from run to run.
"""

import os

# Must happen before numpy / numba are imported (see module docstring).
for _var in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
             "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import hashlib  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tarfile  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from importlib.metadata import PackageNotFoundError, version  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import scipy.sparse as sp  # noqa: E402

sys.dont_write_bytecode = True  # keep tests/python free of __pycache__

import anndata as ad  # noqa: E402
import scanpy as sc  # noqa: E402

warnings.filterwarnings("ignore")

REAL_SDIST_VERSION = "1.11.5"
REAL_SDIST_NAME = f"scanpy-{REAL_SDIST_VERSION}.tar.gz"
# sha256 of the PyPI file (PyPI files are immutable); checked after download
REAL_SDIST_SHA256 = "b2ef5476dfb1144b7dd0fae90b0198699c7988e6b27f083904150642c7ba6b89"
REAL_ZARR_IN_SDIST = f"scanpy-{REAL_SDIST_VERSION}/tests/_data/10x-10k-subset.zarr"
MANIFEST_FORMAT = 1


def pkg(name):
    try:
        return version(name)
    except PackageNotFoundError:
        return None


# ==========================================================================
# input datasets
# ==========================================================================

def make_synth(seed=20240611):
    """3,000 x 2,000 raw counts with clusters, batches and QC structure."""
    rng = np.random.default_rng(seed)
    n_cells, n_genes, n_types, n_mt = 3000, 2000, 6, 60

    # --- gene names: 60 'MT-' genes at random positions, plus look-alikes
    # that must NOT count as mito ('mt-' lower case, 'MTOR', 'XMT-1').
    names = np.array([f"GENE{g:04d}" for g in range(n_genes)], dtype=object)
    mt_pos = np.sort(rng.choice(n_genes, n_mt, replace=False))
    real_mt = ["MT-ND1", "MT-ND2", "MT-CO1", "MT-CO2", "MT-ATP8", "MT-ATP6",
               "MT-CO3", "MT-ND3", "MT-ND4L", "MT-ND4", "MT-ND5", "MT-ND6",
               "MT-CYB", "MT-RNR1", "MT-RNR2"]
    mt_names = real_mt + [f"MT-SYN{k:02d}" for k in range(n_mt - len(real_mt))]
    names[mt_pos] = mt_names
    others = np.setdiff1d(np.arange(n_genes), mt_pos)
    lookalike = rng.choice(others, 4, replace=False)
    names[lookalike] = ["mt-Nd1", "MTOR", "XMT-1", "Mt-Co1"]
    is_mt = np.zeros(n_genes, bool)
    is_mt[mt_pos] = True

    # --- baseline expression (log scale), mito genes fairly high
    log_base = rng.normal(0.0, 1.9, n_genes)
    log_base[mt_pos] = rng.normal(2.2, 0.6, n_mt)

    # --- cell types with distinct programmes (up / down regulated genes)
    cell_type = rng.integers(0, n_types, n_cells)
    programme = np.zeros((n_types, n_genes))
    for k in range(n_types):
        up = rng.choice(others, 120, replace=False)
        programme[k, up] = rng.normal(2.0, 0.6, up.size)
        down = rng.choice(others, 60, replace=False)
        programme[k, down] = -rng.normal(1.5, 0.4, down.size)

    # --- 3 batches: gene-wise multiplicative effects + library size shifts
    batch = rng.choice(3, n_cells, p=[0.4, 0.35, 0.25])
    batch_gene = rng.normal(0.0, 0.3, (3, n_genes))
    batch_lib = np.array([1.0, 0.7, 1.35])

    logits = log_base[None, :] + programme[cell_type] + batch_gene[batch]

    # genes never detected, rarely detected, and batch-specific genes
    zero_genes = rng.choice(others, 6, replace=False)
    rest = np.setdiff1d(others, zero_genes)
    rare_genes = rng.choice(rest, 12, replace=False)
    rest = np.setdiff1d(rest, rare_genes)
    only_b2 = rng.choice(rest, 8, replace=False)       # only in batch index 2
    rest = np.setdiff1d(rest, only_b2)
    only_b0 = rng.choice(rest, 5, replace=False)       # only in batch index 0
    logits[:, rare_genes] = -9.0
    logits[:, only_b2] = np.where(batch[:, None] == 2, 1.5, -np.inf)
    logits[:, only_b0] = np.where(batch[:, None] == 0, 1.0, -np.inf)

    # damaged cells: mito share strongly up
    damaged = rng.random(n_cells) < 0.03
    logits[np.ix_(damaged, mt_pos)] += 2.5

    p = np.exp(logits)
    p[:, zero_genes] = 0.0
    p /= p.sum(axis=1, keepdims=True)

    lib = np.exp(rng.normal(np.log(1000), 0.5, n_cells)) * batch_lib[batch]
    low_q = rng.random(n_cells) < 0.02                 # fail min_genes
    lib[low_q] = rng.uniform(20, 120, low_q.sum())
    mu = lib[:, None] * p
    theta = np.exp(rng.normal(np.log(8), 0.5, n_genes))[None, :]
    counts = rng.poisson(rng.gamma(theta, mu / theta))
    empty = rng.choice(n_cells, 2, replace=False)       # all-zero cells
    counts[empty] = 0

    x = sp.csr_matrix(counts.astype(np.float32))
    x.sort_indices()
    x.eliminate_zeros()
    obs = pd.DataFrame(
        {
            "batch": pd.Categorical.from_codes(batch, ["batch1", "batch2", "batch3"]),
            "cell_type": pd.Categorical.from_codes(cell_type, [f"type{k}" for k in range(n_types)]),
        },
        index=[f"cell{i:04d}" for i in range(n_cells)],
    )
    var = pd.DataFrame(index=pd.Index(names.astype(str)))
    adata = ad.AnnData(X=x, obs=obs, var=var)
    info = {
        "description": "seeded synthetic negative-binomial counts (make_synth)",
        "seed": seed,
        "n_mt_genes": int(n_mt),
        "mt_lookalike_genes_not_matching": sorted(["mt-Nd1", "MTOR", "XMT-1", "Mt-Co1"]),
        "n_empty_cells": 2,
        "n_low_quality_cells": int(low_q.sum()),
        "n_damaged_cells": int(damaged.sum()),
        "n_never_detected_genes": int(zero_genes.size),
        "batch_specific_genes": {
            "batch3_only": sorted(names[only_b2].tolist()),
            "batch1_only": sorted(names[only_b0].tolist()),
        },
        "batch_is_artificial": False,
    }
    return adata, info


def _sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def locate_real_zarr(real_source, cache_dir):
    """Return (path of 10x-10k-subset.zarr, provenance dict)."""
    prov = {"sdist": REAL_SDIST_NAME, "member": REAL_ZARR_IN_SDIST}
    if real_source is not None:
        src = Path(real_source)
        if src.is_dir() and src.name.endswith(".zarr"):
            prov["obtained_from"] = str(src)
            return src, prov
        if src.is_dir():
            cand = src / "tests" / "_data" / "10x-10k-subset.zarr"
            if cand.is_dir():
                prov["obtained_from"] = str(src)
                return cand, prov
            raise SystemExit(f"{src}: no tests/_data/10x-10k-subset.zarr inside")
        sdist = src
    else:
        cache_dir.mkdir(parents=True, exist_ok=True)
        sdist = cache_dir / REAL_SDIST_NAME
        if not sdist.is_file():
            cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                   "--no-binary", ":all:", f"scanpy=={REAL_SDIST_VERSION}",
                   "-d", str(cache_dir)]
            print("fetching the scanpy sdist:", " ".join(cmd), file=sys.stderr)
            subprocess.run(cmd, check=True, stdout=sys.stderr)
    prov["sdist_sha256"] = _sha256(sdist)
    if prov["sdist_sha256"] != REAL_SDIST_SHA256:
        raise SystemExit(f"{sdist}: sha256 {prov['sdist_sha256']} != expected {REAL_SDIST_SHA256}")
    prov["obtained_from"] = str(sdist)
    out = cache_dir / f"scanpy-{REAL_SDIST_VERSION}-10x-10k-subset.zarr"
    if not (out / ".complete").is_file():
        tmp = cache_dir / f".extract-{os.getpid()}"
        with tarfile.open(sdist, "r:gz") as tar:
            members = [m for m in tar.getmembers()
                       if m.name == REAL_ZARR_IN_SDIST or m.name.startswith(REAL_ZARR_IN_SDIST + "/")]
            if not members:
                raise SystemExit(f"{sdist}: {REAL_ZARR_IN_SDIST} not found")
            tar.extractall(tmp, members=members, filter="data")
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp / REAL_ZARR_IN_SDIST, out)
        shutil.rmtree(tmp, ignore_errors=True)
        (out / ".complete").touch()
    return out, prov


def make_real(zarr_path, prov):
    import zarr
    g = zarr.open_group(str(zarr_path), mode="r")
    dense = np.asarray(g["X"][:])
    obs_rec = np.asarray(g["obs"][:])
    var_rec = np.asarray(g["var"][:])
    if dense.dtype != np.float32 or not np.all(dense == np.round(dense)) or dense.min() < 0:
        raise SystemExit("real_10k: X is not a raw count matrix")
    obs_names = [b.decode() for b in obs_rec["index"]]
    gene_names = [b.decode() for b in var_rec["index"]]
    gene_ids = [b.decode() for b in var_rec["gene_ids"]]
    x = sp.csr_matrix(dense)
    x.sort_indices()
    x.eliminate_zeros()
    n = dense.shape[0]
    half = np.arange(n) >= n // 2
    obs = pd.DataFrame(
        {"batch": pd.Categorical.from_codes(half.astype(int), ["half1", "half2"])},
        index=obs_names,
    )
    var = pd.DataFrame({"gene_ids": gene_ids}, index=gene_names)
    adata = ad.AnnData(X=x, obs=obs, var=var)
    n_dup = int(adata.var_names.duplicated().sum())
    adata.var_names_make_unique()   # anndata's rule: 2nd 'Rp1' -> 'Rp1-1'
    info = {
        "description": "real 10x Genomics mouse counts (scanpy sdist tests/_data/10x-10k-subset.zarr): "
                       "10,000 cells x first 1,000 genes, dense float32 zarr converted to CSR float32",
        "source": prov,
        "var_names_made_unique": n_dup,
        "var_columns": ["gene_ids"],
        "batch_is_artificial": True,
        "batch_rule": "obs 'batch' = 'half1' for the first n_obs//2 cells, 'half2' for the rest",
        "mt_note": "mouse genes, none starts with 'MT-' (var['mt'] is all False, "
                   "so total_counts_mt == 0 and pct_counts_mt is 0, or NaN for empty cells)",
    }
    return adata, info


# ==========================================================================
# writing helpers
# ==========================================================================

def _dtype_str(a):
    dt = getattr(a, "dtype", None)
    if isinstance(dt, pd.CategoricalDtype):
        return "category"
    return str(np.dtype(dt)) if dt is not None else type(a).__name__


def describe_elems(adata):
    """{element path: {dtype, shape, encoding}} for what `adata` holds."""
    out = {}
    if adata.X is not None:
        out["X"] = _mat_desc(adata.X)
    for k, v in adata.layers.items():
        out[f"layers/{k}"] = _mat_desc(v)
    for k in adata.obs.columns:
        out[f"obs/{k}"] = {"dtype": _dtype_str(adata.obs[k]), "shape": [adata.n_obs]}
    for k in adata.var.columns:
        out[f"var/{k}"] = {"dtype": _dtype_str(adata.var[k]), "shape": [adata.n_vars]}
    for k, v in adata.obsm.items():
        out[f"obsm/{k}"] = _mat_desc(v)
    for k, v in adata.varm.items():
        out[f"varm/{k}"] = _mat_desc(v)

    def walk(prefix, d):
        for k, v in d.items():
            if isinstance(v, dict):
                walk(f"{prefix}/{k}", v)
            elif isinstance(v, np.ndarray):
                out[f"{prefix}/{k}"] = {"dtype": str(v.dtype), "shape": list(v.shape)}
    walk("uns", adata.uns)
    return out


def _mat_desc(m):
    enc = "csr_matrix" if sp.issparse(m) and m.format == "csr" else \
        ("csc_matrix" if sp.issparse(m) else "array")
    d = {"dtype": str(m.dtype), "shape": list(m.shape), "encoding": enc}
    if sp.issparse(m):
        d["nnz"] = int(m.nnz)
    return d


class Writer:
    def __init__(self, outdir):
        self.outdir = Path(outdir)

    def write(self, fname, adata, compression="gzip"):
        path = self.outdir / fname
        adata.write_h5ad(path, compression=compression)
        return {"file": fname, "elements": describe_elems(adata)}


def frame_only(obs=None, var=None, obs_names=None, var_names=None, **slots):
    """An AnnData without X that only carries the given frames / slots."""
    if obs is None:
        obs = pd.DataFrame(index=pd.Index(obs_names))
    if var is None:
        var = pd.DataFrame(index=pd.Index(var_names))
    return ad.AnnData(obs=obs, var=var, **slots)


def new_columns(before, after):
    return [c for c in after.columns if c not in set(before)]



# ==========================================================================
# HVG diagnostics: per-batch intermediates and ties at the selection cutoff
# ==========================================================================

def tie_report(score, selected, names, *, higher_is_better=True):
    """Describe how robust the selection `selected` (by `score`) is.

    - margin: (worst selected - best unselected) / |worst selected|, from the
      stored values; ~0 means a float rounding difference can flip genes.
    - straddling: groups of genes with *identical* score where some are
      selected and some are not (the choice inside such a group is
      implementation-defined, e.g. numpy's unstable argsort).
    - tied_groups_selected: number of identical-score groups (size > 1) among
      the selected genes (their ranks are a permutation inside the group).
    """
    score = np.asarray(score, dtype=np.float64)
    sel = np.asarray(selected, dtype=bool)
    sgn = 1.0 if higher_is_better else -1.0
    ok = ~np.isnan(score)
    rep = {"n_selected": int(sel.sum())}
    if sel.any() and (ok & ~sel).any():
        worst = np.min(sgn * score[sel & ok]) if (sel & ok).any() else np.nan
        best_out = np.max(sgn * score[~sel & ok])
        rep["margin"] = float((worst - best_out) / abs(worst)) if worst else float(worst - best_out)
    straddling, tied_sel = [], 0
    vals, inv, cnt = np.unique(score[ok], return_inverse=True, return_counts=True)
    idx_ok = np.flatnonzero(ok)
    for g in np.flatnonzero(cnt > 1):
        members = idx_ok[inv == g]
        s_in = sel[members]
        if s_in.any():
            tied_sel += 1
            if not s_in.all():
                straddling.append({"genes": [names[i] for i in members], "n_selected": int(s_in.sum()),
                                   "score": float(vals[g])})
    rep["tied_groups_selected"] = tied_sel
    rep["straddling"] = straddling
    return rep


def batched_cut_report(var, n_top):
    """Batched dispersion flavors: where the final top-n cut falls."""
    nb = var["highly_variable_nbatches"].to_numpy()
    dn = var["dispersions_norm"].to_numpy(np.float64)
    order = np.lexsort((-np.nan_to_num(dn, nan=-np.inf), -nb))
    last, first_out = order[n_top - 1], order[n_top]
    rep = {"n_selected": int(var["highly_variable"].sum()),
           "cut_nbatches": [int(nb[last]), int(nb[first_out])]}
    if nb[last] == nb[first_out]:
        a, b = dn[last], dn[first_out]
        rep["margin"] = float((a - b) / abs(a)) if a else float(a - b)
        rep["note"] = "cut inside one nbatches tier; margin is on the float32-stored mean dispersions_norm"
    else:
        rep["note"] = "cut falls between nbatches tiers (robust)"
    return rep


def hvg_diagnostics(logdata, var, kw):
    """Return (extras, manifest_fields). extras: {varm key: {value, description}}."""
    from scanpy.preprocessing._highly_variable_genes import (
        _Cutoffs, _highly_variable_genes_single_batch)
    names = list(logdata.var_names)
    flavor, batch_key = kw["flavor"], kw.get("batch_key")
    extras, fields = {}, {}
    n_top = kw.get("n_top_genes")
    if batch_key is None:
        cats = [None]
        masks = [np.ones(logdata.n_obs, bool)]
    else:
        col = logdata.obs[batch_key]
        cats = [str(c) for c in col.cat.categories]
        masks = [(col == c).to_numpy() for c in col.cat.categories]
        fields["batches"] = cats
        fields["batch_order_note"] = "varm per_batch_* columns follow this order (the categories' order)"
    per_batch = []
    if flavor in ("seurat", "cell_ranger"):
        cutoff = n_top if n_top is not None else _Cutoffs(
            kw.get("min_disp", 0.5), kw.get("max_disp", np.inf), kw.get("min_mean", 0.0125), kw.get("max_mean", 3))
        disp, hv = [], []
        for m in masks:
            sub = logdata[m].copy()
            df = _highly_variable_genes_single_batch(
                sub, layer=None, cutoff=cutoff, n_bins=20, flavor=flavor,
                filter_unexpressed_genes=batch_key is not None)
            disp.append(df["dispersions_norm"].to_numpy(np.float64))
            hv.append(df["highly_variable"].to_numpy(bool))
            if n_top is not None:
                per_batch.append(tie_report(df["dispersions_norm"].to_numpy(np.float64), hv[-1], names))
        if batch_key is not None:
            extras["per_batch_dispersions_norm"] = {
                "value": np.column_stack(disp),
                "description": "float64 dispersions_norm of each batch before averaging (0 for genes not "
                               "expressed in that batch), as _highly_variable_genes_single_batch returns it"}
            extras["per_batch_highly_variable"] = {
                "value": np.column_stack(hv).astype(np.uint8),
                "description": "per-batch highly_variable (uint8 0/1)"}
        if n_top is not None:
            fields["ties"] = {
                "score": "var/dispersions_norm (float64 inside scanpy, stored as float32)",
                "rule": ">= n-th highest per batch (all ties selected); batched: top n by (nbatches desc, "
                        "mean dispersions_norm desc), stable, ties in gene-name order",
                "per_batch": per_batch,
                "final": tie_report(var["dispersions_norm"].to_numpy(np.float64),
                                    var["highly_variable"].to_numpy(bool), names)
                if batch_key is None else batched_cut_report(var, n_top),
            }
    elif flavor.startswith("seurat_v3") or flavor == "pearson_residuals":
        counts = logdata.layers["counts"]
        scores, ranks, fits = [], [], []
        clip0 = None
        if flavor == "pearson_residuals":
            # scanpy loops over np.unique(obs[batch_key].values) (sorted labels)
            # and fixes clip from the first batch of that order.
            first = (np.ones(logdata.n_obs, bool) if batch_key is None else
                     (logdata.obs[batch_key] == np.unique(logdata.obs[batch_key].to_numpy())[0]).to_numpy())
            clip0 = float(np.sqrt(first.sum()))
        for m in masks:
            sub = ad.AnnData(X=counts[m], var=pd.DataFrame(index=logdata.var_names))
            if flavor == "pearson_residuals":
                df = sc.experimental.pp.highly_variable_genes(
                    sub, flavor="pearson_residuals", n_top_genes=n_top, clip=clip0, inplace=False)
                sc_ = df["residual_variances"].to_numpy(np.float64)
            else:
                df = sc.pp.highly_variable_genes(sub, flavor="seurat_v3", n_top_genes=n_top, inplace=False)
                sc_ = df["variances_norm"].to_numpy(np.float64)
                fits.append(_loess_log10_fit(sub.X))
            r = np.argsort(np.argsort(-sc_)).astype(np.float32)
            scores.append(sc_)
            ranks.append(r)
            per_batch.append(tie_report(sc_, r < n_top, names))
        sname = "residual_variances" if flavor == "pearson_residuals" else "variances_norm"
        if batch_key is not None:
            extras[f"per_batch_{sname}"] = {
                "value": np.column_stack(scores),
                "description": f"float64 {sname} of each batch before averaging"}
            extras["per_batch_rank"] = {
                "value": np.column_stack(ranks),
                "description": "scanpy's per-batch rank argsort(argsort(-score)) as float32 (0 = most variable); "
                               "inside groups of identical scores the order is numpy-implementation-defined"}
        if fits:
            extras["loess_log10_variance_fit"] = {
                "value": np.column_stack(fits),
                "description": "skmisc loess(x=log10(mean), y=log10(var), span=0.3, degree=2) fitted values "
                               "per batch (0 for genes with var == 0): scanpy's estimat_var; reg_std = sqrt(10**fit)"}
        fields["ties"] = {
            "score": f"var/{sname} (per batch: varm per_batch_{sname})",
            "rule": "rank = argsort(argsort(-score)) with numpy's unstable sort; ties are implementation-defined",
            "per_batch": per_batch,
        }
        if flavor == "pearson_residuals":
            fields["clip_used"] = clip0
            fields["clip_note"] = ("clip=None -> sqrt(n_cells of the FIRST batch in np.unique order), "
                                   "then reused for every batch (the variable is overwritten once)")
    return extras, fields


def _loess_log10_fit(x):
    from scanpy.preprocessing._utils import _get_mean_var
    from skmisc.loess import loess
    mean, var = _get_mean_var(x)
    nc = var > 0
    est = np.zeros(x.shape[1], dtype=np.float64)
    model = loess(np.log10(mean[nc]), np.log10(var[nc]), span=0.3, degree=2)
    model.fit()
    est[nc] = model.outputs.fitted_values
    return est

# ==========================================================================
# the preprocessing pipeline
# ==========================================================================

def run_dataset(name, adata_in, info, cfg, w):
    t0 = time.time()
    steps = {}
    entry = {"input": None, "config": cfg, "info": info, "steps": steps}
    entry["input"] = {
        **w.write(f"{name}.h5ad", adata_in, compression=None),
        "n_obs": adata_in.n_obs, "n_vars": adata_in.n_vars,
        "nnz": int(adata_in.X.nnz),
    }

    # ---------------------------------------------------------------- QC
    adata = adata_in.copy()
    adata.var["mt"] = adata.var_names.str.startswith("MT-")
    obs_before, var_before = list(adata.obs.columns), list(adata.var.columns)
    qc_params = dict(qc_vars=["mt"], percent_top=list(cfg["percent_top"]), log1p=True, inplace=True)
    sc.pp.calculate_qc_metrics(adata, qc_vars=["mt"], percent_top=tuple(cfg["percent_top"]),
                               log1p=True, inplace=True)
    qc_obs_cols = new_columns(obs_before, adata.obs)
    qc_var_cols = new_columns(var_before, adata.var)

    # ---------------------------------------------------------------- filters
    # scanpy order: filter_cells on the input, then filter_genes on the
    # cell-filtered data (as in the standard tutorial).
    cell_kept, n_genes = sc.pp.filter_cells(adata, min_genes=cfg["min_genes"], inplace=False)
    a_cells = adata[cell_kept].copy()
    gene_kept, n_cells = sc.pp.filter_genes(a_cells, min_cells=cfg["min_cells"], inplace=False)
    # the same through the in-place API (what a user runs)
    chk = adata_in.copy()
    sc.pp.filter_cells(chk, min_genes=cfg["min_genes"])
    sc.pp.filter_genes(chk, min_cells=cfg["min_cells"])
    assert chk.n_obs == cell_kept.sum() and chk.n_vars == gene_kept.sum()
    assert np.array_equal(chk.obs["n_genes"].to_numpy(), n_genes[cell_kept])
    assert np.array_equal(chk.var["n_cells"].to_numpy(), n_cells[gene_kept])

    qc_obs = adata.obs[qc_obs_cols].copy()
    qc_obs["filter_cells_kept"] = np.asarray(cell_kept, dtype=bool)
    qc_obs["filter_cells_n_genes"] = np.asarray(n_genes)
    qc_var = adata.var[["mt", *qc_var_cols]].copy()
    qc_var["filter_genes_kept"] = np.asarray(gene_kept, dtype=bool)
    qc_var["filter_genes_n_cells"] = np.asarray(n_cells)
    res = w.write(f"{name}.qc.h5ad", frame_only(obs=qc_obs, var=qc_var))
    steps["qc"] = {
        "call": "sc.pp.calculate_qc_metrics(adata, qc_vars=['mt'], percent_top=PERCENT_TOP, log1p=True, inplace=True)",
        "on": "input X (raw counts), all cells and genes; var['mt'] = var_names.str.startswith('MT-')",
        "params": qc_params,
        "file": res["file"],
        "obs_columns": qc_obs_cols,
        "var_columns": ["mt", *qc_var_cols],
        "elements": {k: v for k, v in res["elements"].items()
                     if k.split("/", 1)[-1] in set(qc_obs_cols) | {"mt", *qc_var_cols}},
    }
    steps["filter_cells"] = {
        "call": "sc.pp.filter_cells(adata, min_genes=MIN_GENES)",
        "on": "input X",
        "params": {"min_genes": cfg["min_genes"]},
        "file": res["file"],
        "mask": "obs/filter_cells_kept",
        "number": "obs/filter_cells_n_genes",
        "number_note": "scanpy's obs['n_genes'] (sum of X > 0 per cell), here for every input cell",
        "n_kept": int(cell_kept.sum()), "n_removed": int((~cell_kept).sum()),
        "elements": {k: res["elements"][k] for k in ("obs/filter_cells_kept", "obs/filter_cells_n_genes")},
    }
    steps["filter_genes"] = {
        "call": "sc.pp.filter_genes(adata, min_cells=MIN_CELLS)",
        "on": "X after filter_cells (counts of the kept cells only)",
        "params": {"min_cells": cfg["min_cells"]},
        "file": res["file"],
        "mask": "var/filter_genes_kept",
        "number": "var/filter_genes_n_cells",
        "number_note": "scanpy's var['n_cells'] (sum of X > 0 per gene over the kept cells), for every input gene",
        "n_kept": int(gene_kept.sum()), "n_removed": int((~gene_kept).sum()),
        "elements": {k: res["elements"][k] for k in ("var/filter_genes_kept", "var/filter_genes_n_cells")},
    }

    # ---------------------------------------------------------------- normalize
    filt = adata_in[cell_kept][:, gene_kept].copy()
    filt.layers["counts"] = filt.X.copy()
    target = 1e4
    d_norm = sc.pp.normalize_total(filt, target_sum=target, inplace=False)
    d_cpc = sc.pp.normalize_total(filt, target_sum=1.0, inplace=False)      # = counts per cell
    d_med = sc.pp.normalize_total(filt, target_sum=None, inplace=False)
    d_ehe = sc.pp.normalize_total(filt, target_sum=target, exclude_highly_expressed=True,
                                  max_fraction=0.05, inplace=False)
    d_ehe1 = sc.pp.normalize_total(filt, target_sum=1.0, exclude_highly_expressed=True,
                                   max_fraction=0.05, inplace=False)
    counts = filt.layers["counts"]
    tot = np.asarray(counts.sum(axis=1, dtype=np.float64)).ravel()
    # excluded genes: any cell with x > max_fraction * (all-gene total)
    rows = np.repeat(np.arange(counts.shape[0]), np.diff(counts.indptr))
    hi = counts.data > 0.05 * tot[rows]
    excluded = np.zeros(counts.shape[1], bool)
    excluded[counts.indices[hi]] = True
    assert np.array_equal(
        d_ehe1["norm_factor"],
        np.asarray(counts[:, ~excluded].sum(axis=1, dtype=np.float64)).ravel().astype(np.float32),
    )
    sc.pp.normalize_total(filt, target_sum=target)      # in place, as a user would
    assert np.array_equal(filt.X.data, d_norm["X"].data)
    filt.layers["normalized"] = filt.X.copy()
    sc.pp.log1p(filt)
    filt.uns.pop("log1p", None)
    median_target = float(np.median(d_cpc["norm_factor"]))

    pp_obs = pd.DataFrame(
        {
            "batch": filt.obs["batch"],
            "counts_per_cell": d_cpc["norm_factor"],
            "norm_factor": d_norm["norm_factor"],
            "norm_factor_median": d_med["norm_factor"],
            "ehe_counts_per_cell": d_ehe1["norm_factor"],
            "ehe_norm_factor": d_ehe["norm_factor"],
        },
        index=filt.obs_names,
    )
    pp_var = pd.DataFrame({"ehe_excluded": excluded}, index=filt.var_names)
    pp = ad.AnnData(X=filt.X, obs=pp_obs, var=pp_var,
                    layers={"counts": filt.layers["counts"], "normalized": filt.layers["normalized"]})
    res = w.write(f"{name}.pp.h5ad", pp)
    el = res["elements"]
    steps["subset"] = {
        "note": "all later steps run on input[filter_cells_kept][:, filter_genes_kept]; that counts "
                "matrix is layers/counts of this file (obs/var names give the kept cells / genes)",
        "file": res["file"], "n_obs": pp.n_obs, "n_vars": pp.n_vars,
        "elements": {"layers/counts": el["layers/counts"]},
    }
    steps["normalize_total"] = {
        "call": "sc.pp.normalize_total(adata, target_sum=1e4)",
        "on": "filtered counts",
        "params": {"target_sum": target},
        "file": res["file"],
        "matrix": "layers/normalized",
        "counts_per_cell": "obs/counts_per_cell",
        "norm_factor": "obs/norm_factor",
        "norm_factor_note": "norm_factor = counts_per_cell / target_sum in float32 (the divisor scanpy uses); "
                            "counts_per_cell = normalize_total(target_sum=1, inplace=False)['norm_factor']",
        "elements": {k: el[k] for k in ("layers/normalized", "obs/counts_per_cell", "obs/norm_factor")},
    }
    steps["normalize_total_median"] = {
        "call": "sc.pp.normalize_total(adata, target_sum=None, inplace=False)['norm_factor']",
        "on": "filtered counts",
        "params": {"target_sum": None},
        "target_sum_used": median_target,
        "target_sum_rule": "np.median(counts_per_cell) over ALL cells (CSR path; the dense path uses the median of the non-zero totals)",
        "file": res["file"],
        "norm_factor": "obs/norm_factor_median",
        "elements": {"obs/norm_factor_median": el["obs/norm_factor_median"]},
    }
    steps["normalize_total_exclude_highly_expressed"] = {
        "call": "sc.pp.normalize_total(adata, target_sum=1e4, exclude_highly_expressed=True, max_fraction=0.05)",
        "on": "filtered counts",
        "params": {"target_sum": target, "exclude_highly_expressed": True, "max_fraction": 0.05},
        "file": res["file"],
        "counts_per_cell": "obs/ehe_counts_per_cell",
        "norm_factor": "obs/ehe_norm_factor",
        "excluded_genes": "var/ehe_excluded",
        "n_excluded_genes": int(excluded.sum()),
        "note": "counts_per_cell = sum of the counts of the non-excluded genes (target_sum=1 call); "
                "the normalized matrix is layers/counts / norm_factor (row-wise, float32) and is not stored",
        "elements": {k: el[k] for k in ("obs/ehe_counts_per_cell", "obs/ehe_norm_factor", "var/ehe_excluded")},
    }
    steps["log1p"] = {
        "call": "sc.pp.log1p(adata)",
        "on": "layers/normalized (target_sum=1e4)",
        "params": {"base": None},
        "file": res["file"],
        "matrix": "X",
        "elements": {"X": el["X"]},
    }

    # ---------------------------------------------------------------- HVG
    logdata = ad.AnnData(X=filt.X, obs=pd.DataFrame({"batch": filt.obs["batch"]}, index=filt.obs_names),
                         var=pd.DataFrame(index=filt.var_names),
                         layers={"counts": filt.layers["counts"]},
                         uns={"log1p": {"base": None}})
    n_top = cfg["n_top_genes"]
    variants = [
        ("seurat", "sc.pp.highly_variable_genes", dict(flavor="seurat", n_top_genes=n_top)),
        ("seurat_batch", "sc.pp.highly_variable_genes", dict(flavor="seurat", n_top_genes=n_top, batch_key="batch")),
        ("seurat_cutoffs", "sc.pp.highly_variable_genes",
         dict(flavor="seurat", min_mean=0.0125, max_mean=3, min_disp=0.5)),
        ("seurat_cutoffs_batch", "sc.pp.highly_variable_genes",
         dict(flavor="seurat", min_mean=0.0125, max_mean=3, min_disp=0.5, batch_key="batch")),
        ("cell_ranger", "sc.pp.highly_variable_genes", dict(flavor="cell_ranger", n_top_genes=n_top)),
        ("cell_ranger_batch", "sc.pp.highly_variable_genes",
         dict(flavor="cell_ranger", n_top_genes=n_top, batch_key="batch")),
        ("seurat_v3", "sc.pp.highly_variable_genes", dict(flavor="seurat_v3", n_top_genes=n_top, layer="counts")),
        ("seurat_v3_batch", "sc.pp.highly_variable_genes",
         dict(flavor="seurat_v3", n_top_genes=n_top, layer="counts", batch_key="batch")),
        ("seurat_v3_paper_batch", "sc.pp.highly_variable_genes",
         dict(flavor="seurat_v3_paper", n_top_genes=n_top, layer="counts", batch_key="batch")),
        ("pearson_residuals", "sc.experimental.pp.highly_variable_genes",
         dict(flavor="pearson_residuals", n_top_genes=n_top, layer="counts")),
        ("pearson_residuals_batch", "sc.experimental.pp.highly_variable_genes",
         dict(flavor="pearson_residuals", n_top_genes=n_top, layer="counts", batch_key="batch")),
    ]
    have_skmisc = pkg("scikit-misc") is not None
    hvg_seurat = None
    for vname, fn, kw in variants:
        key = f"hvg_{vname}"
        if kw["flavor"].startswith("seurat_v3") and not have_skmisc:
            steps[key] = {"call": f"{fn}(adata, **params)", "params": kw, "skipped": "scikit-misc not installed"}
            print(f"  {name}: {key} skipped (scikit-misc not installed)", file=sys.stderr)
            continue
        a = logdata.copy()
        before = list(a.var.columns)
        func = sc.experimental.pp.highly_variable_genes if fn.startswith("sc.experimental") \
            else sc.pp.highly_variable_genes
        func(a, **kw)
        cols = new_columns(before, a.var)
        extras, diag = hvg_diagnostics(logdata, a.var, kw)
        res = w.write(f"{name}.{key}.h5ad",
                      frame_only(var=a.var[cols].copy(), obs_names=a.obs_names,
                                 varm={k: v["value"] for k, v in extras.items()}))
        steps[key] = {
            "call": f"{fn}(adata, **params)",
            "on": "layers/counts of the filtered data" if "layer" in kw
                  else "log1p data (X of the .pp file), uns['log1p']['base'] = None",
            "params": kw,
            "file": res["file"],
            "var_columns": cols,
            "n_highly_variable": int(a.var["highly_variable"].sum()),
            "elements": {k: v for k, v in res["elements"].items() if k.startswith("var/")},
            "extras": {f"varm/{k}": {**res["elements"][f"varm/{k}"], "description": v["description"]}
                       for k, v in extras.items()},
            **diag,
        }
        if vname == "seurat":
            hvg_seurat = a.var["highly_variable"].to_numpy().copy()

    # ---------------------------------------------------------------- scale
    sub = ad.AnnData(X=filt.X[:, hvg_seurat], obs=pd.DataFrame(index=filt.obs_names),
                     var=pd.DataFrame(index=filt.var_names[hvg_seurat]))
    a_sc = sub.copy()
    sc.pp.scale(a_sc, max_value=10)
    res = w.write(f"{name}.scale.h5ad", a_sc)
    steps["scale"] = {
        "call": "sc.pp.scale(adata, max_value=10)",
        "on": "log1p X restricted to hvg_seurat's highly_variable genes (in filtered-gene order)",
        "params": {"zero_center": True, "max_value": 10},
        "file": res["file"],
        "matrix": "X", "mean": "var/mean", "std": "var/std",
        "dtype_note": "sparse float32 input -> `x -= mean` densifies to float64; the result is a dense float64 array",
        "elements": res["elements"],
    }
    a_nz = sub.copy()
    sc.pp.scale(a_nz, zero_center=False, max_value=10)
    res = w.write(f"{name}.scale_nozc.h5ad", a_nz)
    steps["scale_no_zero_center"] = {
        "call": "sc.pp.scale(adata, zero_center=False, max_value=10)",
        "on": "same input as 'scale'",
        "params": {"zero_center": False, "max_value": 10},
        "file": res["file"],
        "matrix": "X", "mean": "var/mean", "std": "var/std",
        "dtype_note": "CSR stays CSR float32 (in-place numba kernel): data = min(max_value, data / std); no lower clip",
        "elements": res["elements"],
    }

    # ---------------------------------------------------------------- PCA
    n_comps = cfg["n_comps"]
    for solver in ("arpack", "covariance_eigh"):
        a = a_sc.copy()
        sc.pp.pca(a, n_comps=n_comps, svd_solver=solver, random_state=0)
        out = frame_only(obs_names=a.obs_names, var_names=a.var_names,
                         obsm={"X_pca": a.obsm["X_pca"]}, varm={"PCs": a.varm["PCs"]},
                         uns={"pca": {"variance": a.uns["pca"]["variance"],
                                      "variance_ratio": a.uns["pca"]["variance_ratio"]}})
        res = w.write(f"{name}.pca_{solver}.h5ad", out)
        steps[f"pca_{solver}"] = {
            "call": f"sc.pp.pca(adata, n_comps={n_comps}, svd_solver='{solver}', random_state=0)",
            "on": "the dense float64 output of 'scale' (X of the .scale file)",
            "params": {"n_comps": n_comps, "svd_solver": solver, "random_state": 0,
                       "zero_center": True, "dtype": "float32"},
            "file": res["file"],
            "elements": res["elements"],
        }
    # PCA without centring: scanpy hands the scaled data to TruncatedSVD
    a = a_sc.copy()
    sc.pp.pca(a, n_comps=n_comps, zero_center=False, svd_solver="arpack", random_state=0)
    out = frame_only(obs_names=a.obs_names, var_names=a.var_names,
                     obsm={"X_pca": a.obsm["X_pca"]}, varm={"PCs": a.varm["PCs"]},
                     uns={"pca": {"variance": a.uns["pca"]["variance"],
                                  "variance_ratio": a.uns["pca"]["variance_ratio"]}})
    res = w.write(f"{name}.pca_no_zero_center.h5ad", out)
    steps["pca_no_zero_center"] = {
        "call": f"sc.pp.pca(adata, n_comps={n_comps}, zero_center=False, svd_solver='arpack', random_state=0)",
        "on": "the dense float64 output of 'scale' (X of the .scale file)",
        "params": {"n_comps": n_comps, "svd_solver": "arpack", "random_state": 0, "zero_center": False},
        "file": res["file"],
        "elements": res["elements"],
        "note": "TruncatedSVD: variance = np.var(X_pca, axis=0); variance_ratio = variance / np.var(X, axis=0).sum()",
    }
    print(f"{name} done ({time.time() - t0:.1f} s)", file=sys.stderr)
    return entry


# ==========================================================================
# main
# ==========================================================================

SYNTH_CFG = {"percent_top": [50, 100, 200, 500], "min_genes": 100, "min_cells": 3,
             "n_top_genes": 500, "n_comps": 50}
REAL_CFG = {"percent_top": [50, 100, 200, 500], "min_genes": 20, "min_cells": 3,
            "n_top_genes": 200, "n_comps": 50}

NOTES = {
    "comparison": "scanpy computes these with specific float32/float64 operation orders (SCANPY_NOTES.md). "
                  "Integer-valued results (masks, counts, n_genes/n_cells, totals of integer counts) are exact; "
                  "float sums depend on summation order (compare with a relative tolerance ~1e-6 for float32, "
                  "~1e-12 for float64 statistics); log1p of float32 uses numpy's float32 log1p (may differ from "
                  "libm by 1 ulp); PCA is LAPACK/ARPACK output (tolerance ~1e-6 relative on variances, "
                  "~1e-5 on loadings/scores).",
    "pca_sign_convention": "sklearn svd_flip(u, Vt, u_based_decision=False) for both arpack and covariance_eigh: "
                           "for every component k, j = argmax_j |PCs[j, k]| (first index on ties); if PCs[j, k] < 0 "
                           "the component (PCs[:, k] and X_pca[:, k]) is negated, so the largest-|.| loading of "
                           "every component is positive.",
    "pca_variance": "variance = S**2 / (n_obs - 1) (arpack) or the clipped covariance eigenvalues (covariance_eigh); "
                    "variance_ratio = variance / total variance, where total = sum over genes of var(ddof=1) of the "
                    "input (arpack: sum((X - mean)**2) / (n - 1); covariance_eigh: sum of ALL eigenvalues).",
    "hvg_columns": "each hvg_* file's var holds exactly the columns that call added to adata.var, with scanpy's dtypes "
                   "(e.g. dispersions_norm is float32, highly_variable_rank float32/float64 as scanpy writes it).",
    "threads": "NUMBA_NUM_THREADS=OMP_NUM_THREADS=OPENBLAS_NUM_THREADS=1 while generating",
}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("outdir")
    ap.add_argument("--real-source", default=None,
                    help="scanpy-1.11.5 sdist .tar.gz, an extracted sdist dir, or the 10x-10k-subset.zarr dir")
    ap.add_argument("--no-real", action="store_true", help="only the synthetic dataset")
    ap.add_argument("--self-check", action="store_true",
                    help="afterwards, re-derive the outputs with check_pp_oracle.py")
    args = ap.parse_args()

    outdir = Path(args.outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    cache = Path(os.environ.get("ANNDATA_OOM_CACHE", Path.home() / ".cache" / "anndata-oom")) / "scanpy-sdist"
    w = Writer(outdir)
    t0 = time.time()

    if version("scanpy") != "1.11.5":
        print(f"warning: SCANPY_NOTES.md describes scanpy 1.11.5, running {version('scanpy')}", file=sys.stderr)

    datasets = {}
    synth, synth_info = make_synth()
    datasets["synth_3k"] = run_dataset("synth_3k", synth, synth_info, SYNTH_CFG, w)
    if not args.no_real:
        zpath, prov = locate_real_zarr(args.real_source, cache)
        real, real_info = make_real(zpath, prov)
        datasets["real_10k"] = run_dataset("real_10k", real, real_info, REAL_CFG, w)

    import numba
    manifest = {
        "format": MANIFEST_FORMAT,
        "generator": "tests/python/make_pp_oracle.py",
        "versions": {p: pkg(p) for p in ("scanpy", "anndata", "numpy", "scipy", "pandas", "scikit-learn",
                                         "numba", "statsmodels", "scikit-misc", "h5py", "zarr")},
        "python": sys.version.split()[0],
        "numba_threads": numba.get_num_threads(),
        "element_paths": "keys of 'elements' are paths inside the step's .h5ad: X, layers/NAME, obs/COL, var/COL, "
                         "obsm/NAME, varm/NAME, uns/pca/variance ...; files without X hold only frames/slots",
        "notes": NOTES,
        "datasets": datasets,
    }
    (outdir / "pp_manifest.json").write_text(json.dumps(manifest, indent=1, default=_json_default) + "\n")
    print(f"wrote {outdir / 'pp_manifest.json'} ({time.time() - t0:.1f} s)", file=sys.stderr)

    if args.self_check:
        here = Path(__file__).resolve().parent
        sys.path.insert(0, str(here))
        import check_pp_oracle
        sys.exit(check_pp_oracle.check(outdir))


def _json_default(o):
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.bool_):
        return bool(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(type(o))


if __name__ == "__main__":
    main()
