//! Many greenlets at once: [`joinall`], [`joinall_timeout`],
//! [`try_joinall`], [`killall`], and [`wait_idle`] (gevent's `wait()`:
//! until nothing else is left).

use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::error::JoinError;
use crate::park::Parker;
use crate::park::time::{Elapsed, sleep_until};
use crate::sync::{Waitable, wait_any};
use crate::task::{JoinHandle, wait_finished};

/// How often [`wait_idle`] looks again while only another thread can still
/// send the hub work (a live `Handle`): nothing tells it when that ends.
const IDLE_RECHECK: Duration = Duration::from_millis(1);

/// Joins every handle, in order, and returns their results.
///
/// ```
/// runtime::run(|| {
///     let handles: Vec<_> = (1..=3).map(|i| runtime::spawn(move || i * 10)).collect();
///     let results: Vec<i32> = runtime::joinall(handles).into_iter().map(Result::unwrap).collect();
///     assert_eq!(results, [10, 20, 30]);
/// });
/// ```
pub fn joinall<T: 'static>(handles: impl IntoIterator<Item = JoinHandle<T>>) -> Vec<Result<T, JoinError>> {
    handles.into_iter().map(JoinHandle::join).collect()
}

/// Like [`joinall`], giving up once `timeout` has passed (gevent's
/// `joinall(timeout=)`): one deadline for all of them. Returns the result of
/// each in order, `None` for those still running then (their handles are
/// dropped: they run on, detached).
///
/// ```
/// use std::time::Duration;
/// use runtime::{sleep, spawn};
/// runtime::run(|| {
///     let handles = [spawn(|| 1), spawn(|| { sleep(Duration::from_secs(60)); 2 })];
///     let results = runtime::joinall_timeout(handles, Duration::from_millis(10));
///     assert!(matches!(results[..], [Some(Ok(1)), None]));
/// });
/// ```
///
/// # Panics
///
/// On a hub's thread outside its greenlets; if a greenlet joins itself.
#[track_caller]
pub fn joinall_timeout<T: 'static>(
    handles: impl IntoIterator<Item = JoinHandle<T>>,
    timeout: Duration,
) -> Vec<Option<Result<T, JoinError>>> {
    let deadline = Instant::now() + timeout;
    handles.into_iter().map(|handle| handle.wait(Some(deadline)).then(|| handle.join())).collect()
}

/// Joins every handle and returns their values in order, or the first error
/// as soon as it happens (gevent's `joinall(raise_error=True)`): the first
/// greenlet to panic or be killed, in the order they finish, while the
/// others run on (detached).
///
/// ```
/// use std::time::Duration;
/// use runtime::{sleep, spawn};
/// runtime::run(|| {
///     assert_eq!(runtime::try_joinall([spawn(|| 1), spawn(|| 2)]).unwrap(), [1, 2]);
///     let slow = spawn(|| { sleep(Duration::from_secs(60)); 1 });
///     let failing = spawn(|| -> i32 { panic!("failed") });
///     let error = runtime::try_joinall([slow, failing]).unwrap_err();
///     assert!(error.is_panic(), "did not wait for the slow one");
/// });
/// ```
///
/// # Errors
///
/// The [`JoinError`] of the first greenlet to fail.
///
/// # Panics
///
/// Outside a greenlet of the runtime; if a greenlet joins itself.
#[track_caller]
pub fn try_joinall<T: 'static>(handles: impl IntoIterator<Item = JoinHandle<T>>) -> Result<Vec<T>, JoinError> {
    let mut pending: Vec<(usize, JoinHandle<T>)> = handles.into_iter().enumerate().collect();
    let mut values: Vec<Option<T>> = std::iter::repeat_with(|| None).take(pending.len()).collect();
    loop {
        // Take every finished one, in the order given.
        let mut index = 0;
        while index < pending.len() {
            if pending[index].1.is_finished() {
                let (slot, handle) = pending.remove(index);
                values[slot] = Some(handle.join()?);
            } else {
                index += 1;
            }
        }
        if pending.is_empty() {
            return Ok(values.into_iter().map(|value| value.expect("every one joined")).collect());
        }
        let waitables: Vec<&dyn Waitable> = pending.iter().map(|(_, handle)| handle as &dyn Waitable).collect();
        wait_any(&waitables, None);
    }
}

/// Kills every greenlet of `handles` (gevent's `killall`), then with `block`
/// waits until they have finished unwinding, for at most `timeout`.
///
/// ```
/// use std::time::Duration;
/// use runtime::{sleep, spawn};
/// runtime::run(|| {
///     let a = spawn(|| sleep(Duration::from_secs(60)));
///     let b = spawn(|| sleep(Duration::from_secs(60)));
///     runtime::killall(&[&a, &b], true, Some(Duration::from_secs(5))).unwrap();
///     assert!(a.is_finished() && b.is_finished());
/// });
/// ```
///
/// # Errors
///
/// [`Elapsed`] if, with `block`, some were still running after `timeout`
/// (their cleanup parks for longer, or they caught the kill).
///
/// # Panics
///
/// With `block`, on a hub's thread outside its greenlets; if one of the
/// greenlets is the caller, it unwinds at once (as
/// [`kill`](JoinHandle::kill) does).
#[track_caller]
pub fn killall<T>(handles: &[&JoinHandle<T>], block: bool, timeout: Option<Duration>) -> Result<(), Elapsed> {
    for handle in handles {
        handle.kill();
    }
    if !block {
        return Ok(());
    }
    let deadline = timeout.map(|timeout| Instant::now() + timeout);
    if handles.iter().all(|handle| handle.wait(deadline)) { Ok(()) } else { Err(Elapsed) }
}

/// Parks until nothing else is left on this hub (gevent's `gevent.wait()`
/// without objects): no other greenlet, so no timer, I/O wait or blocking
/// job of one, and no live [`Handle`](crate::Handle) that could still send
/// work; for at most `timeout`. Returns whether that happened (`false` on
/// timeout).
///
/// Two greenlets both in `wait_idle` wait for each other: call it from one
/// greenlet, usually the main one.
///
/// ```
/// use std::time::Duration;
/// runtime::run(|| {
///     runtime::spawn_later(Duration::from_millis(5), || ());
///     assert!(runtime::wait_idle(None));
///     let far = runtime::spawn_later(Duration::from_secs(60), || ());
///     assert!(!runtime::wait_idle(Some(Duration::from_millis(5))));
///     far.kill();
///     assert!(runtime::wait_idle(Some(Duration::ZERO)));
/// });
/// ```
///
/// # Panics
///
/// Outside a greenlet of the runtime.
#[track_caller]
pub fn wait_idle(timeout: Option<Duration>) -> bool {
    let deadline = timeout.map(|timeout| Instant::now() + timeout);
    let parker = Parker::current();
    let (hub, me) = (parker.hub().clone(), parker.task().clone());
    drop(parker);
    loop {
        let others: Vec<_> = hub.tasks().into_iter().filter(|task| !Rc::ptr_eq(task, &me) && !task.is_done()).collect();
        if others.is_empty() {
            if !hub.remote().may_send() {
                return true;
            }
            let now = Instant::now();
            if deadline.is_some_and(|deadline| now >= deadline) {
                return false;
            }
            let next = now + IDLE_RECHECK;
            sleep_until(deadline.map_or(next, |deadline| deadline.min(next)));
            continue;
        }
        for task in others {
            if !wait_finished(&task, deadline) {
                return false;
            }
        }
    }
}
