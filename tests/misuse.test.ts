/**
 * User mistakes on a valid file: each gives a typed error that names the
 * option, and the object stays usable. (Malformed files are in
 * bad-input.test.ts.) The cases come from an adversarial review of the API.
 */
import * as assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { Field, Float64, Int64, List, Table, Utf8, type Vector, vectorFromArray } from "apache-arrow";
import { type AnnDataOOM, CancelledError, ClosedError, FileAccessError, InvalidArgumentError, pl, pp, read, tl } from "../src/engine";
import { FIXTURES, runPython } from "./helpers";

const INPUT = path.join(FIXTURES, "pp", "synth_3k.h5ad");
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "aoom-misuse-"));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** Assert that `f` rejects with `cls` and a message matching `re`. */
async function rejects(f: () => unknown, cls: new (...a: never[]) => Error, re: RegExp): Promise<void> {
  await assert.rejects(
    async () => f(),
    (e: Error) => {
      assert.ok(e instanceof cls, `expected ${cls.name}, got ${e?.constructor?.name}: ${e?.message}`);
      assert.match(e.message, re);
      return true;
    },
  );
}

/** normalize → log1p → PCA (10) → neighbors: what the graph steps need. */
async function withGraph(a: AnnDataOOM): Promise<void> {
  await pp.normalizeTotal(a);
  pp.log1p(a);
  await pp.pca(a, { nComps: 10 });
  await pp.neighbors(a);
}

describe("user mistakes give typed errors and leave the object usable", () => {
  let adata: AnnDataOOM;
  before(async () => {
    adata = await read(INPUT);
  });
  after(() => adata.close());

  it("unknown option names (scanpy's snake_case, typos) are refused with the camelCase name, before anything runs", async () => {
    const a = await read(INPUT);
    try {
      const cases: [() => unknown, RegExp][] = [
        [
          () => pp.normalizeTotal(a, { target_sum: 1e4 } as object),
          /pp.normalizeTotal: unknown option "target_sum" \(did you mean "targetSum"\?\)/,
        ],
        [() => pp.highlyVariableGenes(a, { n_top_genes: 500 } as object), /did you mean "nTopGenes"/],
        [() => pp.calculateQcMetrics(a, { qc_vars: ["mt"] } as object), /did you mean "qcVars"/],
        [() => pp.filterCells(a, { min_genes: 3 } as object), /did you mean "minGenes"/],
        [() => pp.scale(a, { max_value: 10 } as object), /did you mean "maxValue"/],
        [() => pp.pca(a, { n_comps: 5 } as object), /did you mean "nComps"/],
        [() => pp.neighbors(a, { n_neighbors: 5 } as object), /did you mean "nNeighbors"/],
        [() => tl.umap(a, { min_dist: 0.1 } as object), /did you mean "minDist"/],
        [() => tl.leiden(a, { resolutoin: 1 } as object), /unknown option "resolutoin"; its options are resolution, /],
        [() => tl.paga(a, { group: "leiden" } as object), /tl.paga: unknown option "group"/],
        [() => a.write(path.join(tmp, "never.h5ad"), { compresion: "gzip" } as object), /write: unknown option "compresion"/],
        [() => read(INPUT, { backd: "r" } as object), /read: unknown option "backd"/],
        [
          () => pl.embedding(a, { legend_loc: "on data" } as object),
          /pl.embedding: unknown option "legend_loc" \(did you mean "legendLoc"\?\)/,
        ],
        [() => pl.violin(a, "total_counts", { group_by: "leiden" } as object), /did you mean "groupby"/],
        [() => pl.dotplot(a, ["g0"], "leiden", { standard_scale: "var" } as object), /did you mean "standardScale"/],
      ];
      for (const [call, re] of cases) await rejects(async () => call(), InvalidArgumentError, re);
      assert.throws(() => pp.log1p(a, { bas: 2 } as object), /pp.log1p: unknown option "bas"/);
      assert.equal(a.X.chain.describe().length, 0, "nothing was applied");
    } finally {
      a.close();
    }
  });

  it("option values of the wrong type (a truthy string for a boolean, a numeric string or NaN for a number) are refused by name", async () => {
    const a = await read(INPUT);
    try {
      const cases: [() => unknown, RegExp][] = [
        [
          () => pp.highlyVariableGenes(a, { subset: "no" as unknown as boolean }),
          /pp.highlyVariableGenes: subset must be true or false, got "no"/,
        ],
        [
          () => pp.highlyVariableGenes(a, { flavor: "pearson_residuals", theta: "100" as unknown as number }),
          /theta must be a number, got "100"/,
        ],
        [() => pp.highlyVariableGenes(a, { nTopGenes: Number.NaN }), /nTopGenes must be a number, got NaN/],
        [() => pp.pca(a, { zeroCenter: 0 as unknown as boolean }), /pp.pca: zeroCenter must be true or false, got 0/],
        [() => pp.scale(a, { maxValue: "10" as unknown as number }), /pp.scale: maxValue must be a number/],
        [() => pp.neighbors(a, { nNeighbors: "15" as unknown as number }), /pp.neighbors: nNeighbors must be a number/],
        [() => tl.leiden(a, { resolution: "1" as unknown as number }), /tl.leiden: resolution must be a number/],
        [() => pp.filterCells(a, { minGenes: "3" as unknown as number }), /pp.filterCells: minGenes must be a number/],
      ];
      for (const [call, re] of cases) await rejects(async () => call(), InvalidArgumentError, re);
      assert.equal(a.X.chain.describe().length, 0, "nothing was applied");
    } finally {
      a.close();
    }
  });

  it("normalizeTotal refuses a non-finite or non-numeric targetSum, then still normalizes", async () => {
    const a = await read(INPUT);
    try {
      for (const bad of [Number.POSITIVE_INFINITY, Number.NaN, "1e4" as unknown as number])
        await rejects(() => pp.normalizeTotal(a, { targetSum: bad }), InvalidArgumentError, /targetSum/);
      await rejects(() => pp.log1p(a, { base: "2" as unknown as number }), InvalidArgumentError, /base/);
      await pp.normalizeTotal(a, { targetSum: 1e4 });
      pp.log1p(a);
      await pp.scale(a);
      await rejects(() => pp.log1p(a, { force: true }), InvalidArgumentError, /scale must be the last step/);
      await pp.pca(a, { nComps: 5 });
      assert.ok(a.obsm.has("X_pca"));
    } finally {
      a.close();
    }
  });

  it("a view with no cells left normalizes (nothing to scale) and still writes", async () => {
    const a = await read(INPUT);
    try {
      const none = await pp.filterCells(a, { minGenes: 1e9 });
      assert.equal(none.nObs, 0);
      await pp.normalizeTotal(none);
      pp.log1p(none);
      const out = path.join(tmp, "empty.h5ad");
      await none.write(out);
      const back = await read(out);
      assert.deepEqual([back.nObs, back.nVars], [0, a.nVars]);
      back.close();
    } finally {
      a.close();
    }
  });

  it("HVG options scanpy rejects are refused", async () => {
    await rejects(() => pp.highlyVariableGenes(adata, { nBins: 0 }), InvalidArgumentError, /nBins/);
    await rejects(() => pp.highlyVariableGenes(adata, { flavor: "seurat_v3", nTopGenes: 50, span: 0 }), InvalidArgumentError, /span/);
    const one = Array.from({ length: adata.nObs }, (_, i) => (i === 0 ? "alone" : "rest"));
    const a = await read(INPUT);
    try {
      a.setObs("tiny_batch", one);
      await rejects(
        () => pp.highlyVariableGenes(a, { flavor: "seurat_v3", nTopGenes: 50, batchKey: "tiny_batch" }),
        InvalidArgumentError,
        /"alone" of tiny_batch has fewer than 2 cells/,
      );
    } finally {
      a.close();
    }
  });

  it("markGenes gives the same genes for a /g regex", () => {
    const a = adata.subset({});
    const plain = pp.markGenes(a, "mt1", /^MT-/);
    assert.ok(plain > 1);
    assert.equal(pp.markGenes(a, "mt2", /^MT-/g), plain);
  });

  it("columns, layers and aligned elements are checked when set", async () => {
    const a = adata.subset({});
    for (const name of ["", "_index", "a/b"])
      assert.throws(() => a.setObs(name, new Float64Array(a.nObs)), InvalidArgumentError, `setObs(${JSON.stringify(name)})`);
    assert.throws(() => a.layers.set("bad", a.subset({ obs: [0] }).X), /must be 3000 × 2000/);
    assert.throws(() => a.layers.set("bad", { foo: 1 } as never), InvalidArgumentError);
    const other = await read(INPUT);
    assert.throws(() => a.layers.set("foreign", other.X), /must come from this object's file/);
    other.close();
    assert.throws(
      () => a.obsm.set("X_bad", { kind: "dense", shape: [5, 2], dtype: "float32", data: new Float32Array(10) }),
      /leading dimensions must be \[3000\]/,
    );
    assert.throws(() => a.subset({ obs: null as never }), InvalidArgumentError);
    assert.throws(() => a.subset({ obs: true as never }), InvalidArgumentError);
    assert.throws(() => a.subset({ obs: new Set([1]) as never }), /a Set/);
    assert.throws(() => a.subset({ cells: [1] } as never), /not cells/);
    await rejects(() => pp.calculateQcMetrics(a, { qcVars: "mt" as never }), InvalidArgumentError, /qcVars/);
    await rejects(() => a.X.sum(0, { signal: { aborted: false } as never }), InvalidArgumentError, /AbortSignal/);
    assert.equal(a.subset({ obs: [0, 1] }).nObs, 2);
    await rejects(() => pp.filterCells(a, { minGenes: Number.NaN }), InvalidArgumentError, /minGenes must be a number/);
  });

  it("a name held by several genes is refused, not resolved to the first", async () => {
    const file = path.join(tmp, "dup-names.h5ad");
    const a = adata.subset({ var: [0, 1, 2, 3] });
    await a.write(file);
    runPython(
      [
        "import h5py, sys",
        "f = h5py.File(sys.argv[1], 'r+'); g = f['var']; ix = g.attrs['_index']",
        "n = g[ix][()]; n[2] = n[0]; del g[ix]; g.create_dataset(ix, data=n)",
        "g[ix].attrs['encoding-type'] = 'string-array'; g[ix].attrs['encoding-version'] = '0.2.0'",
      ],
      file,
    );
    const c = await read(file);
    try {
      const dup = c.varNames.get(0) as string;
      assert.throws(() => c.subset({ var: [dup] }), /is not unique/);
      await rejects(() => c.obsVector(dup), InvalidArgumentError, /is not unique/);
      assert.equal(c.subset({ var: [c.varNames.get(1) as string] }).nVars, 1);
    } finally {
      c.close();
    }
  });

  it("session values are checked before write(): array lengths, uns keys and cycles, column types", async () => {
    const a = adata.subset({ obs: [0, 1, 2] });
    assert.throws(
      () => a.obsm.set("short", { kind: "dense", shape: [3, 2], dtype: "float32", data: new Float32Array(5) }),
      /needs 6 values, got 5/,
    );
    a.setObs("flag", [null, true, false]);
    a.setObs("score", [null, 1, 2]);
    assert.equal(a.obs.getChild("flag")?.get(0), null);
    assert.ok(Number.isNaN(a.obs.getChild("score")?.get(0) as number));
    assert.throws(() => a.setObs("mixed", [1, "a", 2] as never), /mixes number and string/);
    const out = path.join(tmp, "checked.h5ad");
    a.uns.bad = { "a/b": 1 };
    await rejects(() => a.write(out), InvalidArgumentError, /without "\/"/);
    const cyc: Record<string, unknown> = {};
    cyc.self = cyc;
    a.uns.bad = cyc;
    await rejects(() => a.write(out), InvalidArgumentError, /contains itself/);
    delete a.uns.bad;
    await a.write(out);
    const back = await read(out);
    assert.equal(back.obs.getChild("flag")?.get(1), true);
    back.close();
  });

  it("frames, sparse elements and Arrow columns that anndata could not read back are refused when set, by name", async () => {
    const a = adata.subset({ obs: [0, 1, 2] });
    const names = a.obsNames;
    const frame = (index: Vector, cols: Record<string, Vector>) => ({ index, table: new Table(cols) });
    const x = vectorFromArray([1.5, 2.5, 3.5], new Float64());
    assert.throws(
      () => a.obsm.set("df", frame(vectorFromArray(["x", "y", "z"], new Utf8()), { x })),
      /index must be the obs names; row 0 is "x"/,
    );
    assert.throws(
      () => a.obsm.set("df", frame(names, { big: vectorFromArray([1n, 2n, 3n], new Int64()) })),
      /column "big": an Arrow Int64/,
    );
    assert.throws(
      () => a.obsm.set("df", frame(names, { nested: vectorFromArray([[1], [2], [3]], new List(new Field("item", new Float64()))) })),
      /column "nested": an Arrow List/,
    );
    assert.throws(() => a.obsm.set("df", { index: names, table: { numRows: 3 } } as never), /must be an Arrow Table/);
    assert.throws(() => a.setObs("big", vectorFromArray([1n, 2n, 3n], new Int64())), /Int64 column cannot be stored/);
    assert.throws(
      () =>
        a.obsm.set("coo", {
          kind: "coo",
          shape: [3, 2],
          dtype: "float32",
          indptr: new Float64Array(3),
          indices: new Int32Array(0),
          data: new Float32Array(0),
        } as never),
      /kind must be "dense", "csr" or "csc"/,
    );
    // What is accepted writes, and anndata reads it back.
    a.obsm.set("df", frame(names, { x }));
    const out = path.join(tmp, "frame-obsm.h5ad");
    await a.write(out);
    const back = runPython(["import sys, anndata as ad", "b = ad.read_h5ad(sys.argv[1])", "print(b.obsm['df']['x'].tolist())"], out);
    assert.equal(back.trim(), "[1.5, 2.5, 3.5]");
  });

  it("uns ±Infinity survive write()", async () => {
    const a = adata.subset({ obs: [0, 1, 2] });
    a.uns.hi = Number.POSITIVE_INFINITY;
    a.uns.lo = Number.NEGATIVE_INFINITY;
    a.uns.nan = Number.NaN;
    const out = path.join(tmp, "uns.h5ad");
    await a.write(out);
    const back = await read(out);
    assert.equal(back.uns.hi, Number.POSITIVE_INFINITY);
    assert.equal(back.uns.lo, Number.NEGATIVE_INFINITY);
    assert.ok(Number.isNaN(back.uns.nan as number));
    back.close();
  });

  it("uns read but unchanged is not a change; deleted uns keys are not written", async () => {
    // full_csr's uns holds a dataframe: two reads of it are different Arrow objects.
    const a = await read(path.join(FIXTURES, "full_csr.h5ad"));
    assert.ok(a.uns.table && a.uns.nested);
    assert.deepEqual(a.sessionChanges(), []);
    delete a.uns.nested;
    delete a.uns.bools;
    assert.deepEqual(a.sessionChanges(), ["uns removed: bools, nested"]);
    const out = path.join(tmp, "uns-deleted.h5ad");
    await a.write(out);
    a.close();
    const back = await read(out);
    assert.ok(!("nested" in back.uns) && !("bools" in back.uns) && "table" in back.uns);
    back.close();
  });

  it("uns null is written as anndata writes None (scanpy's log1p base)", async () => {
    const a = adata.subset({ obs: [0, 1, 2] });
    a.uns.log1p = { base: null };
    a.uns.deep = { y: null };
    const out = path.join(tmp, "uns-null.h5ad");
    await a.write(out);
    const back = await read(out);
    assert.deepEqual(back.uns.log1p, { base: null });
    assert.equal((back.uns.deep as { y: unknown }).y, null);
    back.close();
    const seen = runPython(
      ["import anndata as ad", `u = ad.read_h5ad(${JSON.stringify(out)}).uns`, "print(repr(u['log1p']), repr(u['deep']['y']))"],
      out,
    );
    assert.equal(seen.trim(), "{'base': None} None");
  });

  it("graph steps: bad options and a directed graph are refused (no hang)", async () => {
    const a = await read(INPUT);
    try {
      await pp.normalizeTotal(a);
      pp.log1p(a);
      await rejects(() => pp.pca(a, { nComps: 10, randomState: -1, svdSolver: "randomized" }), InvalidArgumentError, /randomState/);
      await rejects(() => pp.pca(a, { nComps: 10, svdSolver: "bogus" as never }), InvalidArgumentError, /svdSolver/);
      await pp.pca(a, { nComps: 10 });
      await rejects(() => pp.neighbors(a, { method: "bogus" as never }), InvalidArgumentError, /method/);
      // uns[""] could not be written (scanpy would store it and fail in write_h5ad).
      for (const key of ["", "a/b"])
        await rejects(() => pp.neighbors(a, { keyAdded: key }), InvalidArgumentError, /keyAdded must be a non-empty/);
      assert.ok(!("" in a.uns) && !a.obsp.has("_connectivities"));
      await pp.neighbors(a);
      const ac = new AbortController();
      const timer = setTimeout(() => ac.abort(), 30_000);
      await rejects(() => tl.leiden(a, { obsp: "distances", signal: ac.signal }), InvalidArgumentError, /not symmetric/);
      clearTimeout(timer);
      for (const o of [{ alpha: Number.NaN }, { a: Number.NaN, b: 1 }, { negativeSampleRate: -1 }, { method: "bogus" as never }])
        await rejects(() => tl.umap(a, { ...o, nEpochs: 5 }), InvalidArgumentError, /alpha|a must|negativeSampleRate|method/);
      await tl.leiden(a);
      assert.ok(a.obs.getChild("leiden"));
      // restrictTo is [obs key, non-empty list of category strings] (scanpy raises on an empty one).
      const restrict = (r: unknown) => () => tl.leiden(a, { restrictTo: r as [string, string[]] });
      await rejects(restrict(["leiden", []]), InvalidArgumentError, /restrictTo: no categories of "leiden" given/);
      await rejects(
        restrict(["leiden", "0"]),
        InvalidArgumentError,
        /restrictTo must be \[obsKey, \[category, …\]\], got \["leiden","0"\]/,
      );
      await rejects(restrict("leiden"), InvalidArgumentError, /restrictTo must be \[obsKey, \[category, …\]\], got "leiden"/);
      await rejects(restrict(["leiden", [0]]), InvalidArgumentError, /categories must be strings/);
      assert.ok(!a.obs.getChild("leiden_R"));
      // A neighborsKey that uns lacks is named, not replaced by obsp.distances (scanpy raises too).
      await rejects(() => tl.paga(a, { neighborsKey: "nope" }), InvalidArgumentError, /neighborsKey: uns has no "nope"/);
      assert.ok(!("paga" in a.uns));
    } finally {
      a.close();
    }
  });

  it("scanpy's own names and values where they differ from ours: initPos, method 'umap'; an infinite spread and a tuple compression are refused", async () => {
    const a = await read(INPUT);
    try {
      await withGraph(a);
      const auto = Array.from(((await a.obsp.get("connectivities")) as { data: Float32Array }).data);
      await pp.neighbors(a, { method: "umap" }); // scanpy's default kernel: the search stays automatic
      assert.deepEqual(Array.from(((await a.obsp.get("connectivities")) as { data: Float32Array }).data), auto);
      await rejects(() => pp.neighbors(a, { method: "gauss" as never }), InvalidArgumentError, /'gauss'.*not supported/);
      const byInit = (await tl.umap(a, { init: "random", nEpochs: 5 })).embedding;
      const byInitPos = (await tl.umap(a, { initPos: "random", nEpochs: 5 })).embedding;
      assert.deepEqual(Array.from(byInitPos), Array.from(byInit));
      await rejects(() => tl.umap(a, { init: "random", initPos: "random" }), InvalidArgumentError, /not both/);
      await rejects(() => tl.umap(a, { initPos: "paga" }), InvalidArgumentError, /"paga".*not supported/);
      for (const o of [{ spread: Number.POSITIVE_INFINITY }, { spread: Number.POSITIVE_INFINITY, minDist: Number.POSITIVE_INFINITY }])
        await rejects(() => tl.umap(a, { ...o, nEpochs: 5 }), InvalidArgumentError, /need spread > 0/);
      const out = path.join(tmp, "tuple-compression.h5ad");
      await rejects(
        () => a.write(out, { compression: ["gzip", 4] as never }),
        InvalidArgumentError,
        /compression must be "gzip", "lzf" or null/,
      );
      assert.ok(!fs.existsSync(out));
    } finally {
      a.close();
    }
  });

  it("plots refuse absurd sizes and report unwritable paths as FileAccessError", async () => {
    assert.throws(() => pl.histogram([1, 2, 3], 1e8), /bins must be an integer in \[1, 100,000\]/);
    const a = adata.subset({});
    await pp.calculateQcMetrics(a);
    await rejects(() => pl.qcScatter(a, "total_counts", "n_genes_by_counts", { width: 100_000 }), InvalidArgumentError, /width/);
    const p = await pl.qcHistograms(a, ["total_counts"]);
    await rejects(() => p.save(path.join(tmp, "no-such-dir", "p.svg")), FileAccessError, /cannot write/);
  });

  it("a throwing onProgress does not break the pass, and is reported once", async () => {
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.message);
    process.on("warning", onWarning);
    let calls = 0;
    const sums = (await adata.X.sum(0, {
      onProgress: () => {
        calls++;
        throw new Error("boom");
      },
    })) as Float64Array;
    await new Promise((r) => setImmediate(r));
    process.off("warning", onWarning);
    assert.equal(sums.length, adata.nVars);
    assert.equal(calls, 1);
    assert.equal(warnings.filter((w) => w.includes("onProgress threw") && w.includes("boom")).length, 1);
    // an async reporter that rejects: one warning, no unhandled rejections
    const b = await read(INPUT);
    const unhandled: unknown[] = [];
    const onUnhandled = (e: unknown) => unhandled.push(e);
    process.on("unhandledRejection", onUnhandled);
    process.on("warning", onWarning);
    await b.X.sum(0, { onProgress: async () => Promise.reject(new Error("async boom")) });
    await new Promise((r) => setTimeout(r, 20));
    process.off("warning", onWarning);
    process.off("unhandledRejection", onUnhandled);
    b.close();
    assert.deepEqual(unhandled, []);
    assert.equal(warnings.filter((w) => w.includes("async boom")).length, 1);
  });

  it("a closed object's slots say so, and so does a pass that close() stopped", async () => {
    const a = await read(INPUT);
    a.close();
    await rejects(() => a.obsm.get("X_pca"), ClosedError, /closed/);
    const b = await read(INPUT);
    const running = b.X.sum(1);
    b.close();
    await rejects(() => running, ClosedError, /closed/);
  });
});

describe("state across steps, files and sessions", () => {
  it("normalize excluding highly expressed genes, then a gene subset: passes and write() work and agree", async () => {
    const a = await read(INPUT);
    try {
      await pp.normalizeTotal(a, { excludeHighlyExpressed: true });
      const full = (await a.X.mean(0)) as Float64Array;
      const genes = [5, 17, 3, 400];
      const v = a.subset({ var: genes });
      const sub = (await v.X.mean(0)) as Float64Array;
      genes.forEach((g, k) => assert.ok(Math.abs(sub[k] - full[g]) <= 1e-12 * Math.abs(full[g]), `gene ${g}`));
      const out = path.join(tmp, "ehe-subset.h5ad");
      await v.write(out);
      const back = await read(out);
      const written = (await back.X.mean(0)) as Float64Array;
      genes.forEach((g, k) => assert.ok(Math.abs(written[k] - full[g]) <= 1e-6 * Math.abs(full[g]), `written gene ${g}`));
      back.close();
    } finally {
      a.close();
    }
  });

  it("re-running a step on a processed file writes the session's uns, not the file's", async () => {
    const first = path.join(tmp, "processed.h5ad");
    const a = await read(INPUT);
    await pp.normalizeTotal(a);
    pp.log1p(a);
    await pp.pca(a, { nComps: 10 });
    await pp.neighbors(a, { nNeighbors: 15 });
    await a.write(first);
    a.close();
    const b = await read(first);
    assert.equal((b.uns.neighbors as { params: { n_neighbors: number } }).params.n_neighbors, 15);
    assert.ok(!b.sessionChanges().some((c) => c.startsWith("uns")), "nothing changed yet");
    await pp.neighbors(b, { nNeighbors: 8 });
    assert.ok(b.sessionChanges().includes("uns neighbors"));
    const second = path.join(tmp, "reprocessed.h5ad");
    await b.write(second);
    b.close();
    const c = await read(second);
    assert.equal((c.uns.neighbors as { params: { n_neighbors: number } }).params.n_neighbors, 8);
    c.close();
  });

  it("write(): through a symlink, never over a fifo, and two writes to one path at once", async () => {
    const a = await read(INPUT);
    try {
      const v = a.subset({ obs: [0, 1, 2] });
      const real = path.join(tmp, "real-target.h5ad");
      const link = path.join(tmp, "link.h5ad");
      fs.writeFileSync(real, "old");
      fs.symlinkSync(real, link);
      await v.write(link);
      assert.ok(fs.lstatSync(link).isSymbolicLink(), "the link stays a link");
      const back = await read(real);
      assert.equal(back.nObs, 3);
      back.close();
      const fifo = path.join(tmp, "pipe.h5ad");
      assert.equal(spawnSync("mkfifo", [fifo]).status, 0);
      await rejects(() => v.write(fifo), FileAccessError, /not a regular file/);
      assert.ok(fs.statSync(fifo).isFIFO());
      const same = path.join(tmp, "same.h5ad");
      const results = await Promise.allSettled([v.write(same), a.subset({ obs: [4, 5] }).write(same)]);
      assert.deepEqual(
        results.map((r) => r.status),
        ["fulfilled", "fulfilled"],
      );
      assert.deepEqual(
        fs.readdirSync(tmp).filter((f) => f.endsWith(".tmp")),
        [],
      );
    } finally {
      a.close();
    }
  });

  it("cancelling one caller's pass does not cancel another caller's same request", async () => {
    const a = await read(INPUT);
    try {
      const ac = new AbortController();
      ac.abort();
      const [p1, p2] = await Promise.allSettled([a.X.sum(0, { signal: ac.signal }), a.X.sum(0)]);
      assert.equal(p1.status, "rejected");
      assert.equal(p2.status, "fulfilled");
    } finally {
      a.close();
    }
  });

  it("a PCA that fails mid-pass leaves no spill files, and removes those of dead processes", async () => {
    const file = path.join(tmp, "bad-tail.h5ad");
    const spillDir = path.join(tmp, "spill");
    fs.mkdirSync(spillDir);
    // Valid rows, then an out-of-range column index in the last row: the
    // pass fails after its parts have spilled rows.
    runPython(
      [
        "import anndata as ad, numpy as np, scipy.sparse as sp, sys, h5py",
        "x = sp.random(20000, 60, density=0.3, format='csr', dtype=np.float32, random_state=0)",
        "ad.AnnData(x).write_h5ad(sys.argv[1])",
        "f = h5py.File(sys.argv[1], 'r+'); i = f['X/indices']; i[-1] = 5000; f.close()",
      ],
      file,
    );
    // Spills of a killed process (pid 999999999 exceeds any pid_max), of a
    // live one (pid 1) and an unrelated file: only the first two go.
    const orphans = ["anndata-oom-pca-999999999-0.spill", "anndata-oom-reorder-999999999-3.spill"];
    const kept = ["anndata-oom-pca-1-0.spill", "anndata-oom-pca-notes.txt"];
    for (const f of [...orphans, ...kept]) fs.writeFileSync(path.join(spillDir, f), "x");
    process.env.ANNDATA_OOM_TMPDIR = spillDir;
    const a = await read(file);
    try {
      await rejects(() => pp.pca(a, { nComps: 5, useHighlyVariable: false }), Error, /index 5000 out of range/);
      assert.deepEqual(fs.readdirSync(spillDir).sort(), kept);
    } finally {
      a.close();
      delete process.env.ANNDATA_OOM_TMPDIR;
    }
  });

  it("a file replaced on disk while open: the open object keeps its data (no sidecar of the new file)", async () => {
    process.env.ANNDATA_OOM_GENE_INDEX_DIR = path.join(tmp, "gene-index");
    const file = path.join(tmp, "replaced.h5ad");
    const scaled = path.join(tmp, "replacement.h5ad");
    fs.copyFileSync(INPUT, file);
    const src = await read(INPUT);
    await pp.normalizeTotal(src, { targetSum: 1 });
    await src.write(scaled);
    src.close();
    const a = await read(file);
    const before = (await a.geneValues([3], { index: false }))[0];
    fs.renameSync(scaled, file);
    const after = (await a.geneValues([3]))[0];
    assert.deepEqual(Array.from(after), Array.from(before), "the open object reads the file it opened");
    assert.equal(a.X.geneIndexInfo().built, false, "no sidecar applies to a replaced file");
    const b = await read(file);
    const fresh = (await b.geneValues([3]))[0];
    assert.ok(
      fresh.some((x, i) => x !== before[i]),
      "a new object sees the new file",
    );
    a.close();
    b.close();
    delete process.env.ANNDATA_OOM_GENE_INDEX_DIR;
  });

  describe("second adversarial review (session 22)", () => {
    it("a bad signal or onProgress is refused whether or not the statistics are cached (a kernel probe, session 23)", async () => {
      const a = await read(INPUT);
      await a.X.mean(0);
      await rejects(() => a.X.mean(0, { onProgress: 5 as never }), InvalidArgumentError, /onProgress/);
      await rejects(() => a.X.sum(1, { signal: "stop" as never }), InvalidArgumentError, /signal/);
      // the cached answer is still given to a good call
      assert.equal((await a.X.mean(0)).length, a.nVars);
      a.close();
    });

    it("a sparse element with a bad indptr or index is refused when set (a view of it used to loop forever)", async () => {
      const a = await read(INPUT);
      const n = a.nObs;
      const el = (indptr: Float64Array, indices = new Int32Array(n)) => ({
        kind: "csr" as const,
        shape: [n, 3] as [number, number],
        dtype: "float32",
        indptr,
        indices,
        data: new Float32Array(n),
      });
      const ok = Float64Array.from({ length: n + 1 }, (_, i) => i);
      const jump = ok.slice();
      jump[3] = 1e15;
      await rejects(() => a.obsm.set("E", el(jump)), InvalidArgumentError, /indptr must be whole numbers that never decrease/);
      const down = ok.slice();
      down[3] = 0;
      await rejects(() => a.obsm.set("E", el(down)), InvalidArgumentError, /entry 3 is 0 after 2/);
      const far = new Int32Array(n);
      far[5] = 3;
      await rejects(() => a.obsm.set("E", el(ok, far)), InvalidArgumentError, /index 3 at stored value 5 is out of range for 3 columns/);
      a.obsm.set("E", el(ok));
      assert.equal(((await a.subset({ obs: [5, 3, 1] }).obsm.get("E")) as { indptr: Float64Array }).indptr.length, 4);
      a.close();
    });

    it('a column named "__proto__" is a column, not the end of obs', async () => {
      const a = await read(INPUT);
      const cols = a.obs.numCols;
      a.setObs("__proto__", new Float64Array(a.nObs).fill(2));
      assert.equal(a.obs.numCols, cols + 1);
      assert.equal(a.obs.numRows, a.nObs);
      assert.equal(a.obs.getChild("__proto__")?.get(0), 2);
      await rejects(() => a.setObs("a\u0000b", new Float64Array(a.nObs)), InvalidArgumentError, /is not allowed/);
      const frame = { index: a.obsNames, table: new Table({ "": vectorFromArray(Array.from({ length: a.nObs }, () => 1)) }) };
      await rejects(() => a.obsm.set("F", frame), InvalidArgumentError, /column name "" cannot be stored/);
      await rejects(() => a.obsm.set("F", { index: a.obsNames, table: new Table({}) }), InvalidArgumentError, /at least one column/);
      a.close();
    });

    it("write() while normalize or scale is still running is refused (it wrote the matrix from before the step)", async () => {
      const a = await read(INPUT);
      const running = pp.normalizeTotal(a);
      await rejects(() => a.write(path.join(tmp, "early.h5ad")), InvalidArgumentError, /pp.normalizeTotal is still running on X/);
      await running;
      const out = path.join(tmp, "awaited.h5ad");
      await a.write(out);
      const median = [
        "import sys, anndata as ad, numpy as np",
        "a = ad.read_h5ad(sys.argv[1])",
        "print(float(np.median(np.asarray(a.X.sum(1)))))",
      ];
      const sums = runPython(median, out);
      const want = Number(runPython(median, INPUT));
      assert.ok(Math.abs(Number(sums) - want) < 1e-3 * want, `normalized rows sum to the median count (${sums} vs ${want})`);
      // The temporary file is not made before the options are checked.
      await rejects(
        () => a.write(path.join(tmp, "bad-signal.h5ad"), { signal: "x" as never }),
        InvalidArgumentError,
        /signal must be an AbortSignal/,
      );
      assert.deepEqual(
        fs.readdirSync(tmp).filter((f) => f.endsWith(".tmp")),
        [],
      );
      a.close();
    });

    it("setRaw with other cells, setX / setRaw / obsVector with the wrong kind of value", async () => {
      const a = await read(INPUT);
      await rejects(() => a.setRaw(a.subset({ obs: [0, 1] })), InvalidArgumentError, /raw has 2 cells, but this object has/);
      await rejects(() => a.setRaw(5 as never), InvalidArgumentError, /setRaw takes an AnnData/);
      await rejects(() => a.setX(null as never), InvalidArgumentError, /setX takes a matrix/);
      await rejects(() => a.obsVector(1n as never), InvalidArgumentError, /key must be a column name/);
      await rejects(() => a.X.stats({ moments: 1 as never }), InvalidArgumentError, /moments must be true or false/);
      await rejects(() => a.X.stats({ axes: 5 as never }), InvalidArgumentError, /axes must be/);
      await rejects(() => a.X.stats(null as never), InvalidArgumentError, /options must be an object/);
      await rejects(() => pl.histogram(null as never), InvalidArgumentError, /takes an array of numbers/);
      await rejects(() => pp.markGenes(a, "x", ((n: string) => n.length) as never), InvalidArgumentError, /must return true or false/);
      a.setRaw(a);
      assert.deepEqual(a.raw?.shape, [a.nObs, a.nVars]);
      a.close();
    });

    it("unknown options of the matrix and lookup methods are refused (they were ignored: a misspelt layer read X)", async () => {
      const a = await read(INPUT);
      const gene = a.varNames.get(0) as string;
      await rejects(() => a.obsVector(gene, { layr: "counts" } as never), InvalidArgumentError, /unknown option "layr"/);
      await rejects(() => a.X.var(0, { dof: 1 } as never), InvalidArgumentError, /unknown option "dof"/);
      await rejects(() => a.X.sum(0, { foo: 1 } as never), InvalidArgumentError, /unknown option "foo"/);
      await rejects(() => a.X.buildGeneIndex({ Beside: true } as never), InvalidArgumentError, /did you mean "beside"/);
      await rejects(() => a.X.buildGeneIndex({ budgetBytes: -1 }), InvalidArgumentError, /budgetBytes must be a positive/);
      await rejects(
        async () => {
          for await (const _ of a.X.chunked(100, { signl: 1 } as never)) break;
        },
        InvalidArgumentError,
        /unknown option "signl"/,
      );
      const stop = new AbortController();
      stop.abort();
      await rejects(
        async () => {
          for await (const _ of a.X.chunked(100, { signal: stop.signal })) break;
        },
        CancelledError,
        /cancelled/,
      );
      a.close();
    });

    it("graph steps: a neighborsKey naming another uns entry is refused (it used the default graph)", async () => {
      const a = await read(INPUT);
      await pp.pca(a, { nComps: 10 });
      await pp.neighbors(a, { nNeighbors: 5 });
      await rejects(() => tl.leiden(a, { neighborsKey: "pca" }), InvalidArgumentError, /uns\["pca"\] is not a pp.neighbors result/);
      await rejects(() => tl.umap(a, { neighborsKey: "pca" }), InvalidArgumentError, /is not a pp.neighbors result/);
      await rejects(() => tl.paga(a, { groups: "batch", neighborsKey: "pca" }), InvalidArgumentError, /is not a pp.neighbors result/);
      // Checked before the spectral initialisation, however many components.
      await rejects(() => tl.umap(a, { nComponents: 600, method: "native" }), InvalidArgumentError, /1 to 16 components, not 600/);
      a.close();
    });

    it("HVG: a string batchKey with missing values is refused, as a categorical one is; a huge nBins is refused", async () => {
      const a = await read(INPUT);
      await pp.normalizeTotal(a, { targetSum: 1e4 });
      pp.log1p(a);
      a.setObs(
        "b",
        Array.from({ length: a.nObs }, (_, i) => (i % 3 === 0 ? null : `b${i % 2}`)),
      );
      await rejects(
        () => pp.highlyVariableGenes(a, { batchKey: "b", nTopGenes: 100 }),
        InvalidArgumentError,
        /batchKey b: missing value in cell 0/,
      );
      await rejects(() => pp.highlyVariableGenes(a, { nBins: 1e9 }), InvalidArgumentError, /nBins must be at most/);
      a.close();
    });

    it("filterCells recomputes counts when the user has replaced the QC column (scanpy always does)", async () => {
      const a = await read(INPUT);
      await pp.calculateQcMetrics(a);
      a.setObs("total_counts", new Float64Array(a.nObs));
      const kept = await pp.filterCells(a, { minCounts: 1 });
      const want = Number(
        runPython(
          [
            "import sys, anndata as ad, numpy as np",
            "a = ad.read_h5ad(sys.argv[1])",
            "print(int((np.asarray(a.X.sum(1)).ravel() >= 1).sum()))",
          ],
          INPUT,
        ),
      );
      assert.equal(kept.nObs, want);
      a.close();
    });
  });
});

describe("options and values the native side could not hold (a robustness probe, session 24)", () => {
  it("graph steps: counts beyond 32 bits and layouts beyond memory are refused before anything runs", async () => {
    const a = await read(INPUT);
    try {
      await withGraph(a);
      // 2^32 iterations wrapped to 0 in 32 bits (one cluster per cell).
      for (const nIterations of [2 ** 32, 2 ** 31, 2 ** 53])
        await rejects(
          () => tl.leiden(a, { nIterations }),
          InvalidArgumentError,
          /nIterations must be -1 or an integer in \[1, 2147483647\]/,
        );
      await rejects(() => tl.umap(a, { nEpochs: 2 ** 32 }), InvalidArgumentError, /nEpochs must be an integer in \[1, 2147483647\]/);
      // More components than cells, or a layout beyond memory, aborted the process.
      for (const nComponents of [a.nObs, 2 ** 32 + 2])
        await rejects(() => tl.umap(a, { nComponents, nEpochs: 2 }), InvalidArgumentError, /nComponents must be below the number of cells/);
      // Layouts and solvers beyond the memory limit (lowered here; 4 GiB by default).
      process.env.ANNDATA_OOM_MAX_LOAD_BYTES = String(1 << 20);
      try {
        await rejects(
          () => tl.umap(a, { nComponents: 20, nEpochs: 2 }),
          InvalidArgumentError,
          /GB for the layout; at most \d+ components fit/,
        );
        await rejects(
          () => pp.pca(a, { nComps: 5, svdSolver: "randomized", oversample: 1e9 }),
          InvalidArgumentError,
          /randomized PCA with nComps \+ oversample = \d+ over \d+ genes needs/,
        );
      } finally {
        delete process.env.ANNDATA_OOM_MAX_LOAD_BYTES;
      }
      const r = await tl.leiden(a, { nIterations: 2 });
      assert.ok(r.nClusters > 1 && r.nClusters < a.nObs / 10);
    } finally {
      a.close();
    }
  });

  it("PCA of no cells says so (it said nComps must be in [1, 0])", async () => {
    const a = await read(INPUT);
    try {
      await rejects(() => pp.pca(a.subset({ obs: [] })), InvalidArgumentError, /pp.pca needs at least one cell and one gene, got 0 cells/);
    } finally {
      a.close();
    }
  });

  it("strings HDF5 or UTF-8 cannot hold (a NUL, half a surrogate pair) are refused, not changed", async () => {
    const a = await read(INPUT);
    try {
      const names = Array.from({ length: a.nObs }, (_, i) => `cell ${i}`);
      names[7] = "a\u0000b";
      a.setObs("with_nul", names);
      await rejects(() => a.write(path.join(tmp, "nul.h5ad")), InvalidArgumentError, /holds a NUL character/);
      a.setObs(
        "with_nul",
        names.map((s) => s.replace("\u0000", "")),
      );
      names[3] = "🧪 x".slice(0, 1);
      assert.throws(() => a.setObs("half", names), /obs column "half": value 3 holds half of a UTF-16 surrogate pair/);
      a.uns.note = "a\u0000b";
      await rejects(() => a.write(path.join(tmp, "nul-uns.h5ad")), InvalidArgumentError, /holds a NUL character/);
      a.uns.note = "🧪".slice(0, 1);
      await rejects(
        () => a.write(path.join(tmp, "half-uns.h5ad")),
        InvalidArgumentError,
        /uns note: the string holds half of a UTF-16 surrogate pair/,
      );
      a.uns.note = "🧪 fine";
      const out = path.join(tmp, "strings-ok.h5ad");
      await a.write(out);
      const back = runPython(
        ["import sys, anndata as ad", "a = ad.read_h5ad(sys.argv[1])", "print(a.uns['note'], a.obs['with_nul'].iloc[7])"],
        out,
      );
      assert.equal(back.trim(), "🧪 fine ab");
      assert.equal(fs.readdirSync(tmp).filter((f) => f.endsWith(".tmp")).length, 0, "no temporary file is left");
    } finally {
      a.close();
    }
  });

  it("breaking out of chunked() and closing the file is no unhandled rejection (it ended plain Node scripts)", () => {
    const engine = path.join(__dirname, "..", "src", "engine");
    const script = [
      `const { read } = require(${JSON.stringify(engine)});`,
      "(async () => {",
      `  const a = await read(${JSON.stringify(INPUT)});`,
      "  for await (const { start } of a.X.chunked(500)) if (start >= 0) break;",
      "  a.close();",
      "  try { for await (const _ of (await read(" +
        JSON.stringify(INPUT) +
        ")).X.chunked(500)) throw new Error('typo'); } catch (e) { console.log('caught', e.message); }",
      "  await new Promise((r) => setTimeout(r, 300));",
      "  console.log('alive');",
      "})();",
    ].join("\n");
    const r = spawnSync(process.execPath, ["-e", script], { encoding: "utf8", timeout: 60_000 });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /caught typo\nalive/);
  });
});
