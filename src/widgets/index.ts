/** anndata-oom frontend views (a library; src/extension wires them into JupyterLab). */

export { categoryColor, DEFAULT_20 } from "./palette";
export * from "./progress";
export { CARD_CLASS, formatBytes, MAX_ROWS, renderReprCard } from "./repr-card";
export * from "./repr-types";
