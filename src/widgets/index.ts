/** anndata-oom frontend views (a library; src/extension wires them into JupyterLab). */

export { categoryColor, DEFAULT_20 } from "./palette";
export { PLOT_CLASS, regionAt, renderPlot, utf8Base64 } from "./plot";
export * from "./plot-types";
export * from "./progress";
export { CARD_CLASS, formatBytes, MAX_ROWS, renderReprCard } from "./repr-card";
export * from "./repr-types";
