//! The blocking monitor: a watchdog thread that reports a greenlet holding its
//! hub too long without yielding (gevent's monitor thread), on by default.
//!
//! Each hub counts the greenlets it resumes and publishes which one runs
//! ([`Counters`]). One thread per process watches every hub: when a hub's
//! count has not moved for its limit while a greenlet (not the hub's poll)
//! runs, that greenlet has held the hub at least that long. The watchdog then
//! reads the greenlet's current stack from the hub's thread ([`sample`]),
//! while it still holds the hub, and prints a warning naming it, where it
//! was spawned, and that stack, once per incident.
//!
//! [`sample`]: crate::hub::sample

use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::{self, Relaxed};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use crate::hub::counters::Counters;
use crate::hub::sample::{self, HubThread, SignalStack};
use crate::util::frames::Resolver;

/// The limit when neither the `Builder` nor the environment sets one.
pub(crate) const DEFAULT_LIMIT: Duration = Duration::from_millis(500);

/// How long the watchdog waits for a hub's thread to record its stack.
const SAMPLE_WAIT: Duration = Duration::from_millis(200);

/// What the watchdog knows of one hub.
struct Watched {
    counters: Arc<Counters>,
    limit: Duration,
    thread: HubThread,
    /// Whether the hub still runs; held while a report about it is made, so
    /// that its thread cannot exit while it is signalled, and the program
    /// not before the report is printed.
    alive: Mutex<bool>,
    /// The watchdog's own bookkeeping (only its thread touches it).
    seen: Mutex<Seen>,
}

struct Seen {
    switches: u64,
    since: Instant,
    reported: bool,
}

/// The hub's side of the monitor; stops watching the hub when dropped.
pub(crate) struct Monitor {
    watched: Arc<Watched>,
    /// Room for the sampling signal's handler on this thread.
    _signal_stack: Option<SignalStack>,
}

/// Whether the watchdog thread runs (it runs until the process ends).
static THREAD_RUNNING: AtomicBool = AtomicBool::new(false);

/// Whether the process has the watchdog thread (for counting its threads).
pub(crate) fn thread_running() -> bool {
    THREAD_RUNNING.load(Ordering::Acquire)
}

/// The hubs being watched, and the watchdog thread's wake-up.
static WATCHED: Mutex<Vec<Arc<Watched>>> = Mutex::new(Vec::new());
static CHANGED: Condvar = Condvar::new();

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Monitor {
    /// Watches the hub running on this thread, with these counters.
    pub(crate) fn start(limit: Duration, counters: Arc<Counters>) -> Monitor {
        static STARTED: std::sync::Once = std::sync::Once::new();
        STARTED.call_once(|| {
            sample::install();
            match thread::Builder::new().name("runtime-monitor".into()).spawn(watch) {
                Ok(_) => THREAD_RUNNING.store(true, Ordering::Release),
                Err(err) => tracing::error!("cannot start the blocking monitor: {err}"),
            }
        });
        let watched = Arc::new(Watched {
            counters,
            limit,
            thread: HubThread::current(),
            alive: Mutex::new(true),
            seen: Mutex::new(Seen { switches: u64::MAX, since: Instant::now(), reported: false }),
        });
        lock(&WATCHED).push(watched.clone());
        CHANGED.notify_one();
        Monitor { watched, _signal_stack: SignalStack::ensure() }
    }
}

impl Drop for Monitor {
    /// Also waits for a report about this hub that is being made, so that
    /// it is printed before the runtime returns.
    fn drop(&mut self) {
        *lock(&self.watched.alive) = false;
        lock(&WATCHED).retain(|w| !Arc::ptr_eq(w, &self.watched));
    }
}

/// The watchdog thread: looks at every hub a few times per limit.
fn watch() {
    let mut resolver = Resolver::new();
    loop {
        let hubs: Vec<Arc<Watched>> = {
            let mut watched = lock(&WATCHED);
            while watched.is_empty() {
                watched = CHANGED.wait(watched).unwrap_or_else(PoisonError::into_inner);
            }
            watched.clone()
        };
        let shortest = hubs.iter().map(|w| w.limit).min().unwrap_or(DEFAULT_LIMIT);
        thread::sleep((shortest / 4).clamp(Duration::from_millis(1), Duration::from_millis(100)));
        let now = Instant::now();
        for hub in &hubs {
            check(hub, now, &mut resolver);
        }
    }
}

/// Reports the hub's running greenlet if it has held the hub past the limit.
fn check(hub: &Watched, now: Instant, resolver: &mut Resolver) {
    let counters = &hub.counters;
    let switches = counters.switches.load(Relaxed);
    let running = counters.running.load(Relaxed);
    let mut seen = lock(&hub.seen);
    if switches != seen.switches || running == 0 || counters.polling.load(Relaxed) {
        *seen = Seen { switches, since: now, reported: false };
        return;
    }
    if seen.reported || now.duration_since(seen.since) < hub.limit {
        return;
    }
    seen.reported = true;
    drop(seen);
    let alive = lock(&hub.alive);
    if !*alive {
        return;
    }
    let sample = sample::sample(hub.thread, counters, running, SAMPLE_WAIT);
    let who = match &sample {
        Some(sample) => {
            let label =
                sample.name.as_ref().map_or_else(|| format!("#{running}"), |name| format!("'{name}' (#{running})"));
            match sample.spawned_at {
                Some(at) => format!("{label} (spawned at {at})"),
                None => label,
            }
        }
        None => format!("#{running}"),
    };
    let stack = match &sample {
        Some(sample) => {
            let text = resolver.format(&sample.ips);
            let indented: String = text.lines().map(|line| format!("\n    {line}")).collect();
            format!("; its stack now:{indented}")
        }
        None => String::from(" (its stack could not be read)"),
    };
    let message = format!(
        "greenlet {who} has held the hub for more than {:?} without yielding; it is blocking every other \
         greenlet (use `runtime::blocking` for blocking or CPU-heavy work){stack}",
        hub.limit,
    );
    crate::util::report::warn(&message, running, sample.as_ref().and_then(|s| s.name.as_deref()));
    drop(alive);
}
