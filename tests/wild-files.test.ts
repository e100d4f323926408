/**
 * Valid files as other writers leave them (anndata 0.6's record-array
 * layout, anndata 0.7's compound uns entries, h5py's empty scalars, boolean
 * categories): each reads with the
 * values anndata gives, and one entry this build cannot decode does not
 * block the rest. The cases come from an adversarial review of files from
 * anndata 0.6–0.13.
 */
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, describe, it } from "node:test";
import type { Table, Vector } from "apache-arrow";
import { H5adFormatError, InvalidArgumentError, pp, read, tl, UnsupportedEncodingError } from "../src/engine";
import { runPython } from "./helpers";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "aoom-wild-"));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** Writes an h5ad from Python lines that build `a`, then edits it with h5py (`f`) if asked. */
function h5ad(name: string, build: string[], edit: string[] = []): string {
  const file = path.join(tmp, `${name}.h5ad`);
  runPython(
    [
      "import sys, h5py, numpy as np, scipy.sparse as sp, pandas as pd, anndata as ad",
      "a = ad.AnnData(sp.csr_matrix(np.arange(1, 31, dtype=np.float32).reshape(6, 5)), obs=pd.DataFrame(index=[f'c{i}' for i in range(6)]), var=pd.DataFrame(index=[f'g{j}' for j in range(5)]))",
      ...build,
      "a.write_h5ad(sys.argv[1])",
      "f = h5py.File(sys.argv[1], 'r+')",
      ...edit,
      "f.close()",
    ],
    file,
  );
  return file;
}

describe("files as other writers leave them", () => {
  it("an uns entry this build cannot decode gets a placeholder; uns and the steps that touch it still work", async () => {
    const file = h5ad(
      "uns-undecodable",
      ["a.uns['cplx'] = np.array([1 + 2j])", "a.uns['kept'] = 'yes'"],
      // anndata 0.7 stored scanpy's rank_genes_groups recarrays as compound datasets
      ["f['uns'].create_dataset('names', data=np.array([(b'g0', b'g1')], dtype=[('0', 'S2'), ('1', 'S2')]))"],
    );
    const a = await read(file);
    const uns = a.uns as Record<string, { note?: string } | string>;
    assert.equal(uns.kept, "yes");
    assert.match((uns.cplx as { note: string }).note, /not decoded into uns/);
    // A record array is a table of its fields (was a placeholder before rec-arrays were read).
    const names = uns.names as unknown as Table;
    assert.deepEqual(
      names.schema.fields.map((f) => f.name),
      ["0", "1"],
    );
    assert.deepEqual([...(names.getChild("1") as Vector)], ["g1"]);
    await pp.normalizeTotal(a, { targetSum: 1e4 });
    await pp.log1p(a); // touches uns (log1p.base); failed on the whole uns before
    assert.ok((a.uns as { log1p?: unknown }).log1p);
    const out = path.join(tmp, "uns-undecodable.out.h5ad");
    await a.write(out);
    a.close();
    const back = runPython(
      ["import sys, anndata as ad", "b = ad.read_h5ad(sys.argv[1])", "print(b.uns['cplx'].dtype, b.uns['kept'])"],
      out,
    );
    assert.equal(back.trim(), "complex128 yes", "the entry is copied as it is");
  });

  it("an empty scalar (h5py.Empty) reads as null, not an internal error; several values in a scalar are refused for that entry", async () => {
    const file = h5ad(
      "uns-empty-scalar",
      [],
      [
        "f['uns'].create_dataset('e', data=h5py.Empty('f8'))",
        "d = f['uns'].create_dataset('two', data=np.array([1.0, 2.0]))",
        "d.attrs['encoding-type'] = 'numeric-scalar'; d.attrs['encoding-version'] = '0.2.0'",
      ],
    );
    const a = await read(file);
    const uns = a.uns as Record<string, unknown>;
    assert.equal(uns.e, null);
    assert.match((uns.two as { note: string }).note, /a scalar must hold one value, this dataset holds 2/);
    a.close();
  });

  it("float16 X, obs column and obsm read as float32 with anndata's values, and run through QC", async () => {
    const file = h5ad("float16", [
      "a.X = (a.X.toarray() / 3).astype(np.float16)  # dense: scipy.sparse has no float16",
      "a.obs['score'] = np.linspace(0, 1, 6).astype(np.float16)",
      "a.obsm['X_umap'] = (np.arange(12).reshape(6, 2) / 7).astype(np.float16)",
    ]);
    const want = JSON.parse(
      runPython(
        [
          "import sys, json, anndata as ad, numpy as np",
          "b = ad.read_h5ad(sys.argv[1])",
          "print(json.dumps({'x': np.asarray(b.X).astype(float).tolist(), 'score': b.obs['score'].astype(float).tolist(), 'umap': b.obsm['X_umap'].astype(float).tolist()}))",
        ],
        file,
      ),
    );
    const a = await read(file);
    try {
      assert.equal(a.X.dtype, "float32");
      const c = await a.X.rows(0, 6);
      if (c.format !== "dense") throw new Error("expected dense");
      const x = Array.from({ length: 6 }, (_, i) => Array.from(c.data.subarray(i * 5, (i + 1) * 5), Number));
      assert.deepEqual(x, want.x, "HDF5's half → single conversion is exact");
      assert.deepEqual(Array.from(a.obs.getChild("score")?.toArray() ?? []), want.score);
      const umap = (await a.obsm.get("X_umap")) as { data: Float32Array };
      assert.deepEqual(Array.from(umap.data), want.umap.flat());
      await pp.calculateQcMetrics(a, { percentTop: [] });
      const total = want.x[0].reduce((s: number, v: number) => s + v, 0);
      assert.ok(Math.abs(Number(a.obs.getChild("total_counts")?.get(0)) - total) <= 1e-6 * total);
    } finally {
      a.close();
    }
  });

  it("a 3-d obsm array (valid in anndata) is unsupported, not malformed, and write() copies it unchanged", async () => {
    const file = h5ad("obsm-3d", ["a.obsm['cube'] = np.arange(36, dtype=np.float32).reshape(6, 2, 3)"]);
    const a = await read(file);
    try {
      await assert.rejects(() => a.obsm.get("cube"), UnsupportedEncodingError);
      const out = path.join(tmp, "obsm-3d.out.h5ad");
      await a.write(out); // failed for the whole file
      const back = runPython(
        [
          "import sys, anndata as ad, numpy as np",
          "b = ad.read_h5ad(sys.argv[1])",
          "print((b.obsm['cube'] == np.arange(36).reshape(6, 2, 3)).all())",
        ],
        out,
      );
      assert.equal(back.trim(), "True");
      await assert.rejects(() => a.subset({ obs: [0, 1] }).write(path.join(tmp, "obsm-3d.view.h5ad")), UnsupportedEncodingError);
    } finally {
      a.close();
    }
  });

  it("integer and float indexes (anndata 0.7 wrote them as numbers) name cells as anndata does", async () => {
    const file = h5ad(
      "numeric-index",
      [],
      [
        "del f['obs/_index']; f['obs'].create_dataset('_index', data=np.arange(6, dtype=np.int64) + 10**17)",
        "del f['var/_index']; f['var'].create_dataset('_index', data=np.array([0.5, 2.0, 3.0, 1e21, 1e-7]))",
      ],
    );
    const want = JSON.parse(
      runPython(
        [
          "import sys, json, warnings, anndata as ad",
          "warnings.filterwarnings('ignore')",
          "b = ad.read_h5ad(sys.argv[1])",
          "print(json.dumps([[str(x) for x in b.obs_names], [str(x) for x in b.var_names]]))",
        ],
        file,
      ),
    );
    const a = await read(file);
    try {
      // Through f64, the int64 names above 2^53 merged into one.
      assert.deepEqual(a.obsNames.toArray(), want[0]);
      assert.deepEqual(a.varNames.toArray(), want[1]);
      assert.equal(a.subset({ obs: ["100000000000000003"] }).nObs, 1);
    } finally {
      a.close();
    }
  });

  it("a dense gzip X in chunks: pass blocks end on chunk rows (a cut chunk was decompressed once per block)", async () => {
    const file = h5ad(
      "dense-chunked",
      [
        "a = ad.AnnData(np.arange(80000, dtype=np.float32).reshape(10000, 8) % 7, obs=pd.DataFrame(index=[f'c{i}' for i in range(10000)]), var=pd.DataFrame(index=[f'g{j}' for j in range(8)]))",
      ],
      [
        "x = f['X'][()]; del f['X']; d = f.create_dataset('X', data=x, chunks=(1000, 4), compression='gzip')",
        "d.attrs['encoding-type'] = 'array'; d.attrs['encoding-version'] = '0.2.0'",
      ],
    );
    const a = await read(file);
    const saved = process.env.ANNDATA_OOM_BLOCK_BYTES;
    process.env.ANNDATA_OOM_BLOCK_BYTES = "65536"; // 2,048 rows of 8 float32 per block before alignment
    try {
      let blocks = 0;
      const onProgress = (p: { chunksTotal: number }) => {
        blocks = p.chunksTotal;
      };
      const sums = (await a.X.sum(1, { onProgress })) as Float64Array;
      // cuts at the first chunk-row boundary past 2,048 rows: 3,000, 6,000, 9,000, then the rest
      assert.equal(blocks, 4);
      assert.deepEqual(
        Array.from(sums.subarray(0, 3)),
        [0, 1, 2].map((i) => Array.from({ length: 8 }, (_, j) => (i * 8 + j) % 7).reduce((x, y) => x + y, 0)),
      );
    } finally {
      if (saved === undefined) delete process.env.ANNDATA_OOM_BLOCK_BYTES;
      else process.env.ANNDATA_OOM_BLOCK_BYTES = saved;
      a.close();
    }
  });

  it("X = None with layers: a typed error naming the layers, and PCA on a layer (scanpy's layer option)", async () => {
    const file = h5ad("no-x", [
      "rng = np.random.default_rng(8)",
      "L = rng.normal(size=(40, 6)).astype(np.float32)",
      "a = ad.AnnData(obs=pd.DataFrame(index=[f'c{i}' for i in range(40)]), var=pd.DataFrame(index=[f'g{j}' for j in range(6)]))",
      "a.layers['one'] = L; a.layers['two'] = 2 * L",
    ]);
    const a = await read(file);
    try {
      assert.throws(
        () => a.X,
        (e: Error) => e instanceof InvalidArgumentError && /has no X .*layers: one, two/.test(e.message),
      );
      await pp.pca(a, { layer: "one", nComps: 3 });
      const one = Float32Array.from(((await a.obsm.get("X_pca")) as { data: Float32Array }).data);
      await pp.pca(a, { layer: "two", nComps: 3 });
      const two = ((await a.obsm.get("X_pca")) as { data: Float32Array }).data;
      one.forEach((x, i) => assert.ok(Math.abs(two[i] - 2 * x) <= 1e-4 * Math.max(1, Math.abs(x)), `X_pca[${i}]`));
      assert.equal((a.uns.pca as { params: { layer?: string } }).params.layer, "two");
    } finally {
      a.close();
    }
  });

  it("anndata 0.6's layout (record-array obs/var/obsm, uns categories, raw.X) reads as anndata reads it, read-only, leaving the file and the temp dir untouched; bad records are typed errors", async () => {
    const legacy = (name: string, lines: string[]): string => {
      const file = path.join(tmp, `${name}.h5ad`);
      runPython(
        [
          "import sys, h5py, numpy as np",
          "f = h5py.File(sys.argv[1], 'w')",
          "f['X'] = np.arange(12, dtype=np.float32).reshape(4, 3)",
          "f['obs'] = np.array([(b'c0', 0, 2, 1.5), (b'c1', 1, 0, 2.5), (b'c2', 0, 5, 3.5), (b'c3', -1, 1, 4.5)], dtype=[('index', 'S2'), ('kind', 'i1'), ('big', 'i8'), ('score', 'f4')])",
          "f['var'] = np.array([(b'g0', True), (b'g1', False), (b'g2', True)], dtype=[('index', 'S2'), ('hv', '?')])",
          "f['obsm'] = np.zeros(4, dtype=[('X_pca', 'f4', (2,))]); f['obsm']['X_pca'] = np.arange(8, dtype=np.float32).reshape(4, 2)",
          "f['uns/kind_categories'] = np.array([b'T', b'B'])",
          "f['uns/big_categories'] = np.array([b'x', b'y'])", // codes up to 5 do not fit: stays int, key kept
          "f['uns/method'] = np.array([b'umap'])",
          ...lines,
          "f.close()",
        ],
        file,
      );
      return file;
    };
    const file = legacy("legacy06", []);
    const before = fs.readFileSync(file);
    const tmpBefore = fs.readdirSync(os.tmpdir()).filter((f) => f.startsWith("anndata-oom-legacy-")).length;
    const a = await read(file);
    const ref = JSON.parse(
      runPython(
        [
          "import sys, json, anndata as ad",
          "b = ad.read_h5ad(sys.argv[1])",
          "print(json.dumps({'kind': [None if v != v else v for v in b.obs['kind'].astype(object)], 'cats': list(b.obs['kind'].cat.categories), 'big': b.obs['big'].tolist(), 'hv': b.var['hv'].tolist(), 'pca': b.obsm['X_pca'].tolist(), 'uns': sorted(b.uns.keys()), 'method': b.uns['method'], 'names': list(b.obs_names)}))",
        ],
        file,
      ),
    );
    assert.deepEqual([...(a.obs.getChild("kind") as Vector)], ref.kind, "codes through uns/kind_categories, -1 missing");
    assert.deepEqual([...(a.obs.getChild("kind") as Vector).data[0].dictionary!], ref.cats);
    assert.deepEqual([...(a.obs.getChild("big") as Vector)].map(Number), ref.big, "codes past the categories: left as numbers");
    assert.deepEqual([...(a.var.getChild("hv") as Vector)], ref.hv);
    assert.deepEqual([...a.obsNames], ref.names);
    const pca = (await a.obsm.get("X_pca")) as { data: Float32Array; shape: number[] };
    assert.deepEqual(pca.shape, [4, 2]);
    assert.deepEqual([...pca.data], ref.pca.flat());
    assert.deepEqual(Object.keys(a.uns).sort(), ref.uns, "used categories leave uns; unused stay");
    assert.equal((a.uns as Record<string, unknown>).method, ref.method, "a one-element bytes array is a string");
    assert.deepEqual([...((await a.X.sum(1)) as Float64Array)], [3, 12, 21, 30]);
    a.close();
    assert.ok(fs.readFileSync(file).equals(before), "the source file is unchanged");
    assert.equal(
      fs.readdirSync(os.tmpdir()).filter((f) => f.startsWith("anndata-oom-legacy-")).length,
      tmpBefore,
      "no converted copy left in the temp dir",
    );
    await assert.rejects(
      () => read(file, { backed: "r+" }),
      (e: Error) => e instanceof UnsupportedEncodingError && /anndata ≤ 0.6.*opens read-only/.test(e.message) && /\/obs/.test(e.message),
    );
    const vlenArray = legacy("legacy06-vlen", [
      "del f['obsm']",
      "f['obsm'] = np.array([(np.array([1.0]),)] * 4, dtype=[('ragged', h5py.vlen_dtype('f8'))])",
    ]);
    await assert.rejects(
      () => read(vlenArray),
      (e: Error) => e instanceof UnsupportedEncodingError && /\/obsm\/ragged/.test(e.message),
    );
    const short = legacy("legacy06-short", ["del f['obsm']", "f['obsm'] = np.zeros(3, dtype=[('X_pca', 'f4', (2,))])"]);
    await assert.rejects(
      () => read(short),
      (e: Error) =>
        e instanceof H5adFormatError && /obsm has 3 rows but the axis it is aligned to has 4 \(element \/obsm in /.test(e.message),
    );
    const plain = h5ad("obs-plain", [], ["del f['obs']; f.create_dataset('obs', data=np.arange(6))"]);
    await assert.rejects(
      () => read(plain),
      (e: Error) => e instanceof H5adFormatError && /found a plain dataset/.test(e.message),
    );
  });

  it("graphs in uns['neighbors'] (scanpy < 1.5) are obsp graphs, as anndata moves them; write() stores them in obsp, subset with the view", async () => {
    const file = h5ad(
      "graphs-in-uns",
      [
        "g = sp.random(6, 6, density=0.5, format='csr', random_state=0); g = (g + g.T).tocsr()",
        "a.obsp['connectivities'] = g; a.obsp['distances'] = g * 2",
        "a.uns['neighbors'] = {'params': {'n_neighbors': 3, 'method': 'umap'}}",
      ],
      [
        "f.move('obsp/connectivities', 'uns/neighbors/connectivities')",
        "f.move('obsp/distances', 'uns/neighbors/distances')",
        "f['uns/neighbors/note'] = 'kept'",
      ],
    );
    const a = await read(file);
    assert.deepEqual(a.obsp.keys().sort(), ["connectivities", "distances"]);
    const uns = a.uns as { neighbors: Record<string, unknown> };
    assert.deepEqual(Object.keys(uns.neighbors).sort(), ["note", "params"]);
    await tl.leiden(a, { randomState: 0 });
    assert.equal(a.obs.getChild("leiden")?.length, 6, "the default graph is found");
    const whole = path.join(tmp, "graphs-in-uns.out.h5ad");
    const view = path.join(tmp, "graphs-in-uns.view.h5ad");
    await a.write(whole);
    await a.subset({ obs: [4, 0, 2] }).write(view);
    a.close();
    const back = runPython(
      [
        "import sys, h5py, json, numpy as np, anndata as ad",
        "src = ad.read_h5ad(sys.argv[2]); w = ad.read_h5ad(sys.argv[1]); v = ad.read_h5ad(sys.argv[3])",
        "f = h5py.File(sys.argv[1], 'r')",
        "print(json.dumps({'obsp': sorted(f['obsp'].keys()), 'uns': sorted(f['uns/neighbors'].keys()),",
        "  'same': all(np.array_equal(w.obsp[k].toarray(), src.obsp[k].toarray()) for k in ('connectivities', 'distances')),",
        "  'view': all(np.array_equal(v.obsp[k].toarray(), src.obsp[k][[4, 0, 2]][:, [4, 0, 2]].toarray()) for k in ('connectivities', 'distances'))}))",
      ],
      whole,
      file,
      view,
    );
    assert.deepEqual(JSON.parse(back), { obsp: ["connectivities", "distances"], uns: ["note", "params"], same: true, view: true });
  });

  it("a layer or raw that is X untransformed is written as X is stored: its dtype (no float32 rounding) and its format, CSC included", async () => {
    for (const format of ["csr", "csc"]) {
      const file = h5ad(`layer-is-x-${format}`, [
        `X = sp.${format}_matrix(np.array([[123456789, 0, 16777217], [0, 5, 0], [7, 0, 9], [0, 0, 1]], dtype=np.int64))`,
        "a = ad.AnnData(X, obs=pd.DataFrame(index=[f'c{i}' for i in range(4)]), var=pd.DataFrame(index=['g0', 'g1', 'g2']))",
      ]);
      const a = await read(file);
      const v = a.subset({ obs: [3, 0, 2] });
      for (const x of [a, v]) {
        x.layers.set("counts", x.X);
        x.setRaw();
      }
      const outA = path.join(tmp, `layer-is-x-${format}.out.h5ad`);
      const outV = path.join(tmp, `layer-is-x-${format}.view.h5ad`);
      await a.write(outA);
      await v.write(outV);
      a.close();
      for (const [out, rows] of [
        [outA, [0, 1, 2, 3]],
        [outV, [3, 0, 2]],
      ] as const) {
        const back = runPython(
          [
            "import sys, json, anndata as ad, scipy.sparse as sp",
            "b = ad.read_h5ad(sys.argv[1])",
            "L, R = b.layers['counts'], b.raw.X",
            "print(json.dumps({'dtypes': [str(L.dtype), str(R.dtype)], 'formats': [L.format, R.format], 'values': L.toarray().tolist(), 'same': bool((L != R).nnz == 0)}))",
          ],
          out,
        );
        const full = [
          [123456789, 0, 16777217],
          [0, 5, 0],
          [7, 0, 9],
          [0, 0, 1],
        ];
        assert.deepEqual(JSON.parse(back), {
          dtypes: ["int64", "int64"],
          formats: [format, format],
          values: rows.map((r) => full[r]),
          same: true,
        });
      }
    }
  });

  it("editing one child of a stored uns dict writes only that child: the others keep their dtype and what this build cannot decode; whole numbers past 2^53 stay floats", async () => {
    const file = h5ad(
      "uns-nested-edit",
      [
        "a.uns['paga'] = {'connectivities': sp.csr_matrix(np.eye(3)), 'note': 'a', 'num': 3.0, 'ints': np.arange(4, dtype=np.int64), 'small': np.int32(7), 'gone': 1}",
      ],
      // a record array (as anndata 0.7 stored rank_genes_groups names): read as a placeholder
      ["f['uns/paga'].create_dataset('names', data=np.array([(b'g0', b'g1')], dtype=[('0', 'S2'), ('1', 'S2')]))"],
    );
    const a = await read(file);
    const paga = a.uns.paga as Record<string, unknown>;
    paga.note = "x";
    delete paga.gone;
    a.uns.big = 1e20;
    const out = path.join(tmp, "uns-nested-edit.out.h5ad");
    await a.write(out);
    a.close();
    const back = runPython(
      [
        "import sys, json, h5py, anndata as ad, scipy.sparse as sp",
        "u = ad.read_h5ad(sys.argv[1]).uns; p = u['paga']",
        "c = p['connectivities']",
        "print(json.dumps({'sparse': bool(sp.issparse(c)), 'eye': c.toarray().tolist(), 'note': p['note'], 'num': [float(p['num']), type(p['num']).__name__], 'ints': str(p['ints'].dtype), 'small': str(h5py.File(sys.argv[1])['uns/paga/small'].dtype), 'gone': 'gone' in p, 'names': list(p['names'].dtype.names), 'big': float(u['big'])}))",
      ],
      out,
    );
    assert.deepEqual(JSON.parse(back), {
      sparse: true,
      eye: [
        [1, 0, 0],
        [0, 1, 0],
        [0, 0, 1],
      ],
      note: "x",
      num: [3, "float"],
      ints: "int64",
      small: "int32",
      gone: false,
      names: ["0", "1"],
      big: 1e20,
    });
  });

  it("fixed-length byte strings (numpy 'S', as old writers stored names) read as strings, padding dropped", async () => {
    const file = h5ad(
      "fixed-strings",
      [],
      [
        "ds = f['obs'].create_dataset('fx', data=np.array([b'ab', b'cde', b'', b'x', b'yz', b'f'], dtype='S5'))",
        "ds.attrs['encoding-type'] = 'array'; ds.attrs['encoding-version'] = '0.2.0'",
        "f['obs'].attrs['column-order'] = ['fx']",
      ],
    );
    const a = await read(file);
    assert.deepEqual(Array.from(a.obs.getChild("fx") ?? []), ["ab", "cde", "", "x", "yz", "f"]);
    a.close();
  });

  it("HDF5 enum columns: R's logical with NA is a nullable boolean, another enum a categorical of its member names; both written back", async () => {
    // As hdf5r (R) writes them; h5py and anndata read only the bare integers.
    const file = h5ad(
      "enum-columns",
      [],
      [
        "def put(name, values, members, base):",
        "    dt = h5py.enum_dtype(members, basetype=base)",
        "    ds = f['obs'].create_dataset(name, data=np.array(values, dtype=base), dtype=dt)",
        "    ds.attrs['encoding-type'] = 'array'; ds.attrs['encoding-version'] = '0.2.0'",
        "put('logical', [1, 0, 2, 1, 0, 2], {'FALSE': 0, 'TRUE': 1, 'NA': 2}, 'i1')",
        "put('level', [2, 0, 1, 7, 2, 0], {'low': 0, 'mid': 1, 'high': 2}, '>i2')  # big-endian; 7 is no member",
        "put('neg', [-1, 3, -1, 3, 3, -1], {'minus': -1, 'three': 3}, 'i4')",
        "f['obs'].attrs['column-order'] = ['logical', 'level', 'neg']",
      ],
    );
    const a = await read(file);
    const col = (name: string) => Array.from({ length: 6 }, (_, i) => a.obs.getChild(name)?.get(i) ?? null);
    assert.deepEqual(col("logical"), [true, false, null, true, false, null]);
    assert.deepEqual(col("level"), ["high", "low", "mid", null, "high", "low"]);
    assert.deepEqual(col("neg"), ["minus", "three", "minus", "three", "three", "minus"]);
    const out = path.join(tmp, "enum-columns.out.h5ad");
    await a.write(out);
    a.close();
    const back = runPython(
      [
        "import sys, json, anndata as ad, pandas as pd",
        "o = ad.read_h5ad(sys.argv[1]).obs",
        "print(json.dumps({'logical': [None if v is pd.NA else bool(v) for v in o['logical']], 'level': [None if isinstance(v, float) else v for v in o['level']], 'cats': list(o['level'].cat.categories), 'dtype': str(o['logical'].dtype)}))",
      ],
      out,
    );
    assert.deepEqual(JSON.parse(back), {
      logical: [true, false, null, true, false, null],
      level: ["high", "low", "mid", null, "high", "low"],
      cats: ["low", "mid", "high"],
      dtype: "boolean",
    });
  });

  it("boolean categories are booleans in Arrow (were 0/1), and stay bool when written", async () => {
    const file = h5ad("cat-bool", ["a.obs['flag'] = pd.Categorical([True, False] * 3)"]);
    const a = await read(file);
    const flag = a.obs.getChild("flag");
    assert.ok(flag);
    assert.equal(String(flag.type), "Dictionary<Int32, Bool>");
    assert.deepEqual(
      Array.from({ length: 6 }, (_, i) => flag.get(i)),
      [true, false, true, false, true, false],
    );
    const view = a.subset({ obs: [0, 2] }); // only True used: the written view prunes False
    const out = path.join(tmp, "cat-bool.out.h5ad");
    await view.write(out);
    a.close();
    const back = runPython(
      [
        "import sys, anndata as ad",
        "b = ad.read_h5ad(sys.argv[1])",
        "print(list(b.obs['flag'].cat.categories), b.obs['flag'].cat.categories.dtype)",
      ],
      out,
    );
    assert.equal(back.trim(), "[True] bool");
  });

  it("write() keeps int64 columns int64 when set again, stores an empty list as float64, writes varp graphs, a dense obsp and raw.varm, and leaves out what skipUnsaved skips", async () => {
    const file = h5ad("write-kinds", [
      "a.obs['n'] = np.arange(6, dtype=np.int64) * 3",
      "a.obs['maybe'] = pd.array([1, None, 3, 4, None, 6], dtype='Int64')",
      "a.varm['loadings'] = np.arange(10, dtype=np.float64).reshape(5, 2)",
      "a.varp['old'] = sp.csr_matrix(np.eye(5))",
      "a.obsp['stale'] = sp.csr_matrix(np.eye(6))",
    ]);
    const a = await read(file);
    a.setObs("n", a.obs.getChild("n") as never); // a column set from itself (a copy made actual)
    a.setObs("maybe", a.obs.getChild("maybe") as never);
    a.setObs("big", BigInt64Array.from([1n, 2n, 3n, 4n, 5n, 2n ** 40n]));
    assert.throws(() => a.setObs("huge", BigInt64Array.from([2n ** 60n, 0n, 0n, 0n, 0n, 0n])), InvalidArgumentError);
    a.uns.empty = [];
    // raw frozen now: set later, varm.extra is not part of it (anndata copies varm)
    a.setRaw();
    a.varm.set("extra", { kind: "dense", shape: [5, 1], dtype: "float64", data: new Float64Array(5) });
    a.varp.set("corr", {
      kind: "csr",
      shape: [5, 5],
      dtype: "float32",
      indptr: Float64Array.from([0, 1, 1, 1, 1, 2]),
      indices: Int32Array.from([4, 0]),
      data: Float32Array.from([0.5, 0.25]),
    });
    // a dense obsp where the file has a sparse one: written dense, in place of the file's
    a.obsp.set("stale", { kind: "dense", shape: [6, 6], dtype: "float64", data: new Float64Array(36).fill(0.5) });
    a.uns.mixed = [1, "a"];
    const out = path.join(tmp, "write-kinds.out.h5ad");
    await assert.rejects(
      a.write(out),
      (e: Error) => e instanceof InvalidArgumentError && !/obsp/.test(e.message) && /uns mixed/.test(e.message),
    );
    await a.write(out, { skipUnsaved: true });
    a.close();
    const back = runPython(
      [
        "import sys, json, h5py, anndata as ad",
        "b = ad.read_h5ad(sys.argv[1])",
        "print(json.dumps({'dtypes': [str(b.obs[c].dtype) for c in ['n', 'maybe', 'big']], 'n': b.obs['n'].tolist(), 'maybe': [None if pd.isna(x) else int(x) for x in b.obs['maybe']], 'big': b.obs['big'].tolist(),",
        "  'empty': [str(b.uns['empty'].dtype), len(b.uns['empty'])], 'mixed': 'mixed' in b.uns, 'stale': [type(b.obsp['stale']).__name__, float(b.obsp['stale'].sum())],",
        "  'varp': sorted(b.varp.keys()), 'corr': b.varp['corr'].toarray()[[0, 4], [4, 0]].tolist(),",
        "  'raw_varm': sorted(b.raw.varm.keys()), 'raw_loadings': b.raw.varm['loadings'].tolist()}))",
      ].map((l) => l.replace("import sys,", "import sys, pandas as pd,")),
      out,
    );
    assert.deepEqual(JSON.parse(back), {
      dtypes: ["int64", "Int64", "int64"],
      n: [0, 3, 6, 9, 12, 15],
      maybe: [1, null, 3, 4, null, 6],
      big: [1, 2, 3, 4, 5, 2 ** 40],
      empty: ["float64", 0],
      mixed: false,
      stale: ["ndarray", 18],
      varp: ["corr", "old"],
      corr: [0.5, 0.25],
      raw_varm: ["loadings"],
      raw_loadings: [
        [0, 1],
        [2, 3],
        [4, 5],
        [6, 7],
        [8, 9],
      ],
    });
  });

  it("colors set on a view are written as given, as anndata writes them (the view's own colors follow its categories)", async () => {
    const file = h5ad("view-colors-set", [
      "a.obs['ct'] = pd.Categorical(list('abcabc'), categories=list('abcd'))",
      "a.obs['st'] = pd.Categorical(list('xxyyzz'))",
      "a.uns['ct_colors'] = ['#000001', '#000002', '#000003', '#000004']",
    ]);
    const set = { ct_colors: ["#a00000", "#b00000", "#c00000", "#d00000"], st_colors: ["#ff0000"] };
    const ours = path.join(tmp, "view-colors-set.ours.h5ad");
    const a = await read(file);
    const v = a.subset({ obs: [0, 1, 3] });
    assert.deepEqual(v.uns.ct_colors, ["#000001", "#000002"], "subset() cut the file's colors to the view's categories");
    Object.assign(v.uns, set);
    await v.write(ours);
    const untouched = a.subset({ obs: [0, 1, 3] });
    const ours2 = path.join(tmp, "view-colors-set.ours2.h5ad");
    await untouched.write(ours2);
    a.close();
    const script = [
      "import sys, json, anndata as ad",
      "def colors(b): return {k: [str(c) for c in b.uns[k]] for k in sorted(b.uns) if k.endswith('_colors')}",
      "a = ad.read_h5ad(sys.argv[1]); v = a[[0, 1, 3]]",
      `v.uns['ct_colors'] = ${JSON.stringify(set.ct_colors)}; v.uns['st_colors'] = ${JSON.stringify(set.st_colors)}`,
      "v.write_h5ad(sys.argv[1] + '.py.h5ad')",
      "print(json.dumps([colors(ad.read_h5ad(sys.argv[1] + '.py.h5ad')), colors(ad.read_h5ad(sys.argv[2])), colors(ad.read_h5ad(sys.argv[3]))]))",
    ];
    const [want, got, untouchedBack] = JSON.parse(runPython(script, file, ours, ours2));
    assert.deepEqual(want, set);
    assert.deepEqual(got, want);
    assert.deepEqual(untouchedBack, { ct_colors: ["#000001", "#000002"] });
  });

  it("a view's obsm dataframe drops the categories none of its rows has, read and written, as anndata's view", async () => {
    const file = h5ad("obsm-df-view", [
      "a.obsm['meta'] = pd.DataFrame({'c': pd.Categorical(list('xxyzzw'), categories=list('wxyzq')), 'n': np.arange(6)}, index=a.obs_names)",
    ]);
    const rows = [0, 1, 3];
    const want = runPython(
      [
        "import sys, json, anndata as ad",
        `v = ad.read_h5ad(sys.argv[1])[${JSON.stringify(rows)}]`,
        "print(json.dumps([str(x) for x in v.obsm['meta']['c'].cat.categories]))",
      ],
      file,
    );
    const a = await read(file);
    const v = a.subset({ obs: rows });
    const meta = (await v.obsm.get("meta")) as {
      table: { getChild(n: string): { data: { dictionary?: { toArray(): unknown } }[] } | null };
    };
    const dict = meta.table.getChild("c")?.data[0]?.dictionary;
    assert.deepEqual(Array.from(dict?.toArray() as string[]), JSON.parse(want), "read");
    const out = path.join(tmp, "obsm-df-view.out.h5ad");
    await v.write(out);
    a.close();
    const back = runPython(
      [
        "import sys, json, anndata as ad",
        "print(json.dumps([str(x) for x in ad.read_h5ad(sys.argv[1]).obsm['meta']['c'].cat.categories]))",
      ],
      out,
    );
    assert.deepEqual(JSON.parse(back), JSON.parse(want), "written");
  });
});
