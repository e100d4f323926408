/**
 * examples/quickstart.ipynb in a real JupyterLab on our kernel (it makes its
 * own 5,000-cell dataset): run all cells; the repr card renders, progress
 * bars reach done, the UMAP scatter draws (pixels read back), a lasso's
 * cells reach the kernel (`plot.selection` has as many cells as the plot
 * shows selected), the Leiden resolution slider changes the number of
 * clusters in the legend, and the saved notebook reopened with no kernel
 * still shows the plot (its snapshot) and the controls.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { expect, test } from "@jupyterlab/galata";
import { canvasPixels, lasso } from "./helpers";

const NOTEBOOK = path.resolve(__dirname, "..", "..", "examples", "quickstart.ipynb");

test("quickstart: run all, scatter, lasso, resolution slider, reopen without a kernel", async ({ page, tmpPath }, testInfo) => {
  test.setTimeout(240_000);
  await page.contents.uploadContent(fs.readFileSync(NOTEBOOK, "utf8"), "text", `${tmpPath}/quickstart.ipynb`);
  await page.notebook.openByPath(`${tmpPath}/quickstart.ipynb`);
  await page.notebook.activate("quickstart.ipynb");
  await page.notebook.run();

  const cells = page.locator(".jp-Notebook .jp-Cell");
  // no cell failed
  await expect(page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")).toHaveCount(0);
  await expect(page.locator(".jp-RenderedText[data-mime-type='application/vnd.jupyter.error']")).toHaveCount(0);

  // the repr card of `adata`
  const card = page.locator(".jp-RenderedAnnDataOOM .aoom-ReprCard").first();
  await expect(card).toBeVisible();
  await expect(card.locator(".aoom-ReprCard-dims")).toContainText("5,000 obs");
  // progress bars of the passes ended done, none still running
  await expect(page.locator('.aoom-Progress[data-state="done"]').first()).toBeAttached();
  expect(await page.locator('.aoom-Progress[data-state="done"]').count()).toBeGreaterThan(3);
  await expect(page.locator('.aoom-Progress[data-state="running"]')).toHaveCount(0);

  // the scatter: live, colored by leiden, drawn
  const live = page.locator('.jp-RenderedAnnDataOOMScatterOutput[data-mode="live"] .jp-RenderedAnnDataOOMScatter');
  await live.scrollIntoViewIfNeeded();
  await expect(live).toBeVisible({ timeout: 30_000 });
  const canvas = live.locator("canvas.aoom-Scatter-canvas");
  await expect.poll(async () => (await canvasPixels(canvas)).nonBlank, { timeout: 30_000 }).toBeGreaterThan(2000);
  const legend = live.locator(".aoom-Scatter-legendItem");
  const before = await legend.count();
  expect(before).toBeGreaterThan(1);
  await page.screenshot({ path: testInfo.outputPath("quickstart-scatter.png") });

  // a lasso over the middle of the plot: the kernel gets as many cells as the plot shows
  await live.locator('button.aoom-Scatter-mode[data-mode="lasso"]').click();
  const box = (await canvas.boundingBox())!;
  await lasso(page, canvas, { x0: box.width * 0.3, y0: box.height * 0.3, x1: box.width * 0.7, y1: box.height * 0.7 });
  const shown = live.locator(".aoom-Scatter-selection");
  await expect(shown).toHaveText(/^[\d,]+ selected$/, { timeout: 10_000 });
  const count = Number((await shown.getAttribute("data-count")) ?? "0");
  expect(count).toBeGreaterThan(10);
  const selectionCell = cells.filter({ hasText: "plot.selection" }).last();
  await selectionCell.locator(".jp-InputArea-editor").click();
  await page.keyboard.press("Control+Enter");
  await expect(selectionCell.locator(".jp-OutputArea-output")).toHaveText(`${count} cells selected`, { timeout: 30_000 });

  // the resolution slider: a low resolution gives fewer clusters, in place
  const controls = page.locator('.jp-RenderedAnnDataOOMControlsOutput[data-mode="live"] .jp-RenderedAnnDataOOMControls .aoom-Controls');
  await expect(controls).toBeVisible();
  const slider = controls.locator('.aoom-Controls-param[data-param="resolution"] input');
  await slider.fill("0.2");
  await expect(controls.locator(".aoom-Controls-status")).toContainText("resolution 0.2", { timeout: 60_000 });
  await expect.poll(async () => legend.count(), { timeout: 30_000 }).not.toBe(before);
  const after = await legend.count();
  expect(after).toBeLessThan(before);
  await expect(controls.locator(".aoom-Controls-status")).toContainText(`${after} cluster`);
  await page.screenshot({ path: testInfo.outputPath("quickstart-resolution.png") });

  // save, stop the kernel, reopen a copy whose kernel does not exist, choose "No Kernel"
  await page.notebook.save();
  await page.notebook.close(true);
  await page.kernel.shutdownAll();
  const res = await page.request.get(`/api/contents/${tmpPath}/quickstart.ipynb?content=1&type=notebook`);
  const saved = (await res.json()).content;
  const scatterOut = saved.cells.find((c: { id: string }) => c.id === "scatter").outputs[0];
  expect(Object.keys(scatterOut.data)).toEqual(expect.arrayContaining(["application/vnd.anndata-oom.scatter+json", "image/png", "application/vnd.jupyter.widget-view+json"]));
  saved.metadata.kernelspec = { name: "no-such-kernel", display_name: "none", language: "typescript" };
  await page.contents.uploadContent(JSON.stringify(saved), "text", `${tmpPath}/reopened.ipynb`);
  await page.filebrowser.open(`${tmpPath}/reopened.ipynb`);
  const dialog = page.locator(".jp-Dialog");
  if (await dialog.isVisible({ timeout: 10_000 }).catch(() => false)) {
    await dialog.getByRole("button", { name: /no kernel/i }).click();
  }
  const snapshot = page.locator('.jp-RenderedAnnDataOOMScatterOutput[data-mode="static"]');
  await snapshot.first().scrollIntoViewIfNeeded();
  await expect(snapshot.locator("img.aoom-Scatter-snapshot")).toBeVisible({ timeout: 30_000 });
  expect(await snapshot.locator("img.aoom-Scatter-snapshot").evaluate((img: HTMLImageElement) => img.naturalWidth)).toBeGreaterThan(100);
  await expect(snapshot.locator(".aoom-Scatter-legendItem").first()).toBeVisible();
  await expect(page.locator('.jp-RenderedAnnDataOOMControlsOutput[data-mode="static"] .aoom-Controls')).toBeVisible();
  await expect(page.getByText("Error displaying widget")).toHaveCount(0);
  await page.screenshot({ path: testInfo.outputPath("quickstart-reopened.png") });
});
