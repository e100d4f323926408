/**
 * The progress bar in a real JupyterLab: a cell runs passes over a 100,000-row
 * file one after another; each pass shows OUR bar (not the HTML fallback);
 * clicking Cancel on the running bar stops that pass (its bar ends
 * "cancelled", the cell ends with CancelledError) and the next cell runs.
 */
import { expect, test } from "@jupyterlab/galata";
import { openNotebook } from "./helpers";

const BIG = process.env.AOOM_UI_BIG as string;

test("Cancel on a running progress bar stops that pass", async ({ page, tmpPath }, testInfo) => {
  expect(BIG, "run through ui-tests/run.sh (sets AOOM_UI_BIG)").toBeTruthy();
  const loop = `import { read } from "anndata-oom";
const big = await read(${JSON.stringify(BIG)});
for (let i = 0; i < 40; i++) {
  const v = big.subset({ var: Array.from({ length: 1000 + i }, (_, j) => j) });
  await v.X.mean(1);
}`;
  await openNotebook(page, tmpPath, "progress.ipynb", [loop, "6 * 7"]);
  // run the first cell without waiting for it to finish
  await page.notebook.selectCells(0);
  await page.keyboard.press("Control+Enter");

  const out = page.locator(".jp-Cell").nth(0).locator(".jp-OutputArea");
  const bars = out.locator(".jp-RenderedAnnDataOOM .aoom-Progress");
  await expect(bars.first()).toBeVisible({ timeout: 60_000 });
  await expect(out.locator(".jp-RenderedHTMLCommon")).toHaveCount(0);
  // a running bar has a Cancel button; final ones have none
  const button = out.locator('.aoom-Progress[data-state="running"] .aoom-Progress-cancel');
  await expect(button.first()).toBeVisible({ timeout: 30_000 });
  await expect(out.locator('.aoom-Progress[data-state="done"] .aoom-Progress-cancel')).toHaveCount(0);
  // That pass ends cancelled; the cell stops with CancelledError (the loop had no catch).
  // A pass takes ~0.4 s here: a click can reach the kernel after the pass it was
  // made on has finished (the kernel then answers found: false and the loop goes
  // on), so click the running bar again until one pass ends cancelled.
  const cancelled = out.locator('.aoom-Progress[data-state="cancelled"]');
  await expect(async () => {
    await button
      .first()
      .click({ timeout: 1_000 })
      .catch(() => undefined);
    await expect(cancelled).toHaveCount(1, { timeout: 2_000 });
  }).toPass({ timeout: 30_000 });
  await expect(cancelled.locator(".aoom-Progress-cancel")).toHaveCount(0);
  await expect(out).toContainText("CancelledError", { timeout: 30_000 });
  const n = await bars.count();
  expect(n).toBeLessThan(40);
  await expect(out.locator('.aoom-Progress[data-state="running"]')).toHaveCount(0);
  await page.screenshot({ path: testInfo.outputPath("progress-cancelled.png") });

  // the kernel is free: the next cell runs
  await page.notebook.runCell(1);
  await expect(page.locator(".jp-Cell").nth(1).locator(".jp-OutputArea-output")).toContainText("42", { timeout: 30_000 });
});
