//! The `hooks` feature and `fork()`: the child starts with no hub (its
//! hooked calls behave as libc's, the parent's greenlets never run there)
//! until it starts one of its own, which cooperates as usual.

mod util;

use std::io::{Read, Write};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use util::ms;

/// Waits for the child `pid` (hooked: parks the greenlet) for at most
/// `util::PATIENCE`, killing it after that; its wait status.
fn wait_for(pid: libc::pid_t) -> i32 {
    wait_within(pid, util::PATIENCE)
}

/// [`wait_for`], for at most `patience`.
fn wait_within(pid: libc::pid_t, patience: Duration) -> i32 {
    let waited = runtime::timeout(patience, move || {
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

/// `FUTEX_WAKE_BITSET` (private) of one waiter of `word` waiting for a bit of
/// `bitset`; the number woken.
fn wake_bitset(word: &AtomicU32, bitset: u32) -> libc::c_long {
    let op = libc::FUTEX_WAKE_BITSET | libc::FUTEX_PRIVATE_FLAG;
    let none = std::ptr::null::<u32>();
    // SAFETY: a futex wake on a live, aligned word; the pointer arguments
    // are unused by a wake.
    unsafe { libc::syscall(libc::SYS_futex, word.as_ptr(), op, 1, none, none, bitset) }
}

#[test]
fn a_forked_child_wakes_a_futex_whose_table_bucket_another_thread_held_at_the_fork() {
    static WORD: AtomicU32 = AtomicU32::new(0);
    let statuses = util::run(|| {
        // A greenlet waits on the word for bit 2, so the word's bucket in the
        // hooks' futex table is never empty.
        let waiter = runtime::spawn(|| {
            let op = libc::FUTEX_WAIT_BITSET | libc::FUTEX_PRIVATE_FLAG;
            let none = std::ptr::null::<u32>();
            while WORD.load(Ordering::SeqCst) == 0 {
                // SAFETY: a futex wait on a live, aligned word, with no
                // timeout (null) for bit 2.
                if unsafe { libc::syscall(libc::SYS_futex, WORD.as_ptr(), op, 0, none, none, 2) } == -1
                    && runtime::hooks::is_cancelled(&std::io::Error::last_os_error())
                {
                    break; // the test failed, and its hub kills this greenlet
                }
            }
        });
        runtime::sleep(ms(5));
        // A thread takes the bucket's lock over and over: wakes for bit 1
        // look at the bucket and wake nobody.
        let stop = Arc::new(AtomicBool::new(false));
        let hammer = std::thread::spawn({
            let stop = stop.clone();
            move || {
                while !stop.load(Ordering::Relaxed) {
                    wake_bitset(&WORD, 1);
                }
            }
        });
        let mut statuses = Vec::new();
        for _ in 0..50 {
            // SAFETY: the child only makes one futex call and `_exit`s.
            let pid = unsafe { libc::fork() };
            if pid == 0 {
                // Spins for ever if the bucket's lock stayed taken.
                wake_bitset(&WORD, 1);
                // SAFETY: ends the child without running the parent's cleanup.
                unsafe { libc::_exit(0) };
            }
            statuses.push(wait_within(pid, Duration::from_secs(5)));
        }
        stop.store(true, Ordering::Relaxed);
        hammer.join().unwrap();
        WORD.store(1, Ordering::SeqCst);
        assert_eq!(wake_bitset(&WORD, 2), 1, "the greenlet was not waiting");
        waiter.join().unwrap();
        statuses
    });
    for status in statuses {
        assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0, "a forked child failed: {status:#x}");
    }
}
