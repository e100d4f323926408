/**
 * Shared test helpers: where the generated fixtures are, densifying chunks,
 * turning Arrow vectors into plain values, and comparing with the JSON
 * expectations written by tests/python/make_fixtures.py.
 */
import * as assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import type { Vector } from "apache-arrow";
import type { Chunk, Element } from "../src/engine";

export const FIXTURES = process.env.AOOM_FIXTURES ?? path.join(__dirname, "..", "..", "tests", ".fixtures");
export const PYTHON =
  process.env.AOOM_PYTHON ??
  path.join(process.env.ANNDATA_OOM_CACHE ?? path.join(process.env.HOME ?? "", ".cache", "anndata-oom"), "venv-main", "bin", "python");
export const REPO = path.join(__dirname, "..", "..");

/** Run Python `lines` (the reference venv) on `file` (sys.argv[1], then `more`); its stdout, after asserting success. */
export function runPython(lines: string[], file: string, ...more: string[]): string {
  const r = spawnSync(PYTHON, ["-c", lines.join("\n"), file, ...more], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout;
}

export function manifest(): { name: string; file: string; writer: string; features: string[] }[] {
  return JSON.parse(fs.readFileSync(path.join(FIXTURES, "manifest.json"), "utf8"));
}

export function expected(name: string): any {
  return JSON.parse(fs.readFileSync(path.join(FIXTURES, `${name}.expected.json`), "utf8"));
}

/** Replace {"__float__": ...} markers by numbers, recursively. */
export function decodeFloats(x: any): any {
  if (Array.isArray(x)) return x.map(decodeFloats);
  if (x && typeof x === "object") {
    if ("__float__" in x) return x.__float__ === "nan" ? Number.NaN : x.__float__ === "inf" ? Infinity : -Infinity;
    const out: any = {};
    for (const [k, v] of Object.entries(x)) out[k] = decodeFloats(v);
    return out;
  }
  return x;
}

export function densify(c: Chunk): number[][] {
  const [r, m] = c.shape;
  const out = Array.from({ length: r }, () => new Array<number>(m).fill(0));
  if (c.format === "dense") {
    for (let i = 0; i < r; i++) for (let j = 0; j < m; j++) out[i][j] = Number(c.data[i * m + j]);
  } else {
    for (let i = 0; i < r; i++) for (let p = c.indptr[i]; p < c.indptr[i + 1]; p++) out[i][c.indices[p]] += Number(c.data[p]);
  }
  return out;
}

export function elementDense(e: Element): number[][] | number[] {
  if ("table" in e) throw new Error("dataframe");
  if (e.kind === "dense") {
    if (e.shape.length === 1) return Array.from(e.data, Number);
    const [r, c] = e.shape;
    return Array.from({ length: r }, (_, i) => Array.from(e.data.subarray(i * c, (i + 1) * c), Number));
  }
  const [r, c] = e.shape;
  const out = Array.from({ length: r }, () => new Array<number>(c).fill(0));
  const major = e.kind === "csc" ? c : r;
  for (let k = 0; k < major; k++)
    for (let p = e.indptr[k]; p < e.indptr[k + 1]; p++) {
      if (e.kind === "csc") out[e.indices[p]][k] += Number(e.data[p]);
      else out[k][e.indices[p]] += Number(e.data[p]);
    }
  return out;
}

/** Plain values of a vector (null where missing; bigint → number). */
export function values(v: Vector): unknown[] {
  const out: unknown[] = [];
  for (let i = 0; i < v.length; i++) {
    const x = v.get(i);
    out.push(x === null || x === undefined ? null : typeof x === "bigint" ? Number(x) : x);
  }
  return out;
}

/** Deep equality where numbers compare with a relative tolerance and NaN == NaN. */
export function assertClose(actual: unknown, expectedValue: unknown, where: string, rtol = 1e-6): void {
  if (typeof expectedValue === "number") {
    assert.equal(typeof actual, "number", `${where}: expected a number, got ${String(actual)}`);
    const a = actual as number;
    if (Number.isNaN(expectedValue)) return assert.ok(Number.isNaN(a), `${where}: expected NaN, got ${a}`);
    if (!Number.isFinite(expectedValue)) return assert.equal(a, expectedValue, where);
    const tol = rtol * Math.max(1, Math.abs(expectedValue));
    assert.ok(Math.abs(a - expectedValue) <= tol, `${where}: ${a} != ${expectedValue}`);
    return;
  }
  if (Array.isArray(expectedValue)) {
    const arr = ArrayBuffer.isView(actual) ? Array.from(actual as unknown as ArrayLike<number>) : (actual as unknown[]);
    assert.ok(Array.isArray(arr), `${where}: expected an array, got ${String(actual)}`);
    assert.equal(arr.length, expectedValue.length, `${where}: length`);
    expectedValue.forEach((e, i) => assertClose(arr[i], e, `${where}[${i}]`, rtol));
    return;
  }
  if (expectedValue && typeof expectedValue === "object") {
    for (const [k, v] of Object.entries(expectedValue)) assertClose((actual as any)?.[k], v, `${where}.${k}`, rtol);
    return;
  }
  assert.deepEqual(actual, expectedValue, where);
}
