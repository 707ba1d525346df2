//! [`DatagramServer`]: a UDP server after gevent's `DatagramServer`: receive
//! in one greenlet, run a handler in a greenlet per datagram.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;

use runtime_scheduler::{Direction, Pool, task};

use super::{DEFAULT_MAX_ACCEPT, ServerHandle, State, accept_loop, serve_until_stopped};
use crate::net::{ToSocketAddrs, UdpSocket};

/// The largest UDP payload: every datagram fits in the receive buffer whole.
const MAX_DATAGRAM: usize = 65_536;

/// A UDP server that runs `handler(data, peer, socket)` in a new greenlet for
/// each datagram received; the handler answers through `socket` (gevent's
/// `DatagramServer`, whose handler calls `self.socket.sendto`).
///
/// As for [`StreamServer`](crate::net::StreamServer), the handler greenlets
/// belong to a [`Pool`] (of [`max_concurrency`](DatagramServer::max_concurrency),
/// or unbounded): while it is full, datagrams wait in the socket's receive
/// buffer (and beyond it, the kernel drops them). The returned
/// [`ServerHandle`] pauses, resumes and stops the server; stopping closes the
/// socket.
///
/// ```
/// use runtime::net::{DatagramServer, UdpSocket};
///
/// runtime::run(|| {
///     let server = DatagramServer::bind("127.0.0.1:0")?.start(|data, peer, socket| {
///         let _ = socket.send_to(&data.to_ascii_uppercase(), peer);
///     });
///     let client = UdpSocket::bind("127.0.0.1:0")?;
///     client.send_to(b"ping", server.local_addr().unwrap())?;
///     let mut buf = [0; 16];
///     let n = client.recv(&mut buf)?;
///     assert_eq!(&buf[..n], b"PING");
///     server.stop(std::time::Duration::from_secs(1));
///     Ok::<_, std::io::Error>(())
/// })?;
/// # Ok::<_, std::io::Error>(())
/// ```
///
/// A handler that panics is logged; the server carries on. Errors that a
/// receive reports about an earlier datagram (an ICMP "port unreachable"
/// for one the handler sent) are skipped.
pub struct DatagramServer {
    socket: UdpSocket,
    max_concurrency: Option<usize>,
    max_accept: usize,
    name: String,
    stack_size: Option<usize>,
}

impl DatagramServer {
    /// Binds a UDP socket to `addr`, as [`UdpSocket::bind`]: datagrams
    /// queue in its receive buffer until the server starts.
    ///
    /// # Errors
    ///
    /// As [`UdpSocket::bind`].
    ///
    /// # Panics
    ///
    /// Outside a runtime.
    pub fn bind(addr: impl ToSocketAddrs) -> io::Result<DatagramServer> {
        Ok(DatagramServer::from_socket(UdpSocket::bind(addr)?))
    }

    /// Serves the datagrams of an existing socket.
    pub fn from_socket(socket: UdpSocket) -> DatagramServer {
        DatagramServer {
            socket,
            max_concurrency: None,
            max_accept: DEFAULT_MAX_ACCEPT,
            name: "datagram".into(),
            stack_size: None,
        }
    }

    /// Runs at most `limit` handlers at once; more datagrams wait in the
    /// socket's receive buffer until a handler finishes.
    pub fn max_concurrency(mut self, limit: usize) -> DatagramServer {
        self.max_concurrency = Some(limit);
        self
    }

    /// Receives at most `n` datagrams in a row before letting the hub run
    /// the other greenlets (gevent's `max_accept`, 100 by default; 0 counts
    /// as 1).
    pub fn max_accept(mut self, n: usize) -> DatagramServer {
        self.max_accept = n.max(1);
        self
    }

    /// Names the handler greenlets (for tracing and reports); `"datagram"`
    /// by default.
    pub fn name(mut self, name: impl Into<String>) -> DatagramServer {
        self.name = name.into();
        self
    }

    /// The stack size of handler greenlets.
    pub fn stack_size(mut self, bytes: usize) -> DatagramServer {
        self.stack_size = Some(bytes);
        self
    }

    /// The address the socket is bound to.
    ///
    /// # Errors
    ///
    /// As [`UdpSocket::local_addr`].
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// Starts receiving in a new greenlet and returns a handle to pause,
    /// resume or stop the server. The handler gets each datagram's bytes,
    /// its sender, and the server's socket to answer with.
    ///
    /// # Panics
    ///
    /// Outside a runtime.
    #[track_caller]
    pub fn start<H>(self, handler: H) -> ServerHandle
    where
        H: Fn(&[u8], SocketAddr, &UdpSocket) + 'static,
    {
        let local_addr = self.socket.local_addr().ok();
        let receive = Rc::new(ReceiveLoop {
            socket: Rc::new(self.socket),
            max_accept: self.max_accept,
            builder: {
                let builder = task::Builder::new().name(self.name.clone());
                match self.stack_size {
                    Some(bytes) => builder.stack_size(bytes),
                    None => builder,
                }
            },
            handler: Rc::new(handler),
        });
        let name = format!("{}-receive", self.name);
        let pool = self.max_concurrency.map_or_else(Pool::unbounded, Pool::new);
        State::start(
            local_addr,
            pool,
            Rc::new(move |state| {
                let receive = receive.clone();
                task::Builder::new().name(name.clone()).spawn(move || receive.run(&state))
            }),
        )
    }

    /// Starts the server and parks until it is stopped; if the calling
    /// greenlet is killed meanwhile, the server is stopped first, as
    /// [`StreamServer::serve_forever`](crate::net::StreamServer::serve_forever)
    /// does.
    ///
    /// # Panics
    ///
    /// Outside a greenlet of the runtime.
    #[track_caller]
    pub fn serve_forever<H>(self, handler: H)
    where
        H: Fn(&[u8], SocketAddr, &UdpSocket) + 'static,
    {
        serve_until_stopped(self.start(handler));
    }
}

impl fmt::Debug for DatagramServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatagramServer")
            .field("socket", &self.socket)
            .field("max_concurrency", &self.max_concurrency)
            .field("max_accept", &self.max_accept)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// What a receiving greenlet needs; shared by the greenlets that
/// `start_accepting` starts in turn.
struct ReceiveLoop<H> {
    /// Shared with the handlers, which answer through it: the socket closes
    /// once the server has stopped and the last handler has finished.
    socket: Rc<UdpSocket>,
    max_accept: usize,
    builder: task::Builder,
    handler: Rc<H>,
}

impl<H: Fn(&[u8], SocketAddr, &UdpSocket) + 'static> ReceiveLoop<H> {
    /// Receives until killed; `state` is strong, as for the stream server.
    fn run(&self, state: &Rc<State>) {
        let mut buf = vec![0; MAX_DATAGRAM];
        let buf = &mut buf;
        accept_loop(
            state,
            self.max_accept,
            || !self.socket.may_be_ready(Direction::Read),
            || self.socket.recv_from(buf).map(|(n, peer)| (buf[..n].to_vec(), peer)),
            |(data, peer)| {
                let (handler, socket) = (self.handler.clone(), self.socket.clone());
                // Room was made before the receive and only this greenlet
                // spawns into the pool, so this does not park.
                drop(state.pool.spawn_with(self.builder.clone(), move || handler(&data, peer, &socket)));
            },
        );
    }
}
