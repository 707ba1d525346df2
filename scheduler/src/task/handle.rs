//! [`Handle`]: spawning onto a hub from other threads.

use std::fmt;
use std::panic::Location;
use std::sync::Arc;

use crate::error::Closed;
use crate::hub;
use crate::hub::counters::Counters;
use crate::hub::remote::{Message, Remote};
use crate::metrics::Metrics;
use crate::task::join::{JoinHandle, JoinShared};
use crate::task::{self, spawn_into};

/// A handle to a hub that other threads can use to spawn greenlets on it.
///
/// `Handle` is `Send + Sync + Clone`. While any `Handle` to a hub is alive,
/// the hub assumes more work may arrive, so its deadlock detection stays quiet.
///
/// ```
/// use std::sync::mpsc;
/// runtime_scheduler::run(|| {
///     let handle = runtime_scheduler::Handle::current();
///     let (tx, rx) = mpsc::channel();
///     let thread = std::thread::spawn(move || {
///         let greenlet = handle.spawn(move || tx.send(runtime_scheduler::greenlet_id()).unwrap()).unwrap();
///         greenlet.join().unwrap(); // a plain thread blocks until it is done
///     });
///     let id = runtime_scheduler::blocking(move || rx.recv().unwrap());
///     assert!(id > 0);
///     thread.join().unwrap();
/// });
/// ```
pub struct Handle {
    remote: Arc<Remote>,
    counters: Arc<Counters>,
    /// The hub's id (its reactor's).
    hub: u64,
}

impl Handle {
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
        remote.count_handle(true);
        Handle { remote, counters, hub }
    }

    /// The hub's [`Metrics`], from any thread: what the hub counted last, read
    /// without a lock or a message (see [`metrics`](crate::metrics)). After
    /// the hub has stopped, its final values.
    ///
    /// ```
    /// let handle = runtime_scheduler::run(|| {
    ///     runtime_scheduler::spawn(|| ()).join().unwrap();
    ///     runtime_scheduler::Handle::current()
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
    /// # Errors
    ///
    /// [`Closed`] if the hub has stopped (its `run` returned).
    #[track_caller]
    pub fn spawn<F, T>(&self, f: F) -> Result<JoinHandle<T>, Closed>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let spawned_at = Location::caller();
        let shared = JoinShared::new(self.hub, None);
        let mut unstarted = Unstarted(Some(shared.clone()));
        self.remote.post(Message::Run(Box::new(move || {
            let hub = hub::expect();
            let spawned = unstarted.0.take().expect("taken once, here");
            spawn_into(&hub, task::Builder::new(), f, None, spawned_at, spawned, true);
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
