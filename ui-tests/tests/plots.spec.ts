/**
 * Static plots in a real JupyterLab: pl.dotplot / pl.embedding results render
 * through OUR plot renderer as an <img> whose SVG the browser decodes, the
 * dotplot tooltip shows a cell's values on hover, and a saved notebook
 * reopened untrusted still shows the plot (safe renderer).
 */
import { expect, test } from "@jupyterlab/galata";
import { openNotebook } from "./helpers";

const FIXTURE = process.env.AOOM_UI_FIXTURE as string;

const CELLS = [
  `import { pl, read } from "anndata-oom";\nconst a = await read(${JSON.stringify(FIXTURE)});\nawait pl.dotplot(a, ["gene_0", "gene_1", "gene_2"], "cell_type")`,
  'await pl.embedding(a, { color: "cell_type" })',
];

test("dotplot and embedding render as images with tooltips; reopened untrusted they still show", async ({ page, tmpPath }, testInfo) => {
  expect(FIXTURE, "run through ui-tests/run.sh (sets AOOM_UI_FIXTURE)").toBeTruthy();
  const dialogs: string[] = [];
  page.on("dialog", async (d) => {
    dialogs.push(d.message());
    await d.dismiss();
  });
  await openNotebook(page, tmpPath, "plots.ipynb", CELLS);
  await page.notebook.runCell(0);
  await page.notebook.runCell(1);

  const dot = (await page.notebook.getCellOutputLocator(0))!;
  const img = dot.locator(".jp-RenderedAnnDataOOMPlot img.aoom-Plot-image");
  await expect(img).toBeVisible({ timeout: 60_000 });
  await expect(dot.locator('.aoom-Plot[data-kind="dotplot"]')).toHaveCount(1);
  // Our renderer, not JupyterLab's SVG/PNG ones.
  await expect(dot.locator(".jp-RenderedSVG, .jp-RenderedImage")).toHaveCount(0);
  // The browser decoded the SVG (a broken one has naturalWidth 0).
  await expect.poll(() => img.evaluate((el: HTMLImageElement) => el.complete && el.naturalWidth)).toBeGreaterThan(100);

  // Hover the first dot (group "B", gene_0): the layout puts its cell at (42..64, 8..30) in SVG units.
  const box = (await img.boundingBox())!;
  const scale = box.width / (await img.evaluate((el: HTMLImageElement) => el.naturalWidth));
  await page.mouse.move(box.x + 53 * scale, box.y + 19 * scale);
  const tip = dot.locator(".aoom-Plot-tooltip");
  await expect(tip).toBeVisible();
  await expect(tip).toHaveAttribute("data-region", "0");
  await expect(tip).toHaveText(/^B · gene_0: mean [0-9.e-]+, [0-9.]+% of \d+ cells > cutoff$/);
  await page.mouse.move(box.x + box.width + 40, box.y + box.height + 40);
  await expect(tip).toBeHidden();

  const emb = (await page.notebook.getCellOutputLocator(1))!;
  const eimg = emb.locator(".jp-RenderedAnnDataOOMPlot img.aoom-Plot-image");
  await expect(eimg).toBeVisible({ timeout: 60_000 });
  await expect(emb.locator('.aoom-Plot[data-kind="embedding"]')).toHaveCount(1);
  await expect.poll(() => eimg.evaluate((el: HTMLImageElement) => el.complete && el.naturalWidth)).toBeGreaterThan(300);
  await emb.screenshot({ path: testInfo.outputPath("embedding.png") });
  await dot.screenshot({ path: testInfo.outputPath("dotplot.png") });

  await page.notebook.save();
  await page.notebook.close(true);
  await page.kernel.shutdownAll();
  const res = await page.request.get(`/api/contents/${tmpPath}/plots.ipynb?content=1&type=notebook`);
  const saved = (await res.json()).content;
  // (running the last cell may append an empty one)
  const kinds = saved.cells.slice(0, 2).map((c: { outputs: { output_type: string; data: Record<string, unknown> }[] }) =>
    Object.keys(c.outputs.find((o) => o.output_type === "execute_result")?.data ?? {}).sort(),
  );
  expect(kinds).toEqual([
    ["application/vnd.anndata-oom.plot+json", "image/png", "image/svg+xml", "text/plain"],
    ["application/vnd.anndata-oom.plot+json", "image/png", "image/svg+xml", "text/plain"],
  ]);
  // A changed copy is untrusted; nothing runs, the plots come from the file.
  saved.metadata.reopened = true;
  await page.contents.uploadContent(JSON.stringify(saved), "text", `${tmpPath}/saved-plots.ipynb`);
  await page.notebook.openByPath(`${tmpPath}/saved-plots.ipynb`);
  await page.notebook.activate("saved-plots.ipynb");
  for (const i of [0, 1]) {
    const out = (await page.notebook.getCellOutputLocator(i))!;
    const im = out.locator(".jp-RenderedAnnDataOOMPlot img.aoom-Plot-image");
    await expect(im).toBeVisible();
    await expect.poll(() => im.evaluate((el: HTMLImageElement) => el.complete && el.naturalWidth)).toBeGreaterThan(100);
  }
  expect(dialogs).toEqual([]);
});
