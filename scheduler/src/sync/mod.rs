//! Synchronisation between greenlets of one hub, after gevent's primitives.
//!
//! Waiting parks only the calling greenlet. Waiters are served in FIFO order:
//! a permit, value or lock released while greenlets wait is handed to the
//! first of them directly, so none can be starved by late comers. These types
//! belong to one hub's thread (they are not `Send`); share them between
//! greenlets with `Rc`.

mod async_result;
pub mod channel;
mod event;
mod mutex;
mod select;
mod select_macro;
mod semaphore;
pub(crate) mod wait;

pub use async_result::AsyncResult;
pub use event::Event;
pub use mutex::{Condvar, Mutex, MutexGuard};
pub use select::{
    ReadyTimeoutError, Select, SelectTimeoutError, SelectedOperation, TryReadyError, TrySelectError, Waitable, wait_any,
};
pub use semaphore::{OwnedSemaphorePermit, Semaphore, SemaphorePermit};
