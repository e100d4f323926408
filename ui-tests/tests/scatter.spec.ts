/**
 * The embedding scatter in a real JupyterLab (WebGL in Debian Chromium via
 * SwiftShader): a file with three tight clusters of 100 / 150 / 50 cells;
 * the canvas has the clusters' colors; hovering a cluster shows a cell's
 * name and group (asked from the kernel); a lasso around the orange cluster
 * (found by reading the canvas pixels back) sends exactly its 150 cells to
 * the kernel, where `plot.selection` subsets the object; a drag pans and the
 * wheel zooms (the cluster's pixels move / spread); recoloring by a gene
 * swaps the legend for a color bar in place.
 */
import { expect, test } from "@jupyterlab/galata";
import { canvasPixels, lasso, openNotebook } from "./helpers";

const CLUSTERS = process.env.AOOM_UI_CLUSTERS as string;
const ORANGE: [number, number, number] = [0xff, 0x7f, 0x0e]; // scanpy default_20[1]: group "B"
const BLUE: [number, number, number] = [0x1f, 0x77, 0xb4]; // default_20[0]: group "A"

test("scatter: pixels, hover, a lasso returns one cluster's 150 cells to the kernel, pan, zoom, recolor by a gene in place", async ({ page, tmpPath }, testInfo) => {
  expect(CLUSTERS, "run through ui-tests/run.sh (sets AOOM_UI_CLUSTERS)").toBeTruthy();
  await openNotebook(page, tmpPath, "scatter.ipynb", [
    `import { pl, read } from "anndata-oom";\nconst c = await read(${JSON.stringify(CLUSTERS)});\nconst plot = await pl.explore(c, { color: "group" });\nplot`,
    `const picked = c.subset({ obs: plot.selection });\nconsole.log(\`selected \${picked.nObs} \${[...new Set(picked.obs.getChild("group")!.toArray())].join(",")}\`);`,
    'await plot.setColor("g3");\nconsole.log("recolored");',
  ]);
  await page.notebook.runCell(0);
  const out = page.locator(".jp-Cell").nth(0).locator(".jp-OutputArea");
  const live = out.locator('.jp-RenderedAnnDataOOMScatterOutput[data-mode="live"]');
  await expect(live).toHaveCount(1, { timeout: 30_000 });
  const view = live.locator(".jp-RenderedAnnDataOOMScatter"); // the widget view (the hidden snapshot has a legend too)
  const canvas = view.locator("canvas.aoom-Scatter-canvas");
  await expect(canvas).toBeVisible();
  await expect(view.locator(".aoom-Scatter-legendItem")).toHaveCount(3);
  await expect(view.locator(".aoom-Scatter-legendItem").nth(1)).toHaveAttribute("data-category", "B");

  // the points are drawn: wait until the orange cluster's pixels show up
  await expect.poll(async () => (await canvasPixels(canvas, ORANGE)).match, { timeout: 30_000 }).toBeGreaterThan(20);
  const px = await canvasPixels(canvas, ORANGE);
  expect(px.nonBlank).toBeGreaterThan(200);
  const blue = await canvasPixels(canvas, BLUE);
  expect(blue.match).toBeGreaterThan(20);
  await page.screenshot({ path: testInfo.outputPath("scatter.png") });

  // hover the middle of the blue cluster: the kernel answers with a cell of group A
  const r = (await canvas.boundingBox())!;
  const [cx, cy] = blue.center!;
  await page.mouse.move(r.x + cx - 20, r.y + cy - 20);
  await page.mouse.move(r.x + cx, r.y + cy, { steps: 5 });
  const tip = view.locator(".aoom-Scatter-tooltip");
  await expect(tip).toBeVisible({ timeout: 10_000 });
  await expect(tip).toContainText("group: A");
  await expect(tip).toContainText(/c\d+/);

  // lasso around the orange cluster (a margin of 12 px; the others are far away)
  await view.locator('button.aoom-Scatter-mode[data-mode="lasso"]').click();
  const o = px.box!;
  await lasso(page, canvas, { x0: o.x0 - 12, y0: o.y0 - 12, x1: o.x1 + 12, y1: o.y1 + 12 });
  await expect(view.locator(".aoom-Scatter-selection")).toHaveText("150 selected", { timeout: 10_000 });
  await page.screenshot({ path: testInfo.outputPath("scatter-lasso.png") });

  await page.notebook.runCell(1);
  await expect(page.locator(".jp-Cell").nth(1).locator(".jp-OutputArea-output")).toContainText("selected 150 B", { timeout: 30_000 });

  // pan (drag in Pan mode) moves the points with the mouse; the wheel zooms in
  await view.locator('button.aoom-Scatter-mode[data-mode="panZoom"]').click();
  await page.keyboard.press("Escape");
  const before = (await canvasPixels(canvas, BLUE)).center!;
  await page.mouse.move(r.x + 20, r.y + 20);
  await page.mouse.down();
  await page.mouse.move(r.x + 80, r.y + 20, { steps: 8 });
  await page.mouse.up();
  await expect.poll(async () => ((await canvasPixels(canvas, BLUE)).center?.[0] ?? 0) - before[0], { timeout: 10_000 }).toBeGreaterThan(40);
  const spread = async () => {
    const b = (await canvasPixels(canvas, BLUE)).box;
    return b ? b.x1 - b.x0 : 0;
  };
  const wide = await spread();
  const mid = (await canvasPixels(canvas, BLUE)).center!;
  await page.mouse.move(r.x + mid[0], r.y + mid[1]);
  await page.mouse.wheel(0, -400);
  await expect.poll(spread, { timeout: 10_000 }).toBeGreaterThan(wide * 1.3);

  // recolor in place by a gene: the legend becomes a color bar (vmin / vmax), the points get viridis colors
  await page.notebook.runCell(2);
  await expect(page.locator(".jp-Cell").nth(2).locator(".jp-OutputArea")).toContainText("recolored", { timeout: 30_000 });
  await expect(view.locator(".aoom-Scatter-legendItem")).toHaveCount(0);
  await expect(view.locator(".aoom-Scatter-colorbar")).toBeVisible();
  await expect(view.locator(".aoom-Scatter-title")).toHaveText("g3");
  await expect(view.locator(".aoom-Scatter-vmin")).toHaveText("0");
  await expect.poll(async () => (await canvasPixels(canvas, ORANGE)).match, { timeout: 30_000 }).toBeLessThan(5);
  await page.screenshot({ path: testInfo.outputPath("scatter-gene.png") });
});
