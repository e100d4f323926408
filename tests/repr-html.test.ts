/**
 * Notebook reprs on real fixtures: the HTML card (dimensions, X facts,
 * columns with kinds and category previews, foldable slots, the chain),
 * HTML escaping of every user string, no scripts, and the repr+json data.
 */
import * as assert from "node:assert/strict";
import * as path from "node:path";
import { describe, it } from "node:test";
import { Dictionary, Int32, Utf8, vectorFromArray } from "apache-arrow";
import { type AnnDataJson, type MatrixJson, pp, REPR_MIME, read, tl } from "../src/engine";
import { FIXTURES } from "./helpers";

const open = (name: string) => read(path.join(FIXTURES, `${name}.h5ad`));
const HOSTILE = "<img src=x onerror=alert(1)>";
const HOSTILE_CAT = '"><script>alert(2)</script>';

describe("HTML and JSON reprs", () => {
  it("the bundle has text, an HTML card and repr+json with the file's facts", async () => {
    const a = await open("full_csr");
    const b = a._repr_mimebundle_();
    assert.deepEqual(Object.keys(b).sort(), [REPR_MIME, "text/html", "text/plain"].sort());
    assert.equal(b["text/plain"], a.toString());
    const html = b["text/html"];
    assert.match(html, /<b>12<\/b> obs × <b>8<\/b> vars/);
    assert.match(html, /csr float32/);
    assert.match(html, /density 37\.50%/);
    assert.match(html, /per 1,000 rows/);
    for (const col of ["cell_type", "stage", "barcode", "highly_variable", "chrom"]) assert.ok(html.includes(`>${col}<`), col);
    assert.ok(html.includes("category(4)"));
    assert.ok(html.includes("T-Zelle"), "category preview");
    for (const slot of ["obsm", "varm", "obsp", "varp", "layers", "raw", "uns"]) {
      assert.ok(html.includes(`<summary style="cursor:pointer;font-weight:600;margin:3px 0">${slot} `), slot);
    }
    assert.ok(html.includes("X_pca") && html.includes("connectivities") && html.includes("counts"));
    assert.ok(html.includes("transform chain"));
    assert.ok(!/<script/i.test(html));
    assert.ok(!/ on\w+=/i.test(html), "no event handler attributes");

    // JSON: plain data that survives a round trip
    const j = JSON.parse(JSON.stringify(b[REPR_MIME])) as AnnDataJson;
    assert.deepEqual(j, a.reprJson());
    assert.equal(j.type, "AnnDataOOM");
    assert.deepEqual(j.shape, [12, 8]);
    assert.equal(j.X?.format, "csr");
    assert.equal(j.X?.dtype, "float32");
    assert.equal(j.X?.storedEntries, 36);
    assert.equal(j.X?.bytesPer1000Rows, Math.round((j.X?.bytesOnDisk ?? 0) * (1000 / 12)));
    const ct = j.obs.find((c) => c.name === "cell_type");
    assert.equal(ct?.nCategories, 4);
    assert.deepEqual(ct?.categories?.slice(0, 2), ["T-Zelle", "β细胞"]);
    assert.equal(j.obs.find((c) => c.name === "stage")?.ordered, true);
    assert.deepEqual(
      j.slots.obsm.map((e) => e.key),
      ["X_pca", "X_sparse", "meta_df"],
    );
    assert.deepEqual(j.slots.obsm[0].shape, [12, 3]);
    assert.deepEqual(j.raw, { nVars: 10, hasX: true });
    assert.ok(j.uns.includes("cell_type_colors"));
    a.close();
  });

  it("escapes hostile column names, categories and keys", async () => {
    const a = await open("full_csr");
    a.setVar(HOSTILE, new Float64Array(8));
    const cats = vectorFromArray(
      Array.from({ length: 12 }, (_, i) => (i % 2 ? HOSTILE_CAT : "ok")),
      new Dictionary(new Utf8(), new Int32()),
    );
    a.setObs(`${HOSTILE}_obs`, cats);
    a.obsm.set(HOSTILE, { kind: "dense", shape: [12, 2], dtype: "float64", data: new Float64Array(24) });
    const html = a._repr_mimebundle_()["text/html"];
    assert.ok(!html.includes("<img"), "raw tag leaked");
    assert.ok(!/<script/i.test(html), "script leaked");
    assert.ok(html.includes("&lt;img src=x onerror=alert(1)&gt;"));
    assert.ok(html.includes("&quot;&gt;&lt;script&gt;alert(2)&lt;/script&gt;"));
    const j = a.reprJson();
    assert.ok(j.var.some((c) => c.name === HOSTILE));
    assert.ok(j.obs.find((c) => c.name === `${HOSTILE}_obs`)?.categories?.includes(HOSTILE_CAT));
    assert.ok(j.slots.obsm.some((e) => e.key === HOSTILE && e.inMemory));
    a.close();
  });

  it("shows a view's dimensions and a lazy chain; a matrix has its own smaller card", async () => {
    const a = await open("csr_large_gzip");
    const v = a.subset({ obs: [0, 1, 2] });
    assert.match(v._repr_mimebundle_()["text/html"], /View of AnnDataOOM.*<b>3<\/b> obs/s);
    await pp.normalizeTotal(a, { targetSum: 1e4 });
    pp.log1p(a);
    const b = a.X._repr_mimebundle_();
    assert.equal(b["text/plain"], a.X.toString());
    const j = b[REPR_MIME] as MatrixJson;
    assert.deepEqual(
      j.chain.map((s) => s.op),
      ["normalize", "log1p"],
    );
    assert.match(b["text/html"], /BackedMatrix/);
    assert.match(b["text/html"], /<li>log1p<\/li>/);
    assert.match(a._repr_mimebundle_()["text/html"], /lazy: normalize → log1p/);
    a.close();
    // a closed object still has a (short) repr
    const closed = a._repr_mimebundle_();
    assert.match(closed["text/html"], /closed/);
    assert.equal((closed[REPR_MIME] as AnnDataJson).closed, true);
  });

  it("a step's result has a text summary bundle that leaves its data unchanged", async () => {
    const a = await open("full_csr"); // has obsp connectivities
    const r = await tl.leiden(a);
    const repr = (r as unknown as { _repr_mimebundle_(): Record<string, string> })._repr_mimebundle_();
    assert.match(repr["text/plain"], /^leiden: \d+ clusters on 12 cells, quality .* obs\['leiden'\]/);
    assert.deepEqual(Object.keys(r), ["membership", "nClusters", "quality"]);
    a.close();
  });
});
