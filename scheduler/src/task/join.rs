//! [`JoinHandle`]: a greenlet's result, which any thread may wait for, and
//! its kill switch, which any thread may use.
//!
//! The result lives in a [`JoinShared`] that the handle and the greenlet
//! share (an `Arc`), with a wait queue of [`Wakeup`]s: a greenlet of any hub
//! parks on it, a plain thread blocks. A kill from the greenlet's own hub
//! thread goes straight to the hub; from anywhere else it travels through
//! the hub's remote queue, and the hub delivers it.

use std::any::Any;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::error::JoinError;
use crate::hub;
use crate::hub::completion::Completion;
use crate::hub::record::Task;
use crate::hub::remote::Message;
use crate::hub::wait_queue::{WaitKey, WaitQueue};
use crate::hub::waiting::WaitingOn;
use crate::park::Parker;
use crate::park::wait::{self, Waiter, Wakeup};
use crate::sync::{Select, Waitable, select::Watch, select::private};
use crate::task::link;
use crate::task::outcome::OutcomeSlot;
use crate::task::wait_finished;
use crate::util::slab::Key;

/// What a greenlet and its handle share.
pub(crate) struct JoinShared<T> {
    /// The id of the hub the greenlet runs on (its reactor's).
    hub: u64,
    /// The greenlet's id; 0 until its hub has created it (a spawn from
    /// another thread).
    id: AtomicU64,
    name: Option<Arc<str>>,
    /// The outcome, stored once by the greenlet's hub and taken once by
    /// the handle. It also records whether anyone queued in
    /// `state.waiters`: only then does `complete` take the lock to wake
    /// them.
    outcome: OutcomeSlot<Result<T, JoinError>>,
    /// The greenlet's key in its hub's task table ([`Key::to_bits`]), or
    /// [`NO_TASK`] until the hub has created it.
    task: AtomicU64,
    /// A kill that came before the hub created the greenlet.
    kill_requested: AtomicBool,
    /// Whether the greenlet has links (`task::link`): only then does
    /// `complete` look them up. Only the greenlet's hub thread touches it.
    linked: AtomicBool,
    state: Mutex<JoinState>,
}

/// `JoinShared::task` before the hub has created the greenlet.
const NO_TASK: u64 = u64::MAX;

struct JoinState {
    /// Waiters from other threads or hubs (a join on the greenlet's own hub
    /// waits on the task itself).
    waiters: WaitQueue<(), Wakeup>,
    /// What [`JoinHandle::kill_with`] unwinds the greenlet with.
    kill_payload: Option<Box<dyn Any + Send>>,
    /// The address of the last such payload handed out, to tell it from a
    /// panic of the greenlet's own when it ends.
    delivered: Option<usize>,
}

impl<T> JoinShared<T> {
    pub(crate) fn new(hub: u64, name: Option<Arc<str>>) -> Arc<JoinShared<T>> {
        Arc::new(JoinShared {
            hub,
            id: AtomicU64::new(0),
            name,
            outcome: OutcomeSlot::new(hub),
            task: AtomicU64::new(NO_TASK),
            kill_requested: AtomicBool::new(false),
            linked: AtomicBool::new(false),
            state: Mutex::new(JoinState { waiters: WaitQueue::new(), kill_payload: None, delivered: None }),
        })
    }

    /// Makes a finished state (nobody else refers to) as good as new.
    pub(crate) fn reset(&mut self, hub: u64, name: Option<Arc<str>>) {
        self.hub = hub;
        *self.id.get_mut() = 0;
        self.name = name;
        self.outcome.reset(hub); // drops a value nobody joined for
        *self.task.get_mut() = NO_TASK;
        *self.kill_requested.get_mut() = false;
        *self.linked.get_mut() = false;
        let state = self.state.get_mut().unwrap_or_else(std::sync::PoisonError::into_inner);
        debug_assert!(state.waiters.len() == 0, "nobody waits on a finished greenlet");
        state.kill_payload = None;
        state.delivered = None;
    }

    fn lock(&self) -> wait::Locked<'_, JoinState> {
        wait::lock(&self.state)
    }

    /// Locks the waiters to queue one, and marks the outcome waited for, so
    /// that a `complete` from now on wakes the queue. Returns `None` (and
    /// unlocks) if the outcome is there already.
    fn lock_to_wait(&self) -> Option<wait::Locked<'_, JoinState>> {
        let state = self.lock();
        if self.outcome.wait() { None } else { Some(state) }
    }

    /// Records the greenlet the hub created; returns whether it was killed
    /// before that. `remote` says whether the handle was made on another
    /// thread (`Handle::spawn`) and may already be in use there.
    pub(crate) fn started(&self, id: u64, task: Key, remote: bool) -> bool {
        if !remote {
            // Nobody else has the handle yet: no race with `kill`.
            self.id.store(id, Ordering::Relaxed);
            self.task.store(task.to_bits(), Ordering::Relaxed);
            return false;
        }
        self.id.store(id, Ordering::Release);
        // `SeqCst` with `kill`: either it sees the task, or this sees its
        // request (or both: killing twice is harmless).
        self.task.store(task.to_bits(), Ordering::SeqCst);
        self.kill_requested.load(Ordering::SeqCst)
    }

    /// The greenlet's key in its hub's task table, once created.
    fn task(&self) -> Option<Key> {
        let bits = self.task.load(Ordering::SeqCst);
        (bits != NO_TASK).then(|| Key::from_bits(bits))
    }

    /// Stores the outcome and wakes every waiter, after firing the links.
    pub(crate) fn complete(&self, outcome: Result<T, JoinError>)
    where
        T: 'static,
    {
        if self.outcome.is_set() {
            return; // completed already (a leaked greenlet's, say)
        }
        if self.linked.swap(false, Ordering::Relaxed) {
            link::fire(self, &outcome);
        }
        self.store(outcome);
    }

    /// Stores the outcome (unless stored already) and wakes every waiter.
    fn store(&self, outcome: Result<T, JoinError>) {
        if let Ok(true) = self.outcome.put(outcome) {
            self.lock().waiters.complete_all(|()| {});
        }
    }

    /// The id of the greenlet's hub (its reactor's).
    pub(crate) fn hub_id(&self) -> u64 {
        self.hub
    }

    /// Notes that the greenlet has links to fire (on its hub thread).
    pub(crate) fn set_linked(&self) {
        self.linked.store(true, Ordering::Relaxed);
    }

    /// `f` of the outcome, if it is there and not taken.
    pub(crate) fn peek_outcome<R>(&self, f: impl FnOnce(&Result<T, JoinError>) -> R) -> Option<R> {
        self.outcome.peek(f)
    }

    /// The payload of a [`JoinHandle::kill_with`], taken once.
    pub(crate) fn take_kill_payload(&self) -> Option<Box<dyn Any + Send>> {
        let mut state = self.lock();
        let payload = state.kill_payload.take()?;
        state.delivered = Some(payload_address(&*payload));
        Some(payload)
    }

    /// Whether `payload` is the one a `kill_with` unwound the greenlet with
    /// (a kill, not a panic of its own, for the log).
    pub(crate) fn is_kill_payload(&self, payload: &(dyn Any + Send)) -> bool {
        std::mem::size_of_val(payload) > 0 && self.lock().delivered == Some(payload_address(payload))
    }

    /// Ends a greenlet that was never created (its spawn's work was
    /// dropped unrun) as killed, on whatever thread dropped the work: the
    /// hub's while it stops, or another one (a `Handle::spawn` that found
    /// the hub closed just after queueing it).
    ///
    /// Call it at most once, and only for a greenlet its hub never created.
    /// (Links, which only a greenlet's own hub makes, are not fired here.)
    #[allow(unsafe_code)]
    pub(crate) fn abandon(&self) {
        let outcome = Err(JoinError::killed(self.id.load(Ordering::Acquire), self.name.clone()));
        // SAFETY: the greenlet was never created, so its hub never stores an
        // outcome here; the caller abandons once, so this is the only store.
        if let Ok(true) = unsafe { self.outcome.put_in_place_of_writer(outcome) } {
            self.lock().waiters.complete_all(|()| {});
        }
    }

    pub(crate) fn is_done(&self) -> bool {
        self.outcome.is_set()
    }

    /// Wakes `wakeup` when the greenlet finishes (for `Select`, which looks
    /// at `is_done` again after watching).
    pub(crate) fn watch(&self, wakeup: Wakeup) -> WaitKey {
        let mut state = self.lock();
        // Queued even if done already: the select sees that when it looks.
        self.outcome.wait();
        state.waiters.push(wakeup, ())
    }

    /// Takes back what [`watch`](JoinShared::watch) registered.
    pub(crate) fn unwatch(&self, key: WaitKey) {
        self.lock().waiters.reclaim(key);
    }

    pub(crate) fn name_for_error(&self) -> Option<Arc<str>> {
        self.name.clone()
    }
}

/// The address of a payload's value.
fn payload_address(payload: &(dyn Any + Send)) -> usize {
    std::ptr::from_ref(payload).cast::<()>() as usize
}

impl<T: 'static> Completion for JoinShared<T> {
    fn fail(&self, error: JoinError) {
        // Killed before it ran by a `kill_with`: it ends with that panic.
        let error = match self.take_kill_payload() {
            Some(payload) if error.is_killed() => JoinError::panicked(error.id(), self.name.clone(), payload),
            _ => error,
        };
        self.complete(Err(error));
    }

    fn take_kill_payload(&self) -> Option<Box<dyn std::any::Any + Send>> {
        JoinShared::take_kill_payload(self)
    }
}

/// An owned permission to join a greenlet, and to kill it.
///
/// Dropping the handle detaches the greenlet: it keeps running (the usual
/// fire-and-forget `spawn` of a connection handler, so the handle is not
/// `#[must_use]`). To tie a helper's life to its owner instead, use
/// [`kill_on_drop`](JoinHandle::kill_on_drop), a [`JoinSet`](crate::JoinSet)
/// or [`scope`](crate::scope).
///
/// The handle is `Send + Sync` when `T: Send`: it may be joined, polled or
/// used to kill from another hub or a plain thread (which blocks in `join`).
/// The greenlet itself never leaves its hub's thread.
///
/// ```
/// use std::time::Duration;
///
/// runtime::run(|| {
///     let sleeper = runtime::spawn(|| runtime::sleep(Duration::from_secs(60)));
///     runtime::yield_now(); // it starts, and parks in `sleep`
///     sleeper.kill(); // it unwinds from there, running its destructors
///     assert!(sleeper.join().unwrap_err().is_killed());
///
///     // Joined from a plain thread, which blocks until the greenlet is done.
///     let answer = runtime::spawn(|| 6 * 7);
///     let thread = std::thread::spawn(move || answer.join().unwrap());
///     assert_eq!(runtime::blocking(move || thread.join().unwrap()), 42);
/// });
/// ```
pub struct JoinHandle<T> {
    pub(crate) shared: Arc<JoinShared<T>>,
}

impl<T> JoinHandle<T> {
    pub(crate) fn new(shared: Arc<JoinShared<T>>) -> JoinHandle<T> {
        JoinHandle { shared }
    }

    /// Waits until the greenlet finishes and returns its value: a greenlet
    /// parks, a plain thread blocks.
    ///
    /// # Errors
    ///
    /// A [`JoinError`] if it panicked (the panic is logged, and its payload is
    /// in the error) or was killed.
    ///
    /// # Panics
    ///
    /// If a greenlet joins itself; on a hub's thread outside its greenlets.
    #[track_caller]
    pub fn join(self) -> Result<T, JoinError> {
        self.wait(None);
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
        if self.wait(Some(Instant::now() + timeout)) { Ok(self.take()) } else { Err(self) }
    }

    /// Waits until done or `deadline`; returns whether done. A refused park
    /// (see `park`) waits on without a deadline (a join has nothing else to
    /// do) and gives up with one.
    ///
    /// A join on the greenlet's own hub parks in the caller's frame (see
    /// `wait_finished`).
    #[track_caller]
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub(crate) fn wait(&self, deadline: Option<Instant>) -> bool {
        if self.shared.is_done() {
            return true;
        }
        if let Some((hub, task)) = self.local_hub_and_task() {
            // On its own hub: wait on the task itself (no lock, no atomics).
            // It stores its outcome before anyone it wakes runs.
            let done = wait_finished(&task, deadline) && self.shared.is_done();
            // Usually the last reference to the finished task: its record
            // is reused by the next spawn.
            hub.recycle_task(task);
            return done;
        }
        self.wait_elsewhere(deadline)
    }

    /// [`wait`](JoinHandle::wait) for a greenlet of another hub (or from a
    /// plain thread): through the shared state's lock.
    #[track_caller]
    #[inline(never)]
    fn wait_elsewhere(&self, deadline: Option<Instant>) -> bool {
        let waiter = Waiter::current();
        if let Waiter::Greenlet(parker) = &waiter {
            self.refuse_self_join(parker);
        }
        loop {
            let Some(state) = self.shared.lock_to_wait() else { return true };
            let on = WaitingOn::Join(self.id());
            let waited =
                wait::wait_in(&waiter, &self.shared.state, state, |s| &mut s.waiters, (), on, deadline, |_, ()| {});
            if waited.completed || self.shared.is_done() {
                return true;
            }
            if waited.gave_up() && deadline.is_some() {
                return false;
            }
        }
    }

    #[track_caller]
    fn refuse_self_join(&self, parker: &Parker) {
        let me = parker.task();
        if hub::reactor_id() == self.shared.hub && self.shared.task() == me.key() {
            panic!("greenlet {} tried to join itself", me.label());
        }
    }

    fn take(self) -> Result<T, JoinError> {
        self.shared.outcome.take().expect("a finished greenlet has an outcome, taken once")
    }

    /// Whether the greenlet has finished (returned, panicked or been killed).
    pub fn is_finished(&self) -> bool {
        self.shared.is_done()
    }

    /// Whether the greenlet ended in a panic nobody has taken yet.
    pub(crate) fn panicked_unjoined(&self) -> bool {
        self.shared.outcome.peek(|outcome| matches!(outcome, Err(err) if err.is_panic())).unwrap_or(false)
    }

    /// Kills the greenlet: `GreenletExit` is thrown at the point where it is
    /// parked, so it unwinds and its destructors run; a greenlet that has not
    /// started yet never runs. `join` then returns an error for which
    /// [`JoinError::is_killed`] is true. Does nothing if it already finished.
    ///
    /// The kill is delivered when the hub next runs the greenlet; this call
    /// does not wait. From another thread, it travels to the greenlet's hub
    /// first. A greenlet that never parks cannot be killed (as in gevent).
    /// Killing the current greenlet unwinds it at once.
    pub fn kill(&self) {
        self.kill_as(None);
    }

    /// Kills with `payload` (`kill_with`), or with `GreenletExit`: a payload
    /// left by an earlier `kill_with` that was not delivered goes.
    fn kill_as(&self, payload: Option<Box<dyn Any + Send>>) {
        if self.shared.is_done() {
            return;
        }
        self.shared.lock().kill_payload = payload;
        // The hub may not have created it yet (a spawn from another thread):
        // it checks this flag when it does.
        self.shared.kill_requested.store(true, Ordering::SeqCst);
        let Some(task) = self.shared.task() else { return };
        if hub::reactor_id() == self.shared.hub {
            let hub = hub::expect();
            if let Some(task) = hub.task(task) {
                hub.kill(&task);
            }
        } else if let Some(remote) = hub::remote_of(self.shared.hub) {
            let _ = remote.post(Message::Kill { task });
        } // else the hub has stopped, and killed its greenlets as it did
    }

    /// Kills the greenlet with `payload` instead of `GreenletExit` (gevent's
    /// `kill(exception=...)`): it unwinds from its park point with `payload`
    /// as a panic's, which its own `catch_unwind` can catch, and `join`
    /// returns a panic error carrying it
    /// ([`into_panic`](JoinError::into_panic)). Otherwise as
    /// [`kill`](JoinHandle::kill); a greenlet killed before it ran ends with
    /// that error too, without running.
    ///
    /// ```
    /// use std::time::Duration;
    /// runtime::run(|| {
    ///     let sleeper = runtime::spawn(|| runtime::sleep(Duration::from_secs(60)));
    ///     runtime::yield_now();
    ///     sleeper.kill_with("shutting down");
    ///     let payload = sleeper.join().unwrap_err().into_panic();
    ///     assert_eq!(payload.downcast_ref::<&str>(), Some(&"shutting down"));
    /// });
    /// ```
    pub fn kill_with(&self, payload: impl Any + Send) {
        if self.shared.is_done() {
            return;
        }
        self.kill_as(Some(Box::new(payload)));
    }

    /// The greenlet's task on this thread's hub, if it runs here.
    pub(crate) fn local_task(&self) -> Option<std::rc::Rc<Task>> {
        self.local_hub_and_task().map(|(_, task)| task)
    }

    fn local_hub_and_task(&self) -> Option<(std::rc::Rc<hub::Hub>, std::rc::Rc<Task>)> {
        if hub::reactor_id() != self.shared.hub {
            return None;
        }
        let task = self.shared.task()?;
        let hub = hub::current()?;
        let task = hub.task(task)?;
        Some((hub, task))
    }

    /// The greenlet's id (0 for a greenlet spawned from another thread that
    /// its hub has not created yet).
    pub fn id(&self) -> u64 {
        self.shared.id.load(Ordering::Acquire)
    }

    /// The greenlet's name, if it was given one.
    pub fn name(&self) -> Option<&str> {
        self.shared.name.as_deref()
    }

    /// Ties the greenlet to the returned guard: dropping the guard kills the
    /// greenlet (if it has not finished). This is the way to tie a helper
    /// greenlet to the code that needs it, say the second direction of a
    /// proxied connection to its handler: when the handler returns, panics or
    /// is killed, the helper goes too.
    ///
    /// ```
    /// use std::time::Duration;
    /// runtime::run(|| {
    ///     let helper = runtime::spawn(|| runtime::sleep(Duration::from_secs(60))).kill_on_drop();
    ///     let id = helper.id();
    ///     drop(helper); // killed; it unwinds when the hub next runs it
    ///     runtime::yield_now();
    ///     assert!(runtime::dump().greenlets().iter().all(|g| g.id() != id));
    /// });
    /// ```
    pub fn kill_on_drop(self) -> KillOnDrop<T> {
        KillOnDrop { handle: Some(self) }
    }
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle")
            .field("id", &self.id())
            .field("name", &self.shared.name)
            .field("finished", &self.is_finished())
            .finish()
    }
}

/// A [`JoinHandle`] that kills its greenlet when dropped (tokio-util's
/// `AbortOnDropHandle`); see [`JoinHandle::kill_on_drop`].
#[must_use = "dropping a KillOnDrop kills the greenlet at once"]
pub struct KillOnDrop<T> {
    handle: Option<JoinHandle<T>>,
}

impl<T> KillOnDrop<T> {
    /// Waits for the greenlet, as [`JoinHandle::join`].
    ///
    /// # Errors
    ///
    /// As [`JoinHandle::join`].
    #[track_caller]
    pub fn join(mut self) -> Result<T, JoinError> {
        // Wait with the guard armed: if the caller is killed meanwhile, the
        // guard's drop still kills the greenlet.
        self.handle.as_ref().expect("present until consumed").wait(None);
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
            handle.kill();
        }
    }
}

impl<T> fmt::Debug for KillOnDrop<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("KillOnDrop").field(&self.handle).finish()
    }
}

// A `JoinHandle` in a `Select` or `wait_any`: the `sync` module knows
// nothing of tasks, so the task side plugs itself in here.
impl<'a> Select<'a> {
    /// Adds an arm that is ready when the greenlet of `handle` has finished;
    /// returns its index.
    pub fn join<T>(&mut self, handle: &'a JoinHandle<T>) -> usize {
        self.other(handle)
    }
}

impl<T> Watch for JoinHandle<T> {
    fn is_ready(&self) -> bool {
        self.is_finished()
    }

    fn watch(&self, parker: &Parker) -> WaitKey {
        self.shared.watch(Wakeup::for_greenlet(parker))
    }

    fn unwatch(&self, key: WaitKey) {
        self.shared.unwatch(key);
    }

    fn identity(&self) -> *const () {
        Arc::as_ptr(&self.shared).cast()
    }
}

impl<T> private::Sealed for JoinHandle<T> {}

impl<T> Waitable for JoinHandle<T> {
    #[allow(private_interfaces)]
    fn as_watch(&self) -> &dyn Watch {
        self
    }
}
