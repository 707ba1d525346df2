//! TCP: `TcpListener` and `TcpStream`, shaped like `std::net`'s.

use std::fmt;
use std::io;
use std::net::{Shutdown, SocketAddr};
use std::os::fd::{AsFd, AsRawFd};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use runtime_scheduler::Direction;
use socket2::{Domain, Protocol, Socket, Type};

use super::addr::{ToSocketAddrs, each_addr};
use crate::source::Source;

/// Where Linux keeps the most connections a listening socket may queue for
/// `accept` (larger backlogs are cut down to it).
const SOMAXCONN_PATH: &str = "/proc/sys/net/core/somaxconn";

/// The backlog when `somaxconn` cannot be read: Linux's default since 5.4.
const FALLBACK_BACKLOG: i32 = 4096;

/// The listen backlog of new listeners: the system's `somaxconn`, read now
/// (std uses 128, which a burst of connections overflows; the kernel caps
/// any larger value at `somaxconn` anyway, so this is the most it allows).
fn default_backlog() -> i32 {
    std::fs::read_to_string(SOMAXCONN_PATH).ok().as_deref().and_then(parse_somaxconn).unwrap_or(FALLBACK_BACKLOG)
}

/// Parses the contents of `/proc/sys/net/core/somaxconn`.
fn parse_somaxconn(text: &str) -> Option<i32> {
    text.trim().parse::<u32>().ok().filter(|&n| n > 0).map(|n| i32::try_from(n).unwrap_or(i32::MAX))
}

/// A TCP socket server, listening for connections; like
/// `std::net::TcpListener`, but `accept` parks only the calling greenlet.
///
/// ```no_run
/// use runtime::net::TcpListener;
///
/// runtime::run(|| {
///     let listener = TcpListener::bind("127.0.0.1:8080")?;
///     for stream in listener.incoming() {
///         let stream = stream?;
///         runtime::spawn(move || drop(stream)); // handle the connection
///     }
///     Ok::<_, std::io::Error>(())
/// })?;
/// # Ok::<_, std::io::Error>(())
/// ```
pub struct TcpListener {
    source: Source<mio::net::TcpListener>,
}

impl TcpListener {
    /// Creates a listener bound to `addr` (the first of its addresses that
    /// can be bound), with `SO_REUSEADDR` set and a listen backlog of the
    /// system's `somaxconn` (read from `/proc/sys/net/core/somaxconn` now;
    /// 4096 if it cannot be read). [`StreamServer::backlog`] sets another.
    ///
    /// [`StreamServer::backlog`]: crate::net::StreamServer::backlog
    ///
    /// # Errors
    ///
    /// If no address could be bound (the error of the last attempt).
    ///
    /// # Panics
    ///
    /// Outside a runtime.
    pub fn bind(addr: impl ToSocketAddrs) -> io::Result<TcpListener> {
        let backlog = default_backlog();
        each_addr(addr, |addr| {
            let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
            socket.set_reuse_address(true)?;
            socket.set_nonblocking(true)?;
            socket.bind(&addr.into())?;
            socket.listen(backlog)?;
            let listener = mio::net::TcpListener::from_std(socket.into());
            Ok(TcpListener { source: Source::from_nonblocking(listener)? })
        })
    }

    /// Takes over a listener from `std::net`, putting it in non-blocking mode.
    ///
    /// # Errors
    ///
    /// If it cannot be made non-blocking or registered with the hub.
    pub fn from_std(listener: std::net::TcpListener) -> io::Result<TcpListener> {
        listener.set_nonblocking(true)?;
        TcpListener::from_nonblocking_std(listener)
    }

    /// Registers a listener that is in non-blocking mode already.
    #[track_caller]
    pub(crate) fn from_nonblocking_std(listener: std::net::TcpListener) -> io::Result<TcpListener> {
        Ok(TcpListener { source: Source::from_nonblocking(mio::net::TcpListener::from_std(listener))? })
    }

    /// Accepts a connection, parking until one arrives.
    ///
    /// # Errors
    ///
    /// What `accept(2)` reports, e.g. `EMFILE` when out of file descriptors.
    pub fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let (stream, addr) = self.source.read_with_as("TcpListener::accept", mio::net::TcpListener::accept)?;
        Ok((TcpStream::from_mio(stream)?, addr))
    }

    /// Polls for a connection, for async code: `Ready` with the new stream
    /// (registered with the hub, usable from blocking and async code alike)
    /// once one is there; otherwise `Pending`, and the hub's reactor wakes
    /// `cx`'s waker when a connection arrives. Never parks; ignores the accept
    /// timeout and [`set_nonblocking`](TcpListener::set_nonblocking). Only
    /// the last task to poll is woken.
    ///
    /// ```
    /// use runtime::net::{TcpListener, TcpStream};
    ///
    /// runtime::run(|| {
    ///     let listener = TcpListener::bind("127.0.0.1:0")?;
    ///     let addr = listener.local_addr()?;
    ///     runtime::spawn(move || TcpStream::connect(addr));
    ///     let accept = std::future::poll_fn(|cx| listener.poll_accept(cx));
    ///     let (_stream, peer) = runtime::block_on(accept)?;
    ///     assert!(peer.ip().is_loopback());
    ///     Ok::<_, std::io::Error>(())
    /// })?;
    /// # Ok::<_, std::io::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// What `accept(2)` reports; an error if the listener belongs to another
    /// hub or to a runtime that has stopped.
    pub fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<(TcpStream, SocketAddr)>> {
        let (stream, addr) = ready!(self.source.poll_read_with(cx, mio::net::TcpListener::accept))?;
        Poll::Ready(TcpStream::from_mio(stream).map(|stream| (stream, addr)))
    }

    /// An iterator accepting connections forever.
    pub fn incoming(&self) -> Incoming<'_> {
        Incoming { listener: self }
    }

    /// The address the listener is bound to.
    ///
    /// # Errors
    ///
    /// What `getsockname(2)` reports.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.source.get_ref().local_addr()
    }

    /// A new handle to the same socket (a duplicated descriptor).
    ///
    /// # Errors
    ///
    /// If the descriptor cannot be duplicated or registered.
    pub fn try_clone(&self) -> io::Result<TcpListener> {
        let listener = std::net::TcpListener::from(self.source.get_ref().as_fd().try_clone_to_owned()?);
        TcpListener::from_std(listener)
    }

    /// Sets `IP_TTL`.
    ///
    /// # Errors
    ///
    /// What `setsockopt(2)` reports.
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.source.get_ref().set_ttl(ttl)
    }

    /// `IP_TTL`.
    ///
    /// # Errors
    ///
    /// What `getsockopt(2)` reports.
    pub fn ttl(&self) -> io::Result<u32> {
        self.source.get_ref().ttl()
    }

    /// Gives `accept` a timeout (`None`: wait forever); expiry is `TimedOut`.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for a zero duration, as in `std`.
    pub fn set_accept_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.source.set_read_timeout(timeout)
    }
}

impl fmt::Debug for TcpListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpListener").field("addr", &self.local_addr().ok()).field("fd", &self.as_raw_fd()).finish()
    }
}

/// An iterator over incoming connections, from [`TcpListener::incoming`].
/// It never returns `None`.
#[derive(Debug)]
pub struct Incoming<'a> {
    listener: &'a TcpListener,
}

impl Iterator for Incoming<'_> {
    type Item = io::Result<TcpStream>;
    fn next(&mut self) -> Option<io::Result<TcpStream>> {
        Some(self.listener.accept().map(|(stream, _)| stream))
    }
}

/// A TCP stream; like `std::net::TcpStream`, but blocking calls park only the
/// calling greenlet.
///
/// `Read` and `Write` are implemented for `&TcpStream` too, so one greenlet
/// can read while another writes the same socket:
///
/// ```
/// use std::io::{Read, Write};
/// use std::rc::Rc;
/// use runtime::net::{TcpListener, TcpStream};
///
/// runtime::run(|| {
///     let listener = TcpListener::bind("127.0.0.1:0")?;
///     let addr = listener.local_addr()?;
///     runtime::spawn(move || -> std::io::Result<u64> {
///         let (conn, _) = listener.accept()?;
///         std::io::copy(&mut &conn, &mut &conn) // an echo server
///     });
///     let stream = Rc::new(TcpStream::connect(addr)?);
///     let writer = stream.clone();
///     runtime::spawn(move || (&*writer).write_all(b"hello\n"));
///     let mut buf = [0; 6];
///     (&*stream).read_exact(&mut buf)?; // parks until the echo comes back
///     assert_eq!(&buf, b"hello\n");
///     Ok::<_, std::io::Error>(())
/// })?;
/// # Ok::<_, std::io::Error>(())
/// ```
///
/// Read and write timeouts belong to this handle (a [`try_clone`](TcpStream::try_clone)
/// starts with the same values but keeps its own).
pub struct TcpStream {
    source: Source<mio::net::TcpStream>,
}

impl TcpStream {
    /// Connects to `addr`, trying each of its addresses in turn; parks while
    /// the connection is being established.
    ///
    /// # Errors
    ///
    /// The error of the last attempt, e.g. `ConnectionRefused`.
    ///
    /// # Panics
    ///
    /// Outside a greenlet of the runtime.
    pub fn connect(addr: impl ToSocketAddrs) -> io::Result<TcpStream> {
        each_addr(addr, |addr| TcpStream::connect_one(addr, None))
    }

    /// Connects to `addr`, giving up with `TimedOut` after `timeout`.
    ///
    /// # Errors
    ///
    /// `TimedOut`, or the connection error; `InvalidInput` for a zero timeout.
    pub fn connect_timeout(addr: &SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
        if timeout.is_zero() {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "cannot set a 0 duration timeout"));
        }
        TcpStream::connect_one(*addr, Some(timeout))
    }

    fn connect_one(addr: SocketAddr, timeout: Option<Duration>) -> io::Result<TcpStream> {
        TcpStream::from_mio(mio::net::TcpStream::connect(addr)?)?.finish_connect(timeout)
    }

    /// Parks until a connection started on this stream (a non-blocking
    /// `connect(2)` that said `EINPROGRESS`) is established, or fails, or
    /// `timeout` passes.
    #[track_caller]
    pub(crate) fn finish_connect(self, timeout: Option<Duration>) -> io::Result<TcpStream> {
        self.source.set_write_timeout(timeout)?;
        // mio's recipe: wait until writable, then check for an error, then
        // check that the socket is connected.
        loop {
            self.source.wait_as(Direction::Write, "TcpStream::connect")?;
            if let Some(err) = self.take_error()? {
                return Err(err);
            }
            match self.peer_addr() {
                Ok(_) => break,
                Err(err) if err.kind() == io::ErrorKind::NotConnected => self.source.clear_ready(Direction::Write),
                Err(err) => return Err(err),
            }
        }
        self.source.set_write_timeout(None)?;
        Ok(self)
    }

    pub(crate) fn from_mio(stream: mio::net::TcpStream) -> io::Result<TcpStream> {
        Ok(TcpStream { source: Source::from_nonblocking(stream)? })
    }

    /// Takes over a stream from `std::net`, putting it in non-blocking mode.
    ///
    /// # Errors
    ///
    /// If it cannot be made non-blocking or registered with the hub.
    pub fn from_std(stream: std::net::TcpStream) -> io::Result<TcpStream> {
        stream.set_nonblocking(true)?;
        TcpStream::from_mio(mio::net::TcpStream::from_std(stream))
    }

    /// The address of the peer.
    ///
    /// # Errors
    ///
    /// `NotConnected`, or what `getpeername(2)` reports.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.source.get_ref().peer_addr()
    }

    /// The local address.
    ///
    /// # Errors
    ///
    /// What `getsockname(2)` reports.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.source.get_ref().local_addr()
    }

    /// Shuts down reading, writing or both; the peer sees end-of-file after a
    /// write shutdown.
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
    pub fn try_clone(&self) -> io::Result<TcpStream> {
        let stream = std::net::TcpStream::from(self.source.get_ref().as_fd().try_clone_to_owned()?);
        let clone = TcpStream::from_std(stream)?;
        clone.source.copy_timeouts_from(&self.source);
        Ok(clone)
    }

    /// Reads without removing the data from the socket's queue.
    ///
    /// # Errors
    ///
    /// As `read`.
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.source.read_with_as("TcpStream::peek", |stream| stream.peek(buf))
    }

    /// Sets `TCP_NODELAY` (disables Nagle's algorithm).
    ///
    /// # Errors
    ///
    /// What `setsockopt(2)` reports.
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        self.source.get_ref().set_nodelay(nodelay)
    }

    /// `TCP_NODELAY`.
    ///
    /// # Errors
    ///
    /// What `getsockopt(2)` reports.
    pub fn nodelay(&self) -> io::Result<bool> {
        self.source.get_ref().nodelay()
    }

    /// Sets `IP_TTL`.
    ///
    /// # Errors
    ///
    /// What `setsockopt(2)` reports.
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.source.get_ref().set_ttl(ttl)
    }

    /// `IP_TTL`.
    ///
    /// # Errors
    ///
    /// What `getsockopt(2)` reports.
    pub fn ttl(&self) -> io::Result<u32> {
        self.source.get_ref().ttl()
    }
}

super::impl_stream_io!(TcpStream);
super::impl_async_stream_io!(TcpStream);
super::impl_timeouts!(TcpStream);
super::impl_socket!(TcpStream);
super::impl_socket!(TcpListener);

impl fmt::Debug for TcpStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpStream")
            .field("addr", &self.local_addr().ok())
            .field("peer", &self.peer_addr().ok())
            .field("fd", &self.as_raw_fd())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn somaxconn_parses() {
        assert_eq!(parse_somaxconn("4096\n"), Some(4096));
        assert_eq!(parse_somaxconn(" 128 "), Some(128));
        assert_eq!(parse_somaxconn("4294967295\n"), Some(i32::MAX));
        assert_eq!(parse_somaxconn("0\n"), None);
        assert_eq!(parse_somaxconn("-1"), None);
        assert_eq!(parse_somaxconn(""), None);
        assert_eq!(parse_somaxconn("lots"), None);
    }

    #[test]
    fn the_default_backlog_is_somaxconn() {
        let expected = std::fs::read_to_string(SOMAXCONN_PATH)
            .map(|text| text.trim().parse::<i32>().expect("somaxconn is a number"))
            .unwrap_or(FALLBACK_BACKLOG);
        assert_eq!(default_backlog(), expected);
    }
}
