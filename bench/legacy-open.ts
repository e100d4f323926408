/**
 * Opening an anndata ≤ 0.6 file (record arrays converted into an overlay at
 * open, see native/core/src/legacy06.rs) against the same data in the
 * current layout (written by write() from it): wall time and peak RSS of
 * read(), of obsm.get("X_pca"), and of one pass (X.sum(1)). Each
 * measurement runs in a fresh process. Prints JSON.
 *
 *   python bench/make_legacy06.py /tmp/legacy_1m.h5ad
 *   node dist/bench/legacy-open.js /tmp/legacy_1m.h5ad [--runs 3]
 */
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { read } from "../src/engine";

async function child(file: string, what: string): Promise<void> {
  const t0 = performance.now();
  const a = await read(file);
  const opened = performance.now();
  let step = opened;
  if (what === "obsm") await a.obsm.get("X_pca");
  if (what === "pass") await a.X.sum(1);
  step = performance.now();
  a.close();
  const out = { open_s: (opened - t0) / 1000, step_s: (step - opened) / 1000, peak_rss_mb: process.resourceUsage().maxRSS / 1024 };
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

function measure(file: string, what: string, runs: number): { open_s: number[]; step_s: number[]; peak_rss_mb: number[] } {
  const acc = { open_s: [] as number[], step_s: [] as number[], peak_rss_mb: [] as number[] };
  for (let i = 0; i < runs; i++) {
    const r = JSON.parse(execFileSync(process.execPath, [__filename, "--child", file, what], { encoding: "utf8" }));
    for (const k of ["open_s", "step_s", "peak_rss_mb"] as const) acc[k].push(Number(r[k].toFixed(k === "peak_rss_mb" ? 0 : 2)));
  }
  return acc;
}

async function main(): Promise<void> {
  if (process.argv[2] === "--child") return child(process.argv[3], process.argv[4]);
  const legacy = process.argv[2];
  const i = process.argv.indexOf("--runs");
  const runs = i > 0 ? Number(process.argv[i + 1]) : 3;
  const modern = path.join(path.dirname(legacy), `${path.basename(legacy, ".h5ad")}.current.h5ad`);
  if (!fs.existsSync(modern)) {
    const a = await read(legacy);
    await a.write(modern);
    a.close();
  }
  const result: Record<string, unknown> = {};
  for (const [name, file] of [
    ["legacy", legacy],
    ["current", modern],
  ]) {
    result[name] = { open: measure(file, "open", runs), obsm_X_pca: measure(file, "obsm", runs), pass: measure(file, "pass", runs) };
  }
  process.stdout.write(`${JSON.stringify(result, null, 1)}\n`);
}

main().catch((e) => {
  process.stderr.write(`${e?.stack ?? e}\n`);
  process.exit(1);
});
