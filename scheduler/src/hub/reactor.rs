//! I/O readiness: the hub's `mio::Poll` and the state of each registered
//! source.
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
//! The reactor never calls into the scheduler: [`Reactor::react`] drains the
//! waiters of ready sources into a buffer the hub owns, and the hub unparks
//! them (async-io's `ReactorLock::react` works the same way). The public face
//! of a source is [`Registration`](crate::Registration).

use std::cell::{Cell, RefCell};
use std::io;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::Waker;
use std::time::Duration;

use mio::event::Source;
use mio::{Events, Interest, Poll, Token};

use crate::hub::unpark::Unparker;
use crate::hub::wait_queue::WaitQueue;
use crate::util::slab::{Key, Slab};

/// Token of the hub's `mio::Waker`.
const WAKER: Token = Token(usize::MAX);

/// Events read per poll.
const EVENTS_CAPACITY: usize = 1024;

/// A direction of I/O.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Waiting until reading (or accepting) would not block.
    Read,
    /// Waiting until writing (or connecting) would not block.
    Write,
}

impl Direction {
    pub(crate) fn index(self) -> usize {
        match self {
            Direction::Read => 0,
            Direction::Write => 1,
        }
    }
}

/// What the reactor and a registration share about one source.
#[derive(Default)]
pub(crate) struct SourceState {
    /// Per direction: readiness may be pending. Cleared when an operation
    /// would block or drained the source.
    pub(crate) ready: [Cell<bool>; 2],
    /// Per direction: the peer closed that direction, or the socket has an
    /// error. Never cleared by events: an operation then always returns at
    /// once (end of file or the error), and with edge-triggered events no
    /// second notification of it would come. Kept apart from `ready` so that
    /// a short read of the data that arrived together with the FIN does not
    /// lose it.
    pub(crate) closed: [Cell<bool>; 2],
    pub(crate) waiters: [RefCell<WaitQueue<()>>; 2],
    /// Per direction: the waker of a task polling the source (async I/O
    /// adapters), woken with the waiters.
    pub(crate) wakers: [RefCell<Option<Waker>>; 2],
}

/// The key of a registered source: a slab key, which is also its mio token.
fn token(key: Key) -> Token {
    Token(key.index() as usize)
}

/// The hub's reactor.
pub(crate) struct Reactor {
    /// Unique among the hubs of the process: a registration remembers it, to
    /// refuse use on another hub (mio's `SelectorId`).
    id: u64,
    poll: RefCell<Poll>,
    events: RefCell<Events>,
    /// Registered sources; the token of a source is its slab index.
    sources: RefCell<Slab<Rc<SourceState>>>,
    /// Greenlets parked waiting for readiness (for deadlock detection).
    waiters: Cell<usize>,
}

impl Reactor {
    pub(crate) fn new() -> io::Result<Reactor> {
        static NEXT_ID: AtomicU64 = AtomicU64::new(1);
        Ok(Reactor {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            poll: RefCell::new(Poll::new()?),
            events: RefCell::new(Events::with_capacity(EVENTS_CAPACITY)),
            sources: RefCell::new(Slab::new()),
            waiters: Cell::new(0),
        })
    }

    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    pub(crate) fn waker(&self) -> io::Result<mio::Waker> {
        mio::Waker::new(self.poll.borrow().registry(), WAKER)
    }

    /// Whether any source is registered (the hub's waker aside).
    pub(crate) fn has_sources(&self) -> bool {
        self.sources.borrow().len() > 0
    }

    pub(crate) fn waiters(&self) -> usize {
        self.waiters.get()
    }

    /// Counts a greenlet starting (`true`) or ending a wait for readiness.
    pub(crate) fn count_waiter(&self, waiting: bool) {
        let n = self.waiters.get();
        self.waiters.set(if waiting { n + 1 } else { n - 1 });
    }

    /// Polls for events, waiting at most `timeout`, and moves the waiters of
    /// ready sources into `woken` (and their polling tasks' wakers into
    /// `wakers`). Returns whether any event came, the waker's included (a
    /// caller that polls again must first look at what the waker announced:
    /// its event is reported once).
    pub(crate) fn react(&self, timeout: Option<Duration>, woken: &mut Vec<Unparker>, wakers: &mut Vec<Waker>) -> bool {
        let mut events = self.events.borrow_mut();
        if let Err(err) = self.poll.borrow_mut().poll(&mut events, timeout) {
            if err.kind() != io::ErrorKind::Interrupted {
                tracing::error!("polling for I/O failed: {err}");
            }
            return false;
        }
        let sources = self.sources.borrow();
        for event in events.iter() {
            if event.token() == WAKER {
                continue;
            }
            // Tokens are slab indices without the generation: events of a
            // source deregistered in this batch find no entry or, rarely, its
            // successor (a spurious wake-up, which is harmless).
            let index = event.token().0 as u32;
            let Some(source) = sources.try_at(index) else { continue };
            let error = event.is_error();
            if event.is_read_closed() || error {
                source.closed[0].set(true);
            }
            if event.is_write_closed() || error {
                source.closed[1].set(true);
            }
            if event.is_readable() || event.is_read_closed() || error {
                source.ready[0].set(true);
                source.waiters[0].borrow_mut().complete_all_into(woken);
                wakers.extend(source.wakers[0].take());
            }
            if event.is_writable() || event.is_write_closed() || error {
                source.ready[1].set(true);
                source.waiters[1].borrow_mut().complete_all_into(woken);
                wakers.extend(source.wakers[1].take());
            }
        }
        !events.is_empty()
    }

    /// Registers `source` for both directions, edge-triggered.
    pub(crate) fn register(&self, source: &mut impl Source, state: Rc<SourceState>) -> io::Result<Key> {
        let key = self.sources.borrow_mut().insert(state);
        let registered =
            self.poll.borrow().registry().register(source, token(key), Interest::READABLE | Interest::WRITABLE);
        match registered {
            Ok(()) => Ok(key),
            Err(err) => {
                self.sources.borrow_mut().remove(key);
                Err(err)
            }
        }
    }

    /// Removes a source's state from the table without telling the poller:
    /// its descriptor was closed already, and its number may now be another
    /// descriptor's (a stale key is ignored).
    pub(crate) fn forget(&self, key: Key) {
        let state = self.sources.borrow_mut().remove(key);
        drop(state);
    }

    /// Removes `source` from the poller and its state from the table (a stale
    /// key is ignored).
    pub(crate) fn deregister(&self, source: &mut impl Source, key: Key) {
        if self.sources.borrow_mut().remove(key).is_some() {
            // It fails only if the descriptor is not registered (closed
            // already, say); nothing is left to undo then.
            let _ = self.poll.borrow().registry().deregister(source);
        }
    }
}
