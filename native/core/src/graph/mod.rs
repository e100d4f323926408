//! Graph steps on in-memory data (obsm / obsp, never X): k-nearest
//! neighbours, the UMAP fuzzy simplicial set (connectivities), the UMAP
//! layout and Leiden clustering.

pub mod csr;
pub mod fuzzy;
pub mod knn;
pub mod leiden;
pub mod rng;
pub mod umap;
