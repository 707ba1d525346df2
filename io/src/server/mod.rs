//! Servers after gevent's `baseserver`: [`StreamServer`] (TCP) and
//! [`DatagramServer`] (UDP) run a handler in a greenlet for each connection or
//! datagram, in a [`Pool`] that limits concurrency, and share one
//! [`ServerHandle`] to pause, resume and stop them.
//!
//! This module holds what both share: the handle, the state behind it, and
//! the accepting greenlet's loop (room in the pool, `max_accept` per
//! readiness, back-off on errors).

mod datagram;
mod stream;

use std::cell::{Cell, RefCell};
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use runtime_scheduler::sync::Event;
use runtime_scheduler::{JoinHandle, Pool};

pub use datagram::DatagramServer;
pub use stream::StreamServer;

/// Back-off after taking a connection or datagram fails for lack of resources
/// (out of file descriptors or memory) or for an unexpected reason: it
/// doubles from the first value to the second, while established connections
/// keep being served.
const BACKOFF_MIN: Duration = Duration::from_millis(5);
const BACKOFF_MAX: Duration = Duration::from_millis(250);

/// Connections (or datagrams) taken in a row before the accepting greenlet
/// lets the others run: gevent's `max_accept`.
const DEFAULT_MAX_ACCEPT: usize = 100;

/// The grace period of the `stop` that runs when a `serve_forever` greenlet
/// is killed: gevent's `stop_timeout`.
const SERVE_FOREVER_STOP_TIMEOUT: Duration = Duration::from_secs(1);

/// Spawns an accepting greenlet for a server; it owns (a share of) the
/// listening socket and the handler.
type SpawnAcceptor = Rc<dyn Fn(Rc<State>) -> JoinHandle<()>>;

/// What a server's greenlets and handles share.
struct State {
    local_addr: Option<SocketAddr>,
    /// The handler greenlets (gevent's `BaseServer.pool`).
    pool: Pool,
    /// Set once `stop` has completed.
    stopped: Event,
    /// Set when the first `stop` begins.
    stopping: Cell<bool>,
    /// Whether an accepting greenlet should run: cleared by
    /// `stop_accepting`, set again by `start_accepting`.
    accepting: Cell<bool>,
    /// Accepting greenlets that may not have finished yet: the running one,
    /// and any that `stop_accepting` killed and that are still unwinding.
    acceptors: RefCell<Vec<JoinHandle<()>>>,
    /// Starts an accepting greenlet, until `stop` drops it: with it goes the
    /// last reference to the socket outside the accepting greenlets, so the
    /// socket closes once they are gone.
    spawn_acceptor: RefCell<Option<SpawnAcceptor>>,
}

impl State {
    /// Starts serving: the state and its first accepting greenlet.
    fn start(local_addr: Option<SocketAddr>, pool: Pool, spawn_acceptor: SpawnAcceptor) -> ServerHandle {
        let state = Rc::new(State {
            local_addr,
            pool,
            stopped: Event::new(),
            stopping: Cell::new(false),
            accepting: Cell::new(true),
            acceptors: RefCell::new(Vec::new()),
            spawn_acceptor: RefCell::new(Some(spawn_acceptor.clone())),
        });
        state.acceptors.borrow_mut().push(spawn_acceptor(state.clone()));
        ServerHandle { state }
    }
}

/// The accepting greenlet's loop: waits for room in the pool, takes the next
/// connection or datagram with `take` (parking until there is one), and
/// hands it to `serve`, which spawns its handler into the pool.
///
/// After `max_accept` taken in a row without parking it yields, so a flood of
/// connections does not hold the hub (gevent's `max_accept`); `may_park`
/// tells whether the next `take` will park (nothing is known to be ready).
/// Errors that say nothing about the socket are skipped; running out of
/// descriptors or memory, or any other error, backs off and retries.
fn accept_loop<T>(
    state: &State,
    max_accept: usize,
    may_park: impl Fn() -> bool,
    mut take: impl FnMut() -> io::Result<T>,
    mut serve: impl FnMut(T),
) {
    let mut backoff = BACKOFF_MIN;
    let mut last_warning: Option<Instant> = None;
    let mut burst = 0;
    loop {
        // Beyond the limit, connections wait in the kernel's queue, not in
        // this process.
        state.pool.wait_available();
        if may_park() {
            burst = 0;
        } else if burst >= max_accept {
            burst = 0;
            runtime_scheduler::yield_now();
        }
        match take() {
            Ok(item) => {
                burst += 1;
                backoff = BACKOFF_MIN;
                serve(item);
            }
            Err(err) if is_transient(&err) => {}
            Err(err) => {
                if !is_out_of_resources(&err) {
                    tracing::error!("accept failed: {err}");
                } else if last_warning.is_none_or(|at| at.elapsed() >= Duration::from_secs(5)) {
                    tracing::warn!("accept failed: {err}; backing off, established connections are still served");
                    last_warning = Some(Instant::now());
                }
                runtime_scheduler::sleep(backoff);
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        }
    }
}

fn is_out_of_resources(err: &io::Error) -> bool {
    matches!(err.raw_os_error(), Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM))
}

/// Errors of one connection attempt (or, for UDP, an ICMP report about an
/// earlier datagram) that say nothing about the listening socket.
fn is_transient(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionRefused
            | io::ErrorKind::Interrupted
    ) || matches!(err.raw_os_error(), Some(libc::EPROTO | libc::EPERM | libc::ENETDOWN | libc::EHOSTUNREACH))
}

/// Parks until the server behind `handle` stops; if the calling greenlet is
/// killed (or times out) meanwhile, stops the server before it unwinds on, as
/// gevent's `serve_forever` does in its `finally`.
fn serve_until_stopped(handle: ServerHandle) {
    /// Stops the server when dropped: at once if it has stopped already (the
    /// normal way out of the wait), gracefully if the wait unwinds.
    struct StopOnDrop(ServerHandle);

    impl Drop for StopOnDrop {
        fn drop(&mut self) {
            self.0.stop(SERVE_FOREVER_STOP_TIMEOUT);
        }
    }

    let guard = StopOnDrop(handle);
    guard.0.wait();
}

/// Controls a running [`StreamServer`] or [`DatagramServer`]. Cloning gives
/// another handle to the same server; dropping every handle leaves the server
/// running.
#[derive(Clone)]
pub struct ServerHandle {
    state: Rc<State>,
}

impl ServerHandle {
    /// The address the server listens on.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.state.local_addr
    }

    /// Handlers running: connections being served (for a [`DatagramServer`],
    /// datagrams being handled).
    pub fn connections(&self) -> usize {
        self.state.pool.len()
    }

    /// Whether [`stop`](ServerHandle::stop) has completed.
    pub fn is_stopped(&self) -> bool {
        self.state.stopped.is_set()
    }

    /// Whether the server takes new connections (or datagrams): true from
    /// the start until [`stop_accepting`](ServerHandle::stop_accepting) or
    /// [`stop`](ServerHandle::stop).
    pub fn is_accepting(&self) -> bool {
        self.state.accepting.get()
    }

    /// Pauses the server, as gevent's `stop_accepting`: no new connection is
    /// accepted (no datagram received), but the socket stays open, so new
    /// connections wait unanswered in the kernel's queue (datagrams in the
    /// receive buffer) until [`start_accepting`](ServerHandle::start_accepting).
    /// Running handlers go on. Does not park; does nothing on a stopped or
    /// paused server.
    ///
    /// ```
    /// use std::io::{Read, Write};
    /// use std::time::Duration;
    /// use runtime::net::{StreamServer, TcpStream};
    ///
    /// runtime::run(|| {
    ///     let server = StreamServer::new("127.0.0.1:0").start(|stream, _| {
    ///         let _ = (&stream).write_all(b"hi");
    ///     })?;
    ///     server.stop_accepting();
    ///     let mut client = TcpStream::connect(server.local_addr().unwrap())?; // queued
    ///     client.set_read_timeout(Some(Duration::from_millis(50)))?;
    ///     let mut reply = [0; 2];
    ///     assert!(client.read_exact(&mut reply).is_err()); // unanswered
    ///     client.set_read_timeout(None)?;
    ///     server.start_accepting();
    ///     client.read_exact(&mut reply)?; // now served
    ///     assert_eq!(&reply, b"hi");
    ///     Ok::<_, std::io::Error>(())
    /// })?;
    /// # Ok::<_, std::io::Error>(())
    /// ```
    pub fn stop_accepting(&self) {
        if self.state.stopping.get() || !self.state.accepting.replace(false) {
            return;
        }
        // The accepting greenlet is parked (waiting for a connection, for
        // room in the pool, or backing off): killed there, it has taken
        // nothing it would drop. Its share of the socket goes as it unwinds.
        let mut acceptors = self.state.acceptors.borrow_mut();
        acceptors.retain(|acceptor| !acceptor.is_finished());
        for acceptor in acceptors.iter() {
            acceptor.kill();
        }
    }

    /// Resumes a server paused by [`stop_accepting`](ServerHandle::stop_accepting):
    /// connections queued meanwhile are served first. Does nothing on a
    /// stopped or running server.
    ///
    /// # Panics
    ///
    /// Outside the runtime the server belongs to.
    #[track_caller]
    pub fn start_accepting(&self) {
        if self.state.stopping.get() || self.state.accepting.replace(true) {
            return;
        }
        let spawn = self.state.spawn_acceptor.borrow().clone();
        if let Some(spawn) = spawn {
            self.state.acceptors.borrow_mut().push(spawn(self.state.clone()));
        }
    }

    /// Stops the server gracefully: stops accepting (the listening socket is
    /// closed, so new connections are refused), gives running handlers up to
    /// `grace` to finish, then kills the rest and waits for them to unwind.
    /// Helpers tied to a handler (scoped greenlets, `kill_on_drop` guards)
    /// are killed as it unwinds; see [`StreamServer`].
    ///
    /// Called from one of the server's own handlers, it does the same in a
    /// new greenlet and returns at once (a handler cannot wait for itself).
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
        self.state.accepting.set(false);
        drop(self.state.spawn_acceptor.borrow_mut().take());
        let acceptors = std::mem::take(&mut *self.state.acceptors.borrow_mut());
        for acceptor in &acceptors {
            acceptor.kill();
        }
        // Once they have unwound, nothing holds the socket: it is closed.
        for acceptor in acceptors {
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
            .field("accepting", &self.is_accepting())
            .field("stopped", &self.is_stopped())
            .finish()
    }
}
