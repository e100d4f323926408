/**
 * pp.highlyVariableGenes, flavors 'seurat' and 'cell_ranger' (scanpy's
 * dispersion-based HVG, with and without batchKey). One pass over X takes
 * the per-gene (and per-batch) moments; the binning and normalisation of
 * dispersions then run on per-gene vectors. The pass also takes the plain
 * moments that pp.scale needs, so scale costs no extra pass.
 * See tests/python/SCANPY_NOTES.md §5 for the exact rules followed here.
 */
import { type AnnDataOOM, checkAnnData } from "../anndata";
import { InvalidArgumentError } from "../errors";
import { natsortedCategories } from "../natsort";
import { checkOptionNames } from "../options";
import type { PassOptions } from "../pass";
import { percentile } from "../percentile";
import { pearsonResiduals } from "./hvg-pearson";
import { seuratV3 } from "./hvg-v3";
import { checkFiniteGenes, unscaledTarget } from "./matrix";

export interface HvgOptions extends PassOptions {
  flavor?: "seurat" | "cell_ranger" | "seurat_v3" | "seurat_v3_paper" | "pearson_residuals";
  /** seurat_v3: LOESS span (default 0.3). */
  span?: number;
  /** pearson_residuals: overdispersion (default 100) and residual clip (default √n). */
  theta?: number;
  clip?: number;
  nTopGenes?: number;
  minMean?: number;
  maxMean?: number;
  minDisp?: number;
  maxDisp?: number;
  nBins?: number;
  batchKey?: string;
  /** Return a view on the selected genes (scanpy's subset=True). */
  subset?: boolean;
  layer?: string;
}

interface BatchStats {
  means: Float64Array;
  dispersions: Float64Array;
  /** float64 (selection uses these; the stored column is float32). */
  norm: Float64Array;
  hv: Uint8Array;
}

/** Mean and ddof=1 variance from sums, as scanpy's _get_mean_var. */
function meanVar(sum: Float64Array, sumsq: Float64Array, n: number, off: number, len: number): [Float64Array, Float64Array] {
  const mean = new Float64Array(len);
  const v = new Float64Array(len);
  for (let j = 0; j < len; j++) {
    const m = sum[off + j] / n;
    mean[j] = m;
    v[j] = (sumsq[off + j] / n - m * m) * (n / (n - 1));
  }
  return [mean, v];
}

/** Bin edges as pandas.cut makes them (right-closed intervals). */
const MAX_BINS = 10_000;

function binEdges(means: Float64Array, flavor: "seurat" | "cell_ranger", nBins: number): Float64Array {
  const finite = means.filter((x) => !Number.isNaN(x));
  if (flavor === "cell_ranger") {
    const s = Float64Array.from(finite).sort();
    const edges = [Number.NEGATIVE_INFINITY];
    for (let q = 10; q <= 100; q += 5) edges.push(percentile(s, q));
    edges.push(Number.POSITIVE_INFINITY);
    for (let i = 1; i < edges.length; i++) {
      if (edges[i] === edges[i - 1])
        throw new InvalidArgumentError("cell_ranger HVG: bin edges are not unique (too few distinct gene means)");
    }
    return Float64Array.from(edges);
  }
  let mn = Number.POSITIVE_INFINITY;
  let mx = Number.NEGATIVE_INFINITY;
  for (const x of finite) {
    mn = Math.min(mn, x);
    mx = Math.max(mx, x);
  }
  if (mn === mx) {
    const d = mn !== 0 ? 0.001 * Math.abs(mn) : 0.001;
    mn -= d;
    mx += d;
    return Float64Array.from({ length: nBins + 1 }, (_, i) => mn + ((mx - mn) * i) / nBins);
  }
  const edges = Float64Array.from({ length: nBins + 1 }, (_, i) => (i === nBins ? mx : mn + ((mx - mn) * i) / nBins));
  // numpy.linspace: start + step*i, last exactly stop.
  const step = (mx - mn) / nBins;
  for (let i = 0; i < nBins; i++) edges[i] = mn + i * step;
  edges[0] -= (mx - mn) * 0.001;
  return edges;
}

/** Right-closed bin code: first edge >= x, minus one (searchsorted 'left'). */
function binOf(edges: Float64Array, x: number): number {
  if (Number.isNaN(x)) return -1;
  let lo = 0;
  let hi = edges.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (edges[mid] < x) lo = mid + 1;
    else hi = mid;
  }
  const code = lo - 1;
  return code >= 0 && code < edges.length - 1 ? code : -1;
}

function median(v: number[]): number {
  const s = v.slice().sort((a, b) => a - b);
  const n = s.length;
  if (!n) return Number.NaN;
  return n % 2 ? s[(n - 1) >> 1] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

/** pandas' mean and std (ddof=1) of a group. */
function meanStd(v: number[]): [number, number] {
  const n = v.length;
  if (!n) return [Number.NaN, Number.NaN];
  // Equal values (ties): exactly that mean and std 0, as pandas' running
  // mean/variance give; the summed formula leaves rounding noise that turns
  // scanpy's 0/0 = NaN (0 after nan_to_num) into ±0.98 and picks other genes.
  if (v.every((x) => x === v[0])) return [v[0], n < 2 ? Number.NaN : 0];
  const m = v.reduce((a, b) => a + b, 0) / n;
  if (n < 2) return [m, Number.NaN];
  const ss = v.reduce((a, b) => a + (b - m) * (b - m), 0);
  return [m, Math.sqrt(ss / (n - 1))];
}

function singleBatch(
  mean0: Float64Array,
  var0: Float64Array,
  flavor: "seurat" | "cell_ranger",
  nBins: number,
  cut: { nTop?: number; minMean: number; maxMean: number; minDisp: number; maxDisp: number },
): BatchStats {
  const n = mean0.length;
  const means = Float64Array.from(mean0, (m) => (m === 0 ? 1e-12 : m));
  const dispersions = new Float64Array(n);
  for (let j = 0; j < n; j++) {
    let d = var0[j] / means[j];
    if (flavor === "seurat") {
      if (d === 0) d = Number.NaN;
      d = Math.log(d);
      means[j] = Math.log1p(means[j]);
    }
    dispersions[j] = d;
  }
  const edges = binEdges(means, flavor, nBins);
  const groups = new Map<number, number[]>();
  const codes = Int32Array.from(means, (m) => binOf(edges, m));
  for (let j = 0; j < n; j++) {
    if (codes[j] < 0 || Number.isNaN(dispersions[j])) continue;
    const g = groups.get(codes[j]) ?? [];
    g.push(dispersions[j]);
    groups.set(codes[j], g);
  }
  const avg = new Map<number, number>();
  const dev = new Map<number, number>();
  for (const [code, d] of groups) {
    if (flavor === "seurat") {
      let [a, s] = meanStd(d);
      if (Number.isNaN(s)) [a, s] = [0, a]; // single-gene bins: dev = avg, avg = 0
      avg.set(code, a);
      dev.set(code, s);
    } else {
      const med = median(d);
      avg.set(code, med);
      dev.set(code, median(d.map((x) => Math.abs(x - med) / 0.6744897501960817)));
    }
  }
  const norm = Float64Array.from(dispersions, (d, j) => {
    const a = avg.get(codes[j]);
    const s = dev.get(codes[j]);
    return a === undefined || s === undefined ? Number.NaN : (d - a) / s;
  });
  const hv = new Uint8Array(n);
  if (cut.nTop !== undefined) {
    const valid = Array.from(norm)
      .filter((x) => !Number.isNaN(x))
      .sort((a, b) => b - a);
    const k = Math.min(cut.nTop, valid.length);
    if (k > 0) {
      const threshold = valid[k - 1];
      for (let j = 0; j < n; j++) hv[j] = (Number.isNaN(norm[j]) ? Number.NEGATIVE_INFINITY : norm[j]) >= threshold ? 1 : 0;
    }
  } else {
    for (let j = 0; j < n; j++) hv[j] = inBounds(means[j], nanToNum(norm[j]), cut) ? 1 : 0;
  }
  return { means, dispersions, norm, hv };
}

function nanToNum(x: number): number {
  if (Number.isNaN(x)) return 0;
  if (x === Number.POSITIVE_INFINITY) return Number.MAX_VALUE;
  if (x === Number.NEGATIVE_INFINITY) return -Number.MAX_VALUE;
  return x;
}

function inBounds(m: number, d: number, c: { minMean: number; maxMean: number; minDisp: number; maxDisp: number }): boolean {
  return m > c.minMean && m < c.maxMean && d > c.minDisp && d < c.maxDisp;
}

/** Integer batch codes per cell and the batch count (obs categorical or string column). */
function batchCodes(adata: AnnDataOOM, key: string): { codes: Float64Array; n: number } {
  const b = batchCodesOf(adata, key);
  // A gene's variance within a one-cell batch is 0/0: scanpy's dispersions
  // there come from rounding residue (+inf or NaN), which then decides
  // which genes count as variable in that batch.
  const cells = new Float64Array(b.n);
  for (const c of b.codes) cells[c]++;
  const tiny = b.labels.filter((_, i) => cells[i] < 2);
  if (tiny.length)
    throw new InvalidArgumentError(
      `highlyVariableGenes: batch ${tiny.map((l) => JSON.stringify(l)).join(", ")} of ${key} has fewer than 2 cells; a variance needs two (drop or merge it)`,
    );
  return b;
}

function batchCodesOf(adata: AnnDataOOM, key: string): { codes: Float64Array; n: number; labels: string[] } {
  const col = adata.obs.getChild(key);
  if (!col) throw new InvalidArgumentError(`batchKey: obs has no column ${JSON.stringify(key)}`);
  const type = col.type as { typeId: number };
  const codes = new Float64Array(adata.nObs);
  if (type.typeId === -1) {
    const dict = col.data[0].dictionary;
    const raw = col.data[0].values as Int32Array;
    // scanpy iterates the categories in order. Categories no cell has (a
    // file keeps them; a view drops them) are no batch: counted as empty
    // batches they scaled every mean and dispersion (scanpy fails on them).
    const n = dict?.length ?? 0;
    const used = new Int32Array(n).fill(-1);
    for (let i = 0; i < codes.length; i++) {
      if (!col.isValid(i)) throw new InvalidArgumentError(`batchKey ${key}: missing value in cell ${i}`);
      used[raw[i]] = 0;
    }
    let batches = 0;
    for (let c = 0; c < n; c++) if (used[c] === 0) used[c] = batches++;
    for (let i = 0; i < codes.length; i++) codes[i] = used[raw[i]];
    const labels: string[] = [];
    for (let c = 0; c < n; c++) if (used[c] >= 0) labels.push(String(dict?.get(c)));
    return { codes, n: batches, labels };
  }
  // A missing batch is refused as for a categorical column (scanpy drops
  // those cells; as a batch of its own "null" it changed every mean).
  const labels = Array.from({ length: codes.length }, (_, i) => {
    const v = col.get(i);
    if (v === null || v === undefined || (typeof v === "number" && Number.isNaN(v)))
      throw new InvalidArgumentError(`batchKey ${key}: missing value in cell ${i}`);
    return String(v);
  });
  const cats = natsortedCategories(labels);
  const at = new Map(cats.map((c, i) => [c, i]));
  labels.forEach((l, i) => {
    codes[i] = at.get(l) as number;
  });
  return { codes, n: cats.length, labels: cats };
}

export async function highlyVariableGenes(adata: AnnDataOOM, opts: HvgOptions = {}): Promise<AnnDataOOM> {
  checkAnnData("pp.highlyVariableGenes", adata);
  checkOptionNames<HvgOptions>("pp.highlyVariableGenes", opts, {
    flavor: true,
    span: "num",
    theta: "num",
    clip: "num",
    nTopGenes: "num",
    minMean: "num",
    maxMean: "num",
    minDisp: "num",
    maxDisp: "num",
    nBins: "num",
    batchKey: true,
    subset: "bool",
    layer: true,
    onProgress: true,
    signal: true,
  });
  const flavor = opts.flavor ?? "seurat";
  // Every flavor: statistics over no cells are NaN (scanpy fails too).
  if (adata.nObs === 0) throw new InvalidArgumentError("highlyVariableGenes: there are no cells (were they all filtered out?)");
  if (flavor === "seurat_v3" || flavor === "seurat_v3_paper") {
    await seuratV3(adata, flavor, opts);
    return opts.subset ? subsetHv(adata) : adata;
  }
  if (flavor === "pearson_residuals") {
    await pearsonResiduals(adata, opts);
    return opts.subset ? subsetHv(adata) : adata;
  }
  if (flavor !== "seurat" && flavor !== "cell_ranger") {
    throw new InvalidArgumentError(`unknown flavor '${flavor}': use seurat, cell_ranger, seurat_v3, seurat_v3_paper or pearson_residuals`);
  }
  const m = unscaledTarget(adata, opts.layer, "pp.highlyVariableGenes");
  const logStep = m.chain.steps.find((s) => s.op === "log1p");
  const base = logStep && logStep.op === "log1p" ? logStep.base : (adata.uns.log1p as { base?: number | null } | undefined)?.base;
  const cut = {
    nTop: opts.nTopGenes,
    minMean: opts.minMean ?? 0.0125,
    maxMean: opts.maxMean ?? 3,
    minDisp: opts.minDisp ?? 0.5,
    maxDisp: opts.maxDisp ?? Number.POSITIVE_INFINITY,
  };
  if (cut.nTop !== undefined && !(Number.isInteger(cut.nTop) && cut.nTop > 0))
    throw new InvalidArgumentError(`nTopGenes must be a positive integer`);
  const nBins = opts.nBins ?? 20;
  if (!(Number.isInteger(nBins) && nBins > 0)) throw new InvalidArgumentError(`nBins must be a positive integer, got ${opts.nBins}`);
  // More bins than genes only makes empty bins; a huge count would block
  // the kernel allocating their edges.
  if (nBins > Math.max(MAX_BINS, m.shape[1]))
    throw new InvalidArgumentError(
      `nBins must be at most ${Math.max(MAX_BINS, m.shape[1])} (the number of genes, or ${MAX_BINS}), got ${nBins}`,
    );
  const batches = opts.batchKey ? batchCodes(adata, opts.batchKey) : null;
  const extra: Float64Array[] = batches ? [batches.codes] : [];
  const b0 = m.extraBase();
  const request = {
    moments: [
      // Non-zero counts only where read (per batch); without them the
      // native table of both sets fits in a core's L2 cache.
      {
        name: "hvg",
        expm1: flavor === "seurat",
        pre_scale: base ? Math.log(base) : null,
        batches: batches ? b0 : null,
        nnz: batches !== null,
      },
      { name: "lin", nnz: false },
    ],
  };
  const out = await m.planPass(request, extra, `HVG (${flavor})`, opts);
  const sum = out.get("hvg.sum") as Float64Array;
  const sumsq = out.get("hvg.sumsq") as Float64Array;
  const nnz = out.get("hvg.nnz") as Float64Array;
  const rows = out.get("hvg.rows") as Float64Array;
  const p = adata.nVars;
  checkFiniteGenes(adata, sum, "highlyVariableGenes");
  checkFiniteGenes(adata, out.get("lin.sum") as Float64Array, "highlyVariableGenes");
  adata.cacheVarMoments(m, out.get("lin.sum") as Float64Array, out.get("lin.sumsq") as Float64Array, adata.nObs);

  if (!batches) {
    const [mean, v] = meanVar(sum, sumsq, rows[0], 0, p);
    const r = singleBatch(mean, v, flavor, nBins, cut);
    writeColumns(adata, r, flavor);
  } else {
    const nb = batches.n;
    const acc = {
      means: new Float64Array(p),
      disp: new Float64Array(p),
      dispN: new Float64Array(p),
      norm: new Float64Array(p),
      normN: new Float64Array(p),
      nb: new Float64Array(p),
    };
    for (let b = 0; b < nb; b++) {
      // Genes not expressed in this batch are left out of its computation and count as 0.
      const keep: number[] = [];
      for (let j = 0; j < p; j++) if (nnz[b * p + j] > 0) keep.push(j);
      const [mAll, vAll] = meanVar(sum, sumsq, rows[b], b * p, p);
      const r = singleBatch(
        Float64Array.from(keep, (j) => mAll[j]),
        Float64Array.from(keep, (j) => vAll[j]),
        flavor,
        nBins,
        cut,
      );
      keep.forEach((j, k) => {
        acc.means[j] += r.means[k];
        if (!Number.isNaN(r.dispersions[k])) {
          acc.disp[j] += r.dispersions[k];
          acc.dispN[j] += 1;
        }
        if (!Number.isNaN(r.norm[k])) {
          acc.norm[j] += r.norm[k];
          acc.normN[j] += 1;
        }
        acc.nb[j] += r.hv[k];
      });
      // filtered genes contribute 0 (counted in the mean)
      for (let j = 0; j < p; j++) {
        if (nnz[b * p + j] > 0) continue;
        acc.dispN[j] += 1;
        acc.normN[j] += 1;
      }
    }
    const means = acc.means.map((x) => x / nb);
    const dispersions = acc.disp.map((x, j) => (acc.dispN[j] ? x / acc.dispN[j] : Number.NaN));
    let norm = acc.norm.map((x, j) => (acc.normN[j] ? x / acc.normN[j] : Number.NaN));
    const hv = new Uint8Array(p);
    if (cut.nTop !== undefined) {
      // sort by nbatches desc, then dispersions_norm desc (NaN last); ties by gene name (groupby order)
      const names = Array.from({ length: p }, (_, j) => adata.varNames.get(j) as string);
      const order = Array.from({ length: p }, (_, j) => j).sort((a, b) => {
        if (acc.nb[b] !== acc.nb[a]) return acc.nb[b] - acc.nb[a];
        const na = Number.isNaN(norm[a]);
        const nbn = Number.isNaN(norm[b]);
        if (na !== nbn) return na ? 1 : -1;
        if (!na && norm[b] !== norm[a]) return norm[b] - norm[a];
        return names[a] < names[b] ? -1 : names[a] > names[b] ? 1 : 0;
      });
      for (const j of order.slice(0, Math.min(cut.nTop, p))) hv[j] = 1;
    } else {
      norm = norm.map((x) => (Number.isNaN(x) ? 0 : x));
      for (let j = 0; j < p; j++) hv[j] = inBounds(means[j], nanToNum(norm[j]), cut) ? 1 : 0;
    }
    writeColumns(adata, { means, dispersions, norm, hv }, flavor);
    adata.setVar("highly_variable_nbatches", BigInt64Array.from(acc.nb, BigInt));
    adata.setVar(
      "highly_variable_intersection",
      Array.from(acc.nb, (x) => x === nb),
    );
  }
  adata.uns.hvg = { flavor };
  return opts.subset ? subsetHv(adata) : adata;
}

function subsetHv(adata: AnnDataOOM): AnnDataOOM {
  const col = adata.var.getChild("highly_variable");
  return adata.subset({ var: Array.from({ length: adata.nVars }, (_, j) => Boolean(col?.get(j))) });
}

function writeColumns(adata: AnnDataOOM, r: BatchStats, _flavor: string): void {
  adata.setVar(
    "highly_variable",
    Array.from(r.hv, (x) => x === 1),
  );
  adata.setVar("means", r.means);
  adata.setVar("dispersions", r.dispersions);
  adata.setVar("dispersions_norm", Float32Array.from(r.norm));
}
