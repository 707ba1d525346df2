//! A load generator for the echo server that checks every byte: many client
//! greenlets on one thread, each writing a message and reading the echo back
//! in plain blocking style.
//!
//! ```text
//! cargo run --release --example echo-server &                 # the server, on 127.0.0.1:7000
//! cargo run --release --example echo-client                   # 100 connections for 5 seconds
//! cargo run --release --example echo-client -- --conns 1000 --msg-size 512 --duration 10
//! cargo run --release --example echo-client -- --conns 10 --messages 1000   # 1000 round trips each
//! RUST_LOG=debug cargo run --release --example echo-client    # log each connection's errors
//! ```
//!
//! Every message carries a pattern derived from its connection and sequence
//! number, so an echo that comes back corrupted, reordered, or belonging to
//! another connection is caught. At the end it prints the totals and the
//! round-trip latency (p50, p99); the exit status is 1 if anything failed (a
//! mismatch, a refused connection, an I/O error or a timeout), 0 otherwise.
//! Ctrl-C (SIGINT) or SIGTERM stops early and still prints the totals.

use std::cell::Cell;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::rc::Rc;
use std::time::{Duration, Instant};

use runtime::net::{TcpStream, ToSocketAddrs};
use runtime::signal::{SIGINT, SIGTERM, Signals};

const USAGE: &str = "usage: echo-client [--addr HOST:PORT] [--conns N] [--msg-size BYTES] \
                     [--duration SECONDS | --messages N] [--timeout SECONDS]";

/// The largest message. Each client writes a whole message before it reads
/// the echo back, so the echo has to fit in the socket buffers meanwhile (the
/// client's receive buffer and the server's send buffer); past that, both
/// sides would wait for each other to read.
const MAX_MSG_SIZE: usize = 64 * 1024;

struct Args {
    addr: String,
    conns: usize,
    msg_size: usize,
    duration: Duration,
    /// Round trips per connection; when set, `duration` is ignored.
    messages: Option<u64>,
    /// Limit for connecting and for each read or write.
    timeout: Duration,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        addr: "127.0.0.1:7000".into(),
        conns: 100,
        msg_size: 64,
        duration: Duration::from_secs(5),
        messages: None,
        timeout: Duration::from_secs(10),
    };
    let mut argv = std::env::args().skip(1);
    while let Some(arg) = argv.next() {
        let mut value = |name: &str| argv.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--addr" => args.addr = value("--addr")?,
            "--conns" => args.conns = parse_number("--conns", &value("--conns")?)?,
            "--msg-size" => args.msg_size = parse_number("--msg-size", &value("--msg-size")?)?,
            "--messages" => args.messages = Some(parse_number("--messages", &value("--messages")?)?),
            "--duration" => args.duration = parse_seconds("--duration", &value("--duration")?)?,
            "--timeout" => args.timeout = parse_seconds("--timeout", &value("--timeout")?)?,
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument: {other} (try --help)")),
        }
    }
    if args.conns == 0 {
        return Err("--conns must be at least 1".into());
    }
    if !(1..=MAX_MSG_SIZE).contains(&args.msg_size) {
        return Err(format!("--msg-size must be between 1 and {MAX_MSG_SIZE}"));
    }
    Ok(args)
}

fn parse_number<T: std::str::FromStr>(name: &str, text: &str) -> Result<T, String> {
    text.replace('_', "").parse().map_err(|_| format!("bad {name}: {text}"))
}

fn parse_seconds(name: &str, text: &str) -> Result<Duration, String> {
    match text.parse::<f64>() {
        Ok(secs) if secs > 0.0 && secs.is_finite() => Ok(Duration::from_secs_f64(secs)),
        _ => Err(format!("bad {name}: {text} (seconds, more than 0)")),
    }
}

/// Fills `buf` with the pattern of message `seq` of connection `conn`: a
/// xorshift stream seeded by both numbers, so that each message differs from
/// the others.
fn fill_pattern(buf: &mut [u8], conn: u64, seq: u64) {
    let mut state = (conn << 32 ^ seq).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    for chunk in buf.chunks_mut(8) {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        chunk.copy_from_slice(&state.to_le_bytes()[..chunk.len()]);
    }
}

/// What one connection did.
#[derive(Default)]
struct Stats {
    connected: bool,
    messages: u64,
    /// Round-trip times, in nanoseconds.
    latencies: Vec<u64>,
    mismatches: u64,
    /// The connection failed or timed out after it was established.
    io_errors: u64,
    /// What went wrong first, if anything.
    first_error: Option<String>,
}

impl Stats {
    fn failed(mut self, what: String) -> Stats {
        tracing::debug!("{what}");
        self.first_error.get_or_insert(what);
        self
    }
}

/// One client: connects, then does round trips until `stop` is set or it has
/// done `messages` of them.
fn client(id: u64, addr: SocketAddr, args: Rc<Args>, stop: Rc<Cell<bool>>) -> Stats {
    let mut stats = Stats::default();
    let mut stream = match TcpStream::connect_timeout(&addr, args.timeout) {
        Ok(stream) => stream,
        Err(err) => return stats.failed(format!("connection {id}: connect failed: {err}")),
    };
    stats.connected = true;
    let setup = stream
        .set_nodelay(true)
        .and_then(|()| stream.set_read_timeout(Some(args.timeout)))
        .and_then(|()| stream.set_write_timeout(Some(args.timeout)));
    if let Err(err) = setup {
        stats.io_errors += 1;
        return stats.failed(format!("connection {id}: socket setup failed: {err}"));
    }
    let mut message = vec![0; args.msg_size];
    let mut echo = vec![0; args.msg_size];
    let mut seq = 0;
    while !stop.get() && args.messages.is_none_or(|limit| seq < limit) {
        fill_pattern(&mut message, id, seq);
        let start = Instant::now();
        let round_trip = stream.write_all(&message).and_then(|()| stream.read_exact(&mut echo));
        if let Err(err) = round_trip {
            stats.io_errors += 1;
            return stats.failed(format!("connection {id}: message {seq}: {err}"));
        }
        let round_trip_time = start.elapsed();
        if echo != message {
            // The stream can no longer be trusted to be in step: stop here.
            let offset = echo.iter().zip(&message).position(|(a, b)| a != b).unwrap_or(0);
            stats.mismatches += 1;
            return stats.failed(format!("connection {id}: message {seq}: echo differs at byte {offset}"));
        }
        stats.latencies.push(round_trip_time.as_nanos() as u64);
        stats.messages += 1;
        seq += 1;
    }
    stats
}

/// The `q`-quantile of sorted `values` (nearest rank).
fn percentile(sorted: &[u64], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Duration::from_nanos(sorted[rank - 1])
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
    let args = match parse_args() {
        Ok(args) => Rc::new(args),
        Err(message) => {
            eprintln!("echo-client: {message}");
            return ExitCode::from(2);
        }
    };
    let result = runtime::run(move || -> io::Result<bool> {
        // Resolve once (a host name is looked up off the hub's thread).
        let addr = *args.addr.to_socket_addrs()?.first().expect("resolving gives at least one address");
        let stop = Rc::new(Cell::new(false));

        // Stop on a signal, or when the time is up.
        let mut signals = Signals::new([SIGINT, SIGTERM])?;
        let watcher = runtime::spawn({
            let stop = stop.clone();
            let duration = args.messages.is_none().then_some(args.duration);
            move || {
                let signal = match duration {
                    Some(duration) => runtime::timeout(duration, || signals.wait()),
                    None => Ok::<_, runtime::Elapsed>(signals.wait()),
                };
                if let Ok(Ok(signal)) = signal {
                    tracing::info!(signal, "stopping early");
                }
                stop.set(true);
            }
        });

        match args.messages {
            Some(n) => {
                tracing::info!("{} connections to {addr}, {n} messages of {} bytes each", args.conns, args.msg_size)
            }
            None => tracing::info!(
                "{} connections to {addr}, {} bytes a message, for {:?}",
                args.conns,
                args.msg_size,
                args.duration
            ),
        }
        let start = Instant::now();
        let clients: Vec<_> = (0..args.conns as u64)
            .map(|id| {
                let (args, stop) = (args.clone(), stop.clone());
                runtime::spawn(move || client(id, addr, args, stop))
            })
            .collect();
        let results = runtime::joinall(clients);
        let elapsed = start.elapsed();
        watcher.kill();

        let mut total = Stats::default();
        let mut connected = 0;
        for stats in results {
            let stats = stats.expect("client greenlets neither panic nor get killed");
            connected += usize::from(stats.connected);
            if total.first_error.is_none() {
                total.first_error = stats.first_error;
            }
            total.messages += stats.messages;
            total.mismatches += stats.mismatches;
            total.io_errors += stats.io_errors;
            total.latencies.extend(stats.latencies);
        }
        total.latencies.sort_unstable();
        let failed = args.conns - connected;
        let bytes = total.messages * args.msg_size as u64;
        let secs = elapsed.as_secs_f64();
        println!("connections: {connected} established, {failed} failed");
        println!("messages:    {} in {secs:.2} s ({:.0} messages/s)", total.messages, total.messages as f64 / secs);
        println!("bytes:       {bytes} each way ({:.2} MB/s each way)", bytes as f64 / secs / 1e6);
        println!(
            "latency:     p50 {:.1?}, p99 {:.1?}, max {:.1?}",
            percentile(&total.latencies, 0.50),
            percentile(&total.latencies, 0.99),
            percentile(&total.latencies, 1.0),
        );
        println!(
            "errors:      {} mismatches, {failed} connection failures, {} I/O errors or timeouts",
            total.mismatches, total.io_errors
        );
        if let Some(error) = &total.first_error {
            println!("first error: {error}");
        }
        Ok(total.mismatches == 0 && failed == 0 && total.io_errors == 0)
    });
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(err) => {
            eprintln!("echo-client: {err}");
            ExitCode::FAILURE
        }
    }
}
