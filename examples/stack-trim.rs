//! What idle connections cost in stack memory, before and after the hub
//! trims the stacks of greenlets parked for long
//! ([`Builder::stack_trim_after`](runtime::Builder::stack_trim_after)).
//!
//! ```text
//! cargo run --release --example stack-trim [-- --count N] [--deep BYTES]
//! ```
//!
//! Each of N greenlets (10,000 by default) owns a UDP socket, as a connection
//! would, touches `--deep` bytes of stack (32 KiB by default) in a burst of
//! work, then parks reading its socket. The resident memory per greenlet is
//! measured once all are parked, and again after the trim threshold has
//! passed; then each gets a datagram and finishes. Go gives goroutine stacks
//! back in a similar way, but by copying a goroutine that uses under a
//! quarter of its stack to a smaller one during garbage collection.

#[path = "common/proc_status.rs"]
mod proc_status;

use std::cell::Cell;
use std::hint::black_box;
use std::process::ExitCode;
use std::rc::Rc;
use std::time::{Duration, Instant};

use runtime::net::UdpSocket;
use runtime::{Builder, sleep, spawn};

const USAGE: &str = "usage: stack-trim [--count N] [--deep BYTES]";

/// How long greenlets stay parked before the hub trims them, in this run.
const TRIM_AFTER: Duration = Duration::from_millis(500);

/// Uses about `bytes` of stack, a KiB per level, as a burst of work would.
#[inline(never)]
fn burst(bytes: usize) -> u8 {
    let mut frame = [bytes as u8; 1024];
    black_box(&mut frame);
    if bytes <= 1024 { frame[7] } else { burst(bytes - 1024).wrapping_add(frame[3]) }
}

fn parse_args() -> Result<(usize, usize), String> {
    let (mut count, mut deep) = (10_000, 32 * 1024);
    let mut words = std::env::args().skip(1);
    while let Some(word) = words.next() {
        let mut value = |name: &str| -> Result<usize, String> {
            let v = words.next().ok_or_else(|| format!("{name} needs a value"))?;
            v.replace('_', "").parse().map_err(|e| format!("{name} {v}: {e}"))
        };
        match word.as_str() {
            "--count" => count = value("--count")?,
            "--deep" => deep = value("--deep")?,
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok((count, deep))
}

fn main() -> ExitCode {
    let (count, deep) = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            if !message.is_empty() {
                eprintln!("stack-trim: {message}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    Builder::new().stack_trim_after(Some(TRIM_AFTER)).run(move || {
        let sender = UdpSocket::bind("127.0.0.1:0").expect("bind the sender");
        let rss_start = proc_status::rss_bytes();
        let parked = Rc::new(Cell::new(0usize));
        let mut addrs = Vec::with_capacity(count);
        let mut handles = Vec::with_capacity(count);
        for _ in 0..count {
            let socket = UdpSocket::bind("127.0.0.1:0").expect("bind a socket (raise `ulimit -n`?)");
            addrs.push(socket.local_addr().expect("local address"));
            let parked = parked.clone();
            handles.push(spawn(move || {
                black_box(burst(deep));
                parked.set(parked.get() + 1);
                let mut buf = [0u8; 16];
                socket.recv(&mut buf).expect("recv")
            }));
        }
        while parked.get() < count {
            sleep(Duration::from_millis(1));
        }
        let rss_parked = proc_status::rss_bytes();
        // Wait out the threshold, then until the hub's idle turns have gone
        // over every greenlet (RSS stops falling), at most ten seconds.
        let started = Instant::now();
        sleep(TRIM_AFTER);
        let mut rss_trimmed = proc_status::rss_bytes();
        while started.elapsed() < Duration::from_secs(10) {
            sleep(Duration::from_millis(200));
            let now = proc_status::rss_bytes();
            if now + 64 * 1024 >= rss_trimmed {
                rss_trimmed = now.min(rss_trimmed);
                break;
            }
            rss_trimmed = now;
        }
        let trimmed_in = started.elapsed();
        for addr in &addrs {
            sender.send_to(b"wake", addr).expect("send");
        }
        let woken = handles.into_iter().map(|h| h.join()).filter(|r| matches!(r, Ok(4))).count();

        let per = |rss: usize| rss.saturating_sub(rss_start) as f64 / count as f64 / 1024.0;
        println!("greenlets parked in a socket read   {count}, each {} KiB deep before parking", deep / 1024);
        println!("trim threshold                      {} ms", TRIM_AFTER.as_millis());
        println!("RSS at start                        {:.1} MiB", rss_start as f64 / (1 << 20) as f64);
        println!("trimmed within                      {:.2} s of all parking", trimmed_in.as_secs_f64());
        println!("woken and finished                  {woken} of {count}");
        println!();
        println!("goal                                    result");
        println!("RSS per greenlet, parked   (>= 32 KiB)  {:.1} KiB", per(rss_parked));
        println!("RSS per greenlet, trimmed  (<= 8 KiB)   {:.1} KiB", per(rss_trimmed));
        if woken == count { ExitCode::SUCCESS } else { ExitCode::FAILURE }
    })
}
