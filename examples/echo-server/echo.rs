//! The echo server's core: the handler of one connection, and [`run`], which
//! serves on one hub or on several. `main.rs` reads the command line and
//! calls `run`; tests/echo_server.rs runs it in process.

use std::cell::RefCell;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use runtime::net::{StreamServer, TcpStream};
use runtime::signal::{SIGUSR1, Signals};

use crate::hubs;

/// Bytes read at a time.
const BUF_SIZE: usize = 16 * 1024;

/// Spare read buffers kept for reuse.
const SPARE_BUFFERS: usize = 1024;

thread_local! {
    /// Read buffers shared by this thread's connections. A connection takes
    /// one only while it has data to echo and gives it back before waiting
    /// again, so an idle connection holds no buffer: just its greenlet, whose
    /// stack stays within one page.
    static BUFFERS: RefCell<Vec<Box<[u8]>>> = const { RefCell::new(Vec::new()) };
}

/// How to serve.
#[derive(Clone, Debug)]
pub struct Config {
    /// Where to listen.
    pub addr: String,
    /// Hubs serving the port (each with its own listener through
    /// `SO_REUSEPORT` when more than one).
    pub hubs: usize,
    /// Pins hub `i` to core `i`.
    pub pin_cores: bool,
    /// How long an idle hub polls before it sleeps (`None`: the default).
    pub busy_poll: Option<Duration>,
    /// Connections each hub serves at once (more wait in the kernel's accept
    /// queue).
    pub max_connections: Option<usize>,
    /// How long connections may take to finish once a signal stopped the
    /// server.
    pub grace: Duration,
    /// Serves the live console on this Unix socket.
    pub console: Option<PathBuf>,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            addr: "127.0.0.1:7000".into(),
            hubs: 1,
            pin_cores: false,
            busy_poll: None,
            max_connections: None,
            grace: Duration::from_secs(5),
            console: None,
        }
    }
}

/// Serves until SIGINT or SIGTERM, then stops accepting, gives open
/// connections `config.grace` to finish, closes the rest and returns.
/// `on_ready(addr)` runs once every hub listens (and SIGINT is caught).
///
/// # Errors
///
/// If the address cannot be bound or the signal handler installed.
pub fn run(config: Config, on_ready: impl FnOnce(SocketAddr) + Send + 'static) -> io::Result<()> {
    let Config { addr, hubs, pin_cores, busy_poll, max_connections, grace, console } = config;
    let options = hubs::Options { addr, hubs, pin_cores, busy_poll, grace, console };
    let start = move |hub: usize, listener| {
        match Signals::new([SIGUSR1]) {
            Ok(signals) => {
                drop(runtime::task::Builder::new().name("sigusr1").spawn(move || dump_on_signal(hub, hubs, signals)));
            }
            Err(err) => tracing::warn!(hub, "SIGUSR1 will not print a dump: {err}"),
        }
        let mut server = StreamServer::from_listener(listener).nodelay(true).name("echo");
        if let Some(limit) = max_connections {
            server = server.max_connections(limit);
        }
        server.start(echo)
    };
    hubs::serve(options, start, move |addr| {
        let pid = std::process::id();
        tracing::info!("echo server listening on {addr} with {hubs} hub(s) (pid {pid}; SIGUSR1 prints a dump)");
        on_ready(addr);
    })
}

/// Echoes what the client sends until it closes the connection.
pub fn echo(stream: TcpStream, peer: SocketAddr) {
    tracing::debug!(%peer, "connected");
    let result: io::Result<()> = loop {
        // Park, holding nothing, until the client sends something.
        if let Err(err) = stream.readable() {
            break Err(err);
        }
        let mut buf = BUFFERS.with(|b| b.borrow_mut().pop()).unwrap_or_else(|| vec![0; BUF_SIZE].into());
        let outcome = match stream.try_read(&mut buf) {
            Ok(0) => Some(Ok(())),
            Ok(n) => (&stream).write_all(&buf[..n]).err().map(Err),
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => None, // a spurious wake-up
            Err(err) => Some(Err(err)),
        };
        BUFFERS.with(|b| {
            let mut spare = b.borrow_mut();
            if spare.len() < SPARE_BUFFERS {
                spare.push(buf);
            }
        });
        if let Some(result) = outcome {
            break result;
        }
    };
    match result {
        Ok(()) => tracing::debug!(%peer, "closed"),
        Err(err) => tracing::debug!(%peer, "closed: {err}"),
    }
}

/// Writes `runtime::dump()` of this hub to stderr each time the process
/// receives one of `signals` (a plain blocking write: the dump is for a
/// person looking at a terminal or a log, and is written at once). With
/// several hubs, each writes its own, headed by its index.
fn dump_on_signal(hub: usize, hubs: usize, mut signals: Signals) {
    loop {
        match signals.wait() {
            Ok(_) if hubs == 1 => eprint!("{}", runtime::dump()),
            Ok(_) => eprint!("hub {hub}: {}", runtime::dump()),
            Err(err) => {
                tracing::warn!("cannot wait for SIGUSR1 any more: {err}");
                return;
            }
        }
    }
}
