//! [`JoinSet`]: greenlets joined in the order they finish (tokio's `JoinSet`).

use std::collections::HashMap;
use std::fmt;

use crate::error::JoinError;
use crate::sync::channel::{self, Receiver, Sender};
use crate::task::{self, JoinHandle};

/// A set of greenlets returning `T`, joined in the order they finish.
///
/// Dropping the set kills the greenlets still in it (as tokio's `JoinSet`
/// aborts its tasks), so helpers spawned into a set cannot outlive it.
///
/// ```
/// use std::time::Duration;
/// use runtime::{JoinSet, sleep};
///
/// runtime::run(|| {
///     let mut set = JoinSet::new();
///     for ms in [30, 10, 20] {
///         set.spawn(move || {
///             sleep(Duration::from_millis(ms));
///             ms
///         });
///     }
///     let mut order = Vec::new();
///     while let Some(result) = set.join_next() {
///         order.push(result.unwrap());
///     }
///     assert_eq!(order, [10, 20, 30]);
/// });
/// ```
pub struct JoinSet<T> {
    /// Members by the key the set gave them.
    members: HashMap<u64, JoinHandle<T>>,
    next_key: u64,
    /// Keys of members that finished, in that order.
    finished: Receiver<u64>,
    notify: Sender<u64>,
}

/// Sends a member's key when its closure is done (returned, unwound, or
/// dropped unrun because it was killed before it started).
struct Finished {
    key: u64,
    notify: Sender<u64>,
}

impl Drop for Finished {
    fn drop(&mut self) {
        // An unbounded send never parks; the set may be gone.
        let _ = self.notify.send(self.key);
    }
}

impl<T: 'static> Default for JoinSet<T> {
    fn default() -> Self {
        JoinSet::new()
    }
}

impl<T: 'static> JoinSet<T> {
    /// An empty set.
    pub fn new() -> JoinSet<T> {
        let (notify, finished) = channel::unbounded();
        JoinSet { members: HashMap::new(), next_key: 0, finished, notify }
    }

    /// Spawns a greenlet in the set and returns its id.
    ///
    /// # Panics
    ///
    /// Outside a runtime.
    #[track_caller]
    pub fn spawn<F>(&mut self, f: F) -> u64
    where
        F: FnOnce() -> T + 'static,
    {
        self.spawn_with(task::Builder::new(), f)
    }

    /// Spawns a greenlet configured by `builder` in the set and returns its
    /// id.
    ///
    /// # Panics
    ///
    /// Outside a runtime.
    #[track_caller]
    pub fn spawn_with<F>(&mut self, builder: task::Builder, f: F) -> u64
    where
        F: FnOnce() -> T + 'static,
    {
        let key = self.next_key;
        self.next_key += 1;
        let finished = Finished { key, notify: self.notify.clone() };
        let handle = builder.spawn(move || {
            let _finished = finished;
            f()
        });
        let id = handle.id();
        self.members.insert(key, handle);
        id
    }

    /// Greenlets in the set (running, or finished and not joined yet).
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Parks until a greenlet of the set finishes and returns its result;
    /// `None` once the set is empty. Results come in the order the greenlets
    /// finished.
    ///
    /// # Panics
    ///
    /// Outside a greenlet of the runtime.
    #[track_caller]
    pub fn join_next(&mut self) -> Option<Result<T, JoinError>> {
        while !self.members.is_empty() {
            let key = self.finished.recv().expect("the set holds a sender");
            if let Some(handle) = self.members.remove(&key) {
                // Its closure is done; the result is recorded right after.
                return Some(handle.join());
            }
        }
        None
    }

    /// Kills every greenlet of the set (see
    /// [`JoinHandle::kill`](crate::JoinHandle::kill)); they stay in the set
    /// until joined, with an error for which `is_killed` is true (or their
    /// value, if they finished first).
    ///
    /// # Panics
    ///
    /// Outside a runtime.
    #[track_caller]
    pub fn kill_all(&mut self) {
        for handle in self.members.values() {
            handle.kill();
        }
    }

    /// Joins every greenlet of the set, in the order they finish.
    ///
    /// # Panics
    ///
    /// Outside a greenlet of the runtime.
    #[track_caller]
    pub fn join_all(&mut self) -> Vec<Result<T, JoinError>> {
        let mut results = Vec::with_capacity(self.members.len());
        while let Some(result) = self.join_next() {
            results.push(result);
        }
        results
    }
}

impl<T> Drop for JoinSet<T> {
    fn drop(&mut self) {
        if self.members.is_empty() {
            return;
        }
        for handle in self.members.values() {
            handle.kill();
        }
    }
}

impl<T> fmt::Debug for JoinSet<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinSet").field("len", &self.members.len()).finish()
    }
}
