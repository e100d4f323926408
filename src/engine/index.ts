/**
 * anndata-oom: out-of-memory AnnData for notebooks.
 *
 * @example
 * import { read } from "anndata-oom";
 * const adata = await read("atlas.h5ad");
 * console.log(adata.toString());
 * const perCell = await adata.X.sum(1);
 */

// obs / var are Arrow tables and their columns Arrow vectors: re-exported so
// that a notebook can name these types through "anndata-oom" (tslab carries
// a cell's variables to the next cell through declarations, which must name
// every type; `const obs = adata.obs` needs Table).
export type { DataType, Table, Vector } from "apache-arrow";
export { AnnDataOOM, type ReadOptions, read, readSync, type WriteOptions } from "./anndata";
export { type AxisStats, BackedMatrix, type Chunk, type CsrChunk, type DenseChunk } from "./backed";
export { Chain, type Step } from "./chain";
export { type DenseArray, type Element, ElementMapping, Layers, type SparseMatrix } from "./elements";
export * from "./errors";
export { type GeneIndexInfo, type GeneIndexOptions, geneIndexDir } from "./gene-index";
export { type PassOptions, type Progress, setDefaultProgress, stderrProgress } from "./pass";
export * as pl from "./pl";
export * as pp from "./pp";
export { formatBytes } from "./repr";
export {
  type AnnDataJson,
  type ColumnJson,
  htmlRepr,
  type MatrixJson,
  matrixHtml,
  REPR_MIME,
  reprJson,
  type SlotEntryJson,
} from "./repr-html";
export { type Indexer, type Slice, slice } from "./selection";
export * as tl from "./tl";
