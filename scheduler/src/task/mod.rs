//! Spawning greenlets on the hub: [`Builder`], and the [`JoinHandle`] it
//! returns.

// What this module owns: a greenlet's lifecycle above the park seam:
// spawning (`Builder`, here), joining (`join`: `JoinHandle` and the shared
// state any thread may wait on; `outcome`: the result slot; `join_pool`:
// reused join states), spawning from other threads (`handle`), links
// (`link`: what runs when a greenlet finishes), and sets of greenlets
// (`all`: `joinall` and its kin, `killall`, `wait_idle`; `group`: `Group`; `pool`: `Pool` and its mapping methods, with
// `imap`; `scope`; `join_set`).
// It uses the hub, the park seam and the `sync` types below it (a `Pool` is
// a `Semaphore`, a `JoinSet` a channel, and `join` teaches `Select` to wait
// for a `JoinHandle`). What it must not know: nothing below calls into it;
// the hub sees a task only as its record and its `Completion`.

pub(crate) mod all;
pub(crate) mod group;
pub(crate) mod handle;
pub(crate) mod imap;
pub(crate) mod join;
pub(crate) mod join_pool;
pub(crate) mod join_set;
pub(crate) mod link;
pub(crate) mod outcome;
pub(crate) mod pool;
pub(crate) mod scope;

use std::panic::{self, AssertUnwindSafe, Location};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use greenlet::{Greenlet, GreenletExit};

use crate::error::JoinError;
use crate::hub::completion::ErasedCompletion;
use crate::hub::record::{Pending, Task, Wake};
use crate::hub::waiting::WaitingOn;
use crate::hub::{self, Hub, TimerAction};
use crate::park::{Parked, Parker};
pub use crate::task::imap::Imap;
use crate::task::join::JoinShared;
pub use crate::task::join::{JoinHandle, KillOnDrop};
pub use crate::task::link::LinkId;

/// Parks the current greenlet until `task` is done, or `deadline` passes.
/// Returns whether it is done. A refused park (see `park`) parks again
/// without a deadline (there is nothing else a join can do), and gives up
/// with one.
///
/// The common case, the only joiner, parks in the caller's frame: no call
/// level to return through after the switch (see `Hub::switch_to_hub`).
#[track_caller]
#[cfg_attr(not(debug_assertions), inline(always))]
pub(crate) fn wait_finished(task: &Rc<Task>, deadline: Option<Instant>) -> bool {
    while !task.is_done() {
        let parker = Parker::current();
        let joiner = task.joiner().take();
        if joiner.is_some() || Rc::ptr_eq(parker.task(), task) {
            task.joiner().set(joiner);
            return wait_finished_among(task, deadline);
        }
        let me = parker.unparker();
        task.joiner().set(Some(me.clone()));
        let reclaim = crate::util::guard::defer(|| reclaim_joiner(task, &me));
        let woke = parker.park(WaitingOn::Join(task.id()), deadline);
        drop(reclaim);
        if join_wait_ends(woke, deadline) {
            return task.is_done();
        }
    }
    true
}

/// Whether a join's wait ends after a park that returned `woke`: it timed
/// out, or was refused while the join has a deadline (without one, there is
/// nothing to do but park again).
#[cfg_attr(not(debug_assertions), inline(always))]
fn join_wait_ends(woke: Parked, deadline: Option<Instant>) -> bool {
    match woke {
        Ok(Wake::Notified) => false,
        Ok(Wake::TimedOut) => true,
        Err(_) => deadline.is_some(),
    }
}

/// After a join's park: the joiner slot is cleared unless `finish` took it
/// (or a later joiner's park replaced it).
fn reclaim_joiner(task: &Task, me: &crate::hub::unpark::Unparker) {
    match task.joiner().take() {
        Some(joiner) if joiner.same_park(me) => {}
        other => task.joiner().set(other),
    }
}

/// [`wait_finished`] while another greenlet is joining `task` too (or the
/// caller is `task` itself).
#[track_caller]
#[inline(never)]
fn wait_finished_among(task: &Rc<Task>, deadline: Option<Instant>) -> bool {
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
                let _reclaim = crate::util::guard::defer(|| reclaim_joiner(task, &me));
                parker.park(on, deadline)
            }
            other => {
                task.joiner().set(other);
                parker.wait_in(task.joiners(), on, deadline).1
            }
        };
        if join_wait_ends(woke, deadline) {
            return task.is_done();
        }
    }
    true
}

/// Configures a greenlet before spawning it.
///
/// ```
/// runtime::run(|| {
///     let handle = runtime::task::Builder::new().name("worker").stack_size(128 * 1024).spawn(|| 42);
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
        spawn_task(&hub::expect(), self, f, None, Location::caller(), false).1
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
        spawn_task(&hub::expect(), self, f, Some(at), Location::caller(), false).1
    }
}

/// Creates a task running `f` and schedules it (now, or at `start`); with
/// `keep`, returns its record too.
pub(crate) fn spawn_task<F, T>(
    hub: &Hub,
    builder: Builder,
    f: F,
    start: Option<Instant>,
    spawned_at: &'static Location<'static>,
    keep: bool,
) -> (Option<Rc<Task>>, JoinHandle<T>)
where
    F: FnOnce() -> T + 'static,
    T: 'static,
{
    let (id, name) = (hub.reactor().id(), builder.name.as_deref().map(Arc::from));
    let shared = match join_pool::reuse::<T>(hub.ready(), id, name.clone()) {
        Some(shared) => shared,
        None => JoinShared::new(id, name),
    };
    let spawner = if keep { Spawner::Keeping } else { Spawner::Local };
    let task = spawn_into(hub, builder, f, start, spawned_at, shared.clone(), spawner);
    (task, JoinHandle::new(shared))
}

/// Who asks [`spawn_into`] for a task.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Spawner {
    /// A greenlet of the hub, which does not keep the task's record.
    Local,
    /// A greenlet of the hub, which keeps the record (a scope, `run`).
    Keeping,
    /// Another thread (`Handle::spawn`), whose handle may be in use there.
    Remote,
}

/// Creates a task running `f` whose outcome goes to `shared` (made by the
/// spawner, on another thread for `Spawner::Remote`), and schedules it;
/// returns its record for `Spawner::Keeping`. (Otherwise the run queue gets
/// the spawner's reference to it rather than a clone: every clone and drop
/// writes the count all references share.)
pub(crate) fn spawn_into<F, T>(
    hub: &Hub,
    builder: Builder,
    f: F,
    start: Option<Instant>,
    spawned_at: &'static Location<'static>,
    shared: Arc<JoinShared<T>>,
    spawner: Spawner,
) -> Option<Rc<Task>>
where
    F: FnOnce() -> T + 'static,
    T: 'static,
{
    let name: Option<Rc<str>> = builder.name.map(Rc::from);
    let stack_size = builder.stack_size.unwrap_or(hub.stack_size());
    // The body finds its task through the hub (which makes it current before
    // switching in), and its outcome's place through the task. If the
    // greenlet never runs (killed before it started, leaked at shutdown), the
    // hub fails the outcome through the task.
    let body = move |_| -> greenlet::Value {
        let task = hub::running_task().expect("the hub sets the current task before resuming it");
        run_body::<F, T>(&task, f);
        Box::new(())
    };
    // A recycled record's finished greenlet runs the new body if it can (it
    // keeps its name and stack size), else a new greenlet does.
    let recycled = hub.recycled_task();
    let spare = recycled.as_ref().and_then(|task| task.take_spare());
    let greenlet =
        match spare.filter(|spare| name.is_none() && spare.name().is_none() && spare.stack_size() == stack_size) {
            Some(mut spare) => match spare.revive(body) {
                Ok(()) => spare,
                Err(body) => new_greenlet(hub, name.as_deref(), stack_size, body),
            },
            None => new_greenlet(hub, name.as_deref(), stack_size, body),
        };
    // Root spans: a greenlet is not part of the one that spawned it (a
    // connection outlives its accept loop's current iteration). Debug level:
    // entering and leaving a span on every switch is not free, so at the
    // usual `info` level they are off (warnings and errors about a greenlet
    // carry its id and name as fields anyway).
    let span = match &name {
        Some(name) => tracing::debug_span!(parent: None, "greenlet", id = greenlet.id(), name = &**name),
        None => tracing::debug_span!(parent: None, "greenlet", id = greenlet.id()),
    };
    let key_and_id = |task: &Task| (task.key().expect("just added"), task.id());
    let completion = ErasedCompletion::new(shared);
    let task = hub.new_task(recycled, greenlet, name, spawned_at, span, completion);
    hub.add_task(&task);
    let (key, id) = key_and_id(&task);
    let remote = spawner == Spawner::Remote;
    let keep = spawner == Spawner::Keeping;
    let killed_early = joined::<T>(&task).is_some_and(|shared| shared.started(id, key, remote));
    tracing::trace!(parent: &task.span, "spawned");
    let kept = (keep || killed_early).then(|| task.clone());
    match start {
        None => task.schedule_owned(Wake::Notified, hub.ready()),
        Some(at) => {
            let timer = hub.arm_timer(at, TimerAction::Start(task.clone()));
            task.start_timer().set(Some(timer));
        }
    }
    if let Some(task) = kept.as_ref().filter(|_| killed_early) {
        hub.kill(task);
    }
    kept.filter(|_| keep)
}

/// A greenlet of the hub `hub` running `body`.
fn new_greenlet(
    hub: &Hub,
    name: Option<&str>,
    stack_size: usize,
    body: impl FnOnce(greenlet::Value) -> greenlet::Value + 'static,
) -> Greenlet {
    let mut builder = Greenlet::builder().parent(hub.greenlet()).stack_size(stack_size);
    if let Some(name) = name {
        builder = builder.name(name);
    }
    builder.build(body)
}

/// The typed join state of `task`, while it runs.
fn joined<T: 'static>(task: &Task) -> Option<std::cell::Ref<'_, JoinShared<T>>> {
    std::cell::Ref::filter_map(task.completion(), |completion| {
        completion.as_ref().and_then(ErasedCompletion::downcast_ref::<JoinShared<T>>)
    })
    .ok()
}

/// The body of every task's greenlet: runs `f`, records the outcome.
fn run_body<F, T>(task: &Rc<Task>, f: F)
where
    F: FnOnce() -> T,
    T: 'static,
{
    // Only errors carry the name: looked up when one happens.
    let name = || joined::<T>(task).and_then(|shared| shared.name_for_error());
    let outcome = match panic::catch_unwind(AssertUnwindSafe(f)) {
        // A kill that a foreign wait reported as an error (it could not
        // unwind there) and that no park has raised since: the greenlet ends
        // as killed all the same.
        Ok(_) if task.reported() == Pending::Kill => {
            task.take_pending();
            tracing::debug!("killed");
            match joined::<T>(task).and_then(|shared| shared.take_kill_payload()) {
                Some(payload) => Err(JoinError::panicked(task.id(), name(), payload)),
                None => Err(JoinError::killed(task.id(), name())),
            }
        }
        Ok(value) => Ok(value),
        Err(payload) if payload.is::<GreenletExit>() => {
            tracing::debug!("killed");
            Err(JoinError::killed(task.id(), name()))
        }
        Err(payload) if joined::<T>(task).is_some_and(|shared| shared.is_kill_payload(&*payload)) => {
            tracing::debug!("killed with a payload");
            Err(JoinError::panicked(task.id(), name(), payload))
        }
        Err(payload) => {
            tracing::error!(
                greenlet.id = task.id(),
                greenlet.name = task.name().map(|n| &**n),
                "greenlet panicked: {}",
                greenlet::panic_message(&*payload)
            );
            Err(JoinError::panicked(task.id(), name(), payload))
        }
    };
    task.set_unwinding(false);
    tracing::trace!("finished");
    // The outcome first, then the task is done (which drops its reference to
    // the join state, so a joiner is usually its last holder).
    if let Some(shared) = joined::<T>(task) {
        shared.complete(outcome);
    }
    task.finish();
}
