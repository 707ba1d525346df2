//! [`Builder`]: the settings of a runtime, and starting one hub ([`run`]) or
//! one per core ([`run_each`]).
//!
//! [`run`]: Builder::run
//! [`run_each`]: Builder::run_each

use std::cell::Cell;
use std::panic::{self, Location};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use crate::console::{Console, Registry};
use crate::hub::affinity;
use crate::hub::monitor::DEFAULT_LIMIT;
use crate::hub::thread_pool::ThreadPool;
use crate::hub::{self, Hub};
use crate::{panic_hook, task};

/// Environment variable that sets the blocking monitor's limit for runtimes
/// whose [`Builder`] sets no [`max_blocking_time`](Builder::max_blocking_time):
/// a duration in milliseconds, or with an `ms` or `s` suffix (`"100ms"`,
/// `"0.5s"`); `0` turns the monitor off. Without it the limit is 500 ms.
pub const MAX_BLOCKING_TIME_ENV: &str = "RUNTIME_MAX_BLOCKING_TIME";

thread_local! {
    /// The index of this thread's hub among those `run_each` started.
    static HUB_INDEX: Cell<Option<usize>> = const { Cell::new(None) };
}

/// The index of the hub running on this thread among the hubs that
/// [`Builder::run_each`] started (`0..n`); `None` on other threads, including
/// a hub started with [`run`](crate::run).
///
/// ```
/// let indices = runtime::Builder::new().hubs(2).run_each(|_| runtime::hub_index());
/// assert_eq!(indices, [Some(0), Some(1)]);
/// assert_eq!(runtime::hub_index(), None);
/// ```
pub fn hub_index() -> Option<usize> {
    HUB_INDEX.with(Cell::get)
}

/// Configures and starts a runtime: one hub on this thread ([`run`]), or one
/// hub per core, each on its own thread ([`run_each`]).
///
/// ```
/// use std::time::Duration;
/// let v = runtime::Builder::new()
///     .stack_size(128 * 1024)
///     .blocking_threads(4)
///     .max_blocking_time(Duration::from_millis(100))
///     .busy_poll(Duration::from_micros(20))
///     .run(|| 1 + 1);
/// assert_eq!(v, 2);
/// ```
///
/// [`run`]: Builder::run
/// [`run_each`]: Builder::run_each
#[derive(Clone, Debug)]
#[must_use = "a builder does nothing until `run` or `run_each` is called"]
pub struct Builder {
    stack_size: usize,
    blocking_threads: usize,
    max_blocking_time: Option<Duration>,
    shutdown_grace: Duration,
    cancel_grace: Duration,
    strict_deadlocks: bool,
    busy_poll: Duration,
    hubs: Option<usize>,
    pin_cores: bool,
    stack_trim_after: Option<Duration>,
    console: Option<PathBuf>,
}

/// See [`Builder::busy_poll`].
const DEFAULT_BUSY_POLL: Duration = Duration::from_micros(50);

/// See [`Builder::cancel_grace`].
const DEFAULT_CANCEL_GRACE: Duration = Duration::from_secs(1);

impl Default for Builder {
    fn default() -> Builder {
        Builder::new()
    }
}

impl Builder {
    /// Default settings: 64 KiB stacks, up to 64 blocking threads, a one
    /// second shutdown grace period, a one second cancellation grace period,
    /// 50 µs of busy polling before an idle hub sleeps, stacks of greenlets
    /// parked over a second trimmed, and the blocking monitor on with a limit
    /// of 500 ms, or what [`MAX_BLOCKING_TIME_ENV`] says (`0` turns it off).
    pub fn new() -> Builder {
        Builder {
            stack_size: greenlet::stack::DEFAULT_SIZE,
            blocking_threads: 64,
            max_blocking_time: blocking_limit_from_env(std::env::var(MAX_BLOCKING_TIME_ENV).ok().as_deref()),
            shutdown_grace: Duration::from_secs(1),
            cancel_grace: DEFAULT_CANCEL_GRACE,
            strict_deadlocks: false,
            busy_poll: DEFAULT_BUSY_POLL,
            hubs: None,
            pin_cores: false,
            stack_trim_after: Some(crate::hub::trim::DEFAULT_TRIM_AFTER),
            console: None,
        }
    }

    /// How long greenlets killed when `run`'s closure returns may take to
    /// unwind (their cleanup may park: flush, say goodbye, release locks).
    /// Greenlets still alive after it are reported by name and leaked: they
    /// never run again and their stacks stay mapped, so `run` returns.
    pub fn shutdown_grace(mut self, grace: Duration) -> Builder {
        self.shutdown_grace = grace;
        self
    }

    /// How long a greenlet may go on after a kill or timeout was reported to
    /// it as an error instead of raised (default one second): inside code
    /// that cannot unwind, such as a blocking libc call the `hooks` feature
    /// interposes (see [`foreign`](crate::foreign)). The error reaches the
    /// call the greenlet is blocked in once; for the grace that follows, its
    /// parks (further interposed calls, [`blocking`](crate::blocking),
    /// [`sleep`](crate::sleep)) complete normally, so that its cleanup works:
    /// destructors, `child.kill(); child.wait()`, flushing a `BufWriter`.
    /// No park lasts past the grace; after it, interposed calls fail again
    /// and the next park anywhere else raises the kill or timeout. Either
    /// way the greenlet ends as killed and the `timeout` scope returns
    /// `Err(Elapsed)`. Zero makes every later interposed call fail at once.
    pub fn cancel_grace(mut self, grace: Duration) -> Builder {
        self.cancel_grace = grace;
        self
    }

    /// How long a greenlet must stay parked before the hub gives back the
    /// stack pages below where it waits (one second by default; `None` never
    /// does). A connection that once went deep then keeps only the stack it
    /// uses while idle. The hub trims when it has nothing else to do, a few
    /// thousand greenlets per idle turn, so busy greenlets never pay for it;
    /// a trimmed greenlet that goes deep again faults those pages back in.
    pub fn stack_trim_after(mut self, after: Option<Duration>) -> Builder {
        self.stack_trim_after = after;
        self
    }

    /// The stack size of greenlets spawned without one, in bytes.
    pub fn stack_size(mut self, bytes: usize) -> Builder {
        self.stack_size = bytes;
        self
    }

    /// The most threads [`blocking`](crate::blocking) may use at once; more
    /// jobs queue. The hubs of one [`run_each`](Builder::run_each) share the
    /// pool.
    pub fn blocking_threads(mut self, threads: usize) -> Builder {
        self.blocking_threads = threads;
        self
    }

    /// The blocking monitor's limit: a greenlet that holds the hub longer
    /// than `limit` without yielding is reported on stderr (or to the
    /// `tracing` subscriber) while it still does, with its name, where it
    /// was spawned and its current stack; once per incident. On by default
    /// with a limit of 500 ms ([`MAX_BLOCKING_TIME_ENV`] may change it);
    /// `Duration::ZERO` turns it off.
    ///
    /// One watchdog thread serves every hub of the process. It reads the
    /// greenlet's stack by sending the hub's thread a `SIGURG`, whose handler
    /// passes other senders' `SIGURG`s on to the handler installed before it.
    ///
    /// ```
    /// use std::time::Duration;
    /// // Reports a greenlet that holds the hub for 100 ms, however briefly
    /// // the others do.
    /// runtime::Builder::new().max_blocking_time(Duration::from_millis(100)).run(|| ());
    /// // No monitor at all.
    /// runtime::Builder::new().max_blocking_time(Duration::ZERO).run(|| ());
    /// ```
    pub fn max_blocking_time(mut self, limit: Duration) -> Builder {
        self.max_blocking_time = (!limit.is_zero()).then_some(limit);
        self
    }

    /// Promises that nothing but this hub's own greenlets (and work that
    /// arrives through a [`Handle`](crate::Handle) or the thread pool) wakes
    /// its greenlets: no other thread or hub sets, sends to or releases a
    /// `sync` value they wait on. A main greenlet that waits on something
    /// nothing can provide then panics at once with the deadlock report.
    /// Without the promise, a wait on a `sync` type might still end through
    /// another thread, so while other threads exist (besides the hub's own
    /// idle ones), the hub only warns of a possible deadlock after 5 seconds;
    /// with none, it reports it at once anyway.
    pub fn strict_deadlocks(mut self, strict: bool) -> Builder {
        self.strict_deadlocks = strict;
        self
    }

    /// How long a hub that runs out of work keeps polling for more before it
    /// sleeps in the kernel (default 50 µs; zero turns it off). It yields the
    /// CPU between polls, so other threads on the core still run.
    ///
    /// Waking a sleeping thread costs tens of microseconds (on a virtual
    /// machine more than on bare metal); a hub that polls instead sees a
    /// wake-up from another hub or thread within a microsecond or two, which
    /// makes quick exchanges between hubs many times faster (`cargo bench -p
    /// runtime-scheduler --bench cross_hub`). The time adapts: a busy poll
    /// that finds nothing halves the next one, down to a sixteenth of this
    /// setting, so a hub whose work is sparse spends little CPU on it.
    pub fn busy_poll(mut self, limit: Duration) -> Builder {
        self.busy_poll = limit;
        self
    }

    /// How many hubs [`run_each`](Builder::run_each) starts (at least one);
    /// by default, one per core (`std::thread::available_parallelism`).
    pub fn hubs(mut self, n: usize) -> Builder {
        self.hubs = Some(n.max(1));
        self
    }

    /// With [`run_each`](Builder::run_each), pins hub `i` to core `i` (modulo
    /// the cores this process may use), so each hub keeps its caches. Off by
    /// default: on a machine shared with other work, the kernel usually
    /// places threads better.
    pub fn pin_cores(mut self, pin: bool) -> Builder {
        self.pin_cores = pin;
        self
    }

    /// Serves a live console on a Unix socket at `path`: every hub's
    /// [`dump`](crate::dump) and [`Metrics`](crate::Metrics) as JSON lines,
    /// for `cargo run -p runtime-console -- PATH` or any client (`nc -U`,
    /// `socat`). Under [`run_each`](Builder::run_each) it covers every hub.
    ///
    /// A plain thread serves it, so a busy hub never keeps it from
    /// answering. It starts with the runtime (replacing a stale socket file
    /// left at `path`) and the file is removed when the runtime returns.
    ///
    /// # Protocol
    ///
    /// One request per line; each reply is JSON objects, one per line, then
    /// an empty line. Every object carries its `hub` index.
    ///
    /// - `dump`: one object per greenlet: `id`, `name`, `state`,
    ///   `waiting_on`, `parked_for_ms`, `spawned_at`, `backtrace` (as
    ///   [`GreenletInfo`](crate::GreenletInfo); `null` where it has none). A
    ///   hub that does not run the dump within a second is reported as
    ///   `{"hub": i, "error": "hub did not answer"}`.
    /// - `metrics`: one object per hub, whose keys are the methods of
    ///   [`Metrics`](crate::Metrics): `greenlets_alive`, `greenlets_spawned`,
    ///   `switches`, `polls`, `busy_time` (in nanoseconds), `runnable`,
    ///   `timers`, `stack_resident_bytes`.
    /// - anything else: `{"error": "..."}`.
    ///
    /// # Security
    ///
    /// There is no authentication beyond the socket file's permissions,
    /// 0600: whoever can open it (its owner, and root) reads every greenlet's
    /// name, stack and what it waits on.
    ///
    /// ```
    /// use std::io::{BufRead, BufReader, Write};
    /// use std::os::unix::net::UnixStream;
    ///
    /// let path = std::env::temp_dir().join(format!("console-doc-{}.sock", std::process::id()));
    /// let client_path = path.clone();
    /// let lines = runtime::Builder::new().console(&path).run(move || {
    ///     runtime::blocking(move || {
    ///         let mut stream = UnixStream::connect(&client_path).unwrap();
    ///         stream.write_all(b"metrics\n").unwrap();
    ///         let reader = BufReader::new(stream);
    ///         reader.lines().map(Result::unwrap).take_while(|l| !l.is_empty()).collect::<Vec<_>>()
    ///     })
    /// });
    /// assert_eq!(lines.len(), 1); // one hub
    /// assert!(lines[0].starts_with(r#"{"hub":0,"greenlets_alive":"#));
    /// assert!(!path.exists()); // removed at exit
    /// ```
    ///
    /// # Panics
    ///
    /// `run` and `run_each` panic if the socket cannot be bound (the
    /// directory does not exist, or another file than a socket is at
    /// `path`).
    pub fn console(mut self, path: impl AsRef<Path>) -> Builder {
        self.console = Some(path.as_ref().to_owned());
        self
    }

    /// Starts the console, if one is asked for, for `hubs` hubs.
    fn start_console(&self, hubs: usize) -> Option<Console> {
        let path = self.console.as_ref()?;
        Some(
            Console::start(path, hubs)
                .unwrap_or_else(|err| panic!("cannot serve the console at {}: {err}", path.display())),
        )
    }

    fn config(&self) -> hub::Config {
        hub::Config {
            stack_size: self.stack_size,
            max_blocking_time: self.max_blocking_time,
            shutdown_grace: self.shutdown_grace,
            cancel_grace: self.cancel_grace,
            strict_deadlocks: self.strict_deadlocks,
            busy_poll: self.busy_poll,
            stack_trim_after: self.stack_trim_after,
        }
    }

    /// Runs `f` on a hub with these settings on this thread; see
    /// [`run`](crate::run).
    ///
    /// # Panics
    ///
    /// As [`run`](crate::run).
    #[track_caller]
    pub fn run<T: 'static>(self, f: impl FnOnce() -> T + 'static) -> T {
        let pool = Arc::new(ThreadPool::new(self.blocking_threads));
        let console = self.start_console(1);
        let registry = console.as_ref().map(|c| (c.registry().clone(), 0));
        run_hub(self.config(), pool, f, Location::caller(), registry)
    }

    /// Starts one hub per core (or [`hubs(n)`](Builder::hubs)), each on its
    /// own thread, and runs `f(i)` on hub `i`; returns the results in index
    /// order once every hub has stopped. This is the thread-per-core shape:
    /// greenlets never move between hubs; they share work through the `sync`
    /// types, which cross threads, and each hub typically serves its own
    /// listener (bound with `SO_REUSEPORT`, so the kernel spreads
    /// connections). The hubs share one [`blocking`](crate::blocking) pool.
    ///
    /// ```
    /// use runtime::{Builder, sync::channel};
    ///
    /// let (tx, rx) = channel::unbounded::<usize>();
    /// let sums = Builder::new().hubs(2).run_each(move |i| {
    ///     if i == 0 {
    ///         (1..=10).for_each(|n| tx.send(n).unwrap()); // hub 0 produces...
    ///         0
    ///     } else {
    ///         rx.iter().take(10).sum::<usize>() // ...hub 1 consumes
    ///     }
    /// });
    /// assert_eq!(sums, [0, 55]);
    /// ```
    ///
    /// # Panics
    ///
    /// If a hub panics (its `f` panicked, or it could not start), after every
    /// hub has stopped, with the first hub's panic; if a thread cannot be
    /// started.
    #[track_caller]
    pub fn run_each<F, T>(self, f: F) -> Vec<T>
    where
        F: Fn(usize) -> T + Send + Sync + 'static,
        T: Send + 'static,
    {
        let n = self.hubs.unwrap_or_else(|| thread::available_parallelism().map_or(1, usize::from));
        let pool = Arc::new(ThreadPool::new(self.blocking_threads));
        let f = Arc::new(f);
        let spawned_at = Location::caller();
        let console = self.start_console(n);
        let threads: Vec<_> = (0..n)
            .map(|i| {
                let (config, pool, f, pin) = (self.config(), pool.clone(), f.clone(), self.pin_cores);
                let registry = console.as_ref().map(|c| (c.registry().clone(), i));
                thread::Builder::new()
                    .name(format!("runtime-hub-{i}"))
                    .spawn(move || {
                        HUB_INDEX.with(|index| index.set(Some(i)));
                        if pin && let Err(err) = affinity::pin_to_core(i) {
                            tracing::warn!("cannot pin hub {i} to a core: {err}");
                        }
                        run_hub(config, pool, move || f(i), spawned_at, registry)
                    })
                    .unwrap_or_else(|err| panic!("cannot start the thread of hub {i}: {err}"))
            })
            .collect();
        let mut results = Vec::with_capacity(n);
        let mut first_panic = None;
        for thread in threads {
            match thread.join() {
                Ok(value) => results.push(value),
                Err(payload) => {
                    first_panic.get_or_insert(payload);
                }
            }
        }
        drop(console);
        if let Some(payload) = first_panic {
            panic::resume_unwind(payload);
        }
        results
    }
}

/// Runs `f` as the root greenlet of a new hub on this thread, then shuts the
/// hub down.
fn run_hub<T: 'static>(
    config: hub::Config,
    pool: Arc<ThreadPool>,
    f: impl FnOnce() -> T + 'static,
    spawned_at: &'static Location<'static>,
    console: Option<(Arc<Registry>, usize)>,
) -> T {
    panic_hook::install();
    let hub = Rc::new(Hub::new(config, pool).unwrap_or_else(|err| panic!("cannot start the runtime: {err}")));
    let _installed = hub.install();
    if let Some((registry, index)) = console {
        registry.register(index);
    }
    let (root, handle) = task::spawn_task(&hub, task::Builder::new().name("main"), f, None, spawned_at, true);
    let root = root.expect("kept");
    let finished = hub.run_until_done(&root);
    let report = (!finished).then(|| root.deadlock().borrow_mut().take()).flatten();
    hub.shutdown();
    hub.close();
    if let Some(report) = report {
        panic!("{report}\n(the main greenlet was unwinding when it deadlocked; it was leaked)");
    }
    drop(root);
    assert!(handle.is_finished(), "the root greenlet is done");
    match handle.join() {
        Ok(value) => value,
        Err(err) if err.is_panic() => panic::resume_unwind(err.into_panic()),
        Err(_) => panic!("the main greenlet of the runtime was killed"),
    }
}

/// The monitor's limit given the environment variable's value: the default
/// without one (or with one that does not parse), none for `0`.
fn blocking_limit_from_env(value: Option<&str>) -> Option<Duration> {
    match value {
        None => Some(DEFAULT_LIMIT),
        Some(text) => match parse_duration(text) {
            Some(limit) => (!limit.is_zero()).then_some(limit),
            None => {
                eprintln!(
                    "runtime: warning: {MAX_BLOCKING_TIME_ENV}={text:?} is not a duration; using {DEFAULT_LIMIT:?}"
                );
                Some(DEFAULT_LIMIT)
            }
        },
    }
}

/// Parses `"250"`, `"250ms"` or `"0.25s"`.
fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    if let Some(ms) = text.strip_suffix("ms") {
        ms.trim().parse::<u64>().ok().map(Duration::from_millis)
    } else if let Some(s) = text.strip_suffix('s') {
        s.trim().parse::<f64>().ok().filter(|s| *s >= 0.0).map(Duration::from_secs_f64)
    } else {
        text.parse::<u64>().ok().map(Duration::from_millis)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_monitor_is_on_unless_the_environment_says_zero() {
        assert_eq!(blocking_limit_from_env(None), Some(DEFAULT_LIMIT));
        assert_eq!(blocking_limit_from_env(Some("0")), None);
        assert_eq!(blocking_limit_from_env(Some("0ms")), None);
        assert_eq!(blocking_limit_from_env(Some("20ms")), Some(Duration::from_millis(20)));
        assert_eq!(blocking_limit_from_env(Some("soon")), Some(DEFAULT_LIMIT));
    }

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("250"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("0.5s"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("0"), Some(Duration::ZERO));
        assert_eq!(parse_duration("soon"), None);
    }
}
