//! An HTTP/1.1 "Hello, world!" server with keep-alive and pipelining: one
//! greenlet per connection, requests parsed with `httparse`, all on one
//! thread.
//!
//! ```text
//! cargo run --release --example http-hello              # listens on 127.0.0.1:8080
//! cargo run --release --example http-hello -- --addr 0.0.0.0:8080
//! cargo run --release --example http-hello -- --hubs 2  # two hubs, two threads, one port
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
//!
//! With `--hubs N`, N hubs serve the port, each on its own thread with its
//! own listener (`SO_REUSEPORT`) and `StreamServer`, as in examples/echo-server
//! (`../common/hubs.rs`).

#[path = "../common/cli.rs"]
mod cli;
mod hello;
#[path = "../common/hubs.rs"]
mod hubs;

use std::time::Duration;

use runtime::net::StreamServer;

fn parse_args() -> Result<hubs::Options, String> {
    let mut options = hubs::Options {
        addr: "127.0.0.1:8080".into(),
        hubs: 1,
        pin_cores: false,
        busy_poll: None,
        grace: Duration::from_secs(1),
        console: None,
    };
    let mut argv = std::env::args().skip(1);
    while let Some(arg) = argv.next() {
        match arg.as_str() {
            "--addr" => options.addr = argv.next().ok_or("--addr needs a value")?,
            "--hubs" => {
                let n = argv.next().ok_or("--hubs needs a value")?;
                options.hubs = n.parse().ok().filter(|&n| n > 0).ok_or_else(|| format!("bad --hubs: {n}"))?;
            }
            "--pin-cores" => options.pin_cores = true,
            "-h" | "--help" => {
                println!(
                    "usage: http-hello [--addr HOST:PORT] [--hubs N] [--pin-cores]\n\n\
                     Answers every request with `Hello, world!` (default address 127.0.0.1:8080).\n\
                     --hubs N: serve on N hubs, each a thread with its own listener on the same\n\
                     \x20         port (SO_REUSEPORT: the kernel spreads connections over them);\n\
                     \x20         default 1, on the main thread.\n\
                     --pin-cores: pin hub i to core i.\n\
                     SIGINT or SIGTERM: stop accepting, give requests 1 s to finish, exit."
                );
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument: {other} (try --help)")),
        }
    }
    Ok(options)
}

fn main() {
    let options = cli::start("http-hello", parse_args);
    let hubs = options.hubs;
    let start = |_hub, listener| StreamServer::from_listener(listener).nodelay(true).name("http").start(hello::serve);
    let result = hubs::serve(options, start, move |addr| {
        tracing::info!("HTTP server listening on http://{addr}/ with {hubs} hub(s)");
    });
    if let Err(err) = result {
        eprintln!("http-hello: {err}");
        std::process::exit(1);
    }
}
