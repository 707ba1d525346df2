//! The errors of the queues, one per operation, in crossbeam-channel's
//! shape: a failed put hands its value back.

use std::fmt;

/// The queue was shut down (Python's `queue.ShutDown`); a put hands its
/// value back in it.
///
/// ```
/// use runtime::sync::{JoinableQueue, ShutDown};
///
/// let queue = JoinableQueue::new(None);
/// queue.shutdown(false);
/// assert_eq!(queue.put("late"), Err(ShutDown("late")));
/// assert_eq!(queue.get(), Err(ShutDown(())));
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ShutDown<T>(pub T);

impl<T> ShutDown<T> {
    /// The value that was not put.
    pub fn into_inner(self) -> T {
        self.0
    }
}

/// Why a `try_put` failed; the value comes back.
///
/// ```
/// use runtime::sync::{JoinableQueue, TryPutError};
///
/// let queue = JoinableQueue::new(Some(1));
/// queue.try_put(1).unwrap();
/// let err = queue.try_put(2).unwrap_err();
/// assert!(err.is_full());
/// assert_eq!(err.into_inner(), 2);
/// queue.shutdown(false);
/// assert_eq!(queue.try_put(3), Err(TryPutError::ShutDown(3)));
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum TryPutError<T> {
    /// The queue is full (gevent's `Full`).
    Full(T),
    /// The queue was shut down.
    ShutDown(T),
}

impl<T> TryPutError<T> {
    /// The value that was not put.
    pub fn into_inner(self) -> T {
        match self {
            TryPutError::Full(value) | TryPutError::ShutDown(value) => value,
        }
    }

    /// Whether the queue was full.
    pub fn is_full(&self) -> bool {
        matches!(self, TryPutError::Full(_))
    }

    /// Whether the queue was shut down.
    pub fn is_shut_down(&self) -> bool {
        matches!(self, TryPutError::ShutDown(_))
    }
}

/// Why a `put_timeout` failed; the value comes back.
///
/// ```
/// use std::time::Duration;
/// use runtime::sync::{JoinableQueue, PutTimeoutError};
///
/// runtime::run(|| {
///     let queue = JoinableQueue::new(Some(1));
///     queue.put(1).unwrap();
///     let err = queue.put_timeout(2, Duration::from_millis(1)).unwrap_err();
///     assert_eq!(err, PutTimeoutError::Timeout(2));
/// });
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum PutTimeoutError<T> {
    /// The queue stayed full until the deadline.
    Timeout(T),
    /// The queue was shut down.
    ShutDown(T),
}

impl<T> PutTimeoutError<T> {
    /// The value that was not put.
    pub fn into_inner(self) -> T {
        match self {
            PutTimeoutError::Timeout(value) | PutTimeoutError::ShutDown(value) => value,
        }
    }

    /// Whether the deadline passed.
    pub fn is_timeout(&self) -> bool {
        matches!(self, PutTimeoutError::Timeout(_))
    }

    /// Whether the queue was shut down.
    pub fn is_shut_down(&self) -> bool {
        matches!(self, PutTimeoutError::ShutDown(_))
    }
}

/// Why a `try_get` failed.
///
/// ```
/// use runtime::sync::{LifoQueue, TryGetError};
///
/// let stack = LifoQueue::<u8>::new(None);
/// assert_eq!(stack.try_get(), Err(TryGetError::Empty));
/// stack.shutdown(false);
/// assert_eq!(stack.try_get(), Err(TryGetError::ShutDown));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TryGetError {
    /// No value now (gevent's `Empty`).
    Empty,
    /// No value, and the queue was shut down.
    ShutDown,
}

impl TryGetError {
    /// Whether the queue was empty.
    pub fn is_empty(&self) -> bool {
        matches!(self, TryGetError::Empty)
    }

    /// Whether the queue was shut down.
    pub fn is_shut_down(&self) -> bool {
        matches!(self, TryGetError::ShutDown)
    }
}

/// Why a `get_timeout` failed.
///
/// ```
/// use std::time::Duration;
/// use runtime::sync::{GetTimeoutError, JoinableQueue};
///
/// runtime::run(|| {
///     let queue = JoinableQueue::<u8>::new(None);
///     assert_eq!(queue.get_timeout(Duration::from_millis(1)), Err(GetTimeoutError::Timeout));
/// });
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GetTimeoutError {
    /// No value arrived before the deadline.
    Timeout,
    /// No value, and the queue was shut down.
    ShutDown,
}

impl GetTimeoutError {
    /// Whether the deadline passed.
    pub fn is_timeout(&self) -> bool {
        matches!(self, GetTimeoutError::Timeout)
    }

    /// Whether the queue was shut down.
    pub fn is_shut_down(&self) -> bool {
        matches!(self, GetTimeoutError::ShutDown)
    }
}

/// [`JoinableQueue::task_done`](crate::sync::JoinableQueue::task_done) was
/// called more often than values were put (Python's `ValueError`).
///
/// ```
/// use runtime::sync::{JoinableQueue, TaskDoneError};
///
/// let queue = JoinableQueue::new(None);
/// queue.put(1).unwrap();
/// queue.get().unwrap();
/// assert_eq!(queue.task_done(), Ok(()));
/// assert_eq!(queue.task_done(), Err(TaskDoneError));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TaskDoneError;

impl<T> From<ShutDown<T>> for TryPutError<T> {
    fn from(err: ShutDown<T>) -> Self {
        TryPutError::ShutDown(err.0)
    }
}

impl<T> From<ShutDown<T>> for PutTimeoutError<T> {
    fn from(err: ShutDown<T>) -> Self {
        PutTimeoutError::ShutDown(err.0)
    }
}

impl From<ShutDown<()>> for TryGetError {
    fn from(_: ShutDown<()>) -> Self {
        TryGetError::ShutDown
    }
}

impl From<ShutDown<()>> for GetTimeoutError {
    fn from(_: ShutDown<()>) -> Self {
        GetTimeoutError::ShutDown
    }
}

impl<T> fmt::Debug for ShutDown<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ShutDown(..)")
    }
}

impl<T> fmt::Debug for TryPutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TryPutError::Full(_) => f.write_str("Full(..)"),
            TryPutError::ShutDown(_) => f.write_str("ShutDown(..)"),
        }
    }
}

impl<T> fmt::Debug for PutTimeoutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PutTimeoutError::Timeout(_) => f.write_str("Timeout(..)"),
            PutTimeoutError::ShutDown(_) => f.write_str("ShutDown(..)"),
        }
    }
}

const SHUT_DOWN: &str = "the queue was shut down";

impl<T> fmt::Display for ShutDown<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(SHUT_DOWN)
    }
}

impl<T> fmt::Display for TryPutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TryPutError::Full(_) => f.write_str("putting into a full queue"),
            TryPutError::ShutDown(_) => f.write_str(SHUT_DOWN),
        }
    }
}

impl<T> fmt::Display for PutTimeoutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PutTimeoutError::Timeout(_) => f.write_str("timed out waiting to put into a full queue"),
            PutTimeoutError::ShutDown(_) => f.write_str(SHUT_DOWN),
        }
    }
}

impl fmt::Display for TryGetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TryGetError::Empty => f.write_str("getting from an empty queue"),
            TryGetError::ShutDown => f.write_str(SHUT_DOWN),
        }
    }
}

impl fmt::Display for GetTimeoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GetTimeoutError::Timeout => f.write_str("timed out waiting on an empty queue"),
            GetTimeoutError::ShutDown => f.write_str(SHUT_DOWN),
        }
    }
}

impl fmt::Display for TaskDoneError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("task_done called more times than values were put")
    }
}

impl<T> std::error::Error for ShutDown<T> {}
impl<T> std::error::Error for TryPutError<T> {}
impl<T> std::error::Error for PutTimeoutError<T> {}
impl std::error::Error for TryGetError {}
impl std::error::Error for GetTimeoutError {}
impl std::error::Error for TaskDoneError {}
