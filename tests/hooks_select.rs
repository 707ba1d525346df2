//! The `hooks` feature and `pselect(2)`: in a greenlet it parks until a
//! descriptor is ready or its timeout passes, as `select` does, unless its
//! signal mask differs from the thread's (then it is libc's and blocks the
//! hub). "Parks" is seen by a ticker greenlet that only advances meanwhile.

mod util;

use std::io::Write;
use std::os::fd::AsRawFd;

use util::{ms, ticker};

/// A read set holding `fd`.
fn read_set(fd: i32) -> libc::fd_set {
    // SAFETY: an all-zero fd_set is an empty one.
    let mut set: libc::fd_set = unsafe { std::mem::zeroed() };
    // SAFETY: `fd` is below FD_SETSIZE in a test process.
    unsafe { libc::FD_SET(fd, &mut set) };
    set
}

/// `pselect` for reading `fd`, with a timeout and an optional mask.
fn pselect_read(fd: i32, set: &mut libc::fd_set, timeout: &libc::timespec, mask: Option<&libc::sigset_t>) -> i32 {
    let mask = mask.map_or(std::ptr::null(), |mask| mask as *const _);
    // SAFETY: a valid set, timeout and mask (or none).
    unsafe { libc::pselect(fd + 1, set, std::ptr::null_mut(), std::ptr::null_mut(), timeout, mask) }
}

/// The calling thread's signal mask.
fn thread_mask() -> libc::sigset_t {
    // SAFETY: an all-zero sigset_t is a valid one, filled in by the call.
    let mut mask: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: reads the mask into a local.
    assert_eq!(unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, std::ptr::null(), &mut mask) }, 0);
    mask
}

#[test]
fn pselect_parks_the_greenlet_until_a_pipe_is_readable_or_it_times_out() {
    util::run(|| {
        let (reader, writer) = util::blocking_pipe();
        let fd = reader.as_raw_fd();
        let (ticks, _ticker) = ticker();
        let writing = runtime::spawn(move || {
            runtime::sleep(ms(30));
            (&writer).write_all(b"x").unwrap();
            writer
        });
        let before = ticks.get();
        let mut set = read_set(fd);
        let long = libc::timespec { tv_sec: 5, tv_nsec: 0 };
        assert_eq!(pselect_read(fd, &mut set, &long, None), 1);
        // SAFETY: a valid set.
        assert!(unsafe { libc::FD_ISSET(fd, &set) });
        assert!(ticks.get() > before, "pselect blocked the hub");
        // The pipe stays readable: at once, without parking.
        assert_eq!(pselect_read(fd, &mut read_set(fd), &long, None), 1);
        drop(writing.join().unwrap());
        // Nothing else comes (the byte is still there, so a second pipe).
        let (quiet, _quiet_writer) = util::blocking_pipe();
        let fd = quiet.as_raw_fd();
        let before = ticks.get();
        let mut set = read_set(fd);
        let short = libc::timespec { tv_sec: 0, tv_nsec: 30_000_000 };
        assert_eq!(pselect_read(fd, &mut set, &short, None), 0);
        // SAFETY: a valid set.
        assert!(!unsafe { libc::FD_ISSET(fd, &set) }, "a descriptor that never became ready is reported");
        assert!(ticks.get() > before, "pselect's timeout blocked the hub");
        assert_eq!((short.tv_sec, short.tv_nsec), (0, 30_000_000), "pselect does not write its timeout back");
        // The thread's own mask changes nothing: parks as well.
        let before = ticks.get();
        assert_eq!(pselect_read(fd, &mut read_set(fd), &short, Some(&thread_mask())), 0);
        assert!(ticks.get() > before, "pselect with the thread's own mask blocked the hub");
    });
}

#[test]
fn pselect_with_another_signal_mask_is_libcs_and_a_closed_descriptor_fails() {
    util::run(|| {
        let (quiet, _quiet_writer) = util::blocking_pipe();
        let fd = quiet.as_raw_fd();
        let (ticks, _ticker) = ticker();
        runtime::sleep(ms(5));
        let mut other = thread_mask();
        // SAFETY: a valid set and signal number.
        unsafe {
            let blocked = libc::sigismember(&other, libc::SIGWINCH) == 1;
            if blocked {
                libc::sigdelset(&mut other, libc::SIGWINCH)
            } else {
                libc::sigaddset(&mut other, libc::SIGWINCH)
            };
        }
        // The mask is in place for the whole wait: libc's call, which blocks
        // the hub (the ticker does not advance).
        let before = ticks.get();
        let short = libc::timespec { tv_sec: 0, tv_nsec: 20_000_000 };
        assert_eq!(pselect_read(fd, &mut read_set(fd), &short, Some(&other)), 0);
        assert_eq!(ticks.get(), before, "pselect with another signal mask parked without that mask");
        // A descriptor that is not open: EBADF, as libc's.
        // (A number the descriptor table covers: the kernel ignores those
        // beyond it.)
        let closed = 900;
        // SAFETY: calls on descriptor numbers, touching no memory: 900 is
        // made a copy of `fd` (no test opens that many) and closed again.
        unsafe {
            assert_eq!(libc::fcntl(closed, libc::F_GETFD), -1, "descriptor {closed} is open");
            assert_eq!(libc::dup2(fd, closed), closed);
            assert_eq!(libc::close(closed), 0);
        }
        let result = pselect_read(closed, &mut read_set(closed), &short, None);
        assert_eq!((result, std::io::Error::last_os_error().raw_os_error()), (-1, Some(libc::EBADF)));
    });
}
