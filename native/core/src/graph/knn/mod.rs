//! k-nearest neighbours of the rows of a dense n × d f32 matrix (X_pca).
//! Output follows scanpy/umap: k columns per point, the point itself
//! first at distance 0, then its k − 1 nearest others by distance.

mod dist;
mod exact;
mod lists;
mod nndescent;

pub use nndescent::NnDescentParams;

use crate::error::{Error, Result};
use crate::pass::Control;
use lists::EMPTY;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    Euclidean,
    /// 1 − cos(a, b), as scikit-learn and umap define it.
    Cosine,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// Exact below `EXACT_MAX_N` points, NN-descent above.
    Auto,
    Exact,
    NnDescent,
}

/// NN-descent list length for `others` kept neighbours.
fn search_width(others: usize) -> usize {
    std::env::var("ANNDATA_OOM_NND_WIDTH")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2 * others)
        .max(others)
}

/// Above this many points `Auto` switches to NN-descent (exact costs n²·d).
pub const EXACT_MAX_N: usize = 20_000;

#[derive(Debug, Clone)]
pub struct Knn {
    pub n: usize,
    pub k: usize,
    /// n × k, row-major; column 0 is the point itself.
    pub indices: Vec<u32>,
    /// n × k distances in the metric (not squared), ascending per row.
    pub distances: Vec<f32>,
    /// Whether the exact search was used.
    pub exact: bool,
}

impl Metric {
    pub fn parse(s: &str) -> Result<Metric> {
        match s {
            "euclidean" | "l2" => Ok(Metric::Euclidean),
            "cosine" => Ok(Metric::Cosine),
            other => Err(Error::invalid(format!(
                "metric must be 'euclidean' or 'cosine', not '{other}'"
            ))),
        }
    }
}

impl Method {
    pub fn parse(s: &str) -> Result<Method> {
        match s {
            "auto" => Ok(Method::Auto),
            "exact" => Ok(Method::Exact),
            "nndescent" => Ok(Method::NnDescent),
            other => Err(Error::invalid(format!(
                "method must be 'auto', 'exact' or 'nndescent', not '{other}'"
            ))),
        }
    }
}

/// What to search for.
#[derive(Debug, Clone, Copy)]
pub struct KnnParams {
    /// Neighbours per point, the point itself included.
    pub k: usize,
    pub metric: Metric,
    pub method: Method,
    pub seed: u64,
}

/// The `k` nearest neighbours (self included) of each row of `data`
/// (n × d, row-major).
pub fn knn(data: &[f32], n: usize, d: usize, p: KnnParams, control: &Control) -> Result<Knn> {
    let KnnParams {
        k,
        metric,
        method,
        seed,
    } = p;
    if d == 0 || data.len() != n * d {
        return Err(Error::invalid(format!(
            "expected an n × d matrix with d > 0, got {} values for n = {n}, d = {d}",
            data.len()
        )));
    }
    if k < 2 || k > n {
        return Err(Error::invalid(format!(
            "n_neighbors must be between 2 and the number of cells ({n}), not {k}"
        )));
    }
    if let Some(bad) = data.iter().position(|x| !x.is_finite()) {
        return Err(Error::invalid(format!(
            "row {} has a non-finite value (NaN or infinity); neighbours need finite coordinates",
            bad / d
        )));
    }
    let (points, width) = ranking_points(data, d, metric);
    let use_exact = match method {
        Method::Exact => true,
        Method::NnDescent => false,
        Method::Auto => n <= EXACT_MAX_N,
    };
    let others = k - 1;
    let lists = if use_exact {
        exact::exact(&points, n, width, others, control)?
    } else {
        // Searching with longer lists than we keep makes the graph better
        // connected, which is what lifts NN-descent's recall.
        let search = search_width(others).min(n - 1);
        let params = NnDescentParams::for_size(n, search, seed);
        nndescent::nn_descent(&points, n, width, search, &params, control)?
    };
    finish(data, d, &points, width, &lists, others, metric, use_exact)
}

/// The rows the search ranks, and their width. Both searches rank by
/// squared Euclidean distance in f32, so:
/// - Euclidean: the data scaled by a power of two (exact: the same order)
///   that brings the largest |value| near 1. At |x| ≈ 1e20 the squares
///   overflow f32 (every distance became infinite and lists stayed empty);
///   at 1e-30 they underflow to ties.
/// - Cosine: unit vectors (|u − v|² = 2 · cosine distance). A zero row has
///   no direction: cosine distance 1 to every other row (0 to another zero
///   row, as umap's pynndescent has it), which an extra coordinate gives it
///   (|u − e|² = 2 for every unit u in the other coordinates). At the
///   origin it sat at 0.5 from everyone and displaced true neighbours.
fn ranking_points(data: &[f32], d: usize, metric: Metric) -> (Vec<f32>, usize) {
    match metric {
        Metric::Euclidean => {
            let largest = data.iter().fold(0f32, |m, &x| m.max(x.abs()));
            let scale = if largest > 0.0 {
                (-(largest.log2().round() as i32)).clamp(-126, 126)
            } else {
                0
            };
            let factor = 2f64.powi(scale);
            let points = data.iter().map(|&x| (x as f64 * factor) as f32).collect();
            (points, d)
        }
        Metric::Cosine => {
            let rows: Vec<(f64, &[f32])> = data
                .chunks_exact(d)
                .map(|r| {
                    (
                        r.iter().map(|&x| x as f64 * x as f64).sum::<f64>().sqrt(),
                        r,
                    )
                })
                .collect();
            let any_zero = rows.iter().any(|&(norm, _)| norm == 0.0);
            let width = d + usize::from(any_zero);
            let mut points = Vec::with_capacity(rows.len() * width);
            for (norm, r) in rows {
                if norm > 0.0 {
                    points.extend(r.iter().map(|&x| (x as f64 / norm) as f32));
                    if any_zero {
                        points.push(0.0);
                    }
                } else {
                    points.extend(std::iter::repeat_n(0.0, d));
                    points.push(1.0);
                }
            }
            (points, width)
        }
    }
}

/// Prepend self and turn ranking distances into reported ones, computed
/// again in f64 from the input so that they do not depend on the search.
#[allow(clippy::too_many_arguments)]
fn finish(
    data: &[f32],
    d: usize,
    points: &[f32],
    width: usize,
    lists: &lists::NeighborLists,
    o: usize,
    metric: Metric,
    exact: bool,
) -> Result<Knn> {
    let (n, list_len) = (lists.n, lists.k);
    let k = o + 1;
    let mut indices = vec![0u32; n * k];
    let mut distances = vec![0f32; n * k];
    let row = |i: usize| i * d..(i + 1) * d;
    let point = |i: usize| i * width..(i + 1) * width;
    for i in 0..n {
        indices[i * k] = i as u32;
        let mut pairs: Vec<(f32, u32)> = lists.idx[i * list_len..(i + 1) * list_len]
            .iter()
            .filter(|&&j| j != EMPTY)
            .map(|&j| {
                let j_ = j as usize;
                let dist = match metric {
                    Metric::Euclidean => dist::sq_dist_f64(&data[row(i)], &data[row(j_)]).sqrt(),
                    Metric::Cosine => {
                        (1.0 - dist::dot_f64(&points[point(i)], &points[point(j_)])).max(0.0)
                    }
                };
                (dist as f32, j)
            })
            .collect();
        // Never pad a short list with cell 0 at distance 0.
        if pairs.len() < o {
            return Err(Error::internal(format!(
                "the neighbour search found {} of {o} neighbours for row {i}",
                pairs.len()
            )));
        }
        pairs.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        for (s, (dd, j)) in pairs.into_iter().take(o).enumerate() {
            indices[i * k + 1 + s] = j;
            distances[i * k + 1 + s] = dd;
        }
    }
    Ok(Knn {
        n,
        k,
        indices,
        distances,
        exact,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn noise(n: usize, seed: u64) -> Vec<f32> {
        let mut state = seed;
        (0..n)
            .map(|_| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((state >> 33) as f64 / (1u64 << 31) as f64) as f32 - 0.5
            })
            .collect()
    }

    fn params(k: usize, metric: Metric, method: Method) -> KnnParams {
        KnnParams {
            k,
            metric,
            method,
            seed: 7,
        }
    }

    /// Scaling every coordinate by a power of ten changes no neighbour: at
    /// 1e20 the f32 squares overflowed (lists stayed empty and were padded
    /// with cell 0 at distance 0), at 1e-30 they underflowed to ties.
    #[test]
    fn neighbours_do_not_depend_on_the_scale() {
        let (n, d, k) = (300, 6, 8);
        let base = noise(n * d, 99);
        for method in [Method::Exact, Method::NnDescent] {
            let want = knn(
                &base,
                n,
                d,
                params(k, Metric::Euclidean, method),
                &Control::default(),
            )
            .unwrap();
            for scale in [1e20f32, 1e30, 1e-30, 1e-20] {
                let data: Vec<f32> = base.iter().map(|&x| x * scale).collect();
                let got = knn(
                    &data,
                    n,
                    d,
                    params(k, Metric::Euclidean, method),
                    &Control::default(),
                )
                .unwrap();
                assert_eq!(got.indices, want.indices, "{method:?} at scale {scale}");
                for (g, w) in got.distances.iter().zip(&want.distances) {
                    let expect = *w as f64 * scale as f64;
                    assert!(
                        ((*g as f64) - expect).abs() <= 1e-5 * expect.abs().max(f64::MIN_POSITIVE)
                    );
                }
            }
        }
    }

    /// Zero rows have cosine distance 1 to every other row: they must not
    /// displace true neighbours (they sat at 0.5 from everyone).
    #[test]
    fn cosine_zero_rows_are_at_distance_one() {
        let (n, d, k) = (120, 5, 6);
        let mut data = noise(n * d, 3);
        for z in [0, 17, 50, 51, 99] {
            data[z * d..(z + 1) * d].fill(0.0);
        }
        let norm = |r: &[f32]| r.iter().map(|&x| x as f64 * x as f64).sum::<f64>().sqrt();
        let cosine = |a: &[f32], b: &[f32]| {
            let (na, nb) = (norm(a), norm(b));
            match (na > 0.0, nb > 0.0) {
                (false, false) => 0.0,
                (true, true) => {
                    1.0 - a
                        .iter()
                        .zip(b)
                        .map(|(&x, &y)| x as f64 * y as f64)
                        .sum::<f64>()
                        / (na * nb)
                }
                _ => 1.0,
            }
        };
        for method in [Method::Exact, Method::NnDescent] {
            let got = knn(
                &data,
                n,
                d,
                params(k, Metric::Cosine, method),
                &Control::default(),
            )
            .unwrap();
            for q in 0..n {
                let row = |i: usize| &data[i * d..(i + 1) * d];
                let mut all: Vec<f64> = (0..n)
                    .filter(|&r| r != q)
                    .map(|r| cosine(row(q), row(r)))
                    .collect();
                all.sort_by(f64::total_cmp);
                for s in 1..k {
                    let g = got.distances[q * k + s] as f64;
                    assert!(
                        (g - all[s - 1]).abs() < 1e-5,
                        "{method:?} row {q} rank {s}: {g} vs {}",
                        all[s - 1]
                    );
                    let j = got.indices[q * k + s] as usize;
                    assert!((cosine(row(q), row(j)) - g).abs() < 1e-5);
                }
            }
        }
    }
}
