/** Shared steps of the galata specs. */
import { expect, type IJupyterLabPageFixture } from "@jupyterlab/galata";
import type { Locator } from "@playwright/test";

export const KERNELSPEC = { name: "anndata-oom", display_name: "AnnData OOM (TypeScript)", language: "typescript" };

/** Uploads a notebook on our kernel with these code cells and opens it. */
export async function openNotebook(page: IJupyterLabPageFixture, tmpPath: string, name: string, cells: string[]): Promise<void> {
  const nb = {
    nbformat: 4,
    nbformat_minor: 5,
    metadata: { kernelspec: KERNELSPEC, language_info: { name: "typescript" } },
    cells: cells.map((source, i) => ({ cell_type: "code", id: `c${i}`, metadata: {}, execution_count: null, outputs: [], source })),
  };
  await page.contents.uploadContent(JSON.stringify(nb), "text", `${tmpPath}/${name}`);
  await page.notebook.openByPath(`${tmpPath}/${name}`);
  await page.notebook.activate(name);
}

/** Pixel statistics of a 2-D canvas: non-blank pixels and the bounding box (CSS px) of pixels near `rgb`. */
export async function canvasPixels(
  canvas: Locator,
  rgb?: [number, number, number],
  tol = 40,
): Promise<{ nonBlank: number; match: number; box: { x0: number; y0: number; x1: number; y1: number } | null; center: [number, number] | null }> {
  return canvas.evaluate(
    (c: HTMLCanvasElement, [target, tolerance]) => {
      const ctx = c.getContext("2d");
      if (!ctx) return { nonBlank: -1, match: 0, box: null, center: null };
      const { data, width, height } = ctx.getImageData(0, 0, c.width, c.height);
      const rect = c.getBoundingClientRect();
      const sx = rect.width / width;
      const sy = rect.height / height;
      let nonBlank = 0;
      let match = 0;
      let x0 = Number.POSITIVE_INFINITY;
      let y0 = Number.POSITIVE_INFINITY;
      let x1 = -1;
      let y1 = -1;
      let cx = 0;
      let cy = 0;
      for (let y = 0; y < height; y++) {
        for (let x = 0; x < width; x++) {
          const k = 4 * (y * width + x);
          if (data[k + 3] === 0) continue;
          nonBlank++;
          const t = target as number[] | null;
          if (t && data[k + 3] > 128 && Math.abs(data[k] - t[0]) <= tolerance && Math.abs(data[k + 1] - t[1]) <= tolerance && Math.abs(data[k + 2] - t[2]) <= tolerance) {
            match++;
            cx += x;
            cy += y;
            x0 = Math.min(x0, x);
            y0 = Math.min(y0, y);
            x1 = Math.max(x1, x);
            y1 = Math.max(y1, y);
          }
        }
      }
      const box = match > 0 ? { x0: x0 * sx, y0: y0 * sy, x1: x1 * sx, y1: y1 * sy } : null;
      const center: [number, number] | null = match > 0 ? [(cx / match) * sx, (cy / match) * sy] : null;
      return { nonBlank, match, box, center };
    },
    [rgb ?? null, tol] as const,
  );
}

/** Drags a rectangular lasso (in the canvas's CSS px) with small mouse steps, as a user would. */
export async function lasso(page: IJupyterLabPageFixture, canvas: Locator, box: { x0: number; y0: number; x1: number; y1: number }): Promise<void> {
  const r = await canvas.boundingBox();
  expect(r).not.toBeNull();
  const ox = r!.x;
  const oy = r!.y;
  const corners: [number, number][] = [
    [box.x0, box.y0],
    [box.x1, box.y0],
    [box.x1, box.y1],
    [box.x0, box.y1],
    [box.x0, box.y0 + 10], // close to the start, as a hand would (the lasso closes itself)
  ];
  await page.mouse.move(ox + corners[0][0], oy + corners[0][1]);
  await page.mouse.down();
  for (let i = 1; i < corners.length; i++) {
    const [ax, ay] = corners[i - 1];
    const [bx, by] = corners[i];
    for (let s = 1; s <= 10; s++) {
      await page.mouse.move(ox + ax + ((bx - ax) * s) / 10, oy + ay + ((by - ay) * s) / 10);
      await page.waitForTimeout(10);
    }
  }
  await page.mouse.up();
}
