//! Unix signals delivered to a greenlet.
//!
//! A [`Signals`] set catches the given signals (instead of their default
//! action) and hands them to whichever greenlet calls [`Signals::wait`]; the
//! signal handler only writes to a socket the hub watches, so nothing runs in
//! signal context.

use std::io;
use std::os::unix::net::UnixStream;

use signal_hook::iterator::backend::SignalDelivery;
use signal_hook::iterator::exfiltrator::SignalOnly;

pub use signal_hook::consts::signal::{SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2};

/// A set of signals to wait for.
///
/// ```no_run
/// use runtime::signal::{SIGINT, SIGTERM, Signals};
///
/// runtime::run(|| {
///     let mut signals = Signals::new([SIGINT, SIGTERM])?;
///     let signal = signals.wait()?;
///     println!("stopping on signal {signal}");
///     Ok::<_, std::io::Error>(())
/// })?;
/// # Ok::<_, std::io::Error>(())
/// ```
///
/// While the set exists, the signals no longer have their default effect
/// (SIGINT no longer kills the process). Dropping it stops delivery but does
/// not restore the default action.
pub struct Signals {
    delivery: SignalDelivery<UnixStream, SignalOnly>,
}

impl Signals {
    /// Starts catching `signals`.
    ///
    /// # Errors
    ///
    /// If a handler cannot be installed (e.g. for `SIGKILL`), or the internal
    /// socket pair cannot be created.
    pub fn new(signals: impl IntoIterator<Item = i32>) -> io::Result<Signals> {
        let (read, write) = UnixStream::pair()?;
        read.set_nonblocking(true)?;
        write.set_nonblocking(true)?;
        let delivery = SignalDelivery::with_pipe(read, write, SignalOnly, signals)?;
        Ok(Signals { delivery })
    }

    /// Parks until one of the signals arrives and returns its number.
    ///
    /// # Errors
    ///
    /// If waiting on the internal socket fails.
    ///
    /// # Panics
    ///
    /// Outside a greenlet of the runtime.
    pub fn wait(&mut self) -> io::Result<i32> {
        loop {
            if let Some(signal) = self.delivery.pending().next() {
                return Ok(signal);
            }
            crate::wait::wait_as(self.delivery.get_read(), runtime_scheduler::Direction::Read, None, "Signals::wait")?;
        }
    }

    /// The signals that arrived since the last call, without waiting.
    pub fn pending(&mut self) -> Vec<i32> {
        self.delivery.pending().collect()
    }
}

impl std::fmt::Debug for Signals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signals").finish_non_exhaustive()
    }
}

/// Parks until the process receives SIGINT (Ctrl-C).
///
/// # Errors
///
/// As [`Signals::new`] and [`Signals::wait`].
///
/// # Panics
///
/// Outside a greenlet of the runtime.
pub fn ctrl_c() -> io::Result<()> {
    Signals::new([SIGINT])?.wait().map(drop)
}
