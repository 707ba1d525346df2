//! Spawning onto a hub from other threads (`Handle::spawn`), next to tokio,
//! and what a flood of such spawns does to the hub.
//!
//! - `spawn T`: T plain threads (1, 2, 4) spawn greenlets that do nothing
//!   (but count themselves) onto one hub, until every one has run: ns per
//!   spawn, against T threads spawning tasks through tokio's
//!   `Handle::spawn` onto one `current_thread` runtime. Each side runs 7
//!   times after a warm-up, alternating, and the median is reported (the
//!   minimum too), with the ratio ours / tokio (lower is better for us).
//! - `flood`: one thread calls `Handle::spawn` in a loop for 4 s while the
//!   hub's main greenlet sleeps 1 ms at a time: how late its sleeps return,
//!   how many spawns were accepted and ran, and how far resident memory
//!   grew. The hub takes the spawns off its queue in bounded batches, and
//!   `Handle::spawn` blocks the flooding thread while the hub is behind by
//!   `Handle::MAX_QUEUED_SPAWNS`, so both the latency and the memory stay
//!   bounded. (Goals: every sleep returns within 10 ms; memory stays flat.)
//!
//! ```text
//! cargo run --release -p runtime-scheduler --example remote_spawn [-- --scale F] [--flood-secs S]
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use runtime_scheduler::sync::Event;
use runtime_scheduler::{self as rt, Handle};

#[path = "common/timing.rs"]
mod timing;

use timing::{RUNS, Timing};

/// Starts a hub on its own thread whose main greenlet waits for `done`;
/// returns its `Handle` and thread.
fn hub(done: Arc<Event>) -> (Handle, thread::JoinHandle<()>) {
    let (to_caller, handle) = std::sync::mpsc::channel();
    let thread = thread::spawn(move || {
        rt::run(move || {
            to_caller.send(Handle::current()).expect("the caller waits");
            done.wait();
        });
    });
    (handle.recv().expect("the hub starts"), thread)
}

/// Calls `spawn_one` `total` times in all from `spawners` threads at once,
/// and returns once every thread is done.
fn from_threads(spawners: usize, total: usize, spawn_one: impl Fn() + Sync) {
    thread::scope(|scope| {
        for i in 0..spawners {
            let spawn_one = &spawn_one;
            scope.spawn(move || (i..total).step_by(spawners).for_each(|_| spawn_one()));
        }
    });
}

/// `spawners` threads spawn `count` greenlets in all onto one hub; the time
/// until the last has run.
fn ours(spawners: usize, count: u64) -> Duration {
    let done = Arc::new(Event::new());
    let (handle, hub) = hub(done.clone());
    let ran = Arc::new(AtomicUsize::new(0));
    let total = count as usize;
    let start = Instant::now();
    from_threads(spawners, total, || {
        let (ran, done) = (ran.clone(), done.clone());
        drop(handle.spawn(move || {
            if ran.fetch_add(1, Ordering::Relaxed) + 1 == total {
                done.set();
            }
        }));
    });
    drop(handle);
    hub.join().expect("the hub stops");
    start.elapsed()
}

/// The same with tokio: `spawners` threads spawn `count` tasks onto one
/// `current_thread` runtime driven by its own thread.
fn tokio(spawners: usize, count: u64) -> Duration {
    let done = Arc::new(tokio::sync::Notify::new());
    let (to_caller, handle) = std::sync::mpsc::channel();
    let runtime = {
        let done = done.clone();
        thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().build().expect("a tokio runtime");
            to_caller.send(runtime.handle().clone()).expect("the caller waits");
            runtime.block_on(done.notified());
        })
    };
    let handle = handle.recv().expect("the runtime starts");
    let ran = Arc::new(AtomicUsize::new(0));
    let total = count as usize;
    let start = Instant::now();
    from_threads(spawners, total, || {
        let (ran, done) = (ran.clone(), done.clone());
        drop(handle.spawn(async move {
            if ran.fetch_add(1, Ordering::Relaxed) + 1 == total {
                done.notify_one();
            }
        }));
    });
    runtime.join().expect("the runtime stops");
    start.elapsed()
}

/// Resident memory of the process, in bytes.
fn rss() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: usize = statm.split_whitespace().nth(1).and_then(|n| n.parse().ok()).unwrap_or(0);
    pages * 4096
}

/// How long a greenlet's sleeps of 1 ms took.
#[derive(Default)]
struct Sleeps(Vec<Duration>);

impl Sleeps {
    /// Sleeps 1 ms in the current greenlet and records how long it took.
    fn sleep(&mut self) {
        let asked = Instant::now();
        rt::sleep(Duration::from_millis(1));
        self.0.push(asked.elapsed());
    }

    fn summary(mut self) -> String {
        self.0.sort();
        let n = self.0.len().max(1);
        let at = |q: f64| self.0.get(((n - 1) as f64 * q) as usize).map_or(0.0, |d| d.as_secs_f64() * 1e3);
        let late = self.0.iter().filter(|d| **d > Duration::from_millis(10)).count();
        format!(
            "{} sleeps of 1 ms took {:.2} ms (median), {:.2} ms (99th percentile), {:.2} ms (longest); {late} over 10 ms",
            self.0.len(),
            at(0.5),
            at(0.99),
            at(1.0)
        )
    }
}

/// The main greenlet of a hub nobody floods sleeps 1 ms at a time for
/// `secs` (on a busy machine, the lateness that is not the flood's).
fn quiet(secs: f64) {
    let sleeps = rt::run(move || {
        let until = Instant::now() + Duration::from_secs_f64(secs);
        let mut sleeps = Sleeps::default();
        while Instant::now() < until {
            sleeps.sleep();
        }
        sleeps
    });
    println!("no flood, {secs} s: main greenlet: {}", sleeps.summary());
}

/// One thread floods a hub with spawns for `secs` while its main greenlet
/// sleeps 1 ms at a time; prints what that did to the hub.
fn flood(secs: f64) {
    let ran = Arc::new(AtomicUsize::new(0));
    let accepted = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let rss_before = rss();
    let (to_main, handle) = std::sync::mpsc::channel();
    let stop_hub = stop.clone();
    let hub = thread::spawn(move || {
        rt::run(move || {
            to_main.send(Handle::current()).expect("main waits");
            let mut sleeps = Sleeps::default();
            let mut peak_rss = 0;
            while !stop_hub.load(Ordering::Relaxed) {
                sleeps.sleep();
                peak_rss = peak_rss.max(rss());
            }
            (sleeps, peak_rss)
        })
    });
    let handle = handle.recv().expect("the hub starts");
    let flooder = {
        let (ran, accepted, stop) = (ran.clone(), accepted.clone(), stop.clone());
        thread::spawn(move || {
            let until = Instant::now() + Duration::from_secs_f64(secs);
            while Instant::now() < until {
                for _ in 0..64 {
                    let ran = ran.clone();
                    if handle.spawn(move || ran.fetch_add(1, Ordering::Relaxed)).is_err() {
                        return;
                    }
                    accepted.fetch_add(1, Ordering::Relaxed);
                }
            }
            stop.store(true, Ordering::Relaxed);
        })
    };
    flooder.join().expect("the flooder ends");
    let (sleeps, peak_rss) = hub.join().expect("the hub stops");
    println!(
        "flood, {secs} s: {} spawns accepted, {} ran; main greenlet: {} (goal: none); resident memory grew by \
         {:.1} MB at most",
        accepted.load(Ordering::Relaxed),
        ran.load(Ordering::Relaxed),
        sleeps.summary(),
        peak_rss.saturating_sub(rss_before) as f64 / 1e6,
    );
}

fn main() {
    let (mut scale, mut flood_secs) = (1.0f64, 4.0f64);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next().and_then(|v| v.parse::<f64>().ok()).filter(|v| *v > 0.0);
        match (arg.as_str(), value) {
            ("--scale", Some(v)) => scale = v,
            ("--flood-secs", Some(v)) => flood_secs = v,
            _ => {
                eprintln!("usage: remote_spawn [--scale F] [--flood-secs S]");
                std::process::exit(2);
            }
        }
    }
    let count = ((200_000.0 * scale) as u64).max(100);
    let cores = thread::available_parallelism().map_or(1, usize::from);
    println!("# {cores} cores; {count} spawns per run, {RUNS} runs per side");
    for spawners in [1, 2, 4] {
        let [ours, tokio]: [Timing; 2] = timing::alternate(count, count, |side, count| match side {
            0 => ours(spawners, count),
            _ => tokio(spawners, count),
        });
        println!(
            "spawn {spawners} thread(s): ours median {:>7.1} ns/spawn (min {:>7.1}), tokio median {:>7.1} (min {:>7.1}); \
             ours/tokio {:.2}",
            ours.median,
            ours.min,
            tokio.median,
            tokio.min,
            ours.median / tokio.median
        );
    }
    quiet(flood_secs);
    flood(flood_secs);
}
