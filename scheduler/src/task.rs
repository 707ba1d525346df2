//! Spawning greenlets on the hub: [`Builder`] and [`JoinHandle`].

use std::any::Any;
use std::fmt;
use std::marker::PhantomData;
use std::panic::{self, AssertUnwindSafe, Location};
use std::rc::Rc;
use std::time::{Duration, Instant};

use greenlet::{Greenlet, GreenletExit};

use crate::error::JoinError;
use crate::hub::{self, Hub, TimerAction};
use crate::park::Parker;
use crate::record::{Task, Wake};
use crate::waiting::WaitingOn;

/// Parks the current greenlet until `task` is done, or `deadline` passes.
/// Returns whether it is done. A refused park (see `park`) parks again
/// without a deadline (there is nothing else a join can do), and gives up
/// with one.
#[track_caller]
pub(crate) fn wait_finished(task: &Rc<Task>, deadline: Option<Instant>) -> bool {
    while !task.is_done() {
        let parker = Parker::current();
        if Rc::ptr_eq(parker.task(), task) {
            panic!("greenlet {} tried to join itself", task.label());
        }
        let on = WaitingOn::Join(task.id());
        let woke = match task.joiner().take() {
            None => {
                let me = parker.unparker();
                task.joiner().set(Some(me.clone()));
                let _reclaim = crate::guard::defer(|| {
                    // Still ours unless `finish` took it (or a later
                    // joiner's park replaced it).
                    match task.joiner().take() {
                        Some(joiner) if joiner.same_park(&me) => {}
                        other => task.joiner().set(other),
                    }
                });
                parker.park(on, deadline)
            }
            other => {
                task.joiner().set(other);
                parker.wait_in(task.joiners(), on, deadline).1
            }
        };
        match woke {
            Ok(Wake::Notified) => {}
            Ok(Wake::TimedOut) => return task.is_done(),
            Err(_) if deadline.is_some() => return task.is_done(),
            Err(_) => {}
        }
    }
    true
}

/// An owned permission to join a greenlet spawned on the hub.
///
/// Dropping the handle detaches the greenlet: it keeps running (the usual
/// fire-and-forget `spawn` of a connection handler, so the handle is not
/// `#[must_use]`). To tie a helper's life to its owner instead, use
/// [`kill_on_drop`](JoinHandle::kill_on_drop), a [`JoinSet`](crate::JoinSet)
/// or [`scope`](crate::scope). The handle is not `Send`: greenlets never
/// leave their hub's thread.
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
    #[track_caller]
    pub fn join(self) -> Result<T, JoinError> {
        wait_finished(&self.task, None);
        self.take()
    }

    /// Like [`join`](JoinHandle::join), giving up after `timeout`; on timeout
    /// the handle is returned.
    ///
    /// # Errors
    ///
    /// `Err(self)` if the greenlet has not finished in time.
    #[track_caller]
    pub fn join_timeout(self, timeout: Duration) -> Result<Result<T, JoinError>, JoinHandle<T>> {
        if wait_finished(&self.task, Some(Instant::now() + timeout)) { Ok(self.take()) } else { Err(self) }
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
    ///
    /// # Panics
    ///
    /// Outside the runtime the greenlet belongs to.
    #[track_caller]
    pub fn kill(&self) {
        hub::expect().kill(&self.task);
    }

    /// The greenlet's id.
    pub fn id(&self) -> u64 {
        self.task.id()
    }

    /// The greenlet's name, if it was given one.
    pub fn name(&self) -> Option<&str> {
        self.task.name().map(|name| &**name)
    }
}

/// A [`JoinHandle`] that kills its greenlet when dropped (tokio-util's
/// `AbortOnDropHandle`); see [`JoinHandle::kill_on_drop`].
#[must_use = "dropping a KillOnDrop kills the greenlet at once"]
pub struct KillOnDrop<T> {
    handle: Option<JoinHandle<T>>,
}

impl<T> JoinHandle<T> {
    /// Ties the greenlet to the returned guard: dropping the guard kills the
    /// greenlet (if it has not finished). This is the way to tie a helper
    /// greenlet to the code that needs it, say the second direction of a
    /// proxied connection to its handler: when the handler returns, panics or
    /// is killed, the helper goes too.
    ///
    /// ```
    /// use std::time::Duration;
    /// runtime_scheduler::run(|| {
    ///     let helper = runtime_scheduler::spawn(|| runtime_scheduler::sleep(Duration::from_secs(60))).kill_on_drop();
    ///     let id = helper.id();
    ///     drop(helper); // killed; it unwinds when the hub next runs it
    ///     runtime_scheduler::yield_now();
    ///     assert!(runtime_scheduler::dump().greenlets().iter().all(|g| g.id() != id));
    /// });
    /// ```
    pub fn kill_on_drop(self) -> KillOnDrop<T> {
        KillOnDrop { handle: Some(self) }
    }
}

impl<T: 'static> KillOnDrop<T> {
    /// Waits for the greenlet, as [`JoinHandle::join`]. The guard stays armed
    /// while it waits: if the caller is killed or times out meanwhile, the
    /// greenlet is killed as the caller unwinds.
    ///
    /// # Errors
    ///
    /// As [`JoinHandle::join`].
    #[track_caller]
    pub fn join(mut self) -> Result<T, JoinError> {
        // Unwinding out of this wait drops `self`, which kills the greenlet;
        // taking the handle out first would leave nothing to kill.
        wait_finished(&self.task, None);
        self.handle.take().expect("present until consumed").join()
    }

    /// Gives back the plain handle: the greenlet is no longer killed on drop.
    pub fn detach(mut self) -> JoinHandle<T> {
        self.handle.take().expect("present until consumed")
    }
}

impl<T> std::ops::Deref for KillOnDrop<T> {
    type Target = JoinHandle<T>;

    fn deref(&self) -> &JoinHandle<T> {
        self.handle.as_ref().expect("present until consumed")
    }
}

impl<T> Drop for KillOnDrop<T> {
    fn drop(&mut self) {
        if let Some(handle) = self.handle.take() {
            // Outside its runtime (which killed it at its end) there is
            // nothing left to kill.
            if let Some(hub) = hub::current() {
                hub.kill(&handle.task);
            }
        }
    }
}

impl<T> fmt::Debug for KillOnDrop<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("KillOnDrop").field(&self.handle).finish()
    }
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle")
            .field("id", &self.task.id())
            .field("name", &self.task.name())
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
    #[track_caller]
    pub fn spawn<F, T>(self, f: F) -> JoinHandle<T>
    where
        F: FnOnce() -> T + 'static,
        T: 'static,
    {
        JoinHandle::new(spawn_task(&hub::expect(), self, f, None, Location::caller()))
    }

    /// Spawns the greenlet to start after `delay`.
    ///
    /// # Panics
    ///
    /// Outside a runtime.
    #[track_caller]
    pub fn spawn_later<F, T>(self, delay: Duration, f: F) -> JoinHandle<T>
    where
        F: FnOnce() -> T + 'static,
        T: 'static,
    {
        let at = Instant::now() + delay;
        JoinHandle::new(spawn_task(&hub::expect(), self, f, Some(at), Location::caller()))
    }
}

/// Creates a task running `f` and schedules it (now, or at `start`).
pub(crate) fn spawn_task<F, T>(
    hub: &Hub,
    builder: Builder,
    f: F,
    start: Option<Instant>,
    spawned_at: &'static Location<'static>,
) -> Rc<Task>
where
    F: FnOnce() -> T + 'static,
    T: 'static,
{
    let name: Option<Rc<str>> = builder.name.map(Rc::from);
    let mut greenlet = Greenlet::builder().parent(hub.greenlet());
    if let Some(name) = &name {
        greenlet = greenlet.name(name.to_string());
    }
    greenlet = greenlet.stack_size(builder.stack_size.unwrap_or(hub.stack_size()));
    // The body finds its task through the hub (which makes it current before
    // switching in), so the closure holds nothing but `f`.
    let greenlet = greenlet.build(move |_| {
        let task = hub::expect().current_task().expect("the hub sets the current task before resuming it");
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
    let task = hub.allocate_task(Task::new(greenlet, name, spawned_at, hub.ready().clone(), span));
    hub.add_task(&task);
    tracing::trace!(parent: &task.span, "spawned");
    match start {
        None => task.schedule(Wake::Notified),
        Some(at) => {
            let timer = hub.arm_timer(at, TimerAction::Start(task.clone()));
            task.start_timer().set(Some(timer));
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
            Err(JoinError::killed(task.id(), task.name().cloned()))
        }
        Err(payload) => {
            tracing::error!(
                greenlet.id = task.id(),
                greenlet.name = task.name().map(|n| &**n),
                "greenlet panicked: {}",
                greenlet::panic_message(&*payload)
            );
            Err(JoinError::panicked(task.id(), task.name().cloned(), payload))
        }
    };
    task.set_unwinding(false);
    tracing::trace!("finished");
    task.finish(outcome);
}
