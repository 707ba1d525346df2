//! A Redis-protocol (RESP2) in-memory key-value store: one greenlet per
//! connection, all sharing one database on one thread.
//!
//! ```text
//! cargo run --release --example resp-server            # listens on 127.0.0.1:6380
//! cargo run --release --example resp-server -- --addr 0.0.0.0:6380
//! redis-cli -p 6380 set greeting hello                 # OK
//! redis-cli -p 6380 get greeting                       # "hello"
//! redis-benchmark -p 6380 -t set,get -P 16 -q
//! scripts/bench-redis.sh                               # against a real redis-server
//! ```
//!
//! Commands: `PING`, `ECHO`, `SET` (with `EX`/`PX`/`EXAT`/`PXAT`/`KEEPTTL`,
//! `NX`/`XX`, `GET`), `GET`, `DEL`, `EXISTS`, `INCR`/`INCRBY`/`DECR`/`DECRBY`,
//! `MGET`/`MSET`, `LPUSH`/`RPUSH`/`LPOP`/`RPOP`/`LRANGE`/`LLEN`,
//! `EXPIRE`/`PEXPIRE`/`TTL`/`PTTL`/`PERSIST`, `DBSIZE`, `FLUSHALL`/`FLUSHDB`,
//! `SELECT 0`, `QUIT`, and the `CONFIG GET` and `COMMAND` queries clients send
//! at start-up. Replies and error messages are Redis's, word for word.
//!
//! Requests may be multibulk (what client libraries send) or inline (a line
//! typed into `nc`/`telnet`), and may be pipelined: every request already
//! read is answered, and the replies go out in one write. Malformed input,
//! a header or inline line over 64 KiB, an argument over 512 MiB or a request
//! over 1 GiB gets an `ERR Protocol error: ...` reply and the connection is
//! closed. Keys with a time to live expire when next touched, and a
//! background greenlet removes the others ten times a second.
//!
//! Ctrl-C (SIGINT) or SIGTERM stops it (the data is not saved anywhere).

mod commands;
mod protocol;
mod server;

#[path = "../common/cli.rs"]
mod cli;
#[path = "../common/serve.rs"]
mod serve;

use runtime::net::StreamServer;

struct Args {
    addr: String,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args { addr: "127.0.0.1:6380".into() };
    let mut argv = std::env::args().skip(1);
    while let Some(arg) = argv.next() {
        match arg.as_str() {
            "--addr" => args.addr = argv.next().ok_or("--addr needs a value")?,
            "-h" | "--help" => {
                println!("usage: resp-server [--addr HOST:PORT]");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument: {other} (try --help)")),
        }
    }
    Ok(args)
}

fn main() {
    let args = cli::start("resp-server", parse_args);
    serve::until_signal(
        "resp-server",
        move || Ok(StreamServer::bind(args.addr.as_str())?.nodelay(true).name("resp")),
        server::start,
        |addr| format!("RESP server listening on {addr}"),
    );
}
