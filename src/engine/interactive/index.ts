/** Interactive widgets shown by our kernel (scatter with lasso, step controls). */
export { type ColorSpec, resolveColor } from "./colors";
export { Controls, controls, type ParamSpec, type RerunStep, type StepBinding } from "./controls";
export { SCATTER_MIME, ScatterPlot, type ScatterOptions, scatter } from "./scatter";
