/**
 * The repr card in jsdom: dims, X facts, columns with kinds and category
 * chips (scanpy colors), the filter box, foldable sections, badges, the
 * transform chain, hostile strings as text, and unknown data.
 */
import * as assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import * as path from "node:path";
import { beforeEach, describe, it } from "node:test";
import { JSDOM } from "jsdom";
import { DEFAULT_28, DEFAULT_102, MPL_CYCLE } from "../../engine/pl/colormap-data";
import { defaultPalette } from "../../engine/pl/colors";
import { categoryColor } from "../../widgets/palette";
import { CARD_CLASS, MAX_ROWS, renderReprCard } from "../../widgets/repr-card";
import type { ReprAnnData, ReprColumn, ReprMatrix } from "../../widgets/repr-types";
import { freshHost, installDomGlobals } from "./dom-globals";

const HOSTILE = "<img src=x onerror=alert(1)>";
const HOSTILE_CAT = '"><script>alert(2)</script>';

const X: ReprMatrix = {
  type: "BackedMatrix",
  name: "X",
  shape: [12, 8],
  format: "csr",
  dtype: "float32",
  storedEntries: 36,
  density: 0.375,
  bytesOnDisk: 2048,
  bytesPer1000Rows: 170_667,
  compression: "gzip",
  isView: false,
  chain: [
    { op: "normalize_total", description: "normalize_total(target_sum=10000)" },
    { op: "log1p", description: "log1p()" },
  ],
};

function sample(over: Partial<ReprAnnData> = {}): ReprAnnData {
  return {
    type: "AnnDataOOM",
    version: 1,
    closed: false,
    isView: false,
    filename: "/data/pbmc.h5ad",
    mode: "r",
    shape: [12, 8],
    X,
    obs: [
      { name: "cell_type", kind: "category(4)", nulls: 0, categories: ["B", "T-Zelle", "NK", HOSTILE_CAT], nCategories: 4, ordered: false },
      { name: "n_counts", kind: "float32", nulls: 0 },
      { name: "stage", kind: "category(7)", nulls: 2, categories: ["a", "b", "c", "d", "e"], nCategories: 7, ordered: true },
    ],
    var: [
      { name: "gene_ids", kind: "str", nulls: 0 },
      { name: HOSTILE, kind: "float64", nulls: 0 },
    ],
    slots: {
      obsm: [{ key: "X_umap", encoding: "array", shape: [12, 2], dtype: "float32", inMemory: false }],
      varm: [],
      obsp: [{ key: "connectivities", encoding: "csr_matrix", shape: [12, 12], dtype: "float32", inMemory: true }],
      varp: [],
      layers: [{ key: HOSTILE, encoding: "csr_matrix", shape: [12, 8], dtype: "float32", inMemory: false }],
    },
    uns: ["neighbors", HOSTILE],
    raw: { nVars: 20, hasX: true },
    ...over,
  };
}

let doc: Document;
let host: HTMLElement;
beforeEach(() => {
  ({ doc, host } = freshHost());
});

const q = (sel: string) => host.querySelector(sel) as HTMLElement;
const qa = (sel: string) => Array.from(host.querySelectorAll(sel)) as HTMLElement[];
const section = (key: string) => q(`details[data-section="${key}"]`) as HTMLDetailsElement;
const visibleRows = (key: string) => qa(`details[data-section="${key}"] tr`);

describe("repr card", () => {
  it("shows dims, file, backed and lazy badges, X facts and the chain", () => {
    const card = renderReprCard(host, sample());
    assert.ok(card.classList.contains(CARD_CLASS.card));
    assert.equal(card.dataset.type, "AnnDataOOM");
    assert.equal(q(`.${CARD_CLASS.dims}`).textContent, "12 obs × 8 vars");
    assert.equal(q(`.${CARD_CLASS.file}`).textContent, "/data/pbmc.h5ad");
    const badges = qa(`.${CARD_CLASS.badge}`).map((b) => b.dataset.badge);
    assert.ok(badges.includes("backed") && badges.includes("lazy"), badges.join());
    assert.match(host.textContent ?? "", /csr float32, gzip/);
    assert.match(host.textContent ?? "", /density 37\.50%/);
    assert.match(host.textContent ?? "", /2\.0 KB/);
    const chain = qa(`.${CARD_CLASS.chain} li`).map((li) => li.textContent);
    assert.deepEqual(chain, ["normalize_total normalize_total(target_sum=10000)", "log1p log1p()"]);
    assert.ok(section("chain").open, "a non-empty chain is unfolded");
  });

  it("lists obs/var columns with kinds, missing counts and category chips in scanpy colors", () => {
    renderReprCard(host, sample());
    const names = visibleRows("obs").map((r) => r.dataset.name);
    assert.deepEqual(names, ["cell_type", "n_counts", "stage"]);
    const ct = visibleRows("obs")[0];
    assert.equal(ct.querySelector(`.${CARD_CLASS.kind}`)?.textContent, "category(4)");
    const chips = Array.from(ct.querySelectorAll(`.${CARD_CLASS.chip}`)) as HTMLElement[];
    assert.deepEqual(
      chips.map((c) => c.textContent),
      ["B", "T-Zelle", "NK", HOSTILE_CAT],
    );
    const colors = chips.map((c) => (c.querySelector(`.${CARD_CLASS.swatch}`) as HTMLElement).style.backgroundColor);
    // 4 categories: matplotlib's cycle (tab10), as scanpy and our plots color them.
    assert.deepEqual(colors, ["rgb(31, 119, 180)", "rgb(255, 127, 14)", "rgb(44, 160, 44)", "rgb(214, 39, 40)"]);
    const stage = visibleRows("obs")[2];
    assert.match(stage.textContent ?? "", /2 missing/);
    assert.match(stage.textContent ?? "", /\+2 more/);
    assert.match(stage.textContent ?? "", /ordered/);
  });

  it("foldable sections: obs/var open, slots/raw/uns closed, with counts", () => {
    renderReprCard(host, sample());
    for (const s of ["obs", "var"]) assert.ok(section(s).open, s);
    for (const s of ["obsm", "varm", "obsp", "varp", "layers", "raw", "uns"]) assert.equal(section(s).open, false, s);
    assert.equal(section("obsm").querySelector("summary")?.textContent, "obsm (1)");
    assert.equal(section("uns").querySelector("summary")?.textContent, "uns (2)");
    assert.match(section("obsp").textContent ?? "", /in memory/);
    assert.match(section("obsp").textContent ?? "", /12 × 12/);
    assert.match(section("raw").textContent ?? "", /20 vars, with X/);
  });

  it("the filter box hides non-matching obs/var columns and counts the matches", () => {
    renderReprCard(host, sample());
    const input = q(`input.${CARD_CLASS.filter}`) as HTMLInputElement;
    input.value = "CELL";
    input.dispatchEvent(new doc.defaultView!.Event("input"));
    assert.deepEqual(
      visibleRows("obs").map((r) => r.dataset.name),
      ["cell_type"],
    );
    assert.equal(visibleRows("var").length, 0);
    assert.equal(section("obs").querySelector(`.${CARD_CLASS.count}`)?.textContent, " (1 of 3)");
    input.value = "";
    input.dispatchEvent(new doc.defaultView!.Event("input"));
    assert.equal(visibleRows("obs").length, 3);
    assert.equal(section("obs").querySelector(`.${CARD_CLASS.count}`)?.textContent, " (3)");
  });

  it("caps long tables at MAX_ROWS; the filter reaches the rest", () => {
    const many: ReprColumn[] = Array.from({ length: MAX_ROWS + 50 }, (_, i) => ({ name: `col_${i}`, kind: "int32", nulls: 0 }));
    renderReprCard(host, sample({ var: many }));
    assert.equal(visibleRows("var").length, MAX_ROWS, "rows past the cap are not in the DOM");
    assert.match(section("var").textContent ?? "", /… 50 more/);
    const input = q(`input.${CARD_CLASS.filter}`) as HTMLInputElement;
    input.value = `col_${MAX_ROWS + 49}`;
    input.dispatchEvent(new doc.defaultView!.Event("input"));
    assert.deepEqual(
      visibleRows("var").map((r) => r.dataset.name),
      [`col_${MAX_ROWS + 49}`],
    );
    // uns keys and slot entries too (200k uns keys took 4 s to lay out).
    const layers = Array.from({ length: MAX_ROWS + 7 }, (_, i) => ({
      key: `l${i}`,
      encoding: "csr_matrix",
      shape: [3, 2],
      dtype: "float32",
    }));
    const uns = Array.from({ length: MAX_ROWS + 9 }, (_, i) => `u${i}`);
    renderReprCard(host, sample({ uns, slots: { ...sample().slots, layers } as never }));
    assert.equal(section("layers").querySelectorAll("tr").length, MAX_ROWS);
    assert.match(section("layers").textContent ?? "", /… 7 more/);
    assert.equal(section("uns").querySelectorAll("code").length, MAX_ROWS);
    assert.match(section("uns").textContent ?? "", /… 9 more/);
  });

  it("hostile names render as text: no element or handler from user data", () => {
    renderReprCard(host, sample());
    assert.equal(host.querySelectorAll("img, script").length, 0);
    for (const e of Array.from(host.querySelectorAll("*"))) {
      for (const a of Array.from(e.attributes)) assert.ok(!a.name.startsWith("on"), `${e.tagName} has ${a.name}`);
    }
    const varNames = visibleRows("var").map((r) => r.querySelector(`.${CARD_CLASS.name}`)?.textContent);
    assert.ok(varNames.includes(HOSTILE));
    assert.ok((section("layers").textContent ?? "").includes(HOSTILE));
    assert.ok((section("uns").textContent ?? "").includes(HOSTILE));
  });

  it("views, closed files and a bare BackedMatrix", () => {
    renderReprCard(host, sample({ isView: true, X: { ...X, chain: [] } }));
    assert.equal(q(`.${CARD_CLASS.title}`).textContent, "View of AnnDataOOM");
    assert.ok(qa(`.${CARD_CLASS.badge}`).some((b) => b.dataset.badge === "view"));
    assert.ok(!qa(`.${CARD_CLASS.badge}`).some((b) => b.dataset.badge === "lazy"));
    assert.match(host.textContent ?? "", /stored values \(no transforms\)/);

    renderReprCard(host, sample({ closed: true }));
    assert.ok(qa(`.${CARD_CLASS.badge}`).some((b) => b.dataset.badge === "closed"));
    assert.equal(host.querySelector("details"), null);

    const card = renderReprCard(host, X);
    assert.equal(card.dataset.type, "BackedMatrix");
    assert.match(q(`.${CARD_CLASS.dims}`).textContent ?? "", /12 × 8/);
    assert.equal(qa(`.${CARD_CLASS.chain} li`).length, 2);
  });

  it("unknown data renders a message instead of throwing", () => {
    renderReprCard(host, { type: "AnnDataOOM", version: 2 });
    assert.match(q(`.${CARD_CLASS.error}`).textContent ?? "", /cannot render this repr \(AnnDataOOM v2\)/);
    renderReprCard(host, null);
    assert.ok(q(`.${CARD_CLASS.error}`));
    // Saved by an older or newer engine: fields missing or of another shape.
    const full = sample() as unknown as Record<string, unknown>;
    for (const field of ["obs", "var", "slots", "uns", "shape", "X"]) {
      const partial = { ...full };
      delete partial[field];
      renderReprCard(host, partial);
      if (field === "X") continue; // no X is a valid card
      assert.match(q(`.${CARD_CLASS.error}`)?.textContent ?? "", /cannot render this repr/, `without ${field}`);
    }
    renderReprCard(host, { ...full, obs: [null] });
    assert.match(q(`.${CARD_CLASS.error}`)?.textContent ?? "", /cannot render this repr/);
    renderReprCard(host, { type: "BackedMatrix", version: 2 });
    assert.match(q(`.${CARD_CLASS.error}`)?.textContent ?? "", /BackedMatrix v2/);
    renderReprCard(host, Object.assign(Object.create(null), { type: Object.create(null), version: 1 }));
    assert.ok(q(`.${CARD_CLASS.error}`));
  });
});

describe("mime renderer", () => {
  it("renderModel on a mime model fills the widget node with the card", async () => {
    const dom = new JSDOM("<!doctype html><body></body>");
    installDomGlobals(dom.window);
    const { rendererFactory, RENDERED_CLASS } = await import("../mime");
    const { REPR_MIME } = await import("../../widgets/repr-types");
    assert.deepEqual(rendererFactory.mimeTypes, [REPR_MIME]);
    const r = rendererFactory.createRenderer({
      mimeType: REPR_MIME,
      sanitizer: {} as never,
      resolver: null,
      linkHandler: null,
      latexTypesetter: null,
    });
    await r.renderModel({ data: { [REPR_MIME]: sample() }, metadata: {}, trusted: false, setData: () => undefined } as never);
    assert.ok(r.node.classList.contains(RENDERED_CLASS));
    assert.equal(r.node.querySelector(`.${CARD_CLASS.dims}`)?.textContent, "12 obs × 8 vars");
    r.dispose();
  });
});

describe("repr card colors and layout", () => {
  const hexRgb = (h: string) => {
    const v = Number.parseInt(h.slice(1), 16);
    return `rgb(${(v >> 16) & 255}, ${(v >> 8) & 255}, ${v & 255})`;
  };

  it("chips have the colors the plots give (the engine's defaultPalette: tab10, default_20, default_28, default_102)", () => {
    for (const n of [4, 15, 25, 60, 200]) {
      const plots = defaultPalette(n);
      for (const i of [0, 2, n - 1]) assert.equal(categoryColor(i, n), plots[i], `category ${i} of ${n}`);
    }
    assert.equal(categoryColor(2, 4), MPL_CYCLE[2]);
    assert.equal(categoryColor(21, 25), DEFAULT_28[21]);
    assert.equal(categoryColor(40, 60), DEFAULT_102[40]);
    // In the card: a column of 25 categories shows its first chips in default_28.
    const cats = Array.from({ length: 12 }, (_, i) => `c${i}`);
    const col: ReprColumn = { name: "many", kind: "category(25)", nulls: 0, categories: cats, nCategories: 25, ordered: false };
    const data = sample();
    renderReprCard(host, { ...data, obs: [col] });
    const sw = qa(`tr[data-name="many"] .${CARD_CLASS.swatch}`).map((e) => e.style.backgroundColor);
    assert.deepEqual(
      sw,
      cats.map((_, i) => hexRgb(DEFAULT_28[i])),
    );
  });

  it("column names wrap only when too long: no overflow-wrap: anywhere (it split 'group' as 'grou/p')", () => {
    const css = readFileSync(path.join(__dirname, "..", "..", "..", "style", "index.css"), "utf8");
    const rules = [...css.matchAll(/([^{}]+)\{([^}]*)\}/g)].filter((m) => /\.aoom-ReprCard-name\b/.test(m[1]));
    assert.ok(rules.length > 0);
    for (const r of rules) {
      assert.doesNotMatch(r[2], /overflow-wrap:\s*anywhere|word-break:\s*break-all/);
    }
    assert.ok(rules.some((r) => /overflow-wrap:\s*break-word/.test(r[2])));
  });
});
