//! Errors of the hub.

use std::any::Any;
use std::fmt;
use std::sync::Arc;

/// Why [`JoinHandle::join`](crate::JoinHandle::join) has no value: the
/// greenlet panicked or was killed.
///
/// ```
/// runtime::run(|| {
///     let err = runtime::spawn(|| -> u32 { panic!("bad input") }).join().unwrap_err();
///     assert!(err.is_panic() && !err.is_killed());
///     assert_eq!(err.into_panic().downcast_ref::<&str>(), Some(&"bad input"));
/// });
/// ```
pub struct JoinError {
    /// Boxed, so that the error is one pointer wide: a join's
    /// `Result<T, JoinError>` then moves in registers, where a wider one
    /// would go through memory at every level it is returned through.
    inner: Box<Inner>,
}

const _: () = assert!(std::mem::size_of::<JoinError>() == std::mem::size_of::<usize>());

struct Inner {
    id: u64,
    name: Option<Arc<str>>,
    repr: Repr,
}

enum Repr {
    Killed,
    Panicked(Box<dyn Any + Send>),
}

impl JoinError {
    pub(crate) fn killed(id: u64, name: Option<Arc<str>>) -> JoinError {
        JoinError { inner: Box::new(Inner { id, name, repr: Repr::Killed }) }
    }

    pub(crate) fn panicked(id: u64, name: Option<Arc<str>>, payload: Box<dyn Any + Send>) -> JoinError {
        JoinError { inner: Box::new(Inner { id, name, repr: Repr::Panicked(payload) }) }
    }

    /// A copy for a link to look at: a panic's payload (which cannot be
    /// cloned) becomes its message.
    pub(crate) fn for_link(&self) -> JoinError {
        let repr = match &self.inner.repr {
            Repr::Killed => Repr::Killed,
            Repr::Panicked(payload) => Repr::Panicked(Box::new(greenlet::panic_message(&**payload))),
        };
        JoinError { inner: Box::new(Inner { id: self.inner.id, name: self.inner.name.clone(), repr }) }
    }

    /// Whether the greenlet panicked.
    pub fn is_panic(&self) -> bool {
        matches!(self.inner.repr, Repr::Panicked(_))
    }

    /// Whether the greenlet was killed.
    pub fn is_killed(&self) -> bool {
        matches!(self.inner.repr, Repr::Killed)
    }

    /// The panic payload, e.g. to resume unwinding with
    /// `std::panic::resume_unwind`.
    ///
    /// # Panics
    ///
    /// If the greenlet was killed rather than panicked.
    pub fn into_panic(self) -> Box<dyn Any + Send> {
        match self.try_into_panic() {
            Ok(payload) => payload,
            Err(err) => panic!("`JoinError::into_panic` on an error that is not a panic: {err}"),
        }
    }

    /// The panic payload, or the error itself if the greenlet was killed.
    ///
    /// # Errors
    ///
    /// Returns `self` if the greenlet was killed.
    pub fn try_into_panic(self) -> Result<Box<dyn Any + Send>, JoinError> {
        if self.is_killed() {
            return Err(self);
        }
        match self.inner.repr {
            Repr::Panicked(payload) => Ok(payload),
            Repr::Killed => unreachable!("checked above"),
        }
    }

    /// The id of the greenlet.
    pub fn id(&self) -> u64 {
        self.inner.id
    }

    fn who(&self) -> String {
        match &self.inner.name {
            Some(name) => format!("greenlet '{name}' (#{})", self.inner.id),
            None => format!("greenlet #{}", self.inner.id),
        }
    }
}

impl fmt::Display for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.inner.repr {
            Repr::Killed => write!(f, "{} was killed", self.who()),
            Repr::Panicked(payload) => {
                write!(f, "{} panicked: {}", self.who(), greenlet::panic_message(&**payload))
            }
        }
    }
}

impl fmt::Debug for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.inner.repr {
            Repr::Killed => write!(f, "JoinError::Killed({})", self.who()),
            Repr::Panicked(_) => write!(f, "JoinError::Panic({})", self.who()),
        }
    }
}

impl std::error::Error for JoinError {}

/// The hub a [`Handle`](crate::Handle) refers to has stopped.
///
/// ```
/// let handle = runtime::run(runtime::Handle::current);
/// // Its hub has stopped: the work is refused.
/// assert!(matches!(handle.spawn(|| 1), Err(runtime::Closed)));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Closed;

impl fmt::Display for Closed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the runtime has stopped")
    }
}

impl std::error::Error for Closed {}
