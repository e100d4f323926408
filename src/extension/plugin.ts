/**
 * The regular JupyterLab plugin: registers our Jupyter widget module
 * ("anndata-oom-lab": the scatter and controls models/views) with
 * @jupyter-widgets' registry, so models the kernel opens over comms find
 * their classes, and tells the kernel about outputs cleared without a run
 * (cleared-outputs.ts). The mime renderers are in mime.ts.
 */

import { IJupyterWidgetRegistry } from "@jupyter-widgets/base";
import type { JupyterFrontEnd, JupyterFrontEndPlugin } from "@jupyterlab/application";
import { watchClearOutputCommands } from "./cleared-outputs";
import { ControlsModel, ControlsView, MODULE_NAME, MODULE_VERSION, ScatterModel, ScatterView } from "./widget-models";

const widgetsPlugin: JupyterFrontEndPlugin<void> = {
  id: "anndata-oom-lab:widgets",
  description: "anndata-oom's Jupyter widgets: the embedding scatter and step controls",
  requires: [IJupyterWidgetRegistry],
  autoStart: true,
  activate: (app: JupyterFrontEnd, registry: IJupyterWidgetRegistry) => {
    registry.registerWidget({
      name: MODULE_NAME,
      version: MODULE_VERSION,
      exports: { ScatterModel, ScatterView, ControlsModel, ControlsView },
    });
    watchClearOutputCommands(app.commands, () => app.shell.currentWidget);
  },
};

export default [widgetsPlugin];
