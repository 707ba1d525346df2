//! A TCP server helper after gevent's `StreamServer`: accept in one greenlet,
//! run a handler in a greenlet per connection, in a [`Pool`] that limits
//! concurrency, and stop gracefully.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use runtime_scheduler::sync::Event;
use runtime_scheduler::{JoinHandle, Pool, task};

use crate::net::{TcpListener, TcpStream, ToSocketAddrs};

/// Back-off after `accept` fails for lack of resources (out of file
/// descriptors or memory): it doubles from the first value to the second,
/// while established connections keep being served.
const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(5);
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_millis(250);

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
///     let server = StreamServer::bind("127.0.0.1:7000")?.max_connections(10_000).start(|mut stream, _peer| {
///         let mut buf = [0; 1024];
///         while let Ok(n @ 1..) = stream.read(&mut buf) {
///             if stream.write_all(&buf[..n]).is_err() {
///                 break;
///             }
///         }
///     });
///     runtime::signal::ctrl_c()?;
///     server.stop(Duration::from_secs(5)); // let handlers finish, then kill them
///     Ok::<_, std::io::Error>(())
/// })?;
/// # Ok::<_, std::io::Error>(())
/// ```
///
/// Helper greenlets a handler spawns (say, one per direction of a proxied
/// connection) are not in the pool: tie them to the handler, so that when it
/// is killed they go too and let go of the connection. Spawn them in a
/// [`runtime::scope`](runtime_scheduler::scope), or keep the guard of
/// [`JoinHandle::kill_on_drop`] in the handler, or let
/// [`copy_bidirectional`](crate::copy_bidirectional) do the proxying. A
/// helper spawned and detached with a plain `spawn` outlives `stop`, and so
/// does the socket it holds.
///
/// A handler that panics is logged and its connection closed; the server and
/// the other connections carry on. When `accept` fails because the process is
/// out of file descriptors (`EMFILE`, `ENFILE`) or memory, the server backs off
/// and retries instead of spinning or exiting.
pub struct StreamServer {
    listener: TcpListener,
    max_connections: Option<usize>,
    nodelay: bool,
    name: String,
    stack_size: Option<usize>,
}

impl StreamServer {
    /// Binds a listener to `addr`, as [`TcpListener::bind`] (with a listen
    /// backlog of the system's `somaxconn`; see
    /// [`backlog`](StreamServer::backlog)).
    ///
    /// # Errors
    ///
    /// As [`TcpListener::bind`].
    pub fn bind(addr: impl ToSocketAddrs) -> io::Result<StreamServer> {
        Ok(StreamServer::from_listener(TcpListener::bind(addr)?))
    }

    /// Serves connections of an existing listener.
    pub fn from_listener(listener: TcpListener) -> StreamServer {
        StreamServer { listener, max_connections: None, nodelay: false, name: "conn".into(), stack_size: None }
    }

    /// Sets the listen backlog: how many connections the kernel queues for
    /// `accept` before it drops new ones (a client then retries its `SYN`
    /// after a second or more). The default is the system's `somaxconn`
    /// (`/proc/sys/net/core/somaxconn`, read at bind time), the most Linux
    /// allows; a larger value is cut down to it. Linux queues up to one
    /// connection more than the backlog.
    ///
    /// It takes effect at once (`listen(2)` again on the bound socket, which
    /// Linux allows in order to change the backlog), so connections that
    /// arrive before [`start`](StreamServer::start) queue under it already.
    /// If the kernel refuses it (which it does not for a listening TCP
    /// socket), a warning is logged and the backlog stays as it was.
    pub fn backlog(self, backlog: u32) -> StreamServer {
        let backlog = i32::try_from(backlog).unwrap_or(i32::MAX);
        if let Err(err) = socket2::SockRef::from(&self.listener).listen(backlog) {
            tracing::warn!("cannot set the listen backlog to {backlog}: {err}");
        }
        self
    }

    /// Serves at most `limit` connections at once; more wait in the kernel's
    /// accept queue until a handler finishes.
    pub fn max_connections(mut self, limit: usize) -> StreamServer {
        self.max_connections = Some(limit);
        self
    }

    /// Sets `TCP_NODELAY` on accepted connections.
    pub fn nodelay(mut self, nodelay: bool) -> StreamServer {
        self.nodelay = nodelay;
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
    /// As [`TcpListener::local_addr`].
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Starts accepting in a new greenlet and returns a handle to stop the
    /// server.
    ///
    /// # Panics
    ///
    /// Outside a runtime.
    #[track_caller]
    pub fn start<H>(self, handler: H) -> ServerHandle
    where
        H: Fn(TcpStream, SocketAddr) + 'static,
    {
        let state = Rc::new(State {
            local_addr: self.listener.local_addr().ok(),
            pool: self.max_connections.map_or_else(Pool::unbounded, Pool::new),
            stopped: Event::new(),
            stopping: Cell::new(false),
            acceptor: RefCell::new(None),
        });
        let acceptor = AcceptLoop {
            listener: self.listener,
            nodelay: self.nodelay,
            builder: {
                let builder = task::Builder::new().name(self.name.clone());
                match self.stack_size {
                    Some(bytes) => builder.stack_size(bytes),
                    None => builder,
                }
            },
            handler: Rc::new(handler),
            state: state.clone(),
        };
        let handle = task::Builder::new().name(format!("{}-accept", self.name)).spawn(move || acceptor.run());
        *state.acceptor.borrow_mut() = Some(handle);
        ServerHandle { state }
    }

    /// Starts the server and parks until it is stopped through a
    /// [`ServerHandle`] (for example from a connection handler).
    ///
    /// # Panics
    ///
    /// Outside a greenlet of the runtime.
    #[track_caller]
    pub fn serve_forever<H>(self, handler: H)
    where
        H: Fn(TcpStream, SocketAddr) + 'static,
    {
        self.start(handler).wait();
    }
}

impl fmt::Debug for StreamServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamServer")
            .field("listener", &self.listener)
            .field("max_connections", &self.max_connections)
            .field("name", &self.name)
            .finish()
    }
}

/// What the server's greenlets share.
struct State {
    local_addr: Option<SocketAddr>,
    /// The connection greenlets (gevent's `StreamServer.pool`).
    pool: Pool,
    /// Set once `stop` has completed.
    stopped: Event,
    /// Set when the first `stop` begins.
    stopping: Cell<bool>,
    /// The accepting greenlet, until `stop` kills it.
    acceptor: RefCell<Option<JoinHandle<()>>>,
}

struct AcceptLoop<H> {
    listener: TcpListener,
    nodelay: bool,
    builder: task::Builder,
    handler: Rc<H>,
    /// Strong: the server runs until stopped (or until its runtime ends), even
    /// if every `ServerHandle` is dropped.
    state: Rc<State>,
}

impl<H: Fn(TcpStream, SocketAddr) + 'static> AcceptLoop<H> {
    fn run(self) {
        let mut backoff = ACCEPT_BACKOFF_MIN;
        let mut last_warning: Option<Instant> = None;
        loop {
            // Beyond the limit, connections wait in the kernel's accept
            // queue, not in this process.
            self.state.pool.wait_available();
            let (stream, peer) = match self.listener.accept() {
                Ok(accepted) => accepted,
                Err(err) if is_out_of_resources(&err) => {
                    if last_warning.is_none_or(|at| at.elapsed() >= Duration::from_secs(5)) {
                        tracing::warn!("accept failed: {err}; backing off, established connections are still served");
                        last_warning = Some(Instant::now());
                    }
                    runtime_scheduler::sleep(backoff);
                    backoff = (backoff * 2).min(ACCEPT_BACKOFF_MAX);
                    continue;
                }
                Err(err) if is_transient(&err) => continue,
                Err(err) => {
                    tracing::error!("accept failed: {err}");
                    runtime_scheduler::sleep(backoff);
                    backoff = (backoff * 2).min(ACCEPT_BACKOFF_MAX);
                    continue;
                }
            };
            backoff = ACCEPT_BACKOFF_MIN;
            if self.nodelay {
                let _ = stream.set_nodelay(true);
            }
            let handler = self.handler.clone();
            // Room was made above and only this greenlet spawns into the
            // pool, so this does not park.
            drop(self.state.pool.spawn_with(self.builder.clone(), move || handler(stream, peer)));
        }
    }
}

fn is_out_of_resources(err: &io::Error) -> bool {
    matches!(err.raw_os_error(), Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM))
}

/// Errors of one connection attempt that say nothing about the listener.
fn is_transient(err: &io::Error) -> bool {
    matches!(err.kind(), io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset | io::ErrorKind::Interrupted)
        || matches!(err.raw_os_error(), Some(libc::EPROTO | libc::EPERM | libc::ENETDOWN | libc::EHOSTUNREACH))
}

/// Controls a running [`StreamServer`]. Cloning gives another handle to the
/// same server; dropping every handle leaves the server running.
#[derive(Clone)]
pub struct ServerHandle {
    state: Rc<State>,
}

impl ServerHandle {
    /// The address the server listens on.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.state.local_addr
    }

    /// Connections being served.
    pub fn connections(&self) -> usize {
        self.state.pool.len()
    }

    /// Whether [`stop`](ServerHandle::stop) has completed.
    pub fn is_stopped(&self) -> bool {
        self.state.stopped.is_set()
    }

    /// Stops the server gracefully: stops accepting (the listening socket is
    /// closed, so new connections are refused), gives running handlers up to
    /// `grace` to finish, then kills the rest and waits for them to unwind.
    /// Helpers tied to a handler (scoped greenlets, `kill_on_drop` guards)
    /// are killed as it unwinds; see [`StreamServer`].
    ///
    /// Called from one of the server's own connection handlers, it does the
    /// same in a new greenlet and returns at once (a handler cannot wait for
    /// itself).
    ///
    /// # Panics
    ///
    /// Outside a greenlet of the runtime.
    pub fn stop(&self, grace: Duration) {
        let pool = &self.state.pool;
        if pool.contains(runtime_scheduler::greenlet_id()) {
            let handle = self.clone();
            drop(runtime_scheduler::spawn(move || handle.stop(grace)));
            return;
        }
        if self.state.stopping.replace(true) {
            self.state.stopped.wait();
            return;
        }
        let acceptor = self.state.acceptor.borrow_mut().take();
        if let Some(acceptor) = acceptor {
            acceptor.kill();
            let _ = acceptor.join();
        }
        // gevent's `stop(timeout)`: join the pool for the grace period, then
        // kill the rest and wait for them to unwind.
        if !pool.join_timeout(grace) {
            tracing::info!(connections = pool.len(), "grace period over; killing the remaining connections");
            pool.kill();
            pool.join();
        }
        self.state.stopped.set();
    }

    /// Parks until the server has been stopped.
    ///
    /// # Panics
    ///
    /// Outside a greenlet of the runtime.
    pub fn wait(&self) {
        self.state.stopped.wait();
    }
}

impl fmt::Debug for ServerHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerHandle")
            .field("local_addr", &self.state.local_addr)
            .field("connections", &self.connections())
            .field("stopped", &self.is_stopped())
            .finish()
    }
}
