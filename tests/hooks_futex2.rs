//! The `hooks` feature and `futex_waitv(2)`: a wait the futex table cannot
//! count. A private `FUTEX_WAKE` that finds no thread counted waiting skips
//! the kernel, so once such a wait went by, wakes must reach the kernel
//! again. (Alone in its process: the first uncounted wait of a process
//! changes how every later wake behaves.)

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// `struct futex_waitv` of linux/futex.h.
#[repr(C)]
struct FutexWaitv {
    val: u64,
    uaddr: u64,
    flags: u32,
    reserved: u32,
}

const FUTEX2_SIZE_U32: u32 = 0x02;
const FUTEX2_PRIVATE: u32 = 128;

#[test]
fn a_thread_waiting_in_futex_waitv_is_woken_by_futex_wake() {
    assert!(runtime::hooks::is_interposed(), "the hooks are not linked in");
    let word: &'static AtomicU32 = Box::leak(Box::new(AtomicU32::new(0)));
    let waiter = std::thread::spawn(move || {
        let waitv =
            [FutexWaitv { val: 0, uaddr: word.as_ptr() as u64, flags: FUTEX2_SIZE_U32 | FUTEX2_PRIVATE, reserved: 0 }];
        // SAFETY: one `futex_waitv` entry for a live, aligned word; no
        // timeout. Returns the index of the woken entry.
        let woken = unsafe {
            libc::syscall(libc::SYS_futex_waitv, waitv.as_ptr(), 1, 0, std::ptr::null::<libc::timespec>(), 0)
        };
        assert_eq!(woken, 0, "woken, not failed: {}", std::io::Error::last_os_error());
    });
    // Wake until the waiter was in the kernel to be woken (a wake before
    // that finds nobody, which the retry covers).
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        // SAFETY: a wake of one waiter of a live, aligned word.
        let woken =
            unsafe { libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG, 1) };
        if woken == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "the thread waiting in futex_waitv was never woken");
        std::thread::sleep(Duration::from_millis(1));
    }
    word.store(1, Ordering::SeqCst);
    waiter.join().unwrap();
}
