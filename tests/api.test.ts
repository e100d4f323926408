/**
 * The engine's public API on real fixtures: subsetting semantics (slices,
 * masks, ordered ints, names, chained views), one-pass statistics against
 * values computed from the expected matrix, chunk iteration, column/row
 * vectors, cancellation and closing.
 */
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, describe, it } from "node:test";
import { Dictionary, Float64, Int8, Int32, makeData, makeVector, Utf8, vectorFromArray } from "apache-arrow";
import { CancelledError, ClosedError, InvalidArgumentError, type Progress, pp, read, slice } from "../src/engine";
import { assertClose, decodeFloats, densify, expected, FIXTURES, runPython, values } from "./helpers";

const LARGE = "csr_large_gzip";
const open = (name: string) => read(path.join(FIXTURES, `${name}.h5ad`));
const dense = (name: string): number[][] => decodeFloats(expected(name).X.dense);

function colStats(m: number[][]): { sum: number[]; mean: number[]; var: number[]; nnz: number[] } {
  const n = m.length;
  const c = m[0]?.length ?? 0;
  const sum = Array.from({ length: c }, (_, j) => m.reduce((s, r) => s + r[j], 0));
  const mean = sum.map((s) => s / n);
  const v = mean.map((mu, j) => m.reduce((s, r) => s + (r[j] - mu) ** 2, 0) / n);
  const nnz = Array.from({ length: c }, (_, j) => m.filter((r) => r[j] !== 0).length);
  return { sum, mean, var: v, nnz };
}
const transpose = (m: number[][]) => (m[0] ?? []).map((_, j) => m.map((r) => r[j]));

describe("subsetting", () => {
  it("keeps the requested order for integer indices, and composes chained views", async () => {
    const a = await open("full_csr");
    const full = dense("full_csr");
    const v = a.subset({ obs: [5, 0, 3], var: [7, 2] });
    assert.deepEqual(v.shape, [3, 2]);
    assertClose(
      densify(await v.X.rows(0, 3)),
      [5, 0, 3].map((i) => [full[i][7], full[i][2]]),
      "view",
    );
    assert.deepEqual(
      values(v.obsNames),
      [5, 0, 3].map((i) => expected("full_csr").obs_names[i]),
    );
    const vv = v.subset({ obs: [2, 0], var: [1] });
    assertClose(densify(await vv.X.rows(0, 2)), [[full[3][2]], [full[5][2]]], "view of view");
    assert.deepEqual(
      values(vv.obs.getChild("barcode")!),
      [3, 5].map((i) => expected("full_csr").obs.columns.barcode.values[i]),
    );
    a.close();
  });

  it("accepts slices (negative step), boolean masks, names and negative positions", async () => {
    const a = await open(LARGE);
    const full = dense(LARGE);
    const e = expected(LARGE);
    const s = a.subset({ obs: slice(10, 2, -3) });
    assert.deepEqual(
      values(s.obsNames),
      [10, 7, 4].map((i) => e.obs_names[i]),
    );
    const mask = e.obs_names.map((_: string, i: number) => i % 50 === 0);
    const m = a.subset({ obs: mask, var: [e.var_names[3], e.var_names[0]] });
    assert.deepEqual(m.shape, [4, 2]);
    assertClose(
      densify(await m.X.rows(0, 4)),
      [0, 50, 100, 150].map((i) => [full[i][3], full[i][0]]),
      "mask+names",
    );
    const neg = a.subset({ obs: [-1] });
    assert.deepEqual(values(neg.obsNames), [e.obs_names[e.obs_names.length - 1]]);
    assert.throws(() => a.subset({ obs: [10_000] }), InvalidArgumentError);
    assert.throws(() => a.subset({ var: ["no-such-gene"] }), InvalidArgumentError);
    assert.throws(() => a.subset({ obs: [true, false] }), InvalidArgumentError);
    a.close();
  });

  it("subsets obsm/obsp/layers with the view", async () => {
    const a = await open("full_csr");
    const e = expected("full_csr");
    const v = a.subset({ obs: [4, 1] });
    const pca = (await v.obsm.get("X_pca")) as { shape: number[]; data: Float32Array };
    assert.equal(pca.shape[0], 2);
    const pcaExp = decodeFloats(e.obsm.X_pca.values);
    assertClose(Array.from(pca.data.subarray(0, pca.shape[1])), pcaExp[4], "obsm row");
    const conn = await v.obsp.get("connectivities");
    assert.deepEqual((conn as { shape: number[] }).shape, [2, 2]);
    a.close();
  });
});

describe("one-pass statistics", () => {
  for (const name of [LARGE, "csc_f64_idx64", "dense_f64_nan", "csr_unsorted_zeros", "dense_int64"]) {
    it(`${name}: sum/mean/var/nnz on both axes match the expected matrix`, async () => {
      const a = await open(name);
      const full = dense(name);
      const byVar = colStats(full);
      const byObs = colStats(transpose(full));
      for (const k of ["sum", "mean", "var", "nnz"] as const) {
        const f = k === "nnz" ? a.X.nnz.bind(a.X) : (a.X[k] as (ax?: 0 | 1) => Promise<Float64Array | number>).bind(a.X);
        assertClose(Array.from((await f(0)) as Float64Array), byVar[k], `${k}(axis 0)`, 1e-9);
        assertClose(Array.from((await f(1)) as Float64Array), byObs[k], `${k}(axis 1)`, 1e-9);
      }
      const total = full.flat().reduce((s, x) => s + x, 0);
      assertClose(await a.X.sum(), total, "sum()", 1e-9);
      a.close();
    });
  }

  it("on a view the statistics cover only the selection", async () => {
    const a = await open(LARGE);
    const full = dense(LARGE);
    const obs = [199, 3, 77, 3];
    const vars = [5, 149, 0];
    const v = a.subset({ obs, var: vars });
    const sub = obs.map((i) => vars.map((j) => full[i][j]));
    assertClose(Array.from((await v.X.sum(0)) as Float64Array), colStats(sub).sum, "view sums", 1e-9);
    assertClose(
      Array.from((await v.X.var(1, { ddof: 1 })) as Float64Array),
      colStats(transpose(sub)).var.map((x) => (x * 3) / 2),
      "ddof=1",
      1e-9,
    );
    a.close();
  });

  it("scattered cell selections (1 in k, random, repeated) read back their rows exactly, CSR and dense, in chunks too", async () => {
    // Rows a few apart share one read of the file; only the wanted ones are
    // kept (session 24: the rows between them were held too).
    for (const name of [LARGE, "dense_f32_chunked"]) {
      const a = await open(name);
      const full = dense(name);
      const n = full.length;
      let seed = 7;
      const rand = () => {
        seed = (seed * 1103515245 + 12345) % 2 ** 31;
        return seed / 2 ** 31;
      };
      const selections: Record<string, number[]> = {
        "1 in 3": Array.from({ length: Math.ceil(n / 3) }, (_, i) => 3 * i),
        "1 in 17": Array.from({ length: Math.ceil(n / 17) }, (_, i) => 17 * i),
        random: Array.from({ length: n }, (_, i) => i).filter(() => rand() < 0.2),
        "repeated, out of order": [9, 2, 9, 40, 3, 3, 41, 0].filter((i) => i < n),
      };
      for (const [what, obs] of Object.entries(selections)) {
        const v = a.subset({ obs });
        const want = obs.map((i) => full[i]);
        assertClose(densify(await v.X.rows(0, obs.length)), want, `${name} ${what}: rows`);
        const got: number[][] = [];
        for await (const { chunk } of v.X.chunked(7)) got.push(...densify(chunk));
        assertClose(got, want, `${name} ${what}: chunked`);
      }
      a.close();
    }
  });

  it("subsets keep the values and missing entries of string, number and boolean columns set in the session (a fast path now)", async () => {
    const a = await open(LARGE);
    const n = a.nObs;
    const strs = Array.from({ length: n }, (_, i) => (i % 5 === 2 ? null : `s${i} ✓`));
    const nums = Array.from({ length: n }, (_, i) => (i % 4 === 1 ? null : i / 2));
    const bools = Array.from({ length: n }, (_, i) => (i % 6 === 3 ? null : i % 3 === 0));
    a.setObs("s", strs);
    // An Arrow float column with a validity bitmap (a JS array's nulls become NaN).
    a.setObs("x", vectorFromArray(nums, new Float64()));
    a.setObs("b", bools);
    const obs = Array.from({ length: Math.floor(n / 2) }, (_, i) => (i * 7) % n);
    const v = a.subset({ obs });
    assert.deepEqual(
      Array.from({ length: obs.length }, (_, i) => v.obs.getChild("s")?.get(i) ?? null),
      obs.map((i) => strs[i]),
    );
    assert.deepEqual(
      Array.from({ length: obs.length }, (_, i) => v.obs.getChild("x")?.get(i) ?? null),
      obs.map((i) => nums[i]),
    );
    assert.deepEqual(
      Array.from({ length: obs.length }, (_, i) => v.obs.getChild("b")?.get(i) ?? null),
      obs.map((i) => bools[i]),
    );
    // A view of a sliced view: the Data's offset is kept in the bitmaps.
    const w = a.subset({ obs: slice(3, n) }).subset({ obs: [0, 5, 1, 5, 2] });
    assert.deepEqual(
      Array.from({ length: 5 }, (_, i) => [w.obs.getChild("s")?.get(i) ?? null, w.obs.getChild("b")?.get(i) ?? null]),
      [3, 8, 4, 8, 5].map((i) => [strs[i], bools[i]]),
    );
    a.close();
  });

  it("a gene mask and a shuffled cell order give the dense matrix's statistics and rows (file-order pass)", async () => {
    const a = await open(LARGE);
    const full = dense(LARGE);
    const mask = full[0].map((_, j) => j % 3 !== 1);
    const vars = mask.flatMap((keep, j) => (keep ? [j] : []));
    const obs = full.map((_, i) => (i * 37) % full.length);
    assert.equal(new Set(obs).size, full.length, "a permutation");
    const v = a.subset({ obs, var: mask });
    const sub = obs.map((i) => vars.map((j) => full[i][j]));
    assertClose(densify(await v.X.rows(0, obs.length)), sub, "rows");
    const byVar = colStats(sub);
    const byObs = colStats(transpose(sub));
    for (const k of ["sum", "var", "nnz"] as const) {
      const f = k === "nnz" ? v.X.nnz.bind(v.X) : (v.X[k] as (ax?: 0 | 1) => Promise<Float64Array | number>).bind(v.X);
      assertClose(Array.from((await f(0)) as Float64Array), byVar[k], `${k}(axis 0)`, 1e-9);
      assertClose(Array.from((await f(1)) as Float64Array), byObs[k], `${k}(axis 1)`, 1e-9);
    }
    a.close();
  });

  it("stays accurate when the mean dwarfs the variance (stable merge)", async () => {
    const a = await open("dense_f64_nan");
    // NaN propagates like numpy; the columns without NaN must be finite.
    const v = (await a.X.var(0)) as Float64Array;
    const exp = colStats(dense("dense_f64_nan")).var;
    assertClose(Array.from(v), exp, "var with NaN/inf", 1e-9);
    a.close();
  });
});

describe("chunks and vectors", () => {
  it("chunked() covers every row once, in order, for CSR, CSC and dense", async () => {
    for (const name of [LARGE, "csc_f64_idx64", "dense_f32_chunked"]) {
      const a = await open(name);
      const rows: number[][] = [];
      let last = 0;
      for await (const { start, end, chunk } of a.X.chunked(7)) {
        assert.equal(start, last);
        assert.equal(chunk.shape[0], end - start);
        rows.push(...densify(chunk));
        last = end;
      }
      assertClose(rows, dense(name), `${name} chunks`);
      a.close();
    }
  });

  it("obsVector and varVector return one gene / one cell", async () => {
    const a = await open(LARGE);
    const full = dense(LARGE);
    assertClose(
      Array.from(await a.X.obsVector(17)),
      full.map((r) => r[17]),
      "gene 17",
    );
    assertClose(Array.from(await a.X.varVector(33)), full[33], "cell 33");
    const e = expected(LARGE);
    assertClose(
      Array.from((await a.obsVector(e.var_names[17])) as Float64Array),
      full.map((r) => r[17]),
      "gene by name",
    );
    assertClose(Array.from((await a.varVector(e.obs_names[33])) as Float64Array), full[33], "cell by name");
    const v = a.subset({ obs: [9, 2] });
    assertClose(Array.from((await v.obsVector(e.var_names[4])) as Float64Array), [full[9][4], full[2][4]], "gene in a view");
    await assert.rejects(a.obsVector("no-such-gene"), InvalidArgumentError);
    a.close();
  });
});

describe("repr", () => {
  it("slot containers, raw and X print as anndata's reprs, not their internals (util.inspect, a notebook cell's value)", async () => {
    const { inspect } = await import("node:util");
    const a = await open("full_csr");
    try {
      assert.equal(inspect(a.obsm), "AxisArrays with keys: X_pca, X_sparse, meta_df");
      assert.equal(inspect(a.obsp), "PairwiseArrays with keys: connectivities, distances");
      assert.equal(inspect(a.layers), "Layers with keys: counts, small_i16, spliced");
      assert.equal(String(a.varm), `AxisArrays with keys: ${a.varm.keys().join(", ")}`);
      assert.equal(inspect(a.raw), "Raw AnnData with n_obs × n_vars = 12 × 10\n    var: 'in_x'");
      assert.equal(inspect([a.X]), "[ BackedMatrix X 12 × 8 csr float32 ]");
      a.setRaw(a);
      const v = a.subset({ obs: [0, 1] });
      assert.match(inspect(v.raw), /^Raw AnnData with n_obs × n_vars = 2 × 8\n {4}var: 'highly_variable', .*\n {4}varm: 'PCs'$/);
    } finally {
      a.close();
    }
    // A chain that changes the values' dtype says so (scanpy's X.dtype; write() stores it).
    const counts = await open("dense_int64");
    pp.log1p(counts);
    assert.equal(counts.X.valueDtype, "float64");
    assert.match(counts.toString(), /X: dense int64, .*\n {7}lazy: log1p \(float64 values\)/);
    counts.close();
  });

  it("names dimensions, X storage, columns with kinds and every slot", async () => {
    const a = await open("full_csr");
    const r = a.toString();
    assert.match(r, /n_obs × n_vars = 12 × 8/);
    assert.match(r, /X: csr float32, 36 stored/);
    assert.match(r, /'cell_type' category\(4\)/);
    assert.match(r, /obsm: 'X_pca' \(array 12×3 float32\)/);
    assert.match(r, /raw: 10 vars/);
    // 64-bit integers are JS numbers (float64 in Arrow) but keep their stored dtype's name, in views too.
    assert.match(r, /'n_genes' int64, 'n_counts_i32' int32/);
    assert.match(r, /'batch_size' int64\?/);
    assert.equal(String(a.obs.getChild("n_genes")?.type), "Float64");
    const view = a.subset({ obs: [0, 1] }).toString();
    assert.match(view, /^View of AnnDataOOM object with n_obs × n_vars = 2 × 8/);
    assert.match(view, /'n_genes' int64/);
    const { inspect } = await import("node:util");
    assert.equal(inspect(a), r);
    a.close();
  });

  it("a view drops the categories none of its cells has and cuts uns colors to them, as anndata's; steps on it leave the parent's uns alone", async () => {
    const file = path.join(FIXTURES, "full_csr.h5ad");
    const rows = [3, 1];
    const want = JSON.parse(
      runPython(
        [
          "import sys, json, anndata as ad",
          "a = ad.read_h5ad(sys.argv[1]); v = a[[3, 1]]",
          "print(json.dumps({c: [str(x) for x in v.obs[c].cat.categories] for c in v.obs if v.obs[c].dtype == 'category'} | {'colors': [str(x) for x in v.uns.get('cell_type_colors', [])]}))",
        ],
        file,
      ),
    );
    for (const touchFirst of [false, true]) {
      const a = await read(file);
      if (touchFirst) assert.equal(Object.keys(a.uns).length > 0, true); // the parent has read uns
      const parentColors = a.uns.cell_type_colors;
      const v = a.subset({ obs: rows });
      for (const [col, cats] of Object.entries(want)) {
        if (col === "colors") continue;
        const dict = v.obs.getChild(col)?.data[0]?.dictionary;
        assert.deepEqual(dict ? Array.from(dict.toArray(), String) : null, cats, `${col} (uns read first: ${touchFirst})`);
      }
      assert.deepEqual(Array.from(v.uns.cell_type_colors as string[]), want.colors);
      v.uns.from_view = 1;
      assert.equal(a.uns.from_view, undefined, "the parent's uns is its own");
      assert.deepEqual(a.uns.cell_type_colors, parentColors);
      a.close();
    }
  });

  it("views keep set categorical columns with narrow codes, drop wrong-length colors even unread, and make a 0-d color a list", async () => {
    const file = path.join(os.tmpdir(), `aoom-view-colors-${process.pid}.h5ad`);
    runPython(
      [
        "import sys, numpy as np, pandas as pd, anndata as ad",
        "obs = pd.DataFrame({'ci': pd.Categorical(list('abcd') * 5), 'cz': pd.Categorical(list('xy') * 10)}, index=[f'c{i}' for i in range(20)])",
        "a = ad.AnnData(np.ones((20, 2), dtype=np.float32), obs=obs)",
        "a.uns['ci_colors'] = ['#111111', '#222222', '#333333']  # 3 colors, 4 categories",
        "a.uns['cz_colors'] = '#123456'  # 0-d",
        "a.write_h5ad(sys.argv[1])",
      ],
      file,
    );
    try {
      const want = JSON.parse(
        runPython(
          [
            "import sys, json, anndata as ad, pandas as pd",
            "v = ad.read_h5ad(sys.argv[1])[[0, 4, 1]]",
            "cz = [str(x) for x in v.uns['cz_colors']]",
            "v.obs['onview'] = pd.Categorical(['x', 'y', 'x'], categories=['x', 'y', 'z'])  # z unused",
            "print(json.dumps({'ci_colors': 'ci_colors' in v.uns, 'cz_colors': cz, 'onview': list(v.obs['onview'].cat.categories)}))",
          ],
          file,
        ),
      );
      const a = await read(file);
      // A column set from JS with Int8 codes (p × 10, r × 10; q unused).
      const codes = Int8Array.from({ length: 20 }, (_, i) => (i < 10 ? 0 : 2));
      a.setObs(
        "narrow",
        makeVector(
          makeData({
            type: new Dictionary(new Utf8(), new Int8()),
            length: 20,
            data: codes,
            dictionary: vectorFromArray(["p", "q", "r"], new Utf8()),
          }),
        ),
      );
      const v = a.subset({ obs: slice(8, 12) });
      assert.deepEqual(
        Array.from({ length: 4 }, (_, i) => v.obs.getChild("narrow")?.get(i)),
        ["p", "p", "r", "r"],
      );
      const out = path.join(os.tmpdir(), `aoom-view-colors-${process.pid}-out.h5ad`);
      const w = a.subset({ obs: [0, 4, 1] });
      // Set on the view: anndata makes the view actual and keeps the unused category.
      w.setObs(
        "onview",
        makeVector(
          makeData({
            type: new Dictionary(new Utf8(), new Int32()),
            length: 3,
            data: Int32Array.from([0, 1, 0]),
            dictionary: vectorFromArray(["x", "y", "z"], new Utf8()),
          }),
        ),
      );
      await w.write(out); // neither object has read uns
      const got = JSON.parse(
        runPython(
          [
            "import sys, json, anndata as ad",
            "b = ad.read_h5ad(sys.argv[1])",
            "print(json.dumps({'ci_colors': 'ci_colors' in b.uns, 'onview': list(b.obs['onview'].cat.categories)}))",
          ],
          out,
        ),
      );
      assert.equal(got.ci_colors, want.ci_colors, "wrong-length colors dropped, as anndata's view");
      assert.deepEqual(got.onview, want.onview, "a column set on the view keeps its unused categories");
      assert.deepEqual(w.uns.cz_colors, want.cz_colors, "a 0-d color becomes a list of one");
      // Categories that are themselves categorical would be written as NaN (unreadable by anndata).
      const nested = makeVector(
        makeData({
          type: new Dictionary(new Utf8(), new Int8()),
          length: 20,
          data: codes,
          dictionary: vectorFromArray(["p", "q", "r"]),
        } as never),
      );
      assert.throws(() => a.setObs("nested", nested as never), /themselves categorical/);
      a.close();
      fs.rmSync(out, { force: true });
    } finally {
      fs.rmSync(file, { force: true });
    }
  });

  it("setObs refuses categoricals anndata could not read back (duplicate or missing categories, codes out of range); odd shapes, BigInt arrays and '.' names are refused at set", async () => {
    const a = await open("full_csr");
    try {
      const cat = (dictionary: unknown[], codes: number[], valueType: Utf8 | Float64 = new Utf8()) =>
        makeVector(
          makeData({
            type: new Dictionary(valueType, new Int32()),
            length: codes.length,
            data: Int32Array.from(codes),
            dictionary: vectorFromArray(dictionary as never[], valueType as never),
          } as never),
        );
      const n = a.nObs;
      const codes = Array.from({ length: n }, (_, i) => i % 2);
      assert.throws(() => a.setObs("dup", cat(["x", "x"], codes)), /appears twice/);
      assert.throws(() => a.setObs("nan", cat([1, Number.NaN], codes, new Float64())), /category 1 is missing/);
      assert.throws(
        () =>
          a.setObs(
            "range",
            cat(
              ["x", "y"],
              codes.map((c) => c * 5),
            ),
          ),
        /code 5 is out of range for 2 categories/,
      );
      a.setObs("fine", cat(["x", "y", "unused"], codes));
      assert.equal(a.obs.getChild("fine")?.get(1), "y");
      assert.throws(() => a.obsm.set("half", { kind: "dense", shape: [n, 0.5], data: new Float64Array(n) } as never), /whole numbers/);
      assert.throws(() => a.obsm.set("big", { kind: "dense", shape: [n, 1], data: new BigInt64Array(n) } as never), /BigInt/);
      assert.throws(() => a.setObs(".", codes), /other than "\."/);
      a.uns.bad = { kind: "dense", shape: [-1], data: new Float64Array(2) };
      await assert.rejects(() => a.write(path.join(os.tmpdir(), `aoom-bad-shape-${process.pid}.h5ad`)), /does not fit its 2 values/);
    } finally {
      a.close();
    }
  });

  it("shows obs/var as a table of rows (head and tail, index first) and names as an Index in console.log and notebooks, not Arrow internals", async () => {
    const { inspect } = await import("node:util");
    const a = await open("full_csr");
    const e = expected("full_csr");
    const text = inspect(a.obs);
    const lines = text.split("\n");
    assert.match(lines[0], /^\s+cell_type\s+stage\s+barcode\s+n_genes/);
    assert.ok(lines[1].startsWith(e.obs_names[0]), lines[1]);
    assert.match(text, /…/, "12 rows: the first and last five with a gap");
    assert.ok(lines.some((l) => l.startsWith(e.obs_names[11])));
    assert.match(text, /\[12 rows × 14 columns\]$/);
    assert.doesNotMatch(text, /schema|batches|RecordBatch/);
    const bundle = (a.obs as unknown as { _repr_mimebundle_(): Record<string, string> })._repr_mimebundle_();
    assert.equal(bundle["text/plain"], text);
    assert.match(bundle["text/html"], /^<div><table class="dataframe">/);
    // Views and tables with new columns keep the repr.
    const v = a.subset({ obs: [3, 1] });
    assert.ok(inspect(v.obs).split("\n")[1].startsWith(e.obs_names[3]));
    assert.match(inspect(v.obs), /\[2 rows × 14 columns\]$/);
    assert.equal(inspect(v.obsNames), `Index(['${e.obs_names[3]}', '${e.obs_names[1]}'], length=2)`);
    assert.match(inspect(a.varNames), /^Index\(\['GAPDH', 'ACTB', .*\], length=8\)$/);
    a.setObs("flag", new Float64Array(12).fill(1));
    assert.match(inspect(a.obs), /\[12 rows × 15 columns\]$/);
    // A column shows as a pandas Series: index and value, then name, length and kind.
    const ct = a.obs.getChild("cell_type");
    const series = inspect(ct).split("\n");
    assert.equal(series.length, 12);
    assert.match(series[0], new RegExp(`^${e.obs_names[0]}\\s+${String(ct?.get(0))}$`));
    assert.equal(series[5], "...");
    assert.match(series[11], /^Name: cell_type, Length: 12, dtype: category\(\d+\)$/);
    assert.match(inspect(v.obs.getChild("n_genes")), /\nName: n_genes, Length: 2, dtype: int64$/);
    const byPosition = a.obs.getChildAt(0) as unknown as { _repr_mimebundle_(): Record<string, string> };
    assert.match(byPosition._repr_mimebundle_()["text/plain"], /\nName: cell_type, Length: 12/);
    assert.equal(ct?.get(1), a.obs.getChild("cell_type")?.get(1), "still a plain Arrow vector");
    assert.doesNotMatch(inspect(ct), /Data|children|buffers/);
    a.close();
  });
});

describe("progress, cancellation and closing", () => {
  it("reports progress ending in done", async () => {
    const a = await open(LARGE);
    const seen: Progress[] = [];
    await a.X.stats({ onProgress: (p) => seen.push(p) });
    assert.ok(seen.length >= 1);
    assert.equal(seen[seen.length - 1].state, "done");
    assert.equal(seen[seen.length - 1].rowsDone, 200);
    a.close();
  });

  it("a cancelled pass rejects with CancelledError and a rerun succeeds", async () => {
    const a = await open(LARGE);
    const ac = new AbortController();
    ac.abort();
    await assert.rejects(a.X.sum(1, { signal: ac.signal }), CancelledError);
    const s = (await a.X.sum(1)) as Float64Array;
    assertClose(
      Array.from(s),
      dense(LARGE).map((r) => r.reduce((x, y) => x + y, 0)),
      "rerun",
      1e-9,
    );
    a.close();
  });

  it("any use after close() throws ClosedError", async () => {
    const a = await open("full_csr");
    const v = a.subset({ obs: [0] });
    a.close();
    assert.throws(() => a.X, ClosedError);
    assert.throws(() => v.obs, ClosedError);
    assert.throws(() => a.uns, ClosedError);
    assert.match(a.toString(), /closed/);
    await assert.rejects(async () => a.write("/tmp/never.h5ad"), ClosedError);
  });
});

describe("semantics an anndata user relies on (a probe's findings)", () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "aoom-api-probe-"));
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it("obsVector / varVector with a layer give the layer's values, as anndata's obs_vector(layer=) (the option was refused)", async () => {
    const file = path.join(FIXTURES, "full_csr.h5ad");
    const a = await open("full_csr");
    try {
      const gene = a.varNames.get(2) as string;
      const cell = a.obsNames.get(3) as string;
      const want = JSON.parse(
        runPython(
          [
            "import sys, json, anndata as ad",
            "a = ad.read_h5ad(sys.argv[1])",
            `print(json.dumps([a.obs_vector(${JSON.stringify(gene)}, layer="counts").tolist(), a.var_vector(${JSON.stringify(cell)}, layer="counts").tolist()]))`,
          ],
          file,
        ),
      );
      assert.deepEqual(Array.from((await a.obsVector(gene, { layer: "counts" })) as Float64Array), want[0]);
      assert.deepEqual(Array.from((await a.varVector(cell, { layer: "counts" })) as Float64Array), want[1]);
      const v = a.subset({ obs: [3, 1] });
      assert.deepEqual(Array.from((await v.obsVector(gene, { layer: "counts" })) as Float64Array), [want[0][3], want[0][1]]);
    } finally {
      a.close();
    }
  });

  it("X.var(0) keeps the variance of columns whose mean dwarfs it (1e7 ± 1, dense and CSR, float32 and float64), as numpy", async () => {
    const file = path.join(tmp, "offset.h5ad");
    const want = JSON.parse(
      runPython(
        [
          "import sys, json, numpy as np, scipy.sparse as sp, anndata as ad",
          "rng = np.random.default_rng(0)",
          "X = 1e7 + rng.normal(size=(5000, 3))",
          "X[:, 2] = np.where(rng.random(5000) < 0.5, 0, X[:, 2])  # half zeros: a sparse column",
          "ad.AnnData(X=X, layers={'csr': sp.csr_matrix(X), 'f32': X.astype(np.float32)}).write_h5ad(sys.argv[1])",
          "print(json.dumps({'f64': X.var(0).tolist(), 'f32': X.astype(np.float32).astype(np.float64).var(0).tolist(), 'ddof1': X.var(0, ddof=1).tolist()}))",
        ],
        file,
      ),
    );
    const a = await read(file);
    try {
      const close = (got: Float64Array | number, w: number[], what: string) =>
        w.forEach((x, j) =>
          assert.ok(Math.abs((got as Float64Array)[j] - x) <= 1e-9 * x, `${what}[${j}]: ${(got as Float64Array)[j]} vs numpy ${x}`),
        );
      close(await a.X.var(0), want.f64, "dense");
      close(await a.layers.get("csr").var(0), want.f64, "csr");
      close(await a.layers.get("f32").var(0), want.f32, "float32 values, in float64");
      close(await a.X.var(0, { ddof: 1 }), want.ddof1, "ddof 1");
      // numpy divides by max(n − ddof, 0): Infinity, never a negative variance
      for (const x of (await a.X.var(0, { ddof: 5001 })) as Float64Array) assert.equal(x, Number.POSITIVE_INFINITY);
      await assert.rejects(() => a.X.var(0, { ddof: Number.NaN }), InvalidArgumentError);
    } finally {
      a.close();
    }
  });

  it("a boolean mask with a missing value, or with numbers after a boolean, is refused (anndata raises)", async () => {
    const a = await open("full_csr");
    try {
      const mask: (boolean | null)[] = Array.from({ length: a.nObs }, (_, i) => i % 2 === 0);
      assert.equal(a.subset({ obs: mask as boolean[] }).nObs, Math.ceil(a.nObs / 2));
      mask[1] = null;
      assert.throws(() => a.subset({ obs: mask as boolean[] }), /boolean mask holds null at position 1/);
      const mixed = [true, ...Array.from({ length: a.nObs - 1 }, () => 1)];
      assert.throws(() => a.subset({ obs: mixed as unknown as boolean[] }), /boolean mask holds 1 at position 1/);
    } finally {
      a.close();
    }
  });

  it("obsVector / varVector of a key that is both a column and a name is an error, as anndata's obs_vector", async () => {
    const file = path.join(tmp, "ambiguous.h5ad");
    runPython(
      [
        "import sys, numpy as np, pandas as pd, anndata as ad",
        "a = ad.AnnData(np.arange(6, dtype=np.float32).reshape(3, 2), obs=pd.DataFrame({'g1': [1.0, 2.0, 3.0], 'c': ['x', 'y', 'z']}, index=['a', 'b', 'c']), var=pd.DataFrame({'a': [5.0, 6.0]}, index=['g0', 'g1']))",
        "a.write_h5ad(sys.argv[1])",
      ],
      file,
    );
    const a = await read(file);
    try {
      await assert.rejects(() => a.obsVector("g1"), /"g1" is both an obs column and a var name/);
      await assert.rejects(() => a.varVector("a"), /"a" is both a var column and an obs name/);
      assert.deepEqual(Array.from((await a.obsVector("g0")) as Float64Array), [0, 2, 4]);
    } finally {
      a.close();
    }
  });

  it("write() stores a string column with repeated values as a categorical, as anndata's write_h5ad (strings_to_categoricals)", async () => {
    const a = await open("full_csr");
    const out = path.join(tmp, "strings.h5ad");
    try {
      const n = a.nObs;
      a.setObs(
        "label",
        Array.from({ length: n }, (_, i) => (i === 1 ? null : ["b", "a", "é", "B"][i % 4])),
      );
      a.setObs(
        "unique",
        Array.from({ length: n }, (_, i) => `cell-${i}`),
      );
      await a.write(out);
    } finally {
      a.close();
    }
    const got = JSON.parse(
      runPython(
        [
          "import sys, json, warnings, pandas as pd, anndata as ad",
          "warnings.simplefilter('error')",
          "b = ad.read_h5ad(sys.argv[1])",
          "lab = b.obs['label']",
          "print(json.dumps({'label': str(lab.dtype), 'cats': list(lab.cat.categories), 'first': [None if pd.isna(x) else x for x in lab[:5]], 'unique': str(b.obs['unique'].dtype)}))",
        ],
        out,
      ),
    );
    assert.equal(got.label, "category");
    assert.deepEqual(got.cats, ["B", "a", "b", "é"], "pandas' order (by code point)");
    assert.deepEqual(got.first, ["b", null, "é", "B", "b"]);
    assert.equal(got.unique, "object", "all distinct: stays strings, as anndata");
  });

  it("nullable columns are written with their parts' encodings: anndata reads them back without an OldFormatWarning", async () => {
    const file = path.join(tmp, "nullable.h5ad");
    runPython(
      [
        "import sys, numpy as np, pandas as pd, anndata as ad",
        "obs = pd.DataFrame({'ni': pd.array([1, None, 3], dtype='Int64'), 'nb': pd.array([True, None, False], dtype='boolean')}, index=['x', 'y', 'z'])",
        "ad.AnnData(np.zeros((3, 2), np.float32), obs=obs).write_h5ad(sys.argv[1])",
      ],
      file,
    );
    const a = await read(file);
    const out = path.join(tmp, "nullable-out.h5ad");
    const view = a.subset({ obs: [1, 2] });
    view.setObs("ns", ["p", null]);
    await view.write(out);
    a.close();
    const got = runPython(
      [
        "import sys, warnings, anndata as ad",
        "warnings.simplefilter('error')",
        "b = ad.read_h5ad(sys.argv[1])",
        "print({k: str(v) for k, v in b.obs.dtypes.items()}, b.obs['ni'].tolist())",
      ],
      out,
    ).trim();
    // a string column with a missing value always has fewer categories than rows: anndata writes it as one
    assert.match(got, /'ni': 'Int64', 'nb': 'boolean', 'ns': 'category'/);
    assert.match(got, /\[<NA>, 3\]$/);
  });
});
