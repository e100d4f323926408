/**
 * A tiny SVG builder. Every attribute value and every text node goes
 * through `escapeXml`, so gene names, categories and titles from the data
 * (which can be hostile, e.g. `<img src=x onerror=alert(1)>`) stay text.
 * Tag and attribute NAMES are ours only (checked against a pattern).
 */

export function escapeXml(s: unknown): string {
  return (
    String(s)
      .replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c] as string)
      // Characters XML forbids even as references (controls other than tab,
      // LF, CR; U+FFFE/U+FFFF): one (a vertical tab pasted from a sheet) made
      // the whole SVG a broken image. Shown as U+FFFD.
      // biome-ignore lint/suspicious/noControlCharactersInRegex: matching them is the point
      .replace(/[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]/g, "\uFFFD")
  );
}

export type Attrs = Record<string, string | number | undefined | null>;

const NAME = /^[a-zA-Z][a-zA-Z0-9:-]*$/;

/** A number for SVG coordinates: short, finite. */
export function num(v: number): string {
  if (!Number.isFinite(v)) return "0";
  return String(Math.round(v * 100) / 100);
}

function attrs(a: Attrs): string {
  let out = "";
  for (const [k, v] of Object.entries(a)) {
    if (v === undefined || v === null) continue;
    if (!NAME.test(k)) throw new Error(`bad SVG attribute name ${k}`);
    out += ` ${k}="${escapeXml(typeof v === "number" ? num(v) : v)}"`;
  }
  return out;
}

/** One drawing operation, kept next to the markup for the PNG renderer (render-png.ts). */
export interface SvgOp {
  tag: string;
  attrs: Attrs;
  text?: string;
  children?: SvgOp[];
}

/** Collects SVG elements as strings (and as ops); `group` nests. */
export class Svg {
  private parts: string[] = [];
  readonly ops: SvgOp[] = [];

  /** An empty element, e.g. `el("circle", { cx, cy, r })`. */
  el(tag: string, a: Attrs = {}): this {
    if (!NAME.test(tag)) throw new Error(`bad SVG tag ${tag}`);
    this.parts.push(`<${tag}${attrs(a)}/>`);
    this.ops.push({ tag, attrs: a });
    return this;
  }

  /** A text element; `content` is escaped. */
  text(x: number, y: number, content: unknown, a: Attrs = {}): this {
    this.parts.push(`<text${attrs({ x, y, ...a })}>${escapeXml(content)}</text>`);
    this.ops.push({ tag: "text", attrs: { x, y, ...a }, text: String(content) });
    return this;
  }

  /** `<g …>children</g>`. */
  group(a: Attrs, body: (g: Svg) => void): this {
    const g = new Svg();
    body(g);
    this.parts.push(`<g${attrs(a)}>${g.toString()}</g>`);
    this.ops.push({ tag: "g", attrs: a, children: g.ops });
    return this;
  }

  toString(): string {
    return this.parts.join("");
  }

  /** The whole document with a white background. */
  document(width: number, height: number, font = "DejaVu Sans, Arial, Helvetica, sans-serif"): string {
    const head = `<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="${num(width)}" height="${num(height)}" viewBox="0 0 ${num(width)} ${num(height)}" font-family="${escapeXml(font)}" font-size="11">`;
    return `${head}<rect x="0" y="0" width="${num(width)}" height="${num(height)}" fill="#ffffff"/>${this.toString()}</svg>`;
  }
}
