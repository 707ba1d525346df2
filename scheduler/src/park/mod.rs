//! The park seam: how a greenlet gives up the CPU until something wakes it.
//!
//! Every blocking operation of the runtime ends in [`Parker::park`] (most
//! through [`Parker::wait_in`], which parks in a wait queue). The protocol is
//! event-listener's: check the condition, register an
//! `Unparker`, check again, park.
//!
//! # What a park returns
//!
//! `Ok(Wake::Notified)` or `Ok(Wake::TimedOut)` (the deadline passed), or
//! `Err(Refused)`. Kills and `timeout` expiries are not return values: they
//! unwind the greenlet from its park point, so its destructors run, and those
//! destructors may park in turn (a `BufWriter` flushing into a socket, a
//! goodbye message, a lock released by a greenlet that is still running).
//! A *second* kill or timeout that arrives while the greenlet is already
//! unwinding cannot unwind it again (a panic escaping a destructor aborts
//! the process), so the park returns `Err(Refused)` instead. Every caller
//! handles it by the same rule: **a refused park ends the wait as if its
//! deadline had passed** (`TimedOut`, `Timeout`, `false`...); a wait that
//! has no such outcome (`Mutex::lock`, `JoinHandle::join`) parks again.
//!
//! # The wake path's invariant
//!
//! A wake-up names one park: the task and the number its *next* park will
//! have, taken when the wake-up is registered ([`Parker::unparker`],
//! `Wakeup::for_greenlet`). So between registering a wake-up and parking for
//! it, the greenlet must not park or yield in any other way: that other
//! park takes the number, a wake-up arriving meanwhile is spent on it, and
//! the park the wake-up was meant for then waits for a wake-up that already
//! came. Register, check the condition again, park, with nothing in between
//! that can switch to the hub (no `sleep`, no lock of this crate, no I/O, no
//! hooked call).
//!
//! One exception cannot be kept out: with the `hooks` feature, a std lock the
//! runtime itself takes or releases in that window (its own `Mutex`es, a
//! `tracing` subscriber's) goes through the hooked `futex`, and a contended
//! one parks the greenlet through a second parker ([`foreign`]). A park whose
//! parker finds its number taken that way returns at once as a spurious
//! wake-up (`Wake::Notified`), and its caller checks its condition again and
//! registers afresh, as after any spurious wake-up; and a hooked call's
//! hand-off yield does not yield while a wake-up is registered
//! ([`foreign::Current::yield_now`]). Any other park between registration
//! and park is a bug, which debug builds report.
//!
//! Outside a runtime there is nobody to park with: [`Parker::current`] panics
//! with the name of the call (at the user's line, through `#[track_caller]`).
//!
//! # Unwinding greenlets and `std::thread::panicking`
//!
//! Rust keeps one panic count per thread, not per greenlet. While a greenlet
//! is parked in the middle of unwinding, `std::thread::panicking()` is true
//! for every greenlet of the thread; a `std::sync::Mutex` guard held across a
//! park and dropped then is poisoned. The hub tracks which task is unwinding
//! itself (kills and timeouts it raised, and a panic seen while no other task
//! is parked unwinding) instead of asking std.
//!
//! # What this module owns
//!
//! Every way a greenlet waits, built on [`Parker`]: [`time`] (sleeps and
//! timeouts) and [`timeout`] (the `Timeout` object, on the same machinery), [`cancel`] (panic isolation that lets kills through),
//! [`registration`] (waiting for a source's readiness on the reactor),
//! [`foreign`] (parking inside a C-ABI frame, which must not unwind),
//! [`blocking`] (running a closure on the thread pool), [`block_on`]
//! (driving a `Future`), and [`wait`] (a wait that works from any thread:
//! a greenlet of any hub parks, a plain thread blocks). These refer to one
//! another (a foreign wait can be interrupted by a timeout, a blocking job
//! parks in a foreign wait); that loop stays inside this module.
//!
//! # What it must not know
//!
//! Tasks' lifecycle (spawning, joining, groups: [`task`](crate::task)) and
//! the `sync` types built on it ([`sync`](crate::sync)). It uses the hub
//! ([`hub`](super::hub)) below it, never the other way round.

pub(crate) mod block_on;
pub(crate) mod blocking;
pub(crate) mod cancel;
pub mod foreign;
pub(crate) mod registration;
pub(crate) mod time;
pub(crate) mod timeout;
pub(crate) mod wait;

use std::cell::{Cell, RefCell};
use std::panic;
use std::rc::Rc;
use std::time::Instant;

use greenlet::Greenlet;

use crate::hub::record::{Pending, Task, Wake};
use crate::hub::unpark::Unparker;
use crate::hub::wait_queue::WaitQueue;
use crate::hub::waiting::WaitingOn;
use crate::hub::{self, Hub, TimerAction};
use crate::park::foreign::Interrupted;

/// A park that did not wait: a kill or timeout arrived while the greenlet was
/// already unwinding. See the module docs for how callers handle it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Refused;

/// The result of a park (a `Result`, so it must be used: ignoring a refusal
/// would turn a wait into a busy loop).
pub(crate) type Parked = Result<Wake, Refused>;

/// How a park ended early.
enum Ended {
    /// A plain park was refused.
    Refused,
    /// A foreign park was interrupted.
    Interrupted(Interrupted),
}

impl Ended {
    /// The interruption of a foreign park (which is never refused).
    fn interrupted(self) -> Interrupted {
        match self {
            Ended::Interrupted(interrupted) => interrupted,
            Ended::Refused => Interrupted::Killed,
        }
    }
}

/// The current greenlet, about to park: waiters register its
/// [`unparker`](Parker::unparker), then call [`park`](Parker::park).
pub(crate) struct Parker {
    hub: Rc<Hub>,
    task: Rc<Task>,
    /// The number of the next park.
    seq: Cell<u64>,
}

impl Parker {
    /// A parker for the current greenlet.
    ///
    /// # Panics
    ///
    /// Outside a greenlet spawned on a hub.
    #[track_caller]
    #[inline]
    pub(crate) fn current() -> Parker {
        match Parker::try_current() {
            Some(parker) => parker,
            None => panic!(
                "blocking operations must run in a greenlet of the runtime (inside `runtime::run` or `runtime::spawn`)"
            ),
        }
    }

    /// A parker for the current greenlet, if it is a task of a hub.
    #[inline(always)] // returned in place (see `Slab::insert`)
    pub(crate) fn try_current() -> Option<Parker> {
        let hub = hub::current()?;
        let task = hub.current_task()?;
        let seq = Cell::new(task.next_seq());
        Some(Parker { hub, task, seq })
    }

    pub(crate) fn task(&self) -> &Rc<Task> {
        &self.task
    }

    pub(crate) fn hub(&self) -> &Rc<Hub> {
        &self.hub
    }

    /// The number of this greenlet's next park, for a wake-up of it.
    pub(crate) fn next_seq(&self) -> u64 {
        self.task.set_registered(self.seq.get());
        self.seq.get()
    }

    /// Wakes this greenlet's next park.
    pub(crate) fn unparker(&self) -> Unparker {
        Unparker::new(self.task.clone(), self.next_seq())
    }

    /// Parks until unparked (through an unparker of this park), killed, or
    /// `deadline` passes. `on` says what is awaited, for `dump` and deadlock
    /// reports.
    #[must_use = "a refused park must end the wait (as a timeout) or park again"]
    #[track_caller]
    #[inline(always)] // one call level less to return through (see `Hub::switch_to_hub`)
    pub(crate) fn park(&self, on: WaitingOn, deadline: Option<Instant>) -> Parked {
        self.suspend_inline(on, deadline, false, false).map_err(|_| Refused)
    }

    /// Like [`park`](Parker::park), for a wait that must not unwind (one made
    /// inside a C-ABI frame, see [`foreign`](crate::foreign)): a pending
    /// kill or timeout is returned as `Err` and stays pending (marked as
    /// reported), before or after the park, instead of being raised. The
    /// caller must be the greenlet of this parker (see
    /// [`Current`](crate::foreign::Current), which checks it).
    pub(crate) fn park_foreign(&self, on: WaitingOn, deadline: Option<Instant>) -> Result<Wake, Interrupted> {
        self.suspend(on, deadline, false, true).map_err(Ended::interrupted)
    }

    /// [`park_foreign`](Parker::park_foreign), inlined into its caller (see
    /// [`suspend_inline`](Parker::suspend_inline)).
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub(crate) fn park_foreign_inline(&self, on: WaitingOn, deadline: Option<Instant>) -> Result<Wake, Interrupted> {
        self.suspend_inline(on, deadline, false, true).map_err(Ended::interrupted)
    }

    /// Like [`yield_now`], without unwinding: see [`park_foreign`](Parker::park_foreign).
    pub(crate) fn yield_foreign(&self) -> Result<(), Interrupted> {
        self.suspend(WaitingOn::Op("yield_now"), None, true, true).map(drop).map_err(Ended::interrupted)
    }

    /// [`yield_foreign`](Parker::yield_foreign), inlined into its caller.
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub(crate) fn yield_foreign_inline(&self) -> Result<(), Interrupted> {
        self.suspend_inline(WaitingOn::Op("yield_now"), None, true, true).map(drop).map_err(Ended::interrupted)
    }

    /// Parks; a pending kill or timeout is raised, or with `foreign`
    /// reported (see [`park_foreign`](Parker::park_foreign)).
    #[track_caller]
    fn suspend(&self, on: WaitingOn, deadline: Option<Instant>, requeue: bool, foreign: bool) -> Result<Wake, Ended> {
        self.suspend_inline(on, deadline, requeue, foreign)
    }

    /// [`suspend`](Parker::suspend), inlined into its caller: one call level
    /// less to return through after the switch (see `Hub::switch_to_hub`),
    /// for `park` and `yield_now`. (Moving the work before and after the
    /// switch into calls of their own, to inline less, measured slower: the
    /// constants the callers pass no longer fold.)
    ///
    /// Forced inline only in optimised builds, as are the parks of the
    /// blocking calls that inline it: unoptimised frames keep every local,
    /// and a park in every caller's frame overflowed a 64 KiB stack that
    /// polls hyper's futures.
    #[track_caller]
    #[cfg_attr(not(debug_assertions), inline(always))]
    fn suspend_inline(
        &self,
        on: WaitingOn,
        deadline: Option<Instant>,
        requeue: bool,
        foreign: bool,
    ) -> Result<Wake, Ended> {
        let task = &self.task;
        assert!(
            greenlet::current_id() == Some(task.id()),
            "blocking operations must run in a greenlet spawned by the runtime, not in a raw greenlet it created"
        );
        self.note_unwinding();
        self.pending(foreign)?;
        // In a cancellation's grace, no park outlasts it.
        let grace_end = self.grace_end();
        let deadline = match (deadline, grace_end) {
            (Some(deadline), Some(end)) => Some(deadline.min(end)),
            (deadline, end) => deadline.or(end),
        };
        let seq = self.seq.get();
        if seq != task.next_seq() {
            // The greenlet parked through another parker since this one
            // handed out its wake-up, which that park may have spent. Only a
            // foreign park may do that (a hooked call inside the runtime's
            // own wait, such as a contended std lock with the hooks on);
            // anything else breaks the wake path's invariant.
            debug_assert!(
                task.parked_foreign_since(seq),
                "greenlet {} parked or yielded between registering a wake-up and parking for it: that wake-up \
                 is lost (see the wake path's invariant in `park`)",
                task.label()
            );
            // A spurious wake-up: the caller checks its condition again and
            // registers a fresh wake-up with this parker, now up to date.
            self.seq.set(task.next_seq());
            return Ok(Wake::Notified);
        }
        self.seq.set(seq + 1);
        if foreign {
            task.note_foreign_park(seq);
        }
        task.park(seq, on, deadline);
        if requeue {
            task.schedule(Wake::Notified);
        }
        let timer = deadline.map(|at| self.hub.arm_timer(at, TimerAction::Unpark(Unparker::new(task.clone(), seq))));
        let unwinding = task.is_unwinding();
        if unwinding {
            self.hub.count_parked_unwinding(true);
        }
        self.hub.switch_to_hub();
        answer_stack_requests();
        if unwinding {
            self.hub.count_parked_unwinding(false);
        }
        // A timer that woke the park (only it wakes with `TimedOut`) is gone
        // from the wheel already: looking it up again would cost a cache
        // miss per sleeper among many.
        if let Some(timer) = timer
            && task.wake() != Wake::TimedOut
        {
            self.hub.cancel_timer(timer);
        }
        task.unpark_done();
        if task.wake() == Wake::TimedOut && grace_end.is_some_and(|end| deadline == Some(end)) {
            // The grace's own timer: it is over, also if the wheel fired a
            // little early.
            task.set_reported(Instant::now());
        }
        self.pending(foreign)?;
        Ok(task.wake())
    }

    /// The end of the grace of a kill or timeout that was reported to this
    /// greenlet as an error, while it lasts.
    #[inline(always)]
    fn grace_end(&self) -> Option<Instant> {
        let end = self.task.grace_end()?;
        (self.task.pending() != Pending::None && Instant::now() < end).then_some(end)
    }

    /// Raises (or with `foreign`, reports) a pending kill, timeout or deadlock.
    /// Inlined down to the common case's two checks: every park makes it
    /// twice.
    #[track_caller]
    #[inline(always)]
    fn pending(&self, foreign: bool) -> Result<(), Ended> {
        if self.task.pending() == Pending::None && self.task.deadlock().borrow().is_none() {
            return Ok(());
        }
        self.pending_slow(foreign)
    }

    #[track_caller]
    #[inline(never)]
    fn pending_slow(&self, foreign: bool) -> Result<(), Ended> {
        if foreign {
            self.report_pending().map_err(Ended::Interrupted)
        } else {
            self.deliver_pending().map_err(|Refused| Ended::Refused)
        }
    }

    /// Keeps the task's "unwinding" mark in step with std's panic count where
    /// that count tells: false means nothing unwinds; true while no other task
    /// is parked unwinding means this one does (a panic of its own).
    #[inline(always)]
    fn note_unwinding(&self) {
        if !std::thread::panicking() {
            self.task.set_unwinding(false);
        } else if self.hub.parked_unwinding() == 0 {
            self.task.set_unwinding(true);
        }
    }

    /// Raises a pending kill, timeout or deadlock, or refuses the park if the
    /// greenlet is already unwinding.
    #[track_caller]
    fn deliver_pending(&self) -> Result<(), Refused> {
        let task = &self.task;
        if task.pending() == Pending::None && task.deadlock().borrow().is_none() {
            return Ok(());
        }
        if self.grace_end().is_some() {
            // Reported already; cleanup may park until the grace ends.
            return Ok(());
        }
        if task.is_unwinding() {
            task.take_pending();
            // A deadlock report stays: the hub sees it and stops waiting for
            // the root greenlet.
            return Err(Refused);
        }
        task.set_unwinding(true);
        match task.take_pending() {
            Pending::Kill => panic::resume_unwind(task.kill_payload()),
            Pending::Timeout(scope) => panic::resume_unwind(timeout::unwind_payload(self.hub.reactor().id(), scope)),
            Pending::None => {
                let report = task.deadlock().borrow_mut().take().expect("checked above");
                panic!("{report}")
            }
        }
    }

    /// Reports a pending kill, timeout or deadlock as an error without raising
    /// it: it stays pending, marked as reported, so that the next park past
    /// the grace (`Builder::cancel_grace`) raises it, or the closure that
    /// returns normally ends as killed or timed out. Reported once: during
    /// the grace that follows, `Ok`; after it, the error again. While the
    /// greenlet is already unwinding, the kill or timeout is dropped instead,
    /// as a refused park does. A deadlock report (which only the root
    /// greenlet gets) counts as a kill here and stays for the next park to
    /// raise.
    pub(crate) fn report_pending(&self) -> Result<(), Interrupted> {
        let task = &self.task;
        let interrupted = match task.pending() {
            Pending::None if task.deadlock().borrow().is_none() => return Ok(()),
            Pending::None => return Err(Interrupted::Killed),
            Pending::Kill => Interrupted::Killed,
            Pending::Timeout(_) => Interrupted::TimedOut,
        };
        if task.is_unwinding() {
            task.take_pending();
        } else if task.grace_end().is_none() {
            task.set_reported(Instant::now() + self.hub.cancel_grace());
        } else if self.grace_end().is_some() {
            return Ok(());
        } else if task.grace_end().is_some_and(|end| end.elapsed() >= hub::RUNAWAY_AFTER) {
            self.park_for_good();
        }
        Err(interrupted)
    }

    /// Parks this greenlet for good: it was killed or timed out inside code
    /// that cannot unwind, and long after its grace it still makes waits
    /// that fail with that error, as a loop that ignores errors and retries
    /// does. Returning the error again would keep it spinning; unwinding is
    /// not allowed here. The hub leaks it instead (its stack stays mapped,
    /// so what it borrows stays valid) and ends it as killed, with a warning
    /// naming it.
    fn park_for_good(&self) -> ! {
        let task = &self.task;
        task.set_doomed();
        let seq = self.seq.get();
        self.seq.set(seq + 1);
        task.park(seq, WaitingOn::Op("nothing: parked for good"), None);
        self.hub.switch_to_hub();
        // The hub never resumes a doomed greenlet; if it ever did, this frame
        // may not unwind: end the process rather than return into the loop.
        std::process::abort()
    }

    /// The kill or timeout that was reported to this greenlet as an error and
    /// is still pending, if any.
    pub(crate) fn reported(&self) -> Option<Interrupted> {
        match self.task.reported() {
            Pending::Kill => Some(Interrupted::Killed),
            Pending::Timeout(_) => Some(Interrupted::TimedOut),
            Pending::None => None,
        }
    }

    /// Parks in a hub-local `queue` (the reactor's, a join's) until its node
    /// is completed, it is woken, or `deadline` passes; the node is reclaimed
    /// in every case, also when the greenlet unwinds. Returns whether the
    /// node was completed, and how the park ended. (The `sync` types, which
    /// other threads reach, wait through `sync::wait` instead.)
    #[track_caller]
    pub(crate) fn wait_in(
        &self,
        queue: &RefCell<WaitQueue<()>>,
        on: WaitingOn,
        deadline: Option<Instant>,
    ) -> (bool, Parked) {
        self.wait_in_with(queue, |parker| parker.park(on, deadline))
    }

    /// [`wait_in`](Parker::wait_in), parking with `park` (a plain or a
    /// foreign park).
    #[track_caller]
    pub(crate) fn wait_in_with<R>(&self, queue: &RefCell<WaitQueue<()>>, park: impl FnOnce(&Parker) -> R) -> (bool, R) {
        struct Reclaim<'a> {
            queue: &'a RefCell<WaitQueue<()>>,
            key: Option<crate::hub::wait_queue::WaitKey>,
        }
        impl Drop for Reclaim<'_> {
            fn drop(&mut self) {
                // Only reached with a key when unwinding out of `park`.
                if let Some(key) = self.key.take() {
                    self.queue.borrow_mut().reclaim(key);
                }
            }
        }
        let key = queue.borrow_mut().push(self.unparker(), ());
        let mut reclaim = Reclaim { queue, key: Some(key) };
        let woke = park(self);
        let key = reclaim.key.take().expect("reclaimed once");
        let (completed, ()) = queue.borrow_mut().reclaim(key);
        (completed, woke)
    }
}

thread_local! {
    /// A request to the greenlet switched to, parked, to record its stack:
    /// the greenlet to switch back to, then the stack it recorded.
    static STACK_REQUEST: RefCell<Option<(Greenlet, Option<Vec<usize>>)>> = const { RefCell::new(None) };
    /// Whether `STACK_REQUEST` holds a request: what every park checks, so
    /// that the check is one load.
    static STACK_REQUESTED: Cell<bool> = const { Cell::new(false) };
}

/// The return addresses of the stack of `task`, parked, innermost first
/// (for [`dump`](crate::dump)); `None` if it is not parked.
///
/// The calling greenlet switches to it with a request; the parked
/// greenlet, still inside its park (see `suspend`), records its stack and
/// switches straight back, so its wait goes on undisturbed: whatever wakes
/// it later finds it parked as before.
pub(crate) fn parked_stack(task: &Task) -> Option<Vec<usize>> {
    if task.state() != crate::hub::record::State::Parked || !task.is_started() {
        return None;
    }
    let greenlet = task.greenlet()?;
    STACK_REQUEST.with(|request| *request.borrow_mut() = Some((greenlet::getcurrent(), None)));
    STACK_REQUESTED.with(|requested| requested.set(true));
    drop(greenlet.switch(Box::new(())));
    STACK_REQUESTED.with(|requested| requested.set(false));
    STACK_REQUEST.with(|request| request.borrow_mut().take()).and_then(|(_, stack)| stack)
}

/// In a park, just resumed: records the stack for each request that
/// resumed this greenlet (see [`parked_stack`]) and switches back to the
/// requester, until the hub resumes it for real.
#[inline(always)]
fn answer_stack_requests() {
    // Every park passes here: only the check is inline.
    if STACK_REQUESTED.with(Cell::get) {
        answer_requested_stacks();
    }
}

/// [`answer_stack_requests`], once a request came.
#[cold]
#[inline(never)]
fn answer_requested_stacks() {
    while STACK_REQUESTED.with(Cell::get) {
        let requester = STACK_REQUEST.with(|request| match &mut *request.borrow_mut() {
            Some((requester, stack @ None)) => {
                *stack = Some(crate::util::frames::capture());
                Some(requester.clone())
            }
            _ => None,
        });
        match requester {
            Some(requester) => drop(requester.switch(Box::new(()))),
            None => return,
        }
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
#[track_caller]
#[cfg_attr(not(debug_assertions), inline(always))] // no call level to return through after the switch (see `Hub::switch_to_hub`)
pub fn yield_now() {
    // Refused only while unwinding, when there is nothing to yield for.
    let _ = Parker::current().suspend_inline(WaitingOn::Op("yield_now"), None, true, false);
}

#[cfg(all(test, debug_assertions))]
mod tests {
    use super::{Parker, yield_now};
    use crate::hub::waiting::WaitingOn;

    #[test]
    #[should_panic(expected = "between registering a wake-up and parking for it")]
    fn a_park_between_registering_and_parking_is_caught() {
        crate::run(|| {
            let parker = Parker::current();
            let _registered = parker.unparker();
            yield_now(); // spends the number the wake-up names
            let _ = parker.park(WaitingOn::Op("test"), None);
        });
    }
}
