//! The `hooks` feature and kills and timeouts: the error reaches the hooked
//! call the greenlet is blocked in once; cleanup after it (destructors,
//! `child.kill(); child.wait()`, a `BufWriter`'s flush) still works within
//! the grace (`Builder::cancel_grace`), and the kill or timeout is not lost.

mod util;

use std::cell::{Cell, RefCell};
use std::io::{BufWriter, ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;
use std::process::Command;
use std::rc::Rc;

use util::ms;

/// A read that never completes: `Err` once the greenlet is killed or timed
/// out (the other end is kept open by the caller).
fn blocked_read(stream: &UnixStream) -> std::io::Error {
    let mut buf = [0; 1];
    (&*stream).read(&mut buf).expect_err("nothing is ever written")
}

#[test]
fn the_same_errors_from_elsewhere_are_not_cancellations() {
    let not_ours = |errno| !runtime::hooks::is_cancelled(&std::io::Error::from_raw_os_error(errno));
    assert!(not_ours(libc::ETIMEDOUT) && not_ours(libc::ECANCELED), "on a thread without a hub");
    let after = util::run(move || {
        let during = runtime::spawn(move || not_ours(libc::ETIMEDOUT) && not_ours(libc::ECANCELED)).join().unwrap();
        // After a timeout scope ended, a later ETIMEDOUT is the network's.
        let (ours, _theirs) = UnixStream::pair().unwrap();
        assert!(runtime::timeout(ms(10), move || blocked_read(&ours)).is_err());
        during && not_ours(libc::ETIMEDOUT)
    });
    assert!(after, "an error of a greenlet that was not cancelled counts as a cancellation");
}

#[test]
fn the_kill_error_and_the_timeout_error_have_their_documented_kinds() {
    let (killed, timed_out) = util::run(|| {
        let seen = Rc::new(RefCell::new(None));
        let record = seen.clone();
        let (ours, _theirs) = UnixStream::pair().unwrap();
        let killed = runtime::spawn(move || {
            let err = blocked_read(&ours);
            *record.borrow_mut() = Some((err.raw_os_error(), err.kind(), runtime::hooks::is_cancelled(&err)));
        });
        runtime::sleep(ms(20));
        killed.kill();
        assert!(killed.join().unwrap_err().is_killed());
        let killed = seen.borrow_mut().take().unwrap();
        let record = seen.clone();
        let (ours, _theirs) = UnixStream::pair().unwrap();
        let outcome = runtime::timeout(ms(20), move || {
            let err = blocked_read(&ours);
            *record.borrow_mut() = Some((err.raw_os_error(), err.kind(), runtime::hooks::is_cancelled(&err)));
        });
        assert!(outcome.is_err());
        (killed, seen.borrow_mut().take().unwrap())
    });
    assert_eq!(killed.0, Some(libc::ECANCELED));
    assert_eq!(killed.1.to_string(), "uncategorized error");
    assert!(killed.2, "a kill's error is a cancellation");
    assert_eq!((timed_out.0, timed_out.1, timed_out.2), (Some(libc::ETIMEDOUT), ErrorKind::TimedOut, true));
}

#[test]
fn destructors_after_a_kill_still_park() {
    struct Cleanup(Rc<Cell<Option<i32>>>);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            // A hooked sleep and a runtime::blocking, after the kill's error.
            std::thread::sleep(ms(1));
            let n = runtime::blocking(|| 21 * 2);
            self.0.set(Some(n));
        }
    }
    let cleaned = util::run(|| {
        let cleaned = Rc::new(Cell::new(None));
        let guard = Cleanup(cleaned.clone());
        let (ours, _theirs) = UnixStream::pair().unwrap();
        let greenlet = runtime::spawn(move || {
            let _guard = guard;
            blocked_read(&ours);
        });
        runtime::sleep(ms(20));
        greenlet.kill();
        assert!(greenlet.join().unwrap_err().is_killed(), "the greenlet still ends as killed");
        cleaned.get()
    });
    assert_eq!(cleaned, Some(42), "the destructor did not finish");
}

#[test]
fn kill_and_wait_after_a_timeout_reap_the_child() {
    let (outcome, pid, waited) = util::run(|| {
        let waited = Rc::new(RefCell::new(None));
        let record = waited.clone();
        let mut child = Command::new("sleep").arg("10").spawn().unwrap();
        let pid = child.id() as libc::pid_t;
        let outcome = runtime::timeout(ms(50), move || {
            let first = child.wait();
            // Cleanup: what the error path of such code does.
            child.kill().unwrap();
            *record.borrow_mut() = Some((first.map_err(|e| e.kind()), child.wait().map_err(|e| e.to_string())));
        });
        (outcome.is_err(), pid, waited.borrow_mut().take())
    });
    assert!(outcome, "the timeout still elapses");
    let (first, second) = waited.expect("the scope ran to its end");
    assert_eq!(first, Err(ErrorKind::TimedOut));
    let status = second.expect("wait after kill");
    assert_eq!(std::os::unix::process::ExitStatusExt::signal(&status), Some(libc::SIGKILL));
    // Reaped: no zombie left.
    // SAFETY: a non-blocking wait for a pid into nothing.
    let reaped = unsafe { libc::waitpid(pid, std::ptr::null_mut(), libc::WNOHANG) };
    assert_eq!((reaped, std::io::Error::last_os_error().raw_os_error()), (-1, Some(libc::ECHILD)));
}

#[test]
fn a_bufwriter_flushes_after_a_timeout() {
    let received = util::run(|| {
        let (ours, theirs) = UnixStream::pair().unwrap();
        let (blocked, _other) = UnixStream::pair().unwrap();
        let flushed = Rc::new(Cell::new(false));
        let record = flushed.clone();
        let outcome = runtime::timeout(ms(20), move || {
            let mut writer = BufWriter::new(&ours);
            writer.write_all(b"goodbye").unwrap();
            blocked_read(&blocked);
            record.set(writer.flush().is_ok());
        });
        assert!(outcome.is_err(), "the timeout still elapses");
        assert!(flushed.get(), "the flush failed");
        let mut received = [0; 7];
        (&theirs).read_exact(&mut received).unwrap();
        received
    });
    assert_eq!(&received, b"goodbye");
}

#[test]
fn a_retry_loop_that_ignores_errors_still_ends() {
    let (outcome, tries) = util::run(|| {
        let (ours, _theirs) = UnixStream::pair().unwrap();
        let tries = Rc::new(Cell::new(0));
        let count = tries.clone();
        let outcome = runtime::timeout(ms(20), move || {
            loop {
                let _ = blocked_read(&ours);
                count.set(count.get() + 1);
                runtime::sleep(ms(1));
            }
        });
        (outcome.is_err(), tries.get())
    });
    assert!(outcome, "the timeout still elapses");
    assert!(tries >= 1);
}

#[test]
fn a_retry_loop_made_only_of_hooked_calls_still_ends() {
    // Nothing in the loop parks through the runtime, where the kill could be
    // raised: every read fails at once past the grace. The greenlet is parked
    // for good a while later, and ends as killed; the hub goes on.
    let (killed, tries, ticks) = runtime::Builder::new().cancel_grace(ms(20)).run(|| {
        let (ours, _theirs) = UnixStream::pair().unwrap();
        let tries = Rc::new(Cell::new(0u64));
        let count = tries.clone();
        let spinner = runtime::spawn(move || {
            loop {
                let _ = blocked_read(&ours);
                count.set(count.get() + 1);
            }
        });
        let ticks = Rc::new(Cell::new(0u32));
        let tick = ticks.clone();
        let ticker = runtime::spawn(move || {
            loop {
                runtime::sleep(ms(5));
                tick.set(tick.get() + 1);
            }
        });
        runtime::sleep(ms(10));
        spinner.kill();
        let killed = runtime::timeout(std::time::Duration::from_secs(20), || spinner.join())
            .expect("the retry loop ends")
            .unwrap_err()
            .is_killed();
        ticker.kill();
        (killed, tries.get(), ticks.get())
    });
    assert!(killed, "it ends as killed");
    assert!(tries > 1, "it did retry past the grace ({tries})");
    assert!(ticks > 0, "the hub kept running the others");
}

#[test]
fn past_the_grace_hooked_calls_fail_again() {
    let errors = runtime::Builder::new().cancel_grace(ms(30)).run(|| {
        let (ours, _theirs) = UnixStream::pair().unwrap();
        let errors = Rc::new(RefCell::new(Vec::new()));
        let record = errors.clone();
        let greenlet = runtime::spawn(move || {
            // Delivered; parks within the grace, then fails at its end; then
            // fails at once.
            for _ in 0..3 {
                let err = blocked_read(&ours);
                record.borrow_mut().push((err.raw_os_error(), runtime::hooks::is_cancelled(&err)));
            }
        });
        runtime::sleep(ms(20));
        greenlet.kill();
        assert!(greenlet.join().unwrap_err().is_killed());
        errors.take()
    });
    assert_eq!(errors, [(Some(libc::ECANCELED), true); 3]);
}
