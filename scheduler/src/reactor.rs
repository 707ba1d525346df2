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
use std::rc::Rc;
use std::time::{Duration, Instant};

use mio::event::Source;
use mio::{Events, Interest, Poll, Token};

use crate::hub;
use crate::park::{self, Wake};
use crate::task::Task;
use crate::wait_queue::{self, WaitQueue};

/// Token of the hub's `mio::Waker`.
const WAKER: Token = Token(usize::MAX);

/// Consecutive I/O operations a greenlet may complete without parking before
/// it is made to yield, so that a greenlet whose peer always has data ready
/// cannot starve the others (tokio's cooperative budget is 128 too).
const IO_BUDGET: u32 = 128;

thread_local! {
    /// Operations the running greenlet completed without parking; reset by
    /// the hub whenever it resumes a greenlet.
    static BUDGET_SPENT: Cell<u32> = const { Cell::new(0) };
}

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

/// What the reactor and a registration share about one source.
#[derive(Default)]
struct SourceState {
    /// Per direction: readiness may be pending. Cleared when an operation
    /// would block or drained the source.
    ready: [Cell<bool>; 2],
    /// Per direction: the peer closed that direction, or the socket has an
    /// error. Never cleared: an operation then always returns at once (end of
    /// file or the error), and with edge-triggered events no second
    /// notification of it would come. Kept apart from `ready` so that a short
    /// read of the data that arrived together with the FIN does not lose it.
    closed: [Cell<bool>; 2],
    waiters: [RefCell<WaitQueue<()>>; 2],
}

/// The hub's reactor.
pub(crate) struct Reactor {
    poll: RefCell<Poll>,
    events: RefCell<Events>,
    /// Registered sources; the token of a source is its index here.
    sources: RefCell<Vec<Option<Rc<SourceState>>>>,
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
        let sources = self.sources.borrow();
        for event in events.iter() {
            if event.token() == WAKER {
                continue;
            }
            // Events of a source deregistered in this batch find no entry (or,
            // rarely, its successor: a spurious wake-up, which is harmless).
            let Some(Some(source)) = sources.get(event.token().0) else { continue };
            let error = event.is_error();
            if event.is_read_closed() || error {
                source.closed[0].set(true);
            }
            if event.is_write_closed() || error {
                source.closed[1].set(true);
            }
            if event.is_readable() || event.is_read_closed() || error {
                source.ready[0].set(true);
                woken.extend(source.waiters[0].borrow_mut().complete_all(|()| {}));
            }
            if event.is_writable() || event.is_write_closed() || error {
                source.ready[1].set(true);
                woken.extend(source.waiters[1].borrow_mut().complete_all(|()| {}));
            }
        }
        woken
    }

    fn add(&self, state: Rc<SourceState>) -> Token {
        let mut sources = self.sources.borrow_mut();
        match self.free.borrow_mut().pop() {
            Some(index) => {
                sources[index] = Some(state);
                Token(index)
            }
            None => {
                sources.push(Some(state));
                Token(sources.len() - 1)
            }
        }
    }

    fn remove(&self, token: Token) {
        self.sources.borrow_mut()[token.0] = None;
        self.free.borrow_mut().push(token.0);
    }
}

/// Resets the running greenlet's I/O budget; called by the hub on resume.
pub(crate) fn reset_budget() {
    BUDGET_SPENT.with(|spent| spent.set(0));
}

/// A source registered with the current hub's poller.
///
/// Create it with [`Registration::new`], call [`Registration::deregister`]
/// with the same source before closing it, then drop the registration. Use
/// [`Registration::io`] to run non-blocking operations in blocking style.
/// A registration belongs to its hub's thread.
///
/// ```no_run
/// use std::io::Read;
/// use runtime_scheduler::{Direction, Registration};
///
/// runtime_scheduler::run(|| {
///     let (mut a, _b) = mio::net::UnixStream::pair().unwrap();
///     let registration = Registration::new(&mut a).unwrap();
///     let mut buf = [0; 16];
///     // Parks this greenlet until `a` is readable, for at most a second.
///     let n = registration.io(Direction::Read, Some(std::time::Duration::from_secs(1)), || (&a).read(&mut buf));
///     assert!(n.is_err()); // nothing was written: timed out
///     registration.deregister(&mut a).unwrap();
/// });
/// ```
pub struct Registration {
    token: Token,
    state: Rc<SourceState>,
}

impl fmt::Debug for Registration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registration")
            .field("token", &self.token.0)
            .field("read_ready", &self.state.ready[0].get())
            .field("write_ready", &self.state.ready[1].get())
            .finish()
    }
}

impl Registration {
    /// Registers `source` (which must be in non-blocking mode) for both
    /// directions. The first operation in each direction is simply tried.
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
            let state = Rc::new(SourceState::default());
            state.ready[0].set(true);
            state.ready[1].set(true);
            let token = hub.reactor.add(state.clone());
            let registry = hub.reactor.poll.borrow();
            match registry.registry().register(source, token, Interest::READABLE | Interest::WRITABLE) {
                Ok(()) => Ok(Registration { token, state }),
                Err(err) => {
                    drop(registry);
                    hub.reactor.remove(token);
                    Err(err)
                }
            }
        })
    }

    /// Removes `source` from the poller. Call it before the source is closed.
    ///
    /// # Errors
    ///
    /// What `mio::Registry::deregister` returns.
    pub fn deregister(&self, source: &mut impl Source) -> io::Result<()> {
        match hub::current() {
            Some(hub) => hub.reactor.poll.borrow().registry().deregister(source),
            // The hub is gone, and its poller with it.
            None => Ok(()),
        }
    }

    /// Whether readiness may be pending in `direction` (or that direction was
    /// closed by the peer, or the socket failed: then operations do not block
    /// either).
    pub fn is_ready(&self, direction: Direction) -> bool {
        let i = direction.index();
        self.state.ready[i].get() || self.state.closed[i].get()
    }

    /// Records that an operation in `direction` would block (or drained the
    /// source), so the next operation waits for a readiness event first.
    pub fn clear_ready(&self, direction: Direction) {
        self.state.ready[direction.index()].set(false);
    }

    /// Parks the current greenlet until the source may be ready in
    /// `direction`.
    ///
    /// # Errors
    ///
    /// `TimedOut` if `deadline` passes first; `Other` if the greenlet is
    /// unwinding (blocking is refused then).
    ///
    /// # Panics
    ///
    /// If it has to park outside a greenlet of the runtime.
    pub fn wait(&self, direction: Direction, deadline: Option<Instant>) -> io::Result<()> {
        let queue = &self.state.waiters[direction.index()];
        let reason = match direction {
            Direction::Read => "a socket to become readable",
            Direction::Write => "a socket to become writable",
        };
        while !self.is_ready(direction) {
            let _count = WaiterCount::new();
            let waited = wait_queue::wait(queue, (), reason, deadline);
            if waited.completed {
                continue;
            }
            match waited.wake {
                Wake::Notified => {}
                Wake::TimedOut => return Err(io::Error::new(io::ErrorKind::TimedOut, "timed out")),
                Wake::Refused => {
                    return Err(io::Error::other("cannot block on I/O while the greenlet is unwinding"));
                }
            }
        }
        Ok(())
    }

    /// Runs the non-blocking operation `op` in blocking style: tries it while
    /// the source may be ready in `direction`; when it would block, parks until
    /// a readiness event and tries again. Gives up with `TimedOut` once
    /// `timeout` has passed while waiting. Never returns `WouldBlock`.
    ///
    /// A greenlet whose operations keep succeeding without parking yields to
    /// the others every so often, before an operation (never between an
    /// operation and the return of its result).
    ///
    /// # Errors
    ///
    /// What `op` returns, other than `WouldBlock`; `TimedOut` at the deadline.
    ///
    /// # Panics
    ///
    /// If it has to park outside a greenlet of the runtime.
    pub fn io<R>(
        &self,
        direction: Direction,
        timeout: Option<Duration>,
        mut op: impl FnMut() -> io::Result<R>,
    ) -> io::Result<R> {
        // A greenlet that spent its budget yields before its next operation
        // (not after the last one: its caller may still have bookkeeping to
        // do about the result, which must not straddle a switch).
        yield_if_budget_spent();
        let mut deadline = None;
        loop {
            if !self.is_ready(direction) {
                if deadline.is_none() {
                    deadline = timeout.map(|timeout| Instant::now() + timeout);
                }
                self.wait(direction, deadline)?;
            }
            match op() {
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                    // The operation says it would block, whatever was seen:
                    // wait for the next event (also if a close or error was
                    // reported, which this operation evidently does not see).
                    self.clear_ready(direction);
                    self.state.closed[direction.index()].set(false);
                }
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                result => {
                    BUDGET_SPENT.with(|spent| spent.set(spent.get() + 1));
                    return result;
                }
            }
        }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        // Nobody can be waiting: waiters borrow the socket this belongs to.
        if let Some(hub) = hub::current() {
            hub.reactor.remove(self.token);
        }
    }
}

/// Counts a greenlet parked on I/O (for the hub's deadlock detection).
struct WaiterCount;

impl WaiterCount {
    fn new() -> WaiterCount {
        hub::with(|hub| hub.reactor.waiters.set(hub.reactor.waiters.get() + 1));
        WaiterCount
    }
}

impl Drop for WaiterCount {
    fn drop(&mut self) {
        if let Some(hub) = hub::current() {
            hub.reactor.waiters.set(hub.reactor.waiters.get() - 1);
        }
    }
}

/// Yields if the running greenlet completed `IO_BUDGET` operations without
/// parking since it was last resumed.
fn yield_if_budget_spent() {
    if BUDGET_SPENT.with(Cell::get) >= IO_BUDGET && !std::thread::panicking() {
        reset_budget();
        park::yield_now();
    }
}
