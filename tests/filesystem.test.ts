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
import { FileAccessError, InvalidArgumentError, read } from "../src/engine";
import { FIXTURES, runPython } from "./helpers";

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
      // A pass not cached yet (per-var variances).
      await rejectsWith(() => a.X.var(0), /changed on disk \(written in place\)/, file);
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
      // Row reads too (they said the file's indptr was corrupt).
      await rejectsWith(() => b.X.rows(0, 10), /changed on disk/, file);
      await rejectsWith(
        async () => {
          for await (const _ of b.subset({ obs: [5, 1, 9] }).X.chunked(2)) void _;
        },
        /changed on disk/,
        file,
      );
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
    // Metadata only (chmod, a hard link added, which move the ctime): the
    // contents are the same, so passes and write() go on; writing to the
    // link replaces that name, not the source's contents.
    fs.copyFileSync(INPUT, file);
    const d = await read(file);
    try {
      const sums = await d.X.sum(1);
      fs.chmodSync(file, 0o600);
      const link = path.join(tmp, "in-place-link.h5ad");
      fs.rmSync(link, { force: true });
      fs.linkSync(file, link);
      assert.deepEqual(
        await d.X.mean(1),
        (sums as Float64Array).map((x) => x / d.nVars),
      );
      await d.write(link);
      assert.deepEqual(await d.X.sum(0, { signal: undefined }), await d.X.sum(0));
      const e = await read(link);
      assert.deepEqual(await e.X.sum(1), sums);
      e.close();
    } finally {
      d.close();
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

  it("a source renamed while open (or opened through a symlink) cannot be written over under its new name; its old name can", async () => {
    const file = path.join(tmp, "renamed-source.h5ad");
    const moved = path.join(tmp, "renamed-source.moved.h5ad");
    fs.copyFileSync(INPUT, file);
    const a = await read(file);
    try {
      const n = a.nObs;
      fs.renameSync(file, moved);
      const v = a.subset({ obs: [0, 1, 2] });
      await assert.rejects(
        () => v.write(moved),
        (e: Error) => e instanceof InvalidArgumentError && /refusing to write over the file this object is reading from/.test(e.message),
      );
      const back = await read(moved);
      assert.equal(back.nObs, n, "the source was replaced");
      back.close();
      await v.write(file);
      const out = await read(file);
      assert.equal(out.nObs, 3);
      out.close();
    } finally {
      a.close();
    }
    // Opened through a symlink: neither the link nor what it points to can be written over.
    const real = path.join(tmp, "linked-source.h5ad");
    const link = path.join(tmp, "linked-source.link.h5ad");
    fs.copyFileSync(INPUT, real);
    fs.rmSync(link, { force: true });
    fs.symlinkSync(real, link);
    const b = await read(link);
    try {
      for (const dest of [link, real])
        await assert.rejects(
          () => b.subset({ obs: [0, 1, 2] }).write(dest),
          (e: Error) => e instanceof InvalidArgumentError && /refusing to write over the file this object is reading from/.test(e.message),
        );
    } finally {
      b.close();
    }
    const c = await read(real);
    assert.notEqual(c.nObs, 3, "the source was replaced");
    c.close();
  });

  it("a FIFO as the source, or behind an external link, is an error at read(), not a hang", { timeout: 60_000 }, async () => {
    const dir = fs.mkdtempSync(path.join(tmp, "fifo-"));
    const fifo = path.join(dir, "pipe.h5");
    spawnSync("mkfifo", [fifo]);
    await rejectsWith(() => read(fifo), /is not a regular file/, fifo);
    // /X and /obs as external links to the FIFO, /X to a missing file.
    const cases = { "x_fifo.h5ad": ["X", "pipe.h5"], "obs_fifo.h5ad": ["obs", "pipe.h5"], "x_missing.h5ad": ["X", "nope.h5ad"] };
    const made = Object.entries(cases).map(([name, [element, target]]) => {
      const f = path.join(dir, name);
      fs.copyFileSync(INPUT, f);
      runPython(
        [
          "import sys, h5py",
          "with h5py.File(sys.argv[1], 'r+') as f:",
          `    del f['${element}']; f['${element}'] = h5py.ExternalLink('${target}', '/${element}')`,
        ],
        f,
      );
      return [f, element, target] as const;
    });
    for (const [f, element, target] of made) {
      await assert.rejects(
        () => read(f),
        (e: Error & { element?: string }) =>
          e.constructor.name === "H5adFormatError" &&
          e.element === `/${element}` &&
          e.message.includes(`an external link to /${element} in ${target}, which cannot be opened`),
      );
    }
  });

  it("a file open read-only cannot be opened writable in the same process: a FileAccessError saying so", async () => {
    const file = path.join(tmp, "open-twice.h5ad");
    fs.copyFileSync(INPUT, file);
    const a = await read(file);
    try {
      await rejectsWith(() => read(file, { backed: "r+" }), /already open in this process in another mode/, file);
    } finally {
      a.close();
    }
  });

  it("a killed write's temporary is removed by the next write there; a 250-character name fits", async () => {
    const dir = fs.mkdtempSync(path.join(tmp, "orphans-"));
    const orphan = path.join(dir, ".out.h5ad.999999999.0.tmp"); // pid 999999999 cannot run (pid_max ≤ 2^22)
    fs.writeFileSync(orphan, "partial");
    const a = await read(INPUT);
    try {
      await a.subset({ obs: [0, 1, 2] }).write(path.join(dir, "out.h5ad"));
      assert.deepEqual(fs.readdirSync(dir), ["out.h5ad"]);
      // "" resolved to the working folder ("it exists and is not a regular file")
      await assert.rejects(
        () => a.write(""),
        (e: Error) => e instanceof InvalidArgumentError && /needs a file path/.test(e.message),
      );
      const long = path.join(dir, `${"x".repeat(245)}.h5ad`);
      await a.subset({ obs: [0, 1, 2] }).write(long); // its temporary name was too long
      assert.ok(fs.existsSync(long));
      // Beyond 255 bytes: refused before anything is written.
      const tooLong = path.join(dir, `${"y".repeat(256)}.h5ad`);
      await rejectsWith(() => a.write(tooLong), /file name is longer than 255 bytes/, tooLong);
      assert.deepEqual(fs.readdirSync(dir).sort(), [path.basename(long), "out.h5ad"].sort());
    } finally {
      a.close();
    }
  });
});

describe("gene-index sidecars and the file system", () => {
  it("a folder or a FIFO at the sidecar's path is a FileAccessError (was EISDIR / a hang), never removed", async () => {
    const file = path.join(tmp, "sidecar-blocked.h5ad");
    fs.copyFileSync(INPUT, file);
    const a = await read(file);
    try {
      const sidecar = a.X.geneIndexInfo({ beside: true }).path;
      fs.mkdirSync(sidecar);
      await rejectsWith(() => a.X.geneValues([0], { index: true, beside: true }), /is not a regular file/, sidecar);
      assert.ok(fs.statSync(sidecar).isDirectory());
      fs.rmdirSync(sidecar);
      spawnSync("mkfifo", [sidecar]);
      assert.ok(fs.statSync(sidecar).isFIFO());
      await rejectsWith(() => a.X.geneValues([0], { index: true, beside: true }), /is not a regular file/, sidecar);
      fs.rmSync(sidecar);
    } finally {
      a.close();
    }
  });

  it("an unwritable cache folder: geneValues reads with a pass and warns, unless the index was asked for", async () => {
    const blocker = path.join(tmp, "not-a-folder");
    fs.writeFileSync(blocker, "");
    const dir = path.join(blocker, "gene-index"); // mkdir fails (ENOTDIR), even as root
    const a = await read(INPUT);
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.message);
    process.on("warning", onWarning);
    try {
      const want = (await a.X.geneValues([3], { index: false }))[0];
      const got = (await a.X.geneValues([3], { dir }))[0];
      assert.deepEqual(Array.from(got), Array.from(want));
      await new Promise((r) => setImmediate(r));
      assert.ok(
        warnings.some((w) => /gene index unavailable .*reading the genes with a pass instead/.test(w)),
        warnings.join("; "),
      );
      await assert.rejects(() => a.X.geneValues([3], { dir, index: true }), FileAccessError);
    } finally {
      process.off("warning", onWarning);
      a.close();
    }
  });

  it("a cache folder under /proc (mkdir refused with ENOENT) is an error, not a hang", { timeout: 20_000 }, async () => {
    const a = await read(INPUT);
    try {
      await rejectsWith(
        () => a.X.geneValues([3], { dir: "/proc/self/anndata-oom/x", index: true }),
        /cannot create the gene index folder/,
        "/proc/self/anndata-oom/x",
      );
    } finally {
      a.close();
    }
  });

  it("a source rewritten in place with its mtime set back gets a new index, not the stale one", async () => {
    const dir = fs.mkdtempSync(path.join(tmp, "gi-"));
    const file = path.join(tmp, "sidecar-stale.h5ad");
    fs.copyFileSync(INPUT, file);
    const a = await read(file);
    const before = (await a.X.geneValues([0], { index: true, dir }))[0];
    a.close();
    // X times 7 in place, then the old mtime restored (as cp -p or rsync -t would)
    runPython(
      [
        "import sys, os, h5py",
        "st = os.stat(sys.argv[1])",
        "f = h5py.File(sys.argv[1], 'r+'); d = f['X/data']; d[...] = d[...] * 7; f.close()",
        "os.utime(sys.argv[1], ns=(st.st_atime_ns, st.st_mtime_ns))",
      ],
      file,
    );
    const b = await read(file);
    try {
      const after = (await b.X.geneValues([0], { index: true, dir }))[0];
      assert.deepEqual(
        Array.from(after),
        Array.from(before, (x) => x * 7),
      );
    } finally {
      b.close();
    }
  });

  it("beside sidecars of layers whose names differ only in punctuation are distinct (they removed each other's)", async () => {
    const file = path.join(tmp, "layers-punctuation.h5ad");
    fs.copyFileSync(INPUT, file);
    runPython(
      [
        "import sys, anndata as ad",
        "a = ad.read_h5ad(sys.argv[1])",
        "a.layers['a b'] = a.X; a.layers['a_b'] = a.X * 2",
        "a.write_h5ad(sys.argv[1])",
      ],
      file,
    );
    const a = await read(file);
    try {
      const [spaced, underscored] = ["a b", "a_b"].map((k) => a.layers.get(k));
      const paths = [spaced, underscored].map((m) => m.geneIndexInfo({ beside: true }).path);
      assert.notEqual(paths[0], paths[1]);
      const one = (await spaced.geneValues([0], { index: true, beside: true }))[0];
      const two = (await underscored.geneValues([0], { index: true, beside: true }))[0];
      assert.deepEqual(
        Array.from(two),
        Array.from(one, (x) => x * 2),
      );
      assert.ok(
        paths.every((p) => fs.existsSync(p)),
        "both sidecars stay",
      );
    } finally {
      a.close();
    }
  });
});
