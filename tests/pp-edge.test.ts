/**
 * Degenerate and unusual input to the preprocessing and graph steps,
 * against scanpy on the same file where scanpy has an answer (the cases
 * come from an adversarial review): a cell whose counts all lie in
 * excluded genes, the median target with empty cells, NaN / negative
 * values, tied dispersions, small data defaults, far-apart clusters in
 * the exact kNN.
 */
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, describe, it } from "node:test";
import type { Vector } from "apache-arrow";
import { InvalidArgumentError, pp, read, slice, tl } from "../src/engine";
import { percentile } from "../src/engine/percentile";
import { kthSquaredDistance } from "../src/engine/pp/loess";
import { storedDtype } from "../src/engine/typed";
import { FIXTURES, runPython } from "./helpers";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "aoom-pp-edge-"));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** Writes an h5ad from Python lines that build `a` (numpy as np, scipy.sparse as sp, pandas as pd, anndata as ad). */
function h5ad(name: string, build: string[]): string {
  const file = path.join(tmp, `${name}.h5ad`);
  runPython(["import sys, numpy as np, scipy.sparse as sp, pandas as pd, anndata as ad", ...build, "a.write_h5ad(sys.argv[1])"], file);
  return file;
}

/** Rows of X after the chain, as dense arrays. */
async function rows(a: Awaited<ReturnType<typeof read>>): Promise<number[][]> {
  const out: number[][] = [];
  for await (const { chunk } of a.X.chunked(1000)) {
    if (chunk.format !== "csr") throw new Error("expected CSR");
    const [r, c] = chunk.shape;
    for (let i = 0; i < r; i++) {
      const row = new Array<number>(c).fill(0);
      for (let p = chunk.indptr[i]; p < chunk.indptr[i + 1]; p++) row[chunk.indices[p]] = Number(chunk.data[p]);
      out.push(row);
    }
  }
  return out;
}

/** scanpy's normalize_total on `file` with the given keyword arguments, as dense rows. */
function scanpyNormalized(file: string, kwargs: string): number[][] {
  const out = runPython(
    [
      "import sys, json, warnings, anndata as ad, scanpy as sc",
      "warnings.filterwarnings('ignore')",
      "a = ad.read_h5ad(sys.argv[1])",
      `sc.pp.normalize_total(a, ${kwargs})`,
      "print(json.dumps(a.X.toarray().tolist()))",
    ],
    file,
  );
  return JSON.parse(out);
}

function close(a: number[][], b: number[][], what: string): void {
  assert.equal(a.length, b.length);
  a.forEach((r, i) =>
    r.forEach((x, j) =>
      assert.ok(Math.abs(x - b[i][j]) <= 1e-5 * Math.max(1, Math.abs(b[i][j])), `${what} [${i}][${j}]: ${x} vs scanpy ${b[i][j]}`),
    ),
  );
}

describe("normalizeTotal on odd cells, as scanpy", () => {
  it("the default target with every cell's counts in excluded genes is a typed error (scanpy's target is NaN, and so is every value)", async () => {
    const file = h5ad("all-excluded", [
      "X = np.zeros((20, 3), dtype=np.float32)",
      "X[np.arange(20), np.arange(20) % 2] = 5",
      "a = ad.AnnData(sp.csr_matrix(X), obs=pd.DataFrame(index=[f'c{i}' for i in range(20)]), var=pd.DataFrame(index=['g0', 'g1', 'g2']))",
    ]);
    const a = await read(file);
    await assert.rejects(
      pp.normalizeTotal(a, { excludeHighlyExpressed: true }),
      /no cell has counts outside the 2 highly expressed genes excluded, so there is no median total/,
    );
    assert.ok(a.X.chain.isEmpty, "nothing applied");
    await pp.normalizeTotal(a, { excludeHighlyExpressed: true, targetSum: 10 });
    a.close();
  });

  it("HVG with a batchKey whose categories include one no cell has: as without it (a view drops it; it was an empty batch that scaled every statistic)", async () => {
    const file = h5ad("unused-batch", [
      "rng = np.random.default_rng(3)",
      "X = sp.csr_matrix(rng.negative_binomial(2, 0.3, size=(400, 300)).astype(np.float32))",
      "a = ad.AnnData(X, obs=pd.DataFrame({'batch': pd.Categorical(['a', 'b'] * 200, categories=['a', 'b', 'zz'])}, index=[f'c{i}' for i in range(400)]))",
    ]);
    const a = await read(file);
    try {
      const whole = a.subset({ obs: Array.from({ length: a.nObs }, (_, i) => i) });
      assert.equal(whole.obs.getChild("batch")?.data[0].dictionary?.length, 2, "the view drops zz");
      for (const x of [a, whole]) {
        await pp.normalizeTotal(x);
        await pp.log1p(x);
      }
      for (const flavor of ["seurat", "cell_ranger"] as const) {
        for (const x of [a, whole]) await pp.highlyVariableGenes(x, { flavor, nTopGenes: 50, batchKey: "batch" });
        for (const col of [
          "means",
          "dispersions",
          "dispersions_norm",
          "highly_variable",
          "highly_variable_intersection",
          "highly_variable_nbatches",
        ])
          assert.deepEqual(Array.from(a.var.getChild(col) ?? []), Array.from(whole.var.getChild(col) ?? []), `${flavor} ${col}`);
      }
    } finally {
      a.close();
    }
  });

  it("filters without options, a markGenes prefix and a non-boolean qcVars column: typed errors or scanpy's meaning, no raw TypeError", async () => {
    const a = await read(path.join(FIXTURES, "pp", "synth_3k.h5ad"));
    try {
      await assert.rejects(() => pp.filterCells(a), InvalidArgumentError);
      await assert.rejects(() => pp.filterGenes(a), InvalidArgumentError);
      const first = String(a.varNames.get(0));
      const prefix = first.slice(0, Math.max(1, first.length - 1));
      const byPrefix = pp.markGenes(a, "pre", prefix);
      const byRegExp = pp.markGenes(a, "re", new RegExp(`^${prefix.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}`));
      assert.equal(byPrefix, byRegExp);
      assert.ok(byPrefix >= 1);
      assert.throws(() => pp.markGenes(a, "bad", 3 as never), InvalidArgumentError);
      a.setVar(
        "label",
        Array.from({ length: a.nVars }, (_, j) => (j % 2 ? "True" : "False")),
      );
      await assert.rejects(() => pp.calculateQcMetrics(a, { qcVars: ["label"], percentTop: null }), /not boolean/);
    } finally {
      a.close();
    }
  });

  it("randomized PCA on X with NaN or infinite values is a typed error, not results that are all NaN", async () => {
    for (const bad of ["np.nan", "np.inf"]) {
      const file = h5ad(`pca-${bad.slice(3)}`, [
        "rng = np.random.default_rng(1)",
        "X = rng.poisson(1.0, size=(300, 40)).astype(np.float32)",
        `X[3, 4] = ${bad}`,
        "a = ad.AnnData(X)",
      ]);
      const a = await read(file);
      try {
        await assert.rejects(
          () => pp.pca(a, { nComps: 5, svdSolver: "randomized" }),
          (e: Error) => e instanceof InvalidArgumentError && /X holds NaN or infinite values/.test(e.message),
        );
        assert.equal(a.obsm.has("X_pca"), false, "nothing written");
      } finally {
        a.close();
      }
    }
  });

  it("QC, the filters and every HVG flavor refuse to follow pp.scale (they read the values before scaling; scanpy the scaled ones)", async () => {
    const a = await read(path.join(FIXTURES, "pp", "synth_3k.h5ad"));
    try {
      const counts = a.subset({ var: Array.from({ length: 200 }, (_, j) => j) });
      await pp.normalizeTotal(counts);
      await pp.log1p(counts);
      await pp.scale(counts, { zeroCenter: false });
      const refused = /cannot follow pp\.scale on X: it would read the values before scaling/;
      await assert.rejects(() => pp.calculateQcMetrics(counts, { percentTop: null }), refused);
      await assert.rejects(() => pp.filterCells(counts, { minCounts: 1 }), refused);
      await assert.rejects(() => pp.filterGenes(counts, { minCells: 1 }), refused);
      for (const flavor of ["seurat", "cell_ranger", "seurat_v3", "pearson_residuals"] as const)
        await assert.rejects(() => pp.highlyVariableGenes(counts, { flavor, nTopGenes: 20 }), refused, flavor);
      // The object stays usable: PCA reads the scaled values.
      await pp.pca(counts, { nComps: 5 });
      assert.equal(((await counts.obsm.get("X_pca")) as unknown as { shape: number[] }).shape[1], 5);
    } finally {
      a.close();
    }
  });

  it("a cell whose counts all lie in excluded genes stays as it is (it was multiplied by targetSum)", async () => {
    const file = h5ad("excluded", [
      "X = np.array([[50, 0, 0, 0], [10, 1, 1, 1], [10, 2, 1, 1], [10, 1, 2, 1]], np.float32)",
      "a = ad.AnnData(sp.csr_matrix(X), obs=pd.DataFrame(index=list('abcd')), var=pd.DataFrame(index=list('wxyz')))",
    ]);
    const a = await read(file);
    await pp.normalizeTotal(a, { targetSum: 1e4, excludeHighlyExpressed: true, maxFraction: 0.5 });
    const ours = await rows(a);
    close(ours, scanpyNormalized(file, "target_sum=1e4, exclude_highly_expressed=True, max_fraction=0.5"), "normalized");
    assert.deepEqual(ours[0], [50, 0, 0, 0]);
    a.close();
  });

  it("the default target with empty cells: the median over all cells for sparse X (scanpy 1.11)", async () => {
    const file = h5ad("empty-cells", [
      "rng = np.random.default_rng(3)",
      "X = rng.poisson(2, size=(9, 6)).astype(np.float32)",
      "X[[1, 4, 7]] = 0",
      "a = ad.AnnData(sp.csr_matrix(X), obs=pd.DataFrame(index=[f'c{i}' for i in range(9)]), var=pd.DataFrame(index=[f'g{j}' for j in range(6)]))",
    ]);
    const a = await read(file);
    await pp.normalizeTotal(a);
    close(await rows(a), scanpyNormalized(file, ""), "normalized");
    a.close();
  });
});

describe("values that are not counts", () => {
  it("NaN or infinite values in X are a typed error naming the cell, at the first step that sums them", async () => {
    const file = h5ad("nan", [
      "X = np.ones((5, 4), np.float32)",
      "X[3, 2] = np.nan",
      "a = ad.AnnData(sp.csr_matrix(X), obs=pd.DataFrame(index=[f'c{i}' for i in range(5)]), var=pd.DataFrame(index=list('wxyz')))",
    ]);
    const a = await read(file);
    await assert.rejects(
      pp.calculateQcMetrics(a, { percentTop: [] }),
      (e: Error) => e instanceof InvalidArgumentError && /X holds NaN or infinite values \(first in cell 3, "c3"\)/.test(e.message),
    );
    await assert.rejects(pp.normalizeTotal(a), /cell 3/);
    assert.equal(a.obs.getChild("total_counts"), null, "nothing was written");
    await pp.normalizeTotal(a, { targetSum: 10 });
    pp.log1p(a);
    await assert.rejects(pp.highlyVariableGenes(a, { nTopGenes: 2 }), /gene "w" are not finite/);
    a.close();
  });

  it("a negative value that log1p turns into NaN stops HVG, not PCA three steps later", async () => {
    const file = h5ad("negative", [
      "X = np.ones((6, 4), np.float32)",
      "X[2, 1] = -5",
      "a = ad.AnnData(sp.csr_matrix(X), obs=pd.DataFrame(index=[f'c{i}' for i in range(6)]), var=pd.DataFrame(index=list('wxyz')))",
    ]);
    const a = await read(file);
    await pp.normalizeTotal(a, { targetSum: 10 });
    pp.log1p(a);
    await assert.rejects(pp.highlyVariableGenes(a, { nTopGenes: 2 }), /gene "w" are not finite .* negative/);
    a.close();
  });

  it("HVG on no cells, and pearson residuals with an empty cell, are typed errors", async () => {
    const file = h5ad("some-empty", [
      "rng = np.random.default_rng(1)",
      "X = rng.poisson(3, size=(20, 8)).astype(np.float32)",
      "X[5] = 0",
      "a = ad.AnnData(sp.csr_matrix(X), obs=pd.DataFrame(index=[f'c{i}' for i in range(20)]), var=pd.DataFrame(index=[f'g{j}' for j in range(8)]))",
    ]);
    const a = await read(file);
    await assert.rejects(pp.highlyVariableGenes(a, { flavor: "pearson_residuals", nTopGenes: 3 }), /cell "c5" has no counts/);
    const none = await pp.filterCells(a, { minCounts: 1e9 });
    assert.equal(none.nObs, 0);
    await pp.normalizeTotal(none, { targetSum: 1e4 });
    pp.log1p(none);
    await assert.rejects(pp.highlyVariableGenes(none, { nTopGenes: 3 }), /there are no cells/);
    a.close();
  });

  it("seurat and cell_ranger HVG refuse a batch of one cell by name (scanpy's dispersions there are rounding residue), as seurat_v3 does", async () => {
    const file = h5ad("one-cell-batch", [
      "rng = np.random.default_rng(3)",
      "a = ad.AnnData(sp.csr_matrix(rng.poisson(2, (30, 10)).astype(np.float32)), obs=pd.DataFrame({'b': pd.Categorical(['x'] * 29 + ['y'])}, index=[f'c{i}' for i in range(30)]), var=pd.DataFrame(index=[f'g{j}' for j in range(10)]))",
    ]);
    for (const flavor of ["seurat", "cell_ranger", "seurat_v3"] as const) {
      const a = await read(file);
      if (flavor !== "seurat_v3") {
        await pp.normalizeTotal(a);
        pp.log1p(a);
      }
      await assert.rejects(
        pp.highlyVariableGenes(a, { flavor, batchKey: "b", nTopGenes: 3 }),
        (e: Error) => e instanceof InvalidArgumentError && /batch "y" of b has fewer than 2 cells/.test(e.message),
      );
      assert.equal(a.var.getChild("highly_variable"), null, `${flavor}: nothing written`);
      a.close();
    }
  });

  it("pearson residuals with theta = Infinity (scanpy's Poisson model) and clip = Infinity (no clipping), as scanpy", async () => {
    const file = h5ad("pearson-inf", [
      "rng = np.random.default_rng(2)",
      "X = rng.negative_binomial(2, 0.3, size=(60, 12)).astype(np.float32); X[:, 0] += 40 * (np.arange(60) % 7 == 0)",
      "X[X.sum(1) == 0, 1] = 1",
      "a = ad.AnnData(sp.csr_matrix(X), obs=pd.DataFrame(index=[f'c{i}' for i in range(60)]), var=pd.DataFrame(index=[f'g{j}' for j in range(12)]))",
    ]);
    const want = JSON.parse(
      runPython(
        [
          "import sys, json, warnings, numpy as np, scanpy as sc",
          "warnings.simplefilter('ignore')",
          "out = {}",
          "for name, kw in [('theta', {'theta': np.inf}), ('clip', {'clip': np.inf}), ('both', {'theta': np.inf, 'clip': np.inf})]:",
          "    a = sc.read_h5ad(sys.argv[1]); sc.experimental.pp.highly_variable_genes(a, flavor='pearson_residuals', n_top_genes=4, **kw)",
          "    out[name] = a.var['residual_variances'].tolist()",
          "print(json.dumps(out))",
        ],
        file,
      ),
    );
    const opts = { theta: { theta: Infinity }, clip: { clip: Infinity }, both: { theta: Infinity, clip: Infinity } };
    for (const [name, o] of Object.entries(opts)) {
      const a = await read(file);
      await pp.highlyVariableGenes(a, { flavor: "pearson_residuals", nTopGenes: 4, ...o });
      const got = Array.from(a.var.getChild("residual_variances")?.toArray() as Float64Array);
      const expected = want[name] as number[];
      got.forEach((g, j) =>
        assert.ok(Math.abs(g - expected[j]) <= 1e-5 * Math.abs(expected[j]), `${name} gene ${j}: ${g} vs ${expected[j]}`),
      );
      a.close();
    }
    assert.notDeepEqual(want.theta, want.clip, "the two options change different things");
  });
});

describe("seurat HVG, PCA and neighbors on small or tied data, as scanpy", () => {
  it("a mean bin whose genes share one dispersion has NaN normalized dispersions (was ±0.98 of rounding noise)", async () => {
    const file = h5ad("ties", [
      "rng = np.random.default_rng(0)",
      "C = rng.poisson(np.outer(rng.gamma(3, 1/3, 300), rng.gamma(0.5, 2, 6)))",
      "X = np.tile(C, (1, 10)).astype(np.float32)",
      "a = ad.AnnData(sp.csr_matrix(X), obs=pd.DataFrame(index=[f'c{i}' for i in range(300)]), var=pd.DataFrame(index=[f'g{j}' for j in range(60)]))",
    ]);
    const a = await read(file);
    await pp.normalizeTotal(a, { targetSum: 1e4 });
    pp.log1p(a);
    await pp.highlyVariableGenes(a, { nTopGenes: 10 });
    const ours = Array.from(a.var.getChild("dispersions_norm")?.toArray() as ArrayLike<number>);
    const theirs: (number | null)[] = JSON.parse(
      runPython(
        [
          "import sys, json, warnings, anndata as ad, scanpy as sc, numpy as np",
          "warnings.filterwarnings('ignore')",
          "a = ad.read_h5ad(sys.argv[1]); sc.pp.normalize_total(a, target_sum=1e4); sc.pp.log1p(a)",
          "sc.pp.highly_variable_genes(a, n_top_genes=10)",
          "print(json.dumps([None if np.isnan(x) else float(x) for x in a.var['dispersions_norm']]))",
        ],
        file,
      ),
    );
    assert.ok(
      theirs.some((x) => x === null),
      "the fixture has such bins",
    );
    ours.forEach((x, j) => {
      if (theirs[j] === null) assert.ok(Number.isNaN(x), `gene ${j}: ${x} vs scanpy NaN`);
      else assert.ok(Math.abs(x - (theirs[j] as number)) < 1e-4, `gene ${j}: ${x} vs scanpy ${theirs[j]}`);
    });
    a.close();
  });

  it("default nComps on 40 genes is 39 (scanpy), and nNeighbors above n_obs is lowered with a warning", async () => {
    const file = h5ad("small", [
      "rng = np.random.default_rng(2)",
      "X = rng.poisson(3, size=(60, 40)).astype(np.float32)",
      "a = ad.AnnData(sp.csr_matrix(X), obs=pd.DataFrame(index=[f'c{i}' for i in range(60)]), var=pd.DataFrame(index=[f'g{j}' for j in range(40)]))",
    ]);
    const a = await read(file);
    await pp.normalizeTotal(a);
    pp.log1p(a);
    await pp.pca(a);
    assert.equal(((await a.obsm.get("X_pca")) as { shape: number[] }).shape[1], 39);
    const few = a.subset({ obs: [0, 1, 2, 3, 4, 5] });
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.message);
    process.on("warning", onWarning);
    try {
      const r = await pp.neighbors(few, { nNeighbors: 15 });
      await new Promise((res) => setImmediate(res));
      assert.equal(r.k, 4, "1 + n_obs / 2, as scanpy");
      assert.ok(
        warnings.some((w) => /adjusting to nNeighbors = 4/.test(w)),
        warnings.join("; "),
      );
    } finally {
      process.off("warning", onWarning);
    }
    a.close();
  });

  it("exact kNN finds the true neighbours of clusters far apart (float32 expansion lost them), with a small k and a large one (buffered candidates)", async () => {
    const file = h5ad("far-clusters", [
      "rng = np.random.default_rng(5)",
      "centers = rng.normal(size=(6, 20)) * 300",
      "P = np.vstack([c + rng.normal(size=(100, 20)) for c in centers]).astype(np.float32)",
      "a = ad.AnnData(sp.csr_matrix((600, 2), dtype=np.float32), obs=pd.DataFrame(index=[f'c{i}' for i in range(600)]), var=pd.DataFrame(index=['g0', 'g1']))",
      "a.obsm['X_pca'] = P",
    ]);
    const a = await read(file);
    for (const k of [10, 120]) {
      const r = await pp.neighbors(a, { nNeighbors: k, method: "exact", keyAdded: `k${k}` });
      const el = (await a.obsm.get("X_pca")) as { data: Float32Array; shape: number[] };
      const [n, d] = el.shape;
      let wrong = 0;
      for (let q = 0; q < n; q++) {
        const dist = (j: number) => {
          let s = 0;
          for (let c = 0; c < d; c++) s += (el.data[q * d + c] - el.data[j * d + c]) ** 2;
          return s;
        };
        const truth = Array.from({ length: n }, (_, j) => j)
          .filter((j) => j !== q)
          .sort((x, y) => dist(x) - dist(y))
          .slice(0, r.k - 1);
        const found = new Set(Array.from(r.knnIndices.subarray(q * r.k + 1, (q + 1) * r.k)));
        if (!truth.every((j) => found.has(j))) wrong++;
      }
      assert.equal(wrong, 0, `k ${k}: ${wrong} cells with a wrong neighbour set`);
    }
    a.close();
  });
});

describe("neighbors on coordinates far from float32's comfort", () => {
  it("float64 coordinates with a large offset keep their distances (they collapsed in the float32 copy)", async () => {
    const file = h5ad("spatial-offset", [
      "rng = np.random.default_rng(2)",
      "a = ad.AnnData(sp.csr_matrix((200, 2), dtype=np.float32), obs=pd.DataFrame(index=[f'c{i}' for i in range(200)]), var=pd.DataFrame(index=['g0', 'g1']))",
      "a.obsm['spatial'] = rng.normal(size=(200, 2)) + 1e9",
      "a.obsm['X_pca'] = (rng.normal(size=(200, 3)) * 1e20).astype(np.float32)",
    ]);
    const a = await read(file);
    for (const useRep of ["spatial", "X_pca"]) {
      const r = await pp.neighbors(a, { nNeighbors: 6, method: "exact", useRep, keyAdded: `nb_${useRep}` });
      const el = (await a.obsm.get(useRep)) as { data: ArrayLike<number>; shape: number[] };
      const [n, d] = el.shape;
      for (let q = 0; q < n; q++) {
        const dist = (j: number) => {
          let s = 0;
          for (let c = 0; c < d; c++) s += (el.data[q * d + c] - el.data[j * d + c]) ** 2;
          return Math.sqrt(s);
        };
        const truth = Array.from({ length: n }, (_, j) => j)
          .filter((j) => j !== q)
          .map(dist)
          .sort((x, y) => x - y);
        for (let s = 1; s < r.k; s++) {
          const got = r.knnDistances[q * r.k + s];
          assert.ok(Math.abs(got - truth[s - 1]) <= 1e-4 * truth[s - 1], `${useRep} row ${q} rank ${s}: ${got} vs ${truth[s - 1]}`);
        }
      }
    }
    // all coordinates below float32's range: every distance would be 0, neighbours in index order
    a.obsm.set("tiny", {
      kind: "dense",
      shape: [a.nObs, 2],
      dtype: "float64",
      data: Float64Array.from({ length: a.nObs * 2 }, (_, i) => (i % 7) * 1e-300),
    });
    await assert.rejects(pp.neighbors(a, { useRep: "tiny" }), /obsm "tiny": every coordinate is below float32's range/);
    a.close();
  });
});

describe("writing a scale without centring", () => {
  it("a transformed sparse X and raw keep indptr in the indices' dtype, so scanpy's rank_genes_groups runs; session elements take the compression", async () => {
    const file = h5ad("to-rank", [
      "rng = np.random.default_rng(8)",
      "X = rng.poisson(1.2, size=(120, 30)).astype(np.float32)",
      "a = ad.AnnData(sp.csr_matrix(X), obs=pd.DataFrame({'g': pd.Categorical(['a', 'b', 'c'] * 40)}, index=[f'c{i}' for i in range(120)]), var=pd.DataFrame(index=[f'g{j}' for j in range(30)]))",
    ]);
    const a = await read(file);
    await pp.normalizeTotal(a, { targetSum: 1e4 });
    pp.log1p(a);
    a.setRaw();
    await pp.pca(a, { nComps: 5 });
    await pp.neighbors(a, { nNeighbors: 5 });
    const out = path.join(tmp, "to-rank-out.h5ad");
    await a.write(out, { compression: "gzip" });
    a.close();
    const check = runPython(
      [
        "import sys, warnings, h5py, anndata as ad, scanpy as sc",
        "warnings.filterwarnings('ignore')",
        "f = h5py.File(sys.argv[1], 'r')",
        "for m in ['X', 'raw/X', 'obsp/connectivities']: print(m, f[m + '/indices'].dtype, f[m + '/indptr'].dtype)",
        "for d in ['obsm/X_pca', 'varm/PCs', 'obsp/connectivities/data', 'obsp/distances/indices']: print(d, f[d].compression)",
        "f.close()",
        "b = ad.read_h5ad(sys.argv[1])",
        "sc.tl.rank_genes_groups(b, 'g')",
        "print('ranked', list(b.uns['rank_genes_groups']['names'].dtype.names))",
      ],
      out,
    ).trim();
    const lines = check.split("\n");
    for (const m of ["X", "raw/X", "obsp/connectivities"]) assert.ok(lines.includes(`${m} int32 int32`), check);
    for (const d of ["obsm/X_pca", "varm/PCs", "obsp/connectivities/data", "obsp/distances/indices"])
      assert.ok(lines.includes(`${d} gzip`), check);
    assert.ok(lines.includes("ranked ['a', 'b', 'c']"), check);
  });

  it("stays CSR float32 as scanpy keeps it (was dense float64), with scanpy's values", async () => {
    const file = h5ad("to-scale", [
      "rng = np.random.default_rng(4)",
      "X = rng.poisson(1.5, size=(40, 12)).astype(np.float32)",
      "a = ad.AnnData(sp.csr_matrix(X), obs=pd.DataFrame(index=[f'c{i}' for i in range(40)]), var=pd.DataFrame(index=[f'g{j}' for j in range(12)]))",
    ]);
    const a = await read(file);
    await pp.normalizeTotal(a, { targetSum: 1e4 });
    pp.log1p(a);
    await pp.scale(a, { zeroCenter: false, maxValue: 2 });
    const out = path.join(tmp, "scaled.h5ad");
    await a.write(out);
    a.close();
    const check = runPython(
      [
        "import sys, warnings, anndata as ad, scanpy as sc, numpy as np, scipy.sparse as sp",
        "warnings.filterwarnings('ignore')",
        "ours = ad.read_h5ad(sys.argv[1])",
        `ref = ad.read_h5ad(${JSON.stringify(file)}); sc.pp.normalize_total(ref, target_sum=1e4); sc.pp.log1p(ref); sc.pp.scale(ref, zero_center=False, max_value=2)`,
        "print(sp.issparse(ours.X), ours.X.dtype, float(np.abs(ours.X.toarray() - ref.X.toarray()).max()))",
      ],
      out,
    ).trim();
    const [sparse, dtype, maxDiff] = check.split(" ");
    assert.equal(sparse, "True");
    assert.equal(dtype, "float32");
    assert.ok(Number(maxDiff) < 1e-5, check);
  });

  it("a dense float32 source stays dense float32 through normalize, log1p and scale, as in scanpy (was CSR, or float64)", async () => {
    const file = h5ad("dense-to-scale", [
      "rng = np.random.default_rng(6)",
      "X = rng.poisson(1.5, size=(30, 10)).astype(np.float32)",
      "a = ad.AnnData(X, obs=pd.DataFrame(index=[f'c{i}' for i in range(30)]), var=pd.DataFrame(index=[f'g{j}' for j in range(10)]))",
    ]);
    for (const [name, scale] of [
      ["log1p", ""],
      ["scaled", "sc.pp.scale(ref, max_value=3)"],
    ] as const) {
      const a = await read(file);
      await pp.normalizeTotal(a, { targetSum: 1e4 });
      pp.log1p(a);
      if (scale) await pp.scale(a, { maxValue: 3 });
      const out = path.join(tmp, `dense-${name}.h5ad`);
      await a.write(out);
      a.close();
      const check = runPython(
        [
          "import sys, warnings, anndata as ad, scanpy as sc, numpy as np",
          "warnings.filterwarnings('ignore')",
          "ours = ad.read_h5ad(sys.argv[1])",
          `ref = ad.read_h5ad(${JSON.stringify(file)}); sc.pp.normalize_total(ref, target_sum=1e4); sc.pp.log1p(ref); ${scale}`,
          "print(type(ours.X).__name__, ours.X.dtype, ref.X.dtype, float(np.abs(ours.X - ref.X).max()))",
        ],
        out,
      ).trim();
      const [kind, dtype, refDtype, maxDiff] = check.split(" ");
      assert.equal(kind, "ndarray", `${name}: ${check}`);
      assert.equal(dtype, refDtype, `${name}: ${check}`);
      assert.equal(dtype, "float32");
      assert.ok(Number(maxDiff) < 1e-5, `${name}: ${check}`);
    }
  });
});

describe("a float64 X stays float64, as scanpy keeps it", () => {
  for (const layout of ["csr", "dense"] as const) {
    it(`${layout}: normalize → log1p (→ scale) in float64, written, read in chunks and summed, equal scanpy's to 1e-12 (was float32 log1p, ~3e-7)`, async () => {
      const file = h5ad(`f64-${layout}`, [
        "rng = np.random.default_rng(8)",
        "X = rng.poisson(2.0, size=(60, 15)).astype(np.float64)",
        `a = ad.AnnData(${layout === "csr" ? "sp.csr_matrix(X)" : "X"}, obs=pd.DataFrame(index=[f'c{i}' for i in range(60)]), var=pd.DataFrame(index=[f'g{j}' for j in range(15)]))`,
      ]);
      for (const [name, scale] of [
        ["log1p", ""],
        ["scaled", "sc.pp.scale(ref, max_value=3)"],
      ] as const) {
        const a = await read(file);
        await pp.normalizeTotal(a, { targetSum: 1e4 });
        pp.log1p(a);
        assert.match(a.X.explain(), /log1p in float64/);
        if (scale) await pp.scale(a, { maxValue: 3 });
        const means = (await a.X.mean(0)) as Float64Array;
        const chunks: number[][] = [];
        for await (const { chunk } of a.X.chunked(25)) {
          const [r, c] = chunk.shape;
          for (let i = 0; i < r; i++) {
            const row = new Array<number>(c).fill(0);
            if (chunk.format === "csr")
              for (let p = chunk.indptr[i]; p < chunk.indptr[i + 1]; p++) row[chunk.indices[p]] = Number(chunk.data[p]);
            else for (let j = 0; j < c; j++) row[j] = Number(chunk.data[i * c + j]);
            chunks.push(row);
          }
        }
        const out = path.join(tmp, `f64-${layout}-${name}.h5ad`);
        await a.write(out);
        a.close();
        const report = runPython(
          [
            "import sys, json, warnings, anndata as ad, scanpy as sc, numpy as np, scipy.sparse as sp",
            "warnings.filterwarnings('ignore')",
            "ours = ad.read_h5ad(sys.argv[1])",
            `ref = ad.read_h5ad(${JSON.stringify(file)}); sc.pp.normalize_total(ref, target_sum=1e4); sc.pp.log1p(ref); ${scale}`,
            "dense = lambda m: m.toarray() if sp.issparse(m) else np.asarray(m)",
            "R = dense(ref.X)",
            "rel = lambda x: float(np.max(np.abs(np.asarray(x, dtype=np.float64) - R) / np.maximum(np.abs(R), 1)))",
            "means = np.array(json.loads(sys.argv[2]))",
            "chunks = np.array(json.loads(sys.argv[3]))",
            "print(json.dumps({'ours': [type(ours.X).__name__, str(ours.X.dtype)], 'ref': [type(ref.X).__name__, str(ref.X.dtype)],",
            "  'written': rel(dense(ours.X)), 'chunks': rel(chunks), 'means': float(np.max(np.abs(means - R.mean(0)) / np.maximum(np.abs(R.mean(0)), 1)))}))",
          ],
          out,
          JSON.stringify(Array.from(means)),
          JSON.stringify(chunks),
        );
        const r = JSON.parse(report);
        assert.deepEqual(r.ours, r.ref, `${name}: the written X has scanpy's type and dtype (${report})`);
        assert.equal(r.ours[1], "float64");
        for (const k of ["written", "chunks", "means"]) assert.ok(r[k] < 1e-12, `${name} ${k}: ${report}`);
      }
    });
  }
});

describe("seurat_v3's LOESS", () => {
  it("finds each vertex's neighbourhood radius from the sorted x, as sorting all distances does (ties included)", () => {
    let seed = 11;
    const rand = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    for (let trial = 0; trial < 200; trial++) {
      const n = 1 + Math.floor(rand() * 300);
      const x = Float64Array.from({ length: n }, () => (trial % 3 === 0 ? Math.floor(rand() * 10) / 3 : rand() * 100 - 50));
      const xs = Float64Array.from(x).sort();
      for (let r = 0; r < 10; r++) {
        const q = r < 4 ? xs[Math.floor(rand() * n)] : rand() * 120 - 60;
        const k = Math.floor(rand() * n);
        const sorted = Float64Array.from(x, (v) => (v - q) ** 2).sort();
        assert.ok(Object.is(kthSquaredDistance(xs, q, k), sorted[k]), `trial ${trial}: k ${k} of ${n}`);
      }
    }
  });
});

describe("the JavaScript chain (chunked reads of a lazy X)", () => {
  it("a dense X: normalize → log1p, then a gene subset, reads as dense rows equal to the whole rows' columns (was refused)", async () => {
    const file = h5ad("dense-norm-subset", [
      "rng = np.random.default_rng(3)",
      "x = rng.poisson(1.5, (40, 9)).astype(np.float32); x[5] = 0",
      "a = ad.AnnData(x)",
    ]);
    const whole = await read(file);
    const a = await read(file);
    try {
      for (const m of [whole, a]) {
        await pp.normalizeTotal(m, { targetSum: 100 });
        pp.log1p(m);
      }
      const genes = [7, 0, 3];
      const v = a.subset({ var: genes });
      const got = await v.X.rows(0, 40);
      const all = await whole.X.rows(0, 40);
      assert.equal(got.format, "dense");
      assert.deepEqual(got.shape, [40, 3]);
      for (let i = 0; i < 40; i++)
        genes.forEach((g, q) => assert.ok(Object.is(got.data[i * 3 + q], all.data[i * 9 + g]), `row ${i} gene ${g}`));
      // and through scale, in chunks
      await pp.scale(v, { maxValue: 1 });
      let n = 0;
      for await (const { chunk } of v.X.chunked(16)) {
        assert.equal(chunk.format, "dense");
        n += chunk.shape[0];
        for (const x of chunk.data as Float64Array) assert.ok(x <= 1 && Number.isFinite(x));
      }
      assert.equal(n, 40);
    } finally {
      whole.close();
      a.close();
    }
  });

  it("normalize → log1p in chunks equals the formula per value, bit for bit, across log bases (log1p cache)", async () => {
    const file = path.join(FIXTURES, "pp", "synth_3k.h5ad");
    for (const base of [undefined, 2, undefined]) {
      const raw = await read(file);
      const a = await read(file);
      await pp.normalizeTotal(a, { targetSum: 1e4 });
      pp.log1p(a, base === undefined ? {} : { base });
      const inv = base ? 1 / Math.log(base) : 1;
      let row = 0;
      for await (const { chunk } of a.X.chunked(500)) {
        const src = await raw.X.rows(row, row + chunk.shape[0]);
        if (chunk.format !== "csr" || src.format !== "csr") throw new Error("expected CSR");
        for (let i = 0; i < chunk.shape[0]; i++) {
          let total = 0;
          for (let p: number = src.indptr[i]; p < src.indptr[i + 1]; p++) total += Number(src.data[p]);
          const f = total === 0 ? 1 : 1e4 / total;
          for (let p: number = src.indptr[i]; p < src.indptr[i + 1]; p++) {
            const want: number = Math.fround(Math.log1p(Math.fround(Number(src.data[p]) * f))) * inv;
            if (!Object.is(chunk.data[p], want)) assert.fail(`base ${base} row ${row + i}: ${chunk.data[p]} vs ${want}`);
          }
        }
        row += chunk.shape[0];
      }
      assert.equal(row, a.nObs);
      raw.close();
      a.close();
    }
  });
});

describe("state across steps, and scanpy's own arithmetic (a probe's findings)", () => {
  it("scale on X does not take the mean/std an HVG pass cached for a layer with the same transforms over other genes", async () => {
    const a = await read(path.join(FIXTURES, "pp", "synth_3k.h5ad"));
    try {
      a.layers.set("counts", a.X);
      await pp.normalizeTotal(a, { targetSum: 1e4 }); // totals over every gene
      pp.log1p(a);
      const v = a.subset({ var: slice(0, 500) });
      await pp.normalizeTotal(v, { targetSum: 1e4, layer: "counts" }); // totals over the view's 500 genes
      pp.log1p(v, { layer: "counts" });
      await pp.highlyVariableGenes(v, { layer: "counts", nTopGenes: 100 });
      const want = (await v.X.mean(0)) as Float64Array;
      const layerMean = (await v.layers.get("counts").mean(0)) as Float64Array;
      assert.ok(Math.abs(layerMean[0] - want[0]) > 1e-3 * want[0], "the two matrices differ");
      await pp.scale(v);
      const got = v.var.getChild("mean");
      for (let j = 0; j < v.nVars; j++) assert.ok(Math.abs(Number(got?.get(j)) - want[j]) <= 1e-9 * Math.abs(want[j]) + 1e-12, `gene ${j}`);
    } finally {
      a.close();
    }
  });

  it("a step called while normalizeTotal or scale has not finished is refused (it was lost when they stored their result)", async () => {
    const a = await read(path.join(FIXTURES, "pp", "synth_3k.h5ad"));
    try {
      const running = pp.normalizeTotal(a); // median target: a pass
      assert.throws(
        () => pp.log1p(a),
        (e: Error) => e instanceof InvalidArgumentError && /pp\.normalizeTotal is still running on X/.test(e.message),
      );
      await assert.rejects(() => pp.highlyVariableGenes(a), /still running/);
      await assert.rejects(() => pp.pca(a), /still running/);
      assert.throws(() => a.subset({ obs: slice(0, 10) }), /subset: pp\.normalizeTotal is still running on X/);
      await running;
      pp.log1p(a);
      assert.deepEqual(
        a.X.chain.steps.map((s) => s.op),
        ["normalize", "log1p"],
      );
      const scaling = pp.scale(a); // no cached moments: a pass
      await assert.rejects(() => pp.pca(a, { nComps: 5 }), /pp\.scale is still running on X/);
      await scaling;
      await pp.pca(a, { nComps: 5 });
      // A step that runs no pass leaves nothing marked: the next call needs no await.
      const b = await read(path.join(FIXTURES, "pp", "synth_3k.h5ad"));
      void pp.normalizeTotal(b, { targetSum: 1e4 });
      pp.log1p(b);
      assert.deepEqual(
        b.X.chain.steps.map((s) => s.op),
        ["normalize", "log1p"],
      );
      b.close();
    } finally {
      a.close();
    }
  });

  it("pearson_residuals batches in np.unique order: a numeric batchKey by value (2 before 10; the first batch sets the default clip), as scanpy", async () => {
    const file = h5ad("int-batches", [
      "rng = np.random.default_rng(5)",
      "X = sp.csr_matrix(rng.negative_binomial(2, 0.4, size=(600, 120)).astype(np.float32))",
      "b = np.array([10] * 300 + [2] * 200 + [3] * 100, dtype=np.int64)",
      "X[b == 10] = X[b == 10] * 3",
      "a = ad.AnnData(X, obs=pd.DataFrame({'bnum': b}, index=[f'c{i}' for i in range(600)]), var=pd.DataFrame(index=[f'g{j}' for j in range(120)]))",
    ]);
    const a = await read(file);
    try {
      await pp.highlyVariableGenes(a, { flavor: "pearson_residuals", nTopGenes: 30, batchKey: "bnum" });
      const want = JSON.parse(
        runPython(
          [
            "import sys, json, warnings, anndata as ad, scanpy as sc",
            "warnings.filterwarnings('ignore')",
            "a = ad.read_h5ad(sys.argv[1])",
            "sc.experimental.pp.highly_variable_genes(a, flavor='pearson_residuals', n_top_genes=30, batch_key='bnum')",
            "print(json.dumps({'rv': a.var['residual_variances'].tolist(), 'hv': a.var['highly_variable'].tolist()}))",
          ],
          file,
        ),
      );
      const rv = a.var.getChild("residual_variances");
      want.rv.forEach((w: number, j: number) =>
        assert.ok(Math.abs(Number(rv?.get(j)) - w) <= 1e-5 * Math.abs(w), `gene ${j}: ${rv?.get(j)} vs ${w}`),
      );
      assert.deepEqual(Array.from(a.var.getChild("highly_variable") ?? []), want.hv);
      assert.equal(storedDtype(a.var.getChild("highly_variable_nbatches") as Vector), "int64", "written as scanpy's int64");
    } finally {
      a.close();
    }
  });

  it("cell_ranger's bin edges are numpy.percentile's, bit for bit (its position (n - 1)·(q / 100) can be one ulp below a whole number)", () => {
    const sizes = [21, 101, 661, 1001, 1999, 2000];
    const arrays = sizes.map((n, k) => {
      const v = Float64Array.from({ length: n }, (_, i) => Math.sin(i * 12.9898 + k) * 43758.5453);
      return v.map((x) => x - Math.floor(x)).sort();
    });
    const file = path.join(tmp, "percentile.json");
    fs.writeFileSync(file, JSON.stringify(arrays.map((a) => Array.from(a))));
    const want: number[][] = JSON.parse(
      runPython(
        [
          "import sys, json, numpy as np",
          "arrays = json.load(open(sys.argv[1]))",
          "print(json.dumps([np.percentile(np.array(a), np.arange(10, 105, 5)).tolist() for a in arrays]))",
        ],
        file,
      ),
    );
    arrays.forEach((a, k) => {
      want[k].forEach((w, i) => {
        const q = 10 + 5 * i;
        assert.ok(Object.is(percentile(a, q), w), `n ${a.length}, q ${q}: ${percentile(a, q)} vs numpy ${w}`);
      });
    });
  });

  it("the default target when most cells have no counts over the genes used is a typed error (scanpy's target 0 zeroes every cell)", async () => {
    const file = h5ad("mostly-empty", [
      "X = np.zeros((7, 5), np.float32)",
      "X[[0, 1, 2], :] = [[1, 2, 0, 0, 3], [0, 1, 1, 0, 0], [4, 0, 0, 1, 0]]",
      "a = ad.AnnData(sp.csr_matrix(X), obs=pd.DataFrame(index=[f'c{i}' for i in range(7)]), var=pd.DataFrame(index=[f'g{j}' for j in range(5)]))",
    ]);
    const a = await read(file);
    try {
      await assert.rejects(
        () => pp.normalizeTotal(a),
        /the median cell total is 0 \(4 of 7 cells have no counts over its genes\).*pass targetSum/,
      );
      await pp.normalizeTotal(a, { targetSum: 10 }); // still usable
    } finally {
      a.close();
    }
  });

  it("exact PCA takes nComps = min(n_obs, n_genes), as scanpy's covariance_eigh; the randomized solver one fewer", async () => {
    const a = await read(path.join(FIXTURES, "pp", "synth_3k.h5ad"));
    try {
      const v = a.subset({ var: slice(0, 40) });
      await pp.pca(v, { nComps: 40, useHighlyVariable: false });
      assert.deepEqual(((await v.obsm.get("X_pca")) as unknown as { shape: number[] }).shape, [a.nObs, 40]);
      // float32, as scanpy's for float32 X.
      const ratio = (v.uns.pca as { variance_ratio: Float32Array }).variance_ratio;
      assert.ok(ratio instanceof Float32Array);
      assert.ok(Math.abs(ratio.reduce((s, x) => s + x, 0) - 1) < 1e-6, "all 40 components: the whole variance");
      await assert.rejects(() => pp.pca(v, { nComps: 40, svdSolver: "randomized", useHighlyVariable: false }), /\[1, 39\]/);
    } finally {
      a.close();
    }
  });
});

describe("graph steps (a probe's findings, session 23)", () => {
  const cells = 6000;
  let file: string;
  const open = async () => {
    file ??= h5ad("graph-probe", [
      "rng = np.random.default_rng(5)",
      `a = ad.AnnData(sp.csr_matrix((${cells}, 2), dtype=np.float32), obs=pd.DataFrame(index=[f'c{i}' for i in range(${cells})]), var=pd.DataFrame(index=['g0', 'g1']))`,
      // three clusters in 5 dimensions
      `a.obsm['X_pca'] = (rng.normal(size=(${cells}, 5)) + np.repeat(np.eye(3, 5) * 8, ${cells / 3}, axis=0)).astype(np.float32)`,
    ]);
    const a = await read(file);
    await pp.neighbors(a, { nNeighbors: 10 });
    return a;
  };

  it("tl.umap lays out a view's graph with umap-js too (it rebuilt a kNN from distances, whose rows a view cuts)", async () => {
    const a = await open();
    const view = a.subset({ obs: Array.from({ length: cells }, (_, i) => i % 2 === 0) });
    for (const opts of [
      { method: "umap-js" as const, nEpochs: 20 },
      { nComponents: 17, nEpochs: 5 },
    ]) {
      const r = await tl.umap(view, opts);
      assert.equal(r.method, "umap-js");
      assert.equal(r.embedding.length, view.nObs * (opts.nComponents ?? 2));
      assert.ok(r.embedding.every(Number.isFinite));
    }
    a.close();
  });

  it('init "random" draws every coordinate independently (an LCG in doubles cycled after 10,466 values)', async () => {
    const a = await open();
    const r = await tl.umap(a, { init: "random", nEpochs: 1, alpha: 1e-30 });
    // Cells that started on the same spot are still within 1e-3 of each other after one (tiny) epoch.
    const spots = new Set(
      Array.from({ length: cells }, (_, i) => `${Math.round(r.embedding[2 * i] * 1e3)},${Math.round(r.embedding[2 * i + 1] * 1e3)}`),
    );
    assert.ok(spots.size > 0.99 * cells, `${spots.size} distinct starting spots of ${cells}`);
    a.close();
  });

  it("umap-js takes the whole seed (seeds 2^32 apart gave the same layout)", async () => {
    const a = await open();
    const v = a.subset({ obs: slice(0, 300) });
    const layout = async (randomState: number) =>
      (await tl.umap(v, { method: "umap-js", init: "X_pca", nEpochs: 10, randomState })).embedding;
    const one = await layout(1);
    assert.deepEqual(await layout(1), one, "reproducible");
    assert.notDeepEqual(await layout(2 ** 32 + 1), one);
    a.close();
  });

  it("leiden refuses obsp with neighborsKey (scanpy: specify only one); umap names the obsp graph it checked", async () => {
    const a = await open();
    await assert.rejects(tl.leiden(a, { obsp: "connectivities", neighborsKey: "neighbors" }), InvalidArgumentError);
    const g = (await a.obsp.get("connectivities")) as { data: Float32Array };
    const bad = { ...(await a.obsp.get("connectivities")), data: g.data.slice() } as never as { data: Float32Array };
    bad.data[7] = Number.NaN;
    a.obsp.set("nb_connectivities", bad as never);
    a.uns.nb = { connectivities_key: "nb_connectivities", distances_key: "distances", params: {} };
    await assert.rejects(
      tl.umap(a, { neighborsKey: "nb", nEpochs: 5 }),
      (e: InvalidArgumentError) => e.element === "obsp/nb_connectivities",
    );
    a.close();
  });

  it("the float32-range check names the row holding the huge value, also when centring spreads it; useRep X says why not", async () => {
    const a = await open();
    const data = new Float64Array(cells * 2);
    data[2 * 2] = 1e300;
    a.obsm.set("big", { kind: "dense", shape: [cells, 2], dtype: "float64", data });
    for (const metric of ["euclidean", "cosine"] as const)
      await assert.rejects(
        pp.neighbors(a, { useRep: "big", metric }),
        /obsm "big" row 2 has a coordinate beyond float32 range \(1e\+300\)/,
      );
    await assert.rejects(pp.neighbors(a, { useRep: "X" }), /useRep "X" is not supported: X stays on disk/);
    a.close();
  });
});
