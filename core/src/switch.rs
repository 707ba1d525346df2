//! Thread state and the dispatcher: how symmetric switches run on corosensei.
//!
//! corosensei coroutines are asymmetric: a coroutine can only suspend back to
//! whoever resumed it. Symmetric switching is built with a trampoline. The only
//! caller of `resume` is the *dispatcher*, a loop that runs on the thread's own
//! stack inside the main greenlet's `switch`:
//!
//! ```text
//!   main stack                        greenlet stacks
//!   ----------                        ---------------
//!   main: a.switch(v) ──► dispatch ──resume(v)──► a: b.switch(w)
//!                           loop   ◄─suspend(b,w)─┘
//!                             │    ──resume(w)──► b: main.switch(x)
//!   main: gets x      ◄──  return  ◄─suspend(main,x)┘
//! ```
//!
//! A greenlet that switches to another greenlet suspends with a [`Request`]
//! naming the target; the dispatcher resolves the target (a dead target means
//! its first live ancestor, a pending one is started) and resumes it. When the
//! target is the main greenlet the dispatcher returns to main's caller. A
//! greenlet that finishes leaves its result in the mailbox and returns, and
//! the dispatcher passes the result on to the parent. Each logical switch is therefore one or two
//! corosensei transitions; the common ones (main to a suspended greenlet and
//! back) take a short path with no reference counting.
//!
//! # Invariants
//!
//! - `HOT.current` is null before the thread's main greenlet exists, is
//!   [`DISPATCHER`] while the dispatcher runs, and otherwise points to the
//!   `Inner` of the running greenlet. The running greenlet is kept alive by the
//!   dispatcher (the handle it resumed, or the caller's borrow of the first
//!   target) or, for main, by `COLD.main`.
//! - The dispatcher is never re-entered: only main calls it, and main is not
//!   running while it does. No user code runs inside it: closures, values
//!   and greenlets dropped there are queued (`Deferred`) and handled by
//!   whichever greenlet receives control next.
//! - Nothing unwinds out of a greenlet's root frame (`entry`): what escapes
//!   `run` and the drops after it is caught there and delivered to the
//!   parent, so `resume` returns normally. (Should it ever unwind, `Resuming`
//!   marks the greenlet dead and `DispatchGuard` makes main current again.)
//! - A greenlet's coroutine is only touched by the dispatcher (resume, finish,
//!   and `start`), by `Inner`'s drop and by `recycle`. A suspended coroutine
//!   of an active greenlet is never dropped: a greenlet nobody can reach is
//!   first killed (`GreenletExit` is thrown into it) and, if it refuses to
//!   die, leaked.
//! - A greenlet that was revived before finishes *warm* (up to [`WARM_MAX`]
//!   per thread): its coroutine suspends at the top of `entry`'s loop, with
//!   nothing live on its stack, instead of returning, and the greenlet keeps
//!   it while dead (and pending, once revived). `start` resumes it as the
//!   current greenlet, to run the new closure; [`cool`] resumes it as
//!   anything else, to return, when the greenlet is dropped or recycled.

use std::any::Any;
use std::cell::{Cell, RefCell, UnsafeCell};
use std::mem::ManuallyDrop;
use std::panic::{self, AssertUnwindSafe};
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};

use corosensei::{Coroutine, CoroutineResult, Yielder};

use crate::greenlet::{Greenlet, GreenletExit, Value};
use crate::local::LocalMap;
use crate::prefetch;
use crate::stack::{self, Stack};
use crate::trace::{self, TraceEvent};

/// A panic payload, as thrown into or out of greenlets.
pub(crate) type Payload = Box<dyn Any + Send>;

/// What a greenlet receives when control comes to it.
pub(crate) enum Resume {
    /// A value: the result of its pending `switch`, or the argument of `run`.
    Value(Value),
    /// A panic to resume unwinding at its switch point.
    Throw(Payload),
    /// A failure to start the greenlet it switched to, raised as a new panic
    /// (so the panic hook reports it).
    Fail(Box<str>),
}

impl Resume {
    /// Turns what a greenlet received into the result of its `switch`.
    #[inline(always)]
    pub(crate) fn into_value(self) -> Value {
        match self {
            Resume::Value(value) => value,
            other => other.raise(),
        }
    }

    #[cold]
    #[inline(never)]
    fn raise(self) -> ! {
        match self {
            Resume::Value(_) => unreachable!("values are not raised"),
            Resume::Throw(payload) => panic::resume_unwind(payload),
            Resume::Fail(message) => panic!("{message}"),
        }
    }

    fn is_value(&self) -> bool {
        matches!(self, Resume::Value(_))
    }

    /// A `GreenletExit` panic that nobody caught becomes a plain value.
    fn exit_to_value(self) -> Resume {
        match self {
            Resume::Throw(payload) if payload.is::<GreenletExit>() => Resume::Value(payload),
            other => other,
        }
    }
}

/// Coroutines carry no values themselves: what is delivered travels through
/// the thread's mailbox (`HOT.mail_value`, `HOT.mail_other`). A suspending
/// greenlet yields the target it switches to, as a raw pointer: the
/// requesting greenlet borrows the target's handle for as long as it is
/// suspended in `transfer`, and the dispatcher turns the pointer into a handle
/// before anything else runs. That keeps every transition down to
/// corosensei's bare register switch.
type Coro = Coroutine<(), *const Inner, (), Stack>;
type GreenletYielder = Yielder<(), *const Inner>;

/// Lifecycle of a greenlet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum State {
    /// Created (or revived), never switched to since; owns no stack, unless
    /// it kept a warm one (see the module invariants).
    Pending,
    /// Started and not finished: running or suspended.
    Active,
    /// Finished (or killed before it started).
    Dead,
}

/// A greenlet's `run` closure, until it starts.
pub(crate) type RunFn = Box<dyn FnOnce(Value) -> Value>;

/// The shared state of one greenlet; `Greenlet` is a counted handle to it.
pub(crate) struct Inner {
    pub(crate) id: u64,
    pub(crate) name: Option<Box<str>>,
    pub(crate) main: bool,
    pub(crate) state: Cell<State>,
    /// `None` only for main greenlets. A strong link, as in Python's greenlet.
    pub(crate) parent: RefCell<Option<Greenlet>>,
    pub(crate) run: Cell<Option<RunFn>>,
    /// Usable stack bytes, already rounded.
    pub(crate) stack_size: usize,
    /// The coroutine, from start until the greenlet finishes, or until it
    /// is dropped or recycled if it finished warm (see the module
    /// invariants).
    ///
    /// # Invariant
    ///
    /// Only accessed by the dispatcher and by `Inner`'s drop (see the module
    /// invariants), never while a reference from another access is live.
    coroutine: UnsafeCell<Option<Coro>>,
    /// The yielder of the running coroutine, set when it starts. Only
    /// dereferenced by the greenlet itself while it runs.
    yielder: Cell<*const GreenletYielder>,
    /// The guard region under the stack, `(start, end)`; for the overflow
    /// handler.
    guard: Cell<(usize, usize)>,
    /// Set when a kill of this greenlet was interrupted before it died (see
    /// `kill_unreachable`): the next kill resumes it instead of throwing.
    kill_interrupted: Cell<bool>,
    /// About where the stack pointer stood when the greenlet last switched
    /// out, or 0 once [`trim_stack`] handed back the pages below it (and
    /// before the first switch out). Stale while the greenlet runs.
    parked_sp: Cell<usize>,
    /// Set by `revive`: the greenlet will finish warm.
    revived: bool,
    pub(crate) locals: RefCell<LocalMap>,
}

impl Inner {
    #[inline(always)]
    pub(crate) fn new(
        name: Option<Box<str>>,
        parent: Option<Greenlet>,
        stack_size: usize,
        run: Option<Box<dyn FnOnce(Value) -> Value>>,
    ) -> Inner {
        let hot = hot();
        hot.live.set(hot.live.get() + 1);
        Inner {
            id: next_id(),
            name,
            main: parent.is_none(),
            state: Cell::new(if parent.is_none() { State::Active } else { State::Pending }),
            parent: RefCell::new(parent),
            run: Cell::new(run),
            stack_size,
            coroutine: UnsafeCell::new(None),
            yielder: Cell::new(std::ptr::null()),
            guard: Cell::new((0, 0)),
            kill_interrupted: Cell::new(false),
            parked_sp: Cell::new(0),
            revived: false,
            locals: RefCell::new(LocalMap::default()),
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        let hot = hot();
        hot.live.set(hot.live.get() - 1);
        // A closure dropped inside the dispatcher could run user code there.
        if let Some(run) = self.run.take() {
            if in_dispatcher() {
                defer(Deferred::Drop(run));
            }
        }
        if self.state.get() != State::Active {
            cool(self);
        }
        // Never let corosensei unwind a suspended stack at an arbitrary point:
        // `Greenlet`'s drop kills unreachable greenlets before this can happen,
        // and anything still suspended here (at thread exit) is leaked.
        if let Some(coroutine) = self.coroutine.get_mut().take() {
            if !coroutine.done() {
                std::mem::forget(coroutine);
            }
        }
    }
}

/// Most greenlets per thread that finish warm (see the module invariants):
/// enough for a scheduler's recycled task records, and a bound on the stacks
/// that dead greenlets hold.
pub(crate) const WARM_MAX: usize = 64;

/// Whether the greenlet `inner`, finishing, stays warm; counts it if so.
#[inline(always)]
fn stays_warm(inner: &Inner) -> bool {
    let hot = hot();
    let warm = hot.warm.get();
    if !inner.revived || warm >= WARM_MAX {
        return false;
    }
    hot.warm.set(warm + 1);
    true
}

/// Lets the coroutine that a dead or pending greenlet kept warm return, and
/// its stack go back to the pool; does nothing for a greenlet without one.
/// Runs no user code: the coroutine waits at the top of `entry`'s loop, and
/// returns because it is not resumed as the current greenlet.
fn cool(inner: &mut Inner) {
    debug_assert!(inner.state.get() != State::Active);
    let Some(mut coroutine) = inner.coroutine.get_mut().take() else { return };
    let hot = hot();
    hot.warm.set(hot.warm.get() - 1);
    match coroutine.resume(()) {
        CoroutineResult::Return(()) => drop(coroutine.into_stack()),
        CoroutineResult::Yield(_) => unreachable!("a warm greenlet's coroutine returns when cooled"),
    }
}

/// Dead greenlets kept for their allocation, so that creating a greenlet
/// usually costs no `malloc` and finishing one no `free`.
const RECYCLED_MAX: usize = 64;

thread_local! {
    static RECYCLED: RefCell<Vec<Rc<Inner>>> = const { RefCell::new(Vec::new()) };
}

/// A new greenlet's state, in a recycled allocation if there is one.
///
/// A recycled one is refilled field by field: building an `Inner` and moving
/// it in would copy the whole struct (a measurable part of a spawn).
#[inline(always)]
pub(crate) fn allocate(
    name: Option<Box<str>>,
    parent: Option<Greenlet>,
    stack_size: usize,
    run: Option<Box<dyn FnOnce(Value) -> Value>>,
) -> Rc<Inner> {
    match RECYCLED.try_with(|recycled| recycled.borrow_mut().pop()).ok().flatten() {
        Some(mut slot) => {
            let inner = Rc::get_mut(&mut slot).expect("recycled greenlets have no other reference");
            // `recycle` emptied what it held; a dead greenlet has no
            // coroutine, no run closure and no yielder to keep.
            debug_assert!(inner.coroutine.get_mut().is_none() && inner.locals.get_mut().is_empty());
            inner.id = next_id();
            inner.name = name;
            inner.main = parent.is_none();
            inner.state.set(if parent.is_none() { State::Active } else { State::Pending });
            *inner.parent.get_mut() = parent;
            inner.run.set(run);
            inner.stack_size = stack_size;
            inner.yielder.set(std::ptr::null());
            inner.guard.set((0, 0));
            inner.kill_interrupted.set(false);
            inner.parked_sp.set(0);
            inner.revived = false;
            // Still counted in `live` (it was never dropped), and no longer
            // in the recycled list that `live_count` subtracts.
            slot
        }
        None => Rc::new(Inner::new(name, parent, stack_size, run)),
    }
}

/// Whether [`revive`] may refill `greenlet`: it is dead, not a main
/// greenlet, and `greenlet` is its only handle (no other, no weak one).
pub(crate) fn revivable(greenlet: &mut Rc<Inner>) -> bool {
    Rc::get_mut(greenlet).is_some_and(|inner| !inner.main && inner.state.get() == State::Dead)
}

/// Makes a [`revivable`] greenlet pending again, to run `run`, with a new
/// id; its parent, name and stack size stay. See
/// [`Greenlet::revive`](crate::Greenlet::revive).
pub(crate) fn revive(greenlet: &mut Rc<Inner>, run: RunFn) {
    let inner = Rc::get_mut(greenlet).expect("checked by `revivable`");
    debug_assert!(inner.state.get() == State::Dead);
    inner.id = next_id();
    inner.state.set(State::Pending);
    inner.revived = true;
    let unrun = inner.run.replace(Some(run));
    // A dead greenlet's stack went back to the pool when it finished, unless
    // it finished warm: then its coroutine, stack and guard stay, for
    // `start` to resume.
    if inner.coroutine.get_mut().is_none() {
        inner.yielder.set(std::ptr::null());
        inner.guard.set((0, 0));
    }
    inner.kill_interrupted.set(false);
    inner.parked_sp.set(0);
    // A finished greenlet dropped its locals as it ended; a greenlet killed
    // before it ran has none either. Dropped last, as the closure that never
    // ran: their destructors may be user code, which then sees this
    // greenlet as the new one it is.
    let locals = (!inner.locals.get_mut().is_empty()).then(|| std::mem::take(inner.locals.get_mut()));
    drop((unrun, locals));
}

/// Called with a new handle when the last handle to a dead greenlet (with no
/// weak handles) is being dropped: keeps its allocation for `allocate`, after
/// releasing what it holds (name, parent, locals), as dropping it would.
pub(crate) fn recycle(mut greenlet: Rc<Inner>) {
    let _ = RECYCLED.try_with(|recycled| {
        let mut recycled = recycled.borrow_mut();
        // Reserved in one go, never grown: this may run when memory is short.
        if recycled.len() >= RECYCLED_MAX || (recycled.capacity() == 0 && recycled.try_reserve(RECYCLED_MAX).is_err()) {
            return;
        }
        let Some(inner) = Rc::get_mut(&mut greenlet) else { return };
        cool(inner);
        let parent = inner.parent.get_mut().take();
        let name = inner.name.take();
        let locals = std::mem::take(inner.locals.get_mut());
        recycled.push(greenlet);
        drop(recycled);
        // Dropped last, outside the borrow: the parent may be the last handle
        // of another greenlet, whose drop may come back here.
        drop((parent, name, locals));
    });
}

/// Work queued by the dispatcher (or by drops during a panic) for the next
/// greenlet that runs.
pub(crate) enum Deferred {
    /// A suspended greenlet that just became unreachable: kill it.
    Kill(Greenlet),
    /// A `run` closure that must not be dropped inside the dispatcher.
    Drop(Box<dyn FnOnce(Value) -> Value>),
    /// A delivery replaced by a failure to start its target, likewise.
    Undelivered(Resume),
}

/// The value of `HOT.current` while the dispatcher runs. Never dereferenced.
static DISPATCHER_MARK: u8 = 0;
const DISPATCHER: *const Inner = &DISPATCHER_MARK as *const u8 as *const Inner;

/// What a greenlet that finishes warm yields to the dispatcher, in place of
/// returning. Never dereferenced.
static FINISHED_MARK: u8 = 0;
const FINISHED: *const Inner = &FINISHED_MARK as *const u8 as *const Inner;

/// Per-thread state touched on every switch. No destructor, so it is always
/// accessible, also from the signal handler and during thread teardown.
struct Hot {
    /// The running greenlet (see the module invariants).
    current: Cell<*const Inner>,
    /// What is being delivered: filled by the greenlet giving up control (or
    /// the dispatcher), emptied by the one receiving it. Plain values, the
    /// common case, travel in `mail_value`; panics and failures in
    /// `mail_other`. (Keeping values on their own lets both sides move them in
    /// registers-sized pieces, which store forwarding handles well.) Never
    /// dropped: a delivery left here at thread exit is leaked.
    mail_value: Cell<ManuallyDrop<Option<Value>>>,
    mail_other: Cell<ManuallyDrop<Option<Resume>>>,
    /// The thread's main greenlet, held by `COLD.main`; null before it exists.
    main: Cell<*const Inner>,
    /// Set while switches must take the slow path: before the main greenlet
    /// exists, while deferred work is queued, or while a tracer is installed.
    slow: Cell<bool>,
    /// Greenlets alive on this thread.
    live: Cell<usize>,
    /// Dead or pending greenlets that keep a warm coroutine.
    warm: Cell<usize>,
    /// The next id of this thread's block, and the end of the block.
    next_id: Cell<u64>,
    id_end: Cell<u64>,
}

/// Per-thread state touched rarely.
struct Cold {
    main: RefCell<Option<Greenlet>>,
    deferred: RefCell<Vec<Deferred>>,
    /// For the tracer: who handed control to the greenlet now running, and how.
    trace_origin: RefCell<Option<Greenlet>>,
    trace_event: Cell<TraceEvent>,
}

impl Drop for Cold {
    fn drop(&mut self) {
        // The main greenlet dies with the thread; nothing may point at it.
        HOT.with(|hot| {
            hot.current.set(std::ptr::null());
            hot.main.set(std::ptr::null());
            hot.slow.set(true);
        });
        // Greenlets still queued for killing are leaked (see `Greenlet::drop`).
        for item in self.deferred.get_mut().drain(..) {
            if let Deferred::Kill(greenlet) = item {
                std::mem::forget(greenlet);
            }
        }
    }
}

thread_local! {
    static HOT: Hot = const {
        Hot {
            current: Cell::new(std::ptr::null()),
            mail_value: Cell::new(ManuallyDrop::new(None)),
            mail_other: Cell::new(ManuallyDrop::new(None)),
            main: Cell::new(std::ptr::null()),
            slow: Cell::new(true),
            live: Cell::new(0),
            warm: Cell::new(0),
            next_id: Cell::new(0),
            id_end: Cell::new(0),
        }
    };
    static COLD: Cold = const {
        Cold {
            main: RefCell::new(None),
            deferred: RefCell::new(Vec::new()),
            trace_origin: RefCell::new(None),
            trace_event: Cell::new(TraceEvent::Switch),
        }
    };
}

/// This thread's `Hot`, as a plain reference: one thread-local access for a
/// whole switch instead of one per field.
#[inline(always)]
fn hot() -> &'static Hot {
    // SAFETY: `HOT` has a constant initialiser and no destructor, so it lives,
    // unmoved, for as long as its thread; the reference cannot leave the
    // thread (`Hot` is not `Sync`), and greenlets never change threads.
    HOT.with(|hot| unsafe { &*(hot as *const Hot) })
}

/// Ids are unique in the process; each thread takes them in blocks so that
/// creating a greenlet touches no shared cache line.
fn next_id() -> u64 {
    const BLOCK: u64 = 1024;
    static NEXT_BLOCK: AtomicU64 = AtomicU64::new(1);
    let hot = hot();
    let mut id = hot.next_id.get();
    if id == hot.id_end.get() {
        id = NEXT_BLOCK.fetch_add(BLOCK, Ordering::Relaxed);
        hot.id_end.set(id + BLOCK);
    }
    hot.next_id.set(id + 1);
    id
}

/// Greenlets alive on this thread (including its main greenlet, once created).
pub(crate) fn live_count() -> usize {
    // Recycled allocations still hold a (dead, emptied) `Inner`.
    let recycled = RECYCLED.try_with(|recycled| recycled.borrow().len()).unwrap_or(0);
    hot().live.get() - recycled
}

fn in_dispatcher() -> bool {
    hot().current.get() == DISPATCHER
}

/// The running greenlet of this thread, creating the main greenlet on first use.
pub(crate) fn current() -> Greenlet {
    let ptr = hot().current.get();
    assert!(ptr != DISPATCHER, "greenlet API used inside the dispatcher (from a destructor run by a switch)");
    if ptr.is_null() {
        return init_main();
    }
    // SAFETY: any other value of `current` points to a live greenlet (module
    // invariants) and came from `Greenlet::inner_ptr`.
    unsafe { Greenlet::from_inner_ptr(ptr) }
}

#[cold]
fn init_main() -> Greenlet {
    let main = Greenlet::allocate(Some("main".into()), None, 0, None);
    let stored = COLD
        .try_with(|cold| cold.main.replace(Some(main.clone())))
        .expect("greenlet API used while its thread is being torn down");
    debug_assert!(stored.is_none());
    HOT.with(|hot| {
        hot.current.set(main.inner_ptr());
        hot.main.set(main.inner_ptr());
    });
    refresh_slow();
    main
}

fn main_greenlet() -> Greenlet {
    COLD.with(|cold| cold.main.borrow().clone()).expect("the main greenlet exists once any greenlet does")
}

/// The id of the running greenlet (`None` before the main greenlet exists,
/// or inside the dispatcher).
pub(crate) fn current_id() -> Option<u64> {
    let ptr = hot().current.get();
    if ptr.is_null() || ptr == DISPATCHER {
        return None;
    }
    // SAFETY: any other value of `current` points to a live greenlet (module
    // invariants); `id` never changes.
    Some(unsafe { (*ptr).id })
}

/// Whether `greenlet` is the one running now.
pub(crate) fn is_current(greenlet: &Greenlet) -> bool {
    std::ptr::eq(hot().current.get(), greenlet.inner_ptr())
}

/// Fills the mailbox.
#[inline(always)]
fn post(resume: Resume) {
    post_to(hot(), resume);
}

#[inline(always)]
fn post_to(hot: &Hot, resume: Resume) {
    match resume {
        Resume::Value(value) => hot.mail_value.set(ManuallyDrop::new(Some(value))),
        other => hot.mail_other.set(ManuallyDrop::new(Some(other))),
    }
}

/// Empties the mailbox.
#[inline(always)]
fn take() -> Resume {
    match ManuallyDrop::into_inner(hot().mail_value.replace(ManuallyDrop::new(None))) {
        Some(value) => Resume::Value(value),
        None => take_other(),
    }
}

#[cold]
fn take_other() -> Resume {
    match ManuallyDrop::into_inner(hot().mail_other.replace(ManuallyDrop::new(None))) {
        Some(resume) => resume,
        None => unreachable!("control arrived without a delivery"),
    }
}

/// Transfers control to `target`, delivering `resume`; returns what the
/// current greenlet receives when control comes back to it.
#[inline(always)]
pub(crate) fn transfer(target: &Greenlet, resume: Resume) -> Value {
    let hot = hot();
    let current = hot.current.get();
    // `slow` is set until the main greenlet exists, so `current` is not null.
    if hot.slow.get() || current == DISPATCHER || std::ptr::eq(current, target.inner_ptr()) {
        return transfer_slow(target, resume);
    }
    switch_from(hot, current, target, resume);
    receive(hot)
}

/// Suspends the running greenlet `current` (or, for main, runs the
/// dispatcher) until control comes back to it; what it receives is then in
/// the mailbox.
#[inline(always)]
fn switch_from(hot: &'static Hot, current: *const Inner, target: &Greenlet, resume: Resume) {
    // SAFETY: `current` is the running greenlet, which is live (module
    // invariants); the caller has ruled out null and DISPATCHER.
    let current = unsafe { &*current };
    let delivers_value = resume.is_value();
    post_to(hot, resume);
    if current.main {
        dispatch(hot, target, delivers_value);
    } else {
        // SAFETY: the running greenlet's entry function stored a pointer to its
        // own yielder, which lives in its root frame until it returns; it is
        // still running, so the yielder is alive and we are on its stack.
        let yielder = unsafe { &*current.yielder.get() };
        current.parked_sp.set(stack_pointer());
        yielder.suspend(target.inner_ptr());
    }
}

/// Takes what control arrived with, after a switch returned to the current
/// greenlet.
#[inline(always)]
fn receive(hot: &Hot) -> Value {
    if hot.slow.get() {
        return receive_slow();
    }
    match ManuallyDrop::into_inner(hot.mail_value.replace(ManuallyDrop::new(None))) {
        Some(value) => value,
        None => take_other().into_value(),
    }
}

/// `receive` when a tracer or deferred work is waiting: they run after the
/// delivery is taken out of the mailbox (they may switch themselves), and
/// before it is returned or raised.
#[cold]
#[inline(never)]
fn receive_slow() -> Value {
    let resume = take();
    after_switch_slow();
    resume.into_value()
}

/// `transfer` when there is deferred work, a tracer, no main greenlet yet, or
/// the target is the current greenlet.
#[cold]
#[inline(never)]
fn transfer_slow(target: &Greenlet, resume: Resume) -> Value {
    // Creates the main greenlet if needed, and refuses to run in the dispatcher.
    let current = current();
    run_deferred();
    if current == *target {
        // Switching to oneself returns the value at once (or raises the panic).
        if trace::installed() {
            note_origin(target, &resume);
            after_switch_slow();
        }
        return resume.into_value();
    }
    // The handle must not stay on this stack while it is suspended: it would
    // keep this greenlet reachable. The pointer stays valid while it runs.
    let current_ptr = current.inner_ptr();
    drop(current);
    let hot = hot();
    switch_from(hot, current_ptr, target, resume);
    receive(hot)
}

/// Restores the main greenlet as current when the dispatcher returns, also by
/// unwinding, should it ever panic.
struct DispatchGuard(&'static Hot);

impl Drop for DispatchGuard {
    #[inline(always)]
    fn drop(&mut self) {
        self.0.current.set(self.0.main.get());
    }
}

/// Armed around a greenlet's `resume`, and forgotten when it returns.
///
/// `entry` lets nothing unwind out of a greenlet's root frame, so this only
/// runs if that ever fails: corosensei then marks the coroutine as finished
/// and resumes the panic in the dispatcher. The greenlet is marked dead (it
/// can never run again, and must not be resumed), its coroutine goes, and a
/// half-made delivery is dropped from the mailbox (leaked: dropping it could
/// panic again while unwinding). [`DispatchGuard`] then makes main current
/// again, and the panic comes out of main's `switch`.
struct Resuming<'a>(&'a Inner);

impl Drop for Resuming<'_> {
    #[cold]
    fn drop(&mut self) {
        let inner = self.0;
        inner.state.set(State::Dead);
        // SAFETY: only the dispatcher touches an active greenlet's coroutine
        // (`Inner::coroutine` invariant), and the `&mut` it used for `resume`
        // is not used again.
        if let Some(coroutine) = unsafe { (*inner.coroutine.get()).take() } {
            if coroutine.done() {
                drop(coroutine.into_stack());
            } else {
                std::mem::forget(coroutine);
            }
        }
        let hot = hot();
        hot.mail_value.set(ManuallyDrop::new(None));
        hot.mail_other.set(ManuallyDrop::new(None));
        hot.current.set(DISPATCHER);
    }
}

/// The trampoline: resumes greenlets until control is due back to main, whose
/// delivery it leaves in the mailbox. Runs on the main stack, called only by
/// main (with a target other than main).
///
/// The common case, resuming a suspended greenlet that switches straight back
/// to main, is handled inline; everything else goes to [`dispatch_loop`].
#[inline(always)]
fn dispatch(hot: &'static Hot, first: &Greenlet, delivers_value: bool) {
    let inner = first.inner();
    let slow = hot.slow.get();
    match inner.state.get() {
        State::Active if !slow => {}
        // Starting a greenlet is common enough (spawning) to skip `resolve`.
        State::Pending if !slow && delivers_value && start(first).is_ok() => {}
        _ => return dispatch_loop(first, None),
    }
    // Main is current again however this returns.
    let _guard = DispatchGuard(hot);
    // SAFETY: only the dispatcher touches an active greenlet's coroutine
    // (`Inner::coroutine` invariant), and it is not re-entered.
    let Some(coroutine) = (unsafe { (*inner.coroutine.get()).as_mut() }) else {
        unreachable!("an active greenlet has a coroutine")
    };
    hot.current.set(Rc::as_ptr(inner));
    let resuming = Resuming(inner);
    let result = coroutine.resume(());
    std::mem::forget(resuming);
    let (main, slow) = (hot.main.get(), hot.slow.get());
    if !slow {
        match result {
            CoroutineResult::Yield(request) if std::ptr::eq(request, main) => return,
            ref result if finished(result) && inner.parent.borrow().as_ref().is_some_and(|p| p.inner_ptr() == main) => {
                // Finished, and its parent is main: its result is in the
                // mailbox for main.
                // SAFETY: we are the dispatcher and the coroutine just
                // finished.
                unsafe { finish(inner, result) };
                return;
            }
            result => return dispatch_loop(first, Some(result)),
        }
    }
    dispatch_loop(first, Some(result))
}

/// The general dispatcher loop. `result` is what resuming `first` gave, if
/// [`dispatch`] already resumed it.
#[inline(never)]
fn dispatch_loop(first: &Greenlet, mut result: Option<CoroutineResult<*const Inner, ()>>) {
    let hot = hot();
    let _guard = DispatchGuard(hot);
    hot.current.set(DISPATCHER);
    // The greenlet to resume: `first` is kept alive by the caller's borrow,
    // later ones by `owned`.
    let mut owned: Option<Greenlet> = None;
    let mut target: *const Inner = first.inner_ptr();
    // SAFETY: `target` is kept alive by `first` or `owned` as just described
    // (this holds for every `&*target` below).
    if result.is_none() && (unsafe { (*target).state.get() } != State::Active || hot.slow.get()) {
        match resolve(first.clone(), None) {
            None => return,
            Some(next) => {
                target = next.inner_ptr();
                owned = Some(next);
            }
        }
    }
    loop {
        // SAFETY: see above.
        let inner = unsafe { &*target };
        let result = match result.take() {
            Some(result) => result,
            None => {
                hot.current.set(target);
                // SAFETY: only the dispatcher touches an active greenlet's
                // coroutine (`Inner::coroutine` invariant), and it is not
                // re-entered.
                let coroutine =
                    unsafe { (*inner.coroutine.get()).as_mut() }.expect("an active greenlet has a coroutine");
                let resuming = Resuming(inner);
                let result = coroutine.resume(());
                std::mem::forget(resuming);
                hot.current.set(DISPATCHER);
                result
            }
        };
        let (main, slow) = (hot.main.get(), hot.slow.get());
        let origin = match result {
            CoroutineResult::Yield(request) if !std::ptr::eq(request, FINISHED) => {
                if std::ptr::eq(request, main) && !slow {
                    return;
                }
                // SAFETY: see `Coro`.
                let next = unsafe { Greenlet::from_inner_ptr(request) };
                let next_inner = next.inner();
                if next_inner.state.get() == State::Active && !next_inner.main && !slow {
                    target = next.inner_ptr();
                    // Dropping the previous greenlet here is fine: if it was
                    // the last reference, its drop queues a kill for later.
                    owned = Some(next);
                    continue;
                }
                owned.replace(next)
            }
            // Returned, or finished warm.
            ref result => {
                // SAFETY: as above; the coroutine finished, so nothing refers
                // to it any more. Its result is in the mailbox.
                unsafe { finish(inner, result) };
                let parent = inner.parent.borrow().clone().expect("a finished greenlet has a parent");
                owned.replace(parent)
            }
        };
        // The origin is only needed for the slow cases: resolve with it.
        let origin = origin.unwrap_or_else(|| first.clone());
        let next = owned.take().expect("just set");
        match resolve(next, Some(origin)) {
            None => return,
            Some(next) => {
                target = next.inner_ptr();
                owned = Some(next);
            }
        }
    }
}

/// Resolves what a transfer to `target` means: a dead greenlet passes it to
/// its ancestors, a pending one is started (or killed, for a panic), and the
/// main greenlet ends the dispatch (`None`). Also tells the tracer who is
/// next. `origin` is who handed over control (`None`: main). The delivery is
/// in the mailbox, and stays there (possibly changed).
#[cold]
#[inline(never)]
fn resolve(mut target: Greenlet, mut origin: Option<Greenlet>) -> Option<Greenlet> {
    let mut resume = take();
    loop {
        match target.inner().state.get() {
            State::Active => break,
            State::Dead => {
                // A dead greenlet passes everything to its first live ancestor.
                resume = resume.exit_to_value();
                target = target.parent().expect("a dead greenlet has a parent");
            }
            State::Pending if resume.is_value() => match start(&target) {
                Ok(()) => break,
                Err(message) => {
                    // The value is not delivered; it is dropped outside the
                    // dispatcher, since its destructor is user code.
                    defer(Deferred::Undelivered(std::mem::replace(&mut resume, Resume::Fail(message.into()))));
                    target = match origin.take() {
                        Some(origin) if origin.is_active() => origin,
                        Some(_) => target.parent().expect("a pending greenlet has a parent"),
                        None => main_greenlet(),
                    };
                }
            },
            State::Pending => {
                // A panic thrown into a greenlet that never ran kills it
                // without running its body.
                target.inner().state.set(State::Dead);
                if let Some(run) = target.inner().run.take() {
                    defer(Deferred::Drop(run));
                }
                resume = resume.exit_to_value();
                target = target.parent().expect("a pending greenlet has a parent");
            }
        }
    }
    if trace::installed() {
        let origin = origin.unwrap_or_else(main_greenlet);
        note_origin(&origin, &resume);
    }
    post(resume);
    if target.inner().main { None } else { Some(target) }
}

/// Whether `result`, of resuming a greenlet, means that it finished: its
/// coroutine returned, or suspended warm.
#[inline(always)]
fn finished(result: &CoroutineResult<*const Inner, ()>) -> bool {
    match *result {
        CoroutineResult::Return(()) => true,
        CoroutineResult::Yield(request) => std::ptr::eq(request, FINISHED),
    }
}

/// Marks a greenlet whose `run` ended as dead and, unless it finished warm,
/// returns its stack to the pool. (What its parent receives is in the
/// mailbox.)
///
/// # Safety
///
/// Must be called by the dispatcher, right after the greenlet's coroutine
/// gave `result`, which is [`finished`].
#[inline(always)]
unsafe fn finish(inner: &Inner, result: &CoroutineResult<*const Inner, ()>) {
    inner.state.set(State::Dead);
    // Nothing on its stack is its own to prefetch any more.
    inner.parked_sp.set(0);
    if let CoroutineResult::Return(()) = result {
        // SAFETY: guaranteed by the caller (see `Inner::coroutine`).
        let coroutine = unsafe { (*inner.coroutine.get()).take() }.expect("a finished greenlet had a coroutine");
        drop(coroutine.into_stack());
    }
}

/// Bytes kept below a suspended greenlet's recorded stack pointer by
/// [`trim_stack`]: room for the frames of `suspend` and the context switch
/// below `switch_from` (callee-saved registers and return addresses: under
/// 256 bytes even in unoptimised builds, as the trim tests find by suspending
/// at every offset of a page).
const TRIM_MARGIN: usize = 1024;

/// About where the stack pointer stands: exactly on x86-64 and AArch64, else
/// a local's address in the caller's frame (inlined), which may lie a frame
/// higher.
#[inline(always)]
fn stack_pointer() -> usize {
    let sp: usize;
    #[cfg(target_arch = "x86_64")]
    // SAFETY: reads a register; touches no memory, stack or flags.
    unsafe {
        std::arch::asm!("mov {}, rsp", out(reg) sp, options(nomem, nostack, preserves_flags))
    };
    #[cfg(target_arch = "aarch64")]
    // SAFETY: reads a register; touches no memory, stack or flags.
    unsafe {
        std::arch::asm!("mov {}, sp", out(reg) sp, options(nomem, nostack, preserves_flags))
    };
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        let here = 0u8;
        sp = std::hint::black_box(&here) as *const u8 as usize;
    }
    sp
}

/// Stack bytes fetched below and above a suspended greenlet's recorded stack
/// pointer by [`prefetch_stack`]: below it lie the registers the switch
/// saved, above it the frames the greenlet returns through when it resumes.
const PREFETCH_BELOW: usize = 128;
const PREFETCH_ABOVE: usize = 384;

/// Asks the processor to start loading the stack lines a switch back into the
/// suspended greenlet `inner` reads first (see [`crate::prefetch`]). Does
/// nothing for a greenlet with no recorded stack pointer: not started,
/// finished, or trimmed since it switched out. (For the running greenlet it
/// loads lines of its own stack: harmless.)
#[inline]
pub(crate) fn prefetch_stack(inner: &Inner) {
    let sp = inner.parked_sp.get();
    if sp != 0 {
        prefetch::lines(sp.saturating_sub(PREFETCH_BELOW), sp.saturating_add(PREFETCH_ABOVE));
    }
}

/// Asks the processor to start loading the line of `inner` that holds its
/// recorded stack pointer, which [`prefetch_stack`] reads.
#[inline]
pub(crate) fn prefetch_stack_pointer(inner: &Inner) {
    let at = inner.parked_sp.as_ptr() as usize;
    prefetch::lines(at, at + 1);
}

/// Hands back to the kernel the stack pages of a suspended greenlet that lie
/// below where its stack pointer stood when it switched out, less
/// [`TRIM_MARGIN`]. Returns the bytes of address range discarded: 0 for a
/// greenlet that is pending, running, dead, a main greenlet, or already
/// trimmed since it last switched out.
pub(crate) fn trim_stack(inner: &Inner) -> usize {
    let sp = inner.parked_sp.get();
    if inner.main || sp == 0 || inner.state.get() != State::Active || is_running(inner) {
        return 0;
    }
    let bottom = inner.guard.get().1;
    let page = stack::page_size();
    let end = sp.saturating_sub(TRIM_MARGIN) & !(page - 1);
    inner.parked_sp.set(0);
    // An address outside the stack (a local moved elsewhere, as under
    // AddressSanitizer's fake stacks) is never acted on.
    if end <= bottom || sp > bottom + inner.stack_size {
        return 0;
    }
    // SAFETY: the greenlet is active and not the running one, so it is
    // suspended inside `switch_from`, which recorded `sp` in its own frame
    // just before suspending, and `sp` lies in its stack: every live frame
    // of the greenlet lies above `sp - TRIM_MARGIN`. `[bottom, end)` is thus dead stack inside the
    // greenlet's own stack (above its guard), which reads as zeros when
    // touched again.
    unsafe { stack::discard(bottom, end - bottom) };
    end - bottom
}

/// Whether `inner` is the greenlet now running on this thread.
fn is_running(inner: &Inner) -> bool {
    std::ptr::eq(hot().current.get(), inner)
}

/// Gives a pending greenlet its stack and coroutine, or lets it use the warm
/// one it kept.
fn start(greenlet: &Greenlet) -> Result<(), String> {
    let inner = greenlet.inner();
    // SAFETY: we run inside the dispatcher, which alone touches the
    // coroutine of a greenlet that is not running (`Inner::coroutine`).
    if unsafe { (*inner.coroutine.get()).is_some() } {
        // Revived after finishing warm: resumed as the current greenlet, its
        // coroutine runs `run`.
        let hot = hot();
        hot.warm.set(hot.warm.get() - 1);
        inner.state.set(State::Active);
        return Ok(());
    }
    let stack = Stack::new(inner.stack_size).map_err(|err| {
        let name = inner.name.as_deref().unwrap_or("<unnamed>");
        format!("greenlet '{name}' (#{}) cannot start: {}", inner.id, stack::describe_failure(inner.stack_size, &err))
    })?;
    inner.guard.set(stack.guard_range());
    let coroutine = Coroutine::with_stack(stack, entry);
    // SAFETY: the greenlet is pending, so it has no coroutine and nothing
    // refers to the slot; we run inside the dispatcher.
    unsafe { *inner.coroutine.get() = Some(coroutine) };
    inner.state.set(State::Active);
    Ok(())
}

/// The root function of every greenlet's stack. It leaves what the parent
/// receives in the mailbox: the return value, or the panic that escaped.
/// A greenlet that stays warm loops, to run the closure of each revive.
fn entry(yielder: &GreenletYielder, (): ()) {
    loop {
        let me = hot().current.get();
        run_once(yielder, me);
        // SAFETY: as in `run_once`; `me` is still running.
        if !stays_warm(unsafe { &*me }) {
            return;
        }
        yielder.suspend(FINISHED);
        // Resumed by the dispatcher after a revive, as the current greenlet
        // (whose `Inner` it re-reads: a revive had it mutably), or by `cool`,
        // as anything else, to return.
        if !std::ptr::eq(hot().current.get(), me) {
            return;
        }
    }
}

/// One run of a greenlet `me`, from its start (or revived start) to what its
/// parent receives, left in the mailbox.
#[inline(always)]
fn run_once(yielder: &GreenletYielder, me: *const Inner) {
    // SAFETY: the dispatcher set `current` to this greenlet just before
    // resuming it and keeps it alive while it runs. It stays alive while
    // suspended too: a suspended greenlet is never freed (module invariants).
    let inner = unsafe { &*me };
    inner.yielder.set(yielder);
    let first = take();
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| {
        if hot().slow.get() {
            // A tracer that panics here kills the greenlet before its body runs.
            after_switch_slow();
        }
        let first = first.into_value();
        let run = inner.run.take().expect("a started greenlet has its run closure");
        run(first)
    }));
    let dropped = drop_locals(inner);
    // Nothing may unwind out of this frame: corosensei would resume the panic
    // in the dispatcher, in the middle of a switch. So what cannot be
    // delivered (the result, when a local's drop panicked; the second of two
    // panics) is dropped here too, under `catch_unwind`.
    let resume = match (outcome, dropped) {
        (Ok(value), Ok(())) => Resume::Value(value),
        (Ok(value), Err(payload)) => {
            drop_undelivered(inner, value, "the value its run closure returned");
            Resume::Throw(payload)
        }
        (Err(payload), Ok(())) => Resume::Throw(payload),
        (Err(payload), Err(second)) => {
            drop_undelivered(inner, second, "the panic payload of a greenlet-local value's destructor");
            Resume::Throw(payload)
        }
    };
    post(resume.exit_to_value());
}

/// Drops a finishing greenlet's greenlet-local values, in the greenlet, so
/// that their destructors run where they belong; values those destructors
/// create are dropped too, until none is left. Returns the first panic of a
/// destructor (later ones are dropped and reported).
fn drop_locals(inner: &Inner) -> Result<(), Payload> {
    let mut dropped = Ok(());
    loop {
        let locals = std::mem::take(&mut *inner.locals.borrow_mut());
        if locals.is_empty() {
            return dropped;
        }
        if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(move || drop(locals))) {
            match dropped {
                Ok(()) => dropped = Err(payload),
                Err(_) => drop_undelivered(inner, payload, "the panic payload of a greenlet-local value's destructor"),
            }
        }
    }
}

/// Drops what a finishing greenlet cannot deliver to its parent, in the
/// greenlet. A panic from that drop is reported with `tracing`, and its
/// payload leaked (dropping it could panic once more); it never unwinds.
#[cold]
#[inline(never)]
fn drop_undelivered<T>(inner: &Inner, value: T, what: &str) {
    let Err(payload) = panic::catch_unwind(AssertUnwindSafe(move || drop(value))) else { return };
    let message = crate::panic_message(&*payload);
    std::mem::forget(payload);
    let report = panic::catch_unwind(AssertUnwindSafe(|| {
        tracing::error!(
            greenlet.id = inner.id,
            greenlet.name = inner.name.as_deref(),
            "greenlet panicked while dropping {what} after it finished: {message}"
        );
    }));
    // A subscriber that panics: its payload is leaked the same way.
    if let Err(payload) = report {
        std::mem::forget(payload);
    }
}

/// Queues work for the next greenlet that runs.
pub(crate) fn defer(item: Deferred) {
    // At thread teardown `item` is dropped by the failed `try_with` instead;
    // `Greenlet`'s drop then leaks a suspended greenlet.
    if COLD.try_with(|cold| cold.deferred.borrow_mut().push(item)).is_ok() {
        hot().slow.set(true);
    }
}

/// Called when `greenlet`'s last handle is being dropped while it is
/// suspended. `greenlet` is a new handle to it.
pub(crate) fn on_last_handle(greenlet: Greenlet) {
    let current = hot().current.get();
    if current.is_null() {
        // Thread teardown: nothing can run it any more.
        std::mem::forget(greenlet);
    } else if current == DISPATCHER || std::thread::panicking() {
        defer(Deferred::Kill(greenlet));
    } else {
        kill_unreachable(greenlet);
    }
}

/// The kill protocol for a suspended greenlet nobody references any more:
/// throw `GreenletExit` into it with the current greenlet as its parent for
/// the moment, so that its destructors run and control comes back here. If it
/// refuses to die and nothing else refers to it, it is leaked.
///
/// Control may come back here before the greenlet died: it can switch
/// elsewhere while unwinding, and someone else then switches or throws to the
/// killer. A value means the greenlet refused to die. A panic was thrown at
/// the killer, and unwinds on from here: the kill is interrupted, and goes on
/// at the next switch (if nothing else refers to the greenlet) by *resuming*
/// it with `()` rather than throwing again, since it may be suspended in a
/// destructor in the middle of unwinding, where a second panic would abort the
/// process.
fn kill_unreachable(greenlet: Greenlet) {
    let me = current();
    let me_ptr = me.inner_ptr();
    let parent = greenlet.inner().parent.replace(Some(me));
    let resume = greenlet.inner().kill_interrupted.replace(false);
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| {
        if resume { greenlet.switch(Box::new(())) } else { greenlet.throw(Box::new(GreenletExit)) }
    }));
    let parent_at_end = greenlet.inner().parent.replace(parent);
    // The greenlet's death delivers to its parent, us, at once: a panic came
    // from its death if it died with us as its parent. (It may also have
    // died since, in a tracer or deferred work that ran before our switch
    // returned; it counts as its death then too.)
    let from_its_death = greenlet.is_dead() && parent_at_end.as_ref().is_some_and(|p| p.inner_ptr() == me_ptr);
    drop(parent_at_end);
    let unreachable = greenlet.is_active() && Rc::strong_count(greenlet.inner()) == 1;
    match outcome {
        Err(payload) if !from_its_death => {
            if greenlet.is_active() {
                greenlet.inner().kill_interrupted.set(true);
            }
            if unreachable {
                defer(Deferred::Kill(greenlet));
            } else {
                drop(greenlet);
            }
            panic::resume_unwind(payload);
        }
        Err(payload) => {
            let message = crate::panic_message(&*payload);
            tracing::error!(
                greenlet.id = greenlet.id(),
                greenlet.name = greenlet.name(),
                "greenlet panicked while being killed because all references to it were dropped: {message}"
            );
        }
        Ok(_) => {}
    }
    // `greenlet` is the handle whose drop started this (or a deferred one):
    // if it is still the only one, nothing can ever reach the greenlet again.
    if unreachable {
        tracing::warn!(
            greenlet.id = greenlet.id(),
            greenlet.name = greenlet.name(),
            "GreenletExit did not kill the greenlet; leaking it and its stack"
        );
        std::mem::forget(greenlet);
    }
}

/// Runs queued deferred work; called in greenlet context.
fn run_deferred() {
    loop {
        let item = COLD.with(|cold| cold.deferred.borrow_mut().pop());
        match item {
            Some(Deferred::Kill(greenlet)) => kill_unreachable(greenlet),
            Some(Deferred::Drop(run)) => drop(run),
            Some(Deferred::Undelivered(resume)) => drop(resume),
            None => break,
        }
    }
    refresh_slow();
}

/// Recomputes whether switches must take the slow path.
pub(crate) fn refresh_slow() {
    let deferred = COLD.try_with(|cold| !cold.deferred.borrow().is_empty()).unwrap_or(true);
    let hot = hot();
    hot.slow.set(deferred || hot.main.get().is_null() || trace::installed());
}

/// Records, for the tracer, who hands control over and how.
fn note_origin(origin: &Greenlet, resume: &Resume) {
    let event = if resume.is_value() { TraceEvent::Switch } else { TraceEvent::Throw };
    let previous = COLD.with(|cold| {
        cold.trace_event.set(event);
        cold.trace_origin.replace(Some(origin.clone()))
    });
    // Dropped outside the borrow: the previous origin may be the last handle
    // to a suspended greenlet, whose kill switches and so notes origins
    // itself. (Every origin noted is taken by the greenlet that receives
    // control before anything can note the next one, so `previous` is `None`
    // as things stand; this keeps a stale one from turning into a
    // `BorrowMutError` should that ever change.)
    drop(previous);
}

/// Slow path after control arrives in a greenlet: the tracer, then deferred
/// work.
#[cold]
#[inline(never)]
fn after_switch_slow() {
    if trace::installed() {
        let origin = COLD.with(|cold| cold.trace_origin.borrow_mut().take());
        if let Some(origin) = origin {
            let event = COLD.with(|cold| cold.trace_event.get());
            trace::call(event, &origin, &current());
        }
    }
    run_deferred();
}

/// For the overflow handler: if `addr` lies in the guard region of the running
/// greenlet, calls `report` with its id, name and stack size and returns true.
/// Async-signal-safe: it only reads memory.
pub(crate) fn describe_guard_fault(addr: usize, report: fn(u64, Option<&str>, usize)) -> bool {
    let ptr = HOT.with(|hot| hot.current.get());
    if ptr.is_null() || ptr == DISPATCHER {
        return false;
    }
    // SAFETY: `current` is live while its greenlet runs (module invariants), and
    // a fault on a greenlet's guard happens while that greenlet runs. Only
    // fields written before the greenlet started are read.
    let inner = unsafe { &*ptr };
    let (start, end) = inner.guard.get();
    if addr < start || addr >= end {
        return false;
    }
    report(inner.id, inner.name.as_deref(), inner.stack_size);
    true
}
