//! Waking a greenlet on another hub, next to tokio, in one criterion run:
//!
//! - `cross_hub_pingpong`: two hubs on two threads pass a `u64` back and
//!   forth through two `bounded(1)` channels, per round trip, against two
//!   tokio `current_thread` runtimes on two threads with
//!   `tokio::sync::mpsc::channel(1)` (without drivers, and with the I/O
//!   driver: `tokio_io`), and our hubs without busy polling
//!   (`ours_no_busy_poll`: every wake-up wakes a sleeping thread);
//! - `ring/N`: N hubs (2, 4, 8) pass a token round a ring of `bounded(1)`
//!   channels, per hop (the throughput line gives hops per second), against
//!   N tokio runtimes without drivers;
//! - `blocking/N`: N hubs (1, 2, 4) sharing one blocking pool, each with 8
//!   greenlets calling `blocking` with an empty job (one iteration is one
//!   call by each greenlet of each hub);
//! - `sweep/N`: 64 ping-pong pairs spread over N hubs (1, 2, 4, 8; each
//!   pair on one hub: `ours_local`, or its two ends on neighbouring hubs:
//!   `ours_crossing`), per round trip of every pair, against the same pairs
//!   as tasks of a tokio `multi_thread` runtime with N workers.
//!
//! Thread and runtime start-up are not timed (see `workloads/hubs.rs`);
//! `examples/cross_hub.rs` prints the ratios. Hubs and threads are not
//! pinned here:
//!
//! ```text
//! cargo bench -p runtime-scheduler --bench cross_hub
//! ```

use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput};

#[path = "workloads/hubs.rs"]
mod hubs;

use hubs::{Pairs, Tokio};

fn pingpong(c: &mut Criterion) {
    let mut group = c.benchmark_group("cross_hub_pingpong");
    group.bench_function("ours", |b| b.iter_custom(|rounds| hubs::ours_ring(2, rounds, false, None)));
    group.bench_function("ours_no_busy_poll", |b| {
        b.iter_custom(|rounds| hubs::ours_ring(2, rounds, false, Some(Duration::ZERO)));
    });
    group.bench_function("tokio", |b| b.iter_custom(|rounds| hubs::tokio_ring(2, rounds, false, Tokio::Bare)));
    group.bench_function("tokio_io", |b| b.iter_custom(|rounds| hubs::tokio_ring(2, rounds, false, Tokio::Io)));
    group.finish();
}

fn ring(c: &mut Criterion) {
    let mut group = c.benchmark_group("ring");
    for hubs in [2usize, 4, 8] {
        // One iteration is one round: `hubs` hops.
        group.throughput(Throughput::Elements(hubs as u64));
        group.bench_with_input(BenchmarkId::new("ours", hubs), &hubs, |b, &n| {
            b.iter_custom(|rounds| hubs::ours_ring(n, rounds, false, None));
        });
        group.bench_with_input(BenchmarkId::new("tokio", hubs), &hubs, |b, &n| {
            b.iter_custom(|rounds| hubs::tokio_ring(n, rounds, false, Tokio::Bare));
        });
    }
    group.finish();
}

fn blocking(c: &mut Criterion) {
    let mut group = c.benchmark_group("blocking");
    for hubs in [1usize, 2, 4] {
        group.throughput(Throughput::Elements((hubs * hubs::BLOCKING_CALLERS) as u64));
        group.bench_with_input(BenchmarkId::new("ours", hubs), &hubs, |b, &n| {
            b.iter_custom(|calls| hubs::ours_blocking(n, calls, false));
        });
    }
    group.finish();
}

fn sweep(c: &mut Criterion) {
    let mut group = c.benchmark_group("sweep");
    group.throughput(Throughput::Elements(hubs::SWEEP_PAIRS as u64));
    for hubs in hubs::SWEEP_HUBS {
        for (name, placement) in [("ours_local", Pairs::Local), ("ours_crossing", Pairs::Crossing)] {
            group.bench_with_input(BenchmarkId::new(name, hubs), &hubs, |b, &n| {
                b.iter_custom(|rounds| hubs::ours_pairs(n, placement, hubs::SWEEP_PAIRS, rounds, false));
            });
        }
        group.bench_with_input(BenchmarkId::new("tokio_mt", hubs), &hubs, |b, &n| {
            b.iter_custom(|rounds| hubs::tokio_pairs(n, hubs::SWEEP_PAIRS, rounds));
        });
    }
    group.finish();
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    pingpong(&mut criterion);
    ring(&mut criterion);
    blocking(&mut criterion);
    sweep(&mut criterion);
    criterion.final_summary();
}
