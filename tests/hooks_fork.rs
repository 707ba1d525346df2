//! The `hooks` feature and `fork()`: the child starts with no hub (its
//! hooked calls behave as libc's, the parent's greenlets never run there)
//! until it starts one of its own, which cooperates as usual.

mod util;

use std::io::{Read, Write};
use std::process::Command;

use util::ms;

/// Waits for the child `pid` (hooked: parks the greenlet) for at most
/// `util::PATIENCE`, killing it after that; its wait status.
fn wait_for(pid: libc::pid_t) -> i32 {
    let waited = runtime::timeout(util::PATIENCE, move || {
        let mut status = 0;
        // SAFETY: waits for our own child into a local.
        let done = unsafe { libc::waitpid(pid, &mut status, 0) };
        (done == pid).then_some(status)
    });
    match waited {
        Ok(Some(status)) => status,
        _ => {
            // SAFETY: kills and reaps our own child.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, std::ptr::null_mut(), 0);
            }
            panic!("the forked child did not end");
        }
    }
}

/// A pipe made through the hooks: `(reader, writer)`.
fn pipe() -> (std::fs::File, std::fs::File) {
    use std::os::fd::FromRawFd;
    let mut fds = [0; 2];
    // SAFETY: `pipe` writes two new descriptors into `fds`.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: two new descriptors nobody else owns.
    unsafe { (std::fs::File::from_raw_fd(fds[0]), std::fs::File::from_raw_fd(fds[1])) }
}

#[test]
#[ignore = "run as a child by a_fork_before_any_cooperation_leaves_the_parents_hub_behind"]
fn child_forks_before_any_cooperation() {
    let parent = std::process::id();
    let status = util::run(move || {
        // Must never run in the forked child.
        let other = runtime::spawn(move || {
            loop {
                if std::process::id() != parent {
                    // SAFETY: ends the forked child at once.
                    unsafe { libc::_exit(7) };
                }
                runtime::sleep(ms(1));
            }
        });
        runtime::sleep(ms(5));
        // SAFETY: the child only makes libc calls and `_exit`s.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            // Hooked calls in the child: libc's, not a park on the parent's hub.
            std::thread::sleep(ms(100));
            let (mut reader, mut writer) = pipe();
            writer.write_all(b"x").unwrap();
            let mut byte = [0];
            reader.read_exact(&mut byte).unwrap();
            // SAFETY: ends the child without running the parent's cleanup.
            unsafe { libc::_exit(0) };
        }
        let status = wait_for(pid);
        other.kill();
        status
    });
    assert!(libc::WIFEXITED(status), "the forked child did not exit: {status:#x}");
    assert_eq!(libc::WEXITSTATUS(status), 0, "the parent's greenlet ran in the forked child");
}

#[test]
fn a_fork_before_any_cooperation_leaves_the_parents_hub_behind() {
    // In a fresh process, where nothing cooperated before the fork.
    let output = Command::new(std::env::current_exe().unwrap())
        .args(["--ignored", "--exact", "--nocapture", "child_forks_before_any_cooperation"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn a_forked_child_cooperates_on_a_hub_of_its_own() {
    let status = util::run(|| {
        std::thread::sleep(ms(1)); // a hooked call cooperated before the fork
        // SAFETY: the child runs a new hub on a new thread and `_exit`s.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            let done = std::thread::spawn(|| {
                runtime::run(|| {
                    let (mut reader, mut writer) = pipe();
                    // Parks (else the write below never runs).
                    let read = runtime::spawn(move || {
                        let mut byte = [0];
                        reader.read_exact(&mut byte).unwrap();
                        byte[0]
                    });
                    runtime::sleep(ms(20));
                    writer.write_all(&[42]).unwrap();
                    read.join().unwrap()
                })
            })
            .join();
            let code = if matches!(done, Ok(42)) { 0 } else { 1 };
            // SAFETY: ends the child without running the parent's cleanup.
            unsafe { libc::_exit(code) };
        }
        wait_for(pid)
    });
    assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0, "the child's own hub failed: {status:#x}");
}
