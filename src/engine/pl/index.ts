/**
 * Static scanpy-style plots: embedding, qcScatter, violin, dotplot, QC
 * histograms. Each returns a `Plot`: an SVG (points as an embedded PNG
 * raster), a PNG of the whole plot, `data` (the numbers drawn), `save()`,
 * and a notebook bundle (SVG, PNG, text and
 * `application/vnd.anndata-oom.plot+json`) that saved notebooks show
 * without a kernel. See docs/plots.md.
 *
 * Only plots and what configures them are exported here, so that `pl.`
 * completion in a notebook lists them; the drawing helpers (PNG encoder,
 * SVG builder, KDE, ...) are imported from their modules.
 */

export { type ColorOptions, type ColorSpec, resolveColor } from "../interactive/colors";
export { Controls, controls, type ParamSpec, type RerunStep, type StepBinding } from "../interactive/controls";
export { EmbeddingExplorer, type ExploreOptions, explore } from "../interactive/scatter";
export { ColorScale, categoryColors, colormapNames, DEFAULT_20, DEFAULT_28, DEFAULT_102, defaultPalette, NA_COLOR } from "./colors";
export { type DotplotData, type DotplotOptions, dotplot } from "./dotplot";
export {
  type EmbeddingData,
  type EmbeddingOptions,
  type EmbeddingPanel,
  embedding,
  pca,
  type QcScatterOptions,
  qcScatter,
  umap,
} from "./embedding";
export { DEFAULT_QC_KEYS, type Histogram, histogram, type QcHistogramsData, type QcHistogramsOptions, qcHistograms } from "./histogram";
export { type HoverRegion, Plot, type PlotKind, type PlotSpec } from "./plot";
export { type ViolinData, type ViolinGroup, type ViolinOptions, type ViolinPanel, violin } from "./violin";
