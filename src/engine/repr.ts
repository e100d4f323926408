/**
 * The text repr of an AnnDataOOM: dimensions, X's storage, obs/var columns
 * with their kinds, and the other slots, in the spirit of anndata's repr.
 */
import type { Table } from "apache-arrow";
import type { AnnDataOOM } from "./anndata";
import type { ElementInfo } from "./source";
import { vectorKind } from "./typed";

export function formatBytes(n: number): string {
  const units = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  let x = n;
  while (x >= 1024 && i < units.length - 1) {
    x /= 1024;
    i++;
  }
  return `${x.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}

/** The kind of an Arrow column, as a short label ("category(12)", "float32", ...). */
export function columnKind(t: Table, name: string): string {
  const col = t.getChild(name);
  return col ? vectorKind(col) : "?";
}

function columns(t: Table): string {
  const names = t.schema.fields.map((f) => f.name);
  if (!names.length) return "(none)";
  return names.map((n) => `'${n}' ${columnKind(t, n)}`).join(", ");
}

/** "csr 100×50 float32" / "dataframe" / "array 100×2 float64" without reading data. */
export function elementSummary(info: ElementInfo): string {
  const kind = info.encoding.replace("_matrix", "");
  const shape = info.shape.length ? ` ${info.shape.join("×")}` : "";
  return `(${kind}${shape}${info.dtype ? ` ${info.dtype}` : ""})`;
}

export function textRepr(a: AnnDataOOM): string {
  const [n, m] = a.shape;
  const lines: string[] = [];
  const mode = a.isView ? "View of AnnDataOOM" : "AnnDataOOM";
  lines.push(
    `${mode} object with n_obs × n_vars = ${n.toLocaleString("en-US")} × ${m.toLocaleString("en-US")} (backed '${a.mode}' at ${a.filename})`,
  );
  const x = a.hasX ? a.X : null;
  if (x) {
    const comp = x.meta.compression ? `, ${x.meta.compression}` : "";
    lines.push(
      // A view's X counts the file element's entries (counting the view's would take a pass).
      `    X: ${x.format} ${x.dtype}, ${x.storedEntries.toLocaleString("en-US")} stored${x.isView ? " in the file" : ""} (density ${(100 * x.density).toFixed(2)}%), ${formatBytes(x.bytesOnDisk)} on disk${comp}`,
    );
    if (x.isTransformed) {
      // The dtype the chain's values have (and write() stores), as scanpy's X.dtype would show it.
      const values = x.valueDtype !== x.dtype ? ` (${x.valueDtype} values)` : "";
      lines.push(`       lazy: ${x.chain.steps.map((s) => s.op).join(" → ")}${values}`);
    }
  } else {
    lines.push("    X: none");
  }
  lines.push(`    obs: ${columns(a.obs)}`);
  lines.push(`    var: ${columns(a.var)}`);
  for (const slot of ["obsm", "varm", "obsp", "varp", "layers"] as const) {
    const entries = a.slotEntries(slot);
    if (!entries.length) continue;
    // Views: the element axes that follow obs/var take the view's lengths.
    const axes = { obsm: [n], varm: [m], obsp: [n, n], varp: [m, m], layers: [n, m] }[slot];
    const shown = entries.map(([k, info]) => {
      const shape = info.shape.map((d, i) => axes[i] ?? d);
      return `'${k}' ${elementSummary({ ...info, shape })}`;
    });
    lines.push(`    ${slot}: ${shown.join(", ")}`);
  }
  const uns = a.unsKeys();
  if (uns.length) lines.push(`    uns: ${uns.map((k) => `'${k}'`).join(", ")}`);
  const raw = a.rawInfo();
  if (raw) lines.push(`    raw: ${raw.n_vars.toLocaleString("en-US")} vars${raw.hasX ? "" : " (no X)"}`);
  return lines.join("\n");
}
