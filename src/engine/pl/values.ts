/**
 * What a plot key means: an obs column (categorical, bool, string or
 * numeric) or a gene (read with `obsVector`, so a pass with progress and
 * cancellation), with scanpy's lookup rules and typed errors naming the key.
 */
import type { Vector } from "apache-arrow";
import type { AnnDataOOM } from "../anndata";
import type { BackedMatrix } from "../backed";
import { CancelledError, InvalidArgumentError } from "../errors";
import { natsortedCategories } from "../natsort";
import { JsTask, type PassOptions } from "../pass";

export interface Categorical {
  kind: "categorical";
  /** Category index per cell, −1 for missing. */
  codes: Int32Array;
  categories: string[];
}

export interface Continuous {
  kind: "continuous";
  /** NaN for missing. */
  values: Float64Array;
  /** The stored element type ("float32", "float64", "int32", "gene", …): histograms follow numpy's dtype rules. */
  dtype: string;
}

export type KeyValues = Categorical | Continuous;

/** Where gene values come from (scanpy's `use_raw` / `layer`). */
export interface GeneSource extends PassOptions {
  /** Read genes from `adata.raw` (scanpy's default when raw exists and no layer is given). */
  useRaw?: boolean;
  layer?: string;
  /**
   * Read genes through the gene-major sidecar index (docs/gene-index.md).
   * "auto" (default): build it on first use for elements of at least
   * GENE_INDEX_MIN_BYTES on disk (then a gene is a read of its own bytes),
   * else use an existing one or take one pass; true / false: always / only if it exists.
   */
  geneIndex?: boolean | "auto";
}

/** Below this size on disk a pass over the element is cheaper than building its gene index. */
export const GENE_INDEX_MIN_BYTES = 64 * 2 ** 20;

function wantsIndex(m: BackedMatrix, how: boolean | "auto" | undefined): boolean {
  if (how === true || how === false) return how;
  return m.bytesOnDisk >= GENE_INDEX_MIN_BYTES;
}

const DICTIONARY = -1;
const BOOL = 6;
const UTF8 = 5;
const LARGE_UTF8 = 20;
const INT = 2;
const FLOAT = 3;

function typeOf(col: Vector): { typeId: number; bitWidth?: number; precision?: number; isSigned?: boolean } {
  return col.type as unknown as { typeId: number; bitWidth?: number; precision?: number; isSigned?: boolean };
}

/** An obs column as categorical or continuous; strings become categories in sorted order (scanpy's strings_to_categoricals). */
export function obsColumn(col: Vector): KeyValues {
  const t = typeOf(col);
  const n = col.length;
  if (t.typeId === DICTIONARY) {
    const dict = col.data[0]?.dictionary as Vector | undefined;
    const categories = dict ? Array.from({ length: dict.length }, (_, i) => String(dict.get(i))) : [];
    const codes = new Int32Array(n);
    let off = 0;
    for (const chunk of col.data) {
      const raw = chunk.values as ArrayLike<number>;
      for (let i = 0; i < chunk.length; i++) codes[off + i] = chunk.getValid(i) ? Number(raw[i]) : -1;
      off += chunk.length;
    }
    return { kind: "categorical", codes, categories };
  }
  if (t.typeId === BOOL || t.typeId === UTF8 || t.typeId === LARGE_UTF8) {
    const labels: (string | null)[] = new Array(n);
    for (let i = 0; i < n; i++) {
      const v = col.get(i);
      labels[i] = v === null || v === undefined ? null : t.typeId === BOOL ? (v ? "True" : "False") : String(v);
    }
    const categories = natsortedCategories(labels);
    const at = new Map(categories.map((c, i) => [c, i]));
    return { kind: "categorical", codes: Int32Array.from(labels, (v) => (v === null ? -1 : (at.get(v) as number))), categories };
  }
  if (t.typeId === INT || t.typeId === FLOAT) {
    const values = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const v = col.get(i);
      values[i] = v === null || v === undefined ? Number.NaN : Number(v);
    }
    const dtype =
      t.typeId === FLOAT
        ? t.precision === 1
          ? "float32"
          : t.precision === 0
            ? "float16"
            : "float64"
        : `${t.isSigned === false ? "uint" : "int"}${t.bitWidth}`;
    return { kind: "continuous", values, dtype };
  }
  throw new InvalidArgumentError(`obs column has a type plots cannot use (${String(col.type)})`);
}

const nameMaps = new WeakMap<Vector, Map<string, number>>();

/** Index of a gene in X's var_names (or raw's), or undefined; one Map per names vector. */
function geneIndex(names: Vector, gene: string): number | undefined {
  let m = nameMaps.get(names);
  if (!m) {
    m = new Map();
    // A name several genes share maps to −1: which one was meant is unknown.
    for (let i = 0; i < names.length; i++) {
      const s = String(names.get(i));
      m.set(s, m.has(s) ? -1 : i);
    }
    nameMaps.set(names, m);
  }
  return m.get(gene);
}

function duplicateGene(what: string, gene: string, where: string): InvalidArgumentError {
  return new InvalidArgumentError(
    `${what} ${JSON.stringify(gene)} names several genes (${where} are not unique); give the genes unique names first (anndata's var_names_make_unique)`,
  );
}

/** scanpy's default for `use_raw`: raw when present and no layer was asked for. */
export function resolveUseRaw(adata: AnnDataOOM, src: GeneSource): boolean {
  if (src.useRaw && src.layer) throw new InvalidArgumentError("useRaw and layer cannot both be given");
  if (src.useRaw && !adata.raw) throw new InvalidArgumentError("useRaw: this AnnData has no raw");
  return src.useRaw ?? (src.layer === undefined && adata.raw !== null && adata.raw.X !== null);
}

/** The matrix genes come from (X, a layer or raw.X) and a gene's column in it (view-relative), with errors naming the key. */
function geneSource(adata: AnnDataOOM, gene: string, src: GeneSource, what: string): { m: BackedMatrix; j: number } {
  if (resolveUseRaw(adata, src)) {
    const raw = adata.raw;
    const j = raw ? geneIndex(raw.varNames, gene) : undefined;
    if (!raw?.X || j === undefined)
      throw new InvalidArgumentError(`${what} ${JSON.stringify(gene)} is not a gene of raw (var_names of adata.raw)`);
    if (j < 0) throw duplicateGene(what, gene, "raw var_names");
    return { m: raw.X, j };
  }
  const j = geneIndex(adata.varNames, gene);
  if (j === undefined) throw new InvalidArgumentError(`${what} ${JSON.stringify(gene)} is neither an obs column nor a var name`);
  if (j < 0) throw duplicateGene(what, gene, "var_names");
  return { m: src.layer ? adata.layers.get(src.layer) : adata.X, j };
}

/**
 * Columns of a lazily transformed matrix (e.g. normalize → log1p → scale),
 * with the chain applied: ONE streaming pass over row chunks for all the
 * columns (obsVector reads stored values only). Progress and Cancel as a
 * JsTask over the chunks.
 */
export async function columnsThroughChain(m: BackedMatrix, cols: number[], label: string, opts: PassOptions = {}): Promise<Float64Array[]> {
  const [n, width] = m.shape;
  const slot = new Int32Array(width).fill(-1);
  cols.forEach((j, k) => {
    if (slot[j] < 0) slot[j] = k;
  });
  const out = cols.map(() => new Float64Array(n));
  const size = m.defaultChunkSize();
  const task = new JsTask(label, Math.max(1, Math.ceil(n / size)), n, opts);
  let done = 0;
  try {
    for await (const { start, chunk } of m.chunked(size, { signal: opts.signal })) {
      const [r] = chunk.shape;
      if (chunk.format === "dense") {
        for (let i = 0; i < r; i++) for (let k = 0; k < cols.length; k++) out[k][start + i] = Number(chunk.data[i * width + cols[k]]);
      } else {
        for (let i = 0; i < r; i++) {
          for (let p = chunk.indptr[i]; p < chunk.indptr[i + 1]; p++) {
            const k = slot[chunk.indices[p]];
            if (k >= 0) out[k][start + i] += Number(chunk.data[p]);
          }
        }
      }
      await task.tick(++done);
    }
  } catch (e) {
    if (e instanceof Error && e.name === "AbortError") {
      task.failed(done);
      throw new CancelledError(`${label} was cancelled`);
    }
    if (!(e instanceof CancelledError)) task.failed(done);
    throw e;
  }
  task.done();
  // A column listed twice: copy the first one's values.
  cols.forEach((j, k) => {
    if (slot[j] !== k) out[k] = out[slot[j]];
  });
  return out;
}

/**
 * Columns `cols` of `m` over its view's cells, chain applied: through the
 * gene index when it exists or `how` asks for one (built on first use);
 * else, for a transformed matrix, ONE pass over its rows (a column alone
 * cannot be normalized without the rows' totals); else one gather pass.
 */
async function readColumns(
  m: BackedMatrix,
  cols: number[],
  how: boolean | "auto" | undefined,
  label: string,
  pass: PassOptions,
): Promise<Float64Array[]> {
  const index = wantsIndex(m, how);
  if (!index && m.isTransformed && m.format !== "csc" && !m.geneIndexInfo().built) return columnsThroughChain(m, cols, label, pass);
  return m.geneValues(cols, { ...pass, index });
}

/**
 * A gene's values over the view's cells, from X, a layer or raw, with the
 * matrix's transform chain applied (BackedMatrix.geneValues: the gene index
 * when there is one — built here per `geneIndex` — else one pass).
 */
export async function geneValues(adata: AnnDataOOM, gene: string, src: GeneSource, what = "key"): Promise<Float64Array> {
  const { useRaw: _u, layer: _l, geneIndex: how, ...pass } = src;
  // A small pass may finish before it sees the abort; an aborted signal never starts one.
  if (pass.signal?.aborted) throw new CancelledError(`reading ${JSON.stringify(gene)} was cancelled`);
  const { m, j } = geneSource(adata, gene, src, what);
  const [v] = await readColumns(m, [j], how, `${JSON.stringify(gene)} through the transform chain`, pass);
  return v;
}

/** An obs column or a gene; a key that is both is refused, as anndata's obs_vector does. */
export async function keyValues(adata: AnnDataOOM, key: string, src: GeneSource, what = "key"): Promise<KeyValues> {
  if (typeof key !== "string") throw new InvalidArgumentError(`${what} must be a string, got ${typeof key}`);
  const col = adata.obs.getChild(key) as Vector | null;
  if (col) {
    checkNotAlsoGene(adata, key, src, what);
    try {
      return obsColumn(col);
    } catch (e) {
      if (e instanceof InvalidArgumentError) throw new InvalidArgumentError(`${what} ${JSON.stringify(key)}: ${e.message}`);
      throw e;
    }
  }
  return { kind: "continuous", values: await geneValues(adata, key, src, what), dtype: "gene" };
}

function checkNotAlsoGene(adata: AnnDataOOM, key: string, src: GeneSource, what: string): void {
  const names = resolveUseRaw(adata, src) ? adata.raw?.varNames : adata.varNames;
  if (names && geneIndex(names, key) !== undefined)
    throw new InvalidArgumentError(
      `${what} ${JSON.stringify(key)} is both an obs column and a var name (anndata refuses it too); rename one of them`,
    );
}

/** A categorical (or string, or boolean) obs column for `groupby`, with a typed error for anything else. */
export function groupbyColumn(adata: AnnDataOOM, key: string): Categorical {
  const col = adata.obs.getChild(key) as Vector | null;
  if (!col) throw new InvalidArgumentError(`groupby ${JSON.stringify(key)} is not an obs column`);
  // Strings count as categories (sorted), as scanpy's plots make them.
  if (![DICTIONARY, BOOL, UTF8, LARGE_UTF8].includes(typeOf(col).typeId)) {
    throw new InvalidArgumentError(
      `groupby ${JSON.stringify(key)} must be a categorical, string or boolean obs column (got ${String(col.type)})`,
    );
  }
  return obsColumn(col) as Categorical;
}

/**
 * Several keys at once: obs columns, and all the genes in one read (the
 * gene index, or one pass for all of them, so one progress display with
 * Cancel in the kernel).
 */
export async function keysValues(
  adata: AnnDataOOM,
  keys: string[],
  src: GeneSource,
  what: string,
  label: string,
): Promise<Map<string, KeyValues>> {
  const out = new Map<string, KeyValues>();
  const genes = [...new Set(keys.filter((k) => typeof k === "string" && !adata.obs.getChild(k)))];
  for (const k of keys) if (!genes.includes(k)) out.set(k, await keyValues(adata, k, src, what));
  if (genes.length && src.signal?.aborted) throw new CancelledError(`${label} was cancelled`);
  const where = genes.map((g) => geneSource(adata, g, src, what));
  const { useRaw: _u, layer: _l, geneIndex: how, ...pass } = src;
  const m = where[0]?.m;
  if (!m) return out;
  // All genes in one call: from the gene index, or ONE pass for all of them (one progress display).
  const cols = await readColumns(
    m,
    where.map((w) => w.j),
    how,
    `${label}: ${genes.length} gene(s) through the transform chain`,
    pass,
  );
  genes.forEach((g, i) => {
    out.set(g, { kind: "continuous", values: cols[i], dtype: "gene" });
  });
  return out;
}
