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
    // Cosine: rank unit vectors by Euclidean distance (same order).
    let unit;
    let points: &[f32] = match metric {
        Metric::Euclidean => data,
        Metric::Cosine => {
            unit = data
                .chunks_exact(d)
                .flat_map(|r| {
                    let norm = r.iter().map(|&x| x as f64 * x as f64).sum::<f64>().sqrt();
                    let s = if norm > 0.0 { 1.0 / norm } else { 0.0 };
                    r.iter().map(move |&x| (x as f64 * s) as f32)
                })
                .collect::<Vec<f32>>();
            &unit
        }
    };
    let use_exact = match method {
        Method::Exact => true,
        Method::NnDescent => false,
        Method::Auto => n <= EXACT_MAX_N,
    };
    let others = k - 1;
    let lists = if use_exact {
        exact::exact(points, n, d, others, control)?
    } else {
        // Searching with longer lists than we keep makes the graph better
        // connected, which is what lifts NN-descent's recall.
        let search = search_width(others).min(n - 1);
        let params = NnDescentParams::for_size(n, search, seed);
        nndescent::nn_descent(points, n, d, search, &params, control)?
    };
    Ok(finish(data, points, d, &lists, others, metric, use_exact))
}

/// Prepend self and turn ranking distances into reported ones, computed
/// again in f64 from the input so that they do not depend on the search.
fn finish(
    data: &[f32],
    points: &[f32],
    d: usize,
    lists: &lists::NeighborLists,
    o: usize,
    metric: Metric,
    exact: bool,
) -> Knn {
    let (n, width) = (lists.n, lists.k);
    let k = o + 1;
    let mut indices = vec![0u32; n * k];
    let mut distances = vec![0f32; n * k];
    let row = |i: usize| i * d..(i + 1) * d;
    for i in 0..n {
        indices[i * k] = i as u32;
        let mut pairs: Vec<(f32, u32)> = lists.idx[i * width..(i + 1) * width]
            .iter()
            .filter(|&&j| j != EMPTY)
            .map(|&j| {
                let (a, b) = (row(i), row(j as usize));
                let dist = match metric {
                    Metric::Euclidean => dist::sq_dist_f64(&data[a], &data[b]).sqrt(),
                    Metric::Cosine => (1.0 - dist::dot_f64(&points[a], &points[b])).max(0.0),
                };
                (dist as f32, j)
            })
            .collect();
        pairs.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        for (s, (dd, j)) in pairs.into_iter().take(o).enumerate() {
            indices[i * k + 1 + s] = j;
            distances[i * k + 1 + s] = dd;
        }
    }
    Knn {
        n,
        k,
        indices,
        distances,
        exact,
    }
}
