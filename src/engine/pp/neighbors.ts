/**
 * pp.neighbors: the kNN graph of a representation (X_pca) and its UMAP
 * connectivities, as scanpy's `pp.neighbors(method='umap')` stores them.
 * Native: exact blocked search up to 20,000 cells, NN-descent above
 * (override with `method`). X is never read.
 */
import { type AnnDataOOM, checkAnnData } from "../anndata";
import { InvalidArgumentError, nativeCall, shown } from "../errors";
import { type CsrGraph, graphElement, representation, seedOf } from "../graph-data";
import { isMemberName } from "../names";
import { type Native, native } from "../native";
import { checkOptionNames } from "../options";
import type { PassOptions } from "../pass";

export interface NeighborsOptions extends PassOptions {
  /** Neighbours per cell, the cell itself included (scanpy's convention). Default 15. */
  nNeighbors?: number;
  /** Use the first nPcs columns of the representation (default: all). */
  nPcs?: number;
  /** obsm key of the representation (default X_pca). */
  useRep?: string;
  metric?: "euclidean" | "cosine";
  /**
   * The kNN search: 'auto' (default): exact up to 20,000 cells, NN-descent
   * above. scanpy's `method` names the connectivity kernel instead; its
   * default 'umap' (the kernel used here) is taken as 'auto', 'gauss' is
   * refused.
   */
  method?: "auto" | "exact" | "nndescent" | "umap";
  /** Seed of NN-descent's random projections (default 0; null: a fresh random seed, scanpy's None). */
  randomState?: number | null;
  /** Store under obsp[`${key}_connectivities`] and uns[key] instead of the defaults. */
  keyAdded?: string;
}

/** What pp.neighbors computed, besides what it stored in obsp/uns. */
export interface NeighborsResult {
  /** n × k, row-major, the cell itself first. */
  knnIndices: Int32Array;
  knnDistances: Float32Array;
  k: number;
  exact: boolean;
  connectivities: CsrGraph;
  distances: CsrGraph;
}

/**
 * @example
 * await pp.pca(adata);
 * await pp.neighbors(adata, { nNeighbors: 15 });
 * adata.obsp.keys(); // ["distances", "connectivities"]
 */
export async function neighbors(adata: AnnDataOOM, opts: NeighborsOptions = {}): Promise<NeighborsResult> {
  checkAnnData("pp.neighbors", adata);
  checkOptionNames<NeighborsOptions>("pp.neighbors", opts, {
    nNeighbors: "num",
    nPcs: "num",
    useRep: true,
    metric: true,
    method: true,
    randomState: "num",
    keyAdded: true,
    onProgress: true,
    signal: true,
  });
  let k = opts.nNeighbors ?? 15;
  const metric = opts.metric ?? "euclidean";
  if ((opts.method as string) === "gauss")
    throw new InvalidArgumentError(
      "method 'gauss' (scanpy's Gaussian kernel) is not supported: connectivities are umap's fuzzy set (method 'umap')",
    );
  const method = opts.method === undefined || opts.method === "umap" ? "auto" : opts.method;
  if (!(Number.isInteger(k) && k >= 2)) throw new InvalidArgumentError(`nNeighbors must be an integer ≥ 2, got ${opts.nNeighbors}`);
  if (k > adata.nObs) {
    // scanpy on very small data: 1 + n_obs / 2 neighbours, with a warning.
    const adjusted = 1 + Math.floor(0.5 * adata.nObs);
    if (adjusted < 2) throw new InvalidArgumentError(`neighbors needs at least 2 cells, got ${adata.nObs}`);
    process.emitWarning(`n_obs too small: adjusting to nNeighbors = ${adjusted} (asked for ${k}, ${adata.nObs} cells)`);
    k = adjusted;
  }
  if (metric !== "euclidean" && metric !== "cosine")
    throw new InvalidArgumentError(`metric must be 'euclidean' or 'cosine', got ${String(metric)}`);
  const seed = seedOf(opts.randomState);
  // Checked before the search: uns[""] or a key with "/" could not be written.
  if (opts.keyAdded !== undefined && !isMemberName(opts.keyAdded))
    throw new InvalidArgumentError(`keyAdded must be a non-empty string without "/", got ${shown(opts.keyAdded)}`);
  const rep = await representation(adata, opts.useRep ?? "X_pca", opts.nPcs, { centre: metric === "euclidean" });
  const label = `neighbors (${k}, ${metric}, ${rep.n.toLocaleString("en-US")} cells)`;
  let out: Awaited<ReturnType<Native.NativePass["takeNeighbors"]>>;
  try {
    const job = nativeCall(() => native.startNeighbors(rep.data, rep.n, rep.d, k, metric, method, seed));
    out = await adata.runJob(label, job, (p) => p.takeNeighbors(), opts);
  } catch (e) {
    // The native check names the row only: say which obsm element it is in.
    if (e instanceof InvalidArgumentError && /^row \d+ has a non-finite/.test(e.message))
      throw new InvalidArgumentError(`obsm ${JSON.stringify(rep.useRep)}: ${e.message}`, { element: `obsm/${rep.useRep}` });
    throw e;
  }
  const csr = (c: { n: number; indptr: Float64Array; indices: Int32Array; data: Float32Array }): CsrGraph => ({
    n: c.n,
    indptr: c.indptr,
    indices: c.indices,
    data: c.data,
  });
  const result: NeighborsResult = {
    knnIndices: out.knnIndices,
    knnDistances: out.knnDistances,
    k: out.k,
    exact: out.exact,
    connectivities: csr(out.connectivities),
    distances: csr(out.distances),
  };
  const key = opts.keyAdded;
  const connKey = key ? `${key}_connectivities` : "connectivities";
  const distKey = key ? `${key}_distances` : "distances";
  // scanpy's dtypes: euclidean distances float64 (sklearn widens them),
  // cosine ones in the representation's dtype (float32 for X_pca).
  adata.obsp.set(distKey, graphElement(result.distances, metric === "euclidean" ? "float64" : rep.dtype));
  adata.obsp.set(connKey, graphElement(result.connectivities));
  // use_rep and n_pcs only when given, as scanpy: sc.tl.ingest projects new
  // data onto the reference's PCs only when use_rep is absent (with it,
  // it read the new data's own X_pca: ARI 0.24 instead of 0.97).
  const params: Record<string, unknown> = { n_neighbors: k, method: "umap", random_state: seed, metric };
  if (opts.useRep !== undefined) params.use_rep = opts.useRep;
  if (opts.nPcs !== undefined) params.n_pcs = opts.nPcs;
  params.knn_method = out.exact ? "exact" : "nndescent";
  adata.uns[key ?? "neighbors"] = { connectivities_key: connKey, distances_key: distKey, params };
  return result;
}
