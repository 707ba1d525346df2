//! examples/jobs, in process: every job is done or accounted for as failed,
//! killed or never run; the panicking job is isolated (its worker goes on);
//! the stuck job is killed when the grace period runs out and shutdown
//! completes; a stop request ends the run early and still balances.

mod util;

#[allow(dead_code)]
#[path = "../examples/jobs/queue.rs"]
mod queue;

use std::rc::Rc;
use std::time::Duration;

use runtime::sync::Event;
use util::ms;

fn config() -> queue::Config {
    queue::Config { jobs: 60, workers: 4, panicking: vec![5], stuck: vec![20], grace: Duration::from_secs(1) }
}

#[test]
fn every_job_is_accounted_for_the_panic_is_isolated_and_the_straggler_killed() {
    let config = config();
    let summary = util::run({
        let config = config.clone();
        move || {
            let summary = queue::run(&config, &Event::new());
            // Shutdown left nothing behind: only this greenlet is alive.
            assert_eq!(runtime::dump().greenlets().len(), 1, "{}", runtime::dump());
            summary
        }
    });
    println!("{summary}");
    assert_eq!(summary.submitted, config.jobs);
    assert!(summary.balances(), "{summary:?}");
    assert!(!summary.stopped_early);
    assert_eq!(summary.not_run, 0);
    // The panic was caught, reported, and its worker went on.
    assert_eq!(summary.failed.len(), 1, "{summary:?}");
    let failure = &summary.failed[0];
    assert_eq!(failure.job, 5);
    assert_eq!(failure.message, "job 5 hit a bad input");
    assert!(failure.jobs_after > 0, "the worker stopped after the panic: {summary:?}");
    // The stuck job outlived the grace period and was killed with its worker.
    assert!(summary.killed.contains(&20), "{summary:?}");
    assert!(summary.stragglers >= 1);
    assert!(summary.shutdown_took >= config.grace);
    // Each finished job's result is in the checksum, and no job ran twice.
    let mut done = summary.done.clone();
    done.sort_unstable();
    done.dedup();
    assert_eq!(done.len(), summary.done.len(), "a job finished twice");
    assert_eq!(summary.checksum, done.iter().map(|id| id * id).sum::<u64>());
    assert!(!done.contains(&5) && !done.contains(&20));
}

#[test]
fn a_stop_request_ends_the_run_early_and_still_balances() {
    // The panicking and the stuck job are among the first four, which the
    // four workers take at once, before the stop.
    let config = queue::Config { jobs: 100_000, panicking: vec![1], stuck: vec![2], ..config() };
    let summary = util::run({
        let config = config.clone();
        move || {
            let stop = Rc::new(Event::new());
            runtime::spawn({
                let stop = stop.clone();
                move || {
                    runtime::sleep(ms(30));
                    stop.set();
                }
            });
            queue::run(&config, &stop)
        }
    });
    println!("{summary}");
    assert!(summary.stopped_early);
    assert!(summary.submitted < config.jobs, "{summary}");
    assert!(summary.balances(), "{summary:?}");
    assert_eq!(summary.failed.len(), 1, "{summary:?}");
    assert_eq!(summary.failed[0].job, 1);
    assert!(summary.killed.contains(&2), "{summary:?}");
}
