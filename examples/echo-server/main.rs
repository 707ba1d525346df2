//! An echo server: one greenlet per connection, written in plain blocking
//! style, on one thread or on one hub per core.
//!
//! ```text
//! cargo run --release --example echo-server            # listens on 127.0.0.1:7000
//! cargo run --release --example echo-server -- --addr 0.0.0.0:9000 --max-connections 50000
//! cargo run --release --example echo-server -- --hubs 2  # two hubs, two threads, one port
//! cargo run --release --example echo-server -- --hubs 2 --console /tmp/echo.sock
//! cargo run -p runtime-console -- /tmp/echo.sock       # in another terminal: watch it live
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
//!
//! With `--hubs N`, N hubs serve the port, each on its own thread with its
//! own listener (`TcpSocket` with `SO_REUSEPORT`, so the kernel spreads the
//! connections over them) and its own `StreamServer`. Hub 0 waits for the
//! signal and sets an event every hub waits on; each then stops its server.
//! The logic is in `echo.rs` and `../common/hubs.rs`.

#[path = "../common/cli.rs"]
mod cli;
mod echo;
#[path = "../common/hubs.rs"]
mod hubs;

fn parse_args() -> Result<echo::Config, String> {
    let mut config = echo::Config::default();
    let mut argv = std::env::args().skip(1);
    while let Some(arg) = argv.next() {
        match arg.as_str() {
            "--addr" => config.addr = argv.next().ok_or("--addr needs a value")?,
            "--max-connections" => {
                let n = argv.next().ok_or("--max-connections needs a value")?;
                config.max_connections = Some(n.parse().map_err(|_| format!("bad --max-connections: {n}"))?);
            }
            "--hubs" => {
                let n = argv.next().ok_or("--hubs needs a value")?;
                config.hubs = n.parse().ok().filter(|&n| n > 0).ok_or_else(|| format!("bad --hubs: {n}"))?;
            }
            "--pin-cores" => config.pin_cores = true,
            "--busy-poll" => {
                let us = argv.next().ok_or("--busy-poll needs a value")?;
                let us: u64 = us.parse().map_err(|_| format!("bad --busy-poll: {us}"))?;
                config.busy_poll = Some(std::time::Duration::from_micros(us));
            }
            "--console" => config.console = Some(argv.next().ok_or("--console needs a path")?.into()),
            "-h" | "--help" => {
                println!(
                    "usage: echo-server [--addr HOST:PORT] [--max-connections N] [--hubs N] [--pin-cores]\n\
                     \x20      [--busy-poll MICROS] [--console PATH]\n\n\
                     Echoes what each client sends (default address 127.0.0.1:7000).\n\
                     --hubs N: serve on N hubs, each a thread with its own listener on the same\n\
                     \x20         port (SO_REUSEPORT: the kernel spreads connections over them);\n\
                     \x20         default 1, on the main thread. --max-connections is per hub.\n\
                     --pin-cores: pin hub i to core i.\n\
                     --busy-poll MICROS: how long an idle hub polls before it sleeps (default 50;\n\
                     \x20                  0: never).\n\
                     --console PATH: serve every hub's greenlets and metrics on the Unix socket\n\
                     \x20              PATH (0600); watch with `cargo run -p runtime-console -- PATH`.\n\
                     SIGINT or SIGTERM: stop accepting, give connections 5 s to finish, exit.\n\
                     SIGUSR1: print every greenlet and what it is parked on to stderr\n\
                     (runtime::dump; one dump per hub), e.g. `kill -USR1 <pid>`."
                );
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument: {other} (try --help)")),
        }
    }
    Ok(config)
}

fn main() {
    let config = cli::start("echo-server", parse_args);
    if let Err(err) = echo::run(config, |_| {}) {
        eprintln!("echo-server: {err}");
        std::process::exit(1);
    }
}
