//! A WebSocket echo server: tungstenite over `runtime::net::TcpStream`, one
//! greenlet per connection, all on one thread.
//!
//! ```text
//! cargo run --release --example ws-echo                 # listens on ws://127.0.0.1:7080/
//! cargo run --release --example ws-echo -- --addr 0.0.0.0:7080
//! python3 -m websockets ws://127.0.0.1:7080/            # type a line, get it back
//! scripts/check-ws-echo.sh                              # 200 Python websockets clients
//! ```
//!
//! Text and binary messages come back as they were sent; pings get pongs; a
//! close frame gets a close frame back, and then the connection is closed.
//! Any path is accepted; a request that is not a WebSocket handshake gets
//! `400 Bad Request`.
//!
//! Ctrl-C (SIGINT) or SIGTERM stops it: it stops accepting, gives open
//! connections a second to finish, then closes them.

mod ws;

#[path = "../common/cli.rs"]
mod cli;
#[path = "../common/serve.rs"]
mod serve;

use runtime::net::StreamServer;

/// Connection greenlets' stacks: more than the default, for the handshake
/// (the memory is only touched as used).
const STACK_SIZE: usize = 128 * 1024;

struct Args {
    addr: String,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args { addr: "127.0.0.1:7080".into() };
    let mut argv = std::env::args().skip(1);
    while let Some(arg) = argv.next() {
        match arg.as_str() {
            "--addr" => args.addr = argv.next().ok_or("--addr needs a value")?,
            "-h" | "--help" => {
                println!("usage: ws-echo [--addr HOST:PORT]");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument: {other} (try --help)")),
        }
    }
    Ok(args)
}

fn main() {
    let args = cli::start("ws-echo", parse_args);
    serve::until_signal(
        "ws-echo",
        move || Ok(StreamServer::bind(args.addr.as_str())?.nodelay(true).name("ws").stack_size(STACK_SIZE)),
        |server| server.start(ws::serve),
        |addr| format!("WebSocket echo server listening on ws://{addr}/"),
    );
}
