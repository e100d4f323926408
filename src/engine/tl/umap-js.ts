/**
 * The umap-js layout path of tl.umap: umap-js lays out our connectivities
 * graph (the one the native layout and scanpy use, so views and graphs of
 * any width work), starts from our initial positions and runs its epochs
 * here, with progress and cancellation between epochs. umap-learn's (a, b)
 * replace umap-js's own fit so both layout paths optimise the same curve.
 */
import { UMAP } from "umap-js";
import { SparseMatrix } from "umap-js/dist/matrix";
import { InvalidArgumentError } from "../errors";
import { type CsrGraph, seededRandom } from "../graph-data";
import { JsTask, type PassOptions } from "../pass";

export interface UmapJsInput {
  /** obsp connectivities (the fuzzy graph pp.neighbors wrote, or a view's part of it). */
  graph: CsrGraph;
  init: Float32Array;
  dim: number;
  nEpochs: number;
  a: number;
  b: number;
  minDist: number;
  spread: number;
  alpha: number;
  gamma: number;
  negativeSampleRate: number;
  seed: number;
  pass: PassOptions;
}

interface OptimizationState {
  a: number;
  b: number;
}

export async function umapJs(p: UmapJsInput): Promise<Float32Array> {
  const n = p.graph.n;
  if (n < 2) throw new InvalidArgumentError(`umap-js lays out at least 2 cells, got ${n}`);
  const u = new UMAP({
    nComponents: p.dim,
    nEpochs: p.nEpochs,
    // Unused (the graph is given) beyond umap-js's check that n exceeds it.
    nNeighbors: 1,
    minDist: p.minDist,
    spread: p.spread,
    learningRate: p.alpha,
    repulsionStrength: p.gamma,
    negativeSampleRate: p.negativeSampleRate,
    random: seededRandom(p.seed),
  });
  // umap-js would build its fuzzy graph from a kNN; it takes ours instead.
  // The one-neighbour kNN given only keeps it from searching for one (its
  // search graph for transform() is built from it and never used).
  const graph = graphMatrix(p.graph);
  (u as unknown as { fuzzySimplicialSet: () => SparseMatrix }).fuzzySimplicialSet = () => graph;
  u.setPrecomputedKNN(
    Array.from({ length: n }, (_, i) => [i]),
    Array.from({ length: n }, () => [0]),
  );
  // umap-js reads only the number of rows of X once the kNN is given.
  const rows: number[][] = Array.from({ length: n }, () => []);
  const task = new JsTask(`UMAP umap-js (${n.toLocaleString("en-US")} cells, ${p.nEpochs} epochs)`, p.nEpochs, n, p.pass);
  await task.tick(0);
  let epoch = 0;
  let emb: number[][];
  try {
    u.initializeFit(rows);
    // Start from our initial positions: write into umap-js's arrays in place
    // (its optimiser holds references to them).
    emb = u.getEmbedding();
    for (let i = 0; i < n; i++) for (let c = 0; c < p.dim; c++) emb[i][c] = p.init[i * p.dim + c];
    const state = (u as unknown as { optimizationState: OptimizationState }).optimizationState;
    state.a = p.a;
    state.b = p.b;
    while (epoch < p.nEpochs) {
      epoch = u.step();
      await task.tick(epoch);
    }
  } catch (e) {
    if (!(e instanceof Error && e.name === "CancelledError")) task.failed(epoch);
    throw e;
  }
  task.done();
  const out = new Float32Array(n * p.dim);
  for (let i = 0; i < n; i++) for (let c = 0; c < p.dim; c++) out[i * p.dim + c] = emb[i][c];
  return out;
}

/** A CSR graph as umap-js's sparse matrix. */
function graphMatrix(g: CsrGraph): SparseMatrix {
  const rows: number[] = [];
  const cols: number[] = [];
  const vals: number[] = [];
  for (let i = 0; i < g.n; i++)
    for (let t = g.indptr[i]; t < g.indptr[i + 1]; t++) {
      rows.push(i);
      cols.push(g.indices[t]);
      vals.push(g.data[t]);
    }
  return new SparseMatrix(rows, cols, vals, [g.n, g.n]);
}
