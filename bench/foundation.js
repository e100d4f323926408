#!/usr/bin/env node
/**
 * Foundation benchmark: open cost, one full streaming pass, and the raw
 * h5py read floor of an .h5ad file, each measured in a fresh child process.
 *
 *   node bench/foundation.js FILE [FILE ...] [--repeats 3] [--no-cold] [--json out.json] [--md out.md]
 *
 * Per file:
 *   open  fresh `node`: require('anndata-oom'), then read(FILE) + toString().
 *         Wall ms of read+toString (and of the require), RSS right after the
 *         open, peak RSS (VmHWM) of the process.
 *   pass  fresh `node`: open, then X.sum(1) = one native streaming pass.
 *         Wall ms of the pass, peak RSS of the whole process (VmHWM).
 *   moments  the same with X.var(1): the full sum/mean/variance/nnz pass
 *         (reported alongside; the targets are judged on `pass`).
 *   raw   fresh `python` (bench/raw_read.py): X/indptr whole, X/indices and
 *         X/data in 8 Mi-entry blocks with h5py read_direct, discarded.
 *
 * Page cache: if `sync; echo 3 > /proc/sys/vm/drop_caches` works (root),
 * the open / raw / pass runs are first done COLD, the cache dropped right
 * before each (skip with --no-cold). Then one raw read warms the cache (and
 * checksums the values to verify the pass's answer) and the same runs are
 * repeated WARM. The pass/raw target is judged on the warm runs.
 *
 * Env: BENCH_PYTHON (default ~/.cache/anndata-oom/venv-main/bin/python).
 */

const { spawnSync, execFileSync } = require("node:child_process");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");

const ROOT = path.resolve(__dirname, "..");
const PYTHON = process.env.BENCH_PYTHON || path.join(os.homedir(), ".cache/anndata-oom/venv-main/bin/python");
const TIME = "/usr/bin/time";

function status() {
  const s = fs.readFileSync("/proc/self/status", "utf8");
  const kb = (k) => {
    const m = s.match(new RegExp(`^${k}:\\s+(\\d+) kB`, "m"));
    return m ? Number(m[1]) : -1;
  };
  return { vmHwmKb: kb("VmHWM"), vmRssKb: kb("VmRSS") };
}

// ---------------------------------------------------------------------------
// Child side

async function child(mode, file) {
  const baselineRss = process.memoryUsage().rss;
  const t0 = performance.now();
  const lib = require(ROOT);
  const t1 = performance.now();
  const adata = await lib.read(file);
  const repr = adata.toString();
  const t2 = performance.now();
  const out = {
    mode,
    baselineRssMb: baselineRss / 2 ** 20,
    requireMs: t1 - t0,
    openMs: t2 - t1,
    rssAfterOpenMb: process.memoryUsage().rss / 2 ** 20,
    shape: adata.shape,
    format: adata.X.format,
    dtype: adata.X.dtype,
    bytesOnDisk: adata.X.bytesOnDisk,
    reprLines: repr.split("\n").length,
  };
  if (mode === "pass" || mode === "moments") {
    let last = null;
    let reports = 0;
    const onProgress = (p) => {
      last = p;
      reports++;
    };
    const t3 = performance.now();
    // pass: X.sum(1), the sums-only pass; moments: X.var(1), the full
    // mean/variance pass (each a single native streaming pass).
    const perCell = mode === "pass" ? await adata.X.sum(1, { onProgress }) : await adata.X.var(1, { onProgress });
    const t4 = performance.now();
    let total = 0;
    for (let i = 0; i < perCell.length; i++) total += perCell[i];
    Object.assign(out, {
      passMs: t4 - t3,
      nativeElapsedMs: last ? last.elapsedMs : null,
      chunksTotal: last ? last.chunksTotal : null,
      progressReports: reports,
      lastState: last ? last.state : null,
      total,
      rssAfterPassMb: process.memoryUsage().rss / 2 ** 20,
    });
  }
  adata.close();
  const st = status();
  out.vmHwmMb = st.vmHwmKb / 1024;
  out.cpuS = (process.cpuUsage().user + process.cpuUsage().system) / 1e6;
  if (mode === "open") out.repr = repr;
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

// ---------------------------------------------------------------------------
// Parent side

/** Run argv under /usr/bin/time; returns the child's JSON plus maxRssMb, wall, user, sys. */
function timed(argv, label) {
  const tf = path.join(os.tmpdir(), `bench-time-${process.pid}.txt`);
  const r = spawnSync(TIME, ["-f", "%M %e %U %S", "-o", tf, ...argv], {
    encoding: "utf8",
    maxBuffer: 64 << 20,
    stdio: ["ignore", "pipe", "pipe"],
  });
  if (r.status !== 0) {
    throw new Error(`${label} failed (${r.status}): ${r.stderr}\n${r.stdout}`);
  }
  const [maxKb, wall, user, sys] = fs.readFileSync(tf, "utf8").trim().split(/\s+/).slice(-4).map(Number);
  fs.rmSync(tf, { force: true });
  const lines = r.stdout.trim().split("\n");
  const res = JSON.parse(lines[lines.length - 1]);
  return Object.assign(res, { maxRssMb: maxKb / 1024, procWallS: wall, userS: user, sysS: sys });
}

const nodeChild = (mode, file) => timed([process.execPath, __filename, "--child", mode, file], `node ${mode}`);
const rawChild = (file, extra = []) => timed([PYTHON, path.join(__dirname, "raw_read.py"), file, ...extra], "raw read");

function tryDropCaches() {
  try {
    execFileSync("sh", ["-c", "sync; echo 3 > /proc/sys/vm/drop_caches"], { stdio: "pipe" });
    return { ok: true, note: "page cache dropped once before the warm-up" };
  } catch (e) {
    return { ok: false, note: `could not drop the page cache: ${String(e.stderr || e.message).trim()}` };
  }
}

function cachedFraction(file) {
  try {
    const out = execFileSync("fincore", ["-b", "-n", "-o", "RES,SIZE", file], { encoding: "utf8" }).trim();
    const [res, size] = out.split(/\s+/).map(Number);
    return size ? res / size : null;
  } catch {
    return null;
  }
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  return n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
};
const min = (xs) => Math.min(...xs);
const max = (xs) => Math.max(...xs);
const stat = (xs) => ({ min: min(xs), median: median(xs), max: max(xs), runs: xs });

function log(msg) {
  process.stderr.write(`${msg}\n`);
}

function benchFile(file, repeats, cold) {
  const abs = path.resolve(file);
  const fileBytes = fs.statSync(abs).size;
  log(`\n== ${abs} (${(fileBytes / 1e9).toFixed(2)} GB)`);
  const drop = tryDropCaches();
  log(`page cache: ${drop.note}`);
  const cachedBefore = cachedFraction(abs);

  // Cold: page cache dropped right before each run (only if that works).
  const coldRuns = { open: [], raw: [], pass: [] };
  if (cold && drop.ok) {
    for (let i = 0; i < repeats; i++) {
      tryDropCaches();
      const o = nodeChild("open", abs);
      log(`cold open ${i + 1}: ${o.openMs.toFixed(0)} ms (require ${o.requireMs.toFixed(0)} ms), rss ${o.rssAfterOpenMb.toFixed(0)} MB`);
      coldRuns.open.push(o);
      tryDropCaches();
      const r = rawChild(abs);
      log(`cold raw ${i + 1}: ${(r.wall_ms / 1000).toFixed(2)} s (${r.mb_per_s.toFixed(0)} MB/s)`);
      coldRuns.raw.push(r);
      tryDropCaches();
      const p = nodeChild("pass", abs);
      log(`cold pass ${i + 1}: ${(p.passMs / 1000).toFixed(2)} s, peak ${p.vmHwmMb.toFixed(0)} MB, cpu ${(p.userS + p.sysS).toFixed(1)} s`);
      coldRuns.pass.push(p);
    }
  }

  log("warm-up: raw read with checksum");
  const warm = rawChild(abs, ["--checksum"]);
  log(`  ${(warm.wall_ms / 1000).toFixed(2)} s, total ${warm.total}`);
  const fileFloor = rawChild(abs, ["--file-floor"]);
  log(`  plain file read ${(fileFloor.wall_ms / 1000).toFixed(2)} s (${fileFloor.mb_per_s.toFixed(0)} MB/s)`);
  const cachedWarm = cachedFraction(abs);

  const opens = [];
  for (let i = 0; i < repeats; i++) {
    const o = nodeChild("open", abs);
    log(
      `open ${i + 1}: ${o.openMs.toFixed(0)} ms (require ${o.requireMs.toFixed(0)} ms), rss ${o.rssAfterOpenMb.toFixed(0)} MB, peak ${o.vmHwmMb.toFixed(0)} MB`,
    );
    opens.push(o);
  }
  const passes = [];
  const raws = [];
  const moments = [];
  for (let i = 0; i < repeats; i++) {
    const r = rawChild(abs);
    log(`raw ${i + 1}: ${(r.wall_ms / 1000).toFixed(2)} s (${r.mb_per_s.toFixed(0)} MB/s), peak ${(r.peak_rss_kb / 1024).toFixed(0)} MB`);
    raws.push(r);
    const p = nodeChild("pass", abs);
    log(
      `pass ${i + 1}: ${(p.passMs / 1000).toFixed(2)} s, ${p.chunksTotal} chunks, peak ${p.vmHwmMb.toFixed(0)} MB, cpu ${(p.userS + p.sysS).toFixed(1)} s`,
    );
    passes.push(p);
    const m = nodeChild("moments", abs);
    log(`moments ${i + 1}: ${(m.passMs / 1000).toFixed(2)} s, peak ${m.vmHwmMb.toFixed(0)} MB, cpu ${(m.userS + m.sysS).toFixed(1)} s`);
    moments.push(m);
  }
  const cachedAfter = cachedFraction(abs);
  const o0 = opens[0];
  const p0 = passes[0];
  const relErr = Math.abs(p0.total - warm.total) / Math.max(1, Math.abs(warm.total));
  const res = {
    file: abs,
    fileBytes,
    shape: o0.shape,
    format: o0.format,
    dtype: o0.dtype,
    nnz: warm.nnz,
    xBytes: warm.bytes,
    h5Chunks: warm.chunks,
    pageCache: { ...drop, cachedFractionBefore: cachedBefore, cachedFractionWarm: cachedWarm, cachedFractionAfter: cachedAfter },
    check: { engineTotal: p0.total, h5pyTotal: warm.total, relErr, ok: relErr < 1e-9 },
    open: summarizeOpen(opens),
    pass: summarizePass(passes),
    moments: summarizePass(moments),
    raw: summarizeRaw(raws),
    fileFloor: { wallMs: fileFloor.wall_ms, mbPerS: fileFloor.mb_per_s },
    repr: o0.repr,
  };
  res.passOverRaw = ratio(res.pass, res.raw);
  res.momentsOverRaw = ratio(res.moments, res.raw);
  if (coldRuns.pass.length) {
    res.cold = { open: summarizeOpen(coldRuns.open), pass: summarizePass(coldRuns.pass), raw: summarizeRaw(coldRuns.raw) };
    res.cold.passOverRaw = ratio(res.cold.pass, res.cold.raw);
  }
  res.targets = {
    openWithin1s: res.open.wallMs.median <= 1000,
    openRssWithin150Mb: res.open.rssAfterOpenMb.median <= 150 && res.open.peakRssMb.median <= 150,
    passWithin1_5xRaw: res.passOverRaw.median <= 1.5,
    passPeakRssWithin300Mb: res.pass.peakRssMb.max <= 300,
  };
  return res;
}

const ratio = (pass, raw) => ({ min: pass.wallMs.min / raw.wallMs.min, median: pass.wallMs.median / raw.wallMs.median });

function summarizeOpen(opens) {
  return {
    wallMs: stat(opens.map((o) => o.openMs)),
    requireMs: stat(opens.map((o) => o.requireMs)),
    rssAfterOpenMb: stat(opens.map((o) => o.rssAfterOpenMb)),
    peakRssMb: stat(opens.map((o) => o.vmHwmMb)),
    baselineRssMb: stat(opens.map((o) => o.baselineRssMb)),
    processWallS: stat(opens.map((o) => o.procWallS)),
  };
}

function summarizePass(passes) {
  const p0 = passes[0];
  return {
    wallMs: stat(passes.map((p) => p.passMs)),
    peakRssMb: stat(passes.map((p) => p.vmHwmMb)),
    timeMaxRssMb: stat(passes.map((p) => p.maxRssMb)),
    cpuS: stat(passes.map((p) => p.userS + p.sysS)),
    chunks: p0.chunksTotal,
    progressReports: p0.progressReports,
    lastState: p0.lastState,
  };
}

function summarizeRaw(raws) {
  return {
    wallMs: stat(raws.map((r) => r.wall_ms)),
    mbPerS: stat(raws.map((r) => r.mb_per_s)),
    peakRssMb: stat(raws.map((r) => r.peak_rss_kb / 1024)),
    cpuS: stat(raws.map((r) => r.userS + r.sysS)),
  };
}

const f0 = (x) => x.toFixed(0);
const f2 = (x) => x.toFixed(2);
const mark = (ok) => (ok ? "pass" : "**FAIL**");

function markdown(results, meta) {
  const L = [];
  L.push(`Machine: ${meta.cpus} × ${meta.cpuModel}, ${meta.memGb} GB RAM, node ${meta.node}, ${meta.date}.`);
  L.push(
    `Engine: git ${meta.build.head}${meta.build.dirty.length ? ` + uncommitted changes in ${meta.build.dirty.length} file(s)` : ""}, addon built ${meta.build.addonMtime}.`,
  );
  L.push(`Repeats: ${meta.repeats} fresh processes per measurement; min / median shown. Cache: ${results[0]?.pageCache.note ?? "n/a"}.`);
  L.push("");
  L.push("Warm page cache:");
  L.push("");
  L.push(
    "| file | shape | nnz | X on disk | open ms (min/med) | RSS after open MB | peak RSS open MB | pass s (min/med) | raw read s (min/med) | pass / raw (med) | peak RSS pass MB (max) |",
  );
  L.push("|---|---|---|---|---|---|---|---|---|---|---|");
  for (const r of results) {
    L.push(
      `| ${path.basename(r.file)} | ${r.shape.join(" × ")} | ${r.nnz.toLocaleString("en-US")} | ${f2(r.xBytes / 1e9)} GB | ${f0(r.open.wallMs.min)} / ${f0(r.open.wallMs.median)} | ${f0(r.open.rssAfterOpenMb.median)} | ${f0(r.open.peakRssMb.median)} | ${f2(r.pass.wallMs.min / 1000)} / ${f2(r.pass.wallMs.median / 1000)} | ${f2(r.raw.wallMs.min / 1000)} / ${f2(r.raw.wallMs.median / 1000)} | ${f2(r.passOverRaw.median)}× | ${f0(r.pass.peakRssMb.max)} |`,
    );
  }
  L.push("");
  L.push(
    "| file | moments pass s (min/med) | moments / raw (med) | peak RSS moments MB (max) | require ms (med) | node baseline RSS MB | pass CPU s (med) | moments CPU s (med) | raw CPU s (med) | raw MB/s (med) | plain file read MB/s | chunks in pass | raw peak RSS MB | engine vs h5py total |",
  );
  L.push("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
  for (const r of results) {
    L.push(
      `| ${path.basename(r.file)} | ${f2(r.moments.wallMs.min / 1000)} / ${f2(r.moments.wallMs.median / 1000)} | ${f2(r.momentsOverRaw.median)}× | ${f0(r.moments.peakRssMb.max)} | ${f0(r.open.requireMs.median)} | ${f0(r.open.baselineRssMb.median)} | ${f2(r.pass.cpuS.median)} | ${f2(r.moments.cpuS.median)} | ${f2(r.raw.cpuS.median)} | ${f0(r.raw.mbPerS.median)} | ${f0(r.fileFloor.mbPerS)} | ${r.pass.chunks} | ${f0(r.raw.peakRssMb.median)} | ${r.check.ok ? "equal" : `rel err ${r.check.relErr.toExponential(1)}`} |`,
    );
  }
  if (results.some((r) => r.cold)) {
    L.push("");
    L.push("Cold page cache (dropped before every run):");
    L.push("");
    L.push(
      "| file | open ms (min/med) | pass s (min/med) | raw read s (min/med) | raw MB/s (med) | pass / raw (med) | peak RSS pass MB (max) | pass CPU s (med) |",
    );
    L.push("|---|---|---|---|---|---|---|---|");
    for (const r of results.filter((x) => x.cold)) {
      const c = r.cold;
      L.push(
        `| ${path.basename(r.file)} | ${f0(c.open.wallMs.min)} / ${f0(c.open.wallMs.median)} | ${f2(c.pass.wallMs.min / 1000)} / ${f2(c.pass.wallMs.median / 1000)} | ${f2(c.raw.wallMs.min / 1000)} / ${f2(c.raw.wallMs.median / 1000)} | ${f0(c.raw.mbPerS.median)} | ${f2(c.passOverRaw.median)}× | ${f0(c.pass.peakRssMb.max)} | ${f2(c.pass.cpuS.median)} |`,
      );
    }
  }
  L.push("");
  L.push("Targets (warm runs):");
  L.push("");
  L.push("| file | open ≤ 1 s | open RSS ≤ 150 MB | pass ≤ 1.5× raw | pass peak RSS ≤ 300 MB |");
  L.push("|---|---|---|---|---|");
  for (const r of results) {
    const t = r.targets;
    L.push(
      `| ${path.basename(r.file)} | ${mark(t.openWithin1s)} | ${mark(t.openRssWithin150Mb)} | ${mark(t.passWithin1_5xRaw)} | ${mark(t.passPeakRssWithin300Mb)} |`,
    );
  }
  return L.join("\n");
}

/** Which engine build was measured: git HEAD (+ dirty files) and the addon's mtime. */
function buildInfo() {
  const git = (args) => {
    try {
      return execFileSync("git", ["-C", ROOT, ...args], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
    } catch {
      return null;
    }
  };
  const addon = path.join(ROOT, "native", "dist", "anndata-oom.linux-x64-gnu.node");
  let addonMtime = null;
  try {
    addonMtime = fs.statSync(addon).mtime.toISOString();
  } catch {}
  return {
    head: git(["rev-parse", "--short", "HEAD"]),
    dirty: (git(["status", "--porcelain", "--", "src", "native"]) || "").split("\n").filter(Boolean),
    addonMtime,
  };
}

function parent(argv) {
  const files = [];
  let repeats = 3;
  let jsonOut = null;
  let mdOut = null;
  let cold = true;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--repeats") repeats = Number(argv[++i]);
    else if (a === "--json") jsonOut = argv[++i];
    else if (a === "--md") mdOut = argv[++i];
    else if (a === "--no-cold") cold = false;
    else if (a === "-h" || a === "--help") {
      process.stdout.write("usage: node bench/foundation.js FILE [FILE ...] [--repeats 3] [--no-cold] [--json out.json] [--md out.md]\n");
      return;
    } else files.push(a);
  }
  if (!files.length) throw new Error("no file given (see --help)");
  const meta = {
    date: new Date().toISOString(),
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model ?? "?",
    memGb: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
    repeats,
    build: buildInfo(),
  };
  const results = files.map((f) => benchFile(f, repeats, cold));
  const md = markdown(results, meta);
  const json = JSON.stringify({ meta, results }, null, 2);
  if (jsonOut) fs.writeFileSync(jsonOut, `${json}\n`);
  if (mdOut) fs.writeFileSync(mdOut, `${md}\n`);
  process.stdout.write(`${md}\n\n${json}\n`);
}

if (process.argv[2] === "--child") {
  child(process.argv[3], process.argv[4]).catch((e) => {
    process.stderr.write(`${e?.stack ?? e}\n`);
    process.exit(1);
  });
} else {
  parent(process.argv.slice(2));
}
