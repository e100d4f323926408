/**
 * Static scanpy-style plots: embedding, qcScatter, violin, dotplot, QC
 * histograms. Each returns a `Plot`: an SVG (points as an embedded PNG
 * raster), a PNG of the whole plot, `data` (the numbers drawn), `save()`,
 * and a notebook bundle (SVG, PNG, text and
 * `application/vnd.anndata-oom.plot+json`) that saved notebooks show
 * without a kernel. See docs/plots.md.
 */

export { type ColorOptions, type ColorSpec, resolveColor } from "../interactive/colors";
export { Controls, controls, type ParamSpec, type RerunStep, type StepBinding } from "../interactive/controls";
export { EmbeddingExplorer, type ExploreOptions, explore, SCATTER_MIME } from "../interactive/scatter";
export { ColorScale, categoryColors, colormapNames, DEFAULT_20, DEFAULT_28, DEFAULT_102, defaultPalette, NA_COLOR } from "./colors";
export { type DotplotData, type DotplotOptions, dotArea, dotplot, standardScale } from "./dotplot";
export {
  basisKey,
  drawOrder,
  type EmbeddingData,
  type EmbeddingOptions,
  type EmbeddingPanel,
  embedding,
  type QcScatterOptions,
  qcScatter,
} from "./embedding";
export { DEFAULT_QC_KEYS, type Histogram, histogram, type QcHistogramsData, type QcHistogramsOptions, qcHistograms } from "./histogram";
export { gaussianKde, scottBandwidth } from "./kde";
export { type HoverRegion, MAX_REGIONS, PLOT_MIME, Plot, type PlotKind, type PlotSpec } from "./plot";
export { crc32, encodePng } from "./png";
export { Raster } from "./raster";
export { escapeXml, Svg } from "./svg";
export { type ViolinData, type ViolinGroup, type ViolinOptions, type ViolinPanel, violin } from "./violin";
