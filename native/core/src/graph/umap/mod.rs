//! UMAP embedding from a connectivity graph: curve parameters, initial
//! coordinates and the SGD layout (umap-learn's simplicial_set_embedding).

pub mod ab;
pub mod layout;
pub mod spectral;

use crate::error::{Error, Result};
use crate::graph::csr::Csr;
use crate::graph::rng::Rng;
use crate::pass::Control;

#[derive(Debug, Clone)]
pub enum Init {
    Spectral,
    /// Given coordinates (e.g. the first PCs), n × dim.
    Given(Vec<f32>),
    Random,
}

#[derive(Debug, Clone)]
pub struct UmapParams {
    pub dim: usize,
    pub n_epochs: Option<usize>,
    pub min_dist: f64,
    pub spread: f64,
    pub a: Option<f64>,
    pub b: Option<f64>,
    pub alpha: f64,
    pub gamma: f64,
    pub negative_sample_rate: f64,
    pub init: Init,
    pub seed: u64,
}

/// umap-learn's default epoch count.
pub fn default_epochs(n: usize) -> usize {
    if n <= 10_000 {
        500
    } else {
        200
    }
}

/// Initial coordinates as umap-learn makes them: spectral/given scaled so
/// that the largest |coordinate| is 10 plus tiny noise, random uniform in
/// [-10, 10]; then every axis rescaled to [0, 10].
pub fn initial_embedding(
    g: &Csr,
    data: &[f32],
    d: usize,
    p: &UmapParams,
    control: &Control,
) -> Result<Vec<f32>> {
    let (n, dim) = (g.n, p.dim);
    let mut rng = Rng::new(p.seed);
    let mut emb: Vec<f64> = match &p.init {
        Init::Random => (0..n * dim).map(|_| rng.uniform() * 20.0 - 10.0).collect(),
        Init::Spectral | Init::Given(_) => {
            let raw: Vec<f64> = match &p.init {
                Init::Given(v) => v.iter().map(|&x| x as f64).collect(),
                _ => spectral::spectral_layout(g, data, d, dim, p.seed, control)?,
            };
            let max = raw.iter().fold(0f64, |m, v| m.max(v.abs()));
            let expansion = if max > 0.0 { 10.0 / max } else { 1.0 };
            raw.iter()
                .map(|&x| (x * expansion) as f32 as f64 + 1e-4 * rng.normal())
                .collect()
        }
    };
    for k in 0..dim {
        let (lo, hi) = (0..n).fold((f64::MAX, f64::MIN), |(lo, hi), i| {
            (lo.min(emb[i * dim + k]), hi.max(emb[i * dim + k]))
        });
        let range = if hi > lo { hi - lo } else { 1.0 };
        for i in 0..n {
            emb[i * dim + k] = 10.0 * (emb[i * dim + k] - lo) / range;
        }
    }
    Ok(emb.into_iter().map(|x| x as f32).collect())
}

/// The UMAP embedding (n × dim) of graph `g`; `data` (n × d) is only used
/// to place disconnected components.
pub fn embed(
    g: &Csr,
    data: &[f32],
    d: usize,
    p: &UmapParams,
    control: &Control,
) -> Result<(Vec<f32>, f64, f64)> {
    g.validate("connectivities")?;
    if p.dim == 0 || p.min_dist < 0.0 || p.spread <= 0.0 || p.min_dist > p.spread {
        return Err(Error::invalid(format!(
            "need nComponents ≥ 1, spread > 0 and 0 ≤ minDist ≤ spread (got {}, {}, {})",
            p.dim, p.spread, p.min_dist
        )));
    }
    if let Init::Given(v) = &p.init {
        if v.len() != g.n * p.dim {
            return Err(Error::invalid(
                "initial positions must be n_obs × nComponents",
            ));
        }
    }
    let (a, b) = match (p.a, p.b) {
        (Some(a), Some(b)) => (a, b),
        _ => ab::find_ab_params(p.spread, p.min_dist),
    };
    let t0 = std::time::Instant::now();
    let mut emb = initial_embedding(g, data, d, p, control)?;
    if std::env::var_os("AOOM_PROFILE").is_some() {
        eprintln!("umap: initial embedding {:?}", t0.elapsed());
    }
    let lp = layout::LayoutParams {
        n_epochs: p.n_epochs.unwrap_or_else(|| default_epochs(g.n)),
        a,
        b,
        gamma: p.gamma,
        initial_alpha: p.alpha,
        negative_sample_rate: p.negative_sample_rate,
        seed: p.seed,
    };
    let t0 = std::time::Instant::now();
    layout::optimize(g, &mut emb, p.dim, &lp, control)?;
    if std::env::var_os("AOOM_PROFILE").is_some() {
        eprintln!("umap: layout {:?}", t0.elapsed());
    }
    Ok((emb, a, b))
}
