/**
 * The wire format of `application/vnd.anndata-oom.repr+json` (version 1),
 * as the engine's `reprJson()` / `matrixJson()` (src/engine/repr-html.ts)
 * write it. Kept here as plain types so the frontend bundle does not pull
 * in the engine; tests/repr-card-types.test.ts checks both stay in step.
 */

/** The versioned MIME type the repr card renders. */
export const REPR_MIME = "application/vnd.anndata-oom.repr+json";

export interface ReprColumn {
  name: string;
  /** "category(3)", "float32", "str", "int64?" (trailing ? = has missing values) … */
  kind: string;
  nulls: number;
  /** The first categories of a categorical column (in category order). */
  categories?: string[];
  nCategories?: number;
  ordered?: boolean;
}

export interface ReprSlotEntry {
  key: string;
  encoding: string;
  shape: number[];
  dtype: string | null;
  inMemory: boolean;
}

export interface ReprMatrix {
  type: "BackedMatrix";
  name: string;
  shape: [number, number];
  format: string;
  dtype: string;
  storedEntries: number;
  density: number;
  bytesOnDisk: number;
  bytesPer1000Rows: number;
  compression: string | null;
  isView: boolean;
  chain: { op: string; description: string }[];
}

export type ReprSlot = "obsm" | "varm" | "obsp" | "varp" | "layers";

export interface ReprAnnData {
  type: "AnnDataOOM";
  version: 1;
  closed: boolean;
  isView: boolean;
  filename: string;
  mode: string;
  shape: [number, number];
  X: ReprMatrix | null;
  obs: ReprColumn[];
  var: ReprColumn[];
  slots: Record<ReprSlot, ReprSlotEntry[]>;
  uns: string[];
  raw: { nVars: number; hasX: boolean } | null;
}

export type ReprData = ReprAnnData | ReprMatrix;
