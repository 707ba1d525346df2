//! The one wake path: [`Unparker`], and [`SendUnparker`] for other threads.
//!
//! Every source of wake-ups holds an `Unparker`: wait queues (channels,
//! events, semaphores, joins), the reactor (I/O readiness), timers, and,
//! turned into a `SendUnparker`, the blocking pool and anything off the hub's
//! thread. An `Unparker` names a task, the sequence number of one park, and
//! (through the task) the hub the task lives on. [`Unparker::unpark`] makes
//! the task runnable if it is still in that park, and does nothing otherwise;
//! it never switches.

use std::fmt;
use std::rc::Rc;
use std::sync::Arc;

use crate::hub::record::{ReadyQueue, Task, Wake};
use crate::hub::remote::{Message, Remote};
use crate::util::slab::Key;

/// Wakes one park of one task, on the task's own hub thread.
#[derive(Clone)]
pub(crate) struct Unparker {
    task: Rc<Task>,
    seq: u64,
}

impl Unparker {
    pub(crate) fn new(task: Rc<Task>, seq: u64) -> Unparker {
        Unparker { task, seq }
    }

    /// Whether both name the same park of the same task.
    pub(crate) fn same_park(&self, other: &Unparker) -> bool {
        Rc::ptr_eq(&self.task, &other.task) && self.seq == other.seq
    }

    /// Makes the task runnable if it is still parked in this park; returns
    /// whether it was.
    pub(crate) fn unpark(&self) -> bool {
        self.task.wake_up(self.seq, Wake::Notified)
    }

    /// [`unpark`](Unparker::unpark), giving the unparker's reference to the
    /// task to the run queue (`ready`, the caller's hub's).
    pub(crate) fn unpark_owned(self, ready: &ReadyQueue) -> bool {
        self.task.wake_up_owned(self.seq, Wake::Notified, ready)
    }

    /// Like `unpark`, reporting that the park's deadline passed.
    pub(crate) fn time_out(&self) -> bool {
        self.task.wake_up(self.seq, Wake::TimedOut)
    }

    /// A wake-up that can be sent to another thread and used there.
    ///
    /// # Panics
    ///
    /// If the task has finished (nothing can park in it any more).
    pub(crate) fn into_send(self) -> SendUnparker {
        let task = self.task.key().expect("only a live task can be parked");
        let remote = self.task.ready_queue().remote.clone();
        remote.count_unparker(true);
        SendUnparker { remote, task, seq: self.seq }
    }
}

impl fmt::Debug for Unparker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Unparker").field("task", &self.task.id()).field("seq", &self.seq).finish()
    }
}

/// An [`Unparker`] that is `Send + Sync`: waking goes through the hub's
/// remote queue and interrupts its poll. While one is alive, the hub knows a
/// wake-up may still come, so it does not report a deadlock.
pub(crate) struct SendUnparker {
    remote: Arc<Remote>,
    task: Key,
    seq: u64,
}

impl SendUnparker {
    /// Wakes the park (if the task is still in it) from any thread. A hub
    /// that has stopped ignores it.
    pub(crate) fn unpark(self) {
        // Posted before the count drops (in `drop`), so the hub never sees
        // "no unparker left" while the message is still on its way.
        let _ = self.remote.post(Message::Unpark { task: self.task, seq: self.seq });
    }
}

impl Drop for SendUnparker {
    fn drop(&mut self) {
        self.remote.count_unparker(false);
    }
}

impl fmt::Debug for SendUnparker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SendUnparker").field("task", &self.task).field("seq", &self.seq).finish()
    }
}
