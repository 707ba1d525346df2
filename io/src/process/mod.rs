//! Child processes whose waits and pipes park only the calling greenlet
//! (gevent's `gevent.subprocess`, tokio's `tokio::process`), without the
//! `hooks` feature.
//!
//! [`Command`] mirrors `std::process::Command`; the [`Child`] it spawns has a
//! pidfd (`pidfd_open(2)`, Linux 5.3+) registered with the hub, so
//! [`Child::wait`] and [`Child::wait_timeout`] park the greenlet until the
//! kernel says the child exited, and its pipes ([`ChildStdin`],
//! [`ChildStdout`], [`ChildStderr`]) are non-blocking and on the hub too.
//! [`Command::process_group`] with [`Command::kill_on_drop`] ties a whole
//! process tree to the `Child`: dropping it kills the group and reaps the
//! child.
//!
//! ```
//! use runtime::process::Command;
//!
//! runtime::run(|| {
//!     let output = Command::new("echo").arg("hello").output()?; // parks only this greenlet
//!     assert!(output.status.success());
//!     assert_eq!(output.stdout, b"hello\n");
//!     Ok::<_, std::io::Error>(())
//! })?;
//! # Ok::<_, std::io::Error>(())
//! ```
//!
//! Spawning itself (`fork`/`exec` through std) does not park: it takes the
//! hub's thread for the moment it lasts. On kernels without pidfds, waits
//! poll the child every few milliseconds instead.

mod child;
mod pipe;
mod sys;

use std::ffi::OsStr;
use std::fmt;
use std::io;
use std::os::unix::process::CommandExt;
use std::path::Path;

pub use child::Child;
pub use pipe::{ChildStderr, ChildStdin, ChildStdout};
pub use std::process::{ExitStatus, Output, Stdio};

/// A process builder, like `std::process::Command` (same methods, same
/// defaults), whose [`spawn`](Command::spawn) gives a [`Child`] that waits
/// on the hub, and whose [`output`](Command::output) and
/// [`status`](Command::status) park only the calling greenlet.
///
/// ```
/// use runtime::process::{Command, Stdio};
///
/// runtime::run(|| {
///     let status = Command::new("sh").args(["-c", "exit 3"]).stdout(Stdio::null()).status()?;
///     assert_eq!(status.code(), Some(3));
///     Ok::<_, std::io::Error>(())
/// })?;
/// # Ok::<_, std::io::Error>(())
/// ```
pub struct Command {
    inner: std::process::Command,
    /// Which streams were configured, so `output` knows which to capture
    /// (std's `Command` does not tell).
    stdin_set: bool,
    stdout_set: bool,
    stderr_set: bool,
    kill_on_drop: bool,
    process_group: Option<i32>,
}

impl Command {
    /// A command to run `program`, with std's defaults: no arguments, the
    /// current environment and directory, standard streams inherited by
    /// [`spawn`](Command::spawn) and [`status`](Command::status).
    pub fn new(program: impl AsRef<OsStr>) -> Command {
        Command::from(std::process::Command::new(program))
    }

    /// Adds an argument.
    pub fn arg(&mut self, arg: impl AsRef<OsStr>) -> &mut Command {
        self.inner.arg(arg);
        self
    }

    /// Adds arguments.
    pub fn args<I, S>(&mut self, args: I) -> &mut Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.inner.args(args);
        self
    }

    /// Sets an environment variable for the child.
    pub fn env(&mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> &mut Command {
        self.inner.env(key, value);
        self
    }

    /// Sets environment variables for the child.
    pub fn envs<I, K, V>(&mut self, vars: I) -> &mut Command
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        self.inner.envs(vars);
        self
    }

    /// Removes an environment variable from the child's environment.
    pub fn env_remove(&mut self, key: impl AsRef<OsStr>) -> &mut Command {
        self.inner.env_remove(key);
        self
    }

    /// Starts the child with an empty environment (plus what
    /// [`env`](Command::env) adds).
    pub fn env_clear(&mut self) -> &mut Command {
        self.inner.env_clear();
        self
    }

    /// Sets the child's working directory.
    pub fn current_dir(&mut self, dir: impl AsRef<Path>) -> &mut Command {
        self.inner.current_dir(dir);
        self
    }

    /// Configures the child's standard input; [`Stdio::piped`] gives
    /// [`Child::stdin`].
    pub fn stdin(&mut self, cfg: impl Into<Stdio>) -> &mut Command {
        self.inner.stdin(cfg);
        self.stdin_set = true;
        self
    }

    /// Configures the child's standard output; [`Stdio::piped`] gives
    /// [`Child::stdout`].
    pub fn stdout(&mut self, cfg: impl Into<Stdio>) -> &mut Command {
        self.inner.stdout(cfg);
        self.stdout_set = true;
        self
    }

    /// Configures the child's standard error; [`Stdio::piped`] gives
    /// [`Child::stderr`].
    pub fn stderr(&mut self, cfg: impl Into<Stdio>) -> &mut Command {
        self.inner.stderr(cfg);
        self.stderr_set = true;
        self
    }

    /// Puts the child in process group `pgroup` (`setpgid`), as std's
    /// `CommandExt::process_group`: 0 makes it the leader of a new group,
    /// whose id is its pid. With [`kill_on_drop`](Command::kill_on_drop),
    /// such a child takes its whole group with it.
    pub fn process_group(&mut self, pgroup: i32) -> &mut Command {
        self.inner.process_group(pgroup);
        self.process_group = Some(pgroup);
        self
    }

    /// With `true`, dropping the [`Child`] kills it with `SIGKILL` (tokio's
    /// `kill_on_drop`) and reaps it, so no zombie is left; a child that leads
    /// its own process group ([`process_group(0)`](Command::process_group))
    /// has its whole group killed, grandchildren included. The reaping
    /// happens in a greenlet of its own, so dropping never parks. Off by
    /// default: as with std, a dropped child runs on.
    ///
    /// ```
    /// use runtime::process::Command;
    ///
    /// runtime::run(|| {
    ///     // A shell and the `sleep` it started, in a group of their own.
    ///     let child = Command::new("sh")
    ///         .args(["-c", "sleep 30 & wait"])
    ///         .process_group(0)
    ///         .kill_on_drop(true)
    ///         .spawn()?;
    ///     drop(child); // both are killed; the shell is reaped
    ///     Ok::<_, std::io::Error>(())
    /// })?;
    /// # Ok::<_, std::io::Error>(())
    /// ```
    pub fn kill_on_drop(&mut self, kill_on_drop: bool) -> &mut Command {
        self.kill_on_drop = kill_on_drop;
        self
    }

    /// The `std::process::Command` underneath, for what this type does not
    /// wrap (`CommandExt::uid`, `pre_exec`, ...). Standard streams set
    /// through it are not known to [`output`](Command::output), which then
    /// captures them anyway.
    pub fn as_std_mut(&mut self) -> &mut std::process::Command {
        &mut self.inner
    }

    /// Starts the child. Standard streams not configured are inherited.
    ///
    /// # Errors
    ///
    /// What starting the program reports: `NotFound` for a program that is
    /// not there, `PermissionDenied` for one that cannot be run.
    ///
    /// # Panics
    ///
    /// Outside a runtime.
    #[track_caller]
    pub fn spawn(&mut self) -> io::Result<Child> {
        let child = self.inner.spawn()?;
        Child::new(child, self.kill_on_drop, self.process_group == Some(0))
    }

    /// Runs the child to completion and collects its output, parking only
    /// the calling greenlet. As in std, standard output and error are
    /// captured unless configured otherwise, and standard input is
    /// `Stdio::null()` unless configured.
    ///
    /// # Errors
    ///
    /// As [`spawn`](Command::spawn), and as [`Child::wait_with_output`].
    ///
    /// # Panics
    ///
    /// Outside a greenlet of the runtime.
    #[track_caller]
    pub fn output(&mut self) -> io::Result<Output> {
        if !self.stdin_set {
            self.inner.stdin(Stdio::null());
        }
        if !self.stdout_set {
            self.inner.stdout(Stdio::piped());
        }
        if !self.stderr_set {
            self.inner.stderr(Stdio::piped());
        }
        let child = self.spawn();
        // std leaves the configuration as it was: the defaults were only for
        // this run.
        if !self.stdin_set {
            self.inner.stdin(Stdio::inherit());
        }
        if !self.stdout_set {
            self.inner.stdout(Stdio::inherit());
        }
        if !self.stderr_set {
            self.inner.stderr(Stdio::inherit());
        }
        child?.wait_with_output()
    }

    /// Runs the child to completion, parking only the calling greenlet, and
    /// returns its exit status. Standard streams not configured are
    /// inherited.
    ///
    /// # Errors
    ///
    /// As [`spawn`](Command::spawn), and as [`Child::wait`].
    ///
    /// # Panics
    ///
    /// Outside a greenlet of the runtime.
    #[track_caller]
    pub fn status(&mut self) -> io::Result<ExitStatus> {
        self.spawn()?.wait()
    }
}

impl From<std::process::Command> for Command {
    /// Takes over a command; its standard streams count as not configured
    /// (std does not tell), which matters only to [`output`](Command::output).
    fn from(inner: std::process::Command) -> Command {
        Command {
            inner,
            stdin_set: false,
            stdout_set: false,
            stderr_set: false,
            kill_on_drop: false,
            process_group: None,
        }
    }
}

impl fmt::Debug for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Command")
            .field("command", &self.inner)
            .field("process_group", &self.process_group)
            .field("kill_on_drop", &self.kill_on_drop)
            .finish_non_exhaustive()
    }
}
