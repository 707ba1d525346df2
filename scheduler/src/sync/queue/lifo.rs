use std::fmt;

use super::store::Lifo;
use super::{Queue, ShutDown, TryGetError};

/// A queue that hands out the value put last first (gevent's `LifoQueue`):
/// a stack that greenlets and threads can wait on.
///
/// Waiting getters and putters are served in FIFO order, as in
/// [`JoinableQueue`](crate::sync::JoinableQueue), whose `put`, `get` and
/// `try_get` these are. `Send + Sync` when `T: Send`.
///
/// ```
/// use runtime::sync::LifoQueue;
///
/// runtime::run(|| {
///     let stack = LifoQueue::new(None);
///     for n in 1..=3 {
///         stack.put(n).unwrap();
///     }
///     assert_eq!(stack.get(), Ok(3));
///     assert_eq!(stack.try_get(), Ok(2));
///     assert_eq!(stack.len(), 1);
/// });
/// ```
pub struct LifoQueue<T> {
    queue: Queue<T, Lifo<T>>,
}

impl<T> LifoQueue<T> {
    /// A queue holding at most `maxsize` values; `None` (or `Some(0)`) for
    /// no limit.
    pub fn new(maxsize: Option<usize>) -> LifoQueue<T> {
        LifoQueue { queue: Queue::new(maxsize) }
    }

    /// Puts `value` on top, waiting while the queue is full.
    ///
    /// # Errors
    ///
    /// [`ShutDown`] with the value once the queue is shut down.
    ///
    /// # Panics
    ///
    /// If it has to wait on a hub's thread outside its greenlets.
    #[track_caller]
    pub fn put(&self, value: T) -> Result<(), ShutDown<T>> {
        self.queue.put(value, None, "LifoQueue::put").map_err(|err| ShutDown(err.into_inner()))
    }

    /// Takes the value on top, waiting while the queue is empty.
    ///
    /// # Errors
    ///
    /// [`ShutDown`] once the queue is shut down and empty.
    ///
    /// # Panics
    ///
    /// If it has to wait on a hub's thread outside its greenlets.
    #[track_caller]
    pub fn get(&self) -> Result<T, ShutDown<()>> {
        self.queue.get(None, "LifoQueue::get").map_err(|_| ShutDown(()))
    }

    /// Takes the value on top if there is one.
    ///
    /// # Errors
    ///
    /// [`TryGetError::Empty`], or [`TryGetError::ShutDown`] once the queue is
    /// shut down and empty.
    pub fn try_get(&self) -> Result<T, TryGetError> {
        self.queue.try_get()
    }

    /// Shuts the queue down, as
    /// [`JoinableQueue::shutdown`](crate::sync::JoinableQueue::shutdown).
    pub fn shutdown(&self, immediate: bool) {
        self.queue.shutdown(immediate);
    }

    /// Values in the queue.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// Whether the queue holds no value.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<T> fmt::Debug for LifoQueue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.queue.fmt_as("LifoQueue", f)
    }
}
