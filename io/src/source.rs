//! [`Source`]: any file descriptor on the hub, owned and registered, with
//! blocking-style operations (async-io's `Async<T>`). Every socket of
//! [`net`](crate::net) is a thin wrapper around one.

use std::cell::Cell;
use std::fmt;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use runtime_scheduler::{Direction, Registration};

/// An I/O object `T` (anything with a file descriptor) registered with the
/// current hub, whose operations park only the calling greenlet.
///
/// This is how a descriptor from another crate joins the runtime, like
/// async-io's `Async<T>`: [`Source::new`] puts it in non-blocking mode and
/// registers it; [`read_with`](Source::read_with) and
/// [`write_with`](Source::write_with) run a non-blocking operation in blocking
/// style (tried, and on `WouldBlock` the greenlet parks until the hub sees the
/// descriptor ready, then tried again); [`readable`](Source::readable) and
/// [`writable`](Source::writable) only wait. Each direction has an optional
/// timeout, as `std::net` sockets do. Dropping the source removes the
/// descriptor from the hub, then drops `T` (which closes it);
/// [`into_inner`](Source::into_inner) hands `T` back instead.
///
/// `Read` and `Write` are implemented for `Source<T>` when `T` implements
/// them. For shared use (one greenlet reads while another writes), call
/// `read_with(|mut io| io.read(buf))` on a `&Source<T>`: there is no
/// `Read for &Source<T> where &T: Read`, because such a self-referential impl
/// makes the compiler overflow on generic code that asks for
/// `for<'a> &'a S: Read` with `S` still to be inferred.
///
/// ```
/// use std::io::{Read, Write};
/// use std::os::unix::net::UnixStream;
/// use runtime::io::Source;
///
/// runtime::run(|| {
///     // Sockets from std, which knows nothing about the hub.
///     let (a, b) = UnixStream::pair()?;
///     let mut a = Source::new(a)?; // now non-blocking and registered
///     let mut b = Source::new(b)?;
///     let writer = runtime::spawn(move || {
///         runtime::sleep(std::time::Duration::from_millis(10));
///         b.write_all(b"ping")
///     });
///     let mut buf = [0; 4];
///     // Parks this greenlet (not the thread) until the bytes arrive.
///     a.read_exact(&mut buf)?;
///     assert_eq!(&buf, b"ping");
///     writer.join().unwrap()?;
///     // Any non-blocking call works the same way; this one sees the end of
///     // the stream, since `b` was dropped with its greenlet.
///     let n = a.read_with(|mut stream| stream.read(&mut buf))?;
///     assert_eq!(n, 0);
///     Ok::<_, std::io::Error>(())
/// })?;
/// # Ok::<_, std::io::Error>(())
/// ```
///
/// A source belongs to the hub that was current when it was created: it must
/// be used inside that runtime (elsewhere its waits fail with an error saying
/// so), and may be dropped anywhere.
///
/// # Notes
///
/// Readiness is edge-triggered underneath. The source remembers, per
/// direction, whether the descriptor may be ready, and only an operation that
/// returns `WouldBlock` *through the source* ([`read_with`](Source::read_with),
/// [`try_read_with`](Source::try_read_with), ...) tells it otherwise. An
/// operation run directly on [`get_ref`](Source::get_ref) that would block
/// goes unnoticed, so a following [`readable`](Source::readable) returns at
/// once instead of waiting.
pub struct Source<T> {
    /// Declared (so dropped) before `io`: the descriptor leaves the poller
    /// before it is closed.
    registration: Registration,
    io: T,
    read_timeout: Cell<Option<Duration>>,
    write_timeout: Cell<Option<Duration>>,
    /// Set by the `net` types' `set_nonblocking(true)`: operations are tried
    /// once and `WouldBlock` is returned instead of parking.
    nonblocking: Cell<bool>,
}

impl<T: AsFd> Source<T> {
    /// Puts `io`'s descriptor in non-blocking mode (`O_NONBLOCK`) and
    /// registers it with the current hub.
    ///
    /// The mode belongs to the open file description, so it also applies to
    /// duplicates of the descriptor, and it stays set after
    /// [`into_inner`](Source::into_inner).
    ///
    /// # Errors
    ///
    /// What `fcntl(2)` or `epoll_ctl(2)` report: `PermissionDenied` for a
    /// regular file (epoll cannot wait on one), `AlreadyExists` if the
    /// descriptor is registered with the hub already.
    ///
    /// # Panics
    ///
    /// Outside a runtime.
    #[track_caller]
    pub fn new(io: T) -> io::Result<Source<T>> {
        // `fcntl(F_SETFL, O_NONBLOCK)` through socket2, the one safe way to it
        // here: the call is the same for every kind of descriptor (pipes and
        // terminals too), although socket2 documents `SockRef` for sockets.
        socket2::SockRef::from(&io).set_nonblocking(true)?;
        Source::from_nonblocking(io)
    }

    /// Registers `io`, which is in non-blocking mode already (every `mio`
    /// socket is), or on which the source never does I/O (`wait_readable`).
    #[track_caller]
    pub(crate) fn from_nonblocking(io: T) -> io::Result<Source<T>> {
        let registration = Registration::new(&io)?;
        Ok(Source {
            registration,
            io,
            read_timeout: Cell::new(None),
            write_timeout: Cell::new(None),
            nonblocking: Cell::new(false),
        })
    }
}

impl<T> Source<T> {
    /// The wrapped I/O object.
    ///
    /// There is no `get_mut`: replacing the object (and so the descriptor)
    /// under the registration would leave the hub watching a closed, possibly
    /// reused, descriptor number.
    pub fn get_ref(&self) -> &T {
        &self.io
    }

    /// Removes the descriptor from the hub and returns the I/O object. It
    /// stays in non-blocking mode.
    pub fn into_inner(self) -> T {
        let Source { registration, io, .. } = self;
        drop(registration);
        io
    }

    /// Runs the non-blocking operation `op` in blocking style for reading (or
    /// accepting, receiving): tries it while the descriptor may be readable,
    /// and whenever it returns `WouldBlock`, parks until the hub sees the
    /// descriptor readable and tries again. Honours the read timeout.
    ///
    /// `op` must not block the thread: with a descriptor that is not in
    /// non-blocking mode it would block the whole hub.
    ///
    /// # Errors
    ///
    /// What `op` returns, never `WouldBlock`; `TimedOut` after the read
    /// timeout; an error if the source belongs to another hub or to a runtime
    /// that has stopped.
    ///
    /// # Panics
    ///
    /// If it has to park outside a greenlet of the runtime.
    #[track_caller]
    pub fn read_with<R>(&self, op: impl FnMut(&T) -> io::Result<R>) -> io::Result<R> {
        self.read_with_as("Source::read_with", op)
    }

    /// Runs the non-blocking operation `op` in blocking style for writing (or
    /// sending, connecting); see [`read_with`](Source::read_with). Honours the
    /// write timeout.
    ///
    /// # Errors
    ///
    /// What `op` returns, never `WouldBlock`; `TimedOut` after the write
    /// timeout; an error if the source belongs to another hub or to a runtime
    /// that has stopped.
    ///
    /// # Panics
    ///
    /// If it has to park outside a greenlet of the runtime.
    #[track_caller]
    pub fn write_with<R>(&self, op: impl FnMut(&T) -> io::Result<R>) -> io::Result<R> {
        self.write_with_as("Source::write_with", op)
    }

    /// Runs `op` once, without parking. If it returns `WouldBlock`, the source
    /// notes that the descriptor is not readable, so the next
    /// [`readable`](Source::readable) parks until it is.
    ///
    /// # Errors
    ///
    /// What `op` returns, `WouldBlock` included.
    pub fn try_read_with<R>(&self, op: impl FnOnce(&T) -> io::Result<R>) -> io::Result<R> {
        self.try_with(Direction::Read, op)
    }

    /// Runs `op` once, without parking. If it returns `WouldBlock`, the source
    /// notes that the descriptor is not writable, so the next
    /// [`writable`](Source::writable) parks until it is.
    ///
    /// # Errors
    ///
    /// What `op` returns, `WouldBlock` included.
    pub fn try_write_with<R>(&self, op: impl FnOnce(&T) -> io::Result<R>) -> io::Result<R> {
        self.try_with(Direction::Write, op)
    }

    /// Parks until the descriptor may be readable, honouring the read
    /// timeout. Returns at once while no operation through the source has
    /// returned `WouldBlock` since the last readiness event; a wake-up can be
    /// spurious. With [`try_read_with`](Source::try_read_with), this lets a
    /// greenlet wait for data without holding a buffer:
    ///
    /// ```
    /// use std::io::{ErrorKind, Read, Write};
    /// use std::os::unix::net::UnixStream;
    /// use runtime::io::Source;
    ///
    /// runtime::run(|| {
    ///     let (a, mut b) = UnixStream::pair()?;
    ///     let a = Source::new(a)?;
    ///     b.write_all(b"hi")?;
    ///     let message = loop {
    ///         a.readable()?;
    ///         let mut buf = vec![0; 64]; // only once there is something to read
    ///         match a.try_read_with(|mut stream| stream.read(&mut buf)) {
    ///             Ok(n) => break buf[..n].to_vec(),
    ///             Err(err) if err.kind() == ErrorKind::WouldBlock => continue,
    ///             Err(err) => return Err(err),
    ///         }
    ///     };
    ///     assert_eq!(message, b"hi");
    ///     Ok::<_, std::io::Error>(())
    /// })?;
    /// # Ok::<_, std::io::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// `TimedOut` after the read timeout; an error if the source belongs to
    /// another hub or to a runtime that has stopped.
    ///
    /// # Panics
    ///
    /// If it has to park outside a greenlet of the runtime.
    #[track_caller]
    pub fn readable(&self) -> io::Result<()> {
        self.wait_as(Direction::Read, "Source::readable")
    }

    /// Parks until the descriptor may be writable, honouring the write
    /// timeout; see [`readable`](Source::readable).
    ///
    /// # Errors
    ///
    /// `TimedOut` after the write timeout; an error if the source belongs to
    /// another hub or to a runtime that has stopped.
    ///
    /// # Panics
    ///
    /// If it has to park outside a greenlet of the runtime.
    #[track_caller]
    pub fn writable(&self) -> io::Result<()> {
        self.wait_as(Direction::Write, "Source::writable")
    }

    /// Polls for readability, for async code: `Ready(Ok(()))` while the
    /// descriptor may be readable (no operation through the source has
    /// returned `WouldBlock` since the last readiness event), otherwise
    /// `Pending`, and the hub's reactor wakes `cx`'s waker when it sees the
    /// descriptor readable. Only the last waker per direction is kept, so one
    /// task at a time should poll each direction.
    ///
    /// This is the async counterpart of [`readable`](Source::readable), and
    /// shares its state: after a `try_read_with` (or a `poll_read_with`) that
    /// returned `WouldBlock`, it is `Pending` until an event. It never parks
    /// and ignores the read timeout (put a timeout around the future instead,
    /// e.g. `runtime::timeout(d, || runtime::block_on(future))`).
    ///
    /// ```
    /// use std::io::{Read, Write};
    /// use std::os::unix::net::UnixStream;
    /// use std::task::Poll;
    /// use runtime::io::Source;
    ///
    /// runtime::run(|| {
    ///     let (a, mut b) = UnixStream::pair()?;
    ///     let a = Source::new(a)?;
    ///     runtime::spawn(move || b.write_all(b"hi"));
    ///     let mut buf = [0; 2];
    ///     // A hand-written future: wait for readiness, then try the read.
    ///     let n = runtime::block_on(std::future::poll_fn(|cx| loop {
    ///         if let Err(err) = std::task::ready!(a.poll_readable(cx)) {
    ///             return Poll::Ready(Err(err));
    ///         }
    ///         match a.try_read_with(|mut stream| stream.read(&mut buf)) {
    ///             Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => continue,
    ///             result => return Poll::Ready(result),
    ///         }
    ///     }))?;
    ///     assert_eq!(&buf[..n], b"hi");
    ///     Ok::<_, std::io::Error>(())
    /// })?;
    /// # Ok::<_, std::io::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// If the source belongs to another hub or to a runtime that has stopped.
    pub fn poll_readable(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.registration.poll_ready(Direction::Read, cx)
    }

    /// Polls for writability, for async code; see
    /// [`poll_readable`](Source::poll_readable).
    ///
    /// # Errors
    ///
    /// If the source belongs to another hub or to a runtime that has stopped.
    pub fn poll_writable(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.registration.poll_ready(Direction::Write, cx)
    }

    /// Polls the non-blocking operation `op` for reading (or accepting,
    /// receiving), for async code: tries it while the descriptor may be
    /// readable; when it returns `WouldBlock`, notes that and returns
    /// `Pending`, with `cx`'s waker woken by the hub's reactor when the
    /// descriptor becomes readable. The async counterpart of
    /// [`read_with`](Source::read_with), sharing its readiness state, so the
    /// same descriptor can be used from blocking code before and after. It
    /// ignores the read timeout and the `net` types' non-blocking mode.
    ///
    /// ```
    /// use std::io::{Read, Write};
    /// use std::os::unix::net::UnixStream;
    /// use runtime::io::Source;
    ///
    /// runtime::run(|| {
    ///     let (a, b) = UnixStream::pair()?;
    ///     let (a, mut b) = (Source::new(a)?, Source::new(b)?);
    ///     runtime::spawn(move || b.write_all(b"hi"));
    ///     let mut buf = [0; 2];
    ///     let read = std::future::poll_fn(|cx| a.poll_read_with(cx, |mut stream| stream.read(&mut buf)));
    ///     let n = runtime::block_on(read)?; // parks only this greenlet
    ///     assert_eq!(&buf[..n], b"hi");
    ///     Ok::<_, std::io::Error>(())
    /// })?;
    /// # Ok::<_, std::io::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// What `op` returns, never `WouldBlock`; an error if the source belongs
    /// to another hub or to a runtime that has stopped.
    pub fn poll_read_with<R>(&self, cx: &mut Context<'_>, op: impl FnMut(&T) -> io::Result<R>) -> Poll<io::Result<R>> {
        self.poll_with(Direction::Read, cx, op)
    }

    /// Polls the non-blocking operation `op` for writing (or sending), for
    /// async code; see [`poll_read_with`](Source::poll_read_with).
    ///
    /// # Errors
    ///
    /// What `op` returns, never `WouldBlock`; an error if the source belongs
    /// to another hub or to a runtime that has stopped.
    pub fn poll_write_with<R>(&self, cx: &mut Context<'_>, op: impl FnMut(&T) -> io::Result<R>) -> Poll<io::Result<R>> {
        self.poll_with(Direction::Write, cx, op)
    }

    /// Tries `op` while the source may be ready in `direction`; on
    /// `WouldBlock`, clears the flag and polls again, which registers the
    /// waker and returns `Pending` (or, if an event came in between, tries
    /// again).
    fn poll_with<R>(
        &self,
        direction: Direction,
        cx: &mut Context<'_>,
        mut op: impl FnMut(&T) -> io::Result<R>,
    ) -> Poll<io::Result<R>> {
        loop {
            ready!(self.registration.poll_ready(direction, cx))?;
            match op(&self.io) {
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => self.registration.clear_would_block(direction),
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                result => return Poll::Ready(result),
            }
        }
    }

    /// Sets the read timeout (`None`: wait forever): a read-side operation
    /// that waits longer fails with `TimedOut`.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for a zero duration, as in `std`.
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.read_timeout.set(check_timeout(timeout)?);
        Ok(())
    }

    /// Sets the write timeout (`None`: wait forever): a write-side operation
    /// that waits longer fails with `TimedOut`.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for a zero duration, as in `std`.
    pub fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.write_timeout.set(check_timeout(timeout)?);
        Ok(())
    }

    /// The read timeout.
    pub fn read_timeout(&self) -> Option<Duration> {
        self.read_timeout.get()
    }

    /// The write timeout.
    pub fn write_timeout(&self) -> Option<Duration> {
        self.write_timeout.get()
    }

    /// [`read_with`](Source::read_with), with the operation named `op` in
    /// `runtime::dump` (`"TcpStream::read"`).
    #[track_caller]
    pub(crate) fn read_with_as<R>(&self, op: &'static str, f: impl FnMut(&T) -> io::Result<R>) -> io::Result<R> {
        self.run(Direction::Read, op, f)
    }

    /// [`write_with`](Source::write_with), with the operation named `op`.
    #[track_caller]
    pub(crate) fn write_with_as<R>(&self, op: &'static str, f: impl FnMut(&T) -> io::Result<R>) -> io::Result<R> {
        self.run(Direction::Write, op, f)
    }

    #[track_caller]
    fn run<R>(&self, direction: Direction, op: &'static str, mut f: impl FnMut(&T) -> io::Result<R>) -> io::Result<R> {
        if self.nonblocking.get() {
            return self.try_with(direction, f);
        }
        self.registration.io(direction, op, self.timeout(direction), || f(&self.io))
    }

    fn try_with<R>(&self, direction: Direction, f: impl FnOnce(&T) -> io::Result<R>) -> io::Result<R> {
        let result = f(&self.io);
        if matches!(&result, Err(err) if err.kind() == io::ErrorKind::WouldBlock) {
            self.registration.clear_would_block(direction);
        }
        result
    }

    fn timeout(&self, direction: Direction) -> Option<Duration> {
        match direction {
            Direction::Read => self.read_timeout.get(),
            Direction::Write => self.write_timeout.get(),
        }
    }

    /// Reads from a stream, named `op`: like `read_with`, and a short read
    /// marks the stream drained, so the next read waits for an event instead
    /// of trying a system call that would only say `WouldBlock`. (Only for
    /// byte streams: a short read of one datagram or record says nothing
    /// about the next.)
    ///
    /// The flag is cleared inside the operation, right after the system call:
    /// `read_with` may yield to the hub before it returns (the I/O budget),
    /// and a readiness event the hub records meanwhile (more data arrived)
    /// must not be wiped out afterwards, or the next read would wait for an
    /// event that already came.
    #[track_caller]
    pub(crate) fn read_stream(
        &self,
        op: &'static str,
        buf_len: usize,
        mut f: impl FnMut(&T) -> io::Result<usize>,
    ) -> io::Result<usize> {
        self.read_with_as(op, |io| {
            let n = f(io)?;
            if n > 0 && n < buf_len {
                self.registration.clear_ready(Direction::Read);
            }
            Ok(n)
        })
    }

    /// Writes to a stream, named `op`: like `write_with`, and a short write
    /// marks the send buffer full.
    #[track_caller]
    pub(crate) fn write_stream(
        &self,
        op: &'static str,
        buf_len: usize,
        mut f: impl FnMut(&T) -> io::Result<usize>,
    ) -> io::Result<usize> {
        // Cleared inside the operation, for the reason given at `read_stream`.
        self.write_with_as(op, |io| {
            let n = f(io)?;
            if n < buf_len {
                self.registration.clear_ready(Direction::Write);
            }
            Ok(n)
        })
    }

    /// Polls a stream read, for the async traits: like `poll_read_with`, and
    /// a short read marks the stream drained, as in `read_stream`.
    #[cfg(any(feature = "futures-io", feature = "tokio-io"))]
    pub(crate) fn poll_read_stream(
        &self,
        cx: &mut Context<'_>,
        buf_len: usize,
        mut f: impl FnMut(&T) -> io::Result<usize>,
    ) -> Poll<io::Result<usize>> {
        self.poll_read_with(cx, |io| {
            let n = f(io)?;
            if n > 0 && n < buf_len {
                self.registration.clear_ready(Direction::Read);
            }
            Ok(n)
        })
    }

    /// Polls a stream write, for the async traits: like `poll_write_with`,
    /// and a short write marks the send buffer full, as in `write_stream`.
    #[cfg(any(feature = "futures-io", feature = "tokio-io"))]
    pub(crate) fn poll_write_stream(
        &self,
        cx: &mut Context<'_>,
        buf_len: usize,
        mut f: impl FnMut(&T) -> io::Result<usize>,
    ) -> Poll<io::Result<usize>> {
        self.poll_write_with(cx, |io| {
            let n = f(io)?;
            if n < buf_len {
                self.registration.clear_ready(Direction::Write);
            }
            Ok(n)
        })
    }

    /// Tries a stream read once, without parking: `WouldBlock` if nothing is
    /// there (and the stream is then marked drained, so the next wait parks
    /// until an event), as is a short read.
    pub(crate) fn try_read_stream(&self, buf_len: usize, f: impl FnOnce(&T) -> io::Result<usize>) -> io::Result<usize> {
        let result = self.try_with(Direction::Read, f);
        if matches!(result, Ok(n) if n > 0 && n < buf_len) {
            self.registration.clear_ready(Direction::Read);
        }
        result
    }

    /// Tries a stream write once, without parking: `WouldBlock` if the send
    /// buffer is full (which, like a short write, marks it so).
    pub(crate) fn try_write_stream(
        &self,
        buf_len: usize,
        f: impl FnOnce(&T) -> io::Result<usize>,
    ) -> io::Result<usize> {
        let result = self.try_with(Direction::Write, f);
        if matches!(result, Ok(n) if n < buf_len) {
            self.registration.clear_ready(Direction::Write);
        }
        result
    }

    /// Parks until the source may be ready in `direction`, honouring the
    /// direction's timeout; `op` names the wait in `runtime::dump`.
    #[track_caller]
    pub(crate) fn wait_as(&self, direction: Direction, op: &'static str) -> io::Result<()> {
        self.registration.wait_timeout(direction, op, self.timeout(direction))
    }

    /// Parks until the source may be ready in `direction`, or `deadline`.
    #[track_caller]
    pub(crate) fn wait_until(
        &self,
        direction: Direction,
        op: &'static str,
        deadline: Option<Instant>,
    ) -> io::Result<()> {
        self.registration.wait(direction, op, deadline)
    }

    /// Forgets any readiness in `direction`, so the next operation waits for
    /// an event.
    pub(crate) fn clear_ready(&self, direction: Direction) {
        self.registration.clear_ready(direction);
    }

    /// Gives this handle the timeouts of `other` (for `try_clone`).
    pub(crate) fn copy_timeouts_from<U>(&self, other: &Source<U>) {
        self.read_timeout.set(other.read_timeout.get());
        self.write_timeout.set(other.write_timeout.get());
    }

    /// With `true`, operations are tried once and return `WouldBlock` instead
    /// of parking (the `net` types' `set_nonblocking`).
    pub(crate) fn set_nonblocking(&self, nonblocking: bool) {
        self.nonblocking.set(nonblocking);
    }

    /// Like `run`, with `&mut T`, for the `Read` and `Write` impls of
    /// `Source<T>`.
    #[track_caller]
    fn run_mut<R>(
        &mut self,
        direction: Direction,
        op: &'static str,
        mut f: impl FnMut(&mut T) -> io::Result<R>,
    ) -> io::Result<R> {
        let timeout = self.timeout(direction);
        let Source { registration, io, nonblocking, .. } = self;
        if nonblocking.get() {
            let result = f(io);
            if matches!(&result, Err(err) if err.kind() == io::ErrorKind::WouldBlock) {
                registration.clear_would_block(direction);
            }
            return result;
        }
        registration.io(direction, op, timeout, || f(io))
    }
}

/// `std::net` rejects a zero timeout; so do we.
fn check_timeout(timeout: Option<Duration>) -> io::Result<Option<Duration>> {
    match timeout {
        Some(t) if t.is_zero() => Err(io::Error::new(io::ErrorKind::InvalidInput, "cannot set a 0 duration timeout")),
        other => Ok(other),
    }
}

impl<T: AsFd> AsFd for Source<T> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.io.as_fd()
    }
}

impl<T: AsFd> AsRawFd for Source<T> {
    fn as_raw_fd(&self) -> RawFd {
        self.io.as_fd().as_raw_fd()
    }
}

impl<T: Read> Read for Source<T> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.run_mut(Direction::Read, "Source::read", |io| io.read(buf))
    }

    fn read_vectored(&mut self, bufs: &mut [io::IoSliceMut<'_>]) -> io::Result<usize> {
        self.run_mut(Direction::Read, "Source::read", |io| io.read_vectored(bufs))
    }
}

impl<T: Write> Write for Source<T> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.run_mut(Direction::Write, "Source::write", |io| io.write(buf))
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        self.run_mut(Direction::Write, "Source::write", |io| io.write_vectored(bufs))
    }

    fn flush(&mut self) -> io::Result<()> {
        self.run_mut(Direction::Write, "Source::flush", |io| io.flush())
    }
}

impl<T: fmt::Debug> fmt::Debug for Source<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Source")
            .field("io", &self.io)
            .field("fd", &self.registration.fd())
            .field("read_timeout", &self.read_timeout.get())
            .field("write_timeout", &self.write_timeout.get())
            .finish()
    }
}
