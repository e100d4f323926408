/**
 * A static plot from `application/vnd.anndata-oom.plot+json`: the engine's
 * SVG shown as an `<img>` with a `data:image/svg+xml;base64` source — an
 * image context, where browsers run no scripts and load nothing external,
 * so nothing in the SVG (including hostile names) can execute — and a
 * tooltip for the spec's hover regions (e.g. dotplot cell values), set with
 * `textContent`.
 */
import { PLOT_MIME, type PlotData, type PlotHoverRegion } from "./plot-types";

export { PLOT_MIME };

/** CSS classes (stable: tests and galata use them). */
export const PLOT_CLASS = {
  root: "aoom-Plot",
  stage: "aoom-Plot-stage",
  image: "aoom-Plot-image",
  tooltip: "aoom-Plot-tooltip",
  message: "aoom-Plot-message",
} as const;

/** The largest plot side accepted (the engine's plots stay far below it). */
const MAX_SIDE = 1 << 20;

function isPlotData(d: unknown): d is PlotData {
  const p = d as Partial<PlotData> | null;
  return (
    !!p &&
    p.type === "AnnDataOOMPlot" &&
    p.version === 1 &&
    typeof p.svg === "string" &&
    typeof p.width === "number" &&
    typeof p.height === "number" &&
    p.width > 0 &&
    p.height > 0 &&
    // <img> sizes are 32-bit: anything larger is not a plot of ours.
    p.width <= MAX_SIDE &&
    p.height <= MAX_SIDE
  );
}

/** base64 of the UTF-8 bytes of `s` (btoa alone rejects non-Latin-1 text). */
export function utf8Base64(s: string): string {
  const bytes = new TextEncoder().encode(s);
  let bin = "";
  for (let i = 0; i < bytes.length; i += 0x8000) bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(bin);
}

/** The region under SVG point (x, y); the last drawn wins. */
export function regionAt(regions: PlotHoverRegion[], x: number, y: number): number {
  for (let i = regions.length - 1; i >= 0; i--) {
    const r = regions[i];
    if (x >= r.x && x < r.x + r.w && y >= r.y && y < r.y + r.h) return i;
  }
  return -1;
}

/**
 * Render (or re-render) `data` into `host`. The root carries
 * `data-kind` (embedding / qcScatter / violin / dotplot / histogram); the tooltip
 * carries `data-region` (index into the spec's regions) while visible.
 */
export function renderPlot(host: HTMLElement, data: unknown): void {
  const doc = host.ownerDocument;
  host.replaceChildren();
  const root = doc.createElement("div");
  root.className = PLOT_CLASS.root;
  host.appendChild(root);
  if (!isPlotData(data)) {
    const msg = doc.createElement("div");
    msg.className = PLOT_CLASS.message;
    const d = data as { type?: unknown; version?: unknown } | null;
    msg.textContent = `anndata-oom: cannot render this plot (${String(d?.type ?? "no type")} v${String(d?.version ?? "?")})`;
    root.appendChild(msg);
    return;
  }
  root.dataset.kind = String(data.kind);
  const stage = doc.createElement("div");
  stage.className = PLOT_CLASS.stage;
  const img = doc.createElement("img");
  img.className = PLOT_CLASS.image;
  img.src = `data:image/svg+xml;base64,${utf8Base64(data.svg)}`;
  img.alt = String(data.title || data.kind);
  // Explicit size: the renderer runs before the node is attached.
  img.width = data.width;
  img.height = data.height;
  img.draggable = false;
  const tip = doc.createElement("div");
  tip.className = PLOT_CLASS.tooltip;
  tip.hidden = true;
  stage.append(img, tip);
  root.appendChild(stage);
  // Well-formed rectangles only: a saved output of another version may hold anything.
  const regions = (Array.isArray(data.regions) ? data.regions : []).filter(
    (r): r is PlotHoverRegion => !!r && typeof r === "object" && [r.x, r.y, r.w, r.h].every((v) => typeof v === "number"),
  );
  if (!regions.length) return;
  img.addEventListener("mousemove", (e: MouseEvent) => {
    const rect = img.getBoundingClientRect();
    // The image may be scaled down (max-width: 100%): map to SVG units.
    const sx = rect.width > 0 ? data.width / rect.width : 1;
    const sy = rect.height > 0 ? data.height / rect.height : 1;
    const x = (e.clientX - rect.left) * sx;
    const y = (e.clientY - rect.top) * sy;
    const i = regionAt(regions, x, y);
    if (i < 0) {
      tip.hidden = true;
      delete tip.dataset.region;
      return;
    }
    tip.textContent = String(regions[i].label);
    tip.dataset.region = String(i);
    tip.hidden = false;
    tip.style.left = `${Math.round(e.clientX - rect.left + 12)}px`;
    tip.style.top = `${Math.round(e.clientY - rect.top + 12)}px`;
  });
  img.addEventListener("mouseleave", () => {
    tip.hidden = true;
    delete tip.dataset.region;
  });
}
