//! Switch and creation costs of greenlets, next to the raw corosensei
//! operations they are built on, in one criterion run:
//!
//! - `greenlet/roundtrip_main_child`: main -> suspended child -> main.
//! - `greenlet/roundtrip_child_child`: A -> B -> A between two children.
//! - `greenlet/create_start_finish`: create, start, run to completion, drop.
//! - `corosensei/resume_suspend`: one resume + suspend of a raw coroutine.
//! - `corosensei/create_on_reused_stack`: `Coroutine::with_stack` on a reused
//!   stack, resumed to completion.
//!
//! The workloads live in `workloads/mod.rs`, shared with
//! `examples/switch_ratios.rs`, which prints the ratios between them. Pin the
//! run to one core: `taskset -c 0 cargo bench -p greenlet --bench switch`.

use std::time::{Duration, Instant};

use criterion::Criterion;

mod workloads;

/// Times `iters` operations of an already set-up workload.
fn timed(iters: u64, run: impl FnOnce(u64)) -> Duration {
    let start = Instant::now();
    run(iters);
    start.elapsed()
}

fn greenlet(c: &mut Criterion) {
    let mut group = c.benchmark_group("greenlet");
    let mut main_child = workloads::MainChild::new();
    group.bench_function("roundtrip_main_child", |b| b.iter_custom(|iters| timed(iters, |n| main_child.run(n))));
    drop(main_child);
    let mut child_child = workloads::ChildChild::new();
    group.bench_function("roundtrip_child_child", |b| b.iter_custom(|iters| timed(iters, |n| child_child.run(n))));
    drop(child_child);
    let mut create = workloads::CreateStartFinish::new();
    group.bench_function("create_start_finish", |b| b.iter_custom(|iters| timed(iters, |n| create.run(n))));
    group.finish();
}

fn corosensei(c: &mut Criterion) {
    let mut group = c.benchmark_group("corosensei");
    let mut resume = workloads::ResumeSuspend::new();
    group.bench_function("resume_suspend", |b| b.iter_custom(|iters| timed(iters, |n| resume.run(n))));
    let mut create = workloads::CreateOnReusedStack::new();
    group.bench_function("create_on_reused_stack", |b| b.iter_custom(|iters| timed(iters, |n| create.run(n))));
    group.finish();
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    greenlet(&mut criterion);
    corosensei(&mut criterion);
    criterion.final_summary();
}
