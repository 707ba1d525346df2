//! The proxy's core: for each client, a connection to the upstream server,
//! joined to the client's by `copy_bidirectional_timeout`. Kept apart from
//! `main` so that `tests/proxy.rs` can run it in process.

use std::cell::Cell;
use std::io::{self, ErrorKind};
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use runtime::io::{copy_bidirectional, copy_bidirectional_timeout};
use runtime::net::{ServerHandle, StreamServer, TcpStream};

/// How long connecting to the upstream server may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// What the proxy has done so far.
#[derive(Debug, Default)]
pub struct Stats {
    /// Clients accepted.
    pub connections: Cell<u64>,
    /// Clients whose upstream connection could not be made.
    pub connect_failures: Cell<u64>,
    /// Bytes copied from clients to the upstream server.
    pub bytes_up: Cell<u64>,
    /// Bytes copied from the upstream server to clients.
    pub bytes_down: Cell<u64>,
    /// Connections closed after the idle timeout.
    pub idle_timeouts: Cell<u64>,
    /// Connections ended by an error on either side.
    pub errors: Cell<u64>,
    /// Connections that ended with both sides closed.
    pub completed: Cell<u64>,
}

fn bump(counter: &Cell<u64>, by: u64) {
    counter.set(counter.get() + by);
}

/// Proxies every connection `server` accepts to `upstream`, closing it
/// after `idle` without traffic either way (never, with `None`).
///
/// # Panics
///
/// Outside a runtime.
pub fn start(
    server: StreamServer,
    upstream: SocketAddr,
    idle: Option<Duration>,
) -> io::Result<(ServerHandle, Rc<Stats>)> {
    let stats = Rc::new(Stats::default());
    let handle = server.start({
        let stats = stats.clone();
        move |client, peer| relay(&client, peer, upstream, idle, &stats)
    })?;
    Ok((handle, stats))
}

/// One connection, in its own greenlet. When the server is stopped and this
/// greenlet killed, `copy_bidirectional` kills its two copying greenlets
/// before this one unwinds, so both sockets close.
fn relay(client: &TcpStream, peer: SocketAddr, to: SocketAddr, idle: Option<Duration>, stats: &Stats) {
    bump(&stats.connections, 1);
    let upstream = match TcpStream::connect_timeout(&to, CONNECT_TIMEOUT) {
        Ok(stream) => stream,
        Err(err) => {
            bump(&stats.connect_failures, 1);
            tracing::warn!(%peer, "cannot connect to {to}: {err}");
            return;
        }
    };
    let _ = upstream.set_nodelay(true);
    tracing::debug!(%peer, "connected to {to}");
    let outcome: io::Result<(u64, u64)> = match idle {
        Some(idle) => copy_bidirectional_timeout(client, &upstream, idle),
        None => copy_bidirectional(client, &upstream),
    };
    match outcome {
        Ok((up, down)) => {
            bump(&stats.bytes_up, up);
            bump(&stats.bytes_down, down);
            bump(&stats.completed, 1);
            tracing::debug!(%peer, up, down, "closed");
        }
        Err(err) if err.kind() == ErrorKind::TimedOut => {
            bump(&stats.idle_timeouts, 1);
            tracing::debug!(%peer, "closed: {err}");
        }
        Err(err) => {
            bump(&stats.errors, 1);
            tracing::debug!(%peer, "closed: {err}");
        }
    }
}
