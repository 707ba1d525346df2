//! UDP: `UdpSocket`, shaped like `std::net`'s.

use std::fmt;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsFd, AsRawFd};

use super::addr::{ToSocketAddrs, each_addr};
use crate::source::Source;

/// A UDP socket; like `std::net::UdpSocket`, but blocking calls park only the
/// calling greenlet.
///
/// ```
/// use runtime::net::UdpSocket;
///
/// runtime::run(|| {
///     let server = UdpSocket::bind("127.0.0.1:0")?;
///     let addr = server.local_addr()?;
///     runtime::spawn(move || -> std::io::Result<()> {
///         let mut buf = [0; 64];
///         let (n, from) = server.recv_from(&mut buf)?; // parks until a datagram comes
///         server.send_to(&buf[..n], from).map(drop) // echo it
///     });
///     let socket = UdpSocket::bind("127.0.0.1:0")?;
///     socket.send_to(b"ping", addr)?;
///     let mut buf = [0; 64];
///     let (n, from) = socket.recv_from(&mut buf)?;
///     assert_eq!((&buf[..n], from), (&b"ping"[..], addr));
///     Ok::<_, std::io::Error>(())
/// })?;
/// # Ok::<_, std::io::Error>(())
/// ```
pub struct UdpSocket {
    source: Source<mio::net::UdpSocket>,
}

impl UdpSocket {
    /// Creates a socket bound to `addr` (the first of its addresses that can
    /// be bound).
    ///
    /// # Errors
    ///
    /// If no address could be bound.
    ///
    /// # Panics
    ///
    /// Outside a runtime.
    pub fn bind(addr: impl ToSocketAddrs) -> io::Result<UdpSocket> {
        each_addr(addr, |addr| Ok(UdpSocket { source: Source::from_nonblocking(mio::net::UdpSocket::bind(addr)?)? }))
    }

    /// Takes over a socket from `std::net`, putting it in non-blocking mode.
    ///
    /// # Errors
    ///
    /// If it cannot be made non-blocking or registered with the hub.
    pub fn from_std(socket: std::net::UdpSocket) -> io::Result<UdpSocket> {
        socket.set_nonblocking(true)?;
        Ok(UdpSocket { source: Source::from_nonblocking(mio::net::UdpSocket::from_std(socket))? })
    }

    /// Sets the default destination (and the only source `recv` accepts).
    ///
    /// # Errors
    ///
    /// If no address could be connected.
    pub fn connect(&self, addr: impl ToSocketAddrs) -> io::Result<()> {
        each_addr(addr, |addr| self.source.get_ref().connect(addr))
    }

    /// Sends a datagram to `addr`, parking while the socket's buffer is full.
    ///
    /// # Errors
    ///
    /// What `sendto(2)` reports.
    pub fn send_to(&self, buf: &[u8], addr: impl ToSocketAddrs) -> io::Result<usize> {
        let target = addr
            .to_socket_addrs()?
            .into_iter()
            .next()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no addresses to send data to"))?;
        self.source.write_with_as("UdpSocket::send_to", |socket| socket.send_to(buf, target))
    }

    /// Receives a datagram, parking until one arrives.
    ///
    /// # Errors
    ///
    /// What `recvfrom(2)` reports; `TimedOut` after the read timeout.
    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.source.read_with_as("UdpSocket::recv_from", |socket| socket.recv_from(buf))
    }

    /// Receives a datagram without removing it from the queue.
    ///
    /// # Errors
    ///
    /// As [`recv_from`](UdpSocket::recv_from).
    pub fn peek_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.source.read_with_as("UdpSocket::peek_from", |socket| socket.peek_from(buf))
    }

    /// Sends a datagram to the connected address.
    ///
    /// # Errors
    ///
    /// What `send(2)` reports.
    pub fn send(&self, buf: &[u8]) -> io::Result<usize> {
        self.source.write_with_as("UdpSocket::send", |socket| socket.send(buf))
    }

    /// Receives a datagram from the connected address.
    ///
    /// # Errors
    ///
    /// What `recv(2)` reports; `TimedOut` after the read timeout.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.source.read_with_as("UdpSocket::recv", |socket| socket.recv(buf))
    }

    /// Receives a datagram from the connected address without removing it.
    ///
    /// # Errors
    ///
    /// As [`recv`](UdpSocket::recv).
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.source.read_with_as("UdpSocket::peek", |socket| socket.peek(buf))
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
    /// `NotConnected`, or what `getpeername(2)` reports.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.source.get_ref().peer_addr()
    }

    /// A new handle to the same socket (a duplicated descriptor), with the same
    /// timeouts.
    ///
    /// # Errors
    ///
    /// If the descriptor cannot be duplicated or registered.
    pub fn try_clone(&self) -> io::Result<UdpSocket> {
        let socket = std::net::UdpSocket::from(self.source.get_ref().as_fd().try_clone_to_owned()?);
        let clone = UdpSocket::from_std(socket)?;
        clone.source.copy_timeouts_from(&self.source);
        Ok(clone)
    }

    /// Sets `SO_BROADCAST`.
    ///
    /// # Errors
    ///
    /// What `setsockopt(2)` reports.
    pub fn set_broadcast(&self, on: bool) -> io::Result<()> {
        self.source.get_ref().set_broadcast(on)
    }

    /// `SO_BROADCAST`.
    ///
    /// # Errors
    ///
    /// What `getsockopt(2)` reports.
    pub fn broadcast(&self) -> io::Result<bool> {
        self.source.get_ref().broadcast()
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

    /// Sets `IP_MULTICAST_LOOP`.
    ///
    /// # Errors
    ///
    /// What `setsockopt(2)` reports.
    pub fn set_multicast_loop_v4(&self, on: bool) -> io::Result<()> {
        self.source.get_ref().set_multicast_loop_v4(on)
    }

    /// Sets `IP_MULTICAST_TTL`.
    ///
    /// # Errors
    ///
    /// What `setsockopt(2)` reports.
    pub fn set_multicast_ttl_v4(&self, ttl: u32) -> io::Result<()> {
        self.source.get_ref().set_multicast_ttl_v4(ttl)
    }

    /// Sets `IPV6_MULTICAST_LOOP`.
    ///
    /// # Errors
    ///
    /// What `setsockopt(2)` reports.
    pub fn set_multicast_loop_v6(&self, on: bool) -> io::Result<()> {
        self.source.get_ref().set_multicast_loop_v6(on)
    }

    /// Joins an IPv4 multicast group.
    ///
    /// # Errors
    ///
    /// What `setsockopt(2)` reports.
    pub fn join_multicast_v4(&self, multiaddr: &Ipv4Addr, interface: &Ipv4Addr) -> io::Result<()> {
        self.source.get_ref().join_multicast_v4(multiaddr, interface)
    }

    /// Joins an IPv6 multicast group.
    ///
    /// # Errors
    ///
    /// What `setsockopt(2)` reports.
    pub fn join_multicast_v6(&self, multiaddr: &Ipv6Addr, interface: u32) -> io::Result<()> {
        self.source.get_ref().join_multicast_v6(multiaddr, interface)
    }

    /// Leaves an IPv4 multicast group.
    ///
    /// # Errors
    ///
    /// What `setsockopt(2)` reports.
    pub fn leave_multicast_v4(&self, multiaddr: &Ipv4Addr, interface: &Ipv4Addr) -> io::Result<()> {
        self.source.get_ref().leave_multicast_v4(multiaddr, interface)
    }

    /// Leaves an IPv6 multicast group.
    ///
    /// # Errors
    ///
    /// What `setsockopt(2)` reports.
    pub fn leave_multicast_v6(&self, multiaddr: &Ipv6Addr, interface: u32) -> io::Result<()> {
        self.source.get_ref().leave_multicast_v6(multiaddr, interface)
    }
}

super::impl_timeouts!(UdpSocket);
super::impl_socket!(UdpSocket);

impl fmt::Debug for UdpSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UdpSocket").field("addr", &self.local_addr().ok()).field("fd", &self.as_raw_fd()).finish()
    }
}
