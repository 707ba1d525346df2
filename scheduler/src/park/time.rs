//! Time: sleeping and timeouts.

use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::time::{Duration, Instant};

use crate::hub::TimerAction;
use crate::hub::record::{Pending, Wake};
use crate::hub::waiting::WaitingOn;
use crate::park::Parker;

/// Parks the current greenlet for at least `duration`.
///
/// `sleep(Duration::ZERO)` still parks until the hub's next turn, after a
/// poll for I/O; use [`yield_now`](crate::yield_now) just to let other
/// runnable greenlets go first.
///
/// ```
/// use std::time::{Duration, Instant};
/// runtime::run(|| {
///     let start = Instant::now();
///     runtime::sleep(Duration::from_millis(20));
///     assert!(start.elapsed() >= Duration::from_millis(20));
/// });
/// ```
///
/// # Panics
///
/// Outside a greenlet of the runtime.
#[track_caller]
pub fn sleep(duration: Duration) {
    sleep_until(Instant::now() + duration);
}

/// Parks the current greenlet until `deadline` has passed.
///
/// Sleeping until deadlines paces work without drift (each `sleep` would
/// add its rounding up to the next millisecond):
///
/// ```
/// use std::time::{Duration, Instant};
///
/// runtime::run(|| {
///     let start = Instant::now();
///     for tick in 1..=3 {
///         runtime::sleep_until(start + tick * Duration::from_millis(5));
///     }
///     assert!(Instant::now() >= start + Duration::from_millis(15)); // never early
/// });
/// ```
///
/// A sleep in a greenlet that is already unwinding (in a destructor during a
/// kill) returns early if a second kill or timeout arrives.
///
/// # Panics
///
/// Outside a greenlet of the runtime.
#[track_caller]
pub fn sleep_until(deadline: Instant) {
    let parker = Parker::current();
    loop {
        match parker.park(WaitingOn::Sleep, Some(deadline)) {
            Ok(Wake::Notified) if Instant::now() < deadline => continue,
            Ok(_) | Err(_) => return,
        }
    }
}

/// The error of [`timeout`]: the deadline passed first.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Elapsed;

impl fmt::Display for Elapsed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("deadline has elapsed")
    }
}

impl std::error::Error for Elapsed {}

/// The payload that unwinds a greenlet out of an expired `timeout` scope.
#[derive(Debug)]
pub(crate) struct TimeoutUnwind {
    pub(crate) scope: u64,
}

/// Runs `f` in the current greenlet, giving up once `duration` has passed.
///
/// This is gevent's `with_timeout`: when the deadline passes, the greenlet
/// unwinds out of `f` at its next park point (any blocking call), running
/// destructors, and `timeout` returns `Err(Elapsed)`. Code that never parks
/// cannot be interrupted. Scopes nest: each catches only its own expiry.
///
/// `f` must let the unwinding through: a `catch_unwind` inside it that
/// swallows the payload defeats the timeout.
///
/// ```
/// use std::time::Duration;
/// use runtime::{sleep, timeout};
///
/// runtime::run(|| {
///     assert_eq!(timeout(Duration::from_millis(50), || 7), Ok(7));
///     let slow = timeout(Duration::from_millis(10), || sleep(Duration::from_secs(10)));
///     assert!(slow.is_err());
/// });
/// ```
///
/// # Errors
///
/// [`Elapsed`] if the deadline passed before `f` returned.
///
/// # Panics
///
/// Outside a greenlet of the runtime. Panics of `f` propagate.
#[track_caller]
pub fn timeout<T>(duration: Duration, f: impl FnOnce() -> T) -> Result<T, Elapsed> {
    timeout_at(Instant::now() + duration, f)
}

/// Like [`timeout`], with a deadline: one deadline for several steps.
///
/// ```
/// use std::time::{Duration, Instant};
///
/// runtime::run(|| {
///     let deadline = Instant::now() + Duration::from_millis(10);
///     assert_eq!(runtime::timeout_at(deadline, || 1), Ok(1));
///     let slow = runtime::timeout_at(deadline, || runtime::sleep(Duration::from_secs(60)));
///     assert_eq!(slow, Err(runtime::Elapsed));
/// });
/// ```
///
/// # Errors
///
/// [`Elapsed`] if the deadline passed before `f` returned.
#[track_caller]
pub fn timeout_at<T>(deadline: Instant, f: impl FnOnce() -> T) -> Result<T, Elapsed> {
    let parker = Parker::current();
    let (hub, task) = (parker.hub(), parker.task());
    let scope = hub.next_scope_id();
    let was_unwinding = task.is_unwinding();
    let timer = hub.arm_timer(deadline, TimerAction::ScopeTimeout(task.clone(), scope));
    let _disarm = crate::util::guard::defer(|| {
        hub.cancel_timer(timer);
        // Fired but not delivered yet: it is moot now.
        if task.pending() == Pending::Timeout(scope) {
            task.take_pending();
        }
    });
    match panic::catch_unwind(AssertUnwindSafe(f)) {
        // This scope's expiry, reported as an error by a foreign wait (which
        // could not unwind) and raised by no park since: `f`'s value may
        // well be made of that error, so the scope ends as timed out.
        Ok(_) if task.reported() == Pending::Timeout(scope) => {
            task.take_pending();
            Err(Elapsed)
        }
        Ok(value) => Ok(value),
        Err(payload) => match payload.downcast::<TimeoutUnwind>() {
            Ok(unwind) if unwind.scope == scope => {
                // The unwinding this scope started is over.
                task.set_unwinding(was_unwinding);
                Err(Elapsed)
            }
            Ok(unwind) => panic::resume_unwind(unwind),
            Err(payload) => panic::resume_unwind(payload),
        },
    }
}
