//! What a parked greenlet waits for, in words: the descriptions that
//! [`dump`](crate::dump), the deadlock report and the blocking monitor print.

use std::fmt;
use std::time::{Duration, Instant};

use crate::hub::reactor::Direction;

/// What a greenlet is parked on. Small and `Copy`: it is recorded on every
/// park, and formatted only when somebody asks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum WaitingOn {
    /// Not parked.
    Nothing,
    /// An operation named by its API, e.g. `Mutex::lock`, `channel recv`.
    Op(&'static str),
    /// Another greenlet to finish.
    Join(u64),
    /// A deadline, for `sleep`.
    Sleep,
    /// Readiness of a file descriptor in `direction` for the operation `op`
    /// (`TcpStream::read`), with the handle's timeout for that direction.
    Io { op: &'static str, fd: i32, direction: Direction, timeout: Option<Duration> },
}

impl WaitingOn {
    /// Formats the description, with the time left before `deadline`.
    pub(crate) fn describe(self, deadline: Option<Instant>, now: Instant) -> Described {
        Described { on: self, left: deadline.map(|at| at.saturating_duration_since(now)) }
    }
}

/// A [`WaitingOn`] ready to print, e.g. `sleep, 2.3 s left` or
/// `TcpStream::read fd 7, read timeout 5s`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Described {
    on: WaitingOn,
    left: Option<Duration>,
}

impl fmt::Display for Described {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.on {
            WaitingOn::Nothing => f.write_str("nothing")?,
            WaitingOn::Op(op) => f.write_str(op)?,
            WaitingOn::Join(id) => write!(f, "join #{id}")?,
            WaitingOn::Sleep => f.write_str("sleep")?,
            WaitingOn::Io { op, fd, direction, timeout } => {
                write!(f, "{op} fd {fd}")?;
                if let Some(timeout) = timeout {
                    let direction = match direction {
                        Direction::Read => "read",
                        Direction::Write => "write",
                    };
                    write!(f, ", {direction} timeout {}", Seconds(timeout))?;
                }
            }
        }
        if let Some(left) = self.left {
            write!(f, ", {} left", Seconds(left))?;
        }
        Ok(())
    }
}

/// A duration printed the way people read it: `5s`, `2.3 s`, `450 ms`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Seconds(pub(crate) Duration);

impl fmt::Display for Seconds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.0;
        if d.subsec_nanos() == 0 {
            write!(f, "{}s", d.as_secs())
        } else if d < Duration::from_secs(1) {
            write!(f, "{} ms", d.as_millis())
        } else {
            write!(f, "{:.1} s", d.as_secs_f64())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn io_timeout() -> Option<Duration> {
        Some(Duration::from_secs(2))
    }

    #[test]
    fn descriptions_read_like_the_api() {
        let now = Instant::now();
        let io = WaitingOn::Io {
            op: "TcpStream::read",
            fd: 7,
            direction: Direction::Read,
            timeout: Some(Duration::from_secs(5)),
        };
        assert_eq!(io.describe(None, now).to_string(), "TcpStream::read fd 7, read timeout 5s");
        let io = WaitingOn::Io { op: "UdpSocket::send_to", fd: 3, direction: Direction::Write, timeout: io_timeout() };
        assert_eq!(io.describe(None, now).to_string(), "UdpSocket::send_to fd 3, write timeout 2s");
        let sleep = WaitingOn::Sleep.describe(Some(now + Duration::from_millis(2300)), now);
        assert_eq!(sleep.to_string(), "sleep, 2.3 s left");
        assert_eq!(WaitingOn::Join(42).describe(None, now).to_string(), "join #42");
        assert_eq!(WaitingOn::Op("Mutex::lock").describe(None, now).to_string(), "Mutex::lock");
    }
}
