/**
 * Every fixture written by anndata 0.12 / 0.9 / the 0.7 layout (see
 * tests/python/make_fixtures.py) read by the engine and compared value by
 * value with the expectations the same script wrote.
 */
import * as assert from "node:assert/strict";
import * as path from "node:path";
import { describe, it } from "node:test";
import type { Table, Vector } from "apache-arrow";
import { type AnnDataOOM, read } from "../src/engine";
import type { Frame } from "../src/engine/frame";
import { assertClose, decodeFloats, densify, elementDense, expected, FIXTURES, manifest, values } from "./helpers";

function checkFrame(table: Table, index: Vector, exp: any, where: string): void {
  assert.deepEqual(
    table.schema.fields.map((f) => f.name),
    exp.column_order,
    `${where}: column order`,
  );
  for (const [name, col] of Object.entries<any>(exp.columns)) {
    const v = table.getChild(name) as Vector;
    assert.ok(v, `${where}: column ${name} missing`);
    let got = values(v);
    if (col.kind === "bool" || col.kind === "nullable-boolean") got = got.map((x) => (x === null ? null : Boolean(x)));
    assertClose(got, decodeFloats(col.values), `${where}.${name}`);
    if (col.kind === "categorical") {
      const dict = v.data[0].dictionary as Vector;
      assertClose(values(dict), decodeFloats(col.categories), `${where}.${name} categories`);
      assert.equal((v.type as any).isOrdered, col.ordered, `${where}.${name} ordered`);
    }
  }
  if (exp.index) assert.deepEqual(values(index), exp.index, `${where}: index`);
}

async function checkMatrixLike(a: AnnDataOOM, slot: "obsm" | "varm" | "obsp" | "varp", exp: Record<string, any>): Promise<void> {
  assert.deepEqual(a[slot].keys().sort(), Object.keys(exp).sort(), `${slot} keys`);
  for (const [key, e] of Object.entries<any>(exp)) {
    const el = await a[slot].get(key);
    if (e.kind === "dataframe") {
      const f = el as Frame;
      checkFrame(f.table, f.index, e, `${slot}.${key}`);
      continue;
    }
    assertClose(elementDense(el), decodeFloats(e.kind === "dense" ? e.values : e.dense), `${slot}.${key}`);
  }
}

async function checkX(m: import("../src/engine").BackedMatrix, e: any, where: string): Promise<void> {
  assert.equal(m.format, e.format, `${where} format`);
  assert.equal(m.dtype, e.dtype, `${where} dtype`);
  assert.equal(m.storedEntries, e.nnz, `${where} stored entries`);
  const [n] = m.shape;
  const dense = n ? densify(await m.rows(0, n)) : [];
  assertClose(dense, decodeFloats(e.dense), `${where} values`);
}

function checkUns(got: any, exp: any, where: string): void {
  if (exp === null) return assert.equal(got, null, where);
  if (typeof exp !== "object") return assertClose(got, exp, where);
  if ("__array__" in exp) {
    const arr = decodeFloats(exp.__array__);
    if (got && got.kind === "dense") {
      const [r, c] = got.shape;
      const rows = Array.from({ length: r }, (_, i) => Array.from(got.data.subarray(i * c, (i + 1) * c)));
      return assertClose(rows, arr, where);
    }
    return assertClose(got, arr, where);
  }
  if ("__dataframe__" in exp) return checkFrame(got.table, got.index, exp.__dataframe__, where);
  if ("__records__" in exp) {
    // A record array reads as an Arrow table, one column per field, in order.
    const table = got as Table;
    assert.deepEqual(
      table.schema.fields.map((f) => f.name),
      exp.__records__.map(([name]: [string]) => name),
      `${where}: fields`,
    );
    for (const [name, e] of exp.__records__) checkUns(values(table.getChild(name) as Vector), e, `${where}.${name}`);
    return;
  }
  if ("__float__" in exp) return assertClose(got, decodeFloats(exp), where);
  for (const [k, v] of Object.entries(exp)) checkUns(got?.[k], v, `${where}.${k}`);
}

describe("conformance: engine reads what anndata writes", () => {
  for (const fx of manifest()) {
    it(`${fx.name} (${fx.writer}: ${fx.features.join(", ")})`, async () => {
      const e = expected(fx.name);
      const a = await read(path.join(FIXTURES, fx.file));
      try {
        assert.deepEqual(a.shape, e.shape);
        assert.deepEqual(values(a.obsNames), e.obs_names);
        assert.deepEqual(values(a.varNames), e.var_names);
        checkFrame(a.obs, a.obsNames, e.obs, "obs");
        checkFrame(a.var, a.varNames, e.var, "var");
        if (e.X) await checkX(a.X, e.X, "X");
        else assert.throws(() => a.X);
        for (const slot of ["obsm", "varm", "obsp", "varp"] as const) await checkMatrixLike(a, slot, e[slot] ?? {});
        assert.deepEqual(a.layers.keys().sort(), Object.keys(e.layers ?? {}).sort());
        for (const [k, le] of Object.entries<any>(e.layers ?? {})) {
          const m = a.layers.get(k);
          const [n] = m.shape;
          assertClose(n ? densify(await m.rows(0, n)) : [], decodeFloats(le.kind === "dense" ? le.values : le.dense), `layers.${k}`);
        }
        if (e.raw) {
          const raw = a.raw;
          assert.ok(raw, "raw present");
          assert.deepEqual(raw.shape, e.raw.shape);
          assert.deepEqual(values(raw.varNames), e.raw.var_names);
          checkFrame(raw.var, raw.varNames, e.raw.var, "raw.var");
          if (e.raw.X) await checkX(raw.X as any, e.raw.X, "raw.X");
        } else {
          assert.equal(a.raw, null);
        }
        checkUns(a.uns, e.uns, "uns");
      } finally {
        a.close();
      }
    });
  }
});
