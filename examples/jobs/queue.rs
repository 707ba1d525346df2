//! The job queue's core: a producer greenlet feeding a bounded channel, a
//! `Pool` of worker greenlets taking jobs from it, a results channel read by
//! a collector greenlet, and a graceful shutdown. Kept apart from `main` so
//! that `tests/jobs.rs` can run it in process.

use std::any::Any;
use std::cell::Cell;
use std::fmt;
use std::rc::Rc;
use std::time::{Duration, Instant};

use runtime::sync::channel::{self, Receiver, Sender};
use runtime::sync::{Event, wait_any};
use runtime::{Pool, catch_panic, task};

/// What to run.
#[derive(Clone, Debug)]
pub struct Config {
    /// Jobs to submit, numbered from 0.
    pub jobs: u64,
    /// Worker greenlets (the pool's size).
    pub workers: usize,
    /// Jobs that panic (a bug in a job must not take its worker down).
    pub panicking: Vec<u64>,
    /// Jobs that would run for an hour: the stragglers shutdown kills.
    pub stuck: Vec<u64>,
    /// How long shutdown waits for the workers before killing them.
    pub grace: Duration,
}

/// One unit of work.
struct Job {
    id: u64,
}

impl Job {
    /// The work: "compute" `id²` in a few milliseconds, or panic, or hang.
    fn run(&self, config: &Config) -> u64 {
        if config.panicking.contains(&self.id) {
            panic!("job {} hit a bad input", self.id);
        }
        let work = if config.stuck.contains(&self.id) { Duration::from_secs(3600) } else { ms(self.id % 5) };
        runtime::sleep(work);
        self.id * self.id
    }
}

/// What a worker reports about one job.
enum Outcome {
    Done {
        job: u64,
        worker: usize,
        value: u64,
    },
    Failed {
        job: u64,
        worker: usize,
        message: String,
    },
    /// The worker was killed (at shutdown) while running the job.
    Killed {
        job: u64,
    },
}

/// A job whose panic was caught.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// The job.
    pub job: u64,
    /// The worker that ran it.
    pub worker: usize,
    /// The panic's message.
    pub message: String,
    /// Jobs the same worker finished afterwards: it went on.
    pub jobs_after: u64,
}

/// What happened, once everything has stopped.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    /// Jobs the producer handed to the queue.
    pub submitted: u64,
    /// Jobs that finished, in the order they did.
    pub done: Vec<u64>,
    /// The sum of the finished jobs' results.
    pub checksum: u64,
    /// Jobs that panicked.
    pub failed: Vec<Failure>,
    /// Jobs whose worker was killed at shutdown while running them.
    pub killed: Vec<u64>,
    /// Jobs still queued when a stop was requested, never started.
    pub not_run: u64,
    /// Whether shutdown began on a stop request rather than after the last
    /// job was submitted.
    pub stopped_early: bool,
    /// Workers still busy when the grace period ran out, killed.
    pub stragglers: usize,
    /// From the start of shutdown until every worker had finished.
    pub shutdown_took: Duration,
}

impl Summary {
    /// Whether every submitted job is accounted for.
    pub fn balances(&self) -> bool {
        self.done.len() as u64 + self.failed.len() as u64 + self.killed.len() as u64 + self.not_run == self.submitted
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "jobs: {} submitted, {} done (checksum {}), {} failed, {} killed at shutdown, {} never run{}",
            self.submitted,
            self.done.len(),
            self.checksum,
            self.failed.len(),
            self.killed.len(),
            self.not_run,
            if self.balances() { "" } else { " (some jobs are unaccounted for!)" },
        )?;
        for failure in &self.failed {
            writeln!(
                f,
                "failed: job {} on worker {}: {:?} (the worker went on: {} more jobs)",
                failure.job, failure.worker, failure.message, failure.jobs_after
            )?;
        }
        let why = if self.stopped_early { "on a stop request" } else { "after the last job was submitted" };
        write!(
            f,
            "shutdown {why}: {} straggler(s) killed at the end of the grace period; took {} ms",
            self.stragglers,
            self.shutdown_took.as_millis()
        )
    }
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Runs the jobs of `config` to the end, or until `stop` is set, then shuts
/// down: the queue is closed (jobs still in it are not run), the workers get
/// `config.grace` to finish what they are doing, and the ones still busy are
/// killed. Returns once every greenlet it started has finished.
///
/// # Panics
///
/// Outside a greenlet of the runtime.
pub fn run(config: &Config, stop: &Event) -> Summary {
    let config = Rc::new(config.clone());
    let (jobs_tx, jobs_rx) = channel::bounded::<Job>(config.workers * 2);
    let (results_tx, results_rx) = channel::unbounded::<Outcome>();

    let submitted = Rc::new(Cell::new(0));
    let producer = task::Builder::new().name("producer").spawn({
        let (submitted, jobs) = (submitted.clone(), config.jobs);
        move || {
            for id in 0..jobs {
                // Parks while the queue is full: the workers set the pace.
                if jobs_tx.send(Job { id }).is_err() {
                    break;
                }
                submitted.set(submitted.get() + 1);
            }
        }
    });

    let pool = Pool::new(config.workers);
    for worker in 0..config.workers {
        let (jobs, results, config) = (jobs_rx.clone(), results_tx.clone(), config.clone());
        drop(pool.spawn_with(task::Builder::new().name(format!("worker-{worker}")), move || {
            work(worker, &jobs, &results, &config);
        }));
    }
    drop(results_tx); // the collector's iteration ends when the last worker does
    let collector = task::Builder::new().name("collector").spawn(move || collect(&results_rx));

    // Shutdown begins when everything has been submitted, or on a stop
    // request, whichever comes first.
    let stopped_early = wait_any(&[&producer, stop], None) == Some(1) && !producer.is_finished();
    let shutdown_began = Instant::now();
    if stopped_early {
        producer.kill();
    }
    let _ = producer.join();
    // Jobs still queued after a stop request are not run; otherwise the
    // workers work through the queue (now closed: nothing more comes).
    let not_run = if stopped_early { jobs_rx.try_iter().count() as u64 } else { 0 };
    drop(jobs_rx);
    let mut stragglers = 0;
    if !pool.join_timeout(config.grace) {
        stragglers = pool.len();
        pool.kill();
        pool.join();
    }
    let shutdown_took = shutdown_began.elapsed();

    let mut summary = collector.join().expect("the collector does not panic");
    summary.submitted = submitted.get();
    summary.not_run = not_run;
    summary.stopped_early = stopped_early;
    summary.stragglers = stragglers;
    summary.shutdown_took = shutdown_took;
    summary
}

/// A worker: takes jobs until the queue is closed and empty. A job's panic
/// is caught and reported, and the worker goes on; a kill (shutdown) is not
/// caught: `catch_panic` lets it through, and the worker ends.
fn work(worker: usize, jobs: &Receiver<Job>, results: &Sender<Outcome>, config: &Config) {
    /// Reports the job in hand as killed if the worker unwinds with one.
    struct InHand<'a> {
        job: Option<u64>,
        results: &'a Sender<Outcome>,
    }
    impl Drop for InHand<'_> {
        fn drop(&mut self) {
            if let Some(job) = self.job.take() {
                let _ = self.results.send(Outcome::Killed { job });
            }
        }
    }
    let mut in_hand = InHand { job: None, results };
    while let Ok(job) = jobs.recv() {
        in_hand.job = Some(job.id);
        let outcome = match catch_panic(|| job.run(config)) {
            Ok(value) => Outcome::Done { job: job.id, worker, value },
            Err(payload) => Outcome::Failed { job: job.id, worker, message: panic_message(&*payload) },
        };
        in_hand.job = None;
        let _ = results.send(outcome);
    }
}

fn panic_message(payload: &(dyn Any + Send)) -> String {
    match (payload.downcast_ref::<&str>(), payload.downcast_ref::<String>()) {
        (Some(message), _) => (*message).to_owned(),
        (_, Some(message)) => message.clone(),
        _ => "a panic without a message".to_owned(),
    }
}

/// Reads every outcome until the last worker is gone.
fn collect(results: &Receiver<Outcome>) -> Summary {
    let mut summary = Summary::default();
    for outcome in results.iter() {
        match outcome {
            Outcome::Done { job, worker, value } => {
                summary.done.push(job);
                summary.checksum += value;
                for failure in summary.failed.iter_mut().filter(|failure| failure.worker == worker) {
                    failure.jobs_after += 1;
                }
            }
            Outcome::Failed { job, worker, message } => {
                summary.failed.push(Failure { job, worker, message, jobs_after: 0 });
            }
            Outcome::Killed { job } => summary.killed.push(job),
        }
    }
    summary
}
