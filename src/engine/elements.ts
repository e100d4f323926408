/**
 * obsm / varm / obsp / varp / layers and uns: keyed collections read on
 * first access, seen through the view's selections (subsetting is done by
 * the native reader, so only the selected rows are read).
 */
import { Table, Vector } from "apache-arrow";
import { BackedMatrix } from "./backed";
import { ClosedError, H5adFormatError, InvalidArgumentError, nativeAwait, nativeCall, UnsupportedEncodingError } from "./errors";
import { checkStorableType, describeFrame, type Frame, frameWithoutUnusedCategories, readFrame, tableOf, takeFrame } from "./frame";
import { isMemberName } from "./names";
import type { Native } from "./native";
import { range } from "./selection";
import type { ElementInfo, MatrixMeta, Source } from "./source";
import { takeSparseRows, takeSparseSquare } from "./sparse-take";
import { columnVector, compactVector, markWideIntegers, stringArray, type TypedArray, typedArray } from "./typed";
import { withOrigin } from "./uns-origin";

/** A dense n-d array, row-major. */
export interface DenseArray {
  kind: "dense";
  shape: number[];
  /** The dtype stored in the file; int64 / uint64 values are held in a Float64Array. */
  dtype: string;
  data: TypedArray;
}

/** A sparse matrix as stored (CSR or CSC), or CSR after subsetting. */
export interface SparseMatrix {
  kind: "csr" | "csc";
  shape: [number, number];
  /** The dtype stored in the file; scanpy's float64 kNN distances (float32 values) are held in a Float32Array. */
  dtype: string;
  indptr: Float64Array;
  indices: Int32Array;
  data: TypedArray;
}

export type Element = DenseArray | SparseMatrix | Frame;

function unsupported(info: ElementInfo): never {
  throw new UnsupportedEncodingError(`encoding-type '${info.encoding}' is not supported`, { element: info.path });
}

/** Selection of each element axis for the mappings. */
export type AxisSel = [Uint32Array | null, Uint32Array | null];

/**
 * A keyed collection like `adata.obsm`. `get(key)` reads (and caches) the
 * element, subset to the current view.
 */
export class ElementMapping {
  private cache = new Map<string, Promise<Element>>();
  /** Elements computed in this session (e.g. X_pca), shadowing the file. */
  private readonly memory = new Map<string, Element>();

  /** @internal */
  constructor(
    private readonly source: Source,
    private readonly entries: [string, ElementInfo][],
    private readonly sel: AxisSel,
    readonly name: string,
    /** The names of the axis a frame's rows follow (obs or var names), for obsm / varm. */
    private readonly axisNames?: () => Vector,
  ) {}

  keys(): string[] {
    const file = this.entries.map(([k]) => k).filter((k) => !this.memory.has(k));
    return [...file, ...this.memory.keys()];
  }
  /** anndata's repr: "AxisArrays with keys: X_pca, X_umap" (PairwiseArrays for obsp / varp). */
  toString(): string {
    return `${/p$/.test(this.name) ? "PairwiseArrays" : "AxisArrays"} with keys: ${this.keys().join(", ")}`;
  }
  [Symbol.for("nodejs.util.inspect.custom")](): string {
    return this.toString();
  }
  has(key: string): boolean {
    return this.memory.has(key) || this.entries.some(([k]) => k === key);
  }
  get size(): number {
    return this.keys().length;
  }
  /**
   * Store an in-memory element (a step's result) under `key`. Its leading
   * dimensions must be the aligned axes' lengths (obsm: n_obs; obsp:
   * n_obs × n_obs; ...), as anndata requires.
   */
  set(key: string, value: Element): void {
    if (!isMemberName(key))
      throw new InvalidArgumentError(
        `${this.name} key must be a non-empty string other than "." and without "/", got ${JSON.stringify(key)}`,
      );
    const frameTable = value && typeof value === "object" && "table" in value ? value.table : undefined;
    if (frameTable !== undefined && !(frameTable instanceof Table))
      throw new InvalidArgumentError(`${this.name}[${JSON.stringify(key)}]: a frame's table must be an Arrow Table`);
    const shape =
      value && typeof value === "object" ? (frameTable ? [frameTable.numRows] : (value as { shape?: unknown }).shape) : undefined;
    if (!Array.isArray(shape))
      throw new InvalidArgumentError(`${this.name}[${JSON.stringify(key)}] must be an array, a sparse matrix or a frame`);
    const dims = this.dims();
    const what = `${this.name}[${JSON.stringify(key)}]`;
    if ("table" in value) {
      if (value.table.numCols === 0 && value.index instanceof Vector && value.index.length !== value.table.numRows)
        throw new InvalidArgumentError(`${what}: a frame needs at least one column (an Arrow Table without columns has no rows)`);
      if (!(value.index instanceof Vector) || value.index.length !== value.table.numRows)
        throw new InvalidArgumentError(`${what}: a frame's index must be a vector of one name per row (${value.table.numRows})`);
      checkStorableType(value.index, `${what} index`);
      // anndata refuses a frame whose index is not the axis names (and a file holding one).
      const names = this.axisNames?.();
      if (names && names.length === value.index.length)
        for (let i = 0; i < names.length; i++)
          if (String(value.index.get(i)) !== String(names.get(i)))
            throw new InvalidArgumentError(
              `${what}: a frame's index must be the ${this.name === "obsm" ? "obs" : "var"} names; row ${i} is ${JSON.stringify(String(value.index.get(i)))}, not ${JSON.stringify(String(names.get(i)))}`,
            );
      for (const f of value.table.schema.fields) {
        // Stored as members of the frame's group, next to its _index.
        if (!isMemberName(f.name) || f.name === "_index" || f.name === "__categories")
          throw new InvalidArgumentError(
            `${what}: column name ${JSON.stringify(f.name)} cannot be stored (it must be non-empty, not "." or "_index", without "/" or NUL)`,
          );
        checkStorableType(value.table.getChild(f.name) as Vector, `${what} column ${JSON.stringify(f.name)}`);
      }
    } else if (!["dense", "csr", "csc"].includes(value.kind))
      throw new InvalidArgumentError(`${what}: kind must be "dense", "csr" or "csc", got ${JSON.stringify(value.kind)}`);
    if (shape.length < dims.length || dims.some((d, i) => shape[i] !== d))
      throw new InvalidArgumentError(`${what} has shape ${JSON.stringify(shape)}; its leading dimensions must be ${JSON.stringify(dims)}`);
    let el = value;
    if ("table" in el) {
      // One chunk at offset 0 per column (see compactVector).
      const { table, index } = el;
      const columns = Object.fromEntries(table.schema.fields.map((f) => [f.name, compactVector(table.getChild(f.name) as Vector)]));
      // (A table without columns is kept: rebuilt, it would have no rows.)
      el = { ...el, index: compactVector(index), table: table.numCols ? new Table(columns) : table };
    } else if (el.kind !== "dense") {
      // Any integer typed arrays will do for the structure; stored as the reader gives them.
      const { indptr, indices } = el as { indptr: unknown; indices: unknown };
      if (ArrayBuffer.isView(indptr) && !(indptr instanceof Float64Array) && !(indptr instanceof DataView))
        el = { ...el, indptr: Float64Array.from(indptr as unknown as ArrayLike<number>, Number) };
      if (ArrayBuffer.isView(indices) && !(indices instanceof Int32Array) && !(indices instanceof DataView))
        el = { ...el, indices: Int32Array.from(indices as unknown as ArrayLike<number>, Number) } as SparseMatrix;
    }
    if (!("table" in el)) checkArrays(el, what);
    this.memory.set(key, el);
  }

  /** Lengths of the axes this mapping's elements are aligned to. */
  private dims(): number[] {
    const axis = (sel: Uint32Array | null, n: number) => sel?.length ?? n;
    const info = this.source.info;
    switch (this.name) {
      case "obsm":
        return [axis(this.sel[0], info.n_obs)];
      case "varm":
        return [axis(this.sel[0], info.n_vars)];
      case "obsp":
        return [axis(this.sel[0], info.n_obs), axis(this.sel[1], info.n_obs)];
      case "varp":
        return [axis(this.sel[0], info.n_vars), axis(this.sel[1], info.n_vars)];
      default:
        return [];
    }
  }
  /**
   * A copy that later set() calls on either side do not reach (anndata's
   * `adata.raw = adata` copies varm). File elements are shared, read lazily.
   */
  snapshot(name: string): ElementMapping {
    const copy = new ElementMapping(this.source, this.entries, this.sel, name, this.axisNames);
    for (const [k, el] of this.memory) copy.memory.set(k, el);
    return copy;
  }
  /** In-memory elements, for views and writers. @internal */
  memoryEntries(): [string, Element][] {
    return [...this.memory.entries()];
  }
  /** Encoding and shape of each entry without reading it. */
  describe(key: string): ElementInfo | undefined {
    return this.entries.find(([k]) => k === key)?.[1];
  }

  get(key: string): Promise<Element> {
    if (this.source.closed)
      return Promise.reject(new ClosedError(`the AnnDataOOM for ${this.source.path} is closed`, { path: this.source.path }));
    const mem = this.memory.get(key);
    if (mem) return Promise.resolve(mem);
    const info = this.describe(key);
    if (!info)
      return Promise.reject(new InvalidArgumentError(`${this.name} has no key ${JSON.stringify(key)}`, { path: this.source.path }));
    let p = this.cache.get(key);
    if (!p) {
      p = this.read(info);
      this.cache.set(key, p);
      p.catch(() => this.cache.delete(key));
    }
    return p;
  }

  private async read(info: ElementInfo): Promise<Element> {
    const nat = this.source.native;
    const [rowSel, colSel] = this.sel;
    switch (info.encoding) {
      case "dataframe": {
        const frame = readFrame(this.source, describeFrame(this.source, info.path));
        // A view's frame drops the categories none of its rows has, as anndata's does.
        return rowSel ? frameWithoutUnusedCategories(takeFrame(frame, rowSel)).frame : frame;
      }
      case "array":
      case "csr_matrix":
      case "csc_matrix": {
        if (!rowSel && !colSel) {
          const b = (await nativeAwait(nat.readMatrix(info.path))) as Native.BlockOut;
          if (b.format === "dense") {
            return { kind: "dense", shape: info.shape, dtype: info.dtype ?? b.data.dtype, data: typedArray(b.data) };
          }
          return {
            kind: b.format as "csr" | "csc",
            shape: info.shape as [number, number],
            dtype: b.data.dtype,
            indptr: b.indptr as Float64Array,
            indices: b.indices as Int32Array,
            data: typedArray(b.data),
          };
        }
        const rows = rowSel ?? range(0, info.shape[0]);
        const b = (await nativeAwait(nat.readRows(info.path, rows, colSel ?? undefined))) as Native.BlockOut;
        if (b.format === "dense") {
          const shape = info.shape.length === 1 ? [b.nRows] : [b.nRows, b.nCols, ...info.shape.slice(2)];
          return { kind: "dense", shape, dtype: b.data.dtype, data: typedArray(b.data) };
        }
        return {
          kind: "csr",
          shape: [b.nRows, b.nCols],
          dtype: b.data.dtype,
          indptr: b.indptr as Float64Array,
          indices: b.indices as Int32Array,
          data: typedArray(b.data),
        };
      }
      default:
        return unsupported(info);
    }
  }
}

/** The arrays of an element agree with its shape (write() relies on it). */
function checkArrays(el: DenseArray | SparseMatrix, what: string): void {
  const typed = (x: unknown) => ArrayBuffer.isView(x) && !(x instanceof DataView);
  if (!typed(el.data)) throw new InvalidArgumentError(`${what}: data must be a typed array`);
  if (el.data instanceof BigInt64Array || el.data instanceof BigUint64Array)
    throw new InvalidArgumentError(`${what}: 64-bit integer (BigInt) arrays cannot be stored; use a Float64Array or Int32Array`);
  if (!Array.isArray(el.shape) || !el.shape.every((d) => Number.isSafeInteger(d) && d >= 0))
    throw new InvalidArgumentError(`${what}: shape must be whole numbers ≥ 0, got ${JSON.stringify(el.shape)}`);
  if (el.kind === "dense") {
    const n = el.shape.reduce((a, b) => a * b, 1);
    if (el.data.length !== n)
      throw new InvalidArgumentError(`${what}: shape ${JSON.stringify(el.shape)} needs ${n} values, got ${el.data.length}`);
    return;
  }
  if (!(el.indptr instanceof Float64Array) || !(el.indices instanceof Int32Array))
    throw new InvalidArgumentError(`${what}: indptr must be a Float64Array and indices an Int32Array`);
  const major = el.kind === "csr" ? el.shape[0] : el.shape[1];
  if (el.indptr.length !== major + 1 || el.indices.length !== el.data.length || el.indptr[major] !== el.data.length)
    throw new InvalidArgumentError(
      `${what}: a ${el.kind} matrix of shape ${JSON.stringify(el.shape)} needs ${major + 1} indptr entries ending at the ${el.data.length} stored values`,
    );
  // Gathers and the writer walk indptr and index by indices: a bad entry
  // would read out of bounds or loop, so it is refused here, as scipy's
  // check_format does.
  const ip = el.indptr;
  if (ip[0] !== 0) throw new InvalidArgumentError(`${what}: indptr must start at 0, got ${ip[0]}`);
  for (let i = 0; i < major; i++)
    if (!(ip[i + 1] >= ip[i]) || !Number.isInteger(ip[i + 1]))
      throw new InvalidArgumentError(
        `${what}: indptr must be whole numbers that never decrease; entry ${i + 1} is ${ip[i + 1]} after ${ip[i]}`,
      );
  const minor = el.kind === "csr" ? el.shape[1] : el.shape[0];
  const bad = el.indices.findIndex((j) => j < 0 || j >= minor);
  if (bad >= 0)
    throw new InvalidArgumentError(
      `${what}: index ${el.indices[bad]} at stored value ${bad} is out of range for ${minor} ${el.kind === "csr" ? "columns" : "rows"}`,
    );
}

/** `adata.layers`: lazy backed matrices keyed by name. */
export class Layers {
  /** @internal */
  constructor(
    private readonly source: Source,
    private readonly entries: [string, ElementInfo][],
    private readonly obsSel: Uint32Array | null,
    private readonly varSel: Uint32Array | null,
  ) {}

  /** Layers set in this session: lazy matrices, never copies. */
  private readonly memory = new Map<string, BackedMatrix>();

  keys(): string[] {
    const file = this.entries.map(([k]) => k).filter((k) => !this.memory.has(k));
    return [...file, ...this.memory.keys()];
  }
  /** anndata's repr: "Layers with keys: counts". */
  toString(): string {
    return `Layers with keys: ${this.keys().join(", ")}`;
  }
  [Symbol.for("nodejs.util.inspect.custom")](): string {
    return this.toString();
  }
  has(key: string): boolean {
    return this.memory.has(key) || this.entries.some(([k]) => k === key);
  }
  get size(): number {
    return this.keys().length;
  }
  /**
   * Keep a (lazy) matrix under `key`, e.g. `adata.layers.set("counts", adata.X)`
   * before normalizing: no data is copied, the layer is the same chain.
   */
  set(key: string, m: BackedMatrix): void {
    if (!isMemberName(key))
      throw new InvalidArgumentError(`layers key must be a non-empty string other than "." and without "/", got ${JSON.stringify(key)}`);
    if (!(m instanceof BackedMatrix))
      throw new InvalidArgumentError(`layers.set takes a matrix of this object (e.g. adata.X), got ${String(m)}`);
    // A layer is a lazy chain over this file; write() re-reads it from here.
    if (m.sourceHandle !== this.source) throw new InvalidArgumentError("a layer must come from this object's file (e.g. adata.X)");
    const want = [this.obsSel?.length ?? this.source.info.n_obs, this.varSel?.length ?? this.source.info.n_vars];
    if (m.shape[0] !== want[0] || m.shape[1] !== want[1])
      throw new InvalidArgumentError(`layers[${JSON.stringify(key)}] must be ${want[0]} × ${want[1]}, got ${m.shape[0]} × ${m.shape[1]}`);
    this.memory.set(key, m.withChain(m.chain, `layers/${key}`));
  }
  /** Layers set in this session. @internal */
  memoryEntries(): [string, BackedMatrix][] {
    return [...this.memory.entries()];
  }
  /** The layer as a lazy matrix (no data read). */
  get(key: string): BackedMatrix {
    const mem = this.memory.get(key);
    if (mem) return mem;
    const info = this.entries.find(([k]) => k === key)?.[1];
    if (!info) throw new InvalidArgumentError(`layers has no key ${JSON.stringify(key)}`, { path: this.source.path });
    if (!["array", "csr_matrix", "csc_matrix"].includes(info.encoding)) unsupported(info);
    const meta = nativeMatrixMeta(this.source, info.path);
    return new BackedMatrix(this.source, meta, this.obsSel, this.varSel, `layers/${key}`);
  }
}

/** Rows `idx` of an in-memory element (an obsm/varm value of a view). */
export function takeElementRows(el: Element, idx: Uint32Array): Element {
  if ("table" in el) return frameWithoutUnusedCategories(takeFrame(el, idx)).frame;
  if (el.kind !== "dense") return takeSparseRows(el, idx);
  const width = el.shape.slice(1).reduce((a, b) => a * b, 1);
  const Ctor = el.data.constructor as new (n: number) => TypedArray;
  const data = new Ctor(idx.length * width);
  for (let i = 0; i < idx.length; i++) data.set(el.data.subarray(idx[i] * width, (idx[i] + 1) * width), i * width);
  return { kind: "dense", shape: [idx.length, ...el.shape.slice(1)], dtype: el.dtype, data };
}

/** Rows and columns `idx` of a square in-memory element (an obsp/varp value of a view). */
export function takeSquare(el: Element, idx: Uint32Array): Element {
  if ("table" in el) return frameWithoutUnusedCategories(takeFrame(el, idx)).frame;
  if (el.kind !== "dense") return takeSparseSquare(el, idx);
  const n = el.shape[0];
  const data = new (el.data.constructor as new (n: number) => TypedArray)(idx.length * idx.length);
  for (let a = 0; a < idx.length; a++) for (let b = 0; b < idx.length; b++) data[a * idx.length + b] = el.data[idx[a] * n + idx[b]];
  return { kind: "dense", shape: [idx.length, idx.length], dtype: el.dtype, data };
}

/** Matrix metadata of one element (opens it natively; validates indptr). */
export function nativeMatrixMeta(source: Source, path: string): MatrixMeta {
  return JSON.parse(nativeCall(() => source.native.matrixMeta(path))) as MatrixMeta;
}

/** uns as plain JS values: dicts → objects, arrays → typed arrays or string[], None → null. */
export function readUns(source: Source, entries: [string, ElementInfo][]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, info] of entries) {
    try {
      out[k] = readUnsValue(source, info);
    } catch (e) {
      // One entry this build cannot decode (a complex array, a record array
      // holding a vector per record) must not make all
      // of uns, and every step that touches it, fail: it gets a placeholder.
      if (!(e instanceof UnsupportedEncodingError || e instanceof H5adFormatError)) throw e;
      out[k] = withOrigin({ encoding: info.encoding, path: info.path, note: `not decoded into uns: ${e.message}` }, info.path);
    }
  }
  return out;
}

function readUnsValue(source: Source, info: ElementInfo): unknown {
  const nat = source.native;
  switch (info.encoding) {
    case "dict":
      return readUns(source, info.children ?? []);
    case "null":
      return null;
    case "string":
    case "numeric-scalar": {
      const v = JSON.parse(nativeCall(() => nat.readScalar(info.path))) as unknown;
      if (typeof v === "string" && v.startsWith("__float__:")) return Number(v.slice(10).replace("inf", "Infinity"));
      return v;
    }
    case "string-array": {
      if (info.shape.length > 1) return withOrigin(unsupportedLazy(info), info.path);
      const c = nativeCall(() => nat.readElementColumn(info.path));
      return stringArray(c.strings as Native.StringsOut);
    }
    case "array": {
      const a = nativeCall(() => nat.readArray(info.path));
      const data = typedArray(a.data);
      if (a.data.dtype === "bool") return Array.from(data, (x) => x !== 0);
      // int64 arrives as float64; the mark writes it back as int64, also after an edit in place.
      if ((a.data.dtype === "int64" || a.data.dtype === "uint64") && data instanceof Float64Array) markWideIntegers(data, a.data.dtype);
      return a.shape.length <= 1 ? data : ({ kind: "dense", shape: a.shape, dtype: a.data.dtype, data } satisfies DenseArray);
    }
    case "dataframe":
      return withOrigin(readFrame(source, describeFrame(source, info.path)), info.path);
    case "rec-array": {
      // numpy's record array (scanpy's rank_genes_groups names / scores): an
      // Arrow table with one column per field, in field order.
      const cols: Record<string, Vector> = Object.create(null); // a column may be named "__proto__"
      for (const f of nativeCall(() => nat.readRecords(info.path))) cols[f.name] = columnVector(f.column);
      return withOrigin(tableOf(cols, info.shape[0] ?? 0), info.path);
    }
    case "categorical":
    case "nullable-integer":
    case "nullable-boolean":
    case "nullable-string-array":
      return withOrigin(columnVector(nativeCall(() => nat.readElementColumn(info.path))), info.path);
    default:
      return withOrigin(unsupportedLazy(info), info.path);
  }
}

/** An uns element we do not decode eagerly; reading it says why. */
function unsupportedLazy(info: ElementInfo): { encoding: string; path: string; note: string } {
  return { encoding: info.encoding, path: info.path, note: "not decoded into uns; read it through the element API" };
}
