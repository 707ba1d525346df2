//! A TCP proxy: every client connection gets one to the upstream server, and
//! the two are joined both ways by `runtime::io::copy_bidirectional_timeout`,
//! one greenlet per connection (and one per direction inside it), all on one
//! thread.
//!
//! ```text
//! cargo run --release --example echo-server                 # something to proxy to, on 127.0.0.1:7000
//! cargo run --release --example proxy -- --listen 127.0.0.1:7100 --to 127.0.0.1:7000
//! nc 127.0.0.1 7100                                         # talks to the echo server through the proxy
//! cargo run --release --example proxy -- --listen 127.0.0.1:7100 --to 127.0.0.1:7000 --idle-timeout 10
//! ```
//!
//! A half-close goes through: when a client shuts down its sending side
//! (`nc -N`, or `shutdown(Write)`), the upstream server sees end-of-file and
//! can still answer, and the other way round. A connection with no traffic
//! either way for `--idle-timeout` seconds (300 by default, 0 for never) is
//! closed. Ctrl-C (SIGINT) or SIGTERM stops accepting, gives open
//! connections a second to finish, closes the rest and prints what the proxy
//! did.

#[path = "proxy/relay.rs"]
mod relay;

#[path = "common/cli.rs"]
mod cli;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use runtime::net::{StreamServer, ToSocketAddrs};
use runtime::signal::{SIGINT, SIGTERM, Signals};

struct Args {
    listen: String,
    to: String,
    idle: Option<Duration>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args { listen: "127.0.0.1:7100".into(), to: String::new(), idle: Some(Duration::from_secs(300)) };
    let mut argv = std::env::args().skip(1);
    while let Some(arg) = argv.next() {
        match arg.as_str() {
            "--listen" => args.listen = argv.next().ok_or("--listen needs a value")?,
            "--to" => args.to = argv.next().ok_or("--to needs a value")?,
            "--idle-timeout" => {
                let secs = argv.next().ok_or("--idle-timeout needs a value")?;
                let secs: f64 = secs.parse().map_err(|_| format!("bad --idle-timeout: {secs}"))?;
                if !secs.is_finite() || secs < 0.0 {
                    return Err(format!("bad --idle-timeout: {secs}"));
                }
                args.idle = (secs > 0.0).then(|| Duration::from_secs_f64(secs));
            }
            "-h" | "--help" => {
                println!(
                    "usage: proxy [--listen HOST:PORT] --to HOST:PORT [--idle-timeout SECS]\n\n\
                     Proxies every TCP connection made to --listen (default 127.0.0.1:7100) to --to,\n\
                     both ways, half-closes included; closes connections idle for --idle-timeout\n\
                     seconds (default 300; 0: never). SIGINT or SIGTERM: stop, print statistics."
                );
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument: {other} (try --help)")),
        }
    }
    if args.to.is_empty() {
        return Err("--to is required (try --help)".into());
    }
    Ok(args)
}

/// The first address `addr` resolves to.
fn resolve(addr: &str) -> io::Result<SocketAddr> {
    addr.to_socket_addrs()?
        .into_iter()
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("{addr} has no address")))
}

fn main() {
    let args = cli::start("proxy", parse_args);
    let result = runtime::run(move || -> io::Result<()> {
        let upstream = resolve(&args.to)?;
        let server = StreamServer::bind(args.listen.as_str())?.nodelay(true).name("proxy");
        let addr = server.local_addr()?;
        let mut signals = Signals::new([SIGINT, SIGTERM])?;
        let (server, stats) = relay::start(server, upstream, args.idle)?;
        tracing::info!("proxying {addr} to {upstream}");
        let signal = signals.wait()?;
        tracing::info!(signal, connections = server.connections(), "stopping");
        server.stop(Duration::from_secs(1));
        println!(
            "{} connections ({} completed, {} idle timeouts, {} errors, {} upstream connects failed); \
             {} bytes up, {} bytes down",
            stats.connections.get(),
            stats.completed.get(),
            stats.idle_timeouts.get(),
            stats.errors.get(),
            stats.connect_failures.get(),
            stats.bytes_up.get(),
            stats.bytes_down.get(),
        );
        Ok(())
    });
    if let Err(err) = result {
        eprintln!("proxy: {err}");
        std::process::exit(1);
    }
}
