/**
 * The rich-result protocol: a cell's last value that has a
 * `_repr_mimebundle_()` method becomes an `execute_result` with the
 * returned `{ [mime]: data }` (text/plain required; added from
 * util.inspect when missing). The method may return a promise, or a
 * `[data, metadata]` pair as in IPython.
 */

import { Buffer } from "node:buffer";
import { inspect } from "node:util";
import type { MimeBundle } from "./iopub";

export interface RichResult {
  data: MimeBundle;
  metadata: Record<string, unknown>;
}

export function hasMimeBundle(value: unknown): boolean {
  return (
    (typeof value === "object" || typeof value === "function") &&
    value !== null &&
    typeof (value as { _repr_mimebundle_?: unknown })._repr_mimebundle_ === "function"
  );
}

/** Calls the method and normalizes its answer; throws what the method throws. */
export async function mimeBundleOf(value: unknown): Promise<RichResult> {
  const out = await (value as { _repr_mimebundle_(): unknown })._repr_mimebundle_();
  let data: unknown = out;
  let metadata: unknown = {};
  if (Array.isArray(out) && out.length === 2) [data, metadata] = out;
  if (typeof data !== "object" || data === null) throw new TypeError("_repr_mimebundle_() must return an object { [mime]: data }");
  const bundle: MimeBundle = {};
  for (const [mime, v] of Object.entries(data)) {
    if (v === undefined) continue;
    bundle[mime] = v instanceof Uint8Array ? Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString("base64") : v;
  }
  if (typeof bundle["text/plain"] !== "string") bundle["text/plain"] = inspect(value);
  return { data: bundle, metadata: typeof metadata === "object" && metadata !== null ? (metadata as Record<string, unknown>) : {} };
}
