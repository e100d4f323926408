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
import { FIXTURES, PYTHON } from "./helpers";

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
});
