/**
 * Inputs and outputs shared by the graph steps (neighbors, UMAP, Leiden,
 * PAGA): the representation they start from (an obsm matrix as float32),
 * obsp graphs as CSR arrays, seeded randomness and categorical columns.
 */
import { randomInt } from "node:crypto";
import { Dictionary, Int32, makeData, makeVector, Utf8, type Vector, vectorFromArray } from "apache-arrow";
import type { AnnDataOOM } from "./anndata";
import type { Element, SparseMatrix } from "./elements";
import { InvalidArgumentError } from "./errors";

/** A square sparse graph over the cells (CSR). */
export interface CsrGraph {
  n: number;
  indptr: Float64Array;
  indices: Int32Array;
  data: Float32Array;
}

/** An n × d float32 matrix, row-major. */
export interface Representation {
  data: Float32Array;
  n: number;
  d: number;
  /** The obsm key it came from. */
  useRep: string;
  /** Its stored dtype (the search runs in float32 either way). */
  dtype: "float32" | "float64";
}

/**
 * The matrix the graph steps start from: obsm[useRep] (default X_pca),
 * its first `nPcs` columns if given. `centre`: whether a copy may be
 * centred, which only a translation-invariant metric (euclidean) allows.
 */
export async function representation(
  adata: AnnDataOOM,
  useRep = "X_pca",
  nPcs?: number,
  { centre = true }: { centre?: boolean } = {},
): Promise<Representation> {
  if (useRep === "X" && !adata.obsm.has("X"))
    throw new InvalidArgumentError(
      'useRep "X" is not supported: X stays on disk, and neighbours are searched in a representation held in memory; run pp.pca and use "X_pca" (the default), or another obsm key',
    );
  if (!adata.obsm.has(useRep)) {
    const hint = useRep === "X_pca" ? " (run pp.pca first)" : "";
    throw new InvalidArgumentError(`obsm has no ${JSON.stringify(useRep)}${hint}; keys: ${adata.obsm.keys().join(", ") || "none"}`);
  }
  const el = await adata.obsm.get(useRep);
  if ("table" in el || el.kind !== "dense" || el.shape.length !== 2) {
    throw new InvalidArgumentError(`obsm ${JSON.stringify(useRep)} must be a dense 2-d array to compute neighbors`);
  }
  const [n, width] = el.shape;
  const d = nPcs ?? width;
  if (!(Number.isInteger(d) && d >= 1 && d <= width)) {
    throw new InvalidArgumentError(`nPcs must be an integer in [1, ${width}] for obsm ${JSON.stringify(useRep)}, got ${nPcs}`);
  }
  // All columns of a float32 array: use it as is (at 1M cells a copy is 200 MB).
  // sklearn computes in float32 only for float32 input.
  const dtype: Representation["dtype"] = el.data instanceof Float32Array ? "float32" : "float64";
  if (d === width && el.data instanceof Float32Array) return { data: el.data, n, d, useRep, dtype };
  // Other types are centred before the float32 copy when the metric allows
  // it (euclidean distances do not change; cosine ones do): float64
  // coordinates with a large offset (e.g. spatial ones) would otherwise
  // lose their differences to float32 rounding.
  const src = el.data as ArrayLike<number>;
  const means = new Float64Array(d);
  if (centre)
    for (let i = 0; i < n; i++)
      for (let j = 0; j < d; j++) {
        const v = src[i * width + j];
        if (Number.isFinite(v)) means[j] += v / n; // a NaN row is named by the native check
      }
  const data = new Float32Array(n * d);
  let largest = 0;
  for (let i = 0; i < n; i++)
    for (let j = 0; j < d; j++) {
      const v = src[i * width + j] - means[j];
      if (Number.isFinite(v) && Math.abs(v) > F32_MAX) {
        // Centring spreads one huge value over its column: name the row that holds it.
        let at = i;
        for (let r = 0; r < n; r++) {
          const x = src[r * width + j];
          if (Number.isFinite(x) && Math.abs(x) > Math.abs(src[at * width + j])) at = r;
        }
        throw new InvalidArgumentError(
          `obsm ${JSON.stringify(useRep)} row ${at} has a coordinate beyond float32 range (${src[at * width + j]}); neighbours are searched in float32`,
        );
      }
      if (Math.abs(v) > largest) largest = Math.abs(v);
      data[i * d + j] = v;
    }
  // Every coordinate below float32's normal range: the copy would be (near) all zeros
  // and every distance 0 (scanpy's float32 search finds the same nothing).
  if (largest > 0 && largest < F32_MIN_NORMAL)
    throw new InvalidArgumentError(
      `obsm ${JSON.stringify(useRep)}: every coordinate is below float32's range (largest ${largest}); neighbours are searched in float32, so scale it first`,
    );
  return { data, n, d, useRep, dtype };
}

const F32_MAX = 3.4028234663852886e38;
const F32_MIN_NORMAL = 1.1754943508222875e-38;

/** obsp[key] as a CSR graph (a stored CSC matrix is read as its transpose, which is the same for symmetric graphs). */
export async function obspGraph(adata: AnnDataOOM, key: string, symmetric = true): Promise<CsrGraph> {
  if (!adata.obsp.has(key)) {
    throw new InvalidArgumentError(`obsp has no ${JSON.stringify(key)} (run pp.neighbors first)`);
  }
  const el: Element = await adata.obsp.get(key);
  if ("table" in el || el.kind === "dense") throw new InvalidArgumentError(`obsp ${JSON.stringify(key)} must be a sparse matrix`);
  const m = el as SparseMatrix;
  if (m.kind === "csc" && !symmetric)
    throw new InvalidArgumentError(`obsp ${JSON.stringify(key)} is stored as CSC; a CSR matrix is needed`);
  if (m.shape[0] !== adata.nObs || m.shape[1] !== adata.nObs) {
    throw new InvalidArgumentError(`obsp ${JSON.stringify(key)} has shape ${m.shape.join(" × ")}, expected ${adata.nObs} × ${adata.nObs}`);
  }
  // Steps that walk the graph in JS (paga) index cells by these: refuse
  // what would read past the cells (the native steps check the same).
  const ip = m.indptr;
  for (let i = 0; i < m.shape[0]; i++)
    if (!(ip[i + 1] >= ip[i])) throw new InvalidArgumentError(`obsp ${JSON.stringify(key)}: indptr decreases at row ${i + 1}`);
  const bad = m.indices.findIndex((j) => j < 0 || j >= adata.nObs);
  if (bad >= 0)
    throw new InvalidArgumentError(`obsp ${JSON.stringify(key)}: column ${m.indices[bad]} out of range for ${adata.nObs} cells`);
  const data = m.data instanceof Float32Array ? m.data : Float32Array.from(m.data as ArrayLike<number>);
  return { n: m.shape[0], indptr: m.indptr, indices: m.indices, data };
}

/**
 * A graph as an obsp element. scanpy stores distances as float64; their
 * values are float32 (distances of float32 X_pca), so they stay a
 * Float32Array in memory and are widened when written.
 */
export function graphElement(g: CsrGraph, dtype: "float32" | "float64" = "float32"): SparseMatrix {
  return { kind: "csr", shape: [g.n, g.n], dtype, indptr: g.indptr, indices: g.indices, data: g.data };
}

/**
 * mulberry32: a small seeded generator for JS-side randomness (umap-js,
 * random initial positions). Seeds up to 2^53 all count: the high word is
 * mixed into the state (seeds below 2^32 keep their old sequences).
 */
export function seededRandom(seed: number): () => number {
  let a = (seed >>> 0) ^ Math.imul(Math.floor(seed / 2 ** 32) >>> 0, 0x9e3779b1);
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A categorical column from codes and category names (-1 = missing). */
export function categorical(codes: Int32Array, categories: string[]): Vector {
  const dictionary = vectorFromArray(categories, new Utf8());
  const type = new Dictionary(new Utf8(), new Int32());
  let nullCount = 0;
  const valid = new Uint8Array(Math.ceil(codes.length / 8));
  codes.forEach((c, i) => {
    if (c >= 0) valid[i >> 3] |= 1 << (i & 7);
    else nullCount++;
  });
  return makeVector(
    makeData({ type, length: codes.length, nullCount, nullBitmap: nullCount ? valid : undefined, data: codes, dictionary }),
  );
}

/**
 * Validate an optional integer seed: default 0, as scanpy; null (scanpy's
 * None) a fresh random seed on every call.
 */
export function seedOf(randomState: number | null | undefined, what = "randomState"): number {
  if (randomState === null) return randomInt(2 ** 31);
  const s = randomState ?? 0;
  if (!(Number.isInteger(s) && s >= 0 && s <= Number.MAX_SAFE_INTEGER)) {
    throw new InvalidArgumentError(`${what} must be a non-negative integer, got ${randomState}`);
  }
  return s;
}
