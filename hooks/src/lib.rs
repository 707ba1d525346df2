//! Cooperative libc: with this crate linked into an executable, the blocking
//! calls of unmodified code (`std::net`, `std::thread::sleep`, child
//! processes, DNS, client crates) made in a greenlet of the runtime park only
//! that greenlet, and the rest of its hub runs meanwhile. gevent's monkey
//! patching, for Rust. The `runtime` crate's `hooks` feature links it and
//! re-exports it as `runtime::hooks`.
//!
//! ```
//! # runtime_hooks::link();
//! # assert!(runtime_hooks::is_interposed());
//! use std::io::{Read, Write};
//! use std::os::unix::net::UnixStream;
//!
//! runtime_scheduler::run(|| {
//!     let (mut ours, theirs) = UnixStream::pair().unwrap();
//!     // A std read parks only this greenlet...
//!     let reader = runtime_scheduler::spawn(move || {
//!         let mut line = String::new();
//!         (&theirs).read_to_string(&mut line).unwrap();
//!         line
//!     });
//!     // ...so this one runs meanwhile.
//!     std::thread::sleep(std::time::Duration::from_millis(10));
//!     ours.write_all(b"hello").unwrap();
//!     drop(ours);
//!     assert_eq!(reader.join().unwrap(), "hello");
//! });
//! ```
//!
//! # How
//!
//! The crate defines libc's blocking functions as `#[no_mangle] extern "C"`
//! functions. The linker resolves the executable's calls to these
//! definitions, and the dynamic linker prefers them to libc's, so every call
//! of the process (from Rust's std, from any crate, from C code in the
//! executable) comes here; the real function is libc's, found with
//! `dlsym(RTLD_NEXT, ...)` once. Calls libc makes internally, raw system
//! calls, and statically linked C libraries that call libc internally are
//! not affected. [`is_interposed`] tells whether it is in place.
//!
//! # Which calls
//!
//! In a greenlet of a hub (not in the hub's loop):
//!
//! - `read`, `readv`, `recv`, `recvfrom`, `recvmsg`, `write`, `writev`,
//!   `send`, `sendto`, `sendmsg`, `accept`, `accept4`, `connect`: park until
//!   the descriptor is ready (see below for which descriptors), honouring
//!   `SO_RCVTIMEO`/`SO_SNDTIMEO`;
//! - `poll`, `ppoll`, `select`, `pselect`: park until a descriptor is ready
//!   or the timeout passes (a `pselect` whose signal mask differs from the
//!   thread's is libc's: that mask would have to be in place while parked,
//!   for every greenlet of the hub);
//! - `nanosleep`, `clock_nanosleep`, `usleep`, `sleep`: park for the time;
//! - `waitpid`, `wait4` for one child: park on a pidfd until it ends;
//! - `getaddrinfo`, `open` and its variants: run on the hub's blocking
//!   pool, parked meanwhile (see "Regular files" for which opens).
//!
//! Bookkeeping only: `socket`, `socketpair`, `pipe`, `pipe2` (descriptors
//! this process made), `close`, `dup`, `dup2`, `dup3`, `fcntl` (`F_GETFL`
//! reports the mode its user asked for), `ioctl(FIONBIO)`, `setsockopt`,
//! and `posix_spawn_file_actions_adddup2` (a descriptor handed to a child).
//!
//! Everywhere else (plain threads, the blocking pool, the hub's loop, a
//! thread with no hub, a thread whose hooks are off, a forked child) the
//! calls behave as libc's: they block the thread.
//!
//! # Which descriptors
//!
//! - **Sockets** cooperate and keep their mode, whoever made them: those of
//!   this process and inherited ones alike (systemd's socket activation,
//!   inetd). A greenlet's call runs with `MSG_DONTWAIT` (`read` and `write`
//!   become `recv` and `send`); on `EAGAIN` it parks until the hub sees the
//!   socket ready. `accept` on a blocking listener runs once the listener is
//!   readable (nothing else of the thread can take the connection in
//!   between; another thread or process sharing the listener could, and the
//!   hub then blocks until the next connection). `connect` on a socket this
//!   process made is non-blocking for that call only; on an inherited one it
//!   blocks as libc's.
//! - **Listening sockets and pipes this process made** (`Command`'s piped
//!   stdio) are put in non-blocking mode underneath the first time a
//!   greenlet uses them; their users still see them blocking (on a plain
//!   thread the hooks wait in `poll(2)`). They are blocking again as soon as
//!   another process can see them: when `dup2`/`dup3` put them on a standard
//!   stream, when a `Command` hands them to a child (`Stdio::from`, the next
//!   command of a pipeline), and in a forked child's `dup2`. From then on
//!   the hooks leave their mode alone (a pipe end the parent keeps no longer
//!   cooperates).
//! - **The standard streams** (descriptors 0, 1 and 2) pass through, never
//!   switched and never parked on: a write to a full stdout blocks the hub
//!   until it drains (a park inside std's stdout lock would let another
//!   greenlet of the thread into its buffer), and a read of stdin blocks the
//!   hub (wait with `runtime::io::wait_readable` first to cooperate).
//! - **Regular files** keep their mode and cooperate another way (see
//!   "Regular files" below).
//! - **Terminals, inherited pipes** and anything else pass through.
//! - **Descriptors their user made non-blocking** (`set_nonblocking(true)`,
//!   `O_NONBLOCK`, `FIONBIO`, `SOCK_NONBLOCK`, `MSG_DONTWAIT`) pass through,
//!   `EAGAIN` and all; the `runtime::net` sockets are among them.
//!
//! # What cannot cooperate
//!
//! Greenlets share their hub's thread, and the hooks cannot change that:
//! what belongs to the thread (thread-locals, `std::thread::current()`, a
//! reentrant lock such as std's stdout lock, a runtime that refuses to nest
//! on one thread, such as tokio's `block_on`) is shared by all of them.
//! A blocking call that is not interposed blocks the whole hub. For std's
//! own synchronisation and embedded event loops, see "std's locks" and
//! "Embedded event loops" below.
//!
//! A greenlet never parks in a hooked call while the thread runs the panic
//! hook (another greenlet's panic meanwhile would abort the process): there
//! the calls block. That covers the runtime's hook and those it chains to
//! (std's, or one set before the runtime started); set your own before
//! `runtime::run`.
//!
//! # fork
//!
//! The child of a `fork()` starts with no hub: the greenlets of the hub it
//! was forked from (if any) never run there, and its hooked calls behave as
//! libc's. A hub it starts of its own (on a new thread, if it was forked
//! from a greenlet, whose hub's copy still occupies the forking thread)
//! cooperates as usual (gevent's `reinit`). The handler is registered at
//! startup, so a `fork` before any cooperative call is covered too. It also
//! empties the hooks' futex table in the child (its waiters are the parent's
//! greenlets), so a futex call there never waits for a table lock that
//! another thread of the parent held at the moment of the fork.
//!
//! # Regular files
//!
//! In a greenlet, `read`, `readv`, `pread`, `preadv` of a regular file are
//! first tried with `RWF_NOWAIT`: what the page cache holds comes back at
//! once, inline (every 4 MiB of it the greenlet yields, and the hub polls
//! and fires its timers before it runs again); a read that would wait for
//! the disk runs on the hub's blocking pool while the greenlet parks. `write`, `writev`, `pwrite`,
//! `pwritev` of 16 KiB or more (which can wait while the kernel flushes
//! dirty pages), `fsync` and `fdatasync` run on the pool too; smaller writes
//! stay inline. A kill or timeout does not cut such a call short (the
//! caller's buffer is in use until it returns): the greenlet waits for it,
//! gets its result, and the kill or timeout is raised at its next park.
//!
//! `open`, `open64`, `openat`, `openat64`, `creat` and `creat64` run on the
//! pool as well (a lookup may read directories from the disk or wait for an
//! NFS server, `O_TRUNC` frees a big file's blocks, a FIFO's open waits for
//! its other end), with a copy of the path: a kill or timeout fails the open
//! at once (`ECANCELED`, `ETIMEDOUT`) and the descriptor it opens later is
//! closed (a file it created stays). Absolute paths under `/dev`, `/proc`
//! and `/sys` (nothing there waits for a disk, and `/proc/thread-self` is
//! the calling thread's) and `O_PATH` opens stay inline.
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
//! Every thread's futex calls pass through the hooks, so they also count the
//! plain threads waiting in the kernel: a private wake (every std one) that
//! finds no greenlet and no such thread waiting makes no system call, where
//! libc's would (std wakes after every contended `Mutex` hand-off and on
//! every `Condvar` notification, whether anybody waits or not). Once a
//! requeue or wake-op goes by (std never makes one), or a `futex_waitv` (or
//! another futex2 call), wakes go to the kernel as well, for good. A futex
//! wait submitted through io_uring is not seen at all: a program that waits
//! that way on a word that std or parking_lot wakes must not use the hooks.
//!
//! A greenlet that releases a std `Mutex` or `RwLock` for which a greenlet
//! of its own hub waits lets that one run first: the release (a futex wake
//! of a word now zero) yields, as a hooked call may. Greenlets that take
//! turns at a lock then alternate, and the woken one finds the lock free,
//! rather than taken back by the releasing one (std's `Mutex` spins a while
//! before it waits for a lock it finds taken, which on one thread only
//! delays the holder). Not while the thread panics or runs the panic hook.
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
//! A kill or timeout makes a greenlet's futex wait return early, once
//! (`EINTR`, or `ETIMEDOUT` for a wait with a timeout). std's `Mutex::lock`
//! and `Condvar::wait` retry, and wait normally during the grace (see "Kills
//! and timeouts"); past the grace every hooked wait of that greenlet fails
//! at once, so a greenlet still waiting for a std lock then busy-waits until
//! it gets it, which a holder on its own hub never releases. Kill greenlets
//! at runtime calls, not inside std locks.
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
//! process). Instead the call returns an error, once:
//!
//! - `ECANCELED` for a kill: `ErrorKind::Uncategorized` (it has no kind of
//!   its own; `raw_os_error()` is `Some(libc::ECANCELED)`, displayed as
//!   "Operation canceled");
//! - `ETIMEDOUT` for a timeout: `ErrorKind::TimedOut`;
//! - sleeps end early with nothing left to sleep (`EINTR`, all their callers
//!   expect); `getaddrinfo` returns `EAI_SYSTEM` with that `errno`.
//!
//! [`is_cancelled`] tells these errors from the same numbers coming from the
//! system. After the error comes a grace (`Builder::cancel_grace`, one
//! second by default) in which the greenlet's calls complete normally, so
//! that its cleanup works: destructors, `child.kill(); child.wait()`,
//! flushing a `BufWriter`, a TLS `close_notify`. No park lasts past the
//! grace; after it, hooked calls fail again at once. The kill or timeout is
//! never lost: it is raised at the greenlet's next park outside a hook past
//! the grace (any runtime call), or when its closure returns: a killed
//! greenlet ends as killed, a timed-out scope returns `Err(Elapsed)`,
//! whatever the closure made of the error.
//!
//! A retry loop that ignores errors ends at its first park outside the
//! hooks past the grace (a `runtime::sleep` back-off, say). One made only of
//! hooked calls cannot be unwound: after the grace its calls fail at once,
//! and if it still makes them a second after the grace ended, its greenlet
//! is parked for good at the next one: it never runs again, its stack is
//! leaked (so nothing it borrows is freed), its join reports it killed, and
//! a warning names it. Treat `ECANCELED` and `ETIMEDOUT` as final, or check
//! [`is_cancelled`].
//!
//! # Off switch
//!
//! [`disable_for_current_thread`] (or the [`blocking_scope`] scope) makes the
//! calls of the current thread plain libc calls that block the thread, for
//! code that really must. Without the `hooks` feature nothing of this crate
//! is linked.

// `unsafe` lives in `real` (libc's definitions, found with `dlsym`, and
// safe wrappers for calls on integers and locals) and in `exports` and
// `lifecycle` (the interposed definitions, which hand the caller's pointers
// on unchanged) and in `spin` (the futex table's lock); `fork` places its
// constructor in `.init_array`, and its child handler resets the futex table
// (`futex::forget_parents_waiters`, the one `unsafe` of `futex`). The rest of
// the logic (`coop`, `fds`, `files`, `futex`, `slots`) is safe code.
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
mod fork;
mod futex;
mod lifecycle;
mod real;
mod slots;
mod spin;

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
/// # mod runtime { pub use ::runtime::*; pub use runtime_hooks as hooks; } // as with the `hooks` feature
/// runtime::run(|| {
///     // Blocks the whole hub for a millisecond, as a plain `sleep` would.
///     runtime::hooks::blocking_scope(|| std::thread::sleep(std::time::Duration::from_millis(1)));
/// });
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

/// Whether `err` is the error a hooked call returned because its greenlet
/// was killed (`ECANCELED`) or a `runtime::timeout` around it expired
/// (`ETIMEDOUT`), rather than the same error number from the system (a
/// connection that really timed out, say).
///
/// An `io::Error` made from `errno` carries nothing else, so this asks the
/// calling greenlet instead: true when `err`'s number is the one its pending
/// kill (`ECANCELED`) or timeout (`ETIMEDOUT`) was reported with. Call it
/// in the greenlet that got the error, before the kill or timeout is raised
/// (it is at the greenlet's next park past the grace, see the crate docs);
/// on another greenlet or thread it is false. A real `ETIMEDOUT` that a
/// greenlet gets while its own timeout is pending counts as a cancellation
/// too: that greenlet is being cancelled anyway.
///
/// ```
/// use std::io::Read;
/// # runtime_hooks::link();
/// # runtime_scheduler::run(|| {
/// let (reader, _writer) = std::os::unix::net::UnixStream::pair().unwrap();
/// let outcome = runtime_scheduler::timeout(std::time::Duration::from_millis(10), move || {
///     let err = (&reader).read(&mut [0; 16]).unwrap_err(); // nothing arrives
///     assert!(runtime_hooks::is_cancelled(&err)); // our timeout, not the network's
///     assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
/// });
/// assert!(outcome.is_err(), "the scope still times out");
/// # });
/// ```
pub fn is_cancelled(err: &std::io::Error) -> bool {
    let Some(errno) = err.raw_os_error() else { return false };
    let Some(current) = runtime_scheduler::foreign::Current::get() else { return false };
    current.cancelled().is_some_and(|why| coop::errno_of(why) == errno)
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
    // The fork handler's constructor is kept with the object that holds it.
    let register = std::hint::black_box(&fork::REGISTER) as *const _ as usize;
    exports::table() ^ lifecycle::table() ^ register
}
