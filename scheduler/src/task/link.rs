//! Links: what runs when a greenlet finishes (gevent's `link`,
//! `link_value`, `link_exception`, `unlink`, `has_links`), and the raw
//! links the task side uses itself (a [`Pool`](crate::Pool) gives a member's
//! slot back through one).
//!
//! Link closures are not `Send`, so they live on the greenlet's hub thread,
//! in a table keyed by the address of its join state (the entry holds a
//! `Weak` to it, so the address is not reused while the entry lives), and
//! only that thread links. The outcome is stored on that thread too
//! (`JoinShared::complete`), which fires the links just before: raw links
//! run right there and must not park; user links run in the order they
//! were made, one after the other, in one greenlet spawned for them, each
//! with a copy of the outcome (hence `T: Clone`). A link that panics is
//! logged and the next one runs.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::rc::Rc;
use std::sync::{Arc, Weak};

use crate::error::JoinError;
use crate::hub;
use crate::park::cancel::catch_panic;
use crate::task::join::JoinShared;
use crate::task::{self, JoinHandle};

/// Names a link made with [`JoinHandle::link`] (or `link_value`,
/// `link_exception`), to [`unlink`](JoinHandle::unlink) it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LinkId(u64);

/// A link: called once with the outcome.
pub(crate) type Link<T> = Box<dyn FnOnce(&Result<T, JoinError>)>;

/// User links not run yet, shared by the table and the greenlet running them.
type UserLinks<T> = Rc<RefCell<VecDeque<(u64, Link<T>)>>>;

/// Starts the greenlet that runs the user links.
type Notify<T> = fn(&Result<T, JoinError>, UserLinks<T>, usize);

/// The links of one greenlet.
struct Links<T> {
    /// Keeps the join state's address from being reused while listed.
    _alive: Weak<JoinShared<T>>,
    raw: Vec<Link<T>>,
    user: UserLinks<T>,
    /// Starts the greenlet that runs `user`; set by the first user link,
    /// where `T: Clone` is known. Taken when the greenlet finishes.
    notify: Option<Notify<T>>,
}

thread_local! {
    /// Links of this thread's greenlets, by join state address.
    static TABLE: RefCell<HashMap<usize, Box<dyn Any>>> = RefCell::new(HashMap::new());
    static NEXT_ID: Cell<u64> = const { Cell::new(0) };
}

fn key<T>(shared: &Arc<JoinShared<T>>) -> usize {
    Arc::as_ptr(shared) as usize
}

/// Runs `f` on this greenlet's links, made if missing.
fn with_links<T: 'static, R>(shared: &Arc<JoinShared<T>>, f: impl FnOnce(&mut Links<T>) -> R) -> R {
    TABLE.with(|table| {
        let mut table = table.borrow_mut();
        let entry = table.entry(key(shared)).or_insert_with(|| {
            Box::new(Links::<T> { _alive: Arc::downgrade(shared), raw: Vec::new(), user: Rc::default(), notify: None })
        });
        f(entry.downcast_mut::<Links<T>>().expect("keyed by its join state"))
    })
}

/// Runs `f` on this greenlet's links, if it has any.
fn existing<T: 'static, R>(shared: &Arc<JoinShared<T>>, f: impl FnOnce(&mut Links<T>) -> R) -> Option<R> {
    TABLE.with(|table| {
        let mut table = table.borrow_mut();
        let links = table.get_mut(&key(shared))?.downcast_mut::<Links<T>>()?;
        Some(f(links))
    })
}

/// Panics unless called on the greenlet's hub thread.
#[track_caller]
fn assert_home<T>(handle: &JoinHandle<T>) {
    assert!(
        hub::reactor_id() == handle.shared.hub_id(),
        "a greenlet's links are made on its own hub (greenlet {})",
        handle.id()
    );
}

/// Adds a raw link: `f` runs when the greenlet finishes, on its hub, before
/// anyone it wakes; it must not park. Returns false (and drops `f`) if the
/// greenlet has finished already.
pub(crate) fn raw_link<T: 'static>(handle: &JoinHandle<T>, f: Link<T>) -> bool {
    assert_home(handle);
    if handle.is_finished() {
        return false;
    }
    with_links(&handle.shared, |links| links.raw.push(f));
    handle.shared.set_linked();
    true
}

/// Fires the links of the greenlet whose join state is `shared`, which is
/// about to store `outcome`.
pub(crate) fn fire<T: 'static>(shared: &JoinShared<T>, outcome: &Result<T, JoinError>) {
    let key = std::ptr::from_ref(shared) as usize;
    let raw = TABLE.with(|table| {
        let mut table = table.borrow_mut();
        let links = table.get_mut(&key)?.downcast_mut::<Links<T>>()?;
        let raw = std::mem::take(&mut links.raw);
        if links.notify.is_none() || links.user.borrow().is_empty() {
            table.remove(&key);
            return Some((raw, None));
        }
        Some((raw, links.notify.map(|notify| (notify, links.user.clone()))))
    });
    let Some((raw, notify)) = raw else { return };
    for link in raw {
        link(outcome);
    }
    if let Some((notify, user)) = notify {
        notify(outcome, user, key);
    }
}

/// Spawns the greenlet that runs `user`'s links with a copy of `outcome`.
/// `key` is the greenlet's entry in the table, dropped when they have run
/// (if it is still theirs).
fn spawn_notifier<T: Clone + 'static>(outcome: &Result<T, JoinError>, user: UserLinks<T>, key: usize) {
    if hub::current().is_none() {
        return; // the hub is gone: nobody to run them
    }
    let outcome = copy(outcome);
    task::Builder::new().name("links").spawn(move || {
        loop {
            let next = user.borrow_mut().pop_front();
            let Some((_, link)) = next else { break };
            if let Err(payload) = catch_panic(|| link(&outcome)) {
                tracing::error!("a greenlet's link panicked: {}", greenlet::panic_message(&*payload));
            }
        }
        // Done: drop the entry (unless it belongs to a newer greenlet).
        TABLE.with(|table| {
            let mut table = table.borrow_mut();
            let ours = table
                .get(&key)
                .and_then(|links| links.downcast_ref::<Links<T>>())
                .is_some_and(|links| Rc::ptr_eq(&links.user, &user));
            if ours {
                table.remove(&key);
            }
        });
    });
}

/// A copy of an outcome for links, which only look at it: a panic's payload
/// (which cannot be cloned) is replaced by its message.
fn copy<T: Clone>(outcome: &Result<T, JoinError>) -> Result<T, JoinError> {
    match outcome {
        Ok(value) => Ok(value.clone()),
        Err(error) => Err(error.for_link()),
    }
}

fn next_id() -> u64 {
    NEXT_ID.with(|next| {
        let id = next.get();
        next.set(id + 1);
        id
    })
}

impl<T: Clone + 'static> JoinHandle<T> {
    /// Calls `f` with the greenlet's outcome when it finishes (gevent's
    /// `link`); at once (at the hub's next turn) if it has finished already.
    ///
    /// Links run in the order they were made, one after the other, in a
    /// greenlet spawned for them once this one has finished (so `f` may park,
    /// and `join` on it does not wait for its links). A link that panics is
    /// logged, and the next one runs. A panic's payload cannot be copied, so
    /// the error a link sees carries its message instead.
    ///
    /// ```
    /// use runtime::{spawn, sync::channel};
    /// runtime::run(|| {
    ///     let (tx, rx) = channel::unbounded();
    ///     let handle = spawn(|| 42);
    ///     handle.link(move |outcome| tx.send(*outcome.as_ref().unwrap()).unwrap());
    ///     assert_eq!(rx.recv(), Ok(42));
    ///     assert_eq!(handle.join().unwrap(), 42, "the outcome is still there to join");
    /// });
    /// ```
    ///
    /// # Panics
    ///
    /// Off the greenlet's hub thread (a link is not `Send`).
    #[track_caller]
    pub fn link(&self, f: impl FnOnce(&Result<T, JoinError>) + 'static) -> LinkId {
        self.link_boxed(Box::new(f))
    }

    /// Like [`link`](JoinHandle::link), calling `f` only if the greenlet
    /// returned a value (gevent's `link_value`): not if it panicked or was
    /// killed.
    ///
    /// ```
    /// use std::{cell::Cell, rc::Rc};
    /// runtime::run(|| {
    ///     let seen = Rc::new(Cell::new(0));
    ///     let (s1, s2) = (seen.clone(), seen.clone());
    ///     let ok = runtime::spawn(|| 1);
    ///     ok.link_value(move |outcome| s1.set(s1.get() + *outcome.as_ref().unwrap()));
    ///     let failed = runtime::spawn(|| -> i32 { panic!("boom") });
    ///     failed.link_value(move |_| s2.set(100));
    ///     drop((ok.join(), failed.join()));
    ///     runtime::yield_now(); // the links' greenlets run
    ///     assert_eq!(seen.get(), 1);
    /// });
    /// ```
    ///
    /// # Panics
    ///
    /// Off the greenlet's hub thread.
    #[track_caller]
    pub fn link_value(&self, f: impl FnOnce(&Result<T, JoinError>) + 'static) -> LinkId {
        self.link_boxed(Box::new(move |outcome| {
            if outcome.is_ok() {
                f(outcome);
            }
        }))
    }

    /// Like [`link`](JoinHandle::link), calling `f` only if the greenlet
    /// panicked (gevent's `link_exception`), including a
    /// [`kill_with`](JoinHandle::kill_with): not if it returned or was
    /// killed plainly.
    ///
    /// ```
    /// use std::{cell::RefCell, rc::Rc};
    /// runtime::run(|| {
    ///     let seen = Rc::new(RefCell::new(String::new()));
    ///     let s = seen.clone();
    ///     let failed = runtime::spawn(|| -> i32 { panic!("boom") });
    ///     failed.link_exception(move |outcome| *s.borrow_mut() = outcome.as_ref().unwrap_err().to_string());
    ///     assert!(failed.join().is_err());
    ///     runtime::yield_now();
    ///     assert!(seen.borrow().ends_with("panicked: boom"));
    /// });
    /// ```
    ///
    /// # Panics
    ///
    /// Off the greenlet's hub thread.
    #[track_caller]
    pub fn link_exception(&self, f: impl FnOnce(&Result<T, JoinError>) + 'static) -> LinkId {
        self.link_boxed(Box::new(move |outcome| {
            if outcome.as_ref().is_err_and(JoinError::is_panic) {
                f(outcome);
            }
        }))
    }

    #[track_caller]
    fn link_boxed(&self, f: Link<T>) -> LinkId {
        assert_home(self);
        let id = next_id();
        if self.is_finished() {
            // Its links have fired: join the greenlet running them, if it
            // is still at it, or start one.
            let mut f = Some(f);
            existing(&self.shared, |links| links.user.borrow_mut().push_back((id, f.take().expect("once"))));
            if let Some(f) = f {
                let user: UserLinks<T> = Rc::new(RefCell::new(VecDeque::from([(id, f)])));
                // Peeked on this thread, the only one that takes it while
                // this handle is borrowed.
                if let Some(outcome) = self.shared.peek_outcome(copy) {
                    spawn_notifier(&outcome, user, key(&self.shared));
                }
            }
            return LinkId(id);
        }
        with_links(&self.shared, |links| {
            links.user.borrow_mut().push_back((id, f));
            links.notify = Some(spawn_notifier::<T>);
        });
        self.shared.set_linked();
        LinkId(id)
    }
}

impl<T: 'static> JoinHandle<T> {
    /// Removes a link made with [`link`](JoinHandle::link) (or `link_value`,
    /// `link_exception`) that has not run yet; does nothing otherwise.
    ///
    /// ```
    /// use std::{cell::Cell, rc::Rc};
    /// runtime::run(|| {
    ///     let ran = Rc::new(Cell::new(false));
    ///     let r = ran.clone();
    ///     let handle = runtime::spawn(|| ());
    ///     let id = handle.link(move |_| r.set(true));
    ///     assert_eq!(handle.has_links(), 1);
    ///     handle.unlink(id);
    ///     assert_eq!(handle.has_links(), 0);
    ///     handle.join().unwrap();
    ///     runtime::yield_now();
    ///     assert!(!ran.get());
    /// });
    /// ```
    pub fn unlink(&self, id: LinkId) {
        existing(&self.shared, |links| links.user.borrow_mut().retain(|(link, _)| *link != id.0));
    }

    /// How many links made with [`link`](JoinHandle::link) (or `link_value`,
    /// `link_exception`) have not run yet.
    pub fn has_links(&self) -> usize {
        existing(&self.shared, |links| links.user.borrow().len()).unwrap_or(0)
    }
}

impl fmt::Display for LinkId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "link #{}", self.0)
    }
}
