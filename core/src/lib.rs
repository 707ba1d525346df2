//! Symmetric stackful greenlets for Rust, after Python's `greenlet`.
//!
//! A [`Greenlet`] is a coroutine with a stack of its own. Any greenlet can
//! [`switch`](Greenlet::switch) to any other greenlet of its thread, passing a
//! value; the switch returns when some greenlet switches back. When a
//! greenlet's `run` closure finishes, control and its result go to its
//! [parent](Greenlet::parent), and a panic that escapes it resumes unwinding in
//! the parent. Every thread has a *main* greenlet, the thread's own stack,
//! which is the root of its tree. Greenlets never move between threads.
//!
//! ```
//! use runtime::greenlet::{Greenlet, getcurrent};
//!
//! // A generator: each `switch` into it produces the next square.
//! let squares = Greenlet::new(|_| {
//!     let consumer = getcurrent().parent().unwrap();
//!     for i in 1..=3 {
//!         consumer.switch(Box::new(i * i));
//!     }
//!     Box::new(0)
//! });
//! let got: Vec<i32> = (0..4).map(|_| *squares.switch(Box::new(())).downcast::<i32>().unwrap()).collect();
//! assert_eq!(got, [1, 4, 9, 0]);
//! assert!(squares.is_dead());
//! ```
//!
//! # Implementation
//!
//! Greenlets run on [corosensei] coroutines. corosensei only lets a coroutine
//! suspend back to whoever resumed it, so every switch goes through a
//! dispatcher loop on the thread's own stack: a greenlet switching to another
//! suspends with a request naming the target, and the dispatcher resumes the
//! target. A switch between two greenlets costs two coroutine transitions; a
//! switch to or from the main greenlet costs one.
//!
//! Stacks come from a per-thread pool of guard-paged stacks carved out of
//! large reservations (see [`stack`]), so starting a greenlet makes no system
//! call in steady state, a million parked greenlets fit in a default
//! `vm.max_map_count`, and overflowing a stack reports the greenlet by name
//! instead of corrupting memory.
//!
//! The crate builds for Linux only (any architecture corosensei supports):
//! other systems get a compile error.
//!
//! # Panics and unwinding
//!
//! A panic never crosses a stack boundary by itself: each greenlet catches
//! what escapes its `run` and the dispatcher hands it to the parent, where it
//! resumes unwinding out of the pending `switch`. Killing a greenlet means
//! throwing [`GreenletExit`] into it, which unwinds its stack normally. This
//! requires `panic = "unwind"` (the default).
//!
//! Note that `std::thread::panicking()` is per thread: it is true in every
//! greenlet of the thread while one greenlet is suspended in the middle of
//! unwinding. Lock guards held across a switch belong to the thread, not the
//! greenlet: a greenlet that switches away holding a `std::sync::Mutex` guard
//! deadlocks any other greenlet of the thread that takes the same lock.
//!
//! # Features
//!
//! - `sanitizer`: tells AddressSanitizer about every stack switch (through
//!   corosensei's feature of the same name), for builds with
//!   `-Zsanitizer=address`.
//! - `valgrind`: registers greenlet stacks with Valgrind, so that it follows
//!   switches between them. Outside Valgrind this costs a few instructions
//!   per greenlet start.
//!
//! `scripts/sanitize.sh` runs the tests with both.
//!
//! [corosensei]: https://docs.rs/corosensei

// Stacks are made with Linux's `mmap` and `madvise` flags (among them
// `MADV_GUARD_INSTALL`, whose value is Linux's own), overflows are reported by
// a `SIGSEGV` handler written for Linux, and error messages read `/proc`. Other
// systems are refused here rather than at run time.
#[cfg(not(target_os = "linux"))]
compile_error!("the greenlet crate supports Linux only (its stacks rely on Linux's mmap, madvise and signal handling)");

mod error;
mod greenlet;
mod local;
mod prefetch;
pub mod stack;
mod switch;
mod trace;

pub use crate::error::Error;
pub use crate::greenlet::{Builder, Greenlet, GreenletExit, Value, WeakGreenlet, getcurrent};
pub use crate::local::GreenletLocal;
pub use crate::trace::{TraceEvent, Tracer, is_tracing, settrace};

/// Which public types may cross threads, checked at compile time. Handles to
/// greenlets may not: `Greenlet` and `WeakGreenlet` carry `compile_fail`
/// examples proving they are neither `Send` nor `Sync`.
fn _ensure_send_and_sync() {
    fn is_send_and_sync<T: Send + Sync>() {}
    // Thrown between greenlets as a panic payload, which must be `Send`.
    is_send_and_sync::<GreenletExit>();
    is_send_and_sync::<Error>();
    is_send_and_sync::<TraceEvent>();
    is_send_and_sync::<stack::Stats>();
    is_send_and_sync::<stack::GuardKind>();
    // Declared as statics by `greenlet_local!`, which must be `Sync`, for any
    // value type.
    is_send_and_sync::<GreenletLocal<std::rc::Rc<std::cell::Cell<u32>>>>();
}

/// The id of the running greenlet, without creating a handle to it; `None`
/// before the thread's first greenlet operation.
pub fn current_id() -> Option<u64> {
    switch::current_id()
}

/// The number of greenlets alive on this thread, its main greenlet included
/// once it exists. Useful to check for leaks.
pub fn live_greenlets() -> usize {
    switch::live_count()
}

/// The message of a panic payload, if it is a string.
#[doc(hidden)]
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else if payload.is::<GreenletExit>() {
        "GreenletExit".to_owned()
    } else {
        "<non-string panic payload>".to_owned()
    }
}
