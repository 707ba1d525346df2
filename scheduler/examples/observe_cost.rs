//! What looking inside a hub costs: reading its metrics (on the hub and from
//! another thread), measuring its stacks' memory, and dumping 10,000 parked
//! greenlets with their stacks. The first dump of a process also loads the
//! debug information that names the frames.
//!
//! ```text
//! cargo run --release -p runtime-scheduler --example observe_cost
//! ```

use std::hint::black_box;
use std::rc::Rc;
use std::time::{Duration, Instant};

use runtime_scheduler::sync::Event;
use runtime_scheduler::{Handle, blocking, dump, metrics, run, spawn, yield_now};

const READS: u32 = 100_000;
const PARKED: usize = 10_000;

fn per(total: Duration, n: u32) -> String {
    format!("{:>8.1} ns each ({n} in {:.1} ms)", total.as_nanos() as f64 / f64::from(n), total.as_secs_f64() * 1e3)
}

fn main() {
    run(|| {
        let start = Instant::now();
        for _ in 0..READS {
            black_box(metrics());
        }
        println!("metrics() on the hub:           {}", per(start.elapsed(), READS));

        let handle = Handle::current();
        let elapsed = blocking(move || {
            let start = Instant::now();
            for _ in 0..READS {
                black_box(handle.metrics());
            }
            start.elapsed()
        });
        println!("Handle::metrics() from a thread: {}", per(elapsed, READS));

        let gate = Rc::new(Event::new());
        let parked: Vec<_> = (0..PARKED)
            .map(|_| {
                let gate = gate.clone();
                spawn(move || gate.wait())
            })
            .collect();
        yield_now(); // every one parks

        let start = Instant::now();
        let bytes = greenlet::stack::resident_bytes();
        println!(
            "stack resident bytes, {PARKED} stacks: {:.2} ms ({} KiB resident)",
            start.elapsed().as_secs_f64() * 1e3,
            bytes / 1024
        );

        for round in ["first", "second"] {
            let start = Instant::now();
            let snapshot = dump();
            let text = snapshot.to_string();
            let elapsed = start.elapsed();
            let n = snapshot.greenlets().len();
            println!(
                "dump of {n} greenlets with their stacks ({round}): {:.1} us per greenlet, {:.1} ms in all, {} KiB of text",
                elapsed.as_secs_f64() * 1e6 / n as f64,
                elapsed.as_secs_f64() * 1e3,
                text.len() / 1024
            );
        }
        gate.set();
        parked.into_iter().for_each(|p| p.join().unwrap());
    });
}
