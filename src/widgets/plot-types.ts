/**
 * The `application/vnd.anndata-oom.plot+json` v1 wire format, as the engine
 * writes it (src/engine/pl/plot.ts, `PlotSpec`); copied as types so the
 * extension does not import the engine. tests/plot-types.test.ts (root)
 * checks at compile time that both agree.
 */
export const PLOT_MIME = "application/vnd.anndata-oom.plot+json";

export interface PlotHoverRegion {
  x: number;
  y: number;
  w: number;
  h: number;
  label: string;
}

export interface PlotData {
  type: "AnnDataOOMPlot";
  version: 1;
  kind: "embedding" | "qcScatter" | "violin" | "dotplot" | "histogram";
  title: string;
  width: number;
  height: number;
  svg: string;
  regions: PlotHoverRegion[];
  summary: Record<string, unknown>;
}
