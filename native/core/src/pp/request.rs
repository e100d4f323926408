//! A plan pass as requested from JS: the plan, its vectors, and which
//! statistics to take (any combination runs as ONE pass over X).

use super::gram::Gram;
use super::moments::{MomentSet, Moments, MAX_SETS};
use super::plan::Plan;
use super::qc::Qc;
use super::runner::{PassOutputs, PlanPass, RowAccumulator};
use crate::error::{Error, ErrorKind, Result};
use crate::file::H5ad;
use crate::matrix::{Format, MinorMap};
use crate::pass::{self, Control};
use serde::Deserialize;

#[derive(Debug, Deserialize, Default)]
pub struct Request {
    #[serde(default)]
    pub qc: Option<QcRequest>,
    #[serde(default)]
    pub moments: Vec<MomentsRequest>,
    #[serde(default)]
    pub pca: Option<PcaRequest>,
    #[serde(default)]
    pub highly_expressed: Option<HighlyExpressedRequest>,
    #[serde(default)]
    pub clipped: Option<ClippedRequest>,
    #[serde(default)]
    pub pearson: Option<PearsonRequest>,
    #[serde(default)]
    pub randomized_pca: Option<RandomizedPcaRequest>,
    #[serde(default)]
    pub stats: Option<ChainStatsRequest>,
}

/// Statistics of the transformed values (see chain_stats.rs).
#[derive(Debug, Deserialize)]
pub struct ChainStatsRequest {
    pub rows: bool,
    pub cols: bool,
}

#[derive(Debug, Deserialize)]
pub struct PearsonRequest {
    /// Vector index: batches × genes gene sums.
    pub gene_sums: usize,
    /// Vector index: per-batch totals.
    pub totals: usize,
    pub theta: f64,
    pub clip: f64,
    pub batches: Option<usize>,
}

#[derive(Debug, Deserialize)]
pub struct ClippedRequest {
    /// Vector index of the batches × genes ceilings.
    pub clip: usize,
    /// Vector index of per-row batch codes.
    pub batches: Option<usize>,
}

#[derive(Debug, Deserialize)]
pub struct HighlyExpressedRequest {
    pub max_fraction: f64,
}

#[derive(Debug, Deserialize)]
pub struct QcRequest {
    /// Vector indices of per-gene 0/1 masks (qc_vars).
    pub masks: Vec<usize>,
    pub percent_top: Vec<usize>,
}

#[derive(Debug, Deserialize)]
pub struct MomentsRequest {
    pub name: String,
    #[serde(default)]
    pub expm1: bool,
    /// Multiply values by this before expm1 (undoes a log base).
    #[serde(default)]
    pub pre_scale: Option<f64>,
    /// Vector index of per-row batch codes.
    pub batches: Option<usize>,
    /// Count non-zero values too (default true).
    #[serde(default = "default_true")]
    pub nnz: bool,
}

fn default_true() -> bool {
    true
}

#[derive(Debug, Deserialize)]
pub struct RandomizedPcaRequest {
    pub n_comps: usize,
    #[serde(default = "default_oversample")]
    pub oversample: usize,
    pub n_iter: usize,
    #[serde(default)]
    pub seed: u64,
}

fn default_oversample() -> usize {
    10
}

#[derive(Debug, Deserialize)]
pub struct PcaRequest {
    pub n_comps: usize,
    pub zero_center: bool,
}

/// Run one plan pass over `path` restricted to `rows` × `cols`.
pub fn run(
    file: &H5ad,
    path: &str,
    (rows, cols): (Option<Vec<usize>>, Option<Vec<usize>>),
    plan_json: &str,
    vectors: &[Vec<f64>],
    request_json: &str,
    control: &Control,
) -> Result<PassOutputs> {
    let m = file.open_matrix(path)?;
    if m.meta.format == Format::Csc {
        return Err(Error::new(
            ErrorKind::UnsupportedEncoding,
            "preprocessing streams rows; this matrix is stored as CSC (write a CSR copy with adata.write after converting, or use a CSR file)",
        )
        .at(path));
    }
    let [nr, nc] = m.meta.shape;
    for (s, n) in [(&rows, nr), (&cols, nc)] {
        if let Some(&bad) = s.as_ref().and_then(|s| s.iter().find(|&&i| i >= n)) {
            return Err(
                Error::invalid(format!("index {bad} out of range for length {n}")).at(path),
            );
        }
    }
    let majors: Vec<usize> = rows.unwrap_or_else(|| (0..nr).collect());
    let minor = cols.map_or_else(|| MinorMap::identity(nc), |c| MinorMap::select(nc, c));
    let n_rows = majors.len();
    let mut plan = Plan::parse(plan_json)?.compile(vectors, n_rows, minor.n_out())?;
    let minor = match &minor.selection {
        Some(sel)
            if m.meta.format == Format::Csr && !plan.needs_row_totals() && !repeats(sel, nc) =>
        {
            plan.fold_selection(sel, nc);
            if std::env::var_os("AOOM_PROFILE").is_some() {
                eprintln!(
                    "plan pass: {} of {nc} columns kept by the workers",
                    sel.len()
                );
            }
            MinorMap::identity(nc)
        }
        _ => minor,
    };
    // Accumulators see the output columns (after the plan's gene selection).
    let n_cols = plan.n_out;
    let req: Request = serde_json::from_str(request_json)
        .map_err(|e| Error::invalid(format!("bad request: {e}")))?;
    if let Some(r) = &req.randomized_pca {
        return run_randomized(file, &m, (&majors, &minor), plan, r, control);
    }
    let vector = |i: usize| -> Result<&Vec<f64>> {
        vectors
            .get(i)
            .ok_or_else(|| Error::invalid(format!("missing vector {i}")))
    };
    let mut accs: Vec<Box<dyn RowAccumulator>> = Vec::new();
    if let Some(q) = &req.qc {
        let masks = q
            .masks
            .iter()
            .map(|&i| {
                let v = vector(i)?;
                if v.len() != n_cols {
                    return Err(Error::invalid(
                        "qc mask length differs from the number of genes",
                    ));
                }
                Ok(v.iter().map(|&x| x != 0.0).collect())
            })
            .collect::<Result<Vec<Vec<bool>>>>()?;
        accs.push(Box::new(Qc::new(
            masks,
            q.percent_top.clone(),
            n_rows,
            n_cols,
        )));
    }
    // Requests over the same batches share one accumulator, two sets at a
    // time (one scatter per stored value for both).
    let mut groups: Vec<(Option<usize>, Vec<MomentSet>)> = Vec::new();
    for mr in &req.moments {
        let set = MomentSet {
            name: mr.name.clone(),
            expm1: mr.expm1,
            pre_scale: mr.pre_scale.unwrap_or(1.0),
            nnz: mr.nnz,
        };
        match groups
            .iter_mut()
            .find(|(b, sets)| *b == mr.batches && sets.len() < MAX_SETS && sets[0].nnz == mr.nnz)
        {
            Some((_, sets)) => sets.push(set),
            None => groups.push((mr.batches, vec![set])),
        }
    }
    for (batch_vector, sets) in groups {
        let batches = match batch_vector {
            Some(i) => {
                let v = vector(i)?;
                if v.len() != n_rows {
                    return Err(Error::invalid(
                        "batch codes length differs from the number of rows",
                    ));
                }
                Some(v.iter().map(|&x| x as u32).collect())
            }
            None => None,
        };
        accs.push(Box::new(Moments::new(sets, batches, n_cols)?));
    }
    if let Some(pr) = &req.pearson {
        let batches = match pr.batches {
            Some(i) => Some(vector(i)?.iter().map(|&x| x as u32).collect()),
            None => None,
        };
        accs.push(Box::new(super::pearson::Pearson::new(
            super::pearson::Params {
                gene_sums: vector(pr.gene_sums)?.clone(),
                totals: vector(pr.totals)?.clone(),
                theta: pr.theta,
                clip: pr.clip,
                batches,
                n_cols,
            },
        )?));
    }
    if let Some(c) = &req.clipped {
        let batches = match c.batches {
            Some(i) => Some(vector(i)?.iter().map(|&x| x as u32).collect()),
            None => None,
        };
        accs.push(Box::new(super::clipped::Clipped::new(
            vector(c.clip)?.clone(),
            batches,
            n_cols,
        )?));
    }
    if let Some(h) = &req.highly_expressed {
        accs.push(Box::new(super::expressed::HighlyExpressed::new(
            h.max_fraction,
            n_cols,
        )));
    }
    if let Some(st) = &req.stats {
        accs.push(Box::new(super::chain_stats::ChainStats::new(
            st.rows,
            st.cols,
            n_rows,
            n_cols,
            plan.scaling.clone(),
        )));
    }
    if let Some(p) = &req.pca {
        let dir = crate::orphans::spill_dir();
        accs.push(Box::new(Gram::new(
            n_cols,
            plan.scaling.clone(),
            dir,
            p.n_comps,
            p.zero_center,
            n_rows,
        )?));
    }
    let mut runner = PlanPass::new(plan, accs, n_rows);
    runner.want_pre_log = req.moments.iter().any(|m| m.expm1);
    pass::run(
        &m,
        &majors,
        &minor,
        pass::block_bytes(),
        control,
        &mut runner,
    )
    .map_err(|e| e.in_file(&file.path))?;
    runner.finish()
}

/// Randomized PCA: 1 + n_iter passes of C·Q, Rayleigh–Ritz, 1 projection pass.
fn run_randomized(
    file: &H5ad,
    m: &crate::matrix::Matrix,
    (majors, minor): (&[usize], &MinorMap),
    plan: super::plan::Compiled,
    r: &RandomizedPcaRequest,
    control: &Control,
) -> Result<PassOutputs> {
    use super::randomized::{gaussian, orthonormalize, rayleigh_ritz, CovApply, Project};
    let p = plan.n_out;
    let n_rows = majors.len();
    let k = (r.n_comps + r.oversample).min(p);
    if r.n_comps == 0 || r.n_comps > k {
        return Err(Error::invalid(format!("n_comps must be in [1, {p}]")));
    }
    // Q, its product and their per-thread partials: genes × k each.
    crate::limits::check_work(
        &format!("randomized PCA with nComps + oversample = {k} over {p} genes"),
        (p as u64).saturating_mul(k as u64),
        8 * 5,
    )?;
    let apply = |q: &[f64]| -> Result<(Vec<f64>, Vec<f64>, f64)> {
        let acc = CovApply::new(p, k, q.to_vec(), plan.scaling.clone());
        let mut runner = PlanPass::new(plan.clone(), vec![Box::new(acc)], n_rows);
        pass::run(m, majors, minor, pass::block_bytes(), control, &mut runner)
            .map_err(|e| e.in_file(&file.path))?;
        let mut out = runner.finish()?.f64;
        let mut take = |name: &str| {
            out.iter()
                .position(|(n, _)| n == name)
                .map(|i| out.swap_remove(i).1)
                .unwrap_or_default()
        };
        let w = take("cov.w");
        let colmean = take("cov.colmean_s");
        let total = take("cov.total_variance")
            .first()
            .copied()
            .unwrap_or(f64::NAN);
        Ok((w, colmean, total))
    };
    let mut q = orthonormalize(&gaussian(p, k, r.seed), p, k);
    let (mut w, mut colmean, mut total) = apply(&q)?;
    for _ in 0..r.n_iter {
        q = orthonormalize(&w, p, k);
        (w, colmean, total) = apply(&q)?;
    }
    let (comps, eig) = rayleigh_ritz(&q, &w, p, k, r.n_comps)?;
    let proj = Project::new(
        p,
        r.n_comps,
        comps.clone(),
        &colmean,
        plan.scaling.clone(),
        n_rows,
    );
    let mut runner = PlanPass::new(plan, vec![Box::new(proj)], n_rows);
    pass::run(m, majors, minor, pass::block_bytes(), control, &mut runner)
        .map_err(|e| e.in_file(&file.path))?;
    let mut out = runner.finish()?;
    out.f64.push(("pca.components".into(), comps));
    out.f64.push(("pca.variance".into(), eig));
    out.f64.push(("pca.total_variance".into(), vec![total]));
    Ok(out)
}

/// True when a column selection lists a column twice.
fn repeats(selection: &[usize], n: usize) -> bool {
    let mut seen = vec![false; n];
    selection
        .iter()
        .any(|&j| std::mem::replace(&mut seen[j], true))
}
