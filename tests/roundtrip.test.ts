/**
 * Files written by the engine are read back by Python anndata and
 * compared element by element with the source (tests/python/verify_roundtrip.py),
 * whole and as reordered subsets.
 */
import * as assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, describe, it } from "node:test";
import { Table, type Vector, vectorFromArray } from "apache-arrow";
import { InvalidArgumentError, pp, read, slice } from "../src/engine";
import type { Element } from "../src/engine/elements";
import { FIXTURES, manifest, PYTHON, REPO } from "./helpers";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "aoom-rt-"));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

function verify(src: string, written: string, subset?: { obs?: number[]; var?: number[] }): void {
  // Subsets are compared with anndata's view of the same rows, which drops unused categories.
  const args = [path.join(REPO, "tests/python/verify_roundtrip.py"), src, written];
  if (subset) {
    const f = path.join(tmp, `${path.basename(written)}.subset.json`);
    fs.writeFileSync(f, JSON.stringify(subset));
    args.push("--subset-json", f);
  }
  try {
    execFileSync(PYTHON, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  } catch (e: any) {
    assert.fail(`anndata found mismatches:\n${e.stdout}\n${e.stderr}`);
  }
}

describe("roundtrip: engine writes, anndata reads back identically", () => {
  for (const fx of manifest().filter((f) => !f.writer.startsWith("h5py"))) {
    it(`${fx.name}: whole file`, async () => {
      const src = path.join(FIXTURES, fx.file);
      const out = path.join(tmp, `${fx.name}.h5ad`);
      const a = await read(src);
      await a.write(out);
      a.close();
      verify(src, out);
    });
  }

  for (const name of ["full_csr", "csc_f64_idx64", "dense_f32_chunked", "csr_unsorted_zeros", "ad09_dense", "archive_v0_5_0"]) {
    it(`${name}: reordered subset of obs and var`, async () => {
      const src = path.join(FIXTURES, `${name}.h5ad`);
      const a = await read(src);
      const [n, m] = a.shape;
      const obs = [n - 1, 0, Math.floor(n / 2), 1];
      const vars = [m - 1, 1, 0].filter((x, i, arr) => arr.indexOf(x) === i);
      const out = path.join(tmp, `${name}.subset.h5ad`);
      await a.subset({ obs, var: vars }).write(out);
      a.close();
      verify(src, out, { obs, var: vars });
    });
  }

  it("a shuffled view over many blocks is written in the view's order, raw and through normalize → log1p (file-order read, replayed)", async () => {
    const saved = process.env.ANNDATA_OOM_BLOCK_BYTES;
    process.env.ANNDATA_OOM_BLOCK_BYTES = "65536";
    try {
      const src = path.join(FIXTURES, "pp", "synth_3k.h5ad");
      const a = await read(src);
      const n = a.nObs;
      const obs = Array.from({ length: n }, (_, i) => (i * 1543) % n);
      assert.equal(new Set(obs).size, n);
      const raw = path.join(tmp, "shuffled.h5ad");
      await a.subset({ obs }).write(raw);
      verify(src, raw, { obs });
      // Through a chain: the shuffled write equals the file-order write, permuted.
      await pp.normalizeTotal(a, { targetSum: 1e4 });
      pp.log1p(a);
      const sorted = path.join(tmp, "chain-sorted.h5ad");
      const shuffled = path.join(tmp, "chain-shuffled.h5ad");
      await a.write(sorted);
      await a.subset({ obs }).write(shuffled);
      a.close();
      const [x, y] = [await read(sorted), await read(shuffled)];
      const rx = (await x.X.rows(0, n)) as { indptr: ArrayLike<number>; indices: ArrayLike<number>; data: ArrayLike<number> };
      const ry = (await y.X.rows(0, n)) as { indptr: ArrayLike<number>; indices: ArrayLike<number>; data: ArrayLike<number> };
      const row = (r: typeof rx, i: number) =>
        Array.from({ length: r.indptr[i + 1] - r.indptr[i] }, (_, k) => `${r.indices[r.indptr[i] + k]}:${r.data[r.indptr[i] + k]}`).join(
          ",",
        );
      for (let i = 0; i < n; i++) assert.equal(row(ry, i), row(rx, obs[i]), `row ${i}`);
      assert.deepEqual(
        Array.from({ length: 5 }, (_, i) => y.obsNames.get(i)),
        obs.slice(0, 5).map((i) => x.obsNames.get(i)),
      );
      x.close();
      y.close();
      assert.deepEqual(
        fs.readdirSync(os.tmpdir()).filter((f) => f.startsWith(`anndata-oom-reorder-${process.pid}-`)),
        [],
        "the reorder spill is removed",
      );
    } finally {
      if (saved === undefined) delete process.env.ANNDATA_OOM_BLOCK_BYTES;
      else process.env.ANNDATA_OOM_BLOCK_BYTES = saved;
    }
  });

  it("small sparse matrices are written in one chunk of their length (a 64K-element chunk cost ~0.5 MB per dataset); large ones in 64K chunks", async () => {
    const small = path.join(FIXTURES, "full_csr.h5ad");
    const large = path.join(FIXTURES, "pp", "synth_3k.h5ad");
    const outs: string[] = [];
    for (const [src, name] of [
      [small, "small"],
      [large, "large"],
    ]) {
      const a = await read(src);
      await a.write(path.join(tmp, `chunks-${name}-copy.h5ad`)); // X copied as stored
      await pp.normalizeTotal(a, { targetSum: 1e4 });
      pp.log1p(a);
      await a.write(path.join(tmp, `chunks-${name}-chain.h5ad`)); // X through the plan writer
      a.close();
      outs.push(path.join(tmp, `chunks-${name}-copy.h5ad`), path.join(tmp, `chunks-${name}-chain.h5ad`));
    }
    const got = execFileSync(
      PYTHON,
      [
        "-c",
        "import sys, json, h5py\nout = []\nfor f in sys.argv[1:]:\n    with h5py.File(f) as h: out.append([[h['X'][k].chunks[0], h['X'][k].shape[0]] for k in ('data', 'indices')])\nprint(json.dumps(out))",
        ...outs,
      ],
      { encoding: "utf8" },
    );
    const [smallCopy, smallChain, largeCopy, largeChain] = JSON.parse(got) as [number, number][][];
    for (const [chunk, n] of [...smallCopy, ...smallChain]) assert.equal(chunk, n, "one chunk of the dataset's length");
    for (const [chunk, n] of [...largeCopy, ...largeChain]) assert.ok(chunk === 65536 && n > 65536, `${chunk} ${n}`);
    // (each chunked dataset adds a few KB of index: indptr is chunked too since session 24)
    assert.ok(fs.statSync(outs[1]).size < 150_000, `${fs.statSync(outs[1]).size} bytes for a 12 × 8 matrix`);
    verify(small, outs[0]);
    verify(large, outs[2]);
  });

  it("writes gzip-compressed matrices on request", async () => {
    const src = path.join(FIXTURES, "csr_large_gzip.h5ad");
    const out = path.join(tmp, "gz.h5ad");
    const a = await read(src);
    await a.write(out, { compression: "gzip" });
    a.close();
    verify(src, out);
    const b = await read(out);
    assert.match(b.X.meta.compression ?? "", /gzip/);
    b.close();
  });

  it("in-memory obsm/varm/obsp/varp elements of every kind (CSR, CSC, dense, dataframe) follow views, repeated and reordered positions too, and are written as anndata writes them", async () => {
    const src = path.join(tmp, "elements.h5ad");
    execFileSync(PYTHON, [
      "-c",
      [
        "import sys, numpy as np, pandas as pd, scipy.sparse as sp, anndata as ad",
        "r = lambda m, n, fmt, seed, dtype=np.float64: sp.random(m, n, density=0.4, format=fmt, random_state=seed, dtype=dtype)",
        "a = ad.AnnData(r(6, 5, 'csr', 0, np.float32), obs=pd.DataFrame(index=[f'c{i}' for i in range(6)]), var=pd.DataFrame(index=[f'g{j}' for j in range(5)]))",
        "a.obsm['csr'] = r(6, 4, 'csr', 1, np.float32)",
        "a.obsm['csc'] = r(6, 3, 'csc', 2)",
        "a.obsm['dense'] = np.arange(18, dtype=np.int32).reshape(6, 3)",
        "a.obsm['frame'] = pd.DataFrame({'x': np.arange(6.0), 'ct': pd.Categorical(list('abcabd'))}, index=a.obs_names)",
        "a.obsp['dense'] = np.arange(36, dtype=np.float64).reshape(6, 6)",
        "a.obsp['csc'] = r(6, 6, 'csc', 3, np.float32)",
        "a.obsp['csr'] = r(6, 6, 'csr', 4)",
        "a.varm['csr'] = r(5, 2, 'csr', 5)",
        "a.varm['frame'] = pd.DataFrame({'y': list('vwxyz')}, index=a.var_names)",
        "a.varp['dense'] = np.arange(25.0).reshape(5, 5)",
        "a.varp['csc'] = r(5, 5, 'csc', 6)",
        "a.write_h5ad(sys.argv[1])",
      ].join("\n"),
      src,
    ]);
    const slots = ["obsm", "varm", "obsp", "varp"] as const;
    for (const subset of [undefined, { obs: [4, 1, 1, 5, 0], var: [3, 0, 0, 4] }, { obs: [5, 3], var: [2] }]) {
      const a = await read(src);
      // Every element replaced by its in-memory copy: the view and the writer see only session values.
      for (const slot of slots) for (const k of a[slot].keys()) a[slot].set(k, await a[slot].get(k));
      const v = subset ? a.subset(subset) : a;
      const kindOf = (el: Element | null) => (el && !("table" in el) ? el.kind : undefined);
      const kinds = await Promise.all(slots.map(async (slot) => kindOf(await v[slot].get("csc").catch(() => null))));
      assert.deepEqual(kinds, ["csc", undefined, "csc", "csc"], "a view keeps a CSC element CSC");
      const out = path.join(tmp, `elements.${subset ? subset.obs.length : "all"}.h5ad`);
      await v.write(out);
      a.close();
      verify(src, out, subset);
    }
  });

  it("columns set from sliced or concatenated Arrow vectors keep their values, missing cells and dtypes; repeated strings get natsorted categories", async () => {
    const src = path.join(tmp, "columns.h5ad");
    execFileSync(PYTHON, [
      "-c",
      [
        "import sys, numpy as np, pandas as pd, anndata as ad",
        "n = 30",
        "obs = pd.DataFrame(index=[f'c{i}' for i in range(n)])",
        "obs['cs'] = pd.Categorical([None if i % 7 == 3 else 'abc'[i * i % 3] for i in range(n)])",
        "obs['ci'] = pd.Categorical([(33, 2, 10)[i % 3] for i in range(n)], categories=[33, 2, 10, 99])",
        "obs['c8'] = pd.Categorical(np.array([(5, 1)[i % 2] for i in range(n)], dtype=np.int8))",
        "obs['cf'] = pd.Categorical(np.array([(0.5, 2.5)[i % 2] for i in range(n)], dtype=np.float32))",
        "obs['i64'] = np.arange(n, dtype=np.int64) * 3",
        "obs['n64'] = pd.array([None if i % 4 == 1 else i for i in range(n)], dtype='Int64')",
        "obs['s'] = [f's{i}' for i in range(n)]",
        "a = ad.AnnData(np.ones((n, 2), np.float32), obs=obs)",
        "a.obsm['X_int'] = np.arange(2 * n, dtype=np.int64).reshape(n, 2)",
        "a.write_h5ad(sys.argv[1])",
      ].join("\n"),
      src,
    ]);
    const a = await read(src);
    const v = a.subset({ obs: slice(10, 20) });
    for (const k of ["cs", "ci", "c8", "cf", "i64", "n64", "s"]) v.setObs(`${k}_copy`, (a.obs.getChild(k) as Vector).slice(10, 20));
    // Two chunks with different dictionaries.
    const d1 = vectorFromArray(["a", "b", "a", "b", "a"]);
    const d2 = vectorFromArray(["c", "d", "c", "c", null]);
    v.setObs("chunks", d1.concat(d2));
    v.obsm.set("frame", { index: v.obsNames, table: new Table({ k: (a.obs.getChild("cs") as Vector).slice(10, 20) }) });
    v.obsm.set("X_copy", await v.obsm.get("X_int"));
    v.setObs(
      "cl",
      Array.from({ length: 10 }, (_, i) => `cluster ${((i * 7) % 4) * 5}`),
    );
    const out = path.join(tmp, "columns.out.h5ad");
    await v.write(out);
    a.close();
    const check = [
      "import sys, numpy as np, pandas as pd, anndata as ad",
      "from natsort import natsorted",
      "s = ad.read_h5ad(sys.argv[1])[10:20]",
      "o = ad.read_h5ad(sys.argv[2])",
      "def same(x, y): return list(pd.Series(x).astype(object).where(pd.notna(x), None)) == list(pd.Series(y).astype(object).where(pd.notna(y), None))",
      "bad = []",
      "for k in ['cs', 'ci', 'c8', 'cf', 'i64', 'n64', 's']:",
      "    x, y = s.obs[k], o.obs[k + '_copy']",
      "    if not same(x.values, y.values): bad.append((k, list(x), list(y)))",
      "    if isinstance(x.dtype, pd.CategoricalDtype):",
      "        if y.cat.categories.dtype != x.cat.categories.dtype: bad.append((k, 'categories dtype', str(y.cat.categories.dtype)))",
      "    elif str(y.dtype) != str(x.dtype): bad.append((k, 'dtype', str(x.dtype), str(y.dtype)))",
      "if not same(o.obs['chunks'].values, ['a', 'b', 'a', 'b', 'a', 'c', 'd', 'c', 'c', None]): bad.append(('chunks', list(o.obs['chunks'])))",
      "if not same(o.obsm['frame']['k'].values, s.obs['cs'].values): bad.append(('frame', list(o.obsm['frame']['k'])))",
      "if o.obsm['X_copy'].dtype != np.int64 or not np.array_equal(o.obsm['X_copy'], s.obsm['X_int']): bad.append(('X_copy', str(o.obsm['X_copy'].dtype)))",
      "cl = [f'cluster {(i * 7) % 4 * 5}' for i in range(10)]",
      "if list(o.obs['cl'].cat.categories) != natsorted(set(cl)) or list(o.obs['cl']) != cl: bad.append(('cl', list(o.obs['cl'].cat.categories)))",
      "print(bad)",
      "sys.exit(1 if bad else 0)",
    ].join("\n");
    try {
      execFileSync(PYTHON, ["-c", check, src, out], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
    } catch (e: any) {
      assert.fail(`anndata read back other columns:\n${e.stdout}\n${e.stderr}`);
    }
  });

  it("uns values with no JS form (a sparse matrix, a dataframe) copied or moved to another key are written as copies of the element", async () => {
    const src = path.join(tmp, "uns-copy.h5ad");
    execFileSync(PYTHON, [
      "-c",
      [
        "import sys, numpy as np, pandas as pd, scipy.sparse as sp, anndata as ad",
        "a = ad.AnnData(np.ones((4, 2), np.float32))",
        "a.uns['sparse'] = sp.csr_matrix(np.array([[0, 1.5], [2, 0]]))",
        "a.uns['df'] = pd.DataFrame({'x': [1, 2, 3], 'y': list('abc')}, index=['r0', 'r1', 'r2'])",
        "a.write_h5ad(sys.argv[1])",
      ].join("\n"),
      src,
    ]);
    const a = await read(src);
    const uns = a.uns;
    uns.m = uns.sparse;
    delete uns.sparse;
    uns.df2 = uns.df;
    uns.nested = { df: uns.df, n: 1 };
    const out = path.join(tmp, "uns-copy.out.h5ad");
    await a.write(out);
    a.close();
    const check = [
      "import sys, numpy as np, pandas as pd, anndata as ad",
      "s, o = ad.read_h5ad(sys.argv[1]), ad.read_h5ad(sys.argv[2])",
      "assert 'sparse' not in o.uns, list(o.uns)",
      "assert (o.uns['m'] != s.uns['sparse']).nnz == 0 and o.uns['m'].shape == (2, 2), o.uns['m']",
      "pd.testing.assert_frame_equal(o.uns['df2'], s.uns['df'])",
      "pd.testing.assert_frame_equal(o.uns['nested']['df'], s.uns['df'])",
      "assert o.uns['nested']['n'] == 1",
    ].join("\n");
    try {
      execFileSync(PYTHON, ["-c", check, src, out], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
    } catch (e: any) {
      assert.fail(`anndata read back other uns values:\n${e.stdout}\n${e.stderr}`);
    }
  });

  it("written sparse matrices are growable, as anndata writes them: sparse_dataset(...).append works on X, raw, layers and obsp", async () => {
    const a = await read(path.join(FIXTURES, "pp", "synth_3k.h5ad"));
    const v = a.subset({ obs: slice(0, 200) });
    v.layers.set("counts", v.X);
    v.setRaw();
    await pp.normalizeTotal(v);
    pp.log1p(v);
    const n = v.nObs;
    const indptr = Float64Array.from({ length: n + 1 }, (_, i) => Math.min(i, n - 1));
    const indices = Int32Array.from({ length: n - 1 }, (_, i) => (i + 1) % n);
    v.obsp.set("chain", { kind: "csr", shape: [n, n], dtype: "float32", indptr, indices, data: new Float32Array(n - 1).fill(1) });
    const out = path.join(tmp, "growable.h5ad");
    await v.write(out);
    a.close();
    const check = [
      "import sys, h5py, numpy as np",
      "from anndata.io import sparse_dataset",
      "with h5py.File(sys.argv[1], 'r+') as f:",
      "    for key in ['X', 'raw/X', 'layers/counts', 'obsp/chain']:",
      "        s = sparse_dataset(f[key])",
      "        before = s.shape",
      "        s.append(s[:2])",
      "        assert s.shape == (before[0] + 2, before[1]), (key, s.shape)",
      "        assert (s[before[0]:] != s[:2]).nnz == 0, key",
    ].join("\n");
    try {
      execFileSync(PYTHON, ["-c", check, out], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
    } catch (e: any) {
      assert.fail(`anndata could not append to a written sparse matrix:\n${e.stdout}\n${e.stderr}`);
    }
  });

  it("raw set in the session keeps var's index name (raw.var_names.name), as anndata's snapshot", async () => {
    const src = path.join(tmp, "raw-index-name.h5ad");
    execFileSync(PYTHON, [
      "-c",
      [
        "import sys, numpy as np, pandas as pd, anndata as ad",
        "var = pd.DataFrame(index=pd.Index([f'g{i}' for i in range(5)], name='symbol'))",
        "a = ad.AnnData(np.arange(20, dtype=np.float32).reshape(4, 5), var=var)",
        "a.write_h5ad(sys.argv[1])",
      ].join("\n"),
      src,
    ]);
    const a = await read(src);
    a.setRaw();
    const out = path.join(tmp, "raw-index-name.out.h5ad");
    await a.write(out);
    a.close();
    const check = [
      "import sys, anndata as ad",
      "o = ad.read_h5ad(sys.argv[1])",
      "assert o.raw.var_names.name == 'symbol', o.raw.var_names.name",
      "assert o.var_names.name == 'symbol', o.var_names.name",
      "assert list(o.raw.var_names) == [f'g{i}' for i in range(5)]",
    ].join("\n");
    try {
      execFileSync(PYTHON, ["-c", check, out], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
    } catch (e: any) {
      assert.fail(`anndata read back another raw.var index:\n${e.stdout}\n${e.stderr}`);
    }
  });

  it("int64 uns arrays stay int64 when edited in place, moved or nested; ones that no longer hold whole numbers become float64", async () => {
    const src = path.join(tmp, "uns-int64.h5ad");
    execFileSync(PYTHON, [
      "-c",
      [
        "import sys, numpy as np, anndata as ad",
        "a = ad.AnnData(np.ones((4, 2), np.float32))",
        "a.uns['sizes'] = np.array([3, 1, 2**40], dtype=np.int64)",
        "a.uns['moved'] = np.array([5, 6], dtype=np.int64)",
        "a.uns['grid'] = np.arange(6, dtype=np.int64).reshape(2, 3)",
        "a.uns['half'] = np.array([1, 2], dtype=np.int64)",
        "a.write_h5ad(sys.argv[1])",
      ].join("\n"),
      src,
    ]);
    const a = await read(src);
    const uns = a.uns;
    (uns.sizes as Float64Array)[0] = 4;
    uns.nested = { moved: uns.moved };
    delete uns.moved;
    ((uns.grid as { data: Float64Array }).data as Float64Array)[5] = -7;
    (uns.half as Float64Array)[0] = 0.5;
    const out = path.join(tmp, "uns-int64.out.h5ad");
    await a.write(out);
    a.close();
    const check = [
      "import sys, numpy as np, anndata as ad",
      "o = ad.read_h5ad(sys.argv[1]).uns",
      "assert o['sizes'].dtype == np.int64 and list(o['sizes']) == [4, 1, 2**40], o['sizes']",
      "assert o['nested']['moved'].dtype == np.int64 and list(o['nested']['moved']) == [5, 6], o['nested']",
      "assert o['grid'].dtype == np.int64 and o['grid'].tolist() == [[0, 1, 2], [3, 4, -7]], o['grid']",
      "assert o['half'].dtype == np.float64 and list(o['half']) == [0.5, 2], o['half']",
    ].join("\n");
    try {
      execFileSync(PYTHON, ["-c", check, out], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
    } catch (e: any) {
      assert.fail(`anndata read back other uns dtypes:\n${e.stdout}\n${e.stderr}`);
    }
  });

  it("an obsm frame set in the session is written with the obs index's encoding (anndata refuses a nullable-string obs index next to a plain one)", async () => {
    const src = path.join(FIXTURES, "full_csr.h5ad");
    const a = await read(src);
    a.obsm.set("meta_df2", await a.obsm.get("meta_df"));
    const out = path.join(tmp, "frame-index.h5ad");
    await a.write(out);
    a.close();
    const check = [
      "import sys, pandas as pd, anndata as ad",
      "o = ad.read_h5ad(sys.argv[1])",
      "pd.testing.assert_frame_equal(o.obsm['meta_df2'], o.obsm['meta_df'])",
    ].join("\n");
    try {
      execFileSync(PYTHON, ["-c", check, out], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
    } catch (e: any) {
      assert.fail(`anndata could not read the frame back:\n${e.stdout}\n${e.stderr}`);
    }
  });

  it("refuses to write over its own source, and leaves no temporary file on failure", async () => {
    const copy = path.join(tmp, "self.h5ad");
    fs.copyFileSync(path.join(FIXTURES, "full_csr.h5ad"), copy);
    const before = fs.readFileSync(copy);
    const a = await read(copy);
    await assert.rejects(a.write(copy), InvalidArgumentError);
    await assert.rejects(a.write(path.join(tmp, "no-such-dir", "x.h5ad")), /cannot write|folder/);
    a.close();
    assert.deepEqual(fs.readFileSync(copy), before);
    assert.deepEqual(
      fs.readdirSync(tmp).filter((f) => f.endsWith(".tmp")),
      [],
    );
  });
});
