#!/usr/bin/env python
"""Write the input and scanpy's reference numbers for the static plots (pl.*).

Usage (main venv):

    python make_plot_oracle.py OUTDIR

Files
  OUTDIR/plots.h5ad   THE ENGINE INPUT (anndata writer, uncompressed), seeded:
      X         CSR float32 (900, 30), log1p-like values, ~60 % zeros; gene
                names G0..G26, "MT-1", "MT-2" and the hostile name
                '<img src=x onerror=alert(1)>' (last column)
      obs/leiden       category '0'..'5' (no uns colors: scanpy picks tab10)
      obs/cell_type    category, 12 types; uns/cell_type_colors = 12 custom colors
      obs/short        category, 6 values; uns/short_colors has only 3 colors
                       (too short: scanpy falls back to the defaults)
      obs/named        category, 3 values; uns/named_colors = color names
                       (matplotlib's "red", "tab:green", scanpy's R name "firebrick3")
      obs/batch        category, 25 values (default_28)
      obs/many         category, 40 values (default_102)
      obs/with_na      category, 4 values + missing cells (NaN), one category
                       named '<script>alert(1)</script>'
      obs/is_doublet   bool (scanpy: categories 'False', 'True')
      obs/total_counts float32, obs/n_genes_by_counts int32,
      obs/pct_counts_mt float32, obs/score float64 (8 NaN), obs/const float64
      obs/name         str (not categorical: scanpy's strings_to_categoricals)
      obsm/X_umap float32 (900, 2), obsm/X_pca float32 (900, 10)
  OUTDIR/plots_raw.h5ad  the same cells; raw = all 30 genes with X = the
      counts (CSR float32); X = the log values of the first 20 genes only
  OUTDIR/plot_oracle.json   what scanpy 1.11.5 / numpy / matplotlib give:
      dotplot[variant] = {call, dot_color: rows = groups, dot_size, groups, var_names}
        variants: default, var, group, mean_only_expressed, cutoff_0_5, dict,
        raw (plots_raw.h5ad: scanpy's default use_raw=None reads raw),
        view (cells with leiden != "0" and the first 500 cells, standard_scale var),
        lognorm (X after sc.pp.normalize_total(target_sum=1e4) and sc.pp.log1p)
      dot_markers[variant] = {kw, var_names, sizes, facecolors}: what DotPlot.make_figure()
        draws (the main axes' scatter: marker areas in pt² and RGBA, groups × genes
        row-major); variants: default, clipped (dot_min 0.1, dot_max 0.5,
        standard_scale var)
      histograms[key|bins] = {edges, counts}  (numpy.histogram)
      violin[key] = {groupby, groups: {group: values (sc.get.obs_df selection)},
                     kde: {group: {support, density}} from seaborn's own KDE
                     (seaborn._statistics.KDE with what sc.pl.violin passes:
                     bw_method "scott", bw_adjust 1, cut 0, gridsize 100)}
      colors[key] = to_hex of adata.uns[key + '_colors'] after sc.pl.umap(color=key, show=False)
      viridis = [{vmin, vmax, value, rgb}] from matplotlib's viridis + Normalize
"""
import importlib.metadata as md
import json
import sys
from pathlib import Path

import anndata as ad
import matplotlib

matplotlib.use("Agg")
import numpy as np
import pandas as pd
import scanpy as sc
import scipy.sparse as sp
from matplotlib import colormaps
from matplotlib.colors import Normalize, to_hex
from seaborn._statistics import KDE


def make(rng):
    n, k = 900, 6
    leiden = rng.integers(0, k, n)
    genes = [f"G{i}" for i in range(27)] + ["MT-1", "MT-2", "<img src=x onerror=alert(1)>"]
    m = len(genes)
    base = rng.gamma(1.0, 1.0, (k, m))
    lam = base[leiden]
    counts = rng.poisson(lam)
    X = np.log1p(counts * rng.uniform(0.5, 2.0, (n, m))).astype(np.float32)
    X[rng.random((n, m)) < 0.25] = 0
    X = sp.csr_matrix(X)
    obs = pd.DataFrame(index=[f"cell{i}" for i in range(n)])
    obs["leiden"] = pd.Categorical([str(c) for c in leiden], categories=[str(i) for i in range(k)])
    obs["cell_type"] = pd.Categorical([f"type{c}" for c in rng.integers(0, 12, n)], categories=[f"type{i}" for i in range(12)])
    obs["short"] = pd.Categorical([f"s{c}" for c in rng.integers(0, 6, n)], categories=[f"s{i}" for i in range(6)])
    obs["batch"] = pd.Categorical([f"b{c:02d}" for c in rng.integers(0, 25, n)], categories=[f"b{i:02d}" for i in range(25)])
    obs["many"] = pd.Categorical([f"m{c:02d}" for c in rng.integers(0, 40, n)], categories=[f"m{i:02d}" for i in range(40)])
    na_cats = ["a", "b", "<script>alert(1)</script>", "d"]
    wn = np.array([na_cats[c] for c in rng.integers(0, 4, n)], dtype=object)
    wn[rng.random(n) < 0.1] = np.nan
    obs["with_na"] = pd.Categorical(wn, categories=na_cats)
    obs["is_doublet"] = rng.random(n) < 0.2
    tc = np.asarray(counts.sum(1), dtype=np.float32) + rng.random(n).astype(np.float32)
    obs["total_counts"] = tc
    obs["n_genes_by_counts"] = (counts > 0).sum(1).astype(np.int32)
    obs["pct_counts_mt"] = (100 * counts[:, 27:29].sum(1) / np.maximum(counts.sum(1), 1)).astype(np.float32)
    score = rng.normal(0, 1, n)
    score[rng.choice(n, 8, replace=False)] = np.nan
    obs["score"] = score
    obs["const"] = np.full(n, 3.0)
    obs["name"] = [f"n{c}" for c in rng.integers(0, 3, n)]
    a = ad.AnnData(X=X, obs=obs, var=pd.DataFrame(index=genes))
    a.obsm["X_umap"] = (rng.normal(0, 1, (n, 2)) + 4 * np.stack([np.cos(leiden), np.sin(leiden)], 1)).astype(np.float32)
    a.obsm["X_pca"] = rng.normal(0, 1, (n, 10)).astype(np.float32)
    a.uns["cell_type_colors"] = np.array([f"#{(37 * i) % 256:02x}{(91 * i) % 256:02x}{(53 * i + 40) % 256:02x}" for i in range(12)], dtype=object)
    a.uns["short_colors"] = np.array(["#111111", "#222222", "#333333"], dtype=object)
    obs_named = pd.Categorical([f"n{c}" for c in rng.integers(0, 3, n)], categories=["n0", "n1", "n2"])
    a.obs["named"] = obs_named
    a.uns["named_colors"] = np.array(["red", "tab:green", "firebrick3"], dtype=object)
    a.layers["counts"] = sp.csr_matrix(counts.astype(np.float32))
    return a


def frame(df):
    return [[float(v) for v in row] for row in df.to_numpy()]


def main():
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    a = make(np.random.default_rng(7))
    counts = a.layers.pop("counts")
    a.write_h5ad(out / "plots.h5ad")
    r = a.copy()
    r.X = counts
    b = a[:, :20].copy()
    b.raw = r
    b.write_h5ad(out / "plots_raw.h5ad")
    b = ad.read_h5ad(out / "plots_raw.h5ad")
    a = ad.read_h5ad(out / "plots.h5ad")
    genes = ["G0", "G3", "G5", "MT-1", "<img src=x onerror=alert(1)>", "G3"]
    result = {"versions": {"scanpy": md.version("scanpy"), "numpy": np.__version__, "matplotlib": md.version("matplotlib")}}
    dots = {}
    variants = {
        "default": {},
        "var": {"standard_scale": "var"},
        "group": {"standard_scale": "group"},
        "mean_only_expressed": {"mean_only_expressed": True},
        "cutoff_0_5": {"expression_cutoff": 0.5},
    }
    for name, kw in variants.items():
        dp = sc.pl.dotplot(a.copy(), genes, groupby="leiden", return_fig=True, show=False, **kw)
        dots[name] = {"kw": kw, "var_names": genes, "groups": [str(g) for g in dp.dot_color_df.index],
                      "dot_color": frame(dp.dot_color_df), "dot_size": frame(dp.dot_size_df)}
    dict_names = {"A": ["G1", "G2"], "B": ["MT-2"]}
    dp = sc.pl.dotplot(a.copy(), dict_names, groupby="cell_type", return_fig=True, show=False, standard_scale="var")
    dots["dict"] = {"kw": {"standard_scale": "var"}, "var_names": dict_names, "groupby": "cell_type",
                    "groups": [str(g) for g in dp.dot_color_df.index],
                    "dot_color": frame(dp.dot_color_df), "dot_size": frame(dp.dot_size_df)}
    raw_genes = ["G0", "G25", "MT-1"]
    dp = sc.pl.dotplot(b.copy(), raw_genes, groupby="leiden", return_fig=True, show=False)
    dots["raw"] = {"kw": {}, "var_names": raw_genes, "groupby": "leiden", "groups": [str(g) for g in dp.dot_color_df.index],
                   "dot_color": frame(dp.dot_color_df), "dot_size": frame(dp.dot_size_df)}
    mask = (a.obs["leiden"] != "0").to_numpy() & (np.arange(a.n_obs) < 500)
    dp = sc.pl.dotplot(a[mask].copy(), ["G0", "G3", "MT-1"], groupby="leiden", return_fig=True, show=False, standard_scale="var")
    dots["view"] = {"kw": {"standard_scale": "var"}, "var_names": ["G0", "G3", "MT-1"], "groupby": "leiden",
                    "mask": [bool(m) for m in mask], "groups": [str(g) for g in dp.dot_color_df.index],
                    "dot_color": frame(dp.dot_color_df), "dot_size": frame(dp.dot_size_df)}
    c = a.copy()
    sc.pp.normalize_total(c, target_sum=1e4)
    sc.pp.log1p(c)
    dp = sc.pl.dotplot(c, ["G0", "G3", "MT-1"], groupby="leiden", return_fig=True, show=False)
    dots["lognorm"] = {"kw": {}, "var_names": ["G0", "G3", "MT-1"], "groupby": "leiden", "groups": [str(g) for g in dp.dot_color_df.index],
                       "dot_color": frame(dp.dot_color_df), "dot_size": frame(dp.dot_size_df)}
    result["dotplot"] = dots
    markers = {}
    for name, kw in {"default": {}, "clipped": {"dot_min": 0.1, "dot_max": 0.5, "standard_scale": "var"}}.items():
        dp = sc.pl.dotplot(a.copy(), ["G0", "G3", "MT-1"], groupby="leiden", return_fig=True, show=False, **kw)
        dp.make_figure()
        col = dp.get_axes()["mainplot_ax"].collections[0]
        markers[name] = {"kw": kw, "var_names": ["G0", "G3", "MT-1"], "sizes": [float(x) for x in col.get_sizes()],
                         "facecolors": [[float(c) for c in fc[:3]] for fc in col.get_facecolors()]}
        matplotlib.pyplot.close("all")
    result["dot_markers"] = markers
    hists = {}
    for key in ["total_counts", "n_genes_by_counts", "pct_counts_mt", "const"]:
        for bins in [50, 7]:
            c, e = np.histogram(a.obs[key].to_numpy(), bins=bins)
            hists[f"{key}|{bins}"] = {"edges": [float(x) for x in e], "counts": [int(x) for x in c], "edge_dtype": str(e.dtype)}
    result["histograms"] = hists
    vio = {}
    for key in ["total_counts", "G5", "score"]:
        df = sc.get.obs_df(a, keys=["leiden", key])
        groups = {g: df.loc[df["leiden"] == g, key].dropna().to_numpy() for g in a.obs["leiden"].cat.categories}
        kde = KDE(bw_method="scott", bw_adjust=1, cut=0, gridsize=100)
        dens = {g: kde(v.astype(np.float64)) for g, v in groups.items()}
        vio[key] = {"groupby": "leiden", "groups": {g: [float(x) for x in v] for g, v in groups.items()},
                    "kde": {g: {"support": [float(x) for x in s_], "density": [float(x) for x in d_]} for g, (d_, s_) in dens.items()}}
    result["violin"] = vio
    colors = {}
    for key in ["leiden", "cell_type", "short", "batch", "many", "with_na", "is_doublet", "name", "named"]:
        b = a.copy()
        sc.pl.umap(b, color=key, show=False)
        colors[key] = [to_hex(c) for c in b.uns[f"{key}_colors"]]
        matplotlib.pyplot.close("all")
    result["colors"] = colors
    vir = []
    s = a.obs["score"].to_numpy()
    vmin, vmax = np.nanmin(s), np.nanmax(s)
    norm = Normalize(vmin, vmax)
    for v in [vmin, vmax, 0.0, np.nanquantile(s, 0.3), np.nanquantile(s, 0.77), s[0]]:
        rgb = colormaps["viridis"](norm(v))[:3]
        vir.append({"vmin": float(vmin), "vmax": float(vmax), "value": float(v), "rgb": [float(x) for x in rgb]})
    result["viridis"] = vir
    (out / "plot_oracle.json").write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
