//! The hub's record of one spawned greenlet (a *task*) and its state machine.
//!
//! ```text
//!   spawn ──────────────┐            spawn_later ──► Delayed
//!                       ▼                               │ start timer
//!               ┌──► Scheduled ◄────────────────────────┘
//!               │       │ the hub resumes it
//!       unpark, │       ▼
//!   timer, kill │    Running ──── its closure returns or unwinds ───► Done
//!               │       │ park                                          ▲
//!               └── Parked                                              │
//!                                                                       │
//!   Delayed or Scheduled, never started, killed ────────────────────────┤
//!   Parked or Scheduled, leaked at shutdown (see `Hub::shutdown`) ──────┘
//! ```
//!
//! A `Running` task may also go straight back to `Scheduled` (`yield_now`,
//! or a raw greenlet switch to the hub). Every change goes through
//! [`Task::set_state`], which checks it against this drawing.
//!
//! Each park bumps the task's sequence number. A wake-up carries the number
//! of the park it is meant for ([`Unparker`]), so a
//! late one (a timer that fired after the greenlet was woken by its channel)
//! is ignored.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::fmt;
use std::panic::Location;
use std::ptr::NonNull;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use greenlet::Greenlet;

use crate::error::JoinError;
use crate::hub::completion::ErasedCompletion;
use crate::hub::remote::Remote;
use crate::hub::timer::TimerKey;
use crate::hub::unpark::Unparker;
use crate::hub::wait_queue::WaitQueue;
use crate::hub::waiting::WaitingOn;
use crate::util::slab::Key;

/// Where a task is in its life; see the module docs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum State {
    /// Spawned with a delay; a timer will schedule it.
    Delayed,
    /// In the run queue.
    Scheduled,
    /// Its greenlet is running.
    Running,
    /// Waiting for an unpark, a timer or a kill.
    Parked,
    /// Finished, or killed before it ran.
    Done,
}

impl State {
    /// Whether the module docs' drawing has an arrow from `self` to `to`.
    fn may_become(self, to: State) -> bool {
        use State::*;
        matches!(
            (self, to),
            (Delayed, Scheduled)
                | (Scheduled, Running)
                | (Running, Parked | Scheduled | Done)
                | (Parked, Scheduled)
                | (Delayed | Scheduled | Parked, Done)
        )
    }
}

/// Why a parked greenlet runs again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Wake {
    /// Something it waited for happened (or it was woken spuriously: callers
    /// re-check their condition).
    Notified,
    /// Its deadline passed.
    TimedOut,
}

/// A parked task's node in a wait queue that other threads reach (a `sync`
/// type's), as the task would take it back on waking: what the hub takes
/// back instead when it leaks the task (see `Hub::abandon_remaining`), so
/// that a lock, value, permit or notification handed to the node later, or
/// already, passes to the next waiter rather than to a greenlet that never
/// runs again.
pub(crate) trait Abandon {
    /// Takes the node out of its queue, passing on what it was given.
    fn abandon(&mut self);
}

/// The hub's run queue, and what a task needs to reach its hub without the
/// hub's thread-local: unparking a task pushes it here.
pub(crate) struct ReadyQueue {
    tasks: RefCell<VecDeque<Rc<Task>>>,
    /// The hub's door for other threads (for [`SendUnparker`](crate::hub::unpark::SendUnparker)s).
    pub(crate) remote: Arc<Remote>,
    /// When the hub's current turn started: a clock for diagnostics (how long
    /// a greenlet has been parked) that costs nothing per park.
    clock: Cell<Instant>,
    /// Join states of finished tasks, kept for reuse by later spawns of the
    /// same type once their handles are gone (see `join_pool`).
    pub(crate) finished_joins: RefCell<Vec<ErasedCompletion>>,
    /// Tasks parked in a `sync` type's queue (which other threads may
    /// wake): those with a node recorded (see [`Task::set_node`]).
    sync_waits: Cell<usize>,
}

/// Join states kept for reuse, per hub.
const FINISHED_JOINS: usize = 64;

impl ReadyQueue {
    pub(crate) fn new(remote: Arc<Remote>) -> ReadyQueue {
        ReadyQueue {
            tasks: RefCell::new(VecDeque::new()),
            remote,
            clock: Cell::new(Instant::now()),
            finished_joins: RefCell::new(Vec::new()),
            sync_waits: Cell::new(0),
        }
    }

    pub(crate) fn pop(&self) -> Option<Rc<Task>> {
        let mut tasks = self.tasks.borrow_mut();
        let task = tasks.pop_front();
        if !tasks.is_empty() {
            prefetch_ahead(&tasks);
        }
        task
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.tasks.borrow().is_empty()
    }

    pub(crate) fn len(&self) -> usize {
        self.tasks.borrow().len()
    }

    pub(crate) fn clock(&self) -> Instant {
        self.clock.get()
    }

    pub(crate) fn tick(&self, now: Instant) {
        self.clock.set(now);
    }

    /// Tasks parked in a `sync` type's queue now.
    pub(crate) fn sync_waits(&self) -> usize {
        self.sync_waits.get()
    }
}

/// A pending exception for the task, raised at its next park point.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Pending {
    /// Nothing to raise.
    None,
    /// The outermost `timeout` scope whose deadline passed.
    Timeout(u64),
    /// A kill.
    Kill,
}

/// Starts loading what the next tasks of the run queue will touch first when
/// they run: the next one's stack, and where the one after it keeps its stack
/// pointer (which that one's stack prefetch, at the next pop, reads). A
/// greenlet woken among many (a sleeper whose timer fired, one of many idle
/// connections) has a stack no cache holds, nor its page in the TLB; the
/// running task's time covers that latency. Out of line: with few greenlets
/// the queue is mostly empty after a pop, and that path stays short.
#[inline(never)]
fn prefetch_ahead(tasks: &VecDeque<Rc<Task>>) {
    let greenlet = |at: usize| tasks.get(at).and_then(|task| task.greenlet.try_borrow().ok());
    if let Some(next) = greenlet(0)
        && let Some(next) = &*next
    {
        next.prefetch_stack();
    }
    if let Some(after) = greenlet(1)
        && let Some(after) = &*after
    {
        after.prefetch_stack_pointer();
    }
}

/// The hub's record of one spawned greenlet. Fields are private: the state
/// machine above changes only through these methods.
// `repr(C)`, hot fields first: what every park and wake-up reads and
// writes shares two or three cache lines, not the whole record's seven.
#[repr(C)]
pub(crate) struct Task {
    state: Cell<State>,
    /// Why the task was last made runnable.
    wake: Cell<Wake>,
    /// Whether the greenlet is unwinding (a kill, a timeout or a panic): then
    /// a second kill or timeout is not raised (it would abort the process)
    /// but ends the wait it arrives in.
    unwinding: Cell<bool>,
    /// Parked for good: it kept ignoring a reported kill or timeout in
    /// code that cannot unwind (see `Parker::park_for_good`); the hub leaks it.
    doomed: Cell<bool>,
    /// Bumped each time the task parks; a wake-up for an older number is stale.
    seq: Cell<u64>,
    /// The number of the last park a wake-up was handed out for (0: none).
    registered: Cell<u64>,
    /// Key in the hub's task table, while the task is alive.
    key: Cell<Option<Key>>,
    /// While parked in a `sync` type's queue: the node, on the task's stack
    /// (see [`Abandon`]).
    node: Cell<Option<NonNull<dyn Abandon>>>,
    ready: Rc<ReadyQueue>,
    /// A kill or timeout to raise at the next park point.
    pending: Cell<Pending>,
    /// Set once `pending` was reported to the greenlet as an error, by a
    /// [`foreign`](crate::foreign) wait that could not unwind: then a closure
    /// (the task's, or the expired `timeout` scope's) that returns normally
    /// still ends as killed or timed out. Holds the end of the grace
    /// (`Builder::cancel_grace`) during which its parks complete normally.
    /// Cleared with `pending`.
    reported: Cell<Option<Instant>>,
    /// Set on the root task when nothing can ever wake it.
    deadlock: RefCell<Option<String>>,
    /// What the task is parked on, since when, and until when.
    waiting_on: Cell<WaitingOn>,
    parked_at: Cell<Instant>,
    park_deadline: Cell<Option<Instant>>,
    /// Taken when the task is done.
    greenlet: RefCell<Option<Greenlet>>,
    /// The finished greenlet of the task this record held last, kept with
    /// the record for the next spawn to revive (`Greenlet::revive`) rather
    /// than create a greenlet and drop this one.
    spare: Cell<Option<Greenlet>>,
    /// The greenlet's id.
    id: u64,
    /// The number of the last park made through `foreign` (a hooked call),
    /// which may come inside the runtime's own waits.
    foreign_seq: Cell<u64>,
    /// The first greenlet waiting for this one to finish (the common case, a
    /// `join`), kept inline so that it costs no allocation.
    joiner: Cell<Option<Unparker>>,
    /// Its join handle's shared state, until the task is done.
    completion: RefCell<Option<ErasedCompletion>>,
    /// The timer that starts a delayed task.
    start_timer: Cell<Option<TimerKey>>,
    name: Option<Rc<str>>,
    /// Where `spawn` was called.
    spawned_at: &'static Location<'static>,
    /// More greenlets waiting for this one to finish.
    joiners: RefCell<WaitQueue<()>>,
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
    /// A new task, `Delayed` until the hub schedules or starts it.
    pub(crate) fn new(
        greenlet: Greenlet,
        name: Option<Rc<str>>,
        spawned_at: &'static Location<'static>,
        ready: Rc<ReadyQueue>,
        span: tracing::Span,
        completion: ErasedCompletion,
    ) -> Task {
        Task {
            id: greenlet.id(),
            name,
            spawned_at,
            greenlet: RefCell::new(Some(greenlet)),
            spare: Cell::new(None),
            state: Cell::new(State::Delayed),
            seq: Cell::new(0),
            registered: Cell::new(0),
            wake: Cell::new(Wake::Notified),
            waiting_on: Cell::new(WaitingOn::Nothing),
            parked_at: Cell::new(ready.clock()),
            park_deadline: Cell::new(None),
            pending: Cell::new(Pending::None),
            reported: Cell::new(None),
            unwinding: Cell::new(false),
            deadlock: RefCell::new(None),
            doomed: Cell::new(false),
            foreign_seq: Cell::new(0),
            start_timer: Cell::new(None),
            completion: RefCell::new(Some(completion)),
            joiner: Cell::new(None),
            joiners: RefCell::new(WaitQueue::new()),
            key: Cell::new(None),
            node: Cell::new(None),
            ready,
            span,
        }
    }

    /// Makes a finished task's record (kept for its allocation) the record
    /// of a new task, field by field: cheaper than moving a whole new record
    /// in, and the joiners' queue keeps its storage.
    pub(crate) fn reuse(
        &mut self,
        greenlet: Greenlet,
        name: Option<Rc<str>>,
        spawned_at: &'static Location<'static>,
        span: tracing::Span,
        completion: ErasedCompletion,
    ) {
        debug_assert!(self.is_done() && self.key.get().is_none() && self.joiners.get_mut().len() == 0);
        self.id = greenlet.id();
        self.name = name;
        self.spawned_at = spawned_at;
        *self.greenlet.get_mut() = Some(greenlet);
        *self.state.get_mut() = State::Delayed;
        *self.seq.get_mut() = 0;
        *self.registered.get_mut() = 0;
        *self.wake.get_mut() = Wake::Notified;
        *self.waiting_on.get_mut() = WaitingOn::Nothing;
        *self.parked_at.get_mut() = self.ready.clock();
        *self.park_deadline.get_mut() = None;
        *self.pending.get_mut() = Pending::None;
        *self.unwinding.get_mut() = false;
        *self.deadlock.get_mut() = None;
        *self.doomed.get_mut() = false;
        *self.foreign_seq.get_mut() = 0;
        *self.start_timer.get_mut() = None;
        *self.completion.get_mut() = Some(completion);
        *self.joiner.get_mut() = None;
        *self.node.get_mut() = None;
        self.span = span;
    }

    #[inline]
    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    pub(crate) fn name(&self) -> Option<&Rc<str>> {
        self.name.as_ref()
    }

    pub(crate) fn spawned_at(&self) -> &'static Location<'static> {
        self.spawned_at
    }

    /// A printable "'name' (#id)" or "#id".
    pub(crate) fn label(&self) -> String {
        match &self.name {
            Some(name) => format!("'{name}' (#{})", self.id),
            None => format!("#{}", self.id),
        }
    }

    #[inline]
    pub(crate) fn state(&self) -> State {
        self.state.get()
    }

    /// The one place a task's state changes.
    #[inline]
    pub(crate) fn set_state(&self, to: State) {
        let from = self.state.get();
        debug_assert!(from.may_become(to), "task {} cannot go from {from:?} to {to:?}", self.id);
        self.state.set(to);
    }

    #[inline]
    pub(crate) fn is_done(&self) -> bool {
        self.state.get() == State::Done
    }

    pub(crate) fn greenlet(&self) -> Option<Greenlet> {
        self.greenlet.borrow().clone()
    }

    /// The greenlet, borrowed (for the hub to switch to it without a clone:
    /// only the hub takes it out, never while it runs).
    pub(crate) fn greenlet_ref(&self) -> Option<std::cell::Ref<'_, Greenlet>> {
        std::cell::Ref::filter_map(self.greenlet.borrow(), Option::as_ref).ok()
    }

    /// Whether its greenlet ever ran.
    pub(crate) fn is_started(&self) -> bool {
        self.greenlet.borrow().as_ref().is_some_and(Greenlet::is_started)
    }

    /// Drops (or hands out, to leak) the greenlet of a finished task.
    pub(crate) fn release_greenlet(&self) -> Option<Greenlet> {
        self.greenlet.borrow_mut().take()
    }

    /// Takes the greenlet of a finished task out, keeping it as the record's
    /// spare for a later spawn to revive.
    pub(crate) fn retire_greenlet(&self) {
        let greenlet = self.greenlet.borrow_mut().take();
        // A spare left from before (the record's last reuse built a new
        // greenlet) goes now: only one is kept.
        drop(self.spare.replace(greenlet));
    }

    /// The spare greenlet, if the record has one (see `retire_greenlet`).
    pub(crate) fn take_spare(&self) -> Option<Greenlet> {
        self.spare.take()
    }

    #[inline]
    pub(crate) fn key(&self) -> Option<Key> {
        self.key.get()
    }

    pub(crate) fn set_key(&self, key: Option<Key>) {
        self.key.set(key);
    }

    pub(crate) fn ready_queue(&self) -> &Rc<ReadyQueue> {
        &self.ready
    }

    pub(crate) fn start_timer(&self) -> &Cell<Option<TimerKey>> {
        &self.start_timer
    }

    /// Makes the task runnable, at the back of the run queue.
    #[inline]
    pub(crate) fn schedule(self: &Rc<Self>, wake: Wake) {
        self.set_state(State::Scheduled);
        self.wake.set(wake);
        self.ready.tasks.borrow_mut().push_back(self.clone());
    }

    /// [`wake_up`](Task::wake_up) with a reference the caller gives away:
    /// the run queue takes it rather than a clone. (Every clone and drop of
    /// a task's reference writes the one count all of them share, and a
    /// hand-off makes a dozen.)
    /// `ready` is the caller's run queue, which is the task's if the task
    /// lives on the caller's hub (else the task's own is used).
    #[inline]
    pub(crate) fn wake_up_owned(self: Rc<Self>, seq: u64, wake: Wake, ready: &ReadyQueue) -> bool {
        if !std::ptr::eq(&*self.ready, ready) {
            return self.wake_up(seq, wake);
        }
        let parked = self.state.get() == State::Parked && self.seq.get() == seq;
        if parked {
            self.schedule_owned(wake, ready);
        }
        parked
    }

    /// [`schedule`](Task::schedule) with a reference the caller gives away
    /// (see `wake_up_owned`; `ready` is the caller's run queue).
    pub(crate) fn schedule_owned(self: Rc<Self>, wake: Wake, ready: &ReadyQueue) {
        if !std::ptr::eq(&*self.ready, ready) {
            return self.schedule(wake);
        }
        self.set_state(State::Scheduled);
        self.wake.set(wake);
        ready.tasks.borrow_mut().push_back(self);
    }

    /// Schedules the task if it is still parked with `seq`; never switches.
    /// Returns whether it did.
    #[inline]
    pub(crate) fn wake_up(self: &Rc<Self>, seq: u64, wake: Wake) -> bool {
        let parked = self.state.get() == State::Parked && self.seq.get() == seq;
        if parked {
            self.schedule(wake);
        }
        parked
    }

    /// The sequence number the task's next park will have.
    #[inline]
    pub(crate) fn next_seq(&self) -> u64 {
        self.seq.get() + 1
    }

    /// Records that park `seq` is a foreign one (see `Parker::suspend`).
    pub(crate) fn note_foreign_park(&self, seq: u64) {
        self.foreign_seq.set(seq);
    }

    /// Whether a foreign park was made at or after park `seq`.
    pub(crate) fn parked_foreign_since(&self, seq: u64) -> bool {
        self.foreign_seq.get() >= seq
    }

    /// Notes that a wake-up for park `seq` was handed out.
    #[inline]
    pub(crate) fn set_registered(&self, seq: u64) {
        self.registered.set(seq);
    }

    /// Whether a wake-up for the task's next park is out: the task must park
    /// for it next, and not yield or park for anything else first (the wake
    /// would be lost).
    pub(crate) fn is_registered(&self) -> bool {
        self.registered.get() == self.next_seq()
    }

    /// Records a park (`Running` → `Parked`).
    #[inline]
    pub(crate) fn park(&self, seq: u64, on: WaitingOn, deadline: Option<Instant>) {
        self.set_state(State::Parked);
        self.seq.set(seq);
        self.waiting_on.set(on);
        self.parked_at.set(self.ready.clock());
        self.park_deadline.set(deadline);
    }

    /// Records the node the task is about to wait in (see [`Abandon`]), or
    /// none; returns the one recorded before. The node must stay where it is
    /// until it is replaced again. A task with a node counts as waiting on a
    /// `sync` type (see [`ReadyQueue::sync_waits`]).
    #[inline]
    pub(crate) fn set_node(&self, node: Option<NonNull<dyn Abandon>>) -> Option<NonNull<dyn Abandon>> {
        let before = self.node.replace(node);
        let waits = &self.ready.sync_waits;
        match (before.is_some(), node.is_some()) {
            (false, true) => waits.set(waits.get() + 1),
            (true, false) => waits.set(waits.get() - 1),
            _ => {}
        }
        before
    }

    /// Why the task was last woken.
    #[inline]
    pub(crate) fn wake(&self) -> Wake {
        self.wake.get()
    }

    /// What it is parked on, since when, and its deadline.
    pub(crate) fn waiting(&self) -> (WaitingOn, Instant, Option<Instant>) {
        (self.waiting_on.get(), self.parked_at.get(), self.park_deadline.get())
    }

    /// Clears the description once the task runs again.
    #[inline]
    pub(crate) fn unpark_done(&self) {
        self.waiting_on.set(WaitingOn::Nothing);
    }

    #[inline]
    pub(crate) fn pending(&self) -> Pending {
        self.pending.get()
    }

    pub(crate) fn take_pending(&self) -> Pending {
        self.reported.set(None);
        self.pending.replace(Pending::None)
    }

    /// Records that the pending kill or timeout was reported to the greenlet
    /// as an error (see [`foreign`](crate::foreign)), with the end of its
    /// grace (moved to now when the grace is cut short).
    pub(crate) fn set_reported(&self, grace_end: Instant) {
        self.reported.set(Some(grace_end));
    }

    /// The pending kill or timeout, if it was reported as an error.
    pub(crate) fn reported(&self) -> Pending {
        if self.reported.get().is_some() { self.pending.get() } else { Pending::None }
    }

    /// Whether the task parked for good (see `Parker::park_for_good`).
    pub(crate) fn is_doomed(&self) -> bool {
        self.doomed.get()
    }

    pub(crate) fn set_doomed(&self) {
        self.doomed.set(true);
    }

    /// The end of the grace of a reported kill or timeout, if it was.
    #[inline]
    pub(crate) fn grace_end(&self) -> Option<Instant> {
        self.reported.get()
    }

    /// Records a kill, or a timeout scope's expiry (the outermost wins), to
    /// raise at the next park point.
    pub(crate) fn set_pending(&self, pending: Pending) {
        let merged = match (self.pending.get(), pending) {
            (Pending::Kill, _) | (_, Pending::Kill) => Pending::Kill,
            (Pending::Timeout(a), Pending::Timeout(b)) => Pending::Timeout(a.min(b)),
            (Pending::None, other) | (other, Pending::None) => other,
        };
        if merged != self.pending.get() {
            // A kill after a reported timeout: reported anew.
            self.reported.set(None);
        }
        self.pending.set(merged);
    }

    #[inline]
    pub(crate) fn is_unwinding(&self) -> bool {
        self.unwinding.get()
    }

    #[inline]
    pub(crate) fn set_unwinding(&self, unwinding: bool) {
        self.unwinding.set(unwinding);
    }

    pub(crate) fn deadlock(&self) -> &RefCell<Option<String>> {
        &self.deadlock
    }

    /// Marks the task done and wakes its hub-local joiners (groups, scopes);
    /// its outcome goes to its join handle separately.
    pub(crate) fn finish(&self) {
        self.set_state(State::Done);
        // The handle's state need not outlive the task's record (which may be
        // kept for reuse); it may be reused itself once the handle is gone.
        let completion = self.completion.borrow_mut().take();
        if let Some(completion) = completion {
            let mut finished = self.ready.finished_joins.borrow_mut();
            if finished.len() < FINISHED_JOINS {
                finished.push(completion);
            }
        }
        self.waiting_on.set(WaitingOn::Nothing);
        if let Some(joiner) = self.joiner.take() {
            joiner.unpark_owned(&self.ready);
        }
        self.joiners.borrow_mut().complete_all(|()| {});
    }

    /// Its join handle's state, for the task's own body to store its
    /// outcome (the body knows its type), until the task is done.
    pub(crate) fn completion(&self) -> std::cell::Ref<'_, Option<ErasedCompletion>> {
        self.completion.borrow()
    }

    /// What a kill unwinds the task with: its killer's payload
    /// (`JoinHandle::kill_with`), or `GreenletExit`.
    pub(crate) fn kill_payload(&self) -> Box<dyn std::any::Any + Send> {
        let payload = self.completion.borrow().as_ref().and_then(|completion| completion.take_kill_payload());
        payload.unwrap_or_else(|| Box::new(greenlet::GreenletExit))
    }

    /// Ends a task that will never run again with `error`: killed before
    /// it started, or leaked at shutdown.
    pub(crate) fn abort(&self, error: JoinError) {
        let completion = self.completion.borrow_mut().take();
        self.finish();
        if let Some(completion) = completion {
            completion.fail(error);
        }
    }

    pub(crate) fn joiner(&self) -> &Cell<Option<Unparker>> {
        &self.joiner
    }

    pub(crate) fn joiners(&self) -> &RefCell<WaitQueue<()>> {
        &self.joiners
    }
}
