/**
 * Malformed inputs (tests/python/make_bad_fixtures.py and a few made here):
 * each must give the expected typed error naming the element, in a child
 * process that exits normally — no crash, no panic, no hang, no change to
 * the file.
 */
import * as assert from "node:assert/strict";
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, describe, it } from "node:test";
import { read } from "../src/engine";
import { assertClose, decodeFloats, expected, FIXTURES, PYTHON, runPython } from "./helpers";

const BAD = path.join(FIXTURES, "bad");
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "aoom-bad-"));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

interface Outcome {
  ok: boolean;
  name?: string;
  element?: string | null;
  message?: string;
}

function runChild(file: string): Outcome {
  const r = spawnSync(process.execPath, [path.join(__dirname, "bad-child.js"), file], { encoding: "utf8", timeout: 60_000 });
  assert.equal(r.signal, null, `child was killed by ${r.signal} (crash or hang): ${r.stderr}`);
  assert.equal(r.status, 0, `child exited with ${r.status}: ${r.stderr}`);
  const line = r.stdout.trim().split("\n").pop() ?? "";
  return JSON.parse(line) as Outcome;
}

const sha = (f: string) => (fs.existsSync(f) ? crypto.createHash("sha256").update(fs.readFileSync(f)).digest("hex") : "missing");

describe("bad input gives typed errors", () => {
  const cases = JSON.parse(fs.readFileSync(path.join(BAD, "bad-manifest.json"), "utf8")) as {
    file: string;
    case: string;
    error: string;
    element: string | null;
  }[];
  for (const c of cases) {
    it(`${c.case} → ${c.error}${c.element ? ` at ${c.element}` : ""}`, () => {
      const file = path.join(BAD, c.file);
      const before = sha(file);
      const out = runChild(file);
      assert.equal(out.ok, false, "expected an error");
      assert.equal(out.name, c.error, out.message);
      if (c.element) assert.ok(out.element?.startsWith(c.element), `element ${out.element} should name ${c.element}: ${out.message}`);
      assert.equal(sha(file), before, "the file was modified");
    });
  }

  it("odd but readable: column-order repeating a column and the index, a categorical index with a missing name", async () => {
    const file = path.join(tmp, "odd.h5ad");
    fs.copyFileSync(path.join(FIXTURES, "csr_gzip.h5ad"), file);
    const out = runPython(
      [
        "import h5py, numpy as np, sys",
        "f = h5py.File(sys.argv[1], 'r+')",
        "o = f['obs']; n = o[o.attrs['_index']].shape[0]",
        "cols = [c for c in o.attrs['column-order']]",
        "o.attrs['column-order'] = np.array(cols[:1] + cols[:1] + [o.attrs['_index']] + cols[1:], dtype=object)",
        "del o[o.attrs['_index']]; g = o.create_group(o.attrs['_index'])",
        "g.attrs['encoding-type'] = 'categorical'; g.attrs['encoding-version'] = '0.2.0'; g.attrs['ordered'] = False",
        "codes = np.arange(n, dtype=np.int32); codes[1] = -1",
        "g.create_dataset('codes', data=codes); g.create_dataset('categories', data=np.array([f'c{i}' for i in range(n)], dtype=object), dtype=h5py.string_dtype())",
        "print(len(cols))",
      ],
      file,
    );
    const nCols = Number(out.trim());
    assert.ok(nCols > 0);
    const a = await read(file);
    try {
      assert.equal(a.obs.numCols, nCols, "each column once, the index not a column");
      assert.deepEqual([a.obsNames.get(0), a.obsNames.get(1), a.obsNames.get(2)], ["c0", "nan", "c2"]);
      const out = path.join(tmp, "odd-written.h5ad");
      await a.write(out);
      assert.ok(fs.statSync(out).size > 0);
    } finally {
      a.close();
    }
  });

  it("duplicate column indices in a row read as their sum, as scipy's toarray() gives", async () => {
    const file = path.join(tmp, "dups.h5ad");
    const out = runPython(
      [
        "import anndata as ad, numpy as np, scipy.sparse as sp, sys, json",
        "rng = np.random.default_rng(0)",
        "n, m, k = 500, 40, 12",
        "idx = np.sort(rng.integers(0, m, size=(n, k)), axis=1).ravel().astype(np.int32)",
        "x = sp.csr_matrix((rng.integers(1, 9, n * k).astype(np.float32), idx, np.arange(0, n * k + 1, k)), shape=(n, m))",
        "assert not x.has_canonical_format",
        "ad.AnnData(x).write_h5ad(sys.argv[1])",
        "d = x.toarray().astype(np.float64)",
        "print(json.dumps({'sum0': d.sum(0).tolist(), 'var0': d.var(0, ddof=1).tolist(), 'nnz1': (d != 0).sum(1).tolist(), 'sub': d[[3, 1]][:, [5, 2, 7]].sum(0).tolist()}))",
      ],
      file,
    );
    const want = JSON.parse(out.trim().split("\n").pop() ?? "{}") as { sum0: number[]; var0: number[]; nnz1: number[]; sub: number[] };
    const a = await read(file);
    try {
      const sum0 = (await a.X.sum(0)) as Float64Array;
      const var0 = (await a.X.var(0, { ddof: 1 })) as Float64Array;
      want.sum0.forEach((v, j) => assert.ok(Math.abs(sum0[j] - v) < 1e-9, `sum of gene ${j}`));
      want.var0.forEach((v, j) => assert.ok(Math.abs(var0[j] - v) < 1e-9 * Math.max(1, v), `var of gene ${j}: ${var0[j]} vs ${v}`));
      assert.deepEqual(Array.from((await a.X.stats()).obs.nnz), want.nnz1);
      // a gathered read (rows out of order, a column subset) sums them too
      const some = await a.subset({ obs: [3, 1], var: [5, 2, 7] }).X.sum(0);
      assert.deepEqual(Array.from(some as Float64Array), want.sub);
    } finally {
      a.close();
    }
  });

  it("a nonexistent path → FileAccessError", () => {
    const out = runChild(path.join(tmp, "does-not-exist.h5ad"));
    assert.equal(out.name, "FileAccessError");
  });

  it("a directory → FileAccessError", () => {
    const out = runChild(tmp);
    assert.equal(out.name, "FileAccessError");
  });

  it("a file another process holds open for writing → FileAccessError", async () => {
    const file = path.join(tmp, "locked.h5ad");
    fs.copyFileSync(path.join(FIXTURES, "csr_gzip.h5ad"), file);
    const holder: ChildProcess = spawn(
      PYTHON,
      ["-c", `import h5py,sys,time\nf=h5py.File(sys.argv[1],'r+')\nprint('ready',flush=True)\ntime.sleep(60)`, file],
      {
        stdio: ["ignore", "pipe", "inherit"],
      },
    );
    try {
      await new Promise<void>((resolve, reject) => {
        holder.stdout?.on("data", (d: Buffer) => d.toString().includes("ready") && resolve());
        holder.on("exit", () => reject(new Error("lock holder exited early")));
      });
      const out = runChild(file);
      assert.equal(out.name, "FileAccessError", out.message);
      assert.match(out.message ?? "", /lock/);
    } finally {
      holder.kill();
    }
  });

  it("after a damaged global heap is refused, the same process reads other files (HDF5's lock is free)", () => {
    // In a child: a regression would hang inside HDF5's global lock, where
    // no test timeout can fire.
    const engine = path.join(__dirname, "..", "src", "engine");
    const script = `
      const { read } = require(${JSON.stringify(engine)});
      (async () => {
        let refused = "";
        try { await read(process.argv[1]); } catch (e) { refused = e.name + ": " + e.message; }
        const good = await read(process.argv[2]);
        console.log(JSON.stringify({ refused, first: good.obsNames.get(0), sum: Array.from(await good.X.sum(1)) }));
      })();`;
    const bad = path.join(BAD, "bad_global_heap_free_space_zero.h5ad");
    const good = path.join(FIXTURES, "csr_gzip.h5ad");
    const r = spawnSync(process.execPath, ["-e", script, bad, good], { encoding: "utf8", timeout: 60_000 });
    assert.equal(r.signal, null, `child was killed by ${r.signal} (crash or hang): ${r.stderr}`);
    const out = JSON.parse(r.stdout.trim().split("\n").pop() ?? "{}") as { refused: string; first: string; sum: number[] };
    assert.match(out.refused, /^H5adFormatError: .*damaged global heap collection/);
    assert.match(out.refused, /bad_global_heap_free_space_zero\.h5ad/);
    const want = expected("csr_gzip");
    assert.equal(out.first, want.obs_names[0]);
    const rowSums = (decodeFloats(want.X.dense) as number[][]).map((row) => row.reduce((s, v) => s + v, 0));
    assertClose(out.sum, rowSums, "X.sum(1)", 1e-5);
  });
});
