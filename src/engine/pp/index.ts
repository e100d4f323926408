/**
 * Preprocessing in scanpy's names (camelCase) and defaults. Steps append
 * lazy nodes to X's chain; only steps that need statistics run a pass.
 *
 * @example
 * pp.markGenes(adata, "mt", /^MT-/);
 * await pp.calculateQcMetrics(adata, { qcVars: ["mt"] });
 * adata = await pp.filterCells(adata, { minGenes: 200 });
 * await pp.normalizeTotal(adata, { targetSum: 1e4 });
 * pp.log1p(adata);
 * await pp.highlyVariableGenes(adata, { nTopGenes: 2000 });
 * adata = adata.subset({ var: hvMask });
 * await pp.scale(adata, { maxValue: 10 });
 * await pp.pca(adata, { nComps: 50 });
 * await pp.neighbors(adata, { nNeighbors: 15 });
 */
export { type FilterOptions, filterCells, filterGenes } from "./filter";
export { type HvgOptions, highlyVariableGenes } from "./hvg";
export { type NeighborsOptions, type NeighborsResult, neighbors } from "./neighbors";
export { type Log1pOptions, log1p, type NormalizeOptions, normalizeTotal } from "./normalize";
export { type PcaOptions, pca } from "./pca";
export { anndataoomQcNames, calculateQcMetrics, markGenes, type QcOptions } from "./qc";
export { type ScaleOptions, scale } from "./scale";
