/**
 * The repr card in a real JupyterLab: a notebook on our kernel reads a small
 * .h5ad; the execute_result renders through OUR mime renderer (not the
 * engine's text/html fallback), and a hostile var column shows as text.
 */
import { expect, test } from "@jupyterlab/galata";
import { openNotebook } from "./helpers";

const HOSTILE = "<img src=x onerror=alert(1)>";
const FIXTURE = process.env.AOOM_UI_FIXTURE as string;

test("a read() result renders as the anndata-oom repr card", async ({ page, tmpPath }, testInfo) => {
  expect(FIXTURE, "run through ui-tests/run.sh (sets AOOM_UI_FIXTURE)").toBeTruthy();
  const dialogs: string[] = [];
  page.on("dialog", async (d) => {
    dialogs.push(d.message());
    await d.dismiss();
  });
  await openNotebook(page, tmpPath, "repr.ipynb", [`import { read } from "anndata-oom";\nawait read(${JSON.stringify(FIXTURE)})`]);
  await page.notebook.runCell(0);

  const out = await page.notebook.getCellOutputLocator(0);
  const card = out!.locator(".jp-RenderedAnnDataOOM .aoom-ReprCard");
  await expect(card).toBeVisible({ timeout: 60_000 });
  // Our renderer, not the text/html fallback.
  await expect(out!.locator(".jp-RenderedHTMLCommon")).toHaveCount(0);
  await expect(card.locator(".aoom-ReprCard-dims")).toHaveText("300 obs × 40 vars");
  await expect(card.locator('[data-badge="backed"]')).toHaveText("backed 'r'");
  await expect(card.locator('details[data-section="obs"] tr[data-name="cell_type"] .aoom-ReprCard-chip')).toHaveCount(4);

  // The hostile var column: its name as text, no <img>, no alert.
  const hostile = card.locator('details[data-section="var"] .aoom-ReprCard-name', { hasText: HOSTILE });
  await expect(hostile).toHaveCount(1);
  await expect(hostile).toHaveText(HOSTILE);
  await expect(out!.locator("img")).toHaveCount(0);

  // The filter box narrows the var table.
  await card.locator("input.aoom-ReprCard-filter").fill("gene_ids");
  await expect(card.locator('details[data-section="var"] tr')).toHaveCount(1);
  await card.locator("input.aoom-ReprCard-filter").fill("");

  // Foldable sections: obsm starts closed and opens on click.
  const obsm = card.locator('details[data-section="obsm"]');
  await expect(obsm).not.toHaveAttribute("open", "");
  await obsm.locator("summary").click();
  await expect(obsm.locator('tr[data-name="X_umap"]')).toBeVisible();

  await card.screenshot({ path: testInfo.outputPath("repr-card.png") });
  expect(dialogs).toEqual([]);
});

test("a lazy X shows the lazy badge and the transform chain", async ({ page, tmpPath }) => {
  const src = [
    'import { pp, read } from "anndata-oom";',
    `const a = await read(${JSON.stringify(FIXTURE)});`,
    "await pp.normalizeTotal(a, { targetSum: 1e4 });",
    "pp.log1p(a);",
    "a",
  ].join("\n");
  await openNotebook(page, tmpPath, "repr.ipynb", [src]);
  await page.notebook.runCell(0);
  const out = await page.notebook.getCellOutputLocator(0);
  const card = out!.locator(".jp-RenderedAnnDataOOM .aoom-ReprCard");
  await expect(card).toBeVisible({ timeout: 60_000 });
  await expect(card.locator('[data-badge="lazy"]').first()).toBeVisible();
  const chain = card.locator('details[data-section="chain"]');
  await expect(chain).toHaveAttribute("open", "");
  await expect(chain.locator("li")).toHaveCount(2);
  await expect(chain.locator("li .aoom-ReprCard-name")).toHaveText(["normalize", "log1p"]);
});

test("a saved notebook reopened untrusted shows the card from the file", async ({ page, tmpPath }) => {
  await openNotebook(page, tmpPath, "repr.ipynb", [`import { read } from "anndata-oom";\nawait read(${JSON.stringify(FIXTURE)})`]);
  await page.notebook.runCell(0);
  const first = await page.notebook.getCellOutputLocator(0);
  await expect(first!.locator(".jp-RenderedAnnDataOOM .aoom-ReprCard")).toBeVisible({ timeout: 60_000 });
  await page.notebook.save();
  await page.notebook.close(true);
  await page.kernel.shutdownAll();

  // The saved file carries our JSON next to the text/html fallback.
  const res = await page.request.get(`/api/contents/${tmpPath}/repr.ipynb?content=1&type=notebook`);
  expect(res.ok()).toBeTruthy();
  const saved = (await res.json()).content;
  const data = saved.cells[0].outputs.find((o: { output_type: string }) => o.output_type === "execute_result").data;
  expect(Object.keys(data).sort()).toEqual(["application/vnd.anndata-oom.repr+json", "text/html", "text/plain"]);

  // A changed copy has no trusted signature; no cell runs after opening, so
  // the card comes from the saved output. (Opening with "no kernel" through
  // galata's context-menu helper does not work in Lab 4.6; to do.)
  saved.metadata.reopened = true;
  await page.contents.uploadContent(JSON.stringify(saved), "text", `${tmpPath}/saved.ipynb`);
  await page.notebook.openByPath(`${tmpPath}/saved.ipynb`);
  await page.notebook.activate("saved.ipynb");
  const out = await page.notebook.getCellOutputLocator(0);
  const card = out!.locator(".jp-RenderedAnnDataOOM .aoom-ReprCard");
  await expect(card).toBeVisible();
  await expect(card.locator(".aoom-ReprCard-dims")).toHaveText("300 obs × 40 vars");
  await expect(card.locator('details[data-section="var"] .aoom-ReprCard-name', { hasText: HOSTILE })).toHaveText(HOSTILE);
});
