/**
 * A lazy, file-backed matrix (X, a layer, raw.X) seen through the current
 * obs/var selections. Nothing is read until a chunk or a statistic is asked
 * for; statistics run as one native streaming pass and are cached, so
 * `sum`, `mean`, `var` and `nnz` together cost one pass.
 */
import { InvalidArgumentError, nativeAwait, nativeCall } from "./errors";
import type { Native } from "./native";
import { drive, type PassOptions } from "./pass";
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
  private statsCache: { moments: boolean; axes: string; result: Promise<{ obs: AxisStats; var: AxisStats }> }[] = [];

  /** @internal */
  constructor(
    private readonly source: Source,
    readonly meta: MatrixMeta,
    private readonly obsSel: Uint32Array | null,
    private readonly varSel: Uint32Array | null,
    /** Name shown in reprs and progress ("X", "layers/counts"). */
    readonly name: string,
  ) {}

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
      throw new InvalidArgumentError(`rows(${start}, ${end}) out of range for ${n} rows`);
    }
    const nat = this.source.native;
    const b = await nativeAwait(nat.readRows(this.meta.path, this.rowsOf(start, end), this.varSel ?? undefined));
    return chunkFromNative(b as Native.BlockOut);
  }

  /**
   * Iterate over row chunks; the next chunk is read while the caller works
   * on the current one.
   *
   * @example
   * for await (const { start, end, chunk } of adata.X.chunked(10_000)) { ... }
   */
  async *chunked(chunkSize?: number, opts: { signal?: AbortSignal } = {}): AsyncGenerator<{ start: number; end: number; chunk: Chunk }> {
    const size = chunkSize ?? this.defaultChunkSize();
    if (!Number.isInteger(size) || size <= 0) throw new InvalidArgumentError(`chunkSize must be a positive integer, got ${chunkSize}`);
    const [n] = this.shape;
    let start = 0;
    let next: Promise<Chunk> | null = n > 0 ? this.rows(0, Math.min(size, n)) : null;
    while (next) {
      const end = Math.min(start + size, n);
      const chunk = await next;
      opts.signal?.throwIfAborted();
      next = end < n ? this.rows(end, Math.min(end + size, n)) : null;
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
    const moments = opts.moments ?? true;
    const axes = opts.axes ?? "both";
    const hit = this.statsCache.find((c) => (c.moments || !moments) && (c.axes === "both" || c.axes === axes));
    if (hit) return hit.result;
    const pass = nativeCall(() =>
      this.source.native.startStats(this.meta.path, this.obsSel ?? undefined, this.varSel ?? undefined, moments, axes),
    );
    const label = `${this.name}: ${moments ? "mean/var" : "sums"} per ${axes === "both" ? "obs and var" : axes}`;
    const result = drive(this.source, label, pass, (p) => p.takeStats() as { obs: AxisStats; var: AxisStats }, opts);
    const entry = { moments, axes, result };
    this.statsCache.push(entry);
    result.catch(() => {
      this.statsCache = this.statsCache.filter((c) => c !== entry);
    });
    return result;
  }

  private async reduce(key: keyof AxisStats, axis: Axis | undefined, opts: PassOptions): Promise<Float64Array | number> {
    if (axis !== undefined && axis !== 0 && axis !== 1)
      throw new InvalidArgumentError(`axis must be 0, 1 or undefined, got ${String(axis)}`);
    const axes = axis === 0 ? "var" : "obs";
    const s = await this.stats({ ...opts, moments: key === "var", axes });
    if (axis === 0) return key === "mean" ? meanOf(s.var.sum, this.shape[0]) : s.var[key];
    if (axis === 1) return key === "mean" ? meanOf(s.obs.sum, this.shape[1]) : s.obs[key];
    return total(key, s, this.shape);
  }

  /** Sum over axis 0 (per var), 1 (per obs) or all. Float64. */
  sum(axis?: Axis, opts: PassOptions = {}): Promise<Float64Array | number> {
    return this.reduce("sum", axis, opts);
  }
  mean(axis?: Axis, opts: PassOptions = {}): Promise<Float64Array | number> {
    return this.reduce("mean", axis, opts);
  }
  /** Variance with numpy's default ddof = 0 (pass ddof: 1 for the sample variance). */
  async var(axis?: Axis, opts: PassOptions & { ddof?: number } = {}): Promise<Float64Array | number> {
    const v = await this.reduce("var", axis, opts);
    const ddof = opts.ddof ?? 0;
    if (!ddof) return v;
    const [r, c] = this.shape;
    const n = axis === 0 ? r : axis === 1 ? c : r * c;
    const f = n / (n - ddof);
    return typeof v === "number" ? v * f : v.map((x) => x * f);
  }
  /** Non-zero values (explicit zeros not counted) per axis or in all. */
  nnz(axis?: Axis, opts: PassOptions = {}): Promise<Float64Array | number> {
    return this.reduce("nnz", axis, opts);
  }

  private async gather(rows: Uint32Array | null, cols: Uint32Array | null, label: string, opts: PassOptions): Promise<Float64Array> {
    const pass = nativeCall(() => this.source.native.startGather(this.meta.path, rows ?? undefined, cols ?? undefined));
    const g = await drive(this.source, label, pass, (p) => p.takeGather(), opts);
    return g.values;
  }

  /** One column (gene) across all obs of this view, as float64. */
  obsVector(column: number, opts: PassOptions = {}): Promise<Float64Array> {
    const [, m] = this.shape;
    if (!Number.isInteger(column) || column < 0 || column >= m) throw new InvalidArgumentError(`column ${column} out of range for ${m}`);
    const col = Uint32Array.of(this.varSel ? this.varSel[column] : column);
    return this.gather(this.obsSel, col, `${this.name}: column ${column}`, opts);
  }

  /** One row (cell) across all vars of this view, as float64. */
  async varVector(row: number, opts: PassOptions = {}): Promise<Float64Array> {
    const [n] = this.shape;
    if (!Number.isInteger(row) || row < 0 || row >= n) throw new InvalidArgumentError(`row ${row} out of range for ${n}`);
    const r = Uint32Array.of(this.obsSel ? this.obsSel[row] : row);
    return this.gather(r, this.varSel, `${this.name}: row ${row}`, opts);
  }

  /** One-line summary. */
  toString(): string {
    const [r, c] = this.shape;
    return `BackedMatrix ${this.name} ${r} × ${c} ${this.format} ${this.dtype}${this.isView ? " (view)" : ""}`;
  }
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
