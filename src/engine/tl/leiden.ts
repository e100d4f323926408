/**
 * tl.leiden: Leiden clustering (native) of the neighbour graph, maximising
 * modularity with a resolution (the RB configuration model, scanpy's
 * default partition type). Writes obs[keyAdded] as a categorical whose
 * categories "0", "1", … are ordered by cluster size, and uns[keyAdded].
 */

import type { Vector } from "apache-arrow";
import { type AnnDataOOM, checkAnnData } from "../anndata";
import { InvalidArgumentError, nativeCall, renameElement, shown } from "../errors";
import { type CsrGraph, categorical, obspGraph, seedOf } from "../graph-data";
import { isMemberName } from "../names";
import { type Native, native } from "../native";
import { natsortedCategories } from "../natsort";
import { checkOptionNames } from "../options";
import type { PassOptions } from "../pass";
import { withSummary } from "../repr-html";

export interface LeidenOptions extends PassOptions {
  /** Higher → more, smaller clusters (default 1). */
  resolution?: number;
  /** Seed (default 0); the same seed gives the same clusters. null: a fresh random seed on every call (scanpy's None). */
  randomState?: number | null;
  /** Iterations of the algorithm; -1 (default) iterates until the partition stops changing. */
  nIterations?: number;
  /** Use edge weights (default true); false clusters the unweighted graph (explicit zeros are no edges, as scanpy). */
  useWeights?: boolean;
  /**
   * Cluster only the cells of these categories of an obs column; they are
   * named "<cat1>-<cat2>,<cluster>", the others keep their label. With the
   * default keyAdded the result goes to obs["leiden_R"] (as scanpy).
   */
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
  // "" is no key (it used to mean the default silently).
  if (obsp !== undefined && (typeof obsp !== "string" || obsp === ""))
    throw new InvalidArgumentError(`obsp must be the key of a graph in obsp, got ${JSON.stringify(obsp)}`);
  if (neighborsKey !== undefined && (typeof neighborsKey !== "string" || neighborsKey === ""))
    throw new InvalidArgumentError(`neighborsKey must be a key of uns written by pp.neighbors, got ${JSON.stringify(neighborsKey)}`);
  // scanpy: "You can't specify both obsp, neighbors_key. Please select only one."
  if (obsp && neighborsKey)
    throw new InvalidArgumentError(`give obsp (${JSON.stringify(obsp)}) or neighborsKey (${JSON.stringify(neighborsKey)}), not both`);
  if (obsp) return obsp;
  const entry = adata.uns[neighborsKey ?? "neighbors"] as { connectivities_key?: string } | undefined;
  if (neighborsKey && !entry) throw new InvalidArgumentError(`uns has no ${JSON.stringify(neighborsKey)} (run pp.neighbors with keyAdded)`);
  // scanpy reads uns[key]["connectivities_key"] (a KeyError otherwise):
  // another entry under that name must not mean the default graph.
  const named = entry && typeof entry === "object" && !Array.isArray(entry) ? entry.connectivities_key : undefined;
  if (neighborsKey && typeof named !== "string")
    throw new InvalidArgumentError(
      `uns[${JSON.stringify(neighborsKey)}] is not a pp.neighbors result (it has no connectivities_key); pass the keyAdded you gave pp.neighbors`,
    );
  return typeof named === "string" ? named : "connectivities";
}

/**
 * @example
 * await tl.leiden(adata, { resolution: 1 });
 * adata.obs.getChild("leiden");
 */
export async function leiden(adata: AnnDataOOM, opts: LeidenOptions = {}): Promise<LeidenResult> {
  checkAnnData("tl.leiden", adata);
  checkOptionNames<LeidenOptions>("tl.leiden", opts, {
    resolution: "num",
    randomState: "num",
    nIterations: "num",
    useWeights: "bool",
    restrictTo: true,
    keyAdded: true,
    obsp: true,
    neighborsKey: true,
    onProgress: true,
    signal: true,
  });
  const resolution = opts.resolution ?? 1;
  // 0 is allowed, as in scanpy: one cluster per connected component.
  if (!(Number.isFinite(resolution) && resolution >= 0))
    throw new InvalidArgumentError(`resolution must be a number ≥ 0, got ${opts.resolution}`);
  const nIterations = opts.nIterations ?? -1;
  // The native side counts iterations in 32 bits (a larger count would wrap).
  if (!(Number.isInteger(nIterations) && nIterations !== 0 && nIterations >= -1 && nIterations <= 2 ** 31 - 1)) {
    throw new InvalidArgumentError(`nIterations must be -1 or an integer in [1, ${2 ** 31 - 1}], got ${opts.nIterations}`);
  }
  const seed = seedOf(opts.randomState);
  // Checked before the run: an obs column / uns key cannot hold "/" or be ".".
  if (opts.keyAdded !== undefined && !isMemberName(opts.keyAdded))
    throw new InvalidArgumentError(`keyAdded must be a non-empty string without "/", got ${JSON.stringify(opts.keyAdded)}`);
  const restriction = opts.restrictTo === undefined ? null : restrictionOf(adata, opts.restrictTo);
  // scanpy: a restricted run with the default key writes "leiden_R", keeping "leiden".
  const keyAdded = restriction && (opts.keyAdded ?? "leiden") === "leiden" ? "leiden_R" : (opts.keyAdded ?? "leiden");
  const graphKey = connectivitiesKey(adata, opts.obsp, opts.neighborsKey);
  let graph = await obspGraph(adata, graphKey);
  if (opts.useWeights === false) graph = unweighted(graph);
  if (restriction) graph = induced(graph, restriction.cells);

  const label = `leiden (resolution ${resolution}, ${graph.n.toLocaleString("en-US")} cells)`;
  let out: Awaited<ReturnType<Native.NativePass["takeLeiden"]>>;
  try {
    const job = nativeCall(() => native.startLeiden(graph, resolution, nIterations, seed));
    out = await adata.runJob(label, job, (p) => p.takeLeiden(), opts);
  } catch (e) {
    throw renameElement(e, "connectivities", `obsp/${graphKey}`);
  }
  const m = out.membership;
  let nClusters = 0;
  for (const c of m) if (c + 1 > nClusters) nClusters = c + 1;

  const n = adata.nObs;
  const membership = new Int32Array(n).fill(-1);
  if (restriction) {
    restriction.cells.forEach((c, t) => {
      membership[c] = m[t];
    });
    adata.setObs(keyAdded, restrictedLabels(restriction, m));
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

/** The cells a restrictTo run clusters, and the labels of all cells before it. */
interface Restriction {
  categories: string[];
  previous: (string | null)[];
  cells: Uint32Array;
}

/** Validate restrictTo ([obs key, non-empty list of its categories], as scanpy) and find its cells. */
function restrictionOf(adata: AnnDataOOM, restrictTo: unknown): Restriction {
  if (!Array.isArray(restrictTo) || restrictTo.length !== 2 || typeof restrictTo[0] !== "string" || !Array.isArray(restrictTo[1])) {
    throw new InvalidArgumentError(`restrictTo must be [obsKey, [category, …]], got ${shown(restrictTo)}`);
  }
  const [key, categories] = restrictTo as [string, unknown[]];
  if (categories.length === 0) throw new InvalidArgumentError(`restrictTo: no categories of ${JSON.stringify(key)} given`);
  const notString = categories.find((c) => typeof c !== "string");
  if (notString !== undefined)
    throw new InvalidArgumentError(`restrictTo: categories must be strings (e.g. "1", not 1), got ${shown(notString)}`);
  const col = adata.obs.getChild(key);
  if (!col) throw new InvalidArgumentError(`restrictTo: obs has no column ${JSON.stringify(key)}`);
  // scanpy reads .cat.categories: only a categorical column can be restricted.
  const dictionary = col.data[0]?.dictionary as { toArray(): ArrayLike<unknown> } | undefined;
  if (!dictionary)
    throw new InvalidArgumentError(
      `restrictTo: obs ${JSON.stringify(key)} is not categorical (it holds ${col.type}), and scanpy refuses it too; restrict to a clustering, or set the labels as categories first (apache-arrow's vectorFromArray(labels) makes them a dictionary)`,
    );
  // Labels as pandas prints them (booleans "True" / "False", as pl.* shows them).
  const label = (v: unknown) => (v === null || v === undefined ? null : typeof v === "boolean" ? (v ? "True" : "False") : String(v));
  const previous = Array.from({ length: adata.nObs }, (_, i) => label(col.get(i)));
  // A category counts even when no cell has it (scanpy checks .cat.categories).
  const known = new Set<string | null>(Array.from(dictionary.toArray(), label));
  const missing = (categories as string[]).filter((c) => !known.has(c));
  if (missing.length) throw new InvalidArgumentError(`restrictTo: ${JSON.stringify(key)} has no categories ${missing.join(", ")}`);
  const present = new Set(previous);
  if (!(categories as string[]).some((c) => present.has(c)))
    throw new InvalidArgumentError(`restrictTo: no cell has ${JSON.stringify(key)} in ${(categories as string[]).join(", ")}`);
  const wanted = new Set(categories as string[]);
  const cells = Uint32Array.from(previous.flatMap((v, i) => (v !== null && wanted.has(v) ? [i] : [])));
  return { categories: categories as string[], previous, cells };
}

/**
 * scanpy's rename_groups: the re-clustered cells are named
 * "<cat1>-<cat2>,<cluster>", the others keep their label; categories natsorted.
 */
function restrictedLabels(r: Restriction, clusters: ArrayLike<number>): Vector {
  const labels = r.previous.slice();
  const prefix = `${r.categories.join("-")},`;
  r.cells.forEach((c, t) => {
    labels[c] = `${prefix}${clusters[t]}`;
  });
  const cats = natsortedCategories(labels);
  const pos = new Map(cats.map((c, i) => [c, i]));
  return categorical(
    Int32Array.from(labels, (v) => (v === null ? -1 : (pos.get(v) as number))),
    cats,
  );
}

/** Every stored non-zero entry as weight 1; explicit zeros are no edges (scanpy's adjacency.nonzero()). */
function unweighted(g: CsrGraph): CsrGraph {
  const indptr = new Float64Array(g.n + 1);
  const indices: number[] = [];
  for (let i = 0; i < g.n; i++) {
    for (let e = g.indptr[i]; e < g.indptr[i + 1]; e++) if (g.data[e] !== 0) indices.push(g.indices[e]);
    indptr[i + 1] = indices.length;
  }
  return { n: g.n, indptr, indices: Int32Array.from(indices), data: new Float32Array(indices.length).fill(1) };
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
