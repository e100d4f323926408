/**
 * What write() adds from the session: obs/var columns, obsm/varm/obsp/varp
 * elements and new uns entries, converted to the native writer's inputs.
 * Anything it cannot write (an uns value of mixed types) is reported so
 * write() can refuse to drop it.
 */
import type { Table, Vector } from "apache-arrow";
import type { Element } from "./elements";
import { InvalidArgumentError } from "./errors";
import { isMemberName, isWellFormed, loneSurrogate } from "./names";
import type { Native } from "./native";
import { natsortCompare } from "./natsort";
import { markWideIntegers, storedDtype, type TypedArray, typedArray, wideIntegerDtype } from "./typed";
import { unsOrigin } from "./uns-origin";

const DTYPE: [new (...a: never[]) => TypedArray, string, keyof Native.TypedOut][] = [
  [Float64Array, "float64", "f64"],
  [Float32Array, "float32", "f32"],
  [Int32Array, "int32", "i32"],
  [Int16Array, "int16", "i16"],
  [Int8Array, "int8", "i8"],
  [Uint32Array, "uint32", "u32"],
  [Uint16Array, "uint16", "u16"],
  [Uint8Array, "uint8", "u8"],
];

/** A typed array as the native writer's TypedOut (copied, contiguous). */
export function typedIn(a: TypedArray, dtype?: string): Native.TypedOut {
  for (const [Ctor, name, field] of DTYPE) {
    if (a instanceof Ctor) {
      return { dtype: dtype ?? name, [field]: a.slice() } as Native.TypedOut;
    }
  }
  const kind = (a as object).constructor?.name ?? typeof a;
  throw new InvalidArgumentError(
    `a ${kind} cannot be stored; use a Float64Array, Float32Array, Int32Array, Int16Array, Int8Array, Uint32Array, Uint16Array or Uint8Array`,
  );
}

/** Numeric categories in their own dtype (int64 ones, read as float64, as int64). */
function categoryValuesIn(dict: Vector): Native.TypedOut {
  const arr = dict.toArray() as unknown;
  const wide = storedDtype(dict);
  if (arr instanceof Float64Array && (wide === "int64" || wide === "uint64") && holdsWholeNumbers(arr, undefined))
    return typedIn(arr, wide);
  if (DTYPE.some(([Ctor]) => arr instanceof Ctor)) return typedIn(arr as TypedArray);
  return typedIn(Float64Array.from(arr as ArrayLike<number>, Number));
}

function utf8In(v: Vector): Native.StringsOut {
  const d = v.data[0];
  // Arrow's slice() has already cut valueOffsets to this chunk's rows.
  const offs = (d.valueOffsets as Int32Array).subarray(0, d.length + 1);
  const base = offs[0];
  const bytes = (d.values as Uint8Array).subarray(base, offs[offs.length - 1]);
  return { offsets: Int32Array.from(offs, (o) => o - base), data: bytes.slice() };
}

function maskOf(v: Vector): Uint8Array | undefined {
  if (!v.nullCount) return undefined;
  return Uint8Array.from({ length: v.length }, (_, i) => (v.isValid(i) ? 0 : 1));
}

/** An Arrow column as the native writer's column (same shape as ColumnOut). */
export function columnIn(v: Vector): Native.ColumnOut {
  const type = v.type as { typeId: number; isOrdered?: boolean };
  const single = v.data.length === 1 ? v : (v.constructor as { from?: unknown }) && v;
  if (type.typeId === -1) {
    const d = v.data[0];
    const raw = d.values as ArrayLike<number>;
    const codes = Int32Array.from({ length: v.length }, (_, i) => (v.isValid(i) ? raw[i] : -1));
    const dict = d.dictionary as Vector;
    const dtype = dict.type as { typeId: number };
    const categories =
      dtype.typeId === 5
        ? { strings: utf8In(dict) }
        : dtype.typeId === 6
          ? {
              values: typedIn(
                Uint8Array.from({ length: dict.length }, (_, i) => (dict.get(i) ? 1 : 0)),
                "bool",
              ),
            }
          : { values: categoryValuesIn(dict) };
    return { kind: "categorical", codes, categories, ordered: Boolean(type.isOrdered) };
  }
  if (type.typeId === 5 && single.data.length === 1) return { kind: "strings", strings: utf8In(v), mask: maskOf(v) };
  if (type.typeId === 5) {
    const strs = Array.from({ length: v.length }, (_, i) => String(v.get(i) ?? ""));
    return { kind: "strings", strings: stringsIn(strs), mask: maskOf(v) };
  }
  if (type.typeId === 6) {
    const values = Uint8Array.from({ length: v.length }, (_, i) => (v.get(i) ? 1 : 0));
    const mask = maskOf(v);
    return mask
      ? { kind: "nullable", values: typedIn(values, "bool"), mask, boolean: true }
      : { kind: "numeric", values: typedIn(values, "bool") };
  }
  // numbers: floats keep NaN for missing; integers with nulls become nullable-integer
  const arr = v.toArray() as TypedArray;
  const mask = maskOf(v);
  const wide = storedDtype(v);
  if ((wide === "int64" || wide === "uint64") && arr instanceof Float64Array && holdsWholeNumbers(arr, mask)) {
    // A 64-bit integer column read as float64 (or set from a BigInt64Array) is written back as one.
    const values = typedIn(mask ? arr.map((x, i) => (mask[i] ? 0 : x)) : arr, wide);
    return mask ? { kind: "nullable", values, mask, boolean: false } : { kind: "numeric", values };
  }
  if (wide === "float32" && arr instanceof Float64Array) {
    // Exact float64 sums scanpy stores as float32 (QC totals of float32 X).
    const vals = mask ? arr.map((x, i) => (mask[i] ? Number.NaN : x)) : arr;
    return { kind: "numeric", values: typedIn(Float32Array.from(vals)) };
  }
  if (mask && !(arr instanceof Float32Array || arr instanceof Float64Array)) {
    return { kind: "nullable", values: typedIn(arr), mask, boolean: false };
  }
  const vals = mask ? Float64Array.from({ length: v.length }, (_, i) => (v.isValid(i) ? Number(v.get(i)) : Number.NaN)) : arr;
  return { kind: "numeric", values: typedIn(vals) };
}

/** JS strings as the writer's UTF-8 offsets and bytes. */
function stringsIn(strs: string[]): Native.StringsOut {
  const enc = new TextEncoder();
  const parts = strs.map((s) => enc.encode(s));
  const offsets = new Int32Array(parts.length + 1);
  parts.forEach((p, i) => {
    offsets[i + 1] = offsets[i] + p.length;
  });
  const data = new Uint8Array(offsets[parts.length]);
  parts.forEach((p, i) => data.set(p, offsets[i]));
  return { offsets, data };
}

/**
 * An obs/var column as anndata's write_h5ad stores it: it first runs
 * `strings_to_categoricals`, so a string column with fewer distinct values
 * than rows (missing ones aside) becomes a categorical, its categories
 * natsorted as anndata sorts them, missing values code −1.
 */
export function obsVarColumnIn(v: Vector): Native.ColumnOut {
  return categoricalIn(v) ?? columnIn(v);
}

/** A string column as the categorical write_h5ad makes of it, or undefined when it stays strings. */
export function categoricalIn(v: Vector): Native.ColumnOut | undefined {
  const at = stringsToCategorize(v);
  if (!at) return undefined;
  const categories = [...at.keys()].sort(natsortCompare);
  categories.forEach((c, k) => at.set(c, k));
  const codes = Int32Array.from({ length: v.length }, (_, i) => {
    const s = v.get(i);
    return s === null || s === undefined ? -1 : (at.get(s) as number);
  });
  return { kind: "categorical", codes, categories: { strings: stringsIn(categories) }, ordered: false };
}

/**
 * The distinct strings of a string column that anndata's write_h5ad turns
 * into a categorical (fewer distinct non-missing values than rows), or
 * undefined for a column it keeps.
 */
function stringsToCategorize(v: Vector): Map<string, number> | undefined {
  if ((v.type as { typeId: number }).typeId !== 5) return undefined;
  const at = new Map<string, number>();
  for (let i = 0; i < v.length; i++) {
    const s = v.get(i);
    if (s !== null && s !== undefined && !at.has(s)) at.set(s, 0);
  }
  return at.size < v.length ? at : undefined;
}

/** True if every value not masked out is a whole number (what an int64 column read as float64 holds). */
function holdsWholeNumbers(a: Float64Array, mask: Uint8Array | undefined): boolean {
  for (let i = 0; i < a.length; i++) if (!mask?.[i] && !Number.isInteger(a[i])) return false;
  return true;
}

/** A dataframe (an obsm/varm frame, raw's var) as the writer's input: `_index`, then the columns in order. */
export function frameIn(index: Vector, table: Table, indexName = "_index"): Native.FrameIn {
  return {
    indexName,
    index: columnIn(index),
    columns: table.schema.fields.map((f) => ({ name: f.name, column: columnIn(table.getChild(f.name) as Vector) })),
  };
}

/**
 * An in-memory obsm / varm / obsp / varp element as the writer takes it, in
 * the encoding anndata gives it: a dense array, a CSR or CSC matrix, or a
 * dataframe.
 */
export function elementIn(name: string, el: Element): Native.NamedElementIn {
  if ("table" in el) return { name, encoding: "dataframe", shape: [el.table.numRows], frame: frameIn(el.index, el.table) };
  if (el.kind === "dense") {
    // An int64 element arrives as float64 (read from a file, dtype "int64"): written as int64 again.
    const wide =
      (el.dtype === "int64" || el.dtype === "uint64") && el.data instanceof Float64Array && holdsWholeNumbers(el.data, undefined);
    const dtype = el.dtype === "bool" ? "bool" : wide ? el.dtype : undefined;
    return { name, encoding: "array", shape: el.shape, data: typedIn(el.data, dtype) };
  }
  // float32 values of a float64 element (kNN distances) are widened as written.
  const data = el.dtype === "float64" && el.data instanceof Float32Array ? Float64Array.from(el.data) : el.data;
  return { name, encoding: `${el.kind}_matrix`, shape: el.shape, indptr: el.indptr, indices: el.indices, data: typedIn(data) };
}

/** An n-d array value in uns ({kind: "dense", shape, data}), e.g. uns.paga.connectivities. */
function isDenseValue(v: unknown): v is { kind: "dense"; shape: number[]; dtype?: string; data: TypedArray } {
  const o = v as { kind?: unknown; shape?: unknown; data?: unknown } | null;
  return !!o && typeof o === "object" && o.kind === "dense" && Array.isArray(o.shape) && ArrayBuffer.isView(o.data);
}

/** A CSR matrix value in uns ({kind: "csr", shape, indptr, indices, data}), e.g. uns.paga.connectivities as scanpy stores it. */
function isCsrValue(
  v: unknown,
): v is { kind: "csr"; shape: [number, number]; indptr: ArrayLike<number>; indices: ArrayLike<number>; data: TypedArray } {
  const o = v as { kind?: unknown; shape?: unknown; data?: unknown; indices?: unknown; indptr?: unknown } | null;
  return (
    !!o &&
    typeof o === "object" &&
    o.kind === "csr" &&
    Array.isArray(o.shape) &&
    o.shape.length === 2 &&
    ArrayBuffer.isView(o.data) &&
    ArrayBuffer.isView(o.indices) &&
    ArrayBuffer.isView(o.indptr)
  );
}

/** New uns entries as the writer's JSON tree plus vectors; unwritable keys are returned. */
export function unsIn(
  entries: [string, unknown][],
  removed: string[] = [],
  /**
   * The file's uns as read, and how values are compared: a dict entry that
   * is in the file is written child by child, and children equal to the
   * file's are kept as stored (their dtype, and what this build cannot
   * decode), not rewritten from their JS values.
   */
  file?: { values: Record<string, unknown>; same: (a: unknown, b: unknown) => boolean },
): { json: string; vectors: Native.TypedOut[]; skipped: string[] } {
  const vectors: Native.TypedOut[] = [];
  const skipped: string[] = [];
  const open = new Set<unknown>();
  const isDict = (v: unknown): v is Record<string, unknown> =>
    !!v && typeof v === "object" && Object.getPrototypeOf(v) === Object.prototype;
  const node = (v: unknown, key: string, stored?: unknown): unknown => {
    if (v === null || v === undefined) return { t: "null" };
    // A value read from the file that has no JS form to rebuild it from.
    const origin = typeof v === "object" ? unsOrigin.get(v) : undefined;
    if (origin) return { t: "copy", from: origin };
    // JSON has no Infinity or NaN (JSON.stringify makes them null): send
    // those as strings, which the writer parses back.
    // Whole numbers beyond 2^53 (1e20) are floats, as in Python; int64 could not hold them all.
    if (typeof v === "number") return Number.isSafeInteger(v) ? { t: "int", v } : { t: "num", v: Number.isFinite(v) ? v : String(v) };
    if (typeof v === "boolean") return { t: "bool", v };
    if (typeof v === "string") {
      if (!isWellFormed(v)) throw new InvalidArgumentError(`uns ${key}: the string ${loneSurrogate}`);
      return { t: "str", v };
    }
    if (ArrayBuffer.isView(v) && !(v instanceof DataView) && !(v instanceof BigInt64Array) && !(v instanceof BigUint64Array)) {
      vectors.push(typedIn(v as TypedArray, wideIntegerDtype(v)));
      return { t: "arr", i: vectors.length - 1, shape: [(v as TypedArray).length] };
    }
    if (isDenseValue(v)) {
      const n = v.shape.reduce((a, b) => a * b, 1);
      if (!v.shape.every((d) => Number.isSafeInteger(d) && d >= 0) || n !== v.data.length)
        throw new InvalidArgumentError(`uns ${key}: shape ${JSON.stringify(v.shape)} does not fit its ${v.data.length} values`);
      // A dense value read from an int64 dataset says so in its dtype (and its data carries the mark).
      const declared = v.dtype === "int64" || v.dtype === "uint64" ? v.dtype : undefined;
      const wide =
        wideIntegerDtype(v.data) ??
        (declared && v.data instanceof Float64Array ? wideIntegerDtype(markWideIntegers(v.data.slice(), declared)) : undefined);
      vectors.push(typedIn(v.data, wide));
      return { t: "arr", i: vectors.length - 1, shape: v.shape };
    }
    if (isCsrValue(v)) {
      // data, indices, indptr: three consecutive vectors
      vectors.push(typedIn(v.data), typedIn(Int32Array.from(v.indices)), typedIn(Float64Array.from(v.indptr)));
      return { t: "csr", i: vectors.length - 3, shape: v.shape };
    }
    if (Array.isArray(v)) {
      // An empty list is float64 in numpy (np.array([])), as anndata writes it.
      if (v.length === 0) {
        vectors.push(typedIn(new Float64Array(0)));
        return { t: "arr", i: vectors.length - 1, shape: [0] };
      }
      if (v.every((x) => typeof x === "string")) {
        const bad = v.findIndex((x) => !isWellFormed(x as string));
        if (bad >= 0) throw new InvalidArgumentError(`uns ${key}: string ${bad} ${loneSurrogate}`);
        return { t: "strs", v };
      }
      if (v.every((x) => typeof x === "boolean")) {
        vectors.push(
          typedIn(
            Uint8Array.from(v, (x) => (x ? 1 : 0)),
            "bool",
          ),
        );
        return { t: "arr", i: vectors.length - 1, shape: [v.length] };
      }
      if (v.every((x) => typeof x === "number")) {
        vectors.push(typedIn(Float64Array.from(v as number[])));
        return { t: "arr", i: vectors.length - 1, shape: [v.length] };
      }
    }
    if (v && typeof v === "object" && Object.getPrototypeOf(v) === Object.prototype) {
      // HDF5 group names: no "/" (it would nest) and not empty; no cycles.
      if (open.has(v)) throw new InvalidArgumentError(`uns ${key} contains itself; write() cannot store a cycle`);
      if (open.size >= 128) throw new InvalidArgumentError(`uns ${key} nests dicts more than 128 levels deep`);
      open.add(v);
      const items: Record<string, unknown> = {};
      const inFile = file && isDict(stored) ? stored : undefined;
      for (const [k, x] of Object.entries(v)) {
        checkKey(k, `${key}.${k}`);
        if (inFile && Object.hasOwn(inFile, k) && file?.same(x, inFile[k])) {
          items[k] = { t: "keep" };
          continue;
        }
        const n = node(x, `${key}.${k}`, inFile?.[k]);
        if (n) items[k] = n;
      }
      if (inFile) for (const k of Object.keys(inFile)) if (!Object.hasOwn(v, k)) items[k] = { t: "del" };
      open.delete(v);
      return inFile ? { t: "dict", items, merge: true } : { t: "dict", items };
    }
    // Reported as unsaved; written as "leave out", so that with skipUnsaved
    // the file's older value under this key is not kept in its place.
    skipped.push(key);
    return { t: "del" };
  };
  const checkKey = (k: string, where: string) => {
    if (!isMemberName(k))
      throw new InvalidArgumentError(`uns key ${JSON.stringify(where)}: keys must be non-empty, not ".", and without "/"`);
  };
  const items: Record<string, unknown> = {};
  for (const [k, v] of entries) {
    checkKey(k, k);
    const n = node(v, k, file?.values[k]);
    if (n) items[k] = n;
  }
  // Keys of the file's uns deleted in this session: not copied.
  for (const k of removed) items[k] = { t: "del" };
  return { json: JSON.stringify({ t: "dict", items }), vectors, skipped };
}

/**
 * A categorical column without the categories none of its rows use, as
 * anndata stores a view (`remove_unused_categories`), and the positions of
 * the kept categories (to filter `<column>_colors` alike); undefined when
 * every category is used or the column is not categorical.
 */
export function withoutUnusedCategories(c: Native.ColumnOut): { column: Native.ColumnOut; kept: number[] } | undefined {
  const { codes, categories } = c;
  if (c.kind !== "categorical" || !codes || !categories) return undefined;
  const n = categoryCount(c);
  const used = new Uint8Array(n);
  for (const code of codes) if (code >= 0) used[code] = 1;
  const kept: number[] = [];
  const remap = new Int32Array(n).fill(-1);
  for (let i = 0; i < n; i++) if (used[i]) remap[i] = kept.push(i) - 1;
  if (kept.length === n) return undefined;
  let pruned: Native.CategoriesOut;
  if (categories.strings) {
    const { offsets, data } = categories.strings;
    const outOffsets = new Int32Array(kept.length + 1);
    kept.forEach((k, i) => {
      outOffsets[i + 1] = outOffsets[i] + offsets[k + 1] - offsets[k];
    });
    const outData = new Uint8Array(outOffsets[kept.length]);
    kept.forEach((k, i) => outData.set(data.subarray(offsets[k], offsets[k + 1]), outOffsets[i]));
    pruned = { strings: { offsets: outOffsets, data: outData } };
  } else {
    const values = typedArray(categories.values as Native.TypedOut);
    const out = new (values.constructor as new (n: number) => TypedArray)(kept.length);
    kept.forEach((k, i) => {
      out[i] = values[k];
    });
    pruned = { values: typedIn(out, categories.values?.dtype) };
  }
  const newCodes = codes.map((x) => (x < 0 ? -1 : remap[x]));
  return { column: { ...c, codes: newCodes, categories: pruned }, kept };
}

/** Number of categories of a categorical column (0 for other kinds). */
export function categoryCount(c: Native.ColumnOut): number {
  const cats = c.categories;
  if (cats?.strings) return cats.strings.offsets.length - 1;
  return cats?.values ? typedArray(cats.values).length : 0;
}
