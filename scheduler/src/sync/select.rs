//! Waiting for the first of several operations: [`Select`], the
//! [`select!`](crate::select!) macro and [`wait_any`].
//!
//! The shape is crossbeam-channel's `Select`: add operations (arms), then
//! `select` parks until one of them would not block and returns a
//! [`SelectedOperation`] with its index, which completes it
//! ([`SelectedOperation::recv`], [`SelectedOperation::send`]).
//!
//! A `Select` only *watches*: its waiters are woken when an arm may have
//! become ready and are never handed a value, so a message is never lost in
//! a select that picked another arm, timed out or was killed. The message is
//! taken by the completion, which follows the selection without a park in
//! between (nothing else runs on the hub meanwhile), so it is still there,
//! unless a receiver on another hub or thread took it first: channels cross
//! threads, and then the completion waits as a plain `recv` (or `send`) does.

use std::cell::Cell;
use std::fmt;
use std::marker::PhantomData;
use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

use crate::hub::reactor::Direction;
use crate::hub::record::Wake;
use crate::hub::wait_queue::WaitKey;
use crate::hub::waiting::WaitingOn;
use crate::park::Parker;
use crate::park::registration::Registration;
use crate::park::wait::{self, Wakeup};
use crate::sync::Event;
use crate::sync::channel::{Receiver, RecvError, SendError, Sender};

/// Something a [`Select`] can watch: an operation that either would not block
/// now, or may become possible later, with a wake-up then.
pub(crate) trait Watch {
    /// Whether the operation would complete now without parking.
    fn is_ready(&self) -> bool;
    /// Wakes `parker`'s next park when the operation may have become
    /// possible.
    fn watch(&self, parker: &Parker) -> WaitKey;
    /// Takes back what `watch` registered.
    fn unwatch(&self, key: WaitKey);
    /// Identifies the object, so a completion can check it got the right one.
    fn identity(&self) -> *const ();
}

/// One arm of a select.
enum Arm<'a> {
    Recv(&'a dyn Watch),
    Send(&'a dyn Watch),
    Other(&'a dyn Watch),
    /// Readiness of a descriptor, watched through a registration of a
    /// duplicate of it (the original may be registered with the hub already).
    Fd(Box<FdWatch>),
}

impl Arm<'_> {
    fn watch(&self) -> &dyn Watch {
        match self {
            Arm::Recv(w) | Arm::Send(w) | Arm::Other(w) => *w,
            Arm::Fd(fd) => &**fd,
        }
    }
}

/// Waits for the first of several operations to become ready; see the module
/// docs.
///
/// ```
/// use std::time::Duration;
/// use runtime::sync::{Select, channel};
///
/// runtime::run(|| {
///     let (tx1, rx1) = channel::unbounded::<i32>();
///     let (_tx2, rx2) = channel::unbounded::<&str>();
///     runtime::spawn(move || {
///         runtime::sleep(Duration::from_millis(5));
///         tx1.send(10).unwrap();
///     });
///     let mut select = Select::new();
///     let first = select.recv(&rx1);
///     let second = select.recv(&rx2);
///     let operation = select.select();
///     match operation.index() {
///         i if i == first => assert_eq!(operation.recv(&rx1), Ok(10)),
///         i if i == second => panic!("nothing was sent there: {:?}", operation.recv(&rx2)),
///         _ => unreachable!(),
///     }
/// });
/// ```
#[derive(Default)]
pub struct Select<'a> {
    arms: Vec<Arm<'a>>,
    /// Where the next readiness scan starts, so no arm is favoured.
    start: Cell<usize>,
}

impl<'a> Select<'a> {
    /// A select with no arms.
    pub fn new() -> Select<'a> {
        Select { arms: Vec::new(), start: Cell::new(0) }
    }

    /// Adds a `recv` arm; returns its index.
    pub fn recv<T>(&mut self, receiver: &'a Receiver<T>) -> usize {
        self.push(Arm::Recv(receiver))
    }

    /// Adds a `send` arm; returns its index.
    pub fn send<T>(&mut self, sender: &'a Sender<T>) -> usize {
        self.push(Arm::Send(sender))
    }

    /// Adds an arm that is ready when `event` is set; returns its index.
    pub fn event(&mut self, event: &'a Event) -> usize {
        self.push(Arm::Other(event))
    }

    /// Adds an arm for another of the runtime's types (a `JoinHandle`, see
    /// [`Select::join`]); returns its index.
    pub(crate) fn other(&mut self, watch: &'a dyn Watch) -> usize {
        self.push(Arm::Other(watch))
    }

    /// Adds an arm that is ready when `fd` is readable (or hung up, or
    /// failed); returns its index.
    ///
    /// The descriptor is duplicated and the duplicate registered with the
    /// hub, so it may be one of the runtime's own sockets. Its readiness is
    /// learnt from the hub's poller: a descriptor that is readable already
    /// counts as ready once the hub has polled (`try_select` does not see it
    /// before that).
    ///
    /// # Panics
    ///
    /// Outside a runtime, or if the descriptor cannot be duplicated or
    /// registered (out of descriptors).
    #[track_caller]
    pub fn readable(&mut self, fd: &'a impl AsFd) -> usize {
        let arm = FdWatch::new(fd.as_fd(), Direction::Read);
        self.push(Arm::Fd(Box::new(arm)))
    }

    /// Adds an arm that is ready when `fd` is writable; see
    /// [`readable`](Select::readable).
    ///
    /// # Panics
    ///
    /// As [`readable`](Select::readable).
    #[track_caller]
    pub fn writable(&mut self, fd: &'a impl AsFd) -> usize {
        let arm = FdWatch::new(fd.as_fd(), Direction::Write);
        self.push(Arm::Fd(Box::new(arm)))
    }

    fn push(&mut self, arm: Arm<'a>) -> usize {
        self.arms.push(arm);
        self.arms.len() - 1
    }

    /// Selects an arm that is ready now, without parking.
    ///
    /// # Errors
    ///
    /// [`TrySelectError`] if none is.
    pub fn try_select(&mut self) -> Result<SelectedOperation<'a>, TrySelectError> {
        self.try_ready().map(|index| self.operation(index)).map_err(|_| TrySelectError)
    }

    /// Parks until an arm is ready and selects it.
    ///
    /// # Panics
    ///
    /// If the select has no arms (it would wait forever), and outside a
    /// greenlet of the runtime.
    #[track_caller]
    pub fn select(&mut self) -> SelectedOperation<'a> {
        assert!(!self.arms.is_empty(), "`Select::select` with no operations would wait forever");
        let index = self.wait(None).expect("a wait without a deadline ends ready");
        self.operation(index)
    }

    /// Like [`select`](Select::select), giving up after `timeout`.
    ///
    /// # Errors
    ///
    /// [`SelectTimeoutError`] if no arm became ready in time.
    #[track_caller]
    pub fn select_timeout(&mut self, timeout: Duration) -> Result<SelectedOperation<'a>, SelectTimeoutError> {
        self.select_deadline(Instant::now() + timeout)
    }

    /// Like [`select`](Select::select), giving up at `deadline`.
    ///
    /// # Errors
    ///
    /// [`SelectTimeoutError`] if no arm became ready in time.
    #[track_caller]
    pub fn select_deadline(&mut self, deadline: Instant) -> Result<SelectedOperation<'a>, SelectTimeoutError> {
        self.wait(Some(deadline)).map(|index| self.operation(index)).map_err(|_| SelectTimeoutError)
    }

    /// Parks until an arm is ready and returns its index, without completing
    /// anything (the readiness may be gone again by the time the operation
    /// is tried: it is a hint, as in crossbeam).
    ///
    /// # Panics
    ///
    /// As [`select`](Select::select).
    #[track_caller]
    pub fn ready(&mut self) -> usize {
        assert!(!self.arms.is_empty(), "`Select::ready` with no operations would wait forever");
        self.wait(None).expect("a wait without a deadline ends ready")
    }

    /// Like [`ready`](Select::ready), giving up after `timeout`.
    ///
    /// # Errors
    ///
    /// [`ReadyTimeoutError`] if no arm became ready in time.
    #[track_caller]
    pub fn ready_timeout(&mut self, timeout: Duration) -> Result<usize, ReadyTimeoutError> {
        self.wait(Some(Instant::now() + timeout)).map_err(|_| ReadyTimeoutError)
    }

    /// The index of an arm that is ready now, if any.
    ///
    /// # Errors
    ///
    /// [`TryReadyError`] if none is.
    pub fn try_ready(&mut self) -> Result<usize, TryReadyError> {
        self.ready_now()
    }

    fn ready_now(&self) -> Result<usize, TryReadyError> {
        let n = self.arms.len();
        let start = self.start.get();
        for offset in 0..n {
            let index = (start + offset) % n;
            if self.arms[index].watch().is_ready() {
                self.start.set((index + 1) % n);
                return Ok(index);
            }
        }
        Err(TryReadyError)
    }

    /// Parks until an arm is ready or `deadline` passes.
    #[track_caller]
    fn wait(&mut self, deadline: Option<Instant>) -> Result<usize, TryReadyError> {
        loop {
            if let Ok(index) = self.try_ready() {
                return Ok(index);
            }
            if deadline.is_some_and(|deadline| Instant::now() >= deadline) {
                return Err(TryReadyError);
            }
            let parker = Parker::current();
            let arms = &self.arms;
            let keys: Vec<WaitKey> = arms.iter().map(|arm| arm.watch().watch(&parker)).collect();
            let _unwatch = crate::util::guard::defer(|| {
                for (arm, key) in arms.iter().zip(&keys) {
                    arm.watch().unwatch(*key);
                }
            });
            // Another thread may have made an arm ready between the look
            // above and the watch: it found no watcher to wake, so look again
            // now that every arm is watched.
            if let Ok(index) = self.ready_now() {
                drop(_unwatch);
                return Ok(index);
            }
            match parker.park(WaitingOn::Op("Select::select"), deadline) {
                Ok(Wake::Notified) => {}
                // A refused park ends the wait as a timeout (see `park`).
                Ok(Wake::TimedOut) | Err(_) => {
                    drop(_unwatch);
                    return self.try_ready();
                }
            }
        }
    }

    fn operation(&self, index: usize) -> SelectedOperation<'a> {
        let (kind, identity) = match &self.arms[index] {
            Arm::Recv(w) => (Kind::Recv, w.identity()),
            Arm::Send(w) => (Kind::Send, w.identity()),
            Arm::Other(w) => (Kind::Other, w.identity()),
            Arm::Fd(fd) => (Kind::Other, fd.identity()),
        };
        SelectedOperation { index, kind, identity, _marker: PhantomData }
    }
}

impl fmt::Debug for Select<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Select").field("arms", &self.arms.len()).finish()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Recv,
    Send,
    Other,
}

/// The arm a [`Select`] picked. Complete a `recv` or `send` arm with
/// [`recv`](SelectedOperation::recv) or [`send`](SelectedOperation::send)
/// right away; other arms need no completion.
#[must_use = "complete the selected operation with `recv` or `send`"]
pub struct SelectedOperation<'a> {
    index: usize,
    kind: Kind,
    identity: *const (),
    _marker: PhantomData<&'a ()>,
}

impl SelectedOperation<'_> {
    /// The index of the arm, as returned when it was added.
    pub fn index(&self) -> usize {
        self.index
    }

    /// Completes a `recv` arm: receives from `receiver` (at once, since it was
    /// ready, unless another hub or thread took the value meanwhile; then it
    /// waits as [`Receiver::recv`] does).
    ///
    /// # Errors
    ///
    /// [`RecvError`] if the channel is empty and disconnected.
    ///
    /// # Panics
    ///
    /// If the arm was not a `recv` on this receiver's channel.
    #[track_caller]
    pub fn recv<T>(self, receiver: &Receiver<T>) -> Result<T, RecvError> {
        assert!(
            self.kind == Kind::Recv && self.identity == Watch::identity(receiver),
            "the selected operation is not a `recv` on this channel"
        );
        receiver.recv()
    }

    /// Completes a `send` arm: sends `value` on `sender` (at once, since it
    /// was ready, unless another hub or thread filled the room meanwhile; then
    /// it waits as [`Sender::send`] does).
    ///
    /// # Errors
    ///
    /// [`SendError`] with the value if every receiver is gone.
    ///
    /// # Panics
    ///
    /// If the arm was not a `send` on this sender's channel.
    #[track_caller]
    pub fn send<T>(self, sender: &Sender<T>, value: T) -> Result<(), SendError<T>> {
        assert!(
            self.kind == Kind::Send && self.identity == Watch::identity(sender),
            "the selected operation is not a `send` on this channel"
        );
        sender.send(value)
    }
}

impl fmt::Debug for SelectedOperation<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SelectedOperation").field("index", &self.index).finish()
    }
}

/// Readiness of a duplicated descriptor, for the `readable`/`writable` arms.
struct FdWatch {
    /// Declared before `fd`, so it is deregistered before the close.
    registration: Registration,
    direction: Direction,
    _fd: OwnedFd,
}

impl FdWatch {
    #[track_caller]
    fn new(fd: std::os::fd::BorrowedFd<'_>, direction: Direction) -> FdWatch {
        let fd = fd.try_clone_to_owned().unwrap_or_else(|err| panic!("cannot duplicate a descriptor to watch: {err}"));
        let registration = Registration::new(&fd).unwrap_or_else(|err| panic!("cannot watch a descriptor: {err}"));
        // Registering reports the current state as an event on the hub's
        // next poll; nothing is assumed before.
        registration.clear_ready(direction);
        FdWatch { registration, direction, _fd: fd }
    }
}

impl Watch for FdWatch {
    fn is_ready(&self) -> bool {
        self.registration.is_ready(self.direction)
    }

    fn watch(&self, parker: &Parker) -> WaitKey {
        self.registration.watch(self.direction, parker.unparker())
    }

    fn unwatch(&self, key: WaitKey) {
        self.registration.unwatch(self.direction, key);
    }

    fn identity(&self) -> *const () {
        std::ptr::from_ref(self).cast()
    }
}

impl Watch for Event {
    fn is_ready(&self) -> bool {
        self.is_set()
    }

    fn watch(&self, parker: &Parker) -> WaitKey {
        wait::lock(self.waiters()).push(Wakeup::for_greenlet(parker), ())
    }

    fn unwatch(&self, key: WaitKey) {
        wait::lock(self.waiters()).reclaim(key);
    }

    fn identity(&self) -> *const () {
        std::ptr::from_ref(self).cast()
    }
}

/// Something [`wait_any`] can wait for: an [`Event`] (set), a
/// [`JoinHandle`](crate::JoinHandle) (finished), a [`Receiver`] (a `recv` would not block) or a
/// [`Sender`] (a `send` would not block).
pub trait Waitable: private::Sealed {
    /// The runtime's view of it (the trait is sealed: only this crate's
    /// types implement it).
    #[doc(hidden)]
    #[allow(private_interfaces)]
    fn as_watch(&self) -> &dyn Watch;
}

pub(crate) mod private {
    pub trait Sealed {}
}

/// Implements [`Waitable`] for types that implement [`Watch`].
macro_rules! waitable {
    ($($ty:ty),*) => {$(
        impl<T> private::Sealed for $ty {}
        impl<T> Waitable for $ty {
            #[allow(private_interfaces)]
            fn as_watch(&self) -> &dyn Watch {
                self
            }
        }
    )*};
}

waitable!(Receiver<T>, Sender<T>);

impl private::Sealed for Event {}

impl Waitable for Event {
    #[allow(private_interfaces)]
    fn as_watch(&self) -> &dyn Watch {
        self
    }
}

/// Parks until one of `items` is ready, for at most `timeout` (gevent's
/// `wait` with `count=1`); returns its index, or `None` on timeout.
///
/// ```
/// use std::time::Duration;
/// use runtime::sync::{Event, wait_any};
///
/// runtime::run(|| {
///     let (a, b) = (Event::new(), Event::new());
///     let worker = runtime::spawn(|| 1);
///     assert_eq!(wait_any(&[&a, &b, &worker], Some(Duration::from_secs(1))), Some(2));
///     assert_eq!(wait_any(&[&a, &b], Some(Duration::from_millis(5))), None);
/// });
/// ```
///
/// # Panics
///
/// Outside a greenlet of the runtime; with no items and no timeout.
#[track_caller]
pub fn wait_any(items: &[&dyn Waitable], timeout: Option<Duration>) -> Option<usize> {
    let mut select = Select::new();
    for item in items {
        select.push(Arm::Other(item.as_watch()));
    }
    match timeout {
        Some(timeout) => select.ready_timeout(timeout).ok(),
        None => Some(select.ready()),
    }
}

/// The error of [`Select::try_select`]: no arm is ready.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TrySelectError;

/// The error of [`Select::select_timeout`]: no arm became ready in time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SelectTimeoutError;

/// The error of [`Select::try_ready`]: no arm is ready.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TryReadyError;

/// The error of [`Select::ready_timeout`]: no arm became ready in time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadyTimeoutError;

macro_rules! error_display {
    ($($ty:ident => $text:literal),*) => {$(
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str($text)
            }
        }
        impl std::error::Error for $ty {}
    )*};
}

error_display!(
    TrySelectError => "no operation is ready",
    SelectTimeoutError => "timed out waiting for an operation to become ready",
    TryReadyError => "no operation is ready",
    ReadyTimeoutError => "timed out waiting for an operation to become ready"
);
