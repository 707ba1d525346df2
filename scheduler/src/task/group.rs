//! Sets of greenlets: [`Group`], [`Pool`] and [`joinall`].

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::fmt;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::JoinError;
use crate::hub;
use crate::hub::record::Task;
use crate::sync::Semaphore;
use crate::task::{self, JoinHandle, wait_finished};

/// Joins every handle, in order, and returns their results.
///
/// ```
/// runtime::run(|| {
///     let handles: Vec<_> = (1..=3).map(|i| runtime::spawn(move || i * 10)).collect();
///     let results: Vec<i32> = runtime::joinall(handles).into_iter().map(Result::unwrap).collect();
///     assert_eq!(results, [10, 20, 30]);
/// });
/// ```
pub fn joinall<T: 'static>(handles: impl IntoIterator<Item = JoinHandle<T>>) -> Vec<Result<T, JoinError>> {
    handles.into_iter().map(JoinHandle::join).collect()
}

/// A set of greenlets that can be waited for or killed together (gevent's
/// `Group`). Finished greenlets leave the group by themselves.
///
/// A group belongs to its hub and is not `Send`: its members are greenlets of
/// that hub. To collect greenlets' results across hubs, send their
/// [`JoinHandle`]s (which are `Send`) instead.
///
/// ```
/// use std::time::Duration;
/// runtime::run(|| {
///     let group = runtime::Group::new();
///     for i in 0..3 {
///         group.spawn(move || runtime::sleep(Duration::from_millis(i)));
///     }
///     assert_eq!(group.len(), 3);
///     group.join();
///     assert!(group.is_empty());
/// });
/// ```
#[derive(Default)]
pub struct Group {
    /// Members by greenlet id. Finished ones are pruned lazily.
    members: RefCell<HashMap<u64, Rc<Task>>>,
    /// Members after the last pruning; the next one comes when they double.
    pruned_len: Cell<usize>,
}

impl Group {
    /// An empty group.
    pub fn new() -> Group {
        Group::default()
    }

    /// Spawns a greenlet in the group.
    ///
    /// # Panics
    ///
    /// Outside a runtime.
    #[track_caller]
    pub fn spawn<F, T>(&self, f: F) -> JoinHandle<T>
    where
        F: FnOnce() -> T + 'static,
        T: 'static,
    {
        self.spawn_with(task::Builder::new(), f)
    }

    /// Spawns a greenlet configured by `builder` in the group.
    ///
    /// # Panics
    ///
    /// Outside a runtime.
    #[track_caller]
    pub fn spawn_with<F, T>(&self, builder: task::Builder, f: F) -> JoinHandle<T>
    where
        F: FnOnce() -> T + 'static,
        T: 'static,
    {
        let handle = builder.spawn(f);
        self.add(&handle);
        handle
    }

    /// Adds an already spawned greenlet of this hub (a greenlet of another
    /// hub, or one that has finished, is not added).
    pub fn add<T>(&self, handle: &JoinHandle<T>) {
        let Some(task) = handle.local_task().filter(|task| !task.is_done()) else { return };
        let mut members = self.members.borrow_mut();
        members.insert(task.id(), task);
        if members.len() > 2 * self.pruned_len.get().max(32) {
            members.retain(|_, task| !task.is_done());
            self.pruned_len.set(members.len());
        }
    }

    /// Greenlets of the group still running.
    pub fn len(&self) -> usize {
        let mut members = self.members.borrow_mut();
        members.retain(|_, task| !task.is_done());
        self.pruned_len.set(members.len());
        members.len()
    }

    /// Whether every greenlet of the group has finished.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the greenlet with id `id` is a member still running (gevent's
    /// `greenlet in group`). With [`greenlet_id`](crate::greenlet_id), tells
    /// a member from the outside, for example before waiting for the group,
    /// which a member cannot do.
    pub fn contains(&self, id: u64) -> bool {
        self.members.borrow().get(&id).is_some_and(|task| !task.is_done())
    }

    /// Parks until every greenlet of the group has finished (including ones
    /// added meanwhile).
    ///
    /// # Panics
    ///
    /// Outside a greenlet of the runtime.
    pub fn join(&self) {
        self.join_until(None);
    }

    /// Like [`join`](Group::join), giving up after `timeout`; returns whether
    /// every greenlet finished. Those still running stay in the group.
    ///
    /// ```
    /// use std::time::Duration;
    /// runtime::run(|| {
    ///     let group = runtime::Group::new();
    ///     let slow = group.spawn(|| runtime::sleep(Duration::from_secs(60)));
    ///     assert!(!group.join_timeout(Duration::from_millis(10)));
    ///     assert_eq!(group.len(), 1);
    ///     slow.kill();
    ///     assert!(group.join_timeout(Duration::from_secs(60)));
    /// });
    /// ```
    ///
    /// # Panics
    ///
    /// Outside a greenlet of the runtime.
    pub fn join_timeout(&self, timeout: Duration) -> bool {
        self.join_until(Some(Instant::now() + timeout))
    }

    /// Like [`join`](Group::join), giving up at `deadline`; returns whether
    /// every greenlet finished.
    ///
    /// # Panics
    ///
    /// Outside a greenlet of the runtime.
    pub fn join_deadline(&self, deadline: Instant) -> bool {
        self.join_until(Some(deadline))
    }

    fn join_until(&self, deadline: Option<Instant>) -> bool {
        // Each round waits for the members running at its start (each once),
        // then drops the finished ones; greenlets added meanwhile are left for
        // the next round. Members stay in the group until they finish, so a
        // join cut short (by its deadline or a timeout) loses none.
        loop {
            let running: Vec<Rc<Task>> =
                self.members.borrow().values().filter(|task| !task.is_done()).cloned().collect();
            if running.is_empty() {
                self.members.borrow_mut().clear();
                self.pruned_len.set(0);
                return true;
            }
            let mut all_finished = true;
            for task in running {
                if !wait_finished(&task, deadline) {
                    all_finished = false;
                    break;
                }
            }
            let mut members = self.members.borrow_mut();
            members.retain(|_, task| !task.is_done());
            self.pruned_len.set(members.len());
            if !all_finished {
                return false;
            }
        }
    }

    /// Kills every greenlet of the group (see [`JoinHandle::kill`]); does not
    /// wait for them to unwind: follow with [`join`](Group::join) for that.
    #[track_caller]
    pub fn kill(&self) {
        let members: Vec<Rc<Task>> = self.members.borrow().values().cloned().collect();
        let hub = hub::expect();
        for task in members {
            hub.kill(&task);
        }
    }

    /// Kills every greenlet of the group and waits up to `timeout` for them
    /// to finish unwinding (gevent's `kill(timeout=)`); returns whether all
    /// did. Their cleanup may park, so this can take a while.
    ///
    /// # Panics
    ///
    /// Outside a greenlet of the runtime.
    #[track_caller]
    pub fn kill_timeout(&self, timeout: Duration) -> bool {
        self.kill();
        self.join_timeout(timeout)
    }
}

impl fmt::Debug for Group {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Group").field("running", &self.len()).finish()
    }
}

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
    group: Group,
    slots: Arc<Semaphore>,
    size: usize,
}

impl Pool {
    /// A pool of `size` greenlets at most.
    pub fn new(size: usize) -> Pool {
        Pool { group: Group::new(), slots: Arc::new(Semaphore::new(size)), size }
    }

    /// A pool without a limit: [`spawn`](Pool::spawn) never parks, and
    /// [`size`](Pool::size) is `usize::MAX`.
    pub fn unbounded() -> Pool {
        // As many permits as there could ever be greenlets.
        Pool::new(usize::MAX)
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
        let slot = self.slots.acquire_owned_as("Pool::spawn");
        self.group.spawn_with(builder, move || {
            let _slot = slot;
            f()
        })
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
        match self.slots.try_acquire_owned() {
            Some(slot) => Ok(self.group.spawn(move || {
                let _slot = slot;
                f()
            })),
            None => Err(f),
        }
    }

    /// The most greenlets running at once.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Room for more greenlets now.
    pub fn free_count(&self) -> usize {
        self.slots.available()
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
        drop(self.slots.acquire_as("Pool::wait_available"));
    }

    /// Whether the greenlet with id `id` is a member still running; see
    /// [`Group::contains`].
    pub fn contains(&self, id: u64) -> bool {
        self.group.contains(id)
    }

    /// Greenlets running (or started and not yet finished).
    pub fn len(&self) -> usize {
        self.group.len()
    }

    /// Whether no greenlet of the pool is running.
    pub fn is_empty(&self) -> bool {
        self.group.is_empty()
    }

    /// Parks until every greenlet of the pool has finished.
    ///
    /// # Panics
    ///
    /// Outside a greenlet of the runtime.
    pub fn join(&self) {
        self.group.join();
    }

    /// Like [`join`](Pool::join), giving up after `timeout`; returns whether
    /// every greenlet finished.
    ///
    /// # Panics
    ///
    /// Outside a greenlet of the runtime.
    pub fn join_timeout(&self, timeout: Duration) -> bool {
        self.group.join_timeout(timeout)
    }

    /// Like [`join`](Pool::join), giving up at `deadline`; returns whether
    /// every greenlet finished.
    ///
    /// # Panics
    ///
    /// Outside a greenlet of the runtime.
    pub fn join_deadline(&self, deadline: Instant) -> bool {
        self.group.join_deadline(deadline)
    }

    /// Kills every greenlet of the pool.
    pub fn kill(&self) {
        self.group.kill();
    }

    /// Kills every greenlet of the pool and waits up to `timeout` for them
    /// to finish; see [`Group::kill_timeout`].
    ///
    /// # Panics
    ///
    /// Outside a greenlet of the runtime.
    #[track_caller]
    pub fn kill_timeout(&self, timeout: Duration) -> bool {
        self.group.kill_timeout(timeout)
    }
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Pool");
        match self.size {
            usize::MAX => d.field("size", &"unbounded"),
            size => d.field("size", &size),
        };
        d.field("running", &self.len()).finish()
    }
}
