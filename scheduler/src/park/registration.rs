//! [`Registration`]: a source registered with one hub's reactor, and the
//! blocking-style I/O loop built on it.

use std::fmt;
use std::io;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::rc::{Rc, Weak};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use mio::unix::SourceFd;

use crate::hub;
use crate::hub::budget;
use crate::hub::reactor::{Direction, Reactor, SourceState};
use crate::hub::record::Wake;
use crate::hub::unpark::Unparker;
use crate::hub::wait_queue::WaitKey;
use crate::hub::waiting::WaitingOn;
use crate::park::{Parker, yield_now};
use crate::util::slab::Key;

/// A source registered with the current hub's poller.
///
/// This is the low-level seam the blocking-style sockets are built on; most
/// code wants `runtime::io::Source` instead, which owns the descriptor too.
/// Create a registration with [`Registration::new`]; dropping it removes the
/// descriptor from its hub's poller (do that before closing the descriptor).
/// Use [`Registration::io`] to run non-blocking operations in blocking style.
///
/// A registration belongs to the hub it was created on (as a mio source
/// belongs to its `Poll`). Dropping it anywhere, also after that hub has
/// stopped, only touches that hub's tables; using it on another hub returns
/// an error that says so.
///
/// ```
/// use std::io::Read;
/// use std::os::unix::net::UnixStream;
/// use runtime::io::{Direction, Registration};
///
/// runtime::run(|| {
///     let (a, _b) = UnixStream::pair().unwrap();
///     a.set_nonblocking(true).unwrap(); // `io` wants `WouldBlock`, not a blocked thread
///     let registration = Registration::new(&a).unwrap(); // dropped before `a`
///     let mut buf = [0; 16];
///     // Parks this greenlet until `a` is readable, for at most 10 ms.
///     let timeout = Some(std::time::Duration::from_millis(10));
///     let n = registration.io(Direction::Read, "UnixStream::read", timeout, || (&a).read(&mut buf));
///     assert_eq!(n.unwrap_err().kind(), std::io::ErrorKind::TimedOut); // nothing was written
/// });
/// ```
pub struct Registration {
    /// The hub's reactor, while that hub runs.
    reactor: Weak<Reactor>,
    /// The id of that reactor, to recognise another hub's.
    reactor_id: u64,
    key: Key,
    fd: RawFd,
    state: Rc<SourceState>,
}

impl fmt::Debug for Registration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registration")
            .field("fd", &self.fd)
            .field("hub", &self.reactor_id)
            .field("read_ready", &self.state.ready[0].get())
            .field("write_ready", &self.state.ready[1].get())
            .finish()
    }
}

impl Registration {
    /// Registers the descriptor `fd` (which must be in non-blocking mode)
    /// with the current hub, for both directions. The first operation in each
    /// direction is simply tried.
    ///
    /// # Errors
    ///
    /// What `mio::Registry::register` returns, e.g. `AlreadyExists` if the
    /// file descriptor is already registered.
    ///
    /// # Panics
    ///
    /// Outside a runtime.
    #[track_caller]
    pub fn new(fd: impl AsFd) -> io::Result<Registration> {
        let fd = fd.as_fd().as_raw_fd();
        let hub = hub::expect();
        let reactor = hub.reactor();
        let state = Rc::new(SourceState::default());
        state.ready[0].set(true);
        state.ready[1].set(true);
        let key = reactor.register(&mut SourceFd(&fd), state.clone())?;
        Ok(Registration { reactor: Rc::downgrade(reactor), reactor_id: reactor.id(), key, fd, state })
    }

    /// The registered descriptor.
    pub fn fd(&self) -> RawFd {
        self.fd
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

    /// Records that an operation in `direction` returned `WouldBlock`: like
    /// [`clear_ready`](Registration::clear_ready), and a close or error that
    /// the reactor reported for that direction is forgotten too, since the
    /// operation evidently does not see it (a datagram socket's error that an
    /// earlier `recv` returned, say). The next [`poll_ready`](Registration::poll_ready)
    /// or wait then waits for an event. (`clear_ready` alone keeps a reported
    /// close: after a short read of the data that came with a FIN, the next
    /// read must still see the end of the stream at once.)
    pub fn clear_would_block(&self, direction: Direction) {
        self.clear_ready(direction);
        self.state.closed[direction.index()].set(false);
    }

    /// The reactor, if this runs on the hub the registration belongs to.
    fn own_reactor(&self) -> io::Result<Rc<Reactor>> {
        let Some(reactor) = self.reactor.upgrade() else {
            return Err(io::Error::other(
                "this I/O object was registered with a runtime that has stopped; create it again inside the \
                 running one",
            ));
        };
        self.check_hub()?;
        Ok(reactor)
    }

    /// Whether this runs on the hub the registration belongs to.
    fn check_hub(&self) -> io::Result<()> {
        if hub::reactor_id() == self.reactor_id {
            return Ok(());
        }
        if self.reactor.strong_count() == 0 {
            return Err(io::Error::other(
                "this I/O object was registered with a runtime that has stopped; create it again inside the \
                 running one",
            ));
        }
        Err(io::Error::other(
            "this I/O object belongs to another hub: sockets cannot move between runtimes (each hub polls its \
             own descriptors)",
        ))
    }

    /// Parks the current greenlet until the source may be ready in
    /// `direction`. `op` names the operation in `runtime::dump` (for example
    /// `"TcpStream::read"`).
    ///
    /// # Errors
    ///
    /// `TimedOut` if `deadline` passes first, or if a kill or timeout arrives
    /// while the greenlet is already unwinding; an error if the registration
    /// belongs to another hub.
    ///
    /// # Panics
    ///
    /// If it has to park outside a greenlet of the runtime.
    #[track_caller]
    pub fn wait(&self, direction: Direction, op: &'static str, deadline: Option<Instant>) -> io::Result<()> {
        self.wait_with_timeout(direction, op, deadline, None)
    }

    /// Like [`wait`](Registration::wait), with a timeout rather than a
    /// deadline (which `runtime::dump` then shows as the handle's timeout).
    ///
    /// # Errors
    ///
    /// As [`wait`](Registration::wait).
    ///
    /// # Panics
    ///
    /// As [`wait`](Registration::wait).
    #[track_caller]
    pub fn wait_timeout(&self, direction: Direction, op: &'static str, timeout: Option<Duration>) -> io::Result<()> {
        let deadline = timeout.map(|timeout| Instant::now() + timeout);
        self.wait_with_timeout(direction, op, deadline, timeout)
    }

    #[track_caller]
    fn wait_with_timeout(
        &self,
        direction: Direction,
        op: &'static str,
        deadline: Option<Instant>,
        timeout: Option<Duration>,
    ) -> io::Result<()> {
        if self.is_ready(direction) {
            return Ok(());
        }
        let reactor = self.own_reactor()?;
        let parker = Parker::current();
        let queue = &self.state.waiters[direction.index()];
        let on = WaitingOn::Io { op, fd: self.fd, direction, timeout };
        reactor.count_waiter(true);
        let _uncount = crate::util::guard::defer(|| reactor.count_waiter(false));
        while !self.is_ready(direction) {
            let (completed, woke) = parker.wait_in(queue, on, deadline);
            if completed {
                continue;
            }
            match woke {
                Ok(Wake::Notified) => {}
                Ok(Wake::TimedOut) => return Err(io::Error::new(io::ErrorKind::TimedOut, "timed out")),
                Err(_) => {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "wait cancelled: the greenlet was killed or timed out while it was already unwinding",
                    ));
                }
            }
        }
        Ok(())
    }

    /// Like [`wait`](Registration::wait), for [`foreign`](crate::foreign)
    /// callers, which must not unwind: parks the current greenlet (`parker`'s)
    /// until the source may be ready in `direction` (`Ok(true)`) or
    /// `deadline` passes (`Ok(false)`, also if the registration belongs to
    /// another hub or a stopped one, where there is nothing to wait with); a
    /// kill or timeout is returned as `Err` and stays pending.
    pub(crate) fn wait_foreign(
        &self,
        parker: &Parker,
        direction: Direction,
        op: &'static str,
        deadline: Option<Instant>,
    ) -> Result<bool, crate::park::foreign::Interrupted> {
        if self.is_ready(direction) {
            return Ok(true);
        }
        let Ok(reactor) = self.own_reactor() else { return Ok(false) };
        let queue = &self.state.waiters[direction.index()];
        let on = WaitingOn::Io { op, fd: self.fd, direction, timeout: None };
        reactor.count_waiter(true);
        let _uncount = crate::util::guard::defer(|| reactor.count_waiter(false));
        while !self.is_ready(direction) {
            let (completed, woke) = parker.wait_in_with(queue, |parker| parker.park_foreign(on, deadline));
            if completed {
                continue;
            }
            if woke? == Wake::TimedOut {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Removes the descriptor from its hub's poller now, while it is still
    /// open (dropping the registration later does nothing more), and wakes
    /// every greenlet and task waiting on it: both directions then count as
    /// ready and closed, so their next operation runs and fails at once
    /// (`EBADF` once the descriptor is closed) instead of waiting for an event
    /// that cannot come. On another thread than the hub's, or after the hub
    /// stopped, it does nothing.
    pub(crate) fn deregister_now(&self) {
        if self.check_hub().is_err() {
            return;
        }
        let Some(reactor) = self.reactor.upgrade() else { return };
        reactor.deregister(&mut SourceFd(&self.fd), self.key);
        for i in 0..2 {
            self.state.ready[i].set(true);
            self.state.closed[i].set(true);
            self.state.waiters[i].borrow_mut().complete_all(|()| {});
            let waker = self.state.wakers[i].take();
            if let Some(waker) = waker {
                waker.wake();
            }
        }
    }

    /// Drops a registration whose descriptor was closed already (elsewhere),
    /// without telling the poller about a number that may now be another
    /// descriptor's.
    pub(crate) fn forget_closed(&self) {
        if let Some(reactor) = self.reactor.upgrade() {
            reactor.forget(self.key);
        }
        // Dropping it later finds no state under the key: no `epoll_ctl`.
    }

    /// Registers `unparker` to be woken with the waiters of `direction`
    /// (for `Select`); it counts as a greenlet waiting for I/O.
    pub(crate) fn watch(&self, direction: Direction, unparker: Unparker) -> WaitKey {
        if let Some(reactor) = self.reactor.upgrade() {
            reactor.count_waiter(true);
        }
        self.state.waiters[direction.index()].borrow_mut().push(unparker, ())
    }

    /// Takes back what [`watch`](Registration::watch) registered.
    pub(crate) fn unwatch(&self, direction: Direction, key: WaitKey) {
        if let Some(reactor) = self.reactor.upgrade() {
            reactor.count_waiter(false);
        }
        self.state.waiters[direction.index()].borrow_mut().reclaim(key);
    }

    /// Polls for readiness in `direction`, for async I/O adapters: `Ready`
    /// if an operation may not block (try it; on `WouldBlock`, call
    /// [`clear_would_block`](Registration::clear_would_block) and poll
    /// again), otherwise `Pending`, and the task's waker is woken when an
    /// event arrives. Only the last waker per direction is kept.
    ///
    /// # Errors
    ///
    /// If the registration belongs to another hub, or to one that stopped.
    pub fn poll_ready(&self, direction: Direction, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.is_ready(direction) {
            return Poll::Ready(Ok(()));
        }
        if let Err(err) = self.own_reactor() {
            return Poll::Ready(Err(err));
        }
        let mut slot = self.state.wakers[direction.index()].borrow_mut();
        if !slot.as_ref().is_some_and(|waker| waker.will_wake(cx.waker())) {
            *slot = Some(cx.waker().clone());
        }
        Poll::Pending
    }

    /// Runs the non-blocking operation `f` in blocking style: tries it while
    /// the source may be ready in `direction`; when it would block, parks until
    /// a readiness event and tries again. Gives up with `TimedOut` once
    /// `timeout` has passed while waiting. Never returns `WouldBlock`. `op`
    /// names the operation in `runtime::dump`.
    ///
    /// A greenlet whose operations keep succeeding without parking yields to
    /// the others every so often, before an operation (never between an
    /// operation and the return of its result).
    ///
    /// # Errors
    ///
    /// What `f` returns, other than `WouldBlock`; `TimedOut` as for
    /// [`wait`](Registration::wait).
    ///
    /// # Panics
    ///
    /// If it has to park outside a greenlet of the runtime.
    #[track_caller]
    pub fn io<R>(
        &self,
        direction: Direction,
        op: &'static str,
        timeout: Option<Duration>,
        mut f: impl FnMut() -> io::Result<R>,
    ) -> io::Result<R> {
        // A greenlet that spent its budget yields before its next operation
        // (not after the last one: its caller may still have bookkeeping to
        // do about the result, which must not straddle a switch).
        self.check_hub()?;
        if budget::is_spent() {
            budget::reset();
            yield_now();
        }
        let mut deadline = None;
        loop {
            if !self.is_ready(direction) {
                if deadline.is_none() {
                    deadline = timeout.map(|timeout| Instant::now() + timeout);
                }
                self.wait_with_timeout(direction, op, deadline, timeout)?;
            }
            match f() {
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                    // The operation says it would block, whatever was seen:
                    // wait for the next event (also if a close or error was
                    // reported, which this operation evidently does not see).
                    self.clear_would_block(direction);
                }
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                result => {
                    budget::spend();
                    return result;
                }
            }
        }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        // Only the hub it belongs to, and only while that hub runs: a stale
        // key finds nothing, so another hub's tables are never touched.
        // Nobody can be waiting: waiters borrow the registration.
        if let Some(reactor) = self.reactor.upgrade() {
            reactor.deregister(&mut SourceFd(&self.fd), self.key);
        }
    }
}
