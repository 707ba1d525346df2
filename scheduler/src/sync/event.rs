use std::cell::{Cell, RefCell};
use std::fmt;
use std::time::{Duration, Instant};

use crate::park::Parker;
use crate::wait_queue::WaitQueue;
use crate::waiting::WaitingOn;

/// A flag greenlets can wait for (gevent's `Event`).
///
/// [`set`](Event::set) wakes every greenlet waiting at that moment, even if
/// the flag is cleared again before they run.
///
/// ```
/// use std::rc::Rc;
/// use runtime_scheduler::sync::Event;
///
/// runtime_scheduler::run(|| {
///     let ready = Rc::new(Event::new());
///     let setter = ready.clone();
///     runtime_scheduler::spawn(move || setter.set());
///     ready.wait();
///     assert!(ready.is_set());
/// });
/// ```
#[derive(Default)]
pub struct Event {
    flag: Cell<bool>,
    waiters: RefCell<WaitQueue<()>>,
}

impl Event {
    /// A cleared event.
    pub fn new() -> Event {
        Event::default()
    }

    /// Sets the flag and wakes every waiting greenlet.
    pub fn set(&self) {
        self.flag.set(true);
        self.waiters.borrow_mut().complete_all(|()| {});
    }

    /// Clears the flag.
    pub fn clear(&self) {
        self.flag.set(false);
    }

    /// Whether the flag is set.
    pub fn is_set(&self) -> bool {
        self.flag.get()
    }

    pub(crate) fn waiters(&self) -> &RefCell<WaitQueue<()>> {
        &self.waiters
    }

    /// Parks until the flag is set (returns at once if it is).
    ///
    /// # Panics
    ///
    /// Outside a greenlet of the runtime.
    #[track_caller]
    pub fn wait(&self) {
        self.wait_until(None);
    }

    /// Parks until the flag is set or `timeout` passes; returns whether it
    /// was set.
    ///
    /// # Panics
    ///
    /// Outside a greenlet of the runtime.
    #[track_caller]
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        self.wait_until(Some(Instant::now() + timeout))
    }

    /// Parks until the flag is set or `deadline` passes; returns whether it
    /// was set.
    ///
    /// # Panics
    ///
    /// Outside a greenlet of the runtime.
    #[track_caller]
    pub fn wait_deadline(&self, deadline: Instant) -> bool {
        self.wait_until(Some(deadline))
    }

    #[track_caller]
    fn wait_until(&self, deadline: Option<Instant>) -> bool {
        loop {
            if self.flag.get() {
                return true;
            }
            let waited = Parker::current().wait_in(&self.waiters, (), WaitingOn::Op("Event::wait"), deadline);
            if waited.completed {
                return true;
            }
            if waited.gave_up() {
                return self.flag.get();
            }
        }
    }
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event").field("set", &self.flag.get()).field("waiters", &self.waiters.borrow().len()).finish()
    }
}
