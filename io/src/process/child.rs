//! [`Child`]: a running child process whose waits park only the calling
//! greenlet, on a pidfd registered with the hub.

use std::fmt;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, OwnedFd};
use std::process::{ExitStatus, Output};
use std::time::{Duration, Instant};

use runtime_scheduler::Direction;

use super::pipe::{ChildStderr, ChildStdin, ChildStdout};
use super::sys;
use crate::source::Source;

/// How often a child is polled when the kernel has no pidfds (before Linux
/// 5.3): from the first value, doubling up to the second.
const POLL_MIN: Duration = Duration::from_millis(1);
const POLL_MAX: Duration = Duration::from_millis(50);

/// A child process started by [`Command`](super::Command), like
/// `std::process::Child`, but `wait`, `wait_timeout` and
/// `wait_with_output`, and reads and writes of its pipes, park only the
/// calling greenlet.
///
/// ```
/// use std::io::{Read, Write};
/// use runtime::process::{Command, Stdio};
///
/// runtime::run(|| {
///     let mut child = Command::new("cat").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn()?;
///     let mut stdin = child.stdin.take().unwrap();
///     runtime::spawn(move || stdin.write_all(b"through cat")); // closes stdin when done
///     let mut echoed = String::new();
///     child.stdout.as_mut().unwrap().read_to_string(&mut echoed)?;
///     assert_eq!(echoed, "through cat");
///     assert!(child.wait()?.success());
///     Ok::<_, std::io::Error>(())
/// })?;
/// # Ok::<_, std::io::Error>(())
/// ```
///
/// As with std, dropping a `Child` leaves the process running, unless the
/// command set [`kill_on_drop`](super::Command::kill_on_drop).
pub struct Child {
    /// The child's standard input, if it was [piped](super::Stdio::piped).
    pub stdin: Option<ChildStdin>,
    /// The child's standard output, if it was [piped](super::Stdio::piped).
    pub stdout: Option<ChildStdout>,
    /// The child's standard error, if it was [piped](super::Stdio::piped).
    pub stderr: Option<ChildStderr>,
    /// `None` only once `drop` has handed it to a reaper.
    process: Option<Process>,
    /// Kill the child (its whole group, if it leads one) when dropped.
    kill_on_drop: bool,
    /// Whether the child leads a process group of its own (`process_group(0)`).
    leads_group: bool,
}

impl Child {
    /// Wraps a child that `std::process::Command::spawn` just started.
    #[track_caller]
    pub(super) fn new(mut inner: std::process::Child, kill_on_drop: bool, leads_group: bool) -> io::Result<Child> {
        let (stdin, stdout, stderr) = (inner.stdin.take(), inner.stdout.take(), inner.stderr.take());
        let pidfd = match sys::pidfd_open(inner.id()).and_then(Source::from_nonblocking) {
            Ok(pidfd) => Some(pidfd),
            Err(err) if err.raw_os_error() == Some(libc::ENOSYS) => None,
            Err(err) => {
                // Not left running unseen (and reaped: it ends at once).
                let _ = inner.kill();
                let _ = inner.wait();
                return Err(err);
            }
        };
        let mut child = Child {
            stdin: None,
            stdout: None,
            stderr: None,
            process: Some(Process { inner, pidfd }),
            kill_on_drop,
            leads_group,
        };
        // If one fails, dropping `child` kills it (with `kill_on_drop`).
        child.stdin = stdin.map(ChildStdin::from_std).transpose()?;
        child.stdout = stdout.map(ChildStdout::from_std).transpose()?;
        child.stderr = stderr.map(ChildStderr::from_std).transpose()?;
        Ok(child)
    }

    fn process(&mut self) -> &mut Process {
        self.process.as_mut().expect("only `drop` takes the process")
    }

    /// The child's process id.
    pub fn id(&self) -> u32 {
        self.process.as_ref().expect("only `drop` takes the process").inner.id()
    }

    /// Sends `SIGKILL` to the child (only the child, also when it leads a
    /// process group), as `std::process::Child::kill`; does nothing if it
    /// has exited and been waited for. Does not wait: call
    /// [`wait`](Child::wait) after it.
    ///
    /// # Errors
    ///
    /// What `kill(2)` reports.
    pub fn kill(&mut self) -> io::Result<()> {
        self.process().inner.kill()
    }

    /// The exit status if the child has exited (reaping it), without
    /// parking.
    ///
    /// # Errors
    ///
    /// What `waitpid(2)` reports.
    pub fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        self.process().inner.try_wait()
    }

    /// Parks the calling greenlet until the child exits, and returns its
    /// status. Closes the child's standard input first (as std does), so a
    /// child that reads it to the end can finish.
    ///
    /// # Errors
    ///
    /// What `waitpid(2)` reports; an error if the child belongs to another
    /// hub or to a runtime that has stopped.
    ///
    /// # Panics
    ///
    /// Outside a greenlet of the runtime.
    pub fn wait(&mut self) -> io::Result<ExitStatus> {
        drop(self.stdin.take());
        Ok(self.process().wait_until(None)?.expect("a wait without a deadline ends with the exit"))
    }

    /// Parks the calling greenlet until the child exits or `timeout`
    /// passes: `Some(status)` if it exited, `None` if it is still running
    /// (gevent's `Popen.wait(timeout)`). Unlike [`wait`](Child::wait), leaves
    /// the standard input open.
    ///
    /// ```
    /// use std::time::Duration;
    /// use runtime::process::Command;
    ///
    /// runtime::run(|| {
    ///     let mut child = Command::new("sleep").arg("5").spawn()?;
    ///     assert!(child.wait_timeout(Duration::from_millis(10))?.is_none());
    ///     child.kill()?;
    ///     assert!(!child.wait()?.success());
    ///     Ok::<_, std::io::Error>(())
    /// })?;
    /// # Ok::<_, std::io::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`wait`](Child::wait).
    ///
    /// # Panics
    ///
    /// Outside a greenlet of the runtime.
    pub fn wait_timeout(&mut self, timeout: Duration) -> io::Result<Option<ExitStatus>> {
        self.process().wait_until(Some(Instant::now() + timeout))
    }

    /// Closes the standard input, reads the standard output and error to
    /// their ends (both at once, so a child filling one pipe while we read
    /// the other cannot deadlock), then waits for the child to exit.
    ///
    /// ```
    /// use runtime::process::{Command, Stdio};
    ///
    /// runtime::run(|| {
    ///     let child = Command::new("sh").args(["-c", "echo out; echo err >&2"])
    ///         .stdout(Stdio::piped())
    ///         .stderr(Stdio::piped())
    ///         .spawn()?;
    ///     let output = child.wait_with_output()?;
    ///     assert_eq!((&output.stdout[..], &output.stderr[..]), (&b"out\n"[..], &b"err\n"[..]));
    ///     Ok::<_, std::io::Error>(())
    /// })?;
    /// # Ok::<_, std::io::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// The first error of reading a pipe or of waiting.
    ///
    /// # Panics
    ///
    /// Outside a greenlet of the runtime.
    pub fn wait_with_output(mut self) -> io::Result<Output> {
        drop(self.stdin.take());
        let (stdout, stderr) = (self.stdout.take(), self.stderr.take());
        let (stdout, stderr) = runtime_scheduler::scope(|s| {
            let stderr = s.spawn(move || read_to_end(stderr));
            let stdout = read_to_end(stdout);
            let stderr = stderr.join().unwrap_or_else(|err| std::panic::resume_unwind(err.into_panic()));
            (stdout, stderr)
        });
        let (stdout, stderr) = (stdout?, stderr?);
        let status = self.wait()?;
        Ok(Output { status, stdout, stderr })
    }
}

/// The process itself: what waits need, and what a reaper takes over.
struct Process {
    /// Holds the process unreaped until a wait reaps it, so its pid (and the
    /// group id of a group it leads) cannot be reused meanwhile.
    inner: std::process::Child,
    /// Readable once the child has exited; `None` without pidfds.
    pidfd: Option<Source<OwnedFd>>,
}

impl Process {
    /// Waits until the child exits (`Some`) or `deadline` passes (`None`).
    fn wait_until(&mut self, deadline: Option<Instant>) -> io::Result<Option<ExitStatus>> {
        let mut poll = POLL_MIN;
        loop {
            // Forget the readiness first: an exit from here on is a new
            // event, which the wait below sees.
            if let Some(pidfd) = &self.pidfd {
                pidfd.clear_ready(Direction::Read);
            }
            if let Some(status) = self.inner.try_wait()? {
                return Ok(Some(status));
            }
            if deadline.is_some_and(|deadline| Instant::now() >= deadline) {
                return Ok(None);
            }
            match &self.pidfd {
                Some(pidfd) => match pidfd.wait_until(Direction::Read, "Child::wait", deadline) {
                    Err(err) if err.kind() == io::ErrorKind::TimedOut => {}
                    other => other?,
                },
                None => {
                    let next = Instant::now() + poll;
                    runtime_scheduler::sleep_until(deadline.map_or(next, |deadline| deadline.min(next)));
                    poll = (poll * 2).min(POLL_MAX);
                }
            }
        }
    }
}

fn read_to_end(pipe: Option<impl Read>) -> io::Result<Vec<u8>> {
    let mut data = Vec::new();
    if let Some(mut pipe) = pipe {
        pipe.read_to_end(&mut data)?;
    }
    Ok(data)
}

impl Drop for Child {
    /// With `kill_on_drop`: kills the child, or its whole process group if
    /// it leads one, and reaps it (in a greenlet of its own if it has not
    /// exited at once, so that dropping never parks).
    fn drop(&mut self) {
        if !self.kill_on_drop {
            return;
        }
        // The group outlives its leader's exit while members remain, and
        // its id stays theirs (Linux does not reuse a pid that is still a
        // process group's id).
        let Some(mut process) = self.process.take() else { return };
        let pid = process.inner.id();
        let killed = if self.leads_group { sys::kill_group(pid) } else { process.inner.kill() };
        if let Err(err) = killed {
            if err.raw_os_error() != Some(libc::ESRCH) {
                tracing::warn!(pid, "cannot kill the child on drop: {err}");
            }
        }
        if !matches!(process.inner.try_wait(), Ok(None)) {
            return; // reaped now, or before
        }
        if runtime_scheduler::Handle::try_current().is_some() {
            let reaper = runtime_scheduler::task::Builder::new().name("reap-child");
            drop(reaper.spawn(move || drop(process.wait_until(None))));
        } else {
            // Killed, it ends at once; without a hub, the thread waits.
            let _ = process.inner.wait();
        }
    }
}

impl fmt::Debug for Child {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Child")
            .field("pid", &self.process.as_ref().map(|process| process.inner.id()))
            .field("pidfd", &self.process.as_ref().and_then(|process| process.pidfd.as_ref()).map(AsRawFd::as_raw_fd))
            .field("stdin", &self.stdin)
            .field("stdout", &self.stdout)
            .field("stderr", &self.stderr)
            .field("kill_on_drop", &self.kill_on_drop)
            .finish()
    }
}
