//! Cooperative libc: with this crate linked into an executable, the blocking
//! calls of unmodified code (`std::net`, `std::thread::sleep`, child
//! processes, DNS, client crates) made in a greenlet of the runtime park only
//! that greenlet, and the rest of its hub runs meanwhile. gevent's monkey
//! patching, for Rust. The `runtime` crate's `hooks` feature links it and
//! re-exports it as `runtime::hooks`.
//!
//! # How
//!
//! The crate defines libc's blocking functions (`read`, `recv`, `accept4`,
//! `connect`, `poll`, `clock_nanosleep`, `waitpid`, `getaddrinfo`, ...) as
//! `#[no_mangle] extern "C"` functions. The dynamic linker resolves a symbol
//! to the executable's definition before libc's, so every call of the
//! process (from Rust's std, from any crate, from C code in the executable)
//! comes here; the real function is libc's, found with
//! `dlsym(RTLD_NEXT, ...)` once. Calls libc makes internally are not
//! affected.
//!
//! A call made by a greenlet of a hub (not by the hub's loop) parks the
//! greenlet until it can complete: a socket (or a pipe the process created)
//! is put in non-blocking mode underneath, the call is tried, and on
//! `EAGAIN` the greenlet waits for the hub to see the descriptor ready.
//! Everywhere else (plain threads, the blocking pool, the hub's loop, a
//! thread with no hub, a thread whose hooks are off) the call behaves as
//! libc's: on a descriptor the hooks made non-blocking, blocking is emulated
//! with `poll(2)`, so its user never sees a spurious `EWOULDBLOCK`.
//!
//! Terminals, the standard streams, and pipes the process inherited pass
//! through unchanged: their mode belongs to an open file description that
//! other processes may share. Regular files keep their mode too, and
//! cooperate another way (see below). A descriptor its user made
//! non-blocking (`O_NONBLOCK`, `FIONBIO`, `SOCK_NONBLOCK`, `MSG_DONTWAIT`)
//! passes through too, `EAGAIN` and all; `fcntl(F_GETFL)` reports the mode
//! the user asked for.
//!
//! # Regular files
//!
//! In a greenlet, `read`, `readv`, `pread`, `preadv` of a regular file are
//! first tried with `RWF_NOWAIT`: what the page cache holds comes back at
//! once, inline; a read that would wait for the disk runs on the hub's
//! blocking pool while the greenlet parks. `write`, `writev`, `pwrite`,
//! `pwritev` of 16 KiB or more (which can wait while the kernel flushes
//! dirty pages), `fsync` and `fdatasync` run on the pool too; smaller writes
//! stay inline. A kill or timeout does not cut such a call short (the
//! caller's buffer is in use until it returns): the greenlet waits for it,
//! gets its result, and the kill or timeout is raised at its next park.
//! `open` is not offloaded.
//!
//! # std's locks
//!
//! std's `Mutex`, `RwLock`, `Condvar`, `Once`/`OnceLock`, `Barrier`,
//! `thread::park` and `mpsc` (and parking_lot, crossbeam) wait in the `futex`
//! system call through libc's `syscall`, which is interposed too: in a
//! greenlet, a futex wait parks only the greenlet, and a wake reaches the
//! greenlets waiting on that word (on any hub) as well as plain threads. A
//! lock held across a hooked call, a `Condvar` shared between greenlets, or
//! a plain thread holding a lock for a while then stall only the greenlets
//! that wait for it.
//!
//! While the thread is panicking (a panic hook runs, or a greenlet of the
//! thread is parked in the middle of unwinding), futex waits block the
//! thread as before: a greenlet parked inside a panic hook (waiting for
//! std's backtrace or stderr lock, held by another thread) would let another
//! greenlet of the thread start a panic, which aborts the process.
//!
//! What ties itself to the *thread* cannot tell greenlets of one thread
//! apart, and does not cooperate:
//!
//! - `std::sync::mpsc` (and crossbeam-channel) wake waiting *senders* (of a
//!   full bounded channel, of a rendezvous) only from other threads: a
//!   greenlet waiting to send is never woken by a receiver of its own thread
//!   (a greenlet waiting in `thread::park` for 2 s gets a warning on stderr
//!   that says so). Between a greenlet and a plain thread, or greenlets of
//!   two hubs, they work. Use `runtime::sync::channel` between greenlets.
//! - `std::thread::park` from two greenlets of one thread at once (two
//!   `reqwest::blocking` callers, two mpsc waiters): they share the thread's
//!   one parker, and wake-ups go astray. One such caller per thread, or
//!   `runtime::blocking` around the call.
//! - `ReentrantLock` (stdout's and stderr's lock) counts the thread as its
//!   owner: every greenlet of the thread owns it.
//!
//! A kill or timeout makes a greenlet's futex wait return early (`EINTR`, or
//! `ETIMEDOUT` for a wait with a timeout). std's `Mutex::lock` and
//! `Condvar::wait` retry, and every later hooked wait of that greenlet fails
//! at once (see below): a greenlet killed while it waits for a std lock
//! busy-waits until it gets it, which a holder on its own hub then never
//! releases. Kill greenlets at runtime calls, not inside std locks.
//!
//! # Embedded event loops
//!
//! `epoll_wait`, `epoll_pwait` and `epoll_pwait2` in a greenlet park it on
//! the epoll descriptor (readable while events are pending) for the call's
//! timeout: a mio `Poll`, or a tokio `current_thread` runtime's `block_on`,
//! inside a greenlet lets the rest of the hub run. In a greenlet such a wait
//! returns with no events after at most 10 ms (as `epoll_wait` may): tokio's
//! waker, called by another greenlet of the same thread, sees the thread
//! inside its runtime and only marks it woken, without reaching the epoll
//! descriptor, and tokio looks again then. A tokio runtime without its I/O
//! driver waits on a condition variable instead, which such a wake never
//! notifies: feed it from plain threads or other hubs only. One `block_on`
//! per thread at a time (tokio refuses nested ones).
//!
//! # Kills and timeouts
//!
//! A kill or `runtime::timeout` cannot unwind a greenlet parked inside a
//! hooked call (unwinding out of an `extern "C"` function aborts the
//! process). Instead the call returns an error: `ECANCELED` for a kill,
//! `ETIMEDOUT` for a timeout (sleeps end early with `EINTR` and nothing left
//! to sleep, since that is all their callers expect). Every later hooked
//! blocking call of that greenlet fails the same way at once, and the kill
//! or timeout is delivered as usual at the greenlet's next park outside a
//! hook (any runtime call), or when its closure returns: a killed greenlet
//! ends as killed, a timed-out scope returns `Err(Elapsed)`, whatever value
//! the closure computed from the error. A retry loop around hooked calls
//! must stop on these errors (as on any error it does not expect), or park
//! through the runtime now and then, or it spins.
//!
//! # Off switch
//!
//! [`disable_for_current_thread`] (or the [`blocking_scope`] scope) makes the
//! calls of the current thread plain libc calls that block the thread, for
//! code that really must.

// `unsafe` lives in two modules: `real` (libc's definitions, found with
// `dlsym`, and safe wrappers for calls on integers and locals) and `exports`
// (the interposed definitions, which hand the caller's pointers on
// unchanged). The logic (`coop`, `fds`, `slots`) is safe code.
#![deny(unsafe_op_in_unsafe_fn)]

#[cfg(not(all(target_os = "linux", any(target_arch = "x86_64", target_arch = "aarch64"))))]
compile_error!(
    "the hooks interpose glibc's functions on x86-64 and AArch64 Linux (where a variadic `fcntl`'s argument \
     arrives as a third one)"
);

mod coop;
mod exports;
mod fds;
mod files;
mod futex;
mod real;
mod slots;

/// Turns the hooks off for the calling thread: its calls (in every greenlet
/// of a hub running on it) go straight to libc and block the thread, until
/// [`enable_for_current_thread`]. A descriptor the hooks made non-blocking
/// still behaves as blocking (its calls wait in `poll(2)`).
pub fn disable_for_current_thread() {
    coop::set_disabled(true);
}

/// Turns the hooks back on for the calling thread.
pub fn enable_for_current_thread() {
    coop::set_disabled(false);
}

/// Whether the hooks are on for the calling thread.
pub fn is_enabled_for_current_thread() -> bool {
    !coop::is_disabled()
}

/// Runs `f` with the hooks off for the calling thread (restoring the previous
/// setting afterwards, also if `f` unwinds): inside a greenlet, its blocking
/// calls block the whole hub.
///
/// ```
/// # runtime_scheduler::run(|| {
/// runtime_hooks::blocking_scope(|| std::thread::sleep(std::time::Duration::from_millis(1)));
/// # });
/// ```
pub fn blocking_scope<T>(f: impl FnOnce() -> T) -> T {
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            coop::set_disabled(self.0);
        }
    }
    let _restore = Restore(coop::is_disabled());
    coop::set_disabled(true);
    f()
}

/// Whether the process's calls of libc's blocking functions reach the hooks:
/// the dynamic linker resolves `read`, `clock_nanosleep` and `connect` to
/// this crate's definitions. False if the executable was linked without
/// them, or something (an `LD_PRELOAD`ed library) interposes in front.
pub fn is_interposed() -> bool {
    exports::resolves_to(c"read", exports::read as *const () as usize)
        && exports::resolves_to(c"clock_nanosleep", exports::clock_nanosleep as *const () as usize)
        && exports::resolves_to(c"connect", exports::connect as *const () as usize)
}

/// Makes the linker keep the hooks in the executable: a program links an
/// archive's object only for a symbol it needs, and libc's functions are
/// found in libc already. The `runtime` crate calls it when a hub starts.
#[inline(never)]
pub fn link() -> usize {
    exports::table()
}
