//! Graph jobs (neighbors, UMAP, Leiden) on in-memory arrays. Inputs are
//! copied out of the JS typed arrays before the job's thread starts, so
//! the caller may reuse them at once.

use crate::error::to_napi;
use crate::pass::{NativePass, Output};
use anndata_oom_core::error::Error;
use anndata_oom_core::graph::csr::Csr;
use anndata_oom_core::graph::knn::{self, Knn, Method, Metric};
use anndata_oom_core::graph::{fuzzy, leiden, umap};
use napi::bindgen_prelude::*;
use napi_derive::napi;

pub enum GraphResult {
    Neighbors(Neighbors),
    Umap(UmapOut),
    Leiden(LeidenOut),
}

pub struct Neighbors {
    knn: Knn,
    conn: Csr,
    dist: Csr,
}

/// A CSR matrix for JS (indptr as float64: nnz may exceed 2^31 one day).
#[napi(object)]
pub struct CsrOut {
    pub n: u32,
    pub indptr: Float64Array,
    pub indices: Int32Array,
    pub data: Float32Array,
}

#[napi(object)]
pub struct NeighborsOut {
    pub knn_indices: Int32Array,
    pub knn_distances: Float32Array,
    pub k: u32,
    pub exact: bool,
    pub connectivities: CsrOut,
    pub distances: CsrOut,
}

#[napi(object)]
pub struct UmapOut {
    pub embedding: Float32Array,
    pub a: f64,
    pub b: f64,
    pub n_epochs: u32,
}

#[napi(object)]
pub struct LeidenOut {
    pub membership: Uint32Array,
    pub quality: f64,
}

fn csr_out(c: Csr) -> CsrOut {
    CsrOut {
        n: c.n as u32,
        indptr: Float64Array::new(c.indptr.iter().map(|&x| x as f64).collect()),
        indices: Int32Array::new(c.indices.iter().map(|&x| x as i32).collect()),
        data: Float32Array::new(c.weights),
    }
}

pub fn neighbors_out(n: Neighbors) -> NeighborsOut {
    NeighborsOut {
        knn_indices: Int32Array::new(n.knn.indices.iter().map(|&x| x as i32).collect()),
        knn_distances: Float32Array::new(n.knn.distances),
        k: n.knn.k as u32,
        exact: n.knn.exact,
        connectivities: csr_out(n.conn),
        distances: csr_out(n.dist),
    }
}

/// A square sparse graph from JS (the shape of the engine's CsrGraph).
#[napi(object)]
pub struct GraphIn {
    pub n: u32,
    pub indptr: Float64Array,
    pub indices: Int32Array,
    pub data: Float32Array,
}

/// A CSR graph from JS arrays, validated before any use.
fn csr_in(g: &GraphIn) -> Result<Csr> {
    let (n, indptr, indices, data) = (g.n, &g.indptr, &g.indices, &g.data);
    let bad = |m: &str| to_napi(Error::invalid(m.to_string()).at("connectivities"));
    if indices.iter().any(|&j| j < 0) {
        return Err(bad("negative column index"));
    }
    if indptr.iter().any(|&p| p < 0.0 || p.fract() != 0.0) {
        return Err(bad("indptr must hold non-negative integers"));
    }
    let c = Csr {
        n: n as usize,
        indptr: indptr.iter().map(|&p| p as usize).collect(),
        indices: indices.iter().map(|&j| j as u32).collect(),
        weights: data.to_vec(),
    };
    c.validate("connectivities").map_err(to_napi)?;
    Ok(c)
}

/// Start kNN + connectivities on `data` (n × d float32, row-major).
#[napi(catch_unwind)]
pub fn start_neighbors(
    data: Float32Array,
    n: u32,
    d: u32,
    k: u32,
    metric: String,
    method: String,
    seed: f64,
) -> Result<NativePass> {
    let metric = Metric::parse(&metric).map_err(to_napi)?;
    let method = Method::parse(&method).map_err(to_napi)?;
    let data = data.to_vec();
    Ok(NativePass::spawn(move |control| {
        let params = knn::KnnParams {
            k: k as usize,
            metric,
            method,
            seed: seed as u64,
        };
        let knn = knn::knn(&data, n as usize, d as usize, params, control)?;
        drop(data);
        let conn = fuzzy::connectivities(&knn);
        let dist = fuzzy::distance_matrix(&knn);
        Ok(Output::Graph(GraphResult::Neighbors(Neighbors {
            knn,
            conn,
            dist,
        })))
    }))
}

/// Connectivities from a given kNN (n × k, self first), synchronously.
#[napi(catch_unwind)]
pub fn connectivities_from_knn(
    indices: Int32Array,
    distances: Float32Array,
    n: u32,
    k: u32,
) -> Result<CsrOut> {
    let (n, k) = (n as usize, k as usize);
    if indices.len() != n * k || distances.len() != n * k || k < 2 {
        return Err(to_napi(Error::invalid(
            "knn arrays must be n × k with k ≥ 2",
        )));
    }
    if indices.iter().any(|&j| j < 0 || j as usize >= n) || distances.iter().any(|d| !d.is_finite())
    {
        return Err(to_napi(Error::invalid(
            "knn indices out of range or distances not finite",
        )));
    }
    let knn = Knn {
        n,
        k,
        indices: indices.iter().map(|&j| j as u32).collect(),
        distances: distances.to_vec(),
        exact: true,
    };
    Ok(csr_out(fuzzy::connectivities(&knn)))
}

#[napi(object)]
pub struct UmapIn {
    pub n_components: u32,
    pub n_epochs: Option<u32>,
    pub min_dist: f64,
    pub spread: f64,
    pub a: Option<f64>,
    pub b: Option<f64>,
    pub alpha: f64,
    pub gamma: f64,
    pub negative_sample_rate: f64,
    /// "spectral", "random" or "given" (then `init_positions`).
    pub init: String,
    pub init_positions: Option<Float32Array>,
    pub seed: f64,
}

/// Start a native UMAP layout of a connectivity graph.
#[napi(catch_unwind)]
pub fn start_umap(
    graph: GraphIn,
    data: Float32Array,
    d: u32,
    params: UmapIn,
) -> Result<NativePass> {
    let g = csr_in(&graph)?;
    let init = match params.init.as_str() {
        "spectral" => umap::Init::Spectral,
        "random" => umap::Init::Random,
        "given" => umap::Init::Given(
            params
                .init_positions
                .as_ref()
                .ok_or_else(|| to_napi(Error::invalid("init 'given' needs positions")))?
                .to_vec(),
        ),
        other => return Err(to_napi(Error::invalid(format!("unknown init '{other}'")))),
    };
    let d = d as usize;
    if data.len() != g.n * d || (d == 0 && matches!(init, umap::Init::Spectral)) {
        return Err(to_napi(Error::invalid(
            "data must be n_obs × d (d > 0 for a spectral init)",
        )));
    }
    let p = umap::UmapParams {
        dim: params.n_components as usize,
        n_epochs: params.n_epochs.map(|e| e as usize),
        min_dist: params.min_dist,
        spread: params.spread,
        a: params.a,
        b: params.b,
        alpha: params.alpha,
        gamma: params.gamma,
        negative_sample_rate: params.negative_sample_rate,
        init,
        seed: params.seed as u64,
    };
    let data = data.to_vec();
    Ok(NativePass::spawn(move |control| {
        let (emb, a, b) = umap::embed(&g, &data, d, &p, control)?;
        Ok(Output::Graph(GraphResult::Umap(UmapOut {
            embedding: Float32Array::new(emb),
            a,
            b,
            n_epochs: p.n_epochs.unwrap_or_else(|| umap::default_epochs(g.n)) as u32,
        })))
    }))
}

/// UMAP's (a, b) for spread and min_dist.
#[napi(catch_unwind)]
pub fn umap_ab_params(spread: f64, min_dist: f64) -> Vec<f64> {
    let (a, b) = umap::ab::find_ab_params(spread, min_dist);
    vec![a, b]
}

/// Start computing the spectral initial coordinates (as the native layout
/// would start from them): a job, so that progress shows and it can be
/// cancelled (at 1M cells it takes seconds). Take with `take_umap`.
#[napi(catch_unwind)]
pub fn start_umap_init(
    graph: GraphIn,
    data: Float32Array,
    d: u32,
    n_components: u32,
    seed: f64,
) -> Result<NativePass> {
    let g = csr_in(&graph)?;
    if d == 0 || data.len() != g.n * d as usize {
        return Err(to_napi(Error::invalid("data must be n_obs × d with d > 0")));
    }
    let p = umap::UmapParams {
        dim: n_components as usize,
        n_epochs: None,
        min_dist: 0.5,
        spread: 1.0,
        a: None,
        b: None,
        alpha: 1.0,
        gamma: 1.0,
        negative_sample_rate: 5.0,
        init: umap::Init::Spectral,
        seed: seed as u64,
    };
    let data = data.to_vec();
    Ok(NativePass::spawn(move |control| {
        let emb = umap::initial_embedding(&g, &data, d as usize, &p, control)?;
        Ok(Output::Graph(GraphResult::Umap(UmapOut {
            embedding: Float32Array::new(emb),
            a: 0.0,
            b: 0.0,
            n_epochs: 0,
        })))
    }))
}

/// Start Leiden on a symmetric weighted graph.
#[napi(catch_unwind)]
pub fn start_leiden(
    graph: GraphIn,
    resolution: f64,
    n_iterations: i32,
    seed: f64,
) -> Result<NativePass> {
    let g = csr_in(&graph)?;
    let p = leiden::LeidenParams {
        resolution,
        n_iterations,
        seed: seed as u64,
    };
    Ok(NativePass::spawn(move |control| {
        let m = leiden::leiden(&g, &p, control)?;
        let quality = leiden::quality(&g, &m, p.resolution);
        Ok(Output::Graph(GraphResult::Leiden(LeidenOut {
            membership: Uint32Array::new(m),
            quality,
        })))
    }))
}

/// The resolution-scaled modularity that Leiden maximises.
#[napi(catch_unwind)]
pub fn graph_quality(graph: GraphIn, membership: Uint32Array, resolution: f64) -> Result<f64> {
    let g = csr_in(&graph)?;
    if membership.len() != g.n {
        return Err(to_napi(Error::invalid(
            "membership must have one entry per node",
        )));
    }
    Ok(leiden::quality(&g, &membership, resolution))
}
