//! Re-running one test of the current test binary in a child process.

use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// Environment variable that tells a re-executed test binary which scenario
/// it runs as a child process (by default the test's own name).
pub const CHILD_ENV: &str = "RUNTIME_TEST_CHILD";

/// How long a child may run, unless [`ChildTest::deadline`] says otherwise.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(120);

/// The scenario this process was started to run, if it is a child.
pub fn child_role() -> Option<String> {
    std::env::var(CHILD_ENV).ok()
}

/// Whether this process is the child started by [`rerun_in_child`] for `test`.
pub fn is_child(test: &str) -> bool {
    child_role().is_some_and(|role| role == test)
}

/// Runs the test named `test` of this test binary in a child process, with
/// `envs` set, and waits for it.
///
/// # Panics
///
/// If the child cannot be started or hangs past [`DEFAULT_DEADLINE`].
pub fn rerun_in_child(test: &str, envs: &[(&str, &str)]) -> Output {
    ChildTest::new(test).envs(envs).run()
}

/// One test of this binary, to run alone in a child process.
#[derive(Debug)]
pub struct ChildTest {
    test: String,
    role: String,
    command: Command,
    deadline: Duration,
}

impl ChildTest {
    /// The test named `test` (as `--exact` wants it), in the role of its own
    /// name, with stdin closed and stdout and stderr collected.
    ///
    /// # Panics
    ///
    /// If the path of the test binary is unknown.
    pub fn new(test: &str) -> ChildTest {
        let exe = std::env::current_exe().expect("the test binary's path");
        let mut command = Command::new(exe);
        command
            .args(["--exact", test, "--nocapture", "--test-threads=1"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        ChildTest { test: test.to_owned(), role: test.to_owned(), command, deadline: DEFAULT_DEADLINE }
    }

    /// Names the scenario the child runs, for a test with several; the child
    /// reads it back with [`child_role`].
    pub fn role(mut self, role: &str) -> ChildTest {
        role.clone_into(&mut self.role);
        self
    }

    /// Sets environment variables in the child.
    pub fn envs(mut self, envs: &[(&str, &str)]) -> ChildTest {
        for (key, value) in envs {
            self.command.env(key, value);
        }
        self
    }

    /// Removes an environment variable from the child's.
    pub fn env_remove(mut self, key: &str) -> ChildTest {
        self.command.env_remove(key);
        self
    }

    /// How long the child may run before it counts as hung.
    pub fn deadline(mut self, deadline: Duration) -> ChildTest {
        self.deadline = deadline;
        self
    }

    /// Runs the child and collects how it ended.
    ///
    /// # Panics
    ///
    /// If the child cannot be started, or hangs past its deadline (it is then
    /// killed, so a child that, say, faults forever fails the test instead of
    /// stalling the suite).
    pub fn run(mut self) -> Output {
        let child = self.command.env(CHILD_ENV, &self.role).spawn().expect("start the child test process");
        let pid = child.id();
        let (done, outcome) = mpsc::channel();
        std::thread::spawn(move || done.send(child.wait_with_output()));
        let output = match outcome.recv_timeout(self.deadline) {
            Ok(output) => output,
            Err(_) => {
                let pid = libc::pid_t::try_from(pid).expect("a pid fits pid_t");
                // SAFETY: kill has no memory-safety preconditions; `pid` is our
                // own child, not yet reaped (its waiter has not returned).
                unsafe { libc::kill(pid, libc::SIGKILL) };
                let output = outcome.recv().expect("the waiter reports").expect("wait for the child");
                panic!(
                    "child for {} ({}) hung for {:?} and was killed; {}",
                    self.test,
                    self.role,
                    self.deadline,
                    output_text(&output)
                );
            }
        };
        output.expect("wait for the child test process")
    }
}

/// The child's status, stdout and stderr, for assertion messages.
pub fn output_text(output: &Output) -> String {
    format!(
        "status: {}\n--- stdout\n{}\n--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}
