/**
 * The frontend's copies of the wire types (src/widgets/wire-types.ts) match
 * what the engine sends: the progress bar's JSON (engine → frontend), the
 * explorer's color spec and the controls' parameters (both ways, since the
 * frontend sends values back). Checked at compile time; the MIME / comm
 * names at run time.
 */
import * as assert from "node:assert/strict";
import { it } from "node:test";
import type { ColorSpec as EngineColorSpec } from "../src/engine/interactive/colors";
import type { ParamSpec as EngineParamSpec } from "../src/engine/interactive/controls";
import {
  PROGRESS_MIME as ENGINE_PROGRESS_MIME,
  PROGRESS_TARGET as ENGINE_PROGRESS_TARGET,
  type ProgressJson,
} from "../src/engine/notebook";
import type { ColorSpec, ParamSpec, ProgressData } from "../src/widgets/wire-types";

export const progressToWidget = (j: ProgressJson): ProgressData => j;
export const colorToWidget = (c: EngineColorSpec): ColorSpec => c;
export const colorToEngine = (c: ColorSpec): EngineColorSpec => c;
export const paramToWidget = (p: EngineParamSpec): ParamSpec => p;
export const paramToEngine = (p: ParamSpec): EngineParamSpec => p;

it("engine and extension agree on the progress MIME type and comm target", async () => {
  // progress.ts is DOM code (not in this program): read its constants as text.
  const fs = await import("node:fs");
  const path = await import("node:path");
  const src = fs.readFileSync(path.join(__dirname, "..", "..", "src", "widgets", "progress.ts"), "utf8");
  assert.ok(src.includes(`PROGRESS_MIME = "${ENGINE_PROGRESS_MIME}"`));
  assert.ok(src.includes(`PROGRESS_TARGET = "${ENGINE_PROGRESS_TARGET}"`));
});
