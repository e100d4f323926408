#!/usr/bin/env python
"""Synthetic PCA output for the graph-steps benchmark (neighbors -> UMAP -> Leiden).

    python bench/generate_pca.py N OUT.h5ad [--seed S] [--n-pcs 50]

Writes a regular .h5ad (anndata's writer) with no X (shape N x 0), obs_names
cell_0 ... cell_{N-1}, obsm['X_pca'] float32 N x 50 and obs:

* 'truth' (categorical): the cell's cluster, 'L<lineage>.<subtype>', or
  'T<k>' for a cell on continuous trajectory k;
* 'lineage' (categorical): 'L<lineage>' ('T<k>' on a trajectory).

The model is a hierarchical Gaussian mixture that looks like the PCA of a
real single-cell data set:

* 8 lineages x 4 subtypes = 32 clusters; lineage centres far apart, subtype
  centres nearer (some subtypes overlap); cluster weights log-uniform over two
  orders of magnitude (largest/smallest = 100), randomly assigned.
* The per-dimension scale decays like a PCA spectrum: the between-lineage
  spread lives mostly in dims 1-5, the between-subtype spread in dims 1-15,
  the within-cluster noise decays slowly to a flat floor, so dims 1-10 carry
  most of the variance and the tail is a long noisy one. Each cluster has its
  own noise scale per dimension (lognormal factor) so clusters are anisotropic
  and of different densities.
* 3 continuous trajectories (6% of the cells): a differentiation path between
  two subtypes of one lineage, a path joining two lineages, and a second
  within-lineage path; cells at a uniform position t along a bent curve
  between the two cluster centres, with noise.
* Like PCA output, the columns are centred (the mixture's exact mean) and
  rotated onto the mixture's principal axes (eigenvectors of the covariance of
  a seeded 200,000-cell pilot sample), so they are uncorrelated and their
  variances decrease from PC1 to PC50.

Deterministic for (N, seed): the cluster labels are drawn for all cells at
once (N bytes), then the coordinates in fixed chunks of 65,536 cells, each
chunk with its own seeded generator, written into the one preallocated
N x 50 float32 array: peak memory is the output (200 MB at 1M cells) plus
the obs names.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time

import numpy as np

CHUNK = 65536
N_LINEAGES = 8
N_SUBTYPES = 4
# (source cluster, target cluster) as (lineage, subtype) pairs, weight each
TRAJECTORIES = [((0, 0), (0, 1)), ((1, 0), (2, 0)), ((3, 1), (3, 3))]
TRAJ_WEIGHT = 0.02


def build_model(n_pcs: int, seed: int) -> dict:
    rng = np.random.default_rng([seed, 0])
    d = np.arange(n_pcs, dtype=np.float64)
    lineage_sd = 5.0 * np.exp(-d / 3.5) + 0.15
    subtype_sd = 2.0 * np.exp(-d / 8.0) + 0.10
    noise_sd = 0.55 + 0.75 * np.exp(-d / 12.0)

    lin_centres = rng.standard_normal((N_LINEAGES, n_pcs)) * lineage_sd
    n_clusters = N_LINEAGES * N_SUBTYPES
    centres = np.repeat(lin_centres, N_SUBTYPES, axis=0)
    centres += rng.standard_normal((n_clusters, n_pcs)) * subtype_sd
    # anisotropic, per-cluster noise scale
    noise = noise_sd * np.exp(0.25 * rng.standard_normal((n_clusters, n_pcs)))
    noise *= np.exp(0.2 * rng.standard_normal((n_clusters, 1)))  # denser / looser clusters

    sizes = np.exp(np.linspace(0.0, np.log(100.0), n_clusters))
    sizes = sizes[rng.permutation(n_clusters)]
    w_clusters = sizes / sizes.sum() * (1.0 - TRAJ_WEIGHT * len(TRAJECTORIES))

    names = [f"L{lin}.{sub}" for lin in range(N_LINEAGES) for sub in range(N_SUBTYPES)]
    lineages = [f"L{lin}" for lin in range(N_LINEAGES) for _ in range(N_SUBTYPES)]
    traj = []
    for k, ((la, sa), (lb, sb)) in enumerate(TRAJECTORIES):
        a = la * N_SUBTYPES + sa
        b = lb * N_SUBTYPES + sb
        delta = centres[b] - centres[a]
        bend = rng.standard_normal(n_pcs) * lineage_sd
        bend -= delta * (bend @ delta) / (delta @ delta)  # orthogonal to the chord
        bend *= 0.3 * np.linalg.norm(delta) / np.linalg.norm(bend)
        traj.append({"a": a, "b": b, "bend": bend, "noise": 0.8 * (noise[a] + noise[b]) / 2})
        names.append(f"T{k}")
        lineages.append(f"T{k}")
    weights = np.concatenate([w_clusters, np.full(len(TRAJECTORIES), TRAJ_WEIGHT)])

    # exact mean of the mixture (a trajectory's mean: chord midpoint + (2/pi) bend)
    mean = (w_clusters[:, None] * centres).sum(axis=0)
    for t in traj:
        mean += TRAJ_WEIGHT * ((centres[t["a"]] + centres[t["b"]]) / 2 + (2 / np.pi) * t["bend"])
    return {"centres": centres, "noise": noise, "weights": weights, "names": names,
            "lineages": lineages, "traj": traj, "mean": mean, "n_clusters": n_clusters}


def _fill(out, labels, m, seed: int, stream: int, rotation=None) -> None:
    """Coordinates of the cells with these labels (model basis, centred),
    rotated by `rotation` if given, into out, chunk by chunk."""
    n, n_pcs = out.shape
    centres = (m["centres"] - m["mean"]).astype(np.float32)
    noise = m["noise"].astype(np.float32)
    nc = m["n_clusters"]
    for ci, start in enumerate(range(0, n, CHUNK)):
        end = min(n, start + CHUNK)
        crng = np.random.default_rng([seed, stream, ci])
        lab = labels[start:end]
        block = crng.standard_normal((end - start, n_pcs), dtype=np.float32)
        is_cl = lab < nc
        lc = lab[is_cl]
        block[is_cl] *= noise[lc]
        block[is_cl] += centres[lc]
        for k, t in enumerate(m["traj"]):
            sel = np.flatnonzero(lab == nc + k)
            if sel.size == 0:
                continue
            pos = crng.random(sel.size).astype(np.float32)[:, None]
            path = ((1 - pos) * centres[t["a"]] + pos * centres[t["b"]]
                    + np.sin(np.pi * pos) * t["bend"].astype(np.float32))
            block[sel] = block[sel] * t["noise"].astype(np.float32) + path
        out[start:end] = block if rotation is None else block @ rotation


def generate(n: int, n_pcs: int, seed: int) -> tuple[np.ndarray, np.ndarray, dict]:
    m = build_model(n_pcs, seed)
    # principal axes of the mixture from a pilot sample (fixed size: the
    # rotation, hence every cell's coordinates, does not depend on n)
    prng = np.random.default_rng([seed, 3])
    n_pilot = 200_000
    plab = prng.choice(len(m["weights"]), size=n_pilot, p=m["weights"]).astype(np.uint8)
    pilot = np.empty((n_pilot, n_pcs), dtype=np.float32)
    _fill(pilot, plab, m, seed, 4)
    cov = np.cov(pilot, rowvar=False, dtype=np.float64)
    del pilot
    evals, evecs = np.linalg.eigh(cov)
    order = np.argsort(evals)[::-1]
    evecs = evecs[:, order]
    evecs *= np.where(evecs.sum(axis=0) < 0, -1.0, 1.0)  # a fixed sign per axis
    m["explained_variance"] = evals[order]

    rng = np.random.default_rng([seed, 1])
    labels = rng.choice(len(m["weights"]), size=n, p=m["weights"]).astype(np.uint8)
    out = np.empty((n, n_pcs), dtype=np.float32)
    _fill(out, labels, m, seed, 2, rotation=evecs.astype(np.float32))
    return out, labels, m


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("n", type=float, help="number of cells (1e6 accepted)")
    ap.add_argument("out")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n-pcs", type=int, default=50)
    args = ap.parse_args()
    n = int(args.n)

    t0 = time.perf_counter()
    import anndata as ad
    import pandas as pd

    X_pca, labels, m = generate(n, args.n_pcs, args.seed)
    t_gen = time.perf_counter() - t0
    obs = pd.DataFrame(index=pd.Index([f"cell_{i}" for i in range(n)], name=None))
    obs["truth"] = pd.Categorical.from_codes(labels, categories=m["names"])
    lin_cats = list(dict.fromkeys(m["lineages"]))
    lin_codes = np.array([lin_cats.index(x) for x in m["lineages"]], dtype=np.int8)[labels]
    obs["lineage"] = pd.Categorical.from_codes(lin_codes, categories=lin_cats)
    a = ad.AnnData(obs=obs, obsm={"X_pca": X_pca})
    a.uns["generator"] = {"script": "bench/generate_pca.py", "seed": args.seed, "n_obs": n,
                          "n_pcs": args.n_pcs, "n_clusters": m["n_clusters"],
                          "n_trajectories": len(m["traj"])}
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    tmp = args.out + ".tmp"
    a.write_h5ad(tmp)
    os.replace(tmp, args.out)
    total = time.perf_counter() - t0
    var = X_pca[: min(n, 200000)].astype(np.float64).var(axis=0)
    counts = np.bincount(labels, minlength=len(m["names"]))
    print(f"{args.out}: {n} cells x {args.n_pcs} PCs, {m['n_clusters']} clusters + "
          f"{len(m['traj'])} trajectories; cluster sizes {counts[:m['n_clusters']].min()}"
          f"..{counts[:m['n_clusters']].max()}; var share of dims 1-10 "
          f"{var[:10].sum() / var.sum():.2f}; generate {t_gen:.1f} s, total {total:.1f} s, "
          f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB, "
          f"{os.path.getsize(args.out) / 1e6:.0f} MB on disk")
    return 0


if __name__ == "__main__":
    sys.exit(main())
