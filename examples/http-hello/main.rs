//! An HTTP/1.1 "Hello, world!" server with keep-alive and pipelining: one
//! greenlet per connection, requests parsed with `httparse`, all on one
//! thread.
//!
//! ```text
//! cargo run --release --example http-hello              # listens on 127.0.0.1:8080
//! cargo run --release --example http-hello -- --addr 0.0.0.0:8080
//! curl -v http://127.0.0.1:8080/ http://127.0.0.1:8080/again   # two requests, one connection
//! wrk -t1 -c100 -d5s http://127.0.0.1:8080/
//! RUST_LOG=debug cargo run --release --example http-hello       # log connections
//! ```
//!
//! Every request gets `200 OK` and `Hello, world!` (`HEAD` gets the headers
//! only). Connections stay open between requests (HTTP/1.1), unless the
//! client sends `Connection: close`, or speaks HTTP/1.0 without
//! `Connection: keep-alive`. Requests sent back to back without waiting for
//! the answers (pipelining) are answered in order, in as few writes as
//! possible. A malformed request gets `400 Bad Request`, a request head over
//! 8 KiB or 64 headers `431 Request Header Fields Too Large`, a chunked body
//! `501 Not Implemented`; the connection is closed after each of them. A
//! connection idle for 60 seconds is closed.
//!
//! Ctrl-C (SIGINT) or SIGTERM stops it: it stops accepting, gives requests in
//! progress a second to finish, then closes every connection.

mod hello;

use std::io;
use std::time::Duration;

use runtime::net::StreamServer;
use runtime::signal::{SIGINT, SIGTERM, Signals};

struct Args {
    addr: String,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args { addr: "127.0.0.1:8080".into() };
    let mut argv = std::env::args().skip(1);
    while let Some(arg) = argv.next() {
        match arg.as_str() {
            "--addr" => args.addr = argv.next().ok_or("--addr needs a value")?,
            "-h" | "--help" => {
                println!("usage: http-hello [--addr HOST:PORT]");
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
            eprintln!("http-hello: {message}");
            std::process::exit(2);
        }
    };
    let result = runtime::run(move || -> io::Result<()> {
        let server = StreamServer::bind(args.addr.as_str())?.nodelay(true).name("http");
        let addr = server.local_addr()?;
        let mut signals = Signals::new([SIGINT, SIGTERM])?;
        let server = server.start(hello::serve);
        tracing::info!("HTTP server listening on http://{addr}/");
        let signal = signals.wait()?;
        tracing::info!(signal, connections = server.connections(), "stopping");
        server.stop(Duration::from_secs(1));
        tracing::info!("stopped");
        Ok(())
    });
    if let Err(err) = result {
        eprintln!("http-hello: {err}");
        std::process::exit(1);
    }
}
