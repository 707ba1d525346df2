//! [`StreamServer`]: a TCP server after gevent's `StreamServer`: accept in
//! one greenlet, run a handler in a greenlet per connection.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;

use runtime_scheduler::{Direction, Pool, task};

use super::{DEFAULT_MAX_ACCEPT, ServerHandle, State, accept_loop, serve_until_stopped};
use crate::net::{TcpListener, TcpStream, ToSocketAddrs};

/// A hook run on each accepted connection before its handler.
type OnConnect = Rc<dyn Fn(&TcpStream) -> io::Result<()>>;

/// A TCP server that runs `handler(stream, peer)` in a new greenlet for each
/// connection.
///
/// As in gevent, the connection greenlets belong to a [`Pool`] (of
/// `max_connections`, or unbounded): the server waits for room in the pool
/// before it accepts, and stopping joins the pool for the grace period, then
/// kills what is left.
///
/// ```no_run
/// use std::io::{Read, Write};
/// use std::time::Duration;
/// use runtime::net::StreamServer;
///
/// runtime::run(|| {
///     let server = StreamServer::new("127.0.0.1:7000").max_connections(10_000).start(|mut stream, _peer| {
///         let mut buf = [0; 1024];
///         while let Ok(n @ 1..) = stream.read(&mut buf) {
///             if stream.write_all(&buf[..n]).is_err() {
///                 break;
///             }
///         }
///     })?;
///     runtime::signal::ctrl_c()?;
///     server.stop(Duration::from_secs(5)); // let handlers finish, then kill them
///     Ok::<_, std::io::Error>(())
/// })?;
/// # Ok::<_, std::io::Error>(())
/// ```
///
/// [`StreamServer::new`] binds when the server [starts](StreamServer::start),
/// as gevent's does (connections are refused until then);
/// [`StreamServer::bind`] binds at once (connections queue until the server
/// starts). The [`ServerHandle`] pauses and resumes accepting, and stops the
/// server; [`serve_forever`](StreamServer::serve_forever) also stops it when
/// its greenlet is killed.
///
/// Helper greenlets a handler spawns (say, one per direction of a proxied
/// connection) are not in the pool: tie them to the handler, so that when it
/// is killed they go too and let go of the connection. Spawn them in a
/// [`runtime::scope`](runtime_scheduler::scope), or keep the guard of
/// [`JoinHandle::kill_on_drop`](runtime_scheduler::JoinHandle::kill_on_drop)
/// in the handler, or let [`copy_bidirectional`](crate::copy_bidirectional)
/// do the proxying. A helper spawned and detached with a plain `spawn`
/// outlives `stop`, and so does the socket it holds.
///
/// A handler that panics is logged and its connection closed; the server and
/// the other connections carry on. When `accept` fails because the process is
/// out of file descriptors (`EMFILE`, `ENFILE`) or memory, the server backs off
/// and retries instead of spinning or exiting.
pub struct StreamServer {
    listener: Listener,
    backlog: Option<u32>,
    max_connections: Option<usize>,
    max_accept: usize,
    nodelay: bool,
    on_connect: Option<OnConnect>,
    name: String,
    stack_size: Option<usize>,
}

/// The listening socket, or where to bind it when the server starts.
enum Listener {
    Bound(TcpListener),
    /// The addresses to try, resolved by `new` (or why they could not be).
    Unbound(io::Result<Vec<SocketAddr>>),
}

impl StreamServer {
    /// A server for `addr`, bound when it [starts](StreamServer::start), as
    /// gevent's `StreamServer(address, handle)`: until then, connections are
    /// refused. A host name is resolved now (parking only this greenlet);
    /// errors, of resolving or of binding, come out of `start`.
    ///
    /// ```
    /// use runtime::net::{StreamServer, TcpStream};
    ///
    /// runtime::run(|| {
    ///     let server = StreamServer::new("127.0.0.1:0");
    ///     assert!(server.local_addr().is_err()); // not bound yet
    ///     let handle = server.start(|stream, _peer| drop(stream))?;
    ///     TcpStream::connect(handle.local_addr().unwrap())?;
    ///     Ok::<_, std::io::Error>(())
    /// })?;
    /// # Ok::<_, std::io::Error>(())
    /// ```
    pub fn new(addr: impl ToSocketAddrs) -> StreamServer {
        StreamServer::with_listener(Listener::Unbound(addr.to_socket_addrs()))
    }

    /// Binds a listener to `addr` now, as [`TcpListener::bind`] (with a
    /// listen backlog of the system's `somaxconn`; see
    /// [`backlog`](StreamServer::backlog)): connections queue in the kernel
    /// until the server starts.
    ///
    /// # Errors
    ///
    /// As [`TcpListener::bind`].
    pub fn bind(addr: impl ToSocketAddrs) -> io::Result<StreamServer> {
        Ok(StreamServer::from_listener(TcpListener::bind(addr)?))
    }

    /// Serves connections of an existing listener.
    pub fn from_listener(listener: TcpListener) -> StreamServer {
        StreamServer::with_listener(Listener::Bound(listener))
    }

    fn with_listener(listener: Listener) -> StreamServer {
        StreamServer {
            listener,
            backlog: None,
            max_connections: None,
            max_accept: DEFAULT_MAX_ACCEPT,
            nodelay: false,
            on_connect: None,
            name: "conn".into(),
            stack_size: None,
        }
    }

    /// Sets the listen backlog: how many connections the kernel queues for
    /// `accept` before it drops new ones (a client then retries its `SYN`
    /// after a second or more). The default is the system's `somaxconn`
    /// (`/proc/sys/net/core/somaxconn`, read at bind time), the most Linux
    /// allows; a larger value is cut down to it. Linux queues up to one
    /// connection more than the backlog.
    ///
    /// On a bound server it takes effect at once (`listen(2)` again on the
    /// bound socket, which Linux allows in order to change the backlog), so
    /// connections that arrive before [`start`](StreamServer::start) queue
    /// under it already; a server from [`new`](StreamServer::new) listens
    /// with it when it starts. If the kernel refuses it (which it does not
    /// for a listening TCP socket), a warning is logged and the backlog stays
    /// as it was.
    pub fn backlog(mut self, backlog: u32) -> StreamServer {
        match &self.listener {
            Listener::Bound(listener) => set_backlog(listener, backlog),
            Listener::Unbound(_) => self.backlog = Some(backlog),
        }
        self
    }

    /// Serves at most `limit` connections at once; more wait in the kernel's
    /// accept queue until a handler finishes.
    pub fn max_connections(mut self, limit: usize) -> StreamServer {
        self.max_connections = Some(limit);
        self
    }

    /// Accepts at most `n` connections in a row before letting the hub run
    /// the other greenlets (gevent's `max_accept`, 100 by default; 0 counts
    /// as 1). A low value spreads a burst of connections over several hubs
    /// sharing a port; a high one gets through a burst sooner.
    ///
    /// ```
    /// use runtime::net::StreamServer;
    ///
    /// runtime::run(|| {
    ///     let server = StreamServer::new("127.0.0.1:0").max_accept(1).start(|_stream, _peer| {})?;
    ///     server.stop(std::time::Duration::ZERO);
    ///     Ok::<_, std::io::Error>(())
    /// })?;
    /// # Ok::<_, std::io::Error>(())
    /// ```
    pub fn max_accept(mut self, n: usize) -> StreamServer {
        self.max_accept = n.max(1);
        self
    }

    /// Sets `TCP_NODELAY` on accepted connections.
    pub fn nodelay(mut self, nodelay: bool) -> StreamServer {
        self.nodelay = nodelay;
        self
    }

    /// Runs `f` on each accepted connection before its handler, in the
    /// connection's greenlet: the place to set socket options (buffer sizes,
    /// keep-alive, timeouts) or to refuse a peer. If `f` returns an error,
    /// the connection is closed without running the handler (the error is
    /// logged at debug level). A later call replaces the hook.
    ///
    /// ```
    /// use std::io::Read;
    /// use std::time::Duration;
    /// use runtime::net::{StreamServer, TcpStream};
    ///
    /// runtime::run(|| {
    ///     let server = StreamServer::new("127.0.0.1:0")
    ///         .on_connect(|stream| {
    ///             stream.set_send_buffer_size(64 * 1024)?;
    ///             stream.set_read_timeout(Some(Duration::from_secs(30)))
    ///         })
    ///         .start(|stream, _peer| {
    ///             assert_eq!(stream.read_timeout().unwrap(), Some(Duration::from_secs(30)));
    ///         })?;
    ///     let mut client = TcpStream::connect(server.local_addr().unwrap())?;
    ///     assert_eq!(client.read(&mut [0; 1])?, 0); // the handler ran and closed it
    ///     Ok::<_, std::io::Error>(())
    /// })?;
    /// # Ok::<_, std::io::Error>(())
    /// ```
    pub fn on_connect(mut self, f: impl Fn(&TcpStream) -> io::Result<()> + 'static) -> StreamServer {
        self.on_connect = Some(Rc::new(f));
        self
    }

    /// Names the connection greenlets (for tracing and reports); `"conn"` by
    /// default.
    pub fn name(mut self, name: impl Into<String>) -> StreamServer {
        self.name = name.into();
        self
    }

    /// The stack size of connection greenlets.
    pub fn stack_size(mut self, bytes: usize) -> StreamServer {
        self.stack_size = Some(bytes);
        self
    }

    /// The address the server listens on.
    ///
    /// # Errors
    ///
    /// As [`TcpListener::local_addr`]; `NotConnected` for a server from
    /// [`new`](StreamServer::new), which binds only when it starts.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        match &self.listener {
            Listener::Bound(listener) => listener.local_addr(),
            Listener::Unbound(_) => {
                Err(io::Error::new(io::ErrorKind::NotConnected, "the server binds its address when it starts"))
            }
        }
    }

    /// Starts accepting in a new greenlet and returns a handle to pause, resume
    /// or stop the server. A server from [`new`](StreamServer::new) binds
    /// here first.
    ///
    /// # Errors
    ///
    /// For a server from [`new`](StreamServer::new): why its address could
    /// not be resolved or bound (as [`TcpListener::bind`]). Never for a
    /// server bound already.
    ///
    /// # Panics
    ///
    /// Outside a runtime.
    #[track_caller]
    pub fn start<H>(self, handler: H) -> io::Result<ServerHandle>
    where
        H: Fn(TcpStream, SocketAddr) + 'static,
    {
        let listener = match self.listener {
            Listener::Bound(listener) => listener,
            Listener::Unbound(addrs) => {
                let listener = TcpListener::bind(addrs?.as_slice())?;
                if let Some(backlog) = self.backlog {
                    set_backlog(&listener, backlog);
                }
                listener
            }
        };
        let local_addr = listener.local_addr().ok();
        let accept = Rc::new(AcceptLoop {
            listener,
            nodelay: self.nodelay,
            max_accept: self.max_accept,
            builder: {
                let builder = task::Builder::new().name(self.name.clone());
                match self.stack_size {
                    Some(bytes) => builder.stack_size(bytes),
                    None => builder,
                }
            },
            serve: Rc::new(Serve { on_connect: self.on_connect, handler }),
        });
        let name = format!("{}-accept", self.name);
        let pool = self.max_connections.map_or_else(Pool::unbounded, Pool::new);
        Ok(State::start(
            local_addr,
            pool,
            Rc::new(move |state| {
                let accept = accept.clone();
                task::Builder::new().name(name.clone()).spawn(move || accept.run(&state))
            }),
        ))
    }

    /// Starts the server and parks until it is stopped through a
    /// [`ServerHandle`] (for example from a connection handler). If the
    /// calling greenlet is killed (or times out) meanwhile, the server is
    /// stopped, with a grace period of one second (gevent's `stop_timeout`),
    /// before the greenlet unwinds on: no listener outlives its
    /// `serve_forever`.
    ///
    /// ```
    /// use runtime::net::{StreamServer, TcpStream};
    ///
    /// runtime::run(|| {
    ///     let listener = runtime::net::TcpListener::bind("127.0.0.1:0")?;
    ///     let addr = listener.local_addr()?;
    ///     let serving = runtime::spawn(move || StreamServer::from_listener(listener).serve_forever(|_, _| {}));
    ///     TcpStream::connect(addr)?;
    ///     serving.kill();
    ///     assert!(serving.join().unwrap_err().is_killed());
    ///     assert!(TcpStream::connect(addr).is_err()); // refused: the server stopped
    ///     Ok::<_, std::io::Error>(())
    /// })?;
    /// # Ok::<_, std::io::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`start`](StreamServer::start).
    ///
    /// # Panics
    ///
    /// Outside a greenlet of the runtime.
    #[track_caller]
    pub fn serve_forever<H>(self, handler: H) -> io::Result<()>
    where
        H: Fn(TcpStream, SocketAddr) + 'static,
    {
        serve_until_stopped(self.start(handler)?);
        Ok(())
    }
}

/// `listen(2)` again on a bound socket, to change its backlog.
fn set_backlog(listener: &TcpListener, backlog: u32) {
    let backlog = i32::try_from(backlog).unwrap_or(i32::MAX);
    if let Err(err) = socket2::SockRef::from(listener).listen(backlog) {
        tracing::warn!("cannot set the listen backlog to {backlog}: {err}");
    }
}

impl fmt::Debug for StreamServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut debug = f.debug_struct("StreamServer");
        match &self.listener {
            Listener::Bound(listener) => debug.field("listener", listener),
            Listener::Unbound(addrs) => debug.field("addrs", addrs),
        };
        debug
            .field("max_connections", &self.max_connections)
            .field("max_accept", &self.max_accept)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// What an accepting greenlet needs; shared by the greenlets that
/// `start_accepting` starts in turn.
struct AcceptLoop<H> {
    listener: TcpListener,
    nodelay: bool,
    max_accept: usize,
    builder: task::Builder,
    /// Apart from the listener: connection greenlets hold it, and must not
    /// keep the listener open once the server stops.
    serve: Rc<Serve<H>>,
}

/// What runs in each connection's greenlet.
struct Serve<H> {
    on_connect: Option<OnConnect>,
    handler: H,
}

impl<H: Fn(TcpStream, SocketAddr)> Serve<H> {
    fn run(&self, stream: TcpStream, peer: SocketAddr) {
        if let Some(on_connect) = &self.on_connect {
            if let Err(err) = on_connect(&stream) {
                tracing::debug!(%peer, "connection closed by the on_connect hook: {err}");
                return;
            }
        }
        (self.handler)(stream, peer);
    }
}

impl<H: Fn(TcpStream, SocketAddr) + 'static> AcceptLoop<H> {
    /// Accepts until killed. `state` is strong: the server runs until stopped
    /// (or until its runtime ends), even if every `ServerHandle` is dropped.
    fn run(self: Rc<Self>, state: &Rc<State>) {
        accept_loop(
            state,
            self.max_accept,
            || !self.listener.may_be_ready(Direction::Read),
            || self.listener.accept(),
            |(stream, peer)| {
                if self.nodelay {
                    let _ = stream.set_nodelay(true);
                }
                let serve = self.serve.clone();
                // Room was made before the accept and only this greenlet
                // spawns into the pool, so this does not park.
                drop(state.pool.spawn_with(self.builder.clone(), move || serve.run(stream, peer)));
            },
        );
    }
}
