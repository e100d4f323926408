/**
 * pp.pca, exact: one pass accumulates the Gram matrix of the scaled,
 * clipped selected genes (clipping handled exactly, see native gram.rs),
 * a float64 symmetric eigensolver gives the axes, and the projection reads
 * a spill of the selected genes written during that pass — not X.
 * Results follow scanpy / scikit-learn: variance = eigenvalues (ddof 1),
 * variance_ratio over the total variance, largest loading positive.
 */
import { type AnnDataOOM, checkAnnData } from "../anndata";
import { InvalidArgumentError } from "../errors";
import { seedOf } from "../graph-data";
import { checkOptionNames } from "../options";
import type { PassOptions } from "../pass";
import { target } from "./matrix";

export interface PcaOptions extends PassOptions {
  nComps?: number;
  zeroCenter?: boolean;
  /** Use var.highly_variable genes (default: when that column exists). */
  useHighlyVariable?: boolean;
  /** A layer instead of X (scanpy's `layer`). */
  layer?: string;
  /**
   * 'covariance_eigh' / 'arpack' / 'auto' (≤ 5,000 genes): exact — one Gram pass,
   * float64 eigensolver. 'randomized' (default above 5,000 genes): Halko
   * subspace iteration, one pass per power iteration.
   */
  svdSolver?: "covariance_eigh" | "arpack" | "auto" | "randomized";
  /** randomized: power iterations, one pass each (default 12). */
  nIter?: number;
  /** randomized: seed of the random start (default 0; null: a fresh random seed, scanpy's None). */
  randomState?: number | null;
  /**
   * randomized: extra subspace columns (default nComps). Trailing PCs of
   * single-cell data have tiny eigengaps; a wide subspace keeps them accurate.
   */
  oversample?: number;
}

/** Exact path up to this many genes (Gram matrix p² × 8 bytes per thread). */
const MAX_EXACT_GENES = 5000;

export async function pca(adata: AnnDataOOM, opts: PcaOptions = {}): Promise<void> {
  checkAnnData("pp.pca", adata);
  checkOptionNames<PcaOptions>("pp.pca", opts, {
    nComps: "num",
    zeroCenter: "bool",
    useHighlyVariable: "bool",
    layer: true,
    svdSolver: true,
    nIter: "num",
    randomState: "num",
    oversample: "num",
    onProgress: true,
    signal: true,
  });
  // Refused while a step is about to replace the matrix (the view below
  // would read the values from before it).
  target(adata, opts.layer, "pp.pca");
  const zeroCenter = opts.zeroCenter ?? true;
  const hvCol = adata.var.getChild("highly_variable");
  const useHv = opts.useHighlyVariable ?? hvCol !== null;
  if (useHv && !hvCol) throw new InvalidArgumentError("useHighlyVariable: var has no highly_variable column (run pp.highlyVariableGenes)");
  const p0 = adata.nVars;
  const genes: number[] = [];
  for (let j = 0; j < p0; j++) if (!useHv || hvCol?.get(j)) genes.push(j);
  const p = genes.length;
  if (useHv && p < 2)
    throw new InvalidArgumentError(`PCA needs at least 2 genes, but ${p} ${p === 1 ? "is" : "are"} marked highly_variable`);
  const solver = opts.svdSolver ?? "auto";
  if (!["auto", "covariance_eigh", "arpack", "randomized"].includes(solver))
    throw new InvalidArgumentError(`svdSolver must be 'auto', 'covariance_eigh', 'arpack' or 'randomized', got ${JSON.stringify(solver)}`);
  const randomized = solver === "randomized" || (solver === "auto" && p > MAX_EXACT_GENES);
  if (randomized && !zeroCenter) throw new InvalidArgumentError("zeroCenter: false is supported by the exact solver only (≤ 5,000 genes)");
  if (!randomized && p > MAX_EXACT_GENES) {
    throw new InvalidArgumentError(
      `exact PCA supports up to ${MAX_EXACT_GENES} genes (got ${p}); use svdSolver: "randomized" or select highly variable genes`,
    );
  }
  const n = adata.nObs;
  if (n === 0 || p === 0)
    throw new InvalidArgumentError(
      `pp.pca needs at least one cell and one gene, got ${n} cells and ${p} genes${n === 0 ? " (did a filter remove every cell?)" : ""}`,
    );
  // scanpy's default: 50, or min(n_obs, n_genes) − 1 when that is smaller.
  const nComps = opts.nComps ?? (Math.min(n, p) <= 50 ? Math.min(n, p) - 1 : 50);
  // The exact solver has every eigenpair of the covariance, so it takes
  // nComps = min(n_obs, n_genes) as scanpy's covariance_eigh does; the
  // randomized one (like arpack) needs fewer.
  const maxComps = randomized ? Math.min(n, p) - 1 : Math.min(n, p);
  if (!(Number.isInteger(nComps) && nComps > 0 && nComps <= maxComps)) {
    throw new InvalidArgumentError(
      `nComps must be an integer in [1, ${randomized ? "min(n_obs, n_genes) - 1" : "min(n_obs, n_genes)"}] = [1, ${maxComps}], got ${nComps}`,
    );
  }
  const view = useHv ? adata.subset({ var: genes }) : adata;
  // 12, not scikit-learn's 7: trailing PCs of single-cell data have tiny
  // eigengaps, and 7 iterations leave PC10–20 at |cos| ≈ 0.99 (measured).
  const nIter = opts.nIter ?? 12;
  if (!(Number.isInteger(nIter) && nIter >= 0)) throw new InvalidArgumentError(`nIter must be a non-negative integer, got ${nIter}`);
  const seed = seedOf(opts.randomState);
  const oversample = opts.oversample ?? nComps;
  if (!(Number.isInteger(oversample) && oversample >= 0))
    throw new InvalidArgumentError(`oversample must be a non-negative integer, got ${opts.oversample}`);
  const request = randomized
    ? { randomized_pca: { n_comps: nComps, oversample, n_iter: nIter, seed } }
    : { pca: { n_comps: nComps, zero_center: zeroCenter } };
  const label = `PCA ${randomized ? `randomized, ${nIter} power iterations` : "exact"} (${nComps} comps, ${p} genes)`;
  const out = await target(view, opts.layer, "pp.pca").planPass(request, [], label, opts);
  const comps = out.get("pca.components") as Float64Array; // p × k, gene-major
  // NaN or ±Inf anywhere in X spreads through every product of the
  // randomized solver (the exact one stops at its covariance): refuse
  // instead of writing results that are all NaN.
  const rawTotal = (out.get("pca.total_variance") as Float64Array)[0];
  if (!Number.isFinite(rawTotal) || !comps.every(Number.isFinite))
    throw new InvalidArgumentError(
      `PCA: ${opts.layer ? `layers.${opts.layer}` : "X"} holds NaN or infinite values (after its transforms); (await adata.X.sum(1)) shows the cells that have them`,
    );
  let variance = Float64Array.from(out.get("pca.variance") as Float64Array, (v) => Math.max(v, 0));
  let total = (out.get("pca.total_variance") as Float64Array)[0];
  const xPca = out.get("pca.X") as Float32Array; // n × k
  const k = nComps;
  // scikit-learn's svd_flip(u_based_decision=False): largest |loading| positive.
  for (let c = 0; c < k; c++) {
    let best = 0;
    for (let j = 1; j < p; j++) if (Math.abs(comps[j * k + c]) > Math.abs(comps[best * k + c])) best = j;
    if (comps[best * k + c] < 0) {
      for (let j = 0; j < p; j++) comps[j * k + c] = -comps[j * k + c];
      for (let i = 0; i < n; i++) xPca[i * k + c] = -xPca[i * k + c];
    }
  }
  if (!zeroCenter) {
    // scikit-learn's TruncatedSVD: variance of each component's scores
    // (ddof 0) over the total variance of the (uncentred) data.
    variance = Float64Array.from({ length: k }, (_, c) => {
      let s = 0;
      let ss = 0;
      for (let i = 0; i < n; i++) {
        const x = xPca[i * k + c];
        s += x;
        ss += x * x;
      }
      return ss / n - (s / n) ** 2;
    });
    total = (out.get("pca.centered_ss") as Float64Array)[0] / n;
  }
  // scanpy's PCs and variances come in the data's dtype: float32 for
  // float32 values (no centring scale), else float64; X_pca is float32.
  // With a gene mask scanpy copies the PCs into np.zeros: float64 PCs.
  const float32 = target(view, opts.layer, "pp.pca").valueDtype === "float32";
  const inDtype = (a: Float64Array) => (float32 ? Float32Array.from(a) : a);
  const pcs = float32 && !useHv ? new Float32Array(p0 * k) : new Float64Array(p0 * k);
  genes.forEach((g, j) => pcs.set(comps.subarray(j * k, (j + 1) * k), g * k));
  adata.obsm.set("X_pca", { kind: "dense", shape: [n, k], dtype: "float32", data: xPca });
  adata.varm.set("PCs", { kind: "dense", shape: [p0, k], dtype: pcs instanceof Float32Array ? "float32" : "float64", data: pcs });
  adata.uns.pca = {
    params: {
      zero_center: zeroCenter,
      use_highly_variable: useHv,
      mask_var: useHv ? "highly_variable" : null,
      svd_solver: randomized ? "randomized" : "covariance_eigh",
      ...(opts.layer ? { layer: opts.layer } : {}),
    },
    variance: inDtype(variance),
    variance_ratio: inDtype(variance.map((v) => v / total)),
  };
}
