/** Axis helpers: "nice" tick positions and short number labels. */

/** About `count` round tick values covering [lo, hi] (1, 2, 2.5, 5 × 10^k steps). */
export function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) return [];
  if (hi < lo) [lo, hi] = [hi, lo];
  if (hi === lo) return [lo];
  // A span past the largest double: its ends only (a step of Infinity labelled NaN).
  if (!Number.isFinite(hi - lo)) return [lo, hi];
  const raw = (hi - lo) / Math.max(1, count);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  // Ticks by index (k · step), not by repeated addition: a step below the
  // float spacing at lo (a range of rounding noise, e.g. 0.3 vs 0.1 + 0.2)
  // would never advance.
  const first = Math.ceil(lo / step - 1e-9);
  const last = Math.floor(hi / step + 1e-9);
  if (!(last - first < 1000) || lo + step === lo || hi - step === hi) return [lo, hi];
  const out: number[] = [];
  for (let k = first; k <= last; k++) {
    const v = k * step;
    out.push(Math.abs(v) < step * 1e-9 ? 0 : v);
  }
  return out;
}

/** A compact label: 3 significant digits, exponent for very large/small values. */
export function fmt(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  if (v === 0) return "0";
  const a = Math.abs(v);
  if (a >= 1e5 || a < 1e-3) return v.toExponential(1).replace("e+", "e");
  return String(Number(v.toPrecision(3)));
}

/** Approximate width in px of `s` at `size` px (for layout; no font metrics in Node). */
export function textWidth(s: string, size = 11): number {
  return String(s).length * size * 0.6;
}

/** Linear map from [d0, d1] to [r0, r1]. */
export function linear(d0: number, d1: number, r0: number, r1: number): (v: number) => number {
  // A domain wider than the largest double (-1e308 to 1e308) is mapped at
  // half scale (exact: a power of two), so its ends do not become NaN.
  const k = Number.isFinite(d1 - d0) ? 1 : 0.5;
  const span = d1 * k - d0 * k;
  return (v) => (span === 0 ? (r0 + r1) / 2 : r0 + ((v * k - d0 * k) / span) * (r1 - r0));
}
