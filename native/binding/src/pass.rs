//! `NativePass`: a pass running on its own thread. JS polls it with
//! `wait()` (an AsyncTask that blocks a pool thread until progress changes
//! or a timeout passes), cancels it with `cancel()`, and takes the result
//! once `finished` is set. Pull-based: no callbacks into JS from Rust.

use crate::error::{guard, to_napi};
use anndata_oom_core::error::{Error, Result as CoreResult};
use anndata_oom_core::file::H5ad;
use anndata_oom_core::gather::Gather;
use anndata_oom_core::h5w::Compression;
use anndata_oom_core::matrix::{Format, Matrix, MinorMap};
use anndata_oom_core::pass::{self, Control};
use anndata_oom_core::stats::{AxisStats, StatsAccumulator, StatsRequest};
use anndata_oom_core::writer::{self, Selection};
use napi::bindgen_prelude::*;
use napi_derive::napi;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub(crate) enum Output {
    Plan(anndata_oom_core::pp::runner::PassOutputs),
    Stats {
        obs: AxisStats,
        var: AxisStats,
    },
    Gathered {
        values: Vec<f64>,
        n_rows: usize,
        n_cols: usize,
    },
    Written,
    /// The header (JSON) of a built gene index.
    GeneIndex(String),
    Graph(crate::graph::GraphResult),
}

type Slot = Arc<Mutex<Option<CoreResult<Output>>>>;

#[napi]
pub struct NativePass {
    control: Arc<Control>,
    result: Slot,
}

#[napi(object)]
pub struct ProgressOut {
    pub chunks_done: u32,
    pub chunks_total: u32,
    pub rows_done: f64,
    pub rows_total: f64,
    pub entries_done: f64,
    pub entries_total: f64,
    pub bytes_done: f64,
    pub elapsed_ms: f64,
    pub finished: bool,
}

fn progress_out(p: pass::Progress) -> ProgressOut {
    ProgressOut {
        chunks_done: p.chunks_done as u32,
        chunks_total: p.chunks_total as u32,
        rows_done: p.majors_done as f64,
        rows_total: p.majors_total as f64,
        entries_done: p.entries_done as f64,
        entries_total: p.entries_total as f64,
        bytes_done: p.bytes_done as f64,
        elapsed_ms: p.elapsed_ms,
        finished: p.finished,
    }
}

#[napi(object)]
pub struct AxisStatsOut {
    pub sum: Float64Array,
    pub mean: Float64Array,
    pub var: Float64Array,
    pub nnz: Float64Array,
}

#[napi(object)]
pub struct StatsOut {
    pub obs: AxisStatsOut,
    pub var: AxisStatsOut,
}

#[napi(object)]
pub struct GatherOut {
    pub values: Float64Array,
    pub n_rows: u32,
    pub n_cols: u32,
}

fn axis_out(a: AxisStats) -> AxisStatsOut {
    AxisStatsOut {
        sum: Float64Array::new(a.sum),
        mean: Float64Array::new(a.mean),
        var: Float64Array::new(a.var),
        nnz: Float64Array::new(a.nnz),
    }
}

/// Open a matrix and resolve the selections into majors and a minor map.
fn prepare(
    file: &H5ad,
    path: &str,
    rows: Option<Vec<usize>>,
    cols: Option<Vec<usize>>,
) -> CoreResult<(Matrix, Vec<usize>, MinorMap, usize, usize)> {
    let m = file.open_matrix(path)?;
    let [nr, nc] = m.meta.shape;
    for (s, n) in [(&rows, nr), (&cols, nc)] {
        if let Some(&bad) = s.as_ref().and_then(|s| s.iter().find(|&&i| i >= n)) {
            return Err(
                Error::invalid(format!("index {bad} out of range for length {n}")).at(path),
            );
        }
    }
    let n_rows = rows.as_ref().map_or(nr, |r| r.len());
    let n_cols = cols.as_ref().map_or(nc, |c| c.len());
    let (major, minor) = if m.meta.format == Format::Csc {
        (cols, rows)
    } else {
        (rows, cols)
    };
    let majors = major.unwrap_or_else(|| (0..m.n_major()).collect());
    let minor = minor.map_or_else(
        || MinorMap::identity(m.n_minor()),
        |s| MinorMap::select(m.n_minor(), s),
    );
    Ok((m, majors, minor, n_rows, n_cols))
}

impl NativePass {
    pub(crate) fn spawn(
        job: impl FnOnce(&Control) -> CoreResult<Output> + Send + 'static,
    ) -> NativePass {
        pass::set_release_memory_hook(release_memory);
        let control = Arc::new(Control::default());
        let result: Slot = Arc::new(Mutex::new(None));
        let (c, r) = (control.clone(), result.clone());
        std::thread::spawn(move || {
            let out = guard(|| job(&c)).map_err(|e| Error::internal(e.reason.clone()));
            // guard already turned core errors into napi errors; keep the
            // original JSON reason so JS can still type the error.
            if let Ok(mut slot) = r.lock() {
                *slot = Some(out);
            }
            release_memory();
            pass::finish(&c);
        });
        NativePass { control, result }
    }

    /// `axes`: "obs", "var" or "both" — which per-axis statistics to take.
    pub fn stats(
        file: Arc<H5ad>,
        path: String,
        (rows, cols): (Option<Vec<usize>>, Option<Vec<usize>>),
        moments: bool,
        axes: String,
        block_bytes: Option<u32>,
    ) -> Self {
        Self::spawn(move |control| {
            let (m, majors, minor, _, _) = prepare(&file, &path, rows, cols)?;
            let (want_obs, want_var) = match axes.as_str() {
                "obs" => (true, false),
                "var" => (false, true),
                "both" => (true, true),
                other => {
                    return Err(Error::invalid(format!(
                        "axes must be obs, var or both, not '{other}'"
                    )))
                }
            };
            let csc = m.meta.format == Format::Csc;
            let req = StatsRequest {
                major: if csc { want_var } else { want_obs },
                minor: if csc { want_obs } else { want_var },
                moments,
            };
            let mut acc = StatsAccumulator::new(majors.len(), minor.n_out(), req);
            let budget = block_bytes.map_or_else(pass::block_bytes, |b| b as usize);
            pass::run(&m, &majors, &minor, budget, control, &mut acc)
                .map_err(|e| e.in_file(&file.path))?;
            let (major, minor_stats) = acc.finish();
            Ok(if csc {
                Output::Stats {
                    obs: minor_stats,
                    var: major,
                }
            } else {
                Output::Stats {
                    obs: major,
                    var: minor_stats,
                }
            })
        })
    }

    pub fn gather(
        file: Arc<H5ad>,
        path: String,
        rows: Option<Vec<usize>>,
        cols: Option<Vec<usize>>,
    ) -> Self {
        Self::spawn(move |control| {
            let (m, majors, minor, n_rows, n_cols) = prepare(&file, &path, rows, cols)?;
            let mut acc = Gather::new(n_rows, n_cols, m.meta.format == Format::Csc)?;
            pass::run(&m, &majors, &minor, pass::block_bytes(), control, &mut acc)
                .map_err(|e| e.in_file(&file.path))?;
            Ok(Output::Gathered {
                values: acc.values,
                n_rows,
                n_cols,
            })
        })
    }

    pub fn write(
        file: Arc<H5ad>,
        dest: String,
        obs: Option<Vec<usize>>,
        var: Option<Vec<usize>>,
        compression: Option<String>,
        session: writer::Session,
    ) -> Self {
        Self::spawn(move |control| {
            let c = match compression.as_deref() {
                None | Some("none") => Compression::None,
                Some("gzip") => Compression::Gzip(4),
                Some("lzf") => Compression::Lzf,
                Some(other) => {
                    return Err(Error::invalid(format!(
                        "unknown compression '{other}' (use 'gzip', 'lzf' or none)"
                    )))
                }
            };
            writer::write_h5ad_session(
                &file,
                &dest,
                &Selection { obs, var },
                &session,
                c,
                control,
            )?;
            Ok(Output::Written)
        })
    }

    pub fn plan(
        file: Arc<H5ad>,
        path: String,
        sel: (Option<Vec<usize>>, Option<Vec<usize>>),
        plan: String,
        vectors: Vec<Vec<f64>>,
        request: String,
    ) -> Self {
        Self::spawn(move |control| {
            anndata_oom_core::pp::request::run(
                &file, &path, sel, &plan, &vectors, &request, control,
            )
            .map(Output::Plan)
        })
    }

    fn take(&self) -> Result<Output> {
        let mut slot = self
            .result
            .lock()
            .map_err(|_| to_napi(Error::internal("result lock poisoned")))?;
        match slot.take() {
            None => Err(to_napi(Error::internal("the pass has not finished"))),
            Some(Err(e)) => {
                // Errors raised inside guard() carry the JSON reason already.
                if e.message.starts_with(crate::error::PREFIX) {
                    Err(napi::Error::new(napi::Status::GenericFailure, e.message))
                } else {
                    Err(to_napi(e))
                }
            }
            Some(Ok(o)) => Ok(o),
        }
    }
}

#[napi]
impl NativePass {
    #[napi]
    pub fn cancel(&self) {
        self.control.cancel();
    }

    #[napi]
    pub fn progress(&self) -> ProgressOut {
        progress_out(self.control.snapshot())
    }

    /// Resolves when more chunks are done than `seen_chunks`, the pass
    /// finishes, or `timeout_ms` passes.
    #[napi]
    pub fn wait(&self, seen_chunks: u32, timeout_ms: u32) -> AsyncTask<Wait> {
        AsyncTask::new(Wait {
            control: self.control.clone(),
            seen: seen_chunks as usize,
            timeout_ms,
        })
    }

    /// The error of a failed pass (throws it), or nothing.
    #[napi(catch_unwind)]
    pub fn take_stats(&self) -> Result<StatsOut> {
        match self.take()? {
            Output::Stats { obs, var } => Ok(StatsOut {
                obs: axis_out(obs),
                var: axis_out(var),
            }),
            _ => Err(to_napi(Error::internal("not a stats pass"))),
        }
    }

    #[napi(catch_unwind)]
    pub fn take_gather(&self) -> Result<GatherOut> {
        match self.take()? {
            Output::Gathered {
                values,
                n_rows,
                n_cols,
            } => Ok(GatherOut {
                values: Float64Array::new(values),
                n_rows: n_rows as u32,
                n_cols: n_cols as u32,
            }),
            _ => Err(to_napi(Error::internal("not a gather pass"))),
        }
    }

    #[napi(catch_unwind)]
    pub fn take_plan(&self) -> Result<crate::pp::PlanOut> {
        match self.take()? {
            Output::Plan(o) => Ok(crate::pp::to_js(o)),
            _ => Err(to_napi(Error::internal("not a plan pass"))),
        }
    }

    #[napi(catch_unwind)]
    pub fn take_neighbors(&self) -> Result<crate::graph::NeighborsOut> {
        match self.take()? {
            Output::Graph(crate::graph::GraphResult::Neighbors(n)) => {
                Ok(crate::graph::neighbors_out(n))
            }
            _ => Err(to_napi(Error::internal("not a neighbors job"))),
        }
    }

    #[napi(catch_unwind)]
    pub fn take_umap(&self) -> Result<crate::graph::UmapOut> {
        match self.take()? {
            Output::Graph(crate::graph::GraphResult::Umap(u)) => Ok(u),
            _ => Err(to_napi(Error::internal("not a umap job"))),
        }
    }

    #[napi(catch_unwind)]
    pub fn take_leiden(&self) -> Result<crate::graph::LeidenOut> {
        match self.take()? {
            Output::Graph(crate::graph::GraphResult::Leiden(l)) => Ok(l),
            _ => Err(to_napi(Error::internal("not a leiden job"))),
        }
    }

    /// The built gene index's header (JSON).
    #[napi(catch_unwind)]
    pub fn take_gene_index(&self) -> Result<String> {
        match self.take()? {
            Output::GeneIndex(h) => Ok(h),
            _ => Err(to_napi(Error::internal("not a gene index build"))),
        }
    }

    #[napi(catch_unwind)]
    pub fn take_written(&self) -> Result<()> {
        match self.take()? {
            Output::Written => Ok(()),
            _ => Err(to_napi(Error::internal("not a write pass"))),
        }
    }
}

pub struct Wait {
    control: Arc<Control>,
    seen: usize,
    timeout_ms: u32,
}

impl Task for Wait {
    type Output = pass::Progress;
    type JsValue = ProgressOut;

    fn compute(&mut self) -> Result<Self::Output> {
        Ok(self
            .control
            .wait(self.seen, Duration::from_millis(self.timeout_ms as u64)))
    }

    fn resolve(&mut self, _env: Env, p: Self::Output) -> Result<ProgressOut> {
        Ok(progress_out(p))
    }
}

/// Return the memory a pass freed to the OS: mimalloc keeps freed pages in
/// each thread's heap, and the rayon workers that freed them sit idle after
/// a pass, so ask every worker (and this thread) to collect. Keeps the
/// baseline low for the next step (its peak adds to it).
pub(crate) fn release_memory() {
    rayon::broadcast(|_| unsafe { libmimalloc_sys::mi_collect(true) });
    unsafe { libmimalloc_sys::mi_collect(true) };
}
