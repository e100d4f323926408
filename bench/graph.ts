/**
 * Graph-steps benchmark for the engine (one fresh process per size):
 * neighbors → UMAP → Leiden on obsm X_pca, with wall time and peak RSS per
 * step, as JSON in the schema of bench/peers_graph.py (compare_graph.py
 * prints them side by side).
 *
 *   node dist/bench/graph.js FILE --out OUT.json [--recall]
 *
 * --recall also runs the exact kNN and reports NN-descent's recall@15
 * (not counted in the step times).
 */
import * as fs from "node:fs";
import * as os from "node:os";
import type { Vector } from "apache-arrow";
import { pp, read, tl } from "../src/engine";

/** Peak RSS of this process so far (kernel high-water mark), MB. */
function peakRssMb(): number {
  const m = fs.readFileSync("/proc/self/status", "utf8").match(/VmHWM:\s+(\d+)/);
  return m ? Number(m[1]) / 1024 : Number.NaN;
}

/** Highest RSS seen while `f` runs (sampled every 50 ms), MB. */
async function withPeak<T>(f: () => Promise<T>): Promise<{ out: T; seconds: number; peak: number }> {
  let peak = process.memoryUsage.rss();
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage.rss());
  }, 50);
  const t = performance.now();
  try {
    const out = await f();
    peak = Math.max(peak, process.memoryUsage.rss());
    return { out, seconds: (performance.now() - t) / 1000, peak: peak / 2 ** 20 };
  } finally {
    clearInterval(timer);
  }
}

function ari(a: ArrayLike<string | number>, b: ArrayLike<string | number>): number {
  const cont = new Map<string, number>();
  const ra = new Map<string | number, number>();
  const rb = new Map<string | number, number>();
  for (let i = 0; i < a.length; i++) {
    const k = `${a[i]}\u0000${b[i]}`;
    cont.set(k, (cont.get(k) ?? 0) + 1);
    ra.set(a[i], (ra.get(a[i]) ?? 0) + 1);
    rb.set(b[i], (rb.get(b[i]) ?? 0) + 1);
  }
  const c2 = (x: number) => (x * (x - 1)) / 2;
  const sum = (m: Map<unknown, number>) => [...m.values()].reduce((s, v) => s + c2(v), 0);
  const [idx, sa, sb] = [sum(cont), sum(ra), sum(rb)];
  const exp = (sa * sb) / c2(a.length);
  return (idx - exp) / ((sa + sb) / 2 - exp);
}

async function main(): Promise<void> {
  const file = process.argv[2];
  const outIdx = process.argv.indexOf("--out");
  const out = outIdx > 0 ? process.argv[outIdx + 1] : null;
  if (!file) throw new Error("usage: node dist/bench/graph.js FILE --out OUT.json [--recall]");
  const steps: Record<string, Record<string, unknown>> = {};
  const log = (name: string, r: { seconds: number; peak: number }) =>
    process.stderr.write(`${name}: ${r.seconds.toFixed(2)} s, peak ${r.peak.toFixed(0)} MB\n`);

  const opened = await withPeak(() => read(file));
  const adata = opened.out;
  log("read", opened);
  steps.read = { wall_s: opened.seconds, peak_rss_mb: opened.peak };

  // Keep only what is reported: a user who ignores the returned kNN arrays
  // lets them be collected (they are 120 MB at 1M cells).
  const recall = process.argv.includes("--recall");
  const sampleIdx = process.argv.indexOf("--recall-sample");
  const sample = sampleIdx > 0 ? Number(process.argv[sampleIdx + 1]) : 0;
  const onlyNeighbors = process.argv.includes("--only-neighbors");
  const nb = await withPeak(async () => {
    const r = await pp.neighbors(adata);
    return { exact: r.exact, k: r.k, knnIndices: recall || sample ? r.knnIndices : new Int32Array(0) };
  });
  log("neighbors", nb);
  steps.neighbors = { wall_s: nb.seconds, peak_rss_mb: nb.peak, knn: nb.out.exact ? "exact" : "nndescent" };

  if (recall) {
    const ex = await withPeak(() => pp.neighbors(adata, { method: "exact", keyAdded: "exact" }));
    // Over the k − 1 neighbours other than the cell itself (column 0 is
    // always the cell), as bench/peers_graph.py measures scanpy's.
    let hit = 0;
    const k = nb.out.k;
    for (let i = 0; i < adata.nObs; i++) {
      const truth = new Set(ex.out.knnIndices.subarray(i * k + 1, (i + 1) * k));
      for (let s = 1; s < k; s++) if (truth.has(nb.out.knnIndices[i * k + s])) hit++;
    }
    steps.neighbors.recall = hit / (adata.nObs * (k - 1));
    steps.neighbors.recall_k = k - 1;
    steps.neighbors.exact_knn_wall_s = ex.seconds;
    process.stderr.write(`exact kNN ${ex.seconds.toFixed(1)} s; recall of the ${k - 1} other neighbours ${steps.neighbors.recall}\n`);
  }

  if (sample > 0) {
    // Exact neighbours of `sample` seeded random cells by brute force
    // (float64), as bench/peers_graph.py measures scanpy's recall.
    const x = (await adata.obsm.get("X_pca")) as { data: Float32Array; shape: number[] };
    const [n, d] = x.shape;
    const k = nb.out.k;
    let seed = 12345;
    let hit = 0;
    const dist = new Float64Array(n);
    for (let q = 0; q < sample; q++) {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      const i = seed % n;
      for (let j = 0; j < n; j++) {
        let t = 0;
        for (let c = 0; c < d; c++) {
          const v = x.data[i * d + c] - x.data[j * d + c];
          t += v * v;
        }
        dist[j] = t;
      }
      dist[i] = Number.POSITIVE_INFINITY;
      const order = Array.from({ length: n }, (_, j) => j);
      const kth = order.sort((p, r) => dist[p] - dist[r]).slice(0, k - 1);
      const truth = new Set(kth);
      for (let s = 1; s < k; s++) if (truth.has(nb.out.knnIndices[i * k + s])) hit++;
    }
    steps.neighbors.recall = hit / (sample * (k - 1));
    steps.neighbors.recall_k = k - 1;
    steps.neighbors.recall_sample = sample;
    process.stderr.write(`recall over ${sample} sampled cells: ${steps.neighbors.recall}\n`);
  }
  if (onlyNeighbors) {
    const text = JSON.stringify({ tool: "anndata-oom", n_obs: adata.nObs, steps }, null, 2);
    if (out) fs.writeFileSync(out, text);
    process.stdout.write(`${text}\n`);
    return;
  }

  const um = await withPeak(() => tl.umap(adata));
  log("umap", um);
  // The reproducible layout runs on every core (its result does not depend on their number).
  steps.umap = {
    wall_s: um.seconds,
    peak_rss_mb: um.peak,
    method: um.out.method,
    n_epochs: um.out.nEpochs,
    threads: os.availableParallelism(),
  };

  const ld = await withPeak(() => tl.leiden(adata));
  log("leiden", ld);
  const truthCol = adata.obs.getChild("truth") as Vector | null;
  const truth = truthCol ? Array.from({ length: adata.nObs }, (_, i) => String(truthCol.get(i))) : null;
  steps.leiden = {
    wall_s: ld.seconds,
    peak_rss_mb: ld.peak,
    n_clusters: ld.out.nClusters,
    quality: ld.out.quality,
    ari: truth ? ari(Array.from(ld.out.membership), truth) : null,
  };

  const result = {
    tool: "anndata-oom",
    version: JSON.parse(fs.readFileSync(`${__dirname}/../../package.json`, "utf8")).version,
    n_obs: adata.nObs,
    steps,
    peak_rss_mb: peakRssMb(),
    notes: `node ${process.version}, ${os.availableParallelism()} cores, load ${os.loadavg()[0].toFixed(2)} at the end`,
  };
  const text = JSON.stringify(result, null, 2);
  if (out) fs.writeFileSync(out, text);
  process.stdout.write(`${text}\n`);
  adata.close();
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
