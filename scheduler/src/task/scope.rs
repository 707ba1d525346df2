//! Scoped greenlets: [`scope`], as `std::thread::scope` is for threads.
//!
//! Children spawned in a scope may borrow from the stack of the greenlet that
//! opened it, because the scope does not end until every child has finished:
//!
//! - when the scope's closure returns, the scope waits for the children;
//! - when the owner unwinds out of it (killed, timed out, panicking), a guard
//!   kills the children and waits for them to finish unwinding before the
//!   owner's unwinding goes on (cleanup may park);
//! - a child that refuses to die keeps the owner waiting there (parked on
//!   `join`, visible in `runtime::dump` and to the deadlock detector); a
//!   second kill of the owner cannot cut that wait short;
//! - greenlets leaked at the end of `run` are never resumed and their stacks
//!   are never freed, so what a leaked child borrows stays valid.
//!
//! That is the whole soundness argument for the one `unsafe` block below,
//! which erases the lifetime of a child's closure so the hub can hold it.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::marker::PhantomData;
use std::panic::Location;
use std::rc::Rc;

use crate::error::JoinError;
use crate::hub;
use crate::hub::record::Task;
use crate::park::Parker;
use crate::task::{self, JoinHandle, spawn_task, wait_finished};

/// Runs `f` with a [`Scope`] for spawning greenlets that may borrow from the
/// calling greenlet's stack; returns when `f` has returned and every greenlet
/// spawned in the scope has finished.
///
/// If the calling greenlet is killed, times out or panics inside `f`, its
/// children are killed and joined before its unwinding continues.
///
/// ```
/// let mut total = 0;
/// let words = vec!["greenlets", "borrow", "locals"];
/// runtime::run(move || {
///     runtime::scope(|s| {
///         for word in &words {
///             s.spawn(move || runtime::yield_now());
///             total += word.len(); // `words` is borrowed by the children too
///         }
///         let lens: Vec<_> = words.iter().map(|w| s.spawn(move || w.len())).collect();
///         assert_eq!(lens.into_iter().map(|h| h.join().unwrap()).sum::<usize>(), total);
///     });
/// });
/// ```
///
/// Children cannot outlive the scope, nor borrow what does not outlive it:
///
/// ```compile_fail
/// runtime::run(|| {
///     let escaped = runtime::scope(|s| s.spawn(|| 1)); // the handle cannot leave
/// });
/// ```
///
/// ```compile_fail
/// runtime::run(|| {
///     runtime::scope(|s| {
///         let local = 5; // dropped when the closure returns, before the child is joined
///         s.spawn(|| local + 1);
///     });
/// });
/// ```
///
/// # Panics
///
/// Outside a greenlet of the runtime. If `f` panics, after the children are
/// joined. If a child panicked and was not joined, after all are joined.
#[track_caller]
pub fn scope<'env, F, R>(f: F) -> R
where
    F: for<'scope> FnOnce(&'scope Scope<'scope, 'env>) -> R,
{
    let owner = Parker::current().task().clone();
    let scope = Scope {
        children: RefCell::new(Vec::new()),
        owner,
        unjoined_panic: Cell::new(false),
        _scope: PhantomData,
        _env: PhantomData,
    };
    // Runs only when unwinding out of `f` or out of the join below: on the
    // normal path every child is finished before the guard drops.
    let _guard = crate::util::guard::defer(|| scope.kill_and_join_all());
    let result = f(&scope);
    scope.join_all();
    if scope.unjoined_panic.get() {
        panic!("a greenlet spawned in a `runtime::scope` panicked");
    }
    result
}

/// A scope to spawn greenlets in; see [`scope`].
pub struct Scope<'scope, 'env: 'scope> {
    children: RefCell<Vec<(Rc<Task>, JoinHandle<()>)>>,
    owner: Rc<Task>,
    /// Set when a child that nobody joined turns out to have panicked.
    unjoined_panic: Cell<bool>,
    /// Invariant over both lifetimes, as `std::thread::Scope`.
    _scope: PhantomData<&'scope mut &'scope ()>,
    _env: PhantomData<&'env mut &'env ()>,
}

impl<'scope> Scope<'scope, '_> {
    /// Spawns a greenlet that may borrow anything that outlives the scope.
    ///
    /// # Panics
    ///
    /// Outside the runtime the scope belongs to.
    #[track_caller]
    pub fn spawn<F, T>(&'scope self, f: F) -> ScopedJoinHandle<'scope, T>
    where
        F: FnOnce() -> T + 'scope,
        T: 'scope,
    {
        self.spawn_with(task::Builder::new(), f)
    }

    /// Like [`spawn`](Scope::spawn), configured by `builder`.
    ///
    /// # Panics
    ///
    /// Outside the runtime the scope belongs to.
    #[track_caller]
    pub fn spawn_with<F, T>(&'scope self, builder: task::Builder, f: F) -> ScopedJoinHandle<'scope, T>
    where
        F: FnOnce() -> T + 'scope,
        T: 'scope,
    {
        let slot: Rc<RefCell<Option<T>>> = Rc::new(RefCell::new(None));
        let result = slot.clone();
        let body: Box<dyn FnOnce() + 'scope> = Box::new(move || *result.borrow_mut() = Some(f()));
        #[allow(unsafe_code)]
        // SAFETY: the closure only lives as long as the greenlet that runs it,
        // and that greenlet is in `children`, which the scope joins before
        // 'scope ends, on every path (see the module docs): the normal return
        // joins all; unwinding runs `kill_and_join_all`, whose joins cannot be
        // cut short; a greenlet never resumed (leaked at shutdown) keeps its
        // closure unrun and undropped, and its owner's stack mapped. So
        // nothing the closure borrows is used after 'scope, and the closure is
        // dropped (run or not) before it.
        let body: Box<dyn FnOnce() + 'static> =
            unsafe { std::mem::transmute::<Box<dyn FnOnce() + 'scope>, Box<dyn FnOnce() + 'static>>(body) };
        let hub = hub::expect();
        let (task, handle) = spawn_task(&hub, builder, body, None, Location::caller(), true);
        let task = task.expect("kept");
        let joinable = JoinHandle::new(handle.shared.clone());
        self.children.borrow_mut().push((task.clone(), handle));
        ScopedJoinHandle { task, handle: joinable, slot, _scope: PhantomData }
    }

    /// Waits for every child, including ones spawned meanwhile.
    fn join_all(&self) {
        let mut next = 0;
        loop {
            let child = self.children.borrow().get(next).map(|(task, _)| task.clone());
            let Some(child) = child else { break };
            wait_finished(&child, None);
            next += 1;
        }
        if self.children.borrow().iter().any(|(_, handle)| handle.panicked_unjoined()) {
            self.unjoined_panic.set(true);
        }
    }

    /// Kills every child and waits for all of them to finish; runs while the
    /// owner unwinds.
    fn kill_and_join_all(&self) {
        let children: Vec<Rc<Task>> =
            self.children.borrow().iter().map(|(task, _)| task).filter(|c| !c.is_done()).cloned().collect();
        if children.is_empty() {
            return;
        }
        // Only reached while unwinding: say so, so a second kill ends no wait
        // here (a join then waits on) instead of unwinding the owner again.
        self.owner.set_unwinding(true);
        let hub = hub::expect();
        for child in &children {
            hub.kill(child);
        }
        let mut next = 0;
        loop {
            let child = self.children.borrow().get(next).map(|(task, _)| task.clone());
            let Some(child) = child else { return };
            if !child.is_done() {
                hub.kill(&child); // spawned by a child while unwinding
            }
            wait_finished(&child, None);
            next += 1;
        }
    }
}

impl fmt::Debug for Scope<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scope").field("children", &self.children.borrow().len()).finish()
    }
}

/// A handle to join or kill a greenlet spawned in a [`scope`]. Dropping it
/// does not detach the greenlet: the scope still waits for it.
pub struct ScopedJoinHandle<'scope, T> {
    task: Rc<Task>,
    handle: JoinHandle<()>,
    slot: Rc<RefCell<Option<T>>>,
    _scope: PhantomData<&'scope ()>,
}

impl<T> ScopedJoinHandle<'_, T> {
    /// Parks until the greenlet finishes and returns its value.
    ///
    /// # Errors
    ///
    /// A [`JoinError`] if it panicked or was killed.
    ///
    /// # Panics
    ///
    /// Outside a greenlet of the runtime.
    #[track_caller]
    pub fn join(self) -> Result<T, JoinError> {
        self.handle.join().map(|()| self.slot.borrow_mut().take().expect("a greenlet that returned stored its value"))
    }

    /// Kills the greenlet; see [`JoinHandle::kill`](crate::JoinHandle::kill).
    ///
    /// # Panics
    ///
    /// Outside the runtime the greenlet belongs to.
    #[track_caller]
    pub fn kill(&self) {
        hub::expect().kill(&self.task);
    }

    /// Whether the greenlet has finished.
    pub fn is_finished(&self) -> bool {
        self.task.is_done()
    }

    /// The greenlet's id.
    pub fn id(&self) -> u64 {
        self.task.id()
    }
}

impl<T> fmt::Debug for ScopedJoinHandle<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScopedJoinHandle").field("id", &self.task.id()).field("finished", &self.is_finished()).finish()
    }
}
