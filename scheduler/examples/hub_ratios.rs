//! Prints what the hub's basic operations cost next to tokio's current-thread
//! runtime, as ns per operation and as ratios (ours / tokio; lower is better
//! for us).
//!
//! It times the same scenarios as the criterion benchmark (`benches/hub.rs`)
//! with a plain loop: each side of a scenario is run 7 times after a warm-up,
//! alternating with the other side, and the median is reported (the minimum
//! is shown too). Pin it to one core:
//!
//! ```text
//! taskset -c 0 cargo run --release -p runtime-scheduler --example hub_ratios [-- --scale F]
//! ```
//!
//! `--scale F` multiplies the iteration counts (default 1.0; the timer
//! scenario always runs whole batches of 100,000 sleepers); `--only A,B`
//! runs only the scenarios named (for profiling one of them). The summary
//! shows each scenario's goal for the ratio beside it.
//!
//! `--cpu` times each run by the CPU time of the thread that runs it (every
//! scenario but the timers runs on that one thread, hub or tokio runtime,
//! never waiting), around the whole run, so start-up and shutdown count
//! too: on a loaded machine, the time other processes took the core from it
//! is then left out, which wall-clock time cannot do. As in the
//! benchmark, tokio runs without drivers except for the timer scenario. The
//! timer scenario's ns per timer is the batch's time divided by 100,000, so it
//! includes the wait for the latest deadline (100 ms, 1,000 ns per timer); the
//! line also shows what is left without it.

use std::time::Duration;

#[path = "../benches/workloads/mod.rs"]
mod workloads;

#[path = "common/timing.rs"]
mod timing;

use timing::{RUNS, Timing};

/// The scenarios in the order they run, with the goal for each one's ratio
/// (ours / tokio, of the medians), if it has one.
const GOALS: [(&str, Option<f64>); 6] = [
    ("spawn_join", Some(0.7)),
    ("yield_pingpong", Some(0.85)),
    ("channel_pingpong", Some(1.0)),
    ("event_handoff", Some(1.0)),
    ("semaphore_handoff", Some(1.0)),
    ("timers", Some(1.0)),
];

/// Whether runs are timed by the thread's CPU time (`--cpu`).
static CPU_TIME: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// The CPU time the calling thread has used.
fn thread_cpu_time() -> Duration {
    let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `now` is a valid `timespec` for the call to write into.
    let result = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    assert_eq!(result, 0, "clock_gettime: {}", std::io::Error::last_os_error());
    Duration::new(now.tv_sec as u64, now.tv_nsec as u32)
}

/// Times a per-operation scenario and prints both sides.
fn bench(name: &str, iters: u64, mut run: impl FnMut(usize, u64) -> Duration) -> [Timing; 2] {
    let timings = timing::alternate(iters, iters, |side, i| {
        if CPU_TIME.load(std::sync::atomic::Ordering::Relaxed) {
            let start = thread_cpu_time();
            run(side, i);
            thread_cpu_time() - start
        } else {
            run(side, i)
        }
    });
    for (side, timing) in ["ours", "tokio"].iter().zip(timings) {
        println!(
            "{:<24} median {:>9.1} ns/op    min {:>9.1} ns/op    ({iters} iters x {RUNS} runs)",
            format!("{name}/{side}"),
            timing.median,
            timing.min
        );
    }
    timings
}

/// Times the timer scenario, whose runs are whole batches of
/// [`workloads::TIMERS`] sleepers, per sleeper, and prints both sides.
fn bench_timers(name: &str, mut batch: impl FnMut(usize) -> Duration) -> [Timing; 2] {
    let timers = workloads::TIMERS as u64;
    // The warm-up and every run are one batch each.
    let timings = timing::alternate(1, timers, |side, _| batch(side));
    // What is left once the wait for the latest deadline is taken out.
    let wait = Duration::from_millis(workloads::MAX_DEADLINE_MS).as_nanos() as f64 / timers as f64;
    for (side, timing) in ["ours", "tokio"].iter().zip(timings) {
        println!(
            "{:<24} median {:>9.1} ns/timer min {:>9.1} ns/timer ({timers} timers x {RUNS} runs; beyond the {} ms \
             wait: {:.1} ns/timer)",
            format!("{name}/{side}"),
            timing.median,
            timing.min,
            workloads::MAX_DEADLINE_MS,
            timing.median - wait,
        );
    }
    timings
}

fn main() {
    let mut scale = 1.0f64;
    let mut only: Option<Vec<String>> = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--cpu" {
            CPU_TIME.store(true, std::sync::atomic::Ordering::Relaxed);
            continue;
        }
        match (arg.as_str(), args.next()) {
            ("--scale", Some(f)) if f.parse::<f64>().is_ok_and(|f| f > 0.0) => scale = f.parse().unwrap_or(1.0),
            ("--only", Some(names)) => only = Some(names.split(',').map(str::to_owned).collect()),
            _ => {
                eprintln!("usage: hub_ratios [--scale F] [--only SCENARIO,...] [--cpu]");
                eprintln!("scenarios: {}", GOALS.map(|(name, _)| name).join(", "));
                std::process::exit(2);
            }
        }
    }
    let runs = |name: &str| only.as_ref().is_none_or(|only| only.iter().any(|o| o == name));
    let n = |base: f64| ((base * scale) as u64).max(10);
    let bare = workloads::tokio_runtime_bare();
    let timed = workloads::tokio_runtime();

    let mut ratios = Vec::new();
    let mut scenario = |name: &'static str, timings: &dyn Fn() -> [Timing; 2]| {
        if runs(name) {
            let [ours, tokio] = timings();
            ratios.push((name, ours, tokio));
        }
    };
    scenario("spawn_join", &|| {
        bench("spawn_join", n(1_000_000.0), |side, i| match side {
            0 => workloads::ours_spawn_join(i),
            _ => workloads::tokio_spawn_join(&bare, i),
        })
    });
    scenario("yield_pingpong", &|| {
        bench("yield_pingpong", n(5_000_000.0), |side, i| match side {
            0 => workloads::ours_yield_pingpong(i),
            _ => workloads::tokio_yield_pingpong(&bare, i),
        })
    });
    scenario("channel_pingpong", &|| {
        bench("channel_pingpong", n(2_000_000.0), |side, i| match side {
            0 => workloads::ours_channel_pingpong(i),
            _ => workloads::tokio_channel_pingpong(&bare, i),
        })
    });
    scenario("event_handoff", &|| {
        bench("event_handoff", n(2_000_000.0), |side, i| match side {
            0 => workloads::ours_event_handoff(i),
            _ => workloads::tokio_event_handoff(&bare, i),
        })
    });
    scenario("semaphore_handoff", &|| {
        bench("semaphore_handoff", n(2_000_000.0), |side, i| match side {
            0 => workloads::ours_semaphore_handoff(i),
            _ => workloads::tokio_semaphore_handoff(&bare, i),
        })
    });
    scenario("timers", &|| {
        let deadlines = workloads::timer_deadlines();
        bench_timers("timers", |side| match side {
            0 => workloads::ours_timers(&deadlines, 1),
            _ => workloads::tokio_timers(&timed, &deadlines, 1),
        })
    });

    println!();
    println!(
        "{:<18} {:>12} {:>12} {:>8} {:>10} {:>8} {:>8}",
        "scenario", "ours ns/op", "tokio ns/op", "ratio", "ratio(min)", "goal", ""
    );
    for (name, ours, tokio) in ratios {
        let ratio = ours.median / tokio.median;
        let goal = GOALS.iter().find(|(goal, _)| *goal == name).and_then(|(_, goal)| *goal);
        let (target, verdict) = match goal {
            None => ("-".to_string(), ""),
            Some(goal) => (format!("<= {goal:.2}"), if ratio <= goal { "met" } else { "MISSED" }),
        };
        println!(
            "{name:<18} {:>12.1} {:>12.1} {ratio:>8.2} {:>10.2} {target:>8} {verdict:>8}",
            ours.median,
            tokio.median,
            ours.min / tokio.min
        );
    }
    let clock = if CPU_TIME.load(std::sync::atomic::Ordering::Relaxed) {
        "the thread's CPU time (the timers: wall-clock time)"
    } else {
        "wall-clock time"
    };
    println!("(ns/op and ratio from the medians of {RUNS} runs; ratio(min) from the minima; timed by {clock})");
}
