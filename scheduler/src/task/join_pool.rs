//! Reusing the join states of finished greenlets, so that a steady stream of
//! spawns allocates nothing for them.
//!
//! When a task finishes, its hub keeps its join state (type-erased, as the
//! task held it). A later spawn with the same value type takes one back once
//! its handle is gone (the hub holds the only reference), resets it, and
//! uses it instead of allocating.

#![allow(unsafe_code)]

use std::sync::Arc;

use crate::hub::record::ReadyQueue;
use crate::task::join::JoinShared;

/// Finished join states looked at per spawn (the most recent first).
const LOOK_AT: usize = 4;

/// A join state of type `T` nobody refers to any more, reset for a new
/// greenlet of the hub `hub` named `name`.
pub(crate) fn reuse<T: 'static>(ready: &ReadyQueue, hub: u64, name: Option<Arc<str>>) -> Option<Arc<JoinShared<T>>> {
    let mut finished = ready.finished_joins.borrow_mut();
    let len = finished.len();
    let index = (len.saturating_sub(LOOK_AT)..len)
        .rev()
        .find(|&i| finished[i].is::<JoinShared<T>>() && finished[i].is_unique())?;
    let state = finished.swap_remove(index).downcast::<JoinShared<T>>().ok()?;
    drop(finished);
    // The counts were read with `Relaxed` loads: this fence makes everything
    // the last other holder (say a handle dropped on another thread, whose
    // drop released) did with the value happen before what follows.
    std::sync::atomic::fence(std::sync::atomic::Ordering::Acquire);
    // SAFETY: the counts checked above say this `Arc` is the only reference
    // and no `Weak` exists, so nothing else can reach the value (nobody can
    // make a new reference without one), on this thread or another: a
    // unique borrow is sound. (`Arc::get_mut` would check the same with an
    // atomic compare-and-swap, a measurable part of a spawn.) The pointer
    // comes from the `Arc`'s own allocation, so it may be written through.
    let fresh = unsafe { &mut *Arc::as_ptr(&state).cast_mut() };
    fresh.reset(hub, name);
    Some(state)
}
