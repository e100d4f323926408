/**
 * Typed errors. Every error from the native core carries a code that maps
 * to one of these classes, plus the file path and the HDF5 element.
 *
 * @example
 * try { await read("atlas.h5ad"); } catch (e) {
 *   if (e instanceof H5adFormatError) console.log(e.element); // e.g. "/X/indptr"
 * }
 */
export class AnnDataOOMError extends Error {
  /** The file involved, when known. */
  readonly path?: string;
  /** The HDF5 element involved (e.g. "/obs/cell_type"), when known. */
  readonly element?: string;
  constructor(message: string, opts: { path?: string; element?: string } = {}) {
    super(message);
    this.name = new.target.name;
    this.path = opts.path;
    this.element = opts.element;
  }
}

/** The file is readable but violates the h5ad format (or is not HDF5). */
export class H5adFormatError extends AnnDataOOMError {}
/** The file cannot be opened: missing, unreadable, locked by a writer. */
export class FileAccessError extends AnnDataOOMError {}
/** A valid element with an encoding this version does not read. */
export class UnsupportedEncodingError extends AnnDataOOMError {}
/** A bad argument: an index out of range, an unknown name, a bad option. */
export class InvalidArgumentError extends AnnDataOOMError {}
/** Use of an object after close(). */
export class ClosedError extends AnnDataOOMError {}
/** A pass stopped by its AbortSignal (or the kernel's interrupt). */
export class CancelledError extends AnnDataOOMError {}
/** A gene-index sidecar that is truncated, corrupt, foreign or stale (`path` names it). */
export class GeneIndexError extends AnnDataOOMError {}
/** A bug: please report it with the message. */
export class InternalError extends AnnDataOOMError {}

const byCode: Record<string, new (m: string, o: { path?: string; element?: string }) => AnnDataOOMError> = {
  H5adFormat: H5adFormatError,
  FileAccess: FileAccessError,
  UnsupportedEncoding: UnsupportedEncodingError,
  InvalidArgument: InvalidArgumentError,
  Closed: ClosedError,
  Cancelled: CancelledError,
  GeneIndex: GeneIndexError,
  Internal: InternalError,
};

const PREFIX = "AOOM_ERROR:";

/** Turn an error thrown by the native addon into its typed class. */
export function fromNative(e: unknown): unknown {
  if (!(e instanceof Error)) return e;
  const at = e.message.indexOf(PREFIX);
  if (at < 0) return e;
  try {
    const info = JSON.parse(e.message.slice(at + PREFIX.length)) as {
      code: string;
      message: string;
      path?: string | null;
      element?: string | null;
    };
    const Cls = byCode[info.code] ?? InternalError;
    const where = [info.element ? `element ${info.element}` : "", info.path ? `in ${info.path}` : ""].filter(Boolean).join(" ");
    return new Cls(where ? `${info.message} (${where})` : info.message, {
      path: info.path ?? undefined,
      element: info.element ?? undefined,
    });
  } catch {
    return e;
  }
}

/**
 * `e` with its element `generic` (what the native side calls an input it
 * got from JS, e.g. "connectivities") named as the user knows it (e.g.
 * "obsp/distances"); other errors unchanged.
 */
export function renameElement(e: unknown, generic: string, element: string): unknown {
  if (!(e instanceof AnnDataOOMError) || e.element !== generic) return e;
  const Cls = e.constructor as new (m: string, o: { path?: string; element?: string }) => AnnDataOOMError;
  return new Cls(e.message.replace(`(element ${generic}`, `(element ${element}`), { path: e.path, element });
}

/** Call a native function, rethrowing its errors as typed classes. */
export function nativeCall<T>(f: () => T): T {
  try {
    return f();
  } catch (e) {
    throw fromNative(e);
  }
}

/** Await a native promise, rethrowing its errors as typed classes. */
export async function nativeAwait<T>(p: Promise<T>): Promise<T> {
  try {
    return await p;
  } catch (e) {
    throw fromNative(e);
  }
}

/** A value as an error message shows it: NaN and Infinity as such (JSON would say null), strings quoted. */
export function shown(v: unknown): string {
  // A BigInt as JS writes it (1n): "got 1" read as if 1 had been refused.
  if (typeof v === "bigint") return `${v}n`;
  if (typeof v === "number" || v === undefined) return String(v);
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return String(v);
  }
}
