/**
 * tl.umap: the UMAP embedding of the neighbour graph, as scanpy's
 * `tl.umap` computes it (umap-learn's simplicial_set_embedding): spectral
 * initial positions, (a, b) fitted from minDist and spread, SGD with
 * negative sampling. The layout runs natively on every core, reproducible
 * for a seed; `method: "umap-js"` runs it in umap-js fed the
 * precomputed kNN instead (7× slower here, see docs/graph.md).
 * Writes obsm.X_umap (float32) and uns.umap.params {a, b, …} (or obsm / uns[keyAdded]).
 */
import { type AnnDataOOM, checkAnnData } from "../anndata";
import { InvalidArgumentError, nativeCall, renameElement, shown } from "../errors";
import { type CsrGraph, obspGraph, representation, seededRandom, seedOf } from "../graph-data";
import { isMemberName } from "../names";
import { native } from "../native";
import { checkOptionNames } from "../options";
import type { PassOptions } from "../pass";
import { withSummary } from "../repr-html";
import { connectivitiesKey } from "./leiden";
import { umapJs } from "./umap-js";

export interface UmapOptions extends PassOptions {
  /** Default 0.5 (scanpy's default; umap-learn's is 0.1). */
  minDist?: number;
  spread?: number;
  nComponents?: number;
  /** Epochs (default: 500 up to 10,000 cells, 200 above, as umap-learn). */
  nEpochs?: number;
  /** Initial learning rate (default 1). */
  alpha?: number;
  /** Repulsion strength (default 1). */
  gamma?: number;
  negativeSampleRate?: number;
  /** 'spectral' (default), 'pca' (first columns of X_pca), 'random', or an obsm key. */
  init?: string;
  /** scanpy's name for `init` (`init_pos`); give one of the two. */
  initPos?: string;
  /** Seed (default 0, as scanpy). null: a fresh random seed on every call (not reproducible). */
  randomState?: number | null;
  /** Curve parameters; fitted from minDist and spread when not given. */
  a?: number;
  b?: number;
  /** 'auto' (default): the native layout, umap-js beyond 16 components; 'native': the native layout (1 to 16 components); 'umap-js': umap-js. */
  method?: "auto" | "umap-js" | "native";
  /** Use the graph of uns[neighborsKey]. */
  neighborsKey?: string;
  /** Store the embedding as obsm[keyAdded] and the parameters as uns[keyAdded] (default obsm.X_umap, uns.umap), as scanpy's key_added. */
  keyAdded?: string;
}

export interface UmapResult {
  embedding: Float32Array;
  a: number;
  b: number;
  method: "umap-js" | "native";
  nEpochs: number;
}

/** native/core/src/graph/umap/layout.rs MAX_DIM. */
const NATIVE_MAX_COMPONENTS = 16;

/**
 * @example
 * await pp.neighbors(adata);
 * await tl.umap(adata);           // obsm.X_umap
 */
export async function umap(adata: AnnDataOOM, opts: UmapOptions = {}): Promise<UmapResult> {
  checkAnnData("tl.umap", adata);
  checkOptionNames<UmapOptions>("tl.umap", opts, {
    minDist: "num",
    spread: "num",
    nComponents: "num",
    nEpochs: "num",
    alpha: "num",
    gamma: "num",
    negativeSampleRate: "num",
    init: true,
    initPos: true,
    randomState: "num",
    a: "num",
    b: "num",
    method: true,
    neighborsKey: true,
    keyAdded: true,
    onProgress: true,
    signal: true,
  });
  if (opts.init !== undefined && opts.initPos !== undefined)
    throw new InvalidArgumentError("give init or initPos (scanpy's name for it), not both");
  const initName = opts.initPos ?? opts.init ?? "spectral";
  if (initName === "paga")
    throw new InvalidArgumentError('init "paga" (PAGA-guided positions) is not supported: use "spectral", "pca", "random" or an obsm key');
  const minDist = opts.minDist ?? 0.5;
  const spread = opts.spread ?? 1;
  const dim = opts.nComponents ?? 2;
  // Finite too: umap-learn's curve fit refuses an infinite spread, which
  // here fitted a = b = 1 without a word.
  if (!(Number.isFinite(spread) && Number.isFinite(minDist) && spread > 0 && minDist >= 0 && minDist <= spread)) {
    throw new InvalidArgumentError(`need spread > 0 and 0 ≤ minDist ≤ spread, got minDist ${minDist}, spread ${spread}`);
  }
  if (!(Number.isInteger(dim) && dim >= 1))
    throw new InvalidArgumentError(`nComponents must be a positive integer, got ${opts.nComponents}`);
  // The native layout counts epochs in 32 bits.
  if (opts.nEpochs !== undefined && !(Number.isInteger(opts.nEpochs) && opts.nEpochs > 0 && opts.nEpochs <= INT32_MAX)) {
    throw new InvalidArgumentError(`nEpochs must be an integer in [1, ${INT32_MAX}], got ${opts.nEpochs}`);
  }
  // Checked before the layout runs: obsm and uns keys cannot hold "/" or be ".".
  if (opts.keyAdded !== undefined && !isMemberName(opts.keyAdded))
    throw new InvalidArgumentError(`keyAdded must be a non-empty string without "/", got ${JSON.stringify(opts.keyAdded)}`);
  // null asks for an unreproducible layout, as in umap-learn: a fresh seed.
  const seed = seedOf(opts.randomState);
  const key = connectivitiesKey(adata, undefined, opts.neighborsKey);
  const graph = await obspGraph(adata, key);
  const n = graph.n;
  checkLayoutSize(n, dim);
  const nEpochs = opts.nEpochs ?? (n <= 10_000 ? 500 : 200);
  // umap-learn's bounds: a, b and the learning rate > 0, repulsion ≥ 0.
  for (const [name, v, zeroOk] of [
    ["a", opts.a, false],
    ["b", opts.b, false],
    ["alpha", opts.alpha, false],
    ["gamma", opts.gamma, true],
  ] as const) {
    if (v !== undefined && !(typeof v === "number" && Number.isFinite(v) && (v > 0 || (zeroOk && v === 0))))
      throw new InvalidArgumentError(`${name} must be a finite number ${zeroOk ? "≥" : ">"} 0, got ${v}`);
  }
  const rate = opts.negativeSampleRate;
  if (rate !== undefined && !(Number.isInteger(rate) && rate >= 0))
    throw new InvalidArgumentError(`negativeSampleRate must be a non-negative integer, got ${rate}`);
  const method = opts.method ?? "auto";
  if (!["auto", "native", "umap-js"].includes(method))
    throw new InvalidArgumentError(`method must be 'auto', 'native' or 'umap-js', got ${JSON.stringify(method)}`);
  // The native layout keeps a point in registers: up to 16 components.
  // Checked before the (long, for many components) initialisation.
  if (method === "native" && dim > NATIVE_MAX_COMPONENTS)
    throw new InvalidArgumentError(
      `method "native" lays out 1 to ${NATIVE_MAX_COMPONENTS} components, not ${dim}; use method "umap-js" (or "auto") for more`,
    );
  const [a, b] = curveParams(opts.a, opts.b, spread, minDist);
  const init = await initialPositions(adata, graph, opts.neighborsKey ?? "neighbors", initName, dim, seed, opts).catch((e) => {
    throw renameElement(e, "connectivities", `obsp/${key}`);
  });
  const useJs = method === "umap-js" || dim > NATIVE_MAX_COMPONENTS;
  // The same layout parameters for both paths.
  const layout = {
    nEpochs,
    a,
    b,
    minDist,
    spread,
    alpha: opts.alpha ?? 1,
    gamma: opts.gamma ?? 1,
    negativeSampleRate: opts.negativeSampleRate ?? 5,
    seed,
  };
  let embedding: Float32Array;
  if (useJs) {
    embedding = await umapJs({ ...layout, graph, init, dim, pass: opts });
  } else {
    const label = `UMAP (${n.toLocaleString("en-US")} cells, ${nEpochs} epochs)`;
    try {
      // The initial positions are given, so the job needs no copy of X_pca.
      const job = nativeCall(() =>
        native.startUmap(graph, new Float32Array(0), 0, {
          ...layout,
          nComponents: dim,
          init: "given",
          initPositions: init,
        }),
      );
      embedding = (await adata.runJob(label, job, (p) => p.takeUmap(), opts)).embedding;
    } catch (e) {
      // The native check names the graph generically: say which obsp element it is.
      throw renameElement(e, "connectivities", `obsp/${key}`);
    }
  }
  assertFiniteLayout(embedding, dim, a, b);
  adata.obsm.set(opts.keyAdded ?? "X_umap", { kind: "dense", shape: [n, dim], dtype: "float32", data: embedding });
  adata.uns[opts.keyAdded ?? "umap"] = {
    params: {
      a,
      b,
      min_dist: minDist,
      spread,
      n_epochs: nEpochs,
      init: initName,
      // The seed used, also one drawn for randomState: null, so that the layout can be redone.
      random_state: seed,
    },
  };
  const used = useJs ? "umap-js" : "native";
  const summary = `umap (${used}): ${adata.nObs.toLocaleString("en-US")} cells, ${nEpochs} epochs, a = ${a.toFixed(3)}, b = ${b.toFixed(3)}`;
  return withSummary({ embedding, a, b, method: used, nEpochs }, summary);
}

/**
 * (a, b) as given, else fitted from spread and minDist. The fit has no
 * positive solution for a very small spread (≤ 0.2 with minDist ≈ 0; umap-learn's
 * fit fails there too), and b ≤ 0 would lay everything out as NaN.
 */
function curveParams(givenA: number | undefined, givenB: number | undefined, spread: number, minDist: number): [number, number] {
  if (givenA !== undefined && givenB !== undefined) return [givenA, givenB];
  const [a, b] = nativeCall(() => native.umapAbParams(spread, minDist));
  if (!(Number.isFinite(a) && Number.isFinite(b) && a > 0 && b > 0)) {
    throw new InvalidArgumentError(
      `spread ${spread} with minDist ${minDist} fits no usable UMAP curve (a = ${shown(a)}, b = ${shown(b)}; both must be > 0): ` +
        "use a larger spread or minDist, or give a and b",
    );
  }
  return [a, b];
}

/** Extreme (a, b) overflow the layout's gradients into NaN: refuse to store that. */
function assertFiniteLayout(embedding: Float32Array, dim: number, a: number, b: number): void {
  const at = embedding.findIndex((v) => !Number.isFinite(v));
  if (at < 0) return;
  throw new InvalidArgumentError(
    `the UMAP layout has non-finite coordinates (row ${Math.floor(at / dim)}) with a = ${shown(a)}, b = ${shown(b)}: ` +
      "choose less extreme a and b (or spread and minDist)",
  );
}

/** Rows for placing disconnected components; a single value per cell (all alike) when none is available. */
interface PlacementRows {
  data: Float32Array;
  d: number;
  /** The obsm key they come from (null: none). */
  key: string | null;
}

/**
 * The representation the graph was built from, as scanpy's umap takes it
 * (uns[neighborsKey].params use_rep and n_pcs, else X_pca): umap-learn
 * places disconnected components by their centroids in it. `X` (scanpy's
 * use_rep "X", or small data without use_rep) is not read here: X_pca
 * stands in for it when present.
 */
async function placementRows(adata: AnnDataOOM, neighborsKey: string): Promise<PlacementRows> {
  const params = (adata.uns[neighborsKey] as { params?: { use_rep?: unknown; n_pcs?: unknown; metric?: unknown } } | undefined)?.params;
  const useRep = typeof params?.use_rep === "string" && params.use_rep !== "X" ? params.use_rep : "X_pca";
  const nPcs = typeof params?.n_pcs === "number" && params.n_pcs > 0 ? params.n_pcs : undefined;
  const none = { data: new Float32Array(adata.nObs), d: 1, key: null };
  if (!adata.obsm.has(useRep)) {
    if (useRep === "X_pca") return none;
    throw new InvalidArgumentError(
      `uns[${JSON.stringify(neighborsKey)}].params.use_rep is ${JSON.stringify(useRep)}, which obsm does not have (the graph's representation, needed to place its components)`,
    );
  }
  const el = await adata.obsm.get(useRep);
  if ("table" in el || el.kind !== "dense" || el.shape.length !== 2) return none;
  if (nPcs !== undefined && nPcs > el.shape[1]) {
    throw new InvalidArgumentError(
      `uns[${JSON.stringify(neighborsKey)}].params.n_pcs is ${nPcs} but obsm ${JSON.stringify(useRep)} has ${el.shape[1]} columns`,
    );
  }
  // Centroids are compared with the graph's metric: centring keeps only euclidean ones.
  const rep = await representation(adata, useRep, nPcs, { centre: (params?.metric ?? "euclidean") === "euclidean" });
  return { data: rep.data, d: rep.d, key: useRep };
}

/** Index of the first row with a NaN or infinite value, or -1. */
function firstNonFiniteRow(data: ArrayLike<number>, rows: number, width: number): number {
  for (let i = 0; i < rows; i++) for (let c = 0; c < width; c++) if (!Number.isFinite(data[i * width + c])) return i;
  return -1;
}

/** Number of connected components over the positive edges (as the native spectral layout counts them). */
function componentCount(g: CsrGraph): number {
  const parent = Int32Array.from({ length: g.n }, (_, i) => i);
  const find = (x: number): number => {
    while (parent[x] !== x) {
      parent[x] = parent[parent[x]];
      x = parent[x];
    }
    return x;
  };
  let count = g.n;
  for (let i = 0; i < g.n; i++) {
    for (let e = g.indptr[i]; e < g.indptr[i + 1]; e++) {
      if (!(g.data[e] > 0)) continue;
      const [a, b] = [find(i), find(g.indices[e])];
      if (a !== b) {
        parent[Math.max(a, b)] = Math.min(a, b);
        count--;
      }
    }
  }
  return count;
}

/**
 * A NaN centroid would put a whole component at NaN; the rows only matter
 * when the graph is disconnected, so a connected graph ignores them (as umap-learn).
 */
function assertPlaceable(rows: PlacementRows, g: CsrGraph): void {
  const bad = firstNonFiniteRow(rows.data, g.n, rows.d);
  if (bad < 0) return;
  const parts = componentCount(g);
  if (parts <= 1) return;
  throw new InvalidArgumentError(
    `obsm ${JSON.stringify(rows.key)} row ${bad} has a non-finite value; UMAP places the graph's ${parts} disconnected components by it`,
    { element: `obsm/${rows.key}` },
  );
}

/**
 * Initial coordinates scaled as umap-learn does (largest |x| = 10, tiny
 * noise, each axis to [0, 10]); spectral ones come from the native solver.
 */
async function initialPositions(
  adata: AnnDataOOM,
  g: CsrGraph,
  neighborsKey: string,
  init: string,
  dim: number,
  seed: number,
  pass: PassOptions,
): Promise<Float32Array> {
  const n = g.n;
  if (init === "spectral") {
    const rep = await placementRows(adata, neighborsKey);
    assertPlaceable(rep, g);
    const job = nativeCall(() => native.startUmapInit(g, rep.data, rep.d, dim, seed));
    return (await adata.runJob(`UMAP spectral initialisation (${n.toLocaleString("en-US")} cells)`, job, (p) => p.takeUmap(), pass))
      .embedding;
  }
  let raw: Float32Array;
  if (init === "random") {
    // umap-learn: uniform(-10, 10) for every coordinate, drawn independently.
    // (An LCG in doubles lost its low bits past 2^53 and cycled after
    // 10,466 values: cells beyond ~5,000 started on top of earlier ones.)
    raw = new Float32Array(n * dim);
    const uniform = seededRandom(seed);
    for (let i = 0; i < raw.length; i++) raw[i] = uniform() * 20 - 10;
    return rescale(raw, n, dim);
  }
  const keyName = init === "pca" ? "X_pca" : init;
  if (!adata.obsm.has(keyName))
    throw new InvalidArgumentError(`init must be 'spectral', 'pca', 'random' or an obsm key; obsm has no ${JSON.stringify(keyName)}`);
  const el = await adata.obsm.get(keyName);
  if ("table" in el || el.kind !== "dense" || el.shape.length !== 2 || el.shape[1] < dim) {
    throw new InvalidArgumentError(`init obsm ${JSON.stringify(keyName)} must be a dense n_obs × ≥${dim} array`);
  }
  const w = el.shape[1];
  raw = new Float32Array(n * dim);
  for (let i = 0; i < n; i++) for (let c = 0; c < dim; c++) raw[i * dim + c] = Number(el.data[i * w + c]);
  // Checked in float32: float64 values beyond its range are infinite here.
  const bad = firstNonFiniteRow(raw, n, dim);
  if (bad >= 0) {
    throw new InvalidArgumentError(`init obsm ${JSON.stringify(keyName)} row ${bad} has a non-finite value (as float32)`, {
      element: `obsm/${keyName}`,
    });
  }
  let max = 0;
  for (const v of raw) max = Math.max(max, Math.abs(v));
  if (max > 0) for (let i = 0; i < raw.length; i++) raw[i] *= 10 / max;
  return rescale(raw, n, dim);
}

function rescale(x: Float32Array, n: number, dim: number): Float32Array {
  for (let c = 0; c < dim; c++) {
    let lo = Number.POSITIVE_INFINITY;
    let hi = Number.NEGATIVE_INFINITY;
    for (let i = 0; i < n; i++) {
      lo = Math.min(lo, x[i * dim + c]);
      hi = Math.max(hi, x[i * dim + c]);
    }
    const range = hi > lo ? hi - lo : 1;
    for (let i = 0; i < n; i++) x[i * dim + c] = (10 * (x[i * dim + c] - lo)) / range;
  }
  return x;
}

const INT32_MAX = 2 ** 31 - 1;

/**
 * An embedding has fewer dimensions than cells, and its working memory
 * (the spectral initialisation's block of ~28 bytes per cell and component,
 * umap-js's arrays of numbers) must fit: a request beyond either would
 * exhaust the memory and end the process, the user's kernel with it.
 */
function checkLayoutSize(n: number, dim: number): void {
  if (dim >= n) throw new InvalidArgumentError(`nComponents must be below the number of cells (${n.toLocaleString("en-US")}), got ${dim}`);
  const bytesPerEntry = 32;
  // The native side's limit on what one computation may hold (4 GiB unless set).
  const limit = Number(process.env.ANNDATA_OOM_MAX_LOAD_BYTES) || 4 * 2 ** 30;
  const bytes = bytesPerEntry * n * (dim + 4);
  if (bytes > limit) {
    const most = Math.max(1, Math.floor(limit / (bytesPerEntry * n)) - 4);
    throw new InvalidArgumentError(
      `nComponents ${dim} for ${n.toLocaleString("en-US")} cells needs about ${(bytes / 1e9).toFixed(1)} GB for the layout; at most ${most} components fit in ${(limit / 1e9).toFixed(1)} GB (ANNDATA_OOM_MAX_LOAD_BYTES sets the limit)`,
    );
  }
}
