use std::fmt;
use std::marker::PhantomData;
use std::ops::Deref;
use std::sync::Mutex;
use std::thread::{self, ThreadId};
use std::time::{Duration, Instant};

use crate::hub;
use crate::hub::wait_queue::WaitQueue;
use crate::hub::waiting::WaitingOn;
use crate::park::wait::{self, Waiter, Wakeup};

/// A lock that the greenlet holding it may take again (gevent's `RLock`,
/// with std's `ReentrantLock` shape): it is released when the last of its
/// guards is dropped.
///
/// The owner is the greenlet (on any hub), or a plain thread, that took it.
/// Other greenlets and threads wait their turn in FIFO order; a lock
/// released while they wait is handed to the first of them. The guard gives
/// `&T` only, as the same greenlet may hold several: put a `RefCell` or
/// `Cell` inside to change the value. `RLock<T>` is `Send + Sync` when
/// `T: Send`.
///
/// ```
/// use std::cell::RefCell;
/// use runtime::sync::RLock;
///
/// runtime::run(|| {
///     let log = RLock::new(RefCell::new(Vec::new()));
///     let outer = log.lock();
///     outer.borrow_mut().push("outer");
///     {
///         let inner = log.lock(); // the same greenlet: no deadlock
///         inner.borrow_mut().push("inner");
///     }
///     assert!(log.is_owned());
///     drop(outer);
///     assert!(!log.is_owned());
///     assert_eq!(*log.lock().borrow(), ["outer", "inner"]);
/// });
/// ```
pub struct RLock<T> {
    state: Mutex<State>,
    value: T,
}

// SAFETY: `&T` is only reachable through a guard, and all live guards belong
// to one owner: a greenlet (which never leaves its hub's thread) or a plain
// thread. So the value is used by one thread at a time, with the state's
// mutex ordering one owner's accesses before the next one's, which is what
// `T: Send` allows (std's `ReentrantLock` makes the same argument). Passing
// the `&T` itself to another thread needs `T: Sync`, as usual.
#[allow(unsafe_code)]
unsafe impl<T: Send> Sync for RLock<T> {}

struct State {
    owner: Option<Owner>,
    /// Guards the owner holds.
    count: usize,
    /// A waiter's node holds its owner id; the lock is handed to it.
    waiters: WaitQueue<Owner, Wakeup>,
}

/// Who holds an [`RLock`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Owner {
    /// A greenlet of the hub with this reactor id (greenlet ids are unique
    /// in the process; the hub is kept for the debug output).
    Greenlet { hub: u64, greenlet: u64 },
    /// A thread without a hub.
    Thread(ThreadId),
}

impl Owner {
    fn current() -> Owner {
        match hub::reactor_id() {
            0 => Owner::Thread(thread::current().id()),
            hub => Owner::Greenlet { hub, greenlet: crate::hub::greenlet_id() },
        }
    }
}

impl State {
    /// Takes the lock for `me` if it is free or `me`'s already.
    fn try_take(&mut self, me: Owner) -> bool {
        match self.owner {
            Some(owner) if owner == me => {}
            Some(_) => return false,
            None => self.owner = Some(me),
        }
        self.count += 1;
        true
    }

    /// Drops one hold; the last one hands the lock to the first waiter.
    fn release(&mut self) {
        self.count -= 1;
        if self.count == 0 {
            self.hand_over();
        }
    }

    fn hand_over(&mut self) {
        let mut next = None;
        self.waiters.complete_front(|owner| next = Some(*owner));
        self.owner = next;
        self.count = usize::from(next.is_some());
    }
}

impl<T> RLock<T> {
    /// An unlocked lock holding `value`.
    pub fn new(value: T) -> RLock<T> {
        RLock { state: Mutex::new(State { owner: None, count: 0, waiters: WaitQueue::new() }), value }
    }

    /// Locks, waiting while another greenlet or thread holds the lock; at
    /// once if the caller holds it already.
    ///
    /// # Panics
    ///
    /// If it has to wait on a hub's thread outside its greenlets.
    #[track_caller]
    pub fn lock(&self) -> RLockGuard<'_, T> {
        loop {
            if let Some(guard) = self.lock_until(None) {
                return guard;
            }
        }
    }

    /// Locks if the lock is free now or the caller's already.
    pub fn try_lock(&self) -> Option<RLockGuard<'_, T>> {
        wait::lock(&self.state).try_take(Owner::current()).then(|| self.guard())
    }

    /// Locks, giving up after `timeout`.
    #[track_caller]
    pub fn lock_timeout(&self, timeout: Duration) -> Option<RLockGuard<'_, T>> {
        self.lock_until(Some(Instant::now() + timeout))
    }

    /// Whether the calling greenlet (or thread) holds the lock.
    pub fn is_owned(&self) -> bool {
        wait::lock(&self.state).owner == Some(Owner::current())
    }

    /// Whether anybody holds the lock.
    pub fn is_locked(&self) -> bool {
        wait::lock(&self.state).owner.is_some()
    }

    /// The value, without locking (the borrow checker proves exclusivity).
    pub fn get_mut(&mut self) -> &mut T {
        &mut self.value
    }

    /// The value.
    pub fn into_inner(self) -> T {
        self.value
    }

    fn guard(&self) -> RLockGuard<'_, T> {
        RLockGuard { lock: self, _not_send: PhantomData }
    }

    /// Locks; `None` if the deadline passed (a refused park counts as that).
    #[track_caller]
    fn lock_until(&self, deadline: Option<Instant>) -> Option<RLockGuard<'_, T>> {
        let me = Owner::current();
        let mut waiter = None;
        loop {
            let mut state = wait::lock(&self.state);
            if state.try_take(me) {
                return Some(self.guard());
            }
            let waiter = waiter.get_or_insert_with(Waiter::current);
            // A lock handed to this waiter as it unwinds goes to the next.
            let waited = wait::wait_in(
                waiter,
                &self.state,
                state,
                |s| &mut s.waiters,
                me,
                WaitingOn::Op("RLock::lock"),
                deadline,
                |s, _| s.release(),
            );
            if waited.completed {
                return Some(self.guard()); // handed over by the last holder
            }
            if waited.gave_up() {
                return None;
            }
        }
    }
}

impl<T: Default> Default for RLock<T> {
    fn default() -> Self {
        RLock::new(T::default())
    }
}

impl<T: fmt::Debug> fmt::Debug for RLock<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("RLock");
        match self.try_lock() {
            Some(value) => d.field("value", &*value),
            None => d.field("value", &"<locked>"),
        };
        d.finish()
    }
}

/// A hold on an [`RLock`]: derefs to its value; the last one dropped
/// unlocks it.
///
/// ```
/// use std::cell::Cell;
/// use runtime::sync::RLock;
///
/// let lock = RLock::new(Cell::new(1));
/// let guard = lock.lock();
/// guard.set(guard.get() + 1); // `&T` only: change it through a `Cell`
/// assert_eq!(lock.lock().get(), 2); // re-entered by the same owner
/// ```
#[must_use = "the hold is released as soon as the guard is dropped"]
pub struct RLockGuard<'a, T> {
    lock: &'a RLock<T>,
    /// The guard belongs to its owner's thread.
    _not_send: PhantomData<*const ()>,
}

impl<T> Deref for RLockGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.lock.value
    }
}

impl<T> Drop for RLockGuard<'_, T> {
    fn drop(&mut self) {
        wait::lock(&self.lock.state).release();
    }
}

impl<T: fmt::Debug> fmt::Debug for RLockGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}
