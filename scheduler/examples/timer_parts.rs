//! Splits the cost of `hub_ratios`' timer scenario (100,000 greenlets, each
//! sleeping 0 to 100 ms, all joined) into parts, by running variants of it
//! in turns with tokio's version:
//!
//! - `finish`: each greenlet returns at once; the 100,000 are spawned up
//!   front but run one at a time, so one stack serves them all.
//! - `yield`: each greenlet yields once, so all 100,000 are alive at the same
//!   time on stacks of their own, but no timer is involved.
//! - `sleep`: the scenario itself.
//!
//! `yield - finish` is what holding 100,000 stacks at once costs (every
//! switch goes to memory no cache holds), `sleep - yield` what the timers add
//! (arming, firing, waking, and the part of the 100 ms wait that the work does
//! not cover). Each variant prints ns per greenlet for the spawns, for
//! the time until the last one had started, and in all; medians of 7 runs.
//!
//! A greenlet's `sleep(d)` counts `d` from the moment it first runs, and the
//! greenlets start one after another once all are spawned (tokio's
//! `spawn(sleep(d))` fixes each deadline in the spawning loop). So the batch
//! cannot end before the latest deadline its sleepers set, however cheap the
//! firing: the `sleep` line prints that floor too, and how it compares with
//! tokio's whole batch.
//!
//! ```text
//! taskset -c 0 cargo run --release -p runtime-scheduler --example timer_parts
//! ```

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

// Only the timer scenario's parts are used here.
#[allow(dead_code)]
#[path = "../benches/workloads/mod.rs"]
mod workloads;

use runtime_scheduler::{run, sleep_until, spawn, yield_now};

const RUNS: usize = 7;

#[derive(Clone, Copy, PartialEq)]
enum Variant {
    Finish,
    Yield,
    Sleep,
}

/// One run of `variant`: (spawning, until the last one started, total, the
/// latest deadline a sleeper set (zero for the other variants)).
fn parts(deadlines: &[Duration], variant: Variant) -> [Duration; 4] {
    let deadlines = deadlines.to_vec();
    run(move || {
        let count = deadlines.len();
        let started = Rc::new(Cell::new(0));
        let all_started = Rc::new(Cell::new(None));
        let start = Instant::now();
        let latest = Rc::new(Cell::new(start));
        let handles: Vec<_> = deadlines
            .iter()
            .map(|&d| {
                let (started, all_started, latest) = (started.clone(), all_started.clone(), latest.clone());
                spawn(move || {
                    started.set(started.get() + 1);
                    if started.get() == count {
                        all_started.set(Some(Instant::now()));
                    }
                    match variant {
                        Variant::Finish => {}
                        Variant::Yield => yield_now(),
                        Variant::Sleep => {
                            // What `sleep(d)` does, keeping the deadline.
                            let at = Instant::now() + d;
                            latest.set(latest.get().max(at));
                            sleep_until(at);
                        }
                    }
                })
            })
            .collect();
        let spawned = start.elapsed();
        for handle in handles {
            handle.join().expect("a greenlet finishes");
        }
        let total = start.elapsed();
        [spawned, all_started.get().expect("all started") - start, total, latest.get() - start]
    })
}

fn median(mut ns: Vec<f64>) -> f64 {
    ns.sort_by(f64::total_cmp);
    ns[ns.len() / 2]
}

fn main() {
    let deadlines = workloads::timer_deadlines();
    let rt = workloads::tokio_runtime();
    let per = |d: Duration| d.as_nanos() as f64 / deadlines.len() as f64;
    let variants = [("finish", Variant::Finish), ("yield", Variant::Yield), ("sleep", Variant::Sleep)];
    // Warm-up: the first run reserves and first-touches every stack.
    for (_, variant) in variants {
        parts(&deadlines, variant);
    }
    workloads::tokio_timers(&rt, &deadlines, 1);
    let mut ours = vec![[Vec::new(), Vec::new(), Vec::new(), Vec::new()]; variants.len()];
    let mut tokio = Vec::new();
    for _ in 0..RUNS {
        for (i, (_, variant)) in variants.iter().enumerate() {
            for (samples, part) in ours[i].iter_mut().zip(parts(&deadlines, *variant)) {
                samples.push(per(part));
            }
        }
        tokio.push(per(workloads::tokio_timers(&rt, &deadlines, 1)));
    }
    println!(
        "{:<8} {:>12} {:>14} {:>12} {:>16}   (ns per greenlet, medians of {RUNS} runs)",
        "", "spawn", "all started", "total", "latest deadline"
    );
    let (mut totals, mut floor) = (Vec::new(), 0.0);
    for ((name, variant), samples) in variants.iter().zip(ours) {
        let [spawn, started, total, latest] = samples.map(median);
        if *variant == Variant::Sleep {
            floor = latest;
            println!("{name:<8} {spawn:>12.0} {started:>14.0} {total:>12.0} {latest:>16.0}");
        } else {
            println!("{name:<8} {spawn:>12.0} {started:>14.0} {total:>12.0}");
        }
        totals.push(total);
    }
    let tokio = median(tokio);
    println!("{:<8} {:>12} {:>14} {tokio:>12.0}", "tokio", "", "");
    println!();
    println!("many stacks at once (yield - finish)   {:>8.0} ns", totals[1] - totals[0]);
    println!("timers (sleep - yield)                 {:>8.0} ns", totals[2] - totals[1]);
    println!("sleep / tokio                          {:>8.2}", totals[2] / tokio);
    // No batch ends before its latest deadline: with deadlines counted from
    // each greenlet's first run, this ratio bounds `sleep / tokio` from below.
    println!("latest deadline / tokio (the floor)    {:>8.2}", floor / tokio);
}
