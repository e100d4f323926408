/**
 * The main job of the README's first command: generate a small synthetic
 * dataset (unless a path is given), open it out of memory, print its repr,
 * stream one pass over X with a live progress line, then run the
 * preprocessing pipeline (QC → filters → normalize → log1p → HVG → scale →
 * PCA) with X staying on disk.
 *
 *   node dist/examples/demo.js [file.h5ad]
 */
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { formatBytes, pp, read, setDefaultProgress, stderrProgress, tl } from "../src/engine";

const repo = path.join(__dirname, "..", "..");

function defaultDataset(): string {
  const out = path.join(repo, "examples", ".data", "demo_50k.h5ad");
  if (!fs.existsSync(out)) {
    fs.mkdirSync(path.dirname(out), { recursive: true });
    const cache = process.env.ANNDATA_OOM_CACHE ?? path.join(process.env.HOME ?? "", ".cache", "anndata-oom");
    const python = process.env.AOOM_PYTHON ?? path.join(cache, "venv-main", "bin", "python");
    console.log(`generating ${path.relative(repo, out)} (50,000 cells × 5,000 genes) ...`);
    execFileSync(python, [path.join(repo, "bench", "generate.py"), out, "--n-obs", "50000", "--n-vars", "5000", "--seed", "0"], {
      stdio: ["ignore", "ignore", "inherit"],
    });
  }
  return out;
}

async function main(): Promise<void> {
  const file = process.argv[2] ?? defaultDataset();
  const t0 = performance.now();
  const adata = await read(file);
  console.log(`opened in ${(performance.now() - t0).toFixed(0)} ms\n`);
  console.log(adata.toString());
  console.log();
  const t1 = performance.now();
  const perCell = (await adata.X.sum(1, { onProgress: stderrProgress() })) as Float64Array;
  const ms = performance.now() - t1;
  const mean = perCell.reduce((a, b) => a + b, 0) / Math.max(1, perCell.length);
  console.log(`one pass over X: ${ms.toFixed(0)} ms, ${formatBytes(adata.X.bytesOnDisk)} read; mean counts per cell ${mean.toFixed(1)}`);

  // The preprocessing pipeline, X staying on disk (3 passes over X).
  console.log("\npreprocessing:");
  setDefaultProgress(stderrProgress());
  const t2 = performance.now();
  let a = adata;
  pp.markGenes(a, "mt", /^MT-/);
  await pp.calculateQcMetrics(a, { qcVars: ["mt"] });
  a = await pp.filterCells(a, { minGenes: 200 });
  a = await pp.filterGenes(a, { minCells: 3 });
  a.layers.set("counts", a.X);
  await pp.normalizeTotal(a, { targetSum: 1e4 });
  pp.log1p(a);
  await pp.highlyVariableGenes(a, { nTopGenes: 2000 });
  const hv = a.var.getChild("highly_variable")?.toArray() as boolean[];
  a = a.subset({ var: hv });
  await pp.scale(a, { maxValue: 10 });
  await pp.pca(a, { nComps: 50 });
  const ratio = (a.uns.pca as { variance_ratio: Float64Array }).variance_ratio;
  const pcs = Array.from(ratio.slice(0, 3), (x) => x.toFixed(4)).join(", ");
  console.log(`\npipeline: ${((performance.now() - t2) / 1000).toFixed(1)} s; PC1-3 variance ratio ${pcs}\n`);
  console.log(a.X.explain());

  console.log("\ngraph steps (on X_pca; X is not read):");
  const t3 = performance.now();
  const nb = await pp.neighbors(a, { nNeighbors: 15 });
  await tl.umap(a);
  const clusters = await tl.leiden(a, { resolution: 1 });
  const paga = await tl.paga(a);
  console.log(
    `\nneighbors (${nb.exact ? "exact" : "NN-descent"}) → UMAP → Leiden: ${((performance.now() - t3) / 1000).toFixed(1)} s; ` +
      `${clusters.nClusters} clusters (modularity ${clusters.quality.toFixed(3)}), PAGA graph with ${paga.graph.size} cluster links\n`,
  );
  console.log(a.toString());
  adata.close();
}

main().catch((e) => {
  console.error(`${e?.name ?? "Error"}: ${e?.message ?? e}`);
  process.exit(1);
});
