//! The thread pool for blocking work: [`blocking`].
//!
//! Threads are started on demand up to the configured limit and exit after
//! [`IDLE_TIMEOUT`] without work. A finished job hands its result back to the
//! hub through the remote queue, which wakes the parked greenlet.

use std::collections::VecDeque;
use std::panic::{self, AssertUnwindSafe};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread;
use std::time::Duration;

use crate::hub;
use crate::park::{self, Wake};

/// How long an idle pool thread waits for work before exiting.
pub(crate) const IDLE_TIMEOUT: Duration = Duration::from_secs(10);

type Job = Box<dyn FnOnce() + Send>;

struct Queue {
    jobs: VecDeque<Job>,
    threads: usize,
    idle: usize,
    shutdown: bool,
}

struct Shared {
    queue: Mutex<Queue>,
    available: Condvar,
    max_threads: usize,
}

/// A hub's pool of threads for blocking work.
pub(crate) struct BlockingPool {
    shared: Arc<Shared>,
    /// Jobs submitted by this hub whose result has not come back yet.
    in_flight: std::cell::Cell<usize>,
}

impl BlockingPool {
    pub(crate) fn new(max_threads: usize) -> BlockingPool {
        BlockingPool {
            shared: Arc::new(Shared {
                queue: Mutex::new(Queue { jobs: VecDeque::new(), threads: 0, idle: 0, shutdown: false }),
                available: Condvar::new(),
                max_threads: max_threads.max(1),
            }),
            in_flight: std::cell::Cell::new(0),
        }
    }

    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight.get()
    }

    fn submit(&self, job: Job) {
        let mut queue = self.shared.queue.lock().unwrap_or_else(PoisonError::into_inner);
        queue.jobs.push_back(job);
        if queue.idle > 0 {
            self.shared.available.notify_one();
        } else if queue.threads < self.shared.max_threads {
            queue.threads += 1;
            let shared = self.shared.clone();
            let spawned = thread::Builder::new().name("runtime-blocking".into()).spawn(move || worker(&shared));
            if let Err(err) = spawned {
                queue.threads -= 1;
                tracing::error!("cannot start a blocking-pool thread: {err}");
            }
        }
    }
}

impl Drop for BlockingPool {
    fn drop(&mut self) {
        let mut queue = self.shared.queue.lock().unwrap_or_else(PoisonError::into_inner);
        queue.shutdown = true;
        self.shared.available.notify_all();
    }
}

fn worker(shared: &Shared) {
    let mut queue = shared.queue.lock().unwrap_or_else(PoisonError::into_inner);
    loop {
        if let Some(job) = queue.jobs.pop_front() {
            drop(queue);
            job();
            queue = shared.queue.lock().unwrap_or_else(PoisonError::into_inner);
            continue;
        }
        if queue.shutdown {
            break;
        }
        queue.idle += 1;
        let (guard, wait) = shared.available.wait_timeout(queue, IDLE_TIMEOUT).unwrap_or_else(PoisonError::into_inner);
        queue = guard;
        queue.idle -= 1;
        if wait.timed_out() && queue.jobs.is_empty() {
            break;
        }
    }
    queue.threads -= 1;
}

/// Runs `f` on the hub's thread pool and parks only the calling greenlet until
/// it returns; other greenlets keep running meanwhile. Use it for blocking
/// calls that cannot be made cooperative: file I/O, DNS, CPU-heavy work, or
/// libraries with blocking APIs.
///
/// If `f` panics, the panic resumes in the caller. If the caller is killed
/// while waiting, `f` still runs to completion and its result is dropped.
///
/// ```
/// runtime_scheduler::run(|| {
///     let len = runtime_scheduler::blocking(|| std::fs::read_dir(".").map(|d| d.count()).unwrap_or(0));
///     println!("{len} entries");
/// });
/// ```
///
/// # Panics
///
/// Outside a greenlet of the runtime, or if `f` panics.
pub fn blocking<F, T>(f: F) -> T
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let parker = park::parker();
    let task = parker.task().clone();
    let slot: Arc<Mutex<Option<thread::Result<T>>>> = Arc::new(Mutex::new(None));
    let result = slot.clone();
    let (remote, task_slot) = hub::with(|hub| {
        hub.blocking.in_flight.set(hub.blocking.in_flight.get() + 1);
        (hub.remote.clone(), task.slot.get())
    });
    let (task_id, seq) = (task.id, parker.seq());
    let job: Job = Box::new(move || {
        let outcome = panic::catch_unwind(AssertUnwindSafe(f));
        *result.lock().unwrap_or_else(PoisonError::into_inner) = Some(outcome);
        let done = remote.post(Box::new(move || {
            hub::with(|hub| {
                hub.blocking.in_flight.set(hub.blocking.in_flight.get() - 1);
                if let Some(task) = hub.task_at(task_slot, task_id) {
                    park::unpark(&task, seq);
                }
            });
        }));
        if done.is_err() {
            tracing::debug!("a blocking job finished after its runtime stopped");
        }
    });
    hub::with(|hub| hub.blocking.submit(job));
    loop {
        if let Some(outcome) = slot.lock().unwrap_or_else(PoisonError::into_inner).take() {
            return outcome.unwrap_or_else(|payload| panic::resume_unwind(payload));
        }
        if parker.park("runtime::blocking", None) == Wake::Refused {
            panic!("`runtime::blocking` cannot wait while the greenlet is unwinding");
        }
    }
}
