"""Writes the small .h5ad the UI tests open: 300 cells x 40 genes (CSR),
a categorical obs column, an obsm embedding, a layer, uns, and a var
column named like an XSS payload (it must show as text in the card)."""
import sys

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

HOSTILE = "<img src=x onerror=alert(1)>"

rng = np.random.default_rng(0)
n, m = 300, 40
X = sp.random(n, m, density=0.2, format="csr", dtype=np.float32, random_state=rng)
obs = pd.DataFrame(
    {
        "cell_type": pd.Categorical(rng.choice(["B", "T", "NK", "Mono"], n)),
        "n_counts": np.asarray(X.sum(axis=1)).ravel(),
    },
    index=[f"cell_{i}" for i in range(n)],
)
var = pd.DataFrame({"gene_ids": [f"ENSG{i:05d}" for i in range(m)], HOSTILE: np.zeros(m)}, index=[f"gene_{i}" for i in range(m)])
a = ad.AnnData(X=X, obs=obs, var=var)
a.obsm["X_umap"] = rng.normal(size=(n, 2)).astype(np.float32)
a.layers["counts"] = X.copy()
a.uns["note"] = "ui-tests"
a.write_h5ad(sys.argv[1])

# Optional: three tight clusters of known sizes in X_umap (the lasso test selects one of them).
if len(sys.argv) > 3:
    sizes = {"A": 100, "B": 150, "C": 50}
    centers = {"A": (-5.0, 0.0), "B": (5.0, 0.0), "C": (0.0, 8.0)}
    groups = np.concatenate([[g] * k for g, k in sizes.items()])
    xy = np.concatenate([rng.normal(centers[g], 0.3, size=(k, 2)) for g, k in sizes.items()]).astype(np.float32)
    nc = len(groups)
    Xc = sp.random(nc, 20, density=0.3, format="csr", dtype=np.float32, random_state=rng)
    c = ad.AnnData(
        X=Xc,
        obs=pd.DataFrame({"group": pd.Categorical(groups, categories=list(sizes))}, index=[f"c{i}" for i in range(nc)]),
        var=pd.DataFrame(index=[f"g{i}" for i in range(20)]),
    )
    c.obsm["X_umap"] = xy
    c.write_h5ad(sys.argv[3])

# Optional: 1,000,000 cells with a 10-cluster X_umap and no genes to speak of (the million-point scatter test).
if len(sys.argv) > 4:
    n = 1_000_000
    k = rng.integers(0, 10, size=n)
    angle = 2 * np.pi * k / 10
    xy = (np.stack([np.cos(angle), np.sin(angle)], 1) * 8 + rng.normal(0, 1.2, size=(n, 2))).astype(np.float32)
    mil = ad.AnnData(
        X=sp.csr_matrix((n, 1), dtype=np.float32),
        obs=pd.DataFrame({"cluster": pd.Categorical(k.astype(str), categories=[str(i) for i in range(10)])}, index=pd.RangeIndex(n).astype(str)),
    )
    mil.obsm["X_umap"] = xy
    mil.write_h5ad(sys.argv[4])

# Optional: a larger file for the progress test (passes that last long enough to click Cancel).
if len(sys.argv) > 2 and sys.argv[2] != "-":
    n, m, k = 100_000, 2_000, 100
    idx = np.sort(rng.integers(0, m, size=(n, k), dtype=np.int32), axis=1).ravel()
    data = rng.integers(1, 20, size=n * k).astype(np.float32)
    big = sp.csr_matrix((data, idx, np.arange(0, n * k + 1, k, dtype=np.int64)), shape=(n, m))
    ad.AnnData(big).write_h5ad(sys.argv[2], compression="gzip")
