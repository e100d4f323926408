//! Software prefetch hints, for loops whose next memory accesses are known
//! but random (the hardware prefetcher only follows strides).

/// Ask for the cache line holding `p` to be brought into L1. A hint: it
/// never faults, whatever the address, and does nothing off x86-64.
#[inline(always)]
pub fn line<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch instruction never faults, whatever the address.
    unsafe {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        _mm_prefetch::<_MM_HINT_T0>(p.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// Ask for every cache line of `data` (see [`line`]).
#[inline]
pub fn slice<T>(data: &[T]) {
    let step = (64 / std::mem::size_of::<T>().max(1)).max(1);
    for i in (0..data.len()).step_by(step) {
        line(data.as_ptr().wrapping_add(i));
    }
}
