/**
 * Dataframes (obs, var, raw.var, dataframes in obsm/uns) as Arrow tables:
 * categoricals become dictionary vectors, nullable columns carry validity.
 * `takeRows` gathers rows for views, keeping dictionaries shared.
 */
import { Bool, type Data, DataType, makeData, makeVector, Precision, Table, Utf8, Vector, vectorFromArray } from "apache-arrow";
import { InvalidArgumentError, nativeCall } from "./errors";
import { isWellFormed, loneSurrogate } from "./names";
import type { Native } from "./native";
import type { DataFrameInfo, Source } from "./source";

/** Layout of a dataframe element (obs/var from the open-time description). */
export function describeFrame(source: Source, p: string): DataFrameInfo {
  const info = source.info;
  if (p === info.obs.path) return info.obs;
  if (p === info.var.path) return info.var;
  return JSON.parse(nativeCall(() => source.native.describeFrame(p))) as DataFrameInfo;
}

import { withTableRepr } from "./frame-repr";
import { columnVector, compactVector, markStoredDtype, storedDtype, utf8Vector } from "./typed";

export interface Frame {
  index: Vector;
  table: Table;
}

export function readFrame(source: Source, info: DataFrameInfo): Frame {
  const nat = source.native;
  const index = utf8Vector(nativeCall(() => nat.readIndex(info.path)));
  const cols: Record<string, Vector> = Object.create(null); // a column may be named "__proto__"
  for (const c of info.columns) cols[c.name] = columnVector(nativeCall(() => nat.readColumn(info.path, c.name)) as Native.ColumnOut);
  return { index, table: withTableRepr(tableOf(cols, index.length), index) };
}

export function tableOf(cols: Record<string, Vector>, nRows: number): Table {
  const names = Object.keys(cols);
  if (names.length === 0) {
    // Arrow cannot size an empty table by itself; keep the row count.
    return new Table({ __rows__: makeVector(new Uint8Array(nRows)) }).select([]);
  }
  return new Table(cols);
}

/** Gather rows `idx` of a vector, keeping dictionaries, validity and the stored dtype. */
export function takeVector(v: Vector, idx: Uint32Array): Vector {
  return markStoredDtype(gatherVector(v, idx), storedDtype(v));
}

/** The validity of rows `idx` of `d`, read from its bitmap directly (Vector.isValid per row is slow). */
function gatherValidity(d: Data, idx: Uint32Array): { nullBitmap?: Uint8Array; nullCount: number } {
  const bitmap = d.nullCount > 0 ? d.nullBitmap : undefined;
  if (!bitmap) return { nullCount: 0 };
  const valid = new Uint8Array(Math.ceil(idx.length / 8));
  let nulls = 0;
  for (let i = 0; i < idx.length; i++) {
    // slice() cuts the values but not the bitmap, which keeps the offset.
    const bit = d.offset + idx[i];
    if ((bitmap[bit >> 3] >> (bit & 7)) & 1) valid[i >> 3] |= 1 << (i & 7);
    else nulls++;
  }
  return nulls ? { nullBitmap: valid, nullCount: nulls } : { nullCount: 0 };
}

function gatherVector(v: Vector, idx: Uint32Array): Vector {
  const type = v.type as DataType & { dictionary?: DataType; indices?: DataType };
  if (v.data.length === 1 && type.typeId === -1 /* Dictionary */) {
    const d = v.data[0];
    // Codes keep their own width (a column set from JS may use Int8/Int16 indices).
    const codes = d.values as Int32Array;
    const out = new (codes.constructor as Int32ArrayConstructor)(idx.length);
    const valid = new Uint8Array(Math.ceil(idx.length / 8));
    let nulls = 0;
    // The null bitmap read directly: Vector.isValid per row cost ~80 ns
    // (a third of subsetting a million cells' categorical column).
    const bitmap = d.nullCount > 0 ? d.nullBitmap : undefined;
    for (let i = 0; i < idx.length; i++) {
      // slice() cuts the codes but not the bitmap, which keeps the offset.
      const j = idx[i];
      const bit = d.offset + j;
      out[i] = codes[j];
      if (!bitmap || (bitmap[bit >> 3] >> (bit & 7)) & 1) valid[i >> 3] |= 1 << (i & 7);
      else nulls++;
    }
    return makeVector(
      makeData({
        type: type as never,
        length: idx.length,
        data: out,
        nullBitmap: nulls ? valid : undefined,
        nullCount: nulls,
        dictionary: d.dictionary,
      } as never),
    );
  }
  // Strings (e.g. the obs index): copy byte ranges, never JS strings.
  if (type.typeId === 5 /* Utf8 */ && v.data.length === 1) {
    const d = v.data[0];
    const validity = gatherValidity(d, idx);
    const offs = d.valueOffsets as Int32Array;
    const bytes = d.values as Uint8Array;
    const outOffs = new Int32Array(idx.length + 1);
    let total = 0;
    for (let i = 0; i < idx.length; i++) {
      const j = idx[i];
      total += offs[j + 1] - offs[j];
      outOffs[i + 1] = total;
    }
    const outBytes = new Uint8Array(total);
    for (let i = 0; i < idx.length; i++) {
      const j = idx[i];
      let from = offs[j];
      const end = offs[j + 1];
      let to = outOffs[i];
      // Names are short: a byte loop beats a subarray object per row (~3×).
      if (end - from > 64) outBytes.set(bytes.subarray(from, end), to);
      else while (from < end) outBytes[to++] = bytes[from++];
    }
    return makeVector(makeData({ type: new Utf8(), length: idx.length, valueOffsets: outOffs, data: outBytes, ...validity }));
  }
  // Plain numeric columns: gather straight into a typed array (no boxed
  // values; obs of a million cells stays cheap to subset).
  const d0 = v.data[0];
  const typed = d0?.values as unknown;
  const numeric = type.typeId === 2 /* Int */ || type.typeId === 3; /* Float */
  if (
    numeric &&
    v.data.length === 1 &&
    ArrayBuffer.isView(typed) &&
    !(typed instanceof DataView) &&
    !(typed instanceof BigInt64Array) &&
    !(typed instanceof BigUint64Array)
  ) {
    const src = typed as Float64Array;
    const out = new (src.constructor as new (n: number) => Float64Array)(idx.length);
    for (let i = 0; i < idx.length; i++) out[i] = src[idx[i]];
    return makeVector(makeData({ type: type as never, length: idx.length, data: out, ...gatherValidity(d0, idx) } as never));
  }
  // Booleans are bit-packed, from the Data's offset (slice() does not cut them).
  if (type.typeId === 6 /* Bool */ && v.data.length === 1) {
    const bits = d0.values as Uint8Array;
    const out = new Uint8Array(Math.ceil(idx.length / 8));
    for (let i = 0; i < idx.length; i++) {
      const bit = d0.offset + idx[i];
      if ((bits[bit >> 3] >> (bit & 7)) & 1) out[i >> 3] |= 1 << (i & 7);
    }
    return makeVector(makeData({ type: new Bool(), length: idx.length, data: out, ...gatherValidity(d0, idx) }));
  }
  const values: unknown[] = new Array(idx.length);
  for (let i = 0; i < idx.length; i++) values[i] = v.get(idx[i]);
  return vectorFromArray(values as never[], v.type as never);
}

/** What a new column may be given as. */
export type ColumnValues =
  | Vector
  | Float64Array
  | Float32Array
  | Int32Array
  | Uint32Array
  | BigInt64Array
  | BigUint64Array
  | (boolean | null)[]
  | (string | null)[]
  | (number | null)[];

/** A frame with `name` added (or replaced, keeping its position). */
export function withColumn(f: Frame, name: string, values: ColumnValues, n: number, axis: string): Frame {
  const vec: Vector = toVector(values, `${axis} column ${JSON.stringify(name)}`);
  if (vec.length !== n) throw new InvalidArgumentError(`${axis} column ${JSON.stringify(name)} has ${vec.length} values, expected ${n}`);
  const cols: Record<string, Vector> = Object.create(null); // a column may be named "__proto__"
  for (const field of f.table.schema.fields) cols[field.name] = field.name === name ? vec : (f.table.getChild(field.name) as Vector);
  cols[name] = vec;
  return { index: f.index, table: withTableRepr(tableOf(cols, n), f.index) };
}

/**
 * A column from JS values. Arrays take the type of their non-missing
 * entries (null / undefined are missing: NaN for numbers, null for
 * booleans and strings, as pandas reads them); mixed types are refused.
 * 64-bit integer arrays become float64 marked with their dtype, as the reader
 * gives int64 columns, and are written back as 64-bit integers.
 */
function toVector(values: ColumnValues, what: string): Vector {
  if (values instanceof BigInt64Array || values instanceof BigUint64Array) {
    const limit = BigInt(Number.MAX_SAFE_INTEGER);
    const i = values.findIndex((x) => x > limit || x < -limit);
    if (i >= 0) throw new InvalidArgumentError(`${what}: value ${values[i]} at ${i} is beyond 2^53, which a JS number cannot hold exactly`);
    const dtype = values instanceof BigInt64Array ? "int64" : "uint64";
    return markStoredDtype(makeVector(Float64Array.from(values, Number)), dtype);
  }
  if (ArrayBuffer.isView(values)) {
    if (values instanceof DataView) throw new InvalidArgumentError(`${what}: a DataView is not a column`);
    return makeVector(values as Float64Array);
  }
  if (Array.isArray(values)) {
    const types = new Set(values.filter((x) => x !== null && x !== undefined).map((x) => typeof x));
    if (types.size > 1) throw new InvalidArgumentError(`${what} mixes ${[...types].join(" and ")} values`);
    const type = [...types][0] ?? "number";
    if (type === "boolean") return vectorFromArray(values.map((x) => x ?? null) as (boolean | null)[], new Bool());
    if (type === "string") return utf8FromStrings(values as (string | null | undefined)[], what);
    if (type !== "number") throw new InvalidArgumentError(`${what}: ${type} values are not supported (numbers, booleans or strings)`);
    return makeVector(Float64Array.from(values as (number | null)[], (x) => x ?? Number.NaN));
  }
  if (values instanceof Vector) {
    checkStorableType(values, what);
    const v = compactVector(values);
    const dict = v.data[0]?.dictionary;
    // vectorFromArray(["a", "b"]) without a type is itself a dictionary: as
    // categories it would be written as NaN, which anndata cannot read.
    if (dict && DataType.isDictionary(dict.type))
      throw new InvalidArgumentError(
        `${what}: its categories are themselves categorical; build them as strings (vectorFromArray(values, new Utf8()))`,
      );
    if (dict) checkCategories(v, dict, what);
    return v;
  }
  throw new InvalidArgumentError(`${what} must be an array, a typed array or an Arrow vector`);
}

/**
 * A Utf8 vector of JS strings (null / undefined missing), encoded into one
 * buffer. vectorFromArray took 3.3 s and left ~400 MB behind for a million
 * strings; this takes a tenth of that.
 */
function utf8FromStrings(values: (string | null | undefined)[], what: string): Vector {
  const n = values.length;
  const offsets = new Int32Array(n + 1);
  const valid = new Uint8Array(Math.ceil(n / 8));
  let nulls = 0;
  let bytes = new Uint8Array(Math.max(64, n * 8));
  let at = 0;
  const encoder = new TextEncoder();
  for (let i = 0; i < n; i++) {
    const s = values[i];
    if (s === null || s === undefined) nulls++;
    else {
      if (!isWellFormed(s)) throw new InvalidArgumentError(`${what}: value ${i} ${loneSurrogate}`);
      valid[i >> 3] |= 1 << (i & 7);
      // At most 3 bytes per UTF-16 unit.
      if (at + 3 * s.length > bytes.length) {
        const grown = new Uint8Array(Math.max(2 * bytes.length, at + 3 * s.length));
        grown.set(bytes.subarray(0, at));
        bytes = grown;
      }
      at += encoder.encodeInto(s, bytes.subarray(at)).written;
      if (at > 0x7fffffff) throw new InvalidArgumentError("the strings of a column hold more than 2 GB");
    }
    offsets[i + 1] = at;
  }
  return makeVector(
    makeData({
      type: new Utf8(),
      length: n,
      valueOffsets: offsets,
      data: bytes.slice(0, at),
      nullBitmap: nulls ? valid : undefined,
      nullCount: nulls,
    }),
  );
}

/**
 * The Arrow types write() stores as anndata columns: numbers (integers up
 * to 32 bits: a JS number cannot hold every 64-bit one; floats of 32 or 64
 * bits), booleans, strings, and dictionaries (categoricals) of those.
 */
export function checkStorableType(v: Vector, what: string): void {
  const t = v.type;
  const ok = (type: DataType): boolean =>
    DataType.isUtf8(type) ||
    DataType.isBool(type) ||
    (DataType.isInt(type) && type.bitWidth <= 32) ||
    (DataType.isFloat(type) && type.precision !== Precision.HALF);
  if (DataType.isDictionary(t) ? ok(t.dictionary) : ok(t)) return;
  throw new InvalidArgumentError(
    `${what}: an Arrow ${String(t)} column cannot be stored; use numbers (up to 32-bit integers, or float32/float64), booleans, strings or a dictionary of those`,
  );
}

/**
 * What pandas requires of a categorical, checked before it is kept (the
 * written file would not read back in anndata otherwise): unique, non-null
 * categories (NaN neither) and codes within them.
 */
function checkCategories(column: Vector, dict: Vector, what: string): void {
  const seen = new Set<unknown>();
  for (let i = 0; i < dict.length; i++) {
    const c = dict.get(i);
    if (c === null || (typeof c === "number" && Number.isNaN(c)))
      throw new InvalidArgumentError(
        `${what}: category ${i} is missing (${String(c)}); categories must be values, a missing cell has no code`,
      );
    const key = typeof c === "bigint" ? c.toString() : c;
    if (seen.has(key))
      throw new InvalidArgumentError(`${what}: category ${JSON.stringify(String(c))} appears twice; categories must be unique`);
    seen.add(key);
  }
  for (const data of column.data) {
    const codes = data.values as ArrayLike<number | bigint>;
    for (let i = 0; i < data.length; i++) {
      if (!data.getValid(i)) continue;
      const code = Number(codes[i]);
      if (code < 0 || code >= dict.length)
        throw new InvalidArgumentError(`${what}: code ${code} is out of range for ${dict.length} categories`);
    }
  }
}

/**
 * A categorical column without the categories none of its rows uses, as
 * anndata's views give them (`remove_unused_categories`); `kept` lists the
 * old positions of the remaining categories. Undefined when all are used
 * or the column is not categorical.
 */
export function pruneCategories(v: Vector): { column: Vector; kept: number[] } | undefined {
  if (v.data.length !== 1 || v.type.typeId !== -1 /* Dictionary */) return undefined;
  const d = v.data[0];
  const dict = d.dictionary as Vector | undefined;
  if (!dict) return undefined;
  const codes = d.values as Int32Array;
  // Without nulls, no per-row validity lookups (a million rows per column).
  const valid = v.nullCount === 0 ? null : (i: number) => v.isValid(i);
  const used = new Uint8Array(dict.length);
  for (let i = 0; i < v.length; i++) if (!valid || valid(i)) used[codes[i]] = 1;
  const kept: number[] = [];
  const remap = new Int32Array(dict.length).fill(-1);
  for (let c = 0; c < dict.length; c++) if (used[c]) remap[c] = kept.push(c) - 1;
  if (kept.length === dict.length) return undefined;
  const out = new (codes.constructor as Int32ArrayConstructor)(v.length);
  const bitmap = valid ? new Uint8Array(Math.ceil(v.length / 8)) : undefined;
  for (let i = 0; i < v.length; i++)
    if (!valid) out[i] = remap[codes[i]];
    else if (valid(i)) {
      out[i] = remap[codes[i]];
      (bitmap as Uint8Array)[i >> 3] |= 1 << (i & 7);
    }
  const column = makeVector(
    makeData({
      type: v.type as never,
      length: v.length,
      data: out,
      nullBitmap: bitmap,
      nullCount: v.nullCount,
      dictionary: gatherVector(dict, Uint32Array.from(kept)),
    } as never),
  );
  return { column, kept };
}

/** A frame's categorical columns without their unused categories, and the kept category positions per column. */
export function frameWithoutUnusedCategories(f: Frame): { frame: Frame; kept: Map<string, number[]> } {
  const kept = new Map<string, number[]>();
  const cols: Record<string, Vector> = Object.create(null); // a column may be named "__proto__"
  for (const field of f.table.schema.fields) {
    const col = f.table.getChild(field.name) as Vector;
    const pruned = pruneCategories(col);
    cols[field.name] = pruned ? markStoredDtype(pruned.column, storedDtype(col)) : col;
    if (pruned) kept.set(field.name, pruned.kept);
  }
  if (!kept.size) return { frame: f, kept };
  return { frame: { index: f.index, table: withTableRepr(tableOf(cols, f.index.length), f.index) }, kept };
}

export function takeFrame(f: Frame, idx: Uint32Array): Frame {
  const cols: Record<string, Vector> = Object.create(null); // a column may be named "__proto__"
  for (const field of f.table.schema.fields) cols[field.name] = takeVector(f.table.getChild(field.name) as Vector, idx);
  const index = takeVector(f.index, idx);
  return { index, table: withTableRepr(tableOf(cols, idx.length), index) };
}
