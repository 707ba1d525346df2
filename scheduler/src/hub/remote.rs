//! The hub's door for other threads: a lock-free queue of messages and the
//! `mio::Waker` that interrupts the hub's poll.
//!
//! Two kinds of message arrive: work to run on the hub thread (a spawn from a
//! [`Handle`](crate::Handle)) and wake-ups of parked greenlets (a
//! [`SendUnparker`](crate::hub::unpark::SendUnparker): thread-pool results, and
//! later wakes from other hubs). The hub drains the queue after every poll.
//! This module knows nothing of tasks: a wake-up names its task by the key
//! of the hub's task table, and the hub resolves it.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use crossbeam_queue::SegQueue;

use crate::error::Closed;
use crate::util::slab::Key;

/// Work sent to run on the hub's thread (not in a greenlet).
pub(crate) type Work = Box<dyn FnOnce() + Send>;

/// What another thread asks of the hub.
pub(crate) enum Message {
    /// Run this on the hub thread.
    Run(Work),
    /// Unpark the task at this key of the hub's task table, if it is still
    /// parked with this sequence number.
    Unpark { task: Key, seq: u64 },
    /// Kill the task at this key of the hub's task table.
    Kill { task: Key },
}

/// See the module docs.
pub(crate) struct Remote {
    queue: SegQueue<Message>,
    waker: mio::Waker,
    /// Set once a wake-up is in flight, so a burst of messages costs one
    /// system call.
    notified: AtomicBool,
    closed: AtomicBool,
    /// Live `Handle`s: while any exists, another thread may still send work.
    handles: AtomicUsize,
    /// Live `SendUnparker`s: while any exists, a parked greenlet may still be
    /// woken from elsewhere (a thread-pool job is running, say).
    unparkers: AtomicUsize,
}

impl Remote {
    pub(crate) fn new(waker: mio::Waker) -> Remote {
        Remote {
            queue: SegQueue::new(),
            waker,
            notified: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            handles: AtomicUsize::new(0),
            unparkers: AtomicUsize::new(0),
        }
    }

    /// Queues `message` and wakes the hub.
    ///
    /// # Errors
    ///
    /// [`Closed`] once the hub has stopped; the message is dropped.
    pub(crate) fn post(&self, message: Message) -> Result<(), Closed> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Closed);
        }
        self.queue.push(message);
        self.wake();
        Ok(())
    }

    /// Interrupts the hub's poll (once per burst).
    pub(crate) fn wake(&self) {
        if !self.notified.swap(true, Ordering::AcqRel) {
            if let Err(err) = self.waker.wake() {
                tracing::error!("cannot wake the hub: {err}");
            }
        }
    }

    /// Moves the queued messages into `into` (a buffer the hub keeps, so a
    /// turn allocates nothing).
    pub(crate) fn drain_into(&self, into: &mut Vec<Message>) {
        // Cleared before popping, and with a read-modify-write (so it orders
        // with the senders' `swap`): a message pushed after the last pop
        // then finds `notified` false and wakes the next poll.
        self.notified.swap(false, Ordering::AcqRel);
        while let Some(message) = self.queue.pop() {
            into.push(message);
        }
    }

    pub(crate) fn has_pending(&self) -> bool {
        !self.queue.is_empty()
    }

    /// Whether another thread may still send work or a wake-up.
    pub(crate) fn may_send(&self) -> bool {
        self.handles.load(Ordering::Acquire) > 0 || self.unparkers.load(Ordering::Acquire) > 0 || self.has_pending()
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Relaxed)
    }

    /// Counts a new `Handle` (`true`) or a dropped one (`false`). The last
    /// one gone wakes the hub, which may be blocked only because it was alive:
    /// it re-checks whether anything can still happen.
    pub(crate) fn count_handle(&self, alive: bool) {
        Self::count(&self.handles, alive, || self.wake());
    }

    /// Counts a new `SendUnparker` (`true`) or a used or dropped one.
    pub(crate) fn count_unparker(&self, alive: bool) {
        Self::count(&self.unparkers, alive, || self.wake());
    }

    fn count(counter: &AtomicUsize, alive: bool, on_last: impl FnOnce()) {
        if alive {
            counter.fetch_add(1, Ordering::AcqRel);
        } else if counter.fetch_sub(1, Ordering::AcqRel) == 1 {
            on_last();
        }
    }

    /// Refuses further messages and drops the queued ones; called when the hub
    /// stops.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        while self.queue.pop().is_some() {}
    }
}
