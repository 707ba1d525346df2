//! The one generic piece under every socket: a mio source registered with the
//! hub, with blocking-style operations and per-handle timeouts.

use std::cell::Cell;
use std::fmt;
use std::io;
use std::os::fd::AsFd;
use std::time::Duration;

use mio::event;
use runtime_scheduler::{Direction, Registration};

/// A non-blocking `T` registered with the current hub.
///
/// Operations go through [`Source::read_with`] and [`Source::write_with`],
/// which retry the non-blocking call until it does not block, parking the
/// greenlet in between; each direction has an optional timeout, as with
/// `std::net` sockets. With [`Source::set_nonblocking`] the calls return
/// `WouldBlock` instead of parking.
pub(crate) struct Source<T: event::Source + AsFd> {
    /// Declared (so dropped) before `io`: the descriptor leaves the poller
    /// before it is closed.
    registration: Registration,
    io: T,
    read_timeout: Cell<Option<Duration>>,
    write_timeout: Cell<Option<Duration>>,
    nonblocking: Cell<bool>,
}

impl<T: event::Source + AsFd> Source<T> {
    /// Registers `io`, which must already be in non-blocking mode.
    pub(crate) fn new(io: T) -> io::Result<Source<T>> {
        let registration = Registration::new(&io)?;
        Ok(Source {
            io,
            registration,
            read_timeout: Cell::new(None),
            write_timeout: Cell::new(None),
            nonblocking: Cell::new(false),
        })
    }

    pub(crate) fn get_ref(&self) -> &T {
        &self.io
    }

    /// Runs `op` in blocking style for reading (or accepting).
    pub(crate) fn read_with<R>(&self, op: impl FnMut(&T) -> io::Result<R>) -> io::Result<R> {
        self.run(Direction::Read, self.read_timeout.get(), op)
    }

    /// Runs `op` in blocking style for writing (or connecting).
    pub(crate) fn write_with<R>(&self, op: impl FnMut(&T) -> io::Result<R>) -> io::Result<R> {
        self.run(Direction::Write, self.write_timeout.get(), op)
    }

    fn run<R>(
        &self,
        direction: Direction,
        timeout: Option<Duration>,
        mut op: impl FnMut(&T) -> io::Result<R>,
    ) -> io::Result<R> {
        if self.nonblocking.get() {
            return op(&self.io);
        }
        let name = match direction {
            Direction::Read => "read",
            Direction::Write => "write",
        };
        self.registration.io(direction, name, timeout, || op(&self.io))
    }

    /// Reads from a stream: like `read_with`, and a short read marks the
    /// stream drained, so the next read waits for an event instead of trying a
    /// system call that would only say `WouldBlock`.
    ///
    /// The flag is cleared inside the operation, right after the system call:
    /// `read_with` may yield to the hub before it returns (the I/O budget),
    /// and a readiness event the hub records meanwhile (more data arrived)
    /// must not be wiped out afterwards, or the next read would wait for an
    /// event that already came.
    pub(crate) fn read_stream(&self, buf_len: usize, mut op: impl FnMut(&T) -> io::Result<usize>) -> io::Result<usize> {
        self.read_with(|io| {
            let n = op(io)?;
            if n > 0 && n < buf_len {
                self.registration.clear_ready(Direction::Read);
            }
            Ok(n)
        })
    }

    /// Writes to a stream: like `write_with`, and a short write marks the send
    /// buffer full.
    pub(crate) fn write_stream(
        &self,
        buf_len: usize,
        mut op: impl FnMut(&T) -> io::Result<usize>,
    ) -> io::Result<usize> {
        // Cleared inside the operation, for the reason given at `read_stream`.
        self.write_with(|io| {
            let n = op(io)?;
            if n < buf_len {
                self.registration.clear_ready(Direction::Write);
            }
            Ok(n)
        })
    }

    /// Tries a stream read once, without parking: `WouldBlock` if nothing is
    /// there (and the stream is then marked drained, so the next wait parks
    /// until an event), as is a short read.
    pub(crate) fn try_read_stream(
        &self,
        buf_len: usize,
        op: impl FnOnce(&T) -> io::Result<usize>,
    ) -> io::Result<usize> {
        let result = op(&self.io);
        match &result {
            Ok(n) if *n > 0 && *n < buf_len => self.registration.clear_ready(Direction::Read),
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => self.registration.clear_ready(Direction::Read),
            _ => {}
        }
        result
    }

    /// Tries a stream write once, without parking: `WouldBlock` if the send
    /// buffer is full (which, like a short write, marks it so).
    pub(crate) fn try_write_stream(
        &self,
        buf_len: usize,
        op: impl FnOnce(&T) -> io::Result<usize>,
    ) -> io::Result<usize> {
        let result = op(&self.io);
        match &result {
            Ok(n) if *n < buf_len => self.registration.clear_ready(Direction::Write),
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => self.registration.clear_ready(Direction::Write),
            _ => {}
        }
        result
    }

    /// Parks until the source may be ready in `direction`, honouring the
    /// direction's timeout.
    pub(crate) fn wait(&self, direction: Direction) -> io::Result<()> {
        let timeout = match direction {
            Direction::Read => self.read_timeout.get(),
            Direction::Write => self.write_timeout.get(),
        };
        let name = match direction {
            Direction::Read => "wait_readable",
            Direction::Write => "wait_writable",
        };
        self.registration.wait(direction, name, timeout.map(|t| std::time::Instant::now() + t))
    }

    /// Forgets any readiness in `direction`, so the next operation waits for
    /// an event.
    pub(crate) fn clear_ready(&self, direction: Direction) {
        self.registration.clear_ready(direction);
    }

    pub(crate) fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.read_timeout.set(check_timeout(timeout)?);
        Ok(())
    }

    pub(crate) fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.write_timeout.set(check_timeout(timeout)?);
        Ok(())
    }

    pub(crate) fn read_timeout(&self) -> Option<Duration> {
        self.read_timeout.get()
    }

    pub(crate) fn write_timeout(&self) -> Option<Duration> {
        self.write_timeout.get()
    }

    /// Gives this handle the timeouts of `other` (for `try_clone`).
    pub(crate) fn copy_timeouts_from<U: event::Source + AsFd>(&self, other: &Source<U>) {
        self.read_timeout.set(other.read_timeout.get());
        self.write_timeout.set(other.write_timeout.get());
    }

    pub(crate) fn set_nonblocking(&self, nonblocking: bool) {
        self.nonblocking.set(nonblocking);
    }
}

/// `std::net` rejects a zero timeout; so do we.
fn check_timeout(timeout: Option<Duration>) -> io::Result<Option<Duration>> {
    match timeout {
        Some(t) if t.is_zero() => Err(io::Error::new(io::ErrorKind::InvalidInput, "cannot set a 0 duration timeout")),
        other => Ok(other),
    }
}

impl<T: event::Source + AsFd + fmt::Debug> fmt::Debug for Source<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.io.fmt(f)
    }
}
