/**
 * tl.paga: partition-based graph abstraction (scanpy's model v1.2) — how
 * strongly each pair of clusters is connected in the kNN graph compared
 * with what random edges would give — as a graphology graph for plots,
 * and uns.paga as scanpy stores it (dense matrices here).
 */

import type { Vector } from "apache-arrow";
import Graph from "graphology";
import { type AnnDataOOM, checkAnnData } from "../anndata";
import { InvalidArgumentError } from "../errors";
import { obspGraph } from "../graph-data";
import { checkOptionNames } from "../options";
import { obsColumn } from "../pl/values";
import { withSummary } from "../repr-html";
import { markWideIntegers } from "../typed";

export interface PagaOptions {
  /** Categorical obs column of the clusters (default "leiden"). */
  groups?: string;
  /** Use the graph of uns[neighborsKey] (default "neighbors"). */
  neighborsKey?: string;
}

export interface PagaResult {
  categories: string[];
  /** Cells per cluster. */
  sizes: number[];
  /** k × k, symmetric, in [0, 1]: observed / expected inter-cluster edges (capped at 1). */
  connectivities: Float64Array;
  /** The maximum spanning tree of the connectivities (k × k, entry at [min(i,j), max(i,j)]). */
  connectivitiesTree: Float64Array;
  /** Clusters as nodes (size, label), connectivities as edge weights; tree edges flagged. */
  graph: Graph;
}

/** Codes and categories of a categorical obs column. */
export function categoricalCodes(adata: AnnDataOOM, key: string): { codes: Int32Array; categories: string[] } {
  const col = adata.obs.getChild(key) as Vector | null;
  if (!col) throw new InvalidArgumentError(`obs has no column ${JSON.stringify(key)} (run tl.leiden first)`);
  const typeId = (col.type as { typeId: number }).typeId;
  if (typeId === 5 || typeId === 20) {
    // A string column (e.g. set in this session): its values are the categories, sorted, as scanpy makes them.
    const c = obsColumn(col);
    if (c.kind === "categorical") return { codes: c.codes, categories: c.categories };
  }
  if (typeId !== -1) throw new InvalidArgumentError(`obs ${JSON.stringify(key)} must be categorical or strings (got ${String(col.type)})`);
  const d = col.data[0];
  const dict = d.dictionary as Vector;
  const categories = Array.from({ length: dict.length }, (_, i) => String(dict.get(i)));
  const codes = new Int32Array(col.length);
  let off = 0;
  for (const chunk of col.data) {
    const raw = chunk.values as ArrayLike<number>;
    for (let i = 0; i < chunk.length; i++) codes[off + i] = chunk.getValid(i) ? raw[i] : -1;
    off += chunk.length;
  }
  return { codes, categories };
}

/** obsp key of the kNN distances: uns[neighborsKey].distances_key; "distances" when no neighborsKey is given and uns.neighbors has none. */
function distancesKey(adata: AnnDataOOM, neighborsKey?: string): string {
  const entry = adata.uns[neighborsKey ?? "neighbors"] as { distances_key?: string } | undefined;
  if (neighborsKey !== undefined && !entry)
    throw new InvalidArgumentError(`neighborsKey: uns has no ${JSON.stringify(neighborsKey)} (run pp.neighbors with keyAdded)`);
  const named = entry && typeof entry === "object" && !Array.isArray(entry) ? entry.distances_key : undefined;
  if (neighborsKey !== undefined && typeof named !== "string")
    throw new InvalidArgumentError(
      `neighborsKey: uns[${JSON.stringify(neighborsKey)}] is not a pp.neighbors result (it has no distances_key); pass the keyAdded you gave pp.neighbors`,
    );
  return typeof named === "string" ? named : "distances";
}

/**
 * @example
 * await tl.leiden(adata);
 * const { graph } = await tl.paga(adata);
 * graph.forEachEdge((e, attr, s, t) => console.log(s, t, attr.weight));
 */
export async function paga(adata: AnnDataOOM, opts: PagaOptions = {}): Promise<PagaResult> {
  checkAnnData("tl.paga", adata);
  checkOptionNames<PagaOptions>("tl.paga", opts, { groups: true, neighborsKey: true });
  const groups = opts.groups ?? "leiden";
  const { codes, categories } = categoricalCodes(adata, groups);
  const g = await obspGraph(adata, distancesKey(adata, opts.neighborsKey), false);
  const k = categories.length;
  const n = g.n;
  const sizes = new Array<number>(k).fill(0);
  for (const c of codes) if (c >= 0) sizes[c]++;
  // Directed kNN edges (weight 1) inside and between clusters.
  const inner = new Float64Array(k);
  const inter = new Float64Array(k * k);
  for (let i = 0; i < n; i++) {
    const ci = codes[i];
    if (ci < 0) continue;
    for (let e = g.indptr[i]; e < g.indptr[i + 1]; e++) {
      const cj = codes[g.indices[e]];
      if (cj < 0) continue;
      if (ci === cj) inner[ci]++;
      else inter[ci * k + cj]++;
    }
  }
  const es = Float64Array.from(inner, (v, c) => v + inter.subarray(c * k, (c + 1) * k).reduce((a, b) => a + b, 0));
  const total = sizes.reduce((a, b) => a + b, 0);
  const conn = new Float64Array(k * k);
  for (let i = 0; i < k; i++) {
    for (let j = 0; j < k; j++) {
      const v = inter[i * k + j] + inter[j * k + i];
      if (i === j || v === 0) continue;
      const expected = (es[i] * sizes[j] + es[j] * sizes[i]) / (total - 1);
      conn[i * k + j] = expected !== 0 ? Math.min(v / expected, 1) : 1;
    }
  }
  const tree = maximumSpanningTree(conn, k);
  const graph = new Graph({ type: "undirected" });
  categories.forEach((c, i) => {
    graph.addNode(c, { label: c, size: sizes[i] });
  });
  for (let i = 0; i < k; i++) {
    for (let j = i + 1; j < k; j++) {
      if (conn[i * k + j] > 0) graph.addEdge(categories[i], categories[j], { weight: conn[i * k + j], tree: tree[i * k + j] > 0 });
    }
  }
  // Sparse, as scanpy stores them (sc.pl.paga expects a sparse matrix).
  adata.uns.paga = { connectivities: csrOf(conn, k), connectivities_tree: csrOf(tree, k), groups };
  // int64 in the file, as scanpy's counts.
  adata.uns[`${groups}_sizes`] = markWideIntegers(Float64Array.from(sizes), "int64");
  const summary = `paga: ${categories.length} groups of ${groups}${categories.length <= 20 ? ` (${sizes.map((x) => x.toLocaleString("en-US")).join(", ")} cells)` : ""} → uns['paga']`;
  return withSummary({ categories, sizes, connectivities: conn, connectivitiesTree: tree, graph }, summary);
}

/** A dense k × k matrix as an in-memory CSR value (its non-zero entries). */
function csrOf(
  dense: Float64Array,
  k: number,
): { kind: "csr"; shape: [number, number]; indptr: Int32Array; indices: Int32Array; data: Float64Array } {
  const indptr = new Int32Array(k + 1);
  const indices: number[] = [];
  const data: number[] = [];
  for (let i = 0; i < k; i++) {
    for (let j = 0; j < k; j++) {
      if (dense[i * k + j] === 0) continue;
      indices.push(j);
      data.push(dense[i * k + j]);
    }
    indptr[i + 1] = indices.length;
  }
  return { kind: "csr", shape: [k, k], indptr, indices: Int32Array.from(indices), data: Float64Array.from(data) };
}

/**
 * scanpy takes the minimum spanning tree of 1/connectivities, i.e. the
 * maximum spanning tree of the connectivities (Kruskal).
 */
function maximumSpanningTree(conn: Float64Array, k: number): Float64Array {
  const edges: [number, number, number][] = [];
  for (let i = 0; i < k; i++) for (let j = i + 1; j < k; j++) if (conn[i * k + j] > 0) edges.push([conn[i * k + j], i, j]);
  edges.sort((a, b) => b[0] - a[0] || a[1] - b[1] || a[2] - b[2]);
  const parent = Array.from({ length: k }, (_, i) => i);
  const find = (x: number): number => {
    while (parent[x] !== x) {
      parent[x] = parent[parent[x]];
      x = parent[x];
    }
    return x;
  };
  const tree = new Float64Array(k * k);
  for (const [w, i, j] of edges) {
    const a = find(i);
    const b = find(j);
    if (a === b) continue;
    parent[a] = b;
    tree[i * k + j] = w;
  }
  return tree;
}
