//! [`blocking`]: run a closure on the thread pool, parking only the caller.

use std::panic::{self, AssertUnwindSafe};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;

use crate::hub::unpark::SendUnparker;
use crate::hub::waiting::WaitingOn;
use crate::park::Parker;

/// Runs `f` on the hub's thread pool and parks only the calling greenlet until
/// it returns; other greenlets keep running meanwhile. Use it for blocking
/// calls that cannot be made cooperative: file I/O, DNS, CPU-heavy work, or
/// libraries with blocking APIs.
///
/// If `f` panics, the panic resumes in the caller. If the caller is killed
/// while waiting, `f` still runs to completion and its result is dropped.
///
/// ```
/// runtime::run(|| {
///     let len = runtime::blocking(|| std::fs::read_dir(".").map(|d| d.count()).unwrap_or(0));
///     println!("{len} entries");
/// });
/// ```
///
/// # Panics
///
/// Outside a greenlet of the runtime, or if `f` panics.
#[track_caller]
pub fn blocking<F, T>(f: F) -> T
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let parker = Parker::current();
    let job = PoolJob::submit(&parker, f);
    loop {
        if let Some(outcome) = job.outcome_or_wake(&parker) {
            return outcome.unwrap_or_else(|payload| panic::resume_unwind(payload));
        }
        // Woken, or refused while unwinding: the job still runs and its
        // result is what this call returns, so check and wait again.
        let _ = parker.park(WaitingOn::Op("runtime::blocking"), None);
    }
}

/// A closure running on the hub's thread pool, and its outcome, which a
/// greenlet waits for (by `blocking`, and by the hooks' waits in
/// `foreign`).
pub(crate) struct PoolJob<T> {
    shared: Arc<Mutex<Shared<T>>>,
}

/// What the job and the waiting greenlet share.
struct Shared<T> {
    outcome: Option<thread::Result<T>>,
    /// Wakes the greenlet's current park.
    waiter: Option<SendUnparker>,
}

impl<T: Send + 'static> PoolJob<T> {
    /// Submits `f` to the pool of `parker`'s hub.
    pub(crate) fn submit(parker: &Parker, f: impl FnOnce() -> T + Send + 'static) -> PoolJob<T> {
        let shared = Arc::new(Mutex::new(Shared { outcome: None, waiter: None }));
        let job_shared = shared.clone();
        parker.hub().pool().submit(Box::new(move || {
            let outcome = panic::catch_unwind(AssertUnwindSafe(f));
            let waiter = {
                let mut shared = job_shared.lock().unwrap_or_else(PoisonError::into_inner);
                shared.outcome = Some(outcome);
                shared.waiter.take()
            };
            if let Some(waiter) = waiter {
                waiter.unpark();
            }
        }));
        PoolJob { shared }
    }

    /// The outcome, if the job has finished; otherwise the job will wake
    /// `parker`'s next park when it does (each park gets its own wake-up:
    /// the job wakes whichever park is current when it finishes).
    pub(crate) fn outcome_or_wake(&self, parker: &Parker) -> Option<thread::Result<T>> {
        let mut shared = self.shared.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(outcome) = shared.outcome.take() {
            return Some(outcome);
        }
        shared.waiter = Some(parker.unparker().into_send());
        None
    }

    /// Stops waiting: the job finishes all the same, and its value is
    /// dropped.
    pub(crate) fn abandon(&self) {
        self.shared.lock().unwrap_or_else(PoisonError::into_inner).waiter = None;
    }
}
