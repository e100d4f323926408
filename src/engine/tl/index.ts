/**
 * Tools in scanpy's names (camelCase) and defaults: graph-based steps that
 * work on obsm / obsp in memory and never read X.
 *
 * @example
 * await pp.neighbors(adata);
 * await tl.umap(adata);
 * await tl.leiden(adata, { resolution: 1 });
 * const { graph } = await tl.paga(adata);
 */
export { type LeidenOptions, type LeidenResult, leiden } from "./leiden";
export { type PagaOptions, type PagaResult, paga } from "./paga";
export { type UmapOptions, type UmapResult, umap } from "./umap";
