/**
 * A point rasterizer for embeddings: a fixed pixel grid (so 1M points cost
 * a fixed-size image, not 1M SVG elements), anti-aliased discs composited
 * with "source over" alpha blending in draw order.
 */
import { encodePng } from "./png";

export class Raster {
  /** Straight (non-premultiplied) RGBA in 0..1. */
  private readonly px: Float32Array;

  constructor(
    readonly width: number,
    readonly height: number,
  ) {
    this.px = new Float32Array(width * height * 4);
  }

  /** Blend one pixel with color (r, g, b in 0..1) at alpha `a`. */
  blend(x: number, y: number, r: number, g: number, b: number, a: number): void {
    if (x < 0 || y < 0 || x >= this.width || y >= this.height || a <= 0) return;
    const i = (y * this.width + x) * 4;
    const p = this.px;
    const da = p[i + 3];
    const oa = a + da * (1 - a);
    const k = da * (1 - a);
    p[i] = (r * a + p[i] * k) / oa;
    p[i + 1] = (g * a + p[i + 1] * k) / oa;
    p[i + 2] = (b * a + p[i + 2] * k) / oa;
    p[i + 3] = oa;
  }

  /**
   * A disc centred at (cx, cy) (pixel units, pixel centres at +0.5) of
   * radius `radius`; edge pixels get partial coverage. Discs smaller than
   * a pixel become one pixel with alpha scaled by their area.
   */
  disc(cx: number, cy: number, radius: number, r: number, g: number, b: number, alpha = 1): void {
    if (!Number.isFinite(cx) || !Number.isFinite(cy)) return;
    if (radius < 0.564) {
      // area πr² < 1 pixel
      this.blend(Math.floor(cx), Math.floor(cy), r, g, b, alpha * Math.min(1, Math.PI * radius * radius));
      return;
    }
    const x0 = Math.max(0, Math.floor(cx - radius - 0.5));
    const x1 = Math.min(this.width - 1, Math.floor(cx + radius + 0.5));
    const y0 = Math.max(0, Math.floor(cy - radius - 0.5));
    const y1 = Math.min(this.height - 1, Math.floor(cy + radius + 0.5));
    for (let y = y0; y <= y1; y++) {
      const dy = y + 0.5 - cy;
      for (let x = x0; x <= x1; x++) {
        const dx = x + 0.5 - cx;
        const cover = Math.min(1, Math.max(0, radius + 0.5 - Math.sqrt(dx * dx + dy * dy)));
        if (cover > 0) this.blend(x, y, r, g, b, alpha * cover);
      }
    }
  }

  /** 8-bit RGBA bytes. */
  rgba(): Uint8ClampedArray {
    const out = new Uint8ClampedArray(this.px.length);
    for (let i = 0; i < this.px.length; i++) out[i] = Math.round(this.px[i] * 255);
    return out;
  }

  png(): Buffer {
    return encodePng(this.rgba(), this.width, this.height);
  }
}
