//! The hub: one per thread, running the scheduling loop on the thread's main
//! greenlet.
//!
//! The hub owns every table of the scheduler (run queue, tasks, timers,
//! reactor, remote queue, thread pool) behind methods; nothing below it calls
//! back into it. One turn of the loop:
//!
//! 1. resume up to [`EVENT_INTERVAL`] runnable greenlets, in FIFO order;
//! 2. poll for I/O readiness: without blocking if anything is runnable (and
//!    then, with no source registered, only once per
//!    [`POLL_AT_LEAST_EVERY`]: such a poll could only report the waker,
//!    whose messages step 3 reads anyway), otherwise until
//!    the next timer deadline (or indefinitely); the reactor hands back the
//!    unparkers of ready sources, which the hub unparks;
//! 3. handle messages from other threads (remote spawns, wake-ups), at most
//!    [`REMOTE_BATCH`] of them;
//! 4. fire due timers.
//!
//! If the loop would block with nothing that could ever wake the root
//! greenlet (no runnable greenlet, timer, I/O waiter, live
//! [`Handle`](crate::Handle) or pending wake-up from another thread), the root
//! greenlet panics with a deadlock report.
//!
//! # What this module owns
//!
//! Everything the loop touches on every turn: the task records
//! ([`record`]) and the run queue, the one wake path ([`unpark`]) and the
//! FIFO wait queues built on it ([`wait_queue`]), the descriptions of what a
//! parked greenlet waits for ([`waiting`]), and the engines the loop drives:
//! the reactor ([`reactor`], `mio`), the timing wheel ([`timer`]), the queue
//! other threads post to ([`remote`]), the blocking thread pool
//! ([`thread_pool`]), the blocking monitor ([`monitor`], which reads a
//! blocking greenlet's stack with [`sample`]), the counters that metrics read
//! ([`counters`]), the I/O budget
//! ([`budget`]) and core pinning ([`affinity`]). The wake path's files
//! (`record`, `unpark`, `wait_queue`, `waiting`, `reactor`) refer to one
//! another: a task holds its wait-queue entry, and an entry holds the
//! unparker of its task.
//!
//! # What it must not know
//!
//! How greenlets wait (the park seam, [`park`](crate::park)), what they
//! spawn or join ([`task`](crate::task)), and the `sync` types: nothing here
//! imports from those modules. The hub only ever sees a task, an unparker,
//! and a reason a task was woken.

pub(crate) mod affinity;
pub(crate) mod alone;
pub(crate) mod budget;
pub(crate) mod completion;
pub(crate) mod counters;
pub(crate) mod metrics;
pub(crate) mod monitor;
pub(crate) mod reactor;
pub(crate) mod record;
pub(crate) mod remote;
#[allow(unsafe_code)] // a signal handler: see its module docs
pub(crate) mod sample;
pub(crate) mod thread_pool;
pub(crate) mod timer;
pub(crate) mod trim;
pub(crate) mod unpark;
pub(crate) mod wait_queue;
pub(crate) mod waiting;

use std::cell::{Cell, RefCell};
use std::fmt::Write as _;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::task::Waker;
use std::time::{Duration, Instant};

use greenlet::Greenlet;

use crate::error::JoinError;
use crate::hub::counters::{Counters, StackSampler};
use crate::hub::monitor::Monitor;
use crate::hub::reactor::Reactor;
use crate::hub::record::{Pending, ReadyQueue, State, Task, Wake};
use crate::hub::remote::{Message, Remote};
use crate::hub::thread_pool::ThreadPool;
use crate::hub::timer::{TimerKey, TimerWheel};
use crate::hub::unpark::Unparker;
use crate::hub::waiting::Seconds;
use crate::util::slab::{Key, Slab};

/// Greenlets resumed per turn before the hub polls for I/O and timers again,
/// so that a busy run queue cannot starve I/O. The value is tokio's
/// (`event_interval`, in turn taken from Go's scheduler).
pub(crate) const EVENT_INTERVAL: usize = 61;

/// A hub whose greenlets keep it busy, with no source registered, skips the
/// polls of its turns for at most this long (see `turn`).
const POLL_AT_LEAST_EVERY: Duration = Duration::from_millis(1);

/// The id of the running greenlet (of a hub or not): `runtime::greenlet_id`.
pub(crate) fn greenlet_id() -> u64 {
    greenlet::current_id().unwrap_or_else(|| greenlet::getcurrent().id())
}

/// Messages from other threads handled per turn: no more spawns than the
/// greenlets a turn resumes, so a flood of them neither starves the hub's
/// own greenlets, timers and I/O nor piles up greenlets in the run queue
/// (the rest wait in the remote queue as messages, see `Handle::spawn`).
const REMOTE_BATCH: usize = EVENT_INTERVAL;

/// How long the hub waits, with nothing on it able to wake the main
/// greenlet but greenlets waiting on `sync` types (which another thread may
/// still wake), before it warns of a possible deadlock.
const DEADLOCK_WARNING_AFTER: Duration = Duration::from_secs(5);

/// How long after its cleanup grace has ended a greenlet that was killed or
/// timed out inside code that cannot unwind may still make waits that fail
/// with that error, before it is taken for a loop that retries them forever
/// and is parked for good (see `Parker::park_for_good`).
pub(crate) const RUNAWAY_AFTER: Duration = Duration::from_secs(1);

/// How often at most the hub counts the process's threads to tell whether it
/// is alone (and a root wait nothing on it can end is a deadlock for sure).
const ALONE_CHECK_INTERVAL: Duration = Duration::from_millis(10);

/// Finished tasks kept for reuse (see `Hub::recycle_task`).
const RECYCLED_TASKS: usize = 64;

/// What a timer does when it fires.
pub(crate) enum TimerAction {
    /// A park deadline: wake that park as timed out.
    Unpark(Unparker),
    /// A `timeout` scope of this task expired.
    ScopeTimeout(Rc<Task>, u64),
    /// Start a task spawned with a delay.
    Start(Rc<Task>),
}

/// Settings of a hub, from [`Builder`](crate::Builder).
#[derive(Clone, Debug)]
pub(crate) struct Config {
    pub(crate) stack_size: usize,
    pub(crate) max_blocking_time: Option<Duration>,
    pub(crate) shutdown_grace: Duration,
    pub(crate) cancel_grace: Duration,
    pub(crate) strict_deadlocks: bool,
    pub(crate) busy_poll: Duration,
    pub(crate) stack_trim_after: Option<Duration>,
}

/// The state of one thread's hub. Every field is only touched on that thread.
pub(crate) struct Hub {
    /// The greenlet running the loop; the parent of every task.
    greenlet: Greenlet,
    config: Config,
    ready: Rc<ReadyQueue>,
    /// The task whose greenlet is running, if any.
    current: RefCell<Option<Rc<Task>>>,
    timers: RefCell<TimerWheel<TimerAction>>,
    reactor: Rc<Reactor>,
    remote: Arc<Remote>,
    /// Shared by the hubs of one `run_each`.
    pool: Arc<ThreadPool>,
    /// Every task not yet finished, so that shutdown can kill them and
    /// wake-ups from other threads can find them.
    tasks: RefCell<Slab<Rc<Task>>>,
    next_scope: Cell<u64>,
    /// Stops watching this hub when dropped.
    _monitor: Option<Monitor>,
    /// What [`Metrics`](crate::Metrics) reads; shared with `Handle`s.
    counters: Arc<Counters>,
    /// When the hub last went back to running greenlets (the end of its last
    /// turn), for the busy time.
    busy_since: Cell<Instant>,
    stacks: RefCell<StackSampler>,
    /// Trims the stacks of long-parked tasks when the hub goes idle.
    trimmer: trim::Trimmer,
    /// Finished tasks nobody refers to any more, kept for their allocation.
    recycled_tasks: RefCell<Vec<Rc<Task>>>,
    /// Greenlets parked for a [`WakeToken`](crate::foreign::WakeToken):
    /// each may be woken from anywhere, as while an unparker is alive.
    token_waits: Cell<usize>,
    /// The root park a possible deadlock was reported for (once each).
    deadlock_warned: Cell<Option<u64>>,
    /// Since when the root's current park has looked like a possible
    /// deadlock (its park's seq, the instant, the switch count then): a
    /// warning needs [`DEADLOCK_WARNING_AFTER`] of it with no greenlet run.
    suspect_since: Cell<Option<(u64, Instant, u64)>>,
    /// When the hub last counted the process's threads (see `alone`).
    alone_counted: Cell<Option<Instant>>,
    /// How long the next busy poll may last (see `busy_poll`).
    busy_budget: Cell<Duration>,
    /// When the hub last polled (see `turn`).
    polled_at: Cell<Instant>,
    /// Tasks parked while unwinding: while there are any,
    /// `std::thread::panicking()` is true for every greenlet of the thread.
    parked_unwinding: Cell<usize>,
    /// A greenlet yielded because its I/O budget was spent: the batch ends
    /// there, so that the hub polls and fires timers before it runs again.
    end_batch: Cell<bool>,
    /// Buffers reused every turn, so a turn allocates nothing.
    woken: RefCell<Vec<Unparker>>,
    wakers: RefCell<Vec<Waker>>,
    messages: RefCell<Vec<Message>>,
    fired: RefCell<Vec<TimerAction>>,
}

thread_local! {
    static HUB: RefCell<Option<Rc<Hub>>> = const { RefCell::new(None) };
    /// The id of the running hub's reactor (0 for none): a check that a
    /// registration belongs here, cheap enough for every I/O operation.
    static REACTOR_ID: Cell<u64> = const { Cell::new(0) };

}

/// The remote queues of the running hubs, by hub id, for kills sent to a
/// greenlet of another hub (rare: a handle keeps only the hub's id).
static REMOTES: std::sync::Mutex<Vec<(u64, std::sync::Weak<Remote>)>> = std::sync::Mutex::new(Vec::new());

/// The remote queue of the running hub with this id.
pub(crate) fn remote_of(hub: u64) -> Option<Arc<Remote>> {
    let remotes = REMOTES.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    remotes.iter().find(|(id, _)| *id == hub).and_then(|(_, remote)| remote.upgrade())
}

/// The id of the reactor of this thread's hub, 0 if none runs.
#[inline]
pub(crate) fn reactor_id() -> u64 {
    REACTOR_ID.try_with(Cell::get).unwrap_or(0)
}

/// The hub of this thread, if one is running.
pub(crate) fn current() -> Option<Rc<Hub>> {
    // Never panics (the `foreign` waits rely on it): `None` while the slot
    // is being installed or removed, or after the thread-local is gone.
    HUB.try_with(|hub| hub.try_borrow().ok().and_then(|hub| hub.clone())).ok().flatten()
}

/// The task running on this thread's hub, if any: [`current`] and
/// [`Hub::current_task`] without taking (and dropping) a handle to the hub.
pub(crate) fn running_task() -> Option<Rc<Task>> {
    HUB.try_with(|hub| hub.try_borrow().ok()?.as_ref()?.current_task()).ok().flatten()
}

/// This thread's hub.
///
/// # Panics
///
/// If no hub runs on this thread.
#[track_caller]
pub(crate) fn expect() -> Rc<Hub> {
    current()
        .unwrap_or_else(|| panic!("this must be called inside a runtime: wrap your code in `runtime::run(|| ...)`"))
}

/// The label of the task running on this thread's hub, and where it was
/// spawned, without panicking whatever the state of the hub (for the panic
/// hook).
pub(crate) fn current_task_label() -> Option<(String, &'static std::panic::Location<'static>)> {
    let hub = HUB.try_with(|hub| hub.try_borrow().ok().and_then(|hub| hub.clone())).ok().flatten()?;
    let task = hub.current.try_borrow().ok()?.clone()?;
    Some((task.label(), task.spawned_at()))
}

/// Wakes park `seq` of the task at `task` on the hub with the id `hub`, from
/// any thread: directly on that hub's own thread, through its remote queue
/// (found in the registry of running hubs) otherwise.
pub(crate) fn unpark_hub(hub: u64, task: Key, seq: u64) {
    if hub == reactor_id() {
        unpark_local(task, seq);
    } else if let Some(remote) = remote_of(hub) {
        let _ = remote.post(Message::Unpark { task, seq });
    }
}

/// Wakes park `seq` of the task at `task` of this thread's hub.
pub(crate) fn unpark_local(task: Key, seq: u64) {
    // The `sync` types' wake path: borrowed, not cloned (waking pushes the
    // task on the run queue, and touches neither the hub's slot nor its table).
    let _ = HUB.try_with(|hub| {
        let Ok(hub) = hub.try_borrow() else { return };
        let Some(tasks) = hub.as_ref().and_then(|hub| hub.tasks.try_borrow().ok()) else { return };
        if let Some(task) = tasks.get(task) {
            task.wake_up(seq, Wake::Notified);
        }
    });
}

/// Wakes park `seq` of the task at `task` on the hub behind `remote`, from
/// any thread: directly when called on that hub's own thread (no system
/// call), through its remote queue otherwise. A hub that has stopped ignores
/// it.
pub(crate) fn unpark_anywhere(remote: &Arc<Remote>, task: Key, seq: u64) {
    if let Some(hub) = current().filter(|hub| Arc::ptr_eq(&hub.remote, remote)) {
        if let Ok(tasks) = hub.tasks.try_borrow() {
            let task = tasks.get(task).cloned();
            drop(tasks);
            if let Some(task) = task {
                task.wake_up(seq, Wake::Notified);
            }
            return;
        }
    }
    let _ = remote.post(Message::Unpark { task, seq });
}

impl Hub {
    pub(crate) fn new(config: Config, pool: Arc<ThreadPool>) -> std::io::Result<Hub> {
        let busy_poll = config.busy_poll;
        let trimmer = trim::Trimmer::new(config.stack_trim_after);
        let reactor = Rc::new(Reactor::new()?);
        let remote = Arc::new(Remote::new(reactor.waker()?));
        let counters = Arc::new(Counters::default());
        let monitor = config.max_blocking_time.map(|limit| Monitor::start(limit, counters.clone()));
        let now = Instant::now();
        Ok(Hub {
            greenlet: greenlet::getcurrent(),
            pool,
            config,
            ready: Rc::new(ReadyQueue::new(remote.clone())),
            current: RefCell::new(None),
            timers: RefCell::new(TimerWheel::new(Instant::now())),
            reactor,
            remote,
            tasks: RefCell::new(Slab::new()),
            next_scope: Cell::new(1),
            _monitor: monitor,
            counters,
            busy_since: Cell::new(now),
            stacks: RefCell::new(StackSampler::new(now)),
            trimmer,
            recycled_tasks: RefCell::new(Vec::new()),
            parked_unwinding: Cell::new(0),
            end_batch: Cell::new(false),
            token_waits: Cell::new(0),
            deadlock_warned: Cell::new(None),
            suspect_since: Cell::new(None),
            alone_counted: Cell::new(None),
            busy_budget: Cell::new(busy_poll),
            polled_at: Cell::new(Instant::now()),
            woken: RefCell::new(Vec::new()),
            wakers: RefCell::new(Vec::new()),
            messages: RefCell::new(Vec::new()),
            fired: RefCell::new(Vec::new()),
        })
    }

    /// Makes this the hub of the thread until the returned guard drops.
    pub(crate) fn install(self: &Rc<Hub>) -> impl Drop {
        assert!(
            current().is_none(),
            "`runtime::run` was called inside a running runtime; use `runtime::spawn` instead"
        );
        HUB.with(|slot| *slot.borrow_mut() = Some(self.clone()));
        let id = self.reactor.id();
        REACTOR_ID.with(|slot| slot.set(id));
        let mut remotes = REMOTES.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        remotes.push((id, Arc::downgrade(&self.remote)));
        drop(remotes);
        crate::util::guard::defer(move || {
            REMOTES.lock().unwrap_or_else(std::sync::PoisonError::into_inner).retain(|(hub, _)| *hub != id);
            REACTOR_ID.with(|slot| slot.set(0));
            HUB.with(|slot| slot.borrow_mut().take());
        })
    }

    pub(crate) fn greenlet(&self) -> &Greenlet {
        &self.greenlet
    }

    pub(crate) fn stack_size(&self) -> usize {
        self.config.stack_size
    }

    /// See [`Builder::cancel_grace`](crate::Builder::cancel_grace).
    pub(crate) fn cancel_grace(&self) -> Duration {
        self.config.cancel_grace
    }

    pub(crate) fn ready(&self) -> &Rc<ReadyQueue> {
        &self.ready
    }

    pub(crate) fn reactor(&self) -> &Rc<Reactor> {
        &self.reactor
    }

    pub(crate) fn remote(&self) -> &Arc<Remote> {
        &self.remote
    }

    pub(crate) fn pool(&self) -> &ThreadPool {
        &self.pool
    }

    pub(crate) fn counters(&self) -> &Arc<Counters> {
        &self.counters
    }

    /// Greenlets in the run queue now.
    pub(crate) fn runnable(&self) -> usize {
        self.ready.len()
    }

    /// Time spent running greenlets, including the current run of them if
    /// the hub is in one.
    pub(crate) fn busy_time(&self) -> Duration {
        let counted = Duration::from_nanos(self.counters.busy_nanos.load(Relaxed));
        if self.counters.polling.load(Relaxed) { counted } else { counted + self.busy_since.get().elapsed() }
    }

    /// Timers armed now (sleeps, park deadlines, timeouts, delayed starts).
    pub(crate) fn timer_count(&self) -> usize {
        self.timers.borrow().len()
    }

    pub(crate) fn current_task(&self) -> Option<Rc<Task>> {
        // Never panics (see `current`): `None` while the hub changes it.
        self.current.try_borrow().ok().and_then(|task| task.clone())
    }

    pub(crate) fn is_current(&self, task: &Task) -> bool {
        self.current.borrow().as_deref().is_some_and(|current| std::ptr::eq(current, task))
    }

    pub(crate) fn next_scope_id(&self) -> u64 {
        let id = self.next_scope.get();
        self.next_scope.set(id + 1);
        id
    }

    pub(crate) fn arm_timer(&self, at: Instant, action: TimerAction) -> TimerKey {
        self.timers.borrow_mut().insert(at, action)
    }

    pub(crate) fn cancel_timer(&self, key: TimerKey) {
        // Dropped outside the borrow: an action holds tasks, whose drop may
        // run arbitrary code.
        let action = self.timers.borrow_mut().cancel(key);
        drop(action);
    }

    /// Counts a task starting (`true`) or ending a park while unwinding.
    pub(crate) fn count_parked_unwinding(&self, parked: bool) {
        let n = self.parked_unwinding.get();
        self.parked_unwinding.set(if parked { n + 1 } else { n - 1 });
    }

    /// Counts a greenlet parking for a `WakeToken` (`true`) or back from it.
    pub(crate) fn count_token_wait(&self, waiting: bool) {
        let n = self.token_waits.get();
        self.token_waits.set(if waiting { n + 1 } else { n - 1 });
    }

    pub(crate) fn parked_unwinding(&self) -> usize {
        self.parked_unwinding.get()
    }

    /// A recycled task record, if one is kept: for `new_task`, after its
    /// spare greenlet (`Task::take_spare`) was revived or not.
    pub(crate) fn recycled_task(&self) -> Option<Rc<Task>> {
        self.recycled_tasks.borrow_mut().pop()
    }

    /// A record for a new task, in `recycled` (from `recycled_task`) if
    /// given.
    pub(crate) fn new_task(
        &self,
        recycled: Option<Rc<Task>>,
        greenlet: Greenlet,
        name: Option<Rc<str>>,
        spawned_at: &'static std::panic::Location<'static>,
        span: tracing::Span,
        completion: crate::hub::completion::ErasedCompletion,
    ) -> Rc<Task> {
        match recycled {
            Some(mut slot) => {
                let task = Rc::get_mut(&mut slot).expect("recycled tasks have no other reference");
                task.reuse(greenlet, name, spawned_at, span, completion);
                slot
            }
            None => Rc::new(Task::new(greenlet, name, spawned_at, self.ready.clone(), span, completion)),
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

    /// Enters a new task in the table.
    pub(crate) fn add_task(&self, task: &Rc<Task>) {
        let mut tasks = self.tasks.borrow_mut();
        let key = tasks.insert(task.clone());
        self.counters.alive.store(tasks.len(), Relaxed);
        drop(tasks);
        counters::bump(&self.counters.spawned);
        task.set_key(Some(key));
    }

    /// Removes a finished task from the table.
    pub(crate) fn forget_task(&self, task: &Task) {
        let Some(key) = task.key() else { return };
        task.set_key(None);
        let mut tasks = self.tasks.borrow_mut();
        let removed = tasks.remove(key);
        self.counters.alive.store(tasks.len(), Relaxed);
        drop(tasks);
        drop(removed);
    }

    /// The live task at `key`.
    pub(crate) fn task(&self, key: Key) -> Option<Rc<Task>> {
        self.tasks.try_borrow().ok()?.get(key).cloned()
    }

    /// Every live task, in table order.
    pub(crate) fn tasks(&self) -> Vec<Rc<Task>> {
        self.tasks.borrow().iter().map(|(_, task)| task.clone()).collect()
    }

    /// Switches from the running task's greenlet to the hub; returns when the
    /// hub resumes this task.
    // Inlined into the park: after a switch of stacks the processor
    // mispredicts the returns it makes (its return-address stack holds the
    // other stack's calls), so every call level between the switch and the
    // user's code costs a misprediction on the way back.
    #[inline(always)]
    pub(crate) fn switch_to_hub(&self) {
        drop(self.greenlet.switch(Box::new(())));
    }

    /// Kills `task`: see [`JoinHandle::kill`](crate::JoinHandle::kill).
    pub(crate) fn kill(&self, task: &Rc<Task>) {
        match task.state() {
            State::Done => {}
            _ if !task.is_started() => {
                // Never ran: it never will. Dropping the pending greenlet drops
                // the closure without running it.
                if let Some(timer) = task.start_timer().take() {
                    self.cancel_timer(timer);
                }
                drop(task.release_greenlet());
                tracing::debug!(
                    greenlet.id = task.id(),
                    greenlet.name = task.name().map(|n| &**n),
                    "killed before it ran"
                );
                task.abort(JoinError::killed(task.id(), task.name().map(|n| Arc::from(&**n))));
                self.forget_task(task);
            }
            State::Running if self.is_current(task) => {
                // Killing oneself: unwind right here (unless already
                // unwinding: a second kill ends nothing but waits).
                if !task.is_unwinding() {
                    task.set_unwinding(true);
                    std::panic::resume_unwind(task.kill_payload());
                }
            }
            State::Parked => {
                task.set_pending(Pending::Kill);
                task.schedule(Wake::Notified);
            }
            State::Running | State::Scheduled | State::Delayed => task.set_pending(Pending::Kill),
        }
    }

    /// Runs one task until it parks, yields or finishes.
    fn resume(&self, task: Rc<Task>) {
        if task.state() != State::Scheduled {
            return; // killed before it ran, or a stale entry
        }
        let Some(greenlet) = task.greenlet_ref() else { return };
        task.set_state(State::Running);
        *self.current.borrow_mut() = Some(task.clone());
        budget::reset();
        counters::bump(&self.counters.switches);
        // The task first: the monitor's signal handler reads it once it sees
        // the id (on this thread, so program order is all it needs).
        self.counters.running_task.store(Rc::as_ptr(&task).cast::<()>().cast_mut(), Relaxed);
        self.counters.running.store(task.id(), std::sync::atomic::Ordering::Release);
        {
            let _entered = task.span.enter();
            // Kills and timeouts are raised by the park the task returns to.
            drop(greenlet.switch(Box::new(())));
        }
        drop(greenlet);
        self.counters.running.store(0, Relaxed);
        *self.current.borrow_mut() = None;
        if task.is_doomed() {
            self.abandon_doomed(&task);
            return;
        }
        match task.state() {
            State::Done => {
                task.retire_greenlet();
                self.forget_task(&task);
                self.recycle_task(task);
            }
            State::Running => {
                // It switched to the hub some other way than parking (the raw
                // greenlet API): keep it going rather than losing it.
                tracing::warn!(
                    greenlet.id = task.id(),
                    "greenlet switched to the hub without parking; rescheduling it"
                );
                task.schedule(Wake::Notified);
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
            match self.ready.pop() {
                Some(task) => self.resume(task),
                None => break,
            }
            if self.end_batch.take() {
                break;
            }
        }
    }

    /// Ends the running batch of greenlets after the running one: it spent
    /// its I/O budget and yields, and without this it could be resumed up to
    /// `EVENT_INTERVAL` times (each another budget of work) before the hub
    /// polls for I/O and fires timers (tokio defers such a task's wake-up
    /// past its next poll for the same reason).
    pub(crate) fn end_batch(&self) {
        self.end_batch.set(true);
    }

    /// Polls I/O (blocking at most until the next timer or `max_wait`, or not
    /// at all if greenlets are runnable), handles messages from other threads
    /// and fires timers. With `root`, reports a deadlock to it instead of
    /// blocking forever; returns false if that cannot be done (the root is
    /// unwinding, so it cannot be made to panic).
    fn turn(&self, root: Option<&Rc<Task>>, max_wait: Option<Duration>) -> bool {
        let now = Instant::now();
        self.ready.tick(now);
        counters::add(
            &self.counters.busy_nanos,
            now.saturating_duration_since(self.busy_since.get()).as_nanos() as u64,
        );
        // Messages left over from the last turn's batch: no time to sleep.
        let mut timeout = if !self.ready.is_empty() || self.remote.has_pending() {
            Some(Duration::ZERO)
        } else {
            self.timers.borrow().next_deadline().map(|at| at.saturating_duration_since(now))
        };
        let mut suspect = None;
        if timeout.is_none() && !self.can_be_woken() {
            if let Some(root) = root.filter(|root| root.state() == State::Parked) {
                let shared = self.ready.sync_waits() > 0 && !self.config.strict_deadlocks;
                let alone = if shared { self.alone(now) } else { Some(true) };
                if alone != Some(true) {
                    // A greenlet waits on a `sync` type, which another thread
                    // may still set, send to or release: the hub cannot tell,
                    // so it waits, and only warns if nothing happens.
                    let seq = root.next_seq();
                    let since = self.suspected_since(seq, now);
                    let mut wait = DEADLOCK_WARNING_AFTER.saturating_sub(now.saturating_duration_since(since));
                    if alone.is_none() {
                        // Not counted this time: count soon.
                        wait = wait.min(ALONE_CHECK_INTERVAL);
                    }
                    timeout = Some(wait);
                    suspect = Some(seq);
                } else if shared && self.remote.has_pending() {
                    // Alone now, but a thread that has since ended woke a
                    // greenlet on its way out: its message is in the queue.
                    timeout = Some(Duration::ZERO);
                } else {
                    if root.is_unwinding() && root.deadlock().borrow().is_some() {
                        return false;
                    }
                    *root.deadlock().borrow_mut() = Some(self.deadlock_report(root));
                    root.schedule(Wake::Notified);
                    return true;
                }
            }
        }
        if let Some(max_wait) = max_wait {
            timeout = Some(timeout.map_or(max_wait, |t| t.min(max_wait)));
        }
        self.counters.polling.store(true, Relaxed);
        let (mut woken, mut wakers) = (self.woken.take(), self.wakers.take());
        // About to sleep: a good moment to hand back idle stack memory, and
        // to busy-poll first. What a busy poll finds is already in `woken`
        // and `wakers` (or in the remote queue): no need to poll again.
        let found = timeout != Some(Duration::ZERO) && {
            greenlet::stack::maintain();
            self.trimmer.on_idle(&self.tasks.borrow(), self.ready.clock());
            self.busy_poll(timeout, &mut woken, &mut wakers)
        };
        // A poll that must not wait, with no source registered, could only
        // report the waker, whose messages are read from the remote queue
        // below all the same: a hub of busy greenlets and no I/O skips it,
        // for up to `POLL_AT_LEAST_EVERY`. (A thread that never enters the
        // kernel can starve the others where threads take turns only at
        // system calls, as under Valgrind.)
        let pointless = timeout == Some(Duration::ZERO)
            && !self.reactor.has_sources()
            && now.saturating_duration_since(self.polled_at.get()) < POLL_AT_LEAST_EVERY;
        if !found && !pointless {
            self.polled_at.set(now);
            counters::bump(&self.counters.polls);
            self.reactor.react(timeout, &mut woken, &mut wakers);
        }
        self.counters.polling.store(false, Relaxed);
        for unparker in woken.drain(..) {
            unparker.unpark_owned(&self.ready);
        }
        for waker in wakers.drain(..) {
            waker.wake();
        }
        *self.woken.borrow_mut() = woken;
        *self.wakers.borrow_mut() = wakers;

        let mut messages = self.messages.take();
        self.remote.drain_into(&mut messages, REMOTE_BATCH);
        for message in messages.drain(..) {
            match message {
                Message::Run(work) => work(),
                Message::Unpark { task, seq } => {
                    if let Some(task) = self.task(task) {
                        task.wake_up(seq, Wake::Notified);
                    }
                }
                Message::Kill { task } => {
                    if let Some(task) = self.task(task) {
                        self.kill(&task);
                    }
                }
            }
        }
        *self.messages.borrow_mut() = messages;

        let mut fired = self.fired.take();
        let now = Instant::now();
        self.timers.borrow_mut().expire(now, |action| fired.push(action));
        for action in fired.drain(..) {
            self.fire(action);
        }
        *self.fired.borrow_mut() = fired;
        self.publish(now);
        if let (Some(seq), Some(root)) = (suspect, root) {
            // A wake-up that ran nothing (a late eventfd write for a message
            // already taken) does not end the suspicion, nor does it make a
            // warning due before the whole interval has passed.
            let still = root.state() == State::Parked && root.next_seq() == seq && self.ready.is_empty();
            let lasted = now.saturating_duration_since(self.suspected_since(seq, now)) >= DEADLOCK_WARNING_AFTER;
            if still && lasted && !self.can_be_woken() && self.deadlock_warned.replace(Some(seq)) != Some(seq) {
                let report = self.deadlock_report(root);
                crate::util::report::warn(
                    &format!(
                        "possible {report}\n(Another thread may still wake it through a `runtime::sync` value; \
                         if one does, ignore this.)"
                    ),
                    root.id(),
                    root.name().map(|n| &**n),
                );
            }
        }
        true
    }

    /// Before the hub sleeps: polls without sleeping for a while (see
    /// [`Builder::busy_poll`](crate::Builder::busy_poll); never past
    /// `timeout`), yielding the CPU before each poll. Returns whether
    /// anything came.
    ///
    /// The yield lets another runnable thread on this CPU go first: often it
    /// is the one about to send this hub work (a client, another hub), and
    /// the poll then finds that work instead of putting the hub to sleep
    /// only to be woken for it. So the hub yields once even without busy
    /// polling; with a core to itself, that costs one system call.
    ///
    /// The time allowed adapts: the whole setting after a busy poll that
    /// found work, half the last one after one that did not, down to a
    /// sixteenth. So a hub whose work comes in quick exchanges (with another
    /// hub, a thread, a local peer) never sleeps, and one whose work is
    /// sparse wastes little CPU waiting for it.
    fn busy_poll(&self, timeout: Option<Duration>, woken: &mut Vec<Unparker>, wakers: &mut Vec<Waker>) -> bool {
        let allowed = self.busy_budget.get();
        let budget = timeout.map_or(allowed, |t| t.min(allowed));
        let start = Instant::now();
        loop {
            std::thread::yield_now();
            if self.remote.has_pending()
                || (!budget.is_zero() && {
                    counters::bump(&self.counters.polls);
                    self.reactor.react(Some(Duration::ZERO), woken, wakers)
                })
            {
                self.busy_budget.set(self.config.busy_poll);
                return true;
            }
            if start.elapsed() >= budget {
                if budget == allowed {
                    self.busy_budget.set((allowed / 2).max(self.config.busy_poll / 16));
                }
                return false;
            }
        }
    }

    /// At the end of a turn, about to run greenlets again: publishes what
    /// other threads read of the hub's state (see `counters`).
    fn publish(&self, now: Instant) {
        self.busy_since.set(now);
        self.counters.runnable.store(self.ready.len(), Relaxed);
        self.counters.timers.store(self.timers.borrow().len(), Relaxed);
        self.stacks.borrow_mut().sample(now, &self.counters);
    }

    fn fire(&self, action: TimerAction) {
        match action {
            TimerAction::Unpark(unparker) => {
                unparker.time_out();
            }
            TimerAction::ScopeTimeout(task, scope) => {
                task.set_pending(Pending::Timeout(scope));
                if task.state() == State::Parked {
                    task.schedule(Wake::Notified);
                }
            }
            TimerAction::Start(task) => {
                task.start_timer().set(None);
                if task.state() == State::Delayed {
                    task.schedule(Wake::Notified);
                }
            }
        }
    }

    /// Whether this hub's thread is alone in the process (see [`alone`]):
    /// then no other thread can end a wait on a `sync` value. `None` when
    /// the threads were counted less than [`ALONE_CHECK_INTERVAL`] ago.
    fn alone(&self, now: Instant) -> Option<bool> {
        // Counting reads `/proc` (microseconds): a hub whose root waits on a
        // value other hubs keep setting would otherwise count on every turn.
        if self.alone_counted.get().is_some_and(|at| now.saturating_duration_since(at) < ALONE_CHECK_INTERVAL) {
            return None;
        }
        self.alone_counted.set(Some(now));
        let Some(idle) = self.pool.idle_threads() else { return Some(false) };
        Some(alone::process_has_threads(1 + idle + usize::from(monitor::thread_running())))
    }

    /// When the suspicion of a deadlock on the root's park `seq` began: kept
    /// while that park lasts and no greenlet has run since, restarted (at
    /// `now`) otherwise.
    fn suspected_since(&self, seq: u64, now: Instant) -> Instant {
        let switches = self.counters.switches.load(Relaxed);
        match self.suspect_since.get() {
            Some((same, since, ran)) if same == seq && ran == switches => since,
            _ => {
                self.suspect_since.set(Some((seq, now, switches)));
                now
            }
        }
    }

    /// Whether anything besides a timer could still make a greenlet runnable.
    fn can_be_woken(&self) -> bool {
        self.reactor.waiters() > 0
            || self.token_waits.get() > 0
            || self.remote.may_send()
            || self.timers.borrow().len() > 0
    }

    fn deadlock_report(&self, root: &Task) -> String {
        let now = self.ready.clock();
        let (on, _, deadline) = root.waiting();
        let mut report = format!(
            "deadlock: the main greenlet is waiting on {} but nothing can ever wake it: no greenlet is runnable, \
             no timer is armed, no greenlet waits for I/O, no thread-pool job is running and no `Handle` is alive.",
            on.describe(deadline, now)
        );
        let others: Vec<Rc<Task>> = self.tasks().into_iter().filter(|task| task.id() != root.id()).collect();
        if !others.is_empty() {
            let _ = write!(report, " Other greenlets, all parked:");
            for task in &others {
                let (on, since, deadline) = task.waiting();
                let _ = write!(
                    report,
                    "\n  {} parked {} on {} (spawned at {})",
                    task.label(),
                    Seconds(now.saturating_duration_since(since)),
                    on.describe(deadline, now),
                    task.spawned_at()
                );
            }
        }
        report.push_str(
            "\nHint: a value, permit or event this code waits for is never provided; check which greenlet was \
             meant to send, release or set it.",
        );
        report
    }

    /// Runs the loop until `root` is done. Returns false if it had to stop
    /// early: a deadlock while the root greenlet was unwinding.
    pub(crate) fn run_until_done(&self, root: &Rc<Task>) -> bool {
        loop {
            self.run_ready(Some(root));
            if root.is_done() {
                return true;
            }
            if !self.turn(Some(root), None) {
                return false;
            }
        }
    }

    /// Kills every remaining greenlet and runs the loop until they are gone,
    /// for at most the shutdown grace period (their cleanup may park). Those
    /// still alive then are reported by name and leaked: their stacks stay
    /// mapped, so nothing is freed under them, and they never run again.
    pub(crate) fn shutdown(&self) {
        let deadline = Instant::now() + self.config.shutdown_grace;
        let mut killed = 0usize;
        loop {
            let remaining = self.tasks();
            if remaining.is_empty() {
                return;
            }
            // Kill each task once (including ones spawned by cleanup code).
            let mut fresh = 0;
            for task in &remaining {
                if task.pending() != Pending::Kill && !task.is_unwinding() {
                    self.kill(task);
                    fresh += 1;
                }
            }
            if killed == 0 && fresh > 0 {
                tracing::debug!(greenlets = remaining.len(), "killing the greenlets still alive at the end of `run`");
            }
            killed += fresh;
            self.run_ready(None);
            let now = Instant::now();
            if now >= deadline || (self.ready.is_empty() && !self.can_be_woken()) {
                break;
            }
            if self.ready.is_empty() {
                self.turn(None, Some(deadline - now));
            }
        }
        self.abandon_remaining();
    }

    /// Leaks the tasks that are still alive, reporting each. A task parked
    /// in a `sync` type's queue, which other threads reach, leaves it first:
    /// what it was given or would be given goes to the next waiter.
    fn abandon_remaining(&self) {
        let now = Instant::now();
        for task in self.tasks() {
            let (on, _, deadline) = task.waiting();
            let message = format!(
                "the runtime is shutting down: greenlet {} (spawned at {}) was killed but did not finish within \
                 the shutdown grace period of {:?}; it is leaked (it was waiting on {})",
                task.label(),
                task.spawned_at(),
                self.config.shutdown_grace,
                on.describe(deadline, now)
            );
            self.leak(&task, &message);
        }
    }

    /// Leaks a task parked for good because it kept ignoring its reported
    /// kill or timeout (see `Parker::park_for_good`): it ends as killed.
    fn abandon_doomed(&self, task: &Rc<Task>) {
        let message = format!(
            "greenlet {} (spawned at {}) was killed or timed out inside code that cannot unwind (a hooked C \
             call), and went on making calls that failed with that error for {:?} after its cleanup grace of \
             {:?} ended: it is parked for good and leaked, and ends as killed. Code that retries a failed \
             call must stop when `runtime::hooks::is_cancelled(&err)` is true.",
            task.label(),
            task.spawned_at(),
            RUNAWAY_AFTER,
            self.config.cancel_grace,
        );
        self.leak(task, &message);
    }

    /// Reports `message`, then ends `task` as killed without running it
    /// again: its stack stays mapped (nothing is freed under what it
    /// borrows) and its record is forgotten.
    #[allow(unsafe_code)]
    fn leak(&self, task: &Rc<Task>, message: &str) {
        crate::util::report::warn(message, task.id(), task.name().map(|n| &**n));
        {
            if let Some(node) = task.set_node(None) {
                // SAFETY: the node lives in the frame where the task is
                // parked, on a stack that stays mapped; the task never runs
                // again, so nothing else touches the node (see `Abandon`).
                unsafe { (*node.as_ptr()).abandon() };
            }
            if let Some(greenlet) = task.release_greenlet() {
                // Never resumed and never dropped: dropping would throw into it
                // again, and freeing its stack would free what it borrows.
                std::mem::forget(greenlet);
            }
            task.abort(JoinError::killed(task.id(), task.name().map(|n| Arc::from(&**n))));
            self.forget_task(task);
        }
    }

    /// Refuses further work from other threads.
    pub(crate) fn close(&self) {
        self.remote.close();
    }
}
