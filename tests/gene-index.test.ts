/**
 * The gene-major sidecar index: gene values equal the row-read path (X,
 * views, lazy chains, layers, dense X, an all-zero gene, the last gene) and
 * Python anndata's `adata[:, gene].X`; the sidecar is reused across
 * objects, rebuilt when the source changes or the sidecar is damaged, and
 * a cancelled build leaves no files behind.
 */
import * as assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { type AnnDataOOM, CancelledError, InvalidArgumentError, pp, read, slice } from "../src/engine";
import { assertClose, densify, PYTHON } from "./helpers";

const work = fs.mkdtempSync(path.join(os.tmpdir(), "aoom-gene-index-"));
const cacheDir = path.join(work, "cache");
const N_OBS = 400;
const N_VARS = 60;
const ZERO_GENE = 7;
const VIEW_OBS = [3, 1, 200, 1, 399];
const ORACLE_GENES = ["g0", `g${ZERO_GENE}`, `g${N_VARS - 1}`, "g13"];

// Fixtures written by anndata; the oracle is anndata's own `adata[obs, gene].X`.
const GENERATOR = `
import json, sys
import numpy as np, scipy.sparse as sp, anndata as ad, pandas as pd
out = sys.argv[1]
rng = np.random.default_rng(7)
n, m = ${N_OBS}, ${N_VARS}
rates = rng.gamma(0.6, 2.0, m)
X = rng.poisson(rates, (n, m)).astype(np.float32)
X[rng.random((n, m)) < 0.5] = 0
X[:, ${ZERO_GENE}] = 0
X[::17, m - 1] = 300  # counts above 255 (u16 storage)
var = pd.DataFrame(index=[f"g{j}" for j in range(m)])
obs = pd.DataFrame(index=[f"c{i}" for i in range(n)])
a = ad.AnnData(X=sp.csr_matrix(X), obs=obs, var=var)
a.layers["counts_i32"] = sp.csr_matrix(X.astype(np.int32))
a.layers["halves"] = (X * 0.5 + (X > 0) * 0.25).astype(np.float32)
a.write_h5ad(f"{out}/counts.h5ad")
d = ad.AnnData(X=(rng.random((n, m)) * (rng.random((n, m)) < 0.4)).astype(np.float64), obs=obs, var=var)
d.write_h5ad(f"{out}/dense.h5ad")
big = sp.random(30000, 2000, density=0.05, format="csr", dtype=np.float32, random_state=1)
big.data = np.ceil(big.data * 20).astype(np.float32)
ad.AnnData(X=big).write_h5ad(f"{out}/big.h5ad")
view = ${JSON.stringify(VIEW_OBS)}
oracle = {g: np.asarray(a[view, g].X.todense()).ravel().tolist() for g in ${JSON.stringify(ORACLE_GENES)}}
json.dump(oracle, open(f"{out}/oracle.json", "w"))
`;

let oracle: Record<string, number[]> = {};
const opened: AnnDataOOM[] = [];
async function open(name: string): Promise<AnnDataOOM> {
  const a = await read(path.join(work, name));
  opened.push(a);
  return a;
}

/** Column j of a view, through the row path (rows() applies the chain in JS). */
async function columnViaRows(a: AnnDataOOM, j: number, layer?: string): Promise<number[]> {
  const m = layer ? a.layers.get(layer) : a.X;
  return densify(await m.rows(0, m.shape[0])).map((r) => r[j]);
}

function sidecars(): string[] {
  return fs.existsSync(cacheDir) ? fs.readdirSync(cacheDir) : [];
}

before(() => {
  process.env.ANNDATA_OOM_GENE_INDEX_DIR = cacheDir;
  execFileSync(PYTHON, ["-c", GENERATOR, work], { stdio: ["ignore", "ignore", "inherit"] });
  oracle = JSON.parse(fs.readFileSync(path.join(work, "oracle.json"), "utf8"));
});

after(() => {
  for (const a of opened) a.close();
  delete process.env.ANNDATA_OOM_GENE_INDEX_DIR;
  fs.rmSync(work, { recursive: true, force: true });
});

describe("gene values through the sidecar index", () => {
  it("equal the row path for every gene, including an all-zero gene and the last gene", async () => {
    const a = await open("counts.h5ad");
    assert.equal(a.X.geneIndexInfo().built, false);
    const all = Array.from({ length: N_VARS }, (_, j) => j);
    const got = await a.geneValues(all);
    const info = a.X.geneIndexInfo();
    assert.equal(info.built, true);
    assert.equal(info.valueKind, "u16");
    assert.ok(info.bytes > 0 && info.path.startsWith(cacheDir));
    const full = densify(await a.X.rows(0, N_OBS));
    for (const j of all)
      assert.deepEqual(
        Array.from(got[j]),
        full.map((r) => r[j]),
        `gene ${j}`,
      );
    assert.ok(got[ZERO_GENE].every((x) => x === 0));
    assert.ok(got[N_VARS - 1].some((x) => x === 300));
    // obsVector reads the index now; same values by name
    assert.deepEqual(Array.from((await a.obsVector(`g${N_VARS - 1}`)) as Float64Array), Array.from(got[N_VARS - 1]));
  });

  it("match Python anndata's adata[obs, gene].X on a view with reordered and repeated cells", async () => {
    const a = await open("counts.h5ad");
    const v = a.subset({ obs: VIEW_OBS });
    const got = await v.geneValues(ORACLE_GENES);
    ORACLE_GENES.forEach((g, k) => {
      assert.deepEqual(Array.from(got[k]), oracle[g], g);
    });
  });

  it("respect obs and var subsets of views (positions are the view's)", async () => {
    const a = await open("counts.h5ad");
    const mask = Array.from({ length: N_OBS }, (_, i) => i % 3 === 1);
    const v = a.subset({ obs: mask, var: ["g13", `g${N_VARS - 1}`, `g${ZERO_GENE}`, "g2"] });
    const got = await v.geneValues([0, 1, 2, 3]);
    const byName = await v.geneValues(["g2", "g13"]);
    for (let j = 0; j < 4; j++) assert.deepEqual(Array.from(got[j]), await columnViaRows(v, j), `view gene ${j}`);
    assert.deepEqual(Array.from(byName[0]), Array.from(got[3]));
    assert.deepEqual(Array.from(byName[1]), Array.from(got[0]));
  });

  it("apply the lazy chain normalize → log1p → scale exactly as a pass does", async () => {
    const a = await open("counts.h5ad");
    await pp.normalizeTotal(a, { targetSum: 1e4 });
    pp.log1p(a);
    const logged = await a.geneValues([0, 13, N_VARS - 1]);
    for (const [k, j] of [0, 13, N_VARS - 1].entries())
      assertClose(Array.from(logged[k]), await columnViaRows(a, j), `log1p gene ${j}`, 1e-9);
    const v = a.subset({ obs: Array.from({ length: 200 }, (_, i) => 2 * i), var: ["g13", "g0", `g${ZERO_GENE}`, `g${N_VARS - 1}`] });
    await pp.scale(v, { maxValue: 2 });
    const scaled = await v.geneValues([0, 1, 2, 3]);
    for (let j = 0; j < 4; j++) {
      const want = await columnViaRows(v, j);
      assertClose(Array.from(scaled[j]), want, `scaled gene ${j}`, 1e-9);
      assertClose(Array.from(await v.X.obsVector(j)), want, `scaled obsVector ${j}`, 1e-9);
    }
    assert.ok(
      scaled[3].some((x) => x === 2),
      "clipping happened",
    );
  });

  it("apply normalize with stored size factors and with excluded genes (totals from a pass)", async () => {
    const a = await open("counts.h5ad");
    await pp.normalizeTotal(a); // median target: size factors are stored in the chain
    const v = a.subset({ obs: slice(0, 300, 2), var: ["g13", `g${N_VARS - 1}`] });
    const got = await v.geneValues([0, 1]);
    for (let j = 0; j < 2; j++) assertClose(Array.from(got[j]), await columnViaRows(v, j), `size factors gene ${j}`, 1e-12);
    const b = await open("counts.h5ad");
    await pp.normalizeTotal(b, { targetSum: 100, excludeHighlyExpressed: true, maxFraction: 0.05 });
    const [g] = await b.geneValues([N_VARS - 1]);
    assertClose(Array.from(g), await columnViaRows(b, N_VARS - 1), "exclude", 1e-12);
  });

  it("after a gene filter, the cell totals of normalize are computed once, not on every gene read", async () => {
    const a = await open("counts.h5ad");
    const v = a.subset({ var: Array.from({ length: N_VARS - 5 }, (_, j) => j) }); // as filterGenes leaves it
    await pp.normalizeTotal(v, { targetSum: 1e4 });
    const passes = async (gene: number) => {
      const labels = new Set<string>();
      const got = await v.geneValues([gene], { onProgress: (p) => labels.add(p.label) });
      assertClose(Array.from(got[0]), await columnViaRows(v, gene), `gene ${gene}`, 1e-12);
      return [...labels].filter((l) => /cell totals/.test(l)).length;
    };
    assert.equal(await passes(3), 1, "the first read computes the totals");
    assert.equal(await passes(4), 0, "later reads reuse them (each paid a full pass)");
  });

  it("index a layer's own element (integer CSR and dense float)", async () => {
    const a = await open("counts.h5ad");
    for (const layer of ["counts_i32", "halves"]) {
      const got = await a.geneValues([1, ZERO_GENE, N_VARS - 1], { layer });
      for (const [k, j] of [1, ZERO_GENE, N_VARS - 1].entries())
        assert.deepEqual(Array.from(got[k]), await columnViaRows(a, j, layer), `${layer} gene ${j}`);
      const info = a.layers.get(layer).geneIndexInfo();
      assert.equal(info.element, `/layers/${layer}`);
      assert.equal(info.valueKind, layer === "halves" ? "f32" : "u16");
    }
  });

  it("work on a dense float64 X (values kept exactly, f64 storage)", async () => {
    const a = await open("dense.h5ad");
    const got = await a.geneValues([0, 5, N_VARS - 1]);
    for (const [k, j] of [0, 5, N_VARS - 1].entries()) assert.deepEqual(Array.from(got[k]), await columnViaRows(a, j), `dense gene ${j}`);
    assert.equal(a.X.geneIndexInfo().valueKind, "f64");
  });

  it("name an unknown gene in an InvalidArgumentError", async () => {
    const a = await open("counts.h5ad");
    await assert.rejects(a.geneValues(["g1", "NOPE-42"]), (e: Error) => e instanceof InvalidArgumentError && e.message.includes("NOPE-42"));
    await assert.rejects(a.geneValues([N_VARS]), InvalidArgumentError);
    await assert.rejects(a.X.geneValues([-1]), InvalidArgumentError);
  });
});

describe("sidecar lifecycle", () => {
  const copy = path.join(work, "copy.h5ad");

  it("is reused by later objects without a rebuild", async () => {
    fs.copyFileSync(path.join(work, "counts.h5ad"), copy);
    const a = await open("copy.h5ad");
    const info = await a.X.buildGeneIndex();
    const st = fs.statSync(info.path, { bigint: true });
    const b = await open("copy.h5ad");
    assert.equal(b.X.geneIndexInfo().built, true);
    await b.geneValues(["g3"]);
    const st2 = fs.statSync(info.path, { bigint: true });
    assert.equal(st2.ino, st.ino);
    assert.equal(st2.mtimeNs, st.mtimeNs);
  });

  it("is rebuilt when the source file changes, and the stale one removed", async () => {
    const a = await open("copy.h5ad");
    const old = a.X.geneIndexInfo();
    assert.equal(old.built, true);
    const later = new Date(Date.now() + 5000);
    fs.utimesSync(copy, later, later);
    const b = await open("copy.h5ad");
    const fresh = b.X.geneIndexInfo();
    assert.notEqual(fresh.path, old.path);
    assert.equal(fresh.built, false);
    const [g] = await b.geneValues(["g13"]);
    assert.deepEqual(Array.from(g), await columnViaRows(b, 13));
    assert.equal(b.X.geneIndexInfo().built, true);
    assert.equal(fs.existsSync(old.path), false, "stale sidecar removed");
  });

  it("next to the file when asked, checked by its header fingerprint", async () => {
    const a = await open("copy.h5ad");
    const info = await a.X.buildGeneIndex({ beside: true });
    assert.equal(info.path, `${copy}.X.aoomg`);
    const later = new Date(Date.now() + 10_000);
    fs.utimesSync(copy, later, later);
    const b = await open("copy.h5ad");
    assert.equal(b.X.geneIndexInfo({ beside: true }).built, false, "stale header is not accepted");
    const [g] = await b.geneValues([5], { beside: true });
    assert.deepEqual(Array.from(g), await columnViaRows(b, 5));
    fs.rmSync(info.path, { force: true });
  });

  it("rebuilds a truncated sidecar and one whose gene data was overwritten", async () => {
    const a = await open("copy.h5ad");
    const info = await a.X.buildGeneIndex();
    fs.truncateSync(info.path, Math.floor(info.bytes / 2));
    const b = await open("copy.h5ad");
    assert.equal(b.X.geneIndexInfo().built, false, "a truncated sidecar is not valid");
    const [g] = await b.geneValues([N_VARS - 1]);
    assert.deepEqual(Array.from(g), await columnViaRows(b, N_VARS - 1));
    assert.equal(fs.statSync(info.path).size, info.bytes);

    // garbage in the blob region (header and table intact)
    const fd = fs.openSync(info.path, "r+");
    fs.writeSync(fd, Buffer.alloc(info.bytes - 8192 - 8 * (N_VARS + 2), 0xff), 0, undefined, 4096);
    fs.closeSync(fd);
    const c = await open("copy.h5ad");
    const [first, last] = await c.geneValues([0, N_VARS - 1]);
    assert.deepEqual(Array.from(first), await columnViaRows(c, 0));
    assert.deepEqual(Array.from(last), Array.from(g));
  });

  it("a flipped bit in a gene's values or in the row totals is caught by its checksum: the sidecar is rebuilt and the values are right", async () => {
    const a = await open("copy.h5ad");
    const info = await a.X.buildGeneIndex();
    const want = await columnViaRows(a, N_VARS - 1);
    const head = fs.readFileSync(info.path);
    const header = JSON.parse(head.subarray(16, 16 + head.readUInt32LE(12)).toString()) as { totals_offset: number };
    // The byte before the totals is the last gene's last value (a valid
    // structure either way: only the value changes), then a total's mantissa.
    for (const [what, at] of [
      ["last gene's last value", header.totals_offset - 1],
      ["first row total", header.totals_offset + 5],
    ] as const) {
      const before = fs.readFileSync(info.path)[at];
      const fd = fs.openSync(info.path, "r+");
      fs.writeSync(fd, Buffer.from([before ^ 0x01]), 0, 1, at);
      fs.closeSync(fd);
      const b = await open("copy.h5ad");
      assert.equal(b.X.geneIndexInfo().built, true, `${what}: the sidecar still opens (header and table intact)`);
      if (what === "first row total") await pp.normalizeTotal(b, { targetSum: 1e4 }); // row totals from the sidecar
      const [got] = await b.geneValues([N_VARS - 1]);
      const expected = what === "first row total" ? await columnViaRows(b, N_VARS - 1) : want;
      assert.deepEqual(Array.from(got), expected, `${what}: values as the row path reads them`);
      // Damaged totals drop the sidecar (the totals came from a pass); the next read rebuilds it.
      await b.geneValues([0]);
      assert.equal(fs.readFileSync(info.path)[at], before, `${what}: the sidecar was rebuilt`);
    }
  });

  it("a foreign file at the sidecar's place is replaced", async () => {
    const a = await open("copy.h5ad");
    const where = a.X.geneIndexInfo().path;
    fs.writeFileSync(where, "not a gene index at all");
    const b = await open("copy.h5ad");
    const [g] = await b.geneValues([2]);
    assert.deepEqual(Array.from(g), await columnViaRows(b, 2));
    assert.notEqual(fs.readFileSync(where).subarray(0, 7).toString(), "not a g");
  });

  it("a cancelled build leaves no sidecar and no temporary files; a rerun works", async () => {
    const a = await open("big.h5ad");
    const before = new Set(sidecars());
    process.env.ANNDATA_OOM_BLOCK_BYTES = String(64 << 10);
    const ac = new AbortController();
    let chunks = 0;
    try {
      await assert.rejects(
        a.X.buildGeneIndex({
          signal: ac.signal,
          onProgress: (p) => {
            chunks = Math.max(chunks, p.chunksDone);
            if (p.state === "running" && p.chunksDone > 0) ac.abort();
          },
        }),
        CancelledError,
      );
    } finally {
      delete process.env.ANNDATA_OOM_BLOCK_BYTES;
    }
    assert.ok(chunks > 0, "cancelled after the build had started");
    assert.deepEqual(
      sidecars().filter((f) => !before.has(f)),
      [],
      "nothing left behind",
    );
    assert.equal(a.X.geneIndexInfo().built, false);
    const [g] = await a.geneValues([1999]);
    const direct = await a.X.geneValues([1999], { index: false, dir: path.join(work, "empty") });
    assert.deepEqual(Array.from(g), Array.from(direct[0]));
    assert.equal(a.X.geneIndexInfo().built, true);
  });

  it("obsVector never builds an index", async () => {
    fs.copyFileSync(path.join(work, "dense.h5ad"), path.join(work, "dense2.h5ad"));
    const a = await open("dense2.h5ad");
    const before = sidecars().length;
    const v = await a.X.obsVector(3);
    assert.equal(a.X.geneIndexInfo().built, false);
    assert.equal(sidecars().length, before);
    assert.deepEqual(Array.from(v), await columnViaRows(a, 3));
    // a chain whose normalize computes row totals: without an index they come from a pass
    await pp.normalizeTotal(a, { targetSum: 10 });
    pp.log1p(a);
    assertClose(Array.from(await a.X.obsVector(3)), await columnViaRows(a, 3), "normalized obsVector without index", 1e-12);
    assert.equal(a.X.geneIndexInfo().built, false);
  });
});
