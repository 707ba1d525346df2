//! An echo server: one greenlet per connection, written in plain blocking
//! style, all on one thread.
//!
//! ```text
//! cargo run --release --example echo-server            # listens on 127.0.0.1:7000
//! cargo run --release --example echo-server -- --addr 0.0.0.0:9000 --max-connections 50000
//! nc 127.0.0.1 7000                                    # type a line, get it back
//! RUST_LOG=debug cargo run --release --example echo-server   # log connections
//! ```
//!
//! Ctrl-C (SIGINT) or SIGTERM stops it: it stops accepting, gives open
//! connections a few seconds to finish, then closes them. SIGUSR1
//! (`kill -USR1 <pid>`) prints `runtime::dump()` to stderr: every greenlet,
//! what it is parked on (`TcpStream::readable fd 9` for an idle connection)
//! and for how long.
//!
//! Each connection waits for data with `readable()` before taking a read
//! buffer from a shared pool, so ten thousand idle connections cost ten
//! thousand parked greenlets and no buffers (about 5.5 KiB each in all).

use std::cell::RefCell;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::time::Duration;

use runtime::net::{StreamServer, TcpStream};
use runtime::signal::{SIGINT, SIGTERM, SIGUSR1, Signals};

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

fn echo(stream: TcpStream, peer: SocketAddr) {
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

/// Writes `runtime::dump()` to stderr each time the process receives one of
/// `signals` (a plain blocking write: the dump is for a person looking at a
/// terminal or a log, and is written at once).
fn dump_on_signal(mut signals: Signals) {
    loop {
        match signals.wait() {
            Ok(_) => eprint!("{}", runtime::dump()),
            Err(err) => {
                tracing::warn!("cannot wait for SIGUSR1 any more: {err}");
                return;
            }
        }
    }
}

struct Args {
    addr: String,
    max_connections: Option<usize>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args { addr: "127.0.0.1:7000".into(), max_connections: None };
    let mut argv = std::env::args().skip(1);
    while let Some(arg) = argv.next() {
        match arg.as_str() {
            "--addr" => args.addr = argv.next().ok_or("--addr needs a value")?,
            "--max-connections" => {
                let n = argv.next().ok_or("--max-connections needs a value")?;
                args.max_connections = Some(n.parse().map_err(|_| format!("bad --max-connections: {n}"))?);
            }
            "-h" | "--help" => {
                println!(
                    "usage: echo-server [--addr HOST:PORT] [--max-connections N]\n\n\
                     Echoes what each client sends (default address 127.0.0.1:7000).\n\
                     SIGINT or SIGTERM: stop accepting, give connections 5 s to finish, exit.\n\
                     SIGUSR1: print every greenlet and what it is parked on to stderr\n\
                     (runtime::dump), e.g. `kill -USR1 <pid>`."
                );
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument: {other} (try --help)")),
        }
    }
    Ok(args)
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("echo-server: {message}");
            std::process::exit(2);
        }
    };
    let result = runtime::run(move || -> io::Result<()> {
        let mut server = StreamServer::bind(args.addr.as_str())?.nodelay(true).name("echo");
        if let Some(limit) = args.max_connections {
            server = server.max_connections(limit);
        }
        let addr = server.local_addr()?;
        let mut signals = Signals::new([SIGINT, SIGTERM])?;
        let dump_signals = Signals::new([SIGUSR1])?;
        drop(runtime::task::Builder::new().name("sigusr1").spawn(move || dump_on_signal(dump_signals)));
        let server = server.start(echo);
        tracing::info!("echo server listening on {addr} (pid {}; SIGUSR1 prints a dump)", std::process::id());
        let signal = signals.wait()?;
        tracing::info!(signal, connections = server.connections(), "stopping");
        server.stop(Duration::from_secs(5));
        tracing::info!("stopped");
        Ok(())
    });
    if let Err(err) = result {
        eprintln!("echo-server: {err}");
        std::process::exit(1);
    }
}
