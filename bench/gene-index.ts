/**
 * Gene-index benchmark: build time, peak RSS and size of the sidecar, then
 * the time to read one gene across all cells through it (cold: the
 * sidecar's pages evicted with posix_fadvise; warm: read again), against
 * one full-pass gather of a gene without the index. Prints JSON.
 *
 *   node dist/bench/gene-index.js FILE.h5ad [--genes 50] [--dir DIR] [--no-gather] [--keep]
 */
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { read, stderrProgress } from "../src/engine";

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : fallback;
}
const flag = (name: string) => process.argv.includes(name);

function status(field: string): number {
  const line = fs
    .readFileSync("/proc/self/status", "utf8")
    .split("\n")
    .find((l) => l.startsWith(`${field}:`));
  return line ? Number(line.split(/\s+/)[1]) / 1024 : Number.NaN;
}

function resetPeak(): boolean {
  try {
    fs.writeFileSync("/proc/self/clear_refs", "5");
    return true;
  } catch {
    return false;
  }
}

/** Evict one file's pages from the page cache (only that file). */
function evict(file: string): boolean {
  try {
    const py = "import os,sys; fd=os.open(sys.argv[1], os.O_RDONLY); os.posix_fadvise(fd,0,0,os.POSIX_FADV_DONTNEED)";
    execFileSync("python3", ["-c", py, file]);
    return true;
  } catch {
    return false;
  }
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  return n % 2 ? s[(n - 1) >> 1] : (s[n / 2 - 1] + s[n / 2]) / 2;
};
const ms = (t: bigint) => Number(process.hrtime.bigint() - t) / 1e6;

async function main(): Promise<void> {
  const file = process.argv[2];
  if (!file) throw new Error("usage: gene-index.js FILE.h5ad [--genes 50] [--dir DIR] [--no-gather] [--keep]");
  const nGenes = Number(arg("--genes", "50"));
  const dir = arg("--dir", fs.mkdtempSync(path.join(os.tmpdir(), "gene-index-bench-")));
  process.env.ANNDATA_OOM_GENE_INDEX_DIR = dir; // obsVector looks in the default folder
  const a = await read(file);
  const [nObs, nVars] = a.shape;
  const peakReset = resetPeak();
  const rssBefore = status("VmRSS");
  let t = process.hrtime.bigint();
  const info = await a.X.buildGeneIndex({ dir, onProgress: stderrProgress() });
  const buildMs = ms(t);
  const buildPeakMb = status("VmHWM");

  let seed = 12345;
  const rand = () => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed / 2 ** 31;
  };
  const genes = new Set<number>();
  while (genes.size < Math.min(nGenes, nVars)) genes.add(Math.floor(rand() * nVars));
  const list = [...genes];

  const evicted = evict(info.path);
  const cold: number[] = [];
  for (const g of list) {
    t = process.hrtime.bigint();
    await a.X.geneValues([g], { dir });
    cold.push(ms(t));
  }
  const warm: number[] = [];
  for (const g of list) {
    t = process.hrtime.bigint();
    await a.X.geneValues([g], { dir });
    warm.push(ms(t));
  }
  t = process.hrtime.bigint();
  await a.X.geneValues(list, { dir });
  const batchMs = ms(t);
  t = process.hrtime.bigint();
  const viaIndex = await a.X.obsVector(list[0]);
  const obsVectorIndexedMs = ms(t);

  let gatherMs: number | null = null;
  let gatherEqual: boolean | null = null;
  if (!flag("--no-gather")) {
    const empty = fs.mkdtempSync(path.join(os.tmpdir(), "gene-index-none-"));
    t = process.hrtime.bigint();
    const [g] = await a.X.geneValues([list[0]], { index: false, dir: empty });
    gatherMs = ms(t);
    gatherEqual = g.every((x, i) => x === viaIndex[i]);
    fs.rmSync(empty, { recursive: true, force: true });
  }
  const out = {
    file: path.resolve(file),
    shape: [nObs, nVars],
    nnz: info.nnz,
    valueKind: info.valueKind,
    sidecarBytes: info.bytes,
    bytesPerEntry: info.nnz ? info.bytes / info.nnz : null,
    buildSeconds: buildMs / 1000,
    buildPeakRssMb: peakReset ? buildPeakMb : null,
    rssBeforeBuildMb: rssBefore,
    genes: list.length,
    coldEvicted: evicted,
    perGeneMsColdMedian: median(cold),
    perGeneMsColdMax: Math.max(...cold),
    perGeneMsWarmMedian: median(warm),
    perGeneMsWarmMax: Math.max(...warm),
    batchOfGenesMs: batchMs,
    obsVectorWithIndexMs: obsVectorIndexedMs,
    obsVectorFullPassMs: gatherMs,
    fullPassEqualsIndex: gatherEqual,
    loadavg: os.loadavg(),
    date: new Date().toISOString(),
  };
  console.log(JSON.stringify(out, null, 2));
  a.close();
  if (!flag("--keep")) fs.rmSync(dir, { recursive: true, force: true });
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
