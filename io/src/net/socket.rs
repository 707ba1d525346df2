//! [`TcpSocket`]: a TCP socket not yet listening or connected, to set options
//! that must come before `bind`, `listen` or `connect` (tokio's `TcpSocket`).

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};

use super::tcp::{TcpListener, TcpStream};

/// A TCP socket that has not yet been turned into a [`TcpListener`] or a
/// [`TcpStream`], shaped like tokio's `TcpSocket`: create it, set options
/// (some only work before `bind`), bind it, then [`listen`](TcpSocket::listen)
/// or [`connect`](TcpSocket::connect).
///
/// Its main use is one listener per hub on the same port, with
/// `SO_REUSEPORT`: the kernel spreads incoming connections over the
/// listeners, and each hub serves its own.
///
/// ```
/// use std::sync::Arc;
/// use runtime::net::{SocketAddr, TcpSocket};
/// use runtime::sync::AsyncResult;
///
/// // Hub 0 binds port 0; the other hubs bind the port it got.
/// let first: Arc<AsyncResult<SocketAddr>> = Arc::new(AsyncResult::new());
/// let addrs = runtime::Builder::new().hubs(2).run_each(move |i| -> std::io::Result<SocketAddr> {
///     let socket = TcpSocket::new_v4()?;
///     socket.set_reuseport(true)?;
///     socket.bind(if i == 0 { "127.0.0.1:0".parse().unwrap() } else { first.get() })?;
///     let listener = socket.listen(1024)?; // registered with this hub
///     if i == 0 {
///         first.set(listener.local_addr()?);
///     }
///     // ... serve it here, e.g. with `StreamServer::from_listener(listener)`.
///     listener.local_addr()
/// });
/// assert_eq!(addrs[0].as_ref().unwrap(), addrs[1].as_ref().unwrap());
/// ```
///
/// Creating the socket and setting its options work anywhere; `listen` and
/// `connect` register the result with the current hub, so they need a
/// runtime. The descriptor is non-blocking and close-on-exec from the start.
pub struct TcpSocket {
    socket: Socket,
}

impl TcpSocket {
    /// A new IPv4 TCP socket (`AF_INET`).
    ///
    /// # Errors
    ///
    /// What `socket(2)` reports, e.g. `EMFILE`.
    pub fn new_v4() -> io::Result<TcpSocket> {
        TcpSocket::new(Domain::IPV4)
    }

    /// A new IPv6 TCP socket (`AF_INET6`). Unless the system says otherwise
    /// (`net.ipv6.bindv6only`), it also accepts IPv4 through IPv4-mapped
    /// addresses.
    ///
    /// # Errors
    ///
    /// What `socket(2)` reports, e.g. `EAFNOSUPPORT` without IPv6.
    pub fn new_v6() -> io::Result<TcpSocket> {
        TcpSocket::new(Domain::IPV6)
    }

    fn new(domain: Domain) -> io::Result<TcpSocket> {
        // Close-on-exec is set by socket2 on creation; non-blocking mode is
        // what the hub needs for both listeners and streams.
        let socket = Socket::new(domain, Type::STREAM, Some(Protocol::TCP))?;
        socket.set_nonblocking(true)?;
        Ok(TcpSocket { socket })
    }

    /// Takes over a connected `std::net::TcpStream` as a socket, for setting
    /// options on it; [`connect`](TcpSocket::connect) on it fails.
    pub fn from_std_stream(stream: std::net::TcpStream) -> TcpSocket {
        TcpSocket { socket: Socket::from(stream) }
    }

    /// Sets `SO_REUSEADDR`: binding a listening address in `TIME_WAIT` (a
    /// server restarted at once) succeeds.
    ///
    /// # Errors
    ///
    /// What `setsockopt(2)` reports.
    pub fn set_reuseaddr(&self, reuseaddr: bool) -> io::Result<()> {
        self.socket.set_reuse_address(reuseaddr)
    }

    /// `SO_REUSEADDR`.
    ///
    /// # Errors
    ///
    /// What `getsockopt(2)` reports.
    pub fn reuseaddr(&self) -> io::Result<bool> {
        self.socket.reuse_address()
    }

    /// Sets `SO_REUSEPORT`: several sockets of this user, each with the
    /// option set before `bind`, may bind the same address and port. For
    /// listeners, the kernel spreads incoming connections over them (by a
    /// hash of the connection's addresses and ports), which is how each hub
    /// gets a listener of its own.
    ///
    /// # Errors
    ///
    /// What `setsockopt(2)` reports.
    pub fn set_reuseport(&self, reuseport: bool) -> io::Result<()> {
        self.socket.set_reuse_port(reuseport)
    }

    /// `SO_REUSEPORT`.
    ///
    /// # Errors
    ///
    /// What `getsockopt(2)` reports.
    pub fn reuseport(&self) -> io::Result<bool> {
        self.socket.reuse_port()
    }

    /// Sets `TCP_NODELAY` (disables Nagle's algorithm) on the socket; a
    /// stream from [`connect`](TcpSocket::connect) keeps it. (Set it on
    /// accepted streams with [`TcpStream::set_nodelay`] or
    /// [`StreamServer::nodelay`](crate::net::StreamServer::nodelay).)
    ///
    /// # Errors
    ///
    /// What `setsockopt(2)` reports.
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        self.socket.set_tcp_nodelay(nodelay)
    }

    /// `TCP_NODELAY`.
    ///
    /// # Errors
    ///
    /// What `getsockopt(2)` reports.
    pub fn nodelay(&self) -> io::Result<bool> {
        self.socket.tcp_nodelay()
    }

    /// Sets the size of the receive buffer (`SO_RCVBUF`). Linux doubles the
    /// value (for its bookkeeping) and clamps it to `net.core.rmem_max`; on
    /// a listener, accepted streams inherit it.
    ///
    /// # Errors
    ///
    /// What `setsockopt(2)` reports.
    pub fn set_recv_buffer_size(&self, size: u32) -> io::Result<()> {
        self.socket.set_recv_buffer_size(to_usize(size))
    }

    /// The size of the receive buffer (`SO_RCVBUF`), as the kernel reports it.
    ///
    /// # Errors
    ///
    /// What `getsockopt(2)` reports.
    pub fn recv_buffer_size(&self) -> io::Result<u32> {
        self.socket.recv_buffer_size().map(to_u32)
    }

    /// Sets the size of the send buffer (`SO_SNDBUF`). Linux doubles the
    /// value and clamps it to `net.core.wmem_max`; on a listener, accepted
    /// streams inherit it.
    ///
    /// # Errors
    ///
    /// What `setsockopt(2)` reports.
    pub fn set_send_buffer_size(&self, size: u32) -> io::Result<()> {
        self.socket.set_send_buffer_size(to_usize(size))
    }

    /// The size of the send buffer (`SO_SNDBUF`), as the kernel reports it.
    ///
    /// # Errors
    ///
    /// What `getsockopt(2)` reports.
    pub fn send_buffer_size(&self) -> io::Result<u32> {
        self.socket.send_buffer_size().map(to_u32)
    }

    /// Sets `SO_KEEPALIVE`: the kernel probes a connection that has been
    /// idle for long (two hours by default) and closes it if the peer is
    /// gone.
    ///
    /// # Errors
    ///
    /// What `setsockopt(2)` reports.
    pub fn set_keepalive(&self, keepalive: bool) -> io::Result<()> {
        self.socket.set_keepalive(keepalive)
    }

    /// `SO_KEEPALIVE`.
    ///
    /// # Errors
    ///
    /// What `getsockopt(2)` reports.
    pub fn keepalive(&self) -> io::Result<bool> {
        self.socket.keepalive()
    }

    /// Sets `SO_LINGER`: with `Some(duration)`, closing the socket waits (in
    /// the kernel) for unsent data up to `duration`, and `Some(0)` resets the
    /// connection on close; `None` is the default.
    ///
    /// # Errors
    ///
    /// What `setsockopt(2)` reports.
    pub fn set_linger(&self, linger: Option<Duration>) -> io::Result<()> {
        self.socket.set_linger(linger)
    }

    /// `SO_LINGER`.
    ///
    /// # Errors
    ///
    /// What `getsockopt(2)` reports.
    pub fn linger(&self) -> io::Result<Option<Duration>> {
        self.socket.linger()
    }

    /// The address the socket is bound to (`0.0.0.0:0` or `[::]:0` before
    /// `bind`; after binding port 0, the port the system chose).
    ///
    /// # Errors
    ///
    /// What `getsockname(2)` reports.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket
            .local_addr()?
            .as_socket()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not an IP socket address"))
    }

    /// Takes the pending socket error (`SO_ERROR`).
    ///
    /// # Errors
    ///
    /// What `getsockopt(2)` reports.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.socket.take_error()
    }

    /// Binds the socket to `addr` (port 0: the system picks a free port,
    /// which [`local_addr`](TcpSocket::local_addr) tells).
    ///
    /// # Errors
    ///
    /// What `bind(2)` reports: `AddrInUse` when another socket has the
    /// address and not both have `SO_REUSEPORT` (or, in `TIME_WAIT`,
    /// `SO_REUSEADDR`); `InvalidInput` for an address of the other family.
    pub fn bind(&self, addr: SocketAddr) -> io::Result<()> {
        self.socket.bind(&addr.into())
    }

    /// Starts listening, with room for `backlog` connections in the kernel's
    /// accept queue (clamped by `net.core.somaxconn`), and returns the
    /// listener, registered with the current hub. An unbound socket listens
    /// on a port the system picks, on every address.
    ///
    /// # Errors
    ///
    /// What `listen(2)` reports; if the hub cannot register the socket.
    ///
    /// # Panics
    ///
    /// Outside a runtime.
    #[track_caller]
    pub fn listen(self, backlog: u32) -> io::Result<TcpListener> {
        self.socket.listen(i32::try_from(backlog).unwrap_or(i32::MAX))?;
        TcpListener::from_nonblocking_std(self.socket.into())
    }

    /// Connects to `addr`, parking the calling greenlet until the connection
    /// is established (like [`TcpStream::connect`]), and returns the stream,
    /// registered with the current hub. Options set before (`TCP_NODELAY`,
    /// buffer sizes, a `bind` to a local address) carry over to the stream.
    ///
    /// # Errors
    ///
    /// What `connect(2)` reports, e.g. `ConnectionRefused`.
    ///
    /// # Panics
    ///
    /// Outside a greenlet of the runtime.
    #[track_caller]
    pub fn connect(self, addr: SocketAddr) -> io::Result<TcpStream> {
        match self.socket.connect(&addr.into()) {
            Ok(()) => {}
            Err(err) if err.raw_os_error() == Some(libc::EINPROGRESS) => {}
            Err(err) => return Err(err),
        }
        TcpStream::from_mio(mio::net::TcpStream::from_std(self.socket.into()))?.finish_connect(None)
    }
}

impl AsFd for TcpSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.socket.as_fd()
    }
}

impl AsRawFd for TcpSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.socket.as_raw_fd()
    }
}

impl fmt::Debug for TcpSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpSocket").field("addr", &self.local_addr().ok()).field("fd", &self.as_raw_fd()).finish()
    }
}

fn to_usize(size: u32) -> usize {
    usize::try_from(size).unwrap_or(usize::MAX)
}

fn to_u32(size: usize) -> u32 {
    u32::try_from(size).unwrap_or(u32::MAX)
}
