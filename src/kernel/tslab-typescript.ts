/**
 * tslab's own TypeScript (@tslab/typescript-for-tslab, always installed with
 * the kernel), resolved from tslab's folder and loaded once, on first use.
 */
import { createRequire } from "node:module";

export type TsApi = typeof import("typescript");

let api: TsApi | undefined;

export function tslabTypescript(): TsApi {
  api ??= createRequire(require.resolve("tslab/package.json"))("@tslab/typescript-for-tslab") as TsApi;
  return api;
}
