//! What the single-hub servers (`resp-server`, `tls-echo`, `ws-echo`) share:
//! serve on one hub until SIGINT or SIGTERM, then stop gracefully.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use runtime::net::{ServerHandle, StreamServer};
use runtime::signal::{SIGINT, SIGTERM, Signals};

/// How long open connections may take to finish once a signal came.
const GRACE: Duration = Duration::from_secs(1);

/// Runs a hub on this thread: binds with `bind`, starts serving with
/// `start`, logs `banner(address)`, and serves until SIGINT or SIGTERM; then
/// stops accepting and gives open connections [`GRACE`] to finish. On an
/// error, prints it after the program's name and exits with status 1.
pub fn until_signal(
    program: &str,
    bind: impl FnOnce() -> io::Result<StreamServer> + 'static,
    start: impl FnOnce(StreamServer) -> io::Result<ServerHandle> + 'static,
    banner: impl FnOnce(SocketAddr) -> String + 'static,
) {
    let result = runtime::run(move || -> io::Result<()> {
        let server = bind()?;
        let addr = server.local_addr()?;
        let mut signals = Signals::new([SIGINT, SIGTERM])?;
        let server = start(server)?;
        tracing::info!("{}", banner(addr));
        let signal = signals.wait()?;
        tracing::info!(signal, connections = server.connections(), "stopping");
        server.stop(GRACE);
        tracing::info!("stopped");
        Ok(())
    });
    if let Err(err) = result {
        eprintln!("{program}: {err}");
        std::process::exit(1);
    }
}
