/**
 * Preprocessing chain benchmark for the engine (one fresh process per run):
 * QC → filter → normalize → log1p → HVG(2,000, seurat) → scale → PCA(50).
 * Prints per-step wall time, passes over X (counted from the progress
 * reports of native passes) and peak RSS as JSON.
 *
 *   node dist/bench/chain.js FILE [--json OUT] [--cold] [--perf-step STEP]
 *
 * --perf-step STEP writes "enable" / "disable" to the perf control FIFO
 * named by AOOM_PERF_CTL around that one step, so that `perf record -D -1
 * --control=fifo:…` profiles a single pass inside the whole chain (see
 * bench/profile-step.sh).
 *
 * --cold drops the page cache (root only) right before each step that passes
 * over X, so every pass reads the file from disk: what a laptop sees when
 * the file is larger than its free memory. Compare with a cold raw read
 * (`bench/raw_read.py` after dropping the cache).
 */
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import { type AnnDataOOM, pp, read, setDefaultProgress } from "../src/engine";

function peakRssMb(): number {
  const m = fs.readFileSync("/proc/self/status", "utf8").match(/VmHWM:\s+(\d+)/);
  return m ? Number(m[1]) / 1024 : Number.NaN;
}

interface StepResult {
  step: string;
  seconds: number;
  passes: number;
  peakRssMb: number;
}

async function main(): Promise<void> {
  const file = process.argv[2];
  const jsonOut = process.argv.indexOf("--json") > 0 ? process.argv[process.argv.indexOf("--json") + 1] : null;
  if (!file) throw new Error("usage: node dist/bench/chain.js FILE [--json OUT] [--cold]");
  const cold = process.argv.includes("--cold");
  const perfStep = process.argv.indexOf("--perf-step") > 0 ? process.argv[process.argv.indexOf("--perf-step") + 1] : null;
  const perfCtl = process.env.AOOM_PERF_CTL;
  if (perfStep && !perfCtl) throw new Error("--perf-step needs AOOM_PERF_CTL (run it through bench/profile-step.sh)");
  // perf reads the FIFO; the write returns once perf has it.
  const perf = (name: string, what: "enable" | "disable"): void => {
    if (perfCtl && name === perfStep) fs.writeFileSync(perfCtl, `${what}\n`);
  };
  // Not timed: called before the step's clock starts.
  const dropPageCache = (): void => {
    if (!cold) return;
    try {
      execFileSync("sh", ["-c", "sync; echo 3 > /proc/sys/vm/drop_caches"], { stdio: "pipe" });
    } catch (e) {
      throw new Error(`--cold: cannot drop the page cache (root only): ${String((e as { stderr?: unknown }).stderr ?? e).trim()}`);
    }
  };
  // Passes over X, weighted by the share of the file's rows each one read
  // (a read of a few filtered cells counts as a fraction of a pass).
  let passes = 0;
  let fileRows = 1;
  setDefaultProgress((p) => {
    if (p.state === "done") passes += p.rowsTotal / fileRows;
  });
  const steps: StepResult[] = [];
  const t0 = performance.now();
  const step = async <T>(name: string, f: () => Promise<T>, readsX = false): Promise<T> => {
    if (readsX) dropPageCache();
    const before = passes;
    perf(name, "enable");
    const t = performance.now();
    const out = await f();
    perf(name, "disable");
    steps.push({ step: name, seconds: (performance.now() - t) / 1000, passes: passes - before, peakRssMb: peakRssMb() });
    process.stderr.write(`${name}: ${((performance.now() - t) / 1000).toFixed(2)} s, ${(passes - before).toFixed(2)} pass(es)\n`);
    return out;
  };
  let adata: AnnDataOOM = await step("read", () => read(file));
  fileRows = adata.nObs;
  await step(
    "qc",
    async () => {
      pp.markGenes(adata, "mt", /^MT-/);
      await pp.calculateQcMetrics(adata, { qcVars: ["mt"] });
    },
    true,
  );
  adata = await step("filter_cells", () => pp.filterCells(adata, { minGenes: 200 }));
  adata = await step("filter_genes", () => pp.filterGenes(adata, { minCells: 3 }));
  await step("normalize_total", () => pp.normalizeTotal(adata, { targetSum: 1e4 }));
  await step("log1p", async () => pp.log1p(adata));
  await step("hvg", () => pp.highlyVariableGenes(adata, { flavor: "seurat", nTopGenes: 2000 }), true);
  adata = await step("subset_hvg", async () => {
    const hv = adata.var.getChild("highly_variable");
    return adata.subset({ var: Array.from({ length: adata.nVars }, (_, j) => Boolean(hv?.get(j))) });
  });
  await step("scale", () => pp.scale(adata, { maxValue: 10 }));
  await step("pca", () => pp.pca(adata, { nComps: 50, useHighlyVariable: false }), true);
  const total = (performance.now() - t0) / 1000;
  const ratio = (adata.uns.pca as { variance_ratio: Float64Array }).variance_ratio;
  const result = {
    engine: "anndata-oom",
    file,
    page_cache: cold ? "dropped before each pass" : "warm",
    shape_after: adata.shape,
    n_hvg: adata.nVars,
    variance_ratio_first5: Array.from(ratio.slice(0, 5)),
    total_seconds: total,
    total_passes: passes,
    peak_rss_mb: peakRssMb(),
    steps,
  };
  const text = JSON.stringify(result, null, 2);
  if (jsonOut) fs.writeFileSync(jsonOut, text);
  console.log(text);
  adata.close();
  if (perfStep && !steps.some((s) => s.step === perfStep))
    throw new Error(`--perf-step: no step named '${perfStep}' (steps: ${steps.map((s) => s.step).join(", ")})`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
