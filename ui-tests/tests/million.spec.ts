/**
 * A million points: pl.explore on a 1,000,000-cell file (10 clusters in
 * X_umap) loads into the browser as Arrow IPC in binary comm buffers and
 * renders (the canvas shows all ten cluster colors, read back); hover
 * still gets a cell's name from the kernel. The times (cell run → drawn)
 * are attached to the test result and printed, for docs/benchmarks.md.
 */
import { expect, test } from "@jupyterlab/galata";
import { canvasPixels, openNotebook } from "./helpers";

const MILLION = process.env.AOOM_UI_MILLION as string;
// scanpy's colors for 10 categories: matplotlib's tab10 cycle
const TAB10: [number, number, number][] = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"].map((h) => [
  Number.parseInt(h.slice(1, 3), 16),
  Number.parseInt(h.slice(3, 5), 16),
  Number.parseInt(h.slice(5, 7), 16),
]);

test("1,000,000 points load and render", async ({ page, tmpPath }, testInfo) => {
  test.setTimeout(300_000);
  expect(MILLION, "run through ui-tests/run.sh (sets AOOM_UI_MILLION)").toBeTruthy();
  await openNotebook(page, tmpPath, "million.ipynb", [
    `import { pl, read } from "anndata-oom";\nconst m = await read(${JSON.stringify(MILLION)});\nconst t0 = Date.now();\nconst plot = await pl.explore(m, { color: "cluster" });\nconsole.log(\`kernel: \${Date.now() - t0} ms\`);\nplot`,
  ]);
  const started = Date.now();
  await page.notebook.runCell(0, true);
  const out = page.locator(".jp-Cell").nth(0).locator(".jp-OutputArea");
  const view = out.locator('.jp-RenderedAnnDataOOMScatterOutput[data-mode="live"] .jp-RenderedAnnDataOOMScatter');
  await expect(view).toBeVisible({ timeout: 120_000 });
  const shown = Date.now();
  await expect(view.locator(".aoom-Scatter-count")).toHaveText("1,000,000 cells");
  const canvas = view.locator("canvas.aoom-Scatter-canvas");
  // every cluster's color is on the canvas
  await expect
    .poll(async () => {
      let seen = 0;
      for (const c of TAB10) if ((await canvasPixels(canvas, c, 30)).match > 50) seen++;
      return seen;
    }, { timeout: 120_000, intervals: [500, 1000, 2000] })
    .toBe(10);
  const drawn = Date.now();
  const px = await canvasPixels(canvas);
  expect(px.nonBlank).toBeGreaterThan(20_000);
  const kernelLine = (await out.locator(".jp-OutputArea-output").first().textContent()) ?? "";
  const timings = `${kernelLine.trim()}; cell run → widget shown ${shown - started} ms; → all 10 clusters drawn ${drawn - started} ms`;
  console.log(`million: ${timings}`);
  testInfo.annotations.push({ type: "timing", description: timings });
  await page.screenshot({ path: testInfo.outputPath("million.png") });

  // hover works at this size too
  const r = (await canvas.boundingBox())!;
  const center = (await canvasPixels(canvas, TAB10[0], 30)).center!;
  await page.mouse.move(r.x + center[0] - 15, r.y + center[1] - 15);
  await page.mouse.move(r.x + center[0], r.y + center[1], { steps: 3 });
  await expect(view.locator(".aoom-Scatter-tooltip")).toContainText("cluster: 0", { timeout: 30_000 });
});
