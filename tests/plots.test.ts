/**
 * pl.* against scanpy 1.11.5 / numpy / matplotlib
 * (tests/python/make_plot_oracle.py writes the input and the reference
 * numbers; its docstring describes them), plus the plot objects' bundle,
 * SVG escaping, PNG validity, save() and typed errors.
 */
import * as assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { inflateSync } from "node:zlib";
import {
  type AnnDataOOM,
  CancelledError,
  FileAccessError,
  InvalidArgumentError,
  pl,
  pp,
  read,
  setDefaultProgress,
  slice,
  tl,
} from "../src/engine";
import { dotArea } from "../src/engine/pl/dotplot";
import { drawOrder } from "../src/engine/pl/embedding";
import { gaussianKde, scottBandwidth } from "../src/engine/pl/kde";
import { PLOT_MIME } from "../src/engine/pl/plot";
import { crc32 } from "../src/engine/pl/png";
import { Raster } from "../src/engine/pl/raster";
import { Svg } from "../src/engine/pl/svg";
import { FIXTURES, PYTHON, runPython } from "./helpers";

const P = path.join(FIXTURES, "plots");
const oracle = JSON.parse(fs.readFileSync(path.join(P, "plot_oracle.json"), "utf8"));
const HOSTILE = "<img src=x onerror=alert(1)>";
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "aoom-plots-"));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

let adata: AnnDataOOM;
before(async () => {
  adata = await read(path.join(P, "plots.h5ad"));
});
after(() => adata?.close());

function close(actual: number[][], expected: number[][], tol: number, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: rows`);
  for (let r = 0; r < expected.length; r++) {
    assert.equal(actual[r].length, expected[r].length, `${what}: columns of row ${r}`);
    for (let c = 0; c < expected[r].length; c++) {
      const a = actual[r][c];
      const e = expected[r][c];
      assert.ok(Math.abs(a - e) <= tol * Math.max(1, Math.abs(e)), `${what}[${r}][${c}]: ${a} vs scanpy ${e}`);
    }
  }
}

/** A PNG checked chunk by chunk (CRC of each), IHDR read, IDAT inflated and unfiltered (filter 0 only, which we write). */
export function decodePng(buf: Buffer): { width: number; height: number; rgba: Uint8Array } {
  assert.deepEqual([...buf.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], "PNG signature");
  let off = 8;
  let width = 0;
  let height = 0;
  const idat: Buffer[] = [];
  const types: string[] = [];
  while (off < buf.length) {
    const len = buf.readUInt32BE(off);
    const type = buf.toString("ascii", off + 4, off + 8);
    const data = buf.subarray(off + 8, off + 8 + len);
    const crc = buf.readUInt32BE(off + 8 + len);
    assert.equal(crc, crc32(buf.subarray(off + 4, off + 8 + len)), `CRC of ${type}`);
    types.push(type);
    if (type === "IHDR") {
      width = data.readUInt32BE(0);
      height = data.readUInt32BE(4);
      assert.deepEqual([...data.subarray(8)], [8, 6, 0, 0, 0], "8-bit RGBA, no interlace");
    } else if (type === "IDAT") idat.push(Buffer.from(data));
    off += 12 + len;
  }
  assert.deepEqual([types[0], types[types.length - 1]], ["IHDR", "IEND"]);
  const raw = inflateSync(Buffer.concat(idat));
  assert.equal(raw.length, (width * 4 + 1) * height);
  const rgba = new Uint8Array(width * height * 4);
  for (let y = 0; y < height; y++) {
    assert.equal(raw[y * (width * 4 + 1)], 0, "filter type 0");
    rgba.set(raw.subarray(y * (width * 4 + 1) + 1, (y + 1) * (width * 4 + 1)), y * width * 4);
  }
  return { width, height, rgba };
}

/** Parse an SVG with Python's XML parser: every element tag, attribute name and text. */
function parseSvg(svg: string): { tags: string[]; attrs: string[]; texts: string[] } {
  const file = path.join(tmp, `p${Math.random().toString(36).slice(2)}.svg`);
  fs.writeFileSync(file, svg);
  const script = [
    "import json, sys, xml.etree.ElementTree as ET",
    "root = ET.parse(sys.argv[1]).getroot()",
    "tags, attrs, texts = [], [], []",
    "for el in root.iter():",
    "    tags.append(el.tag.split('}')[-1]); attrs.extend(k.split('}')[-1] for k in el.attrib)",
    "    texts.append(el.text or '')",
    "print(json.dumps({'tags': tags, 'attrs': attrs, 'texts': texts}))",
  ].join("\n");
  return JSON.parse(execFileSync(PYTHON, ["-c", script, file], { encoding: "utf8" }));
}

describe("pl.dotplot vs scanpy DotPlot (dot_color_df, dot_size_df)", () => {
  const opts: Record<string, pl.DotplotOptions> = {
    default: {},
    var: { standardScale: "var" },
    group: { standardScale: "group" },
    mean_only_expressed: { meanOnlyExpressed: true },
    cutoff_0_5: { expressionCutoff: 0.5 },
  };
  for (const [variant, o] of Object.entries(opts)) {
    it(`${variant}`, async () => {
      const ref = oracle.dotplot[variant];
      const p = await pl.dotplot(adata, ref.var_names, "leiden", o);
      assert.deepEqual(p.data.groups, ref.groups);
      assert.deepEqual(p.data.varNames, ref.var_names);
      close(p.data.dotColor, ref.dot_color, 1e-6, "dot_color");
      close(p.data.dotSize, ref.dot_size, 1e-12, "dot_size");
    });
  }
  it("genes grouped in a record (var group labels), standard_scale var, groupby cell_type", async () => {
    const ref = oracle.dotplot.dict;
    const p = await pl.dotplot(adata, ref.var_names, ref.groupby, { standardScale: "var" });
    assert.deepEqual(p.data.groups, ref.groups);
    close(p.data.dotColor, ref.dot_color, 1e-6, "dot_color");
    close(p.data.dotSize, ref.dot_size, 1e-12, "dot_size");
    assert.deepEqual(p.data.varGroups, [
      { label: "A", start: 0, end: 1 },
      { label: "B", start: 2, end: 2 },
    ]);
    assert.match(p.svg, />A<\/text>/);
  });
  it("raw: scanpy's default use_raw reads adata.raw (a gene only in raw too); useRaw false reads X", async () => {
    const ref = oracle.dotplot.raw;
    const b = await read(path.join(P, "plots_raw.h5ad"));
    try {
      const p = await pl.dotplot(b, ref.var_names, "leiden");
      close(p.data.dotColor, ref.dot_color, 1e-6, "dot_color");
      close(p.data.dotSize, ref.dot_size, 1e-12, "dot_size");
      const x = await pl.dotplot(b, ["G0"], "leiden", { useRaw: false });
      close(
        x.data.dotColor,
        oracle.dotplot.default.dot_color.map((r: number[]) => [r[0]]),
        1e-6,
        "X dot_color",
      );
      await assert.rejects(() => pl.dotplot(b, ["G25"], "leiden", { useRaw: false }), /"G25" is neither an obs column nor a var name/);
      await assert.rejects(() => pl.dotplot(adata, ["G0"], "leiden", { useRaw: true }), InvalidArgumentError);
    } finally {
      b.close();
    }
  });
  it("a lazily transformed X (normalize_total → log1p): genes through the chain in one pass, as scanpy", async () => {
    const ref = oracle.dotplot.lognorm;
    const b = await read(path.join(P, "plots.h5ad"));
    try {
      await pp.normalizeTotal(b, { targetSum: 1e4 });
      pp.log1p(b);
      assert.ok(b.X.isTransformed);
      const seen: string[] = [];
      const p = await pl.dotplot(b, ref.var_names, "leiden", { onProgress: (q) => seen.push(`${q.label}|${q.state}`) });
      close(p.data.dotColor, ref.dot_color, 1e-5, "dot_color");
      close(p.data.dotSize, ref.dot_size, 1e-12, "dot_size");
      assert.ok(seen.length > 0);
      assert.equal(new Set(seen.map((x) => x.split("|")[0])).size, 1, `one task: ${[...new Set(seen)]}`);
      assert.ok(seen[seen.length - 1].endsWith("|done"));
      // A single gene (violin) takes the same path.
      const v = await pl.violin(b, "G3", { groupby: "leiden" });
      const col = ref.var_names.indexOf("G3");
      v.data.panels[0].groups.forEach((g, r) => {
        const mean = g.values.reduce((x, y) => x + y, 0) / g.n;
        assert.ok(Math.abs(mean - ref.dot_color[r][col]) < 1e-5, `violin mean of ${g.name}`);
      });
    } finally {
      b.close();
    }
  });
  it("a view (cell subset): only its cells and observed groups, as scanpy on the subset", async () => {
    const ref = oracle.dotplot.view;
    const v = adata.subset({ obs: ref.mask as boolean[] });
    const p = await pl.dotplot(v, ref.var_names, "leiden", { standardScale: "var" });
    assert.deepEqual(p.data.groups, ref.groups);
    assert.ok(!p.data.groups.includes("0"));
    close(p.data.dotColor, ref.dot_color, 1e-6, "dot_color");
    close(p.data.dotSize, ref.dot_size, 1e-12, "dot_size");
    const e = await pl.embedding(v, { color: "leiden" });
    assert.equal(e.data.nObs, (ref.mask as boolean[]).filter(Boolean).length);
    // As anndata's view, which scanpy plots: the view has no category "0" (and,
    // with no uns colors, scanpy's default colors for its own categories).
    assert.deepEqual(e.data.panels[0].categories, ref.groups);
    assert.ok(
      e.data.panels[0].counts?.every((c) => c > 0),
      "every category has cells",
    );
    assert.deepEqual(e.data.panels[0].colors, pl.defaultPalette(ref.groups.length).slice(0, ref.groups.length));
  });
  for (const [variant, o] of [
    ["default", {}],
    ["clipped", { dotMin: 0.1, dotMax: 0.5, standardScale: "var" }],
  ] as [string, pl.DotplotOptions][]) {
    it(`markers as DotPlot.make_figure draws them (${variant}): areas and Reds colours`, async () => {
      const ref = oracle.dot_markers[variant];
      const p = await pl.dotplot(adata, ref.var_names, "leiden", o);
      const { dotSize, dotColor, dotMin, dotMax, vmin, vmax } = p.data;
      const C = ref.var_names.length;
      const scale = new pl.ColorScale("Reds", vmin, vmax);
      dotSize.forEach((row, r) =>
        row.forEach((f, c) => {
          const k = r * C + c;
          assert.ok(Math.abs(dotArea(f, dotMin, dotMax) - ref.sizes[k]) <= 1e-9 * Math.max(1, ref.sizes[k]), `area ${r},${c}`);
          const rgb = scale.rgb01(dotColor[r][c]) as number[];
          for (let ch = 0; ch < 3; ch++) assert.ok(Math.abs(rgb[ch] - ref.facecolors[k][ch]) < 1e-3, `colour ${r},${c}`);
        }),
      );
    });
  }
  it("hover regions carry the matrix values; spec is small", async () => {
    const p = await pl.dotplot(adata, ["G0", "G3"], "leiden");
    const spec = p.spec();
    assert.equal(spec.regions.length, 6 * 2);
    assert.match(spec.regions[0].label, /^0 · G0: mean /);
    assert.deepEqual(spec.summary.dotColor, p.data.dotColor);
  });
});

describe("pl.qcHistograms vs numpy.histogram", () => {
  for (const key of ["total_counts", "n_genes_by_counts", "pct_counts_mt", "const"]) {
    for (const bins of [50, 7]) {
      it(`${key}, ${bins} bins`, async () => {
        const ref = oracle.histograms[`${key}|${bins}`];
        const p = await pl.qcHistograms(adata, key, { bins });
        const h = p.data.histograms[key];
        assert.deepEqual(h.counts, ref.counts, "counts");
        assert.equal(h.edges.length, bins + 1);
        // float32 columns: numpy computes float32 edges; ours are the same float32 values.
        for (let i = 0; i < ref.edges.length; i++) assert.equal(h.edges[i], ref.edges[i], `edge ${i}`);
      });
    }
  }
  it("default keys are the QC columns that exist; a grid of three", async () => {
    const p = await pl.qcHistograms(adata);
    assert.deepEqual(p.data.keys, ["total_counts", "n_genes_by_counts", "pct_counts_mt"]);
    assert.equal(p.spec().regions.length, 150);
    const logged = await pl.qcHistograms(adata, ["total_counts"], { log: true, bins: 10 });
    assert.deepEqual(logged.data.histograms.total_counts.counts.length, 10);
  });
  it("NaN values are counted apart, as numpy cannot bin them", () => {
    const h = pl.histogram(Float64Array.of(1, Number.NaN, 2, 3, 3), 2);
    assert.deepEqual(h.counts, [1, 3]);
    assert.equal(h.nMissing, 1);
  });
});

describe("pl.violin vs sc.get.obs_df", () => {
  for (const key of ["total_counts", "G5", "score"]) {
    it(`${key} by leiden: per-group values`, async () => {
      const ref = oracle.violin[key];
      const p = await pl.violin(adata, key, { groupby: "leiden" });
      const groups = p.data.panels[0].groups;
      assert.deepEqual(
        groups.map((g) => g.name),
        Object.keys(ref.groups),
      );
      for (const g of groups) {
        const e = ref.groups[g.name] as number[];
        assert.equal(g.n, e.length, `${g.name}: n`);
        for (let i = 0; i < e.length; i++) assert.ok(Math.abs(g.values[i] - e[i]) <= 1e-6 * Math.max(1, Math.abs(e[i])), `${g.name}[${i}]`);
        // The KDE drawn is seaborn's: same grid and density (1e-9 relative).
        const kde = gaussianKde(g.values, { cut: 0, gridsize: 100 });
        const ek = ref.kde[g.name] as { support: number[]; density: number[] };
        assert.ok(kde);
        assert.equal(kde.support.length, ek.support.length);
        const peak = Math.max(...ek.density);
        for (let i = 0; i < ek.support.length; i++) {
          assert.ok(Math.abs(kde.support[i] - ek.support[i]) <= 1e-9 * Math.max(1, Math.abs(ek.support[i])), `${g.name} support[${i}]`);
          assert.ok(
            Math.abs(kde.density[i] - ek.density[i]) <= 1e-9 * peak,
            `${g.name} density[${i}]: ${kde.density[i]} vs ${ek.density[i]}`,
          );
        }
        const sorted = [...e].sort((a, b) => a - b);
        assert.equal(g.min, sorted[0]);
        assert.equal(g.max, sorted[sorted.length - 1]);
      }
    });
  }
  it("several keys without groupby: one violin per key; KDE = Scott's rule", async () => {
    const p = await pl.violin(adata, ["total_counts", "n_genes_by_counts"], { stripplot: false });
    assert.deepEqual(
      p.data.panels[0].groups.map((g) => g.name),
      ["total_counts", "n_genes_by_counts"],
    );
    assert.equal((p.svg.match(/class="aoom-violin"/g) ?? []).length, 2);
    assert.ok(!p.svg.includes("aoom-points"), "no strip raster when stripplot is false");
    // scipy's gaussian_kde("scott") on [0, 1, 2, 3]: factor 4^(-1/5), sd (ddof 1) = 1.29099…
    assert.ok(Math.abs(scottBandwidth([0, 1, 2, 3]) - 4 ** -0.2 * Math.sqrt(5 / 3)) < 1e-12);
    const kde = gaussianKde([0, 1, 2, 3], { gridsize: 5 });
    assert.ok(kde);
    assert.deepEqual(Array.from(kde.support), [0, 0.75, 1.5, 2.25, 3]);
    // Density at 1.5, from the formula.
    const bw = kde.bandwidth;
    const d = [0, 1, 2, 3].reduce((a, x) => a + Math.exp(-0.5 * ((1.5 - x) / bw) ** 2), 0) / (4 * bw * Math.sqrt(2 * Math.PI));
    assert.ok(Math.abs(kde.density[2] - d) < 1e-12);
  });
  it("log y axis: decade ticks; large groups use the binned KDE", async () => {
    const p = await pl.violin(adata, "total_counts", { groupby: "leiden", log: true });
    assert.match(p.svg, />1e1<\/text>/);
    // Above 20,000 values the sample is binned first: within 0.1 % of the peak of the exact sum.
    const x = Float64Array.from({ length: 30000 }, (_, i) => Math.sin(i) * 3 + (i % 7));
    const kde = gaussianKde(x);
    assert.ok(kde);
    const bw = kde.bandwidth;
    assert.equal(bw, scottBandwidth(x));
    const exact = Array.from(
      kde.support,
      (s) => x.reduce((acc, v) => acc + Math.exp(-0.5 * ((s - v) / bw) ** 2), 0) / (x.length * bw * Math.sqrt(2 * Math.PI)),
    );
    const peak = Math.max(...exact);
    for (let i = 0; i < exact.length; i++) assert.ok(Math.abs(kde.density[i] - exact[i]) < 1e-3 * peak, `grid ${i}`);
  });
});

describe("pl.embedding colors vs scanpy", () => {
  for (const key of ["leiden", "cell_type", "short", "batch", "many", "with_na", "is_doublet", "name", "named"]) {
    it(`category colors of ${key} equal uns[${key}_colors] after sc.pl.umap`, async () => {
      const p = await pl.embedding(adata, { basis: "umap", color: key });
      const panel = p.data.panels[0];
      assert.equal(panel.kind, "categorical");
      assert.deepEqual(panel.colors, oracle.colors[key]);
    });
  }
  it("continuous: viridis with vmin/vmax = min/max equals matplotlib (1e-3)", async () => {
    const p = await pl.embedding(adata, { basis: "umap", color: "score" });
    const panel = p.data.panels[0];
    assert.equal(panel.kind, "continuous");
    assert.equal(panel.nMissing, 8);
    for (const ref of oracle.viridis) {
      assert.ok(Math.abs((panel.vmin ?? 0) - ref.vmin) < 1e-12 && Math.abs((panel.vmax ?? 0) - ref.vmax) < 1e-12);
      const rgb = new pl.ColorScale("viridis", panel.vmin ?? 0, panel.vmax ?? 1).rgb01(ref.value);
      assert.ok(rgb);
      for (let c = 0; c < 3; c++)
        assert.ok(Math.abs(rgb[c] - ref.rgb[c]) < 1e-3, `value ${ref.value} channel ${c}: ${rgb[c]} vs ${ref.rgb[c]}`);
    }
  });
  it("draw order: missing first, then data order (categories) / ascending values (continuous)", () => {
    const cat = drawOrder({ kind: "categorical", codes: Int32Array.of(0, -1, 1, -1), categories: ["a", "b"] }, true, 4);
    assert.deepEqual([...cat], [1, 3, 0, 2]);
    // No color: every cell, in data order (a plain pl.embedding(adata) drew none).
    assert.deepEqual([...drawOrder(null, true, 3)], [0, 1, 2]);
    const cont = drawOrder({ kind: "continuous", values: Float64Array.of(2, Number.NaN, 1, 2, 0), dtype: "float64" }, true, 5);
    // numpy argsort(-v, stable)[::-1]: NaN first, then ascending, ties in reverse data order.
    assert.deepEqual([...cont], [1, 4, 2, 3, 0]);
  });
  it("a column with 900 categories: grey (> 102, as scanpy), legend capped with '… and N more', small spec", async () => {
    const b = await read(path.join(P, "plots.h5ad"));
    try {
      b.setObs(
        "uniq",
        Array.from({ length: b.nObs }, (_, i) => `u${String(i).padStart(4, "0")}`),
      );
      const p = await pl.embedding(b, { color: ["uniq", "many"] });
      const panel = p.data.panels[0];
      assert.equal(panel.categories?.length, 900);
      assert.ok(panel.colors?.every((c) => c === "#808080"));
      assert.match(p.svg, /\.\.\. and 750 more/);
      assert.ok(p.height > (150 * 16) / 3, "the figure grows with the legend");
      const spec = p.spec();
      assert.ok(JSON.stringify({ ...spec, svg: "" }).length < 40_000, "spec stays small");
      assert.equal((spec.summary.panels as { categories: string[] }[])[0].categories.length, 150);
      assert.equal(p.data.panels[1].categories?.length, 40);
      decodePng(p.png);
    } finally {
      b.close();
    }
  });
  it("several panels, pca basis, a gene, legend on data, no color", async () => {
    const p = await pl.embedding(adata, { basis: "pca", color: ["leiden", "G3", null as unknown as string], legendLoc: "on data" });
    assert.equal(p.data.basis, "X_pca");
    assert.deepEqual(
      p.data.panels.map((x) => x.kind),
      ["categorical", "continuous", "none"],
    );
    assert.match(p.svg, />PC1<\/text>/);
    assert.equal((p.svg.match(/class="aoom-points"/g) ?? []).length, 3);
    const plain = await pl.embedding(adata);
    assert.equal(plain.data.panels[0].kind, "none");
  });
});

describe("pl.qcScatter (QC view: two obs columns or genes)", () => {
  it("axes are the two keys (data range), colors as pl.embedding, ticked axes", async () => {
    const p = await pl.qcScatter(adata, "total_counts", "G3", { color: ["pct_counts_mt", "leiden"] });
    assert.equal(p.kind, "qcScatter");
    assert.deepEqual([p.data.x, p.data.y, p.data.basis], ["total_counts", "G3", null]);
    const tc = Array.from(adata.obs.getChild("total_counts")?.toArray() as Float32Array);
    assert.deepEqual(p.data.extent.x, [Math.min(...tc), Math.max(...tc)]);
    assert.equal(p.data.panels[1].kind, "categorical");
    assert.deepEqual(p.data.panels[1].colors, oracle.colors.leiden);
    assert.equal(p.data.panels[0].colorMap, "viridis");
    assert.match(p.svg, />total_counts<\/text>/);
    assert.match(p.toString(), /^<scatter total_counts × G3 of 900 cells colored by pct_counts_mt, leiden>$/);
    assert.ok(p.png.length > 1000);
    await assert.rejects(() => pl.qcScatter(adata, "leiden", "G3"), /"leiden" is categorical/);
    await assert.rejects(() => pl.qcScatter(adata, "total_counts", "nope"), /"nope"/);
  });
});

describe("pl plot objects", () => {
  it("the bundle has SVG, PNG, text and plot+json; the spec is small", async () => {
    const p = await pl.embedding(adata, { color: "leiden" });
    const b = p._repr_mimebundle_();
    for (const k of ["image/svg+xml", "image/png", "text/plain", PLOT_MIME]) assert.ok(k in b, k);
    assert.match(b["text/plain"] as string, /^<embedding X_umap of 900 cells colored by leiden>$/);
    const spec = b[PLOT_MIME] as pl.PlotSpec;
    assert.equal(spec.type, "AnnDataOOMPlot");
    assert.equal(spec.kind, "embedding");
    assert.equal(spec.svg, p.svg);
    assert.ok(JSON.stringify({ ...spec, svg: "" }).length < 10_000, "no per-cell data in the spec");
    for (const q of [
      await pl.dotplot(adata, ["G0"], "leiden"),
      await pl.violin(adata, "G0", { groupby: "leiden" }),
      await pl.qcHistograms(adata),
    ]) {
      const qb = q._repr_mimebundle_();
      for (const k of ["image/svg+xml", "image/png", "text/plain", PLOT_MIME]) assert.ok(k in qb, `${q.kind}: ${k}`);
    }
  });

  it("hostile gene / category names are escaped: the parsed SVG has no element or attribute from them", async () => {
    const plots = [
      await pl.dotplot(adata, { [HOSTILE]: [HOSTILE, "G1"] }, "with_na", { title: HOSTILE }),
      await pl.embedding(adata, { color: ["with_na", HOSTILE], title: [HOSTILE, HOSTILE] }),
      await pl.embedding(adata, { color: "with_na", legendLoc: "on data" }),
      await pl.violin(adata, HOSTILE, { groupby: "with_na", title: HOSTILE }),
      await pl.qcHistograms(adata, [HOSTILE]),
    ];
    for (const p of plots) {
      const { tags, attrs, texts } = parseSvg(p.svg);
      assert.ok(!tags.includes("img") && !tags.includes("script"), `${p.kind}: tags ${[...new Set(tags)]}`);
      assert.ok(!attrs.some((a) => a.toLowerCase().startsWith("on") || a === "src"), `${p.kind}: attrs ${[...new Set(attrs)]}`);
      assert.ok(
        texts.some((t) => t === HOSTILE || t === "<script>alert(1)</script>" || t.startsWith(`${HOSTILE} `)),
        `${p.kind}: the name is shown as text`,
      );
    }
  });

  it("the PNG decodes: signature, IHDR, CRCs, known pixels (figure and raster)", async () => {
    const p = await pl.embedding(adata, { color: "leiden", width: 100, height: 80, pixelRatio: 1 });
    const img = decodePng(p.png);
    assert.deepEqual([img.width, img.height], [Math.round(p.width * 2), Math.round(p.height * 2)], "2 px per SVG unit");
    assert.deepEqual([...img.rgba.subarray(0, 4)], [255, 255, 255, 255], "white corner");
    // The whole plot is drawn: the dotplot's first dot, at its hover region's centre, has its Reds colour.
    const dp = await pl.dotplot(adata, ["G0", "G3"], "leiden");
    const dimg = decodePng(dp.png);
    const r0 = dp.spec().regions[0];
    const cx = Math.round((r0.x + r0.w / 2) * 2);
    const cy = Math.round((r0.y + r0.h / 2) * 2);
    const px = [...dimg.rgba.subarray((cy * dimg.width + cx) * 4, (cy * dimg.width + cx) * 4 + 3)];
    const want = new pl.ColorScale("Reds", dp.data.vmin, dp.data.vmax).hex(dp.data.dotColor[0][0]);
    const rgb = [1, 3, 5].map((i) => Number.parseInt(want.slice(i, i + 2), 16));
    assert.ok(
      px.every((v, i) => Math.abs(v - rgb[i]) <= 2),
      `dot pixel ${px} vs ${want}`,
    );
    // Text is drawn: the title row of a titled histogram has dark pixels, an empty margin has none.
    const h = await pl.qcHistograms(adata, ["total_counts"], { bins: 5 });
    const himg = decodePng(h.png);
    const dark = (y0: number, y1: number) => {
      let n = 0;
      for (let y = y0; y < y1; y++) for (let x = 0; x < himg.width; x++) if (himg.rgba[(y * himg.width + x) * 4] < 100) n++;
      return n;
    };
    assert.ok(dark(0, 36) > 50, "title glyphs");
    assert.equal(dark(0, 6), 0, "blank top margin");
    // A raster drawn here: one red disc of radius 3 at (5.5, 5.5) on 12 × 10.
    const r = new Raster(12, 10);
    r.disc(5.5, 5.5, 3, 1, 0, 0);
    const d = decodePng(r.png());
    assert.deepEqual([d.width, d.height], [12, 10]);
    const at = (x: number, y: number) => [...d.rgba.subarray((y * 12 + x) * 4, (y * 12 + x) * 4 + 4)];
    assert.deepEqual(at(5, 5), [255, 0, 0, 255]);
    assert.deepEqual(at(11, 0), [0, 0, 0, 0]);
    // The embedding's points: the panel raster is inside the SVG as a data: URI PNG.
    const m = /href="data:image\/png;base64,([^"]+)" class="aoom-points"/.exec(p.svg);
    assert.ok(m);
    const panel = decodePng(Buffer.from(m[1], "base64"));
    assert.deepEqual([panel.width, panel.height], [100, 80]);
    let painted = 0;
    for (let i = 3; i < panel.rgba.length; i += 4) if (panel.rgba[i] > 0) painted++;
    assert.ok(painted > 500, `points painted: ${painted}`);
  });

  it("show() displays the bundle inside the kernel and is a no-op outside", async () => {
    const p = await pl.qcHistograms(adata, ["total_counts"], { bins: 5 });
    assert.equal(p.show(), false);
    const shown: Record<string, unknown>[] = [];
    const g = globalThis as Record<string, unknown>;
    g.__anndataOomKernel = {
      apiVersion: 1,
      display: (b: Record<string, unknown>) => shown.push(b),
      newDisplayId: () => "d1",
      interruptSignal: () => new AbortController().signal,
    };
    try {
      assert.equal(p.show(), true);
    } finally {
      delete g.__anndataOomKernel;
    }
    assert.equal(shown.length, 1);
    assert.deepEqual(Object.keys(shown[0]).sort(), ["application/vnd.anndata-oom.plot+json", "image/png", "image/svg+xml", "text/plain"]);
  });

  it("Svg builder: text and attribute values escaped, foreign tag/attribute names refused; non-ASCII text renders", async () => {
    const svg = new Svg().text(1, 2, HOSTILE, { class: '"><script>' }).el("rect", { x: 0, "data-n": HOSTILE });
    const doc = svg.document(10, 10);
    const { tags, texts } = parseSvg(doc);
    assert.deepEqual(tags, ["svg", "rect", "text", "rect"]);
    assert.ok(texts.includes(HOSTILE));
    assert.throws(() => new Svg().el("img onerror=x", {}));
    assert.throws(() => new Svg().el("rect", { "onload=alert(1) x": 1 }));
    const p = await pl.embedding(adata, { title: "细胞 Zelle ✓", width: 60, height: 60 });
    assert.equal(decodePng(p.png).width, Math.round(p.width * 2));
  });

  it("crc32 matches the standard check value", () => {
    assert.equal(crc32(Buffer.from("123456789")), 0xcbf43926);
  });

  it("save() writes .svg and .png (the whole plot); other extensions are typed errors", async () => {
    const p = await pl.embedding(adata, { color: "leiden" });
    await p.save(path.join(tmp, "u.svg"));
    await p.save(path.join(tmp, "u.png"));
    assert.equal(fs.readFileSync(path.join(tmp, "u.svg"), "utf8"), p.svg);
    decodePng(fs.readFileSync(path.join(tmp, "u.png")));
    await assert.rejects(p.save(path.join(tmp, "u.pdf")), InvalidArgumentError);
    const d = await pl.dotplot(adata, ["G0"], "leiden");
    await d.save(path.join(tmp, "d.svg"));
    assert.ok(fs.readFileSync(path.join(tmp, "d.svg"), "utf8").startsWith("<svg"));
    await d.save(path.join(tmp, "d.png"));
    assert.deepEqual(fs.readFileSync(path.join(tmp, "d.png")), d.png);
    assert.equal(decodePng(d.png).width, Math.round(d.width * 2));
    // A symlink at the path is replaced, not written through (it pointed at a data file).
    const target = path.join(tmp, "precious.h5ad");
    fs.writeFileSync(target, "data");
    const link = path.join(tmp, "link.svg");
    fs.symlinkSync(target, link);
    await p.save(link);
    assert.equal(fs.readFileSync(target, "utf8"), "data");
    assert.ok(!fs.lstatSync(link).isSymbolicLink() && fs.readFileSync(link, "utf8") === p.svg);
    // A failed save leaves no temporary file behind.
    fs.mkdirSync(path.join(tmp, "adir.svg"));
    fs.writeFileSync(path.join(tmp, "adir.svg", "x"), "");
    await assert.rejects(p.save(path.join(tmp, "adir.svg")), FileAccessError);
    assert.deepEqual(
      fs.readdirSync(tmp).filter((f) => f.endsWith(".tmp")),
      [],
    );
  });

  it("qcHistograms names the column whose range is not finite", async () => {
    const b = await read(path.join(P, "plots.h5ad"));
    try {
      b.setObs(
        "withinf",
        Float64Array.from({ length: b.nObs }, (_, i) => (i === 3 ? Number.POSITIVE_INFINITY : i)),
      );
      await assert.rejects(pl.qcHistograms(b, ["total_counts", "withinf"]), /pl.qcHistograms "withinf": autodetected range/);
    } finally {
      b.close();
    }
  });

  it("color limits matplotlib refuses are typed errors: vmin above vmax, a range that overflows", async () => {
    await assert.rejects(pl.dotplot(adata, ["G0"], "leiden", { vmin: 2, vmax: 1 }), /vmin \(2\) must not be greater than vmax \(1\)/);
    await assert.rejects(pl.embedding(adata, { color: "G0", vmin: -1e308, vmax: 1e308 }), /overflows/);
    await assert.rejects(pl.embedding(adata, { color: "G0", vmin: 1e9 }), /must not be greater than vmax/);
  });

  it("bad input gives typed errors naming the key", async () => {
    const cases: [() => Promise<unknown>, RegExp][] = [
      [() => pl.embedding(adata, { color: "nope" }), /"nope"/],
      [() => pl.embedding(adata, { basis: "tsne" }), /"tsne"/],
      [() => pl.embedding(adata, { components: [1, 3] }), /3/],
      [() => pl.dotplot(adata, ["G0", "NOTAGENE"], "leiden"), /"NOTAGENE"/],
      [() => pl.dotplot(adata, ["G0"], "total_counts"), /groupby "total_counts" must be a categorical/],
      [() => pl.dotplot(adata, ["G0"], "missing_col"), /"missing_col"/],
      [() => pl.dotplot(adata, ["leiden"], "leiden"), /"leiden" is a categorical/],
      [() => pl.violin(adata, "NOTAGENE", { groupby: "leiden" }), /"NOTAGENE"/],
      [() => pl.violin(adata, "G0", { groupby: "score" }), /"score"/],
      [() => pl.qcHistograms(adata, ["nope"]), /"nope"/],
      [() => pl.embedding(adata, { color: "score", colorMap: "nocmap" }), /nocmap/],
    ];
    for (const [f, re] of cases)
      await assert.rejects(f, (e: unknown) => e instanceof InvalidArgumentError && re.test((e as Error).message));
  });

  it("gene reads go through the pass machinery: an aborted signal cancels", async () => {
    const ac = new AbortController();
    ac.abort();
    await assert.rejects(pl.dotplot(adata, ["G0"], "leiden", { signal: ac.signal }), CancelledError);
    let calls = 0;
    await pl.violin(adata, "G1", { groupby: "leiden", onProgress: () => calls++ });
    assert.ok(calls > 0, "progress reported");
  });

  it("several genes are read together (one pass, one progress task) and a cancelled signal stops them", async () => {
    const seen: { label: string; state: string; chunksDone: number; chunksTotal: number }[] = [];
    setDefaultProgress((p) => seen.push(p));
    try {
      await pl.dotplot(adata, ["G0", "G1", "G2"], "leiden");
      assert.ok(seen.length > 0);
      assert.equal(new Set(seen.map((p) => p.label)).size, 1, `labels: ${[...new Set(seen.map((p) => p.label))]}`);
      assert.match(seen[0].label, /3 columns/);
      assert.equal(seen[seen.length - 1].state, "done");
      const ac = new AbortController();
      ac.abort();
      seen.length = 0;
      await assert.rejects(pl.violin(adata, ["G0", "G1", "G2", "G3"], { groupby: "leiden", signal: ac.signal }), CancelledError);
      assert.ok(
        seen.every((q) => q.state !== "done"),
        "nothing was read",
      );
    } finally {
      setDefaultProgress(undefined);
    }
  });
});

/** Painted (non-transparent) pixels of the points raster embedded in a plot's SVG. */
function paintedPixels(svg: string): number {
  const m = /base64,([^"]+)"/.exec(svg);
  assert.ok(m, "the SVG embeds a raster");
  const { rgba } = decodePng(Buffer.from(m[1], "base64"));
  let n = 0;
  for (let i = 3; i < rgba.length; i += 4) if (rgba[i] > 0) n++;
  return n;
}

describe("pl: odd data and misuse (from an adversarial review)", () => {
  let a: AnnDataOOM;
  before(async () => {
    a = await read(path.join(P, "plots.h5ad"));
  });
  after(() => a?.close());

  it("no color draws every cell (scanpy's plain sc.pl.umap(adata)), in light gray", async () => {
    const plain = await pl.embedding(a);
    const colored = await pl.embedding(a, { color: "leiden" });
    assert.ok(paintedPixels(plain.svg) > 0.5 * paintedPixels(colored.svg), "as many points as with a color");
    assert.ok(paintedPixels((await pl.qcScatter(a, "total_counts", "n_genes_by_counts")).svg) > 0);
  });

  it("a range of rounding noise (0.1 + 0.2 vs 0.3) gets finite ticks instead of a runaway loop", async () => {
    a.setObs(
      "noise",
      Float64Array.from({ length: a.nObs }, (_, i) => (i % 2 ? 0.1 + 0.2 : 0.3)),
    );
    a.setObs(
      "huge",
      Float64Array.from({ length: a.nObs }, (_, i) => 1e16 + (i % 2) * 2),
    );
    for (const key of ["noise", "huge"]) {
      await pl.embedding(a, { color: key });
      await pl.violin(a, key);
      await pl.qcHistograms(a, key);
      await pl.qcScatter(a, key, "total_counts");
    }
    await pl.embedding(a, { color: "score", vmin: 1e16, vmax: 1e16 + 2 });
  });

  it("±Infinity is left out of color limits and violins (as matplotlib masks it); scanpy's percentile limits", async () => {
    const score = Float64Array.from(a.obs.getChild("score")?.toArray() as ArrayLike<number>);
    const withInf = Float64Array.from(score);
    withInf[0] = Number.POSITIVE_INFINITY;
    withInf[1] = Number.NEGATIVE_INFINITY;
    a.setObs("score_inf", withInf);
    const finite = Array.from(withInf).filter(Number.isFinite);
    const p = await pl.embedding(a, { color: "score_inf" });
    assert.equal(p.data.panels[0].vmin, Math.min(...finite));
    assert.equal(p.data.panels[0].vmax, Math.max(...finite));
    const v = await pl.violin(a, "score_inf", { groupby: "leiden" });
    const n = v.data.panels[0].groups.reduce((s, g) => s + g.values.length, 0);
    assert.equal(n, finite.length, "every finite value is in a violin");
    // 0..100 evenly: numpy's percentile p of it is p itself.
    a.setObs(
      "ramp",
      Float64Array.from({ length: a.nObs }, (_, i) => (i * 100) / (a.nObs - 1)),
    );
    const q = await pl.embedding(a, { color: "ramp", vmin: "p10", vmax: "p99.5" });
    assert.ok(Math.abs((q.data.panels[0].vmin ?? 0) - 10) < 1e-9 && Math.abs((q.data.panels[0].vmax ?? 0) - 99.5) < 1e-9);
    for (const bad of [Number.NaN, "p101", "10%", Number.POSITIVE_INFINITY])
      await assert.rejects(pl.embedding(a, { color: "ramp", vmin: bad as never }), InvalidArgumentError);
    // an axis from -1e308 to 1e308 (its span overflows a double): ticks at its ends, no NaN
    a.setObs(
      "wide",
      Float64Array.from({ length: a.nObs }, (_, i) => (i === 0 ? -1e308 : i === 1 ? 1e308 : i)),
    );
    const w = await pl.qcScatter(a, "wide", "score");
    assert.doesNotMatch(w.svg, /NaN/);
    assert.match(w.svg, />-1\.0e308</);
  });

  it("options that cannot be drawn are typed errors: huge or negative size, ncols, legendLoc, components, positional arguments", async () => {
    const cases: [() => Promise<unknown>, RegExp][] = [
      [() => pl.embedding(a, { size: 1e7 }), /too large .* use size ≤/],
      [() => pl.embedding(a, { size: -5 }), /size/],
      [() => pl.embedding(a, { ncols: Number.NaN, color: ["leiden", "score"] }), /ncols/],
      [() => pl.qcHistograms(a, ["score"], { ncols: 1.5 }), /ncols/],
      [() => pl.embedding(a, { legendLoc: "upper left" as never }), /legendLoc/],
      [() => pl.embedding(a, { components: [1] as never }), /components/],
      [() => pl.violin(a, "score", "leiden" as never), /options object/],
      [() => pl.embedding(a, "X_pca" as never), /options object/],
      [() => pl.dotplot(a, ["G0"], "leiden", "var" as never), /options object/],
      [() => pl.qcHistograms(a, ["score"], { color: "not-a-color" }), /not a color/],
      [() => pl.violin(a, "score", { size: -1 }), /size/],
      [() => pl.violin(a, "score", { jitter: "x" as never }), /jitter/],
      [() => pl.violin(a, "score", { seed: "abc" as never }), /seed/],
      [() => pl.violin(a, "score", { stripplot: "false" as never }), /stripplot/],
      [() => pl.dotplot(a, ["G0"], "leiden", { expressionCutoff: Number.NaN }), /expressionCutoff/],
      [() => (pl.embedding(a) as Promise<pl.Plot>).then((p) => p.save(5 as never)), /file path/],
    ];
    for (const [f, re] of cases) await assert.rejects(f, (e: Error) => e instanceof InvalidArgumentError && re.test(e.message));
    const p = await pl.embedding(a, { basis: "pca", components: "2,3" });
    assert.deepEqual(p.data.components, [2, 3]);
  });

  it("names of Object.prototype are not colors; a key in both obs and var, or a shared gene name, is refused", async () => {
    a.uns.proto_colors = ["constructor", "toString", "__proto__"];
    a.setObs(
      "proto",
      Array.from({ length: a.nObs }, (_, i) => ["x", "y", "z"][i % 3]),
    );
    const p = await pl.embedding(a, { color: "proto" });
    assert.deepEqual(p.data.panels[0].colors, pl.defaultPalette(3), "invalid stored colors fall back to the defaults, as scanpy");
    await assert.rejects(pl.embedding(a, { color: "leiden", naColor: "toString" }), InvalidArgumentError);
    // RGB(A) float rows, as scanpy's _validate_palette accepts them (matplotlib's to_hex rounds).
    a.uns.proto_colors = { kind: "dense", shape: [3, 4], dtype: "float64", data: Float64Array.of(1, 0, 0, 1, 0, 0.5, 0, 1, 0, 0, 1, 0.3) };
    assert.deepEqual((await pl.embedding(a, { color: "proto" })).data.panels[0].colors, ["#ff0000", "#008000", "#0000ff"]);
    // matplotlib's "CN" cycle colors, as scanpy accepts them.
    a.uns.proto_colors = ["C0", "C1", "C9"];
    assert.deepEqual((await pl.embedding(a, { color: "proto" })).data.panels[0].colors, ["#1f77b4", "#ff7f0e", "#17becf"]);
    await assert.rejects(pl.embedding(a, { color: "score", colorMap: "constructor" }), InvalidArgumentError);
    await assert.rejects(pl.embedding(a, { color: "proto", palette: { x: "red", y: "blue" } }), /no color for category "z"/);
    a.setObs("G0", new Float64Array(a.nObs));
    await assert.rejects(pl.embedding(a, { color: "G0" }), /both an obs column and a var name/);
    const dup = path.join(tmp, "dup-genes.h5ad");
    runPython(
      [
        "import sys, anndata as ad, numpy as np, pandas as pd",
        "x = ad.AnnData(np.arange(12, dtype=np.float32).reshape(4, 3), var=pd.DataFrame(index=['A', 'B', 'A']))",
        "x.obsm['X_umap'] = np.arange(8, dtype=np.float32).reshape(4, 2)",
        "x.write_h5ad(sys.argv[1])",
      ],
      dup,
    );
    const d = await read(dup);
    await assert.rejects(pl.embedding(d, { color: "A" }), /names several genes/);
    await pl.embedding(d, { color: "B" });
    d.close();
  });

  it("dotplot and violin: no observed group, repeated categoriesOrder, too many groups are typed errors", async () => {
    // A view of the cells whose with_na is missing: no observed group.
    const col = a.obs.getChild("with_na");
    const missing = Array.from({ length: a.nObs }, (_, i) => i).filter((i) => !col?.isValid(i));
    assert.ok(missing.length > 0);
    await assert.rejects(pl.dotplot(a.subset({ obs: missing }), ["G0"], "with_na"), /no cell has a value/);
    await assert.rejects(pl.dotplot(a, ["G0"], "leiden", { categoriesOrder: ["0", "0"] }), /distinct/);
    const many = path.join(tmp, "many-groups.h5ad");
    runPython(
      [
        "import sys, anndata as ad, numpy as np, pandas as pd",
        "n = 1100",
        "obs = pd.DataFrame({'each': pd.Categorical([f'c{i}' for i in range(n)])}, index=[f'cell{i}' for i in range(n)])",
        "ad.AnnData(np.ones((n, 2), dtype=np.float32), obs=obs, var=pd.DataFrame(index=['G0', 'G1'])).write_h5ad(sys.argv[1])",
      ],
      many,
    );
    const m = await read(many);
    await assert.rejects(pl.dotplot(m, ["G0"], "each"), /1,100 observed groups; at most 1000 rows/);
    await assert.rejects(pl.violin(m, "G0", { groupby: "each" }), /at most 1000 violins/);
    await pl.dotplot(m, ["G0"], "each", { categoriesOrder: ["c1", "c7"] });
    m.close();
  });

  it("a control character in a name (a vertical tab pasted from a sheet) keeps the SVG well-formed", async () => {
    const p = await pl.embedding(a, { color: "leiden", title: "batch\u000B2\uFFFF" });
    // biome-ignore lint/suspicious/noControlCharactersInRegex: looking for them
    assert.doesNotMatch(p.svg, /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]/);
    assert.match(p.svg, /batch\uFFFD2\uFFFD/);
  });

  it("plots leave the colors they used in uns[key_colors], as scanpy's do, so later plots and the written file keep them", async () => {
    const a = await read(path.join(P, "plots.h5ad"));
    try {
      const want = JSON.parse(
        runPython(
          [
            "import sys, json, warnings, matplotlib; matplotlib.use('Agg'); warnings.simplefilter('ignore')",
            "import scanpy as sc",
            "a = sc.read_h5ad(sys.argv[1])",
            "sc.pl.embedding(a, basis='X_umap', color='leiden', show=False)",
            "default = list(a.uns['leiden_colors'])",
            "sc.pl.violin(a, 'score', groupby='leiden', palette='Set1', show=False)",
            "after_violin = list(a.uns['leiden_colors'])",
            "sc.pl.embedding(a, basis='X_umap', color='leiden', palette='Set1', show=False)",
            "print(json.dumps({'default': default, 'after_violin': after_violin, 'set1': list(a.uns['leiden_colors'])}))",
          ],
          path.join(P, "plots.h5ad"),
        ),
      );
      assert.ok(!("leiden_colors" in a.uns));
      const p = await pl.embedding(a, { color: "leiden" });
      assert.deepEqual(a.uns.leiden_colors, want.default);
      assert.deepEqual(p.data.panels[0].colors, want.default);
      // a violin's palette is for that plot only (scanpy hands it to seaborn)
      await pl.violin(a, "score", { groupby: "leiden", palette: "Set1" });
      assert.deepEqual(a.uns.leiden_colors, want.after_violin);
      assert.deepEqual(want.after_violin, want.default);
      // an embedding's palette is stored
      await pl.embedding(a, { color: "leiden", palette: "Set1" });
      assert.deepEqual(a.uns.leiden_colors, want.set1);
      // the next plot without a palette draws the stored colors
      assert.deepEqual((await pl.embedding(a, { color: "leiden" })).data.panels[0].colors, want.set1);
      const out = path.join(tmp, "colors-kept.h5ad");
      await a.write(out);
      assert.deepEqual(
        JSON.parse(
          runPython(["import sys, json, anndata as ad", "print(json.dumps(list(ad.read_h5ad(sys.argv[1]).uns['leiden_colors'])))"], out),
        ),
        want.set1,
      );
    } finally {
      a.close();
    }
  });

  it("scanpy habits: palette as a colormap name (as scanpy samples it), string columns as groups, jitter true/false, pl.umap / pl.pca, CN, grey and xkcd colors", async () => {
    // its own object: the tests above add obs columns to the shared one
    const a = await read(path.join(P, "plots.h5ad"));
    const want = JSON.parse(
      runPython(
        [
          "import sys, json, warnings, matplotlib; matplotlib.use('Agg'); warnings.simplefilter('ignore')",
          "import scanpy as sc",
          "out = {}",
          "for key, pal in [('leiden', 'Set1'), ('cell_type', 'tab20'), ('short', 'viridis'), ('leiden', 'Dark2')]:",
          "    a = sc.read_h5ad(sys.argv[1]); sc.pl.embedding(a, basis='X_umap', color=key, palette=pal, show=False)",
          "    out[key + ':' + pal] = list(a.uns[key + '_colors'])",
          "from matplotlib.colors import to_hex",
          "out['named'] = [to_hex(c) for c in ['C11', '0.5', 'C3']]",
          "out['xkcd'] = [to_hex(c) for c in ['xkcd:sky blue', 'XKCD:Dark Grey', 'xkcd:dark gray']]",
          "print(json.dumps(out))",
        ],
        path.join(P, "plots.h5ad"),
      ),
    );
    for (const [spec, colors] of Object.entries(want)) {
      if (spec === "named" || spec === "xkcd") continue;
      const [key, palette] = spec.split(":");
      const p = await pl.embedding(a, { color: key, palette });
      assert.deepEqual(p.data.panels[0].colors, colors, spec);
    }
    await assert.rejects(
      pl.embedding(a, { color: "leiden", palette: "NoSuchMap" }),
      (e: Error) => e instanceof InvalidArgumentError && /not a colormap name .*Set1/.test(e.message),
    );
    await assert.rejects(pl.embedding(a, { color: "leiden", palette: 5 as unknown as string }), InvalidArgumentError);
    // matplotlib's "CN" past C9 and grey levels as strings in uns colors
    const b = a.subset({ obs: slice(0, a.nObs) });
    const nCats = b.obs.getChild("short")?.data[0]?.dictionary?.length ?? 0;
    b.uns.short_colors = ["C11", "0.5", "C3", "C4", "C5", "C6", "C7", "C8", "C9", "C10"].slice(0, nCats);
    assert.deepEqual((await pl.embedding(b, { color: "short" })).data.panels[0].colors?.slice(0, 3), want.named);
    // matplotlib's "xkcd:" names (any case, "grey" or "gray")
    b.uns.short_colors = ["xkcd:sky blue", "XKCD:Dark Grey", "xkcd:dark gray", "C4", "C5", "C6", "C7", "C8", "C9", "C10"].slice(0, nCats);
    assert.deepEqual((await pl.embedding(b, { color: "short" })).data.panels[0].colors?.slice(0, 3), want.xkcd);
    // a string column (set in this session) groups like a categorical: values sorted, as scanpy makes them
    const labels = Array.from({ length: a.nObs }, (_, i) => ["z", "x", "y"][i % 3]);
    b.setObs("plain", labels);
    const v = await pl.violin(b, "score", { groupby: "plain", jitter: false });
    assert.deepEqual(
      v.data.panels[0].groups.map((g) => g.name),
      ["x", "y", "z"],
    );
    await pl.violin(b, "score", { groupby: "plain", jitter: true });
    const d = await pl.dotplot(b, ["G0"], "plain");
    assert.deepEqual(d.data.groups, ["x", "y", "z"]);
    // pl.umap / pl.pca are pl.embedding on X_umap / X_pca
    const u = await pl.umap(a, { color: "leiden" });
    const e = await pl.embedding(a, { basis: "umap", color: "leiden" });
    assert.equal(u.svg, e.svg);
    assert.equal(
      (await pl.pca(a, { color: "leiden", components: "2,1" })).svg,
      (await pl.embedding(a, { basis: "pca", color: "leiden", components: [2, 1] })).svg,
    );
    await assert.rejects(pl.umap(a, { basis: "pca" } as object), /pl.umap plots obsm X_umap/);
    // explore takes scanpy's "1,2" too
    const x = await pl.explore(a, { basis: "pca", components: "2,1" });
    assert.deepEqual(x.components, [2, 1]);
    a.close();
  });

  it("steps given something other than an AnnDataOOM first are typed errors naming the step", async () => {
    const calls: [string, () => unknown][] = [
      ["pp.neighbors", () => pp.neighbors(undefined as never)],
      ["pp.log1p", () => pp.log1p(null as never)],
      ["pp.filterCells", () => pp.filterCells({} as never, { minGenes: 1 })],
      ["tl.umap", () => tl.umap({} as never)],
      ["tl.leiden", () => tl.leiden("x.h5ad" as never)],
      ["tl.paga", () => tl.paga(undefined as never)],
      ["pl.embedding", () => pl.embedding({} as never)],
      ["pl.violin", () => pl.violin(null as never, "x")],
      ["pl.dotplot", () => pl.dotplot(undefined as never, ["G0"], "leiden")],
      ["pl.explore", () => pl.explore(undefined as never)],
      ["pl.umap", () => pl.umap(42 as never)],
    ];
    for (const [fn, call] of calls)
      await assert.rejects(
        async () => call(),
        (err: Error) => err instanceof InvalidArgumentError && err.message.startsWith(`${fn}: the first argument must be an AnnDataOOM`),
        fn,
      );
  });
});

describe("plot data where scanpy and matplotlib decide it (a probe's findings)", () => {
  it("a constant colour takes the map's middle (matplotlib widens the empty range), ±Infinity is drawn as missing, pNN keeps ±Infinity as np.nanpercentile", async () => {
    const file = path.join(P, "plots.h5ad");
    const want = JSON.parse(
      runPython(
        [
          "import sys, json, warnings, numpy as np, matplotlib; matplotlib.use('Agg'); warnings.simplefilter('ignore')",
          "import scanpy as sc",
          "from matplotlib.colors import to_hex",
          "a = sc.read_h5ad(sys.argv[1])",
          "ax = sc.pl.embedding(a, basis='X_umap', color='const', show=False); ax.figure.canvas.draw()",
          "pc = ax.collections[0]",
          "s = a.obs['score'].to_numpy().copy(); s[:7] = np.inf; s[7:9] = -np.inf",
          "print(json.dumps({'norm': [pc.norm.vmin, pc.norm.vmax], 'color': to_hex(pc.get_facecolors()[0]), 'p99': float(np.nanpercentile(s, 99)), 'p1': float(np.nanpercentile(s, 1))}))",
        ],
        file,
      ),
    );
    const a = await read(file);
    try {
      const panel = (await pl.embedding(a, { color: "const" })).data.panels[0];
      assert.deepEqual([panel.vmin, panel.vmax], want.norm);
      assert.equal(new pl.ColorScale("viridis", panel.vmin ?? 0, panel.vmax ?? 1).hex(3), want.color);
      const score = Float64Array.from(a.obs.getChild("score") as unknown as Iterable<number>);
      score.fill(Number.POSITIVE_INFINITY, 0, 7);
      score.fill(Number.NEGATIVE_INFINITY, 7, 9);
      a.setObs("score_inf", score);
      const inf = (await pl.embedding(a, { color: "score_inf", vmin: "p1", vmax: "p99" })).data.panels[0];
      const nan = score.filter((x) => Number.isNaN(x)).length;
      assert.equal(inf.nMissing, nan + 9, "±Infinity drawn in naColor, as NaN");
      assert.ok(Math.abs((inf.vmax ?? 0) - want.p99) <= 1e-12 * Math.abs(want.p99), `p99 ${inf.vmax} vs ${want.p99}`);
      assert.ok(Math.abs((inf.vmin ?? 0) - want.p1) <= 1e-12 * Math.abs(want.p1), `p1 ${inf.vmin} vs ${want.p1}`);
      assert.equal(new pl.ColorScale("viridis", 0, 1).hex(Number.POSITIVE_INFINITY), pl.NA_COLOR);
    } finally {
      a.close();
    }
  });

  it("dotplot fractions are over every cell of a group, NaN counting as not expressed (scanpy's dot_size_df)", async () => {
    const file = path.join(P, "plots.h5ad");
    const a = await read(file);
    try {
      const score = Float64Array.from(a.obs.getChild("score") as unknown as Iterable<number>);
      for (let i = 0; i < score.length; i += 3) score[i] = Number.NaN;
      a.setObs("score_na", score);
      const out = path.join(tmp, "score-na.h5ad");
      await a.write(out);
      const want: number[][] = JSON.parse(
        runPython(
          [
            "import sys, json, warnings, matplotlib; matplotlib.use('Agg'); warnings.simplefilter('ignore')",
            "import scanpy as sc",
            "a = sc.read_h5ad(sys.argv[1])",
            "f = sc.pl.dotplot(a, ['score_na'], 'leiden', return_fig=True)",
            "print(json.dumps(f.dot_size_df.values.tolist()))",
          ],
          out,
        ),
      );
      const got = (await pl.dotplot(a, ["score_na"], "leiden")).data.dotSize;
      want.forEach((row, r) => assert.ok(Math.abs(got[r][0] - row[0]) < 1e-12, `group ${r}: ${got[r][0]} vs ${row[0]}`));
    } finally {
      a.close();
    }
  });

  it("pl.histogram in float32 casts the values first, as numpy holds them (a double below the rounded first edge fell out)", () => {
    const values = Array.from({ length: 2000 }, (_, i) => Math.sin(i * 7.1) * 3.3 + 0.1);
    values.push(0.1, 0.7);
    const want = JSON.parse(
      runPython(
        [
          "import sys, json, numpy as np",
          "v = np.float32(json.loads(sys.argv[1]))",
          "print(json.dumps([np.histogram(v, b)[0].tolist() for b in (2, 3, 7, 50)]))",
        ],
        JSON.stringify(values),
      ),
    );
    [2, 3, 7, 50].forEach((bins, k) => {
      const h = pl.histogram(values, bins, "float32");
      assert.deepEqual(h.counts, want[k], `${bins} bins`);
      assert.equal(
        h.counts.reduce((s, c) => s + c, 0),
        values.length,
      );
    });
  });

  it("every continuous matplotlib colormap and its _r reversal, as matplotlib draws them", () => {
    const names = ["turbo", "Spectral", "viridis_r", "Spectral_r", "RdBu_r", "twilight", "jet", "bwr"];
    const xs = [0, 0.13, 0.5, 0.77, 1];
    const want = JSON.parse(
      runPython(
        [
          "import sys, json",
          "from matplotlib import colormaps",
          "from matplotlib.colors import to_hex",
          "names, xs = json.loads(sys.argv[1])",
          "print(json.dumps({n: [to_hex(colormaps[n](float(x))) for x in xs] for n in names}))  # an int would be a table index",
        ],
        JSON.stringify([names, xs]),
      ),
    );
    for (const n of names)
      assert.deepEqual(
        xs.map((x) => new pl.ColorScale(n, 0, 1).hex(x)),
        want[n],
        n,
      );
    assert.ok(pl.colormapNames().length >= 78);
    assert.throws(() => new pl.ColorScale("nope_r", 0, 1), /unknown colormap "nope_r".*"<name>_r"/);
  });

  it("geneValues refuses an option it does not take (useRaw was silently ignored)", async () => {
    const a = await read(path.join(P, "plots.h5ad"));
    try {
      await assert.rejects(() => a.geneValues(["G0"], { useRaw: true } as never), /unknown option "useRaw"/);
    } finally {
      a.close();
    }
  });
});
