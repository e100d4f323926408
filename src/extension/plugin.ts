/**
 * The regular JupyterLab plugin: registers our Jupyter widget module
 * ("anndata-oom-lab": the scatter and controls models/views) with
 * @jupyter-widgets' registry, so models the kernel opens over comms find
 * their classes. The mime renderers are in mime.ts.
 */

import { IJupyterWidgetRegistry } from "@jupyter-widgets/base";
import type { JupyterFrontEnd, JupyterFrontEndPlugin } from "@jupyterlab/application";
import { ControlsModel, ControlsView, MODULE_NAME, MODULE_VERSION, ScatterModel, ScatterView } from "./widget-models";

const widgetsPlugin: JupyterFrontEndPlugin<void> = {
  id: "anndata-oom-lab:widgets",
  description: "anndata-oom's Jupyter widgets: the embedding scatter and step controls",
  requires: [IJupyterWidgetRegistry],
  autoStart: true,
  activate: (_app: JupyterFrontEnd, registry: IJupyterWidgetRegistry) => {
    registry.registerWidget({
      name: MODULE_NAME,
      version: MODULE_VERSION,
      exports: { ScatterModel, ScatterView, ControlsModel, ControlsView },
    });
  },
};

export default [widgetsPlugin];
