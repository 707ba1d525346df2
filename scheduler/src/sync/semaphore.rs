use std::cell::{Cell, RefCell};
use std::fmt;
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::park::Parker;
use crate::wait_queue::WaitQueue;
use crate::waiting::WaitingOn;

/// A counting semaphore (gevent's `Semaphore`).
///
/// Permits are handed to waiting greenlets in FIFO order; a permit released
/// while greenlets wait goes straight to the first of them.
///
/// ```
/// use std::rc::Rc;
/// use runtime_scheduler::sync::Semaphore;
///
/// runtime_scheduler::run(|| {
///     let slots = Rc::new(Semaphore::new(2));
///     let a = slots.acquire();
///     let b = slots.try_acquire().unwrap();
///     assert!(slots.try_acquire().is_none());
///     drop(a);
///     assert_eq!(slots.available(), 1);
///     drop(b);
/// });
/// ```
pub struct Semaphore {
    permits: Cell<usize>,
    waiters: RefCell<WaitQueue<()>>,
}

impl Semaphore {
    /// A semaphore with `permits` permits.
    pub fn new(permits: usize) -> Semaphore {
        Semaphore { permits: Cell::new(permits), waiters: RefCell::new(WaitQueue::new()) }
    }

    /// Permits available now.
    pub fn available(&self) -> usize {
        self.permits.get()
    }

    /// Greenlets waiting for a permit.
    pub fn waiters(&self) -> usize {
        self.waiters.borrow().len()
    }

    /// Takes a permit, parking until one is available.
    ///
    /// # Panics
    ///
    /// Outside a greenlet of the runtime.
    #[track_caller]
    pub fn acquire(&self) -> SemaphorePermit<'_> {
        self.acquire_as("Semaphore::acquire")
    }

    /// `acquire`, reporting `reason` as what a deadlocked greenlet waits on.
    #[track_caller]
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
        self.acquire_until(Some(Instant::now() + timeout), "Semaphore::acquire")
            .then(|| SemaphorePermit { semaphore: self })
    }

    /// Like [`acquire`](Semaphore::acquire), for a shared semaphore: the permit
    /// holds a reference to it and can be moved into another greenlet.
    #[track_caller]
    pub fn acquire_owned(self: &Rc<Self>) -> OwnedSemaphorePermit {
        self.acquire_owned_as("Semaphore::acquire")
    }

    /// `acquire_owned`, reporting `reason` as what a deadlocked greenlet waits on.
    #[track_caller]
    pub(crate) fn acquire_owned_as(self: &Rc<Self>, reason: &'static str) -> OwnedSemaphorePermit {
        self.acquire_until(None, reason);
        OwnedSemaphorePermit { semaphore: self.clone() }
    }

    /// Like [`try_acquire`](Semaphore::try_acquire), for a shared semaphore.
    pub fn try_acquire_owned(self: &Rc<Self>) -> Option<OwnedSemaphorePermit> {
        self.try_take().then(|| OwnedSemaphorePermit { semaphore: self.clone() })
    }

    /// Adds `n` permits, waking waiters.
    pub fn add_permits(&self, n: usize) {
        for _ in 0..n {
            self.release();
        }
    }

    fn try_take(&self) -> bool {
        // With waiters queued, permits are handed to them, never left over.
        let permits = self.permits.get();
        if permits > 0 {
            self.permits.set(permits - 1);
            true
        } else {
            false
        }
    }

    /// Takes a permit; false if the deadline passed. A refused park counts
    /// as the deadline passing; without a deadline, it waits on.
    #[track_caller]
    fn acquire_until(&self, deadline: Option<Instant>, reason: &'static str) -> bool {
        loop {
            if self.try_take() {
                return true;
            }
            // A permit handed to this greenlet as it unwinds goes to the next.
            let waited =
                Parker::current().wait_in_or_give_back(&self.waiters, (), WaitingOn::Op(reason), deadline, |()| {
                    self.release();
                });
            if waited.completed {
                return true; // handed over by `release`
            }
            if waited.gave_up() && deadline.is_some() {
                return false;
            }
        }
    }

    fn release(&self) {
        let handed = self.waiters.borrow_mut().complete_front(|()| {});
        if !handed {
            self.permits.set(self.permits.get() + 1);
        }
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
    semaphore: Rc<Semaphore>,
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
