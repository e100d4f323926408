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
import { InvalidArgumentError, read } from "../src/engine";
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

  for (const name of ["full_csr", "csc_f64_idx64", "dense_f32_chunked", "csr_unsorted_zeros", "ad09_dense"]) {
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
