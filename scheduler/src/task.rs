//! Tasks: greenlets spawned on the hub, their join handles and builder.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::fmt;
use std::marker::PhantomData;
use std::panic::{self, AssertUnwindSafe};
use std::rc::Rc;
use std::time::{Duration, Instant};

use greenlet::{Greenlet, GreenletExit};

use crate::error::JoinError;
use crate::hub::{self, Hub};
use crate::park::{self, Wake};
use crate::timer::TimerKey;
use crate::wait_queue::WaitQueue;

/// Where a task is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum State {
    /// Spawned with a delay; a timer will schedule it.
    Delayed,
    /// In the run queue.
    Scheduled,
    /// Its greenlet is running.
    Running,
    /// Waiting for an `unpark`, a timer or a kill.
    Parked,
    /// Finished, or killed before it ran.
    Done,
}

/// What a task ended with: its value (type-erased) or why it has none.
pub(crate) type Outcome = Result<Box<dyn Any>, JoinError>;

/// The hub's record of one spawned greenlet.
pub(crate) struct Task {
    /// The greenlet's id.
    pub(crate) id: u64,
    pub(crate) name: Option<Rc<str>>,
    /// Taken when the task is done.
    greenlet: RefCell<Option<Greenlet>>,
    pub(crate) state: Cell<State>,
    /// Bumped each time the task parks; a wake-up for an older number is stale.
    pub(crate) seq: Cell<u64>,
    /// Why the task was last made runnable.
    pub(crate) wake: Cell<Wake>,
    /// What the task is parked on, for deadlock reports.
    pub(crate) waiting_on: Cell<&'static str>,
    /// Throw `GreenletExit` into it the next time it is resumed.
    pub(crate) kill_requested: Cell<bool>,
    /// The outermost `timeout` scope whose deadline passed, to be raised at the
    /// task's next park point.
    pub(crate) pending_timeout: Cell<Option<u64>>,
    /// Set on the root task when nothing can ever wake it.
    pub(crate) deadlock: RefCell<Option<String>>,
    /// The timer that starts a delayed task.
    pub(crate) start_timer: Cell<Option<TimerKey>>,
    outcome: RefCell<Option<Outcome>>,
    /// The first greenlet waiting for this one to finish (the common case, a
    /// `join`), kept inline so that it costs no allocation.
    joiner: Cell<Option<(Rc<Task>, u64)>>,
    /// More greenlets waiting for this one to finish.
    pub(crate) joiners: RefCell<WaitQueue<()>>,
    /// Index in the hub's task table.
    pub(crate) slot: Cell<usize>,
    pub(crate) span: tracing::Span,
}

impl fmt::Debug for Task {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Task")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("state", &self.state.get())
            .finish()
    }
}

impl Task {
    /// A printable "'name' (#id)" or "#id".
    pub(crate) fn label(&self) -> String {
        match &self.name {
            Some(name) => format!("'{name}' (#{})", self.id),
            None => format!("#{}", self.id),
        }
    }

    pub(crate) fn greenlet(&self) -> Option<Greenlet> {
        self.greenlet.borrow().clone()
    }

    pub(crate) fn is_done(&self) -> bool {
        self.state.get() == State::Done
    }

    /// Whether its greenlet ever ran.
    pub(crate) fn is_started(&self) -> bool {
        self.greenlet.borrow().as_ref().is_some_and(Greenlet::is_started)
    }

    /// Records how the task ended and wakes its joiners.
    pub(crate) fn finish(&self, outcome: Outcome) {
        *self.outcome.borrow_mut() = Some(outcome);
        self.state.set(State::Done);
        if let Some((task, seq)) = self.joiner.take() {
            park::unpark(&task, seq);
        }
        let woken = self.joiners.borrow_mut().complete_all(|()| {});
        for (task, seq) in woken {
            park::unpark(&task, seq);
        }
    }

    pub(crate) fn take_outcome(&self) -> Option<Outcome> {
        self.outcome.borrow_mut().take()
    }

    /// Drops the greenlet of a finished task (its stack went back to the pool
    /// when it finished).
    pub(crate) fn release_greenlet(&self) -> Option<Greenlet> {
        self.greenlet.borrow_mut().take()
    }

    /// Parks the current greenlet until this task is done.
    pub(crate) fn wait_done(self: &Rc<Task>, deadline: Option<Instant>) -> bool {
        while !self.is_done() {
            let parker = park::parker();
            if Rc::ptr_eq(parker.task(), self) {
                panic!("greenlet {} tried to join itself", self.label());
            }
            let wake = match self.joiner.take() {
                None => {
                    self.joiner.set(Some((parker.task().clone(), parker.seq())));
                    let _reclaim = scopeguard(|| {
                        // Still ours unless `finish` took it (or a later
                        // joiner's park replaced it).
                        match self.joiner.take() {
                            Some((task, seq)) if Rc::ptr_eq(&task, parker.task()) && seq == parker.seq() => {}
                            other => self.joiner.set(other),
                        }
                    });
                    parker.park("JoinHandle::join", deadline)
                }
                other => {
                    self.joiner.set(other);
                    let key = self.joiners.borrow_mut().push(parker.task().clone(), parker.seq(), ());
                    let _reclaim = scopeguard(|| {
                        self.joiners.borrow_mut().reclaim(key);
                    });
                    parker.park("JoinHandle::join", deadline)
                }
            };
            if wake != Wake::Notified {
                return self.is_done();
            }
        }
        true
    }

    /// Kills the task: see [`JoinHandle::kill`].
    pub(crate) fn kill(self: &Rc<Task>) {
        match self.state.get() {
            State::Done => {}
            _ if !self.is_started() => {
                // Never ran: it never will. Dropping the pending greenlet drops
                // the closure without running it.
                if let Some(timer) = self.start_timer.take() {
                    hub::with(|hub| hub.timers.borrow_mut().cancel(timer));
                }
                drop(self.release_greenlet());
                tracing::debug!(greenlet.id = self.id, greenlet.name = self.name.as_deref(), "killed before it ran");
                self.finish(Err(JoinError::killed(self.id, self.name.clone())));
                hub::with(|hub| hub.forget_task(self));
            }
            State::Running => {
                if hub::with(|hub| hub.is_current(self)) {
                    // Killing oneself: unwind right here.
                    panic::resume_unwind(Box::new(GreenletExit));
                }
                self.kill_requested.set(true);
            }
            State::Parked => {
                self.kill_requested.set(true);
                hub::with(|hub| hub.schedule(self.clone(), Wake::Notified));
            }
            State::Scheduled | State::Delayed => self.kill_requested.set(true),
        }
    }
}

/// Runs `f` when dropped.
pub(crate) fn scopeguard<F: FnOnce()>(f: F) -> impl Drop {
    struct Guard<F: FnOnce()>(Option<F>);
    impl<F: FnOnce()> Drop for Guard<F> {
        fn drop(&mut self) {
            if let Some(f) = self.0.take() {
                f();
            }
        }
    }
    Guard(Some(f))
}

/// An owned permission to join a greenlet spawned on the hub.
///
/// Dropping the handle detaches the greenlet: it keeps running. The handle is
/// not `Send`: greenlets never leave their hub's thread.
#[must_use = "dropping a JoinHandle detaches the greenlet; use `join` to wait for it"]
pub struct JoinHandle<T> {
    pub(crate) task: Rc<Task>,
    _marker: PhantomData<T>,
}

impl<T: 'static> JoinHandle<T> {
    /// Parks the calling greenlet until the spawned one finishes, and returns
    /// its value.
    ///
    /// # Errors
    ///
    /// A [`JoinError`] if it panicked (the panic is logged, and its payload is
    /// in the error) or was killed.
    ///
    /// # Panics
    ///
    /// If called outside a greenlet of the runtime, or by the greenlet on
    /// itself.
    pub fn join(self) -> Result<T, JoinError> {
        if !self.task.wait_done(None) {
            panic!("`JoinHandle::join` cannot wait while the calling greenlet is unwinding");
        }
        self.take()
    }

    /// Like [`join`](JoinHandle::join), giving up after `timeout`; on timeout
    /// the handle is returned.
    ///
    /// # Errors
    ///
    /// `Err(self)` if the greenlet has not finished in time.
    pub fn join_timeout(self, timeout: Duration) -> Result<Result<T, JoinError>, JoinHandle<T>> {
        if self.task.wait_done(Some(Instant::now() + timeout)) { Ok(self.take()) } else { Err(self) }
    }

    fn take(self) -> Result<T, JoinError> {
        let outcome = self.task.take_outcome().expect("a finished greenlet has an outcome, taken once");
        if let Some(hub) = hub::current() {
            hub.recycle_task(self.task);
        }
        outcome.map(|value| *value.downcast::<T>().expect("the outcome has the handle's type"))
    }
}

impl<T> JoinHandle<T> {
    pub(crate) fn new(task: Rc<Task>) -> JoinHandle<T> {
        JoinHandle { task, _marker: PhantomData }
    }

    /// Whether the greenlet has finished (returned, panicked or been killed).
    pub fn is_finished(&self) -> bool {
        self.task.is_done()
    }

    /// Kills the greenlet: `GreenletExit` is thrown at the point where it is
    /// parked, so it unwinds and its destructors run; a greenlet that has not
    /// started yet never runs. `join` then returns an error for which
    /// [`JoinError::is_killed`] is true. Does nothing if it already finished.
    ///
    /// The kill is delivered when the hub next runs the greenlet; this call
    /// does not wait. A greenlet that never parks cannot be killed (as in
    /// gevent). Killing the current greenlet unwinds it at once.
    pub fn kill(&self) {
        self.task.kill();
    }

    /// The greenlet's id.
    pub fn id(&self) -> u64 {
        self.task.id
    }

    /// The greenlet's name, if it was given one.
    pub fn name(&self) -> Option<&str> {
        self.task.name.as_deref()
    }
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle")
            .field("id", &self.task.id)
            .field("name", &self.task.name)
            .field("finished", &self.is_finished())
            .finish()
    }
}

/// Configures a greenlet before spawning it.
///
/// ```
/// runtime_scheduler::run(|| {
///     let handle = runtime_scheduler::task::Builder::new().name("worker").stack_size(128 * 1024).spawn(|| 42);
///     assert_eq!(handle.name(), Some("worker"));
///     assert_eq!(handle.join().unwrap(), 42);
/// });
/// ```
#[derive(Debug, Default, Clone)]
#[must_use = "a builder does nothing until `spawn` is called"]
pub struct Builder {
    name: Option<String>,
    stack_size: Option<usize>,
}

impl Builder {
    /// A builder for an unnamed greenlet with the runtime's stack size.
    pub fn new() -> Builder {
        Builder::default()
    }

    /// Names the greenlet; the name appears in tracing spans, panic and
    /// deadlock reports and stack overflow messages.
    pub fn name(mut self, name: impl Into<String>) -> Builder {
        self.name = Some(name.into());
        self
    }

    /// Sets the greenlet's stack size in bytes (rounded up to pages).
    pub fn stack_size(mut self, bytes: usize) -> Builder {
        self.stack_size = Some(bytes);
        self
    }

    /// Spawns the greenlet on the current hub. It first runs when the spawner
    /// parks or yields.
    ///
    /// # Panics
    ///
    /// Outside a runtime.
    pub fn spawn<F, T>(self, f: F) -> JoinHandle<T>
    where
        F: FnOnce() -> T + 'static,
        T: 'static,
    {
        hub::with(|hub| JoinHandle::new(spawn_task(hub, self, f, None)))
    }

    /// Spawns the greenlet to start after `delay`.
    ///
    /// # Panics
    ///
    /// Outside a runtime.
    pub fn spawn_later<F, T>(self, delay: Duration, f: F) -> JoinHandle<T>
    where
        F: FnOnce() -> T + 'static,
        T: 'static,
    {
        hub::with(|hub| JoinHandle::new(spawn_task(hub, self, f, Some(Instant::now() + delay))))
    }
}

/// Creates a task running `f` and schedules it (now, or at `start`).
pub(crate) fn spawn_task<F, T>(hub: &Hub, builder: Builder, f: F, start: Option<Instant>) -> Rc<Task>
where
    F: FnOnce() -> T + 'static,
    T: 'static,
{
    let name: Option<Rc<str>> = builder.name.map(Rc::from);
    let mut greenlet = Greenlet::builder().parent(&hub.greenlet);
    if let Some(name) = &name {
        greenlet = greenlet.name(name.to_string());
    }
    greenlet = greenlet.stack_size(builder.stack_size.unwrap_or(hub.config.stack_size));
    // The body finds its task through the hub (which makes it current before
    // switching in), so the closure holds nothing but `f`.
    let greenlet = greenlet.build(move |_| {
        let task = hub::with(|hub| hub.current_task()).expect("the hub sets the current task before resuming it");
        run_body(&task, f);
        Box::new(())
    });
    // Root spans: a greenlet is not part of the one that spawned it (a
    // connection outlives its accept loop's current iteration). Debug level:
    // entering and leaving a span on every switch is not free, so at the
    // usual `info` level they are off (warnings and errors about a greenlet
    // carry its id and name as fields anyway).
    let span = match &name {
        Some(name) => tracing::debug_span!(parent: None, "greenlet", id = greenlet.id(), name = &**name),
        None => tracing::debug_span!(parent: None, "greenlet", id = greenlet.id()),
    };
    let task = hub.allocate_task(Task {
        id: greenlet.id(),
        name,
        greenlet: RefCell::new(Some(greenlet)),
        state: Cell::new(State::Delayed),
        seq: Cell::new(0),
        wake: Cell::new(Wake::Notified),
        waiting_on: Cell::new(""),
        kill_requested: Cell::new(false),
        pending_timeout: Cell::new(None),
        deadlock: RefCell::new(None),
        start_timer: Cell::new(None),
        outcome: RefCell::new(None),
        joiner: Cell::new(None),
        joiners: RefCell::new(WaitQueue::new()),
        slot: Cell::new(usize::MAX),
        span,
    });
    hub.register_task(&task);
    tracing::trace!(parent: &task.span, "spawned");
    match start {
        None => hub.schedule(task.clone(), Wake::Notified),
        Some(at) => {
            let timer = hub.timers.borrow_mut().insert(at, hub::TimerAction::Start(task.clone()));
            task.start_timer.set(Some(timer));
        }
    }
    task
}

/// The body of every task's greenlet: runs `f`, records the outcome.
fn run_body<F, T>(task: &Rc<Task>, f: F)
where
    F: FnOnce() -> T,
    T: 'static,
{
    let outcome = match panic::catch_unwind(AssertUnwindSafe(f)) {
        Ok(value) => Ok(Box::new(value) as Box<dyn Any>),
        Err(payload) if payload.is::<GreenletExit>() => {
            tracing::debug!("killed");
            Err(JoinError::killed(task.id, task.name.clone()))
        }
        Err(payload) => {
            tracing::error!(
                greenlet.id = task.id,
                greenlet.name = task.name.as_deref(),
                "greenlet panicked: {}",
                greenlet::panic_message(&*payload)
            );
            Err(JoinError::panicked(task.id, task.name.clone(), payload))
        }
    };
    tracing::trace!("finished");
    task.finish(outcome);
}
