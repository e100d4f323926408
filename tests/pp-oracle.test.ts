/**
 * Preprocessing against scanpy (tests/python/make_pp_oracle.py writes the
 * inputs and scanpy's results; tolerances follow SCANPY_NOTES.md §10).
 * The pipeline runs on each dataset in order: QC → filters → normalize →
 * log1p → HVG (every dispersion flavor, ± batch) → scale → exact PCA.
 */
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { before, describe, it } from "node:test";
import type { Vector } from "apache-arrow";
import {
  type AnnDataOOM,
  type BackedMatrix,
  CancelledError,
  type Chunk,
  InvalidArgumentError,
  pp,
  read,
  UnsupportedEncodingError,
} from "../src/engine";
import { aggregateRanks, ranksOf } from "../src/engine/pp/ranks";
import { vectorKind } from "../src/engine/typed";
import { FIXTURES, PYTHON } from "./helpers";

const PP = path.join(FIXTURES, "pp");
const manifest = JSON.parse(fs.readFileSync(path.join(PP, "pp_manifest.json"), "utf8"));

function vec(v: Vector | null | undefined): number[] {
  assert.ok(v, "missing column");
  return Array.from({ length: v.length }, (_, i) => {
    const x = v.get(i);
    return x === null ? Number.NaN : Number(x);
  });
}

function close(actual: ArrayLike<number>, expected: ArrayLike<number>, what: string, rtol: number, atol = 0): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  let worst = 0;
  let at = -1;
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i];
    const e = expected[i];
    if (Number.isNaN(e) && Number.isNaN(a)) continue;
    const diff = Math.abs(a - e);
    const err = diff <= atol ? 0 : diff / Math.max(Math.abs(e), Number.MIN_VALUE);
    if (!(err <= worst)) {
      worst = err;
      at = i;
    }
  }
  assert.ok(worst <= rtol, `${what}: worst relative error ${worst} at ${at} (got ${actual[at]}, scanpy ${expected[at]})`);
}

async function dense(m: BackedMatrix): Promise<Float64Array> {
  const [r, c] = m.shape;
  const out = new Float64Array(r * c);
  const chunk: Chunk = await m.rows(0, r);
  if (chunk.format === "dense") out.set(Array.from(chunk.data, Number));
  else
    for (let i = 0; i < r; i++)
      for (let p = chunk.indptr[i]; p < chunk.indptr[i + 1]; p++) out[i * c + chunk.indices[p]] = Number(chunk.data[p]);
  return out;
}

/**
 * X.sum/mean/var/nnz on both axes of a transformed matrix against the same
 * statistics of scanpy's matrix (row-major `ref`, float32 values).
 */
async function checkChainStats(m: BackedMatrix, ref: Float64Array, what: string): Promise<void> {
  const [r, c] = m.shape;
  const stats = (axis: 0 | 1) => {
    const n = axis === 0 ? c : r;
    const len = axis === 0 ? r : c;
    const at = (k: number, i: number) => (axis === 0 ? ref[i * c + k] : ref[k * c + i]);
    const sum = new Float64Array(n);
    const variance = new Float64Array(n);
    const nnz = new Float64Array(n);
    for (let k = 0; k < n; k++) {
      for (let i = 0; i < len; i++) {
        sum[k] += at(k, i);
        if (at(k, i) !== 0) nnz[k]++;
      }
      const mu = sum[k] / len;
      for (let i = 0; i < len; i++) variance[k] += (at(k, i) - mu) ** 2;
      variance[k] /= len - 1;
    }
    return { sum, mean: sum.map((x) => x / len), variance, nnz };
  };
  for (const axis of [0, 1] as const) {
    const e = stats(axis);
    const tag = `${what} axis ${axis}`;
    close((await m.sum(axis)) as Float64Array, e.sum, `${tag} sum`, 1e-5, 1e-4);
    close((await m.mean(axis)) as Float64Array, e.mean, `${tag} mean`, 1e-5, 1e-6);
    close((await m.var(axis, { ddof: 1 })) as Float64Array, e.variance, `${tag} var`, 1e-5, 1e-6);
    close((await m.nnz(axis)) as Float64Array, e.nnz, `${tag} nnz`, 0);
  }
}

const bools = (v: Vector | null) => vec(v).map((x) => x !== 0);

/** Cosine between column c of two gene-major (genes × k) loading matrices. */
function columnCos(a: Float64Array, b: Float64Array, k: number, c: number): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let j = c; j < a.length; j += k) {
    dot += a[j] * b[j];
    na += a[j] ** 2;
    nb += b[j] ** 2;
  }
  return dot / Math.sqrt(na * nb);
}

/** Genes whose score is unique within every batch (scores: genes × batches, row-major). */
function untiedGenes(scores: { data: ArrayLike<number>; shape: number[] }): boolean[] {
  const [p, nb] = scores.shape;
  return Array.from({ length: p }, (_, j) => {
    for (let b = 0; b < nb; b++)
      for (let k = 0; k < p; k++) if (k !== j && scores.data[k * nb + b] === scores.data[j * nb + b]) return false;
    return true;
  });
}

for (const name of Object.keys(manifest.datasets)) {
  const ds = manifest.datasets[name];
  const cfg = ds.config;
  const ref = (step: string) => read(path.join(PP, ds.steps[step].file));

  describe(`scanpy oracle: ${name}`, () => {
    let adata: AnnDataOOM;
    let logged: AnnDataOOM;
    before(async () => {
      adata = await read(path.join(PP, ds.input.file));
    });

    it("calculateQcMetrics: every obs and var column (1 pass)", async () => {
      pp.markGenes(adata, "mt", (g) => g.startsWith("MT-"));
      await pp.calculateQcMetrics(adata, { qcVars: ["mt"], percentTop: cfg.percent_top });
      const r = await ref("qc");
      for (const el of Object.keys(ds.steps.qc.elements)) {
        const [axis, col] = el.split("/");
        if (col === "mt") continue;
        const frame = axis === "obs" ? [adata.obs, r.obs] : [adata.var, r.var];
        close(vec(frame[0].getChild(col)), vec(frame[1].getChild(col)), `${el}`, 1e-5);
        // The dtype scanpy stores (the reader maps int64 to Float64, so scanpy's comes from the manifest);
        // ours is the dtype write() stores (tests/dtype-parity.test.ts checks the written files).
        const scanpyDtype: string = ds.steps.qc.elements[el].dtype;
        assert.equal(vectorKind(frame[0].getChild(col) as Vector), scanpyDtype, el);
      }
      r.close();
    });

    it("filterCells / filterGenes keep the cells and genes scanpy keeps", async () => {
      const r = await ref("filter_cells");
      const cells = await pp.filterCells(adata, { minGenes: cfg.min_genes });
      const keptCells = bools(r.obs.getChild("filter_cells_kept"));
      assert.equal(cells.nObs, keptCells.filter(Boolean).length);
      // Gene counts come from the QC columns minus the removed cells: only those rows are read.
      const rowsRead: number[] = [];
      const genes = await pp.filterGenes(cells, {
        minCells: cfg.min_cells,
        onProgress: (pr) => pr.state === "done" && rowsRead.push(pr.rowsTotal),
      });
      const removed = adata.nObs - cells.nObs;
      assert.deepEqual(rowsRead, removed > 0 && removed * 2 <= adata.nObs ? [removed] : removed === 0 ? [] : [cells.nObs]);
      const keptGenes = bools(r.var.getChild("filter_genes_kept"));
      assert.equal(genes.nVars, keptGenes.filter(Boolean).length);
      const names = vec(r.var.getChild("filter_genes_n_cells")).filter((_, j) => keptGenes[j]);
      close(vec(genes.var.getChild("n_cells")), names, "var n_cells", 0);
      assert.equal(vectorKind(genes.var.getChild("n_cells") as Vector), ds.steps.filter_genes.elements["var/filter_genes_n_cells"].dtype);
      assert.equal(vectorKind(cells.obs.getChild("n_genes") as Vector), ds.steps.filter_cells.elements["obs/filter_cells_n_genes"].dtype);
      adata = genes;
      r.close();
    });

    it("normalizeTotal(targetSum 1e4): the normalized matrix", async () => {
      const r = await ref("normalize_total");
      adata.layers.set("counts", adata.X);
      await pp.normalizeTotal(adata, { targetSum: 1e4 });
      close(await dense(adata.X), await dense(r.layers.get("normalized")), "normalized X", 1e-6);
      assert.ok(adata.layers.get("counts").chain.isEmpty, "layers.counts keeps the raw counts");
      r.close();
    });

    it("normalizeTotal defaults (median target) and excludeHighlyExpressed match scanpy's factors", async () => {
      const r = await ref("normalize_total");
      const v1 = adata.subset({ obs: { start: 0 } });
      v1.setX(v1.layers.get("counts"));
      await pp.normalizeTotal(v1);
      const step = v1.X.chain.steps[0];
      assert.equal(step.op, "normalize");
      if (step.op !== "normalize") return;
      const expectedFactor = vec(r.obs.getChild("norm_factor_median"));
      close(
        Array.from(step.sizeFactors as Float64Array, (t) => t / step.target),
        expectedFactor,
        "median-target factors",
        1e-6,
      );
      const v2 = adata.subset({ obs: { start: 0 } });
      v2.setX(v2.layers.get("counts"));
      await pp.normalizeTotal(v2, { excludeHighlyExpressed: true, maxFraction: 0.05 });
      const s2 = v2.X.chain.steps[0];
      if (s2.op !== "normalize") return;
      assert.deepEqual(
        Array.from(s2.exclude as Uint8Array, (x) => x === 1),
        bools(r.var.getChild("ehe_excluded")),
      );
      close(
        Array.from(s2.sizeFactors as Float64Array),
        vec(r.obs.getChild("ehe_counts_per_cell")),
        "exclude-highly-expressed totals",
        1e-6,
      );
      r.close();
    });

    it("log1p: the log data, and refuses a second application", async () => {
      const r = await ref("log1p");
      pp.log1p(adata);
      const refLog = await dense(r.X);
      close(await dense(adata.X), refLog, "log1p X", 2e-6, 1e-7);
      await checkChainStats(adata.X, refLog, "normalize → log1p");
      assert.throws(() => pp.log1p(adata), InvalidArgumentError);
      logged = adata;
      r.close();
    });

    for (const variant of ["seurat", "seurat_batch", "seurat_cutoffs", "seurat_cutoffs_batch", "cell_ranger", "cell_ranger_batch"]) {
      it(`highlyVariableGenes ${variant}: same genes, same statistics`, async () => {
        const step = ds.steps[`hvg_${variant}`];
        const r = await ref(`hvg_${variant}`);
        const v = logged.subset({ obs: { start: 0 } });
        const params = step.params;
        await pp.highlyVariableGenes(v, {
          flavor: params.flavor,
          nTopGenes: params.n_top_genes,
          minMean: params.min_mean,
          maxMean: params.max_mean,
          minDisp: params.min_disp,
          batchKey: params.batch_key,
        });
        assert.deepEqual(bools(v.var.getChild("highly_variable")), bools(r.var.getChild("highly_variable")), "highly_variable");
        close(vec(v.var.getChild("means")), vec(r.var.getChild("means")), "means", 1e-6, 1e-9);
        close(vec(v.var.getChild("dispersions")), vec(r.var.getChild("dispersions")), "dispersions", 1e-5, 1e-7);
        close(vec(v.var.getChild("dispersions_norm")), vec(r.var.getChild("dispersions_norm")), "dispersions_norm", 1e-4, 1e-5);
        if (params.batch_key) {
          close(vec(v.var.getChild("highly_variable_nbatches")), vec(r.var.getChild("highly_variable_nbatches")), "nbatches", 0);
        }
        r.close();
      });
    }

    for (const variant of ["seurat_v3", "seurat_v3_batch", "seurat_v3_paper_batch"]) {
      it(`highlyVariableGenes ${variant} on layers.counts: scores, ranks (modulo ties) and genes`, async () => {
        const step = ds.steps[`hvg_${variant}`];
        assert.ok(step.file, `the oracle skipped ${variant} (scikit-misc missing from the venv?)`);
        const r = await ref(`hvg_${variant}`);
        const v = logged.subset({ obs: { start: 0 } });
        let passes = 0;
        await pp.highlyVariableGenes(v, {
          flavor: step.params.flavor,
          nTopGenes: step.params.n_top_genes,
          batchKey: step.params.batch_key,
          layer: "counts",
          onProgress: (pr) => pr.state === "done" && passes++,
        });
        assert.equal(passes, 2, "seurat_v3 takes two passes");
        close(vec(v.var.getChild("means")), vec(r.var.getChild("means")), "means", 1e-6, 1e-12);
        close(vec(v.var.getChild("variances")), vec(r.var.getChild("variances")), "variances", 1e-6, 1e-12);
        close(vec(v.var.getChild("variances_norm")), vec(r.var.getChild("variances_norm")), "variances_norm", 1e-6, 1e-9);
        // numpy's argsort orders tied scores arbitrarily. Where a tie group straddles a
        // batch's top-n cut, the picks legitimately differ; then check the aggregation
        // itself on scanpy's own per-batch ranks, which must reproduce its genes exactly.
        const straddling = (step.ties?.per_batch ?? []).some((b: { straddling: unknown[] }) => b.straddling.length > 0);
        const got = bools(v.var.getChild("highly_variable"));
        const want = bools(r.var.getChild("highly_variable"));
        const perBatchRank = r.varm.has("per_batch_rank")
          ? ((await r.varm.get("per_batch_rank")) as { data: Float32Array; shape: number[] })
          : null;
        if (perBatchRank) {
          const [p, nb] = perBatchRank.shape;
          const ranks = Array.from({ length: nb }, (_, b) => Float64Array.from({ length: p }, (_, j) => perBatchRank.data[j * nb + b]));
          const agg = aggregateRanks(ranks, step.params.n_top_genes, step.params.flavor === "seurat_v3" ? "rank-first" : "batches-first");
          assert.deepEqual(agg.hv, want, "aggregation of scanpy's per-batch ranks");
        }
        const scores = r.varm.has("per_batch_variances_norm")
          ? ((await r.varm.get("per_batch_variances_norm")) as { data: Float64Array; shape: number[] })
          : { data: Float64Array.from(vec(r.var.getChild("variances_norm"))), shape: [v.nVars, 1] };
        if (!straddling) assert.deepEqual(got, want, "highly_variable");
        else {
          // A tie group across a batch's cut: scanpy's picks follow numpy's sort,
          // ours keep gene order. Then ours must be exactly scanpy's scores ranked
          // with ties in gene order and aggregated as above.
          const [p, nb] = scores.shape;
          const ranks = Array.from({ length: nb }, (_, b) => ranksOf(Float64Array.from({ length: p }, (_, j) => scores.data[j * nb + b])));
          const agg = aggregateRanks(ranks, step.params.n_top_genes, step.params.flavor === "seurat_v3" ? "rank-first" : "batches-first");
          assert.deepEqual(got, agg.hv, "highly_variable: scanpy's per-batch scores, ties in gene order");
        }
        // Ranks of genes whose score is unique in every batch do not depend on tie order.
        const unique = untiedGenes(scores);
        const gr = vec(v.var.getChild("highly_variable_rank"));
        const wr = vec(r.var.getChild("highly_variable_rank"));
        close(
          gr.filter((_, j) => unique[j]),
          wr.filter((_, j) => unique[j]),
          "highly_variable_rank (untied genes)",
          0,
        );
        r.close();
      });
    }

    for (const variant of ["pearson_residuals", "pearson_residuals_batch"]) {
      it(`highlyVariableGenes ${variant} on layers.counts: residual variances and genes (2 passes)`, async () => {
        const step = ds.steps[`hvg_${variant}`];
        const r = await ref(`hvg_${variant}`);
        const v = logged.subset({ obs: { start: 0 } });
        let passes = 0;
        await pp.highlyVariableGenes(v, {
          flavor: "pearson_residuals",
          nTopGenes: step.params.n_top_genes,
          batchKey: step.params.batch_key,
          layer: "counts",
          onProgress: (pr) => pr.state === "done" && passes++,
        });
        assert.equal(passes, 2);
        close(vec(v.var.getChild("residual_variances")), vec(r.var.getChild("residual_variances")), "residual_variances", 1e-6, 1e-9);
        close(vec(v.var.getChild("means")), vec(r.var.getChild("means")), "means", 1e-6, 1e-12);
        assert.deepEqual(bools(v.var.getChild("highly_variable")), bools(r.var.getChild("highly_variable")), "highly_variable");
        // ranks of genes tied with another gene in some batch are implementation-defined in numpy
        const per = r.varm.has("per_batch_residual_variances")
          ? ((await r.varm.get("per_batch_residual_variances")) as { data: Float64Array; shape: number[] })
          : { data: Float64Array.from(vec(r.var.getChild("residual_variances"))), shape: [v.nVars, 1] };
        const untied = untiedGenes(per);
        close(
          vec(v.var.getChild("highly_variable_rank")).filter((_, j) => untied[j]),
          vec(r.var.getChild("highly_variable_rank")).filter((_, j) => untied[j]),
          "highly_variable_rank (untied genes)",
          0,
        );
        assert.deepEqual(
          v.var.schema.fields.map((f) => f.name).slice(-(step.var_columns?.length ?? 0)),
          step.var_columns ?? v.var.schema.fields.map((f) => f.name).slice(-0),
        );
        r.close();
      });
    }

    it("scale(maxValue 10) on the seurat HVGs: mean, std and the scaled values (no pass after HVG)", async () => {
      const hv = await ref("hvg_seurat");
      await pp.highlyVariableGenes(logged, { flavor: "seurat", nTopGenes: cfg.n_top_genes });
      const mask = bools(hv.var.getChild("highly_variable"));
      const sub = logged.subset({ var: mask });
      let passes = 0;
      await pp.scale(sub, { maxValue: 10, onProgress: (p) => p.state === "done" && passes++ });
      assert.equal(passes, 0, "scale reuses the HVG pass's moments");
      const r = await ref("scale");
      close(vec(sub.var.getChild("mean")), vec(r.var.getChild("mean")), "mean", 1e-6, 1e-9);
      close(vec(sub.var.getChild("std")), vec(r.var.getChild("std")), "std", 1e-5);
      const refScaled = await dense(r.X);
      close(await dense(sub.X), refScaled, "scaled X", 1e-5, 1e-6);
      await checkChainStats(sub.X, refScaled, "scale(maxValue 10)");
      const nz = sub.subset({ obs: { start: 0 } });
      nz.setX(logged.subset({ var: mask }).X);
      await pp.scale(nz, { zeroCenter: false, maxValue: 10 });
      const rz = await ref("scale_no_zero_center");
      const refNz = await dense(rz.X);
      close(await dense(nz.X), refNz, "scaled X without centring", 1e-5, 1e-6);
      await checkChainStats(nz.X, refNz, "scale without centring");
      logged = sub;
      for (const x of [hv, r, rz]) x.close();
    });

    it("pca (exact): variance ratio, PCs and X_pca against covariance_eigh and arpack", async () => {
      await pp.pca(logged, { nComps: cfg.n_comps, useHighlyVariable: false });
      const uns = logged.uns.pca as { variance: Float64Array; variance_ratio: Float64Array };
      const pcs = (await logged.varm.get("PCs")) as { data: Float64Array; shape: number[] };
      const xp = (await logged.obsm.get("X_pca")) as { data: Float32Array; shape: number[] };
      const k = cfg.n_comps;
      for (const solver of ["covariance_eigh", "arpack"]) {
        const r = await ref(`pca_${solver}`);
        const ru = r.uns.pca as { variance: Float64Array; variance_ratio: Float64Array };
        close(uns.variance_ratio, ru.variance_ratio, `${solver} variance_ratio`, 1e-4);
        close(uns.variance, ru.variance, `${solver} variance`, 1e-4);
        const rp = (await r.varm.get("PCs")) as { data: Float64Array };
        const rx = (await r.obsm.get("X_pca")) as { data: Float32Array };
        for (let c = 0; c < k; c++) {
          const cos = columnCos(pcs.data, rp.data, k, c);
          assert.ok(Math.abs(cos) >= 0.999, `${solver} PC${c + 1}: |cos| = ${Math.abs(cos)}`);
          if (c < 20) assert.ok(cos > 0.999, `${solver} PC${c + 1}: sign convention differs (cos ${cos})`);
        }
        if (solver === "covariance_eigh") {
          // X_pca equal (same sign rule) for the well-separated leading components.
          const n = xp.shape[0];
          const a: number[] = [];
          const b: number[] = [];
          for (let i = 0; i < n; i++)
            for (let c = 0; c < 10; c++) {
              a.push(xp.data[i * k + c]);
              b.push(rx.data[i * k + c]);
            }
          close(a, b, "X_pca (first 10 PCs)", 1e-3, 1e-3);
        }
        r.close();
      }
    });

    it("pca zeroCenter: false (truncated SVD): variance, ratio and PCs against scanpy", async () => {
      const v = logged.subset({ obs: { start: 0 } });
      await pp.pca(v, { nComps: cfg.n_comps, useHighlyVariable: false, zeroCenter: false });
      const r = await ref("pca_no_zero_center");
      const ru = r.uns.pca as { variance: Float64Array; variance_ratio: Float64Array };
      const mine = v.uns.pca as { variance: Float64Array; variance_ratio: Float64Array };
      close(mine.variance.slice(0, 20), ru.variance.slice(0, 20), "variance", 1e-4);
      close(mine.variance_ratio.slice(0, 20), ru.variance_ratio.slice(0, 20), "variance_ratio", 1e-4);
      const pcs = (await v.varm.get("PCs")) as { data: Float64Array; shape: number[] };
      const rp = (await r.varm.get("PCs")) as { data: Float64Array };
      const k = cfg.n_comps;
      for (let c = 0; c < 20; c++) {
        const cos = columnCos(pcs.data, rp.data, k, c);
        assert.ok(cos > 0.999, `PC${c + 1}: cos ${cos}`);
      }
      r.close();
    });

    it("pca randomized (Halko, fused passes): top 20 PCs |cos| >= 0.999 against arpack", async () => {
      const v = logged.subset({ obs: { start: 0 } });
      let passes = 0;
      await pp.pca(v, {
        nComps: cfg.n_comps,
        useHighlyVariable: false,
        svdSolver: "randomized",
        nIter: 12,
        onProgress: (pr) => pr.state === "done" && passes++,
      });
      assert.equal(passes, 1, "one progress 'done' for the whole job (its passes run inside one native job)");
      const pcs = (await v.varm.get("PCs")) as { data: Float64Array; shape: number[] };
      const r = await ref("pca_arpack");
      const rp = (await r.varm.get("PCs")) as { data: Float64Array };
      const ru = r.uns.pca as { variance_ratio: Float64Array };
      const k = cfg.n_comps;
      for (let c = 0; c < 20; c++) {
        const cos = columnCos(pcs.data, rp.data, k, c);
        assert.ok(Math.abs(cos) >= 0.999, `randomized PC${c + 1}: |cos| = ${Math.abs(cos)}`);
      }
      const vr = (v.uns.pca as { variance_ratio: Float64Array }).variance_ratio;
      close(vr.slice(0, 20), ru.variance_ratio.slice(0, 20), "randomized variance_ratio (top 20)", 1e-3);
      r.close();
    });
  });
}

describe("session state: raw, layers, anndataoom names", () => {
  it("setRaw freezes X's chain; later steps leave raw alone; views carry it", async () => {
    const a = await read(path.join(PP, "synth_3k.h5ad"));
    pp.markGenes(a, "mt", /^MT-/);
    await pp.calculateQcMetrics(a, { qcVars: ["mt"] });
    pp.anndataoomQcNames(a);
    close(vec(a.obs.getChild("nUMIs")), vec(a.obs.getChild("total_counts")), "nUMIs", 0);
    close(
      vec(a.obs.getChild("mito_perc")).map((x) => x * 100),
      vec(a.obs.getChild("pct_counts_mt")),
      "mito_perc",
      1e-12,
    );
    a.layers.set("counts", a.X);
    await pp.normalizeTotal(a, { targetSum: 1e4 });
    pp.log1p(a);
    a.setRaw();
    await pp.scale(a, { maxValue: 10 });
    const raw = a.raw;
    assert.ok(raw?.X);
    // Frozen transforms (scale's pass may have stored the row totals it
    // computed on the shared matrix: same values, same chain).
    assert.deepEqual(
      raw.X.chain.steps.map((s) => s.op),
      ["normalize", "log1p"],
    );
    assert.match(raw.X.chain.describe()[0], /^normalize: × 10000 \/ row total/);
    assert.equal(a.X.chain.steps.length, 3);
    const v = a.subset({ obs: [5, 1] });
    assert.deepEqual(v.raw?.shape, [2, a.nVars]);
    const row = await v.raw?.X?.varVector(0);
    const full = await a.raw?.X?.varVector(5);
    assert.deepEqual(Array.from(row ?? []), Array.from(full ?? []));
    assert.ok(v.layers.get("counts").chain.isEmpty);
    assert.match(a.X.explain(), /normalize[\s\S]*log1p[\s\S]*scale/);
    a.close();
  });
});

describe("row totals found by a pass", () => {
  it("are stored on the matrix as size factors, equal to the QC totals, and carried to gene subsets", async () => {
    const a = await read(path.join(PP, "synth_3k.h5ad"));
    await pp.calculateQcMetrics(a, { percentTop: [] });
    const totals = vec(a.obs.getChild("total_counts"));
    await pp.normalizeTotal(a, { targetSum: 1e4 });
    pp.log1p(a);
    const before = a.X.chain.steps[0];
    assert.ok(before.op === "normalize" && !before.sizeFactors);
    await pp.highlyVariableGenes(a, { nTopGenes: 200 });
    const after = a.X.chain.steps[0];
    assert.ok(after.op === "normalize" && after.sizeFactors);
    close(Array.from(after.sizeFactors), totals, "stored size factors", 0);
    assert.match(a.X.explain(), /stored size factors/);
    const hv = a.var.getChild("highly_variable");
    const sub = a.subset({ var: Array.from({ length: a.nVars }, (_, j) => Boolean(hv?.get(j))) });
    const s0 = sub.X.chain.steps[0];
    assert.ok(s0.op === "normalize" && s0.sizeFactors);
    a.close();
  });

  it("give the same PCA whether a pass reads whole rows or only the selected genes", async () => {
    const genes = Array.from({ length: 400 }, (_, j) => j * 3 + 1);
    const pcaOf = async (storeTotalsFirst: boolean): Promise<Float32Array> => {
      const a = await read(path.join(PP, "synth_3k.h5ad"));
      await pp.normalizeTotal(a, { targetSum: 1e4 });
      pp.log1p(a);
      if (storeTotalsFirst) await a.X.planPass({ moments: [{ name: "m" }] }, [], "totals");
      const sub = a.subset({ var: genes });
      const stored = sub.X.chain.steps[0];
      assert.equal(stored.op === "normalize" && Boolean(stored.sizeFactors), storeTotalsFirst);
      await pp.pca(sub, { nComps: 10 });
      const x = (await sub.obsm.get("X_pca")) as { data: Float32Array };
      a.close();
      return x.data;
    };
    const wholeRows = await pcaOf(false);
    const selected = await pcaOf(true);
    close(selected, wholeRows, "X_pca", 1e-6, 1e-6);
  });
});

describe("views in another row order", () => {
  it("give the file-order results, permuted: QC, HVG, scale and PCA over a shuffled view (passes run in file order)", async () => {
    // Small blocks, so that the shuffled rows span many blocks of the pass.
    const saved = process.env.ANNDATA_OOM_BLOCK_BYTES;
    process.env.ANNDATA_OOM_BLOCK_BYTES = "65536";
    try {
      const run = async (order: number[] | null) => {
        const a = await read(path.join(PP, "synth_3k.h5ad"));
        const v = order ? a.subset({ obs: order }) : a;
        const sums = (await v.X.sum(1)) as Float64Array;
        const variances = (await v.X.var(0)) as Float64Array;
        await pp.calculateQcMetrics(v, { percentTop: [50] });
        await pp.normalizeTotal(v, { targetSum: 1e4 });
        pp.log1p(v);
        await pp.highlyVariableGenes(v, { nTopGenes: 300 });
        const hv = bools(v.var.getChild("highly_variable"));
        const sub = v.subset({ var: hv });
        pp.scale(sub, { maxValue: 10 });
        await pp.pca(sub, { nComps: 10 });
        const out = {
          total: vec(v.obs.getChild("total_counts")),
          top50: vec(v.obs.getChild("pct_counts_in_top_50_genes")),
          dispersions: vec(v.var.getChild("dispersions_norm")),
          hv,
          xpca: ((await sub.obsm.get("X_pca")) as { data: Float32Array }).data,
          sums,
          variances,
        };
        a.close();
        return out;
      };
      const n = 3000;
      const order = Array.from({ length: n }, (_, i) => i);
      let seed = 7;
      for (let i = n - 1; i > 0; i--) {
        seed = (seed * 1103515245 + 12345) % 2 ** 31;
        const j = seed % (i + 1);
        [order[i], order[j]] = [order[j], order[i]];
      }
      const ref = await run(null);
      const shuffled = await run(order);
      const permuted = (x: ArrayLike<number>) => order.map((i) => x[i]);
      close(shuffled.total, permuted(ref.total), "total_counts", 0);
      close(shuffled.top50, permuted(ref.top50), "pct_counts_in_top_50_genes", 1e-12);
      close(shuffled.dispersions, ref.dispersions, "dispersions_norm", 1e-9);
      assert.deepEqual(shuffled.hv, ref.hv, "highly_variable");
      close(shuffled.sums, permuted(ref.sums), "X.sum(1)", 0);
      close(shuffled.variances, ref.variances, "X.var(0)", 1e-12);
      const k = 10;
      const rows = (x: Float32Array) => order.flatMap((i) => Array.from(x.subarray(i * k, (i + 1) * k)));
      close(shuffled.xpca, rows(ref.xpca), "X_pca", 1e-4, 1e-4);
    } finally {
      if (saved === undefined) delete process.env.ANNDATA_OOM_BLOCK_BYTES;
      else process.env.ANNDATA_OOM_BLOCK_BYTES = saved;
    }
  });
});

describe("writing results", () => {
  it("write() saves QC columns, HVG flags, X_pca, PCs, uns, X and layers through their chains; refuses to drop the rest", async () => {
    let a = await read(path.join(PP, "synth_3k.h5ad"));
    pp.markGenes(a, "mt", /^MT-/);
    await pp.calculateQcMetrics(a, { qcVars: ["mt"] });
    a = await pp.filterCells(a, { minGenes: 100 });
    a.layers.set("counts", a.X);
    await pp.normalizeTotal(a, { targetSum: 1e4 });
    pp.log1p(a);
    await pp.highlyVariableGenes(a, { nTopGenes: 300 });
    await pp.pca(a, { nComps: 20 });
    const out = path.join(os.tmpdir(), `aoom-pp-write-${process.pid}.h5ad`);
    await a.write(out);
    const back = await read(out);
    close(vec(back.obs.getChild("total_counts")), vec(a.obs.getChild("total_counts")), "written total_counts", 0);
    assert.deepEqual(bools(back.var.getChild("highly_variable")), bools(a.var.getChild("highly_variable")));
    const xp = (await back.obsm.get("X_pca")) as { data: Float32Array; shape: number[] };
    const mine = (await a.obsm.get("X_pca")) as { data: Float32Array; shape: number[] };
    assert.deepEqual(xp.shape, mine.shape);
    close(xp.data, mine.data, "written X_pca", 0);
    close(
      (back.uns.pca as { variance_ratio: Float64Array }).variance_ratio,
      (a.uns.pca as { variance_ratio: Float64Array }).variance_ratio,
      "uns.pca",
      0,
    );
    assert.equal((back.uns.hvg as { flavor: string }).flavor, "seurat");
    // X is written through its chain (log-normalized, float32), layers.counts as the counts
    assert.equal(back.X.dtype, "float32");
    close(await dense(back.X), Float64Array.from(await dense(a.X), Math.fround), "written X (log data)", 1e-6, 1e-7);
    close(await dense(back.layers.get("counts")), await dense(a.layers.get("counts")), "written layers.counts", 0);
    back.close();
    // and anndata reads it, with the same results
    const { execFileSync } = await import("node:child_process");
    const py = `import anndata, numpy as np, sys\nb = anndata.read_h5ad(sys.argv[1])\nassert b.obsm['X_pca'].shape == (${mine.shape[0]}, 20)\nassert b.var['highly_variable'].sum() >= 300\nassert 'pca' in b.uns and len(b.uns['pca']['variance_ratio']) == 20\nassert b.obs['pct_counts_mt'].dtype.kind == 'f'\nprint('ok')`;
    const res = execFileSync(PYTHON, ["-c", py, out], { encoding: "utf8" });
    assert.match(res, /ok/);
    // a scaled X is written dense float64 (scanpy's layout after scale)
    const hv = a.subset({ var: bools(a.var.getChild("highly_variable")) });
    await pp.scale(hv, { maxValue: 10 });
    const out2 = path.join(os.tmpdir(), `aoom-pp-write2-${process.pid}.h5ad`);
    await hv.write(out2);
    const back2 = await read(out2);
    assert.equal(back2.X.format, "dense");
    assert.equal(back2.X.dtype, "float64");
    close(await dense(back2.X), await dense(hv.X), "written scaled X", 1e-5, 1e-6);
    back2.close();
    fs.rmSync(out2);
    // a raw snapshot is written as raw/X (through its chain) and raw/var
    a.setRaw();
    const v = a.subset({ obs: [3, 1, 2] });
    const out3 = path.join(os.tmpdir(), `aoom-pp-write3-${process.pid}.h5ad`);
    await v.write(out3);
    const back3 = await read(out3);
    assert.deepEqual(back3.raw?.shape, [3, a.nVars]);
    close(
      await dense(back3.raw?.X as BackedMatrix),
      Float64Array.from(await dense(v.raw?.X as BackedMatrix), Math.fround),
      "written raw.X",
      1e-6,
      1e-7,
    );
    assert.deepEqual(vec(back3.raw?.var.getChild("means")), vec(v.raw?.var.getChild("means")));
    back3.close();
    const py3 = `import anndata, sys\nb = anndata.read_h5ad(sys.argv[1])\nassert b.raw is not None and b.raw.shape == (3, ${a.nVars})\nprint('ok')`;
    assert.match(execFileSync(PYTHON, ["-c", py3, out3], { encoding: "utf8" }), /ok/);
    for (const f of [out, out3]) fs.rmSync(f);
    a.close();
  });
});

describe("preprocessing errors and cancellation", () => {
  it("rejects bad parameters with typed errors and cancels a pass", async () => {
    const a = await read(path.join(PP, "synth_3k.h5ad"));
    await assert.rejects(pp.calculateQcMetrics(a, { qcVars: ["nope"] }), InvalidArgumentError);
    await assert.rejects(pp.calculateQcMetrics(a, { percentTop: [10_000] }), InvalidArgumentError);
    await assert.rejects(pp.highlyVariableGenes(a, { flavor: "seurat_v3" }), InvalidArgumentError);
    await assert.rejects(pp.pca(a, { nComps: 5000 }), InvalidArgumentError);
    const csc = await read(path.join(FIXTURES, "csc_f64_idx64.h5ad"));
    await assert.rejects(pp.calculateQcMetrics(csc, { percentTop: null }), UnsupportedEncodingError);
    csc.close();
    const ac = new AbortController();
    ac.abort();
    await assert.rejects(pp.calculateQcMetrics(a, { signal: ac.signal }), CancelledError);
    assert.equal(a.obs.getChild("total_counts"), null, "a cancelled step leaves obs unchanged");
    await pp.calculateQcMetrics(a);
    assert.ok(a.obs.getChild("total_counts"));
    a.close();
  });
});
