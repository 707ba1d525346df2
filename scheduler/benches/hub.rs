//! The hub's costs next to tokio's current-thread runtime, in one criterion
//! run. Each group has an `ours` and a `tokio` function:
//!
//! - `spawn_join`: spawn an empty greenlet and join it, against
//!   `tokio::spawn(async {}).await`.
//! - `yield_pingpong`: two greenlets alternating through `yield_now`, per
//!   yield, against two tasks alternating through
//!   `tokio::task::yield_now().await`.
//! - `channel_pingpong`: a `u64` sent back and forth through two `bounded(1)`
//!   channels, per round trip, against `tokio::sync::mpsc::channel(1)`.
//! - `event_handoff`: two greenlets handing control back and forth through
//!   two `Event`s (set the other's, wait on one's own, clear it), per round
//!   trip, against two `tokio::sync::Notify` (`notify_one` /
//!   `notified().await`).
//! - `semaphore_handoff`: the same through two `Semaphore`s that start empty
//!   (`add_permits(1)` to the other's, `acquire().forget()` on one's own),
//!   against two `tokio::sync::Semaphore`.
//! - `timers`: 100,000 sleepers with deadlines spread over 0..=100 ms (fixed
//!   seed), spawned and joined; one iteration is the whole batch, and the
//!   throughput line gives timers per second.
//!
//! The hub's start-up (`run`) and the tokio runtime's construction are not
//! timed. The tokio side of the first three groups runs on a current-thread
//! runtime with no driver enabled, its cheapest configuration (enabling the
//! timer makes each of them slower); the timer group enables the timer.
//!
//! The workloads live in `workloads/mod.rs`, shared with
//! `examples/hub_ratios.rs`, which prints the ratios between the two sides.
//! Pin the run to one core:
//!
//! ```text
//! taskset -c 0 cargo bench -p runtime-scheduler --bench hub
//! ```

use std::time::Duration;

use criterion::{Criterion, SamplingMode, Throughput};

mod workloads;

fn spawn_join(c: &mut Criterion) {
    let rt = workloads::tokio_runtime_bare();
    let mut group = c.benchmark_group("spawn_join");
    group.bench_function("ours", |b| b.iter_custom(workloads::ours_spawn_join));
    group.bench_function("tokio", |b| b.iter_custom(|iters| workloads::tokio_spawn_join(&rt, iters)));
    group.finish();
}

fn yield_pingpong(c: &mut Criterion) {
    let rt = workloads::tokio_runtime_bare();
    let mut group = c.benchmark_group("yield_pingpong");
    group.bench_function("ours", |b| b.iter_custom(workloads::ours_yield_pingpong));
    group.bench_function("tokio", |b| b.iter_custom(|iters| workloads::tokio_yield_pingpong(&rt, iters)));
    group.finish();
}

fn channel_pingpong(c: &mut Criterion) {
    let rt = workloads::tokio_runtime_bare();
    let mut group = c.benchmark_group("channel_pingpong");
    group.bench_function("ours", |b| b.iter_custom(workloads::ours_channel_pingpong));
    group.bench_function("tokio", |b| b.iter_custom(|iters| workloads::tokio_channel_pingpong(&rt, iters)));
    group.finish();
}

fn event_handoff(c: &mut Criterion) {
    let rt = workloads::tokio_runtime_bare();
    let mut group = c.benchmark_group("event_handoff");
    group.bench_function("ours", |b| b.iter_custom(workloads::ours_event_handoff));
    group.bench_function("tokio", |b| b.iter_custom(|iters| workloads::tokio_event_handoff(&rt, iters)));
    group.finish();
}

fn semaphore_handoff(c: &mut Criterion) {
    let rt = workloads::tokio_runtime_bare();
    let mut group = c.benchmark_group("semaphore_handoff");
    group.bench_function("ours", |b| b.iter_custom(workloads::ours_semaphore_handoff));
    group.bench_function("tokio", |b| b.iter_custom(|iters| workloads::tokio_semaphore_handoff(&rt, iters)));
    group.finish();
}

fn timers(c: &mut Criterion) {
    let rt = workloads::tokio_runtime();
    let deadlines = workloads::timer_deadlines();
    let mut group = c.benchmark_group("timers");
    // One iteration takes from a little over 100 ms (the latest deadline) to
    // about half a second.
    group.sampling_mode(SamplingMode::Flat);
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));
    group.throughput(Throughput::Elements(workloads::TIMERS as u64));
    group.bench_function("ours", |b| b.iter_custom(|iters| workloads::ours_timers(&deadlines, iters)));
    group.bench_function("tokio", |b| b.iter_custom(|iters| workloads::tokio_timers(&rt, &deadlines, iters)));
    group.finish();
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    spawn_join(&mut criterion);
    yield_pingpong(&mut criterion);
    channel_pingpong(&mut criterion);
    event_handoff(&mut criterion);
    semaphore_handoff(&mut criterion);
    timers(&mut criterion);
    criterion.final_summary();
}
