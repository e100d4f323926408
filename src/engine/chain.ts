/**
 * The lazy transform chain of a matrix, as immutable data: each step is a
 * node that the native executor evaluates per row inside a pass. Vectors
 * (size factors, means, stds) travel next to a JSON descriptor, so a chain
 * is serializable and the same plan can run per shard elsewhere.
 *
 *   source (X or a layer) → [obs/var subset] → normalize → log1p → scale
 */

import { InvalidArgumentError } from "./errors";

/** One node of a chain. */
export type Step =
  | {
      op: "normalize";
      /** Multiply each row by target / (row total); a row whose total is 0 is left as it is. */
      target: number;
      /** Per-row totals; computed on the fly from the row when absent. */
      sizeFactors?: Float64Array;
      /** Genes left out of the row totals (exclude_highly_expressed), over `basis`. */
      exclude?: Uint8Array;
      /**
       * The file-level genes the row totals run over (null: all genes): a
       * later gene subset still normalizes by the whole row.
       */
      basis?: Uint32Array | null;
      /** Record of how the target was chosen, for explain(). */
      note?: string;
    }
  | {
      op: "log1p";
      base?: number;
      /**
       * Computed in float64 where scanpy's values are float64 (a float64
       * source, or counts not normalized first); otherwise in float32, as
       * scanpy's float32 data gets it.
       */
      float64?: boolean;
    }
  | { op: "scale"; mean: Float64Array; std: Float64Array; maxValue?: number; zeroCenter: boolean };

/** Native form of a chain: JSON with vector indices, plus the vectors. */
export interface NativePlan {
  json: string;
  vectors: Float64Array[];
}

export class Chain {
  constructor(readonly steps: readonly Step[] = []) {}

  get isEmpty(): boolean {
    return this.steps.length === 0;
  }

  has(op: Step["op"]): boolean {
    return this.steps.some((s) => s.op === op);
  }

  append(step: Step): Chain {
    if (this.has("scale"))
      throw new InvalidArgumentError(`scale must be the last step: ${step.op} cannot follow it (apply ${step.op} before pp.scale)`);
    return new Chain([...this.steps, step]);
  }

  /** The chain for a subset: per-row and per-gene vectors follow the selection. */
  subset(obsIdx: Uint32Array | null, varIdx: Uint32Array | null): Chain {
    const take = <T extends Float64Array | Uint8Array>(v: T | undefined, idx: Uint32Array | null): T | undefined => {
      if (!v || !idx) return v;
      const out = new (v.constructor as new (n: number) => T)(idx.length);
      for (let i = 0; i < idx.length; i++) out[i] = v[idx[i]];
      return out;
    };
    return new Chain(
      this.steps.map((s): Step => {
        if (s.op === "normalize") return { ...s, sizeFactors: take(s.sizeFactors, obsIdx) };
        if (s.op === "scale") return { ...s, mean: take(s.mean, varIdx) as Float64Array, std: take(s.std, varIdx) as Float64Array };
        return s;
      }),
    );
  }

  /** Encode for the native executor; `extra` vectors are appended after the chain's. */
  /** The normalize step that needs whole rows over its basis, if any. */
  rowBasis(): { basis: Uint32Array | null } | null {
    const s = this.steps.find((x) => x.op === "normalize" && !x.sizeFactors);
    return s && s.op === "normalize" ? { basis: s.basis ?? null } : null;
  }

  toNative(extra: Float64Array[] = [], output?: Float64Array): NativePlan & { extraBase: number } {
    const vectors: Float64Array[] = [];
    const add = (v: Float64Array | Uint8Array) => vectors.push(v instanceof Float64Array ? v : Float64Array.from(v)) - 1;
    const steps = this.steps.map((s) => {
      switch (s.op) {
        case "normalize":
          return {
            op: "normalize",
            target: s.target,
            size_factors: s.sizeFactors ? add(s.sizeFactors) : null,
            // With stored size factors the mask has done its job; it is in
            // the normalize basis's columns, which a later gene subset no
            // longer reads.
            exclude: s.exclude && !s.sizeFactors ? add(s.exclude) : null,
          };
        case "log1p":
          return { op: "log1p", base: s.base ?? null, float64: s.float64 ?? false };
        case "scale":
          return { op: "scale", mean: add(s.mean), std: add(s.std), max_value: s.maxValue ?? null, zero_center: s.zeroCenter };
      }
    });
    const out = output ? add(output) : null;
    const extraBase = vectors.length;
    vectors.push(...extra);
    return { json: JSON.stringify({ steps, output: out }), vectors, extraBase };
  }

  /**
   * A key that differs whenever two chains can give different values: every
   * parameter, and each vector by identity (steps are immutable, so one
   * vector object always holds the same values). describe() is for people
   * and leaves the vectors out: two normalize steps over different genes
   * read the same there.
   */
  identity(): string {
    return this.steps
      .map((s) => {
        switch (s.op) {
          case "normalize":
            return `normalize(${s.target},${vectorId(s.sizeFactors)},${vectorId(s.exclude)},${vectorId(s.basis)})`;
          case "log1p":
            return `log1p(${s.base ?? "e"},${s.float64 ? "f64" : "f32"})`;
          case "scale":
            return `scale(${vectorId(s.mean)},${vectorId(s.std)},${s.maxValue ?? "-"},${s.zeroCenter})`;
        }
      })
      .join(";");
  }

  /** One line per node, for explain(). */
  describe(): string[] {
    return this.steps.map((s) => {
      switch (s.op) {
        case "normalize":
          return `normalize: × ${s.target} / row total${s.exclude ? " (excluding highly expressed genes)" : ""}${s.sizeFactors ? " (stored size factors)" : " (computed per row, in the pass)"}`;
        case "log1p":
          return `log1p${s.base ? ` (base ${s.base})` : ""}${s.float64 ? " in float64" : ""}`;
        case "scale":
          return `scale: (x − mean) / std${s.zeroCenter ? "" : " without centring"}${s.maxValue !== undefined ? `, clipped at ${s.maxValue}` : ""} (implicit; never densified)`;
      }
    });
  }
}

/** Ids of the vectors that chains hold, for Chain.identity(). */
const vectorIds = new WeakMap<object, number>();
let nextVectorId = 1;

function vectorId(v: object | null | undefined): string {
  if (!v) return "-";
  let id = vectorIds.get(v);
  if (id === undefined) {
    id = nextVectorId++;
    vectorIds.set(v, id);
  }
  return `#${id}`;
}

/** Apply a chain to one CSR/dense row in JS (chunk reads of a transformed X). */
export function applyRow(steps: readonly Step[], row: number, cols: ArrayLike<number>, vals: Float64Array): void {
  for (const s of steps) {
    if (s.op === "normalize") {
      let t = 0;
      if (s.sizeFactors) t = s.sizeFactors[row];
      else for (let i = 0; i < vals.length; i++) if (!s.exclude?.[cols[i]]) t += vals[i];
      // A row with no counts over the genes used stays as it is (scanpy divides only by non-zero totals).
      const f = t === 0 ? 1 : s.target / t;
      for (let i = 0; i < vals.length; i++) vals[i] *= f;
    } else if (s.op === "log1p") {
      log1pMemo.apply(vals, s.base ? 1 / Math.log(s.base) : 1, s.float64 ?? false);
    }
  }
}

/** log1p as scanpy computes it on float32 data (`float64` false) or on float64 data, like the native executor. */
function log1pOf(v: number, inv: number, float64: boolean): number {
  return float64 ? Math.log1p(v) * inv : Math.fround(Math.log1p(Math.fround(v))) * inv;
}

/**
 * log1pOf through a small direct-mapped cache: a row of normalized counts
 * repeats few values (every 1 becomes the same number), and Math.log1p was
 * most of a chunk's time. A hit returns what computing would: same input,
 * same inv, same precision.
 */
class Log1pMemo {
  private readonly keys = new Float64Array(LOG1P_SLOTS).fill(Number.NaN);
  private readonly results = new Float64Array(LOG1P_SLOTS);
  private inv = 1;
  private float64 = false;

  apply(vals: Float64Array, inv: number, float64: boolean): void {
    if (inv !== this.inv || float64 !== this.float64) {
      this.keys.fill(Number.NaN); // NaN never equals a key: all slots empty
      this.inv = inv;
      this.float64 = float64;
    }
    const { keys, results } = this;
    for (let i = 0; i < vals.length; i++) {
      const v = vals[i];
      const slot = (v * 2654435761) & (LOG1P_SLOTS - 1);
      if (keys[slot] === v) {
        vals[i] = results[slot];
      } else {
        const r = log1pOf(v, inv, float64);
        keys[slot] = v;
        results[slot] = r;
        vals[i] = r;
      }
    }
  }
}

const LOG1P_SLOTS = 256;
const log1pMemo = new Log1pMemo();

/**
 * Apply a chain to one gene's values across cells (column `j` of the view;
 * `vals[i]` is row i). Per element this is exactly applyRow's arithmetic,
 * so a column read through the gene index equals the rows of a pass.
 * Normalize needs stored size factors (a column has no row totals).
 */
export function applyColumn(steps: readonly Step[], j: number, vals: Float64Array): void {
  for (const s of steps) {
    if (s.op === "normalize") {
      const sf = s.sizeFactors;
      if (!sf) throw new Error("normalize without size factors cannot be applied to a column");
      for (let i = 0; i < vals.length; i++) {
        const t = sf[i];
        vals[i] *= t === 0 ? 1 : s.target / t;
      }
    } else if (s.op === "log1p") {
      const inv = s.base ? 1 / Math.log(s.base) : 1;
      const float64 = s.float64 ?? false;
      for (let i = 0; i < vals.length; i++) vals[i] = log1pOf(vals[i], inv, float64);
    } else {
      for (let i = 0; i < vals.length; i++) vals[i] = scaleValue(s, j, vals[i]);
    }
  }
}

/** Scaled value of x for gene j (scale step). */
export function scaleValue(s: Extract<Step, { op: "scale" }>, j: number, x: number): number {
  const sd = s.std[j] === 0 ? 1 : s.std[j];
  const z = s.zeroCenter ? (x - s.mean[j]) / sd : x / sd;
  if (s.maxValue === undefined) return z;
  return s.zeroCenter ? Math.min(Math.max(z, -s.maxValue), s.maxValue) : Math.min(z, s.maxValue);
}
