//! The hub: a single-threaded scheduler for greenlets, after gevent's.
//!
//! [`run`] turns the calling thread into a hub and runs a closure in a
//! greenlet on it. Greenlets spawned with [`spawn`] run concurrently on the
//! same thread: whenever one makes a blocking call ([`sleep`], a channel
//! `recv`, a socket read...), it *parks*, and the hub switches to the next
//! runnable greenlet. Code is written in plain blocking style, with no
//! `async` and no colouring of functions.
//!
//! ```
//! use std::time::Duration;
//! use runtime::{run, spawn, sleep, sync::channel};
//!
//! let total = run(|| {
//!     let (tx, rx) = channel::unbounded();
//!     for i in 0..3u64 {
//!         let tx = tx.clone();
//!         spawn(move || {
//!             sleep(Duration::from_millis(10 * i));
//!             tx.send(i).unwrap();
//!         });
//!     }
//!     drop(tx);
//!     rx.iter().sum::<u64>()
//! });
//! assert_eq!(total, 3);
//! ```
//!
//! # Implementation
//!
//! The hub loop runs on the thread's main greenlet; every spawned greenlet has
//! it as parent. Parking switches to the hub, which resumes runnable
//! greenlets in FIFO order, at most 61 before it polls for I/O readiness
//! (`mio`, edge-triggered) without blocking; when nothing is runnable it
//! yields the CPU and polls again for a while ([`Builder::busy_poll`]), then
//! blocks in the poll until the next timer deadline. Timers live in a hierarchical
//! timing wheel. Other threads reach the hub through a lock-free queue
//! (`crossbeam-queue`) and a `mio::Waker`: [`Handle::spawn`] and the
//! [`blocking`] thread pool's results travel that way; the hub takes a
//! bounded batch off it per turn, and `Handle::spawn` waits while too many
//! spawns are queued. Greenlets never leave their hub's thread, so
//! thread-locals stay sound; what holds a hub's greenlets or descriptors
//! directly ([`Group`], [`Pool`], [`Registration`]) is neither `Send` nor
//! `Sync`, while the [`sync`] types, [`JoinHandle`] and [`Handle`] are, and
//! cross hubs and threads.
//!
//! # Layout
//!
//! Five submodules, each using only the ones under it; nothing calls back up.
//!
//! ```text
//!  task/   spawning and joining: Builder, JoinHandle (join, outcome, join_pool),
//!          Handle (other threads), Group/Pool, scope, JoinSet
//!    │
//!  sync/   Event, AsyncResult, Semaphore, Mutex/Condvar, RLock, channels,
//!          queues, Select, wait
//!    │
//!  park/   the park seam: Parker::park -> Result<Wake, Refused>; wait (the same
//!          from any thread); foreign (never unwinds); time, cancel,
//!          registration, blocking, block_on
//!    │
//!  hub/    the loop (mod.rs) and all it touches: record (Task and its state
//!          machine), unpark (the one wake path), wait_queue, waiting, reactor
//!          (mio), timer (wheel), remote (other threads), thread_pool, monitor
//!          (and sample, its signal handler), counters and metrics (the
//!          hub's counts, and `Metrics`, which reads them), trim
//!    │
//!  util/   slab (one generational slab for tasks, sources, timers, waiters),
//!          guard, report, frames (call stacks as text)
//! ```
//!
//! At the top, beside them: the runtime [`Builder`], the live console,
//! [`dump`], the panic hook, and the public error types. `ARCHITECTURE.md` at the repository's
//! root draws the paths through these layers.
//!
//! Every wake-up is an `Unparker` (a task, the number of one
//! of its parks, and through the task its hub): wait queues, the reactor and
//! timers hold one; the thread pool and other threads hold its `Send`
//! version, which travels through the hub's remote queue.
//!
//! # Glossary
//!
//! - *park*: the current greenlet gives up the CPU until something makes it
//!   runnable again.
//! - *unpark*: make a parked greenlet runnable; it never switches.
//! - [`yield_now`]: put the current greenlet at the back of the run queue.
//! - [`sleep`]: park until a deadline.
//! - *kill*: throw `GreenletExit` into a greenlet at its park point.
//!
//! # Cancellation
//!
//! [`JoinHandle::kill`] (or [`kill_with`](JoinHandle::kill_with), with a
//! payload of one's own), [`timeout`] and a started [`Timeout`] interrupt a
//! greenlet where it is parked by unwinding it, so its destructors run. Code
//! that never parks cannot be interrupted (a CPU-bound loop should call
//! [`yield_now`]). [`JoinHandle::link`] runs code when a greenlet ends, however
//! it ends.
//!
//! Cleanup may park: a greenlet that is unwinding (killed, timed out or
//! panicking) can still block in its destructors, so a `BufWriter` flushes
//! into its socket, a goodbye is sent, a lock is released in turn. A second
//! kill or timeout aimed at a greenlet that is already unwinding does not
//! unwind it again (that would abort the process): the wait it is parked in
//! ends as if its deadline had passed (`TimedOut`, a `Timeout` error,
//! `false`); waits that cannot fail (`Mutex::lock`, `JoinHandle::join`,
//! [`blocking`]) go on waiting.
//!
//! When `run`'s closure returns, the greenlets still alive are killed, and
//! their cleanup gets a grace period ([`Builder::shutdown_grace`], one second
//! by default). Any still alive after it are reported by name and leaked
//! (never resumed, their stacks never freed), so `run` always returns.
//!
//! # Caveats
//!
//! - Rust counts panics per thread, not per greenlet: while a greenlet is
//!   parked in the middle of unwinding, `std::thread::panicking()` is true in
//!   every greenlet of the thread, and a `std::sync::Mutex` guard held across
//!   a park and dropped then gets poisoned. The runtime's own types do not
//!   rely on it.
//! - Deadlock detection assumes that a live [`Handle`] may still send work: a
//!   `Handle` kept alive on the hub's own thread (say, in a local of the root
//!   greenlet) turns a deadlock into a hang. Waits on [`sync`] types may be
//!   ended by other threads, which the hub cannot see: while any greenlet
//!   waits on one and the process has other threads than the hub's own idle
//!   ones (blocking-pool threads without a job, the blocking monitor), a
//!   would-be deadlock is only reported as a warning after 5 seconds, unless
//!   [`Builder::strict_deadlocks`] promises otherwise. With no other thread
//!   (Linux, where the hub can count them), it is reported at once.
//! - Greenlets still alive when `run`'s closure returns are killed in no
//!   particular order; a spawn sent through a `Handle` while the runtime stops
//!   may be dropped unrun, and is then joined as killed. A leaked greenlet
//!   that was parked while unwinding leaves `std::thread::panicking()` true
//!   on that thread; one parked on a [`sync`] type leaves its queue first, so
//!   what it was handed (a lock, a value, a permit) goes to the next waiter.
//! - A greenlet that never parks holds the hub: CPU-heavy loops should call
//!   [`yield_now`] now and then, or run on the thread pool with [`blocking`].
//!   The blocking monitor ([`Builder::max_blocking_time`], on by default
//!   with a limit of 500 ms) names such greenlets and prints their stack.
//!
//! # Tracing
//!
//! Each greenlet runs inside a `greenlet` span (at `debug` level) carrying its
//! id and name; spawn, finish and kill are `trace`/`debug` events and panics
//! `error` events naming the greenlet.

// `unsafe` lives in six small places: `hub/sample.rs` (the blocking
// monitor's signal handler, reading the hub thread's stack), `task/scope.rs` (erasing the lifetime
// of a scoped greenlet's closure, with the argument for it),
// `sync/rlock.rs` (`RLock<T>` is `Sync` for `T: Send`, as std's
// `ReentrantLock`),
// `task/join_pool.rs` (getting back the type of a reused join state),
// `task/outcome.rs` (a greenlet's result, put and taken once without a lock)
// and `hub/affinity.rs` (the
// `sched_setaffinity` system call); everything else is safe code, and the
// lint keeps it so.
#![deny(unsafe_code)]

mod builder;
mod console;
mod dump;
mod error;
mod hub;

mod panic_hook;
mod park;
pub mod sync;
pub mod task;
mod util;

use std::time::Duration;

pub use crate::builder::{Builder, MAX_BLOCKING_TIME_ENV, hub_index};
pub use crate::dump::{Dump, GreenletInfo, dump};
pub use crate::error::{Closed, JoinError};
pub use crate::hub::metrics::{Metrics, metrics};
pub use crate::hub::reactor::Direction;
pub use crate::park::block_on::block_on;
pub use crate::park::blocking::blocking;
pub use crate::park::cancel::{catch_panic, is_cancellation};
pub use crate::park::foreign;
pub use crate::park::registration::Registration;
pub use crate::park::time::{Elapsed, sleep, sleep_until, timeout, timeout_at};
pub use crate::park::timeout::{Timeout, is_timeout};
pub use crate::park::yield_now;
pub use crate::sync::wait_any;
pub use crate::task::all::{joinall, joinall_timeout, killall, try_joinall, wait_idle};
pub use crate::task::group::Group;
pub use crate::task::handle::Handle;
pub use crate::task::join_set::JoinSet;
pub use crate::task::pool::{Pool, PoolFull};
pub use crate::task::scope::{Scope, ScopedJoinHandle, scope};
pub use crate::task::{JoinHandle, KillOnDrop, LinkId};

/// Runs `f` in a greenlet on a new hub on this thread and returns its value.
///
/// Greenlets `f` spawns run concurrently with it. When `f` returns, the
/// greenlets still alive are killed (so their destructors run) before `run`
/// returns. If `f` panics, the panic resumes in the caller after that
/// clean-up.
///
/// ```
/// let answer = runtime::run(|| {
///     let h = runtime::spawn(|| 6 * 7);
///     h.join().unwrap()
/// });
/// assert_eq!(answer, 42);
/// ```
///
/// # Panics
///
/// If called inside a running runtime, and if `f` panics. If `f`'s greenlet
/// parks on something that nothing can ever provide (a deadlock), it panics
/// at that point with a report of what it and every other greenlet wait on
/// (for waits on `sync` types, see [`Builder::strict_deadlocks`]).
#[track_caller]
pub fn run<T: 'static>(f: impl FnOnce() -> T + 'static) -> T {
    Builder::new().run(f)
}

/// Spawns a greenlet running `f` on the current hub and returns a handle to
/// join or kill it.
///
/// The new greenlet first runs when the spawner parks or yields (as in
/// gevent). A panic in it is logged and delivered through
/// [`JoinHandle::join`]; it never takes the hub down.
///
/// ```
/// use std::time::Duration;
///
/// runtime::run(|| {
///     let worker = runtime::spawn(|| {
///         runtime::sleep(Duration::from_millis(5)); // parks only this greenlet
///         "done"
///     });
///     assert!(!worker.is_finished()); // not started: the spawner has not parked yet
///     assert_eq!(worker.join().unwrap(), "done");
///
///     let failing = runtime::spawn(|| -> u32 { panic!("bad input") });
///     assert!(failing.join().unwrap_err().is_panic()); // the hub goes on
/// });
/// ```
///
/// # Panics
///
/// Outside a runtime.
#[track_caller]
pub fn spawn<F, T>(f: F) -> JoinHandle<T>
where
    F: FnOnce() -> T + 'static,
    T: 'static,
{
    task::Builder::new().spawn(f)
}

/// Spawns a greenlet that starts after `delay`.
///
/// ```
/// use std::time::Duration;
///
/// runtime::run(|| {
///     let greeting = runtime::spawn_later(Duration::from_millis(5), || "hello");
///     assert_eq!(greeting.join().unwrap(), "hello");
///     // Killed before its delay has passed, a greenlet never runs.
///     let never = runtime::spawn_later(Duration::from_secs(60), || println!("never printed"));
///     never.kill();
///     assert!(never.join().unwrap_err().is_killed());
/// });
/// ```
///
/// # Panics
///
/// Outside a runtime.
#[track_caller]
pub fn spawn_later<F, T>(delay: Duration, f: F) -> JoinHandle<T>
where
    F: FnOnce() -> T + 'static,
    T: 'static,
{
    task::Builder::new().spawn_later(delay, f)
}

/// The id of the running greenlet.
///
/// ```
/// runtime::run(|| {
///     let child = runtime::spawn(runtime::greenlet_id);
///     let id = child.id();
///     assert_eq!(child.join().unwrap(), id);
///     assert_ne!(runtime::greenlet_id(), id);
/// });
/// ```
pub fn greenlet_id() -> u64 {
    hub::greenlet_id()
}
