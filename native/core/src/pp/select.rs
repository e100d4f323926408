//! Narrowing a stored row to a pass's output columns while converting its
//! values to f64: in the PCA pass this runs on every stored value of the
//! file (30,000 genes read, 2,000 kept), so it has an AVX-512 kernel,
//! chosen at run time, beside the portable loop. Both give the same result.

use crate::dtype::Values;
use crate::with_values;

/// The stored entries of one row (`ix` its columns, `values[range]` its
/// values) whose column maps to an output column (`map[column]` ≥ 0),
/// renumbered, as f64, in `cols[..k]` and `vals[..k]`; returns k.
///
/// Every column in `ix` must be below `map.len()` (the caller checks the
/// block's width against the map; the reader checked the indices). The
/// buffers only grow: resizing them to each row's length zero-filled every
/// row's full width again (a memset of ~12 bytes per stored value, 20 GB
/// over a million-cell pass).
pub(crate) fn select_row(
    map: &[i32],
    ix: &[i32],
    values: &Values,
    range: std::ops::Range<usize>,
    cols: &mut Vec<u32>,
    vals: &mut Vec<f64>,
) -> usize {
    if cols.len() < ix.len() {
        cols.resize(ix.len(), 0);
        vals.resize(ix.len(), 0.0);
    }
    #[cfg(target_arch = "x86_64")]
    if let Values::Float32(v) = values {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512F; the slices' bounds are what
            // select_f32_avx512 asks for (ix and the values have the same
            // length, the buffers at least that).
            return unsafe { select_f32_avx512(map, ix, &v[range], cols, vals) };
        }
    }
    select_scalar(map, ix, values, range, cols, vals)
}

/// The portable loop. Branch-free: every entry is written, and k advances
/// only past kept ones (a few percent are kept, in no predictable pattern).
#[allow(clippy::unnecessary_cast)]
fn select_scalar(
    map: &[i32],
    ix: &[i32],
    values: &Values,
    range: std::ops::Range<usize>,
    cols: &mut [u32],
    vals: &mut [f64],
) -> usize {
    assert!(cols.len() >= ix.len() && vals.len() >= ix.len());
    let mut k = 0;
    with_values!(values, v => {
        for (&j, &x) in ix.iter().zip(&v[range]) {
            // SAFETY: j < map.len() (select_row's contract); k ≤ the
            // entries seen so far < ix.len() ≤ cols.len(), vals.len()
            // (asserted). Unchecked: three bounds checks per stored value
            // were most of this loop.
            unsafe {
                let o = *map.get_unchecked(j as usize);
                *cols.get_unchecked_mut(k) = o as u32;
                *vals.get_unchecked_mut(k) = x as f64;
                k += usize::from(o >= 0);
            }
        }
    });
    k
}

/// 16 entries at a time: their output columns gathered from the map, and
/// the kept ones packed to the front with compress (instead of a store and
/// a dependent increment per entry). Writes whole vectors at k ≤ i, so
/// never past ix.len().
///
/// # Safety
/// The CPU must have AVX-512F; every column in `ix` must be below
/// `map.len()`; `v.len() == ix.len()` and `cols`, `vals` hold at least
/// `ix.len()` entries.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn select_f32_avx512(
    map: &[i32],
    ix: &[i32],
    v: &[f32],
    cols: &mut [u32],
    vals: &mut [f64],
) -> usize {
    use std::arch::x86_64::*;
    assert!(v.len() == ix.len() && cols.len() >= ix.len() && vals.len() >= ix.len());
    let n = ix.len();
    let (mut i, mut k) = (0, 0);
    let zero = _mm512_setzero_si512();
    while i + 16 <= n {
        // SAFETY: i + 16 ≤ n bounds the loads; k ≤ i bounds the stores; the
        // gathered columns are below map.len() (the caller's contract).
        unsafe {
            let idx = _mm512_loadu_si512(ix.as_ptr().add(i).cast());
            let out = _mm512_i32gather_epi32::<4>(idx, map.as_ptr());
            let keep = _mm512_cmpge_epi32_mask(out, zero);
            let packed = _mm512_maskz_compress_epi32(keep, out);
            _mm512_storeu_si512(cols.as_mut_ptr().add(k).cast(), packed);
            let x = _mm512_maskz_compress_ps(keep, _mm512_loadu_ps(v.as_ptr().add(i)));
            let lo = _mm512_cvtps_pd(_mm512_castps512_ps256(x));
            let hi = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(
                _mm512_castps_pd(x),
            )));
            _mm512_storeu_pd(vals.as_mut_ptr().add(k), lo);
            _mm512_storeu_pd(vals.as_mut_ptr().add(k + 8), hi);
            k += keep.count_ones() as usize;
        }
        i += 16;
    }
    for (&j, &x) in ix[i..].iter().zip(&v[i..]) {
        let o = map[j as usize];
        cols[k] = o as u32;
        vals[k] = f64::from(x);
        k += usize::from(o >= 0);
    }
    k
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rows of every length around the vector width, a map keeping about
    /// one column in five: the AVX-512 kernel (when the CPU has it) and the
    /// portable loop keep the same entries, bit for bit.
    #[test]
    fn every_kernel_keeps_the_same_entries() {
        let width = 300usize;
        let map: Vec<i32> = (0..width)
            .map(|j| {
                if (j * 7919) % 5 == 0 {
                    (j / 5) as i32
                } else {
                    -1
                }
            })
            .collect();
        let mut seed = 12345u64;
        let mut next = move || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) as usize
        };
        for len in [0, 1, 15, 16, 17, 31, 32, 33, 100, 299] {
            let mut cols_in: Vec<i32> = (0..width as i32).collect();
            for a in (1..width).rev() {
                cols_in.swap(a, next() % (a + 1));
            }
            let mut ix = cols_in[..len].to_vec();
            ix.sort_unstable();
            let vals_in: Vec<f32> = (0..len).map(|_| next() as f32 / 7.0 - 1e5).collect();
            let values = Values::Float32(vals_in.clone());
            let (mut c1, mut v1) = (vec![], vec![]);
            let k1 = select_row(&map, &ix, &values, 0..len, &mut c1, &mut v1);
            let (mut c2, mut v2) = (vec![0; len], vec![0.0; len]);
            let k2 = select_scalar(&map, &ix, &values, 0..len, &mut c2, &mut v2);
            let want: Vec<(u32, u64)> = ix
                .iter()
                .zip(&vals_in)
                .filter(|(&j, _)| map[j as usize] >= 0)
                .map(|(&j, &x)| (map[j as usize] as u32, f64::from(x).to_bits()))
                .collect();
            let got = |c: &[u32], v: &[f64], k: usize| -> Vec<(u32, u64)> {
                c[..k]
                    .iter()
                    .zip(&v[..k])
                    .map(|(&c, &x)| (c, x.to_bits()))
                    .collect()
            };
            assert_eq!(got(&c1, &v1, k1), want, "len {len}");
            assert_eq!(got(&c2, &v2, k2), want, "len {len}");
        }
    }
}
