//! [`dump`]: a snapshot of every greenlet of the current hub (gevent's
//! `format_run_info`, tokio-console's task list).

use std::collections::HashMap;
use std::fmt;
use std::panic::Location;
use std::sync::Arc;
use std::time::Duration;

use crate::hub;
use crate::hub::record::State;
use crate::hub::waiting::Seconds;
use crate::park;
use crate::util::frames::Resolver;

/// Lists every live greenlet of the current hub: id, name, state, what it is
/// parked on and for how long, where it was spawned, and for a parked one,
/// its stack.
///
/// Print it (it implements `Display`), or read its [`greenlets`](Dump::greenlets).
/// Outside a runtime the dump is empty. Waiting times are measured from the
/// start of the hub's current turn, so they are as precise as the hub is
/// busy.
///
/// Each parked greenlet's stack is read from inside it: the caller switches
/// to it, and it records its stack and switches straight back without
/// leaving its park, so nothing it waits for is disturbed. The addresses are
/// resolved to names once each (the first dump of a process loads the debug
/// information, which takes a moment); 10,000 parked greenlets dump in about
/// a tenth of a second (`cargo run --release -p runtime-scheduler --example
/// observe_cost`).
///
/// ```
/// use std::time::Duration;
/// runtime::run(|| {
///     let sleeper = runtime::task::Builder::new()
///         .name("sleeper")
///         .spawn(|| runtime::sleep(Duration::from_secs(5)));
///     runtime::yield_now(); // let it park
///     let dump = runtime::dump();
///     println!("{dump}");
///     let info = dump.greenlets().iter().find(|g| g.name() == Some("sleeper")).unwrap();
///     assert_eq!(info.state(), "parked");
///     assert!(info.waiting_on().unwrap().starts_with("sleep"));
///     sleeper.kill();
/// });
/// ```
pub fn dump() -> Dump {
    let Some(hub) = hub::current() else { return Dump { greenlets: Vec::new() } };
    let now = hub.ready().clock().max(std::time::Instant::now());
    let current = hub.current_task();
    let mut resolver = Resolver::new();
    let mut formatted: HashMap<Vec<usize>, Arc<str>> = HashMap::new();
    let mut greenlets: Vec<GreenletInfo> = hub
        .tasks()
        .iter()
        .map(|task| {
            let running = current.as_ref().is_some_and(|c| c.id() == task.id());
            let (on, since, deadline) = task.waiting();
            let state = match task.state() {
                _ if running => "running",
                State::Running => "running",
                State::Scheduled => "runnable",
                State::Parked => "parked",
                State::Delayed => "delayed",
                State::Done => "finished",
            };
            let parked = state == "parked";
            let backtrace = parked.then(|| park::parked_stack(task)).flatten().map(|ips| {
                let op = on.describe(None, now).to_string();
                formatted.entry(ips).or_insert_with_key(|ips| resolver.format_parked(ips, &op).into()).clone()
            });
            GreenletInfo {
                id: task.id(),
                name: task.name().map(|name| name.to_string()),
                state,
                waiting_on: parked.then(|| on.describe(deadline, now).to_string()),
                parked_for: parked.then(|| now.saturating_duration_since(since)),
                spawned_at: task.spawned_at(),
                backtrace,
            }
        })
        .collect();
    greenlets.sort_by_key(|g| g.id);
    Dump { greenlets }
}

/// A snapshot of a hub's greenlets; see [`dump`].
#[derive(Clone, Debug)]
pub struct Dump {
    greenlets: Vec<GreenletInfo>,
}

impl Dump {
    /// The greenlets, by id.
    pub fn greenlets(&self) -> &[GreenletInfo] {
        &self.greenlets
    }
}

/// One greenlet in a [`Dump`].
#[derive(Clone, Debug)]
pub struct GreenletInfo {
    id: u64,
    name: Option<String>,
    state: &'static str,
    waiting_on: Option<String>,
    parked_for: Option<Duration>,
    spawned_at: &'static Location<'static>,
    backtrace: Option<Arc<str>>,
}

impl GreenletInfo {
    /// The greenlet's id.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Its name, if it was given one.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// `"running"`, `"runnable"`, `"parked"` or `"delayed"` (spawned with a
    /// delay that has not passed).
    pub fn state(&self) -> &'static str {
        self.state
    }

    /// What a parked greenlet waits for, in words: `"sleep, 2.3 s left"`,
    /// `"TcpStream::read fd 7, read timeout 5s"`, `"Mutex::lock"`,
    /// `"join #42"`.
    pub fn waiting_on(&self) -> Option<&str> {
        self.waiting_on.as_deref()
    }

    /// How long a parked greenlet has been parked.
    pub fn parked_for(&self) -> Option<Duration> {
        self.parked_for
    }

    /// Where it was spawned.
    pub fn spawned_at(&self) -> &'static Location<'static> {
        self.spawned_at
    }

    /// The call stack of a parked greenlet, innermost frame first, one frame
    /// per line (`function at file:line`, with demangled names). The
    /// runtime's own frames are left out, except the call it is parked in
    /// (`Event::wait`, `TcpStream::read`...). `None` for a greenlet that is
    /// not parked.
    ///
    /// ```
    /// use std::rc::Rc;
    /// use runtime::sync::Event;
    ///
    /// #[inline(never)]
    /// fn wait_for_the_start(start: &Event) {
    ///     start.wait();
    /// }
    ///
    /// runtime::run(|| {
    ///     let start = Rc::new(Event::new());
    ///     let waiter = runtime::task::Builder::new().name("waiter").spawn({
    ///         let start = start.clone();
    ///         move || wait_for_the_start(&start)
    ///     });
    ///     runtime::yield_now(); // let it park
    ///     let dump = runtime::dump();
    ///     let info = dump.greenlets().iter().find(|g| g.name() == Some("waiter")).unwrap();
    ///     let stack = info.backtrace().unwrap();
    ///     let innermost = stack.lines().next().unwrap();
    ///     assert!(innermost.contains("Event") && innermost.contains("wait"), "{stack}");
    ///     assert!(stack.contains("wait_for_the_start"), "{stack}");
    ///     start.set(); // and it wakes as if nothing happened
    ///     waiter.join().unwrap();
    /// });
    /// ```
    pub fn backtrace(&self) -> Option<&str> {
        self.backtrace.as_deref()
    }
}

impl fmt::Display for GreenletInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.id)?;
        if let Some(name) = &self.name {
            write!(f, " '{name}'")?;
        }
        write!(f, " {}", self.state)?;
        if let (Some(on), Some(parked_for)) = (&self.waiting_on, self.parked_for) {
            write!(f, " for {} on {on}", Seconds(parked_for))?;
        }
        write!(f, " (spawned at {})", self.spawned_at)?;
        for frame in self.backtrace.iter().flat_map(|stack| stack.lines()) {
            write!(f, "\n      {frame}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Dump {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} greenlet(s):", self.greenlets.len())?;
        for greenlet in &self.greenlets {
            writeln!(f, "  {greenlet}")?;
        }
        Ok(())
    }
}
