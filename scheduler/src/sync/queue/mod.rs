//! gevent's queues ([`JoinableQueue`], [`LifoQueue`], [`PriorityQueue`]):
//! one waiting core, [`Queue`], over a [`Store`] that decides the order.
//!
//! The core serves waiters as the channels do: getters and putters wait in
//! FIFO order, a value put while getters wait goes straight to the first of
//! them, and a get that frees room moves the first waiting putter's value
//! in. A getter that unwinds (killed, timed out) after it was handed a value
//! gives it back, so nothing is lost. It also counts unfinished tasks (for
//! `join`) and knows Python 3.13's `shutdown`.

mod error;
mod joinable;
mod lifo;
mod priority;
mod store;

use std::fmt;
use std::sync::Mutex;
use std::time::Instant;

pub use error::{GetTimeoutError, PutTimeoutError, ShutDown, TaskDoneError, TryGetError, TryPutError};
pub use joinable::JoinableQueue;
pub use lifo::LifoQueue;
pub use priority::PriorityQueue;
use store::Store;

use crate::hub::wait_queue::WaitQueue;
use crate::hub::waiting::WaitingOn;
use crate::park::wait::{self, Waiter, Wakeup};

/// The core of every queue; see the module docs.
pub(crate) struct Queue<T, S> {
    state: Mutex<State<T, S>>,
    /// `None` for unbounded.
    maxsize: Option<usize>,
}

/// Everything that changes, behind the queue's lock.
struct State<T, S> {
    items: S,
    shut_down: bool,
    /// Values put and not yet marked done with `task_done`.
    unfinished: usize,
    /// A getter's node gets `Some(value)` when a putter hands one over.
    getters: WaitQueue<Option<T>, Wakeup>,
    /// A putter's node holds its value; a getter moves it in. A putter
    /// completed with its value still there was turned away by `shutdown`.
    putters: WaitQueue<Option<T>, Wakeup>,
    /// Waiters in `join`, completed when `unfinished` drops to zero.
    joiners: WaitQueue<(), Wakeup>,
}

impl<T, S: Store<T>> State<T, S> {
    fn try_put(&mut self, value: T, maxsize: Option<usize>) -> Result<(), TryPutError<T>> {
        if self.shut_down {
            return Err(TryPutError::ShutDown(value));
        }
        let mut value = Some(value);
        if !self.getters.complete_front(|slot| *slot = value.take()) {
            let value = value.take().expect("not handed over");
            if maxsize.is_some_and(|maxsize| self.items.len() >= maxsize) {
                return Err(TryPutError::Full(value));
            }
            self.items.push(value);
        }
        self.unfinished += 1;
        Ok(())
    }

    fn try_get(&mut self) -> Result<T, TryGetError> {
        let popped = self.items.pop();
        let mut moved = None;
        self.putters.complete_front(|slot| moved = slot.take());
        if moved.is_some() {
            self.unfinished += 1;
        }
        match (popped, moved) {
            (Some(value), Some(next)) => {
                // The first waiting putter's value takes the freed place.
                self.items.push(next);
                Ok(value)
            }
            (Some(value), None) | (None, Some(value)) => Ok(value),
            (None, None) if self.shut_down => Err(TryGetError::ShutDown),
            (None, None) => Err(TryGetError::Empty),
        }
    }

    /// Takes back a value handed to a getter that unwound before it could
    /// return it: the next waiting getter gets it, or it is the next out.
    fn give_back(&mut self, value: T) {
        let mut value = Some(value);
        if !self.getters.complete_front(|slot| *slot = value.take()) {
            self.items.give_back(value.expect("not handed over"));
        }
    }
}

impl<T, S: Store<T>> Queue<T, S> {
    /// A queue of at most `maxsize` values; `None` or `Some(0)` is unbounded,
    /// as in gevent.
    pub(crate) fn new(maxsize: Option<usize>) -> Self {
        let state = State {
            items: S::default(),
            shut_down: false,
            unfinished: 0,
            getters: WaitQueue::new(),
            putters: WaitQueue::new(),
            joiners: WaitQueue::new(),
        };
        Queue { state: Mutex::new(state), maxsize: maxsize.filter(|&maxsize| maxsize > 0) }
    }

    fn lock(&self) -> wait::Locked<'_, State<T, S>> {
        wait::lock(&self.state)
    }

    pub(crate) fn maxsize(&self) -> Option<usize> {
        self.maxsize
    }

    pub(crate) fn len(&self) -> usize {
        self.lock().items.len()
    }

    pub(crate) fn try_put(&self, value: T) -> Result<(), TryPutError<T>> {
        self.lock().try_put(value, self.maxsize)
    }

    /// Puts `value`, waiting while the queue is full, until `deadline`.
    #[track_caller]
    pub(crate) fn put(&self, value: T, deadline: Option<Instant>, on: &'static str) -> Result<(), PutTimeoutError<T>> {
        let mut value = value;
        let mut waiter = None;
        loop {
            let mut state = self.lock();
            value = match state.try_put(value, self.maxsize) {
                Ok(()) => return Ok(()),
                Err(TryPutError::ShutDown(value)) => return Err(PutTimeoutError::ShutDown(value)),
                Err(TryPutError::Full(value)) => value,
            };
            let waiter = waiter.get_or_insert_with(Waiter::current);
            let waited = wait::wait_in(
                waiter,
                &self.state,
                state,
                |s| &mut s.putters,
                Some(value),
                WaitingOn::Op(on),
                deadline,
                |_, _| {},
            );
            let gave_up = waited.gave_up();
            value = match waited.data {
                None => return Ok(()), // a getter moved it in
                Some(value) => value,
            };
            // A refused park ends a wait with a deadline as a timeout, and
            // waits again without one (see `park`).
            if gave_up && deadline.is_some() {
                return match self.lock().try_put(value, self.maxsize) {
                    Ok(()) => Ok(()),
                    Err(TryPutError::ShutDown(value)) => Err(PutTimeoutError::ShutDown(value)),
                    Err(TryPutError::Full(value)) => Err(PutTimeoutError::Timeout(value)),
                };
            }
        }
    }

    pub(crate) fn try_get(&self) -> Result<T, TryGetError> {
        self.lock().try_get()
    }

    /// Gets a value, waiting while the queue is empty, until `deadline`.
    #[track_caller]
    pub(crate) fn get(&self, deadline: Option<Instant>, on: &'static str) -> Result<T, GetTimeoutError> {
        let mut waiter = None;
        loop {
            let mut state = self.lock();
            match state.try_get() {
                Ok(value) => return Ok(value),
                Err(TryGetError::ShutDown) => return Err(GetTimeoutError::ShutDown),
                Err(TryGetError::Empty) => {}
            }
            let waiter = waiter.get_or_insert_with(Waiter::current);
            let waited = wait::wait_in(
                waiter,
                &self.state,
                state,
                |s| &mut s.getters,
                None,
                WaitingOn::Op(on),
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
            if waited.gave_up() && deadline.is_some() {
                return self.lock().try_get().map_err(|err| match err {
                    TryGetError::Empty => GetTimeoutError::Timeout,
                    TryGetError::ShutDown => GetTimeoutError::ShutDown,
                });
            }
        }
    }

    pub(crate) fn unfinished(&self) -> usize {
        self.lock().unfinished
    }

    pub(crate) fn task_done(&self) -> Result<(), TaskDoneError> {
        let mut state = self.lock();
        if state.unfinished == 0 {
            return Err(TaskDoneError);
        }
        state.unfinished -= 1;
        if state.unfinished == 0 {
            state.joiners.complete_all(|()| {});
        }
        Ok(())
    }

    /// Waits until every value put is marked done, until `deadline`;
    /// returns whether it is.
    #[track_caller]
    pub(crate) fn join(&self, deadline: Option<Instant>) -> bool {
        let mut waiter = None;
        loop {
            let state = self.lock();
            if state.unfinished == 0 {
                return true;
            }
            let waiter = waiter.get_or_insert_with(Waiter::current);
            let on = WaitingOn::Op("JoinableQueue::join");
            let waited = wait::wait_in(waiter, &self.state, state, |s| &mut s.joiners, (), on, deadline, |_, ()| {});
            if waited.completed {
                return true;
            }
            if waited.gave_up() && deadline.is_some() {
                return self.lock().unfinished == 0;
            }
        }
    }

    /// Python 3.13's `Queue.shutdown`: puts fail from now on; gets take
    /// what is left and then fail. `immediate` drops what is left (counting
    /// it as done). Every waiter wakes to find out.
    pub(crate) fn shutdown(&self, immediate: bool) {
        let mut state = self.lock();
        state.shut_down = true;
        let dropped = if immediate {
            let dropped = std::mem::take(&mut state.items);
            state.unfinished = state.unfinished.saturating_sub(dropped.len());
            Some(dropped)
        } else {
            None
        };
        state.getters.complete_all(|_| {});
        state.putters.complete_all(|_| {});
        if state.unfinished == 0 {
            state.joiners.complete_all(|()| {});
        }
        drop(state);
        drop(dropped); // the values' `Drop` runs outside the lock
    }

    pub(crate) fn is_shut_down(&self) -> bool {
        self.lock().shut_down
    }
}

impl<T, S: Store<T>> Queue<T, S> {
    /// Formats the queue as the public type `name`.
    pub(crate) fn fmt_as(&self, name: &str, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.lock();
        f.debug_struct(name)
            .field("len", &state.items.len())
            .field("maxsize", &self.maxsize)
            .field("unfinished", &state.unfinished)
            .field("shut_down", &state.shut_down)
            .finish()
    }
}
