#!/usr/bin/env python
"""Write scanpy reference results ("oracle") for the graph steps: kNN graph
(sc.pp.neighbors), UMAP, Leiden and PAGA.

Usage (main venv; needs leidenalg + igraph from requirements.txt):

    python make_graph_oracle.py PPDIR OUTDIR [--self-check]

PPDIR is the output directory of make_pp_oracle.py. For every dataset NAME
(synth_3k, real_10k) the input is scanpy's ARPACK PCA of that script
(PPDIR/NAME.pca_arpack.h5ad, obsm X_pca, 50 float32 components of the
scaled hvg_seurat genes of the filtered cells). Everything below is computed
from that X_pca alone; OUTDIR/graph_manifest.json lists, per dataset and step,
the scanpy call, its parameters, the file and the elements in it with dtype
and shape, plus the summary numbers the TypeScript tests compare against.
--self-check re-derives the connectivities, the Leiden quality and PAGA from
the written files with the formulas described here and exits non-zero on a
mismatch.

Files (NAME = synth_3k | real_10k; n = n_obs, g = number of leiden_r1.0 groups)
  NAME.graph_input.h5ad        THE ENGINE INPUT (uncompressed, anndata writer).
      no X (n x 0), obs_names = those of PPDIR/NAME.pca_arpack.h5ad
      obsm/X_pca        float32 (n, 50)   scanpy's arpack X_pca, bit-identical
      obs/cell_type     category          synth_3k only: the ground-truth type of
                                          each kept cell, taken from the input
                                          PPDIR/synth_3k.h5ad obs by obs name
                                          (categories type0..type5)
  NAME.neighbors_<metric>.h5ad  metric = euclidean | cosine (gzip):
      obsp/distances      CSR (n, n), 14 stored entries per row = the
                          n_neighbors - 1 nearest OTHER cells (self dropped),
                          each row's entries in increasing distance order
                          (indices NOT sorted), values = distances.
                          dtype float64 for euclidean, float32 for cosine
                          (what sklearn returns for float32 input).
      obsp/connectivities CSR float32 (n, n), sorted indices, symmetric, zero
                          diagonal: the UMAP fuzzy union (details below).
      obsm/knn_indices    int32 (n, 15)  the kNN INCLUDING self exactly as
                          scanpy hands it to umap: column 0 = the cell itself
                          (checked for every row), columns 1..14 ascending
                          distance.
      obsm/knn_distances  float32 (n, 15) matching distances; column 0 is 0.0
                          (see "self distance" below). float32 is lossless here:
                          umap casts knn_dists to float32 before using them.
      uns/neighbors/{connectivities_key, distances_key} = 'connectivities',
                          'distances'; uns/neighbors/params/{n_neighbors: 15,
                          method: 'umap', random_state: 0, metric, use_rep:
                          'X_pca'} as scanpy writes them.
  NAME.umap.h5ad (gzip)     no X
      obsm/X_umap         float32 (n, 2)  sc.tl.umap(random_state=0), default
                          init_pos='spectral'
      obsm/X_umap_random  float32 (n, 2)  same with init_pos='random'
      uns/umap/params/{a, b}  float64, as sc.tl.umap stores them
  NAME.leiden.h5ad (gzip)   no X
      obs/leiden_r0.5, obs/leiden_r1.0, obs/leiden_r2.0  category: labels
                          '0'..'K-1', categories natsorted ('0','1',...,'10');
                          leidenalg numbers communities by decreasing size, so
                          '0' is the largest cluster.
      uns/leiden_r<r>/params/{resolution, random_state, n_iterations}
  NAME.paga.h5ad (gzip)     no X
      obs/leiden_r1.0     category (the groups; group i = category i = label 'i')
      uns/paga/connectivities        float64 (g, g) dense, symmetric, zero diag
      uns/paga/connectivities_tree   float64 (g, g) dense: scanpy's tree, each
                          tree edge stored ONCE (at the (row, col) orientation
                          scipy's minimum_spanning_tree returned), value = the
                          connectivity; compare tree + tree.T.
      uns/paga/groups                str 'leiden_r1.0'
      extras scanpy does not store (from the formula below, checked against
      scanpy's result):
      uns/paga/group_sizes           int64 (g,)    n_a
      uns/paga/edge_counts           float64 (g, g) M[a, b] = number of directed
                          kNN edges (obsp/distances pattern of the euclidean
                          graph) from a cell in a to a cell in b (diag = within)
      uns/paga/expected_n_edges_random float64 (g, g) the null model below
                          (0 where there is no edge)
  graph_manifest.json
      {format, generator, versions, python, numba_threads, notes,
       umap_ab_params: [{spread, min_dist, a, b}],
       datasets: {NAME: {n_obs, input, neighbors: {euclidean, cosine}, umap,
                         leiden, paga}}}
      every step has call, on, params, file and elements ({path: {dtype,
      shape[, encoding, nnz]}} or {dtype, value} for uns scalars); element
      paths are obs/C, obsm/K, obsp/K, uns/A/B. Summary numbers:
      neighbors.<metric>: connectivities_nnz, connectivities_sum (float64 sum),
        n_connected_components (scipy connected_components of the
        connectivities), knn_check (float64 cross-check, see Neighbors)
      umap: params (incl. n_epochs, a, b), trustworthiness {spectral, random}
      leiden: two_m (= A.sum() in float64), resolutions {'0.5','1.0','2.0': {
        column, n_clusters, cluster_sizes (label order '0','1',...), Q_rb,
        leidenalg_quality, leidenalg_quality_over_Q_rb (= two_m),
        modularity_gamma1 (= rb_quality with gamma 1), ari_vs_cell_type
        (synth_3k only), and for r = 1.0 ari_seed0_vs_other_seeds (ARI of
        the seed-0 partition against leidenalg runs with seeds 1, 2, 3)}}
      paga: n_groups, n_group_pairs_connected, n_group_pairs_capped_at_1,
        n_tree_edges, tree_unique
      umap_ab_params: umap.umap_.find_ab_params(spread, min_dist) (float64) for
        (1, 0.5), (1, 0.1), (2, 0.25), (1, 0.0), (0.5, 0.05)

Neighbors (scanpy 1.11.5, umap-learn 0.5.12)
  sc.pp.neighbors(a, n_neighbors=15, use_rep='X_pca', metric=M,
  transformer='sklearn'): scanpy builds
  sklearn.neighbors.KNeighborsTransformer(algorithm='brute', n_neighbors=15,
  metric=M) and calls fit_transform(X_pca) -> 16 entries per row (self + 15),
  and keeps the first 15 of each row (self + 14 others). So n_neighbors=15
  INCLUDES the cell itself: 14 real neighbours per cell.
  Brute force is exact up to float rounding: euclidean uses sklearn's
  ||x||^2 - 2 x.y + ||y||^2 in float64 chunks, sqrt; cosine = 1 - cos(x, y) in
  float32. The manifest's knn_check compares the neighbour sets with a float64
  reference (equal in every row for both datasets) and lists the smallest
  relative gap between the 15th (last kept, counting self) and 16th distance:
  rows with a gap below ~1e-6 may legitimately pick a different 15th neighbour
  in another exact implementation.
  Self distance: sklearn's euclidean self-distance is NOT exactly 0 (rounding,
  up to ~1e-6). scanpy then sets the diagonal of the sparse distance matrix to
  0, and the kNN distance array it hands to umap is a VIEW of that matrix's
  data, so umap sees an exact 0 in column 0. obsm/knn_distances holds these
  effective values (column 0 == 0.0). Feeding the raw non-zero self distances
  would change rho (below) for most cells.
  Connectivities = umap.umap_.fuzzy_simplicial_set(knn_indices,
  knn_dists.astype(float32), n_neighbors=15, local_connectivity=1,
  set_op_mix_ratio=1):
    rho_i   = smallest distance > 0 in row i (= distance to nearest other cell)
    sigma_i = binary search (64 steps, start lo=0, hi=inf, mid=1; hi=inf ->
              mid*=2) on sum_{j=1..14} exp(-max(0, d_ij - rho_i)/sigma)
              (terms with d_ij - rho_i <= 0 count 1) = log2(15), stop when
              |psum - log2(15)| < 1e-5; then sigma_i >= 1e-3 * mean(d_i.)
              (mean over all 15 entries incl. the 0 self) [if rho_i > 0,
              else 1e-3 * mean of all distances]
    w_ij    = exp(-(d_ij - rho_i)/sigma_i) (1 if d_ij - rho_i <= 0), self = 0,
              float32
    C       = W + W^T - W o W^T (elementwise product), float32, zeros removed.
  obsp/distances = the 14 non-self (index, distance) pairs per row.

UMAP
  sc.tl.umap(a, random_state=0) -> umap.umap_.simplicial_set_embedding on
  obsp/connectivities (euclidean graph) with n_components=2, a, b =
  find_ab_params(spread=1, min_dist=0.5), gamma=1, initial_alpha=1,
  negative_sample_rate=5, n_epochs=500 (n <= 10000, else 200), edges with
  weight < max/n_epochs dropped, init='spectral' (spectral layout of the graph
  + noisy_scale_coords to max |coord| 10) or init_pos='random' (uniform
  [-10, 10)), RandomState(0), single-threaded SGD (a graph with several
  connected components, see n_connected_components, gets umap's
  multi-component spectral layout). The layout is not meant to
  be matched numerically; the manifest gives sklearn.manifold.trustworthiness
  (X_pca, X_umap, n_neighbors=15) of both runs for quality comparisons.
  find_ab_params fits 1 / (1 + a x^(2b)) to y = 1 for x < min_dist, exp(-(x -
  min_dist)/spread) otherwise on x = linspace(0, 3 spread, 300) with
  scipy.optimize.curve_fit (default p0 = (1, 1), Levenberg-Marquardt).

Leiden
  sc.tl.leiden(a, flavor='leidenalg', random_state=0, resolution=r,
  n_iterations=-1, key_added='leiden_r<r>') on the euclidean connectivities.
  For flavor='leidenalg' scanpy's default directed=None becomes directed=True:
  the igraph graph has one DIRECTED edge per stored entry of the symmetric
  matrix (both i->j and j->i), weights = the float32 values as float64, in CSR
  order; leidenalg.find_partition(g, RBConfigurationVertexPartition,
  resolution_parameter=r, weights=..., n_iterations=-1, seed=0).
  Quality (manifest Q_rb): rb_quality(A, labels, gamma) with A the float64
  symmetric connectivities, 2m = A.sum(), k = A.sum(1):
      Q = 1/(2m) sum_ij (A_ij - gamma k_i k_j / 2m) delta(c_i, c_j)
        = 1/(2m) sum_c (W_c - gamma K_c^2 / 2m),  W_c = sum_{i,j in c} A_ij,
          K_c = sum_{i in c} k_i   (the i = j terms are in the null model).
  leidenalg's partition.quality() for a directed graph is
  sum_c (W_c - gamma K_c^out K_c^in / total_weight) with total_weight = A.sum()
  (all directed edges), i.e. leidenalg_quality = A.sum() * Q_rb = 2m * Q_rb
  (no 1/2m normalisation; an undirected graph holding each edge once gives
  the same number, leidenalg multiplies its undirected sum by 2). The
  manifest stores both and the factor; --self-check asserts it (rtol 1e-10).
  Leiden labels are seed dependent; compare Q, the number of clusters and
  (synth) the ARI vs cell_type rather than labels.

PAGA (model 'v1.2', sc.tl.paga(a, groups='leiden_r1.0'))
  scanpy uses the euclidean obsp/distances PATTERN (directed kNN graph without
  self, 14 out-edges per cell, all weights 1), not the connectivities. With
  M[a, b] = number of edges from group a to group b, n_a = group sizes,
  n = n_obs: e_a = sum_b M[a, b] (all out-edges of a = 14 n_a), E = M' + M'^T
  with M' = M without its diagonal; for every pair with E[a, b] > 0:
      expected[a, b] = (e_a n_b + e_b n_a) / (n - 1)
      connectivities[a, b] = min(1, E[a, b] / expected[a, b])
  (pairs without edges are 0). connectivities_tree: minimum spanning tree
  (scipy.sparse.csgraph.minimum_spanning_tree) of the graph with weights
  1/connectivities, each tree edge carrying its connectivity. Capped values
  (= 1) give equal weights, so the tree may not be unique: the manifest says
  whether it is (tree_unique) and how many pairs are capped.

Determinism: numba, OpenMP and BLAS are forced to one thread before numpy is
imported (UMAP's SGD and the kNN/connectivity kernels then run serially).
Every random step is seeded; the manifest and every array are identical from
run to run (no timings in the manifest; they go to stderr).
"""

import os

# Must happen before numpy / numba are imported (see module docstring).
for _var in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
             "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
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

MANIFEST_FORMAT = 1
DATASETS = ("synth_3k", "real_10k")
N_NEIGHBORS = 15
METRICS = ("euclidean", "cosine")
RESOLUTIONS = (0.5, 1.0, 2.0)
PAGA_GROUPS = "leiden_r1.0"
AB_GRID = ((1.0, 0.5), (1.0, 0.1), (2.0, 0.25), (1.0, 0.0), (0.5, 0.05))  # (spread, min_dist)


def pkg(name):
    try:
        return version(name)
    except PackageNotFoundError:
        return None


SEED_AGREEMENT = (1, 2, 3)


def leiden_key(r):
    return f"leiden_r{r}"   # 0.5 -> leiden_r0.5, 1.0 -> leiden_r1.0


# ==========================================================================
# writing helpers
# ==========================================================================

def _mat_desc(m):
    enc = "csr_matrix" if sp.issparse(m) and m.format == "csr" else \
        ("csc_matrix" if sp.issparse(m) else "array")
    d = {"dtype": str(m.dtype), "shape": list(m.shape), "encoding": enc}
    if sp.issparse(m):
        d["nnz"] = int(m.nnz)
    return d


def describe_elems(adata):
    """{element path: {dtype, shape[, encoding, nnz]}} for what `adata` holds."""
    out = {}
    if adata.X is not None:
        out["X"] = _mat_desc(adata.X)
    for k in adata.obs.columns:
        dt = adata.obs[k].dtype
        out[f"obs/{k}"] = {"dtype": "category" if isinstance(dt, pd.CategoricalDtype) else str(dt),
                           "shape": [adata.n_obs]}
    for k, v in adata.obsm.items():
        out[f"obsm/{k}"] = _mat_desc(v)
    for k, v in adata.obsp.items():
        out[f"obsp/{k}"] = _mat_desc(v)

    def walk(prefix, d):
        for k, v in d.items():
            if isinstance(v, dict):
                walk(f"{prefix}/{k}", v)
            elif isinstance(v, np.ndarray) or sp.issparse(v):
                out[f"{prefix}/{k}"] = _mat_desc(v)
            else:
                out[f"{prefix}/{k}"] = {"dtype": type(v).__name__, "value": v}
    walk("uns", adata.uns)
    return out


def write(outdir, fname, adata, compression="gzip"):
    adata.write_h5ad(Path(outdir) / fname, compression=compression)
    return {"file": fname, "elements": describe_elems(adata)}


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


# ==========================================================================
# the formulas (also used by --self-check)
# ==========================================================================

def rb_quality(A, labels, gamma):
    """Reichardt-Bornholdt / RB-configuration quality, normalised by 2m.

    A: symmetric (sparse) weight matrix, labels: (n,) cluster ids, gamma:
    resolution. 2m = A.sum(), k = A.sum(1),
    Q = 1/(2m) sum_ij (A_ij - gamma k_i k_j / 2m) delta(c_i, c_j)
      = 1/(2m) sum_c (W_c - gamma K_c^2 / 2m)       (float64 throughout)
    """
    A = sp.csr_matrix(A, dtype=np.float64)
    codes = pd.factorize(np.asarray(labels))[0]
    two_m = float(A.sum())
    k = np.asarray(A.sum(axis=1)).ravel()
    coo = A.tocoo()
    within = float(coo.data[codes[coo.row] == codes[coo.col]].sum())
    K = np.bincount(codes, weights=k)
    return (within - gamma * float(np.dot(K, K)) / two_m) / two_m


def leidenalg_quality(A, labels, gamma):
    """leidenalg's own RBConfigurationVertexPartition.quality() for `labels` on
    the graph sc.tl.leiden builds (directed, one edge per stored entry)."""
    import leidenalg
    from scanpy._utils import get_igraph_from_adjacency
    g = get_igraph_from_adjacency(A, directed=True)
    codes = pd.factorize(np.asarray(labels))[0]
    part = leidenalg.RBConfigurationVertexPartition(
        g, initial_membership=codes.tolist(),
        weights=np.array(g.es["weight"]).astype(np.float64), resolution_parameter=gamma)
    return float(part.quality())


def paga_formula(distances, codes, n_groups):
    """PAGA v1.2 from the kNN distance PATTERN and group codes (see docstring).

    Returns dict(connectivities, connectivities_tree, group_sizes, edge_counts,
    expected_n_edges_random) as dense arrays.
    """
    from scipy.sparse.csgraph import minimum_spanning_tree
    P = sp.csr_matrix(distances, copy=True)
    P.data = np.ones_like(P.data, dtype=np.float64)   # explicit zeros count too
    n = P.shape[0]
    G = sp.csr_matrix((np.ones(n), (np.arange(n), codes)), shape=(n, n_groups))
    M = np.asarray((G.T @ P @ G).todense(), dtype=np.float64)
    ns = np.bincount(codes, minlength=n_groups).astype(np.int64)
    es = M.sum(axis=1)
    Moff = M - np.diag(np.diag(M))
    E = Moff + Moff.T
    conn = np.zeros_like(E)
    expected = np.zeros_like(E)
    for a, b in zip(*np.nonzero(E)):
        ex = (es[a] * ns[b] + es[b] * ns[a]) / (n - 1)
        expected[a, b] = ex
        conn[a, b] = min(E[a, b] / ex, 1) if ex != 0 else 1
    inv = sp.csr_matrix(conn)
    inv.data = 1.0 / inv.data
    mst = minimum_spanning_tree(inv).tocoo()
    tree = np.zeros_like(conn)
    tree[mst.row, mst.col] = conn[mst.row, mst.col]
    return {"connectivities": conn, "connectivities_tree": tree, "group_sizes": ns,
            "edge_counts": M, "expected_n_edges_random": expected}


def tree_is_unique(conn, tree):
    """True if the minimum spanning forest of weights 1/conn is unique: every
    non-tree edge is strictly heavier than every edge on its tree path."""
    g = conn.shape[0]
    T = (tree + tree.T) > 0
    w = np.where(conn > 0, 1.0 / np.where(conn > 0, conn, 1), np.inf)
    for u in range(g):
        # max weight on the tree path from u to every v (BFS over the tree)
        best = np.full(g, -np.inf)
        seen = np.zeros(g, bool)
        seen[u] = True
        stack = [u]
        while stack:
            x = stack.pop()
            for y in np.flatnonzero(T[x]):
                if not seen[y]:
                    seen[y] = True
                    best[y] = max(best[x], w[x, y])
                    stack.append(y)
        for v in range(g):
            if v != u and conn[u, v] > 0 and not T[u, v] and seen[v] and w[u, v] <= best[v]:
                return False
    return True


def fuzzy_connectivities(knn_indices, knn_distances):
    """umap.umap_.fuzzy_simplicial_set on a given kNN (what scanpy's
    _connectivity.umap does) -> CSR float32."""
    from umap.umap_ import fuzzy_simplicial_set
    n, k = knn_indices.shape
    conn, _sigmas, _rhos = fuzzy_simplicial_set(
        sp.coo_matrix((n, 1)), k, None, None,
        knn_indices=knn_indices, knn_dists=knn_distances,
        set_op_mix_ratio=1.0, local_connectivity=1.0)
    return conn.tocsr()


# ==========================================================================
# kNN as scanpy computes it, plus a float64 cross-check
# ==========================================================================

def scanpy_knn(X, metric):
    """The (indices, distances) incl. self that scanpy's transformer='sklearn'
    path hands to umap: the first 15 entries of each row of
    KNeighborsTransformer(algorithm='brute').fit_transform(X); the self
    distance is set to 0 (scanpy zeroes the diagonal of the matrix whose data
    the distance array is a view of)."""
    from sklearn.neighbors import KNeighborsTransformer
    from scanpy.neighbors._common import _get_indices_distances_from_sparse_matrix
    tr = KNeighborsTransformer(algorithm="brute", n_jobs=sc.settings.n_jobs,
                               n_neighbors=N_NEIGHBORS, metric=metric, metric_params={})
    D = tr.fit_transform(X)
    idx, dist = _get_indices_distances_from_sparse_matrix(D, N_NEIGHBORS)
    idx, dist = np.array(idx), np.array(dist)
    assert idx.shape == (X.shape[0], N_NEIGHBORS)
    assert np.array_equal(idx[:, 0], np.arange(X.shape[0])), "self is not the first neighbour"
    raw_self = dist[:, 0].copy()
    dist[:, 0] = 0
    return idx, dist, raw_self


def knn_check(X, metric, idx, dist, raw_self, chunk=2000):
    """Compare the kNN sets with a float64 brute force; margins at the cut."""
    X64 = X.astype(np.float64)
    if metric == "cosine":
        X64 = X64 / np.linalg.norm(X64, axis=1, keepdims=True)
    sq = (X64 ** 2).sum(axis=1)
    n, k = X.shape[0], N_NEIGHBORS
    n_diff, gaps, max_abs, max_rel = 0, [], 0.0, 0.0
    for s in range(0, n, chunk):
        blk = X64[s:s + chunk]
        if metric == "euclidean":
            d = np.sqrt(np.maximum(sq[s:s + chunk, None] + sq[None, :] - 2.0 * blk @ X64.T, 0.0))
        else:
            d = np.maximum(1.0 - blk @ X64.T, 0.0)
        rows = np.arange(blk.shape[0])
        d[rows, s + rows] = 0.0
        part = np.argpartition(d, k + 1, axis=1)[:, :k + 2]
        pd_ = d[rows[:, None], part]
        order = np.argsort(pd_, axis=1, kind="stable")
        cand, cd = part[rows[:, None], order], pd_[rows[:, None], order]
        gaps.append((cd[:, k] - cd[:, k - 1]) / cd[:, k - 1])
        mine = idx[s:s + chunk]
        for i in range(blk.shape[0]):
            if set(cand[i, :k]) != set(mine[i]):
                n_diff += 1
        ref = d[rows[:, None], mine[:, 1:]]
        got = dist[s:s + chunk, 1:].astype(np.float64)
        max_abs = max(max_abs, float(np.abs(got - ref).max()))
        max_rel = max(max_rel, float((np.abs(got - ref) / ref).max()))
    gaps = np.concatenate(gaps)
    return {
        "reference": "float64 brute force (" + ("||x||^2+||y||^2-2x.y, sqrt" if metric == "euclidean"
                                               else "1 - x.y/(|x||y|)") + ") on X_pca",
        "rows_with_different_neighbor_set": n_diff,
        "max_abs_distance_diff": max_abs,
        "max_rel_distance_diff": max_rel,
        "cut_gap_note": "relative gap (d16 - d15)/d15 between the last kept (15th, counting self) and the "
                        "first dropped distance, float64 reference",
        "cut_gap_min": float(gaps.min()),
        "rows_cut_gap_below_1e-6": int((gaps < 1e-6).sum()),
        "rows_cut_gap_below_1e-4": int((gaps < 1e-4).sum()),
        "raw_self_distance_max": float(raw_self.max()),
        "raw_self_distance_nonzero_rows": int((raw_self != 0).sum()),
        "raw_self_distance_note": "sklearn's self distance before scanpy zeroes it (obsm/knn_distances[:, 0] is 0)",
    }


# ==========================================================================
# per dataset
# ==========================================================================

def load_input(ppdir, name):
    pca = ad.read_h5ad(Path(ppdir) / f"{name}.pca_arpack.h5ad")
    X = np.ascontiguousarray(pca.obsm["X_pca"])
    assert X.dtype == np.float32
    obs = pd.DataFrame(index=pca.obs_names.copy())
    src = {"X_pca": f"PPDIR/{name}.pca_arpack.h5ad obsm/X_pca"}
    raw = ad.read_h5ad(Path(ppdir) / f"{name}.h5ad", backed="r")
    if "cell_type" in raw.obs.columns:
        ct = raw.obs["cell_type"].reindex(obs.index)
        assert not ct.isna().any()
        obs["cell_type"] = pd.Categorical(ct.to_numpy(), categories=raw.obs["cell_type"].cat.categories)
        src["cell_type"] = f"PPDIR/{name}.h5ad obs/cell_type, by obs name (the filtered cells)"
    raw.file.close()
    return X, obs, src


def run_dataset(name, ppdir, outdir, t_start):
    t0 = time.time()
    X, obs, src = load_input(ppdir, name)
    n = X.shape[0]
    inp = ad.AnnData(obs=obs.copy(), obsm={"X_pca": X})
    entry = {"n_obs": n}
    entry["input"] = {**write(outdir, f"{name}.graph_input.h5ad", inp, compression=None),
                      "source": src, "n_obs": n}
    def log(msg):
        print(f"  {name}: {msg} (wall {time.time() - t_start:.1f} s, cpu {time.process_time():.1f} s)",
              file=sys.stderr)

    # ---------------------------------------------------------------- neighbors
    nb_entry = {}
    base = None
    for metric in METRICS:
        a = ad.AnnData(obs=pd.DataFrame(index=obs.index), obsm={"X_pca": X})
        sc.pp.neighbors(a, n_neighbors=N_NEIGHBORS, use_rep="X_pca", metric=metric,
                        transformer="sklearn", random_state=0)
        idx, dist, raw_self = scanpy_knn(X, metric)
        # the saved kNN must be exactly what scanpy used
        from scanpy.neighbors._common import _get_sparse_matrix_from_indices_distances
        dmat = _get_sparse_matrix_from_indices_distances(idx, dist, keep_self=False)
        S = a.obsp["distances"]
        assert S.dtype == dmat.dtype and np.array_equal(S.indptr, dmat.indptr) \
            and np.array_equal(S.indices, dmat.indices) and np.array_equal(S.data, dmat.data)
        C = a.obsp["connectivities"]
        C2 = fuzzy_connectivities(idx, dist)
        assert C.dtype == C2.dtype and (C != C2).nnz == 0
        a.obsm["knn_indices"] = idx.astype(np.int32)
        a.obsm["knn_distances"] = dist.astype(np.float32)
        out = ad.AnnData(obs=pd.DataFrame(index=obs.index), obsm={k: a.obsm[k] for k in ("knn_indices", "knn_distances")},
                         obsp={"distances": S, "connectivities": C}, uns={"neighbors": a.uns["neighbors"]})
        res = write(outdir, f"{name}.neighbors_{metric}.h5ad", out)
        from scipy.sparse.csgraph import connected_components
        ncomp = connected_components(C)[0]
        nb_entry[metric] = {
            "call": f"sc.pp.neighbors(adata, n_neighbors={N_NEIGHBORS}, use_rep='X_pca', metric='{metric}', "
                    "transformer='sklearn', random_state=0)",
            "on": f"{name}.graph_input.h5ad obsm/X_pca",
            "params": {"n_neighbors": N_NEIGHBORS, "metric": metric, "use_rep": "X_pca", "transformer": "sklearn",
                       "method": "umap", "knn": True, "set_op_mix_ratio": 1.0, "local_connectivity": 1.0},
            "transformer_used": f"sklearn.neighbors.KNeighborsTransformer(algorithm='brute', n_neighbors=15, "
                                f"metric='{metric}') (16 per row incl. self; scanpy keeps 15)",
            "file": res["file"],
            "elements": res["elements"],
            "distances_nnz_per_row": N_NEIGHBORS - 1,
            "connectivities_nnz": int(C.nnz),
            "connectivities_sum": float(C.sum(dtype=np.float64)),
            "n_connected_components": int(ncomp),
            "knn_check": knn_check(X, metric, idx, dist, raw_self),
        }
        if metric == "euclidean":
            base = a
        log(f"neighbors {metric}")
    entry["neighbors"] = nb_entry

    # ---------------------------------------------------------------- umap
    from sklearn.manifold import trustworthiness
    from umap.umap_ import find_ab_params
    u1 = base.copy()
    sc.tl.umap(u1, random_state=0)
    u2 = base.copy()
    sc.tl.umap(u2, random_state=0, init_pos="random")
    Y1 = u1.obsm["X_umap"].astype(np.float32)
    Y2 = u2.obsm["X_umap"].astype(np.float32)
    log("umap x2")
    tw1 = float(trustworthiness(X, Y1, n_neighbors=N_NEIGHBORS))
    tw2 = float(trustworthiness(X, Y2, n_neighbors=N_NEIGHBORS))
    log("trustworthiness x2")
    a_, b_ = find_ab_params(1.0, 0.5)
    out = ad.AnnData(obs=pd.DataFrame(index=obs.index), obsm={"X_umap": Y1, "X_umap_random": Y2},
                     uns={"umap": {"params": {"a": float(u1.uns["umap"]["params"]["a"]),
                                              "b": float(u1.uns["umap"]["params"]["b"])}}})
    res = write(outdir, f"{name}.umap.h5ad", out)
    entry["umap"] = {
        "call": "sc.tl.umap(adata, random_state=0) and sc.tl.umap(adata, random_state=0, init_pos='random')",
        "on": f"{name}.neighbors_euclidean.h5ad obsp/connectivities",
        "params": {"min_dist": 0.5, "spread": 1.0, "n_components": 2, "alpha": 1.0, "gamma": 1.0,
                   "negative_sample_rate": 5, "random_state": 0,
                   "n_epochs": 500 if n <= 10000 else 200, "init_pos": ["spectral", "random"],
                   "a": float(a_), "b": float(b_)},
        "file": res["file"],
        "elements": res["elements"],
        "embeddings": {"obsm/X_umap": "init_pos='spectral'", "obsm/X_umap_random": "init_pos='random'"},
        "trustworthiness_call": "sklearn.manifold.trustworthiness(X_pca, X_umap, n_neighbors=15)",
        "trustworthiness": {"spectral": tw1, "random": tw2},
    }

    # ---------------------------------------------------------------- leiden
    lei = base.copy()
    for r in RESOLUTIONS:
        sc.tl.leiden(lei, flavor="leidenalg", random_state=0, resolution=r, n_iterations=-1,
                     key_added=leiden_key(r))
    log("leiden x3")
    A = base.obsp["connectivities"]
    two_m = float(sp.csr_matrix(A, dtype=np.float64).sum())
    per_res = {}
    for r in RESOLUTIONS:
        lab = lei.obs[leiden_key(r)]
        sizes = lab.value_counts().reindex(lab.cat.categories).to_numpy()
        q = rb_quality(A, lab.to_numpy(), r)
        ql = leidenalg_quality(A, lab.to_numpy(), r)
        d = {"column": f"obs/{leiden_key(r)}", "resolution": r,
             "n_clusters": int(lab.cat.categories.size),
             "cluster_sizes": [int(s) for s in sizes],
             "Q_rb": q, "leidenalg_quality": ql,
             "leidenalg_quality_over_Q_rb": ql / q,
             "modularity_gamma1": rb_quality(A, lab.to_numpy(), 1.0)}
        if "cell_type" in obs.columns:
            from sklearn.metrics import adjusted_rand_score
            d["ari_vs_cell_type"] = float(adjusted_rand_score(obs["cell_type"].to_numpy(), lab.to_numpy()))
        if r == 1.0:
            # How much leidenalg agrees with itself across seeds: on real
            # data with many clusters, equally good partitions differ, so
            # this bounds the ARI any implementation can reach vs seed 0.
            from sklearn.metrics import adjusted_rand_score
            agree = []
            for seed in SEED_AGREEMENT:
                tmp = base.copy()
                sc.tl.leiden(tmp, flavor="leidenalg", random_state=seed, resolution=r, n_iterations=-1)
                agree.append(float(adjusted_rand_score(lab.to_numpy(), tmp.obs["leiden"].to_numpy())))
            d["ari_seed0_vs_other_seeds"] = agree
        per_res[str(r)] = d
    out = ad.AnnData(obs=lei.obs[[leiden_key(r) for r in RESOLUTIONS]].copy(),
                     uns={leiden_key(r): {"params": dict(lei.uns[leiden_key(r)]["params"])} for r in RESOLUTIONS})
    res = write(outdir, f"{name}.leiden.h5ad", out)
    entry["leiden"] = {
        "call": "sc.tl.leiden(adata, flavor='leidenalg', random_state=0, resolution=r, n_iterations=-1, "
                "key_added='leiden_r<r>')",
        "on": f"{name}.neighbors_euclidean.h5ad obsp/connectivities",
        "params": {"flavor": "leidenalg", "random_state": 0, "n_iterations": -1, "resolutions": list(RESOLUTIONS),
                   "directed": True, "use_weights": True,
                   "partition_type": "leidenalg.RBConfigurationVertexPartition"},
        "directed_note": "scanpy's default directed=None means True for flavor='leidenalg' (igraph graph with "
                         "both directions of each symmetric edge)",
        "file": res["file"],
        "elements": res["elements"],
        "two_m": two_m,
        "quality_scale_factor": "leidenalg_quality = A.sum() * Q_rb = two_m * Q_rb",
        "resolutions": per_res,
    }

    # ---------------------------------------------------------------- paga
    pg = base.copy()
    pg.obs[PAGA_GROUPS] = lei.obs[PAGA_GROUPS]
    sc.tl.paga(pg, groups=PAGA_GROUPS)
    conn = np.asarray(pg.uns["paga"]["connectivities"].toarray(), dtype=np.float64)
    tree = np.asarray(pg.uns["paga"]["connectivities_tree"].toarray(), dtype=np.float64)
    codes = pg.obs[PAGA_GROUPS].cat.codes.to_numpy().astype(np.int64)
    ng = pg.obs[PAGA_GROUPS].cat.categories.size
    ref = paga_formula(base.obsp["distances"], codes, ng)
    assert np.array_equal(ref["connectivities"], conn), "PAGA formula != scanpy"
    assert np.array_equal(ref["connectivities_tree"], tree), "PAGA tree formula != scanpy"
    log("paga")
    out = ad.AnnData(obs=pg.obs[[PAGA_GROUPS]].copy(),
                     uns={"paga": {"connectivities": conn, "connectivities_tree": tree, "groups": PAGA_GROUPS,
                                   "group_sizes": ref["group_sizes"], "edge_counts": ref["edge_counts"],
                                   "expected_n_edges_random": ref["expected_n_edges_random"]}})
    res = write(outdir, f"{name}.paga.h5ad", out)
    iu = np.triu_indices(ng, 1)
    entry["paga"] = {
        "call": f"sc.tl.paga(adata, groups='{PAGA_GROUPS}')",
        "on": f"{name}.neighbors_euclidean.h5ad obsp/distances (pattern) + {name}.leiden.h5ad obs/{PAGA_GROUPS}",
        "params": {"groups": PAGA_GROUPS, "model": "v1.2", "use_rna_velocity": False},
        "file": res["file"],
        "elements": res["elements"],
        "n_groups": int(ng),
        "n_group_pairs_connected": int((conn[iu] > 0).sum()),
        "n_group_pairs_capped_at_1": int((conn[iu] == 1).sum()),
        "n_tree_edges": int((tree > 0).sum()),
        "tree_unique": bool(tree_is_unique(conn, tree)),
        "scanpy_stores": "uns/paga/connectivities (CSR float64 in scanpy; dense here) and "
                         "uns/paga/connectivities_tree (CSR; dense here); group_sizes, edge_counts and "
                         "expected_n_edges_random are extras from the formula",
    }
    print(f"{name} done ({time.time() - t0:.1f} s)", file=sys.stderr)
    return entry


# ==========================================================================
# --self-check: re-derive from the written files
# ==========================================================================

def self_check(outdir):
    outdir = Path(outdir)
    man = json.loads((outdir / "graph_manifest.json").read_text())
    fails = []

    def check(ok, msg):
        print(("  ok   " if ok else "  FAIL ") + msg)
        if not ok:
            fails.append(msg)

    for name, ent in man["datasets"].items():
        print(name)
        inp = ad.read_h5ad(outdir / ent["input"]["file"])
        X = inp.obsm["X_pca"]
        for metric in METRICS:
            f = ad.read_h5ad(outdir / ent["neighbors"][metric]["file"])
            idx, dist = f.obsm["knn_indices"], f.obsm["knn_distances"]
            check(np.array_equal(idx[:, 0], np.arange(f.n_obs)) and not dist[:, 0].any(),
                  f"{metric}: knn column 0 is self at distance 0")
            C = fuzzy_connectivities(idx, dist)
            S = f.obsp["connectivities"]
            check(C.dtype == S.dtype and C.shape == S.shape and (C != S).nnz == 0,
                  f"{metric}: fuzzy_simplicial_set(knn) == obsp/connectivities (exact, nnz {S.nnz})")
            D = f.obsp["distances"]
            same = all(np.array_equal(D.indices[D.indptr[i]:D.indptr[i + 1]], idx[i, 1:]) for i in range(f.n_obs))
            check(same and np.array_equal(D.data.astype(np.float32), dist[:, 1:].ravel()),
                  f"{metric}: obsp/distances == knn[:, 1:] (row order kept)")
            check(np.abs(S - S.T).max() == 0 and not S.diagonal().any(), f"{metric}: connectivities symmetric, zero diag")
            if metric == "euclidean":
                A, Dist = S, D
        # leiden
        lf = ad.read_h5ad(outdir / ent["leiden"]["file"])
        two_m = float(sp.csr_matrix(A, dtype=np.float64).sum())
        for r in RESOLUTIONS:
            rec = ent["leiden"]["resolutions"][str(r)]
            lab = lf.obs[leiden_key(r)].to_numpy()
            q = rb_quality(A, lab, r)
            ql = leidenalg_quality(A, lab, r)
            check(np.isclose(q, rec["Q_rb"], rtol=1e-12, atol=0), f"leiden r={r}: Q_rb {q:.6f} == manifest")
            check(np.isclose(ql, two_m * q, rtol=1e-10, atol=0),
                  f"leiden r={r}: leidenalg quality {ql:.4f} == A.sum() ({two_m:.4f}) * Q_rb")
            check(len(np.unique(lab)) == rec["n_clusters"], f"leiden r={r}: {rec['n_clusters']} clusters")
            if "cell_type" in inp.obs:
                from sklearn.metrics import adjusted_rand_score
                ari = adjusted_rand_score(inp.obs["cell_type"].to_numpy(), lab)
                check(np.isclose(ari, rec["ari_vs_cell_type"], rtol=1e-12), f"leiden r={r}: ARI {ari:.4f}")
        # paga
        pf = ad.read_h5ad(outdir / ent["paga"]["file"])
        grp = pf.obs[PAGA_GROUPS]
        check(np.array_equal(grp.to_numpy(), lf.obs[PAGA_GROUPS].to_numpy()), "paga groups == leiden_r1.0")
        ref = paga_formula(Dist, grp.cat.codes.to_numpy().astype(np.int64), grp.cat.categories.size)
        for k in ("connectivities", "connectivities_tree", "group_sizes", "edge_counts", "expected_n_edges_random"):
            check(np.array_equal(ref[k], pf.uns["paga"][k]), f"paga {k} == formula")
        # umap
        from sklearn.manifold import trustworthiness
        uf = ad.read_h5ad(outdir / ent["umap"]["file"])
        for key, lab in (("X_umap", "spectral"), ("X_umap_random", "random")):
            tw = trustworthiness(X, uf.obsm[key], n_neighbors=N_NEIGHBORS)
            check(tw == ent["umap"]["trustworthiness"][lab], f"umap {lab}: trustworthiness {tw:.4f} == manifest")
    print(f"self-check: {'FAILED (' + str(len(fails)) + ')' if fails else 'all ok'}")
    return 1 if fails else 0


# ==========================================================================
# main
# ==========================================================================

NOTES = {
    "comparison": "kNN sets are exact (brute force) and equal to a float64 reference in every row; distances "
                  "differ from an exact computation by float rounding (see knn_check). Connectivities follow "
                  "deterministically from the kNN (feed obsm/knn_indices + knn_distances to reproduce them to "
                  "float32 rounding). UMAP layouts and Leiden labels are seed/implementation dependent: compare "
                  "trustworthiness, Q, cluster counts and ARI instead.",
    "n_neighbors": "n_neighbors = 15 counts the cell itself: 14 real neighbours per cell in obsp/distances",
    "leiden_quality_scale": "leidenalg partition.quality() = A.sum() * Q_rb (A.sum() = 2m, sum over all stored "
                            "entries of the symmetric connectivities); Q_rb is normalised by 1/2m",
    "threads": "NUMBA_NUM_THREADS=OMP_NUM_THREADS=OPENBLAS_NUM_THREADS=MKL_NUM_THREADS=1 while generating",
}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("ppdir", help="output directory of make_pp_oracle.py")
    ap.add_argument("outdir")
    ap.add_argument("--self-check", action="store_true",
                    help="afterwards, re-derive connectivities, Leiden quality and PAGA from the written files")
    args = ap.parse_args()
    outdir = Path(args.outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    if version("scanpy") != "1.11.5":
        print(f"warning: the docstring describes scanpy 1.11.5, running {version('scanpy')}", file=sys.stderr)

    from umap.umap_ import find_ab_params
    ab = []
    for spread, min_dist in AB_GRID:
        a_, b_ = find_ab_params(spread, min_dist)
        ab.append({"spread": spread, "min_dist": min_dist, "a": float(a_), "b": float(b_)})

    datasets = {}
    for name in DATASETS:
        datasets[name] = run_dataset(name, args.ppdir, outdir, t0)

    import numba
    manifest = {
        "format": MANIFEST_FORMAT,
        "generator": "tests/python/make_graph_oracle.py",
        "versions": {p: pkg(p) for p in ("scanpy", "umap-learn", "leidenalg", "igraph", "pynndescent",
                                         "scikit-learn", "numpy", "scipy", "numba", "anndata", "pandas")},
        "python": sys.version.split()[0],
        "numba_threads": numba.get_num_threads(),
        "element_paths": "keys of 'elements' are paths inside the step's .h5ad: obs/COL, obsm/K, obsp/K, "
                         "uns/A/B; no file has X (n_obs x 0)",
        "notes": NOTES,
        "umap_ab_params": ab,
        "datasets": datasets,
    }
    (outdir / "graph_manifest.json").write_text(json.dumps(manifest, indent=1, default=_json_default) + "\n")
    print(f"wrote {outdir / 'graph_manifest.json'} (wall {time.time() - t0:.1f} s, "
          f"cpu {time.process_time():.1f} s)", file=sys.stderr)
    if args.self_check:
        sys.exit(self_check(outdir))


if __name__ == "__main__":
    main()
