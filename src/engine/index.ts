/**
 * anndata-oom: out-of-memory AnnData for notebooks.
 *
 * @example
 * import { read } from "anndata-oom";
 * const adata = await read("atlas.h5ad");
 * console.log(adata.toString());
 * const perCell = await adata.X.sum(1);
 */
export { AnnDataOOM, read, readSync, type ReadOptions, type WriteOptions } from "./anndata";
export { BackedMatrix, type Chunk, type CsrChunk, type DenseChunk, type AxisStats } from "./backed";
export { ElementMapping, Layers, type DenseArray, type SparseMatrix, type Element } from "./elements";
export * from "./errors";
export { type Progress, type PassOptions, setDefaultProgress, stderrProgress } from "./pass";
export { slice, type Slice, type Indexer } from "./selection";
export { formatBytes } from "./repr";
