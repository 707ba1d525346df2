//! Helpers shared by the hub's behavioural test files.
//!
//! Every test file includes this module with `mod util;` and uses only part of
//! it, hence the `dead_code` allowance.
#![allow(dead_code)]

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::panic::{self, AssertUnwindSafe};
use std::rc::Rc;
use std::time::Duration;

/// A panic payload: what `catch_unwind` hands back.
pub type Payload = Box<dyn Any + Send>;

/// `n` milliseconds.
pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// The message of a panic payload (`"<non-string panic payload>"` for others).
pub fn message(payload: &Payload) -> String {
    greenlet::panic_message(&**payload)
}

/// Runs `f`, returning the message of the panic it raised, or `None` if it
/// returned.
pub fn panic_of<T>(f: impl FnOnce() -> T) -> Option<String> {
    panic::catch_unwind(AssertUnwindSafe(f)).err().map(|payload| message(&payload))
}

/// Runs `f` on a fresh hub (`runtime_scheduler::run`), catching a panic that
/// comes out of `run`: `Err` holds its message.
pub fn run_catching<T: 'static>(f: impl FnOnce() -> T + 'static) -> Result<T, String> {
    panic::catch_unwind(AssertUnwindSafe(|| runtime_scheduler::run(f))).map_err(|payload| message(&payload))
}

/// Asserts that `haystack` contains every needle.
#[track_caller]
pub fn assert_contains(haystack: &str, needles: &[&str]) {
    for needle in needles {
        assert!(haystack.contains(needle), "expected {needle:?} in:\n{haystack}");
    }
}

/// An ordered record of what greenlets did, shared between them.
#[derive(Debug)]
pub struct Log<T>(Rc<RefCell<Vec<T>>>);

impl<T> Clone for Log<T> {
    fn clone(&self) -> Self {
        Log(self.0.clone())
    }
}

impl<T> Default for Log<T> {
    fn default() -> Self {
        Log(Rc::new(RefCell::new(Vec::new())))
    }
}

impl<T: Clone> Log<T> {
    pub fn new() -> Log<T> {
        Log::default()
    }

    pub fn push(&self, item: T) {
        self.0.borrow_mut().push(item);
    }

    pub fn get(&self) -> Vec<T> {
        self.0.borrow().clone()
    }

    pub fn len(&self) -> usize {
        self.0.borrow().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A shared counter that greenlets bump.
#[derive(Clone, Debug, Default)]
pub struct Counter(Rc<Cell<usize>>);

impl Counter {
    pub fn new() -> Counter {
        Counter::default()
    }

    pub fn bump(&self) {
        self.0.set(self.0.get() + 1);
    }

    pub fn get(&self) -> usize {
        self.0.get()
    }
}

/// Counts how many of its guards were dropped: proves destructors ran.
#[derive(Clone, Debug, Default)]
pub struct Drops(Counter);

impl Drops {
    pub fn new() -> Drops {
        Drops::default()
    }

    /// A guard that bumps the count when dropped.
    pub fn guard(&self) -> DropGuard {
        DropGuard(self.0.clone())
    }

    /// Guards dropped so far.
    pub fn count(&self) -> usize {
        self.0.get()
    }
}

/// See [`Drops::guard`].
#[derive(Debug)]
pub struct DropGuard(Counter);

impl Drop for DropGuard {
    fn drop(&mut self) {
        self.0.bump();
    }
}

#[allow(unused_imports)] // each test file uses some of them
pub use runtime_testkit::{Capture, is_child, output_text, rerun_in_child};
