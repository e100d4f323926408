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
pub mod h5w;
pub mod limits;
pub mod matrix;
pub mod pass;
pub mod pp;
pub mod stats;
pub mod strings;
pub mod writer;

pub use error::{Error, ErrorKind, Result};
