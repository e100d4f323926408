/**
 * Where a matrix's gene-major sidecar index lives and when it is valid.
 * The sidecar (see native/core/src/gene_index) holds the element column by
 * column, so reading one gene is a read of that gene's bytes instead of a
 * full pass over X. It is built once per file on first use and reused by
 * later sessions and processes; its name (in the cache folder) and its
 * header carry a fingerprint of the source (path, size, mtime, element,
 * shape, nnz), so a changed file gets a new index and the old one is removed.
 *
 * @example
 * const [cd3e] = await adata.geneValues(["CD3E"]);   // builds the index once
 * adata.X.geneIndexInfo();                            // { path, built, bytes, ... }
 */

import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { FileAccessError, GeneIndexError, InvalidArgumentError, nativeAwait, nativeCall } from "./errors";
import { makeFolders } from "./folders";
import { type Native, native } from "./native";
import { drive, type PassOptions } from "./pass";
import type { MatrixMeta, Source } from "./source";

export interface GeneIndexOptions {
  /** Put the sidecar next to the h5ad (`<file>.<element>.aoomg`) instead of the cache folder. */
  beside?: boolean;
  /** Cache folder (default: $ANNDATA_OOM_GENE_INDEX_DIR or ~/.cache/anndata-oom/gene-index). */
  dir?: string;
  /** Memory budget of a build in bytes (default 256 MB). */
  budgetBytes?: number;
}

/** GeneIndexOptions' names, for checkOptionNames. */
export const GENE_INDEX_OPTIONS = { beside: "bool", dir: true, budgetBytes: "num" } as const;

/** What geneIndexInfo() reports. */
export interface GeneIndexInfo {
  /** Where the sidecar of this element is (or would be); "" when the file changed on disk since it was opened (no sidecar applies). */
  path: string;
  /** True when a valid sidecar for the current file exists there. */
  built: boolean;
  /** Its size on disk (0 when not built). */
  bytes: number;
  /** The indexed element, e.g. "/X" or "/layers/counts". */
  element: string;
  /** The widest value type of any gene (each gene uses its narrowest exact one): u8/u16 (counts), f32 or f64. */
  valueKind: string | null;
  /** Non-zero entries indexed. */
  nnz: number | null;
}

/** The sidecar's location and the fingerprint its header must carry. */
export interface Location {
  path: string;
  fingerprint: string;
  element: string;
  /** Cache-folder files of older versions of the same element start with this. */
  stalePrefix: string | null;
}

const sha = (s: string) => createHash("sha256").update(s).digest("hex");

/** Default cache folder of sidecars. */
export function geneIndexDir(): string {
  const cache = process.env.ANNDATA_OOM_CACHE ?? path.join(os.homedir(), ".cache", "anndata-oom");
  return process.env.ANNDATA_OOM_GENE_INDEX_DIR || path.join(cache, "gene-index");
}

// ctime too: `cp -p`, `rsync -t` or os.utime can set the mtime back after
// a write in place, but not the ctime.
function differs(was: fs.BigIntStats | null, now: fs.BigIntStats): boolean {
  return (
    was !== null &&
    (was.dev !== now.dev || was.ino !== now.ino || was.size !== now.size || was.mtimeNs !== now.mtimeNs || was.ctimeNs !== now.ctimeNs)
  );
}

/**
 * Whether the path no longer names the file this object opened (replaced
 * or rewritten since): reads then skip the sidecar and use the open handle.
 */
export function changedSinceOpen(source: Source): boolean {
  try {
    return differs(source.openedStat, fs.statSync(source.path, { bigint: true }));
  } catch {
    return true;
  }
}

export function locate(source: Source, meta: MatrixMeta, opts: GeneIndexOptions = {}): Location {
  let st: fs.BigIntStats;
  try {
    st = fs.statSync(source.path, { bigint: true });
  } catch (e) {
    throw new FileAccessError(`cannot stat ${source.path}: ${String(e)}`, { path: source.path });
  }
  // The sidecar is built from (and checked against) the open handle's data,
  // but named after the path's current state: they must be the same file.
  if (differs(source.openedStat, st)) {
    throw new FileAccessError(
      `${source.path} changed on disk since it was opened (replaced or rewritten); read() it again to use a gene index`,
      { path: source.path },
    );
  }
  const fingerprint = JSON.stringify({
    path: source.path,
    dev: st.dev.toString(),
    ino: st.ino.toString(),
    size: st.size.toString(),
    mtimeNs: st.mtimeNs.toString(),
    ctimeNs: st.ctimeNs.toString(),
    element: meta.path,
    shape: meta.shape,
    nnz: meta.nnz,
  });
  if (opts.beside) {
    // Injective (layers "a b" and "a_b" shared one name and removed each other's sidecar).
    const slug = meta.path
      .replace(/^\/+/, "")
      .replace(/[^A-Za-z0-9_.-]/gu, (c) => Array.from(Buffer.from(c), (b) => `%${b.toString(16).padStart(2, "0")}`).join(""));
    return { path: `${source.path}.${slug}.aoomg`, fingerprint, element: meta.path, stalePrefix: null };
  }
  if (opts.dir !== undefined && (typeof opts.dir !== "string" || opts.dir === ""))
    throw new InvalidArgumentError(`gene index dir must be a non-empty path, got ${JSON.stringify(opts.dir)}`);
  const dir = opts.dir ?? geneIndexDir();
  const prefix = `${sha(`${source.path}\0${meta.path}`).slice(0, 16)}-`;
  return { path: path.join(dir, `${prefix}${sha(fingerprint).slice(0, 24)}.aoomg`), fingerprint, element: meta.path, stalePrefix: prefix };
}

/** Open sidecars of one file, and builds in flight (shared by concurrent callers). */
class Registry {
  readonly open = new Map<string, Native.NativeGeneIndex>();
  readonly building = new Map<string, Promise<void>>();
  constructor(source: Source) {
    source.closers.push(() => {
      for (const h of this.open.values()) h.close();
      this.open.clear();
    });
  }
}

const registries = new WeakMap<Source, Registry>();
function registry(source: Source): Registry {
  let r = registries.get(source);
  if (!r) {
    r = new Registry(source);
    registries.set(source, r);
  }
  return r;
}

/**
 * The valid sidecar at `loc`, opened (cached per file), or null. A stale,
 * truncated or corrupt one is removed so that the next build replaces it.
 */
export function openExisting(source: Source, loc: Location): Native.NativeGeneIndex | null {
  source.native; // throws if closed
  const reg = registry(source);
  const key = `${loc.path}\0${loc.fingerprint}`;
  const hit = reg.open.get(key);
  if (hit) return hit;
  let st: fs.Stats;
  try {
    st = fs.statSync(loc.path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENOTDIR") return null; // not built (or no folder to build in)
    throw new FileAccessError(`cannot stat the gene index ${loc.path}: ${String(e)}`, { path: loc.path });
  }
  // Never open (a FIFO would block the kernel) or remove (a folder) what is not a file.
  if (!st.isFile())
    throw new FileAccessError(`the gene index path ${loc.path} exists and is not a regular file; remove it or choose another dir`, {
      path: loc.path,
    });
  try {
    const h = nativeCall(() => native.NativeGeneIndex.open(loc.path, loc.fingerprint));
    reg.open.set(key, h);
    return h;
  } catch (e) {
    if (e instanceof GeneIndexError) {
      fs.rmSync(loc.path, { force: true });
      return null;
    }
    throw e;
  }
}

/** Forget an opened sidecar that turned out corrupt (and remove it). */
export function discard(source: Source, loc: Location): void {
  const reg = registry(source);
  const key = `${loc.path}\0${loc.fingerprint}`;
  reg.open.get(key)?.close();
  reg.open.delete(key);
  fs.rmSync(loc.path, { force: true });
}

/** Open the sidecar at `loc`, building it first when there is no valid one. */
export async function ensure(
  source: Source,
  loc: Location,
  label: string,
  opts: PassOptions & GeneIndexOptions = {},
): Promise<Native.NativeGeneIndex> {
  const existing = openExisting(source, loc);
  if (existing) return existing;
  const reg = registry(source);
  let pending = reg.building.get(loc.path);
  if (!pending) {
    pending = build(source, loc, label, opts).finally(() => reg.building.delete(loc.path));
    reg.building.set(loc.path, pending);
  }
  await pending;
  const h = openExisting(source, loc);
  if (!h) throw new GeneIndexError(`the gene index at ${loc.path} was built but does not open`, { path: loc.path });
  return h;
}

async function build(source: Source, loc: Location, label: string, opts: PassOptions & GeneIndexOptions): Promise<void> {
  const dir = path.dirname(loc.path);
  try {
    makeFolders(dir);
  } catch (e) {
    throw new FileAccessError(`cannot create the gene index folder ${dir}: ${String(e)}`, { path: dir });
  }
  const pass = nativeCall(() => source.native.startGeneIndex(loc.element, loc.path, loc.fingerprint, opts.budgetBytes));
  await drive(source, label, pass, (p) => p.takeGeneIndex(), opts);
  removeStale(loc);
}

/** Remove sidecars of older versions of the same file and element. */
function removeStale(loc: Location): void {
  if (!loc.stalePrefix) return;
  const dir = path.dirname(loc.path);
  const keep = path.basename(loc.path);
  for (const f of fs.readdirSync(dir)) {
    if (f.startsWith(loc.stalePrefix) && f.endsWith(".aoomg") && f !== keep) fs.rmSync(path.join(dir, f), { force: true });
  }
}

/** Read genes (file columns) at `rows` (file rows; null = all). */
export async function readGenes(index: Native.NativeGeneIndex, cols: Uint32Array, rows: Uint32Array | null): Promise<Float64Array[]> {
  return (await nativeAwait(index.readGenes(cols, rows ?? undefined))) as Float64Array[];
}

/** Facts about the sidecar at `loc` (no build). */
export function info(source: Source, loc: Location): GeneIndexInfo {
  const h = openExisting(source, loc);
  const header = h ? (JSON.parse(nativeCall(() => h.header())) as { value_kind: string; nnz: number }) : null;
  return {
    path: loc.path,
    built: h !== null,
    bytes: h ? fs.statSync(loc.path).size : 0,
    element: loc.element,
    valueKind: header?.value_kind ?? null,
    nnz: header?.nnz ?? null,
  };
}
