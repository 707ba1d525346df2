//! [`Timeout`]: a timeout as an object (gevent's `Timeout`), started and
//! cancelled by hand rather than scoped to a closure like
//! [`timeout`](crate::timeout).
//!
//! It rides on the scoped timeouts' machinery: starting it takes a scope id
//! and arms a `ScopeTimeout` timer for the greenlet that starts it, which
//! makes that greenlet's next park raise. What the park raises comes from
//! here ([`unwind_payload`]): a started `Timeout` registers its scope in a
//! per-thread table, and the park raises [`Elapsed`] (or the `Timeout`'s
//! payload) instead of a scope's private payload.

use std::any::{Any, TypeId};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::fmt;
use std::rc::{Rc, Weak};
use std::time::{Duration, Instant};

use crate::hub::record::{Pending, Task};
use crate::hub::timer::TimerKey;
use crate::hub::{self, TimerAction};
use crate::park::Parker;
use crate::park::time::{Elapsed, TimeoutUnwind};

thread_local! {
    /// Started `Timeout`s by (hub, scope), until raised or cancelled.
    static STARTED: RefCell<HashMap<(u64, u64), Weak<Inner>>> = RefCell::new(HashMap::new());
    /// Raises so far on this thread: the number of the latest.
    static RAISES: Cell<u64> = const { Cell::new(0) };
}

/// What a park raises for the expiry of timeout scope `scope` of hub `hub`.
pub(crate) fn unwind_payload(hub: u64, scope: u64) -> Box<dyn Any + Send> {
    let started = STARTED.with(|started| started.borrow_mut().remove(&(hub, scope)));
    match started.and_then(|inner| inner.upgrade()) {
        Some(inner) => inner.raise(),
        None => Box::new(TimeoutUnwind { scope }),
    }
}

/// A timeout that interrupts the greenlet that [`start`](Timeout::start)s it
/// (gevent's `Timeout`): once `duration` has passed, that greenlet's next
/// park (any blocking call) panics with [`Elapsed`], or with the payload of
/// [`with_payload`](Timeout::with_payload), unless it was
/// [`cancel`](Timeout::cancel)led first. [`is_timeout`] tells whose timeout
/// a caught payload is. Dropping it cancels it.
///
/// [`timeout`](crate::timeout) is the scoped form, and usually the better
/// one: this is for a deadline that spans code which is no one closure.
///
/// ```
/// use std::time::Duration;
/// use runtime::{Timeout, is_timeout, sleep};
///
/// runtime::run(|| {
///     let deadline = Timeout::start_new(Duration::from_millis(10));
///     let payload = std::panic::catch_unwind(|| sleep(Duration::from_secs(60))).unwrap_err();
///     assert!(is_timeout(&*payload, &deadline));
///     assert!(!deadline.pending());
///
///     let early = Timeout::start_new(Duration::from_millis(50));
///     sleep(Duration::from_millis(1)); // done in time
///     early.cancel();
///     sleep(Duration::from_millis(60)); // nothing raised
/// });
/// ```
#[must_use = "dropping a Timeout cancels it"]
pub struct Timeout {
    inner: Rc<Inner>,
}

struct Inner {
    duration: Duration,
    /// Raised instead of `Elapsed` (once: it cannot be copied).
    payload: RefCell<Option<Box<dyn Any + Send>>>,
    armed: RefCell<Option<Armed>>,
    /// The payload this timeout last raised: its address and type, and the
    /// number of that raise on this thread (a zero-sized payload, such as
    /// `Elapsed`, has no address of its own: it is this timeout's only while
    /// no other raise came since).
    raised: Cell<Option<(usize, TypeId, u64)>>,
}

/// A started timeout: its timer, and whom it interrupts.
struct Armed {
    hub: u64,
    scope: u64,
    timer: TimerKey,
    task: Rc<Task>,
}

/// The address and type of a payload's value, to recognise it again.
fn identity(payload: &(dyn Any + Send)) -> (usize, TypeId) {
    (std::ptr::from_ref(payload).cast::<()>() as usize, Any::type_id(payload))
}

/// Whether the payload has a size, and so an address of its own.
fn sized(payload: &(dyn Any + Send)) -> bool {
    std::mem::size_of_val(payload) > 0
}

impl Inner {
    /// The payload to raise now; remembered for `is_timeout`.
    fn raise(&self) -> Box<dyn Any + Send> {
        self.armed.borrow_mut().take();
        let payload = self.payload.borrow_mut().take().unwrap_or_else(|| Box::new(Elapsed));
        let raise = RAISES.with(|raises| {
            raises.set(raises.get() + 1);
            raises.get()
        });
        let (address, type_id) = identity(&*payload);
        self.raised.set(Some((address, type_id, raise)));
        payload
    }
}

impl Timeout {
    /// A timeout of `duration`, not started.
    pub fn new(duration: Duration) -> Timeout {
        Timeout::make(duration, None)
    }

    /// A timeout of `duration` that raises `payload` instead of [`Elapsed`]
    /// (gevent's `Timeout(seconds, exception)`), not started. The payload
    /// is raised once; a restarted timeout raises `Elapsed` after that.
    ///
    /// ```
    /// use std::time::Duration;
    /// runtime::run(|| {
    ///     let t = runtime::Timeout::with_payload(Duration::from_millis(5), "too slow");
    ///     t.start();
    ///     let payload = std::panic::catch_unwind(|| runtime::sleep(Duration::from_secs(60))).unwrap_err();
    ///     assert_eq!(payload.downcast_ref::<&str>(), Some(&"too slow"));
    ///     assert!(runtime::is_timeout(&*payload, &t));
    /// });
    /// ```
    pub fn with_payload(duration: Duration, payload: impl Any + Send) -> Timeout {
        Timeout::make(duration, Some(Box::new(payload)))
    }

    fn make(duration: Duration, payload: Option<Box<dyn Any + Send>>) -> Timeout {
        Timeout {
            inner: Rc::new(Inner {
                duration,
                payload: RefCell::new(payload),
                armed: RefCell::new(None),
                raised: Cell::new(None),
            }),
        }
    }

    /// A started timeout of `duration` (gevent's `Timeout.start_new`).
    ///
    /// # Panics
    ///
    /// Outside a greenlet of the runtime.
    #[track_caller]
    pub fn start_new(duration: Duration) -> Timeout {
        let timeout = Timeout::new(duration);
        timeout.start();
        timeout
    }

    /// Starts the timeout for the current greenlet: `duration` from now, its
    /// next park raises. A timeout that fired, or was cancelled, can be
    /// started again.
    ///
    /// # Panics
    ///
    /// Outside a greenlet of the runtime, or if it is pending already
    /// (cancel it first to restart it, as in gevent).
    #[track_caller]
    pub fn start(&self) {
        assert!(!self.pending(), "the Timeout is already started; cancel it first to restart it");
        let parker = Parker::current();
        let (hub, task) = (parker.hub(), parker.task());
        let scope = hub.next_scope_id();
        let at = Instant::now() + self.inner.duration;
        let timer = hub.arm_timer(at, TimerAction::ScopeTimeout(task.clone(), scope));
        let id = hub.reactor().id();
        *self.inner.armed.borrow_mut() = Some(Armed { hub: id, scope, timer, task: task.clone() });
        self.inner.raised.set(None);
        STARTED.with(|started| started.borrow_mut().insert((id, scope), Rc::downgrade(&self.inner)));
    }

    /// Whether it is started and has not fired nor been cancelled.
    pub fn pending(&self) -> bool {
        self.inner.armed.borrow().is_some()
    }

    /// Stops the timeout if it is pending: it will not fire (also when its
    /// time passed already but the greenlet has not parked since).
    pub fn cancel(&self) {
        let Some(armed) = self.inner.armed.borrow_mut().take() else { return };
        STARTED.with(|started| started.borrow_mut().remove(&(armed.hub, armed.scope)));
        if let Some(hub) = hub::current().filter(|hub| hub.reactor().id() == armed.hub) {
            hub.cancel_timer(armed.timer);
        }
        // Fired but not raised yet: it is moot now.
        if armed.task.pending() == Pending::Timeout(armed.scope) {
            armed.task.take_pending();
        }
    }

    /// Cancels the timeout (gevent's `close`, which also frees its timer:
    /// here, cancelling does).
    pub fn close(&self) {
        self.cancel();
    }

    /// How long after [`start`](Timeout::start) it fires.
    pub fn duration(&self) -> Duration {
        self.inner.duration
    }
}

impl Drop for Timeout {
    fn drop(&mut self) {
        self.cancel();
    }
}

impl fmt::Debug for Timeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Timeout").field("duration", &self.inner.duration).field("pending", &self.pending()).finish()
    }
}

/// Whether `payload` (a panic's, caught with `catch_unwind`) is what
/// `timeout` raised when it fired: like [`is_cancellation`](crate::is_cancellation),
/// for telling one's own [`Timeout`] from another's (gevent's
/// `except Timeout as t: if t is not mine: raise`).
///
/// A payload of [`with_payload`](Timeout::with_payload) (of a type with a
/// size) is recognised by its address. [`Elapsed`] has none: it is taken
/// for `timeout`'s while no other `Timeout` of this thread raised since, so
/// ask before parking again.
///
/// ```
/// use std::time::Duration;
/// use runtime::{Timeout, is_timeout, sleep};
/// runtime::run(|| {
///     let outer = Timeout::start_new(Duration::from_millis(5));
///     let inner = Timeout::start_new(Duration::from_secs(60));
///     let payload = std::panic::catch_unwind(|| sleep(Duration::from_secs(60))).unwrap_err();
///     assert!(is_timeout(&*payload, &outer));
///     assert!(!is_timeout(&*payload, &inner));
/// });
/// ```
pub fn is_timeout(payload: &(dyn Any + Send), timeout: &Timeout) -> bool {
    let Some((address, type_id, raise)) = timeout.inner.raised.get() else { return false };
    (address, type_id) == identity(payload) && (sized(payload) || RAISES.with(Cell::get) == raise)
}
