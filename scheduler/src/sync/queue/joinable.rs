use std::fmt;
use std::time::{Duration, Instant};

use super::store::Fifo;
use super::{GetTimeoutError, PutTimeoutError, Queue, ShutDown, TaskDoneError, TryGetError, TryPutError};

/// A FIFO queue whose consumers mark each value done, so that a producer
/// can [`join`](JoinableQueue::join) until all of them are (gevent's
/// `JoinableQueue`, which is its `Queue`; Python's `queue.Queue`).
///
/// Getters and putters wait their turn in FIFO order, and a value put while
/// getters wait goes straight to the first of them. `JoinableQueue` is
/// `Send + Sync` when `T: Send`: share it with `Arc` between greenlets of
/// any hub and plain threads (which block), or with `Rc` on one hub.
///
/// ```
/// use std::sync::Arc;
/// use runtime::sync::JoinableQueue;
///
/// runtime::run(|| {
///     let jobs = Arc::new(JoinableQueue::new(Some(2)));
///     let done = Arc::new(std::sync::atomic::AtomicUsize::new(0));
///     for _ in 0..2 {
///         let (jobs, done) = (jobs.clone(), done.clone());
///         runtime::spawn(move || {
///             while let Ok(n) = jobs.get() {
///                 done.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
///                 jobs.task_done().unwrap();
///             }
///         });
///     }
///     for n in 1..=10 {
///         jobs.put(n).unwrap(); // parks while two values wait
///     }
///     jobs.join(); // until every value is marked done
///     assert_eq!(done.load(std::sync::atomic::Ordering::Relaxed), 55);
///     jobs.shutdown(false); // the workers' `get` fails: they return
/// });
/// ```
pub struct JoinableQueue<T> {
    queue: Queue<T, Fifo<T>>,
}

impl<T> JoinableQueue<T> {
    /// A queue holding at most `maxsize` values; `None` (or `Some(0)`, as in
    /// gevent) for no limit.
    pub fn new(maxsize: Option<usize>) -> JoinableQueue<T> {
        JoinableQueue { queue: Queue::new(maxsize) }
    }

    /// Puts `value` at the back, waiting while the queue is full.
    ///
    /// # Errors
    ///
    /// [`ShutDown`] with the value once the queue is shut down (also when
    /// that happens while it waits).
    ///
    /// # Panics
    ///
    /// If it has to wait on a hub's thread outside its greenlets.
    #[track_caller]
    pub fn put(&self, value: T) -> Result<(), ShutDown<T>> {
        self.queue.put(value, None, "JoinableQueue::put").map_err(|err| ShutDown(err.into_inner()))
    }

    /// Puts `value` if there is room now (gevent's `put_nowait`).
    ///
    /// # Errors
    ///
    /// [`TryPutError::Full`] or [`TryPutError::ShutDown`], with the value.
    pub fn try_put(&self, value: T) -> Result<(), TryPutError<T>> {
        self.queue.try_put(value)
    }

    /// Puts `value`, giving up after `timeout`.
    ///
    /// # Errors
    ///
    /// [`PutTimeoutError::Timeout`] or [`PutTimeoutError::ShutDown`], with
    /// the value.
    #[track_caller]
    pub fn put_timeout(&self, value: T, timeout: Duration) -> Result<(), PutTimeoutError<T>> {
        self.queue.put(value, Some(Instant::now() + timeout), "JoinableQueue::put")
    }

    /// Takes the value at the front, waiting while the queue is empty.
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
        self.queue.get(None, "JoinableQueue::get").map_err(|_| ShutDown(()))
    }

    /// Takes the value at the front if there is one (gevent's `get_nowait`).
    ///
    /// # Errors
    ///
    /// [`TryGetError::Empty`], or [`TryGetError::ShutDown`] once the queue is
    /// shut down and empty.
    pub fn try_get(&self) -> Result<T, TryGetError> {
        self.queue.try_get()
    }

    /// Takes the value at the front, giving up after `timeout`.
    ///
    /// # Errors
    ///
    /// [`GetTimeoutError::Timeout`], or [`GetTimeoutError::ShutDown`] once
    /// the queue is shut down and empty.
    #[track_caller]
    pub fn get_timeout(&self, timeout: Duration) -> Result<T, GetTimeoutError> {
        self.queue.get(Some(Instant::now() + timeout), "JoinableQueue::get")
    }

    /// Marks one value taken with `get` as processed; when every value put is,
    /// [`join`](JoinableQueue::join) returns.
    ///
    /// # Errors
    ///
    /// [`TaskDoneError`] if called more often than values were put.
    pub fn task_done(&self) -> Result<(), TaskDoneError> {
        self.queue.task_done()
    }

    /// Values put and not yet marked done.
    pub fn unfinished_tasks(&self) -> usize {
        self.queue.unfinished()
    }

    /// Waits until every value put has been marked done with
    /// [`task_done`](JoinableQueue::task_done); returns at once if none is
    /// unfinished.
    ///
    /// # Panics
    ///
    /// If it has to wait on a hub's thread outside its greenlets.
    #[track_caller]
    pub fn join(&self) {
        self.queue.join(None);
    }

    /// Like [`join`](JoinableQueue::join), giving up after `timeout`; returns
    /// whether every value is done.
    #[track_caller]
    pub fn join_timeout(&self, timeout: Duration) -> bool {
        self.queue.join(Some(Instant::now() + timeout))
    }

    /// Shuts the queue down (Python 3.13's `Queue.shutdown`): every put
    /// fails from now on, waiting putters included, and gets fail once the
    /// queue is empty. With `immediate`, the values left are dropped and
    /// counted as done, so gets fail at once and `join` returns.
    pub fn shutdown(&self, immediate: bool) {
        self.queue.shutdown(immediate);
    }

    /// Whether [`shutdown`](JoinableQueue::shutdown) was called.
    pub fn is_shut_down(&self) -> bool {
        self.queue.is_shut_down()
    }

    /// Values in the queue (gevent's `qsize`).
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// Whether the queue holds no value.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the queue holds `maxsize` values.
    pub fn is_full(&self) -> bool {
        self.queue.maxsize().is_some_and(|maxsize| self.len() >= maxsize)
    }

    /// The most values it holds, `None` if unbounded.
    pub fn maxsize(&self) -> Option<usize> {
        self.queue.maxsize()
    }
}

impl<T> Default for JoinableQueue<T> {
    fn default() -> Self {
        JoinableQueue::new(None)
    }
}

impl<T> fmt::Debug for JoinableQueue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.queue.fmt_as("JoinableQueue", f)
    }
}
