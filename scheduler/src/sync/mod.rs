//! Synchronisation between greenlets, of one hub or of many, and plain
//! threads, after gevent's primitives.
//!
//! Waiting parks only the calling greenlet; a plain thread blocks. Waiters
//! are served in FIFO order: a permit, value or lock released while others
//! wait is handed to the first of them directly, so none can be starved by
//! late comers. Every type is `Send + Sync` when its value is: share it with
//! `Arc` across hubs and threads, or with `Rc` on one hub. A wake-up for a
//! greenlet of the same hub costs no system call; one for another hub or
//! thread goes through that hub's remote queue (or `Thread::unpark`), sent
//! after the primitive's lock is released. [`Select`] and
//! [`select!`](crate::select!) wait for the first of several operations.

mod async_result;
pub mod channel;
mod event;
mod mutex;
pub(crate) mod select;
mod select_macro;
mod semaphore;

pub use async_result::AsyncResult;
pub use event::Event;
pub use mutex::{Condvar, Mutex, MutexGuard};
pub use select::{
    ReadyTimeoutError, Select, SelectTimeoutError, SelectedOperation, TryReadyError, TrySelectError, Waitable, wait_any,
};
pub use semaphore::{OwnedSemaphorePermit, Semaphore, SemaphorePermit};
