//! Prefetch hints: asking the processor to start loading memory that a
//! switch is about to touch (a suspended greenlet's stack), so that its
//! latency, and the page-table walk of a page the TLB no longer holds,
//! overlap with the work before the switch.
//!
//! A prefetch reads nothing into the program and never faults, so any
//! address is allowed, and a wrong one costs only the hint. On processors
//! other than x86-64 these are no-ops.

/// The processor's cache line, in bytes.
const LINE: usize = 64;

/// Starts loading the cache lines that cover `[from, to)`.
#[inline]
pub(crate) fn lines(from: usize, to: usize) {
    #[cfg(target_arch = "x86_64")]
    for line in (from & !(LINE - 1)..to).step_by(LINE) {
        // SAFETY: SSE, which `_mm_prefetch` needs, is part of every x86-64
        // processor; a prefetch touches no memory the program can observe
        // and never faults, whatever the address.
        unsafe { std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(line as *const i8) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (from, to, LINE);
}
