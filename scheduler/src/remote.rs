//! Work from other threads: [`Handle`] and the hub's remote queue.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use crossbeam_queue::SegQueue;

use crate::error::Closed;
use crate::hub;

type Work = Box<dyn FnOnce() + Send>;

/// The part of a hub other threads can reach: a queue of work and the waker
/// that interrupts the hub's poll.
pub(crate) struct Remote {
    queue: SegQueue<Work>,
    waker: mio::Waker,
    /// Set once a wake-up is in flight, so a burst of submissions costs one
    /// system call.
    notified: AtomicBool,
    closed: AtomicBool,
    /// Live `Handle`s: while any exists, another thread may still send work.
    handles: AtomicUsize,
}

impl Remote {
    pub(crate) fn new(waker: mio::Waker) -> Remote {
        Remote {
            queue: SegQueue::new(),
            waker,
            notified: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            handles: AtomicUsize::new(0),
        }
    }

    /// Queues `work` to run on the hub thread (not in a greenlet) and wakes
    /// the hub.
    pub(crate) fn post(&self, work: Work) -> Result<(), Closed> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Closed);
        }
        self.queue.push(work);
        self.wake();
        Ok(())
    }

    fn wake(&self) {
        if !self.notified.swap(true, Ordering::AcqRel) {
            if let Err(err) = self.waker.wake() {
                tracing::error!("cannot wake the hub: {err}");
            }
        }
    }

    /// Takes the queued work; called by the hub after each poll.
    pub(crate) fn drain(&self) -> Vec<Work> {
        self.notified.store(false, Ordering::Release);
        let mut work = Vec::new();
        while let Some(item) = self.queue.pop() {
            work.push(item);
        }
        work
    }

    pub(crate) fn has_pending(&self) -> bool {
        !self.queue.is_empty()
    }

    pub(crate) fn handles(&self) -> usize {
        self.handles.load(Ordering::Acquire)
    }

    /// Refuses further work; called when the hub stops.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        while self.queue.pop().is_some() {}
    }
}

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
///         handle.spawn(move || tx.send(runtime_scheduler::greenlet_id()).unwrap()).unwrap();
///     });
///     let id = runtime_scheduler::blocking(move || rx.recv().unwrap());
///     assert!(id > 0);
///     thread.join().unwrap();
/// });
/// ```
pub struct Handle {
    remote: Arc<Remote>,
}

impl Handle {
    /// A handle to the hub running on this thread.
    ///
    /// # Panics
    ///
    /// Outside a runtime.
    pub fn current() -> Handle {
        hub::with(|hub| Handle::new(hub.remote.clone()))
    }

    /// A handle to the hub running on this thread, if any.
    pub fn try_current() -> Option<Handle> {
        hub::current().map(|hub| Handle::new(hub.remote.clone()))
    }

    fn new(remote: Arc<Remote>) -> Handle {
        remote.handles.fetch_add(1, Ordering::AcqRel);
        Handle { remote }
    }

    /// Spawns a greenlet running `f` on the hub, from any thread. It runs on
    /// the hub's thread like any other greenlet.
    ///
    /// # Errors
    ///
    /// [`Closed`] if the hub has stopped (its `run` returned).
    pub fn spawn<F>(&self, f: F) -> Result<(), Closed>
    where
        F: FnOnce() + Send + 'static,
    {
        self.remote.post(Box::new(move || drop(crate::spawn(f))))
    }
}

impl Clone for Handle {
    fn clone(&self) -> Handle {
        Handle::new(self.remote.clone())
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        if self.remote.handles.fetch_sub(1, Ordering::AcqRel) == 1 {
            // The hub may be blocked waiting only because this handle was
            // alive: let it re-check whether anything can still happen.
            self.remote.wake();
        }
    }
}

impl fmt::Debug for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handle").field("closed", &self.remote.closed.load(Ordering::Relaxed)).finish()
    }
}
