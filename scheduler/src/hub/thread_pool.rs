//! The threads that run blocking work for [`blocking`](crate::blocking).
//!
//! Threads are started on demand up to the configured limit and exit after
//! [`IDLE_TIMEOUT`] without work. The pool only runs jobs: handing a result
//! back and waking the greenlet that waits for it is the job's business.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread;
use std::time::Duration;

/// How long an idle pool thread waits for work before exiting.
pub(crate) const IDLE_TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) type Job = Box<dyn FnOnce() + Send>;

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
pub(crate) struct ThreadPool {
    shared: Arc<Shared>,
}

impl ThreadPool {
    pub(crate) fn new(max_threads: usize) -> ThreadPool {
        ThreadPool {
            shared: Arc::new(Shared {
                queue: Mutex::new(Queue { jobs: VecDeque::new(), threads: 0, idle: 0, shutdown: false }),
                available: Condvar::new(),
                max_threads: max_threads.max(1),
            }),
        }
    }

    /// Runs `job` on a pool thread, starting one if none is idle and the
    /// limit allows; otherwise it waits for a free thread.
    pub(crate) fn submit(&self, job: Job) {
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

impl Drop for ThreadPool {
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
