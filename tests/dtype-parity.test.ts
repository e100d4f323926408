/**
 * The dtypes of what the steps write, against scanpy on the same input.
 * scanpy keeps sums in the data's dtype (float32 totals of float32 X, int64
 * of integer counts), cell and gene counts in int64, PCs and PCA variances
 * in the values' dtype, and kNN distances in float64. A notebook that
 * checks `adata.obs.total_counts.dtype` or concatenates our file with
 * scanpy's should not see a difference.
 */
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { type AnnDataOOM, pp, read } from "../src/engine";
import { runPython } from "./helpers";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "aoom-dtypes-"));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** Python that prints {element: dtype} of the AnnData `a` as JSON. */
const DTYPES = [
  "def dtypes(a):",
  "    out = {'X': str(a.X.dtype)}",
  "    for axis, df in (('obs', a.obs), ('var', a.var)):",
  "        for c in df.columns: out[f'{axis}/{c}'] = str(df[c].dtype)",
  "    for slot in ('obsm', 'varm', 'obsp'):",
  "        for k, v in getattr(a, slot).items(): out[f'{slot}/{k}'] = str(v.dtype)",
  "    for k, v in a.uns.get('pca', {}).items():",
  "        if hasattr(v, 'dtype'): out[f'uns/pca/{k}'] = str(v.dtype)",
  "    return out",
];

/**
 * The pipeline each case runs, in scanpy and here: QC with an "mt" gene set,
 * both filters (they write n_genes / n_counts), then — unless `qcOnly` —
 * the transforms in `steps`, PCA and neighbors.
 */
interface Case {
  dtype: string;
  /** A dense X (else CSR). */
  dense?: boolean;
  /** scale centres; scale0 does not; hvg selects 40 genes (PCA then takes them only). */
  steps: ("normalize" | "log1p" | "hvg" | "scale" | "scale0")[];
  qcOnly?: boolean;
}

const CASES: Case[] = [
  { dtype: "float32", steps: ["normalize", "log1p"] },
  { dtype: "float64", steps: ["normalize", "log1p"] },
  { dtype: "int32", steps: ["normalize", "log1p"] },
  // log1p of counts straight away is float64 in scanpy (normalize_total gives float32).
  { dtype: "int32", steps: ["log1p"] },
  { dtype: "float32", steps: ["normalize", "log1p", "scale0"] },
  // A centring scale densifies sparse data to float64; a dense float32 array stays float32.
  { dtype: "float32", steps: ["normalize", "log1p", "scale"] },
  { dtype: "float32", dense: true, steps: ["normalize", "log1p", "scale"] },
  { dtype: "int32", dense: true, steps: ["normalize", "log1p"] },
  // PCs of the HVGs: scanpy copies them into a float64 matrix of all genes.
  { dtype: "float32", steps: ["normalize", "log1p", "hvg"] },
  { dtype: "uint16", steps: [], qcOnly: true },
];

const inputOf = (c: Case, i: number) => path.join(tmp, `in_${i}_${c.dtype}.h5ad`);

/** Writes every case's input and returns scanpy's dtypes per case (one Python process: scanpy imports once). */
function scanpyDtypes(): Record<string, string>[] {
  const script = [
    "import sys, json, warnings, numpy as np, scipy.sparse as sp, anndata as ad, scanpy as sc",
    "warnings.filterwarnings('ignore')",
    ...DTYPES,
    "results = []",
    "for c in json.loads(sys.argv[2]):",
    "    rng = np.random.default_rng(0)",
    "    X = sp.random(300, 120, density=0.25, format='csr', random_state=1, data_rvs=lambda n: rng.integers(1, 30, n))",
    "    X = X.astype(c['dtype'])",
    "    a = ad.AnnData(X.toarray() if c.get('dense') else X)",
    "    a.obs_names = [f'c{i}' for i in range(300)]",
    "    a.var_names = [f'MT-{i}' if i < 6 else f'g{i}' for i in range(120)]",
    "    a.write_h5ad(c['file'])",
    "    a.var['mt'] = a.var_names.str.startswith('MT-')",
    "    sc.pp.calculate_qc_metrics(a, qc_vars=['mt'], percent_top=[10], inplace=True)",
    "    sc.pp.filter_cells(a, min_genes=1)",
    "    sc.pp.filter_cells(a, min_counts=1)",
    "    sc.pp.filter_genes(a, min_cells=1)",
    "    sc.pp.filter_genes(a, min_counts=1)",
    "    if not c.get('qcOnly'):",
    "        for s in c['steps']:",
    "            if s == 'normalize': sc.pp.normalize_total(a)",
    "            elif s == 'log1p': sc.pp.log1p(a)",
    "            elif s == 'hvg': sc.pp.highly_variable_genes(a, n_top_genes=40)",
    "            else: sc.pp.scale(a, zero_center=(s == 'scale'))",
    "        sc.pp.pca(a, n_comps=10)",
    "        sc.pp.neighbors(a, n_neighbors=10)",
    "        sc.pp.neighbors(a, n_neighbors=10, metric='cosine', key_added='cos')",
    "    results.append(dtypes(a))",
    "print(json.dumps(results))",
  ];
  return JSON.parse(runPython(script, "", JSON.stringify(CASES.map((c, i) => ({ ...c, file: inputOf(c, i) })))));
}

/** Our result files' dtypes, as anndata reads them. */
function writtenDtypes(files: string[]): Record<string, string>[] {
  const script = [
    "import sys, json, warnings, anndata as ad",
    "warnings.filterwarnings('ignore')",
    ...DTYPES,
    "print(json.dumps([dtypes(ad.read_h5ad(f)) for f in sys.argv[2:]]))",
  ];
  return JSON.parse(runPython(script, "", ...files));
}

/** Runs the case's pipeline here and writes the result; returns the file. */
async function runOurs(c: Case, i: number): Promise<string> {
  let a: AnnDataOOM = await read(inputOf(c, i));
  pp.markGenes(a, "mt", "MT-");
  await pp.calculateQcMetrics(a, { qcVars: ["mt"], percentTop: [10] });
  a = await pp.filterCells(a, { minGenes: 1 });
  a = await pp.filterCells(a, { minCounts: 1 });
  a = await pp.filterGenes(a, { minCells: 1 });
  a = await pp.filterGenes(a, { minCounts: 1 });
  if (!c.qcOnly) {
    for (const s of c.steps) {
      if (s === "normalize") await pp.normalizeTotal(a);
      else if (s === "log1p") pp.log1p(a);
      else if (s === "hvg") await pp.highlyVariableGenes(a, { nTopGenes: 40 });
      else await pp.scale(a, { zeroCenter: s === "scale" });
    }
    await pp.pca(a, { nComps: 10 });
    await pp.neighbors(a, { nNeighbors: 10 });
    // cosine distances: float32 from X_pca in scanpy (euclidean ones float64)
    await pp.neighbors(a, { nNeighbors: 10, metric: "cosine", keyAdded: "cos" });
  }
  const out = path.join(tmp, `out_${i}.h5ad`);
  await a.write(out);
  a.close();
  return out;
}

describe("dtypes of written results match scanpy's", () => {
  let theirs: Record<string, string>[];
  let ours: Record<string, string>[];
  before(async () => {
    theirs = scanpyDtypes();
    const files: string[] = [];
    for (const [i, c] of CASES.entries()) files.push(await runOurs(c, i));
    ours = writtenDtypes(files);
  });
  CASES.forEach((c, i) => {
    it(`${c.dense ? "dense" : "CSR"} ${c.dtype} X${c.qcOnly ? ", QC and filters" : `, ${c.steps.join(" → ")} → pca → neighbors`}`, () => {
      const compared = Object.keys(theirs[i]);
      assert.ok(compared.length > 10, `scanpy wrote ${compared.length} elements`);
      const mismatched = compared.filter((k) => ours[i][k] !== theirs[i][k]).map((k) => `${k}: ours ${ours[i][k]}, scanpy ${theirs[i][k]}`);
      assert.deepEqual(mismatched, []);
    });
  });
});
