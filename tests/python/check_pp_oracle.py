#!/usr/bin/env python
"""Re-derive make_pp_oracle.py's scanpy outputs with plain NumPy, following
SCANPY_NOTES.md, and report how closely they agree.

Usage:  python check_pp_oracle.py OUTDIR      (after make_pp_oracle.py OUTDIR)

This is executable documentation: every function below is the algorithm the
notes describe (same float32 / float64 operation order where scanpy's result
depends on it), written without scanpy, so the TypeScript/Rust engine can be
ported from it. It exits non-zero if anything disagrees beyond the tolerance
stated next to each check ("exact" means bit-identical, NaN == NaN).
"""

import os

for _var in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import json  # noqa: E402
import sys  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import scipy.sparse as sp  # noqa: E402

sys.dont_write_bytecode = True
import anndata as ad  # noqa: E402

warnings.filterwarnings("ignore")
F32 = np.float32


# ==========================================================================
# shared kernels
# ==========================================================================

def col_mean_var(x):
    """scanpy _get_mean_var(x, axis=0) for CSR float32 on ONE numba thread:
    float64 sums in row order, squares computed in float32 (value * value
    with value a float32 scalar), var = (s2/n - mean**2) * (n / (n - 1))."""
    n, m = x.shape
    d = x.data
    s1 = np.bincount(x.indices, weights=d.astype(np.float64), minlength=m)
    s2 = np.bincount(x.indices, weights=(d * d).astype(np.float64), minlength=m)
    mean = s1 / n
    var = s2 / n - mean ** 2
    if n != 1:
        var = var * (n / (n - 1))
    return mean, var


def row_sums_f32(x):
    """Per-row totals; for integer counts below 2**24 every order gives the same float32."""
    return np.add.reduceat(np.r_[x.data.astype(np.float64), 0.0], x.indptr[:-1])[: x.shape[0]] \
        * (np.diff(x.indptr) > 0)


# ==========================================================================
# QC / filters / normalize / log1p
# ==========================================================================

def qc_metrics(x, is_mt, percent_top):
    n, m = x.shape
    obs, var = {}, {}
    nnz = np.diff(x.indptr).astype(np.int32)
    tot = row_sums_f32(x).astype(F32)
    obs["n_genes_by_counts"] = nnz
    obs["log1p_n_genes_by_counts"] = np.log1p(nnz.astype(np.float64))
    obs["total_counts"] = tot
    obs["log1p_total_counts"] = np.log1p(tot)
    top = np.zeros((n, len(percent_top)))
    for i in range(n):
        row = np.sort(x.data[x.indptr[i]:x.indptr[i + 1]].astype(np.float64))[::-1]
        cum = np.cumsum(row)
        for j, k in enumerate(sorted(percent_top)):
            acc = cum[min(k, row.size) - 1] if row.size else 0.0
            top[i, j] = np.float64(F32(acc)) / np.float64(tot[i]) if tot[i] else np.nan
    for j, k in enumerate(sorted(percent_top)):
        obs[f"pct_counts_in_top_{k}_genes"] = top[:, j] * 100
    mt = row_sums_f32(x[:, is_mt].tocsr()).astype(F32) if is_mt.any() else np.zeros(n, F32)
    obs["total_counts_mt"] = mt
    obs["log1p_total_counts_mt"] = np.log1p(mt)
    with np.errstate(invalid="ignore", divide="ignore"):
        obs["pct_counts_mt"] = (mt / tot) * F32(100)
    ncells = np.bincount(x.indices, minlength=m).astype(np.int64)
    mean, _ = col_mean_var(x)
    var["n_cells_by_counts"] = ncells
    var["mean_counts"] = mean
    var["log1p_mean_counts"] = np.log1p(mean)
    var["pct_dropout_by_counts"] = (1 - ncells / n) * 100
    vt = np.bincount(x.indices, weights=x.data.astype(np.float64), minlength=m).astype(F32)
    var["total_counts"] = vt
    var["log1p_total_counts"] = np.log1p(vt)
    return obs, var


def normalize_factors(counts, target_sum, exclude_highly_expressed=False, max_fraction=0.05):
    """(norm_factor float32, counts_per_cell float32, excluded mask)."""
    cpc = row_sums_f32(counts).astype(F32)
    excluded = np.zeros(counts.shape[1], bool)
    if exclude_highly_expressed:
        rows = np.repeat(np.arange(counts.shape[0]), np.diff(counts.indptr))
        hi = counts.data.astype(np.float64) > max_fraction * cpc[rows].astype(np.float64)
        excluded[counts.indices[hi]] = True
        keep = ~excluded[counts.indices]
        cpc = np.bincount(rows[keep], weights=counts.data[keep].astype(np.float64),
                          minlength=counts.shape[0]).astype(F32)
    if target_sum is None:
        target_sum = np.median(cpc)          # CSR path: median over ALL cells
    return cpc / F32(target_sum), cpc, excluded


def normalize_matrix(counts, norm_factor):
    nf = norm_factor + (norm_factor == 0)    # allow_divide_by_zero=False
    out = counts.copy()
    out.data = counts.data / np.repeat(nf, np.diff(counts.indptr))
    return out


# ==========================================================================
# HVG: dispersion flavors
# ==========================================================================

def pd_cut_codes(values, n_bins):
    """pandas.cut(values, n_bins) codes (right-closed, lowest edge lowered by 0.1% of the range)."""
    mn, mx = values.min(), values.max()
    if mn == mx:
        mn -= 0.001 * abs(mn) if mn != 0 else 0.001
        mx += 0.001 * abs(mx) if mx != 0 else 0.001
        bins = np.linspace(mn, mx, n_bins + 1, endpoint=True)
    else:
        bins = np.linspace(mn, mx, n_bins + 1, endpoint=True)
        bins[0] -= (mx - mn) * 0.001
    return np.searchsorted(bins, values, side="left") - 1


def cut_codes_edges(values, edges):
    if len(np.unique(edges)) < len(edges):
        raise ValueError("Bin edges must be unique")  # what pandas does (duplicates='raise')
    return np.searchsorted(edges, values, side="left") - 1


def dispersion_single(xlog, flavor, *, n_top=None, cutoffs=None, n_bins=20, filter_unexpressed=False):
    """_highly_variable_genes_single_batch -> dict of float64 columns + hv mask."""
    n, m = xlog.shape
    filt = (np.bincount(xlog.indices[xlog.data > 0], minlength=m) >= 1) if filter_unexpressed \
        else np.ones(m, bool)
    x = xlog[:, filt].tocsr() if not filt.all() else xlog
    if flavor == "seurat":
        x = x.copy()
        x.data = np.expm1(x.data)            # float32 expm1
    mean, var = col_mean_var(x)
    mean[mean == 0] = 1e-12
    disp = var / mean
    if flavor == "seurat":
        disp[disp == 0] = np.nan
        with np.errstate(divide="ignore", invalid="ignore"):
            disp = np.log(disp)
        mean = np.log1p(mean)
        codes = pd_cut_codes(mean, n_bins)
    else:
        edges = np.r_[-np.inf, np.percentile(mean, np.arange(10, 105, 5)), np.inf]
        codes = cut_codes_edges(mean, edges)
    avg = np.full(x.shape[1], np.nan)
    dev = np.full(x.shape[1], np.nan)
    for b in np.unique(codes):
        sel = codes == b
        d = disp[sel]
        dd = d[~np.isnan(d)]
        if flavor == "seurat":
            a = dd.mean() if dd.size else np.nan
            s = dd.std(ddof=1) if dd.size > 1 else np.nan
            if np.isnan(s):                  # single-gene bin: dev <- avg, avg <- 0
                s, a = a, 0.0
        else:
            a = np.median(dd) if dd.size else np.nan
            s = np.median(np.abs(d - a) / 0.6744897501960817) if d.size else np.nan
        avg[sel], dev[sel] = a, s
    with np.errstate(divide="ignore", invalid="ignore"):
        norm = (disp - avg) / dev
    if n_top is not None:
        k = min(n_top, x.shape[1])
        finite = np.sort(norm[~np.isnan(norm)])[::-1]
        k = min(k, finite.size)
        hv = np.nan_to_num(norm, nan=-np.inf) >= finite[k - 1]
    else:
        hv = in_bounds(mean, np.nan_to_num(norm), cutoffs)
    out = {"means": mean, "dispersions": disp, "dispersions_norm": norm, "highly_variable": hv}
    if not filt.all():
        full = {}
        for k2, v in out.items():
            z = np.zeros(m, dtype=v.dtype)
            z[filt] = v
            full[k2] = z
        out = full
    return out


def in_bounds(mean, disp_norm, c):
    return (mean > c["min_mean"]) & (mean < c["max_mean"]) & (disp_norm > c["min_disp"]) & \
        (disp_norm < c["max_disp"])


def dispersion_batched(xlog, batches, gene_names, flavor, *, n_top=None, cutoffs=None):
    per = [dispersion_single(xlog[b].tocsr(), flavor, n_top=n_top, cutoffs=cutoffs, filter_unexpressed=True)
           for b in batches]
    st = {k: np.vstack([p[k] for p in per]) for k in ("means", "dispersions", "dispersions_norm")}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = {k: np.nanmean(v, axis=0) for k, v in st.items()}      # pandas mean skips NaN
    nb = np.sum([p["highly_variable"] for p in per], axis=0).astype(np.int64)
    out["highly_variable_nbatches"] = nb
    out["highly_variable_intersection"] = nb == len(batches)
    if n_top is not None:
        name_order = np.array(sorted(range(len(gene_names)), key=lambda i: gene_names[i]))
        dn = out["dispersions_norm"][name_order]
        # stable sort: nbatches desc, dispersions_norm desc, NaN last; ties keep gene-name order
        key_dn = np.where(np.isnan(dn), np.inf, -dn)
        order = name_order[np.lexsort((key_dn, -nb[name_order]))]
        hv = np.zeros(len(gene_names), bool)
        hv[order[:n_top]] = True
    else:
        out["dispersions_norm"] = np.nan_to_num(out["dispersions_norm"], nan=0.0)  # fillna(0)
        hv = in_bounds(out["means"], out["dispersions_norm"], cutoffs)
    out["highly_variable"] = hv
    return out, per


# ==========================================================================
# HVG: seurat_v3 (with a 1-D port of netlib loess, surface='interpolate')
# ==========================================================================

def loess_1d(x, y, span=0.3, cell=0.2):
    """skmisc.loess.loess(x, y, span, degree=2).fit().outputs.fitted_values for 1-D x:
    kd-tree on x, local quadratic fits (value + slope) at the tree's vertices,
    cubic Hermite interpolation inside each leaf cell."""
    n = x.size
    nf = min(n, int(np.floor(n * span + 1e-5)))
    fc = int(np.floor(n * (span * cell)))
    lo, hi = x.min(), x.max()
    margin = 0.005 * max(hi - lo, 1e-10 * max(abs(lo), abs(hi)) + 1e-30)
    xs = np.sort(x)
    vertices = {lo - margin, hi + margin}

    def build(l, u, a, b):                   # 0-based inclusive range of xs; cell [a, b]
        if u - l + 1 <= fc or b - a <= 0:
            return
        m = (l + u + 2) // 2 - 1             # Fortran m = int((l+u)/2) with 1-based l, u
        off = 0
        while l <= m + off < u:
            if xs[m + off] == xs[m + off + 1]:
                off = -off
                if off >= 0:
                    off += 1
            else:
                m += off
                break
        v = xs[m]
        if v == a or v == b:
            return
        vertices.add(v)
        build(l, m, a, v)
        build(m + 1, u, v, b)

    build(0, n - 1, lo - margin, hi + margin)
    vert = np.array(sorted(vertices))
    val = np.empty(vert.size)
    slope = np.empty(vert.size)
    for i, q in enumerate(vert):
        d2 = (x - q) ** 2
        rho = np.partition(d2, nf - 1)[nf - 1]
        near = d2 < rho                       # points at distance == rho get weight 0
        w = np.sqrt(d2[near] / rho)
        w = np.sqrt((1 - w ** 3) ** 3)
        dx = x[near] - q
        a_mat = np.column_stack([w, w * dx, w * dx ** 2])
        coef = np.linalg.lstsq(a_mat, w * y[near], rcond=None)[0]
        val[i], slope[i] = coef[0], coef[1]
    j = np.clip(np.searchsorted(vert, x, side="left") - 1, 0, vert.size - 2)
    v0, v1 = vert[j], vert[j + 1]
    h = (x - v0) / (v1 - v0)
    phi0, phi1 = (1 - h) ** 2 * (1 + 2 * h), h ** 2 * (3 - 2 * h)
    psi0, psi1 = h * (1 - h) ** 2, h ** 2 * (h - 1)
    return phi0 * val[j] + phi1 * val[j + 1] + (psi0 * slope[j] + psi1 * slope[j + 1]) * (v1 - v0)


def seurat_v3_batch_score(counts, fit=None):
    """Normalized variance of one batch; `fit` = loess fitted log10 variances
    (computed with loess_1d when None). Returns (score, fit)."""
    n = counts.shape[0]
    mean, var = col_mean_var(counts)
    nc = var > 0
    if fit is None:
        fit = np.zeros(counts.shape[1])
        fit[nc] = loess_1d(np.log10(mean[nc]), np.log10(var[nc]))
    reg_std = np.sqrt(10 ** fit)
    clip_val = reg_std * np.sqrt(n) + mean
    el = np.minimum(counts.data.astype(np.float64), clip_val[counts.indices])
    s1 = np.bincount(counts.indices, weights=el, minlength=counts.shape[1])
    s2 = np.bincount(counts.indices, weights=el ** 2, minlength=counts.shape[1])
    score = (1 / ((n - 1) * np.square(reg_std))) * (n * np.square(mean) + s2 - 2 * s1 * mean)
    return score, fit


def rank_aggregate(ranks, n_top, flavor):
    """ranks: (n_batches, n_genes) float32 per-batch ranks -> (hv, median rank, nbatches)."""
    r = ranks.astype(np.float32).copy()
    nb = np.sum(r < n_top, axis=0)
    r[r >= n_top] = np.nan
    med = np.ma.median(np.ma.masked_invalid(r), axis=0).filled(np.nan)
    key_r = np.where(np.isnan(med), np.inf, med)
    if flavor in ("seurat_v3",):
        order = np.lexsort((-nb, key_r))                 # rank asc (NaN last), nbatches desc
    else:                                                 # seurat_v3_paper / pearson_residuals
        order = np.lexsort((key_r, -nb))                 # nbatches desc, rank asc (NaN last)
    hv = np.zeros(ranks.shape[1], bool)
    hv[order[:n_top]] = True
    return hv, med, nb


# ==========================================================================
# HVG: pearson residuals
# ==========================================================================

def pearson_residual_variance(counts, *, theta=100.0, clip):
    """One batch; genes with zero total are left out (scored 0)."""
    m = counts.shape[1]
    sums_genes_all = np.bincount(counts.indices, weights=counts.data.astype(np.float64), minlength=m)
    nz = sums_genes_all != 0
    x = counts[:, nz].toarray().astype(np.float64)
    sg = sums_genes_all[nz].astype(F32)                      # float32 in scanpy
    scell = x.sum(axis=1).astype(F32)
    total = np.float64(np.sum(sg, dtype=F32))                # float32 np.sum, then float64
    mu = (scell[:, None] * sg[None, :]).astype(F32).astype(np.float64) / total   # float32 product!
    res = (x - mu) / np.sqrt(mu + mu * mu / theta)
    res = np.clip(res, -clip, clip)
    out = np.zeros(m)
    out[nz] = np.mean((res - res.mean(axis=0)) ** 2, axis=0)
    return out


# ==========================================================================
# checking machinery
# ==========================================================================

class Checker:
    def __init__(self):
        self.rows = []
        self.failed = 0

    def cmp(self, what, got, ref, *, rtol=0.0, atol=0.0, exact=False):
        got = np.asarray(got)
        ref = np.asarray(ref)
        if got.shape != ref.shape:
            self._add(what, False, f"shape {got.shape} != {ref.shape}")
            return
        if ref.dtype == bool or got.dtype == bool:
            bad = int(np.sum(got.astype(bool) != ref.astype(bool)))
            self._add(what, bad == 0, f"{bad} mismatches")
            return
        g = got.astype(np.float64)
        r = ref.astype(np.float64)
        both_nan = np.isnan(g) & np.isnan(r)
        if exact:
            same = (got == ref) | both_nan
            if got.dtype != ref.dtype and np.issubdtype(ref.dtype, np.floating):
                same = (got.astype(ref.dtype) == ref) | both_nan
            bad = int(np.sum(~same))
            diff = np.nanmax(np.abs(g - r)[~both_nan]) if (~both_nan).any() else 0.0
            self._add(what, bad == 0, f"exact: {bad} differ, max |d| {diff:.3g}")
            return
        with np.errstate(invalid="ignore"):
            d = np.abs(g - r)
            ok = both_nan | (d <= atol + rtol * np.abs(r))
        rel = np.nanmax((d / np.maximum(np.abs(r), 1e-300))[~both_nan]) if (~both_nan).any() else 0.0
        self._add(what, bool(ok.all()), f"max rel {rel:.3g} (rtol {rtol:g}, atol {atol:g}), {int((~ok).sum())} out")

    def check(self, what, ok, detail=""):
        self._add(what, bool(ok), detail)

    def _add(self, what, ok, detail):
        self.rows.append((what, ok, detail))
        if not ok:
            self.failed += 1
        print(f"  {'ok  ' if ok else 'FAIL'} {what}: {detail}")


def ranks_modulo_ties(ck, what, rank, score, n_top):
    """scanpy rank r (< n_top) must sit on the r-th largest score (ties permute)."""
    srt = np.sort(score)[::-1]
    has = ~np.isnan(rank)
    r = rank[has].astype(int)
    ck.check(what, np.array_equal(score[has], srt[r]) and np.all(r < n_top),
             f"{has.sum()} ranked genes sit on the score of their rank")


def check(outdir):
    outdir = Path(outdir)
    man = json.loads((outdir / "pp_manifest.json").read_text())
    ck = Checker()
    for ds, e in man["datasets"].items():
        print(f"== {ds}")
        cfg, st = e["config"], e["steps"]

        def load(step):
            return ad.read_h5ad(outdir / st[step]["file"])

        inp = ad.read_h5ad(outdir / e["input"]["file"])
        x = inp.X.tocsr()
        qc = load("qc")
        is_mt = np.asarray(inp.var_names.str.startswith("MT-"))
        ck.cmp("qc var/mt", is_mt, qc.var["mt"].to_numpy())
        obs, var = qc_metrics(x, is_mt, cfg["percent_top"])
        for k, v in obs.items():
            ck.cmp(f"qc obs/{k} [{qc.obs[k].dtype}]", v, qc.obs[k].to_numpy(), exact=True)
            ck.check(f"qc obs/{k} dtype", v.dtype == qc.obs[k].dtype, f"{v.dtype} vs {qc.obs[k].dtype}")
        for k, v in var.items():
            ck.cmp(f"qc var/{k} [{qc.var[k].dtype}]", v, qc.var[k].to_numpy(), exact=True)
            ck.check(f"qc var/{k} dtype", v.dtype == qc.var[k].dtype, f"{v.dtype} vs {qc.var[k].dtype}")

        # filters
        ng = np.bincount(np.repeat(np.arange(x.shape[0]), np.diff(x.indptr))[x.data > 0], minlength=x.shape[0])
        kc = ng >= cfg["min_genes"]
        ck.cmp("filter_cells n_genes", ng, qc.obs["filter_cells_n_genes"].to_numpy(), exact=True)
        ck.cmp("filter_cells kept", kc, qc.obs["filter_cells_kept"].to_numpy())
        xc = x[kc].tocsr()
        nc = np.bincount(xc.indices[xc.data > 0], minlength=x.shape[1])
        kg = nc >= cfg["min_cells"]
        ck.cmp("filter_genes n_cells", nc, qc.var["filter_genes_n_cells"].to_numpy(), exact=True)
        ck.cmp("filter_genes kept", kg, qc.var["filter_genes_kept"].to_numpy())

        # normalize / log1p
        pp = load("log1p")
        counts = x[kc][:, kg].tocsr()
        counts.sort_indices()
        ck.cmp("subset counts", counts.toarray(), pp.layers["counts"].toarray(), exact=True)
        nf, cpc, _ = normalize_factors(counts, 1e4)
        ck.cmp("normalize counts_per_cell", cpc, pp.obs["counts_per_cell"].to_numpy(), exact=True)
        ck.cmp("normalize norm_factor", nf, pp.obs["norm_factor"].to_numpy(), exact=True)
        norm = normalize_matrix(counts, nf)
        ref_norm = pp.layers["normalized"]
        ck.cmp("normalize matrix (data)", norm.data, ref_norm.data, exact=True)
        ck.check("normalize matrix (structure)", np.array_equal(norm.indices, ref_norm.indices)
                 and np.array_equal(norm.indptr, ref_norm.indptr))
        nfm, _, _ = normalize_factors(counts, None)
        ck.cmp("normalize target_sum=None factor", nfm, pp.obs["norm_factor_median"].to_numpy(), exact=True)
        nfe, cpce, exc = normalize_factors(counts, 1e4, exclude_highly_expressed=True, max_fraction=0.05)
        ck.cmp("normalize ehe excluded genes", exc, pp.var["ehe_excluded"].to_numpy())
        ck.cmp("normalize ehe counts_per_cell", cpce, pp.obs["ehe_counts_per_cell"].to_numpy(), exact=True)
        ck.cmp("normalize ehe norm_factor", nfe, pp.obs["ehe_norm_factor"].to_numpy(), exact=True)
        logd = norm.copy()
        logd.data = np.log1p(norm.data)
        ck.cmp("log1p (float32 np.log1p)", logd.data, pp.X.data, exact=True)
        ck.check("log1p dtype float32", pp.X.dtype == np.float32, str(pp.X.dtype))

        # HVG
        xlog = pp.X.tocsr()
        genes = list(pp.var_names)
        bcol = pp.obs["batch"]
        batches = [(bcol == c).to_numpy() for c in bcol.cat.categories]
        for key, s in st.items():
            if not key.startswith("hvg_") or "skipped" in s:
                continue
            p = s["params"]
            ref = load(key)
            rv = ref.var
            fl = p["flavor"]
            n_top = p.get("n_top_genes")
            cut = None if n_top is not None else {"min_mean": p.get("min_mean", 0.0125), "max_mean": p.get("max_mean", 3),
                                                  "min_disp": p.get("min_disp", 0.5), "max_disp": np.inf}
            if fl in ("seurat", "cell_ranger"):
                if "batch_key" in p:
                    out, per = dispersion_batched(xlog, batches, genes, fl, n_top=n_top, cutoffs=cut)
                    ck.cmp(f"{key} per-batch dispersions_norm",
                           np.column_stack([q["dispersions_norm"] for q in per]),
                           ref.varm["per_batch_dispersions_norm"], rtol=1e-9, atol=1e-12)
                    ck.cmp(f"{key} nbatches", out["highly_variable_nbatches"],
                           rv["highly_variable_nbatches"].to_numpy(), exact=True)
                    ck.cmp(f"{key} intersection", out["highly_variable_intersection"],
                           rv["highly_variable_intersection"].to_numpy())
                else:
                    out = dispersion_single(xlog, fl, n_top=n_top, cutoffs=cut)
                ck.cmp(f"{key} means", out["means"], rv["means"].to_numpy(), rtol=1e-12, atol=1e-300)
                ck.cmp(f"{key} dispersions", out["dispersions"], rv["dispersions"].to_numpy(), rtol=1e-9, atol=1e-12)
                ck.cmp(f"{key} dispersions_norm (float32)", out["dispersions_norm"].astype(F32),
                       rv["dispersions_norm"].to_numpy(), rtol=2e-7, atol=1e-6)
                ck.cmp(f"{key} highly_variable", out["highly_variable"], rv["highly_variable"].to_numpy())
            elif fl.startswith("seurat_v3"):
                cnt = pp.layers["counts"].tocsr()
                sel = batches if "batch_key" in p else [np.ones(cnt.shape[0], bool)]
                scores, ranks = [], []
                for b, msk in enumerate(sel):
                    sc_own, fit = seurat_v3_batch_score(cnt[msk].tocsr())
                    ck.cmp(f"{key} batch {b} loess fit (own port vs skmisc)", fit,
                           ref.varm["loess_log10_variance_fit"][:, b], rtol=1e-9, atol=1e-12)
                    sc_ref, _ = seurat_v3_batch_score(cnt[msk].tocsr(), ref.varm["loess_log10_variance_fit"][:, b])
                    ck.cmp(f"{key} batch {b} score (own loess)", sc_own, sc_ref, rtol=1e-8, atol=1e-12)
                    scores.append(sc_ref)
                    ranks.append(np.argsort(np.argsort(-sc_ref)).astype(np.float32))
                mean, var = col_mean_var(cnt)
                ck.cmp(f"{key} means", mean, rv["means"].to_numpy(), rtol=1e-12)
                ck.cmp(f"{key} variances", var, rv["variances"].to_numpy(), rtol=1e-12)
                ck.cmp(f"{key} variances_norm", np.mean(scores, axis=0), rv["variances_norm"].to_numpy(),
                       rtol=1e-10, atol=1e-14)
                if "batch_key" in p:
                    pr = ref.varm["per_batch_rank"].T
                    for b in range(len(sel)):
                        ranks_modulo_ties(ck, f"{key} batch {b} scanpy rank vs own score",
                                          np.where(pr[b] < n_top, pr[b], np.nan), scores[b], n_top)
                    hv, med, nb = rank_aggregate(pr, n_top, fl)
                    ck.cmp(f"{key} nbatches (from scanpy per-batch ranks)", nb,
                           rv["highly_variable_nbatches"].to_numpy(), exact=True)
                else:
                    ranks_modulo_ties(ck, f"{key} rank vs own score", rv["highly_variable_rank"].to_numpy(),
                                      scores[0], n_top)
                    hv, med, _ = rank_aggregate(rv["highly_variable_rank"].to_numpy()[None, :]
                                                .astype(np.float32).copy(), n_top, fl)
                    med = rv["highly_variable_rank"].to_numpy()
                ck.cmp(f"{key} highly_variable_rank", med, rv["highly_variable_rank"].to_numpy(), exact=True)
                ck.cmp(f"{key} highly_variable", hv, rv["highly_variable"].to_numpy())
            elif fl == "pearson_residuals":
                cnt = pp.layers["counts"].tocsr()
                sel = batches if "batch_key" in p else [np.ones(cnt.shape[0], bool)]
                clip = s["clip_used"]
                scores = [pearson_residual_variance(cnt[msk].tocsr(), clip=clip) for msk in sel]
                if "batch_key" in p:
                    ck.cmp(f"{key} per-batch residual_variances", np.column_stack(scores),
                           ref.varm["per_batch_residual_variances"], rtol=1e-10, atol=1e-14)
                ck.cmp(f"{key} residual_variances", np.mean(scores, axis=0),
                       rv["residual_variances"].to_numpy(), rtol=1e-10, atol=1e-14)
                mean, var = col_mean_var(cnt)
                ck.cmp(f"{key} means", mean, rv["means"].to_numpy(), rtol=1e-12)
                ck.cmp(f"{key} variances", var, rv["variances"].to_numpy(), rtol=1e-12)
                if "batch_key" in p:
                    pr = ref.varm["per_batch_rank"].T
                    for b in range(len(sel)):
                        ranks_modulo_ties(ck, f"{key} batch {b} scanpy rank vs own score",
                                          np.where(pr[b] < n_top, pr[b], np.nan), scores[b], n_top)
                else:
                    pr = rv["highly_variable_rank"].to_numpy()[None, :].copy()
                    pr[np.isnan(pr)] = n_top
                    ranks_modulo_ties(ck, f"{key} rank vs own score", rv["highly_variable_rank"].to_numpy(),
                                      scores[0], n_top)
                hv, med, nb = rank_aggregate(pr, n_top, fl)
                ck.cmp(f"{key} highly_variable_rank", med, rv["highly_variable_rank"].to_numpy(), exact=True)
                ck.cmp(f"{key} highly_variable", hv, rv["highly_variable"].to_numpy())

        # scale
        hv = load("hvg_seurat").var["highly_variable"].to_numpy()
        xs = xlog[:, hv].tocsr()
        xs.sort_indices()
        ref = load("scale")
        mean, var = col_mean_var(xs)
        std = np.sqrt(var)
        std[std == 0] = 1
        ck.cmp("scale var/mean", mean, ref.var["mean"].to_numpy(), exact=True)
        ck.cmp("scale var/std", std, ref.var["std"].to_numpy(), exact=True)
        z = (xs.toarray().astype(np.float64) - mean) / std
        z = np.clip(z, -10, 10)
        ck.cmp("scale X (float64, clip both sides)", z, ref.X, exact=True)
        ref = load("scale_no_zero_center")
        d = np.minimum(10, xs.data.astype(np.float64) / std[xs.indices]).astype(F32)
        ck.cmp("scale zero_center=False var/std", std, ref.var["std"].to_numpy(), exact=True)
        ck.cmp("scale zero_center=False X data (float32, upper clip only)", d, ref.X.data, exact=True)

        # PCA
        xz = load("scale").X.astype(np.float64)
        n = xz.shape[0]
        xc = xz - xz.mean(axis=0)
        cov = xc.T @ xc / (n - 1)
        ev, evec = np.linalg.eigh(cov)
        ev, evec = ev[::-1], evec[:, ::-1]
        total = np.trace(cov)
        for solver in ("arpack", "covariance_eigh"):
            r = load(f"pca_{solver}")
            k = r.obsm["X_pca"].shape[1]
            pcs = r.varm["PCs"]
            ck.cmp(f"pca {solver} variance", ev[:k], r.uns["pca"]["variance"], rtol=1e-9)
            ck.cmp(f"pca {solver} variance_ratio (total = trace of cov)", ev[:k] / total,
                   r.uns["pca"]["variance_ratio"], rtol=1e-9)
            j = np.argmax(np.abs(pcs), axis=0)
            ck.check(f"pca {solver} sign: largest |loading| positive",
                     np.all(pcs[j, np.arange(k)] > 0), "svd_flip(u_based_decision=False)")
            ref_vec = evec[:, :k] * np.sign(evec[np.argmax(np.abs(evec[:, :k]), axis=0), np.arange(k)])
            ck.cmp(f"pca {solver} PCs (sign-fixed eigvecs)", ref_vec, pcs, atol=1e-7)
            ck.cmp(f"pca {solver} X_pca = (X - mean) @ PCs as float32", (xc @ pcs).astype(F32),
                   r.obsm["X_pca"], rtol=1e-4, atol=1e-4)
    print(f"{len(ck.rows) - ck.failed} passed, {ck.failed} failed")
    return 1 if ck.failed else 0


if __name__ == "__main__":
    sys.exit(check(sys.argv[1]))
