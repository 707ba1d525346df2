//! A job queue: a producer greenlet feeds jobs into a bounded channel, a
//! `Pool` of worker greenlets runs them and sends results to a collector,
//! one job's panic is caught with `runtime::catch_panic` (its worker goes
//! on), and shutdown waits for the pool with `join_timeout`, then kills the
//! stragglers (`kill` + `join`) and prints a summary.
//!
//! ```text
//! cargo run --release --example jobs
//! cargo run --release --example jobs -- --jobs 10000 --workers 16 --grace-ms 200
//! cargo run --release --example jobs -- --jobs 100000   # then Ctrl-C: stops early, still balanced
//! ```
//!
//! Job `--panic-at` (13 by default) panics and job `--stuck` (42 by default)
//! would take an hour, so every run shows both the isolation of a panic and
//! the killing of a straggler. Ctrl-C (SIGINT) or SIGTERM starts the
//! shutdown early: jobs still queued are not run.

#[path = "jobs/queue.rs"]
mod queue;

#[path = "common/cli.rs"]
mod cli;
use std::rc::Rc;
use std::time::Duration;

use runtime::signal::{SIGINT, SIGTERM, Signals};
use runtime::sync::Event;

fn parse_args() -> Result<queue::Config, String> {
    let mut config = queue::Config {
        jobs: 100,
        workers: 8,
        panicking: vec![13],
        stuck: vec![42],
        grace: Duration::from_millis(500),
    };
    let mut argv = std::env::args().skip(1);
    let number = |name: &str, value: Option<String>| -> Result<u64, String> {
        let value = value.ok_or(format!("{name} needs a value"))?;
        value.parse().map_err(|_| format!("bad {name}: {value}"))
    };
    while let Some(arg) = argv.next() {
        match arg.as_str() {
            "--jobs" => config.jobs = number("--jobs", argv.next())?,
            "--workers" => {
                config.workers = number("--workers", argv.next())?.try_into().map_err(|_| "too many workers")?;
                if config.workers == 0 {
                    return Err("--workers must be at least 1".into());
                }
            }
            "--panic-at" => config.panicking = vec![number("--panic-at", argv.next())?],
            "--stuck" => config.stuck = vec![number("--stuck", argv.next())?],
            "--grace-ms" => config.grace = Duration::from_millis(number("--grace-ms", argv.next())?),
            "-h" | "--help" => {
                println!(
                    "usage: jobs [--jobs N] [--workers N] [--panic-at JOB] [--stuck JOB] [--grace-ms MS]\n\n\
                     Runs N jobs (default 100) on a pool of workers (default 8). Job --panic-at (13)\n\
                     panics, job --stuck (42) never ends; shutdown waits --grace-ms (500) for the\n\
                     workers, then kills the rest. SIGINT or SIGTERM: shut down early."
                );
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument: {other} (try --help)")),
        }
    }
    Ok(config)
}

fn main() {
    let config = cli::start("jobs", parse_args);
    // One line per panic (the job's caught panic included), through the log.
    std::panic::set_hook(Box::new(|info| tracing::error!("{info}")));
    let result = runtime::run(move || -> std::io::Result<()> {
        let stop = Rc::new(Event::new());
        let mut signals = Signals::new([SIGINT, SIGTERM])?;
        drop(runtime::task::Builder::new().name("signals").spawn({
            let stop = stop.clone();
            move || {
                if let Ok(signal) = signals.wait() {
                    tracing::info!(signal, "shutting down early");
                    stop.set();
                }
            }
        }));
        let summary = queue::run(&config, &stop);
        println!("{summary}");
        Ok(())
    });
    if let Err(err) = result {
        eprintln!("jobs: {err}");
        std::process::exit(1);
    }
}
