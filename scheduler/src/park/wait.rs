//! Waiting on the `sync` types from anywhere: a greenlet on any hub parks, a
//! plain thread blocks.
//!
//! A waiter registers a [`Wakeup`] in the primitive's wait queue (under the
//! primitive's lock, together with the check of its condition, so no wake-up
//! can slip in between), releases the lock, and waits with [`Waiter::park`].
//! Its node carries a slot in the waiter's frame ([`wait_in`]): a completer
//! moves the node's data there, so a waiter woken by its completion (the
//! common case) returns without taking the lock again.
//! A `Wakeup` is `Send`: it wakes a greenlet directly when used on that
//! greenlet's hub thread, through the hub's remote queue (and a
//! `mio::Waker`) from anywhere else, and a plain thread with
//! `Thread::unpark`.

use std::cell::{Cell, RefCell};
use std::ptr::NonNull;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::{self, Thread};
use std::time::Instant;

use crate::hub;
use crate::hub::record::{Abandon, Task, Wake};
use crate::hub::wait_queue::{self, Slot, WaitKey, WaitQueue};
use crate::hub::waiting::WaitingOn;
use crate::park::{Parked, Parker};
use crate::util::slab::Key;

/// Wakes one waiter of a `sync` type, from any thread.
#[derive(Clone)]
pub(crate) enum Wakeup {
    /// Park `seq` of the task at `task` on the hub with the id `hub`.
    /// (The hub is named by its id, not a reference to its queue: making a
    /// wake-up then costs no atomic operation.) A wake-up made by
    /// [`wait_in`] also reaches the task's record directly, for a wake on
    /// its own hub.
    Greenlet { hub: u64, task: Key, seq: u64, waiting: Option<Waiting> },
    /// A plain thread blocked in a wait.
    Thread(Arc<ThreadSignal>),
}

impl Wakeup {
    /// A wake-up for the next park of `parker`'s greenlet.
    pub(crate) fn for_greenlet(parker: &Parker) -> Wakeup {
        let task = parker.task().key().expect("a running task is in its hub's table");
        Wakeup::Greenlet { hub: parker.hub().reactor().id(), task, seq: parker.next_seq(), waiting: None }
    }

    /// The wake-up of `waiter`'s node in [`wait_in`], which the waiter keeps
    /// borrowed until its node is out of the queue.
    #[inline(always)] // see `Slab::insert`
    fn for_node(waiter: &Waiter) -> Wakeup {
        match waiter {
            Waiter::Greenlet(parker) => {
                let task = parker.task().key().expect("a running task is in its hub's table");
                let waiting = Some(Waiting(NonNull::from(parker.task())));
                Wakeup::Greenlet { hub: parker.hub().reactor().id(), task, seq: parker.next_seq(), waiting }
            }
            Waiter::Thread(signal) => Wakeup::Thread(signal.clone()),
        }
    }
}

/// The record of a greenlet waiting in [`wait_in`]: a pointer into the
/// `Parker` its node's wait borrows, so that a wake on the greenlet's own
/// hub needs neither the hub's thread-local nor its task table. Used only on
/// that hub's thread, and only while the node is in its queue.
#[derive(Clone, Copy)]
pub(crate) struct Waiting(NonNull<Rc<Task>>);

// SAFETY: the pointer crosses threads only inside a wait node (or a copy of
// its wake-up deferred by another thread, see `Wakeup::wake`), and is
// dereferenced only on the greenlet's own hub thread (`Waiting::wake`).
#[allow(unsafe_code)]
unsafe impl Send for Waiting {}

impl Waiting {
    /// Wakes park `seq` of the task. Called on the task's own hub thread
    /// by the completer of its node, as the node leaves its queue.
    #[allow(unsafe_code)]
    fn wake(self, seq: u64) {
        // SAFETY: the node was in its queue until now, so `wait_in_then`,
        // which made this pointer from the `Waiter` it borrows, has not
        // returned (nor unwound past its reclaim, and a leaked greenlet's
        // node is taken out before the hub forgets it); the greenlet is
        // parked on this thread, not running, so the frame stays as it is
        // while the completer runs. And an `Rc` is only touched on its own
        // thread: this is the hub's thread (`Wakeup::wake` checks).
        let task = unsafe { self.0.as_ref() };
        task.wake_up(seq, Wake::Notified);
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
            Wakeup::Greenlet { hub, task, seq, .. } => hub::unpark_hub(*hub, *task, *seq),
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
            Wakeup::Greenlet { hub, task, seq, waiting } if *hub == hub::reactor_id() => match waiting {
                Some(waiting) => waiting.wake(*seq),
                None => hub::unpark_local(*task, *seq),
            },
            _ => {
                let _ = DEFERRED.try_with(|deferred| deferred.borrow_mut().push(self.clone()));
                DEFERRING.set(true);
            }
        }
    }
}

thread_local! {
    /// Wake-ups for other threads made while holding a `sync` type's lock,
    /// sent when it is released (see [`Locked`]).
    static DEFERRED: RefCell<Vec<Wakeup>> = const { RefCell::new(Vec::new()) };
    /// Whether `DEFERRED` may hold wake-ups: what every release of a lock
    /// checks, one load (no destructor, so no registration check either).
    static DEFERRING: Cell<bool> = const { Cell::new(false) };
}

/// A held lock of a `sync` type's state. Wake-ups for other threads made
/// while it is held are sent when it is released.
pub(crate) struct Locked<'a, S> {
    // Fields drop in order: the lock is released first, then the wake-ups
    // are sent.
    guard: MutexGuard<'a, S>,
    _then: SendDeferred,
}

impl<S> std::ops::Deref for Locked<'_, S> {
    type Target = S;

    fn deref(&self) -> &S {
        &self.guard
    }
}

impl<S> std::ops::DerefMut for Locked<'_, S> {
    fn deref_mut(&mut self) -> &mut S {
        &mut self.guard
    }
}

/// Sends, when dropped, the wake-ups deferred while a lock was held.
struct SendDeferred;

impl Drop for SendDeferred {
    #[inline]
    fn drop(&mut self) {
        if DEFERRING.get() {
            send_deferred();
        }
    }
}

/// Sends the wake-ups deferred while a lock was held (see [`Locked`]).
#[cold]
fn send_deferred() {
    DEFERRING.set(false);
    let _ = DEFERRED.try_with(|deferred| {
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
    #[inline(always)] // returned in place (see `Slab::insert`)
    pub(crate) fn current() -> Waiter {
        match Parker::try_current() {
            Some(parker) => Waiter::Greenlet(parker),
            None if hub::current().is_some() => Waiter::Greenlet(Parker::current()),
            None => {
                Waiter::Thread(Arc::new(ThreadSignal { thread: thread::current(), notified: AtomicBool::new(false) }))
            }
        }
    }

    /// Waits until woken through a [`Wakeup`] of this waiter, or `deadline`.
    /// A greenlet parks (see [`Parker::park`] for kills and refusals); a
    /// thread blocks.
    #[track_caller]
    #[inline(always)] // one call level less to return through (see `Hub::switch_to_hub`)
    pub(crate) fn park(&self, on: WaitingOn, deadline: Option<Instant>) -> Parked {
        match self {
            Waiter::Greenlet(parker) => parker.park(on, deadline),
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
    Locked { guard: state.lock().unwrap_or_else(PoisonError::into_inner), _then: SendDeferred }
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
#[cfg_attr(not(debug_assertions), inline(always))] // no call level to return through after the switch (see `Hub::switch_to_hub`)
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
#[cfg_attr(not(debug_assertions), inline(always))] // no call level to return through after the switch (see `Hub::switch_to_hub`)
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
        slot: &'a Slot<T>,
        give_back: Option<F>,
    }
    impl<S, T, F: FnOnce(&mut S, T)> Reclaim<'_, S, T, F> {
        /// Takes the node back, under the lock: whether it was completed,
        /// and its data.
        fn reclaim(&mut self, key: WaitKey, state: &mut S) -> (bool, T) {
            match self.slot.take() {
                Some(data) => (true, data),
                None => (self.queue)(state).reclaim(key),
            }
        }
    }
    impl<S, T, F: FnOnce(&mut S, T)> Abandon for Reclaim<'_, S, T, F> {
        fn abandon(&mut self) {
            if let Some(key) = self.key.take() {
                let mut state = lock(self.state);
                let (completed, data) = self.reclaim(key, &mut state);
                if let (true, Some(give_back)) = (completed, self.give_back.take()) {
                    give_back(&mut state, data);
                }
            }
        }
    }
    impl<S, T, F: FnOnce(&mut S, T)> Drop for Reclaim<'_, S, T, F> {
        fn drop(&mut self) {
            // Only reached with a key when unwinding out of the park.
            self.abandon();
        }
    }
    // Declared before `reclaim`, so it outlives it: the node is out of the
    // queue (`reclaim` takes it back when unwinding) before the slot goes.
    let slot = Slot::new();
    // SAFETY: `slot` stays in this frame until `reclaim` has taken it or the
    // node back: below, or in its `Drop` when unwinding (or, for a greenlet
    // the hub leaks, in `abandon`, while this frame stays suspended for good).
    #[allow(unsafe_code)]
    let key = unsafe { queue(&mut guard).push_slotted(|| Wakeup::for_node(waiter), data, NonNull::from(&slot)) };
    let mut reclaim = Reclaim { state, queue, key: Some(key), slot: &slot, give_back: Some(give_back) };
    drop(guard);
    registered();
    let recorded = match waiter {
        Waiter::Greenlet(parker) => Some(RecordedNode::new(parker.task(), &mut reclaim)),
        Waiter::Thread(_) => None,
    };
    let woke = waiter.park(on, deadline);
    drop(recorded);
    let key = reclaim.key.take().expect("reclaimed once");
    // The common case, completed: the data is in the slot, no lock needed.
    if let Some(data) = slot.take() {
        return Waited { completed: true, data, woke };
    }
    let (completed, data) = reclaim.reclaim(key, &mut lock(state));
    Waited { completed, data, woke }
}

/// Records a parked greenlet's wait node in its task while it waits, so that
/// the hub can take it back if it leaks the task (see [`Abandon`]); forgets
/// it again when dropped (the wait is over, or unwinds).
struct RecordedNode<'t> {
    task: &'t Task,
    before: Option<NonNull<dyn Abandon>>,
}

impl<'t> RecordedNode<'t> {
    #[allow(unsafe_code)]
    #[inline(always)] // returned in place (see `Slab::insert`)
    fn new<'n>(task: &'t Task, node: &'n mut (dyn Abandon + 'n)) -> RecordedNode<'t> {
        let node: *mut (dyn Abandon + 'n) = node;
        // SAFETY: only the lifetime bound is erased (same fat pointer). The
        // hub dereferences the pointer only when it leaks the task, which
        // then never runs again: the frame that owns the node is suspended
        // for good inside the park, its stack stays mapped, and what the node
        // borrows is kept alive by that frame. Otherwise the pointer is
        // forgotten (in `drop`) before the frame touches the node again.
        let node = unsafe { std::mem::transmute::<*mut (dyn Abandon + 'n), *mut (dyn Abandon + 'static)>(node) };
        let before = task.set_node(NonNull::new(node));
        RecordedNode { task, before }
    }
}

impl Drop for RecordedNode<'_> {
    #[inline]
    fn drop(&mut self) {
        self.task.set_node(self.before.take());
    }
}
