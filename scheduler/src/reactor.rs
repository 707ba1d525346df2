//! I/O readiness: the hub's `mio::Poll` and the greenlets waiting on it.
//!
//! Sources are registered once, for both directions, edge-triggered. mio's
//! rules apply: an event means "may be ready now" (events can be spurious),
//! and after an event the operation must be retried until it would block
//! before another event for that direction is guaranteed. So each source
//! remembers, per direction, whether it may be ready; an operation is tried
//! while it may be, and only an operation that would block (or a short read)
//! clears the flag and parks. Readiness that arrives while nobody waits is
//! kept in the flag, so no wake-up is lost.
//!
//! [`Registration`] is the low-level interface the blocking-style sockets are
//! built on; it is public so that any `mio::event::Source` can be integrated.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::rc::Rc;
use std::time::{Duration, Instant};

use mio::event::Source;
use mio::{Events, Interest, Poll, Token};

use crate::hub;
use crate::park::{self, Wake};
use crate::task::{Task, scopeguard};
use crate::wait_queue::WaitQueue;

/// Token of the hub's `mio::Waker`.
const WAKER: Token = Token(usize::MAX);

/// Consecutive I/O operations a greenlet may complete without parking before
/// it is made to yield, so that a greenlet whose peer always has data ready
/// cannot starve the others (tokio's cooperative budget is 128 too).
const IO_BUDGET: u32 = 128;

/// A direction of I/O.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Waiting until reading (or accepting) would not block.
    Read,
    /// Waiting until writing (or connecting) would not block.
    Write,
}

impl Direction {
    fn index(self) -> usize {
        match self {
            Direction::Read => 0,
            Direction::Write => 1,
        }
    }
}

/// Per-source state, in the reactor's table.
#[derive(Debug, Default)]
struct SourceState {
    /// Bumped when the slot is reused, so stale events are ignored.
    generation: u32,
    live: bool,
    /// Per direction: readiness may be pending.
    ready: [bool; 2],
    waiters: [WaitQueue<()>; 2],
}

/// The hub's reactor.
pub(crate) struct Reactor {
    poll: RefCell<Poll>,
    events: RefCell<Events>,
    sources: RefCell<Vec<SourceState>>,
    free: RefCell<Vec<usize>>,
    /// Greenlets parked waiting for readiness.
    waiters: Cell<usize>,
}

impl Reactor {
    pub(crate) fn new() -> io::Result<Reactor> {
        Ok(Reactor {
            poll: RefCell::new(Poll::new()?),
            events: RefCell::new(Events::with_capacity(1024)),
            sources: RefCell::new(Vec::new()),
            free: RefCell::new(Vec::new()),
            waiters: Cell::new(0),
        })
    }

    pub(crate) fn waker(&self) -> io::Result<mio::Waker> {
        mio::Waker::new(self.poll.borrow().registry(), WAKER)
    }

    pub(crate) fn waiters(&self) -> usize {
        self.waiters.get()
    }

    /// Polls for events, waiting at most `timeout`; returns the greenlets to
    /// unpark.
    pub(crate) fn poll(&self, timeout: Option<Duration>) -> Vec<(Rc<Task>, u64)> {
        let mut events = self.events.borrow_mut();
        if let Err(err) = self.poll.borrow_mut().poll(&mut events, timeout) {
            if err.kind() != io::ErrorKind::Interrupted {
                tracing::error!("polling for I/O failed: {err}");
            }
            return Vec::new();
        }
        let mut woken = Vec::new();
        let mut sources = self.sources.borrow_mut();
        for event in events.iter() {
            if event.token() == WAKER {
                continue;
            }
            let (index, generation) = split(event.token());
            let Some(source) = sources.get_mut(index).filter(|s| s.live && s.generation == generation) else {
                continue;
            };
            let closed_or_error = event.is_error();
            if event.is_readable() || event.is_read_closed() || closed_or_error {
                source.ready[0] = true;
                woken.extend(source.waiters[0].complete_all(|()| {}));
            }
            if event.is_writable() || event.is_write_closed() || closed_or_error {
                source.ready[1] = true;
                woken.extend(source.waiters[1].complete_all(|()| {}));
            }
        }
        woken
    }
}

fn split(token: Token) -> (usize, u32) {
    (token.0 & 0xffff_ffff, (token.0 >> 32) as u32)
}

/// A source registered with the current hub's poller.
///
/// Create it with [`Registration::new`], call [`Registration::deregister`]
/// with the same source before closing it, then drop the registration. Use
/// [`Registration::io`] to run non-blocking operations in blocking style.
/// A registration belongs to its hub's thread.
pub struct Registration {
    token: Token,
    _not_send: PhantomData<Rc<()>>,
}

impl fmt::Debug for Registration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registration").field("token", &self.token.0).finish()
    }
}

impl Registration {
    /// Registers `source` (which must be in non-blocking mode) for both
    /// directions.
    ///
    /// # Errors
    ///
    /// What `mio::Registry::register` returns, e.g. `AlreadyExists` if the
    /// file descriptor is already registered.
    ///
    /// # Panics
    ///
    /// Outside a runtime.
    pub fn new(source: &mut impl Source) -> io::Result<Registration> {
        hub::with(|hub| {
            let reactor = &hub.reactor;
            let index = match reactor.free.borrow_mut().pop() {
                Some(index) => index,
                None => {
                    let mut sources = reactor.sources.borrow_mut();
                    sources.push(SourceState::default());
                    sources.len() - 1
                }
            };
            let mut sources = reactor.sources.borrow_mut();
            let state = &mut sources[index];
            state.generation = state.generation.wrapping_add(1);
            let token = Token(index | ((state.generation as usize) << 32));
            if let Err(err) =
                reactor.poll.borrow().registry().register(source, token, Interest::READABLE | Interest::WRITABLE)
            {
                reactor.free.borrow_mut().push(index);
                return Err(err);
            }
            state.live = true;
            // Assume ready: the first operation is simply tried.
            state.ready = [true, true];
            Ok(Registration { token, _not_send: PhantomData })
        })
    }

    /// Removes `source` from the poller. Call it before the source is closed.
    ///
    /// # Errors
    ///
    /// What `mio::Registry::deregister` returns.
    pub fn deregister(&self, source: &mut impl Source) -> io::Result<()> {
        hub::with(|hub| hub.reactor.poll.borrow().registry().deregister(source))
    }

    fn with_state<R>(&self, f: impl FnOnce(&mut SourceState) -> R) -> R {
        hub::with(|hub| {
            let mut sources = hub.reactor.sources.borrow_mut();
            f(&mut sources[split(self.token).0])
        })
    }

    /// Whether readiness may be pending in `direction`.
    pub fn is_ready(&self, direction: Direction) -> bool {
        self.with_state(|state| state.ready[direction.index()])
    }

    /// Records that an operation in `direction` would block (or drained the
    /// source), so the next operation waits for a readiness event first.
    pub fn clear_ready(&self, direction: Direction) {
        self.with_state(|state| state.ready[direction.index()] = false);
    }

    /// Parks the current greenlet until the source may be ready in
    /// `direction`.
    ///
    /// # Errors
    ///
    /// `TimedOut` if `deadline` passes first; `Other` if the greenlet is
    /// unwinding (blocking is refused then).
    pub fn wait(&self, direction: Direction, deadline: Option<Instant>) -> io::Result<()> {
        loop {
            if self.is_ready(direction) {
                return Ok(());
            }
            let parker = park::parker();
            let key = self.with_state(|state| {
                state.waiters[direction.index()].push(parker.task().clone(), parker.seq(), ())
            });
            hub::with(|hub| hub.reactor.waiters.set(hub.reactor.waiters.get() + 1));
            let reclaim = scopeguard(|| {
                hub::with(|hub| {
                    hub.reactor.waiters.set(hub.reactor.waiters.get() - 1);
                    hub.reactor.sources.borrow_mut()[split(self.token).0].waiters[direction.index()].reclaim(key);
                });
            });
            let reason = match direction {
                Direction::Read => "a socket to become readable",
                Direction::Write => "a socket to become writable",
            };
            let wake = parker.park(reason, deadline);
            drop(reclaim);
            match wake {
                Wake::Notified => continue,
                Wake::TimedOut => return Err(io::Error::new(io::ErrorKind::TimedOut, "timed out")),
                Wake::Refused => {
                    return Err(io::Error::other("cannot block on I/O while the greenlet is unwinding"));
                }
            }
        }
    }

    /// Runs the non-blocking operation `op` in blocking style: tries it while
    /// the source may be ready in `direction`; when it would block, parks until
    /// a readiness event and tries again. Gives up with `TimedOut` at
    /// `deadline`. Never returns `WouldBlock`.
    ///
    /// A greenlet whose operations keep succeeding without parking yields to
    /// the others every so often.
    ///
    /// # Errors
    ///
    /// What `op` returns, other than `WouldBlock`; `TimedOut` at the deadline.
    pub fn io<R>(
        &self,
        direction: Direction,
        deadline: Option<Instant>,
        mut op: impl FnMut() -> io::Result<R>,
    ) -> io::Result<R> {
        loop {
            self.wait(direction, deadline)?;
            match op() {
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => self.clear_ready(direction),
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                result => {
                    spend_budget();
                    return result;
                }
            }
        }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let Some(hub) = hub::current() else { return };
        let index = split(self.token).0;
        let mut sources = hub.reactor.sources.borrow_mut();
        let state = &mut sources[index];
        state.live = false;
        state.ready = [false, false];
        // Nobody can be waiting: waiters borrow the socket this belongs to.
        debug_assert!(state.waiters.iter().all(WaitQueue::is_empty));
        hub.reactor.free.borrow_mut().push(index);
    }
}

/// Counts an operation that completed without parking; yields once the budget
/// is spent.
fn spend_budget() {
    let Some(task) = hub::current().and_then(|hub| hub.current_task()) else { return };
    let spent = task.io_budget.get() + 1;
    if spent >= IO_BUDGET {
        task.io_budget.set(0);
        if !std::thread::panicking() {
            park::yield_now();
        }
    } else {
        task.io_budget.set(spent);
    }
}
