//! One server on several hubs: every hub binds a listener of its own to the
//! same address (with `SO_REUSEPORT`, so the kernel spreads the connections
//! over them) and serves it with a `StreamServer`. Hub 0 waits for SIGINT or
//! SIGTERM and sets an event that every hub waits on; each then stops its
//! server gracefully.
//!
//! Shared by examples/echo-server and examples/http-hello (and run in process
//! by tests/echo_server.rs).

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use runtime::net::{ServerHandle, TcpListener, TcpSocket, ToSocketAddrs};
use runtime::signal::{SIGINT, SIGTERM, Signals};
use runtime::sync::{AsyncResult, Event, channel};

/// Connections the kernel queues for each hub's `accept` (as
/// `TcpListener::bind` does).
const BACKLOG: u32 = 1024;

/// How to serve.
#[derive(Clone, Debug)]
pub struct Options {
    /// Where to listen: `HOST:PORT` (port 0: one the system picks, shared by
    /// every hub).
    pub addr: String,
    /// How many hubs serve, each on a thread of its own. With 1, the calling
    /// thread serves, without `SO_REUSEPORT` (so a second server on the same
    /// port fails to start, as with a plain `TcpListener::bind`).
    pub hubs: usize,
    /// Pins hub `i` to core `i` (`runtime::Builder::pin_cores`).
    pub pin_cores: bool,
    /// How long an idle hub polls before it sleeps
    /// (`runtime::Builder::busy_poll`; `None`: the default).
    pub busy_poll: Option<Duration>,
    /// How long open connections may take to finish once a signal asked the
    /// servers to stop; the rest are closed then.
    pub grace: Duration,
    /// Serves the live console (`runtime::Builder::console`) on this Unix
    /// socket: `cargo run -p runtime-console -- PATH` watches the hubs.
    pub console: Option<PathBuf>,
}

/// What the hubs share.
struct Shared {
    options: Options,
    /// The address hub 0 bound, for the other hubs; `None` if it could not
    /// bind (it reports the error, the others just return).
    bound: AsyncResult<Option<SocketAddr>>,
    /// Every other hub says here whether it listens.
    started: channel::Sender<Result<(), String>>,
    started_rx: channel::Receiver<Result<(), String>>,
    /// Set by hub 0 on SIGINT or SIGTERM: every hub stops its server.
    stop: Arc<Event>,
}

/// Serves `options.addr` on `options.hubs` hubs until SIGINT or SIGTERM, and
/// returns once every hub has stopped its server.
///
/// `start(i, listener)` starts the server of hub `i` on its listener (it runs
/// on that hub, so it may spawn other greenlets there too). `on_ready(addr)`
/// runs once every hub listens and the signal handler is in place.
///
/// # Errors
///
/// If an address cannot be resolved or bound, or the signal handler cannot
/// be installed; every hub that started stops again.
pub fn serve<S, R>(options: Options, start: S, on_ready: R) -> io::Result<()>
where
    S: Fn(usize, TcpListener) -> io::Result<ServerHandle> + Send + Sync + 'static,
    R: FnOnce(SocketAddr) + Send + 'static,
{
    let hubs = options.hubs.max(1);
    let pin_cores = options.pin_cores;
    let mut builder = runtime::Builder::new();
    if let Some(path) = &options.console {
        builder = builder.console(path);
    }
    if let Some(limit) = options.busy_poll {
        builder = builder.busy_poll(limit);
    }
    let (started, started_rx) = channel::unbounded();
    let shared = Arc::new(Shared {
        options: Options { hubs, ..options },
        bound: AsyncResult::new(),
        started,
        started_rx,
        stop: Arc::new(Event::new()),
    });
    let on_ready = Mutex::new(Some(on_ready));
    let hub = move |i: usize| -> io::Result<()> {
        if i == 0 {
            let on_ready = on_ready.lock().unwrap_or_else(PoisonError::into_inner).take();
            first_hub(&shared, &start, on_ready.expect("hub 0 starts once"))
        } else {
            other_hub(i, &shared, &start)
        }
    };
    if hubs == 1 {
        // On this thread, as a single-hub server always ran.
        builder.run(move || hub(0))
    } else {
        builder.hubs(hubs).pin_cores(pin_cores).run_each(hub).into_iter().collect()
    }
}

/// Hub 0: binds first (its port is everyone's), waits for the others, then
/// for a signal.
fn first_hub<S, R>(shared: &Shared, start: &S, on_ready: R) -> io::Result<()>
where
    S: Fn(usize, TcpListener) -> io::Result<ServerHandle>,
    R: FnOnce(SocketAddr),
{
    let hubs = shared.options.hubs;
    let result = (|| {
        // Installed first, so that a signal is caught once anyone is told the
        // servers are ready.
        let signals = Signals::new([SIGINT, SIGTERM])?;
        let listener = bind_first(&shared.options.addr, hubs > 1)?;
        Ok((signals, listener))
    })();
    let (mut signals, listener) = match result {
        Ok(ok) => ok,
        Err(err) => {
            shared.bound.set(None);
            return Err(err);
        }
    };
    let started = listener.local_addr().and_then(|addr| Ok((addr, start(0, listener)?)));
    let (addr, server) = match started {
        Ok(started) => started,
        Err(err) => {
            shared.bound.set(None);
            return Err(err);
        }
    };
    shared.bound.set(Some(addr));
    // Each other hub reports whether it listens.
    let mut failure = None;
    for _ in 1..hubs {
        match shared.started_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(message)) => failure = Some(message),
            Err(_) => failure = Some("a hub stopped before it listened".into()),
        }
    }
    if let Some(message) = failure {
        shared.stop.set();
        server.stop(Duration::ZERO);
        return Err(io::Error::other(message));
    }
    on_ready(addr);
    let stop = shared.stop.clone();
    drop(runtime::task::Builder::new().name("signals").spawn(move || {
        match signals.wait() {
            Ok(signal) => tracing::info!(signal, "stopping every hub"),
            Err(err) => tracing::error!("cannot wait for signals: {err}; stopping"),
        }
        stop.set();
    }));
    serve_until_stopped(0, &server, shared);
    Ok(())
}

/// Hub `i` > 0: binds the address hub 0 bound.
fn other_hub<S>(i: usize, shared: &Shared, start: &S) -> io::Result<()>
where
    S: Fn(usize, TcpListener) -> io::Result<ServerHandle>,
{
    let Some(addr) = shared.bound.get() else {
        return Ok(()); // hub 0 reports why
    };
    let server = match listen(addr, true).and_then(|listener| start(i, listener)) {
        Ok(server) => server,
        Err(err) => {
            let _ = shared.started.send(Err(format!("hub {i} cannot listen on {addr}: {err}")));
            return Err(err);
        }
    };
    let _ = shared.started.send(Ok(()));
    serve_until_stopped(i, &server, shared);
    Ok(())
}

/// Parks until hub 0 sets the stop event, then stops `server` gracefully.
fn serve_until_stopped(i: usize, server: &ServerHandle, shared: &Shared) {
    shared.stop.wait();
    tracing::info!(hub = i, connections = server.connections(), "stopping");
    server.stop(shared.options.grace);
    tracing::info!(hub = i, "stopped");
}

/// Binds the first of `addr`'s addresses that can be bound.
fn bind_first(addr: &str, reuseport: bool) -> io::Result<TcpListener> {
    let mut last = io::Error::new(io::ErrorKind::InvalidInput, format!("{addr} resolves to no address"));
    for addr in addr.to_socket_addrs()? {
        match listen(addr, reuseport) {
            Ok(listener) => return Ok(listener),
            Err(err) => last = err,
        }
    }
    Err(last)
}

/// A listener on `addr` registered with this hub: `SO_REUSEADDR` (a restart
/// finds the port free), and `SO_REUSEPORT` when several hubs share it.
fn listen(addr: SocketAddr, reuseport: bool) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    socket.set_reuseaddr(true)?;
    socket.set_reuseport(reuseport)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}
