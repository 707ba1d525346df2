use std::fmt;

use super::store::Smallest;
use super::{Queue, ShutDown, TryGetError};

/// A queue that hands out its smallest value first (gevent's
/// `PriorityQueue`; put `(priority, value)` tuples to order by a key).
///
/// Waiting getters and putters are served in FIFO order, as in
/// [`JoinableQueue`](crate::sync::JoinableQueue), whose `put`, `get` and
/// `try_get` these are. `Send + Sync` when `T: Send`.
///
/// ```
/// use runtime::sync::PriorityQueue;
///
/// runtime::run(|| {
///     let queue = PriorityQueue::new(None);
///     for job in [(2, "later"), (1, "first"), (3, "last")] {
///         queue.put(job).unwrap();
///     }
///     assert_eq!(queue.get(), Ok((1, "first")));
///     assert_eq!(queue.try_get(), Ok((2, "later")));
///     assert_eq!(queue.len(), 1);
/// });
/// ```
pub struct PriorityQueue<T> {
    queue: Queue<T, Smallest<T>>,
}

impl<T: Ord> PriorityQueue<T> {
    /// A queue holding at most `maxsize` values; `None` (or `Some(0)`) for
    /// no limit.
    pub fn new(maxsize: Option<usize>) -> PriorityQueue<T> {
        PriorityQueue { queue: Queue::new(maxsize) }
    }

    /// Puts `value`, waiting while the queue is full.
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
        self.queue.put(value, None, "PriorityQueue::put").map_err(|err| ShutDown(err.into_inner()))
    }

    /// Takes the smallest value, waiting while the queue is empty.
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
        self.queue.get(None, "PriorityQueue::get").map_err(|_| ShutDown(()))
    }

    /// Takes the smallest value if there is one.
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

impl<T: Ord> fmt::Debug for PriorityQueue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.queue.fmt_as("PriorityQueue", f)
    }
}
