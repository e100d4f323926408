/**
 * A lazy, file-backed matrix (X, a layer, raw.X) seen through the current
 * obs/var selections. Nothing is read until a chunk or a statistic is asked
 * for; statistics run as one native streaming pass and are cached, so
 * `sum`, `mean`, `var` and `nnz` together cost one pass.
 */

import { applyColumn, applyRow, Chain, type Step, scaleValue } from "./chain";
import { CancelledError, FileAccessError, GeneIndexError, InvalidArgumentError, nativeAwait, nativeCall, shown } from "./errors";
import * as geneIndex from "./gene-index";
import type { Native } from "./native";
import { kernelSignal } from "./notebook";
import { checkOptionNames } from "./options";
import { checkPassOptions, drive, type PassOptions } from "./pass";
import { type MatrixJson, type MimeBundle, matrixBundle, matrixJson } from "./repr-html";
import { range } from "./selection";
import type { MatrixMeta, Source } from "./source";
import { type TypedArray, typedArray } from "./typed";

/** A block of rows in CSR form; indptr is local to the chunk. */
export interface CsrChunk {
  format: "csr";
  shape: [number, number];
  indptr: Float64Array;
  indices: Int32Array;
  data: TypedArray;
}

/** A block of rows, row-major. */
export interface DenseChunk {
  format: "dense";
  shape: [number, number];
  data: TypedArray;
}

export type Chunk = CsrChunk | DenseChunk;

/** Per-axis statistics of one pass (float64, population variance). */
export interface AxisStats {
  sum: Float64Array;
  mean: Float64Array;
  var: Float64Array;
  nnz: Float64Array;
}

export type Axis = 0 | 1;

/** What a statistics pass computes. */
/** The options every pass takes. */
const PASS_OPTIONS = { signal: true, onProgress: true } as const;

export interface StatsRequest {
  /** Also means of squares → variances (default true). */
  moments?: boolean;
  /** Per-obs, per-var or both (default both). */
  axes?: "obs" | "var" | "both";
}

export function chunkFromNative(b: Native.BlockOut): Chunk {
  const shape: [number, number] = [b.nRows, b.nCols];
  if (b.format === "dense") return { format: "dense", shape, data: typedArray(b.data) };
  return { format: "csr", shape, indptr: b.indptr as Float64Array, indices: b.indices as Int32Array, data: typedArray(b.data) };
}

export class BackedMatrix {
  private statsCache: {
    moments: boolean;
    axes: string;
    result: Promise<{ obs: AxisStats; var: AxisStats }>;
    cancellable: boolean;
    settled: boolean;
  }[] = [];

  /** @internal */
  constructor(
    private readonly source: Source,
    readonly meta: MatrixMeta,
    private readonly obsSel: Uint32Array | null,
    private readonly varSel: Uint32Array | null,
    /** Name shown in reprs and progress ("X", "layers/counts"). */
    readonly name: string,
    /** Lazy transforms applied on top of the stored values. */
    private chainState: Chain = new Chain(),
  ) {}

  /** Lazy transforms applied on top of the stored values. */
  get chain(): Chain {
    return this.chainState;
  }

  /** The same matrix with `chain` as its transforms (no data touched). */
  withChain(chain: Chain, name = this.name): BackedMatrix {
    return new BackedMatrix(this.source, this.meta, this.obsSel, this.varSel, name, chain);
  }

  /** The obs / var selections over the file (null = all). @internal */
  get selections(): [Uint32Array | null, Uint32Array | null] {
    return [this.obsSel, this.varSel];
  }

  /** The file the matrix is read from. @internal */
  get sourceHandle(): Source {
    return this.source;
  }

  /** True when values differ from the stored ones (a chain is applied). */
  get isTransformed(): boolean {
    return !this.chain.isEmpty;
  }

  /**
   * The transform chain and what each kind of request costs.
   *
   * @example
   * console.log(adata.X.explain());
   */
  explain(): string {
    const [r, c] = this.shape;
    const lines = [`${this.name}: ${r} × ${c}, stored ${this.format} ${this.dtype} at ${this.meta.path}${this.isView ? " (subset)" : ""}`];
    for (const d of this.chain.describe()) lines.push(`  → ${d}`);
    lines.push("passes over X:");
    lines.push("  statistics (sum/mean/var, QC, HVG moments): 1 pass, all requested statistics fused");
    lines.push("  pca (exact): 1 pass (Gram + spill of the selected genes) + a read of the spill");
    lines.push("  rows/chunked: reads only the requested rows");
    lines.push("  geneValues/obsVector: a read of each gene's bytes in the gene index (built once by 1 pass), else 1 pass");
    return lines.join("\n");
  }

  /**
   * One native plan pass: evaluates the chain per row and takes the
   * statistics in `request`. Returns the named outputs. @internal
   */
  async planPass(
    request: object,
    extraVectors: Float64Array[],
    label: string,
    opts: PassOptions = {},
  ): Promise<Map<string, Float64Array | Float32Array>> {
    const { cols, output } = this.readColumns();
    const plan = this.chain.toNative(extraVectors, output ?? undefined);
    const nat = this.source.native;
    const pass = nativeCall(() =>
      nat.startPlan(this.meta.path, this.obsSel ?? undefined, cols ?? undefined, plan.json, plan.vectors, JSON.stringify(request)),
    );
    const out = await drive(this.source, `${this.name}: ${label}`, pass, (p) => p.takePlan(), opts);
    const m = new Map<string, Float64Array | Float32Array>();
    out.names.forEach((n, i) => m.set(n, out.arrays[i]));
    out.names32.forEach((n, i) => m.set(n, out.arrays32[i]));
    this.rememberRowTotals(m.get("size_factors"));
    return m;
  }

  /**
   * Keep the row totals a pass computed for a normalize step that had none:
   * later passes (and subsets of this matrix) then read only the genes they
   * select instead of whole rows. The values are the ones the pass used, so
   * results do not change.
   */
  private rememberRowTotals(totals: Float64Array | Float32Array | undefined): void {
    if (!(totals instanceof Float64Array) || totals.length !== this.shape[0]) return;
    const open = this.chain.steps.filter((s) => s.op === "normalize" && !s.sizeFactors);
    if (open.length !== 1 || totals.some((t) => Number.isNaN(t))) return;
    this.chainState = new Chain(this.chain.steps.map((s) => (s === open[0] ? { ...s, sizeFactors: totals } : s)));
  }

  /**
   * This matrix as a write() destination: the native writer evaluates the
   * chain per block, in the format and dtype scanpy would leave (CSR, or
   * dense after a centring scale of sparse data; valueDtype). @internal
   */
  plannedWrite(dest: string): Native.PlannedIn {
    const { cols, output } = this.readColumns();
    const plan = this.chain.toNative([], output ?? undefined);
    return {
      dest,
      source: this.meta.path,
      rows: this.obsSel ?? undefined,
      cols: cols ?? undefined,
      planJson: plan.json,
      vectors: plan.vectors,
      float64: this.valueDtype === "float64",
    };
  }

  /** Index of the chain's first extra vector (see planPass). @internal */
  extraBase(): number {
    const { output } = this.readColumns();
    return this.chain.toNative([], output ?? undefined).extraBase;
  }

  /**
   * Columns to read and, when normalize needs wider rows than this view
   * selects, the map from read column to output column (−1: dropped).
   */
  private readColumns(): { cols: Uint32Array | null; output: Float64Array | null } {
    const need = this.chain.rowBasis();
    if (!need || sameSelection(need.basis, this.varSel)) return { cols: this.varSel, output: null };
    const cols = need.basis ?? range(0, this.meta.shape[1]);
    const at = new Map<number, number>();
    const sel = this.varSel ?? range(0, this.meta.shape[1]);
    sel.forEach((g, i) => {
      if (!at.has(g)) at.set(g, i);
    });
    if (at.size !== sel.length) throw new InvalidArgumentError("a normalized X cannot repeat genes in a subset");
    const output = Float64Array.from(cols, (g) => at.get(g) ?? -1);
    if (output.filter((x) => x >= 0).length !== sel.length) {
      throw new InvalidArgumentError("this gene subset is not within the genes the normalization was computed on");
    }
    return { cols, output };
  }

  get shape(): [number, number] {
    return [this.obsSel?.length ?? this.meta.shape[0], this.varSel?.length ?? this.meta.shape[1]];
  }
  /** Storage format on disk. */
  get format(): "csr" | "csc" | "dense" {
    return this.meta.format;
  }
  /** Stored dtype (int64 values arrive as Float64Array). */
  get dtype(): string {
    return this.meta.dtype;
  }
  /**
   * numpy's dtype of the values after the chain, as scanpy's steps leave
   * them: normalizeTotal makes integer counts float32, log1p makes anything
   * but float32 float64, and scale makes integers float64 and sparse data
   * float64 when it centres (it densifies there; a dense float32 array
   * stays float32). write() stores the matrix in it, and results scanpy
   * keeps in the data's dtype (PCs, PCA variances) take it.
   */
  get valueDtype(): string {
    let dtype = this.meta.dtype;
    const isFloat = () => dtype === "float32" || dtype === "float64";
    for (const s of this.chain.steps) {
      if (s.op === "normalize" && !isFloat()) dtype = "float32";
      else if (s.op === "log1p") dtype = s.float64 ? "float64" : "float32";
      else if (s.op === "scale" && (!isFloat() || (s.zeroCenter && this.meta.format !== "dense"))) dtype = "float64";
    }
    return dtype;
  }
  /** Stored entries in the whole file element (explicit zeros included). */
  get storedEntries(): number {
    return this.meta.nnz;
  }
  /** Fraction of stored entries in the whole element. */
  get density(): number {
    const [r, c] = this.meta.shape;
    return r * c ? this.meta.nnz / (r * c) : 0;
  }
  get bytesOnDisk(): number {
    return this.meta.storage_bytes;
  }
  get isView(): boolean {
    return this.obsSel !== null || this.varSel !== null;
  }

  private rowsOf(a: number, b: number): Uint32Array {
    return this.obsSel ? this.obsSel.subarray(a, b) : range(a, b);
  }

  /** A chunk size (rows) that keeps about 32 MB of stored data per chunk. */
  defaultChunkSize(): number {
    const [n, m] = this.meta.shape;
    const perRow = this.meta.format === "dense" ? m : n ? this.meta.nnz / n : 0;
    const bytes = Math.max(1, perRow) * (this.meta.format === "dense" ? 8 : 12);
    return Math.max(1, Math.min(Math.max(n, 1), Math.floor((32 << 20) / bytes)));
  }

  /** Read rows [start, end) of this view as one chunk. */
  async rows(start: number, end: number): Promise<Chunk> {
    const [n] = this.shape;
    if (!(Number.isInteger(start) && Number.isInteger(end) && start >= 0 && end <= n && start <= end)) {
      throw new InvalidArgumentError(
        `rows(${shown(start)}, ${shown(end)}) out of range for ${n} rows (start and end are whole numbers, start ≤ end)`,
      );
    }
    const nat = this.source.native;
    const { cols, output } = this.chain.isEmpty ? { cols: this.varSel, output: null } : this.readColumns();
    const b = await nativeAwait(nat.readRows(this.meta.path, this.rowsOf(start, end), cols ?? undefined));
    const chunk = chunkFromNative(b as Native.BlockOut);
    return this.chain.isEmpty ? chunk : transformChunk(chunk, this.chain, start, output, this.shape[1]);
  }

  /**
   * Iterate over row chunks; the next chunk is read while the caller works
   * on the current one.
   *
   * @example
   * for await (const { start, end, chunk } of adata.X.chunked(10_000)) { ... }
   */
  async *chunked(chunkSize?: number, opts: { signal?: AbortSignal } = {}): AsyncGenerator<{ start: number; end: number; chunk: Chunk }> {
    checkOptionNames<{ signal?: AbortSignal }>("chunked", opts, { signal: true });
    checkPassOptions(opts ?? {});
    const signal = opts?.signal ?? kernelSignal();
    const size = chunkSize ?? this.defaultChunkSize();
    if (!Number.isInteger(size) || size <= 0) throw new InvalidArgumentError(`chunkSize must be a positive integer, got ${chunkSize}`);
    const [n] = this.shape;
    // The read-ahead may fail while nobody awaits it (the loop broke, or its
    // body threw, and the file was then closed): marked handled, so that it
    // is not an unhandled rejection that ends a plain Node process.
    const readAhead = (from: number, to: number): Promise<Chunk> => {
      const p = this.rows(from, to);
      p.catch(() => {});
      return p;
    };
    let start = 0;
    let next: Promise<Chunk> | null = n > 0 ? readAhead(0, Math.min(size, n)) : null;
    while (next) {
      const end = Math.min(start + size, n);
      const chunk = await next;
      if (signal?.aborted) throw new CancelledError(`${this.name}: chunked() was cancelled at row ${start}`);
      next = end < n ? readAhead(end, Math.min(end + size, n)) : null;
      yield { start, end, chunk };
      start = end;
    }
  }

  /**
   * One pass over X giving per-obs and/or per-var statistics (cached; a
   * cached pass that covers a request answers it). With `moments: false`
   * only sums and non-zero counts are taken, which is cheaper; variances
   * need `moments` (the default).
   */
  stats(opts: PassOptions & StatsRequest = {}): Promise<{ obs: AxisStats; var: AxisStats }> {
    checkOptionNames<PassOptions & StatsRequest>("stats", opts, { moments: "bool", axes: true, signal: true, onProgress: true });
    opts ??= {};
    // Before the cache: a bad signal or onProgress is refused whether or not a pass runs.
    checkPassOptions(opts);
    const moments = opts.moments ?? true;
    const axes = opts.axes ?? "both";
    if (axes !== "obs" && axes !== "var" && axes !== "both")
      throw new InvalidArgumentError(`stats: axes must be "obs", "var" or "both", got ${shown(axes)}`);
    if (!this.chain.isEmpty) return this.chainStats(axes, opts);
    // A pass still running under another caller's AbortSignal is not shared:
    // that caller may cancel it.
    const hit = this.statsCache.find(
      (c) => (c.moments || !moments) && (c.axes === "both" || c.axes === axes) && (c.settled || !c.cancellable),
    );
    if (hit) return hit.result;
    const pass = nativeCall(() =>
      this.source.native.startStats(this.meta.path, this.obsSel ?? undefined, this.varSel ?? undefined, moments, axes),
    );
    const label = `${this.name}: ${moments ? "mean/var" : "sums and non-zero counts"} per ${axes === "both" ? "obs and var" : axes}`;
    const result = drive(this.source, label, pass, (p) => p.takeStats() as { obs: AxisStats; var: AxisStats }, opts);
    const entry = { moments, axes, result, cancellable: opts.signal !== undefined, settled: false };
    this.statsCache.push(entry);
    result.then(
      () => {
        entry.settled = true;
      },
      () => {
        this.statsCache = this.statsCache.filter((c) => c !== entry);
      },
    );
    return result;
  }

  /**
   * Statistics of a transformed matrix (normalize, log1p, scale: the values
   * a step would see) through one plan pass; scaling counts the implicit
   * zeros, whose scaled value is not zero. Not cached: steps change the chain.
   */
  private async chainStats(axes: "obs" | "var" | "both", opts: PassOptions): Promise<{ obs: AxisStats; var: AxisStats }> {
    const rows = axes !== "var";
    const cols = axes !== "obs";
    const out = await this.planPass({ stats: { rows, cols } }, [], `mean/var per ${axes === "both" ? "obs and var" : axes}`, opts);
    const [nObs, nVars] = this.shape;
    const axis = (prefix: string, n: number, on: boolean): AxisStats => {
      if (!on) return { sum: new Float64Array(0), mean: new Float64Array(0), var: new Float64Array(0), nnz: new Float64Array(0) };
      const sum = out.get(`stats.${prefix}_sum`) as Float64Array;
      const sumsq = out.get(`stats.${prefix}_sumsq`) as Float64Array;
      const mean = sum.map((x) => x / n);
      // E[x²] − E[x]²: the values are transformed (bounded), so no cancellation to speak of.
      const variance = mean.map((m, k) => Math.max(0, sumsq[k] / n - m * m));
      return { sum, mean, var: variance, nnz: out.get(`stats.${prefix}_nnz`) as Float64Array };
    };
    return { obs: axis("row", nVars, rows), var: axis("col", nObs, cols) };
  }

  private async reduce(key: keyof AxisStats, axis: Axis | undefined, opts: PassOptions): Promise<Float64Array | number> {
    if (axis !== undefined && axis !== 0 && axis !== 1)
      throw new InvalidArgumentError(`axis must be 0, 1 or undefined, got ${shown(axis)}`);
    // Only the axis asked for, and moments only for var: at 1M cells both
    // axes' sums cost 1.7× one axis's (5.1 s against 3.0 s), and both
    // axes' moments 1.5× (8.9 s against 5.9 s), more than a later pass
    // saves in the usual sum(1), mean(0), var(0) sequence (14.1 s against
    // 12.8 s, measured in session 24).
    const axes = axis === 0 ? "var" : "obs";
    const s = await this.stats({ ...opts, moments: key === "var", axes });
    if (axis === 0) return key === "mean" ? meanOf(s.var.sum, this.shape[0]) : s.var[key];
    if (axis === 1) return key === "mean" ? meanOf(s.obs.sum, this.shape[1]) : s.obs[key];
    return total(key, s, this.shape);
  }

  /** Sum over axis 0 (per var), 1 (per obs) or all. Float64. */
  sum(axis: Axis, opts?: PassOptions): Promise<Float64Array>;
  sum(axis?: undefined, opts?: PassOptions): Promise<number>;
  sum(axis?: Axis, opts?: PassOptions): Promise<Float64Array | number>;
  sum(axis?: Axis, opts: PassOptions = {}): Promise<Float64Array | number> {
    checkOptionNames<PassOptions>("sum", opts, PASS_OPTIONS);
    return this.reduce("sum", axis, opts);
  }
  /** Mean over axis 0 (per var), 1 (per obs) or all. */
  mean(axis: Axis, opts?: PassOptions): Promise<Float64Array>;
  mean(axis?: undefined, opts?: PassOptions): Promise<number>;
  mean(axis?: Axis, opts?: PassOptions): Promise<Float64Array | number>;
  mean(axis?: Axis, opts: PassOptions = {}): Promise<Float64Array | number> {
    checkOptionNames<PassOptions>("mean", opts, PASS_OPTIONS);
    return this.reduce("mean", axis, opts);
  }
  /** Variance with numpy's default ddof = 0 (pass ddof: 1 for the sample variance). */
  var(axis: Axis, opts?: PassOptions & { ddof?: number }): Promise<Float64Array>;
  var(axis?: undefined, opts?: PassOptions & { ddof?: number }): Promise<number>;
  var(axis?: Axis, opts?: PassOptions & { ddof?: number }): Promise<Float64Array | number>;
  async var(axis?: Axis, opts: PassOptions & { ddof?: number } = {}): Promise<Float64Array | number> {
    checkOptionNames<PassOptions & { ddof?: number }>("var", opts, { ...PASS_OPTIONS, ddof: "num" });
    opts ??= {};
    const ddof = opts.ddof ?? 0;
    if (typeof ddof !== "number" || !Number.isFinite(ddof))
      throw new InvalidArgumentError(`ddof must be a finite number, got ${shown(ddof)}`);
    const { ddof: _, ...pass } = opts;
    const v = await this.reduce("var", axis, pass);
    if (!ddof) return v;
    const [r, c] = this.shape;
    const n = axis === 0 ? r : axis === 1 ? c : r * c;
    // numpy divides the squared deviations by max(n − ddof, 0): Infinity
    // (NaN for none) when ddof ≥ n, never a negative variance.
    const scale = (x: number) => (x * n) / Math.max(n - ddof, 0);
    return typeof v === "number" ? scale(v) : v.map(scale);
  }
  /** Non-zero values (explicit zeros not counted) per axis or in all. */
  nnz(axis: Axis, opts?: PassOptions): Promise<Float64Array>;
  nnz(axis?: undefined, opts?: PassOptions): Promise<number>;
  nnz(axis?: Axis, opts?: PassOptions): Promise<Float64Array | number>;
  nnz(axis?: Axis, opts: PassOptions = {}): Promise<Float64Array | number> {
    checkOptionNames<PassOptions>("nnz", opts, PASS_OPTIONS);
    return this.reduce("nnz", axis, opts);
  }

  private async gather(rows: Uint32Array | null, cols: Uint32Array | null, label: string, opts: PassOptions): Promise<Float64Array> {
    const pass = nativeCall(() => this.source.native.startGather(this.meta.path, rows ?? undefined, cols ?? undefined));
    const g = await drive(this.source, label, pass, (p) => p.takeGather(), opts);
    return g.values;
  }

  /**
   * One column (gene) across all obs of this view, as float64, with the
   * transform chain applied. Reads the gene-index sidecar when one already
   * exists; otherwise one pass over X (it never builds the index: see
   * geneValues / buildGeneIndex).
   */
  async obsVector(column: number, opts: PassOptions = {}): Promise<Float64Array> {
    checkOptionNames<PassOptions>("obsVector", opts, PASS_OPTIONS);
    const [out] = await this.geneValues([column], { ...opts, index: false });
    return out;
  }

  /**
   * Values of the given columns (positions in this view) across this
   * view's cells, one Float64Array per column, with the transform chain
   * applied as a pass would. By default the gene-major sidecar index is
   * used and built on first use (one pass over X, then each gene is a read
   * of its own bytes); `index: false` uses an existing index only and
   * otherwise takes one pass for all the requested columns. A CSC matrix
   * is already gene-major and is read directly.
   *
   * @example
   * const [a, b] = await adata.X.geneValues([0, 17]);
   */
  async geneValues(
    columns: readonly number[],
    opts: PassOptions & geneIndex.GeneIndexOptions & { index?: boolean } = {},
  ): Promise<Float64Array[]> {
    const [, m] = this.shape;
    for (const c of columns) {
      if (!Number.isInteger(c) || c < 0 || c >= m) throw new InvalidArgumentError(`column ${c} out of range for ${m}`);
    }
    const fileCols = Uint32Array.from(columns, (c) => (this.varSel ? this.varSel[c] : c));
    const { values, index } = await this.rawColumns(fileCols, opts);
    const steps = await this.withRowTotals(index, opts);
    values.forEach((v, k) => applyColumn(steps, columns[k], v));
    return values;
  }

  /**
   * The chain with row totals filled in where normalize computes them per
   * row in a pass (a column alone cannot): from the sidecar when it covers
   * the totals (all genes, none excluded), else one plan pass.
   */
  private async withRowTotals(
    index: Native.NativeGeneIndex | null,
    opts: PassOptions & geneIndex.GeneIndexOptions,
  ): Promise<readonly Step[]> {
    const out: Step[] = [];
    for (const s of this.chain.steps) {
      if (s.op !== "normalize" || s.sizeFactors) {
        out.push(s);
        continue;
      }
      const allGenes = !s.basis || (s.basis.length === this.meta.shape[1] && s.basis.every((g, i) => g === i));
      let totals: Float64Array | undefined;
      if (index && allGenes && !s.exclude) {
        try {
          totals = nativeCall(() => index.rowTotals(this.obsSel ?? undefined));
        } catch (e) {
          // totals damaged on disk (their checksum): drop the sidecar and take them with a pass
          if (!(e instanceof GeneIndexError)) throw e;
          geneIndex.discard(this.source, geneIndex.locate(this.source, this.meta, opts));
        }
      }
      if (!totals) {
        const probe = this.withChain(new Chain([{ op: "normalize", target: 1, exclude: s.exclude, basis: s.basis }]));
        const r = await probe.planPass({ qc: { masks: [], percent_top: [] } }, [], "cell totals", opts);
        totals = r.get("size_factors") as Float64Array;
        // Kept, as a pass's own totals are: the next gene read (a plot
        // colored by another gene) must not pay this pass again.
        this.rememberRowTotals(totals);
      }
      out.push({ ...s, sizeFactors: totals });
    }
    return out;
  }

  /** Stored values of file columns at this view's rows (sidecar or one gather pass). */
  private async rawColumns(
    fileCols: Uint32Array,
    opts: PassOptions & geneIndex.GeneIndexOptions & { index?: boolean },
  ): Promise<{ values: Float64Array[]; index: Native.NativeGeneIndex | null }> {
    if (fileCols.length === 0) return { values: [], index: null };
    // A file replaced since it was opened: its sidecar would describe the
    // new file, while this object reads the old one through its handle.
    if (this.meta.format !== "csc" && !geneIndex.changedSinceOpen(this.source)) {
      const loc = geneIndex.locate(this.source, this.meta, opts);
      const useIndex = opts.index ?? true;
      const label = `${this.name}: gene index`;
      for (let attempt = 0; attempt < 2; attempt++) {
        const h = useIndex ? await this.ensureIndexOrNull(loc, label, opts) : geneIndex.openExisting(this.source, loc);
        if (!h) break;
        try {
          return { values: await geneIndex.readGenes(h, fileCols, this.obsSel), index: h };
        } catch (e) {
          // a sidecar damaged after it was opened: drop it, rebuild once
          if (!(e instanceof GeneIndexError) || attempt === 1) throw e;
          geneIndex.discard(this.source, loc);
        }
      }
    }
    const label = `${this.name}: ${fileCols.length === 1 ? `column ${fileCols[0]}` : `${fileCols.length} columns`}`;
    const all = await this.gather(this.obsSel, fileCols, label, opts);
    const k = fileCols.length;
    const n = this.shape[0];
    const values = Array.from(fileCols, (_, c) => {
      const v = new Float64Array(n);
      for (let i = 0; i < n; i++) v[i] = all[i * k + c];
      return v;
    });
    return { values, index: null };
  }

  /**
   * The sidecar at `loc`, built when missing. When the index was not asked
   * for explicitly and cannot be stored (a read-only or full cache folder),
   * null with a warning: the genes are then read with a pass instead.
   */
  private async ensureIndexOrNull(
    loc: geneIndex.Location,
    label: string,
    opts: PassOptions & geneIndex.GeneIndexOptions & { index?: boolean },
  ): Promise<Native.NativeGeneIndex | null> {
    try {
      return await geneIndex.ensure(this.source, loc, label, opts);
    } catch (e) {
      if (opts.index !== undefined || !(e instanceof FileAccessError) || geneIndex.changedSinceOpen(this.source)) throw e;
      process.emitWarning(`${label} unavailable (${e.message}); reading the genes with a pass instead`);
      return null;
    }
  }

  /**
   * Build this element's gene-index sidecar now (no-op when a valid one
   * exists). The index covers the whole element, whatever the view.
   */
  async buildGeneIndex(opts: PassOptions & geneIndex.GeneIndexOptions = {}): Promise<geneIndex.GeneIndexInfo> {
    checkOptionNames<PassOptions & geneIndex.GeneIndexOptions>("buildGeneIndex", opts, {
      ...PASS_OPTIONS,
      ...geneIndex.GENE_INDEX_OPTIONS,
    });
    const budget = opts?.budgetBytes;
    if (budget !== undefined && !(Number.isFinite(budget) && budget > 0))
      throw new InvalidArgumentError(`buildGeneIndex: budgetBytes must be a positive number of bytes, got ${shown(budget)}`);
    const loc = geneIndex.locate(this.source, this.meta, opts);
    await geneIndex.ensure(this.source, loc, `${this.name}: gene index`, opts);
    return geneIndex.info(this.source, loc);
  }

  /** Where this element's sidecar is and whether a valid one exists (no build). */
  geneIndexInfo(opts: geneIndex.GeneIndexOptions = {}): geneIndex.GeneIndexInfo {
    checkOptionNames<geneIndex.GeneIndexOptions>("geneIndexInfo", opts, geneIndex.GENE_INDEX_OPTIONS);
    // The path names another file now (replaced, touched): no sidecar applies,
    // and reads go through the open handle (plots asked and failed here).
    if (geneIndex.changedSinceOpen(this.source))
      return { path: "", built: false, bytes: 0, element: this.meta.path, valueKind: null, nnz: null };
    return geneIndex.info(this.source, geneIndex.locate(this.source, this.meta, opts));
  }

  /** One row (cell) across all vars of this view, as float64. */
  async varVector(row: number, opts: PassOptions = {}): Promise<Float64Array> {
    checkOptionNames<PassOptions>("varVector", opts, PASS_OPTIONS);
    const [n] = this.shape;
    if (!Number.isInteger(row) || row < 0 || row >= n) throw new InvalidArgumentError(`row ${shown(row)} out of range for ${n}`);
    if (this.isTransformed) {
      const c = await this.rows(row, row + 1);
      const out = new Float64Array(this.shape[1]);
      if (c.format === "dense") out.set(Array.from(c.data, Number));
      else for (let p = 0; p < c.indices.length; p++) out[c.indices[p]] += Number(c.data[p]);
      return out;
    }
    const r = Uint32Array.of(this.obsSel ? this.obsSel[row] : row);
    return this.gather(r, this.varSel, `${this.name}: row ${row}`, opts);
  }

  /** The repr's facts as JSON (storage, size, chain). */
  reprJson(): MatrixJson {
    return matrixJson(this);
  }

  /** Notebook repr: text, a small HTML card and `application/vnd.anndata-oom.repr+json`. */
  _repr_mimebundle_(): MimeBundle {
    return matrixBundle(this);
  }

  /** One-line summary. */
  toString(): string {
    const [r, c] = this.shape;
    return `BackedMatrix ${this.name} ${r} × ${c} ${this.format} ${this.dtype}${this.isView ? " (view)" : ""}`;
  }

  /** console.log / a value inside another: the summary, not the file handle and caches. */
  [Symbol.for("nodejs.util.inspect.custom")](): string {
    return this.toString();
  }
}

/** Apply a chain to a chunk read from disk; scale makes it dense (float64). */
function transformChunk(raw: Chunk, chain: Chain, firstRow: number, output: Float64Array | null, nOut: number): Chunk {
  // Normalize over the wide rows first, then keep this view's genes.
  const chunk = output ? normalizeThenSelect(raw, chain, firstRow, output, nOut) : raw;
  const steps = output ? chain.steps.filter((s) => s.op === "scale") : chain.steps;
  const [r, c] = chunk.shape;
  const scale = steps.find((s) => s.op === "scale");
  const out = scale ? new Float64Array(r * c) : Float64Array.from(chunk.data as ArrayLike<number>);
  const denseCols = chunk.format === "csr" ? null : Int32Array.from({ length: c }, (_, j) => j);
  const colsOf = (i: number): { cols: ArrayLike<number>; lo: number; hi: number } =>
    chunk.format === "csr"
      ? { cols: chunk.indices.subarray(chunk.indptr[i], chunk.indptr[i + 1]), lo: chunk.indptr[i], hi: chunk.indptr[i + 1] }
      : { cols: denseCols as Int32Array, lo: i * c, hi: (i + 1) * c };
  for (let i = 0; i < r; i++) {
    const { cols, lo, hi } = colsOf(i);
    // Without a scale, `out` already holds a float64 copy: apply in place.
    const vals = scale
      ? Float64Array.from((chunk.data as ArrayLike<number> & { subarray(a: number, b: number): ArrayLike<number> }).subarray(lo, hi))
      : out.subarray(lo, hi);
    applyRow(steps, firstRow + i, cols, vals);
    if (scale) {
      for (let j = 0; j < c; j++) out[i * c + j] = scaleValue(scale, j, 0);
      for (let k = 0; k < cols.length; k++) out[i * c + cols[k]] = scaleValue(scale, cols[k], vals[k]);
    }
  }
  if (scale) return { format: "dense", shape: [r, c], data: out };
  return chunk.format === "csr" ? { ...chunk, data: out } : { format: "dense", shape: [r, c], data: out };
}

/**
 * Apply the sparse steps on wide rows (the normalize basis), then keep the
 * output columns: CSR in, CSR out; dense in, dense out (float64).
 */
function normalizeThenSelect(raw: Chunk, chain: Chain, firstRow: number, output: Float64Array, nOut: number): Chunk {
  const [r, w] = raw.shape;
  const steps = chain.steps.filter((s) => s.op !== "scale");
  if (raw.format === "dense") {
    const cols = Int32Array.from({ length: w }, (_, j) => j);
    const out = new Float64Array(r * nOut);
    for (let i = 0; i < r; i++) {
      const vals = Float64Array.from(raw.data.subarray(i * w, (i + 1) * w) as ArrayLike<number>);
      applyRow(steps, firstRow + i, cols, vals);
      for (let j = 0; j < w; j++) if (output[j] >= 0) out[i * nOut + output[j]] = vals[j];
    }
    return { format: "dense", shape: [r, nOut], data: out };
  }
  const indptr = new Float64Array(r + 1);
  const indices: number[] = [];
  const data: number[] = [];
  for (let i = 0; i < r; i++) {
    const lo = raw.indptr[i];
    const hi = raw.indptr[i + 1];
    const cols = raw.indices.subarray(lo, hi);
    const vals = Float64Array.from(raw.data.subarray(lo, hi) as ArrayLike<number>);
    applyRow(steps, firstRow + i, cols, vals);
    for (let k = 0; k < cols.length; k++) {
      const o = output[cols[k]];
      if (o >= 0) {
        indices.push(o);
        data.push(vals[k]);
      }
    }
    indptr[i + 1] = indices.length;
  }
  return { format: "csr", shape: [r, nOut], indptr, indices: Int32Array.from(indices), data: Float64Array.from(data) };
}

function sameSelection(a: Uint32Array | null, b: Uint32Array | null): boolean {
  if (a === b) return true;
  if (!a || !b || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function meanOf(sums: Float64Array, n: number): Float64Array {
  return sums.map((x) => (n ? x / n : Number.NaN));
}

function total(key: keyof AxisStats, s: { obs: AxisStats; var: AxisStats }, shape: [number, number]): number {
  const [r, c] = shape;
  const perObs = s.obs;
  let sum = 0;
  for (let i = 0; i < perObs.sum.length; i++) sum += key === "nnz" ? perObs.nnz[i] : perObs.sum[i];
  if (key === "sum" || key === "nnz") return sum;
  const n = r * c;
  const mean = n ? sum / n : Number.NaN;
  if (key === "mean") return mean;
  // Total variance from per-row (mean, var) with the parallel-axis formula.
  let m2 = 0;
  for (let i = 0; i < perObs.mean.length; i++) {
    const d = perObs.mean[i] - mean;
    m2 += c * (perObs.var[i] + d * d);
  }
  return n ? m2 / n : Number.NaN;
}
