/**
 * Rich reprs for notebooks: a self-contained HTML card (inline CSS, no
 * scripts, every user string escaped) and the same facts as JSON for
 * `application/vnd.anndata-oom.repr+json`. Reads metadata only.
 */
import type { Table } from "apache-arrow";
import type { AnnDataOOM } from "./anndata";
import type { BackedMatrix } from "./backed";
import { columnKind, formatBytes } from "./repr";
import type { ElementInfo } from "./source";

export const REPR_MIME = "application/vnd.anndata-oom.repr+json";
/** Categories shown per categorical column. */
const CATEGORY_PREVIEW = 5;
/** Columns listed per table before "… and N more". */
const MAX_COLUMNS = 60;
/** Keys listed per slot. */
const MAX_KEYS = 100;

export type MimeBundle = { "text/plain": string; "text/html": string; [REPR_MIME]: unknown };

export function escapeHtml(s: unknown): string {
  return String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c] as string);
}

const n = (x: number) => x.toLocaleString("en-US");

// ---------------------------------------------------------------- JSON

export interface ColumnJson {
  name: string;
  kind: string;
  nulls: number;
  /** First categories of a categorical column. */
  categories?: string[];
  nCategories?: number;
  ordered?: boolean;
}

export interface SlotEntryJson {
  key: string;
  encoding: string;
  shape: number[];
  dtype: string | null;
  inMemory: boolean;
}

export interface MatrixJson {
  type: "BackedMatrix";
  name: string;
  shape: [number, number];
  format: string;
  dtype: string;
  storedEntries: number;
  density: number;
  bytesOnDisk: number;
  /** Bytes of stored data read per 1,000 rows (row chunks). */
  bytesPer1000Rows: number;
  compression: string | null;
  isView: boolean;
  chain: { op: string; description: string }[];
}

export interface AnnDataJson {
  type: "AnnDataOOM";
  version: 1;
  closed: boolean;
  isView: boolean;
  filename: string;
  mode: string;
  shape: [number, number];
  X: MatrixJson | null;
  obs: ColumnJson[];
  var: ColumnJson[];
  slots: Record<"obsm" | "varm" | "obsp" | "varp" | "layers", SlotEntryJson[]>;
  uns: string[];
  raw: { nVars: number; hasX: boolean } | null;
}

function columnsJson(t: Table): ColumnJson[] {
  return t.schema.fields.map((f) => {
    const col = t.getChild(f.name);
    const out: ColumnJson = { name: f.name, kind: columnKind(t, f.name), nulls: col?.nullCount ?? 0 };
    const type = col?.type as { typeId: number; isOrdered?: boolean } | undefined;
    if (col && type?.typeId === -1) {
      const dict = col.data[0]?.dictionary;
      const count = dict?.length ?? 0;
      out.nCategories = count;
      out.ordered = Boolean(type.isOrdered);
      out.categories = [];
      for (let i = 0; i < Math.min(count, CATEGORY_PREVIEW); i++) out.categories.push(String(dict?.get(i)));
    }
    return out;
  });
}

/** Stored bytes per 1,000 rows of the file element (what a row chunk reads). */
function per1000Rows(x: BackedMatrix): number {
  const rows = x.meta.shape[0];
  return rows ? Math.round((x.bytesOnDisk / rows) * 1000) : 0;
}

export function matrixJson(x: BackedMatrix): MatrixJson {
  const descr = x.chain.describe();
  return {
    type: "BackedMatrix",
    name: x.name,
    shape: x.shape,
    format: x.format,
    dtype: x.dtype,
    storedEntries: x.storedEntries,
    density: x.density,
    bytesOnDisk: x.bytesOnDisk,
    bytesPer1000Rows: per1000Rows(x),
    compression: x.meta.compression,
    isView: x.isView,
    chain: x.chain.steps.map((s, i) => ({ op: s.op, description: descr[i] })),
  };
}

/** The slot entries with the view's lengths on the obs/var axes. */
function slotJson(a: AnnDataOOM, slot: keyof AnnDataJson["slots"]): SlotEntryJson[] {
  const [r, c] = a.shape;
  const axes = { obsm: [r], varm: [c], obsp: [r, r], varp: [c, c], layers: [r, c] }[slot];
  return a.slotEntries(slot).map(([key, info]: [string, ElementInfo]) => ({
    key,
    encoding: info.encoding,
    shape: info.shape.map((d, i) => axes[i] ?? d),
    dtype: info.dtype,
    inMemory: info.path === "(in memory)",
  }));
}

export function reprJson(a: AnnDataOOM): AnnDataJson {
  const empty = { obsm: [], varm: [], obsp: [], varp: [], layers: [] };
  const base = { type: "AnnDataOOM" as const, version: 1 as const, filename: a.filename, mode: a.mode, isView: a.isView };
  if (a.isClosed) return { ...base, closed: true, shape: [0, 0], X: null, obs: [], var: [], slots: empty, uns: [], raw: null };
  const raw = a.rawInfo();
  return {
    ...base,
    closed: false,
    shape: a.shape,
    X: a.hasX ? matrixJson(a.X) : null,
    obs: columnsJson(a.obs),
    var: columnsJson(a.var),
    slots: {
      obsm: slotJson(a, "obsm"),
      varm: slotJson(a, "varm"),
      obsp: slotJson(a, "obsp"),
      varp: slotJson(a, "varp"),
      layers: slotJson(a, "layers"),
    },
    uns: a.unsKeys(),
    raw: raw ? { nVars: raw.n_vars, hasX: raw.hasX } : null,
  };
}

// ---------------------------------------------------------------- HTML

const CARD =
  "font:12px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;border:1px solid #d0d7de;border-radius:6px;padding:8px 10px;max-width:900px;background:#fff;color:#1f2328";
const HEAD = "display:flex;flex-wrap:wrap;gap:6px 12px;align-items:baseline;margin-bottom:6px";
const MUTED = "color:#656d76";
const TABLE = "border-collapse:collapse;margin:2px 0 6px 0";
const TD = "padding:1px 8px 1px 0;text-align:left;vertical-align:top;border:none";
const CODE = "font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:11px";
const BADGE = "display:inline-block;padding:0 6px;border-radius:10px;background:#eef2ff;color:#3730a3;font-size:11px";
const SUMMARY = "cursor:pointer;font-weight:600;margin:3px 0";
const PRE = `${CODE};white-space:pre-wrap;margin:2px 0 4px 12px;${MUTED}`;

function row(cells: string[]): string {
  return `<tr>${cells.map((c) => `<td style="${TD}">${c}</td>`).join("")}</tr>`;
}

function details(title: string, count: number, body: string, open = false): string {
  return `<details${open ? " open" : ""} style="margin:2px 0"><summary style="${SUMMARY}">${escapeHtml(title)} <span style="${MUTED};font-weight:400">(${n(count)})</span></summary>${body}</details>`;
}

function matrixRows(x: BackedMatrix): string {
  const j = matrixJson(x);
  return [
    row([
      `<span style="${MUTED}">storage</span>`,
      `${escapeHtml(j.format)} ${escapeHtml(j.dtype)}${j.compression ? `, ${escapeHtml(j.compression)}` : ""}`,
    ]),
    row([
      `<span style="${MUTED}">stored</span>`,
      `${n(j.storedEntries)} entries${x.isView ? " in the file" : ""} (density ${(100 * j.density).toFixed(2)}%)`,
    ]),
    row([`<span style="${MUTED}">on disk</span>`, formatBytes(j.bytesOnDisk)]),
    row([`<span style="${MUTED}">chunk I/O</span>`, `${formatBytes(j.bytesPer1000Rows)} per 1,000 rows`]),
  ].join("");
}

function chainHtml(x: BackedMatrix): string {
  const steps = x.chain.describe();
  const chain = steps.length
    ? `<ol style="margin:2px 0 4px 18px;padding:0">${steps.map((s) => `<li>${escapeHtml(s)}</li>`).join("")}</ol>`
    : `<div style="${MUTED};margin-left:12px">stored values (no transforms)</div>`;
  return details("transform chain", steps.length, `${chain}<pre style="${PRE}">${escapeHtml(x.explain())}</pre>`, steps.length > 0);
}

function columnsHtml(axis: string, cols: ColumnJson[]): string {
  if (!cols.length) return details(axis, 0, `<div style="${MUTED};margin-left:12px">no columns</div>`);
  const shown = cols.slice(0, MAX_COLUMNS).map((c) => {
    let preview = "";
    if (c.categories) {
      const more = (c.nCategories ?? 0) > c.categories.length ? ", …" : "";
      preview = `<span style="${MUTED}">${c.categories.map((x) => escapeHtml(x)).join(", ")}${more}</span>`;
    }
    const nulls = c.nulls ? ` <span style="${MUTED}">${n(c.nulls)} missing</span>` : "";
    return row([
      `<code style="${CODE}">${escapeHtml(c.name)}</code>`,
      `<span style="${BADGE}">${escapeHtml(c.kind)}</span>${nulls}`,
      preview,
    ]);
  });
  const more = cols.length > MAX_COLUMNS ? `<div style="${MUTED}">… and ${n(cols.length - MAX_COLUMNS)} more</div>` : "";
  return details(axis, cols.length, `<table style="${TABLE}">${shown.join("")}</table>${more}`, true);
}

function slotHtml(slot: string, entries: SlotEntryJson[]): string {
  const rows = entries
    .slice(0, MAX_KEYS)
    .map((e) =>
      row([
        `<code style="${CODE}">${escapeHtml(e.key)}</code>`,
        escapeHtml(e.encoding.replace("_matrix", "")),
        escapeHtml(e.shape.map(n).join(" × ")),
        escapeHtml(e.dtype ?? ""),
        e.inMemory ? `<span style="${BADGE}">in memory</span>` : "",
      ]),
    );
  const more = entries.length > MAX_KEYS ? `<div style="${MUTED}">… and ${n(entries.length - MAX_KEYS)} more</div>` : "";
  return details(slot, entries.length, `<table style="${TABLE}">${rows.join("")}</table>${more}`);
}

/** The HTML card of an AnnDataOOM. */
export function htmlRepr(a: AnnDataOOM): string {
  const j = reprJson(a);
  const title = `${j.isView ? "View of " : ""}AnnDataOOM`;
  const file = `<span style="${MUTED}">backed '${escapeHtml(j.mode)}' · <code style="${CODE}">${escapeHtml(j.filename)}</code></span>`;
  if (j.closed) return `<div class="aoom-repr" style="${CARD}"><b>${title}</b> <span style="${BADGE}">closed</span> ${file}</div>`;
  const [r, c] = j.shape;
  const head = `<div style="${HEAD}"><b style="font-size:13px">${title}</b><span><b>${n(r)}</b> obs × <b>${n(c)}</b> vars</span>${file}</div>`;
  const x = a.hasX ? a.X : null;
  const xPart = x
    ? `<div style="font-weight:600">X <span style="${BADGE}">${escapeHtml(x.format)} ${escapeHtml(x.dtype)}</span>${x.isTransformed ? ` <span style="${BADGE}">lazy: ${escapeHtml(x.chain.steps.map((s) => s.op).join(" → "))}</span>` : ""}</div><table style="${TABLE}">${matrixRows(x)}</table>${chainHtml(x)}`
    : `<div><b>X</b> <span style="${MUTED}">none</span></div>`;
  const slots = (["obsm", "varm", "obsp", "varp", "layers"] as const).map((s) => slotHtml(s, j.slots[s])).join("");
  const raw = j.raw
    ? details("raw", 1, `<div style="margin-left:12px">${n(j.raw.nVars)} vars${j.raw.hasX ? ", with X" : " (no X)"}</div>`)
    : details("raw", 0, `<div style="${MUTED};margin-left:12px">none</div>`);
  const uns = details(
    "uns",
    j.uns.length,
    `<div style="margin-left:12px">${j.uns
      .slice(0, MAX_KEYS)
      .map((k) => `<code style="${CODE}">${escapeHtml(k)}</code>`)
      .join(", ")}${j.uns.length > MAX_KEYS ? " …" : ""}</div>`,
  );
  return `<div class="aoom-repr" style="${CARD}">${head}${xPart}${columnsHtml("obs", j.obs)}${columnsHtml("var", j.var)}${slots}${raw}${uns}</div>`;
}

/** The smaller HTML card of a lazy matrix. */
export function matrixHtml(x: BackedMatrix): string {
  const [r, c] = x.shape;
  const head = `<div style="${HEAD}"><b style="font-size:13px">BackedMatrix <code style="${CODE}">${escapeHtml(x.name)}</code></b><span><b>${n(r)}</b> × <b>${n(c)}</b>${x.isView ? " (view)" : ""}</span></div>`;
  return `<div class="aoom-repr" style="${CARD}">${head}<table style="${TABLE}">${matrixRows(x)}</table>${chainHtml(x)}</div>`;
}

export function anndataBundle(a: AnnDataOOM): MimeBundle {
  return { "text/plain": a.toString(), "text/html": htmlRepr(a), [REPR_MIME]: reprJson(a) };
}

export function matrixBundle(x: BackedMatrix): MimeBundle {
  return { "text/plain": x.toString(), "text/html": matrixHtml(x), [REPR_MIME]: matrixJson(x) };
}

/**
 * Give a step's result object a notebook repr (text/plain `summary`)
 * through a non-enumerable `_repr_mimebundle_`, so its data, JSON and
 * equality checks are unchanged.
 */
export function withSummary<T extends object>(result: T, summary: string): T {
  Object.defineProperty(result, "_repr_mimebundle_", {
    value: () => ({ "text/plain": summary, "text/html": `<pre style="margin:0">${escapeHtml(summary)}</pre>` }),
    enumerable: false,
  });
  return result;
}
