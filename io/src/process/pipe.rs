//! A child's standard streams on our side: pipes in non-blocking mode,
//! registered with the hub, read and written in blocking style.

use std::fmt;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

use crate::source::Source;

macro_rules! pipe {
    ($(#[$doc:meta])* $name:ident, $std:ident) => {
        $(#[$doc])*
        pub struct $name {
            source: Source<File>,
        }

        impl $name {
            /// Takes over a pipe of a child spawned by `std::process`,
            /// putting it in non-blocking mode and registering it with the
            /// current hub.
            ///
            /// # Errors
            ///
            /// If the pipe cannot be made non-blocking or registered.
            ///
            /// # Panics
            ///
            /// Outside a runtime.
            #[track_caller]
            pub fn from_std(pipe: std::process::$std) -> io::Result<$name> {
                Ok($name { source: Source::new(File::from(OwnedFd::from(pipe)))? })
            }

            /// Removes the pipe from the hub and returns its descriptor (still
            /// in non-blocking mode), for instance to hand it to another
            /// process as its standard input or output.
            pub fn into_owned_fd(self) -> OwnedFd {
                OwnedFd::from(self.source.into_inner())
            }
        }

        impl AsFd for $name {
            fn as_fd(&self) -> BorrowedFd<'_> {
                self.source.as_fd()
            }
        }

        impl AsRawFd for $name {
            fn as_raw_fd(&self) -> RawFd {
                self.source.as_raw_fd()
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($name)).field("fd", &self.as_raw_fd()).finish()
            }
        }
    };
}

macro_rules! impl_read {
    ($name:ident) => {
        impl Read for &$name {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                self.source.read_stream(concat!(stringify!($name), "::read"), buf.len(), |mut file| file.read(buf))
            }
        }

        impl Read for $name {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                (&*self).read(buf)
            }
        }
    };
}

pipe!(
    /// The child's standard input, from [`Child::stdin`](super::Child::stdin):
    /// a write parks only the calling greenlet while the pipe is full.
    /// Dropping it closes the pipe, so the child reads end-of-file.
    ChildStdin,
    ChildStdin
);

pipe!(
    /// The child's standard output, from [`Child::stdout`](super::Child::stdout):
    /// a read parks only the calling greenlet until the child writes (or
    /// exits: end-of-file).
    ChildStdout,
    ChildStdout
);

pipe!(
    /// The child's standard error, from [`Child::stderr`](super::Child::stderr);
    /// see [`ChildStdout`].
    ChildStderr,
    ChildStderr
);

impl_read!(ChildStdout);
impl_read!(ChildStderr);

impl Write for &ChildStdin {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.source.write_stream("ChildStdin::write", buf.len(), |mut file| file.write(buf))
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Write for ChildStdin {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&*self).write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
