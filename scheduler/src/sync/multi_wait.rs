//! [`wait`]: gevent's `wait(objects, timeout, count)` (and `iwait`, whose
//! order it keeps): waiting for several of the runtime's objects at once.

use std::time::{Duration, Instant};

use crate::sync::select::{Select, Waitable};

/// Waits until `count` of `items` are ready (all of them if `None`), or
/// `timeout` passes; returns the indices of those that became ready, in the
/// order they did (those ready at once first, in `items`' order), at most
/// `count` of them (gevent's `wait`, listing `iwait`).
///
/// An item is ready when waiting on it would not block: an
/// [`Event`](crate::sync::Event) is set, an
/// [`AsyncResult`](crate::sync::AsyncResult) has its value, a
/// [`JoinHandle`](crate::JoinHandle) has finished, a
/// [`Semaphore`](crate::sync::Semaphore) has a free permit, a channel's
/// [`Receiver`](crate::sync::channel::Receiver) has a value (or its senders
/// are gone). Waiting consumes nothing.
///
/// ```
/// use std::time::Duration;
/// use runtime::sync::{AsyncResult, Event, wait};
///
/// runtime::run(|| {
///     let (started, result) = (Event::new(), AsyncResult::new());
///     let worker = runtime::spawn(|| 42);
///     result.set("done");
///     // Two of the three, the ready one first; the event never is.
///     assert_eq!(wait(&[&started, &worker, &result], Some(2), None), [2, 1]);
///     assert_eq!(wait(&[&started], None, Some(Duration::from_millis(1))), Vec::<usize>::new());
/// });
/// ```
///
/// # Panics
///
/// If it has to wait outside a greenlet of the runtime.
#[track_caller]
pub fn wait(items: &[&dyn Waitable], count: Option<usize>, timeout: Option<Duration>) -> Vec<usize> {
    let want = count.map_or(items.len(), |count| count.min(items.len()));
    let deadline = timeout.map(|timeout| Instant::now() + timeout);
    let mut ready = Vec::with_capacity(want);
    let mut seen = vec![false; items.len()];
    loop {
        for (index, item) in items.iter().enumerate() {
            if ready.len() == want {
                return ready;
            }
            if !seen[index] && item.as_watch().is_ready() {
                seen[index] = true;
                ready.push(index);
            }
        }
        let now = Instant::now();
        if ready.len() == want || deadline.is_some_and(|deadline| now >= deadline) {
            return ready;
        }
        // Park until one of the others may be ready, then look again.
        let mut select = Select::new();
        for (item, _) in items.iter().zip(&seen).filter(|(_, seen)| !**seen) {
            select.other(item.as_watch());
        }
        // Which one does not matter: they are all looked at again.
        let _ = match deadline {
            Some(deadline) => select.ready_timeout(deadline - now).ok(),
            None => Some(select.ready()),
        };
    }
}
