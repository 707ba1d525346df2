//! The `Greenlet` handle and its builder.

use std::any::Any;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::mem::ManuallyDrop;
use std::rc::{Rc, Weak};

use crate::error::Error;
use crate::stack;
use crate::switch::{self, Inner, Resume, State};

/// A value passed between greenlets by [`Greenlet::switch`].
///
/// Downcast it to the type you expect: `*value.downcast::<i32>().unwrap()`.
pub type Value = Box<dyn Any>;

/// The panic payload that kills a greenlet.
///
/// [`Greenlet::throw`] it into a greenlet to make it unwind (running its
/// destructors) and finish. Unlike other panics, a `GreenletExit` that is not
/// caught is not re-raised in the parent: the parent receives it as a plain
/// [`Value`] instead, so `g.throw(Box::new(GreenletExit))` returns it.
///
/// It is also what a suspended greenlet receives when the last handle to it is
/// dropped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct GreenletExit;

impl fmt::Display for GreenletExit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("greenlet exit")
    }
}

impl std::error::Error for GreenletExit {}

/// A stackful coroutine that can switch to any other greenlet of its thread.
///
/// `Greenlet` is a cheap, cloneable handle; clones refer to the same greenlet,
/// and equality and hashing go by identity. Greenlets never leave the thread
/// that created them, so the handle is not `Send`:
///
/// ```compile_fail,E0277
/// let g = runtime::greenlet::Greenlet::new(|v| v);
/// std::thread::spawn(move || drop(g));
/// ```
///
/// nor `Sync`:
///
/// ```compile_fail,E0277
/// let g = runtime::greenlet::Greenlet::new(|v| v);
/// std::thread::scope(|s| {
///     s.spawn(|| g.is_dead());
/// });
/// ```
///
/// # Lifecycle
///
/// A greenlet is *pending* until it is first switched to; then it is *active*
/// (running or suspended) until its `run` closure returns or panics, after
/// which it is *dead*. Control then passes to its [parent](Greenlet::parent):
/// the return value comes out of the parent's pending `switch`, a panic
/// resumes unwinding there. Dead parents are skipped, and a pending parent is
/// started with the value as its argument.
///
/// ```
/// use runtime::greenlet::{Greenlet, getcurrent};
///
/// let child = Greenlet::new(|v| {
///     let n = *v.downcast::<i32>().unwrap();
///     // Suspend, handing a value to the parent (here: main).
///     let back = getcurrent().parent().unwrap().switch(Box::new(n + 1));
///     back // returned to the parent when `run` finishes
/// });
/// let first = child.switch(Box::new(1));
/// assert_eq!(*first.downcast::<i32>().unwrap(), 2);
/// let last = child.switch(Box::new("bye"));
/// assert_eq!(*last.downcast::<&str>().unwrap(), "bye");
/// assert!(child.is_dead());
/// ```
///
/// # Dropping
///
/// Dropping the last handle to a suspended greenlet kills it: `GreenletExit`
/// is thrown into it, with the dropping greenlet as its parent for the
/// moment, so that its destructors run and control comes back. A greenlet that
/// catches the exit and suspends again without anyone holding a handle to it
/// can never run again; it is leaked (with a `tracing` warning), never freed
/// while suspended.
#[derive(Clone)]
pub struct Greenlet {
    /// Dropped by hand in `Drop`, which may need to own the last reference.
    inner: ManuallyDrop<Rc<Inner>>,
}

impl Greenlet {
    /// Creates a pending greenlet that will run `run` when first switched to.
    ///
    /// Its parent is the current greenlet. No stack is allocated until it
    /// starts.
    pub fn new(run: impl FnOnce(Value) -> Value + 'static) -> Greenlet {
        Builder::new().build(run)
    }

    /// A builder to set the name, stack size or parent of a new greenlet.
    pub fn builder() -> Builder {
        Builder::new()
    }

    #[inline(always)]
    pub(crate) fn allocate(
        name: Option<Box<str>>,
        parent: Option<Greenlet>,
        stack_size: usize,
        run: Option<Box<dyn FnOnce(Value) -> Value>>,
    ) -> Greenlet {
        Greenlet::from_rc(switch::allocate(name, parent, stack_size, run))
    }

    /// Makes this dead greenlet pending again, to run `run` when it is next
    /// switched to, keeping its allocation, parent, name and stack size; it
    /// gets a new id. A scheduler that keeps a greenlet with each of its task
    /// records spawns this way without creating or dropping a greenlet.
    ///
    /// Gives `run` back if the greenlet is not dead, is a main greenlet, or
    /// is not the only handle to it (another handle, or a weak one, exists):
    /// nobody can tell a revived greenlet from a new one.
    ///
    /// A revived greenlet, when it finishes, keeps its stack for the next
    /// revive (up to 64 such greenlets per thread; beyond that, stacks go
    /// back to the pool as usual). The next run then starts where the last
    /// one ended, without setting up a new stack. Dropping the greenlet
    /// gives the stack back.
    ///
    /// ```
    /// use runtime::greenlet::Greenlet;
    ///
    /// let mut g = Greenlet::new(|_| Box::new(1));
    /// let first = g.id();
    /// assert_eq!(*g.switch(Box::new(())).downcast::<i32>().unwrap(), 1);
    /// assert!(g.revive(|_| Box::new(2)).is_ok());
    /// assert!(!g.is_started() && g.id() != first);
    /// assert_eq!(*g.switch(Box::new(())).downcast::<i32>().unwrap(), 2);
    ///
    /// let other = g.clone(); // not the only handle
    /// assert!(g.revive(|_| Box::new(3)).is_err());
    /// # drop(other);
    /// ```
    pub fn revive<F>(&mut self, run: F) -> Result<(), F>
    where
        F: FnOnce(Value) -> Value + 'static,
    {
        if !switch::revivable(&mut self.inner) {
            return Err(run);
        }
        switch::revive(&mut self.inner, Box::new(run));
        Ok(())
    }

    /// Makes a new handle from the pointer of a live greenlet.
    ///
    /// # Safety
    ///
    /// `ptr` must come from [`Greenlet::inner_ptr`] of a greenlet that is
    /// still referenced by some handle.
    pub(crate) unsafe fn from_inner_ptr(ptr: *const Inner) -> Greenlet {
        // SAFETY: the caller guarantees `ptr` came from `Rc::as_ptr` of a live
        // Rc; taking a new strong count keeps it alive for the new handle.
        unsafe {
            Rc::increment_strong_count(ptr);
            Greenlet::from_rc(Rc::from_raw(ptr))
        }
    }

    pub(crate) fn from_rc(inner: Rc<Inner>) -> Greenlet {
        Greenlet { inner: ManuallyDrop::new(inner) }
    }

    pub(crate) fn inner(&self) -> &Rc<Inner> {
        &self.inner
    }

    pub(crate) fn inner_ptr(&self) -> *const Inner {
        Rc::as_ptr(&self.inner)
    }

    /// Transfers control to this greenlet, delivering `value`; returns the
    /// value with which control next comes back to the caller.
    ///
    /// - A pending greenlet starts: `value` becomes the argument of its `run`.
    /// - A suspended greenlet resumes: `value` comes out of its own pending
    ///   `switch`.
    /// - A dead greenlet passes `value` on to its first live ancestor (which
    ///   may be the caller itself: then `switch` returns `value` at once).
    /// - Switching to the current greenlet returns `value` at once.
    ///
    /// # Panics
    ///
    /// Resumes unwinding if control comes back with a panic: one thrown at the
    /// caller, or one escaping a child whose parent the caller is. Panics if
    /// the greenlet cannot get a stack, naming the cause.
    #[inline]
    pub fn switch(&self, value: Value) -> Value {
        switch::transfer(self, Resume::Value(value))
    }

    /// Raises `payload` as a panic in this greenlet, at the point where it is
    /// suspended; returns what control next comes back with, like
    /// [`switch`](Greenlet::switch).
    ///
    /// - If the greenlet catches the panic and switches back, that value is
    ///   returned.
    /// - If it does not catch it, it dies and the panic goes to its parent
    ///   chain; a [`GreenletExit`] arrives there as a value instead.
    /// - A pending greenlet dies without running its body.
    /// - A dead greenlet passes the panic to its first live ancestor.
    /// - Throwing into the current greenlet panics at once.
    ///
    /// ```
    /// use runtime::greenlet::{Greenlet, GreenletExit, getcurrent};
    ///
    /// let g = Greenlet::new(|_| getcurrent().parent().unwrap().switch(Box::new(())));
    /// g.switch(Box::new(()));
    /// let exit = g.throw(Box::new(GreenletExit));
    /// assert!(exit.is::<GreenletExit>());
    /// assert!(g.is_dead());
    /// ```
    pub fn throw(&self, payload: Box<dyn Any + Send>) -> Value {
        switch::transfer(self, Resume::Throw(payload))
    }

    /// The greenlet that receives control when this one finishes. `None` only
    /// for a thread's main greenlet.
    pub fn parent(&self) -> Option<Greenlet> {
        self.inner.parent.borrow().clone()
    }

    /// Changes the parent.
    ///
    /// ```
    /// use runtime::greenlet::{Error, Greenlet, getcurrent};
    ///
    /// let (a, b) = (Greenlet::new(|v| v), Greenlet::new(|v| v));
    /// b.set_parent(&a).unwrap(); // when b finishes, control goes to a
    /// assert_eq!(a.set_parent(&b), Err(Error::CyclicParent)); // b descends from a
    /// assert_eq!(getcurrent().set_parent(&a), Err(Error::MainHasNoParent));
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::CyclicParent`] if `parent` is this greenlet or one of its
    /// descendants; [`Error::MainHasNoParent`] for a main greenlet.
    pub fn set_parent(&self, parent: &Greenlet) -> Result<(), Error> {
        if self.inner.main {
            return Err(Error::MainHasNoParent);
        }
        let mut ancestor = Some(parent.clone());
        while let Some(greenlet) = ancestor {
            if greenlet == *self {
                return Err(Error::CyclicParent);
            }
            ancestor = greenlet.parent();
        }
        let old = self.inner.parent.replace(Some(parent.clone()));
        drop(old);
        Ok(())
    }

    /// Whether the greenlet has been switched to at least once (or killed).
    pub fn is_started(&self) -> bool {
        self.inner.state.get() != State::Pending
    }

    /// Whether the greenlet is running or suspended: started and not dead.
    pub fn is_active(&self) -> bool {
        self.inner.state.get() == State::Active
    }

    /// Whether the greenlet has finished, or was killed before it started.
    pub fn is_dead(&self) -> bool {
        self.inner.state.get() == State::Dead
    }

    /// Whether this is a thread's main greenlet (its original stack).
    pub fn is_main(&self) -> bool {
        self.inner.main
    }

    /// Whether this greenlet is the one running now.
    pub fn is_current(&self) -> bool {
        switch::is_current(self)
    }

    /// A number that identifies the greenlet in this process.
    pub fn id(&self) -> u64 {
        self.inner.id
    }

    /// The name given with [`Builder::name`] (`"main"` for main greenlets),
    /// borrowed from the handle.
    pub fn name(&self) -> Option<&str> {
        self.inner.name.as_deref()
    }

    /// Gives the memory of this suspended greenlet's stack below where it
    /// suspended back to the kernel, keeping a page of margin: a greenlet that
    /// once went deep and now waits keeps only the pages it still uses. Its
    /// frames are untouched, and the pages given back are faulted in again
    /// (as zeros) if it goes deep again.
    ///
    /// Returns the bytes of stack given back (the range, whether resident or
    /// not): 0 for a greenlet that is pending, running, dead, the main
    /// greenlet, or trimmed already since it last switched out. Costs one
    /// `madvise` system call otherwise.
    ///
    /// ```
    /// use runtime::greenlet::{Greenlet, getcurrent};
    ///
    /// let g = Greenlet::new(|_| {
    ///     let main = getcurrent().parent().unwrap();
    ///     main.switch(Box::new(()))
    /// });
    /// g.switch(Box::new(())); // it runs, then suspends
    /// assert!(g.trim_stack() > 0);
    /// assert_eq!(g.trim_stack(), 0, "nothing more until it runs again");
    /// assert_eq!(getcurrent().trim_stack(), 0, "the running greenlet is never trimmed");
    /// ```
    pub fn trim_stack(&self) -> usize {
        switch::trim_stack(&self.inner)
    }

    /// Asks the processor to start loading the top of this suspended
    /// greenlet's stack, where a switch to it reads first. A scheduler that
    /// knows which greenlet runs next calls it ahead of the switch, so that
    /// a stack no cache holds (one of many idle connections, a sleeper whose
    /// timer fired) is on its way meanwhile. Only a hint: it does nothing for
    /// a greenlet that is not started or finished (nor on processors other
    /// than x86-64), and nothing useful for the running one.
    ///
    /// ```
    /// use runtime::greenlet::{Greenlet, getcurrent};
    ///
    /// let g = Greenlet::new(|_| {
    ///     let main = getcurrent().parent().unwrap();
    ///     main.switch(Box::new(()))
    /// });
    /// g.prefetch_stack(); // not started: nothing to load
    /// g.switch(Box::new(())); // it runs, then suspends
    /// g.prefetch_stack(); // the hint for the switch below
    /// g.switch(Box::new(())); // it finishes
    /// g.prefetch_stack(); // finished: nothing to load
    /// assert!(g.is_dead());
    /// ```
    #[inline]
    pub fn prefetch_stack(&self) {
        switch::prefetch_stack(&self.inner);
    }

    /// Asks the processor to start loading the record where this greenlet's
    /// stack pointer is kept, so that a [`prefetch_stack`](Self::prefetch_stack)
    /// made later (for the greenlet after the next one, say) does not wait
    /// for it. Only a hint, as `prefetch_stack` is.
    #[inline]
    pub fn prefetch_stack_pointer(&self) {
        switch::prefetch_stack_pointer(&self.inner);
    }

    /// The usable size of the greenlet's stack in bytes (rounded up to pages).
    pub fn stack_size(&self) -> usize {
        self.inner.stack_size
    }

    /// A weak handle, which does not keep the greenlet alive.
    pub fn downgrade(&self) -> WeakGreenlet {
        WeakGreenlet { inner: Rc::downgrade(&self.inner) }
    }

    fn state_words(&self) -> &'static str {
        match self.inner.state.get() {
            State::Pending => "pending",
            State::Dead => "dead",
            State::Active if self.is_current() => "current active started",
            State::Active => "suspended active started",
        }
    }
}

impl Drop for Greenlet {
    fn drop(&mut self) {
        // SAFETY: `self.inner` is not used again after being taken here.
        let inner = unsafe { ManuallyDrop::take(&mut self.inner) };
        if Rc::strong_count(&inner) == 1 {
            match inner.state.get() {
                // The last handle to a suspended greenlet: kill it first.
                State::Active if !inner.main => switch::on_last_handle(Greenlet::from_rc(inner)),
                // A dead greenlet nobody can reach: keep its allocation.
                State::Dead if Rc::weak_count(&inner) == 0 => switch::recycle(inner),
                _ => drop(inner),
            }
        }
    }
}

impl PartialEq for Greenlet {
    fn eq(&self, other: &Greenlet) -> bool {
        Rc::ptr_eq(&self.inner, &other.inner)
    }
}

impl Eq for Greenlet {}

impl Hash for Greenlet {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.inner.id.hash(state);
    }
}

impl fmt::Debug for Greenlet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("Greenlet");
        s.field("id", &self.inner.id);
        if let Some(name) = &self.inner.name {
            s.field("name", name);
        }
        let state = if self.inner.main { format!("{} main", self.state_words()) } else { self.state_words().into() };
        s.field("state", &state).finish()
    }
}

/// A weak handle to a greenlet, from [`Greenlet::downgrade`].
///
/// Like [`Greenlet`], it stays on its thread: it is not `Send`
///
/// ```compile_fail,E0277
/// let weak = runtime::greenlet::Greenlet::new(|v| v).downgrade();
/// std::thread::spawn(move || drop(weak));
/// ```
///
/// nor `Sync`:
///
/// ```compile_fail,E0277
/// let weak = runtime::greenlet::Greenlet::new(|v| v).downgrade();
/// std::thread::scope(|s| {
///     s.spawn(|| weak.upgrade().is_none());
/// });
/// ```
#[derive(Clone, Debug, Default)]
pub struct WeakGreenlet {
    inner: Weak<Inner>,
}

impl WeakGreenlet {
    /// A handle to the greenlet, if it still exists.
    pub fn upgrade(&self) -> Option<Greenlet> {
        self.inner.upgrade().map(Greenlet::from_rc)
    }
}

/// The greenlet running on this thread. The first call on a thread creates
/// the thread's main greenlet, which stands for its original stack.
pub fn getcurrent() -> Greenlet {
    switch::current()
}

/// Configures and creates a greenlet.
///
/// ```
/// use runtime::greenlet::Greenlet;
///
/// let g = Greenlet::builder().name("worker").stack_size(32 * 1024).build(|v| v);
/// assert_eq!(g.name(), Some("worker"));
/// assert_eq!(g.stack_size(), 32 * 1024);
/// ```
#[derive(Debug, Default)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct Builder {
    name: Option<String>,
    stack_size: Option<usize>,
    parent: Option<Greenlet>,
}

impl Builder {
    /// A builder with no name, the thread's default stack size and the current
    /// greenlet as parent.
    pub fn new() -> Builder {
        Builder::default()
    }

    /// Names the greenlet, for `Debug` output, tracing and overflow reports.
    pub fn name(mut self, name: impl Into<String>) -> Builder {
        self.name = Some(name.into());
        self
    }

    /// Sets the usable stack size in bytes, rounded up to whole pages. The
    /// default is [`stack::default_size`].
    ///
    /// A size too large for any address space (beyond 2^56 bytes on 64-bit
    /// targets) makes [`build`](Builder::build) panic; a smaller one that
    /// cannot be had makes starting the greenlet panic.
    pub fn stack_size(mut self, bytes: usize) -> Builder {
        self.stack_size = Some(bytes);
        self
    }

    /// Sets the parent; the default is the current greenlet.
    pub fn parent(mut self, parent: &Greenlet) -> Builder {
        self.parent = Some(parent.clone());
        self
    }

    /// Creates the greenlet. It is pending: nothing runs and no stack is
    /// allocated until it is first switched to.
    ///
    /// # Panics
    ///
    /// If the stack size is too large for any address space: "stack size N
    /// is too large".
    #[track_caller]
    pub fn build(self, run: impl FnOnce(Value) -> Value + 'static) -> Greenlet {
        let parent = self.parent.unwrap_or_else(getcurrent);
        let stack_size = stack::round_size(self.stack_size.unwrap_or_else(stack::default_size));
        Greenlet::allocate(self.name.map(String::into_boxed_str), Some(parent), stack_size, Some(Box::new(run)))
    }
}
