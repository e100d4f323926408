/**
 * 1-D LOESS exactly as scikit-misc's (netlib dloess) default fit: degree 2,
 * gaussian family, surface="interpolate": local quadratic fits at the
 * vertices of a kd-tree over x, then cubic Hermite interpolation of value
 * and slope inside each cell. A direct local fit at every point is NOT the
 * same (it moves seurat_v3's scores by up to 3%), hence this port.
 * See tests/python/SCANPY_NOTES.md §6; no npm package implements it.
 */

/**
 * The `k`-th smallest (0-based) squared distance from `q` to the points
 * `xs` (sorted). The nearest points form a window around q, so it grows
 * from there by whichever side is closer: O(k), the same value as sorting
 * all n distances (which took over half of seurat_v3 with 50 batches).
 */
export function kthSquaredDistance(xs: Float64Array, q: number, k: number): number {
  let right = 0;
  let hi = xs.length;
  while (right < hi) {
    const mid = (right + hi) >> 1;
    if (xs[mid] < q) right = mid + 1;
    else hi = mid;
  }
  let left = right - 1;
  let d = Number.NaN;
  for (let taken = 0; taken <= k; taken++) {
    const dl = left >= 0 ? (xs[left] - q) ** 2 : Number.POSITIVE_INFINITY;
    const dr = right < xs.length ? (xs[right] - q) ** 2 : Number.POSITIVE_INFINITY;
    if (dl <= dr) {
      d = dl;
      left--;
    } else {
      d = dr;
      right++;
    }
  }
  return d;
}

/** Solve the 3×3 system a·c = b (partial pivoting). */
function solve3(a: number[][], b: number[]): number[] {
  const m = a.map((row, i) => [...row, b[i]]);
  for (let c = 0; c < 3; c++) {
    let p = c;
    for (let r = c + 1; r < 3; r++) if (Math.abs(m[r][c]) > Math.abs(m[p][c])) p = r;
    [m[c], m[p]] = [m[p], m[c]];
    if (m[c][c] === 0) return [Number.NaN, Number.NaN, Number.NaN];
    for (let r = c + 1; r < 3; r++) {
      const f = m[r][c] / m[c][c];
      for (let k = c; k < 4; k++) m[r][k] -= f * m[c][k];
    }
  }
  const x = [0, 0, 0];
  for (let r = 2; r >= 0; r--) {
    let s = m[r][3];
    for (let k = r + 1; k < 3; k++) s -= m[r][k] * x[k];
    x[r] = s / m[r][r];
  }
  return x;
}

/** Fitted values of loess(x, y, span, degree = 2) at the points x. */
export function loess1d(x: Float64Array, y: Float64Array, span = 0.3, cell = 0.2): Float64Array {
  const n = x.length;
  if (n === 0) return new Float64Array(0);
  const nf = Math.min(n, Math.floor(n * span + 1e-5));
  const fc = Math.floor(n * (span * cell));
  let lo = Number.POSITIVE_INFINITY;
  let hi = Number.NEGATIVE_INFINITY;
  for (const v of x) {
    lo = Math.min(lo, v);
    hi = Math.max(hi, v);
  }
  const margin = 0.005 * Math.max(hi - lo, 1e-10 * Math.max(Math.abs(lo), Math.abs(hi)) + 1e-30);
  const xs = Float64Array.from(x).sort();
  const vertices = new Set<number>([lo - margin, hi + margin]);
  // kd-tree cells over the sorted x: split at the median, moved off ties.
  const stack: [number, number, number, number][] = [[0, n - 1, lo - margin, hi + margin]];
  while (stack.length) {
    const [l, u, a, b] = stack.pop() as [number, number, number, number];
    if (u - l + 1 <= fc || b - a <= 0) continue;
    let m = Math.floor((l + u + 2) / 2) - 1;
    let off = 0;
    while (l <= m + off && m + off < u) {
      if (xs[m + off] === xs[m + off + 1]) {
        off = -off;
        if (off >= 0) off += 1;
      } else {
        m += off;
        break;
      }
    }
    const v = xs[m];
    if (v === a || v === b) continue;
    vertices.add(v);
    stack.push([m + 1, u, v, b], [l, m, a, v]);
  }
  const vert = Float64Array.from(vertices).sort();
  const val = new Float64Array(vert.length);
  const slope = new Float64Array(vert.length);
  const d2 = new Float64Array(n);
  vert.forEach((q, i) => {
    for (let k = 0; k < n; k++) d2[k] = (x[k] - q) ** 2;
    const rho = kthSquaredDistance(xs, q, nf - 1);
    // Weighted least squares on [1, dx, dx²] (columns scaled for conditioning).
    let scale = 0;
    for (let k = 0; k < n; k++) if (d2[k] < rho) scale = Math.max(scale, Math.abs(x[k] - q));
    scale = scale || 1;
    // Sums of w²·row·rowᵀ and w²·row·y for row = [1, t, t²], as scalars,
    // each product in the order (w2 · row[p]) · row[s] as the fit always
    // computed it (so [1][2] and [2][1] are kept apart: they can differ by an ulp).
    let a00 = 0;
    let a01 = 0;
    let a02 = 0;
    let a11 = 0;
    let a12 = 0;
    let a21 = 0;
    let a22 = 0;
    let b0 = 0;
    let b1 = 0;
    let b2 = 0;
    for (let k = 0; k < n; k++) {
      if (!(d2[k] < rho)) continue;
      const r = Math.sqrt(d2[k] / rho);
      const w2 = (1 - r ** 3) ** 3; // squared row weight (tricube)
      const t = (x[k] - q) / scale;
      const t2 = t * t;
      const w1 = w2 * 1;
      const wt = w2 * t;
      const wt2 = w2 * t2;
      b0 += w1 * y[k];
      b1 += wt * y[k];
      b2 += wt2 * y[k];
      a00 += w1 * 1;
      a01 += w1 * t;
      a02 += w1 * t2;
      a11 += wt * t;
      a12 += wt * t2;
      a21 += wt2 * t;
      a22 += wt2 * t2;
    }
    const c = solve3(
      [
        [a00, a01, a02],
        [a01, a11, a12],
        [a02, a21, a22],
      ],
      [b0, b1, b2],
    );
    val[i] = c[0];
    slope[i] = c[1] / scale;
  });
  const out = new Float64Array(n);
  for (let k = 0; k < n; k++) {
    // searchsorted(vert, x, 'left') - 1, clipped to a cell
    let a = 0;
    let b = vert.length;
    while (a < b) {
      const mid = (a + b) >> 1;
      if (vert[mid] < x[k]) a = mid + 1;
      else b = mid;
    }
    const j = Math.min(Math.max(a - 1, 0), vert.length - 2);
    const v0 = vert[j];
    const v1 = vert[j + 1];
    const h = (x[k] - v0) / (v1 - v0);
    const phi0 = (1 - h) ** 2 * (1 + 2 * h);
    const phi1 = h ** 2 * (3 - 2 * h);
    const psi0 = h * (1 - h) ** 2;
    const psi1 = h ** 2 * (h - 1);
    out[k] = phi0 * val[j] + phi1 * val[j + 1] + (psi0 * slope[j] + psi1 * slope[j + 1]) * (v1 - v0);
  }
  return out;
}
