/**
 * The open file shared by an AnnDataOOM and every view, layer and raw
 * derived from it: one native handle, its parsed layout, the running passes
 * (cancelled on close), and the closed flag that every access checks.
 */
import * as fs from "node:fs";
import { ClosedError, nativeCall } from "./errors";
import { type Native, native } from "./native";

/** Matrix metadata as described by the native core. */
export interface MatrixMeta {
  path: string;
  format: "csr" | "csc" | "dense";
  shape: [number, number];
  dtype: string;
  nnz: number;
  index_dtype: string | null;
  indptr_dtype: string | null;
  storage_bytes: number;
  compression: string | null;
  chunks: number[] | null;
}

export interface ElementInfo {
  path: string;
  encoding: string;
  version: string | null;
  supported: boolean;
  shape: number[];
  dtype: string | null;
  children?: [string, ElementInfo][];
}

export interface ColumnInfo {
  name: string;
  path: string;
  encoding: string;
  dtype: string | null;
}

export interface DataFrameInfo {
  path: string;
  index_name: string;
  n_rows: number;
  columns: ColumnInfo[];
  legacy: boolean;
}

export interface FileInfo {
  path: string;
  n_obs: number;
  n_vars: number;
  x: MatrixMeta | null;
  obs: DataFrameInfo;
  var: DataFrameInfo;
  obsm: [string, ElementInfo][];
  varm: [string, ElementInfo][];
  obsp: [string, ElementInfo][];
  varp: [string, ElementInfo][];
  layers: [string, ElementInfo][];
  uns: [string, ElementInfo][];
  raw: { x: MatrixMeta | null; var: DataFrameInfo; varm: [string, ElementInfo][] } | null;
  encoding_version: string | null;
  file_bytes: number;
}

export class Source {
  private handle: Native.NativeH5Ad | null;
  readonly info: FileInfo;
  readonly passes = new Set<Native.NativePass>();
  /** Called once by close() (e.g. open gene indexes release their files). */
  readonly closers: (() => void)[] = [];
  /**
   * The file's identity when it was opened: the open handle keeps reading
   * that file even if the path is later replaced (e.g. by a write()), so
   * anything keyed by the path must check it still names the same file.
   */
  readonly openedStat: fs.BigIntStats | null;

  constructor(
    readonly path: string,
    readonly mode: "r" | "r+",
  ) {
    const h = nativeCall(() => native.NativeH5Ad.open(path, mode === "r+"));
    try {
      this.info = JSON.parse(nativeCall(() => h.describe())) as FileInfo;
    } catch (e) {
      h.close();
      throw e;
    }
    this.handle = h;
    try {
      this.openedStat = fs.statSync(path, { bigint: true });
    } catch {
      this.openedStat = null;
    }
  }

  get closed(): boolean {
    return this.handle === null;
  }

  /** The native handle; throws ClosedError after close(). */
  get native(): Native.NativeH5Ad {
    if (!this.handle) throw new ClosedError(`the AnnDataOOM for ${this.path} is closed`, { path: this.path });
    return this.handle;
  }

  close(): void {
    for (const p of this.passes) p.cancel();
    for (const c of this.closers.splice(0)) c();
    this.handle?.close();
    this.handle = null;
  }
}
