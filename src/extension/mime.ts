/**
 * JupyterLab mime extension: renders `application/vnd.anndata-oom.repr+json`
 * with the repr card from src/widgets. Only wiring lives here.
 */
import type { IRenderMime } from "@jupyterlab/rendermime-interfaces";
import { Widget } from "@lumino/widgets";
import { renderReprCard } from "../widgets/repr-card";
import { REPR_MIME } from "../widgets/repr-types";

/** The CSS class on the renderer widget's node (tests look for it). */
export const RENDERED_CLASS = "jp-RenderedAnnDataOOM";

/** Renders one repr bundle; re-rendering replaces the card. */
export class ReprRenderer extends Widget implements IRenderMime.IRenderer {
  constructor(private readonly options: IRenderMime.IRendererOptions) {
    super();
    this.addClass(RENDERED_CLASS);
  }

  async renderModel(model: IRenderMime.IMimeModel): Promise<void> {
    renderReprCard(this.node, model.data[this.options.mimeType]);
  }
}

export const rendererFactory: IRenderMime.IRendererFactory = {
  safe: true,
  mimeTypes: [REPR_MIME],
  createRenderer: (options) => new ReprRenderer(options),
};

const extension: IRenderMime.IExtension = {
  id: "anndata-oom-lab:repr",
  description: "Renders AnnDataOOM / BackedMatrix repr cards",
  rendererFactory,
  // Ahead of text/html (rank 50), so our card wins over the engine's HTML fallback.
  rank: 10,
  dataType: "json",
};

export default extension;
