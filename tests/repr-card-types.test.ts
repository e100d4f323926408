/**
 * The frontend's copy of the repr+json wire format (src/widgets/repr-types.ts)
 * matches what the engine writes (src/engine/repr-html.ts): checked at compile
 * time both ways, and the MIME type string at run time.
 */
import * as assert from "node:assert/strict";
import { it } from "node:test";
import type { AnnDataJson, MatrixJson } from "../src/engine/repr-html";
import { REPR_MIME as ENGINE_MIME } from "../src/engine/repr-html";
import type { ReprAnnData, ReprMatrix } from "../src/widgets/repr-types";
import { REPR_MIME as WIDGET_MIME } from "../src/widgets/repr-types";

export const engineToWidget = (j: AnnDataJson): ReprAnnData => j;
export const widgetToEngine = (j: ReprAnnData): AnnDataJson => j;
export const matrixToWidget = (j: MatrixJson): ReprMatrix => j;
export const widgetToMatrix = (j: ReprMatrix): MatrixJson => j;

it("engine and extension agree on the repr MIME type", () => {
  assert.equal(WIDGET_MIME, ENGINE_MIME);
});
