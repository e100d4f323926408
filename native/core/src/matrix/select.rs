//! Selections along the minor axis of a block read. A selection may
//! reorder and repeat positions (anndata allows both), so the inverse map
//! is one-to-many: old index j goes to `targets[offsets[j]..offsets[j+1]]`.

#[derive(Debug, Clone)]
pub struct MinorMap {
    /// Length of the source axis.
    pub n_source: usize,
    /// The selected source positions in output order (None = identity).
    pub selection: Option<Vec<usize>>,
    offsets: Vec<u32>,
    targets: Vec<u32>,
    /// For a selection in ascending order without repeats (masks, sorted
    /// gene lists): old → new position, or DROPPED. One lookup per stored
    /// entry, and rows stay sorted.
    ascending: Option<Vec<u32>>,
}

/// Marks a source position the selection does not keep.
pub const DROPPED: u32 = u32::MAX;

impl MinorMap {
    pub fn identity(n_source: usize) -> Self {
        MinorMap {
            n_source,
            selection: None,
            offsets: vec![],
            targets: vec![],
            ascending: None,
        }
    }

    /// `selection` must hold positions < n_source (checked by the caller).
    pub fn select(n_source: usize, selection: Vec<usize>) -> Self {
        if selection.len() == n_source && selection.iter().enumerate().all(|(i, &j)| i == j) {
            return MinorMap::identity(n_source);
        }
        let mut offsets = vec![0u32; n_source + 1];
        for &j in &selection {
            offsets[j + 1] += 1;
        }
        for j in 0..n_source {
            offsets[j + 1] += offsets[j];
        }
        let mut fill = offsets.clone();
        let mut targets = vec![0u32; selection.len()];
        for (new, &old) in selection.iter().enumerate() {
            targets[fill[old] as usize] = new as u32;
            fill[old] += 1;
        }
        let ascending = selection.windows(2).all(|w| w[0] < w[1]).then(|| {
            let mut map = vec![DROPPED; n_source];
            for (new, &old) in selection.iter().enumerate() {
                map[old] = new as u32;
            }
            map
        });
        MinorMap {
            n_source,
            selection: Some(selection),
            offsets,
            targets,
            ascending,
        }
    }

    pub fn is_identity(&self) -> bool {
        self.selection.is_none()
    }

    pub fn n_out(&self) -> usize {
        self.selection.as_ref().map_or(self.n_source, |s| s.len())
    }

    /// Old → new positions when the selection is ascending (see `ascending`).
    pub fn ascending(&self) -> Option<&[u32]> {
        self.ascending.as_deref()
    }

    /// Output positions for source position `old`.
    #[inline]
    pub fn targets(&self, old: usize) -> &[u32] {
        &self.targets[self.offsets[old] as usize..self.offsets[old + 1] as usize]
    }
}
