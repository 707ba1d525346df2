//! Errors of the greenlet API.

use std::fmt;

/// An operation on a greenlet that its state does not allow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The new parent is the greenlet itself or one of its descendants.
    CyclicParent,
    /// A thread's main greenlet has no parent, and cannot be given one.
    MainHasNoParent,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Error::CyclicParent => "cyclic parent chain",
            Error::MainHasNoParent => "cannot set the parent of a main greenlet",
        })
    }
}

impl std::error::Error for Error {}
