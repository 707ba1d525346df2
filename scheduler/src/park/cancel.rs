//! Panic isolation that lets cancellation through: [`catch_panic`] and
//! [`is_cancellation`].
//!
//! Kills and [`timeout`](crate::timeout) expiries travel as unwinding, so a
//! bare `std::panic::catch_unwind` in a worker loop swallows them: the kill
//! never ends the greenlet (and `Pool::join` waits forever), the timeout
//! returns `Ok` after the body ran to completion. `catch_panic` catches real
//! panics only.

use std::any::Any;
use std::panic::{self, AssertUnwindSafe};

use greenlet::GreenletExit;

use crate::park::Parker;
use crate::park::time::TimeoutUnwind;

/// Whether a panic payload is one of the runtime's cancellations (a kill, or
/// the expiry of a [`timeout`](crate::timeout) scope) rather than a real
/// panic. Code that catches unwinding itself should re-raise these with
/// `std::panic::resume_unwind`.
///
/// ```
/// use std::time::Duration;
/// runtime::run(|| {
///     let caught = std::panic::catch_unwind(|| {
///         runtime::timeout(Duration::from_millis(1), || {
///             let payload = std::panic::catch_unwind(|| runtime::sleep(Duration::from_secs(5))).unwrap_err();
///             assert!(runtime::is_cancellation(&*payload));
///             std::panic::resume_unwind(payload);
///         })
///     });
///     assert!(caught.unwrap().is_err(), "the timeout still fired");
/// });
/// ```
pub fn is_cancellation(payload: &(dyn Any + Send)) -> bool {
    payload.is::<GreenletExit>() || payload.is::<TimeoutUnwind>()
}

/// Runs `f`, catching a panic in it, but letting kills and `timeout` expiries
/// through (see [`is_cancellation`]).
///
/// Use it where a thread pool would use `catch_unwind`: to keep one job's
/// panic from ending a worker loop, without making the worker unkillable.
/// As with `catch_unwind`, state `f` touched may be half-updated after a
/// panic.
///
/// ```
/// use std::time::Duration;
/// use runtime::{catch_panic, sleep, spawn};
///
/// runtime::run(|| {
///     let worker = spawn(|| {
///         let mut failed = 0;
///         for job in 0.. {
///             let outcome = catch_panic(|| {
///                 if job == 0 {
///                     panic!("bad job"); // caught: the worker goes on
///                 }
///                 sleep(Duration::from_millis(5)); // a kill here ends the worker
///             });
///             failed += outcome.is_err() as u32;
///         }
///         failed
///     });
///     sleep(Duration::from_millis(20));
///     worker.kill();
///     assert!(worker.join().unwrap_err().is_killed());
/// });
/// ```
///
/// # Errors
///
/// The payload of a panic in `f`.
pub fn catch_panic<T>(f: impl FnOnce() -> T) -> Result<T, Box<dyn Any + Send>> {
    let parker = Parker::try_current();
    let was_unwinding = parker.as_ref().is_some_and(|parker| parker.task().is_unwinding());
    match panic::catch_unwind(AssertUnwindSafe(f)) {
        Ok(value) => Ok(value),
        Err(payload) if is_cancellation(&*payload) => panic::resume_unwind(payload),
        Err(payload) => {
            // The panic is over: the greenlet unwinds no more (unless it was
            // unwinding already when it came here).
            if let Some(parker) = parker {
                parker.task().set_unwinding(was_unwinding);
            }
            Err(payload)
        }
    }
}
