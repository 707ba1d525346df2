//! Waiting on the `sync` types from anywhere: a greenlet on any hub parks, a
//! plain thread blocks.
//!
//! A waiter registers a [`Wakeup`] in the primitive's wait queue (under the
//! primitive's lock, together with the check of its condition, so no wake-up
//! can slip in between), releases the lock, and waits with [`Waiter::park`].
//! A `Wakeup` is `Send`: it wakes a greenlet directly when used on that
//! greenlet's hub thread, through the hub's remote queue (and a
//! `mio::Waker`) from anywhere else, and a plain thread with
//! `Thread::unpark`.

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::{self, Thread};
use std::time::Instant;

use crate::hub;
use crate::hub::record::Wake;
use crate::hub::wait_queue::{self, WaitKey, WaitQueue};
use crate::hub::waiting::WaitingOn;
use crate::park::{Parked, Parker};
use crate::util::slab::Key;

/// Wakes one waiter of a `sync` type, from any thread.
#[derive(Clone)]
pub(crate) enum Wakeup {
    /// Park `seq` of the task at `task` on the hub behind `remote`.
    /// (The hub is named by its id, not a reference to its queue: making a
    /// wake-up then costs no atomic operation.)
    Greenlet { hub: u64, task: Key, seq: u64 },
    /// A plain thread blocked in a wait.
    Thread(Arc<ThreadSignal>),
}

impl Wakeup {
    /// A wake-up for the next park of `parker`'s greenlet.
    pub(crate) fn for_greenlet(parker: &Parker) -> Wakeup {
        let task = parker.task().key().expect("a running task is in its hub's table");
        Wakeup::Greenlet { hub: parker.hub().reactor().id(), task, seq: parker.next_seq() }
    }
}

impl Wakeup {
    /// Whether it wakes a greenlet of this thread's hub.
    pub(crate) fn is_local(&self) -> bool {
        matches!(self, Wakeup::Greenlet { hub: id, .. } if *id == hub::reactor_id())
    }

    /// Wakes now, whatever locks are held.
    fn wake_now(&self) {
        match self {
            Wakeup::Greenlet { hub, task, seq } => hub::unpark_hub(*hub, *task, *seq),
            Wakeup::Thread(signal) => signal.notify(),
        }
    }
}

impl wait_queue::Waiter for Wakeup {
    fn wake(&self) {
        // A greenlet of this thread's own hub is woken at once (no system
        // call, no other thread). Anything else is woken once this thread
        // has released the primitive's lock: the woken side would otherwise
        // block on that lock right away, and the wake-up's system call would
        // be made while holding it.
        // (Waiters of `sync` types are only woken under their lock, see
        // `Locked`.)
        match self {
            Wakeup::Greenlet { hub, task, seq } if *hub == hub::reactor_id() => {
                hub::unpark_local(*task, *seq);
            }
            _ => {
                let _ = DEFERRED.try_with(|deferred| deferred.borrow_mut().push(self.clone()));
            }
        }
    }
}

thread_local! {
    /// Wake-ups for other threads made while holding a `sync` type's lock,
    /// sent when it is released (see [`Locked`]).
    static DEFERRED: RefCell<Vec<Wakeup>> = const { RefCell::new(Vec::new()) };
}

/// A held lock of a `sync` type's state. Wake-ups for other threads made
/// while it is held are sent when it is released.
pub(crate) struct Locked<'a, S> {
    guard: Option<MutexGuard<'a, S>>,
}

impl<S> std::ops::Deref for Locked<'_, S> {
    type Target = S;

    fn deref(&self) -> &S {
        self.guard.as_ref().expect("held until dropped")
    }
}

impl<S> std::ops::DerefMut for Locked<'_, S> {
    fn deref_mut(&mut self) -> &mut S {
        self.guard.as_mut().expect("held until dropped")
    }
}

impl<S> Drop for Locked<'_, S> {
    fn drop(&mut self) {
        drop(self.guard.take());
        let _ = DEFERRED.try_with(|deferred| {
            if deferred.borrow().is_empty() {
                return;
            }
            let woken = std::mem::take(&mut *deferred.borrow_mut());
            for wakeup in &woken {
                wakeup.wake_now();
            }
            // Keep the buffer (it usually holds one wake-up).
            let mut slot = deferred.borrow_mut();
            if slot.is_empty() {
                let mut woken = woken;
                woken.clear();
                *slot = woken;
            }
        });
    }
}

impl std::fmt::Debug for Wakeup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Wakeup::Greenlet { task, seq, .. } => {
                f.debug_struct("Greenlet").field("task", task).field("seq", seq).finish()
            }
            Wakeup::Thread(signal) => f.debug_tuple("Thread").field(&signal.thread.id()).finish(),
        }
    }
}

/// A plain thread's wake-up flag.
pub(crate) struct ThreadSignal {
    thread: Thread,
    notified: AtomicBool,
}

impl ThreadSignal {
    fn notify(&self) {
        self.notified.store(true, Ordering::Release);
        self.thread.unpark();
    }
}

/// The current waiter: the running greenlet of a hub, or a plain thread.
pub(crate) enum Waiter {
    Greenlet(Parker),
    Thread(Arc<ThreadSignal>),
}

impl Waiter {
    /// The waiter for the calling code.
    ///
    /// # Panics
    ///
    /// On a hub's thread outside its greenlets (in work the hub runs itself):
    /// blocking there would stop the hub.
    #[track_caller]
    pub(crate) fn current() -> Waiter {
        match Parker::try_current() {
            Some(parker) => Waiter::Greenlet(parker),
            None if hub::current().is_some() => Waiter::Greenlet(Parker::current()),
            None => {
                Waiter::Thread(Arc::new(ThreadSignal { thread: thread::current(), notified: AtomicBool::new(false) }))
            }
        }
    }

    /// A wake-up for this waiter's next [`park`](Waiter::park).
    pub(crate) fn wakeup(&self) -> Wakeup {
        match self {
            Waiter::Greenlet(parker) => Wakeup::for_greenlet(parker),
            Waiter::Thread(signal) => Wakeup::Thread(signal.clone()),
        }
    }

    /// Waits until woken through a [`Wakeup`] of this waiter, or `deadline`.
    /// A greenlet parks (see [`Parker::park`] for kills and refusals); a
    /// thread blocks.
    #[track_caller]
    pub(crate) fn park(&self, on: WaitingOn, deadline: Option<Instant>) -> Parked {
        match self {
            Waiter::Greenlet(parker) => {
                let hub = parker.hub();
                hub.count_sync_wait(true);
                let _uncount = crate::util::guard::defer(|| hub.count_sync_wait(false));
                parker.park(on, deadline)
            }
            Waiter::Thread(signal) => loop {
                if signal.notified.swap(false, Ordering::Acquire) {
                    return Ok(Wake::Notified);
                }
                match deadline {
                    None => thread::park(),
                    Some(deadline) => {
                        let now = Instant::now();
                        if now >= deadline {
                            return Ok(Wake::TimedOut);
                        }
                        thread::park_timeout(deadline - now);
                    }
                }
            },
        }
    }
}

/// Locks a primitive's state. Its lock is never held while user code runs
/// (except a value's `Drop`), and a panic there leaves the state consistent,
/// so poisoning is ignored.
pub(crate) fn lock<S>(state: &Mutex<S>) -> Locked<'_, S> {
    Locked { guard: Some(state.lock().unwrap_or_else(PoisonError::into_inner)) }
}

/// How a [`wait_in`] ended.
#[derive(Debug)]
pub(crate) struct Waited<T> {
    /// Whether the node was completed (its condition was met for it).
    pub(crate) completed: bool,
    /// The node's data, possibly changed by the completer.
    pub(crate) data: T,
    /// How the wait ended.
    pub(crate) woke: Parked,
}

impl<T> Waited<T> {
    /// Whether the wait is over without its condition: the deadline passed,
    /// or the park was refused (which counts as the deadline passing).
    pub(crate) fn gave_up(&self) -> bool {
        !self.completed && self.woke != Ok(Wake::Notified)
    }
}

/// Waits in a queue of the state behind `state`, whose lock the caller holds
/// in `guard` (having checked, under it, that it must wait): registers a node
/// with `data`, releases the lock, waits until the node is completed, the
/// waiter is woken, or `deadline` passes, and reclaims the node in every
/// case, also when a killed greenlet unwinds. If it unwinds after its node
/// was completed, `give_back` gets the node's data (a value, a permit) to
/// pass on, so nothing is lost.
#[allow(clippy::too_many_arguments)]
#[track_caller]
pub(crate) fn wait_in<S, T>(
    waiter: &Waiter,
    state: &Mutex<S>,
    guard: Locked<'_, S>,
    queue: fn(&mut S) -> &mut WaitQueue<T, Wakeup>,
    data: T,
    on: WaitingOn,
    deadline: Option<Instant>,
    give_back: impl FnOnce(&mut S, T),
) -> Waited<T> {
    wait_in_then(waiter, state, guard, queue, data, on, deadline, give_back, || {})
}

/// [`wait_in`], running `registered` after the node is in the queue and the
/// lock released, before waiting (a condition variable unlocks its mutex
/// there, so a notification cannot slip in between).
#[allow(clippy::too_many_arguments)]
#[track_caller]
pub(crate) fn wait_in_then<S, T>(
    waiter: &Waiter,
    state: &Mutex<S>,
    mut guard: Locked<'_, S>,
    queue: fn(&mut S) -> &mut WaitQueue<T, Wakeup>,
    data: T,
    on: WaitingOn,
    deadline: Option<Instant>,
    give_back: impl FnOnce(&mut S, T),
    registered: impl FnOnce(),
) -> Waited<T> {
    struct Reclaim<'a, S, T, F: FnOnce(&mut S, T)> {
        state: &'a Mutex<S>,
        queue: fn(&mut S) -> &mut WaitQueue<T, Wakeup>,
        key: Option<WaitKey>,
        give_back: Option<F>,
    }
    impl<S, T, F: FnOnce(&mut S, T)> Drop for Reclaim<'_, S, T, F> {
        fn drop(&mut self) {
            // Only reached with a key when unwinding out of the park.
            if let Some(key) = self.key.take() {
                let mut state = lock(self.state);
                let (completed, data) = (self.queue)(&mut state).reclaim(key);
                if let (true, Some(give_back)) = (completed, self.give_back.take()) {
                    give_back(&mut state, data);
                }
            }
        }
    }
    let key = queue(&mut guard).push(waiter.wakeup(), data);
    drop(guard);
    let mut reclaim = Reclaim { state, queue, key: Some(key), give_back: Some(give_back) };
    registered();
    let woke = waiter.park(on, deadline);
    let key = reclaim.key.take().expect("reclaimed once");
    let (completed, data) = queue(&mut lock(state)).reclaim(key);
    Waited { completed, data, woke }
}
