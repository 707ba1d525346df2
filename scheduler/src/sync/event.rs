use std::fmt;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::hub::wait_queue::WaitQueue;
use crate::hub::waiting::WaitingOn;
use crate::park::wait::{self, Waiter, Wakeup};

/// A flag greenlets and threads can wait for (gevent's `Event`).
///
/// [`set`](Event::set) wakes every waiter at that moment, even if the flag
/// is cleared again before they run. `Event` is `Send + Sync`: share it with
/// `Arc` between greenlets of any hub and plain threads (a plain thread
/// blocks in [`wait`](Event::wait)); on one hub, `Rc` is enough.
///
/// ```
/// use std::sync::Arc;
/// use runtime::sync::Event;
///
/// runtime::run(|| {
///     let ready = Arc::new(Event::new());
///     let setter = ready.clone();
///     let thread = std::thread::spawn(move || setter.set());
///     ready.wait();
///     assert!(ready.is_set());
///     thread.join().unwrap();
/// });
/// ```
#[derive(Default)]
pub struct Event {
    flag: AtomicBool,
    waiters: Mutex<WaitQueue<(), Wakeup>>,
}

impl Event {
    /// A cleared event.
    pub fn new() -> Event {
        Event::default()
    }

    /// Sets the flag and wakes every waiter.
    pub fn set(&self) {
        // Stored before the queue is locked: a waiter that checks the flag
        // under the lock either sees it or is in the queue when it is woken.
        self.flag.store(true, Ordering::Release);
        wait::lock(&self.waiters).complete_all(|()| {});
    }

    /// Clears the flag.
    pub fn clear(&self) {
        self.flag.store(false, Ordering::Release);
    }

    /// Whether the flag is set.
    pub fn is_set(&self) -> bool {
        self.flag.load(Ordering::Acquire)
    }

    pub(crate) fn waiters(&self) -> &Mutex<WaitQueue<(), Wakeup>> {
        &self.waiters
    }

    /// Waits until the flag is set (returns at once if it is).
    ///
    /// # Panics
    ///
    /// On a hub's thread outside its greenlets.
    #[track_caller]
    #[cfg_attr(not(debug_assertions), inline(always))] // parks in the caller's frame (see `wait_until`)
    pub fn wait(&self) {
        self.wait_until(None);
    }

    /// Waits until the flag is set or `timeout` passes; returns whether it
    /// was set.
    ///
    /// # Panics
    ///
    /// On a hub's thread outside its greenlets.
    #[track_caller]
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        self.wait_until_outlined(Some(Instant::now() + timeout))
    }

    /// Waits until the flag is set or `deadline` passes; returns whether it
    /// was set.
    ///
    /// # Panics
    ///
    /// On a hub's thread outside its greenlets.
    #[track_caller]
    pub fn wait_deadline(&self, deadline: Instant) -> bool {
        self.wait_until_outlined(Some(deadline))
    }

    /// [`wait_until`](Event::wait_until), not inlined: for the timed waits.
    #[track_caller]
    #[inline(never)]
    fn wait_until_outlined(&self, deadline: Option<Instant>) -> bool {
        self.wait_until(deadline)
    }

    /// Waits until the flag is set or `deadline` passes; returns whether it
    /// was set. Inlined, so that `wait` parks in its caller's frame: no call
    /// level to return through after the switch (see `Hub::switch_to_hub`).
    #[track_caller]
    #[cfg_attr(not(debug_assertions), inline(always))]
    fn wait_until(&self, deadline: Option<Instant>) -> bool {
        if self.is_set() {
            return true;
        }
        let waiter = Waiter::current();
        loop {
            let queue = wait::lock(&self.waiters);
            if self.is_set() {
                return true;
            }
            let on = WaitingOn::Op("Event::wait");
            let waited = wait::wait_in(&waiter, &self.waiters, queue, |q| q, (), on, deadline, |_, ()| {});
            if waited.completed {
                return true;
            }
            if waited.gave_up() {
                return self.is_set();
            }
        }
    }
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event").field("set", &self.is_set()).field("waiters", &wait::lock(&self.waiters).len()).finish()
    }
}
