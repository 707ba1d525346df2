//! Waiting for readiness of any file descriptor (gevent's `wait_read` and
//! `wait_write`), to integrate libraries that do their own non-blocking I/O.

use std::io;
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use runtime_scheduler::{Direction, Registration};

/// Parks the current greenlet until `fd` is readable (or has hung up or
/// failed), or `timeout` passes.
///
/// The descriptor is registered with the hub for the duration of the call and
/// must not be one of this runtime's sockets (use their own methods).
///
/// ```
/// use std::io::Write;
/// use std::os::unix::net::UnixStream;
/// use std::time::Duration;
///
/// runtime_scheduler::run(|| {
///     let (reader, mut writer) = UnixStream::pair()?;
///     reader.set_nonblocking(true)?;
///     let waited = runtime_io::wait_readable(&reader, Some(Duration::from_millis(10)));
///     assert_eq!(waited.unwrap_err().kind(), std::io::ErrorKind::TimedOut);
///     writer.write_all(b"x")?;
///     runtime_io::wait_readable(&reader, None)?;
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
    wait(fd, Direction::Read, timeout)
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
    wait(fd, Direction::Write, timeout)
}

fn wait(fd: impl AsFd, direction: Direction, timeout: Option<Duration>) -> io::Result<()> {
    let deadline = timeout.map(|timeout| Instant::now() + timeout);
    let registration = Registration::new(fd.as_fd()).map_err(|err| {
        if err.kind() == io::ErrorKind::AlreadyExists {
            io::Error::new(
                io::ErrorKind::AlreadyExists,
                "this file descriptor is already registered with the hub (use the socket's own methods to wait on it)",
            )
        } else {
            err
        }
    })?;
    // Deregistered when it drops, also when the wait unwinds (a kill): the
    // registration must not outlive the call, and the descriptor is not ours
    // to close. Registering reports the current state as an event, so
    // whatever is ready now wakes us on the hub's next turn; nothing is
    // assumed.
    registration.clear_ready(direction);
    let op = match direction {
        Direction::Read => "wait_readable",
        Direction::Write => "wait_writable",
    };
    registration.wait(direction, op, deadline)
}
