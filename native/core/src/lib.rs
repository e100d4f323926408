//! anndata-oom core: the h5ad codec, block reads of on-disk matrices,
//! streaming passes and the writer. No napi here; see ../binding.

pub mod dataframe;
pub mod dtype;
pub mod element;
pub mod error;
pub mod file;
pub mod gather;
pub mod gene_index;
pub mod graph;
pub mod h5;
pub mod h5vfd;
pub mod h5w;
pub mod legacy06;
pub mod limits;
pub mod matrix;
pub mod orphans;
pub mod pass;
pub mod pp;
pub mod prefetch;
pub mod records;
pub mod reorder;
pub mod stats;
pub mod strings;
pub mod writer;

pub use error::{Error, ErrorKind, Result};

pub mod simd_state {
    //! faer's gemm kernels use AVX-512 and can leave the upper register
    //! halves dirty. This crate is compiled for baseline x86-64 (legacy SSE
    //! encodings); SSE code that runs while the upper state is dirty pays a
    //! penalty on every instruction — measured here as every later pass
    //! running ~3× slower after one PCA. `vzeroupper` on each thread after
    //! a faer call restores full speed.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx")]
    unsafe fn zero_upper() {
        core::arch::x86_64::_mm256_zeroupper();
    }

    /// On the calling thread (after a faer call inside a worker's loop).
    pub fn clear_here() {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx") {
            // SAFETY: the CPU supports AVX (checked above).
            unsafe { zero_upper() }
        }
    }

    /// On every thread of the pool and on the calling thread (after a
    /// parallel faer call).
    pub fn clear_all() {
        rayon::broadcast(|_| clear_here());
        clear_here();
    }
}
