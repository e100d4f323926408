#!/usr/bin/env python
"""Write a synthetic single-cell count matrix as a CSR .h5ad, in chunks.

Usage (main venv, anndata >= 0.12):

    python bench/generate.py OUT.h5ad --n-obs 100000 --n-vars 30000 --seed 0
        [--density 0.06] [--batch 10000] [--workers 2] [--verify]

X is never held in memory: cells are generated in batches of --batch rows
(by --workers processes) and appended to resizable, chunked, uncompressed
datasets (X/data float32, X/indices int32, X/indptr int64), the layout
anndata >= 0.12 writes (h5py's automatic chunk size for the final length).
obs / var / the empty elements are written with anndata's own write_elem,
so the result is a valid .h5ad.

The model (seeded and deterministic; the output does not depend on
--workers, and --batch only changes where the random streams restart):

* gene means mu_g ~ lognormal; 12 cell types, each a multiplicative
  programme over the genes (about 3% marker genes up 2-8x, plus mild
  per-type noise); per-cell size factor s_i ~ lognormal(0, 0.4).
* non-zero positions: each cell wants k_i ~ density * n_vars * s_i^0.7
  detected genes. It draws d_i genes with replacement from its type's gene
  weights (alias method, O(1) per draw) and keeps the distinct ones; d_i
  is chosen from the expected-distinct curve so that E[#distinct] = k_i.
* values at those positions: 1 + NegativeBinomial(r = 2, mean = mu_tg * s_i)
  (a zero-truncated count), stored as float32. Rows come out sorted.
"""

import argparse
import os
import sys
import time
import warnings

import h5py
import numpy as np
import pandas as pd

warnings.filterwarnings("ignore")

N_TYPES = 12
N_BATCHES = 4
NB_R = 2.0
SUB = 2000  # cells per de-duplication bitmap inside a worker (SUB * n_vars bytes)


# --------------------------------------------------------------------------
# The model: gene tables shared by all workers


def build_model(n_vars: int, density: float, seed: int):
    rng = np.random.default_rng([seed, 0])
    mu = rng.lognormal(mean=-1.5, sigma=1.5, size=n_vars)
    prog = np.exp(rng.normal(0.0, 0.25, size=(N_TYPES, n_vars)))
    for t in range(N_TYPES):
        markers = rng.choice(n_vars, size=max(1, int(0.03 * n_vars)), replace=False)
        prog[t, markers] *= np.exp(rng.uniform(np.log(2), np.log(8), size=markers.size))
    mu_t = mu[None, :] * prog  # (types, genes) expression means at size factor 1
    # Selection weights: tempered so that reaching ~6% distinct genes does
    # not need huge numbers of draws on the few very highly expressed genes.
    w = mu_t**0.6
    w /= w.sum(axis=1, keepdims=True)
    prob = np.empty((N_TYPES, n_vars), dtype=np.float64)
    alias = np.empty((N_TYPES, n_vars), dtype=np.int32)
    for t in range(N_TYPES):
        prob[t], alias[t] = vose_alias(w[t])
    # Expected distinct genes after d draws (Poissonised): U_t(d) = sum_g 1 - exp(-d w_g).
    grid = np.geomspace(1, 200 * n_vars, 600)
    curves = np.stack([np.array([np.sum(-np.expm1(-d * w[t])) for d in grid]) for t in range(N_TYPES)])
    type_p = rng.dirichlet(np.full(N_TYPES, 3.0))
    return {
        "mu_t": mu_t.astype(np.float32),
        "prob": prob.astype(np.float32),
        "alias": alias,
        "grid": grid,
        "curves": curves,
        "type_p": type_p,
        "density": density,
        "n_vars": n_vars,
        "seed": seed,
    }


def vose_alias(p: np.ndarray):
    """Walker/Vose alias table for sampling index i with probability p[i]."""
    n = p.size
    q = p * n
    prob = np.zeros(n)
    alias = np.zeros(n, dtype=np.int64)
    small = list(np.flatnonzero(q < 1.0))
    large = list(np.flatnonzero(q >= 1.0))
    while small and large:
        s, l_ = small.pop(), large.pop()
        prob[s] = q[s]
        alias[s] = l_
        q[l_] = q[l_] + q[s] - 1.0
        (small if q[l_] < 1.0 else large).append(l_)
    for i in large + small:
        prob[i] = 1.0
        alias[i] = i
    return prob, alias


def cell_metadata(n_obs: int, model):
    """Cell types, batches and size factors for all cells (small: O(n_obs))."""
    rng = np.random.default_rng([model["seed"], 1])
    types = rng.choice(N_TYPES, size=n_obs, p=model["type_p"]).astype(np.int8)
    batches = rng.integers(0, N_BATCHES, size=n_obs).astype(np.int8)
    size = rng.lognormal(0.0, 0.4, size=n_obs).astype(np.float32)
    return types, batches, size


# --------------------------------------------------------------------------
# Workers

_M = None


def _init(model):
    global _M
    _M = model


def gen_batch(job):
    """Rows [start, end): returns (row nnz counts int64, indices int32, data float32)."""
    b, start, types, size = job
    m = _M
    n_vars = m["n_vars"]
    rng = np.random.default_rng([m["seed"], 2, b])
    target_mean = m["density"] * n_vars
    # k_i ~ target * s^0.7 (normalised so that E[k] = target), d_i from U_t^-1(k_i).
    s07 = size.astype(np.float64) ** 0.7 / np.exp(0.5 * (0.7 * 0.4) ** 2)
    k = np.clip(target_mean * s07, 5, 0.6 * n_vars)
    d = np.empty(len(types))
    for t in np.unique(types):
        sel = types == t
        d[sel] = np.interp(k[sel], m["curves"][t], m["grid"])
    d = np.maximum(1, np.round(d)).astype(np.int64)
    counts_all, idx_all, val_all = [], [], []
    for a in range(0, len(types), SUB):
        e = min(a + SUB, len(types))
        nb = e - a
        dd = d[a:e]
        row = np.repeat(np.arange(nb, dtype=np.int64), dd)
        trow = types[a:e][row]
        x = rng.random(row.size, dtype=np.float64) * n_vars
        j = x.astype(np.int64)
        frac = (x - j).astype(np.float32)
        keep = frac < m["prob"][trow, j]
        gene = np.where(keep, j, m["alias"][trow, j])
        del x, j, frac, keep, trow
        bitmap = np.zeros(nb * n_vars, dtype=bool)
        bitmap[row * n_vars + gene] = True
        del row, gene
        flat = np.flatnonzero(bitmap)
        del bitmap
        r = flat // n_vars
        g = (flat - r * n_vars).astype(np.int32)
        counts = np.bincount(r, minlength=nb).astype(np.int64)
        lam = m["mu_t"][types[a:e][r], g].astype(np.float64) * size[a:e][r]
        vals = 1.0 + rng.negative_binomial(NB_R, NB_R / (NB_R + lam))
        counts_all.append(counts)
        idx_all.append(g)
        val_all.append(vals.astype(np.float32))
    return b, np.concatenate(counts_all), np.concatenate(idx_all), np.concatenate(val_all)


# --------------------------------------------------------------------------
# obs / var


def gene_names(n_vars: int, seed: int):
    rng = np.random.default_rng([seed, 3])
    n_mt = max(1, round(0.02 * n_vars))
    is_mt = np.zeros(n_vars, dtype=bool)
    is_mt[rng.choice(n_vars, size=n_mt, replace=False)] = True
    names = np.where(is_mt, np.char.add("MT-G", np.arange(n_vars).astype(str)), np.char.add("GENE", np.arange(n_vars).astype(str)))
    ids = np.char.add("ENSG", np.char.zfill(np.arange(n_vars).astype(str), 11))
    return names.astype(object), ids.astype(object)


def write_frames(f: h5py.File, n_obs: int, n_vars: int, types, batches, seed: int):
    import anndata as ad

    write_elem = getattr(getattr(ad, "io", None), "write_elem", None) or ad.experimental.write_elem
    obs = pd.DataFrame(
        {
            "cell_type": pd.Categorical.from_codes(types.astype(np.int64), [f"type_{t:02d}" for t in range(N_TYPES)]),
            "batch": pd.Categorical.from_codes(batches.astype(np.int64), [f"batch_{b}" for b in range(N_BATCHES)]),
        },
        index=pd.Index(np.char.add("cell_", np.arange(n_obs).astype(str)).astype(object)),
    )
    names, ids = gene_names(n_vars, seed)
    var = pd.DataFrame({"gene_ids": ids}, index=pd.Index(names))
    write_elem(f, "obs", obs)
    write_elem(f, "var", var)
    for k in ["layers", "obsm", "obsp", "uns", "varm", "varp"]:
        write_elem(f, k, {})


# --------------------------------------------------------------------------


def generate(out: str, n_obs: int, n_vars: int, seed: int, density: float, batch: int, workers: int):
    from h5py._hl.filters import guess_chunk

    t0 = time.perf_counter()
    model = build_model(n_vars, density, seed)
    types, batches, size = cell_metadata(n_obs, model)
    print(f"model ready in {time.perf_counter() - t0:.1f}s", flush=True)
    tmp = out + ".partial"
    if os.path.exists(tmp):
        os.remove(tmp)
    est_nnz = int(n_obs * n_vars * density)
    with h5py.File(tmp, "w") as f:
        f.attrs["encoding-type"] = "anndata"
        f.attrs["encoding-version"] = "0.1.0"
        write_frames(f, n_obs, n_vars, types, batches, seed)
        g = f.create_group("X")
        g.attrs["encoding-type"] = "csr_matrix"
        g.attrs["encoding-version"] = "0.1.0"
        g.attrs["shape"] = np.array([n_obs, n_vars], dtype=np.int64)
        # The chunk size h5py (and so anndata) picks for a resizable dataset of the expected length.
        ds_data = g.create_dataset("data", shape=(0,), maxshape=(None,), dtype=np.float32, chunks=guess_chunk((est_nnz,), (None,), 4))
        ds_idx = g.create_dataset("indices", shape=(0,), maxshape=(None,), dtype=np.int32, chunks=guess_chunk((est_nnz,), (None,), 4))
        ds_ptr = g.create_dataset("indptr", shape=(n_obs + 1,), maxshape=(None,), dtype=np.int64, chunks=guess_chunk((n_obs + 1,), (None,), 8))
        ds_ptr[0] = 0
        jobs = [(b, a, types[a : min(a + batch, n_obs)], size[a : min(a + batch, n_obs)]) for b, a in enumerate(range(0, n_obs, batch))]
        starts = [a for _, a, _, _ in jobs]
        nnz = 0
        done = 0
        t1 = time.perf_counter()
        if workers > 1:
            import multiprocessing as mp

            pool = mp.get_context("fork").Pool(workers, initializer=_init, initargs=(model,))
            results = pool.imap(gen_batch, jobs, chunksize=1)
        else:
            _init(model)
            pool = None
            results = map(gen_batch, jobs)
        for b, counts, idx, vals in results:
            a = starts[b]
            ptr = nnz + np.cumsum(counts)
            ds_ptr[a + 1 : a + 1 + counts.size] = ptr
            n_new = nnz + idx.size
            ds_data.resize((n_new,))
            ds_idx.resize((n_new,))
            ds_data[nnz:n_new] = vals
            ds_idx[nnz:n_new] = idx
            nnz = n_new
            done += counts.size
            el = time.perf_counter() - t1
            rate = done / el if el > 0 else 0
            eta = (n_obs - done) / rate if rate else float("nan")
            print(
                f"  {done:>10,}/{n_obs:,} cells  nnz {nnz:,} ({nnz / (done * n_vars):.2%})  "
                f"{el:6.1f}s  {rate:,.0f} cells/s  eta {eta:.0f}s",
                flush=True,
            )
        if pool is not None:
            pool.close()
            pool.join()
    os.replace(tmp, out)
    el = time.perf_counter() - t0
    gb = os.path.getsize(out) / 1e9
    print(f"wrote {out}: {n_obs:,} x {n_vars:,}, nnz {nnz:,} (density {nnz / (n_obs * n_vars):.2%}), {gb:.2f} GB in {el:.1f}s", flush=True)


def verify(path: str):
    import anndata as ad
    import scipy.sparse as sp

    a = ad.read_h5ad(path)
    X = a.X
    assert sp.issparse(X) and X.format == "csr", type(X)
    assert X.dtype == np.float32 and X.indices.dtype == np.int32 and X.indptr.dtype == np.int64, (X.dtype, X.indices.dtype, X.indptr.dtype)
    assert X.has_sorted_indices and X.has_canonical_format
    dens = X.nnz / (X.shape[0] * X.shape[1])
    mt = a.var_names.str.startswith("MT-").mean()
    print(f"verify: anndata.read_h5ad OK {a.shape}, density {dens:.2%}, min value {X.data.min():.0f}, "
          f"max {X.data.max():.0f}, mean value {X.data.mean():.2f}, per-cell total median {np.median(np.asarray(X.sum(1))):.0f}, "
          f"MT- genes {mt:.1%}, cell types {a.obs['cell_type'].nunique()}, batches {a.obs['batch'].nunique()}, "
          f"obs cols {list(a.obs.columns)}, var cols {list(a.var.columns)}")
    assert 0.05 <= dens <= 0.07, dens
    return dens


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out")
    ap.add_argument("--n-obs", type=int, required=True)
    ap.add_argument("--n-vars", type=int, required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--density", type=float, default=0.06)
    ap.add_argument("--batch", type=int, default=10_000, help="cells per generated batch")
    ap.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    ap.add_argument("--verify", action="store_true", help="read the result back with anndata (small files only)")
    args = ap.parse_args(argv)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    generate(args.out, args.n_obs, args.n_vars, args.seed, args.density, args.batch, args.workers)
    if args.verify:
        verify(args.out)


if __name__ == "__main__":
    sys.exit(main())
