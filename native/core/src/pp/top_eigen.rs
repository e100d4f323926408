//! The k largest eigenpairs of a dense symmetric matrix, exactly (to
//! working precision), in O(p·k) memory beyond the matrix itself.
//!
//! faer's full eigendecomposition needs ~4 more p×p buffers (the
//! tridiagonal copy, the divide-and-conquer workspace and all p
//! eigenvectors: ~130 MB at p = 2,000), which alone pushed the 100k-cell
//! chain past its 300 MB budget, while PCA needs only k ≈ 50 vectors. So:
//!
//! 1. Householder tridiagonalization of the matrix, in place (faer's
//!    `tridiag_in_place`): A = Q·T·Qᵀ.
//! 2. The top k eigenvalues of T by bisection on Sturm counts (LAPACK's
//!    dstebz method; each value to full relative precision).
//! 3. Their eigenvectors of T by inverse iteration, with vectors of close
//!    eigenvalues orthogonalized against each other (LAPACK's dstein).
//! 4. Back to A's basis: Q applied to the k vectors (faer's blocked
//!    Householder application).

use crate::error::{Error, Result};
use faer::dyn_stack::{MemBuffer, MemStack, StackReq};
use faer::linalg::evd::tridiag;
use faer::linalg::householder;
use faer::{Conj, MatMut};

/// Top-k eigenpairs of the symmetric p×p matrix in `a` (row- or column-
/// major alike; only its lower triangle is read). `a` is overwritten.
/// Returns (eigenvectors p×k row-major, eigenvalues descending).
pub fn top_eigenpairs(a: &mut [f64], p: usize, k: usize) -> Result<(Vec<f64>, Vec<f64>)> {
    let k = k.min(p);
    if p == 0 || k == 0 {
        return Ok((vec![], vec![]));
    }
    if a.iter().any(|x| !x.is_finite()) {
        return Err(Error::invalid(
            "PCA: the covariance matrix has non-finite values",
        ));
    }
    let par = faer::get_global_parallelism();
    let bs = faer::linalg::qr::no_pivoting::factor::recommended_block_size::<f64>(p, p);
    let mut householder_factor = faer::Mat::<f64>::zeros(bs, p.saturating_sub(1));
    let mut mat = MatMut::from_column_major_slice_mut(a, p, p);
    let mut mem = MemBuffer::new(StackReq::any_of(&[
        tridiag::tridiag_in_place_scratch::<f64>(p, par, Default::default()),
        householder::apply_block_householder_sequence_on_the_left_in_place_scratch::<f64>(
            p.saturating_sub(1),
            bs,
            k,
        ),
    ]));
    let stack = MemStack::new(&mut mem);
    tridiag::tridiag_in_place(
        mat.as_mut(),
        householder_factor.as_mut(),
        par,
        stack,
        Default::default(),
    );
    let diag: Vec<f64> = (0..p).map(|i| mat[(i, i)]).collect();
    let off: Vec<f64> = (0..p.saturating_sub(1)).map(|i| mat[(i + 1, i)]).collect();
    let t = Tridiagonal::new(diag, off);
    let values: Vec<f64> = (0..k).map(|j| t.eigenvalue(p - 1 - j)).collect();
    // Column-major p×k: column j is the eigenvector of values[j].
    let mut vectors = t.eigenvectors(&values);
    if p > 1 {
        let mut v = MatMut::from_column_major_slice_mut(&mut vectors, p, k);
        householder::apply_block_householder_sequence_on_the_left_in_place_with_conj(
            mat.as_ref().submatrix(1, 0, p - 1, p - 1),
            householder_factor.as_ref(),
            Conj::No,
            v.as_mut().subrows_mut(1, p - 1),
            par,
            stack,
        );
    }
    crate::simd_state::clear_all();
    let mut rows = vec![0.0; p * k];
    for c in 0..k {
        for r in 0..p {
            rows[r * k + c] = vectors[c * p + r];
        }
    }
    Ok((rows, values))
}

/// A symmetric tridiagonal matrix: diagonal `d`, off-diagonal `e`.
struct Tridiagonal {
    d: Vec<f64>,
    e: Vec<f64>,
    e2: Vec<f64>,
    /// Gershgorin bounds of the spectrum.
    lo: f64,
    hi: f64,
    /// Largest absolute row sum (the matrix norm the tolerances scale by).
    norm: f64,
    /// Smallest pivot allowed in a Sturm count (LAPACK's pivmin).
    pivmin: f64,
}

impl Tridiagonal {
    fn new(d: Vec<f64>, e: Vec<f64>) -> Self {
        let n = d.len();
        let e2: Vec<f64> = e.iter().map(|x| x * x).collect();
        let (mut lo, mut hi, mut norm) = (f64::INFINITY, f64::NEG_INFINITY, 0.0f64);
        for i in 0..n {
            let r = if i > 0 { e[i - 1].abs() } else { 0.0 } + e.get(i).map_or(0.0, |x| x.abs());
            lo = lo.min(d[i] - r);
            hi = hi.max(d[i] + r);
            norm = norm.max(d[i].abs() + r);
        }
        let max_e2 = e2.iter().copied().fold(1.0f64, f64::max);
        let pivmin = f64::MIN_POSITIVE * max_e2;
        // Widen slightly so the bounds strictly contain the spectrum.
        let pad = 2.0 * f64::EPSILON * norm.max(f64::MIN_POSITIVE) * n as f64 + pivmin;
        Tridiagonal {
            d,
            e,
            e2,
            lo: lo - pad,
            hi: hi + pad,
            norm,
            pivmin,
        }
    }

    /// Number of eigenvalues below x (Sturm sequence of T − x·I).
    fn count_below(&self, x: f64) -> usize {
        let mut count = 0;
        let mut q = 1.0;
        for i in 0..self.d.len() {
            q = self.d[i] - x - if i > 0 { self.e2[i - 1] / q } else { 0.0 };
            if q.abs() <= self.pivmin {
                q = -self.pivmin;
            }
            count += usize::from(q < 0.0);
        }
        count
    }

    /// The i-th smallest eigenvalue (0-based), by bisection to full
    /// precision.
    fn eigenvalue(&self, i: usize) -> f64 {
        let (mut lo, mut hi) = (self.lo, self.hi);
        for _ in 0..200 {
            let mid = 0.5 * (lo + hi);
            let tol = 2.0 * f64::EPSILON * lo.abs().max(hi.abs()) + self.pivmin;
            if hi - lo <= tol || mid <= lo || mid >= hi {
                break;
            }
            if self.count_below(mid) > i {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        0.5 * (lo + hi)
    }

    /// Eigenvectors for `values` (descending), column-major n×k, each of
    /// unit length. Values closer than 1e-3·‖T‖ form a cluster whose
    /// vectors are orthogonalized against each other at every step.
    fn eigenvectors(&self, values: &[f64]) -> Vec<f64> {
        let n = self.d.len();
        let k = values.len();
        let mut out = vec![0.0; n * k];
        if n == 1 {
            out.iter_mut().for_each(|x| *x = 1.0);
            return out;
        }
        let cluster_gap = 1e-3 * self.norm;
        let mut cluster_start = 0;
        let mut previous = f64::INFINITY;
        let mut rng = 0x9e37_79b9_7f4a_7c15u64;
        for (j, &value) in values.iter().enumerate() {
            if j > 0 && previous - value > cluster_gap {
                cluster_start = j;
            }
            // Equal eigenvalues would give the same vector: shift each one
            // a hair below the previous (as dstein does).
            let shift = if j > cluster_start {
                let min_step = 10.0 * f64::EPSILON * value.abs().max(self.norm * f64::EPSILON);
                value.min(previous - min_step)
            } else {
                value
            };
            previous = shift;
            let lu = ShiftedLu::new(self, shift);
            let (done, rest) = out.split_at_mut(j * n);
            let x = &mut rest[..n];
            for v in x.iter_mut() {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                *v = (rng >> 11) as f64 / (1u64 << 53) as f64 - 0.5;
            }
            let cluster = &done[cluster_start * n..];
            for _ in 0..4 {
                orthogonalize(x, cluster, n);
                normalize(x);
                lu.solve(x);
            }
            orthogonalize(x, cluster, n);
            normalize(x);
        }
        out
    }
}

/// Remove from x its components along the unit columns of `basis`.
fn orthogonalize(x: &mut [f64], basis: &[f64], n: usize) {
    for b in basis.chunks_exact(n) {
        let dot: f64 = x.iter().zip(b).map(|(u, v)| u * v).sum();
        x.iter_mut().zip(b).for_each(|(u, v)| *u -= dot * v);
    }
}

fn normalize(x: &mut [f64]) {
    let scale = x.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    if scale == 0.0 {
        x[0] = 1.0;
        return;
    }
    x.iter_mut().for_each(|v| *v /= scale);
    let norm = x.iter().map(|v| v * v).sum::<f64>().sqrt();
    x.iter_mut().for_each(|v| *v /= norm);
}

/// LU factorization with partial pivoting of T − shift·I (LAPACK's
/// dgttrf), for the solves of inverse iteration. Pivots that vanish are
/// replaced by a tiny value: the solve then grows along the eigenvector,
/// which is what inverse iteration wants.
struct ShiftedLu {
    dl: Vec<f64>,
    dd: Vec<f64>,
    du: Vec<f64>,
    du2: Vec<f64>,
    swapped: Vec<bool>,
}

impl ShiftedLu {
    fn new(t: &Tridiagonal, shift: f64) -> Self {
        let n = t.d.len();
        let mut dl = t.e.clone();
        let mut dd: Vec<f64> = t.d.iter().map(|d| d - shift).collect();
        let mut du = t.e.clone();
        let mut du2 = vec![0.0; n.saturating_sub(2)];
        let mut swapped = vec![false; n.saturating_sub(1)];
        for i in 0..n - 1 {
            if dd[i].abs() >= dl[i].abs() {
                let f = if dd[i] != 0.0 { dl[i] / dd[i] } else { 0.0 };
                dl[i] = f;
                dd[i + 1] -= f * du[i];
            } else {
                let f = dd[i] / dl[i];
                dd[i] = dl[i];
                dl[i] = f;
                let upper = du[i];
                du[i] = dd[i + 1];
                dd[i + 1] = upper - f * dd[i + 1];
                if i + 2 < n {
                    du2[i] = du[i + 1];
                    du[i + 1] *= -f;
                }
                swapped[i] = true;
            }
        }
        let tiny = f64::EPSILON * t.norm.max(f64::MIN_POSITIVE);
        for p in dd.iter_mut() {
            if p.abs() < tiny {
                *p = if *p < 0.0 { -tiny } else { tiny };
            }
        }
        ShiftedLu {
            dl,
            dd,
            du,
            du2,
            swapped,
        }
    }

    /// Overwrite b with (T − shift·I)⁻¹·b (LAPACK's dgttrs).
    fn solve(&self, b: &mut [f64]) {
        let n = self.dd.len();
        for i in 0..n - 1 {
            if self.swapped[i] {
                let t = b[i];
                b[i] = b[i + 1];
                b[i + 1] = t - self.dl[i] * b[i];
            } else {
                b[i + 1] -= self.dl[i] * b[i];
            }
        }
        b[n - 1] /= self.dd[n - 1];
        if n > 1 {
            b[n - 2] = (b[n - 2] - self.du[n - 2] * b[n - 1]) / self.dd[n - 2];
        }
        for i in (0..n.saturating_sub(2)).rev() {
            b[i] = (b[i] - self.du[i] * b[i + 1] - self.du2[i] * b[i + 2]) / self.dd[i];
        }
        // Keep magnitudes bounded (a solve can grow by 1/ε).
        let scale = b.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        if scale > 0.0 && scale.is_finite() {
            b.iter_mut().for_each(|v| *v /= scale);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A random symmetric matrix with the given spectrum: Q·diag·Qᵀ, Q from
    /// a QR of a random matrix.
    fn with_spectrum(spectrum: &[f64], seed: u64) -> Vec<f64> {
        let p = spectrum.len();
        let mut s = seed;
        let g = faer::Mat::<f64>::from_fn(p, p, |_, _| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (s >> 11) as f64 / (1u64 << 53) as f64 - 0.5
        });
        let q = g.qr().compute_Q();
        let d = faer::Mat::<f64>::from_fn(p, p, |i, j| if i == j { spectrum[i] } else { 0.0 });
        let a = &q * &d * q.transpose();
        let mut out = vec![0.0; p * p];
        for i in 0..p {
            for j in 0..p {
                out[i * p + j] = 0.5 * (a[(i, j)] + a[(j, i)]);
            }
        }
        out
    }

    fn check(spectrum: &[f64], k: usize, seed: u64) {
        let p = spectrum.len();
        let a = with_spectrum(spectrum, seed);
        let (vecs, vals) = top_eigenpairs(&mut a.clone(), p, k).unwrap();
        let mut want = spectrum.to_vec();
        want.sort_by(|x, y| y.total_cmp(x));
        let scale = want[0].abs().max(1.0);
        for c in 0..k {
            assert!(
                (vals[c] - want[c]).abs() <= 1e-12 * scale,
                "value {c}: {} vs {}",
                vals[c],
                want[c]
            );
            // Residual ‖A·v − λ·v‖ and unit length.
            let v: Vec<f64> = (0..p).map(|r| vecs[r * k + c]).collect();
            let norm: f64 = v.iter().map(|x| x * x).sum::<f64>().sqrt();
            assert!((norm - 1.0).abs() < 1e-10);
            let res: f64 = (0..p)
                .map(|i| {
                    let av: f64 = (0..p).map(|j| a[i * p + j] * v[j]).sum();
                    (av - vals[c] * v[i]).powi(2)
                })
                .sum::<f64>()
                .sqrt();
            assert!(res <= 1e-9 * scale, "residual {c}: {res}");
        }
        // Orthonormal columns.
        for c1 in 0..k {
            for c2 in 0..c1 {
                let dot: f64 = (0..p).map(|r| vecs[r * k + c1] * vecs[r * k + c2]).sum();
                assert!(dot.abs() < 1e-9, "columns {c1}, {c2}: {dot}");
            }
        }
    }

    #[test]
    fn distinct_spectrum() {
        let spectrum: Vec<f64> = (0..120).map(|i| 1.0 / (1.0 + i as f64)).collect();
        check(&spectrum, 30, 1);
    }

    #[test]
    fn clustered_and_repeated_eigenvalues() {
        // A flat tail as in PCA of noisy data, exact repeats, and a
        // cluster tighter than the cluster gap.
        let mut spectrum: Vec<f64> = vec![10.0, 9.0, 9.0, 9.0, 5.0 + 1e-9, 5.0, 5.0 - 1e-9];
        spectrum.extend((0..90).map(|i| 1.0 + 1e-6 * i as f64));
        spectrum.extend((0..40).map(|i| 0.01 * i as f64));
        check(&spectrum, 40, 2);
    }

    #[test]
    fn negative_and_indefinite() {
        let spectrum: Vec<f64> = (0..60).map(|i| (i as f64 - 30.0) * 0.37).collect();
        check(&spectrum, 60, 3);
    }

    #[test]
    fn agrees_with_the_full_decomposition() {
        let p = 300;
        let spectrum: Vec<f64> = (0..p).map(|i| ((i * 7919) % 101) as f64 / 10.0).collect();
        let a = with_spectrum(&spectrum, 4);
        let m = faer::MatRef::from_row_major_slice(&a, p, p);
        let full = m.self_adjoint_eigen(faer::Side::Lower).unwrap();
        let k = 25;
        let (vecs, vals) = top_eigenpairs(&mut a.clone(), p, k).unwrap();
        let s = full.S().column_vector();
        for c in 0..k {
            assert!((vals[c] - s[p - 1 - c]).abs() < 1e-10);
        }
        // Distinct values: each vector equals faer's up to sign.
        let mut distinct = spectrum.clone();
        distinct.sort_by(|x, y| y.total_cmp(x));
        for c in 0..k {
            let isolated = (c == 0 || distinct[c - 1] - distinct[c] > 1e-3)
                && distinct[c] - distinct[c + 1] > 1e-3;
            if !isolated {
                continue;
            }
            let u = full.U();
            let dot: f64 = (0..p).map(|r| vecs[r * k + c] * u[(r, p - 1 - c)]).sum();
            assert!(dot.abs() > 1.0 - 1e-10, "vector {c}: |cos| {}", dot.abs());
        }
    }

    #[test]
    fn small_and_degenerate_sizes() {
        let (v, l) = top_eigenpairs(&mut [4.0], 1, 3).unwrap();
        assert_eq!(v, vec![1.0]);
        assert!(l.len() == 1 && (l[0] - 4.0).abs() < 1e-14);
        let (_, l) = top_eigenpairs(&mut [2.0, 1.0, 1.0, 2.0], 2, 2).unwrap();
        assert!((l[0] - 3.0).abs() < 1e-14 && (l[1] - 1.0).abs() < 1e-14);
        assert!(top_eigenpairs(&mut [f64::NAN], 1, 1).is_err());
        let (v, l) = top_eigenpairs(&mut [0.0; 9], 3, 2).unwrap();
        assert!(l.len() == 2 && l.iter().all(|x| x.abs() < 1e-300));
        assert_eq!(v.len(), 6);
    }
}
