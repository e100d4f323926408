/**
 * Native outputs to JS values: typed arrays (no per-element copy) and
 * Arrow vectors built directly over the native buffers.
 */
import { Bool, type Data, DataType, Dictionary, Float64, Int32, makeData, makeVector, Utf8, Vector, vectorFromArray } from "apache-arrow";
import type { Native } from "./native";

export type TypedArray = Float32Array | Float64Array | Int8Array | Int16Array | Int32Array | Uint8Array | Uint16Array | Uint32Array;

/** A numpy dtype name as stored on disk ("float32", "int64", "bool", ...). */
export type DType = string;

export function typedArray(t: Native.TypedOut): TypedArray {
  const a = t.f32 ?? t.f64 ?? t.i8 ?? t.i16 ?? t.i32 ?? t.u8 ?? t.u16 ?? t.u32;
  if (!a) throw new Error(`native returned no data for dtype ${t.dtype}`);
  return a;
}

/** Arrow validity bitmap (1 = valid) from a native mask (1 = missing). */
export function validityFromMask(mask: Uint8Array | null | undefined): Uint8Array | undefined {
  if (!mask?.some((m) => m !== 0)) return undefined;
  const bits = new Uint8Array(Math.ceil(mask.length / 8));
  for (let i = 0; i < mask.length; i++) if (!mask[i]) bits[i >> 3] |= 1 << (i & 7);
  return bits;
}

function nullCount(mask: Uint8Array | null | undefined): number {
  if (!mask) return 0;
  let n = 0;
  for (let i = 0; i < mask.length; i++) n += mask[i] ? 1 : 0;
  return n;
}

export function utf8Vector(s: Native.StringsOut, mask?: Uint8Array | null): Vector<Utf8> {
  const length = s.offsets.length - 1;
  const nullBitmap = validityFromMask(mask);
  return makeVector(
    makeData({ type: new Utf8(), length, valueOffsets: s.offsets, data: s.data, nullBitmap, nullCount: nullBitmap ? nullCount(mask) : 0 }),
  );
}

/** A plain JS string array from Arrow-layout strings (small data only). */
export function stringArray(s: Native.StringsOut): string[] {
  const dec = new TextDecoder();
  const out: string[] = new Array(s.offsets.length - 1);
  for (let i = 0; i < out.length; i++) out[i] = dec.decode(s.data.subarray(s.offsets[i], s.offsets[i + 1]));
  return out;
}

/**
 * Columns whose stored dtype Arrow does not show: 64-bit integers arrive as
 * float64 (plain JS numbers, exact up to 2^53), and the repr should still
 * say int64. Views of such a column carry the mark (see frame.takeVector).
 */
// Keyed by the column's Data: a Table hands out a new Vector per getChild.
const storedDtypes = new WeakMap<object, DType>();

/** The file's dtype of a column read as another Arrow type, if any. */
export function storedDtype(v: Vector): DType | undefined {
  return v.data.length === 1 ? markOf(v.data[0]) : undefined;
}

// Also keyed by the values' buffer, which Arrow's slice() keeps: a slice is
// a new Data over the same values.
function markOf(d: Data): DType | undefined {
  return storedDtypes.get(d) ?? (ArrayBuffer.isView(d.values) ? storedDtypes.get(d.values.buffer) : undefined);
}

/** Mark `v` as holding values of the stored dtype `dtype`; returns `v`. */
export function markStoredDtype(v: Vector, dtype: DType | undefined): Vector {
  if (dtype && v.data.length === 1) {
    const d = v.data[0];
    storedDtypes.set(d, dtype);
    if (ArrayBuffer.isView(d.values)) storedDtypes.set(d.values.buffer, dtype);
  }
  return v;
}

/**
 * A Float64Array of whole numbers that the file stores (or scanpy would
 * store) as int64 / uint64: uns arrays read from an int64 dataset, and
 * counts such as tl.paga's group sizes. The writer restores the dtype
 * while the values are still whole numbers, so an edit in place keeps it.
 */
export function markWideIntegers(values: Float64Array, dtype: "int64" | "uint64"): Float64Array {
  storedDtypes.set(values, dtype);
  return values;
}

/** The int64 / uint64 dtype `a` was marked with, if its values still fit it. */
export function wideIntegerDtype(a: unknown): "int64" | "uint64" | undefined {
  if (!(a instanceof Float64Array)) return undefined;
  const mark = storedDtypes.get(a);
  if (mark !== "int64" && mark !== "uint64") return undefined;
  for (let i = 0; i < a.length; i++) {
    const x = a[i];
    if (!Number.isSafeInteger(x) || (mark === "uint64" && x < 0)) return undefined;
  }
  return mark;
}

/**
 * Exact float64 values written (and shown) as `dtype`: sums scanpy stores
 * in the data's dtype (float32, or int64 for integer counts) are kept
 * exact in memory and take scanpy's dtype in the file.
 */
export function storedAs(values: Float64Array, dtype: DType): Vector {
  // The mark is also keyed by the buffer: a shared one (results of one pass) is copied.
  const own = values.byteOffset === 0 && values.byteLength === values.buffer.byteLength ? values : values.slice();
  return markStoredDtype(makeVector(own), dtype === "float64" ? undefined : dtype);
}

/**
 * `v` as one chunk whose buffers start at its first value. Arrow's
 * `slice()` keeps an offset but has already cut the value and offset
 * buffers (not the validity bitmap, nor bit-packed booleans), and `concat()`
 * makes several chunks; the code that reads buffers directly (gathers,
 * category pruning, the writer) takes neither. Every column a user hands in
 * goes through here. The stored dtype (int64 read as float64) carries over
 * when the chunks agree on it; chunks with different dictionaries are merged,
 * categories in order of first appearance.
 */
export function compactVector(v: Vector): Vector {
  if (v.data.length === 1 && v.data[0].offset === 0) {
    const dict = v.data[0].dictionary as Vector | undefined;
    if (!dict || (dict.data.length === 1 && dict.data[0].offset === 0)) return v;
  }
  const marks = new Set(v.data.map(markOf));
  const mark = marks.size === 1 ? [...marks][0] : undefined;
  const validity = (): { nullBitmap?: Uint8Array; nullCount: number } => {
    if (!v.nullCount) return { nullCount: 0 };
    const bits = new Uint8Array(Math.ceil(v.length / 8));
    for (let i = 0; i < v.length; i++) if (v.isValid(i)) bits[i >> 3] |= 1 << (i & 7);
    return { nullBitmap: bits, nullCount: v.nullCount };
  };
  const type = v.type as DataType;
  if (DataType.isDictionary(type)) {
    // One category list: the first chunk's, then any new ones of later chunks.
    const categories: Vector[] = [];
    const position = new Map<unknown, number>();
    const remaps = v.data.map((d) => {
      const dict = compactVector(d.dictionary as Vector);
      return Int32Array.from({ length: dict.length }, (_, k) => {
        const c = dict.get(k);
        const key = typeof c === "bigint" ? c.toString() : c;
        let at = position.get(key);
        if (at === undefined) {
          at = position.size;
          position.set(key, at);
          categories.push(dict.slice(k, k + 1));
        }
        return at;
      });
    });
    const first = compactVector(v.data[0].dictionary as Vector);
    const sameDictionary = remaps.every((r) => r.length === first.length && r.every((x, k) => x === k));
    const dictionary = sameDictionary ? first : compactVector(new Vector(categories.flatMap((c) => c.data)));
    const codes = new Int32Array(v.length);
    let at = 0;
    v.data.forEach((d, c) => {
      const raw = d.values as ArrayLike<number | bigint>;
      for (let i = 0; i < d.length; i++, at++) codes[at] = d.getValid(i) ? remaps[c][Number(raw[i])] : 0;
    });
    const dictType = new Dictionary(dictionary.type as DataType, new Int32(), undefined, (type as Dictionary).isOrdered);
    return makeVector(makeData({ type: dictType, length: v.length, data: codes, dictionary, ...validity() }));
  }
  if (DataType.isUtf8(type)) return markStoredDtype(vectorFromArray(Array.from(v) as (string | null)[], new Utf8()), mark);
  if (DataType.isBool(type)) return vectorFromArray(Array.from(v) as (boolean | null)[], new Bool());
  // Numbers: toArray() concatenates the chunks' (already offset) values.
  const data = v.toArray() as TypedArray;
  return markStoredDtype(makeVector(makeData({ type, length: v.length, data, ...validity() } as never)), mark);
}

/** A column's kind as a short label: "category(12)", "float32", "int64", "str"; "?" marks nulls. */
export function vectorKind(col: Vector): string {
  if (DataType.isDictionary(col.type)) return `category(${col.data[0]?.dictionary?.length ?? 0})`;
  const s = String(col.type);
  const kind = storedDtype(col) ?? (s === "Utf8" ? "str" : s.toLowerCase());
  return col.nullCount > 0 ? `${kind}?` : kind;
}

const widened = (t: Native.TypedOut): DType | undefined => (t.dtype === "int64" || t.dtype === "uint64" ? t.dtype : undefined);

/** The Arrow vector for a decoded column (categoricals as dictionaries). */
export function columnVector(c: Native.ColumnOut): Vector {
  switch (c.kind) {
    case "numeric": {
      const v = c.values as Native.TypedOut;
      if (v.dtype === "bool")
        return vectorFromArray(
          Array.from(v.u8 as Uint8Array, (x) => x !== 0),
          new Bool(),
        );
      return markStoredDtype(makeVector(typedArray(v)), widened(v));
    }
    case "strings":
      return utf8Vector(c.strings as Native.StringsOut, c.mask);
    case "nullable": {
      const v = c.values as Native.TypedOut;
      const mask = c.mask as Uint8Array;
      if (c.boolean)
        return vectorFromArray(
          Array.from(typedArray(v), (x, i) => (mask[i] ? null : x !== 0)),
          new Bool(),
        );
      const data = typedArray(v);
      const nullBitmap = validityFromMask(mask);
      const vec = makeVector(data);
      return markStoredDtype(
        makeVector(
          makeData({
            type: vec.type as DataType,
            length: data.length,
            data,
            nullBitmap,
            nullCount: nullBitmap ? nullCount(mask) : 0,
          } as never),
        ),
        widened(v),
      );
    }
    case "categorical": {
      const codes = c.codes as Int32Array;
      const cats = c.categories as Native.CategoriesOut;
      const values = cats.values as Native.TypedOut | undefined;
      // Boolean categories are booleans, not 0/1 (`=== true` filters must work).
      const dictionary: Vector = cats.strings
        ? utf8Vector(cats.strings)
        : values?.dtype === "bool"
          ? vectorFromArray(
              Array.from(values.u8 as Uint8Array, (x) => x !== 0),
              new Bool(),
            )
          : markStoredDtype(makeVector(typedArray(values as Native.TypedOut)), widened(values as Native.TypedOut));
      const missing = new Uint8Array(codes.length);
      for (let i = 0; i < codes.length; i++) missing[i] = codes[i] < 0 ? 1 : 0;
      const nullBitmap = validityFromMask(missing);
      const safeCodes = nullBitmap ? codes.map((x) => Math.max(x, 0)) : codes;
      const type = new Dictionary(dictionary.type as DataType, new Int32(), undefined, c.ordered ?? false);
      return makeVector(
        makeData({ type, length: codes.length, data: safeCodes, nullBitmap, nullCount: nullBitmap ? nullCount(missing) : 0, dictionary }),
      );
    }
    default:
      throw new Error(`unknown column kind ${c.kind}`);
  }
}

export const float64 = new Float64();
