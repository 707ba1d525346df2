//! The blocking monitor: a watchdog thread that reports a greenlet holding the
//! hub too long without yielding (gevent's monitor thread).
//!
//! The hub counts the greenlets it resumes and records which one runs. The
//! watchdog wakes every `max_blocking_time`; if the count has not moved and a
//! greenlet (not the hub's poll) is running, that greenlet has held the hub
//! for at least that long, and a `tracing` warning names it, once per episode.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::Duration;

use crate::hub::counters::Counters;

struct Shared {
    counters: Arc<Counters>,
    stop: AtomicBool,
    names: Mutex<HashMap<u64, String>>,
}

/// The hub's side of the monitor; stops the watchdog when dropped.
pub(crate) struct Monitor {
    shared: Arc<Shared>,
}

impl Monitor {
    pub(crate) fn start(max_blocking_time: Duration, counters: Arc<Counters>) -> Monitor {
        let shared = Arc::new(Shared { counters, stop: AtomicBool::new(false), names: Mutex::new(HashMap::new()) });
        let watched = shared.clone();
        let spawned =
            thread::Builder::new().name("runtime-monitor".into()).spawn(move || watch(&watched, max_blocking_time));
        if let Err(err) = spawned {
            tracing::error!("cannot start the blocking monitor: {err}");
        }
        Monitor { shared }
    }

    /// Remembers how to name a task in a report: its label and where it was
    /// spawned.
    pub(crate) fn name_task(&self, id: u64, label: &str, spawned_at: &std::panic::Location<'_>) {
        let described = format!("{label} (spawned at {spawned_at})");
        self.shared.names.lock().unwrap_or_else(PoisonError::into_inner).insert(id, described);
    }

    pub(crate) fn forget_task(&self, id: u64) {
        self.shared.names.lock().unwrap_or_else(PoisonError::into_inner).remove(&id);
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
    }
}

fn watch(shared: &Shared, max_blocking_time: Duration) {
    let mut last = u64::MAX;
    let mut reported = false;
    while !shared.stop.load(Ordering::Relaxed) {
        thread::sleep(max_blocking_time);
        let switches = shared.counters.switches.load(Ordering::Relaxed);
        let running = shared.counters.running.load(Ordering::Relaxed);
        if switches != last {
            last = switches;
            reported = false;
            continue;
        }
        if running == 0 || shared.counters.polling.load(Ordering::Relaxed) || reported {
            continue;
        }
        reported = true;
        let name = shared.names.lock().unwrap_or_else(PoisonError::into_inner).get(&running).cloned();
        let message = format!(
            "greenlet {} has held the hub for more than {:?} without yielding; it is blocking every other \
             greenlet (use `runtime::blocking` for blocking or CPU-heavy work)",
            name.as_deref().map_or_else(|| format!("#{running}"), str::to_owned),
            max_blocking_time,
        );
        crate::util::report::warn(&message, running, None);
    }
}
