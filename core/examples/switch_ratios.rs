//! Prints what a greenlet switch and a greenlet's life cost next to the raw
//! corosensei operations underneath, as ns per operation and as ratios.
//!
//! It times the same workloads as the criterion benchmark
//! (`benches/switch.rs`) with a plain loop: each is run 7 times after a
//! warm-up, and the median is reported (the minimum is shown too). Pin it to
//! one core:
//!
//! ```text
//! taskset -c 0 cargo run --release -p greenlet --example switch_ratios [-- --scale F]
//! ```
//!
//! `--scale F` multiplies the iteration counts (default 1.0).

use std::time::Instant;

#[path = "../benches/workloads/mod.rs"]
mod workloads;

const RUNS: usize = 7;

/// Runs `run(iters)` [`RUNS`] times after a warm-up; returns the median and
/// the minimum ns per operation, and prints them.
fn bench(name: &str, iters: u64, mut run: impl FnMut(u64)) -> f64 {
    run(iters / 10 + 1);
    let mut ns: Vec<f64> = (0..RUNS)
        .map(|_| {
            let start = Instant::now();
            run(iters);
            start.elapsed().as_nanos() as f64 / iters as f64
        })
        .collect();
    ns.sort_by(f64::total_cmp);
    let median = ns[RUNS / 2];
    println!("{name:<36} median {median:>8.2} ns/op   min {:>8.2} ns/op   ({iters} iters x {RUNS} runs)", ns[0]);
    median
}

fn main() {
    let mut scale = 1.0f64;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next().and_then(|v| v.parse::<f64>().ok())) {
            ("--scale", Some(f)) if f > 0.0 => scale = f,
            _ => {
                eprintln!("usage: switch_ratios [--scale F]");
                std::process::exit(2);
            }
        }
    }
    let n = |base: f64| ((base * scale) as u64).max(10);

    let mut w = workloads::MainChild::new();
    let main_child = bench("greenlet/roundtrip_main_child", n(10_000_000.0), |i| w.run(i));
    drop(w);
    let mut w = workloads::ChildChild::new();
    let child_child = bench("greenlet/roundtrip_child_child", n(10_000_000.0), |i| w.run(i));
    drop(w);
    let mut w = workloads::CreateStartFinish::new();
    let create = bench("greenlet/create_start_finish", n(2_000_000.0), |i| w.run(i));
    let mut w = workloads::ResumeSuspend::new();
    let resume_suspend = bench("corosensei/resume_suspend", n(10_000_000.0), |i| w.run(i));
    let mut w = workloads::CreateOnReusedStack::new();
    let create_raw = bench("corosensei/create_on_reused_stack", n(5_000_000.0), |i| w.run(i));

    println!();
    println!("roundtrip_main_child  / resume_suspend         = {:>6.2}", main_child / resume_suspend);
    println!("roundtrip_child_child / resume_suspend         = {:>6.2}", child_child / resume_suspend);
    println!("create_start_finish   / create_on_reused_stack = {:>6.2}", create / create_raw);
}
