/**
 * The frontend's copy of the plot+json wire format (src/widgets/plot-types.ts)
 * matches what the engine writes (src/engine/pl/plot.ts): checked at compile
 * time both ways, and the MIME type string at run time.
 */
import * as assert from "node:assert/strict";
import { it } from "node:test";
import { PLOT_MIME as ENGINE_MIME, type PlotSpec } from "../src/engine/pl/plot";
import { type PlotData, PLOT_MIME as WIDGET_MIME } from "../src/widgets/plot-types";

export const engineToWidget = (j: PlotSpec): PlotData => j;
export const widgetToEngine = (j: PlotData): PlotSpec => j;

it("engine and extension agree on the plot MIME type", () => {
  assert.equal(WIDGET_MIME, ENGINE_MIME);
});
