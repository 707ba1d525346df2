use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::{self, PoisonError, TryLockError};
use std::time::{Duration, Instant};

use super::semaphore::{Semaphore, SemaphorePermit};
use crate::hub::wait_queue::WaitQueue;
use crate::hub::waiting::WaitingOn;
use crate::park::wait::{self, Waiter, Wakeup};

/// A mutual-exclusion lock for greenlets: `lock` parks the greenlet (not the
/// thread) while another greenlet holds it. Waiters get the lock in FIFO order.
///
/// Unlike `std::sync::Mutex`, it is meant to be held across blocking calls:
/// a greenlet may park while holding it, and the others wait their turn.
/// It is `Send + Sync` when `T: Send`: greenlets of other hubs and plain
/// threads wait their turn too (a thread blocks). It has no poisoning: a
/// holder that panics releases the lock as it unwinds.
///
/// ```
/// use std::rc::Rc;
/// use runtime::sync::Mutex;
///
/// runtime::run(|| {
///     let counter = Rc::new(Mutex::new(0));
///     let handles: Vec<_> = (0..10)
///         .map(|_| {
///             let counter = counter.clone();
///             runtime::spawn(move || {
///                 let mut n = counter.lock();
///                 runtime::yield_now(); // others queue up meanwhile
///                 *n += 1;
///             })
///         })
///         .collect();
///     runtime::joinall(handles);
///     assert_eq!(*counter.lock(), 10);
/// });
/// ```
pub struct Mutex<T> {
    /// Taken by whoever holds the permit of `lock`, so never contended: it
    /// only makes the value `Sync` without unsafe code. Its guard is not
    /// `Send`, and neither is ours: a greenlet never leaves its thread.
    value: sync::Mutex<T>,
    lock: Semaphore,
}

impl<T> Mutex<T> {
    /// An unlocked mutex holding `value`.
    pub fn new(value: T) -> Mutex<T> {
        Mutex { value: sync::Mutex::new(value), lock: Semaphore::new(1) }
    }

    /// Locks, parking until the lock is free.
    ///
    /// # Panics
    ///
    /// On a hub's thread outside its greenlets (a plain thread blocks).
    #[track_caller]
    pub fn lock(&self) -> MutexGuard<'_, T> {
        self.guard(self.lock.acquire_as("Mutex::lock"))
    }

    /// Locks if the lock is free now.
    pub fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
        self.lock.try_acquire().map(|permit| self.guard(permit))
    }

    /// Locks, giving up after `timeout`.
    #[track_caller]
    pub fn lock_timeout(&self, timeout: Duration) -> Option<MutexGuard<'_, T>> {
        self.lock.acquire_timeout(timeout).map(|permit| self.guard(permit))
    }

    fn guard<'a>(&'a self, permit: SemaphorePermit<'a>) -> MutexGuard<'a, T> {
        // The permit makes this the only taker; a holder that panicked
        // (poisoning) released the lock as it unwound, which is all it means
        // here.
        let value = match self.value.try_lock() {
            Ok(value) => value,
            Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
            Err(TryLockError::WouldBlock) => unreachable!("the permit holder is the only one to lock the value"),
        };
        MutexGuard { value: Some(value), permit: Some(permit), mutex: self }
    }

    /// Whether some greenlet holds the lock.
    pub fn is_locked(&self) -> bool {
        self.lock.available() == 0
    }

    /// The value, without locking (the borrow checker proves exclusivity).
    pub fn get_mut(&mut self) -> &mut T {
        self.value.get_mut().unwrap_or_else(PoisonError::into_inner)
    }

    /// The value.
    pub fn into_inner(self) -> T {
        self.value.into_inner().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<T: Default> Default for Mutex<T> {
    fn default() -> Self {
        Mutex::new(T::default())
    }
}

impl<T: fmt::Debug> fmt::Debug for Mutex<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Mutex");
        match self.try_lock() {
            Some(value) => d.field("value", &*value),
            None => d.field("value", &"<locked>"),
        };
        d.finish()
    }
}

/// Access to a [`Mutex`]'s value; unlocks when dropped.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct MutexGuard<'a, T> {
    // Declared first: the borrow ends before the lock is released.
    value: Option<sync::MutexGuard<'a, T>>,
    permit: Option<SemaphorePermit<'a>>,
    mutex: &'a Mutex<T>,
}

impl<T> Deref for MutexGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.value.as_ref().expect("a live guard holds the value")
    }
}

impl<T> DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        self.value.as_mut().expect("a live guard holds the value")
    }
}

impl<T: fmt::Debug> fmt::Debug for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

/// A condition variable for [`Mutex`]: greenlets wait for a condition while
/// the lock is released, and are woken in FIFO order.
///
/// ```
/// use std::rc::Rc;
/// use runtime::sync::{Condvar, Mutex};
///
/// runtime::run(|| {
///     let pair = Rc::new((Mutex::new(false), Condvar::new()));
///     let other = pair.clone();
///     runtime::spawn(move || {
///         *other.0.lock() = true;
///         other.1.notify_one();
///     });
///     let (lock, ready) = &*pair;
///     let started = ready.wait_while(lock.lock(), |started| !*started);
///     assert!(*started);
/// });
/// ```
#[derive(Default)]
pub struct Condvar {
    waiters: sync::Mutex<WaitQueue<(), Wakeup>>,
}

impl Condvar {
    /// A condition variable with no waiters.
    pub fn new() -> Condvar {
        Condvar::default()
    }

    /// Releases the lock, parks until notified, and locks again.
    ///
    /// # Panics
    ///
    /// On a hub's thread outside its greenlets (a plain thread blocks).
    #[track_caller]
    pub fn wait<'a, T>(&self, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
        self.wait_until(guard, None).0
    }

    /// Waits until `condition` returns false, re-checking it after each
    /// notification.
    #[track_caller]
    pub fn wait_while<'a, T>(
        &self,
        mut guard: MutexGuard<'a, T>,
        mut condition: impl FnMut(&mut T) -> bool,
    ) -> MutexGuard<'a, T> {
        while condition(&mut guard) {
            guard = self.wait(guard);
        }
        guard
    }

    /// Like [`wait`](Condvar::wait), giving up after `timeout`; the flag says
    /// whether it timed out.
    #[track_caller]
    pub fn wait_timeout<'a, T>(&self, guard: MutexGuard<'a, T>, timeout: Duration) -> (MutexGuard<'a, T>, bool) {
        self.wait_until(guard, Some(Instant::now() + timeout))
    }

    #[track_caller]
    fn wait_until<'a, T>(&self, mut guard: MutexGuard<'a, T>, deadline: Option<Instant>) -> (MutexGuard<'a, T>, bool) {
        let mutex = guard.mutex;
        let waiter = Waiter::current();
        let queue = wait::lock(&self.waiters);
        // Registered before the mutex is unlocked, so a notification sent
        // right after the unlock (from another thread) finds this waiter. A
        // notification that reaches it as it unwinds goes to the next one.
        let on = WaitingOn::Op("Condvar::wait");
        let unlock = || {
            // The value guard first, then the permit.
            guard.value = None;
            guard.permit = None;
        };
        let waited = wait::wait_in_then(
            &waiter,
            &self.waiters,
            queue,
            |q| q,
            (),
            on,
            deadline,
            |q, ()| {
                q.complete_front(|()| {});
            },
            unlock,
        );
        drop(guard);
        let timed_out = waited.gave_up();
        (mutex.lock(), timed_out)
    }

    /// Wakes the first waiter.
    pub fn notify_one(&self) {
        wait::lock(&self.waiters).complete_front(|()| {});
    }

    /// Wakes every waiter.
    pub fn notify_all(&self) {
        wait::lock(&self.waiters).complete_all(|()| {});
    }
}

impl fmt::Debug for Condvar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Condvar").field("waiters", &wait::lock(&self.waiters).len()).finish()
    }
}
