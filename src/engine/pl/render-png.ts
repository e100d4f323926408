/**
 * A PNG of a whole plot, drawn from the same operations as its SVG
 * (svg.ts records them): rects, circles, lines, simple paths (M/L/H/V/Z),
 * embedded PNG images (our own rasters and colour bars) and text in a
 * DejaVu Sans glyph atlas (font-data.ts). Only what the pl.* plots emit is
 * supported; anything else is skipped. Shapes are anti-aliased by exact
 * horizontal span coverage on 4 sub-scanlines per pixel.
 */
import { inflateSync } from "node:zlib";
import { parseHex } from "./colors";
import { FONT_BLOB, FONT_SIZE } from "./font-data";
import { encodePng } from "./png";
import type { Attrs, SvgOp } from "./svg";

type Rgb = [number, number, number];

interface Glyph {
  w: number;
  h: number;
  left: number;
  top: number;
  advance: number;
  alpha: Uint8Array;
}

let glyphs: Map<number, Glyph> | null = null;

function font(): Map<number, Glyph> {
  if (glyphs) return glyphs;
  const raw = inflateSync(Buffer.from(FONT_BLOB, "base64"));
  glyphs = new Map();
  let off = 0;
  for (let code = 32; code <= 126; code++) {
    const w = raw[off];
    const h = raw[off + 1];
    const left = raw.readInt8(off + 2);
    const top = raw.readInt8(off + 3);
    const advance = raw.readUInt16LE(off + 4) / 64;
    off += 6;
    glyphs.set(code, { w, h, left, top, advance, alpha: raw.subarray(off, off + w * h) });
    off += w * h;
  }
  return glyphs;
}

/** Width of `s` in px at font size `size` (non-ASCII characters count as "?"). */
export function measureText(s: string, size: number): number {
  const f = font();
  let w = 0;
  for (const ch of s) w += (f.get(ch.codePointAt(0) ?? 63) ?? (f.get(63) as Glyph)).advance;
  return (w * size) / FONT_SIZE;
}

/** Straight-alpha RGBA canvas on white, blending "source over". */
class Canvas {
  readonly px: Float32Array;
  constructor(
    readonly w: number,
    readonly h: number,
  ) {
    this.px = new Float32Array(w * h * 3).fill(1);
  }

  blend(x: number, y: number, c: Rgb, a: number): void {
    if (x < 0 || y < 0 || x >= this.w || y >= this.h || !(a > 0)) return;
    const i = (y * this.w + x) * 3;
    const k = Math.min(1, a);
    this.px[i] += (c[0] - this.px[i]) * k;
    this.px[i + 1] += (c[1] - this.px[i + 1]) * k;
    this.px[i + 2] += (c[2] - this.px[i + 2]) * k;
  }

  rgba(): Uint8ClampedArray {
    const out = new Uint8ClampedArray(this.w * this.h * 4);
    for (let p = 0, q = 0; p < this.px.length; p += 3, q += 4) {
      out[q] = Math.round(this.px[p] * 255);
      out[q + 1] = Math.round(this.px[p + 1] * 255);
      out[q + 2] = Math.round(this.px[p + 2] * 255);
      out[q + 3] = 255;
    }
    return out;
  }

  /** Fill polygons (even-odd) with coverage from 4 sub-scanlines per pixel and exact spans. */
  fillPolygons(polys: [number, number][][], c: Rgb, alpha: number): void {
    let x0 = Infinity;
    let y0 = Infinity;
    let x1 = -Infinity;
    let y1 = -Infinity;
    for (const poly of polys) {
      for (const [x, y] of poly) {
        if (!Number.isFinite(x) || !Number.isFinite(y)) return;
        x0 = Math.min(x0, x);
        x1 = Math.max(x1, x);
        y0 = Math.min(y0, y);
        y1 = Math.max(y1, y);
      }
    }
    const bx0 = Math.max(0, Math.floor(x0));
    const by0 = Math.max(0, Math.floor(y0));
    const bx1 = Math.min(this.w - 1, Math.ceil(x1));
    const by1 = Math.min(this.h - 1, Math.ceil(y1));
    if (bx1 < bx0 || by1 < by0) return;
    const bw = bx1 - bx0 + 1;
    const cov = new Float32Array(bw);
    const SUB = 4;
    for (let py = by0; py <= by1; py++) {
      cov.fill(0);
      for (let k = 0; k < SUB; k++) {
        const sy = py + (k + 0.5) / SUB;
        const xs: number[] = [];
        for (const poly of polys) {
          for (let e = 0; e < poly.length; e++) {
            const [ax, ay] = poly[e];
            const [cx, cy] = poly[(e + 1) % poly.length];
            if (ay <= sy === cy <= sy) continue;
            xs.push(ax + ((sy - ay) / (cy - ay)) * (cx - ax));
          }
        }
        xs.sort((a, b) => a - b);
        for (let s = 0; s + 1 < xs.length; s += 2) {
          const l = Math.max(bx0, xs[s]);
          const r = Math.min(bx1 + 1, xs[s + 1]);
          if (r <= l) continue;
          for (let px = Math.floor(l); px < r; px++) {
            const span = Math.min(px + 1, r) - Math.max(px, l);
            if (span > 0) cov[px - bx0] += span / SUB;
          }
        }
      }
      for (let i = 0; i < bw; i++) if (cov[i] > 0) this.blend(bx0 + i, py, c, Math.min(1, cov[i]) * alpha);
    }
  }

  /** Ring (or disc when inner ≤ 0) coverage by distance to the centre. */
  ring(cx: number, cy: number, outer: number, inner: number, c: Rgb): void {
    if (!(outer > 0) || !Number.isFinite(cx) || !Number.isFinite(cy)) return;
    const x0 = Math.max(0, Math.floor(cx - outer - 1));
    const x1 = Math.min(this.w - 1, Math.ceil(cx + outer + 1));
    const y0 = Math.max(0, Math.floor(cy - outer - 1));
    const y1 = Math.min(this.h - 1, Math.ceil(cy + outer + 1));
    const clamp = (v: number) => Math.max(0, Math.min(1, v));
    for (let y = y0; y <= y1; y++) {
      for (let x = x0; x <= x1; x++) {
        const d = Math.hypot(x + 0.5 - cx, y + 0.5 - cy);
        const a = clamp(outer + 0.5 - d) - (inner > 0 ? clamp(inner + 0.5 - d) : 0);
        if (a > 0) this.blend(x, y, c, a);
      }
    }
  }
}

/** Decode a PNG written by encodePng (8-bit RGBA, filter 0): the only kind plots embed. */
export function decodeOwnPng(buf: Buffer): { width: number; height: number; rgba: Uint8Array } | null {
  if (buf.length < 33 || buf.readUInt32BE(0) !== 0x89504e47) return null;
  let off = 8;
  let width = 0;
  let height = 0;
  const idat: Buffer[] = [];
  while (off + 8 <= buf.length) {
    const len = buf.readUInt32BE(off);
    const type = buf.toString("ascii", off + 4, off + 8);
    const data = buf.subarray(off + 8, off + 8 + len);
    if (type === "IHDR") {
      width = data.readUInt32BE(0);
      height = data.readUInt32BE(4);
      if (data[8] !== 8 || data[9] !== 6 || data[12] !== 0) return null;
    } else if (type === "IDAT") idat.push(data);
    off += 12 + len;
  }
  const raw = inflateSync(Buffer.concat(idat));
  const stride = width * 4;
  if (raw.length !== (stride + 1) * height) return null;
  const rgba = new Uint8Array(width * height * 4);
  for (let y = 0; y < height; y++) {
    if (raw[y * (stride + 1)] !== 0) return null;
    rgba.set(raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1)), y * stride);
  }
  return { width, height, rgba };
}

const num = (v: Attrs[string], d = 0): number => {
  const x = typeof v === "number" ? v : Number(v);
  return Number.isFinite(x) ? x : d;
};

function color(v: Attrs[string]): Rgb | null {
  if (v === undefined || v === null || v === "none") return null;
  const c = parseHex(String(v));
  return c ? [c[0] / 255, c[1] / 255, c[2] / 255] : null;
}

/** Outline of a stroked segment as a quad. */
function segment(ax: number, ay: number, bx: number, by: number, w: number): [number, number][] {
  const len = Math.hypot(bx - ax, by - ay) || 1;
  const nx = (-(by - ay) / len) * (w / 2);
  const ny = ((bx - ax) / len) * (w / 2);
  return [
    [ax + nx, ay + ny],
    [bx + nx, by + ny],
    [bx - nx, by - ny],
    [ax - nx, ay - ny],
  ];
}

/** Parse the path subset we write: M, L, H, V, Z with absolute coordinates. */
function parsePath(d: string): { pts: [number, number][]; closed: boolean }[] {
  const out: { pts: [number, number][]; closed: boolean }[] = [];
  const tokens = d.match(/[MLHVZ]|-?[0-9.]+(?:e-?[0-9]+)?/gi) ?? [];
  let cur: { pts: [number, number][]; closed: boolean } | null = null;
  let cmd = "M";
  let x = 0;
  let y = 0;
  for (let i = 0; i < tokens.length; ) {
    const t = tokens[i];
    if (/^[MLHVZ]$/i.test(t)) {
      cmd = t.toUpperCase();
      i++;
      if (cmd === "Z" && cur) {
        cur.closed = true;
        cur = null;
      }
      continue;
    }
    if (cmd === "M" || cmd === "L") {
      x = Number(tokens[i]);
      y = Number(tokens[i + 1]);
      i += 2;
      if (cmd === "M" || !cur) {
        cur = { pts: [], closed: false };
        out.push(cur);
        cmd = "L";
      }
    } else if (cmd === "H") {
      x = Number(t);
      i++;
    } else if (cmd === "V") {
      y = Number(t);
      i++;
    } else {
      i++;
      continue;
    }
    cur?.pts.push([x, y]);
  }
  return out;
}

function stroke(cv: Canvas, pts: [number, number][], closed: boolean, c: Rgb, w: number, s: number): void {
  const quads: [number, number][][] = [];
  const n = closed ? pts.length : pts.length - 1;
  for (let i = 0; i < n; i++) {
    const [ax, ay] = pts[i];
    const [bx, by] = pts[(i + 1) % pts.length];
    quads.push(segment(ax * s, ay * s, bx * s, by * s, Math.max(w * s, 0.5)));
  }
  // One quad at a time: overlapping joins would cancel out under even-odd.
  for (const q of quads) cv.fillPolygons([q], c, 1);
}

function drawText(cv: Canvas, op: SvgOp, s: number): void {
  const a = op.attrs;
  const c = color(a.fill ?? "#000000") ?? [0, 0, 0];
  const size = num(a["font-size"], 11) * s;
  const text = op.text ?? "";
  if (!text) return;
  const f = font();
  const scale = size / FONT_SIZE;
  const width = measureText(text, size);
  const anchor = a["text-anchor"];
  const x = num(a.x) * s;
  const y = num(a.y) * s;
  const start = anchor === "middle" ? -width / 2 : anchor === "end" ? -width : 0;
  const rot = /rotate\(\s*-90\b/.test(String(a.transform ?? ""));
  const bold = a["font-weight"] === "bold";
  const halo = color(a.stroke ?? null);
  // Glyph pixel (gx, gy) relative to the text origin → canvas, rotated −90° about (x, y) when asked.
  const put = (gx: number, gy: number, alpha: number, col: Rgb) => {
    const px = rot ? x + gy : x + gx;
    const py = rot ? y - gx : y + gy;
    cv.blend(Math.floor(px), Math.floor(py), col, alpha);
  };
  const passes: [Rgb, number[][]][] = [];
  if (halo) {
    passes.push([
      halo,
      [
        [-s, 0],
        [s, 0],
        [0, -s],
        [0, s],
      ],
    ]);
  }
  passes.push([
    c,
    bold
      ? [
          [0, 0],
          [0.6 * s, 0],
        ]
      : [[0, 0]],
  ]);
  for (const [col, offsets] of passes) {
    for (const [ox, oy] of offsets) {
      let pen = start;
      for (const ch of text) {
        const g = f.get(ch.codePointAt(0) ?? 63) ?? (f.get(63) as Glyph);
        // Sample the atlas glyph at this size (bilinear), pixel by pixel of the output box.
        const gw = Math.ceil(g.w * scale) + 1;
        const gh = Math.ceil(g.h * scale) + 1;
        for (let j = 0; j < gh; j++) {
          for (let i = 0; i < gw; i++) {
            const u = (i + 0.5) / scale - 0.5;
            const v = (j + 0.5) / scale - 0.5;
            const alpha = sample(g, u, v);
            if (alpha > 0.01) put(pen + ox + g.left * scale + i, oy + g.top * scale + j, alpha, col);
          }
        }
        pen += g.advance * scale;
      }
    }
  }
}

function sample(g: Glyph, u: number, v: number): number {
  const x0 = Math.floor(u);
  const y0 = Math.floor(v);
  const fx = u - x0;
  const fy = v - y0;
  const at = (x: number, y: number) => (x < 0 || y < 0 || x >= g.w || y >= g.h ? 0 : g.alpha[y * g.w + x] / 255);
  return (at(x0, y0) * (1 - fx) + at(x0 + 1, y0) * fx) * (1 - fy) + (at(x0, y0 + 1) * (1 - fx) + at(x0 + 1, y0 + 1) * fx) * fy;
}

function drawImage(cv: Canvas, a: Attrs, s: number): void {
  const href = String(a.href ?? "");
  const m = /^data:image\/png;base64,(.*)$/.exec(href);
  if (!m) return;
  const img = decodeOwnPng(Buffer.from(m[1], "base64"));
  if (!img) return;
  const x = num(a.x) * s;
  const y = num(a.y) * s;
  const w = num(a.width) * s;
  const h = num(a.height) * s;
  for (let py = Math.max(0, Math.floor(y)); py < Math.min(cv.h, Math.ceil(y + h)); py++) {
    const sy = Math.min(img.height - 1, Math.floor(((py + 0.5 - y) / h) * img.height));
    if (sy < 0) continue;
    for (let px = Math.max(0, Math.floor(x)); px < Math.min(cv.w, Math.ceil(x + w)); px++) {
      const sx = Math.min(img.width - 1, Math.floor(((px + 0.5 - x) / w) * img.width));
      if (sx < 0) continue;
      const k = (sy * img.width + sx) * 4;
      const alpha = img.rgba[k + 3] / 255;
      if (alpha > 0) cv.blend(px, py, [img.rgba[k] / 255, img.rgba[k + 1] / 255, img.rgba[k + 2] / 255], alpha);
    }
  }
}

function draw(cv: Canvas, ops: SvgOp[], s: number): void {
  for (const op of ops) {
    const a = op.attrs;
    const fill = color(a.fill ?? (op.tag === "line" ? "none" : "#000000"));
    const strokeColor = color(a.stroke ?? null);
    const sw = num(a["stroke-width"], 1);
    switch (op.tag) {
      case "g":
        draw(cv, op.children ?? [], s);
        break;
      case "rect": {
        const x = num(a.x);
        const y = num(a.y);
        const w = num(a.width);
        const h = num(a.height);
        const pts: [number, number][] = [
          [x, y],
          [x + w, y],
          [x + w, y + h],
          [x, y + h],
        ];
        if (fill && w > 0 && h > 0) cv.fillPolygons([pts.map(([px, py]) => [px * s, py * s])], fill, 1);
        if (strokeColor) stroke(cv, pts, true, strokeColor, sw, s);
        break;
      }
      case "circle": {
        const r = num(a.r) * s;
        const cx = num(a.cx) * s;
        const cy = num(a.cy) * s;
        if (fill) cv.ring(cx, cy, r, 0, fill);
        if (strokeColor) cv.ring(cx, cy, r + (sw * s) / 2, r - (sw * s) / 2, strokeColor);
        break;
      }
      case "line":
        if (strokeColor)
          stroke(
            cv,
            [
              [num(a.x1), num(a.y1)],
              [num(a.x2), num(a.y2)],
            ],
            false,
            strokeColor,
            sw,
            s,
          );
        break;
      case "path":
        for (const sub of parsePath(String(a.d ?? ""))) {
          if (fill && sub.closed) cv.fillPolygons([sub.pts.map(([px, py]) => [px * s, py * s])], fill, 1);
          if (strokeColor) stroke(cv, sub.pts, sub.closed, strokeColor, sw, s);
        }
        break;
      case "image":
        drawImage(cv, a, s);
        break;
      case "text":
        drawText(cv, op, s);
        break;
      default:
        break;
    }
  }
}

/** The plot as a PNG of (width · scale) × (height · scale) pixels on white. */
export function renderPng(ops: SvgOp[], width: number, height: number, scale = 2): Buffer {
  const cv = new Canvas(Math.max(1, Math.round(width * scale)), Math.max(1, Math.round(height * scale)));
  draw(cv, ops, scale);
  return encodePng(cv.rgba(), cv.w, cv.h);
}
