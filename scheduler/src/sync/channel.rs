//! Multi-producer, multi-consumer channels between greenlets, of one hub or
//! of many, and plain threads.
//!
//! The shape is crossbeam's: [`bounded`] and [`unbounded`] return a cloneable
//! [`Sender`] and [`Receiver`]; operations come as blocking, `try_` and
//! `_timeout` variants. Blocking parks only the calling greenlet (a plain
//! thread blocks). `Sender` and `Receiver` are `Send + Sync` when `T: Send`:
//! move or share them across hubs and threads.
//!
//! Waiting greenlets are served in FIFO order, and values are handed over
//! directly: a value sent while receivers wait goes to the first of them, and
//! when a receiver frees room in a full channel the first waiting sender's
//! value moves in. Nothing is lost or duplicated, and nobody is starved.
//! `bounded(0)` is a rendezvous channel: `send` waits for a receiver, and
//! returns once the receiver has taken the value and, when it is a greenlet
//! of the same hub, has run (gevent's `Channel`: sends and receives
//! alternate).
//!
//! When every `Sender` is gone, receivers get the remaining values and then
//! [`RecvError`]; when every `Receiver` is gone, `send` gives the value back
//! in a [`SendError`].
//!
//! ```
//! use runtime::sync::channel;
//!
//! runtime::run(|| {
//!     let (tx, rx) = channel::bounded(1);
//!     let producer = runtime::spawn(move || {
//!         for i in 0..5 {
//!             tx.send(i).unwrap(); // parks while the channel is full
//!         }
//!     });
//!     let got: Vec<i32> = rx.iter().collect();
//!     assert_eq!(got, [0, 1, 2, 3, 4]);
//!     producer.join().unwrap();
//! });
//! ```

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::hub::wait_queue::{WaitKey, WaitQueue};
use crate::hub::waiting::WaitingOn;
use crate::park::Parker;
use crate::park::wait::{self, Waiter, Wakeup};
use crate::sync::select::Watch;

struct Chan<T> {
    state: Mutex<State<T>>,
    /// `None` for unbounded.
    capacity: Option<usize>,
}

/// Everything that changes, behind the channel's lock.
struct State<T> {
    queue: VecDeque<T>,
    senders: usize,
    receivers: usize,
    /// A receiver's node gets `Some(value)` when a sender hands one over.
    recv_waiters: WaitQueue<Option<T>, Wakeup>,
    /// A sender's node holds its value; a receiver takes it out.
    send_waiters: WaitQueue<Option<T>, Wakeup>,
    /// `Select`s waiting for a `recv` that would not block: woken, never
    /// handed anything, so nothing can be lost in them.
    recv_watchers: WaitQueue<(), Wakeup>,
    /// `Select`s waiting for a `send` that would not block.
    send_watchers: WaitQueue<(), Wakeup>,
}

/// Where a sent value went.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Sent {
    Queued,
    /// To a waiting receiver elsewhere (another hub, a plain thread).
    Handed,
    /// To a waiting greenlet of this thread's hub.
    HandedLocally,
}

/// Wakes every `Select` watching for a change (cheap when none does).
fn notify(watchers: &mut WaitQueue<(), Wakeup>) {
    if watchers.len() > 0 {
        watchers.complete_all(|()| {});
    }
}

/// Creates a channel holding at most `capacity` values; `0` makes every
/// `send` wait for a receiver.
///
/// ```
/// use runtime::sync::channel::{self, TrySendError};
///
/// let (tx, rx) = channel::bounded(1);
/// tx.try_send(1).unwrap();
/// assert!(matches!(tx.try_send(2), Err(TrySendError::Full(2))));
/// drop(rx);
/// assert_eq!(tx.send(3).unwrap_err().into_inner(), 3); // every receiver is gone
/// ```
pub fn bounded<T>(capacity: usize) -> (Sender<T>, Receiver<T>) {
    channel(Some(capacity))
}

/// Creates a channel with no limit on the values it holds.
///
/// ```
/// use runtime::sync::channel;
///
/// // A plain thread produces, a greenlet consumes.
/// let (tx, rx) = channel::unbounded();
/// let producer = std::thread::spawn(move || (0..3).for_each(|i| tx.send(i).unwrap()));
/// let got: Vec<i32> = runtime::run(move || rx.iter().collect());
/// producer.join().unwrap();
/// assert_eq!(got, [0, 1, 2]);
/// ```
pub fn unbounded<T>() -> (Sender<T>, Receiver<T>) {
    channel(None)
}

fn channel<T>(capacity: Option<usize>) -> (Sender<T>, Receiver<T>) {
    let chan = Arc::new(Chan {
        state: Mutex::new(State {
            queue: VecDeque::new(),
            senders: 1,
            receivers: 1,
            recv_waiters: WaitQueue::new(),
            send_waiters: WaitQueue::new(),
            recv_watchers: WaitQueue::new(),
            send_watchers: WaitQueue::new(),
        }),
        capacity,
    });
    (Sender { chan: chan.clone() }, Receiver { chan })
}

impl<T> State<T> {
    /// Whether `recv` would not block now.
    fn recv_ready(&self) -> bool {
        !self.queue.is_empty() || self.send_waiters.len() > 0 || self.senders == 0
    }

    /// Whether `send` would not block now.
    fn send_ready(&self, capacity: Option<usize>) -> bool {
        self.receivers == 0
            || self.recv_waiters.len() > 0
            || capacity.is_none_or(|capacity| self.queue.len() < capacity)
    }

    /// Sends without waiting.
    fn try_send(&mut self, value: T, capacity: Option<usize>) -> Result<(), TrySendError<T>> {
        self.offer(value, capacity).map(drop)
    }

    /// Sends without waiting; says whether the value was handed to a
    /// waiting greenlet of this thread's hub.
    fn offer(&mut self, value: T, capacity: Option<usize>) -> Result<Sent, TrySendError<T>> {
        if self.receivers == 0 {
            return Err(TrySendError::Disconnected(value));
        }
        // Only a rendezvous needs to know (see `send`).
        let local = capacity == Some(0) && self.recv_waiters.front_waiter().is_some_and(Wakeup::is_local);
        let mut value = Some(value);
        if self.recv_waiters.complete_front(|slot| *slot = value.take()) {
            return Ok(if local { Sent::HandedLocally } else { Sent::Handed });
        }
        let value = value.expect("not handed over");
        if capacity.is_none_or(|capacity| self.queue.len() < capacity) {
            self.queue.push_back(value);
            notify(&mut self.recv_watchers);
            Ok(Sent::Queued)
        } else {
            Err(TrySendError::Full(value))
        }
    }

    /// Receives without waiting.
    fn try_recv(&mut self) -> Result<T, TryRecvError> {
        let popped = self.queue.pop_front();
        let mut moved = None;
        self.send_waiters.complete_front(|slot| moved = slot.take());
        match (popped, moved) {
            (Some(value), Some(next)) => {
                // A waiting sender's value takes the freed place, in order.
                self.queue.push_back(next);
                Ok(value)
            }
            (Some(value), None) => {
                notify(&mut self.send_watchers); // room freed
                Ok(value)
            }
            (None, Some(value)) => Ok(value),
            (None, None) if self.senders == 0 => Err(TryRecvError::Disconnected),
            (None, None) => Err(TryRecvError::Empty),
        }
    }

    /// A copy of the value `try_recv` would return, leaving it there.
    fn try_peek(&self) -> Result<T, TryRecvError>
    where
        T: Clone,
    {
        let front = self.queue.front().or_else(|| self.send_waiters.front().and_then(Option::as_ref));
        match front {
            Some(value) => Ok(value.clone()),
            None if self.senders == 0 => Err(TryRecvError::Disconnected),
            None => Err(TryRecvError::Empty),
        }
    }

    /// Takes back a value handed to a receiver that unwound (killed, or its
    /// `timeout` expired) before it could return it: the next waiting receiver
    /// gets it, or it goes back to the front of the queue, where it was the
    /// oldest value (a bounded channel may then hold more than its capacity
    /// for a while; senders wait until it is below capacity again).
    fn give_back(&mut self, value: T) {
        let mut value = Some(value);
        if !self.recv_waiters.complete_front(|slot| *slot = value.take()) {
            self.queue.push_front(value.expect("not handed over"));
            notify(&mut self.recv_watchers);
        }
    }
}

impl<T> Chan<T> {
    fn lock(&self) -> wait::Locked<'_, State<T>> {
        wait::lock(&self.state)
    }

    fn len(&self) -> usize {
        self.lock().queue.len()
    }

    fn try_send(&self, value: T) -> Result<(), TrySendError<T>> {
        self.lock().try_send(value, self.capacity)
    }

    #[track_caller]
    fn send(&self, value: T, deadline: Option<Instant>) -> Result<(), SendTimeoutError<T>> {
        let mut value = value;
        let mut waiter = None;
        loop {
            let mut state = self.lock();
            value = match state.offer(value, self.capacity) {
                Ok(Sent::HandedLocally) if self.capacity == Some(0) => {
                    // A rendezvous returns once the receiver has run (as
                    // gevent's `Channel.put` switches to the getter first):
                    // it was queued to run before this greenlet now is.
                    drop(state);
                    if Parker::try_current().is_some() {
                        crate::park::yield_now();
                    }
                    return Ok(());
                }
                Ok(_) => return Ok(()),
                Err(TrySendError::Disconnected(value)) => return Err(SendTimeoutError::Disconnected(value)),
                Err(TrySendError::Full(value)) => value,
            };
            // A waiting sender makes `recv` ready (its value moves over).
            notify(&mut state.recv_watchers);
            let waiter = waiter.get_or_insert_with(Waiter::current);
            let on = WaitingOn::Op("Sender::send");
            let waited = wait::wait_in(
                waiter,
                &self.state,
                state,
                |s| &mut s.send_waiters,
                Some(value),
                on,
                deadline,
                |_, _| {},
            );
            let gave_up = waited.gave_up();
            value = match waited.data {
                None => return Ok(()), // a receiver took it
                Some(value) => value,
            };
            // A refused park ends the wait as a timeout (see `park`).
            if gave_up {
                return match self.lock().try_send(value, self.capacity) {
                    Ok(()) => Ok(()),
                    Err(TrySendError::Disconnected(value)) => Err(SendTimeoutError::Disconnected(value)),
                    Err(TrySendError::Full(value)) => Err(SendTimeoutError::Timeout(value)),
                };
            }
        }
    }

    fn try_recv(&self) -> Result<T, TryRecvError> {
        self.lock().try_recv()
    }

    /// Inlined, so that a blocked `recv` parks in the caller's frame: no
    /// call level to return through after the switch (see
    /// `Hub::switch_to_hub`).
    #[track_caller]
    #[cfg_attr(not(debug_assertions), inline(always))]
    fn recv(&self, deadline: Option<Instant>) -> Result<T, RecvTimeoutError> {
        let mut waiter = None;
        loop {
            let mut state = self.lock();
            match state.try_recv() {
                Ok(value) => return Ok(value),
                Err(TryRecvError::Disconnected) => return Err(RecvTimeoutError::Disconnected),
                Err(TryRecvError::Empty) => {}
            }
            // A waiting receiver makes `send` ready (even on `bounded(0)`).
            notify(&mut state.send_watchers);
            let waiter = waiter.get_or_insert_with(Waiter::current);
            let on = WaitingOn::Op("Receiver::recv");
            let waited = wait::wait_in(
                waiter,
                &self.state,
                state,
                |s| &mut s.recv_waiters,
                None,
                on,
                deadline,
                |s, handed| {
                    if let Some(value) = handed {
                        s.give_back(value);
                    }
                },
            );
            if let Some(value) = waited.data {
                return Ok(value);
            }
            // A refused park ends the wait as a timeout (see `park`).
            if waited.gave_up() {
                return match self.lock().try_recv() {
                    Ok(value) => Ok(value),
                    Err(TryRecvError::Disconnected) => Err(RecvTimeoutError::Disconnected),
                    Err(TryRecvError::Empty) => Err(RecvTimeoutError::Timeout),
                };
            }
        }
    }
}

impl<T: Clone> Chan<T> {
    /// Waits for a value like `recv`, as a watcher (never handed anything),
    /// and returns a copy of it, leaving it in the channel.
    #[track_caller]
    fn peek(&self, deadline: Option<Instant>) -> Result<T, RecvTimeoutError> {
        let mut waiter = None;
        loop {
            let state = self.lock();
            match state.try_peek() {
                Ok(value) => return Ok(value),
                Err(TryRecvError::Disconnected) => return Err(RecvTimeoutError::Disconnected),
                Err(TryRecvError::Empty) => {}
            }
            let waiter = waiter.get_or_insert_with(Waiter::current);
            let on = WaitingOn::Op("Receiver::peek");
            let waited =
                wait::wait_in(waiter, &self.state, state, |s| &mut s.recv_watchers, (), on, deadline, |_, ()| {});
            if waited.gave_up() && deadline.is_some() {
                return self.lock().try_peek().map_err(|err| match err {
                    TryRecvError::Empty => RecvTimeoutError::Timeout,
                    TryRecvError::Disconnected => RecvTimeoutError::Disconnected,
                });
            }
        }
    }
}

/// The sending side of a channel. Clone it for more producers.
pub struct Sender<T> {
    chan: Arc<Chan<T>>,
}

impl<T> Sender<T> {
    /// Sends `value`, parking while the channel is full. On `bounded(0)`,
    /// it returns once a receiver has taken the value; a receiver that was
    /// waiting on the same hub runs before it returns.
    ///
    /// # Errors
    ///
    /// [`SendError`] with the value if every receiver is gone.
    ///
    /// # Panics
    ///
    /// If it has to wait on a hub's thread outside its greenlets (a plain
    /// thread blocks).
    #[track_caller]
    pub fn send(&self, value: T) -> Result<(), SendError<T>> {
        self.chan.send(value, None).map_err(|err| SendError(err.into_inner()))
    }

    /// Sends `value` if there is room now (or a receiver waits).
    ///
    /// # Errors
    ///
    /// [`TrySendError::Full`] or [`TrySendError::Disconnected`], with the value.
    pub fn try_send(&self, value: T) -> Result<(), TrySendError<T>> {
        self.chan.try_send(value)
    }

    /// Sends `value`, giving up after `timeout`.
    ///
    /// # Errors
    ///
    /// [`SendTimeoutError`] with the value.
    #[track_caller]
    pub fn send_timeout(&self, value: T, timeout: Duration) -> Result<(), SendTimeoutError<T>> {
        self.chan.send(value, Some(Instant::now() + timeout))
    }

    /// Sends `value`, giving up at `deadline`.
    ///
    /// # Errors
    ///
    /// [`SendTimeoutError`] with the value.
    #[track_caller]
    pub fn send_deadline(&self, value: T, deadline: Instant) -> Result<(), SendTimeoutError<T>> {
        self.chan.send(value, Some(deadline))
    }

    /// Values in the channel.
    pub fn len(&self) -> usize {
        self.chan.len()
    }

    /// Whether the channel holds no value.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The capacity, `None` if unbounded.
    pub fn capacity(&self) -> Option<usize> {
        self.chan.capacity
    }

    /// Whether every receiver is gone.
    pub fn is_disconnected(&self) -> bool {
        self.chan.lock().receivers == 0
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        self.chan.lock().senders += 1;
        Sender { chan: self.chan.clone() }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        let mut state = self.chan.lock();
        state.senders -= 1;
        if state.senders == 0 {
            // Receivers waiting now find the channel disconnected.
            state.recv_waiters.complete_all(|_| {});
            notify(&mut state.recv_watchers);
        }
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender").field("len", &self.len()).field("capacity", &self.chan.capacity).finish()
    }
}

/// The receiving side of a channel. Clone it for more consumers; each value
/// goes to one receiver.
pub struct Receiver<T> {
    chan: Arc<Chan<T>>,
}

impl<T> Receiver<T> {
    /// Receives a value, parking while the channel is empty.
    ///
    /// # Errors
    ///
    /// [`RecvError`] once the channel is empty and every sender is gone.
    ///
    /// # Panics
    ///
    /// If it has to wait on a hub's thread outside its greenlets (a plain
    /// thread blocks).
    #[track_caller]
    pub fn recv(&self) -> Result<T, RecvError> {
        self.chan.recv(None).map_err(|_| RecvError)
    }

    /// Receives a value if one is there now.
    ///
    /// # Errors
    ///
    /// [`TryRecvError::Empty`] or [`TryRecvError::Disconnected`].
    pub fn try_recv(&self) -> Result<T, TryRecvError> {
        self.chan.try_recv()
    }

    /// Receives a value, giving up after `timeout`.
    ///
    /// # Errors
    ///
    /// [`RecvTimeoutError::Timeout`] or [`RecvTimeoutError::Disconnected`].
    #[track_caller]
    pub fn recv_timeout(&self, timeout: Duration) -> Result<T, RecvTimeoutError> {
        self.chan.recv(Some(Instant::now() + timeout))
    }

    /// Receives a value, giving up at `deadline`.
    ///
    /// # Errors
    ///
    /// [`RecvTimeoutError::Timeout`] or [`RecvTimeoutError::Disconnected`].
    #[track_caller]
    pub fn recv_deadline(&self, deadline: Instant) -> Result<T, RecvTimeoutError> {
        self.chan.recv(Some(deadline))
    }

    /// A blocking iterator over received values; ends when the channel is
    /// empty and every sender is gone.
    pub fn iter(&self) -> Iter<'_, T> {
        Iter { receiver: self }
    }

    /// An iterator over the values available now.
    pub fn try_iter(&self) -> TryIter<'_, T> {
        TryIter { receiver: self }
    }

    /// Values in the channel.
    pub fn len(&self) -> usize {
        self.chan.len()
    }

    /// Whether the channel holds no value.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The capacity, `None` if unbounded.
    pub fn capacity(&self) -> Option<usize> {
        self.chan.capacity
    }

    /// Whether every sender is gone.
    pub fn is_disconnected(&self) -> bool {
        self.chan.lock().senders == 0
    }
}

impl<T: Clone> Receiver<T> {
    /// A copy of the value [`recv`](Receiver::recv) would return next,
    /// waiting while the channel is empty; the value stays in the channel
    /// (gevent's `Queue.peek`). On a rendezvous channel it is the value of
    /// the first waiting sender, which keeps waiting.
    ///
    /// ```
    /// use runtime::sync::channel;
    ///
    /// runtime::run(|| {
    ///     let (tx, rx) = channel::unbounded();
    ///     runtime::spawn(move || tx.send("first").unwrap());
    ///     assert_eq!(rx.peek(), Ok("first")); // parks until it is sent
    ///     assert_eq!(rx.try_peek(), Ok("first"));
    ///     assert_eq!(rx.recv(), Ok("first"));
    /// });
    /// ```
    ///
    /// # Errors
    ///
    /// [`RecvError`] once the channel is empty and every sender is gone.
    ///
    /// # Panics
    ///
    /// If it has to wait on a hub's thread outside its greenlets.
    #[track_caller]
    pub fn peek(&self) -> Result<T, RecvError> {
        // Without a deadline, the only error is `Disconnected`.
        self.chan.peek(None).map_err(|_| RecvError)
    }

    /// A copy of the next value if there is one now (gevent's
    /// `peek_nowait`).
    ///
    /// # Errors
    ///
    /// [`TryRecvError::Empty`] or [`TryRecvError::Disconnected`].
    pub fn try_peek(&self) -> Result<T, TryRecvError> {
        self.chan.lock().try_peek()
    }

    /// Like [`peek`](Receiver::peek), giving up after `timeout`.
    ///
    /// # Errors
    ///
    /// [`RecvTimeoutError::Timeout`] or [`RecvTimeoutError::Disconnected`].
    #[track_caller]
    pub fn peek_timeout(&self, timeout: Duration) -> Result<T, RecvTimeoutError> {
        self.chan.peek(Some(Instant::now() + timeout))
    }
}

impl<T> Clone for Receiver<T> {
    fn clone(&self) -> Self {
        self.chan.lock().receivers += 1;
        Receiver { chan: self.chan.clone() }
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        let mut state = self.chan.lock();
        state.receivers -= 1;
        if state.receivers == 0 {
            // Senders waiting now find the channel disconnected (each still
            // holds its value in its node).
            state.send_waiters.complete_all(|_| {});
            notify(&mut state.send_watchers);
        }
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receiver").field("len", &self.len()).field("capacity", &self.chan.capacity).finish()
    }
}

impl<'a, T> IntoIterator for &'a Receiver<T> {
    type Item = T;
    type IntoIter = Iter<'a, T>;
    fn into_iter(self) -> Iter<'a, T> {
        self.iter()
    }
}

impl<T> IntoIterator for Receiver<T> {
    type Item = T;
    type IntoIter = IntoIter<T>;
    fn into_iter(self) -> IntoIter<T> {
        IntoIter { receiver: self }
    }
}

/// Blocking iterator, from [`Receiver::iter`].
#[derive(Debug)]
pub struct Iter<'a, T> {
    receiver: &'a Receiver<T>,
}

impl<T> Iterator for Iter<'_, T> {
    type Item = T;
    // Inlined, as `recv` is: a blocked `for` loop over the receiver parks in
    // its own frame (no call level to return through after the switch).
    #[cfg_attr(not(debug_assertions), inline(always))]
    fn next(&mut self) -> Option<T> {
        self.receiver.recv().ok()
    }
}

/// Non-blocking iterator, from [`Receiver::try_iter`].
#[derive(Debug)]
pub struct TryIter<'a, T> {
    receiver: &'a Receiver<T>,
}

impl<T> Iterator for TryIter<'_, T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        self.receiver.try_recv().ok()
    }
}

/// Owning blocking iterator, from `Receiver::into_iter`.
#[derive(Debug)]
pub struct IntoIter<T> {
    receiver: Receiver<T>,
}

impl<T> Iterator for IntoIter<T> {
    type Item = T;
    // Inlined, as `recv` is: a blocked `for` loop over the receiver parks in
    // its own frame (no call level to return through after the switch).
    #[cfg_attr(not(debug_assertions), inline(always))]
    fn next(&mut self) -> Option<T> {
        self.receiver.recv().ok()
    }
}

/// Every receiver is gone; the value comes back.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SendError<T>(pub T);

impl<T> SendError<T> {
    /// The value that was not sent.
    pub fn into_inner(self) -> T {
        self.0
    }
}

/// Why [`Sender::try_send`] failed; the value comes back.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum TrySendError<T> {
    /// The channel is full.
    Full(T),
    /// Every receiver is gone.
    Disconnected(T),
}

impl<T> TrySendError<T> {
    /// The value that was not sent.
    pub fn into_inner(self) -> T {
        match self {
            TrySendError::Full(value) | TrySendError::Disconnected(value) => value,
        }
    }

    /// Whether the channel was full.
    pub fn is_full(&self) -> bool {
        matches!(self, TrySendError::Full(_))
    }

    /// Whether every receiver is gone.
    pub fn is_disconnected(&self) -> bool {
        matches!(self, TrySendError::Disconnected(_))
    }
}

/// Why [`Sender::send_timeout`] failed; the value comes back.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum SendTimeoutError<T> {
    /// The channel stayed full until the deadline.
    Timeout(T),
    /// Every receiver is gone.
    Disconnected(T),
}

impl<T> SendTimeoutError<T> {
    /// The value that was not sent.
    pub fn into_inner(self) -> T {
        match self {
            SendTimeoutError::Timeout(value) | SendTimeoutError::Disconnected(value) => value,
        }
    }

    /// Whether the deadline passed.
    pub fn is_timeout(&self) -> bool {
        matches!(self, SendTimeoutError::Timeout(_))
    }

    /// Whether every receiver is gone.
    pub fn is_disconnected(&self) -> bool {
        matches!(self, SendTimeoutError::Disconnected(_))
    }
}

impl<T> From<SendError<T>> for TrySendError<T> {
    fn from(err: SendError<T>) -> Self {
        TrySendError::Disconnected(err.0)
    }
}

impl<T> From<SendError<T>> for SendTimeoutError<T> {
    fn from(err: SendError<T>) -> Self {
        SendTimeoutError::Disconnected(err.0)
    }
}

/// The channel is empty and every sender is gone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecvError;

/// Why [`Receiver::try_recv`] failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TryRecvError {
    /// No value now.
    Empty,
    /// No value, and every sender is gone.
    Disconnected,
}

/// Why [`Receiver::recv_timeout`] failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecvTimeoutError {
    /// No value arrived before the deadline.
    Timeout,
    /// No value, and every sender is gone.
    Disconnected,
}

impl TryRecvError {
    /// Whether the channel was empty.
    pub fn is_empty(&self) -> bool {
        matches!(self, TryRecvError::Empty)
    }

    /// Whether every sender is gone.
    pub fn is_disconnected(&self) -> bool {
        matches!(self, TryRecvError::Disconnected)
    }
}

impl RecvTimeoutError {
    /// Whether the deadline passed.
    pub fn is_timeout(&self) -> bool {
        matches!(self, RecvTimeoutError::Timeout)
    }

    /// Whether every sender is gone.
    pub fn is_disconnected(&self) -> bool {
        matches!(self, RecvTimeoutError::Disconnected)
    }
}

impl From<RecvError> for TryRecvError {
    fn from(_: RecvError) -> Self {
        TryRecvError::Disconnected
    }
}

impl From<RecvError> for RecvTimeoutError {
    fn from(_: RecvError) -> Self {
        RecvTimeoutError::Disconnected
    }
}

impl<T> fmt::Debug for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SendError(..)")
    }
}

impl<T> fmt::Debug for TrySendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrySendError::Full(_) => f.write_str("Full(..)"),
            TrySendError::Disconnected(_) => f.write_str("Disconnected(..)"),
        }
    }
}

impl<T> fmt::Debug for SendTimeoutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendTimeoutError::Timeout(_) => f.write_str("Timeout(..)"),
            SendTimeoutError::Disconnected(_) => f.write_str("Disconnected(..)"),
        }
    }
}

impl<T> fmt::Display for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("sending on a channel whose receivers are all gone")
    }
}

impl<T> fmt::Display for TrySendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrySendError::Full(_) => f.write_str("sending on a full channel"),
            TrySendError::Disconnected(_) => f.write_str("sending on a channel whose receivers are all gone"),
        }
    }
}

impl<T> fmt::Display for SendTimeoutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendTimeoutError::Timeout(_) => f.write_str("timed out waiting to send on a full channel"),
            SendTimeoutError::Disconnected(_) => f.write_str("sending on a channel whose receivers are all gone"),
        }
    }
}

impl fmt::Display for RecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("receiving on an empty channel whose senders are all gone")
    }
}

impl fmt::Display for TryRecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TryRecvError::Empty => f.write_str("receiving on an empty channel"),
            TryRecvError::Disconnected => f.write_str("receiving on an empty channel whose senders are all gone"),
        }
    }
}

impl fmt::Display for RecvTimeoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecvTimeoutError::Timeout => f.write_str("timed out waiting on an empty channel"),
            RecvTimeoutError::Disconnected => f.write_str("receiving on an empty channel whose senders are all gone"),
        }
    }
}

impl<T> std::error::Error for SendError<T> {}
impl<T> std::error::Error for TrySendError<T> {}
impl<T> std::error::Error for SendTimeoutError<T> {}
impl std::error::Error for RecvError {}
impl std::error::Error for TryRecvError {}
impl std::error::Error for RecvTimeoutError {}

impl<T> Watch for Receiver<T> {
    fn is_ready(&self) -> bool {
        self.chan.lock().recv_ready()
    }

    fn watch(&self, parker: &Parker) -> WaitKey {
        self.chan.lock().recv_watchers.push(Wakeup::for_greenlet(parker), ())
    }

    fn unwatch(&self, key: WaitKey) {
        self.chan.lock().recv_watchers.reclaim(key);
    }

    fn identity(&self) -> *const () {
        Arc::as_ptr(&self.chan).cast()
    }
}

impl<T> Watch for Sender<T> {
    fn is_ready(&self) -> bool {
        let capacity = self.chan.capacity;
        self.chan.lock().send_ready(capacity)
    }

    fn watch(&self, parker: &Parker) -> WaitKey {
        self.chan.lock().send_watchers.push(Wakeup::for_greenlet(parker), ())
    }

    fn unwatch(&self, key: WaitKey) {
        self.chan.lock().send_watchers.reclaim(key);
    }

    fn identity(&self) -> *const () {
        Arc::as_ptr(&self.chan).cast()
    }
}
