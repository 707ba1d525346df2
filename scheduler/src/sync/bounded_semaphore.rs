use std::fmt;
use std::time::Duration;

use super::semaphore::{Semaphore, SemaphorePermit};
use crate::hub::wait_queue::WaitKey;
use crate::park::Parker;
use crate::sync::select::private::Sealed;
use crate::sync::select::{Waitable, Watch};

/// A [`Semaphore`] that refuses to be released past its initial count
/// (gevent's `BoundedSemaphore`): a release without a matching acquire is a
/// bug it reports instead of hiding.
///
/// ```
/// use runtime::sync::{BoundedSemaphore, OverRelease};
///
/// runtime::run(|| {
///     let slots = BoundedSemaphore::new(1);
///     slots.acquire().forget(); // taken for good, given back by `release`
///     assert!(slots.try_acquire().is_none());
///     assert_eq!(slots.release(), Ok(()));
///     assert_eq!(slots.release(), Err(OverRelease));
///     assert_eq!(slots.available(), 1);
/// });
/// ```
pub struct BoundedSemaphore {
    semaphore: Semaphore,
    limit: usize,
}

impl BoundedSemaphore {
    /// A semaphore with `permits` permits, and never more.
    pub fn new(permits: usize) -> BoundedSemaphore {
        BoundedSemaphore { semaphore: Semaphore::new(permits), limit: permits }
    }

    /// Permits available now.
    pub fn available(&self) -> usize {
        self.semaphore.available()
    }

    /// Takes a permit, waiting until one is available.
    ///
    /// # Panics
    ///
    /// If it has to wait on a hub's thread outside its greenlets.
    #[track_caller]
    pub fn acquire(&self) -> SemaphorePermit<'_> {
        self.semaphore.acquire_as("BoundedSemaphore::acquire")
    }

    /// Takes a permit if one is available now.
    pub fn try_acquire(&self) -> Option<SemaphorePermit<'_>> {
        self.semaphore.try_acquire()
    }

    /// Takes a permit, giving up after `timeout`.
    #[track_caller]
    pub fn acquire_timeout(&self, timeout: Duration) -> Option<SemaphorePermit<'_>> {
        self.semaphore.acquire_timeout(timeout)
    }

    /// Releases a permit that no guard holds (one given up with
    /// [`SemaphorePermit::forget`]).
    ///
    /// # Errors
    ///
    /// [`OverRelease`] if every permit is free already (gevent's
    /// `ValueError`); nothing changes then.
    pub fn release(&self) -> Result<(), OverRelease> {
        if self.semaphore.release_up_to(self.limit) { Ok(()) } else { Err(OverRelease) }
    }
}

impl Watch for BoundedSemaphore {
    fn is_ready(&self) -> bool {
        self.semaphore.is_ready()
    }

    fn watch(&self, parker: &Parker) -> WaitKey {
        self.semaphore.watch(parker)
    }

    fn unwatch(&self, key: WaitKey) {
        self.semaphore.unwatch(key);
    }

    fn identity(&self) -> *const () {
        std::ptr::from_ref(self).cast()
    }
}

impl Sealed for BoundedSemaphore {}

/// Ready when a permit is free, as [`Semaphore`]'s.
impl Waitable for BoundedSemaphore {
    #[allow(private_interfaces)]
    fn as_watch(&self) -> &dyn Watch {
        self
    }
}

impl fmt::Debug for BoundedSemaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BoundedSemaphore").field("available", &self.available()).field("limit", &self.limit).finish()
    }
}

/// [`BoundedSemaphore::release`] found every permit free already.
///
/// ```
/// use runtime::sync::{BoundedSemaphore, OverRelease};
///
/// let lock = BoundedSemaphore::new(1);
/// assert_eq!(lock.release(), Err(OverRelease));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OverRelease;

impl fmt::Display for OverRelease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("semaphore released too many times")
    }
}

impl std::error::Error for OverRelease {}
