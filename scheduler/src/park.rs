//! The park seam: how a greenlet gives up the CPU until something wakes it.
//!
//! Every blocking operation of the runtime ends in [`Parker::park`]. Waking is
//! [`unpark`], which only makes a greenlet runnable (it never switches). A
//! parked greenlet is identified by its task and a sequence number that grows
//! with each park, so a late wake-up meant for an earlier park is ignored.
//!
//! Two things arrive at a park point as unwinding rather than as a return
//! value: a kill (`GreenletExit`, thrown by the hub) and the expiry of an
//! enclosing [`timeout`](crate::timeout) scope.

use std::panic;
use std::rc::Rc;
use std::time::Instant;

use crate::hub::{self, TimerAction};
use crate::task::{State, Task, scopeguard};
use crate::time::TimeoutUnwind;

/// Why a parked greenlet runs again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Wake {
    /// Something it waited for happened (or it was woken spuriously: callers
    /// re-check their condition).
    Notified,
    /// Its deadline passed.
    TimedOut,
    /// It did not park, because it is unwinding: blocking while a panic is in
    /// flight would leave `std::thread::panicking()` true for every other
    /// greenlet of the thread (poisoning their mutexes).
    Refused,
}

/// The current greenlet, about to park: waiters register with its task and
/// sequence number, then call [`Parker::park`].
#[derive(Debug)]
pub(crate) struct Parker {
    task: Rc<Task>,
    seq: u64,
}

/// A parker for the current greenlet.
///
/// # Panics
///
/// Outside a greenlet spawned on a hub.
#[inline(always)]
pub(crate) fn parker() -> Parker {
    let task = hub::with(|hub| hub.current_task()).unwrap_or_else(|| {
        panic!("blocking operations must run in a greenlet of the runtime (inside `runtime::run` or `runtime::spawn`)")
    });
    let seq = task.seq.get() + 1;
    Parker { task, seq }
}

impl Parker {
    pub(crate) fn task(&self) -> &Rc<Task> {
        &self.task
    }

    pub(crate) fn seq(&self) -> u64 {
        self.seq
    }

    /// Parks until unparked (with this parker's sequence number), killed, or
    /// `deadline` passes. `reason` names what is awaited, for deadlock reports.
    pub(crate) fn park(&self, reason: &'static str, deadline: Option<Instant>) -> Wake {
        self.suspend(reason, deadline, false)
    }

    fn suspend(&self, reason: &'static str, deadline: Option<Instant>, requeue: bool) -> Wake {
        let task = &self.task;
        // Refuse first, raise pending expiries second: a greenlet killed while
        // its `timeout` expiry is pending unwinds with it still set, and a
        // destructor that blocks must then fail at once, not panic (a panic
        // escaping a destructor during unwinding aborts the process).
        if std::thread::panicking() {
            return Wake::Refused;
        }
        raise_pending(task);
        let hub = hub::current().expect("a parker exists only inside a hub");
        assert!(
            hub.task_greenlet_is_current(task),
            "blocking operations must run in a greenlet spawned by the runtime, not in a raw greenlet it created"
        );
        task.seq.set(self.seq);
        task.state.set(State::Parked);
        task.waiting_on.set(reason);
        if requeue {
            hub.schedule(task.clone(), Wake::Notified);
        }
        let timer = deadline.map(|at| hub.timers.borrow_mut().insert(at, TimerAction::Unpark(task.clone(), self.seq)));
        let _cancel = scopeguard(|| {
            if let Some(timer) = timer {
                hub.timers.borrow_mut().cancel(timer);
            }
        });
        hub.switch_to_hub();
        drop(_cancel);
        raise_pending(task);
        task.wake.get()
    }
}

/// Raises what must unwind the task at a park point: an expired `timeout`
/// scope, or (for the root greenlet) a deadlock.
fn raise_pending(task: &Task) {
    if let Some(scope) = task.pending_timeout.take() {
        panic::resume_unwind(Box::new(TimeoutUnwind { scope }));
    }
    if let Some(message) = task.deadlock.borrow_mut().take() {
        panic!("{message}");
    }
}

/// Makes a parked greenlet runnable, if it is still parked with `seq`.
/// Never switches.
pub(crate) fn unpark(task: &Rc<Task>, seq: u64) {
    if task.state.get() == State::Parked && task.seq.get() == seq {
        hub::with(|hub| hub.schedule(task.clone(), Wake::Notified));
    }
}

/// Puts the current greenlet at the back of the run queue and lets the others
/// run. Greenlets already runnable run first; timers and I/O readiness are
/// looked at only every so many dispatches, so a greenlet that only yields does
/// not starve I/O but may run again before it.
///
/// # Panics
///
/// Outside a greenlet of the runtime.
pub fn yield_now() {
    parker().suspend("yield_now", None, true);
}
