/**
 * How obs/var tables look in a notebook and in console.log: the first and
 * last rows with the index, as pandas shows a DataFrame, instead of the
 * Arrow Table's internals (schema, record batches, buffers); a column from
 * `getChild` shows as a pandas Series. Attached to each table the engine
 * makes, as non-enumerable properties, so the tables stay plain Arrow
 * tables otherwise.
 */
import { inspect } from "node:util";
import type { Table, Vector } from "apache-arrow";
import { escapeHtml } from "./repr-html";
import { vectorKind } from "./typed";

/** Rows shown at each end of a long table (pandas shows 5 + 5 in text, more in HTML). */
const EDGE_ROWS = 5;
const MAX_CELL_CHARS = 40;
/** Columns shown at each end of a wide table (pandas shows 20 in all). */
const EDGE_COLUMNS = 10;

function cell(v: Vector | null, i: number): string {
  const x = v?.get(i);
  if (x === null || x === undefined) return v?.type && String(v.type).startsWith("Float") ? "NaN" : "NA";
  if (typeof x === "number") return Number.isInteger(x) ? String(x) : x.toPrecision(6).replace(/\.?0+$/, "");
  const s = String(x);
  return s.length > MAX_CELL_CHARS ? `${s.slice(0, MAX_CELL_CHARS - 1)}…` : s;
}

/** Row positions to show: all, or the first and last EDGE_ROWS with a gap (-1) between. */
function shownRows(n: number): number[] {
  if (n <= 2 * EDGE_ROWS) return Array.from({ length: n }, (_, i) => i);
  return [...Array.from({ length: EDGE_ROWS }, (_, i) => i), -1, ...Array.from({ length: EDGE_ROWS }, (_, i) => n - EDGE_ROWS + i)];
}

function grid(table: Table, index: Vector): { header: string[]; rows: string[][]; nColumns: number } {
  const all = table.schema.fields.map((f) => f.name);
  // null marks the gap in a wide table.
  const names: (string | null)[] = all.length > 2 * EDGE_COLUMNS ? [...all.slice(0, EDGE_COLUMNS), null, ...all.slice(-EDGE_COLUMNS)] : all;
  const cols = names.map((n) => (n === null ? null : table.getChild(n)));
  const header = ["", ...names.map((n) => n ?? "…")];
  const rows = shownRows(index.length).map((i) =>
    i < 0 ? header.map(() => "…") : [cell(index, i), ...cols.map((c) => (c === null ? "…" : cell(c, i)))],
  );
  return { header, rows, nColumns: all.length };
}

export function tableText(table: Table, index: Vector): string {
  const { header, rows, nColumns } = grid(table, index);
  const widths = header.map((h, k) => Math.max(h.length, ...rows.map((r) => r[k].length)));
  const line = (r: string[]) => r.map((c, k) => (k === 0 ? c.padEnd(widths[k]) : c.padStart(widths[k]))).join("  ");
  return [line(header), ...rows.map(line), "", `[${index.length.toLocaleString("en-US")} rows × ${nColumns} columns]`].join("\n");
}

export function tableHtml(table: Table, index: Vector): string {
  const { header, rows, nColumns } = grid(table, index);
  const th = header.map((h) => `<th>${escapeHtml(h)}</th>`).join("");
  const body = rows
    .map(
      (r) =>
        `<tr><th>${escapeHtml(r[0])}</th>${r
          .slice(1)
          .map((c) => `<td>${escapeHtml(c)}</td>`)
          .join("")}</tr>`,
    )
    .join("");
  return `<div><table class="dataframe"><thead><tr style="text-align: right;">${th}</tr></thead><tbody>${body}</tbody></table><p>${index.length.toLocaleString("en-US")} rows × ${nColumns} columns</p></div>`;
}

/** pandas' Index form: `Index(['AAAC-1', 'AAAG-1', ..., 'TTTC-1'], length=100000)`. */
export function indexText(index: Vector): string {
  const n = index.length;
  const q = (i: number) => `'${cell(index, i).replace(/'/g, "\\'")}'`;
  const items = shownRows(n).map((i) => (i < 0 ? "..." : q(i)));
  return `Index([${items.join(", ")}], length=${n})`;
}

/** Give an obs/var index (the names) the same short forms; returns it. */
export function withIndexRepr(index: Vector): Vector {
  if (Object.hasOwn(index, "_repr_mimebundle_")) return index;
  Object.defineProperties(index, {
    _repr_mimebundle_: { value: () => ({ "text/plain": indexText(index) }), enumerable: false },
    [inspect.custom]: { value: () => indexText(index), enumerable: false },
  });
  return index;
}

/** pandas' Series form: index and value per row, then name, length and kind. */
export function seriesText(column: Vector, index: Vector, name: string): string {
  const rows = shownRows(column.length).map((i) => (i < 0 ? ["...", ""] : [cell(index, i), cell(column, i)]));
  const w0 = Math.max(0, ...rows.map((r) => r[0].length));
  const w1 = Math.max(0, ...rows.map((r) => r[1].length));
  const body = rows.map(([a, b]) => (a === "..." ? "..." : `${a.padEnd(w0)}    ${b.padStart(w1)}`));
  return [...body, `Name: ${name}, Length: ${column.length}, dtype: ${vectorKind(column)}`].join("\n");
}

/** Give one column of an obs/var table the Series form; returns it. */
function withSeriesRepr(column: Vector | null, index: Vector, name: string): Vector | null {
  if (column === null || column.length !== index.length || Object.hasOwn(column, "_repr_mimebundle_")) return column;
  const text = () => seriesText(column, index, name);
  Object.defineProperties(column, {
    _repr_mimebundle_: { value: () => ({ "text/plain": text() }), enumerable: false },
    [inspect.custom]: { value: text, enumerable: false },
  });
  return column;
}

/** Give `table` a notebook repr and a console.log form; returns it. */
export function withTableRepr(table: Table, index: Vector): Table {
  withIndexRepr(index);
  const proto = Object.getPrototypeOf(table) as Table;
  Object.defineProperties(table, {
    _repr_mimebundle_: {
      value: () => ({ "text/plain": tableText(table, index), "text/html": tableHtml(table, index) }),
      enumerable: false,
    },
    [inspect.custom]: { value: () => tableText(table, index), enumerable: false },
    // A Table makes a new Vector on each call, so the Series form is given per call.
    getChild: {
      value: (name: string) => withSeriesRepr(proto.getChild.call(table, name), index, name),
      enumerable: false,
    },
    getChildAt: {
      value: (i: number) => withSeriesRepr(proto.getChildAt.call(table, i), index, table.schema.fields[i]?.name ?? String(i)),
      enumerable: false,
    },
  });
  return table;
}
