//! The hub: one per thread, running the scheduling loop on the thread's main
//! greenlet.
//!
//! `run` makes the calling greenlet (normally the thread's main greenlet) the
//! hub and spawns the user's closure as the first task. Every task greenlet
//! has the hub as its parent; parking switches to the hub, and the hub
//! switches to the next runnable task. One turn of the loop:
//!
//! 1. resume up to [`EVENT_INTERVAL`] runnable greenlets, in FIFO order;
//! 2. poll for I/O readiness: without blocking if anything is runnable,
//!    otherwise until the next timer deadline (or indefinitely);
//! 3. run work sent from other threads (remote spawns, thread-pool results);
//! 4. fire due timers.
//!
//! If the loop would block with nothing that could ever wake the root
//! greenlet (no runnable greenlet, timer, I/O waiter, thread-pool job or live
//! [`Handle`](crate::Handle)), the root greenlet panics with a deadlock report.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::panic;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use greenlet::{Greenlet, GreenletExit};

use crate::blocking::BlockingPool;
use crate::error::JoinError;
use crate::monitor::Monitor;
use crate::park::Wake;
use crate::reactor::Reactor;
use crate::remote::Remote;
use crate::task::{self, State, Task};
use crate::timer::TimerWheel;

/// Greenlets resumed per turn before the hub polls for I/O and timers again,
/// so that a busy run queue cannot starve I/O. The value is tokio's
/// (`event_interval`, in turn taken from Go's scheduler).
pub(crate) const EVENT_INTERVAL: usize = 61;

/// Kill rounds at shutdown before greenlets that refuse to die are given up on.
const SHUTDOWN_ROUNDS: usize = 3;

/// What a timer does when it fires.
pub(crate) enum TimerAction {
    /// A park deadline: wake the task if it is still parked with this number.
    Unpark(Rc<Task>, u64),
    /// A `timeout` scope expired.
    ScopeTimeout(Rc<Task>, u64),
    /// Start a task spawned with a delay.
    Start(Rc<Task>),
}

/// Settings of a hub, from [`Builder`](crate::Builder).
#[derive(Clone, Debug)]
pub(crate) struct Config {
    pub(crate) stack_size: usize,
    pub(crate) blocking_threads: usize,
    pub(crate) max_blocking_time: Option<Duration>,
}

/// The state of one thread's hub. Every field is only touched on that thread.
pub(crate) struct Hub {
    /// The greenlet running the loop; the parent of every task.
    pub(crate) greenlet: Greenlet,
    pub(crate) config: Config,
    run_queue: RefCell<VecDeque<Rc<Task>>>,
    /// The task whose greenlet is running, if any.
    current: RefCell<Option<Rc<Task>>>,
    pub(crate) timers: RefCell<TimerWheel<TimerAction>>,
    pub(crate) reactor: Reactor,
    pub(crate) remote: Arc<Remote>,
    pub(crate) blocking: BlockingPool,
    /// Every task not yet finished, so that shutdown can kill them.
    tasks: RefCell<Vec<Option<Rc<Task>>>>,
    free_slots: RefCell<Vec<usize>>,
    live_tasks: Cell<usize>,
    next_scope: Cell<u64>,
    monitor: Option<Monitor>,
    /// Finished tasks nobody refers to any more, kept for their allocation.
    recycled_tasks: RefCell<Vec<Rc<Task>>>,
}

/// Finished tasks kept for reuse (see `Hub::recycle_task`).
const RECYCLED_TASKS: usize = 64;

thread_local! {
    static HUB: RefCell<Option<Rc<Hub>>> = const { RefCell::new(None) };
}

/// The hub of this thread, if one is running.
pub(crate) fn current() -> Option<Rc<Hub>> {
    HUB.try_with(|hub| hub.borrow().clone()).ok().flatten()
}

/// Calls `f` with this thread's hub.
///
/// # Panics
///
/// If no hub runs on this thread.
pub(crate) fn with<R>(f: impl FnOnce(&Hub) -> R) -> R {
    HUB.with(|hub| match &*hub.borrow() {
        Some(hub) => f(hub),
        None => panic!("this must be called inside a runtime: wrap your code in `runtime::run(|| ...)`"),
    })
}

impl Hub {
    fn new(config: Config) -> std::io::Result<Hub> {
        let reactor = Reactor::new()?;
        let remote = Arc::new(Remote::new(reactor.waker()?));
        let monitor = config.max_blocking_time.map(Monitor::start);
        Ok(Hub {
            greenlet: greenlet::getcurrent(),
            blocking: BlockingPool::new(config.blocking_threads),
            config,
            run_queue: RefCell::new(VecDeque::new()),
            current: RefCell::new(None),
            timers: RefCell::new(TimerWheel::new(Instant::now())),
            reactor,
            remote,
            tasks: RefCell::new(Vec::new()),
            free_slots: RefCell::new(Vec::new()),
            live_tasks: Cell::new(0),
            next_scope: Cell::new(1),
            monitor,
            recycled_tasks: RefCell::new(Vec::new()),
        })
    }

    pub(crate) fn current_task(&self) -> Option<Rc<Task>> {
        self.current.borrow().clone()
    }

    pub(crate) fn is_current(&self, task: &Rc<Task>) -> bool {
        self.current.borrow().as_ref().is_some_and(|current| Rc::ptr_eq(current, task))
    }

    /// Whether the running greenlet is `task`'s own (and not some raw greenlet
    /// it created).
    pub(crate) fn task_greenlet_is_current(&self, task: &Task) -> bool {
        greenlet::current_id() == Some(task.id)
    }

    pub(crate) fn next_scope_id(&self) -> u64 {
        let id = self.next_scope.get();
        self.next_scope.set(id + 1);
        id
    }

    /// Puts `task` in an allocation, reusing a recycled one if there is one.
    pub(crate) fn allocate_task(&self, task: Task) -> Rc<Task> {
        match self.recycled_tasks.borrow_mut().pop() {
            Some(mut slot) => {
                *Rc::get_mut(&mut slot).expect("recycled tasks have no other reference") = task;
                slot
            }
            None => Rc::new(task),
        }
    }

    /// Keeps the allocation of a finished task whose last reference is
    /// `task` (typically a `JoinHandle` that was just joined).
    pub(crate) fn recycle_task(&self, task: Rc<Task>) {
        let mut recycled = self.recycled_tasks.borrow_mut();
        if task.is_done()
            && Rc::strong_count(&task) == 1
            && Rc::weak_count(&task) == 0
            && recycled.len() < RECYCLED_TASKS
        {
            recycled.push(task);
        }
    }

    pub(crate) fn register_task(&self, task: &Rc<Task>) {
        let mut tasks = self.tasks.borrow_mut();
        let slot = match self.free_slots.borrow_mut().pop() {
            Some(slot) => {
                tasks[slot] = Some(task.clone());
                slot
            }
            None => {
                tasks.push(Some(task.clone()));
                tasks.len() - 1
            }
        };
        task.slot.set(slot);
        self.live_tasks.set(self.live_tasks.get() + 1);
        if let Some(monitor) = &self.monitor {
            monitor.name_task(task.id, task.name.as_deref());
        }
    }

    /// Removes a finished task from the table.
    pub(crate) fn forget_task(&self, task: &Task) {
        let slot = task.slot.replace(usize::MAX);
        if slot == usize::MAX {
            return;
        }
        self.tasks.borrow_mut()[slot] = None;
        self.free_slots.borrow_mut().push(slot);
        self.live_tasks.set(self.live_tasks.get() - 1);
        if let Some(monitor) = &self.monitor {
            monitor.forget_task(task.id);
        }
    }

    /// A live task by its slot and id (for work coming back from other threads).
    pub(crate) fn task_at(&self, slot: usize, id: u64) -> Option<Rc<Task>> {
        self.tasks.borrow().get(slot).and_then(|task| task.as_ref().filter(|task| task.id == id).cloned())
    }

    /// Makes `task` runnable (at the back of the run queue).
    pub(crate) fn schedule(&self, task: Rc<Task>, wake: Wake) {
        task.state.set(State::Scheduled);
        task.wake.set(wake);
        self.run_queue.borrow_mut().push_back(task);
    }

    /// Switches from the running task's greenlet to the hub; returns when the
    /// hub resumes this task.
    pub(crate) fn switch_to_hub(&self) {
        drop(self.greenlet.switch(Box::new(())));
    }

    /// Runs one task until it parks, yields or finishes.
    fn resume(&self, task: Rc<Task>) {
        if task.state.get() != State::Scheduled {
            return; // killed before it ran, or a stale entry
        }
        let Some(greenlet) = task.greenlet() else { return };
        task.state.set(State::Running);
        *self.current.borrow_mut() = Some(task.clone());
        crate::reactor::reset_budget();
        if let Some(monitor) = &self.monitor {
            monitor.enter(task.id);
        }
        {
            let _entered = task.span.enter();
            if task.kill_requested.replace(false) && greenlet.is_started() {
                tracing::debug!("kill delivered");
                drop(greenlet.throw(Box::new(GreenletExit)));
            } else {
                drop(greenlet.switch(Box::new(())));
            }
        }
        if let Some(monitor) = &self.monitor {
            monitor.leave();
        }
        *self.current.borrow_mut() = None;
        match task.state.get() {
            State::Done => {
                drop(task.release_greenlet());
                self.forget_task(&task);
            }
            State::Running => {
                // It switched to the hub some other way than parking (the raw
                // greenlet API): keep it going rather than losing it.
                tracing::warn!(greenlet.id = task.id, "greenlet switched to the hub without parking; rescheduling it");
                self.schedule(task, Wake::Notified);
            }
            _ => {}
        }
    }

    /// Runs ready greenlets, at most `EVENT_INTERVAL` of them, and none once
    /// `root` (if given) is done.
    fn run_ready(&self, root: Option<&Rc<Task>>) {
        for _ in 0..EVENT_INTERVAL {
            // When the root greenlet (`run`'s `f`) returns, the rest of the
            // batch must not run: that would be greenlet code running after
            // `f` returned (even greenlets spawned but never started before
            // it returned). `shutdown` kills them instead.
            if root.is_some_and(|root| root.is_done()) {
                break;
            }
            let next = self.run_queue.borrow_mut().pop_front();
            match next {
                Some(task) => self.resume(task),
                None => break,
            }
        }
    }

    /// Polls I/O (blocking at most until the next timer, or not at all if
    /// greenlets are runnable), runs remote work and fires timers. With
    /// `root`, reports a deadlock to it instead of blocking forever.
    fn turn(&self, root: Option<&Rc<Task>>) {
        let now = Instant::now();
        let timeout = if !self.run_queue.borrow().is_empty() {
            Some(Duration::ZERO)
        } else {
            self.timers.borrow().next_deadline().map(|at| at.saturating_duration_since(now))
        };
        if timeout.is_none() && !self.can_be_woken() {
            if let Some(root) = root.filter(|root| root.state.get() == State::Parked) {
                *root.deadlock.borrow_mut() = Some(self.deadlock_report(root));
                self.schedule(root.clone(), Wake::Notified);
                return;
            }
        }
        if timeout != Some(Duration::ZERO) {
            // About to sleep: a good moment to hand back idle stack memory.
            greenlet::stack::maintain();
        }
        if let Some(monitor) = &self.monitor {
            monitor.polling(true);
        }
        let woken = self.reactor.poll(timeout);
        if let Some(monitor) = &self.monitor {
            monitor.polling(false);
        }
        for (task, seq) in woken {
            crate::park::unpark(&task, seq);
        }
        for work in self.remote.drain() {
            work();
        }
        let mut fired = Vec::new();
        self.timers.borrow_mut().expire(Instant::now(), |action| fired.push(action));
        for action in fired {
            self.fire(action);
        }
    }

    fn fire(&self, action: TimerAction) {
        match action {
            TimerAction::Unpark(task, seq) => {
                if task.state.get() == State::Parked && task.seq.get() == seq {
                    self.schedule(task, Wake::TimedOut);
                }
            }
            TimerAction::ScopeTimeout(task, scope) => {
                let pending = task.pending_timeout.get().map_or(scope, |other| other.min(scope));
                task.pending_timeout.set(Some(pending));
                if task.state.get() == State::Parked {
                    self.schedule(task, Wake::Notified);
                }
            }
            TimerAction::Start(task) => {
                task.start_timer.set(None);
                if task.state.get() == State::Delayed {
                    self.schedule(task, Wake::Notified);
                }
            }
        }
    }

    /// Whether anything besides a timer could still make a greenlet runnable.
    fn can_be_woken(&self) -> bool {
        self.reactor.waiters() > 0
            || self.blocking.in_flight() > 0
            || self.remote.handles() > 0
            || self.remote.has_pending()
            || self.timers.borrow().len() > 0
    }

    fn deadlock_report(&self, root: &Task) -> String {
        let parked = self.live_tasks.get().saturating_sub(1);
        format!(
            "deadlock: the main greenlet is waiting on {} but nothing can ever wake it: no greenlet is runnable, \
             no timer is armed, no greenlet waits for I/O, no thread-pool job is running and no `Handle` is alive \
             ({parked} other greenlet(s) parked). Hint: a value, permit or event this code waits for is never \
             provided; check which greenlet was meant to send, release or set it.",
            root.waiting_on.get()
        )
    }

    /// Runs the loop until `root` is done.
    fn run_until_done(&self, root: &Rc<Task>) {
        loop {
            self.run_ready(Some(root));
            if root.is_done() {
                return;
            }
            self.turn(Some(root));
        }
    }

    /// Kills every remaining greenlet and runs the loop until they are gone.
    fn shutdown(&self) {
        for round in 0..SHUTDOWN_ROUNDS {
            let remaining: Vec<Rc<Task>> = self.tasks.borrow().iter().flatten().cloned().collect();
            if remaining.is_empty() {
                return;
            }
            if round == 0 {
                tracing::debug!(greenlets = remaining.len(), "killing the greenlets still alive at the end of `run`");
            }
            for task in &remaining {
                task.kill();
            }
            // Killed greenlets unwind without blocking (parking is refused
            // while unwinding); run until nothing is runnable.
            loop {
                self.run_ready(None);
                if self.run_queue.borrow().is_empty() {
                    break;
                }
                self.turn(None);
            }
        }
        let stubborn: Vec<Rc<Task>> = self.tasks.borrow_mut().iter_mut().filter_map(Option::take).collect();
        for task in &stubborn {
            tracing::warn!(
                greenlet.id = task.id,
                greenlet.name = task.name.as_deref(),
                "greenlet survived being killed at the end of `run`; abandoning it"
            );
            task.finish(Err(JoinError::killed(task.id, task.name.clone())));
            drop(task.release_greenlet());
        }
    }
}

/// Runs `f` on a new hub on this thread and returns its value once it returns;
/// see [`Builder::run`](crate::Builder::run).
pub(crate) fn run<T: 'static>(config: Config, f: impl FnOnce() -> T + 'static) -> T {
    if current().is_some() {
        panic!("`runtime::run` was called inside a running runtime; use `runtime::spawn` instead");
    }
    let hub = Rc::new(Hub::new(config).unwrap_or_else(|err| panic!("cannot start the runtime: {err}")));
    HUB.with(|slot| *slot.borrow_mut() = Some(hub.clone()));
    let _uninstall = task::scopeguard(|| {
        HUB.with(|slot| slot.borrow_mut().take());
    });
    let root = task::spawn_task(&hub, task::Builder::new().name("main"), f, None);
    hub.run_until_done(&root);
    hub.shutdown();
    hub.remote.close();
    let outcome = root.take_outcome().expect("the root greenlet is done");
    drop(root);
    match outcome {
        Ok(value) => *value.downcast::<T>().expect("the root outcome has the closure's type"),
        Err(err) if err.is_panic() => panic::resume_unwind(err.into_panic()),
        Err(_) => panic!("the main greenlet of the runtime was killed"),
    }
}
