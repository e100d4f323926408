/**
 * AnnDataOOM: an h5ad file opened out of memory. obs/var are Arrow tables
 * read at open; X and layers are lazy backed matrices; obsm/varm/obsp/varp
 * read on first access; subsets are lazy views over the same file.
 */

import * as fs from "node:fs";
import * as path from "node:path";
import { Table, Vector } from "apache-arrow";
import { BackedMatrix } from "./backed";
import { ElementMapping, Layers, nativeMatrixMeta, readUns, takeElementRows, takeSquare } from "./elements";
import { FileAccessError, InvalidArgumentError, nativeCall, shown } from "./errors";
import { type ColumnValues, describeFrame, type Frame, frameWithoutUnusedCategories, readFrame, takeFrame, withColumn } from "./frame";

export { describeFrame };

import type { GeneIndexOptions } from "./gene-index";
import { isMemberName } from "./names";
import type { Native } from "./native";
import { checkOptionNames } from "./options";
import { checkPassOptions, drive, type PassOptions } from "./pass";
import { textRepr } from "./repr";
import { type AnnDataJson, anndataBundle, type MimeBundle, reprJson } from "./repr-html";
import { compose, type Indexer, resolve } from "./selection";
import {
  categoricalIn,
  categoryCount,
  columnIn,
  elementIn,
  frameIn,
  obsVarColumnIn,
  typedIn,
  unsIn,
  withoutUnusedCategories,
} from "./session";
import { type DataFrameInfo, type ElementInfo, Source } from "./source";
import { type TypedArray, typedArray } from "./typed";

export interface ReadOptions {
  /** 'r' (default) reads only; 'r+' also allows writing into the file later. */
  backed?: "r" | "r+";
}

export interface WriteOptions extends PassOptions {
  /**
   * write() saves the session's obs/var columns (64-bit integer columns
   * stay int64), obsm/varm/obsp/varp elements of every kind anndata stores
   * there (dense arrays such as X_pca, CSR/CSC matrices such as the
   * neighbors graphs, dataframes), new uns entries, and X and layers
   * through their transform chains (CSR float32; dense float64 after
   * scale, as scanpy stores them). A raw snapshot (setRaw) is written as
   * raw/X, raw/var and raw/varm. What it cannot save (an uns value of mixed
   * types) makes it refuse, listing it; with skipUnsaved it writes without
   * it, and without the file's entry it replaced.
   */
  skipUnsaved?: boolean;
  /** Compression of the written matrices: none (default), 'gzip' or 'lzf'. */
  compression?: "gzip" | "lzf" | null;
}

/**
 * Steps take an AnnDataOOM first (from read()): anything else (undefined,
 * a plain object, a path) is a typed error naming the step, not a
 * TypeError from deep inside it.
 */
export function checkAnnData(fn: string, adata: unknown): asserts adata is AnnDataOOM {
  if (adata instanceof AnnDataOOM) return;
  const proto = adata !== null && typeof adata === "object" ? Object.getPrototypeOf(adata) : undefined;
  const got =
    adata === null
      ? "null"
      : typeof adata !== "object"
        ? `${typeof adata} ${JSON.stringify(adata) ?? ""}`
        : proto === Object.prototype || proto === null
          ? "a plain object"
          : `a ${(adata as object).constructor?.name ?? "?"}`;
  throw new InvalidArgumentError(`${fn}: the first argument must be an AnnDataOOM (from read()), got ${got.trim()}`);
}

/** Open an h5ad file reading metadata only. */
export async function read(file: string, opts: ReadOptions = {}): Promise<AnnDataOOM> {
  return readSync(file, opts);
}

/** Like `read`, synchronously (metadata reads are small). */
export function readSync(file: string, opts: ReadOptions = {}): AnnDataOOM {
  checkOptionNames<ReadOptions>("read", opts, { backed: true });
  const mode = opts.backed ?? "r";
  if (mode !== "r" && mode !== "r+") throw new InvalidArgumentError(`backed must be 'r' or 'r+', got ${String(mode)}`);
  if (typeof file !== "string" || !file) throw new InvalidArgumentError("read() needs a file path");
  const abs = path.resolve(file);
  if (!fs.existsSync(abs)) throw new FileAccessError(`no such file: ${abs}`, { path: abs });
  const source = new Source(abs, mode);
  try {
    return new AnnDataOOM(source, null, null);
  } catch (e) {
    source.close();
    throw e;
  }
}

/** Identity of a matrix's values for caching: element, chain, cell count. */
function momentsKey(m: BackedMatrix): string {
  return `${m.meta.path}|${m.chain.identity()}|${m.shape[0]}`;
}

/** anndata's raw: X restricted to the object's obs, with its own var. */
export interface RawView {
  X: BackedMatrix | null;
  var: Table;
  varNames: Vector;
  shape: [number, number];
  varm: ElementMapping;
}

/**
 * `fields` as a RawView whose text repr is anndata's
 * ("Raw AnnData with n_obs × n_vars = …", then var and varm), not its
 * internals (a notebook prints a cell's value with util.inspect).
 */
function rawView(fields: RawView): RawView {
  const text = () => {
    const lines = [`Raw AnnData with n_obs × n_vars = ${fields.shape[0]} × ${fields.shape[1]}`];
    const cols = fields.var.schema.fields.map((f) => `'${f.name}'`);
    if (cols.length) lines.push(`    var: ${cols.join(", ")}`);
    const varm = fields.varm.keys().map((k) => `'${k}'`);
    if (varm.length) lines.push(`    varm: ${varm.join(", ")}`);
    return lines.join("\n");
  };
  Object.defineProperty(fields, "toString", { value: text, enumerable: false });
  Object.defineProperty(fields, Symbol.for("nodejs.util.inspect.custom"), { value: text, enumerable: false });
  return fields;
}

export class AnnDataOOM {
  private obsFrame: Frame | null = null;
  private varFrame: Frame | null = null;
  private nameIndexes: { obs?: Map<string, number>; var?: Map<string, number> } = {};
  private unsCache: Record<string, unknown> | null = null;
  /**
   * Color lists a view must adjust when its uns is first read (the parent
   * had not read uns yet), in order: one entry per subset, as anndata's
   * views do for the categories they drop.
   */
  private unsColorEdits: ColorEdit[] = [];
  /**
   * A view's `<column>_colors` as subset() left them. One replaced since was
   * set on the view by the user and is written as given, as anndata does
   * (setting uns makes a view actual); the others follow its categories.
   */
  private viewColors = new Map<string, unknown>();
  private xCache: BackedMatrix | null = null;
  private xOverride: BackedMatrix | null = null;
  private slots: { layers?: Layers; obsm?: ElementMapping; varm?: ElementMapping; obsp?: ElementMapping; varp?: ElementMapping } = {};
  private rawOverride: RawView | null = null;
  /** Per-var sums of a matrix chain, taken as a by-product of a pass (HVG) for scale. */
  private varMoments: { key: string; sum: Float64Array; sumsq: Float64Array; n: number } | null = null;

  /** @internal use read() */
  constructor(
    private readonly source: Source,
    private readonly obsSel: Uint32Array | null,
    private readonly varSel: Uint32Array | null,
    parentFrames?: { obs: Frame; var: Frame },
  ) {
    if (parentFrames) {
      this.obsFrame = parentFrames.obs;
      this.varFrame = parentFrames.var;
    } else if (!obsSel && !varSel) {
      // The root object reads obs/var at open, so a bad file fails here.
      this.obsFrame = readFrame(source, source.info.obs);
      this.varFrame = readFrame(source, source.info.var);
    }
  }

  private get root(): { obs: Frame; var: Frame } {
    this.source.native; // throws if closed
    return { obs: this.obsFrame as Frame, var: this.varFrame as Frame };
  }

  /** Absolute path of the backing file. */
  get filename(): string {
    return this.source.path;
  }
  get mode(): "r" | "r+" {
    return this.source.mode;
  }
  get isView(): boolean {
    return this.obsSel !== null || this.varSel !== null;
  }
  get isClosed(): boolean {
    return this.source.closed;
  }
  get nObs(): number {
    return this.obsSel?.length ?? this.source.info.n_obs;
  }
  get nVars(): number {
    return this.varSel?.length ?? this.source.info.n_vars;
  }
  get shape(): [number, number] {
    return [this.nObs, this.nVars];
  }

  /** obs as an Arrow table (categoricals are dictionary vectors). */
  get obs(): Table {
    return this.root.obs.table;
  }
  get var(): Table {
    return this.root.var.table;
  }
  /** obs names as an Arrow Utf8 vector (`.get(i)`, `.toArray()`). */
  get obsNames(): Vector {
    return this.root.obs.index;
  }
  get varNames(): Vector {
    return this.root.var.index;
  }

  get hasX(): boolean {
    return this.source.info.x !== null;
  }

  /** The lazy expression matrix. */
  get X(): BackedMatrix {
    this.source.native;
    if (this.xOverride) return this.xOverride;
    const meta = this.source.info.x;
    // X = None is valid anndata (since 0.8): the data are in layers.
    if (!meta)
      throw new InvalidArgumentError(
        `this AnnData has no X (None in the file); use a layer: adata.layers.get(name), or a step's { layer } option (layers: ${this.layers.keys().join(", ") || "none"})`,
        { path: this.source.path, element: "/X" },
      );
    this.xCache ??= new BackedMatrix(this.source, meta, this.obsSel, this.varSel, "X");
    return this.xCache;
  }

  /**
   * Replace X by a lazy matrix over the same file (a step's result, e.g.
   * X with a normalize node appended). No data is read or copied.
   */
  setX(m: BackedMatrix): void {
    if (!(m instanceof BackedMatrix))
      throw new InvalidArgumentError(`setX takes a matrix of this object (adata.X or a layer), got ${shown(m)}`);
    if (m.sourceHandle !== this.source) throw new InvalidArgumentError("X must come from this object's file");
    if (m.shape[0] !== this.nObs || m.shape[1] !== this.nVars) {
      throw new InvalidArgumentError(`X must be ${this.nObs} × ${this.nVars}, got ${m.shape.join(" × ")}`);
    }
    this.xOverride = m;
  }

  get layers(): Layers {
    this.source.native;
    this.slots.layers ??= new Layers(this.source, this.source.info.layers, this.obsSel, this.varSel);
    return this.slots.layers;
  }
  get obsm(): ElementMapping {
    this.slots.obsm ??= new ElementMapping(this.source, this.source.info.obsm, [this.obsSel, null], "obsm", () => this.obsNames);
    return this.slots.obsm;
  }
  get varm(): ElementMapping {
    this.slots.varm ??= new ElementMapping(this.source, this.source.info.varm, [this.varSel, null], "varm", () => this.varNames);
    return this.slots.varm;
  }
  get obsp(): ElementMapping {
    this.slots.obsp ??= new ElementMapping(this.source, this.source.info.obsp, [this.obsSel, this.obsSel], "obsp");
    return this.slots.obsp;
  }
  get varp(): ElementMapping {
    this.slots.varp ??= new ElementMapping(this.source, this.source.info.varp, [this.varSel, this.varSel], "varp");
    return this.slots.varp;
  }

  /** Which matrix the obs QC columns were computed on (filterCells reuses them). @internal */
  qcSource: string | null = null;

  /**
   * Steps that will replace a matrix of this object when their pass ends
   * ("X" or the layer's name → the step), so that a step called before
   * they are awaited is refused instead of being lost or reading the old
   * values. @internal
   */
  readonly pendingSteps = new Map<string, string>();

  /** Set by filterCells: the object it filtered and the cells it removed (positions there). @internal */
  cellFilter: { parent: AnnDataOOM; removed: Uint32Array } | null = null;

  /** A key identifying `m`'s values for this object's cells and genes. @internal */
  matrixKey(m: BackedMatrix): string {
    const [, v] = m.selections;
    return `${momentsKey(m)}|${v ? v.length : -1}|${v ? v[0] : -1}|${v ? v[v.length - 1] : -1}`;
  }

  /** Remember per-var sums of `m` (same chain, same cells) for a later step. @internal */
  cacheVarMoments(m: BackedMatrix, sum: Float64Array, sumsq: Float64Array, n: number): void {
    this.varMoments = { key: momentsKey(m), sum, sumsq, n };
  }

  /** Cached per-var sums of `m`, if a previous pass took them. @internal */
  cachedVarMoments(m: BackedMatrix): { sum: Float64Array; sumsq: Float64Array; n: number } | null {
    return this.varMoments && this.varMoments.key === momentsKey(m) ? this.varMoments : null;
  }

  /** Columns replaced in this session (for sessionChanges). */
  private changedColumns = new Set<string>();
  /**
   * `obs/<name>` and `var/<name>` set on this very object (not inherited by
   * a view): anndata makes a view an actual object when a column is set,
   * so such a column keeps all its categories when written.
   */
  private readonly columnsSetHere = new Set<string>();

  /**
   * Run a native job (a graph step) tied to this file's lifetime: progress,
   * cancellation and close() behave as for passes over X. @internal
   */
  runJob<T>(label: string, job: Native.NativePass, take: (p: Native.NativePass) => T, opts: PassOptions = {}): Promise<T> {
    return drive(this.source, label, job, take, opts);
  }

  /** Add or replace an obs column (length n_obs). */
  setObs(name: string, values: ColumnValues): void {
    this.checkColumnName(name, "obs");
    this.changedColumns.add(name);
    this.columnsSetHere.add(`obs/${name}`);
    this.obsFrame = withColumn(this.root.obs, name, values, this.nObs, "obs");
    // filterCells would read these back as QC results (scanpy recomputes).
    if (name === "total_counts" || name === "n_genes_by_counts") this.qcSource = null;
  }
  /** Add or replace a var column (length n_vars). */
  setVar(name: string, values: ColumnValues): void {
    this.checkColumnName(name, "var");
    this.changedColumns.add(name);
    this.columnsSetHere.add(`var/${name}`);
    this.varFrame = withColumn(this.root.var, name, values, this.nVars, "var");
    if (name === "total_counts" || name === "n_cells_by_counts") this.qcSource = null;
  }

  /** A name write() can store as a column of the dataframe's HDF5 group. */
  private checkColumnName(name: string, axis: "obs" | "var"): void {
    const index = this.source.info[axis].index_name;
    if (!isMemberName(name) || name === index || name === "_index" || name === "__categories") {
      throw new InvalidArgumentError(
        `${axis} column name ${JSON.stringify(name)} is not allowed: it must be a non-empty string other than "." and without "/", other than the index ("${index}")`,
      );
    }
  }

  /**
   * anndata's `adata.raw = adata`: freeze the current X (its chain, not a
   * copy) and var as raw. Later steps on X do not change raw.
   */
  setRaw(from: AnnDataOOM = this): void {
    if (!(from instanceof AnnDataOOM))
      throw new InvalidArgumentError(`setRaw takes an AnnData (this object, a view or a step's result of it), got ${shown(from)}`);
    if (from.source !== this.source)
      throw new InvalidArgumentError(`setRaw: raw must come from this object's file (${this.source.path}), not ${from.source.path}`);
    // anndata's Raw: "X has n rows, but n_obs is m".
    if (from.nObs !== this.nObs)
      throw new InvalidArgumentError(`setRaw: raw has ${from.nObs} cells, but this object has ${this.nObs}; raw must have the same cells`);
    const frame = from.root.var;
    this.rawOverride = rawView({
      X: from.X,
      var: frame.table,
      varNames: frame.index,
      shape: [from.nObs, from.nVars],
      varm: from.varm.snapshot("raw/varm"),
    });
  }

  /** uns as plain JS values (read on first access). */
  get uns(): Record<string, unknown> {
    this.source.native;
    if (!this.unsCache) {
      const uns = readUns(this.source, this.source.info.uns);
      for (const edit of this.unsColorEdits) applyColorEdit(uns, edit);
      if (this.unsColorEdits.length) this.viewColors = colorEntries(uns);
      this.unsColorEdits = [];
      this.unsCache = uns;
    }
    return this.unsCache;
  }
  /** Keys and layouts of a slot's elements, without reading them. */
  slotEntries(slot: "obsm" | "varm" | "obsp" | "varp" | "layers"): [string, ElementInfo][] {
    const file = this.source.info[slot];
    const mapping = slot === "layers" ? this.slots.layers : this.slots[slot];
    if (!mapping) return file;
    const mem: [string, ElementInfo][] = [];
    for (const [key, el] of mapping.memoryEntries()) {
      const info: ElementInfo =
        "table" in el
          ? { path: "(in memory)", encoding: "dataframe", version: null, supported: true, shape: [el.table.numRows], dtype: null }
          : "meta" in el
            ? {
                path: "(in memory)",
                encoding: el.isTransformed ? "lazy chain" : el.format,
                version: null,
                supported: true,
                shape: el.shape,
                dtype: el.dtype,
              }
            : {
                path: "(in memory)",
                encoding: el.kind === "dense" ? "array" : `${el.kind}_matrix`,
                version: null,
                supported: true,
                shape: el.shape,
                dtype: el.dtype,
              };
      mem.push([key, info]);
    }
    const keys = new Set(mem.map(([k]) => k));
    return [...file.filter(([k]) => !keys.has(k)), ...mem];
  }

  unsKeys(): string[] {
    const file = this.source.info.uns.map(([k]) => k);
    return this.unsCache ? [...new Set([...file, ...Object.keys(this.unsCache)])] : file;
  }

  /** Summary of raw without reading it. */
  rawInfo(): { n_vars: number; hasX: boolean } | null {
    if (this.rawOverride) return { n_vars: this.rawOverride.shape[1], hasX: true };
    const r = this.source.info.raw;
    return r ? { n_vars: r.var.n_rows, hasX: r.x !== null } : null;
  }

  /** raw (X restricted to this view's obs, all raw vars), or null. */
  get raw(): RawView | null {
    if (this.rawOverride) return this.rawOverride;
    const r = this.source.info.raw;
    if (!r) return null;
    const frame = readFrame(this.source, r.var);
    const X = r.x ? new BackedMatrix(this.source, nativeMatrixMeta(this.source, "/raw/X"), this.obsSel, null, "raw/X") : null;
    return rawView({
      X,
      var: frame.table,
      varNames: frame.index,
      shape: [this.nObs, r.var.n_rows],
      varm: new ElementMapping(this.source, r.varm, [null, null], "raw/varm", () => frame.index),
    });
  }

  /**
   * Position → name lookup of one axis. A name held by several positions
   * maps to -1 and `position` refuses it (anndata raises too, rather than
   * pick one).
   */
  private nameIndex(axis: "obs" | "var"): Map<string, number> {
    let m = this.nameIndexes[axis];
    if (!m) {
      const names = axis === "obs" ? this.obsNames : this.varNames;
      m = new Map();
      for (let i = 0; i < names.length; i++) {
        const nm = names.get(i) as string;
        m.set(nm, m.has(nm) ? -1 : i);
      }
      this.nameIndexes[axis] = m;
    }
    return m;
  }

  /** The position of a name on an axis; undefined if absent, an error if not unique. */
  private position(axis: "obs" | "var", name: string): number | undefined {
    const i = this.nameIndex(axis).get(name);
    if (i === -1)
      throw new InvalidArgumentError(
        `${axis} name ${JSON.stringify(name)} is not unique: select by position, or make the ${axis} names unique`,
      );
    return i;
  }

  /**
   * A lazy view on a subset of obs and/or var. Indexers: slice(...), a
   * boolean mask, integer positions (order kept, negatives from the end)
   * or names. Views of views compose into one selection over the file.
   *
   * @example
   * const v = adata.subset({ obs: slice(0, 1000), var: ["CD3E", "MS4A1"] });
   */
  subset(sel: { obs?: Indexer; var?: Indexer }): AnnDataOOM {
    const unknown = Object.keys(sel ?? {}).filter((k) => k !== "obs" && k !== "var");
    if (sel === null || typeof sel !== "object" || unknown.length)
      throw new InvalidArgumentError(`subset takes { obs?, var? }${unknown.length ? `, not ${unknown.join(", ")}` : ""}`);
    // A view takes the matrices as they are now: before a running normalize
    // or scale has replaced them (a view of the values from before the step).
    for (const [slot, step] of this.pendingSteps)
      throw new InvalidArgumentError(
        `subset: ${step} is still running on ${slot === "X" ? "X" : `layers.${slot}`} and will replace it; await it before subsetting`,
      );
    const { obs, var: vars } = this.root;
    const obsIdx = sel.obs === undefined ? null : resolve(sel.obs, this.nObs, "obs", (nm) => this.position("obs", nm));
    const varIdx = sel.var === undefined ? null : resolve(sel.var, this.nVars, "var", (nm) => this.position("var", nm));
    // As anndata's views: categorical columns lose the categories no row of
    // the view uses, and uns["<column>_colors"] the colors of those.
    const obsCut = frameWithoutUnusedCategories(obsIdx ? takeFrame(obs, obsIdx) : obs);
    const varCut = frameWithoutUnusedCategories(varIdx ? takeFrame(vars, varIdx) : vars);
    const frames = { obs: obsCut.frame, var: varCut.frame };
    const newObs = obsIdx ? compose(this.obsSel, obsIdx) : this.obsSel;
    const newVar = varIdx ? compose(this.varSel, varIdx) : this.varSel;
    const view = new AnnDataOOM(this.source, newObs, newVar, frames);
    this.carryInto(view, obsIdx, varIdx, newObs, newVar);
    const edit: ColorEdit = new Map();
    for (const [table, cut] of [
      [obs.table, obsCut.kept],
      [vars.table, varCut.kept],
    ] as const) {
      for (const field of table.schema.fields) {
        if (field.type.typeId !== -1 /* Dictionary */) continue;
        const n = (table.getChild(field.name) as Vector).data[0]?.dictionary?.length ?? 0;
        edit.set(`${field.name}_colors`, { n, kept: cut.get(field.name) ?? null });
      }
    }
    // uns is the parent's, copied (as anndata's shallow copy): steps run on
    // the view set their own entries without touching the parent's.
    if (this.unsCache) {
      view.unsCache = { ...this.unsCache };
      applyColorEdit(view.unsCache, edit);
      view.viewColors = colorEntries(view.unsCache);
    } else view.unsColorEdits = [...this.unsColorEdits, edit];
    return view;
  }

  /** Session state (transformed X, layers, computed obsm/varm, uns, raw) follows a subset. */
  private carryInto(
    view: AnnDataOOM,
    obsIdx: Uint32Array | null,
    varIdx: Uint32Array | null,
    newObs: Uint32Array | null,
    newVar: Uint32Array | null,
  ): void {
    const reselect = (m: BackedMatrix) => new BackedMatrix(this.source, m.meta, newObs, newVar, m.name, m.chain.subset(obsIdx, varIdx));
    if (this.xOverride) view.xOverride = reselect(this.xOverride);
    if (this.slots.layers) for (const [k, m] of this.slots.layers.memoryEntries()) view.layers.set(k, reselect(m));
    for (const [slot, idx] of [
      ["obsm", obsIdx],
      ["varm", varIdx],
    ] as const) {
      const mapping = this.slots[slot];
      if (!mapping) continue;
      for (const [k, el] of mapping.memoryEntries()) view[slot].set(k, idx ? takeElementRows(el, idx) : el);
    }
    for (const [slot, idx] of [
      ["obsp", obsIdx],
      ["varp", varIdx],
    ] as const) {
      for (const [k, el] of this.slots[slot]?.memoryEntries() ?? []) view[slot].set(k, idx ? takeSquare(el, idx) : el);
    }
    for (const c of this.changedColumns) view.changedColumns.add(c);
    // Per-var sums stay valid when only genes are dropped.
    if (this.varMoments && !obsIdx && view.xOverride) {
      const take = (v: Float64Array) => (varIdx ? Float64Array.from(varIdx, (j) => v[j]) : v);
      const vm = this.varMoments;
      view.varMoments = { key: momentsKey(view.xOverride), sum: take(vm.sum), sumsq: take(vm.sumsq), n: vm.n };
    }
    if (this.rawOverride) {
      const r = this.rawOverride;
      const X = r.X ? new BackedMatrix(this.source, r.X.meta, newObs, r.X.selections[1], r.X.name, r.X.chain.subset(obsIdx, null)) : null;
      view.rawOverride = rawView({ ...r, X, shape: [view.nObs, r.shape[1]] });
    }
  }

  /**
   * anndata's `obs_vector`: an obs column by name, or a gene's values
   * across this view's cells (from X or `layer`), as float64 for genes.
   *
   * @example
   * const cd3e = await adata.obsVector("CD3E");
   */
  async obsVector(key: string | number, opts: PassOptions & { layer?: string } = {}): Promise<Float64Array | Vector> {
    checkOptionNames<PassOptions & { layer?: string }>("obsVector", opts, { layer: true, signal: true, onProgress: true });
    opts ??= {};
    if (typeof key !== "string" && typeof key !== "number")
      throw new InvalidArgumentError(`obsVector: key must be a column name, a name or a position, got ${shown(key)}`);
    if (typeof key === "string" && this.obs.getChild(key)) {
      // anndata's obs_vector raises on a key that names both.
      if (this.nameIndex("var").has(key))
        throw new InvalidArgumentError(
          `${JSON.stringify(key)} is both an obs column and a var name: use adata.obs.getChild(key) or geneValues([key])`,
        );
      return this.obs.getChild(key) as Vector;
    }
    const j = typeof key === "number" ? key : this.position("var", key);
    if (j === undefined) throw new InvalidArgumentError(`${JSON.stringify(key)} is neither an obs column nor a var name`);
    const { layer, ...pass } = opts;
    const m = layer ? this.layers.get(layer) : this.X;
    return m.obsVector(j, pass);
  }

  /**
   * Values of genes (var names or positions in this view) across this
   * view's cells, one Float64Array per gene, from X (or `layer`) with its
   * transform chain applied. Reads the gene-major sidecar index, built
   * once per file on first use (`index: false`: never build; use an
   * existing index or one pass over X). Unknown names throw
   * InvalidArgumentError.
   *
   * @example
   * const [cd3e, ms4a1] = await adata.geneValues(["CD3E", "MS4A1"]);
   */
  async geneValues(
    genes: readonly (string | number)[],
    opts: PassOptions & GeneIndexOptions & { layer?: string; index?: boolean } = {},
  ): Promise<Float64Array[]> {
    if (!Array.isArray(genes)) throw new InvalidArgumentError("geneValues() takes an array of var names or positions");
    checkOptionNames<PassOptions & GeneIndexOptions & { layer?: string; index?: boolean }>("geneValues", opts, {
      layer: true,
      index: "bool",
      beside: "bool",
      dir: true,
      budgetBytes: "num",
      onProgress: true,
      signal: true,
    });
    const cols = genes.map((g) => {
      const j = typeof g === "number" ? g : this.position("var", g);
      if (j === undefined) throw new InvalidArgumentError(`${JSON.stringify(g)} is not a var name`);
      if (!Number.isInteger(j) || j < 0 || j >= this.nVars)
        throw new InvalidArgumentError(`gene position ${g} out of range for ${this.nVars} vars`);
      return j;
    });
    const m = opts.layer ? this.layers.get(opts.layer) : this.X;
    return m.geneValues(cols, opts);
  }

  /** anndata's `var_vector`: a var column by name, or one cell's values across vars. */
  async varVector(key: string | number, opts: PassOptions & { layer?: string } = {}): Promise<Float64Array | Vector> {
    checkOptionNames<PassOptions & { layer?: string }>("varVector", opts, { layer: true, signal: true, onProgress: true });
    opts ??= {};
    if (typeof key !== "string" && typeof key !== "number")
      throw new InvalidArgumentError(`varVector: key must be a column name, a name or a position, got ${shown(key)}`);
    if (typeof key === "string" && this.var.getChild(key)) {
      if (this.nameIndex("obs").has(key))
        throw new InvalidArgumentError(
          `${JSON.stringify(key)} is both a var column and an obs name: use adata.var.getChild(key) or X.varVector(position)`,
        );
      return this.var.getChild(key) as Vector;
    }
    const i = typeof key === "number" ? key : this.position("obs", key);
    if (i === undefined) throw new InvalidArgumentError(`${JSON.stringify(key)} is neither a var column nor an obs name`);
    const { layer, ...pass } = opts;
    const m = layer ? this.layers.get(layer) : this.X;
    return m.varVector(i, pass);
  }

  /**
   * Write this object (or view) to a new h5ad, streaming X chunk by chunk.
   * Goes to a temporary file next to `file` and is renamed at the end.
   */
  async write(file: string, opts: WriteOptions = {}): Promise<void> {
    if (typeof file !== "string" || file === "") throw new InvalidArgumentError(`write() needs a file path, got ${JSON.stringify(file)}`);
    checkOptionNames<WriteOptions>("write", opts, { skipUnsaved: "bool", compression: true, signal: true, onProgress: true });
    const c = opts.compression;
    if (c !== undefined && c !== null && c !== "gzip" && c !== "lzf")
      throw new InvalidArgumentError(
        `compression must be "gzip", "lzf" or null, got ${shown(c)} (no level: gzip is written at level 4, as h5py's default)`,
      );
    // Checked before the temporary file is made.
    checkPassOptions(opts);
    // A running normalize or scale replaces X (or a layer) when it ends: the
    // file would get the matrix from before it.
    for (const [slot, step] of this.pendingSteps)
      throw new InvalidArgumentError(
        `write: ${step} is still running on ${slot === "X" ? "X" : `layers.${slot}`} and will replace it; await it before writing`,
      );
    const nat = this.source.native;
    const session = this.sessionForWrite();
    await this.addRawVarm(session);
    if (session.unsaved.length && !opts.skipUnsaved) {
      throw new InvalidArgumentError(
        `write() cannot save these results of this session yet: ${session.unsaved.join("; ")}. Pass { skipUnsaved: true } to write without them.`,
      );
    }
    // The native writer refuses the source itself, by inode (under any name).
    const dest = path.resolve(file);
    const pass = nativeCall(() =>
      nat.startWrite(dest, this.obsSel ?? undefined, this.varSel ?? undefined, opts.compression ?? undefined, session.input),
    );
    await drive(this.source, `write ${path.basename(dest)}`, pass, (p) => p.takeWritten(), opts);
  }

  /**
   * raw.varm of a raw set in this session (setRaw), read from the file
   * where they are stored there (they are genes × a few columns).
   */
  private async addRawVarm(session: { input: Native.SessionIn }): Promise<void> {
    const raw = this.rawOverride;
    if (!raw) return;
    const elements: Native.NamedElementIn[] = [];
    for (const k of raw.varm.keys()) elements.push(elementIn(k, await raw.varm.get(k)));
    session.input.rawVarm = elements;
  }

  /**
   * The session's results that write() saves (obs/var columns, in-memory
   * obsm/varm/obsp/varp elements, new uns entries) and those it cannot.
   */
  private sessionForWrite(): { input: Native.SessionIn; unsaved: string[] } {
    // A view's pending color edits (see subset) apply before uns is compared with the file.
    if (this.unsColorEdits.length) void this.uns;
    // The file's string columns with repeated values are rewritten too: as
    // categoricals, as anndata's write_h5ad stores them.
    const cols = (t: Table, file: DataFrameInfo) => {
      const known = new Set(file.columns.map((c) => c.name));
      const out: { name: string; column: Native.ColumnOut }[] = [];
      for (const name of t.schema.fields.map((f) => f.name)) {
        const v = t.getChild(name) as Vector;
        if (!known.has(name) || this.changedColumns.has(name)) out.push({ name, column: obsVarColumnIn(v) });
        else {
          const column = categoricalIn(v);
          if (column) out.push({ name, column });
        }
      }
      return out;
    };
    const unsaved: string[] = [];
    const elements = (slot: "obsm" | "varm" | "obsp" | "varp") =>
      (this.slots[slot]?.memoryEntries() ?? []).map(([k, el]) => elementIn(k, el));
    // Read once: which entries changed, and the children of changed dicts kept as stored.
    const fileUns = this.fileUnsForCompare();
    const changedUns = new Set(this.changedUns(fileUns));
    const unsEntries = Object.entries(this.unsCache ?? {}).filter(([k]) => changedUns.has(k));
    const removedUns = this.removedUns();
    const pruned = this.isView ? this.categoriesUsedByView() : undefined;
    if (pruned) {
      const inFile = new Set(this.source.info.uns.map(([k]) => k));
      for (const [k, colors] of pruned.colors) {
        const i = unsEntries.findIndex(([key]) => key === k);
        if (i >= 0) unsEntries.splice(i, 1);
        if (colors) unsEntries.push([k, colors]);
        else if (inFile.has(k) && !removedUns.includes(k)) removedUns.push(k);
      }
    }
    const uns = unsIn(unsEntries, removedUns, { values: fileUns, same: sameValue });
    for (const k of uns.skipped) unsaved.push(`uns ${k}`);
    const planned: Native.PlannedIn[] = [];
    if (this.xOverride) planned.push(this.xOverride.plannedWrite("X"));
    for (const [k, m] of this.slots.layers?.memoryEntries() ?? []) planned.push(m.plannedWrite(`layers/${k}`));
    let rawVar: Native.FrameIn | undefined;
    const raw = this.rawOverride;
    if (raw) {
      if (raw.X) planned.push(raw.X.plannedWrite("raw/X"));
      // raw.var keeps var's index name, as anndata's snapshot does.
      rawVar = frameIn(raw.varNames, raw.var, this.source.info.var.index_name);
    }
    const frameCols = (t: Table, file: DataFrameInfo, axis: "obs" | "var") => {
      const out = cols(t, file);
      for (const [name, column] of pruned?.[axis] ?? []) {
        const i = out.findIndex((c) => c.name === name);
        if (i >= 0) out[i] = { name, column };
        else out.push({ name, column });
      }
      return out;
    };
    const input: Native.SessionIn = {
      obs: frameCols(this.obs, this.source.info.obs, "obs"),
      var: frameCols(this.var, this.source.info.var, "var"),
      obsm: elements("obsm"),
      varm: elements("varm"),
      obsp: elements("obsp"),
      varp: elements("varp"),
      unsJson: uns.json,
      unsVectors: uns.vectors,
      planned,
      rawVar,
    };
    return { input, unsaved };
  }

  /**
   * What this object holds beyond its file — results of this session:
   * added obs/var columns, X's transforms, layers, obsm/varm elements, new
   * uns entries, a raw snapshot. (write() saves them; see WriteOptions.)
   */
  sessionChanges(): string[] {
    const out: string[] = [];
    const added = (t: Table, file: DataFrameInfo) => {
      const known = new Set(file.columns.map((c) => c.name));
      return t.schema.fields.map((f) => f.name).filter((n) => !known.has(n) || this.changedColumns.has(n));
    };
    const obs = added(this.obs, this.source.info.obs);
    if (obs.length) out.push(`obs columns ${obs.join(", ")}`);
    const vars = added(this.var, this.source.info.var);
    if (vars.length) out.push(`var columns ${vars.join(", ")}`);
    if (this.xOverride?.isTransformed) out.push(`X transforms (${this.xOverride.chain.steps.map((s) => s.op).join(" → ")})`);
    const layers = this.slots.layers?.memoryEntries().map(([k]) => k) ?? [];
    if (layers.length) out.push(`layers ${layers.join(", ")}`);
    for (const slot of ["obsm", "varm", "obsp", "varp"] as const) {
      const keys = this.slots[slot]?.memoryEntries().map(([k]) => k) ?? [];
      if (keys.length) out.push(`${slot} ${keys.join(", ")}`);
    }
    const uns = this.changedUns();
    if (uns.length) out.push(`uns ${uns.join(", ")}`);
    const removed = this.removedUns();
    if (removed.length) out.push(`uns removed: ${removed.join(", ")}`);
    if (this.rawOverride) out.push("raw");
    return out;
  }

  /**
   * uns keys new in this session or whose value differs from the file's
   * (a step re-run with other parameters replaces e.g. uns.neighbors).
   */
  private changedUns(file = this.fileUnsForCompare()): string[] {
    if (!this.unsCache) return [];
    const inFile = new Set(this.source.info.uns.map(([k]) => k));
    return Object.keys(this.unsCache).filter((k) => !inFile.has(k) || !sameValue((this.unsCache as Record<string, unknown>)[k], file[k]));
  }

  /** The file's uns as read, when this object's uns has keys the file has (else nothing to compare). */
  private fileUnsForCompare(): Record<string, unknown> {
    const inFile = new Set(this.source.info.uns.map(([k]) => k));
    return Object.keys(this.unsCache ?? {}).some((k) => inFile.has(k)) ? readUns(this.source, this.source.info.uns) : {};
  }

  /**
   * What anndata changes when it makes a view: categorical obs and var
   * columns lose the categories no row of the view uses, and
   * `uns["<column>_colors"]` keeps the colors of the kept categories (or is
   * dropped when its length does not match the categories). Written views
   * get the same. Views made by subset() already are so; what is left
   * here is writing the view's columns where the file has more categories,
   * and colors set since. A column set on the view itself keeps all its
   * categories, as in anndata (setting one makes its view actual).
   */
  private categoriesUsedByView(): {
    obs: Map<string, Native.ColumnOut>;
    var: Map<string, Native.ColumnOut>;
    colors: Map<string, string[] | null>;
  } {
    const out = {
      obs: new Map<string, Native.ColumnOut>(),
      var: new Map<string, Native.ColumnOut>(),
      colors: new Map<string, string[] | null>(),
    };
    for (const axis of ["obs", "var"] as const) {
      const table = this[axis];
      for (const field of table.schema.fields) {
        if (field.type.typeId !== -1 /* Dictionary */ || this.columnsSetHere.has(`${axis}/${field.name}`)) continue;
        const before = columnIn(table.getChild(field.name) as Vector);
        const info = this.source.info[axis];
        const file =
          !this.changedColumns.has(field.name) && info.columns.some((c) => c.name === field.name)
            ? nativeCall(() => this.source.native.readColumn(info.path, field.name))
            : null;
        // Numeric categories are float64 in Arrow; the file's own keep their
        // dtype. The view may hold fewer categories than the file (subset
        // drops the unused ones): the file's where the view's values are.
        if (file?.categories?.values && before.categories?.values)
          before.categories = categoriesAmong(file.categories.values, before.categories.values);
        const pruned = withoutUnusedCategories(before);
        if (pruned) out[axis].set(field.name, pruned.column);
        // Written from the view, not copied from the file, when it has fewer categories.
        else if (file && categoryCount(file) !== categoryCount(before)) out[axis].set(field.name, before);
        const key = `${field.name}_colors`;
        if (!Object.hasOwn(this.uns, key) && !out.colors.has(key)) continue;
        if (Object.hasOwn(this.uns, key) && this.uns[key] !== this.viewColors.get(key)) continue; // set on the view: as given
        const colors = out.colors.has(key) ? out.colors.get(key) : this.uns[key];
        if (!Array.isArray(colors) && !ArrayBuffer.isView(colors)) continue;
        // anndata drops colors that do not match the categories, used or not.
        if ((colors as ArrayLike<unknown>).length !== categoryCount(before)) out.colors.set(key, null);
        else if (pruned)
          out.colors.set(
            key,
            pruned.kept.map((i) => String((colors as ArrayLike<unknown>)[i])),
          );
        // This object's colors, which subset() may have cut to its categories.
        else if (file && categoryCount(file) !== categoryCount(before))
          out.colors.set(
            key,
            Array.from(colors as ArrayLike<unknown>, (c) => String(c)),
          );
      }
    }
    return out;
  }

  /** Keys of the file's uns deleted from this object's uns (write() leaves them out). */
  private removedUns(): string[] {
    const cache = this.unsCache;
    if (!cache) return [];
    return this.source.info.uns.map(([k]) => k).filter((k) => !Object.hasOwn(cache, k));
  }

  /** Close the file; any later use throws ClosedError. Running passes are cancelled. */
  close(): void {
    this.source.close();
  }

  toString(): string {
    if (this.source.closed) return `AnnDataOOM (closed) ${this.source.path}`;
    return textRepr(this);
  }

  [Symbol.for("nodejs.util.inspect.custom")](): string {
    return this.toString();
  }

  /** The repr's facts as JSON (dimensions, X, columns, slots, chain); metadata only. */
  reprJson(): AnnDataJson {
    return reprJson(this);
  }

  /** Notebook repr: text, an HTML card and `application/vnd.anndata-oom.repr+json`. */
  _repr_mimebundle_(): MimeBundle {
    return anndataBundle(this);
  }
}

/** The categories of `file` (typed, the file's dtype) whose values `view` (float64) holds, in file order (= the view's order). */
function categoriesAmong(file: Native.TypedOut, view: Native.TypedOut): Native.CategoriesOut {
  const values = typedArray(file);
  const wanted = new Set(Array.from(typedArray(view) as ArrayLike<number>, Number));
  const keep: number[] = [];
  for (let i = 0; i < values.length; i++) if (wanted.has(Number(values[i]))) keep.push(i);
  if (keep.length === values.length) return { values: file };
  const out = new (values.constructor as new (n: number) => TypedArray)(keep.length);
  keep.forEach((k, i) => {
    out[i] = values[k];
  });
  return { values: typedIn(out, file.dtype) };
}

/** Per `<column>_colors` key: the column's number of categories before a subset, and the positions it kept (null: all). */
type ColorEdit = Map<string, { n: number; kept: number[] | null }>;

/** The `*_colors` entries of uns, by reference (to tell later assignments). */
function colorEntries(uns: Record<string, unknown>): Map<string, unknown> {
  return new Map(Object.entries(uns).filter(([k]) => k.endsWith("_colors")));
}

/**
 * anndata's view rule for category colors: a list whose length is not the
 * column's category count is dropped, else it keeps the kept categories'.
 */
function applyColorEdit(uns: Record<string, unknown>, edit: ColorEdit): void {
  for (const [key, { n, kept }] of edit) {
    if (!Object.hasOwn(uns, key)) continue;
    const colors = uns[key];
    // anndata makes a 0-d color (one string) a list of one; later views then check its length.
    if (typeof colors === "string") {
      uns[key] = [colors];
      continue;
    }
    if (!Array.isArray(colors) && !(ArrayBuffer.isView(colors) && !(colors instanceof DataView))) continue;
    const list = colors as ArrayLike<unknown>;
    if (list.length !== n) delete uns[key];
    else if (kept) uns[key] = kept.map((i) => list[i]);
  }
}

/** Structural equality of uns values (numbers, strings, arrays, typed arrays, plain objects; NaN equals NaN). */
function sameValue(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a === "number" && typeof b === "number") return Number.isNaN(a) && Number.isNaN(b);
  if (a === null || b === null || typeof a !== "object" || typeof b !== "object") return false;
  // Arrow values (uns dataframes and columns) by content: two reads of one
  // element are different objects with different lazily cached fields.
  if (a instanceof Table || b instanceof Table) {
    if (!(a instanceof Table && b instanceof Table) || a.numRows !== b.numRows) return false;
    const names = a.schema.fields.map((f) => f.name);
    if (names.join("\0") !== b.schema.fields.map((f) => f.name).join("\0")) return false;
    return names.every((n) => sameValue(a.getChild(n), b.getChild(n)));
  }
  if (a instanceof Vector || b instanceof Vector) {
    if (!(a instanceof Vector && b instanceof Vector) || a.length !== b.length || String(a.type) !== String(b.type)) return false;
    return sameValue(Array.from(a), Array.from(b));
  }
  const listA = Array.isArray(a) || ArrayBuffer.isView(a);
  const listB = Array.isArray(b) || ArrayBuffer.isView(b);
  if (listA || listB) {
    if (!(listA && listB)) return false;
    const [x, y] = [a as ArrayLike<unknown>, b as ArrayLike<unknown>];
    if (x.length !== y.length) return false;
    for (let i = 0; i < x.length; i++) if (!sameValue(x[i], y[i])) return false;
    return true;
  }
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  if (ka.length !== kb.length) return false;
  return ka.every((k) => Object.hasOwn(b, k) && sameValue((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}
