//! [`Handle`]: spawning onto a hub from other threads.

use std::fmt;
use std::panic::Location;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::error::Closed;
use crate::hub;
use crate::hub::counters::Counters;
use crate::hub::metrics::Metrics;
use crate::hub::remote::{Message, Remote};
use crate::hub::wait_queue::WaitQueue;
use crate::hub::waiting::WaitingOn;
use crate::park::wait::{self, Waiter, Wakeup};
use crate::task::join::{JoinHandle, JoinShared};
use crate::task::{self, Spawner, spawn_into};

/// A handle to a hub that other threads can use to spawn greenlets on it.
///
/// `Handle` is `Send + Sync + Clone`. While any `Handle` to a hub is alive,
/// the hub assumes more work may arrive, so its deadlock detection stays quiet.
///
/// ```
/// use std::sync::mpsc;
/// runtime::run(|| {
///     let handle = runtime::Handle::current();
///     let (tx, rx) = mpsc::channel();
///     let thread = std::thread::spawn(move || {
///         let greenlet = handle.spawn(move || tx.send(runtime::greenlet_id()).unwrap()).unwrap();
///         greenlet.join().unwrap(); // a plain thread blocks until it is done
///     });
///     let id = runtime::blocking(move || rx.recv().unwrap());
///     assert!(id > 0);
///     thread.join().unwrap();
/// });
/// ```
pub struct Handle {
    remote: Arc<Remote>,
    /// Shared by every `Handle` of the hub.
    backlog: Arc<Backlog>,
    counters: Arc<Counters>,
    /// The hub's id (its reactor's).
    hub: u64,
}

impl Handle {
    /// How many spawns from other threads a hub may have queued and not yet
    /// taken off before [`spawn`](Handle::spawn) waits for it. A waiting
    /// spawn goes on once the hub has taken off all but half of them.
    pub const MAX_QUEUED_SPAWNS: usize = 1024;

    /// A handle to the hub running on this thread.
    ///
    /// # Panics
    ///
    /// Outside a runtime.
    #[track_caller]
    pub fn current() -> Handle {
        let hub = hub::expect();
        Handle::new(hub.remote().clone(), hub.counters().clone(), hub.reactor().id())
    }

    /// A handle to the hub running on this thread, if any.
    pub fn try_current() -> Option<Handle> {
        hub::current().map(|hub| Handle::new(hub.remote().clone(), hub.counters().clone(), hub.reactor().id()))
    }

    fn new(remote: Arc<Remote>, counters: Arc<Counters>, hub: u64) -> Handle {
        let shared = remote.handles_shared().get_or_init(|| Arc::new(Backlog::new())).clone();
        let backlog = shared.downcast::<Backlog>().expect("only `Handle` keeps its state there");
        remote.count_handle(true);
        Handle { remote, backlog, counters, hub }
    }

    /// The hub's [`Metrics`], from any thread: what the hub counted last, read
    /// without a lock or a message (see [`metrics`](crate::metrics)). After
    /// the hub has stopped, its final values.
    ///
    /// ```
    /// let handle = runtime::run(|| {
    ///     runtime::spawn(|| ()).join().unwrap();
    ///     runtime::Handle::current()
    /// });
    /// let m = std::thread::spawn(move || handle.metrics()).join().unwrap();
    /// assert_eq!(m.greenlets_spawned(), 2); // the main greenlet and one more
    /// assert_eq!(m.greenlets_alive(), 0);
    /// ```
    pub fn metrics(&self) -> Metrics {
        Metrics::read(&self.counters)
    }

    /// Spawns a greenlet running `f` on the hub, from any thread, and
    /// returns a handle to join or kill it from anywhere. It runs on the
    /// hub's thread like any other greenlet.
    ///
    /// Until the hub takes the spawn off its queue, it costs a small
    /// message, not a greenlet: the hub creates the greenlet then, and takes
    /// off a bounded batch per turn, so that its own greenlets, timers and
    /// I/O keep their turn under a flood of spawns.
    ///
    /// # Backpressure
    ///
    /// While the hub has [`MAX_QUEUED_SPAWNS`](Handle::MAX_QUEUED_SPAWNS)
    /// spawns from other threads queued, `spawn` waits until it has taken
    /// off half of them: a plain thread blocks, a greenlet (of another hub,
    /// or of this one) parks. So a thread that floods a hub goes at the
    /// hub's pace, and the memory the queue holds stays bounded.
    ///
    /// # Errors
    ///
    /// [`Closed`] if the hub has stopped (its `run` returned), also while
    /// waiting. A spawn that races the hub's stop may also be accepted and
    /// then dropped unrun: it is then joined as killed.
    #[track_caller]
    pub fn spawn<F, T>(&self, f: F) -> Result<JoinHandle<T>, Closed>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let spawned_at = Location::caller();
        let queued = self.backlog.enter(&self.remote)?;
        let shared = JoinShared::new(self.hub, None);
        let mut unstarted = Unstarted(Some(shared.clone()));
        self.remote.post(Message::Run(Box::new(move || {
            drop(queued); // taken off the queue
            let hub = hub::expect();
            let spawned = unstarted.0.take().expect("taken once, here");
            spawn_into(&hub, task::Builder::new(), f, None, spawned_at, spawned, Spawner::Remote);
        })))?;
        Ok(JoinHandle::new(shared))
    }
}

/// The join state of a spawn whose work has not run yet: if the work is
/// dropped instead (the hub stopped with it still queued), the greenlet ends
/// as killed before it started, and its handle learns so.
struct Unstarted<T>(Option<Arc<JoinShared<T>>>);

impl<T> Drop for Unstarted<T> {
    fn drop(&mut self) {
        if let Some(shared) = self.0.take() {
            shared.abandon();
        }
    }
}

/// A queued spawn holds the hub's backlog until the hub takes it off (or
/// drops it).
const RESUME_AT: usize = Handle::MAX_QUEUED_SPAWNS / 2;

/// How far a hub is behind with the spawns of its `Handle`s, and who waits
/// for it to catch up.
struct Backlog {
    /// Spawns posted (or about to be) and not yet taken off.
    queued: AtomicUsize,
    /// Somebody waits in `waiters` (set under its lock).
    waiting: AtomicBool,
    waiters: Mutex<WaitQueue<(), Wakeup>>,
}

impl Backlog {
    fn new() -> Backlog {
        Backlog { queued: AtomicUsize::new(0), waiting: AtomicBool::new(false), waiters: Mutex::new(WaitQueue::new()) }
    }

    /// Counts a spawn in, first waiting while the hub is too far behind,
    /// or while others wait for it (so a spawner that waits is not
    /// overtaken, again and again, by one that happens to come at the right
    /// moment).
    fn enter(self: &Arc<Self>, remote: &Remote) -> Result<Queued, Closed> {
        loop {
            if !self.waiting.load(Ordering::SeqCst) {
                if self.queued.fetch_add(1, Ordering::SeqCst) < Handle::MAX_QUEUED_SPAWNS {
                    return Ok(Queued(self.clone()));
                }
                self.queued.fetch_sub(1, Ordering::SeqCst);
            }
            self.wait(remote)?;
        }
    }

    /// Waits until the hub has taken off all but `RESUME_AT` spawns (or has
    /// stopped); returns at once if it is not behind and nobody waits.
    #[track_caller]
    fn wait(&self, remote: &Remote) -> Result<(), Closed> {
        let waiter = Waiter::current();
        loop {
            if remote.is_closed() {
                return Err(Closed);
            }
            let waiters = wait::lock(&self.waiters);
            // `SeqCst` with `leave`: either it sees this flag, or this sees
            // the count it lowered.
            self.waiting.store(true, Ordering::SeqCst);
            if waiters.len() == 0 && self.queued.load(Ordering::SeqCst) < Handle::MAX_QUEUED_SPAWNS {
                self.waiting.store(false, Ordering::SeqCst);
                return Ok(());
            }
            let on = WaitingOn::Op("Handle::spawn (the hub is behind)");
            let waited = wait::wait_in(&waiter, &self.waiters, waiters, |q| q, (), on, None, |_, ()| {});
            if waited.completed {
                return Ok(());
            }
        }
    }

    /// Counts a spawn out (taken off the queue, or dropped); once the hub is
    /// down to `RESUME_AT`, wakes whoever waits.
    fn leave(&self) {
        let before = self.queued.fetch_sub(1, Ordering::SeqCst);
        if before <= RESUME_AT + 1 && self.waiting.load(Ordering::SeqCst) {
            let mut waiters = wait::lock(&self.waiters);
            if self.waiting.swap(false, Ordering::SeqCst) {
                waiters.complete_all(|()| {});
            }
        }
    }
}

/// One spawn counted in a hub's [`Backlog`], counted out when dropped.
struct Queued(Arc<Backlog>);

impl Drop for Queued {
    fn drop(&mut self) {
        self.0.leave();
    }
}

impl Clone for Handle {
    fn clone(&self) -> Handle {
        Handle::new(self.remote.clone(), self.counters.clone(), self.hub)
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.remote.count_handle(false);
    }
}

impl fmt::Debug for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handle").field("closed", &self.remote.is_closed()).finish()
    }
}
