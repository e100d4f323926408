/**
 * What the file system can do to an open file or an output: a full disk
 * during write(), and a source written in place while it is open. Each must
 * end in a typed error naming the file, never a crash or mixed data.
 */
import * as assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, describe, it } from "node:test";
import { FileAccessError, read } from "../src/engine";
import { FIXTURES } from "./helpers";

const INPUT = path.join(FIXTURES, "pp", "synth_3k.h5ad");
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "aoom-fs-"));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

async function rejectsWith(f: () => Promise<unknown>, re: RegExp, file: string): Promise<void> {
  await assert.rejects(f, (e: Error & { path?: string }) => {
    assert.ok(e instanceof FileAccessError, `expected FileAccessError, got ${e?.constructor?.name}: ${e?.message}`);
    assert.match(e.message, re);
    assert.equal(e.path, file);
    return true;
  });
}

describe("the file system fails under an open file or an output", () => {
  it("a full disk during write() is a FileAccessError naming the destination, and leaves nothing (was a segfault)", () => {
    const dir = fs.mkdtempSync(path.join(tmp, "full-"));
    const dest = path.join(dir, "out.h5ad");
    // A 256 KB file-size limit stands in for a full disk (the writes fail
    // with EFBIG instead of ENOSPC; Node ignores SIGXFSZ) without needing root.
    const child = path.join(__dirname, "write-child.js");
    const r = spawnSync("bash", ["-c", 'ulimit -f 256 && exec "$0" "$@"', process.execPath, child, INPUT, dest], {
      encoding: "utf8",
      timeout: 60_000,
    });
    assert.equal(r.signal, null, `the child died of ${r.signal}: ${r.stderr}`);
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout.trim().split("\n").pop() ?? "{}");
    assert.equal(out.ok, false, "the write cannot fit in 256 KB");
    assert.equal(out.name, "FileAccessError", out.message);
    assert.equal(out.path, dest);
    assert.match(out.message, /cannot write .*out\.h5ad: File too large; nothing was written/);
    assert.deepEqual(fs.readdirSync(dir), [], "no temporary file is left");
  });

  it("a source written in place while open: passes and write() say so instead of returning mixed data", async () => {
    const file = path.join(tmp, "in-place.h5ad");
    fs.copyFileSync(INPUT, file);
    const a = await read(file);
    try {
      const before = await a.X.sum(1);
      // Bytes appended (same inode, new size): the next pass and write() refuse.
      fs.appendFileSync(file, Buffer.alloc(64));
      await rejectsWith(() => a.X.sum(0), /changed on disk \(written in place\)/, file);
      const dest = path.join(tmp, "from-changed.h5ad");
      await rejectsWith(() => a.write(dest), /changed on disk/, file);
      assert.equal(fs.existsSync(dest), false, "nothing replaces the destination");
      // The cached result of the pass before the change stays.
      assert.deepEqual(await a.X.sum(1), before);
    } finally {
      a.close();
    }
    // Truncated (HDF5 would read zeros past the end): the change, not a format error.
    fs.copyFileSync(INPUT, file);
    const b = await read(file);
    try {
      fs.truncateSync(file, Math.floor(fs.statSync(file).size / 2));
      await rejectsWith(() => b.X.sum(1), /changed on disk/, file);
    } finally {
      b.close();
    }
    // Same size, mtime set back (cp -p, os.utime): the ctime still tells.
    fs.copyFileSync(INPUT, file);
    const c = await read(file);
    try {
      const st = fs.statSync(file);
      const fd = fs.openSync(file, "r+");
      fs.writeSync(fd, Buffer.from([0]), 0, 1, st.size - 1);
      fs.closeSync(fd);
      fs.utimesSync(file, st.atime, st.mtime);
      await rejectsWith(() => c.X.sum(1), /changed on disk/, file);
    } finally {
      c.close();
    }
  });

  it("a source replaced by another file (a new inode) or deleted keeps working from the open handle", async () => {
    const file = path.join(tmp, "replaced-or-deleted.h5ad");
    fs.copyFileSync(INPUT, file);
    const a = await read(file);
    try {
      const sums = (await a.X.sum(0)) as Float64Array;
      const other = path.join(tmp, "other.h5ad");
      fs.copyFileSync(INPUT, other);
      fs.renameSync(other, file);
      assert.deepEqual(
        await a.X.mean(0),
        sums.map((s) => s / a.nObs),
      );
      fs.rmSync(file);
      const dest = path.join(tmp, "after-delete.h5ad");
      await a.write(dest);
      const b = await read(dest);
      assert.deepEqual(await b.X.sum(0), sums);
      b.close();
    } finally {
      a.close();
    }
  });
});
