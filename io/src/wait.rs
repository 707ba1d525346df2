//! Waiting for readiness of any file descriptor (gevent's `wait_read` and
//! `wait_write`), to integrate libraries that do their own non-blocking I/O.

use std::io;
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use runtime_scheduler::Direction;

use crate::source::Source;

/// Parks the current greenlet until `fd` is readable (or has hung up or
/// failed), or `timeout` passes.
///
/// The descriptor is registered with the hub for the duration of the call and
/// must not be one of this runtime's sockets or [`Source`]s (use their own
/// methods). To wait on a descriptor often, wrap it in a [`Source`], which
/// registers it once.
///
/// ```
/// use std::io::Write;
/// use std::os::unix::net::UnixStream;
/// use std::time::Duration;
///
/// runtime::run(|| {
///     let (reader, mut writer) = UnixStream::pair()?;
///     reader.set_nonblocking(true)?;
///     let waited = runtime::io::wait_readable(&reader, Some(Duration::from_millis(10)));
///     assert_eq!(waited.unwrap_err().kind(), std::io::ErrorKind::TimedOut);
///     writer.write_all(b"x")?;
///     runtime::io::wait_readable(&reader, None)?;
///     Ok::<_, std::io::Error>(())
/// })?;
/// # Ok::<_, std::io::Error>(())
/// ```
///
/// # Errors
///
/// `TimedOut` when the timeout passes; `AlreadyExists` if the descriptor is
/// registered with the hub already; what `epoll_ctl(2)` reports.
///
/// # Panics
///
/// Outside a greenlet of the runtime.
pub fn wait_readable(fd: impl AsFd, timeout: Option<Duration>) -> io::Result<()> {
    wait_as(fd, Direction::Read, deadline(timeout), "wait_readable")
}

/// Parks the current greenlet until `fd` is writable (or has hung up or
/// failed), or `timeout` passes. See [`wait_readable`].
///
/// # Errors
///
/// As [`wait_readable`].
///
/// # Panics
///
/// Outside a greenlet of the runtime.
pub fn wait_writable(fd: impl AsFd, timeout: Option<Duration>) -> io::Result<()> {
    wait_as(fd, Direction::Write, deadline(timeout), "wait_writable")
}

/// Parks until `fd` may be ready in `direction`, or `deadline`; `op` names
/// the wait in `runtime::dump`.
pub(crate) fn wait_as(
    fd: impl AsFd,
    direction: Direction,
    deadline: Option<Instant>,
    op: &'static str,
) -> io::Result<()> {
    // Registered for the duration of the call only, and deregistered when the
    // source drops, also when the wait unwinds (a kill); the descriptor is
    // borrowed, not ours to close, and its mode is left alone (we do no I/O on
    // it).
    let source = Source::from_nonblocking(fd.as_fd()).map_err(|err| {
        if err.kind() == io::ErrorKind::AlreadyExists {
            io::Error::new(
                io::ErrorKind::AlreadyExists,
                "this file descriptor is already registered with the hub (use the socket's own methods to wait on it)",
            )
        } else {
            err
        }
    })?;
    // Registering reports the current state as an event, so whatever is
    // ready now wakes us on the hub's next turn; nothing is assumed.
    source.clear_ready(direction);
    source.wait_until(direction, op, deadline)
}

fn deadline(timeout: Option<Duration>) -> Option<Instant> {
    timeout.map(|timeout| Instant::now() + timeout)
}
