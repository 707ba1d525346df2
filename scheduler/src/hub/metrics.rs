//! [`metrics`]: how busy a hub is (tokio's `RuntimeMetrics`, gevent's
//! monitoring thread), read from its own thread or, through
//! [`Handle::metrics`](crate::Handle::metrics), from any other.

use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use crate::hub;
use crate::hub::counters::Counters;

/// A snapshot of the current hub's counters; every value is zero outside a
/// runtime.
///
/// Reading costs a few loads and one look at the clock (a hundred thousand
/// reads take a few milliseconds), so it can be sampled often. For another
/// hub, use [`Handle::metrics`](crate::Handle::metrics).
///
/// ```
/// use std::time::Duration;
/// use runtime::{metrics, run, sleep, spawn};
///
/// assert_eq!(metrics().greenlets_alive(), 0); // no runtime here
/// run(|| {
///     let sleeper = spawn(|| sleep(Duration::from_secs(60)));
///     sleep(Duration::from_millis(1)); // the sleeper parks, the hub polls
///     let m = metrics();
///     assert_eq!(m.greenlets_alive(), 2); // this one and the sleeper
///     assert!(m.greenlets_spawned() >= 2 && m.switches() >= 2 && m.polls() >= 1);
///     assert_eq!(m.timers(), 1); // the sleeper's deadline
///     sleeper.kill();
/// });
/// ```
pub fn metrics() -> Metrics {
    let Some(hub) = hub::current() else { return Metrics::default() };
    Metrics {
        runnable: hub.runnable(),
        timers: hub.timer_count(),
        busy_time: hub.busy_time(),
        ..Metrics::read(hub.counters())
    }
}

/// Counters of one hub at one moment; see [`metrics`] and
/// [`Handle::metrics`](crate::Handle::metrics).
///
/// Counts only grow (`greenlets_spawned`, `switches`, `polls`, `busy_time`):
/// take two snapshots and subtract to get rates. The others are levels at the
/// time of the snapshot. Read from another thread, each value is the hub's
/// latest as that thread sees it, and the levels (`runnable`, `timers`) are
/// those of the hub's last turn of its loop.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Metrics {
    alive: usize,
    spawned: u64,
    switches: u64,
    polls: u64,
    busy_time: Duration,
    runnable: usize,
    timers: usize,
    stack_resident: usize,
}

impl Metrics {
    /// The snapshot other threads see.
    pub(crate) fn read(counters: &Counters) -> Metrics {
        Metrics {
            alive: counters.alive.load(Relaxed),
            spawned: counters.spawned.load(Relaxed),
            switches: counters.switches.load(Relaxed),
            polls: counters.polls.load(Relaxed),
            busy_time: Duration::from_nanos(counters.busy_nanos.load(Relaxed)),
            runnable: counters.runnable.load(Relaxed),
            timers: counters.timers.load(Relaxed),
            stack_resident: counters.stack_resident.load(Relaxed),
        }
    }

    /// Greenlets spawned on the hub and not finished yet, the main one
    /// included.
    pub fn greenlets_alive(&self) -> usize {
        self.alive
    }

    /// Greenlets ever spawned on the hub, the main one included.
    pub fn greenlets_spawned(&self) -> u64 {
        self.spawned
    }

    /// Times the hub resumed a greenlet.
    pub fn switches(&self) -> u64 {
        self.switches
    }

    /// Times the hub asked the OS for I/O readiness (`epoll_wait`), including
    /// the non-blocking polls of a busy poll.
    pub fn polls(&self) -> u64 {
        self.polls
    }

    /// Time the hub spent running greenlets (and firing timers), rather than
    /// polling for I/O or sleeping. Measured once per turn of the loop, so it
    /// costs no clock reading per switch.
    pub fn busy_time(&self) -> Duration {
        self.busy_time
    }

    /// Greenlets in the run queue, waiting for their turn.
    pub fn runnable(&self) -> usize {
        self.runnable
    }

    /// Pending timers: sleeps, deadlines of waits with a timeout, `timeout`
    /// scopes and delayed spawns.
    pub fn timers(&self) -> usize {
        self.timers
    }

    /// Bytes of the hub's greenlet stacks resident in memory, those of idle
    /// stacks kept for reuse included (see
    /// [`greenlet::stack::resident_bytes`]). The hub measures it with
    /// `mincore` at most once a second, and less often when measuring would
    /// take more than a hundredth of its time; the value is the latest
    /// measurement.
    pub fn stack_resident_bytes(&self) -> usize {
        self.stack_resident
    }
}
