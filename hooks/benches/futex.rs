//! What the futex hooks cost and give, in one run (ratios of medians):
//!
//! - a `std::sync::Mutex` handed between two greenlets of one hub (each
//!   holds it across a yield, so the other waits in `FUTEX_WAIT` every
//!   turn) against `runtime::sync::Mutex` doing the same, and against the
//!   floor of std's protocol there: the runtime's lock with the third pass
//!   through the hub that std's needs (see `runtime_handoff`);
//! - a plain thread's `syscall(SYS_futex, FUTEX_WAKE)` with nobody waiting
//!   (what a std unlock after contention, or a `Condvar` notification, pays:
//!   interposed, it skips the kernel when no thread waits there on the
//!   word's bucket), and a forwarded system call (`SYS_getppid`), through
//!   the interposed `syscall` against libc's own.
//!
//! The hand-offs are timed by the thread's CPU time (both greenlets run on
//! the hub's one thread, which never sleeps meanwhile), so that other load on
//! the machine does not inflate them.
//!
//! ```text
//! cargo bench -p runtime-hooks --bench futex
//! cargo bench -p runtime-hooks --bench futex -- --std-handoff   # only the std hand-offs, to profile
//! cargo bench -p runtime-hooks --bench futex -- --runtime-handoff   # only the runtime's
//! cargo bench -p runtime-hooks --bench futex -- --floor   # only the floor of std's protocol
//! ```

use std::ffi::{c_long, c_void};
use std::rc::Rc;
use std::sync::atomic::AtomicU32;
use std::time::Instant;

/// The goal for the std `Mutex` hand-off, as a ratio to the runtime's.
const HANDOFF_GOAL: f64 = 1.5;

/// Hand-offs per batch.
const HANDOFFS: u32 = 20_000;
/// System calls per batch.
const CALLS: u32 = 200_000;
/// Batches of each kind.
const ROUNDS: usize = 21;

type SyscallFn = unsafe extern "C" fn(c_long, ...) -> c_long;

/// The CPU time the calling thread has used, in nanoseconds.
fn thread_cpu_nanos() -> f64 {
    let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `now` is a valid `timespec` for the call to write into.
    let result = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    assert_eq!(result, 0, "clock_gettime: {}", std::io::Error::last_os_error());
    now.tv_sec as f64 * 1e9 + now.tv_nsec as f64
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Nanoseconds per hand-off of a std `Mutex` between two greenlets.
fn std_handoff() -> f64 {
    runtime_scheduler::run(|| {
        let lock = Rc::new(std::sync::Mutex::new(0u32));
        let start = thread_cpu_nanos();
        let other = runtime_scheduler::spawn({
            let lock = lock.clone();
            move || {
                for _ in 0..HANDOFFS {
                    let mut guard = lock.lock().unwrap();
                    *guard += 1;
                    runtime_scheduler::yield_now();
                }
            }
        });
        for _ in 0..HANDOFFS {
            let mut guard = lock.lock().unwrap();
            *guard += 1;
            runtime_scheduler::yield_now();
        }
        other.join().unwrap();
        assert_eq!(*lock.lock().unwrap(), 2 * HANDOFFS);
        (thread_cpu_nanos() - start) / f64::from(2 * HANDOFFS)
    })
}

/// Nanoseconds per hand-off of a `runtime::sync::Mutex`, as above. With
/// `third_pass`, each greenlet also yields after its release, as a greenlet
/// that releases a std `Mutex` another one waits for must (so that the woken
/// one takes it before the releaser comes back for it): three passes through
/// the hub per hand-off, as std's protocol makes, with the runtime's lock
/// work. That is the floor for the std hand-off here, whatever the hooks do.
fn runtime_handoff(third_pass: bool) -> f64 {
    runtime_scheduler::run(move || {
        let lock = Rc::new(runtime_scheduler::sync::Mutex::new(0u32));
        let start = thread_cpu_nanos();
        let other = runtime_scheduler::spawn({
            let lock = lock.clone();
            move || {
                for _ in 0..HANDOFFS {
                    let mut guard = lock.lock();
                    *guard += 1;
                    runtime_scheduler::yield_now();
                    drop(guard);
                    if third_pass {
                        runtime_scheduler::yield_now();
                    }
                }
            }
        });
        for _ in 0..HANDOFFS {
            let mut guard = lock.lock();
            *guard += 1;
            runtime_scheduler::yield_now();
            drop(guard);
            if third_pass {
                runtime_scheduler::yield_now();
            }
        }
        other.join().unwrap();
        assert_eq!(*lock.lock(), 2 * HANDOFFS);
        (thread_cpu_nanos() - start) / f64::from(2 * HANDOFFS)
    })
}

/// Nanoseconds per `f()`, over one batch.
fn per_call(mut f: impl FnMut()) -> f64 {
    let start = Instant::now();
    for _ in 0..CALLS {
        f();
    }
    start.elapsed().as_nanos() as f64 / f64::from(CALLS)
}

fn main() {
    assert!(runtime_hooks::is_interposed(), "the hooks are not linked in");
    if std::env::args().any(|arg| arg == "--std-handoff") {
        let mut times: Vec<f64> = (0..ROUNDS).map(|_| std_handoff()).collect();
        println!("std::sync::Mutex hand-off: {:.1} ns (median of {ROUNDS})", median(&mut times));
        return;
    }
    if std::env::args().any(|arg| arg == "--floor") {
        let mut times: Vec<f64> = (0..ROUNDS).map(|_| runtime_handoff(true)).collect();
        println!("floor: {:.1} ns (median of {ROUNDS})", median(&mut times));
        return;
    }
    if std::env::args().any(|arg| arg == "--runtime-handoff") {
        let mut times: Vec<f64> = (0..ROUNDS).map(|_| runtime_handoff(false)).collect();
        println!("runtime::sync::Mutex hand-off: {:.1} ns (median of {ROUNDS})", median(&mut times));
        return;
    }
    // SAFETY: a NUL-terminated name; RTLD_NEXT from the executable finds
    // libc's definition, past ours.
    let found = unsafe { libc::dlsym(libc::RTLD_NEXT, c"syscall".as_ptr()) };
    assert!(!found.is_null());
    // SAFETY: libc's `syscall`, whose prototype this is.
    let libc_syscall: SyscallFn = unsafe { std::mem::transmute::<*mut c_void, SyscallFn>(found) };
    let hooked_syscall: SyscallFn = libc::syscall;
    assert_ne!(hooked_syscall as usize, libc_syscall as usize);

    let word = AtomicU32::new(0);
    let word = &word;
    let wake = |syscall: SyscallFn| {
        move || {
            // SAFETY: FUTEX_WAKE of one waiter of a word we own.
            let n = unsafe { syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG, 1) };
            assert_eq!(n, 0);
        }
    };
    let getppid = |syscall: SyscallFn| {
        move || {
            // SAFETY: a system call without arguments.
            std::hint::black_box(unsafe { syscall(libc::SYS_getppid) });
        }
    };

    let mut samples: [Vec<f64>; 7] = Default::default();
    for round in 0..ROUNDS + 2 {
        let values = [
            std_handoff(),
            runtime_handoff(false),
            runtime_handoff(true),
            per_call(wake(hooked_syscall)),
            per_call(wake(libc_syscall)),
            per_call(getppid(hooked_syscall)),
            per_call(getppid(libc_syscall)),
        ];
        if round >= 2 {
            for (sample, value) in samples.iter_mut().zip(values) {
                sample.push(value);
            }
        }
    }
    let [std_mutex, runtime_mutex, three_passes, hooked_wake, libc_wake, hooked_ppid, libc_ppid] =
        samples.map(|mut s| median(&mut s));
    println!("medians of {ROUNDS} alternated batches:");
    println!("mutex hand-off between two greenlets of one hub ({HANDOFFS} each way per batch):");
    println!("  runtime::sync::Mutex:  {runtime_mutex:8.1} ns");
    let ratio = std_mutex / runtime_mutex;
    let verdict = if ratio <= HANDOFF_GOAL { "met" } else { "MISSED" };
    println!("  std::sync::Mutex:      {std_mutex:8.1} ns  ({ratio:.2}x; goal <= {HANDOFF_GOAL}x: {verdict})");
    println!(
        "  floor of std's protocol (the runtime's lock, three passes through the hub): {three_passes:.1} ns ({:.2}x)",
        three_passes / runtime_mutex
    );
    println!("plain thread, no hub ({CALLS} calls per batch):");
    println!(
        "  FUTEX_WAKE, nobody waiting: libc {libc_wake:6.1} ns, interposed {hooked_wake:6.1} ns ({:+.1} ns)",
        hooked_wake - libc_wake
    );
    println!(
        "  getppid via syscall:        libc {libc_ppid:6.1} ns, interposed {hooked_ppid:6.1} ns ({:+.1} ns)",
        hooked_ppid - libc_ppid
    );
}
