//! The UMAP fuzzy simplicial set of a kNN graph, as umap-learn's
//! `fuzzy_simplicial_set` computes it and scanpy stores it in
//! obsp['connectivities']: per-point ρ (distance to the nearest neighbour)
//! and σ (binary search so that Σ exp(−(d − ρ)/σ) = log2 k), membership
//! strengths w_ij = exp(−(d_ij − ρ_i)/σ_i), then the fuzzy union
//! A + Aᵀ − A∘Aᵀ. Arithmetic mirrors umap's float32/float64 choices so
//! the values agree to float32 rounding.

use super::csr::Csr;
use super::knn::Knn;

const SMOOTH_K_TOLERANCE: f64 = 1e-5;
const MIN_K_DIST_SCALE: f64 = 1e-3;
const N_ITER: usize = 64;

/// σ and ρ per point (umap's `smooth_knn_dist`, local_connectivity = 1,
/// bandwidth = 1). `distances` is n × k with self in column 0.
pub fn smooth_knn_dist(
    distances: &[f32],
    k: usize,
    local_connectivity: f64,
) -> (Vec<f32>, Vec<f32>) {
    let n = distances.len() / k;
    let target = (k as f64).log2();
    let mean_all = distances.iter().map(|&x| x as f64).sum::<f64>() / distances.len().max(1) as f64;
    let mut sigmas = vec![0f32; n];
    let mut rhos = vec![0f32; n];
    for i in 0..n {
        let row = &distances[i * k..(i + 1) * k];
        let non_zero: Vec<f32> = row.iter().copied().filter(|&x| x > 0.0).collect();
        let mut rho = 0f32;
        if non_zero.len() as f64 >= local_connectivity {
            let index = local_connectivity.floor() as usize;
            let interpolation = local_connectivity - index as f64;
            if index > 0 {
                rho = non_zero[index - 1];
                if interpolation > SMOOTH_K_TOLERANCE {
                    rho += (interpolation * (non_zero[index] - non_zero[index - 1]) as f64) as f32;
                }
            } else {
                rho = (interpolation * non_zero[0] as f64) as f32;
            }
        } else if !non_zero.is_empty() {
            rho = non_zero.iter().copied().fold(f32::MIN, f32::max);
        }
        let (mut lo, mut hi, mut mid) = (0f64, f64::MAX, 1f64);
        for _ in 0..N_ITER {
            let mut psum = 0f64;
            for &dist in &row[1..] {
                let d = dist - rho;
                psum += if d > 0.0 {
                    (-(d as f64 / mid)).exp()
                } else {
                    1.0
                };
            }
            if (psum - target).abs() < SMOOTH_K_TOLERANCE {
                break;
            }
            if psum > target {
                hi = mid;
                mid = (lo + hi) / 2.0;
            } else {
                lo = mid;
                if hi >= f64::MAX {
                    mid *= 2.0;
                } else {
                    mid = (lo + hi) / 2.0;
                }
            }
        }
        let mut sigma = mid as f32;
        let floor_of = |mean: f64| (MIN_K_DIST_SCALE * mean) as f32;
        if rho > 0.0 {
            let mean_i = row.iter().map(|&x| x as f64).sum::<f64>() / k as f64;
            sigma = sigma.max(floor_of(mean_i));
        } else {
            sigma = sigma.max(floor_of(mean_all));
        }
        sigmas[i] = sigma;
        rhos[i] = rho;
    }
    (sigmas, rhos)
}

/// Symmetric connectivities (fuzzy union), CSR with sorted columns.
pub fn connectivities(knn: &Knn) -> Csr {
    let (n, k) = (knn.n, knn.k);
    let (sigmas, rhos) = smooth_knn_dist(&knn.distances, k, 1.0);
    // Directed memberships A (rows sorted by column, zeros dropped).
    let mut a_rows: Vec<Vec<(u32, f32)>> = (0..n)
        .map(|i| {
            let mut row: Vec<(u32, f32)> = (0..k)
                .filter_map(|s| {
                    let j = knn.indices[i * k + s];
                    if j as usize == i {
                        return None;
                    }
                    let dist = knn.distances[i * k + s];
                    let val = if dist - rhos[i] <= 0.0 || sigmas[i] == 0.0 {
                        1.0
                    } else {
                        (-((dist - rhos[i]) / sigmas[i])).exp()
                    };
                    (val != 0.0).then_some((j, val))
                })
                .collect();
            row.sort_by_key(|e| e.0);
            row.dedup_by_key(|e| e.0);
            row
        })
        .collect();
    // Aᵀ by scattering.
    let mut t_rows: Vec<Vec<(u32, f32)>> = vec![Vec::new(); n];
    for (i, row) in a_rows.iter().enumerate() {
        for &(j, v) in row {
            t_rows[j as usize].push((i as u32, v));
        }
    }
    let mut out = Csr {
        n,
        indptr: Vec::with_capacity(n + 1),
        indices: Vec::new(),
        weights: Vec::new(),
    };
    out.indptr.push(0);
    for (a, t) in a_rows.iter_mut().zip(t_rows.iter()) {
        // t is sorted by construction (rows scattered in order of i).
        let (mut p, mut q) = (0, 0);
        while p < a.len() || q < t.len() {
            let (j, x, y) = match (a.get(p), t.get(q)) {
                (Some(&(ja, va)), Some(&(jt, vt))) if ja == jt => {
                    p += 1;
                    q += 1;
                    (ja, va, vt)
                }
                (Some(&(ja, va)), Some(&(jt, _))) if ja < jt => {
                    p += 1;
                    (ja, va, 0.0)
                }
                (Some(&(ja, va)), None) => {
                    p += 1;
                    (ja, va, 0.0)
                }
                (_, Some(&(jt, vt))) => {
                    q += 1;
                    (jt, 0.0, vt)
                }
                (None, None) => unreachable!(),
            };
            let v = (x + y) - x * y;
            if v != 0.0 {
                out.indices.push(j);
                out.weights.push(v);
            }
        }
        out.indptr.push(out.indices.len());
        a.clear();
        a.shrink_to_fit();
    }
    out
}

/// scanpy's obsp['distances']: each row holds the k − 1 neighbours other
/// than the point itself, in neighbour order.
pub fn distance_matrix(knn: &Knn) -> Csr {
    let (n, k) = (knn.n, knn.k);
    let mut out = Csr {
        n,
        indptr: (0..=n).map(|i| i * (k - 1)).collect(),
        indices: Vec::with_capacity(n * (k - 1)),
        weights: Vec::with_capacity(n * (k - 1)),
    };
    for i in 0..n {
        out.indices
            .extend_from_slice(&knn.indices[i * k + 1..(i + 1) * k]);
        out.weights
            .extend_from_slice(&knn.distances[i * k + 1..(i + 1) * k]);
    }
    out
}
