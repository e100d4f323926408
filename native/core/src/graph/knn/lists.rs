//! Per-point candidate neighbour lists: `k` slots per point, kept sorted
//! by distance (k is ~15, so insertion into a small sorted array beats a
//! heap and makes "is j already there" a short scan).

pub const EMPTY: u32 = u32::MAX;

#[derive(Debug, Clone)]
pub struct NeighborLists {
    pub n: usize,
    pub k: usize,
    pub idx: Vec<u32>,
    /// Squared distances (or whatever the search ranks by), ascending.
    pub dist: Vec<f32>,
    /// NN-descent's "new" flag: not yet used in a local join.
    pub new: Vec<bool>,
}

impl NeighborLists {
    pub fn new(n: usize, k: usize) -> Self {
        NeighborLists {
            n,
            k,
            idx: vec![EMPTY; n * k],
            dist: vec![f32::INFINITY; n * k],
            new: vec![false; n * k],
        }
    }

    #[inline]
    pub fn worst(&self, i: usize) -> f32 {
        self.dist[i * self.k + self.k - 1]
    }

    /// Insert `j` at distance `d` into row `i` if it is closer than the
    /// current worst and not present yet. Returns whether it was inserted.
    #[inline]
    pub fn push(&mut self, i: usize, j: u32, d: f32, new: bool) -> bool {
        let k = self.k;
        let base = i * k;
        push_row(
            &mut self.idx[base..base + k],
            &mut self.dist[base..base + k],
            &mut self.new[base..base + k],
            j,
            d,
            new,
        )
    }
}

/// `push` on one row's slices (used by row-parallel updates).
#[inline]
pub fn push_row(
    idx: &mut [u32],
    dist: &mut [f32],
    new: &mut [bool],
    j: u32,
    d: f32,
    is_new: bool,
) -> bool {
    let k = idx.len();
    if d >= dist[k - 1] {
        return false;
    }
    if idx.contains(&j) {
        return false;
    }
    let mut p = k - 1;
    while p > 0 && dist[p - 1] > d {
        idx[p] = idx[p - 1];
        dist[p] = dist[p - 1];
        new[p] = new[p - 1];
        p -= 1;
    }
    idx[p] = j;
    dist[p] = d;
    new[p] = is_new;
    true
}
