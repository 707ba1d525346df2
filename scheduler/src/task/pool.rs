//! [`Pool`]: a [`Group`] with a limit (gevent's `Pool`), and gevent's
//! mapping methods on it (`apply`, `apply_async`, `map`, the `imap`s in
//! `imap`).
//!
//! Each member holds a slot (a permit of the pool's semaphore) from the
//! moment it joins until it finishes or is discarded. The pool keeps the
//! permits (by a key of its own, with the member's greenlet id for
//! `discard`); a guard in the closure of a member it spawned gives the
//! permit back when the closure is done (returned, unwound, or dropped
//! unrun), and a raw link does so for a greenlet [`add`](Pool::add)ed from
//! outside.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::fmt;
use std::panic;
use std::rc::{Rc, Weak};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::JoinError;
use crate::sync::{OwnedSemaphorePermit, Semaphore};
use crate::task::group::Group;
use crate::task::imap::Imap;
use crate::task::{self, JoinHandle, link};

/// A group that runs at most `size` greenlets at once (gevent's `Pool`):
/// [`spawn`](Pool::spawn) parks the caller while the pool is full. An
/// [`unbounded`](Pool::unbounded) pool never is, and is simply a group with a
/// pool's interface (gevent's `Pool(size=None)`).
///
/// # Worker loops and `catch_unwind`
///
/// A worker that isolates job panics with `std::panic::catch_unwind` also
/// catches the kills and `timeout` expiries that travel as unwinding: the
/// worker survives [`kill`](Pool::kill), and [`join`](Pool::join) waits
/// forever. Use [`catch_panic`](crate::catch_panic), which catches real
/// panics only, or re-raise payloads for which
/// [`is_cancellation`](crate::is_cancellation) is true.
///
/// ```
/// runtime::run(|| {
///     let pool = runtime::Pool::new(2);
///     let handles: Vec<_> = (0..5).map(|i| pool.spawn(move || i)).collect();
///     assert!(pool.len() <= 2);
///     pool.join();
///     assert_eq!(runtime::joinall(handles).len(), 5);
/// });
/// ```
pub struct Pool {
    inner: Rc<Inner>,
}

struct Inner {
    group: Group,
    slots: Arc<Semaphore>,
    /// The slot of each member, by a key of the pool's, with its greenlet
    /// id.
    held: RefCell<HashMap<u64, (u64, OwnedSemaphorePermit)>>,
    next_key: Cell<u64>,
    size: usize,
}

/// The error of [`Pool::try_add`] and [`Pool::add_timeout`]: the pool had
/// no room (gevent's `PoolFull`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PoolFull;

impl fmt::Display for PoolFull {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the pool is full")
    }
}

impl std::error::Error for PoolFull {}

impl Pool {
    /// A pool of `size` greenlets at most.
    pub fn new(size: usize) -> Pool {
        Pool {
            inner: Rc::new(Inner {
                group: Group::new(),
                slots: Arc::new(Semaphore::new(size)),
                held: RefCell::default(),
                next_key: Cell::new(0),
                size,
            }),
        }
    }

    /// A pool without a limit: [`spawn`](Pool::spawn) never parks, and
    /// [`size`](Pool::size) is `usize::MAX`.
    pub fn unbounded() -> Pool {
        // As many permits as there could ever be greenlets.
        Pool::new(usize::MAX)
    }

    /// Another handle on the same pool (for the `imap` feeder).
    pub(crate) fn share(&self) -> Pool {
        Pool { inner: self.inner.clone() }
    }

    /// Spawns a greenlet once the pool has room, parking the caller until then.
    ///
    /// # Panics
    ///
    /// Outside a greenlet of the runtime.
    #[track_caller]
    pub fn spawn<F, T>(&self, f: F) -> JoinHandle<T>
    where
        F: FnOnce() -> T + 'static,
        T: 'static,
    {
        self.spawn_with(task::Builder::new(), f)
    }

    /// Like [`spawn`](Pool::spawn), with a builder.
    ///
    /// # Panics
    ///
    /// Outside a greenlet of the runtime.
    #[track_caller]
    pub fn spawn_with<F, T>(&self, builder: task::Builder, f: F) -> JoinHandle<T>
    where
        F: FnOnce() -> T + 'static,
        T: 'static,
    {
        let slot = self.inner.slots.acquire_owned_as("Pool::spawn");
        self.spawn_holding(builder, f, slot)
    }

    /// Spawns a greenlet if the pool has room now; gives `f` back otherwise.
    ///
    /// # Errors
    ///
    /// `Err(f)` when the pool is full.
    #[track_caller]
    pub fn try_spawn<F, T>(&self, f: F) -> Result<JoinHandle<T>, F>
    where
        F: FnOnce() -> T + 'static,
        T: 'static,
    {
        match self.inner.slots.try_acquire_owned() {
            Some(slot) => Ok(self.spawn_holding(task::Builder::new(), f, slot)),
            None => Err(f),
        }
    }

    /// Spawns `f` as a member holding `slot` until its closure is done.
    #[track_caller]
    fn spawn_holding<F, T>(&self, builder: task::Builder, f: F, slot: OwnedSemaphorePermit) -> JoinHandle<T>
    where
        F: FnOnce() -> T + 'static,
        T: 'static,
    {
        let key = self.hold(0, slot);
        let guard = Release { pool: Rc::downgrade(&self.inner), key };
        let handle = self.inner.group.spawn_with(builder, move || {
            let _guard = guard;
            f()
        });
        if let Some((id, _)) = self.inner.held.borrow_mut().get_mut(&key) {
            *id = handle.id();
        }
        handle
    }

    /// Keeps `slot` for the member with greenlet id `id`; returns its key.
    fn hold(&self, id: u64, slot: OwnedSemaphorePermit) -> u64 {
        let key = self.inner.next_key.get();
        self.inner.next_key.set(key + 1);
        self.inner.held.borrow_mut().insert(key, (id, slot));
        key
    }

    /// Adds an already spawned greenlet of this hub, parking while the pool
    /// is full (gevent's `add`). A greenlet of another hub, one that has
    /// finished or one already in the pool is left out, and takes no slot.
    ///
    /// ```
    /// runtime::run(|| {
    ///     let pool = runtime::Pool::new(1);
    ///     let outside = runtime::spawn(|| runtime::sleep(std::time::Duration::from_millis(5)));
    ///     pool.add(&outside);
    ///     assert!(pool.is_full());
    ///     pool.join();
    ///     assert!(outside.is_finished());
    ///     assert_eq!(pool.free_count(), 1);
    /// });
    /// ```
    ///
    /// # Panics
    ///
    /// Outside a greenlet of the runtime.
    #[track_caller]
    pub fn add<T: 'static>(&self, handle: &JoinHandle<T>) {
        if !self.can_add(handle) {
            return;
        }
        let slot = self.inner.slots.acquire_owned_as("Pool::add");
        self.add_with(handle, slot);
    }

    /// Like [`add`](Pool::add), without parking.
    ///
    /// # Errors
    ///
    /// [`PoolFull`] if the pool has no room now.
    pub fn try_add<T: 'static>(&self, handle: &JoinHandle<T>) -> Result<(), PoolFull> {
        if !self.can_add(handle) {
            return Ok(());
        }
        let slot = self.inner.slots.try_acquire_owned().ok_or(PoolFull)?;
        self.add_with(handle, slot);
        Ok(())
    }

    /// Like [`add`](Pool::add), giving up after `timeout`.
    ///
    /// ```
    /// use std::time::Duration;
    /// runtime::run(|| {
    ///     let pool = runtime::Pool::new(1);
    ///     let busy = pool.spawn(|| runtime::sleep(Duration::from_secs(60)));
    ///     let other = runtime::spawn(|| ());
    ///     assert_eq!(pool.add_timeout(&other, Duration::from_millis(5)), Err(runtime::PoolFull));
    ///     busy.kill();
    /// });
    /// ```
    ///
    /// # Errors
    ///
    /// [`PoolFull`] if the pool had no room within `timeout`.
    ///
    /// # Panics
    ///
    /// Outside a greenlet of the runtime.
    #[track_caller]
    pub fn add_timeout<T: 'static>(&self, handle: &JoinHandle<T>, timeout: Duration) -> Result<(), PoolFull> {
        if !self.can_add(handle) {
            return Ok(());
        }
        let slots = &self.inner.slots;
        let slot = crate::park::time::timeout(timeout, || slots.acquire_owned_as("Pool::add")).map_err(|_| PoolFull)?;
        self.add_with(handle, slot);
        Ok(())
    }

    fn can_add<T>(&self, handle: &JoinHandle<T>) -> bool {
        handle.local_task().is_some_and(|task| !task.is_done()) && !self.contains(handle.id())
    }

    fn add_with<T: 'static>(&self, handle: &JoinHandle<T>, slot: OwnedSemaphorePermit) {
        // It may have finished while the caller waited for room.
        if !self.can_add(handle) {
            return;
        }
        self.inner.group.add(handle);
        let key = self.hold(handle.id(), slot);
        let release = Release { pool: Rc::downgrade(&self.inner), key };
        // Not linked if it finished: then `release` is dropped at once.
        link::raw_link(handle, Box::new(move |_| drop(release)));
    }

    /// Forgets the member with id `id` (gevent's `discard`): the pool no
    /// longer waits for it nor kills it, and its slot is free again. Does
    /// nothing if it is not a member.
    ///
    /// ```
    /// use std::time::Duration;
    /// runtime::run(|| {
    ///     let pool = runtime::Pool::new(1);
    ///     let long = pool.spawn(|| runtime::sleep(Duration::from_secs(60)));
    ///     pool.discard(long.id());
    ///     assert_eq!((pool.len(), pool.free_count()), (0, 1));
    ///     long.kill();
    /// });
    /// ```
    pub fn discard(&self, id: u64) {
        self.inner.group.remove(id);
        let key = self.inner.held.borrow().iter().find_map(|(key, (member, _))| (*member == id).then_some(*key));
        if let Some(key) = key {
            let slot = self.inner.held.borrow_mut().remove(&key);
            drop(slot);
        }
    }

    /// Runs `f` in the pool and returns its value (gevent's `apply`): parks
    /// until it has room and `f` has run. Called from a member of this pool,
    /// it runs `f` right there instead (a member waiting for room would
    /// wait for itself).
    ///
    /// ```
    /// use std::rc::Rc;
    /// runtime::run(|| {
    ///     let pool = Rc::new(runtime::Pool::new(1));
    ///     let p = pool.clone();
    ///     // Inside the pool's only slot, a nested apply runs inline.
    ///     assert_eq!(pool.apply(move || p.apply(|| 6) * 7), 42);
    /// });
    /// ```
    ///
    /// # Panics
    ///
    /// Outside a greenlet of the runtime. A panic of `f` resumes here (with
    /// its payload); if `f`'s greenlet is killed, this panics.
    #[track_caller]
    pub fn apply<T: 'static>(&self, f: impl FnOnce() -> T + 'static) -> T {
        if self.contains(crate::hub::greenlet_id()) {
            return f();
        }
        match self.spawn(f).join() {
            Ok(value) => value,
            Err(error) => propagate(error),
        }
    }

    /// Runs `f` in the pool without waiting (gevent's `apply_async`): never
    /// parks. With room, `f` is spawned in the pool; on a full pool, it is
    /// spawned outside it, in a greenlet that waits for room and runs `f`
    /// while it holds a slot (so the pool's limit holds), but that is no
    /// member ([`join`](Pool::join) does not wait for it).
    ///
    /// ```
    /// runtime::run(|| {
    ///     let pool = runtime::Pool::new(1);
    ///     let first = pool.apply_async(|| 1);
    ///     let second = pool.apply_async(|| 2); // the pool is full: no wait
    ///     assert_eq!(first.join().unwrap() + second.join().unwrap(), 3);
    /// });
    /// ```
    ///
    /// # Panics
    ///
    /// Outside a runtime.
    #[track_caller]
    pub fn apply_async<T: 'static>(&self, f: impl FnOnce() -> T + 'static) -> JoinHandle<T> {
        match self.try_spawn(f) {
            Ok(handle) => handle,
            Err(f) => {
                let slots = self.inner.slots.clone();
                task::Builder::new().spawn(move || {
                    let _slot = slots.acquire_owned_as("Pool::apply_async");
                    f()
                })
            }
        }
    }

    /// Runs `f` on every item in the pool and returns the results in the
    /// items' order (gevent's `map`).
    ///
    /// ```
    /// runtime::run(|| {
    ///     let pool = runtime::Pool::new(2);
    ///     assert_eq!(pool.map(|x: u32| x * x, 1..=4), [1, 4, 9, 16]);
    /// });
    /// ```
    ///
    /// # Panics
    ///
    /// Outside a greenlet of the runtime. The first panic of `f` (in the
    /// items' order) resumes here; if one of its greenlets is killed, this
    /// panics.
    #[track_caller]
    pub fn map<I, T, It>(&self, f: impl Fn(I) -> T + 'static, items: It) -> Vec<T>
    where
        I: 'static,
        T: 'static,
        It: IntoIterator<Item = I>,
        It::IntoIter: 'static,
    {
        self.imap(f, items).map(|result| result.unwrap_or_else(|error| propagate(error))).collect()
    }

    /// Runs `f` on every item in the pool and gives the results, in the
    /// items' order, as they come (gevent's `imap`): a greenlet outside the
    /// pool spawns the items into it as it has room, and the iterator parks
    /// for each result. Dropping the iterator stops the spawning (items
    /// spawned already run on).
    ///
    /// ```
    /// use std::time::Duration;
    /// runtime::run(|| {
    ///     let pool = runtime::Pool::new(3);
    ///     let slow_first = pool.imap(|ms: u64| { runtime::sleep(Duration::from_millis(ms)); ms }, [5, 1, 2]);
    ///     let got: Vec<u64> = slow_first.map(Result::unwrap).collect();
    ///     assert_eq!(got, [5, 1, 2]);
    /// });
    /// ```
    ///
    /// # Panics
    ///
    /// Outside a runtime.
    #[track_caller]
    pub fn imap<I, T, It>(&self, f: impl Fn(I) -> T + 'static, items: It) -> Imap<T>
    where
        I: 'static,
        T: 'static,
        It: IntoIterator<Item = I>,
        It::IntoIter: 'static,
    {
        Imap::start(self.share(), f, items.into_iter(), true, None)
    }

    /// Like [`imap`](Pool::imap), giving the results in the order they
    /// finish (gevent's `imap_unordered`).
    ///
    /// ```
    /// use std::time::Duration;
    /// runtime::run(|| {
    ///     let pool = runtime::Pool::new(3);
    ///     let done = pool.imap_unordered(|ms: u64| { runtime::sleep(Duration::from_millis(ms)); ms }, [30, 1, 10]);
    ///     let got: Vec<u64> = done.map(Result::unwrap).collect();
    ///     assert_eq!(got, [1, 10, 30]);
    /// });
    /// ```
    ///
    /// # Panics
    ///
    /// Outside a runtime.
    #[track_caller]
    pub fn imap_unordered<I, T, It>(&self, f: impl Fn(I) -> T + 'static, items: It) -> Imap<T>
    where
        I: 'static,
        T: 'static,
        It: IntoIterator<Item = I>,
        It::IntoIter: 'static,
    {
        Imap::start(self.share(), f, items.into_iter(), false, None)
    }

    /// Like [`imap`](Pool::imap), with at most `maxsize` results waiting to
    /// be taken (gevent's `imap(maxsize=)`): the spawning pauses until the
    /// iterator takes one.
    ///
    /// ```
    /// runtime::run(|| {
    ///     let pool = runtime::Pool::unbounded();
    ///     let squares = pool.imap_bounded(|x: u64| x * x, 0..1000, 4);
    ///     assert_eq!(squares.map(Result::unwrap).sum::<u64>(), (0..1000).map(|x| x * x).sum());
    /// });
    /// ```
    ///
    /// # Panics
    ///
    /// Outside a runtime, or if `maxsize` is 0.
    #[track_caller]
    pub fn imap_bounded<I, T, It>(&self, f: impl Fn(I) -> T + 'static, items: It, maxsize: usize) -> Imap<T>
    where
        I: 'static,
        T: 'static,
        It: IntoIterator<Item = I>,
        It::IntoIter: 'static,
    {
        assert!(maxsize > 0, "imap_bounded: maxsize must be at least 1");
        Imap::start(self.share(), f, items.into_iter(), true, Some(maxsize))
    }

    /// The most greenlets running at once.
    pub fn size(&self) -> usize {
        self.inner.size
    }

    /// Room for more greenlets now.
    pub fn free_count(&self) -> usize {
        self.inner.slots.available()
    }

    /// Whether the pool has no room now (gevent's `full`).
    pub fn is_full(&self) -> bool {
        self.free_count() == 0
    }

    /// Parks until the pool has room for one more greenlet (gevent's
    /// `wait_available`), without taking it: a server waits here before it
    /// accepts a connection, so that connections beyond the limit stay
    /// queued in the kernel. Another greenlet spawning meanwhile can take the
    /// room again.
    ///
    /// # Panics
    ///
    /// Outside a greenlet of the runtime.
    pub fn wait_available(&self) {
        drop(self.inner.slots.acquire_as("Pool::wait_available"));
    }

    /// Like [`wait_available`](Pool::wait_available), giving up after
    /// `timeout`; returns the room there is then (0 if it gave up).
    ///
    /// ```
    /// use std::time::Duration;
    /// runtime::run(|| {
    ///     let pool = runtime::Pool::new(0); // always full
    ///     assert_eq!(pool.wait_available_timeout(Duration::from_millis(2)), 0);
    /// });
    /// ```
    ///
    /// # Panics
    ///
    /// Outside a greenlet of the runtime.
    pub fn wait_available_timeout(&self, timeout: Duration) -> usize {
        drop(self.inner.slots.acquire_timeout(timeout));
        self.free_count()
    }

    /// Whether the greenlet with id `id` is a member still running; see
    /// [`Group::contains`].
    pub fn contains(&self, id: u64) -> bool {
        self.inner.group.contains(id)
    }

    /// Greenlets running (or started and not yet finished).
    pub fn len(&self) -> usize {
        self.inner.group.len()
    }

    /// Whether no greenlet of the pool is running.
    pub fn is_empty(&self) -> bool {
        self.inner.group.is_empty()
    }

    /// Parks until every greenlet of the pool has finished.
    ///
    /// # Panics
    ///
    /// Outside a greenlet of the runtime.
    pub fn join(&self) {
        self.inner.group.join();
    }

    /// Like [`join`](Pool::join), giving up after `timeout`; returns whether
    /// every greenlet finished.
    ///
    /// # Panics
    ///
    /// Outside a greenlet of the runtime.
    pub fn join_timeout(&self, timeout: Duration) -> bool {
        self.inner.group.join_timeout(timeout)
    }

    /// Like [`join`](Pool::join), giving up at `deadline`; returns whether
    /// every greenlet finished.
    ///
    /// # Panics
    ///
    /// Outside a greenlet of the runtime.
    pub fn join_deadline(&self, deadline: Instant) -> bool {
        self.inner.group.join_deadline(deadline)
    }

    /// Kills every greenlet of the pool, each once; see [`Group::kill`].
    pub fn kill(&self) {
        self.inner.group.kill();
    }

    /// Kills one member, once; see [`Group::killone`].
    ///
    /// # Panics
    ///
    /// Outside a runtime; with `block`, outside a greenlet of the runtime.
    #[track_caller]
    pub fn killone<T>(&self, handle: &JoinHandle<T>, block: bool) {
        self.inner.group.killone(handle, block);
    }

    /// Kills every greenlet of the pool and waits up to `timeout` for them
    /// to finish; see [`Group::kill_timeout`].
    ///
    /// # Panics
    ///
    /// Outside a greenlet of the runtime.
    #[track_caller]
    pub fn kill_timeout(&self, timeout: Duration) -> bool {
        self.inner.group.kill_timeout(timeout)
    }
}

/// Gives a member's slot back when dropped (its closure is done, or it
/// finished, or the pool forgot it already: then nothing is left to give).
struct Release {
    pool: Weak<Inner>,
    key: u64,
}

impl Drop for Release {
    fn drop(&mut self) {
        if let Some(pool) = self.pool.upgrade() {
            let slot = pool.held.borrow_mut().remove(&self.key);
            drop(slot);
        }
    }
}

/// Resumes a greenlet's panic in the caller; panics if it was killed.
#[track_caller]
pub(crate) fn propagate(error: JoinError) -> ! {
    match error.try_into_panic() {
        Ok(payload) => panic::resume_unwind(payload),
        Err(killed) => panic!("{killed}"),
    }
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Pool");
        match self.inner.size {
            usize::MAX => d.field("size", &"unbounded"),
            size => d.field("size", &size),
        };
        d.field("running", &self.len()).finish()
    }
}
