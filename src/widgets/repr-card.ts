/**
 * The repr card: a DOM view of `application/vnd.anndata-oom.repr+json`
 * (an AnnDataOOM or a BackedMatrix). Framework-free (plain DOM), so the
 * JupyterLab renderer wraps it and jsdom can test it.
 *
 * Every string from the data goes in with `textContent` (never innerHTML),
 * so a var named `<img src=x onerror=alert(1)>` shows as that text.
 *
 * @example
 * const host = document.createElement("div");
 * renderReprCard(host, json); // json = the engine's reprJson(adata)
 */
import { categoryColor } from "./palette";
import type { ReprAnnData, ReprColumn, ReprData, ReprMatrix, ReprSlot, ReprSlotEntry } from "./repr-types";

/** CSS classes (styles live in the extension's style/index.css). */
export const CARD_CLASS = {
  card: "aoom-ReprCard",
  header: "aoom-ReprCard-header",
  title: "aoom-ReprCard-title",
  dims: "aoom-ReprCard-dims",
  file: "aoom-ReprCard-file",
  badge: "aoom-ReprCard-badge",
  section: "aoom-ReprCard-section",
  count: "aoom-ReprCard-count",
  table: "aoom-ReprCard-table",
  name: "aoom-ReprCard-name",
  kind: "aoom-ReprCard-kind",
  muted: "aoom-ReprCard-muted",
  chip: "aoom-ReprCard-chip",
  swatch: "aoom-ReprCard-swatch",
  filter: "aoom-ReprCard-filter",
  chain: "aoom-ReprCard-chain",
  error: "aoom-ReprCard-error",
} as const;

/** Rows rendered per obs/var table before a "… N more (filter to find)" line. */
export const MAX_ROWS = 200;

const fmt = (x: number) => x.toLocaleString("en-US");

export function formatBytes(b: number): string {
  const units = ["B", "KB", "MB", "GB", "TB"];
  let v = b;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(1)} ${units[i]}`;
}

/** An element with classes and optional text (always as textContent). */
function el<K extends keyof HTMLElementTagNameMap>(
  doc: Document,
  tag: K,
  cls?: string | string[],
  text?: string,
): HTMLElementTagNameMap[K] {
  const e = doc.createElement(tag);
  if (cls) e.className = Array.isArray(cls) ? cls.join(" ") : cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

function badge(doc: Document, text: string, variant: string): HTMLElement {
  const b = el(doc, "span", [CARD_CLASS.badge, `${CARD_CLASS.badge}--${variant}`], text);
  b.dataset.badge = variant;
  return b;
}

/** A foldable section: `<details>` with a title and a count. */
function section(
  doc: Document,
  key: string,
  title: string,
  count: number | string,
  open: boolean,
): { box: HTMLDetailsElement; body: HTMLElement; counter: HTMLElement } {
  const box = el(doc, "details", CARD_CLASS.section);
  box.dataset.section = key;
  box.open = open;
  const summary = el(doc, "summary", undefined, title);
  const counter = el(doc, "span", CARD_CLASS.count, ` (${typeof count === "number" ? fmt(count) : count})`);
  summary.append(counter);
  const body = el(doc, "div");
  box.append(summary, body);
  return { box, body, counter };
}

function kv(doc: Document, table: HTMLTableElement, key: string, value: string): void {
  const tr = el(doc, "tr");
  tr.append(el(doc, "td", CARD_CLASS.muted, key), el(doc, "td", undefined, value));
  table.append(tr);
}

function matrixPart(doc: Document, x: ReprMatrix, label: string): HTMLElement {
  const part = el(doc, "div");
  part.dataset.part = "X";
  const head = el(doc, "div", CARD_CLASS.header);
  head.append(el(doc, "b", undefined, label), badge(doc, `${x.format} ${x.dtype}`, "format"));
  if (x.chain.length) head.append(badge(doc, `lazy: ${x.chain.map((s) => s.op).join(" → ")}`, "lazy"));
  if (x.isView) head.append(badge(doc, "view", "view"));
  part.append(head);
  const t = el(doc, "table", CARD_CLASS.table);
  kv(doc, t, "storage", `${x.format} ${x.dtype}${x.compression ? `, ${x.compression}` : ""}`);
  kv(doc, t, "stored", `${fmt(x.storedEntries)} entries (density ${(100 * x.density).toFixed(2)}%)`);
  kv(doc, t, "on disk", formatBytes(x.bytesOnDisk));
  kv(doc, t, "chunk I/O", `${formatBytes(x.bytesPer1000Rows)} per 1,000 rows`);
  part.append(t);
  const { box, body } = section(doc, "chain", "transform chain", x.chain.length, x.chain.length > 0);
  if (x.chain.length) {
    const ol = el(doc, "ol", CARD_CLASS.chain);
    for (const s of x.chain) {
      const li = el(doc, "li");
      li.append(el(doc, "code", CARD_CLASS.name, s.op), doc.createTextNode(" "), el(doc, "span", CARD_CLASS.muted, s.description));
      ol.append(li);
    }
    body.append(ol);
  } else {
    body.append(el(doc, "div", CARD_CLASS.muted, "stored values (no transforms)"));
  }
  part.append(box);
  return part;
}

function columnRow(doc: Document, c: ReprColumn): HTMLTableRowElement {
  const tr = el(doc, "tr");
  tr.dataset.name = c.name;
  const kind = el(doc, "td");
  kind.append(el(doc, "span", CARD_CLASS.kind, c.kind));
  if (c.nulls) kind.append(el(doc, "span", CARD_CLASS.muted, ` ${fmt(c.nulls)} missing`));
  const cats = el(doc, "td");
  if (c.categories) {
    const nCats = Math.max(c.nCategories ?? 0, c.categories.length);
    c.categories.forEach((cat, i) => {
      const chip = el(doc, "span", CARD_CLASS.chip);
      const sw = el(doc, "span", CARD_CLASS.swatch);
      sw.style.backgroundColor = categoryColor(i, nCats);
      chip.append(sw, el(doc, "span", undefined, cat));
      chip.title = cat;
      cats.append(chip);
    });
    const more = (c.nCategories ?? 0) - c.categories.length;
    if (more > 0) cats.append(el(doc, "span", CARD_CLASS.muted, `+${fmt(more)} more`));
    if (c.ordered) cats.append(el(doc, "span", CARD_CLASS.muted, " (ordered)"));
  }
  const name = el(doc, "td");
  name.append(el(doc, "code", CARD_CLASS.name, c.name));
  tr.append(name, kind, cats);
  return tr;
}

/**
 * An obs/var table; returns a filter function (query → shown count). Rows
 * are built on demand (at most MAX_ROWS in the DOM), so a var with
 * thousands of columns stays cheap.
 */
function columnsPart(doc: Document, axis: "obs" | "var", cols: ReprColumn[]): { box: HTMLElement; filter: (q: string) => number } {
  const { box, body, counter } = section(doc, axis, axis, cols.length, cols.length > 0);
  const t = el(doc, "table", CARD_CLASS.table);
  const cache = new Map<number, HTMLTableRowElement>();
  const rowAt = (i: number) => {
    let r = cache.get(i);
    if (!r) {
      r = columnRow(doc, cols[i]);
      cache.set(i, r);
    }
    return r;
  };
  const overflow = el(doc, "div", CARD_CLASS.muted);
  body.append(cols.length ? t : el(doc, "div", CARD_CLASS.muted, "no columns"), overflow);
  const filter = (q: string): number => {
    const needle = q.trim().toLowerCase();
    const shown: HTMLTableRowElement[] = [];
    let matched = 0;
    cols.forEach((c, i) => {
      if (needle && !c.name.toLowerCase().includes(needle)) return;
      matched++;
      if (shown.length < MAX_ROWS) shown.push(rowAt(i));
    });
    t.replaceChildren(...shown);
    overflow.textContent = matched > MAX_ROWS ? `… ${fmt(matched - MAX_ROWS)} more (type in the filter to find them)` : "";
    counter.textContent = needle ? ` (${fmt(matched)} of ${fmt(cols.length)})` : ` (${fmt(cols.length)})`;
    if (needle && matched) box.setAttribute("open", "");
    return shown.length;
  };
  filter("");
  return { box, filter };
}

function slotPart(doc: Document, slot: ReprSlot, entries: ReprSlotEntry[]): HTMLElement {
  const { box, body } = section(doc, slot, slot, entries.length, false);
  if (!entries.length) {
    body.append(el(doc, "div", CARD_CLASS.muted, "none"));
    return box;
  }
  const t = el(doc, "table", CARD_CLASS.table);
  for (const e of entries.slice(0, MAX_ROWS)) {
    const tr = el(doc, "tr");
    tr.dataset.name = e.key;
    const key = el(doc, "td");
    key.append(el(doc, "code", CARD_CLASS.name, e.key));
    const extra = el(doc, "td");
    if (e.inMemory) extra.append(badge(doc, "in memory", "memory"));
    tr.append(
      key,
      el(doc, "td", undefined, e.encoding.replace("_matrix", "")),
      el(doc, "td", undefined, e.shape.map(fmt).join(" × ")),
      el(doc, "td", CARD_CLASS.muted, e.dtype ?? ""),
      extra,
    );
    t.append(tr);
  }
  body.append(t);
  if (entries.length > MAX_ROWS) body.append(el(doc, "div", CARD_CLASS.muted, `… ${fmt(entries.length - MAX_ROWS)} more`));
  return box;
}

function anndataCard(doc: Document, card: HTMLElement, j: ReprAnnData): void {
  const head = el(doc, "div", CARD_CLASS.header);
  head.append(el(doc, "b", CARD_CLASS.title, `${j.isView ? "View of " : ""}AnnDataOOM`));
  if (!j.closed) {
    const dims = el(doc, "span", CARD_CLASS.dims);
    dims.append(
      el(doc, "b", undefined, fmt(j.shape[0])),
      doc.createTextNode(" obs × "),
      el(doc, "b", undefined, fmt(j.shape[1])),
      doc.createTextNode(" vars"),
    );
    head.append(dims);
  }
  head.append(badge(doc, `backed '${j.mode}'`, "backed"));
  if (j.isView) head.append(badge(doc, "view", "view"));
  if (j.closed) head.append(badge(doc, "closed", "closed"));
  if (j.X?.chain.length) head.append(badge(doc, "lazy X", "lazy"));
  head.append(el(doc, "code", CARD_CLASS.file, j.filename));
  card.append(head);
  if (j.closed) return;

  card.append(j.X ? matrixPart(doc, j.X, "X") : el(doc, "div", CARD_CLASS.muted, "X: none"));

  const input = el(doc, "input", CARD_CLASS.filter);
  input.type = "search";
  input.placeholder = "Filter obs/var columns…";
  input.setAttribute("aria-label", "Filter obs and var columns by name");
  const obs = columnsPart(doc, "obs", j.obs);
  const vars = columnsPart(doc, "var", j.var);
  input.addEventListener("input", () => {
    obs.filter(input.value);
    vars.filter(input.value);
  });
  if (j.obs.length + j.var.length > 0) card.append(input);
  card.append(obs.box, vars.box);

  for (const s of ["obsm", "varm", "obsp", "varp", "layers"] as const) card.append(slotPart(doc, s, j.slots[s] ?? []));

  const raw = section(doc, "raw", "raw", j.raw ? 1 : 0, false);
  raw.body.append(
    j.raw
      ? el(doc, "div", undefined, `${fmt(j.raw.nVars)} vars${j.raw.hasX ? ", with X" : " (no X)"}`)
      : el(doc, "div", CARD_CLASS.muted, "none"),
  );
  card.append(raw.box);

  const uns = section(doc, "uns", "uns", j.uns.length, false);
  if (j.uns.length) {
    const list = el(doc, "div");
    j.uns.slice(0, MAX_ROWS).forEach((k, i) => {
      if (i) list.append(doc.createTextNode(", "));
      list.append(el(doc, "code", CARD_CLASS.name, k));
    });
    if (j.uns.length > MAX_ROWS) list.append(doc.createTextNode(` … ${fmt(j.uns.length - MAX_ROWS)} more`));
    uns.body.append(list);
  } else uns.body.append(el(doc, "div", CARD_CLASS.muted, "none"));
  card.append(uns.box);
}

/** String() that cannot throw (an object without a prototype has no toString). */
function safeString(v: unknown): string {
  try {
    return String(v);
  } catch {
    return typeof v;
  }
}

/**
 * Renders `data` into `host` (replacing its content). Unknown types or
 * versions render a short message rather than throwing.
 */
export function renderReprCard(host: HTMLElement, data: unknown): HTMLElement {
  const doc = host.ownerDocument;
  const card = el(doc, "div", CARD_CLASS.card);
  const j = data as ReprData | null;
  const what = () =>
    j && typeof j === "object"
      ? `${safeString((j as { type?: unknown }).type)} v${safeString((j as { version?: unknown }).version)}`
      : typeof j;
  const cannot = (why: string) => {
    card.replaceChildren(
      el(doc, "div", CARD_CLASS.error, `anndata-oom: cannot render this repr (${why}); update the anndata_oom_lab extension.`),
    );
  };
  try {
    if (j && typeof j === "object" && j.type === "AnnDataOOM" && j.version === 1) {
      card.dataset.type = "AnnDataOOM";
      anndataCard(doc, card, j);
    } else if (j && typeof j === "object" && j.type === "BackedMatrix" && [undefined, 1].includes((j as { version?: number }).version)) {
      card.dataset.type = "BackedMatrix";
      const head = el(doc, "div", CARD_CLASS.header);
      const dims = el(doc, "span", CARD_CLASS.dims, `${fmt(j.shape[0])} × ${fmt(j.shape[1])}`);
      head.append(el(doc, "b", CARD_CLASS.title, "BackedMatrix"), el(doc, "code", CARD_CLASS.name, j.name), dims);
      card.append(head, matrixPart(doc, j, "matrix"));
    } else cannot(what());
  } catch {
    // Output saved by an older or newer engine, with fields missing or of
    // another shape: a message, never a renderer that throws.
    delete card.dataset.type;
    cannot(`${what()}, fields this extension does not know`);
  }
  host.replaceChildren(card);
  return card;
}
