//! [`Group`]: a set of greenlets waited for or killed together (a
//! [`Pool`](crate::Pool) is a group with a limit, in `pool`).

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::hub;
use crate::hub::record::Task;
use crate::task::{self, JoinHandle, wait_finished};

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
    /// Members the group has killed: it kills each once (a member that
    /// swallows its kill is not killed again by the group).
    dying: RefCell<HashSet<u64>>,
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
            drop(members);
            self.prune();
        }
    }

    /// Drops the members that finished.
    fn prune(&self) -> usize {
        let mut members = self.members.borrow_mut();
        members.retain(|_, task| !task.is_done());
        self.dying.borrow_mut().retain(|id| members.contains_key(id));
        self.pruned_len.set(members.len());
        members.len()
    }

    /// Forgets the member with id `id` (gevent's `discard`): the group no
    /// longer waits for it nor kills it. Returns whether it was a member.
    pub(crate) fn remove(&self, id: u64) -> bool {
        self.dying.borrow_mut().remove(&id);
        self.members.borrow_mut().remove(&id).is_some()
    }

    /// Greenlets of the group still running.
    pub fn len(&self) -> usize {
        self.prune()
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
                self.dying.borrow_mut().clear();
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
            self.prune();
            if !all_finished {
                return false;
            }
        }
    }

    /// Kills every greenlet of the group (see [`JoinHandle::kill`]); does not
    /// wait for them to unwind: follow with [`join`](Group::join) for that.
    ///
    /// The group kills each member once: a member it killed already (which
    /// caught the kill and runs on) is left alone by later calls, as in
    /// gevent. [`JoinHandle::kill`] kills it again.
    #[track_caller]
    pub fn kill(&self) {
        let members: Vec<Rc<Task>> = self.members.borrow().values().cloned().collect();
        let hub = hub::expect();
        for task in members {
            if !task.is_done() && self.dying.borrow_mut().insert(task.id()) {
                hub.kill(&task);
            }
        }
    }

    /// Kills one member, once (gevent's `killone`): a greenlet that is not a
    /// member, or that the group killed already, is left alone. With `block`,
    /// parks until it has finished.
    ///
    /// ```
    /// use std::time::Duration;
    /// runtime::run(|| {
    ///     let group = runtime::Group::new();
    ///     let sleeper = group.spawn(|| runtime::sleep(Duration::from_secs(60)));
    ///     group.killone(&sleeper, true);
    ///     assert!(sleeper.is_finished());
    ///     assert!(group.is_empty());
    ///     assert!(sleeper.join().unwrap_err().is_killed());
    /// });
    /// ```
    ///
    /// # Panics
    ///
    /// Outside a runtime; with `block`, outside a greenlet of the runtime.
    #[track_caller]
    pub fn killone<T>(&self, handle: &JoinHandle<T>, block: bool) {
        let Some(task) = handle.local_task() else { return };
        let member = self.members.borrow().get(&task.id()).is_some_and(|member| Rc::ptr_eq(member, &task));
        if member && !task.is_done() && self.dying.borrow_mut().insert(task.id()) {
            hub::expect().kill(&task);
        }
        if block && member {
            wait_finished(&task, None);
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
