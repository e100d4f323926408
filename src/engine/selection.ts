/**
 * Index selections along one axis, resolved to source positions. Views
 * compose: selecting S on a view whose positions are P gives P[S], so a
 * chain of subsets is always one Uint32Array over the file. Requested order
 * is kept (unlike anndata, which returns parent order for unsorted ints).
 */
import { InvalidArgumentError, shown } from "./errors";

/** A Python-style slice; negative bounds count from the end. */
export interface Slice {
  start?: number;
  stop?: number;
  step?: number;
}

/** Build a slice, e.g. `slice(0, 100)` or `slice(null, null, 2)`. */
export function slice(start?: number | null, stop?: number | null, step?: number | null): Slice {
  return { start: start ?? undefined, stop: stop ?? undefined, step: step ?? undefined };
}

/**
 * What `subset` accepts on an axis: a slice, a boolean mask (boolean[] or
 * Uint8Array, one entry per element), integer positions (negative count
 * from the end), names, or a single position or name.
 */
export type Indexer = Slice | boolean[] | Uint8Array | number[] | Int32Array | Uint32Array | Float64Array | string[] | number | string;

function isSlice(x: unknown): x is Slice {
  return (
    typeof x === "object" &&
    x !== null &&
    Object.getPrototypeOf(x) === Object.prototype &&
    Object.keys(x).every((k) => k === "start" || k === "stop" || k === "step")
  );
}

function resolveSlice(s: Slice, n: number): Uint32Array {
  const step = s.step ?? 1;
  if (step === 0 || !Number.isInteger(step)) throw new InvalidArgumentError(`slice step must be a non-zero integer, got ${step}`);
  const norm = (v: number | undefined, dflt: number, lo: number, hi: number) => {
    if (v === undefined) return dflt;
    if (!Number.isInteger(v)) throw new InvalidArgumentError(`slice bounds must be integers, got ${v}`);
    const x = v < 0 ? v + n : v;
    return Math.min(Math.max(x, lo), hi);
  };
  const out: number[] = [];
  if (step > 0) {
    const a = norm(s.start, 0, 0, n);
    const b = norm(s.stop, n, 0, n);
    for (let i = a; i < b; i += step) out.push(i);
  } else {
    const a = norm(s.start, n - 1, -1, n - 1);
    const b = norm(s.stop, -1, -1, n - 1);
    for (let i = a; i > b; i += step) out.push(i);
  }
  return Uint32Array.from(out);
}

/**
 * Resolve an indexer against an axis of length `n` whose names are looked
 * up through `position` (undefined for an unknown name).
 */
export function resolve(sel: Indexer, n: number, axis: "obs" | "var", position: (name: string) => number | undefined): Uint32Array {
  if (typeof sel === "number" || typeof sel === "string") return resolve([sel] as number[] | string[], n, axis, position);
  if (isSlice(sel)) return resolveSlice(sel, n);
  if (!Array.isArray(sel) && !ArrayBuffer.isView(sel))
    throw new InvalidArgumentError(
      `${axis}: expected a slice, a boolean mask, integer positions, names, or one position or name; got ${describe(sel)}`,
    );
  const arr = sel as ArrayLike<unknown>;
  if (arr.length === 0) return new Uint32Array(0);
  const first = arr[0];
  if (typeof first === "boolean" || sel instanceof Uint8Array) {
    if (arr.length !== n) throw new InvalidArgumentError(`boolean mask has length ${arr.length} but ${axis} has ${n}`);
    const out: number[] = [];
    const typed = sel instanceof Uint8Array;
    for (let i = 0; i < n; i++) {
      // As anndata, which raises on a None in a mask: a missing value is
      // neither in nor out, and [true, 1, 0] is not a mask to numpy.
      if (!typed && typeof arr[i] !== "boolean")
        throw new InvalidArgumentError(`${axis}: boolean mask holds ${String(arr[i])} at position ${i}; a mask is true/false only`);
      if (arr[i]) out.push(i);
    }
    return Uint32Array.from(out);
  }
  if (typeof first === "string") {
    const out = new Uint32Array(arr.length);
    for (let i = 0; i < arr.length; i++) {
      const name = arr[i];
      const pos = typeof name === "string" ? position(name) : undefined;
      if (pos === undefined) throw new InvalidArgumentError(`${axis} name ${JSON.stringify(name)} not found`);
      out[i] = pos;
    }
    return out;
  }
  const out = new Uint32Array(arr.length);
  for (let i = 0; i < arr.length; i++) {
    const v = arr[i] as number;
    if (typeof v !== "number" || !Number.isInteger(v))
      throw new InvalidArgumentError(`${axis} index ${shown(v)} is not an integer (a JS number)`);
    const x = v < 0 ? v + n : v;
    if (x < 0 || x >= n) throw new InvalidArgumentError(`${axis} index ${v} out of range for length ${n}`);
    out[i] = x;
  }
  return out;
}

function describe(x: unknown): string {
  if (x === null || typeof x !== "object") return String(x);
  const name = (x as object).constructor?.name;
  return name && name !== "Object" ? `a ${name}` : JSON.stringify(x);
}

/** Compose a parent selection (null = identity) with a child one. */
export function compose(parent: Uint32Array | null, child: Uint32Array): Uint32Array {
  if (!parent) return child;
  const out = new Uint32Array(child.length);
  for (let i = 0; i < child.length; i++) out[i] = parent[child[i]];
  return out;
}

/** 0..n-1 (used when a native call needs explicit rows). */
export function range(a: number, b: number): Uint32Array {
  const out = new Uint32Array(Math.max(0, b - a));
  for (let i = 0; i < out.length; i++) out[i] = a + i;
  return out;
}
