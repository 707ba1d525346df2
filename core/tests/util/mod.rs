//! Helpers shared by the behavioural test files.
//!
//! Every test file includes this module with `mod util;` and uses only part of
//! it, hence the `dead_code` allowance.
#![allow(dead_code)]

use std::any::{Any, type_name};
use std::cell::{Cell, RefCell};
use std::fmt::{self, Write as _};
use std::panic::{self, AssertUnwindSafe};
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use greenlet::{Greenlet, Value, getcurrent, stack};

/// A panic payload: what `catch_unwind` hands back.
pub type Payload = Box<dyn Any + Send>;

/// A stack size no machine can reserve (4 PiB, beyond any user address
/// space), so that starting a greenlet built with it fails.
pub const UNALLOCATABLE_STACK: usize = 1 << 52;

/// Asserts, when dropped, that this thread has as many live greenlets and
/// stacks in use as when it was created: the equivalent of upstream running
/// every test under a leak checker. Does nothing if the test already failed.
#[must_use = "the check happens when the guard is dropped"]
pub struct LeakGuard {
    greenlets: usize,
    stacks: usize,
}

impl LeakGuard {
    pub fn new() -> LeakGuard {
        // Create the main greenlet now so that it is part of the baseline.
        drop(getcurrent());
        LeakGuard { greenlets: greenlet::live_greenlets(), stacks: stack::stats().in_use }
    }
}

impl Drop for LeakGuard {
    fn drop(&mut self) {
        if std::thread::panicking() {
            return;
        }
        assert_eq!(greenlet::live_greenlets(), self.greenlets, "live greenlets differ from the start of the test");
        assert_eq!(stack::stats().in_use, self.stacks, "stacks in use differ from the start of the test");
    }
}

/// Runs `f` and asserts that every greenlet and stack it created is gone
/// afterwards (including those owned by values `f` dropped on return).
pub fn leak_check<R>(f: impl FnOnce() -> R) -> R {
    let guard = LeakGuard::new();
    let result = f();
    drop(guard);
    result
}

/// Switches to the parent of the current greenlet, Python's
/// `getcurrent().parent.switch(v)`.
///
/// The handle of the current greenlet is a temporary dropped before the
/// switch, so the suspended greenlet does not keep itself reachable.
pub fn suspend(value: Value) -> Value {
    let parent = getcurrent().parent().expect("suspend() called in a main greenlet");
    parent.switch(value)
}

/// A boxed value, for `switch`.
pub fn val<T: Any>(value: T) -> Value {
    Box::new(value)
}

/// The empty value.
pub fn unit() -> Value {
    Box::new(())
}

/// Unboxes a value of the expected type, failing the test otherwise.
#[track_caller]
pub fn take<T: Any>(value: Value) -> T {
    match value.downcast::<T>() {
        Ok(value) => *value,
        Err(_) => panic!("expected a value of type {}", type_name::<T>()),
    }
}

/// `catch_unwind` for closures that need not be unwind safe.
pub fn catch<R>(f: impl FnOnce() -> R) -> Result<R, Payload> {
    panic::catch_unwind(AssertUnwindSafe(f))
}

/// Panics with `payload` without running the panic hook, so expected panics
/// stay quiet.
pub fn raise<T: Any + Send>(payload: T) -> ! {
    panic::resume_unwind(Box::new(payload))
}

/// The payload of a panic that must have happened, downcast to `T`.
#[track_caller]
pub fn panic_payload<T: Any, R>(result: Result<R, Payload>) -> T {
    match result {
        Ok(_) => panic!("expected a panic with a {} payload, got none", type_name::<T>()),
        Err(payload) => match payload.downcast::<T>() {
            Ok(payload) => *payload,
            Err(other) => {
                panic!("expected a {} panic payload, got {:?}", type_name::<T>(), greenlet::panic_message(&*other))
            }
        },
    }
}

/// The message of a panic that must have happened.
#[track_caller]
pub fn panic_text<R>(result: Result<R, Payload>) -> String {
    match result {
        Ok(_) => panic!("expected a panic, got none"),
        Err(payload) => greenlet::panic_message(&*payload),
    }
}

/// The error type the tests throw and raise, in place of Python's
/// `SomeError`, `KeyError`, `IndexError` and so on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TestError(pub &'static str);

/// An ordered, shared event log: clone it into greenlets, push from anywhere,
/// compare at the end.
pub struct Log<T>(Rc<RefCell<Vec<T>>>);

impl<T> Log<T> {
    pub fn new() -> Log<T> {
        Log(Rc::new(RefCell::new(Vec::new())))
    }

    pub fn push(&self, item: T) {
        self.0.borrow_mut().push(item);
    }

    pub fn len(&self) -> usize {
        self.0.borrow().len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.borrow().is_empty()
    }
}

impl<T: Clone> Log<T> {
    pub fn get(&self) -> Vec<T> {
        self.0.borrow().clone()
    }
}

impl<T> Clone for Log<T> {
    fn clone(&self) -> Log<T> {
        Log(self.0.clone())
    }
}

/// Counts how many of its tokens were dropped.
#[derive(Clone, Default)]
pub struct Drops(Rc<Cell<usize>>);

impl Drops {
    pub fn new() -> Drops {
        Drops::default()
    }

    /// A value that bumps the count when dropped.
    pub fn token(&self) -> DropToken {
        DropToken(self.0.clone())
    }

    pub fn count(&self) -> usize {
        self.0.get()
    }
}

/// Bumps its [`Drops`] counter when dropped.
pub struct DropToken(Rc<Cell<usize>>);

impl Drop for DropToken {
    fn drop(&mut self) {
        self.0.set(self.0.get() + 1);
    }
}

/// [`Drops`] for counting across threads.
#[derive(Clone, Default)]
pub struct SyncDrops(Arc<AtomicUsize>);

impl SyncDrops {
    pub fn new() -> SyncDrops {
        SyncDrops::default()
    }

    pub fn token(&self) -> SyncDropToken {
        SyncDropToken(self.0.clone())
    }

    pub fn count(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

/// Bumps its [`SyncDrops`] counter when dropped.
pub struct SyncDropToken(Arc<AtomicUsize>);

impl Drop for SyncDropToken {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// Runs a closure when dropped: a `finally` block.
pub struct Finally<F: FnMut()>(pub F);

impl<F: FnMut()> Drop for Finally<F> {
    fn drop(&mut self) {
        (self.0)();
    }
}

/// A shared, late-bound greenlet handle, for greenlets that must refer to
/// each other (Python's module-level `gr1`/`gr2` globals).
#[derive(Clone, Default)]
pub struct Slot(Rc<RefCell<Option<Greenlet>>>);

impl Slot {
    pub fn new() -> Slot {
        Slot::default()
    }

    pub fn set(&self, greenlet: &Greenlet) {
        let old = self.0.borrow_mut().replace(greenlet.clone());
        drop(old);
    }

    /// A new handle to the greenlet in the slot.
    #[track_caller]
    pub fn get(&self) -> Greenlet {
        self.0.borrow().clone().expect("slot is empty")
    }

    /// Empties the slot, dropping its handle outside of the borrow (the drop
    /// may kill the greenlet, whose unwinding may use the slot).
    pub fn clear(&self) {
        let old = self.0.borrow_mut().take();
        drop(old);
    }
}

/// Uninstalls the tracer when dropped, also when the test fails.
pub struct TraceGuard;

impl Drop for TraceGuard {
    fn drop(&mut self) {
        greenlet::settrace(None);
    }
}

/// One `tracing` event: its level and its fields, formatted.
#[derive(Clone, Debug)]
pub struct CapturedEvent {
    pub level: tracing::Level,
    pub text: String,
}

/// Runs `f` with a `tracing` subscriber that records every event emitted on
/// this thread, and returns them with `f`'s result.
pub fn capture_tracing<R>(f: impl FnOnce() -> R) -> (R, Vec<CapturedEvent>) {
    let events = Arc::new(Mutex::new(Vec::new()));
    let subscriber = Capture { events: events.clone() };
    let result = tracing::subscriber::with_default(subscriber, f);
    let events = std::mem::take(&mut *events.lock().unwrap());
    (result, events)
}

struct Capture {
    events: Arc<Mutex<Vec<CapturedEvent>>>,
}

struct FieldText(String);

impl tracing::field::Visit for FieldText {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn fmt::Debug) {
        let _ = write!(self.0, "{}={:?} ", field.name(), value);
    }
}

impl tracing::Subscriber for Capture {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }

    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }

    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}

    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}

    fn event(&self, event: &tracing::Event<'_>) {
        let mut text = FieldText(String::new());
        event.record(&mut text);
        self.events.lock().unwrap().push(CapturedEvent { level: *event.metadata().level(), text: text.0 });
    }

    fn enter(&self, _: &tracing::span::Id) {}

    fn exit(&self, _: &tracing::span::Id) {}
}
