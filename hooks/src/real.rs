//! libc's own definitions of the functions this crate interposes, found with
//! `dlsym(RTLD_NEXT, ...)` (the next definition after the executable's, which
//! are ours) on first use and cached, and small safe wrappers around the
//! calls whose arguments are only integers or locals.
//!
//! Nothing here calls an interposed function through its symbol: that would
//! come back into the hooks.

use std::ffi::{c_char, c_int, c_void};
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{BorrowedFd, RawFd};
use std::sync::atomic::{AtomicPtr, Ordering};
use std::time::Duration;

use runtime_scheduler::Registration;

/// The address of libc's `name` (NUL-terminated), cached in `slot`. Aborts
/// if there is none: nothing sensible can be done without it.
#[inline]
fn resolve(slot: &AtomicPtr<c_void>, name: &'static str) -> *mut c_void {
    let cached = slot.load(Ordering::Relaxed);
    if !cached.is_null() {
        return cached;
    }
    debug_assert!(name.ends_with('\0'));
    // SAFETY: `name` is NUL-terminated (all of them are written with a
    // trailing "\0" below); `RTLD_NEXT` asks for the definition after the
    // calling object's, which is the executable holding ours.
    let found = unsafe { libc::dlsym(libc::RTLD_NEXT, name.as_ptr().cast::<c_char>()) };
    if found.is_null() {
        let message = b"runtime hooks: dlsym(RTLD_NEXT) found no libc definition of an interposed function\n";
        // SAFETY: a raw write(2) of a static buffer to stderr, without libc's
        // `write` or `syscall` (either may be the very symbol that is
        // missing).
        unsafe { raw_write_stderr(message) };
        std::process::abort();
    }
    slot.store(found, Ordering::Relaxed);
    found
}

/// Declares `unsafe fn name(args) -> ret` calling libc's definition.
macro_rules! libc_fns {
    ($( fn $name:ident($($arg:ident: $ty:ty),* $(,)?) -> $ret:ty; )*) => {
        $(
            /// libc's definition of the function of this name.
            ///
            /// # Safety
            ///
            /// The C contract of that function.
            #[inline]
            pub(crate) unsafe fn $name($($arg: $ty),*) -> $ret {
                static SLOT: AtomicPtr<c_void> = AtomicPtr::new(std::ptr::null_mut());
                let f = resolve(&SLOT, concat!(stringify!($name), "\0"));
                // SAFETY: `f` is libc's definition of this very symbol, whose C
                // prototype is this signature.
                let f = unsafe { std::mem::transmute::<*mut c_void, unsafe extern "C" fn($($ty),*) -> $ret>(f) };
                // SAFETY: the caller keeps the function's contract.
                unsafe { f($($arg),*) }
            }
        )*
    };
}

libc_fns! {
    fn read(fd: c_int, buf: *mut c_void, count: usize) -> isize;
    fn readv(fd: c_int, iov: *const libc::iovec, iovcnt: c_int) -> isize;
    fn recv(fd: c_int, buf: *mut c_void, len: usize, flags: c_int) -> isize;
    fn recvfrom(fd: c_int, buf: *mut c_void, len: usize, flags: c_int, addr: *mut libc::sockaddr, addrlen: *mut libc::socklen_t) -> isize;
    fn recvmsg(fd: c_int, msg: *mut libc::msghdr, flags: c_int) -> isize;
    fn write(fd: c_int, buf: *const c_void, count: usize) -> isize;
    fn writev(fd: c_int, iov: *const libc::iovec, iovcnt: c_int) -> isize;
    fn send(fd: c_int, buf: *const c_void, len: usize, flags: c_int) -> isize;
    fn sendto(fd: c_int, buf: *const c_void, len: usize, flags: c_int, addr: *const libc::sockaddr, addrlen: libc::socklen_t) -> isize;
    fn sendmsg(fd: c_int, msg: *const libc::msghdr, flags: c_int) -> isize;
    fn accept4(fd: c_int, addr: *mut libc::sockaddr, addrlen: *mut libc::socklen_t, flags: c_int) -> c_int;
    fn connect(fd: c_int, addr: *const libc::sockaddr, addrlen: libc::socklen_t) -> c_int;
    fn socket(domain: c_int, kind: c_int, protocol: c_int) -> c_int;
    fn socketpair(domain: c_int, kind: c_int, protocol: c_int, fds: *mut c_int) -> c_int;
    fn posix_spawn_file_actions_adddup2(actions: *mut libc::posix_spawn_file_actions_t, fd: c_int, new: c_int) -> c_int;
    fn poll(fds: *mut libc::pollfd, nfds: libc::nfds_t, timeout: c_int) -> c_int;
    fn ppoll(fds: *mut libc::pollfd, nfds: libc::nfds_t, timeout: *const libc::timespec, sigmask: *const libc::sigset_t) -> c_int;
    fn select(nfds: c_int, readfds: *mut libc::fd_set, writefds: *mut libc::fd_set, exceptfds: *mut libc::fd_set, timeout: *mut libc::timeval) -> c_int;
    fn nanosleep(req: *const libc::timespec, rem: *mut libc::timespec) -> c_int;
    fn clock_nanosleep(clock: libc::clockid_t, flags: c_int, req: *const libc::timespec, rem: *mut libc::timespec) -> c_int;
    fn usleep(usec: libc::useconds_t) -> c_int;
    fn sleep(seconds: libc::c_uint) -> libc::c_uint;
    fn close(fd: c_int) -> c_int;
    fn dup(fd: c_int) -> c_int;
    fn dup2(old: c_int, new: c_int) -> c_int;
    fn dup3(old: c_int, new: c_int, flags: c_int) -> c_int;
    fn setsockopt(fd: c_int, level: c_int, name: c_int, value: *const c_void, len: libc::socklen_t) -> c_int;
    fn getsockopt(fd: c_int, level: c_int, name: c_int, value: *mut c_void, len: *mut libc::socklen_t) -> c_int;
    fn getaddrinfo(node: *const c_char, service: *const c_char, hints: *const libc::addrinfo, res: *mut *mut libc::addrinfo) -> c_int;
    fn waitpid(pid: libc::pid_t, status: *mut c_int, options: c_int) -> libc::pid_t;
    fn wait4(pid: libc::pid_t, status: *mut c_int, options: c_int, rusage: *mut libc::rusage) -> libc::pid_t;
    fn pipe(fds: *mut c_int) -> c_int;
    fn pipe2(fds: *mut c_int, flags: c_int) -> c_int;
    fn pread64(fd: c_int, buf: *mut c_void, count: usize, offset: libc::off64_t) -> isize;
    fn pwrite64(fd: c_int, buf: *const c_void, count: usize, offset: libc::off64_t) -> isize;
    fn preadv64(fd: c_int, iov: *const libc::iovec, iovcnt: c_int, offset: libc::off64_t) -> isize;
    fn pwritev64(fd: c_int, iov: *const libc::iovec, iovcnt: c_int, offset: libc::off64_t) -> isize;
    fn preadv64v2(fd: c_int, iov: *const libc::iovec, iovcnt: c_int, offset: libc::off64_t, flags: c_int) -> isize;
    fn fsync(fd: c_int) -> c_int;
    fn fdatasync(fd: c_int) -> c_int;
    fn epoll_wait(epfd: c_int, events: *mut libc::epoll_event, maxevents: c_int, timeout: c_int) -> c_int;
    fn epoll_pwait(epfd: c_int, events: *mut libc::epoll_event, maxevents: c_int, timeout: c_int, sigmask: *const libc::sigset_t) -> c_int;
    fn epoll_pwait2(epfd: c_int, events: *mut libc::epoll_event, maxevents: c_int, timeout: *const libc::timespec, sigmask: *const libc::sigset_t) -> c_int;
}

/// Declares `unsafe fn name(fd, request, arg) -> c_int` calling libc's
/// variadic definition with one integer or pointer argument.
macro_rules! libc_variadic_fns {
    ($( fn $name:ident($req:ty); )*) => {
        $(
            /// libc's definition of the (variadic) function of this name,
            /// with one integer or pointer argument.
            ///
            /// # Safety
            ///
            /// The C contract of that function for `request` and `arg`.
            #[inline]
            pub(crate) unsafe fn $name(fd: c_int, request: $req, arg: usize) -> c_int {
                static SLOT: AtomicPtr<c_void> = AtomicPtr::new(std::ptr::null_mut());
                let f = resolve(&SLOT, concat!(stringify!($name), "\0"));
                // SAFETY: `f` is libc's definition of this very symbol, whose C
                // prototype is `int name(int, request, ...)`; called as the
                // variadic function it is.
                let f = unsafe { std::mem::transmute::<*mut c_void, unsafe extern "C" fn(c_int, $req, ...) -> c_int>(f) };
                // SAFETY: the caller keeps the function's contract.
                unsafe { f(fd, request, arg) }
            }
        )*
    };
}

libc_variadic_fns! {
    fn fcntl(c_int);
    fn fcntl64(c_int);
    fn ioctl(libc::c_ulong);
}

libc_fns! {
    fn creat(path: *const c_char, mode: libc::mode_t) -> c_int;
    fn creat64(path: *const c_char, mode: libc::mode_t) -> c_int;
    fn pselect(nfds: c_int, readfds: *mut libc::fd_set, writefds: *mut libc::fd_set, exceptfds: *mut libc::fd_set, timeout: *const libc::timespec, sigmask: *const libc::sigset_t) -> c_int;
}

/// Whether `mask` holds the signals the calling thread's mask holds (a
/// `pselect` with it changes nothing).
pub(crate) fn is_thread_sigmask(mask: &libc::sigset_t) -> bool {
    let mut current = MaybeUninit::<libc::sigset_t>::zeroed();
    // SAFETY: reads the thread's mask into a local sigset_t. (Not
    // interposed.)
    if unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, std::ptr::null(), current.as_mut_ptr()) } != 0 {
        return false;
    }
    // SAFETY: zeroed, then filled in by the successful call.
    let current = unsafe { current.assume_init() };
    // SAFETY: both are sigset_ts, and every number asked is a signal's.
    (1..=libc::SIGRTMAX())
        .all(|signal| unsafe { libc::sigismember(mask, signal) == libc::sigismember(&current, signal) })
}

/// Declares `unsafe fn name(dirfd, path, flags, mode) -> c_int` calling
/// libc's variadic `open`-like definition with the mode as its one optional
/// argument (`open` and `open64` take no `dirfd`: it is not passed).
macro_rules! libc_open_fns {
    ($( fn $name:ident($($dirfd:ident)?); )*) => {
        $(
            /// libc's definition of the (variadic) function of this name,
            /// with the mode as its optional argument.
            ///
            /// # Safety
            ///
            /// The C contract of that function.
            #[inline]
            pub(crate) unsafe fn $name($($dirfd: c_int,)? path: *const c_char, flags: c_int, mode: libc::c_uint) -> c_int {
                static SLOT: AtomicPtr<c_void> = AtomicPtr::new(std::ptr::null_mut());
                let f = resolve(&SLOT, concat!(stringify!($name), "\0"));
                // SAFETY: `f` is libc's definition of this very symbol, whose C
                // prototype is `int name([int dirfd,] const char *path, int
                // flags, ...)`; called as the variadic function it is.
                let f = unsafe {
                    std::mem::transmute::<*mut c_void, unsafe extern "C" fn($(libc_open_fns!(@int $dirfd),)? *const c_char, c_int, ...) -> c_int>(f)
                };
                // SAFETY: the caller keeps the function's contract.
                unsafe { f($($dirfd,)? path, flags, mode) }
            }
        )*
    };
    (@int $dirfd:ident) => { c_int };
}

libc_open_fns! {
    fn open();
    fn open64();
    fn openat(dirfd);
    fn openat64(dirfd);
}

/// The calling thread's `errno`.
#[inline]
pub(crate) fn errno() -> c_int {
    // SAFETY: `__errno_location` returns this thread's errno slot, valid for
    // the thread's life.
    unsafe { *libc::__errno_location() }
}

/// Sets the calling thread's `errno`.
#[inline]
pub(crate) fn set_errno(value: c_int) {
    // SAFETY: as in `errno`.
    unsafe { *libc::__errno_location() = value };
}

/// `fcntl(fd, cmd, arg)` for the commands whose argument is an integer
/// (`F_GETFL`, `F_SETFL`, `F_GETFD`).
pub(crate) fn fcntl_int(fd: RawFd, cmd: c_int, arg: c_int) -> c_int {
    debug_assert!(matches!(cmd, libc::F_GETFL | libc::F_SETFL | libc::F_GETFD));
    // SAFETY: these commands take an integer argument (or none) and touch no
    // memory of ours; any descriptor number is acceptable (EBADF).
    unsafe { fcntl(fd, cmd, arg as usize) }
}

/// The file type bits (`S_IFMT`) of `fd`, if it is open.
pub(crate) fn file_type(fd: RawFd) -> Option<libc::mode_t> {
    let mut stat = MaybeUninit::<libc::stat>::uninit();
    // SAFETY: `fstat` writes a `struct stat` into the buffer, which is one.
    // (Not interposed.)
    let done = unsafe { libc::fstat(fd, stat.as_mut_ptr()) };
    // SAFETY: initialised by the successful call.
    (done == 0).then(|| unsafe { stat.assume_init() }.st_mode & libc::S_IFMT)
}

/// An integer socket option of `fd`.
pub(crate) fn socket_int(fd: RawFd, name: c_int) -> Option<c_int> {
    let mut value: c_int = 0;
    let mut len = size_of::<c_int>() as libc::socklen_t;
    // SAFETY: the buffer is an int and `len` says so.
    let done = unsafe { getsockopt(fd, libc::SOL_SOCKET, name, (&raw mut value).cast(), &mut len) };
    (done == 0).then_some(value)
}

/// `SO_RCVTIMEO` or `SO_SNDTIMEO` of `fd`; `None` if unset (zero).
pub(crate) fn socket_timeout(fd: RawFd, name: c_int) -> Option<Duration> {
    let mut value = libc::timeval { tv_sec: 0, tv_usec: 0 };
    let mut len = size_of::<libc::timeval>() as libc::socklen_t;
    // SAFETY: the buffer is a timeval and `len` says so.
    let done = unsafe { getsockopt(fd, libc::SOL_SOCKET, name, (&raw mut value).cast(), &mut len) };
    if done != 0 {
        return None;
    }
    let timeout = Duration::new(value.tv_sec.max(0) as u64, (value.tv_usec.clamp(0, 999_999) as u32) * 1000);
    (!timeout.is_zero()).then_some(timeout)
}

/// `poll(2)` on the caller's array, without blocking or with `timeout_ms`.
pub(crate) fn poll_slice(fds: &mut [libc::pollfd], timeout_ms: c_int) -> c_int {
    // SAFETY: the array is valid for its length.
    unsafe { poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) }
}

/// libc's `close`, for descriptors this crate opened itself.
pub(crate) fn close_own(fd: RawFd) {
    // SAFETY: closes a descriptor this crate opened and nobody else knows.
    unsafe { close(fd) };
}

/// `pidfd_open(pid, 0)`: a descriptor readable once the process `pid` has
/// ended (Linux 5.3).
pub(crate) fn pidfd_open(pid: libc::pid_t) -> Option<RawFd> {
    // SAFETY: the system call takes two integers and touches no memory.
    let fd = unsafe { syscall(libc::SYS_pidfd_open, pid as libc::c_long, 0, 0, 0, 0, 0) };
    (fd >= 0).then_some(fd as RawFd)
}

/// Registers the open descriptor `fd` with the current hub.
pub(crate) fn register(fd: RawFd) -> io::Result<Registration> {
    // SAFETY: `fd` is open (the caller just used it or was handed it by a
    // caller that is using it), and the borrow ends with this call, which only
    // records the number (the registration is dropped or deregistered before
    // the descriptor is closed, by the `close` hook).
    let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
    Registration::new(borrowed)
}

/// Has `handler` run in the child of every later `fork()`.
pub(crate) fn at_fork_child(handler: extern "C" fn()) {
    // SAFETY: registers a handler that only stores to atomics (and reads a
    // thread-local word), which is async-signal-safe as a fork handler must
    // be.
    unsafe { libc::pthread_atfork(None, None, Some(handler as unsafe extern "C" fn())) };
}

/// `poll(2)` without waiting.
pub(crate) fn poll_now(fds: &mut [libc::pollfd]) -> c_int {
    poll_slice(fds, 0)
}

/// Writes `message` to stderr with the `write` system call itself.
///
/// # Safety
///
/// None beyond a valid slice; unsafe for the inline assembly.
#[cold]
unsafe fn raw_write_stderr(message: &[u8]) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: the write(2) system call on fd 2 with a valid buffer; the
    // kernel clobbers rcx and r11 and returns in rax.
    unsafe {
        std::arch::asm!(
            "syscall",
            inlateout("rax") libc::SYS_write => _,
            in("rdi") 2,
            in("rsi") message.as_ptr(),
            in("rdx") message.len(),
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    #[cfg(target_arch = "aarch64")]
    // SAFETY: the write(2) system call on fd 2 with a valid buffer; the
    // kernel returns in x0.
    unsafe {
        std::arch::asm!(
            "svc 0",
            in("x8") libc::SYS_write,
            inlateout("x0") 2usize => _,
            in("x1") message.as_ptr(),
            in("x2") message.len(),
            options(nostack),
        );
    }
}

/// libc's `syscall(3)`, with all six arguments (those the call does not use
/// are ignored by the kernel).
///
/// # Safety
///
/// The contract of the system call `number` for these arguments.
#[inline]
pub(crate) unsafe fn syscall(
    number: libc::c_long,
    a1: libc::c_long,
    a2: libc::c_long,
    a3: libc::c_long,
    a4: libc::c_long,
    a5: libc::c_long,
    a6: libc::c_long,
) -> libc::c_long {
    static SLOT: AtomicPtr<c_void> = AtomicPtr::new(std::ptr::null_mut());
    let f = resolve(&SLOT, "syscall\0");
    // SAFETY: `f` is libc's `syscall`, whose C prototype is
    // `long syscall(long number, ...)`; called as the variadic function it is.
    let f = unsafe { std::mem::transmute::<*mut c_void, unsafe extern "C" fn(libc::c_long, ...) -> libc::c_long>(f) };
    // SAFETY: the caller keeps the system call's contract.
    unsafe { f(number, a1, a2, a3, a4, a5, a6) }
}

/// The time of `clock` now.
pub(crate) fn clock_now(clock: libc::clockid_t) -> Duration {
    let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: writes the clock's time into a local timespec. (Not
    // interposed.)
    unsafe { libc::clock_gettime(clock, &mut now) };
    Duration::new(now.tv_sec.max(0) as u64, now.tv_nsec.clamp(0, 999_999_999) as u32)
}

/// Writes `message` to stderr with libc's `write` (no lock of std's
/// `Stderr`, which another greenlet of the thread may hold).
pub(crate) fn write_stderr(message: &[u8]) {
    // SAFETY: writes a valid buffer to descriptor 2.
    unsafe { write(2, message.as_ptr().cast(), message.len()) };
}

/// Blocks the thread for `duration` (libc's `nanosleep`, not the hook).
pub(crate) fn sleep_thread(duration: Duration) {
    let request = libc::timespec { tv_sec: duration.as_secs() as libc::time_t, tv_nsec: duration.subsec_nanos() as _ };
    // SAFETY: a local timespec; no remainder wanted.
    unsafe { nanosleep(&request, std::ptr::null_mut()) };
}
