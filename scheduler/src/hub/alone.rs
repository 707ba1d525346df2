//! Whether the hub's thread is alone in the process: besides it, only
//! threads of its own that are idle (blocking-pool threads without a job, the
//! blocking monitor). Then no other thread can hold a `sync` value, let alone
//! set, send to or release one, and a root greenlet waiting on one that
//! nothing on the hub can end is deadlocked for sure (gevent's `LoopExit`),
//! without [`Builder::strict_deadlocks`](crate::Builder::strict_deadlocks).
//!
//! Threads are counted from `/proc/self/status` (Linux); where that cannot be
//! read, the hub never counts itself alone. The count is compared for
//! equality with the idle threads the hub knows of: a thread starting or
//! ending in between makes the two differ, which errs on the side of "not
//! alone" (the warning after 5 seconds, as before).

/// Whether the process has exactly `expected` threads.
pub(crate) fn process_has_threads(expected: usize) -> bool {
    process_threads() == Some(expected)
}

/// The number of threads of this process, if the system tells.
fn process_threads() -> Option<usize> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find_map(|line| line.strip_prefix("Threads:"))?;
    line.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn counts_the_threads_of_the_process() {
        let Some(now) = super::process_threads() else { return };
        assert!(now >= 1);
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let (started_tx, started) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            started_tx.send(()).unwrap();
            rx.recv().ok();
        });
        started.recv().unwrap();
        // Other tests' threads come and go: at least one more than before.
        assert!(super::process_threads().unwrap() >= 2);
        drop(tx);
        thread.join().unwrap();
    }
}
