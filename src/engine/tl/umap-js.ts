/**
 * The umap-js layout path of tl.umap: umap-js builds its fuzzy graph from
 * our precomputed kNN (setPrecomputedKNN), starts from our initial
 * positions and runs its epochs here, with progress and cancellation
 * between epochs. umap-learn's (a, b) replace umap-js's own fit so both
 * layout paths optimise the same curve.
 */
import { UMAP } from "umap-js";
import { InvalidArgumentError } from "../errors";
import { type CsrGraph, seededRandom } from "../graph-data";
import { JsTask, type PassOptions } from "../pass";

export interface UmapJsInput {
  /** obsp distances: k − 1 neighbours per cell, in neighbour order. */
  distances: CsrGraph;
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
  const n = p.distances.n;
  const { knnIndices, knnDistances, k } = knnFromDistances(p.distances);
  if (n <= k) throw new InvalidArgumentError(`umap-js needs more cells (${n}) than neighbours per cell (${k}); use method: "native"`);
  const u = new UMAP({
    nComponents: p.dim,
    nEpochs: p.nEpochs,
    nNeighbors: k,
    minDist: p.minDist,
    spread: p.spread,
    learningRate: p.alpha,
    repulsionStrength: p.gamma,
    negativeSampleRate: p.negativeSampleRate,
    random: seededRandom(p.seed),
  });
  u.setPrecomputedKNN(knnIndices, knnDistances);
  // umap-js reads only the number of rows of X once the kNN is given.
  const rows: number[][] = Array.from({ length: n }, () => []);
  const task = new JsTask(`UMAP umap-js (${n.toLocaleString("en-US")} cells, ${p.nEpochs} epochs)`, p.nEpochs, n, p.pass);
  await task.tick(0);
  u.initializeFit(rows);
  // Start from our initial positions: write into umap-js's arrays in place
  // (its optimiser holds references to them).
  const emb = u.getEmbedding();
  for (let i = 0; i < n; i++) for (let c = 0; c < p.dim; c++) emb[i][c] = p.init[i * p.dim + c];
  const state = (u as unknown as { optimizationState: OptimizationState }).optimizationState;
  state.a = p.a;
  state.b = p.b;
  let epoch = 0;
  try {
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

/** Rebuild scanpy's kNN (self first, then k − 1 neighbours) from obsp distances. */
function knnFromDistances(g: CsrGraph): { knnIndices: number[][]; knnDistances: number[][]; k: number } {
  const n = g.n;
  const k = (g.indptr[1] ?? 0) - (g.indptr[0] ?? 0) + 1;
  const knnIndices: number[][] = new Array(n);
  const knnDistances: number[][] = new Array(n);
  for (let i = 0; i < n; i++) {
    const s = g.indptr[i];
    const e = g.indptr[i + 1];
    if (e - s !== k - 1) {
      throw new InvalidArgumentError("obsp distances must hold the same number of neighbours in every row (as pp.neighbors writes it)");
    }
    const idx = [i];
    const dst = [0];
    for (let t = s; t < e; t++) {
      idx.push(g.indices[t]);
      dst.push(g.data[t]);
    }
    knnIndices[i] = idx;
    knnDistances[i] = dst;
  }
  return { knnIndices, knnDistances, k };
}
