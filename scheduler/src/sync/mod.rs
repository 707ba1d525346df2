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
//! [`select!`](crate::select!) wait for the first of several operations,
//! [`wait`] for several of them.
//!
//! From gevent: [`Event`], [`AsyncResult`], [`Semaphore`],
//! [`BoundedSemaphore`], [`RLock`] (`gevent.lock`), [`channel`] (`Channel`
//! and `Queue`'s waiting, crossbeam's shape) and [`JoinableQueue`],
//! [`LifoQueue`], [`PriorityQueue`] (`gevent.queue`); [`Mutex`] and
//! [`Condvar`] as std's.

// What this module owns: the primitives above, one type per file, each a
// `std::sync::Mutex` around its state and a `hub::wait_queue` of waiters,
// waiting through `park::wait` (so any greenlet or plain thread may wait),
// and `select`'s `Watch`/`Waitable`, through which `Select` and `wait` see
// them. What it must not know: tasks (spawning, joining); `task::join`
// plugs `JoinHandle` into `Select` from the task side.

mod async_result;
mod bounded_semaphore;
pub mod channel;
mod event;
mod multi_wait;
mod mutex;
mod queue;
mod rlock;
pub(crate) mod select;
mod select_macro;
mod semaphore;

pub use async_result::AsyncResult;
pub use bounded_semaphore::{BoundedSemaphore, OverRelease};
pub use event::Event;
pub use multi_wait::wait;
pub use mutex::{Condvar, Mutex, MutexGuard};
pub use queue::{
    GetTimeoutError, JoinableQueue, LifoQueue, PriorityQueue, PutTimeoutError, ShutDown, TaskDoneError, TryGetError,
    TryPutError,
};
pub use rlock::{RLock, RLockGuard};
pub use select::{
    ReadyTimeoutError, Select, SelectTimeoutError, SelectedOperation, TryReadyError, TrySelectError, Waitable, wait_any,
};
pub use semaphore::{OwnedSemaphorePermit, Semaphore, SemaphorePermit};
