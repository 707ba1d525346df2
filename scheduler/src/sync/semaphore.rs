use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::hub::wait_queue::{WaitKey, WaitQueue};
use crate::hub::waiting::WaitingOn;
use crate::park::Parker;
use crate::park::wait::{self, Waiter, Wakeup};
use crate::sync::select::private::Sealed;
use crate::sync::select::{Waitable, Watch};

/// A counting semaphore (gevent's `Semaphore`).
///
/// Permits are handed to waiters in FIFO order; a permit released while
/// others wait goes straight to the first of them. `Semaphore` is `Send +
/// Sync`: greenlets of any hub and plain threads may share it (with `Arc`).
///
/// ```
/// use runtime::sync::Semaphore;
///
/// runtime::run(|| {
///     let slots = Semaphore::new(2);
///     let a = slots.acquire();
///     let b = slots.try_acquire().unwrap();
///     assert!(slots.try_acquire().is_none());
///     drop(a);
///     assert_eq!(slots.available(), 1);
///     drop(b);
/// });
/// ```
pub struct Semaphore {
    state: Mutex<State>,
}

struct State {
    permits: usize,
    waiters: WaitQueue<(), Wakeup>,
    /// `Select`s and `wait`s watching for a free permit: woken when one is
    /// kept, never handed one.
    watchers: WaitQueue<(), Wakeup>,
}

impl Semaphore {
    /// A semaphore with `permits` permits.
    pub fn new(permits: usize) -> Semaphore {
        Semaphore { state: Mutex::new(State { permits, waiters: WaitQueue::new(), watchers: WaitQueue::new() }) }
    }

    /// Permits available now.
    pub fn available(&self) -> usize {
        wait::lock(&self.state).permits
    }

    /// Waiters waiting for a permit.
    pub fn waiters(&self) -> usize {
        wait::lock(&self.state).waiters.len()
    }

    /// Takes a permit, waiting until one is available.
    ///
    /// # Panics
    ///
    /// On a hub's thread outside its greenlets.
    #[track_caller]
    #[cfg_attr(not(debug_assertions), inline(always))] // parks in the caller's frame (see `acquire_until`)
    pub fn acquire(&self) -> SemaphorePermit<'_> {
        self.acquire_as("Semaphore::acquire")
    }

    /// `acquire`, reporting `reason` as what a deadlocked greenlet waits on.
    /// Parks in the caller's frame (see `acquire_until`).
    #[track_caller]
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub(crate) fn acquire_as(&self, reason: &'static str) -> SemaphorePermit<'_> {
        self.acquire_until(None, reason);
        SemaphorePermit { semaphore: self }
    }

    /// Takes a permit if one is available now.
    pub fn try_acquire(&self) -> Option<SemaphorePermit<'_>> {
        self.try_take().then(|| SemaphorePermit { semaphore: self })
    }

    /// Takes a permit, giving up after `timeout`.
    #[track_caller]
    pub fn acquire_timeout(&self, timeout: Duration) -> Option<SemaphorePermit<'_>> {
        self.acquire_until_outlined(Some(Instant::now() + timeout), "Semaphore::acquire")
            .then(|| SemaphorePermit { semaphore: self })
    }

    /// Like [`acquire`](Semaphore::acquire), for a shared semaphore: the permit
    /// holds a reference to it and can be moved to another greenlet or
    /// thread.
    #[track_caller]
    pub fn acquire_owned(self: &Arc<Self>) -> OwnedSemaphorePermit {
        self.acquire_owned_as("Semaphore::acquire")
    }

    /// `acquire_owned`, reporting `reason` as what a deadlocked greenlet waits on.
    #[track_caller]
    pub(crate) fn acquire_owned_as(self: &Arc<Self>, reason: &'static str) -> OwnedSemaphorePermit {
        self.acquire_until_outlined(None, reason);
        OwnedSemaphorePermit { semaphore: self.clone() }
    }

    /// Like [`try_acquire`](Semaphore::try_acquire), for a shared semaphore.
    pub fn try_acquire_owned(self: &Arc<Self>) -> Option<OwnedSemaphorePermit> {
        self.try_take().then(|| OwnedSemaphorePermit { semaphore: self.clone() })
    }

    /// Adds `n` permits, waking waiters.
    pub fn add_permits(&self, n: usize) {
        let mut state = wait::lock(&self.state);
        for _ in 0..n {
            state.release();
        }
    }

    fn try_take(&self) -> bool {
        wait::lock(&self.state).try_take()
    }

    /// [`acquire_until`](Semaphore::acquire_until), not inlined: for the
    /// acquires that are not `acquire`, `Mutex::lock` and their kin.
    #[track_caller]
    #[inline(never)]
    fn acquire_until_outlined(&self, deadline: Option<Instant>, reason: &'static str) -> bool {
        self.acquire_until(deadline, reason)
    }

    /// Takes a permit; false if the deadline passed. A refused park counts
    /// as the deadline passing; without a deadline, it waits on. Inlined, so
    /// that `acquire` parks in its own frame: one call level less to return
    /// through after the switch (see `Hub::switch_to_hub`).
    #[track_caller]
    #[cfg_attr(not(debug_assertions), inline(always))]
    fn acquire_until(&self, deadline: Option<Instant>, reason: &'static str) -> bool {
        let mut state = wait::lock(&self.state);
        if state.try_take() {
            return true;
        }
        let waiter = Waiter::current();
        loop {
            // A permit handed to this waiter as it unwinds goes to the next.
            let on = WaitingOn::Op(reason);
            let waited = wait::wait_in(
                &waiter,
                &self.state,
                state,
                |s| &mut s.waiters,
                (),
                on,
                deadline,
                |s, ()| {
                    s.release();
                },
            );
            if waited.completed {
                return true; // handed over by `release`
            }
            if waited.gave_up() && deadline.is_some() {
                return false;
            }
            state = wait::lock(&self.state);
            if state.try_take() {
                return true;
            }
        }
    }

    /// Releases a permit that no guard holds (one given up with
    /// [`SemaphorePermit::forget`], or never taken: the count may grow past
    /// its initial value, as gevent's `Semaphore` allows): the first waiter
    /// gets it.
    ///
    /// ```
    /// use runtime::sync::Semaphore;
    ///
    /// let slots = Semaphore::new(1);
    /// slots.acquire().forget(); // e.g. to hand the permit to another thread
    /// assert_eq!(slots.available(), 0);
    /// slots.release();
    /// assert_eq!(slots.available(), 1);
    /// ```
    pub fn release(&self) {
        wait::lock(&self.state).release();
    }

    /// Releases a permit unless `limit` are free already; false if so.
    pub(crate) fn release_up_to(&self, limit: usize) -> bool {
        let mut state = wait::lock(&self.state);
        if state.waiters.len() == 0 && state.permits >= limit {
            return false;
        }
        state.release();
        true
    }
}

impl State {
    fn try_take(&mut self) -> bool {
        // With waiters queued, permits are handed to them, never left over.
        if self.permits > 0 {
            self.permits -= 1;
            true
        } else {
            false
        }
    }

    /// Hands a permit to the first waiter, or keeps it.
    fn release(&mut self) {
        if !self.waiters.complete_front(|()| {}) {
            self.permits += 1;
            if self.watchers.len() > 0 {
                self.watchers.complete_all(|()| {});
            }
        }
    }
}

impl Watch for Semaphore {
    fn is_ready(&self) -> bool {
        self.available() > 0
    }

    fn watch(&self, parker: &Parker) -> WaitKey {
        wait::lock(&self.state).watchers.push(Wakeup::for_greenlet(parker), ())
    }

    fn unwatch(&self, key: WaitKey) {
        wait::lock(&self.state).watchers.reclaim(key);
    }

    fn identity(&self) -> *const () {
        std::ptr::from_ref(self).cast()
    }
}

impl Sealed for Semaphore {}

/// Ready when a permit is free (gevent's `Semaphore.wait`); waiting takes
/// none.
impl Waitable for Semaphore {
    #[allow(private_interfaces)]
    fn as_watch(&self) -> &dyn Watch {
        self
    }
}

impl fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Semaphore").field("available", &self.available()).field("waiters", &self.waiters()).finish()
    }
}

/// A permit of a [`Semaphore`], released when dropped.
#[must_use = "the permit is released as soon as it is dropped"]
pub struct SemaphorePermit<'a> {
    semaphore: &'a Semaphore,
}

impl SemaphorePermit<'_> {
    /// Keeps the permit taken for good.
    pub fn forget(self) {
        std::mem::forget(self);
    }
}

impl Drop for SemaphorePermit<'_> {
    fn drop(&mut self) {
        self.semaphore.release();
    }
}

impl fmt::Debug for SemaphorePermit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SemaphorePermit").finish_non_exhaustive()
    }
}

/// A permit of a shared [`Semaphore`], released when dropped.
#[must_use = "the permit is released as soon as it is dropped"]
pub struct OwnedSemaphorePermit {
    semaphore: Arc<Semaphore>,
}

impl Drop for OwnedSemaphorePermit {
    fn drop(&mut self) {
        self.semaphore.release();
    }
}

impl fmt::Debug for OwnedSemaphorePermit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OwnedSemaphorePermit").finish_non_exhaustive()
    }
}
