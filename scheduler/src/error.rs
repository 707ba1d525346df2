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
        JoinError { id, name, repr: Repr::Killed }
    }

    pub(crate) fn panicked(id: u64, name: Option<Arc<str>>, payload: Box<dyn Any + Send>) -> JoinError {
        JoinError { id, name, repr: Repr::Panicked(payload) }
    }

    /// Whether the greenlet panicked.
    pub fn is_panic(&self) -> bool {
        matches!(self.repr, Repr::Panicked(_))
    }

    /// Whether the greenlet was killed.
    pub fn is_killed(&self) -> bool {
        matches!(self.repr, Repr::Killed)
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
        match self.repr {
            Repr::Panicked(payload) => Ok(payload),
            Repr::Killed => Err(self),
        }
    }

    /// The id of the greenlet.
    pub fn id(&self) -> u64 {
        self.id
    }

    fn who(&self) -> String {
        match &self.name {
            Some(name) => format!("greenlet '{name}' (#{})", self.id),
            None => format!("greenlet #{}", self.id),
        }
    }
}

impl fmt::Display for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.repr {
            Repr::Killed => write!(f, "{} was killed", self.who()),
            Repr::Panicked(payload) => {
                write!(f, "{} panicked: {}", self.who(), greenlet::panic_message(&**payload))
            }
        }
    }
}

impl fmt::Debug for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.repr {
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
