//! Plan passes (preprocessing): one native pass evaluating the lazy
//! transform chain and taking every requested statistic.

use napi::bindgen_prelude::*;
use napi_derive::napi;

/// Named float64 arrays, plus float32 ones for large outputs (X_pca).
#[napi(object)]
pub struct PlanOut {
    pub names: Vec<String>,
    pub arrays: Vec<Float64Array>,
    pub names32: Vec<String>,
    pub arrays32: Vec<Float32Array>,
}

pub fn to_js(o: anndata_oom_core::pp::runner::PassOutputs) -> PlanOut {
    let (names, arrays) = o
        .f64
        .into_iter()
        .map(|(n, v)| (n, Float64Array::new(v)))
        .unzip();
    let (names32, arrays32) = o
        .f32
        .into_iter()
        .map(|(n, v)| (n, Float32Array::new(v)))
        .unzip();
    PlanOut {
        names,
        arrays,
        names32,
        arrays32,
    }
}

pub fn vectors(v: Vec<Float64Array>) -> Vec<Vec<f64>> {
    v.iter().map(|a| a.to_vec()).collect()
}
