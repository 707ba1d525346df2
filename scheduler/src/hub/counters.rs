//! The hub's counters: what [`Metrics`](crate::Metrics) reads, from the hub's
//! own thread or any other.
//!
//! Only the hub's thread writes them, so a count goes up with a plain load and
//! store (no locked instruction on the hot path); readers on other threads load
//! them with `Relaxed` ordering and may see a value a few events old. The
//! run-queue depth, the timer count and the resident stack bytes are
//! published once per turn of the loop.

use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, Instant};

/// See the module docs.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) alive: AtomicUsize,
    pub(crate) spawned: AtomicU64,
    pub(crate) switches: AtomicU64,
    pub(crate) polls: AtomicU64,
    pub(crate) busy_nanos: AtomicU64,
    pub(crate) runnable: AtomicUsize,
    pub(crate) timers: AtomicUsize,
    pub(crate) stack_resident: AtomicUsize,
    /// Id of the greenlet the hub is running; 0 while the hub itself runs
    /// (for the blocking monitor).
    pub(crate) running: AtomicU64,
    /// The task whose id is in `running` (a `*const Task`), for the
    /// monitor's signal handler on the hub's thread (see `sample`).
    pub(crate) running_task: AtomicPtr<()>,
    /// Whether the hub is waiting for I/O (the blocking monitor leaves a
    /// polling hub alone).
    pub(crate) polling: AtomicBool,
}

/// Adds one to a counter that only this thread writes.
#[inline(always)]
pub(crate) fn bump(counter: &AtomicU64) {
    counter.store(counter.load(Relaxed) + 1, Relaxed);
}

/// Adds `by` to a counter that only this thread writes.
#[inline(always)]
pub(crate) fn add(counter: &AtomicU64, by: u64) {
    counter.store(counter.load(Relaxed) + by, Relaxed);
}

/// When the hub last measured the memory of its stacks, and what that cost,
/// so that measuring costs at most a hundredth of the hub's time.
///
/// The stacks are the thread's (its pool outlives a hub), so the schedule
/// and the last figure are kept per thread: a hub started on a thread that
/// measured a moment ago publishes that figure rather than walking every
/// stack again (a program that runs one short-lived hub after another on a
/// thread holding many idle stacks would otherwise pay the walk each time).
#[derive(Debug)]
pub(crate) struct StackSampler {
    next: Instant,
}

/// The least time between two measurements of the stacks' memory.
const STACK_SAMPLE_EVERY: Duration = Duration::from_secs(1);

thread_local! {
    /// The thread's last measurement: when the next is due, and the bytes.
    static LAST_SAMPLE: std::cell::Cell<Option<(Instant, usize)>> = const { std::cell::Cell::new(None) };
}

impl StackSampler {
    pub(crate) fn new(now: Instant) -> StackSampler {
        StackSampler { next: now }
    }

    /// Measures the resident bytes of this thread's stacks into `counters`
    /// if it is time to.
    pub(crate) fn sample(&mut self, now: Instant, counters: &Counters) {
        if now < self.next {
            return;
        }
        if let Some((next, bytes)) = LAST_SAMPLE.with(std::cell::Cell::get).filter(|(next, _)| now < *next) {
            // Measured on this thread a moment ago (by an earlier hub).
            counters.stack_resident.store(bytes, Relaxed);
            self.next = next;
            return;
        }
        let bytes = greenlet::stack::resident_bytes();
        counters.stack_resident.store(bytes, Relaxed);
        let cost = now.elapsed();
        self.next = Instant::now() + STACK_SAMPLE_EVERY.max(cost * 100);
        LAST_SAMPLE.with(|last| last.set(Some((self.next, bytes))));
    }
}
