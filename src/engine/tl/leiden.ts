/**
 * tl.leiden: Leiden clustering (native) of the neighbour graph, maximising
 * modularity with a resolution (the RB configuration model, scanpy's
 * default partition type). Writes obs[keyAdded] as a categorical whose
 * categories "0", "1", … are ordered by cluster size, and uns[keyAdded].
 */
import type { AnnDataOOM } from "../anndata";
import { InvalidArgumentError, nativeCall } from "../errors";
import { type CsrGraph, categorical, obspGraph, seedOf } from "../graph-data";
import { native } from "../native";
import type { PassOptions } from "../pass";
import { withSummary } from "../repr-html";

export interface LeidenOptions extends PassOptions {
  /** Higher → more, smaller clusters (default 1). */
  resolution?: number;
  /** Seed (default 0); the same seed gives the same clusters. */
  randomState?: number;
  /** Iterations of the algorithm; -1 (default) iterates until the partition stops changing. */
  nIterations?: number;
  /** Use edge weights (default true); false clusters the unweighted graph. */
  useWeights?: boolean;
  /** Cluster only the cells of these categories of an obs column; others keep their label. */
  restrictTo?: [string, string[]];
  /** obs column and uns key to write (default "leiden"). */
  keyAdded?: string;
  /** obsp key of the graph (default: uns.neighbors.connectivities_key, else "connectivities"). */
  obsp?: string;
  /** Use the graph of uns[neighborsKey] (as scanpy's neighbors_key). */
  neighborsKey?: string;
}

export interface LeidenResult {
  /** Cluster of each cell (restricted runs: -1 outside the restriction). */
  membership: Int32Array;
  nClusters: number;
  /** The modularity-with-resolution of the partition on the graph it clustered. */
  quality: number;
}

/** obsp key of the connectivities that a graph step uses. */
export function connectivitiesKey(adata: AnnDataOOM, obsp?: string, neighborsKey?: string): string {
  if (obsp) return obsp;
  const entry = adata.uns[neighborsKey ?? "neighbors"] as { connectivities_key?: string } | undefined;
  if (neighborsKey && !entry) throw new InvalidArgumentError(`uns has no ${JSON.stringify(neighborsKey)} (run pp.neighbors with keyAdded)`);
  return entry?.connectivities_key ?? "connectivities";
}

/**
 * @example
 * await tl.leiden(adata, { resolution: 1 });
 * adata.obs.getChild("leiden");
 */
export async function leiden(adata: AnnDataOOM, opts: LeidenOptions = {}): Promise<LeidenResult> {
  const resolution = opts.resolution ?? 1;
  if (!(Number.isFinite(resolution) && resolution > 0))
    throw new InvalidArgumentError(`resolution must be a positive number, got ${opts.resolution}`);
  const nIterations = opts.nIterations ?? -1;
  if (!(Number.isInteger(nIterations) && nIterations !== 0 && nIterations >= -1)) {
    throw new InvalidArgumentError(`nIterations must be -1 or a positive integer, got ${opts.nIterations}`);
  }
  const seed = seedOf(opts.randomState);
  const keyAdded = opts.keyAdded ?? "leiden";
  let graph = await obspGraph(adata, connectivitiesKey(adata, opts.obsp, opts.neighborsKey));
  if (opts.useWeights === false) graph = { ...graph, data: new Float32Array(graph.data.length).fill(1) };

  const n = adata.nObs;
  let cells: Uint32Array | null = null;
  let previous: (string | null)[] = [];
  if (opts.restrictTo) {
    const [key, cats] = opts.restrictTo;
    const col = adata.obs.getChild(key);
    if (!col) throw new InvalidArgumentError(`restrictTo: obs has no column ${JSON.stringify(key)}`);
    previous = Array.from({ length: n }, (_, i) => {
      const v = col.get(i);
      return v === null || v === undefined ? null : String(v);
    });
    const known = new Set(previous);
    const missing = cats.filter((c) => !known.has(c));
    if (missing.length) throw new InvalidArgumentError(`restrictTo: ${JSON.stringify(key)} has no categories ${missing.join(", ")}`);
    const wanted = new Set(cats);
    cells = Uint32Array.from(previous.flatMap((v, i) => (v !== null && wanted.has(v) ? [i] : [])));
    graph = induced(graph, cells);
  }

  const job = nativeCall(() => native.startLeiden(graph, resolution, nIterations, seed));
  const label = `leiden (resolution ${resolution}, ${graph.n.toLocaleString("en-US")} cells)`;
  const out = await adata.runJob(label, job, (p) => p.takeLeiden(), opts);
  const m = out.membership;
  let nClusters = 0;
  for (const c of m) if (c + 1 > nClusters) nClusters = c + 1;

  const membership = new Int32Array(n).fill(-1);
  if (cells) {
    // scanpy's restrict_to: the new clusters are named "<old>,<new>".
    const labels = previous.map((v) => v);
    cells.forEach((c, t) => {
      membership[c] = m[t];
      labels[c] = `${previous[c]},${m[t]}`;
    });
    const cats = [...new Set(labels.filter((v): v is string => v !== null))].sort(naturalOrder);
    const pos = new Map(cats.map((c, i) => [c, i]));
    const codes = Int32Array.from(labels, (v) => (v === null ? -1 : (pos.get(v) as number)));
    adata.setObs(keyAdded, categorical(codes, cats));
  } else {
    m.forEach((c, i) => {
      membership[i] = c;
    });
    adata.setObs(
      keyAdded,
      categorical(
        membership,
        Array.from({ length: nClusters }, (_, c) => String(c)),
      ),
    );
  }
  adata.uns[keyAdded] = {
    params: { resolution, random_state: seed, n_iterations: nIterations, use_weights: opts.useWeights ?? true },
    quality: out.quality,
  };
  const summary = `leiden: ${nClusters} clusters on ${membership.length.toLocaleString("en-US")} cells, quality ${out.quality.toFixed(4)} → obs['${keyAdded}'], uns['${keyAdded}']`;
  return withSummary({ membership, nClusters, quality: out.quality }, summary);
}

function naturalOrder(a: string, b: string): number {
  return a.localeCompare(b, "en", { numeric: true });
}

/** The subgraph on `cells` (renumbered 0..cells.length). */
function induced(g: CsrGraph, cells: Uint32Array): CsrGraph {
  const pos = new Int32Array(g.n).fill(-1);
  cells.forEach((c, t) => {
    pos[c] = t;
  });
  const indptr = new Float64Array(cells.length + 1);
  const idx: number[] = [];
  const val: number[] = [];
  cells.forEach((c, t) => {
    for (let e = g.indptr[c]; e < g.indptr[c + 1]; e++) {
      const j = pos[g.indices[e]];
      if (j >= 0) {
        idx.push(j);
        val.push(g.data[e]);
      }
    }
    indptr[t + 1] = idx.length;
  });
  return { n: cells.length, indptr, indices: Int32Array.from(idx), data: Float32Array.from(val) };
}
