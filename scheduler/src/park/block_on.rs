//! [`block_on`]: wait for a `Future` in blocking style.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};

use crate::hub;
use crate::hub::budget;
use crate::hub::remote::Remote;
use crate::hub::waiting::WaitingOn;
use crate::park::Parker;
use crate::util::slab::Key;

/// Drives `future` to completion and returns its output.
///
/// Inside a greenlet, only that greenlet waits: between polls it parks, and
/// the rest of the hub runs. The future's [`Waker`] is `Send + Sync`: it may
/// be woken from any thread, from another hub, or from inside `poll` itself.
/// Outside a runtime, `block_on` blocks the calling thread instead.
///
/// A future can so run on the hub as a greenlet of its own:
/// `runtime::spawn(move || runtime::block_on(future))`. A kill or an expired
/// [`timeout`](crate::timeout) unwinds the greenlet out of `block_on`, which
/// drops the future.
///
/// ```
/// use std::time::Duration;
/// runtime::run(|| {
///     let (tx, rx) = std::sync::mpsc::channel::<std::task::Waker>();
///     // A future that completes once somebody else wakes it.
///     let mut woken = false;
///     let future = std::future::poll_fn(move |cx| {
///         if woken {
///             return std::task::Poll::Ready(42);
///         }
///         woken = true;
///         tx.send(cx.waker().clone()).unwrap();
///         std::task::Poll::Pending
///     });
///     let waker_thread = std::thread::spawn(move || {
///         std::thread::sleep(Duration::from_millis(10));
///         rx.recv().unwrap().wake();
///     });
///     assert_eq!(runtime::block_on(future), 42);
///     waker_thread.join().unwrap();
/// });
/// ```
///
/// # Panics
///
/// If the future panics (the panic propagates).
#[track_caller]
pub fn block_on<F: Future>(future: F) -> F::Output {
    match Parker::try_current() {
        Some(parker) => block_on_greenlet(&parker, future),
        None => block_on_thread(future),
    }
}

/// Wakes a greenlet parked in `block_on`.
struct GreenletWaker {
    remote: Arc<Remote>,
    task: Key,
    /// The park to wake: the greenlet sets it before it parks.
    seq: AtomicU64,
    /// Set by a wake since the greenlet last started polling.
    notified: AtomicBool,
}

impl Wake for GreenletWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        // One wake-up per park is enough. `SeqCst` pairs with the greenlet's
        // store of `seq` and load of `notified`: either it sees this flag and
        // polls again, or this sees the number of the park it goes into.
        if !self.notified.swap(true, Ordering::SeqCst) {
            hub::unpark_anywhere(&self.remote, self.task, self.seq.load(Ordering::SeqCst));
        }
    }
}

#[track_caller]
fn block_on_greenlet<F: Future>(parker: &Parker, future: F) -> F::Output {
    let mut future = pin!(future);
    let task = parker.task().key().expect("a running task is in its hub's table");
    let remote = parker.hub().remote().clone();
    // While the future is pending, anything anywhere may wake it: the hub
    // must not call that a deadlock.
    remote.count_unparker(true);
    let _uncount = crate::util::guard::defer(|| remote.count_unparker(false));
    let inner = Arc::new(GreenletWaker {
        remote: remote.clone(),
        task,
        seq: AtomicU64::new(0),
        notified: AtomicBool::new(false),
    });
    let waker = Waker::from(inner.clone());
    let mut cx = Context::from_waker(&waker);
    loop {
        // A future whose I/O spent the budget (its poll said `Pending` and
        // woke itself) lets the others run before it is polled again.
        if budget::is_spent() {
            budget::reset();
            crate::park::yield_now();
        }
        inner.notified.store(false, Ordering::SeqCst);
        budget::set_in_block_on(true);
        let polled = future.as_mut().poll(&mut cx);
        budget::set_in_block_on(false);
        if let Poll::Ready(output) = polled {
            return output;
        }
        // A parker for this turn's park, made after the poll: the yield
        // above, or the future itself (blocking code inside an async block),
        // may have parked through parkers of their own, after which an
        // older parker's wake-up would be stale.
        let parker = Parker::current();
        inner.seq.store(parker.next_seq(), Ordering::SeqCst);
        if inner.notified.load(Ordering::SeqCst) {
            continue; // woken while polling, or just now
        }
        // Refused (a second kill while unwinding): poll again, as after any
        // spurious wake-up; the future decides when it is done.
        let _ = parker.park(WaitingOn::Op("block_on"), None);
    }
}

/// Wakes a thread blocked in `block_on`.
struct ThreadWaker {
    thread: Thread,
    notified: AtomicBool,
}

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.notified.store(true, Ordering::Release);
        self.thread.unpark();
    }
}

fn block_on_thread<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let inner = Arc::new(ThreadWaker { thread: thread::current(), notified: AtomicBool::new(false) });
    let waker = Waker::from(inner.clone());
    let mut cx = Context::from_waker(&waker);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
        while !inner.notified.swap(false, Ordering::Acquire) {
            thread::park();
        }
    }
}
