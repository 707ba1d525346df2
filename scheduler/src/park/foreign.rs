//! Parking from code that must not unwind: inside a C-ABI frame, such as the
//! blocking libc functions that the `runtime` crate's `hooks` feature
//! interposes.
//!
//! Everywhere else a kill or a [`timeout`](crate::timeout) is delivered by
//! unwinding the greenlet from its park point. Unwinding out of an
//! `extern "C"` function aborts the process, so code running in one parks
//! through [`Current`] instead, whose waits *report* a pending kill or
//! timeout as [`Interrupted`] and leave it pending:
//!
//! - the wait returns `Err(Interrupted)`, once, and the caller turns that
//!   into an error return of its own (`ECANCELED`, `ETIMEDOUT`);
//! - for the grace that follows ([`Builder::cancel_grace`](crate::Builder::cancel_grace),
//!   one second by default), the greenlet's parks complete normally, through
//!   [`Current`] or not, but none lasts past the grace's end: its cleanup
//!   works (destructors, closing and reaping, flushing);
//! - after the grace, every wait of the greenlet through [`Current`] fails
//!   the same way at once ([`Current::check`] tells without waiting), so a
//!   caller that retries cannot block again, and the kill or timeout is
//!   raised as usual at the greenlet's next park anywhere else (a runtime
//!   call, outside the C frame), by unwinding;
//! - a greenlet that still waits through [`Current`] a second after the
//!   grace ended is taken for a loop that retries forever: that wait never
//!   returns. The greenlet is parked for good, its stack leaked (so what it
//!   borrows stays valid), its join reports it killed, and a warning names
//!   it;
//! - if the closure returns first (the greenlet's, or that of the expired
//!   `timeout` scope), it ends as killed (`JoinError::is_killed`) or timed out
//!   (`Err(Elapsed)`) all the same, its value dropped.
//!
//! [`Current::cancelled`] tells which was reported while it is pending.
//!
//! A greenlet that is already unwinding (a kill's cleanup) and gets a second
//! kill or timeout sees it as an `Err` of the wait it is in, and only there,
//! as the runtime's own waits end early then (see the crate docs:
//! "cleanup may park").
//!
//! Nothing here panics, so it may be called from an `extern "C"` function.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use runtime_scheduler::foreign::{Current, Interrupted};
//!
//! let outcome = runtime_scheduler::run(|| {
//!     runtime_scheduler::timeout(Duration::from_millis(10), || {
//!         let current = Current::get().expect("a greenlet of the runtime");
//!         // Reported, not raised: this line goes on after the expiry...
//!         let slept = current.sleep_until(Instant::now() + Duration::from_secs(10));
//!         assert_eq!(slept, Err(Interrupted::TimedOut));
//!         // ...once: cleanup may park during the grace that follows.
//!         assert_eq!(current.check(), Ok(()));
//!         assert_eq!(current.cancelled(), Some(Interrupted::TimedOut));
//!         "the value is dropped"
//!     })
//! });
//! assert!(outcome.is_err(), "the timeout scope still ends as timed out");
//! ```

use std::fmt;
use std::sync::Arc;
use std::thread;
use std::time::Instant;

use crate::hub;
use crate::hub::budget;
use crate::hub::reactor::Direction;
use crate::hub::record::Wake;
use crate::hub::remote::Remote;
use crate::hub::waiting::WaitingOn;
use crate::park::Parker;
use crate::park::blocking::PoolJob;
use crate::park::registration::Registration;
use crate::util::slab::Key;

/// Why a [`Current`] wait ended early: a kill or a timeout is pending for
/// the greenlet, and will be raised at its next park outside foreign code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Interrupted {
    /// The greenlet was killed ([`JoinHandle::kill`](crate::JoinHandle::kill),
    /// or the runtime stopping). For the root greenlet, also a deadlock
    /// report waiting to be raised.
    Killed,
    /// A [`timeout`](crate::timeout) scope around the call expired.
    TimedOut,
}

impl fmt::Display for Interrupted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Interrupted::Killed => "the greenlet was killed",
            Interrupted::TimedOut => "a timeout of the greenlet expired",
        })
    }
}

impl std::error::Error for Interrupted {}

/// The running greenlet of this thread's hub, for waits that must not unwind
/// (see the module docs). Not `Send`: it belongs to the greenlet that got it.
///
/// Get it anew for each call that waits: one kept across a park of its
/// greenlet outside it (any other runtime call that waits) is stale, as a
/// wake-up it registered before would be lost; debug builds panic then.
pub struct Current {
    parker: Parker,
}

impl fmt::Debug for Current {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Current").field("greenlet", &self.parker.task().id()).finish()
    }
}

impl Current {
    /// The running greenlet, if it is one of the greenlets of this thread's
    /// hub (`None` on a thread without a hub, in the hub's loop, and in a raw
    /// greenlet created with the `greenlet` crate).
    #[inline]
    pub fn get() -> Option<Current> {
        let parker = Parker::try_current()?;
        (greenlet::current_id() == Some(parker.task().id())).then_some(Current { parker })
    }

    /// The id of this greenlet's hub, unique in the process (the same as
    /// [`hub_id`]).
    pub fn hub_id(&self) -> u64 {
        self.parker.hub().reactor().id()
    }

    /// `Err` if a kill or timeout is pending for this greenlet, without
    /// waiting. It stays pending (see the module docs).
    ///
    /// # Errors
    ///
    /// What is pending.
    pub fn check(&self) -> Result<(), Interrupted> {
        self.parker.report_pending()
    }

    /// The kill or timeout that a wait of this greenlet reported as an error
    /// and that is still pending (to be raised at its next park past the
    /// grace, or to end its closure), if any. `None` once it was raised.
    pub fn cancelled(&self) -> Option<Interrupted> {
        self.parker.reported()
    }

    /// Counts one I/O operation against the greenlet's budget (the one
    /// [`Registration::io`] uses); once it is spent, yields to the other
    /// greenlets first, so one whose operations never block cannot starve
    /// them.
    ///
    /// # Errors
    ///
    /// A pending kill or timeout.
    pub fn cooperate(&self) -> Result<(), Interrupted> {
        if budget::is_spent() {
            budget::reset();
            // The hub polls for I/O and fires timers before it runs more
            // greenlets (see `Hub::end_batch`); a plain yield does not.
            self.parker.hub().end_batch();
            self.parker.yield_foreign()?;
        }
        budget::spend();
        Ok(())
    }

    /// Lets the greenlets of the hub that are ready to run go first, then
    /// returns `Ok(true)`: [`yield_now`](crate::yield_now) without
    /// unwinding. `Ok(false)` without yielding when the greenlet is between
    /// registering a wake-up and parking for it (the runtime's own code
    /// calling into foreign code, say a std lock's release, on its way to
    /// a park), which a yield would lose.
    ///
    /// # Errors
    ///
    /// A pending kill or timeout, before or after the yield.
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub fn yield_now(&self) -> Result<bool, Interrupted> {
        if self.parker.task().is_registered() {
            return Ok(false);
        }
        self.parker.yield_foreign_inline().map(|()| true)
    }

    /// Parks until `registration` may be ready in `direction` (`Ok(true)`:
    /// try the operation; a wake-up can be spurious) or `deadline` passes
    /// (`Ok(false)`). `op` names the wait in [`dump`](crate::dump).
    ///
    /// A registration of another hub (or of one that stopped) has nothing to
    /// wait with: `Ok(false)` at once.
    ///
    /// # Errors
    ///
    /// A pending kill or timeout, before or after the park.
    pub fn wait(
        &self,
        registration: &Registration,
        direction: Direction,
        op: &'static str,
        deadline: Option<Instant>,
    ) -> Result<bool, Interrupted> {
        self.parker.report_pending()?;
        registration.wait_foreign(&self.parker, direction, op, deadline)
    }

    /// Parks until any of `sources` may be ready in its direction (`Ok(true)`)
    /// or `deadline` passes (`Ok(false)`): `poll(2)` on the hub. Returns at
    /// once if one is marked ready already; clear the marks of those known not
    /// to be ready ([`Registration::clear_ready`]) first. `op` names the wait
    /// in [`dump`](crate::dump).
    ///
    /// # Errors
    ///
    /// A pending kill or timeout, before or after the park.
    pub fn wait_any(
        &self,
        sources: &[(&Registration, Direction)],
        op: &'static str,
        deadline: Option<Instant>,
    ) -> Result<bool, Interrupted> {
        self.parker.report_pending()?;
        if sources.iter().any(|(source, direction)| source.is_ready(*direction)) {
            return Ok(true);
        }
        let unparker = self.parker.unparker();
        let keys: Vec<_> =
            sources.iter().map(|(source, direction)| source.watch(*direction, unparker.clone())).collect();
        let _unwatch = crate::util::guard::defer(|| {
            for ((source, direction), key) in sources.iter().zip(keys) {
                source.unwatch(*direction, key);
            }
        });
        let woke = self.parker.park_foreign(WaitingOn::Op(op), deadline)?;
        Ok(woke == Wake::Notified)
    }

    /// A [`Waker`] for this greenlet's next [`park`](Current::park), to hand
    /// to whatever will end it (on any thread).
    pub fn waker(&self) -> Waker {
        let task = self.parker.task().key().expect("a running task is in its hub's table");
        Waker::new(self.parker.hub().remote().clone(), task, self.parker.next_seq())
    }

    /// Parks until woken through a [`Waker`] made for this park
    /// (`Ok(true)`; as any wake-up, it may be spurious) or `deadline` passes
    /// (`Ok(false)`). `op` names the wait in [`dump`](crate::dump).
    ///
    /// # Errors
    ///
    /// A pending kill or timeout, before or after the park.
    pub fn park(&self, op: &'static str, deadline: Option<Instant>) -> Result<bool, Interrupted> {
        // (A pending kill or timeout is reported before the park as well.)
        let woke = self.parker.park_foreign(WaitingOn::Op(op), deadline)?;
        Ok(woke == Wake::Notified)
    }

    /// A [`WakeToken`] for this greenlet's next [`park_for_token`](Current::park_for_token).
    #[inline]
    pub fn wake_token(&self) -> WakeToken {
        let task = self.parker.task().key().expect("a running task is in its hub's table");
        WakeToken { hub: self.parker.hub().reactor().id(), task, seq: self.parker.next_seq() }
    }

    /// [`park`](Current::park), for a wake-up through a [`WakeToken`]: while
    /// it lasts, the hub counts on a wake-up from anywhere, as it does while
    /// a [`Waker`] exists.
    ///
    /// # Errors
    ///
    /// A pending kill or timeout, before or after the park.
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub fn park_for_token(&self, op: &'static str, deadline: Option<Instant>) -> Result<bool, Interrupted> {
        let hub = self.parker.hub();
        hub.count_token_wait(true);
        let woke = self.parker.park_foreign_inline(WaitingOn::Op(op), deadline);
        hub.count_token_wait(false);
        Ok(woke? == Wake::Notified)
    }

    /// Parks until `deadline` has passed.
    ///
    /// # Errors
    ///
    /// A pending kill or timeout, before or after the park.
    pub fn sleep_until(&self, deadline: Instant) -> Result<(), Interrupted> {
        loop {
            match self.parker.park_foreign(WaitingOn::Sleep, Some(deadline))? {
                Wake::Notified if Instant::now() < deadline => continue,
                _ => return Ok(()),
            }
        }
    }

    /// Runs `f` on the hub's blocking thread pool (as
    /// [`blocking`](crate::blocking) does) and parks until it returns, with
    /// its value, or the payload of its panic (not resumed here).
    ///
    /// # Errors
    ///
    /// A pending kill or timeout: the wait ends, `f` still runs to completion
    /// and its value is dropped on the pool thread.
    pub fn blocking<F, T>(&self, f: F) -> Result<thread::Result<T>, Interrupted>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        self.parker.report_pending()?;
        let job = PoolJob::submit(&self.parker, f);
        loop {
            if let Some(outcome) = job.outcome_or_wake(&self.parker) {
                return Ok(outcome);
            }
            if let Err(interrupted) = self.parker.park_foreign(WaitingOn::Op("runtime::blocking"), None) {
                // The job drops its value when it finds nobody waiting.
                job.abandon();
                return Err(interrupted);
            }
        }
    }
}

/// The id of the hub running on this thread (in its loop or in one of its
/// greenlets), unique in the process; `None` on a thread without one.
#[inline]
pub fn hub_id() -> Option<u64> {
    match hub::reactor_id() {
        0 => None,
        id => Some(id),
    }
}

/// Whether this thread is running the panic hook: no greenlet may park then
/// (a panic of another greenlet during the park would abort the process),
/// so code that parks through [`Current`] should block the thread instead.
/// Covers the runtime's hook and the ones it chains to (std's default, or a
/// user's installed before the runtime started); a hook installed later
/// replaces the runtime's and is not seen.
#[inline]
pub fn in_panic_hook() -> bool {
    crate::panic_hook::is_running()
}

/// Removes `registration`'s descriptor from its hub's poller now, while it is
/// still open (dropping the registration later does nothing more), and wakes
/// everything waiting on it, whose next operation then runs (and fails, once
/// the descriptor is closed). For code that closes descriptors it does not
/// own the registration of, such as an interposed `close(2)`: a waiter may
/// still hold the registration when the number is closed and reused. On
/// another thread than the registration's hub's, or once that hub stopped,
/// it does nothing.
pub fn deregister(registration: &Registration) {
    registration.deregister_now();
}

/// Forgets `registration`, whose descriptor was closed already without
/// [`deregister`] (on another thread, say), without telling the poller
/// anything: its number may be another descriptor's by now, which must stay
/// registered. Dropping it later does nothing more. The kernel removed the
/// closed descriptor from the poller itself, unless a duplicate keeps it
/// open, when its events are at worst spurious wake-ups. Greenlets still
/// waiting on it are not woken (nothing can wake them: the descriptor is
/// gone).
pub fn forget_closed(registration: &Registration) {
    registration.forget_closed();
}

/// Wakes one [`Current::park`] of a greenlet, from any thread: directly on
/// the greenlet's own hub thread, through the hub's remote queue from
/// anywhere else. A wake for a park that has ended already (or of a hub
/// that stopped) does nothing.
///
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicBool, Ordering};
/// use runtime_scheduler::foreign::Current;
///
/// runtime_scheduler::run(|| {
///     let current = Current::get().expect("a greenlet of the runtime");
///     let done = Arc::new(AtomicBool::new(false));
///     let waker = current.waker(); // for the next park
///     let thread = std::thread::spawn({
///         let done = done.clone();
///         move || {
///             done.store(true, Ordering::Release);
///             waker.wake();
///         }
///     });
///     // Check after making the waker, park until woken; wake-ups may be
///     // spurious, so check again (with a fresh waker) each time.
///     while !done.load(Ordering::Acquire) {
///         current.park("example", None).unwrap();
///     }
///     thread.join().unwrap();
/// });
/// ```
///
/// While a `Waker` exists, the hub counts on it as on a wake-up from
/// another thread: a park it is made for is not a deadlock.
pub struct Waker {
    remote: Arc<Remote>,
    task: Key,
    seq: u64,
}

impl Waker {
    fn new(remote: Arc<Remote>, task: Key, seq: u64) -> Waker {
        remote.count_unparker(true);
        Waker { remote, task, seq }
    }
}

impl Clone for Waker {
    fn clone(&self) -> Waker {
        Waker::new(self.remote.clone(), self.task, self.seq)
    }
}

impl Drop for Waker {
    fn drop(&mut self) {
        self.remote.count_unparker(false);
    }
}

impl fmt::Debug for Waker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Waker").field("task", &self.task).field("seq", &self.seq).finish()
    }
}

impl Waker {
    /// Wakes the park this waker was made for, if it is still going on.
    pub fn wake(&self) {
        hub::unpark_anywhere(&self.remote, self.task, self.seq);
    }
}

/// A wake-up of one [`Current::park_for_token`] of a greenlet, as plain
/// data: what a table of many waiters keeps (the hooks' `futex`), where a
/// [`Waker`] would cost a reference count and the hub's count of wakers per
/// wait. Woken from the greenlet's own hub thread, it makes the greenlet
/// runnable directly; from anywhere else, through the hub's remote queue. A
/// wake for a park that has ended already (or of a hub that stopped) does
/// nothing.
///
/// The hub counts on a wake-up only while the greenlet is parked in
/// `park_for_token`: a token kept past that park wakes nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WakeToken {
    hub: u64,
    task: Key,
    seq: u64,
}

impl WakeToken {
    /// Wakes the park this token was made for, if it is still going on.
    #[inline]
    pub fn wake(self) {
        hub::unpark_hub(self.hub, self.task, self.seq);
    }

    /// The id of the greenlet's hub (see [`hub_id`]).
    pub fn hub_id(&self) -> u64 {
        self.hub
    }

    /// Whether both tokens wake the same greenlet (for any of its parks).
    pub fn same_greenlet(&self, other: &WakeToken) -> bool {
        self.hub == other.hub && self.task == other.task
    }
}
