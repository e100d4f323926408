/** numpy.percentile, shared by cell_ranger HVG bin edges and plot colour limits ("pNN"). */

/**
 * numpy.percentile's default (linear) method, step for step: its position
 * (n − 1)·(q / 100) can differ from (n − 1)·q / 100 in the last bit, which
 * moves a gene whose mean sits on a bin edge into the other bin; and its
 * _lerp interpolates from the nearer end.
 */
export function percentile(sorted: Float64Array, q: number): number {
  const n = sorted.length;
  const pos = (n - 1) * (q / 100);
  if (pos >= n - 1) return sorted[n - 1];
  const lo = Math.floor(pos);
  const t = pos - lo;
  const [a, b] = [sorted[lo], sorted[lo + 1]];
  const d = b - a;
  return t >= 0.5 ? b - d * (1 - t) : a + d * t;
}
