//! Prints what waking a greenlet on another hub costs next to tokio, as ns
//! per operation and as ratios (ours / tokio; lower is better for us):
//!
//! - `pingpong`: two hubs on two threads pass a `u64` back and forth through
//!   two `bounded(1)` channels (per round trip, two cross-thread wakes),
//!   against two tokio `current_thread` runtimes on two threads with
//!   `tokio::sync::mpsc::channel(1)`;
//! - `ring N`: N hubs (2, 4, 8) on N threads pass a token round a ring of
//!   `bounded(1)` channels (per hop), against N tokio runtimes; beyond the
//!   number of cores the threads are oversubscribed, so a hop also costs a
//!   context switch.
//! - `blocking N`: N hubs (1, 2, 4) share one blocking pool, as the hubs of
//!   one `run_each` do, each with 8 greenlets calling `blocking` with an
//!   empty job in a loop: ns per call, all hubs together (ours only: a tokio
//!   runtime has a blocking pool of its own).
//! - `sweep N`: the hub-count sweep. 64 ping-pong pairs spread over N hubs
//!   (1, 2, 4, 8 by default, `--hubs` to choose), placed two ways: each
//!   pair on one hub (`local`: independent work spread over the hubs, as a
//!   server's connections are) and with its two ends on neighbouring hubs
//!   (`crossing`: every exchange crosses threads): ns per round trip of the
//!   whole workload (lower is more throughput), against the same pairs as
//!   tasks of one tokio `multi_thread` runtime with N workers, which places
//!   and steals tasks itself. On 2 cores, 4 and 8 hubs oversubscribe them.
//!
//! Our side runs twice: with the default `Builder::busy_poll` (an idle hub
//! polls for 50 µs before it sleeps, so a quick reply never has to wake a
//! sleeping thread) and without it (`ours-sleep`: every wake-up wakes a
//! thread sleeping in `epoll_wait`, the cost that busy polling avoids). The
//! tokio side runs twice: without any driver (an idle runtime parks on a
//! condition variable, tokio's cheapest cross-thread wake) and with its I/O
//! driver (parked in `epoll_wait`, woken through an eventfd, as an idle hub
//! is). Each side of a scenario is run 7 times after a warm-up, alternating
//! with the others, and the median is reported (the minimum too).
//!
//! ```text
//! cargo run --release -p runtime-scheduler --example cross_hub [-- --scale F] [--pin] [--hubs 1,2,4,8] [--sweep-only]
//! ```
//!
//! `--pin` pins hub (or thread) `i` to core `i`, modulo the cores the process
//! may use; `--scale F` multiplies the iteration counts (default 1.0);
//! `--hubs` lists the sweep's hub counts; `--sweep-only` runs only the sweep.

use std::time::Duration;

#[path = "../benches/workloads/hubs.rs"]
mod hubs;

use hubs::{Pairs, Tokio};

#[path = "common/timing.rs"]
mod timing;

use timing::{RUNS, Timing};

/// The sides of every scenario, in the order they run.
const SIDES: [&str; 4] = ["ours", "tokio", "tokio+io", "ours-sleep"];

/// Times every side of a scenario (see [`timing::alternate`]), per
/// operation (`count` rounds of `ops_per_round` each), and prints them.
fn measure(name: &str, count: u64, ops_per_round: u64, run: impl FnMut(usize, u64) -> Duration) -> [Timing; 4] {
    let timings = timing::alternate::<4>(count, count * ops_per_round, run);
    for (side, timing) in SIDES.iter().zip(&timings) {
        println!(
            "{:<20} median {:>9.1} ns/op    min {:>9.1} ns/op    ({count} x {ops_per_round} ops x {RUNS} runs)",
            format!("{name}/{side}"),
            timing.median,
            timing.min
        );
    }
    timings
}

fn main() {
    let mut scale = 1.0f64;
    let mut pin = false;
    let mut sweep_hubs = hubs::SWEEP_HUBS.to_vec();
    let mut sweep_only = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--pin" => pin = true,
            "--sweep-only" => sweep_only = true,
            "--hubs" => match args.next().map(|list| list.split(',').map(str::parse::<usize>).collect()) {
                Some(Ok(counts)) if !Vec::is_empty(&counts) && !counts.contains(&0) => sweep_hubs = counts,
                _ => usage(),
            },
            "--scale" => match args.next().and_then(|v| v.parse::<f64>().ok()) {
                Some(f) if f > 0.0 => scale = f,
                _ => usage(),
            },
            _ => usage(),
        }
    }
    let n = |base: f64| ((base * scale) as u64).max(10);
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    println!("# {cores} cores, hubs and threads {}", if pin { "pinned (i to core i mod cores)" } else { "not pinned" });

    if !sweep_only {
        ratios(n, pin);
    }
    sweep(&sweep_hubs, n(2_000.0), pin);
}

/// The ring, ping-pong and blocking-pool scenarios, with their table.
fn ratios(n: impl Fn(f64) -> u64, pin: bool) {
    let mut rows = Vec::new();
    let pingpong = measure("pingpong", n(20_000.0), 1, |side, rounds| match side {
        0 => hubs::ours_ring(2, rounds, pin, None),
        1 => hubs::tokio_ring(2, rounds, pin, Tokio::Bare),
        2 => hubs::tokio_ring(2, rounds, pin, Tokio::Io),
        _ => hubs::ours_ring(2, rounds, pin, Some(Duration::ZERO)),
    });
    rows.push(("pingpong (round trip)".to_string(), pingpong));
    for ring in [2usize, 4, 8] {
        // About the same number of hops for every ring size.
        let rounds = n(20_000.0 / ring as f64);
        let timings = measure(&format!("ring{ring}"), rounds, ring as u64, |side, rounds| match side {
            0 => hubs::ours_ring(ring, rounds, pin, None),
            1 => hubs::tokio_ring(ring, rounds, pin, Tokio::Bare),
            2 => hubs::tokio_ring(ring, rounds, pin, Tokio::Io),
            _ => hubs::ours_ring(ring, rounds, pin, Some(Duration::ZERO)),
        });
        rows.push((format!("ring of {ring} (hop)"), timings));
    }

    let mut pool = Vec::new();
    for hubs in [1usize, 2, 4] {
        let calls = n(20_000.0 / (hubs * hubs::BLOCKING_CALLERS) as f64);
        let per_call = (hubs * hubs::BLOCKING_CALLERS) as u64;
        hubs::ours_blocking(hubs, calls.div_ceil(10), pin);
        let ns = (0..RUNS)
            .map(|_| hubs::ours_blocking(hubs, calls, pin).as_nanos() as f64 / (calls * per_call) as f64)
            .collect();
        let timing = Timing::of(ns);
        println!(
            "{:<20} median {:>9.1} ns/op    min {:>9.1} ns/op    ({calls} x {per_call} calls x {RUNS} runs)",
            format!("blocking{hubs}/ours"),
            timing.median,
            timing.min
        );
        pool.push((hubs, timing));
    }

    println!();
    println!(
        "{:<22} {:>10} {:>10} {:>10} {:>12} {:>15} {:>12} {:>18}",
        "scenario", "ours ns", "tokio ns", "tokio+io", "ours/tokio", "ours/tokio+io", "ours-sleep", "ours-sleep/tokio"
    );
    for (name, t) in rows {
        println!(
            "{name:<22} {:>10.0} {:>10.0} {:>10.0} {:>12.2} {:>15.2} {:>12.0} {:>18.2}",
            t[0].median,
            t[1].median,
            t[2].median,
            t[0].median / t[1].median,
            t[0].median / t[2].median,
            t[3].median,
            t[3].median / t[1].median
        );
    }
    println!(
        "(medians of {RUNS} runs; tokio: current_thread runtimes without drivers; tokio+io: with the I/O driver; \
         ours-sleep: hubs without busy polling)"
    );
    println!();
    println!("{:<22} {:>10}", "blocking pool", "ns/call");
    for (hubs, timing) in pool {
        println!("{:<22} {:>10.0}", format!("{hubs} hub(s) x 8 callers"), timing.median);
    }
}

/// The hub-count sweep: the same pairs over 1, 2, 4, 8 hubs, local and
/// crossing, against tokio `multi_thread` with as many workers.
fn sweep(counts: &[usize], rounds: u64, pin: bool) {
    let pairs = hubs::SWEEP_PAIRS;
    let mut rows = Vec::new();
    for &hubs in counts {
        let [local, crossing, tokio] =
            timing::alternate::<3>(rounds, rounds * pairs as u64, |side, rounds| match side {
                0 => hubs::ours_pairs(hubs, Pairs::Local, pairs, rounds, pin),
                1 => hubs::ours_pairs(hubs, Pairs::Crossing, pairs, rounds, pin),
                _ => hubs::tokio_pairs(hubs, pairs, rounds),
            });
        for (side, timing) in [("local", local), ("crossing", crossing), ("tokio-mt", tokio)] {
            println!(
                "{:<20} median {:>9.1} ns/op    min {:>9.1} ns/op    ({rounds} x {pairs} round trips x {RUNS} runs)",
                format!("sweep{hubs}/{side}"),
                timing.median,
                timing.min
            );
        }
        rows.push((hubs, local, crossing, tokio));
    }
    println!();
    println!(
        "{:<20} {:>10} {:>12} {:>10} {:>14} {:>17} {:>13}",
        "64 pairs over", "local ns", "crossing ns", "tokio-mt", "local/tokio", "crossing/tokio", "local Mtrip/s"
    );
    for (hubs, local, crossing, tokio) in rows {
        println!(
            "{:<20} {:>10.0} {:>12.0} {:>10.0} {:>14.2} {:>17.2} {:>13.2}",
            format!("{hubs} hub(s)/workers"),
            local.median,
            crossing.median,
            tokio.median,
            local.median / tokio.median,
            crossing.median / tokio.median,
            1e3 / local.median
        );
    }
    println!(
        "(medians of {RUNS} runs, ns per round trip of one pair while all {pairs} run; tokio-mt: one multi_thread \
         runtime with as many workers, unpinned)"
    );
}

fn usage() -> ! {
    eprintln!("usage: cross_hub [--scale F] [--pin] [--hubs 1,2,4,8] [--sweep-only]");
    std::process::exit(2);
}
