use std::any::Any;
use std::fmt;
use std::panic;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::hub::wait_queue::{WaitKey, WaitQueue};
use crate::hub::waiting::WaitingOn;
use crate::park::Parker;
use crate::park::time::Elapsed;
use crate::park::wait::{self, Waiter, Wakeup};
use crate::sync::select::private::Sealed;
use crate::sync::select::{Waitable, Watch};

enum Slot<T> {
    Empty,
    Value(T),
    /// A panic to raise in the first getter; later getters get a new panic
    /// with the message (payloads cannot be cloned).
    Panic {
        payload: Option<Box<dyn Any + Send>>,
        message: String,
    },
}

/// A value that will be available later, which any number of greenlets can
/// wait for (gevent's `AsyncResult`). It is `Send + Sync` when `T: Send`:
/// greenlets of other hubs and plain threads (which block) can wait too.
///
/// ```
/// use std::rc::Rc;
/// use std::time::Duration;
/// use runtime::sync::AsyncResult;
///
/// runtime::run(|| {
///     let result = Rc::new(AsyncResult::new());
///     let producer = result.clone();
///     runtime::spawn_later(Duration::from_millis(5), move || producer.set("done"));
///     assert_eq!(result.get(), "done");
///     assert!(result.ready());
/// });
/// ```
pub struct AsyncResult<T> {
    state: Mutex<State<T>>,
}

struct State<T> {
    slot: Slot<T>,
    waiters: WaitQueue<(), Wakeup>,
}

impl<T> Default for AsyncResult<T> {
    fn default() -> Self {
        AsyncResult::new()
    }
}

impl<T> AsyncResult<T> {
    /// An empty result.
    pub fn new() -> AsyncResult<T> {
        AsyncResult { state: Mutex::new(State { slot: Slot::Empty, waiters: WaitQueue::new() }) }
    }

    /// Stores the value (replacing any earlier one) and wakes every waiter.
    pub fn set(&self, value: T) {
        self.store(Slot::Value(value));
    }

    /// Stores a panic: getters resume it instead of returning a value.
    pub fn set_panic(&self, payload: Box<dyn Any + Send>) {
        let message = greenlet::panic_message(&*payload);
        self.store(Slot::Panic { payload: Some(payload), message });
    }

    fn store(&self, slot: Slot<T>) {
        let mut state = wait::lock(&self.state);
        let old = std::mem::replace(&mut state.slot, slot);
        state.waiters.complete_all(|()| {});
        drop(state);
        drop(old); // its `Drop` runs outside the lock
    }

    /// Whether a value or panic is stored.
    pub fn ready(&self) -> bool {
        !matches!(wait::lock(&self.state).slot, Slot::Empty)
    }

    /// Parks until a value or panic is stored.
    ///
    /// # Panics
    ///
    /// On a hub's thread outside its greenlets (a plain thread blocks).
    #[track_caller]
    pub fn wait(&self) {
        self.wait_until(None);
    }

    /// Parks until a value or panic is stored or `timeout` passes; returns
    /// whether it is ready.
    #[track_caller]
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        self.wait_until(Some(Instant::now() + timeout))
    }

    #[track_caller]
    fn wait_until(&self, deadline: Option<Instant>) -> bool {
        if self.ready() {
            return true;
        }
        let waiter = Waiter::current();
        loop {
            let state = wait::lock(&self.state);
            if !matches!(state.slot, Slot::Empty) {
                return true;
            }
            let on = WaitingOn::Op("AsyncResult::get");
            let waited = wait::wait_in(&waiter, &self.state, state, |s| &mut s.waiters, (), on, deadline, |_, ()| {});
            if waited.gave_up() {
                return self.ready();
            }
        }
    }
}

impl<T: Clone> AsyncResult<T> {
    /// Parks until the result is available and returns a clone of it.
    ///
    /// # Panics
    ///
    /// Resumes a stored panic. On a hub's thread outside its greenlets (a
    /// plain thread blocks).
    #[track_caller]
    pub fn get(&self) -> T {
        self.wait();
        self.try_get().expect("an AsyncResult waited for is ready")
    }

    /// Like [`get`](AsyncResult::get), giving up after `timeout`.
    ///
    /// # Errors
    ///
    /// [`Elapsed`] if nothing was stored in time.
    #[track_caller]
    pub fn get_timeout(&self, timeout: Duration) -> Result<T, Elapsed> {
        if self.wait_timeout(timeout) { Ok(self.try_get().expect("ready")) } else { Err(Elapsed) }
    }

    /// The value if it is available, without waiting.
    ///
    /// # Panics
    ///
    /// Resumes a stored panic.
    pub fn try_get(&self) -> Option<T> {
        let mut slot = wait::lock(&self.state);
        match &mut slot.slot {
            Slot::Empty => None,
            Slot::Value(value) => Some(value.clone()),
            Slot::Panic { payload, message } => match payload.take() {
                Some(payload) => {
                    drop(slot);
                    panic::resume_unwind(payload)
                }
                None => {
                    let message = message.clone();
                    drop(slot);
                    panic!("{message}")
                }
            },
        }
    }
}

impl<T> Watch for AsyncResult<T> {
    fn is_ready(&self) -> bool {
        self.ready()
    }

    fn watch(&self, parker: &Parker) -> WaitKey {
        wait::lock(&self.state).waiters.push(Wakeup::for_greenlet(parker), ())
    }

    fn unwatch(&self, key: WaitKey) {
        wait::lock(&self.state).waiters.reclaim(key);
    }

    fn identity(&self) -> *const () {
        std::ptr::from_ref(self).cast()
    }
}

impl<T> Sealed for AsyncResult<T> {}

/// Ready once a value or panic is stored.
impl<T> Waitable for AsyncResult<T> {
    #[allow(private_interfaces)]
    fn as_watch(&self) -> &dyn Watch {
        self
    }
}

impl<T> fmt::Debug for AsyncResult<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncResult").field("ready", &self.ready()).finish_non_exhaustive()
    }
}
