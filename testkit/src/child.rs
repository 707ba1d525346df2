//! Re-running one test of the current test binary in a child process.

use std::process::{Command, Output};

/// Environment variable that tells a re-executed test binary which test runs
/// as a child process.
pub const CHILD_ENV: &str = "RUNTIME_TEST_CHILD";

/// Whether this process is the child started by [`rerun_in_child`] for `test`.
pub fn is_child(test: &str) -> bool {
    std::env::var(CHILD_ENV).is_ok_and(|name| name == test)
}

/// Runs the test named `test` of this test binary in a child process, with
/// `envs` set, and waits for it.
///
/// # Panics
///
/// If the test binary cannot be started again.
pub fn rerun_in_child(test: &str, envs: &[(&str, &str)]) -> Output {
    let exe = std::env::current_exe().expect("the test binary's path");
    let mut command = Command::new(exe);
    command.args(["--exact", test, "--nocapture", "--test-threads=1"]).env(CHILD_ENV, test);
    for (key, value) in envs {
        command.env(key, value);
    }
    command.output().expect("cannot run the test binary again")
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
