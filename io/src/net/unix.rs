//! Unix domain sockets: `UnixListener`, `UnixStream` and `UnixDatagram`,
//! shaped like `std::os::unix::net`'s.

use std::fmt;
use std::io;
use std::net::Shutdown;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::net::SocketAddr;
use std::path::Path;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use runtime_scheduler::Direction;

use crate::source::Source;

/// How often `UnixStream::connect` retries a listener whose backlog is full,
/// and how long it sleeps between attempts.
const CONNECT_RETRIES: u32 = 1000;
const CONNECT_RETRY_DELAY: Duration = Duration::from_millis(1);

/// A Unix stream socket server; like `std::os::unix::net::UnixListener`, but
/// `accept` parks only the calling greenlet.
///
/// ```
/// use std::io::{Read, Write};
/// use runtime::net::{UnixListener, UnixStream};
///
/// let path = std::env::temp_dir().join(format!("runtime-doc-{}.sock", std::process::id()));
/// runtime::run(move || {
///     let listener = UnixListener::bind(&path)?;
///     let to = path.clone();
///     runtime::spawn(move || UnixStream::connect(&to)?.write_all(b"hi"));
///     let (mut conn, _) = listener.accept()?;
///     let mut got = String::new();
///     conn.read_to_string(&mut got)?; // the client closed after writing
///     assert_eq!(got, "hi");
///     std::fs::remove_file(&path)
/// })?;
/// # Ok::<_, std::io::Error>(())
/// ```
pub struct UnixListener {
    source: Source<mio::net::UnixListener>,
}

impl UnixListener {
    /// Creates a listener bound to the socket file `path`.
    ///
    /// # Errors
    ///
    /// What `bind(2)` reports, e.g. `AddrInUse` if the file exists.
    ///
    /// # Panics
    ///
    /// Outside a runtime.
    pub fn bind(path: impl AsRef<Path>) -> io::Result<UnixListener> {
        Ok(UnixListener { source: Source::from_nonblocking(mio::net::UnixListener::bind(path)?)? })
    }

    /// Takes over a listener from `std`, putting it in non-blocking mode.
    ///
    /// # Errors
    ///
    /// If it cannot be made non-blocking or registered with the hub.
    pub fn from_std(listener: std::os::unix::net::UnixListener) -> io::Result<UnixListener> {
        listener.set_nonblocking(true)?;
        Ok(UnixListener { source: Source::from_nonblocking(mio::net::UnixListener::from_std(listener))? })
    }

    /// Accepts a connection, parking until one arrives.
    ///
    /// # Errors
    ///
    /// What `accept(2)` reports.
    pub fn accept(&self) -> io::Result<(UnixStream, SocketAddr)> {
        let (stream, addr) = self.source.read_with_as("UnixListener::accept", mio::net::UnixListener::accept)?;
        Ok((UnixStream::from_mio(stream)?, addr))
    }

    /// Polls for a connection, for async code: `Ready` with the new stream
    /// once one is there; otherwise `Pending`, and the hub's reactor wakes
    /// `cx`'s waker when a connection arrives. See
    /// [`TcpListener::poll_accept`](super::TcpListener::poll_accept).
    ///
    /// # Errors
    ///
    /// What `accept(2)` reports; an error if the listener belongs to another
    /// hub or to a runtime that has stopped.
    pub fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<(UnixStream, SocketAddr)>> {
        let (stream, addr) = ready!(self.source.poll_read_with(cx, mio::net::UnixListener::accept))?;
        Poll::Ready(UnixStream::from_mio(stream).map(|stream| (stream, addr)))
    }

    /// An iterator accepting connections forever.
    pub fn incoming(&self) -> UnixIncoming<'_> {
        UnixIncoming { listener: self }
    }

    /// The address the listener is bound to.
    ///
    /// # Errors
    ///
    /// What `getsockname(2)` reports.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.source.get_ref().local_addr()
    }

    /// Gives `accept` a timeout (`None`: wait forever); expiry is `TimedOut`.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for a zero duration, as in `std`.
    pub fn set_accept_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.source.set_read_timeout(timeout)
    }

    /// A new handle to the same socket (a duplicated descriptor).
    ///
    /// # Errors
    ///
    /// If the descriptor cannot be duplicated or registered.
    pub fn try_clone(&self) -> io::Result<UnixListener> {
        let fd = self.source.get_ref().as_fd().try_clone_to_owned()?;
        UnixListener::from_std(std::os::unix::net::UnixListener::from(fd))
    }
}

impl fmt::Debug for UnixListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UnixListener").field("addr", &self.local_addr().ok()).field("fd", &self.as_raw_fd()).finish()
    }
}

/// An iterator over incoming connections, from [`UnixListener::incoming`].
/// It never returns `None`.
#[derive(Debug)]
pub struct UnixIncoming<'a> {
    listener: &'a UnixListener,
}

impl Iterator for UnixIncoming<'_> {
    type Item = io::Result<UnixStream>;
    fn next(&mut self) -> Option<io::Result<UnixStream>> {
        Some(self.listener.accept().map(|(stream, _)| stream))
    }
}

/// A Unix stream socket; like `std::os::unix::net::UnixStream`, but blocking
/// calls park only the calling greenlet. `Read` and `Write` are implemented
/// for `&UnixStream` too.
///
/// ```
/// use std::io::{Read, Write};
/// use runtime::net::UnixStream;
///
/// runtime::run(|| {
///     let (mut a, mut b) = UnixStream::pair()?;
///     runtime::spawn(move || a.write_all(b"hi"));
///     let mut buf = [0; 2];
///     b.read_exact(&mut buf)?;
///     assert_eq!(&buf, b"hi");
///     Ok::<_, std::io::Error>(())
/// })?;
/// # Ok::<_, std::io::Error>(())
/// ```
pub struct UnixStream {
    source: Source<mio::net::UnixStream>,
}

impl UnixStream {
    /// Connects to the socket file `path`. If the listener's backlog is full,
    /// retries for about a second (parking between attempts) before failing.
    ///
    /// # Errors
    ///
    /// What `connect(2)` reports, e.g. `NotFound` or `ConnectionRefused`.
    ///
    /// # Panics
    ///
    /// Outside a greenlet of the runtime.
    pub fn connect(path: impl AsRef<Path>) -> io::Result<UnixStream> {
        let path = path.as_ref();
        let mut attempts = 0;
        let stream = loop {
            match mio::net::UnixStream::connect(path) {
                Err(err) if err.kind() == io::ErrorKind::WouldBlock && attempts < CONNECT_RETRIES => {
                    attempts += 1;
                    runtime_scheduler::sleep(CONNECT_RETRY_DELAY);
                }
                other => break UnixStream::from_mio(other?)?,
            }
        };
        loop {
            stream.source.wait_as(Direction::Write, "UnixStream::connect")?;
            if let Some(err) = stream.take_error()? {
                return Err(err);
            }
            match stream.source.get_ref().peer_addr() {
                Ok(_) => return Ok(stream),
                Err(err) if err.kind() == io::ErrorKind::NotConnected => stream.source.clear_ready(Direction::Write),
                Err(err) => return Err(err),
            }
        }
    }

    /// A pair of connected sockets.
    ///
    /// # Errors
    ///
    /// What `socketpair(2)` reports.
    ///
    /// # Panics
    ///
    /// Outside a runtime.
    pub fn pair() -> io::Result<(UnixStream, UnixStream)> {
        let (a, b) = mio::net::UnixStream::pair()?;
        Ok((UnixStream::from_mio(a)?, UnixStream::from_mio(b)?))
    }

    pub(crate) fn from_mio(stream: mio::net::UnixStream) -> io::Result<UnixStream> {
        Ok(UnixStream { source: Source::from_nonblocking(stream)? })
    }

    /// Takes over a socket from `std`, putting it in non-blocking mode.
    ///
    /// # Errors
    ///
    /// If it cannot be made non-blocking or registered with the hub.
    pub fn from_std(stream: std::os::unix::net::UnixStream) -> io::Result<UnixStream> {
        stream.set_nonblocking(true)?;
        UnixStream::from_mio(mio::net::UnixStream::from_std(stream))
    }

    /// The local address.
    ///
    /// # Errors
    ///
    /// What `getsockname(2)` reports.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.source.get_ref().local_addr()
    }

    /// The address of the peer.
    ///
    /// # Errors
    ///
    /// What `getpeername(2)` reports.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.source.get_ref().peer_addr()
    }

    /// Shuts down reading, writing or both.
    ///
    /// # Errors
    ///
    /// What `shutdown(2)` reports.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.source.get_ref().shutdown(how)
    }

    /// A new handle to the same socket (a duplicated descriptor), with the same
    /// timeouts.
    ///
    /// # Errors
    ///
    /// If the descriptor cannot be duplicated or registered.
    pub fn try_clone(&self) -> io::Result<UnixStream> {
        let fd = self.source.get_ref().as_fd().try_clone_to_owned()?;
        let clone = UnixStream::from_std(std::os::unix::net::UnixStream::from(fd))?;
        clone.source.copy_timeouts_from(&self.source);
        Ok(clone)
    }
}

super::impl_stream_io!(UnixStream);
super::impl_async_stream_io!(UnixStream);
super::impl_timeouts!(UnixStream);
super::impl_socket!(UnixStream);
super::impl_socket!(UnixListener);
super::impl_timeouts!(UnixDatagram);
super::impl_socket!(UnixDatagram);

impl fmt::Debug for UnixStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UnixStream").field("fd", &self.as_raw_fd()).finish()
    }
}

/// A Unix datagram socket; like `std::os::unix::net::UnixDatagram`, but
/// blocking calls park only the calling greenlet.
///
/// ```
/// use runtime::net::UnixDatagram;
///
/// runtime::run(|| {
///     let (a, b) = UnixDatagram::pair()?;
///     runtime::spawn(move || a.send(b"ping"));
///     let mut buf = [0; 16];
///     let n = b.recv(&mut buf)?; // parks until the datagram arrives
///     assert_eq!(&buf[..n], b"ping");
///     Ok::<_, std::io::Error>(())
/// })?;
/// # Ok::<_, std::io::Error>(())
/// ```
pub struct UnixDatagram {
    source: Source<mio::net::UnixDatagram>,
}

impl UnixDatagram {
    /// Creates a socket bound to the socket file `path`.
    ///
    /// # Errors
    ///
    /// What `bind(2)` reports.
    ///
    /// # Panics
    ///
    /// Outside a runtime.
    pub fn bind(path: impl AsRef<Path>) -> io::Result<UnixDatagram> {
        UnixDatagram::from_mio(mio::net::UnixDatagram::bind(path)?)
    }

    /// A socket bound to no address.
    ///
    /// # Errors
    ///
    /// What `socket(2)` reports.
    pub fn unbound() -> io::Result<UnixDatagram> {
        UnixDatagram::from_mio(mio::net::UnixDatagram::unbound()?)
    }

    /// A pair of connected sockets.
    ///
    /// # Errors
    ///
    /// What `socketpair(2)` reports.
    pub fn pair() -> io::Result<(UnixDatagram, UnixDatagram)> {
        let (a, b) = mio::net::UnixDatagram::pair()?;
        Ok((UnixDatagram::from_mio(a)?, UnixDatagram::from_mio(b)?))
    }

    fn from_mio(socket: mio::net::UnixDatagram) -> io::Result<UnixDatagram> {
        Ok(UnixDatagram { source: Source::from_nonblocking(socket)? })
    }

    /// Takes over a socket from `std`, putting it in non-blocking mode.
    ///
    /// # Errors
    ///
    /// If it cannot be made non-blocking or registered with the hub.
    pub fn from_std(socket: std::os::unix::net::UnixDatagram) -> io::Result<UnixDatagram> {
        socket.set_nonblocking(true)?;
        UnixDatagram::from_mio(mio::net::UnixDatagram::from_std(socket))
    }

    /// A new handle to the same socket (a duplicated descriptor), with the same
    /// timeouts.
    ///
    /// # Errors
    ///
    /// If the descriptor cannot be duplicated or registered.
    pub fn try_clone(&self) -> io::Result<UnixDatagram> {
        let fd = self.source.get_ref().as_fd().try_clone_to_owned()?;
        let clone = UnixDatagram::from_std(std::os::unix::net::UnixDatagram::from(fd))?;
        clone.source.copy_timeouts_from(&self.source);
        Ok(clone)
    }

    /// Sets the default destination.
    ///
    /// # Errors
    ///
    /// What `connect(2)` reports.
    pub fn connect(&self, path: impl AsRef<Path>) -> io::Result<()> {
        self.source.get_ref().connect(path)
    }

    /// Sends a datagram to `path`.
    ///
    /// # Errors
    ///
    /// What `sendto(2)` reports.
    pub fn send_to(&self, buf: &[u8], path: impl AsRef<Path>) -> io::Result<usize> {
        let path = path.as_ref();
        self.source.write_with_as("UnixDatagram::send_to", |socket| socket.send_to(buf, path))
    }

    /// Receives a datagram and its sender's address.
    ///
    /// # Errors
    ///
    /// What `recvfrom(2)` reports; `TimedOut` after the read timeout.
    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.source.read_with_as("UnixDatagram::recv_from", |socket| socket.recv_from(buf))
    }

    /// Sends a datagram to the connected address.
    ///
    /// # Errors
    ///
    /// What `send(2)` reports.
    pub fn send(&self, buf: &[u8]) -> io::Result<usize> {
        self.source.write_with_as("UnixDatagram::send", |socket| socket.send(buf))
    }

    /// Receives a datagram.
    ///
    /// # Errors
    ///
    /// What `recv(2)` reports; `TimedOut` after the read timeout.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.source.read_with_as("UnixDatagram::recv", |socket| socket.recv(buf))
    }

    /// The local address.
    ///
    /// # Errors
    ///
    /// What `getsockname(2)` reports.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.source.get_ref().local_addr()
    }

    /// The connected address.
    ///
    /// # Errors
    ///
    /// What `getpeername(2)` reports.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.source.get_ref().peer_addr()
    }

    /// Shuts down reading, writing or both.
    ///
    /// # Errors
    ///
    /// What `shutdown(2)` reports.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.source.get_ref().shutdown(how)
    }
}

impl fmt::Debug for UnixDatagram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UnixDatagram").field("fd", &self.as_raw_fd()).finish()
    }
}
