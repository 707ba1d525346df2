//! The interposed libc functions: `#[no_mangle]` definitions in the
//! executable, which the dynamic linker prefers to libc's, for every
//! program linking this crate (see the crate docs for how it stays linked).
//!
//! Each one only unpacks its arguments and hands closures that make the
//! real call (libc's definition, from `real`) to the safe logic in `coop`;
//! the caller's pointers are passed on unchanged, so their C contract stays
//! the caller's. Nothing here unwinds: the logic never panics, and a kill or
//! timeout arrives as an error return (see `runtime_scheduler::foreign`).

use std::ffi::{CStr, CString, c_char, c_int, c_long, c_uint, c_ulong, c_void};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use runtime_scheduler::Direction;

use crate::coop::{self, context};
use crate::{files, futex, real};

/// Interposes `read(2)`.
///
/// # Safety
///
/// `read(2)`'s contract.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn read(fd: c_int, buf: *mut c_void, count: usize) -> isize {
    // SAFETY: the caller's arguments, with `read(2)`'s contract.
    if let Some(n) = unsafe { files_read(fd, buf, count) } {
        return n;
    }
    coop::io(fd, Direction::Read, "read", Some(count), |dontwait| {
        if dontwait {
            // SAFETY: the caller's arguments; on a socket `read` is `recv`
            // without flags.
            return unsafe { real::recv(fd, buf, count, libc::MSG_DONTWAIT) };
        }
        // SAFETY: the caller's arguments, unchanged.
        unsafe { real::read(fd, buf, count) }
    })
}

/// Interposes `readv(2)`.
///
/// # Safety
///
/// `readv(2)`'s contract.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn readv(fd: c_int, iov: *const libc::iovec, iovcnt: c_int) -> isize {
    // SAFETY: the caller's arguments, with `readv(2)`'s contract.
    if let Some(n) = unsafe { files_readv(fd, iov, iovcnt, -1) } {
        return n;
    }
    coop::io(fd, Direction::Read, "readv", None, |dontwait| {
        if dontwait && iovcnt >= 0 {
            let mut msg = message(iov, iovcnt);
            // SAFETY: the caller's buffers, as a message; on a socket
            // `readv` is `recvmsg` without flags.
            return unsafe { real::recvmsg(fd, &mut msg, libc::MSG_DONTWAIT) };
        }
        // SAFETY: the caller's arguments, unchanged.
        unsafe { real::readv(fd, iov, iovcnt) }
    })
}

/// Interposes `recv(2)`.
///
/// # Safety
///
/// `recv(2)`'s contract.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn recv(fd: c_int, buf: *mut c_void, len: usize, flags: c_int) -> isize {
    let call = |dontwait| {
        // SAFETY: the caller's arguments, with `MSG_DONTWAIT` perhaps added.
        unsafe { real::recv(fd, buf, len, flags | dontwait_flag(dontwait)) }
    };
    if flags & libc::MSG_DONTWAIT != 0 {
        return call(false);
    }
    let stream_len = (flags & (libc::MSG_PEEK | libc::MSG_WAITALL) == 0).then_some(len);
    coop::io(fd, Direction::Read, "recv", stream_len, call)
}

/// Interposes `recvfrom(2)`.
///
/// # Safety
///
/// `recvfrom(2)`'s contract.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn recvfrom(
    fd: c_int,
    buf: *mut c_void,
    len: usize,
    flags: c_int,
    addr: *mut libc::sockaddr,
    addrlen: *mut libc::socklen_t,
) -> isize {
    let call = |dontwait| {
        // SAFETY: the caller's arguments, with `MSG_DONTWAIT` perhaps added.
        unsafe { real::recvfrom(fd, buf, len, flags | dontwait_flag(dontwait), addr, addrlen) }
    };
    if flags & libc::MSG_DONTWAIT != 0 {
        return call(false);
    }
    coop::io(fd, Direction::Read, "recvfrom", None, call)
}

/// Interposes `recvmsg(2)`.
///
/// # Safety
///
/// `recvmsg(2)`'s contract.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn recvmsg(fd: c_int, msg: *mut libc::msghdr, flags: c_int) -> isize {
    let call = |dontwait| {
        // SAFETY: the caller's arguments, with `MSG_DONTWAIT` perhaps added.
        unsafe { real::recvmsg(fd, msg, flags | dontwait_flag(dontwait)) }
    };
    if flags & libc::MSG_DONTWAIT != 0 {
        return call(false);
    }
    coop::io(fd, Direction::Read, "recvmsg", None, call)
}

/// Interposes `write(2)`.
///
/// # Safety
///
/// `write(2)`'s contract.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn write(fd: c_int, buf: *const c_void, count: usize) -> isize {
    if let Some(current) = files::greenlet_on_file(fd) {
        let buf = buf as usize;
        // SAFETY: the caller's arguments, unchanged; the buffer stays the
        // caller's until the call returns (`files::offload` waits for it).
        return files::write(&current, count, move || unsafe { real::write(fd, buf as *const c_void, count) });
    }
    coop::io(fd, Direction::Write, "write", Some(count), |dontwait| {
        if dontwait {
            // SAFETY: the caller's arguments; on a socket `write` is `send`
            // without flags.
            return unsafe { real::send(fd, buf, count, libc::MSG_DONTWAIT) };
        }
        // SAFETY: the caller's arguments, unchanged.
        unsafe { real::write(fd, buf, count) }
    })
}

/// Interposes `writev(2)`.
///
/// # Safety
///
/// `writev(2)`'s contract.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn writev(fd: c_int, iov: *const libc::iovec, iovcnt: c_int) -> isize {
    if let Some(current) = files::greenlet_on_file(fd) {
        // SAFETY: `writev(2)`'s contract: `iov` holds `iovcnt` iovecs.
        let len = unsafe { iov_len(iov, iovcnt) };
        let iov = iov as usize;
        // SAFETY: as in `write`.
        return files::write(&current, len, move || unsafe { real::writev(fd, iov as *const libc::iovec, iovcnt) });
    }
    coop::io(fd, Direction::Write, "writev", None, |dontwait| {
        if dontwait && iovcnt >= 0 {
            let msg = message(iov, iovcnt);
            // SAFETY: the caller's buffers, as a message; on a socket
            // `writev` is `sendmsg` without flags.
            return unsafe { real::sendmsg(fd, &msg, libc::MSG_DONTWAIT) };
        }
        // SAFETY: the caller's arguments, unchanged.
        unsafe { real::writev(fd, iov, iovcnt) }
    })
}

/// Interposes `send(2)`.
///
/// # Safety
///
/// `send(2)`'s contract.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn send(fd: c_int, buf: *const c_void, len: usize, flags: c_int) -> isize {
    let call = |dontwait| {
        // SAFETY: the caller's arguments, with `MSG_DONTWAIT` perhaps added.
        unsafe { real::send(fd, buf, len, flags | dontwait_flag(dontwait)) }
    };
    if flags & libc::MSG_DONTWAIT != 0 {
        return call(false);
    }
    coop::io(fd, Direction::Write, "send", Some(len), call)
}

/// Interposes `sendto(2)`.
///
/// # Safety
///
/// `sendto(2)`'s contract.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sendto(
    fd: c_int,
    buf: *const c_void,
    len: usize,
    flags: c_int,
    addr: *const libc::sockaddr,
    addrlen: libc::socklen_t,
) -> isize {
    let call = |dontwait| {
        // SAFETY: the caller's arguments, with `MSG_DONTWAIT` perhaps added.
        unsafe { real::sendto(fd, buf, len, flags | dontwait_flag(dontwait), addr, addrlen) }
    };
    if flags & libc::MSG_DONTWAIT != 0 {
        return call(false);
    }
    coop::io(fd, Direction::Write, "sendto", None, call)
}

/// Interposes `sendmsg(2)`.
///
/// # Safety
///
/// `sendmsg(2)`'s contract.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sendmsg(fd: c_int, msg: *const libc::msghdr, flags: c_int) -> isize {
    let call = |dontwait| {
        // SAFETY: the caller's arguments, with `MSG_DONTWAIT` perhaps added.
        unsafe { real::sendmsg(fd, msg, flags | dontwait_flag(dontwait)) }
    };
    if flags & libc::MSG_DONTWAIT != 0 {
        return call(false);
    }
    coop::io(fd, Direction::Write, "sendmsg", None, call)
}

/// `MSG_DONTWAIT` for a call on a blocking socket that must not block.
fn dontwait_flag(dontwait: bool) -> c_int {
    if dontwait { libc::MSG_DONTWAIT } else { 0 }
}

/// A message of the caller's buffers, for `readv`/`writev` on a socket.
fn message(iov: *const libc::iovec, iovcnt: c_int) -> libc::msghdr {
    // SAFETY: an all-zero msghdr is a valid value (no name, no control).
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = iov.cast_mut();
    msg.msg_iovlen = iovcnt as _;
    msg
}

/// Interposes `accept(2)`.
///
/// # Safety
///
/// `accept(2)`'s contract.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn accept(fd: c_int, addr: *mut libc::sockaddr, addrlen: *mut libc::socklen_t) -> c_int {
    coop::accept(fd, 0, |flags| {
        // SAFETY: the caller's arguments, unchanged; `accept` is `accept4`
        // without flags, and `flags` adds at most `SOCK_NONBLOCK`.
        unsafe { real::accept4(fd, addr, addrlen, flags) }
    })
}

/// Interposes `accept4(2)`.
///
/// # Safety
///
/// `accept4(2)`'s contract.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn accept4(
    fd: c_int,
    addr: *mut libc::sockaddr,
    addrlen: *mut libc::socklen_t,
    flags: c_int,
) -> c_int {
    coop::accept(fd, flags, |flags| {
        // SAFETY: the caller's arguments, unchanged, but for `SOCK_NONBLOCK`
        // perhaps added to the flags.
        unsafe { real::accept4(fd, addr, addrlen, flags) }
    })
}

/// Interposes `connect(2)`.
///
/// # Safety
///
/// `connect(2)`'s contract.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn connect(fd: c_int, addr: *const libc::sockaddr, addrlen: libc::socklen_t) -> c_int {
    coop::connect(fd, || {
        // SAFETY: the caller's arguments, unchanged.
        unsafe { real::connect(fd, addr, addrlen) }
    })
}

/// Interposes `poll(2)`.
///
/// # Safety
///
/// `poll(2)`'s contract.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn poll(fds: *mut libc::pollfd, nfds: libc::nfds_t, timeout: c_int) -> c_int {
    let Some(current) = context().filter(|_| timeout != 0) else {
        // SAFETY: the caller's arguments, unchanged.
        return unsafe { real::poll(fds, nfds, timeout) };
    };
    let fds = if nfds == 0 || fds.is_null() {
        &mut []
    } else {
        // SAFETY: `poll(2)`'s contract: `fds` points to `nfds` pollfds, which
        // the caller lends us for the call.
        unsafe { std::slice::from_raw_parts_mut(fds, nfds as usize) }
    };
    let timeout = u64::try_from(timeout).ok().map(Duration::from_millis);
    coop::poll(&current, fds, timeout, real::poll_now)
}

/// Interposes `ppoll(2)`. In a greenlet the signal mask applies only while
/// the descriptors are checked, not while the greenlet is parked.
///
/// # Safety
///
/// `ppoll(2)`'s contract.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ppoll(
    fds: *mut libc::pollfd,
    nfds: libc::nfds_t,
    timeout: *const libc::timespec,
    sigmask: *const libc::sigset_t,
) -> c_int {
    let timeout_value = if timeout.is_null() {
        None
    } else {
        // SAFETY: `ppoll(2)`'s contract: a non-null timeout points to a
        // timespec.
        Some(unsafe { *timeout })
    };
    let context = context().filter(|_| timeout_value.is_none_or(|t| t.tv_sec != 0 || t.tv_nsec != 0));
    let (Some(current), Some(duration)) = (context, timeout_value.map_or(Some(None), |t| duration_of(&t).map(Some)))
    else {
        // SAFETY: the caller's arguments, unchanged.
        return unsafe { real::ppoll(fds, nfds, timeout, sigmask) };
    };
    let fds = if nfds == 0 || fds.is_null() {
        &mut []
    } else {
        // SAFETY: as in `poll`.
        unsafe { std::slice::from_raw_parts_mut(fds, nfds as usize) }
    };
    let zero = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    coop::poll(&current, fds, duration, |fds| {
        // SAFETY: the caller's array and signal mask, with a zero timeout.
        unsafe { real::ppoll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, &zero, sigmask) }
    })
}

/// Interposes `select(2)`: in a greenlet, a `poll` of the same descriptors.
///
/// # Safety
///
/// `select(2)`'s contract.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn select(
    nfds: c_int,
    readfds: *mut libc::fd_set,
    writefds: *mut libc::fd_set,
    exceptfds: *mut libc::fd_set,
    timeout: *mut libc::timeval,
) -> c_int {
    let timeout_value = if timeout.is_null() {
        None
    } else {
        // SAFETY: `select(2)`'s contract: a non-null timeout points to a
        // timeval.
        Some(unsafe { *timeout })
    };
    let duration = timeout_value
        .map(|t| Duration::from_secs(t.tv_sec.max(0) as u64) + Duration::from_micros(t.tv_usec.max(0) as u64));
    let current = context().filter(|_| duration.is_none_or(|d| !d.is_zero()));
    let Some(current) = current.filter(|_| (0..=libc::FD_SETSIZE as c_int).contains(&nfds)) else {
        // SAFETY: the caller's arguments, unchanged.
        return unsafe { real::select(nfds, readfds, writefds, exceptfds, timeout) };
    };
    let start = std::time::Instant::now();
    // SAFETY: the caller's sets.
    let count = unsafe { select_sets(&current, nfds, [readfds, writefds, exceptfds], duration) };
    if let (Some(duration), false, true) = (duration, timeout.is_null(), count >= 0) {
        // Linux's select reports the time left.
        let left = duration.saturating_sub(start.elapsed());
        let left = libc::timeval { tv_sec: left.as_secs() as libc::time_t, tv_usec: left.subsec_micros() as _ };
        // SAFETY: a non-null timeout is a timeval (as above), writable.
        unsafe { *timeout = left };
    }
    count
}

/// `select` and `pselect` in a greenlet: a `poll` of the descriptors in
/// `sets` (read, write, except; null for none) below `nfds`, which it then
/// holds those found ready; the count of them, or -1 with `errno`.
///
/// # Safety
///
/// A non-null set is a writable `fd_set`; `nfds` is at most `FD_SETSIZE`.
unsafe fn select_sets(
    current: &runtime_scheduler::foreign::Current,
    nfds: c_int,
    sets: [*mut libc::fd_set; 3],
    duration: Option<Duration>,
) -> c_int {
    let sets = [(sets[0], libc::POLLIN), (sets[1], libc::POLLOUT), (sets[2], libc::POLLPRI)];
    let mut pollfds: Vec<libc::pollfd> = Vec::new();
    for fd in 0..nfds {
        let mut events = 0;
        for (set, event) in sets {
            // SAFETY: the caller's contract: a non-null set is an fd_set, and
            // `fd` is below FD_SETSIZE.
            if !set.is_null() && unsafe { libc::FD_ISSET(fd, set) } {
                events |= event;
            }
        }
        if events != 0 {
            pollfds.push(libc::pollfd { fd, events, revents: 0 });
        }
    }
    let ready = coop::poll(current, &mut pollfds, duration, real::poll_now);
    if ready < 0 {
        return ready;
    }
    if pollfds.iter().any(|p| p.revents & libc::POLLNVAL != 0) {
        real::set_errno(libc::EBADF);
        return -1;
    }
    let mut count = 0;
    for (set, event) in sets {
        if set.is_null() {
            continue;
        }
        // SAFETY: a non-null set is an fd_set (as above).
        unsafe { libc::FD_ZERO(set) };
        let seen = match event {
            libc::POLLIN => libc::POLLIN | libc::POLLHUP | libc::POLLERR,
            libc::POLLOUT => libc::POLLOUT | libc::POLLERR,
            _ => libc::POLLPRI,
        };
        for p in pollfds.iter().filter(|p| p.events & event != 0 && p.revents & seen != 0) {
            // SAFETY: as above.
            unsafe { libc::FD_SET(p.fd, set) };
            count += 1;
        }
    }
    count
}

/// Interposes `pselect(2)`: in a greenlet, as `select` (the timeout is not
/// written back). A signal mask other than the thread's own would have to
/// be in place while the greenlet is parked, which the hub's other
/// greenlets share: such a call is libc's, and blocks the hub.
///
/// # Safety
///
/// `pselect(2)`'s contract.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pselect(
    nfds: c_int,
    readfds: *mut libc::fd_set,
    writefds: *mut libc::fd_set,
    exceptfds: *mut libc::fd_set,
    timeout: *const libc::timespec,
    sigmask: *const libc::sigset_t,
) -> c_int {
    let duration = if timeout.is_null() {
        Some(None)
    } else {
        // SAFETY: `pselect(2)`'s contract: a non-null timeout points to a
        // timespec.
        duration_of(unsafe { &*timeout }).map(Some)
    };
    let context = context().filter(|_| (0..=libc::FD_SETSIZE as c_int).contains(&nfds));
    // SAFETY: `pselect(2)`'s contract: a non-null mask is a sigset_t.
    let context = context.filter(|_| sigmask.is_null() || unsafe { real::is_thread_sigmask(&*sigmask) });
    let (Some(current), Some(duration)) = (context, duration.filter(|d| d.is_none_or(|d| !d.is_zero()))) else {
        // SAFETY: the caller's arguments, unchanged.
        return unsafe { real::pselect(nfds, readfds, writefds, exceptfds, timeout, sigmask) };
    };
    // SAFETY: `pselect(2)`'s contract for the sets; `nfds` is checked.
    unsafe { select_sets(&current, nfds, [readfds, writefds, exceptfds], duration) }
}

/// A `timespec` as a duration, if it is a valid one.
fn duration_of(t: &libc::timespec) -> Option<Duration> {
    (t.tv_sec >= 0 && (0..1_000_000_000).contains(&t.tv_nsec)).then(|| Duration::new(t.tv_sec as u64, t.tv_nsec as u32))
}

/// Interposes `nanosleep(2)`. In a greenlet, a kill or timeout ends it early
/// with `EINTR` and nothing left to sleep (`std::thread::sleep` accepts no
/// other error, and goes on sleeping the time left).
///
/// # Safety
///
/// `nanosleep(2)`'s contract.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nanosleep(req: *const libc::timespec, rem: *mut libc::timespec) -> c_int {
    let duration = if req.is_null() {
        None
    } else {
        // SAFETY: `nanosleep(2)`'s contract: `req` points to a timespec.
        duration_of(unsafe { &*req })
    };
    let (Some(current), Some(duration)) = (context(), duration) else {
        // SAFETY: the caller's arguments, unchanged.
        return unsafe { real::nanosleep(req, rem) };
    };
    match coop::sleep(&current, duration) {
        Ok(()) => 0,
        Err(_) => {
            if !rem.is_null() {
                // SAFETY: `nanosleep(2)`'s contract: a non-null `rem` is a
                // writable timespec.
                unsafe { *rem = libc::timespec { tv_sec: 0, tv_nsec: 0 } };
            }
            real::set_errno(libc::EINTR);
            -1
        }
    }
}

/// Interposes `clock_nanosleep(2)` (which `std::thread::sleep` calls) for
/// `CLOCK_REALTIME`, `CLOCK_MONOTONIC` and `CLOCK_BOOTTIME`; it returns the
/// error number (`EINTR` when a kill or timeout ends it, as `nanosleep`).
///
/// # Safety
///
/// `clock_nanosleep(2)`'s contract.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn clock_nanosleep(
    clock: libc::clockid_t,
    flags: c_int,
    req: *const libc::timespec,
    rem: *mut libc::timespec,
) -> c_int {
    let known_clock = matches!(clock, libc::CLOCK_REALTIME | libc::CLOCK_MONOTONIC | libc::CLOCK_BOOTTIME);
    let requested = if req.is_null() || !known_clock {
        None
    } else {
        // SAFETY: `clock_nanosleep(2)`'s contract: `req` points to a timespec.
        duration_of(unsafe { &*req })
    };
    let (Some(current), Some(requested)) = (context(), requested) else {
        // SAFETY: the caller's arguments, unchanged.
        return unsafe { real::clock_nanosleep(clock, flags, req, rem) };
    };
    let duration = if flags & libc::TIMER_ABSTIME != 0 {
        let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
        // SAFETY: writes the clock's time into a local timespec.
        unsafe { libc::clock_gettime(clock, &mut now) };
        requested.saturating_sub(duration_of(&now).unwrap_or_default())
    } else {
        requested
    };
    match coop::sleep(&current, duration) {
        Ok(()) => 0,
        Err(_) => {
            if !rem.is_null() && flags & libc::TIMER_ABSTIME == 0 {
                // SAFETY: `clock_nanosleep(2)`'s contract: a non-null `rem` of
                // a relative sleep is a writable timespec.
                unsafe { *rem = libc::timespec { tv_sec: 0, tv_nsec: 0 } };
            }
            libc::EINTR
        }
    }
}

/// Interposes `usleep(3)`.
///
/// # Safety
///
/// None beyond `usleep(3)`'s.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn usleep(usec: libc::useconds_t) -> c_int {
    let Some(current) = context() else {
        // SAFETY: the caller's argument, unchanged.
        return unsafe { real::usleep(usec) };
    };
    match coop::sleep(&current, Duration::from_micros(usec.into())) {
        Ok(()) => 0,
        Err(_) => {
            real::set_errno(libc::EINTR);
            -1
        }
    }
}

/// Interposes `sleep(3)`. In a greenlet, a kill or timeout ends it early,
/// returning 0 (so that a loop sleeping "what is left" ends too).
///
/// # Safety
///
/// None beyond `sleep(3)`'s.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sleep(seconds: c_uint) -> c_uint {
    let Some(current) = context() else {
        // SAFETY: the caller's argument, unchanged.
        return unsafe { real::sleep(seconds) };
    };
    let _ = coop::sleep(&current, Duration::from_secs(seconds.into()));
    0
}

/// Interposes `close(2)`: the descriptor leaves the hub's poller before its
/// number can be reused.
///
/// # Safety
///
/// `close(2)`'s contract.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn close(fd: c_int) -> c_int {
    coop::closing(fd);
    // SAFETY: the caller's argument, unchanged.
    unsafe { real::close(fd) }
}

/// Interposes `dup(2)`: the duplicate shares the original's mode.
///
/// # Safety
///
/// `dup(2)`'s contract.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dup(fd: c_int) -> c_int {
    // SAFETY: the caller's argument, unchanged.
    let new = unsafe { real::dup(fd) };
    if new >= 0 {
        crate::fds::duplicated(fd, new);
    }
    new
}

/// Interposes `dup2(2)`: `new` is closed first if open. A descriptor put on
/// a standard stream (or anywhere, in a forked child) is handed to other
/// processes (see `coop::handed_over`).
///
/// # Safety
///
/// `dup2(2)`'s contract.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dup2(old: c_int, new: c_int) -> c_int {
    coop::duplicating(old, new);
    if old != new {
        coop::closing(new);
    }
    // SAFETY: the caller's arguments, unchanged.
    let done = unsafe { real::dup2(old, new) };
    if done >= 0 && old != new {
        crate::fds::duplicated(old, new);
    }
    done
}

/// Interposes `dup3(2)`, as `dup2`.
///
/// # Safety
///
/// `dup3(2)`'s contract.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dup3(old: c_int, new: c_int, flags: c_int) -> c_int {
    coop::duplicating(old, new);
    if old != new {
        coop::closing(new);
    }
    // SAFETY: the caller's arguments, unchanged.
    let done = unsafe { real::dup3(old, new, flags) };
    if done >= 0 {
        crate::fds::duplicated(old, new);
    }
    done
}

/// `fcntl` and `fcntl64`: the mode the user asked for, duplicates.
///
/// # Safety
///
/// `fcntl(2)`'s contract for `cmd` and `arg`; `real` is libc's.
unsafe fn fcntl_with(fd: c_int, cmd: c_int, arg: usize, real: unsafe fn(c_int, c_int, usize) -> c_int) -> c_int {
    match cmd {
        libc::F_GETFL => {
            // SAFETY: the caller's arguments, unchanged.
            coop::user_mode(fd, unsafe { real(fd, cmd, arg) })
        }
        libc::F_SETFL => {
            let mode = arg as c_int;
            let pass = coop::set_nonblocking(fd, mode & libc::O_NONBLOCK != 0);
            let mode = if pass { mode } else { mode | libc::O_NONBLOCK };
            // SAFETY: F_SETFL takes an integer.
            unsafe { real(fd, cmd, mode as usize) }
        }
        libc::F_DUPFD | libc::F_DUPFD_CLOEXEC => {
            // SAFETY: the caller's arguments, unchanged.
            let new = unsafe { real(fd, cmd, arg) };
            if new >= 0 {
                crate::fds::duplicated(fd, new);
            }
            new
        }
        // SAFETY: the caller's arguments, unchanged.
        _ => unsafe { real(fd, cmd, arg) },
    }
}

/// Interposes `fcntl(2)`, a variadic function in C: its one optional
/// argument (an integer or a pointer) arrives in the register a third
/// argument uses, on x86-64 and AArch64 Linux alike.
///
/// # Safety
///
/// `fcntl(2)`'s contract.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fcntl(fd: c_int, cmd: c_int, arg: usize) -> c_int {
    // SAFETY: forwarded with the caller's contract.
    unsafe { fcntl_with(fd, cmd, arg, real::fcntl) }
}

/// Interposes `fcntl64`, glibc's name of `fcntl` for 64-bit offsets.
///
/// # Safety
///
/// `fcntl(2)`'s contract.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fcntl64(fd: c_int, cmd: c_int, arg: usize) -> c_int {
    // SAFETY: forwarded with the caller's contract.
    unsafe { fcntl_with(fd, cmd, arg, real::fcntl64) }
}

/// Interposes `ioctl(2)` (variadic in C, as `fcntl`) for `FIONBIO`.
///
/// # Safety
///
/// `ioctl(2)`'s contract.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ioctl(fd: c_int, request: c_ulong, arg: usize) -> c_int {
    if request == libc::FIONBIO && arg != 0 {
        // SAFETY: FIONBIO's argument points to an int (ioctl_fionbio(2)).
        let nonblocking = unsafe { *(arg as *const c_int) } != 0;
        if !coop::set_nonblocking(fd, nonblocking) {
            return 0; // stays non-blocking underneath
        }
    }
    // SAFETY: the caller's arguments, unchanged.
    unsafe { real::ioctl(fd, request, arg) }
}

/// Interposes `setsockopt(2)`: notes `SO_RCVTIMEO` and `SO_SNDTIMEO`.
///
/// # Safety
///
/// `setsockopt(2)`'s contract.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn setsockopt(
    fd: c_int,
    level: c_int,
    name: c_int,
    value: *const c_void,
    len: libc::socklen_t,
) -> c_int {
    // SAFETY: the caller's arguments, unchanged.
    let done = unsafe { real::setsockopt(fd, level, name, value, len) };
    if done == 0 {
        coop::socket_option_set(fd, level, name);
    }
    done
}

/// Interposes `getsockopt(2)` (the kernel holds the timeouts the user set,
/// so it passes through).
///
/// # Safety
///
/// `getsockopt(2)`'s contract.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn getsockopt(
    fd: c_int,
    level: c_int,
    name: c_int,
    value: *mut c_void,
    len: *mut libc::socklen_t,
) -> c_int {
    // SAFETY: the caller's arguments, unchanged.
    unsafe { real::getsockopt(fd, level, name, value, len) }
}

/// What `getaddrinfo` returned on the pool: the list is freed if nobody
/// takes it (the greenlet was killed meanwhile).
struct Lookup {
    code: c_int,
    errno: c_int,
    list: usize,
}

impl Drop for Lookup {
    fn drop(&mut self) {
        if self.list != 0 {
            // SAFETY: a list libc's getaddrinfo returned that nobody took.
            unsafe { libc::freeaddrinfo(self.list as *mut libc::addrinfo) };
        }
    }
}

/// Interposes `getaddrinfo(3)`: in a greenlet it runs on the hub's blocking
/// pool. A kill or timeout meanwhile makes it return `EAI_SYSTEM` with
/// `errno` `ECANCELED` or `ETIMEDOUT`.
///
/// # Safety
///
/// `getaddrinfo(3)`'s contract.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn getaddrinfo(
    node: *const c_char,
    service: *const c_char,
    hints: *const libc::addrinfo,
    res: *mut *mut libc::addrinfo,
) -> c_int {
    let Some(current) = context().filter(|_| !res.is_null()) else {
        // SAFETY: the caller's arguments, unchanged.
        return unsafe { real::getaddrinfo(node, service, hints, res) };
    };
    // SAFETY: `getaddrinfo(3)`'s contract: non-null names are C strings.
    let owned = |name: *const c_char| (!name.is_null()).then(|| CString::from(unsafe { CStr::from_ptr(name) }));
    let (node, service) = (owned(node), owned(service));
    // Only these fields of the hints count; the rest must be zero or null.
    let hints = if hints.is_null() {
        None
    } else {
        // SAFETY: a non-null `hints` points to an addrinfo.
        let hints = unsafe { &*hints };
        Some((hints.ai_flags, hints.ai_family, hints.ai_socktype, hints.ai_protocol))
    };
    let lookup = current.blocking(move || {
        // SAFETY: an all-zero addrinfo is a valid value (null pointers).
        let mut hint: libc::addrinfo = unsafe { std::mem::zeroed() };
        if let Some((flags, family, socktype, protocol)) = hints {
            (hint.ai_flags, hint.ai_family, hint.ai_socktype, hint.ai_protocol) = (flags, family, socktype, protocol);
        }
        let mut list = std::ptr::null_mut();
        let name = |name: &Option<CString>| name.as_ref().map_or(std::ptr::null(), |name| name.as_ptr());
        // SAFETY: C strings or null, a local hints value and a local result.
        let code = unsafe {
            real::getaddrinfo(
                name(&node),
                name(&service),
                if hints.is_some() { &hint } else { std::ptr::null() },
                &mut list,
            )
        };
        Lookup { code, errno: real::errno(), list: list as usize }
    });
    match lookup {
        Ok(Ok(mut lookup)) => {
            // SAFETY: `getaddrinfo(3)`'s contract: `res` is writable.
            unsafe { *res = std::mem::take(&mut lookup.list) as *mut libc::addrinfo };
            real::set_errno(lookup.errno);
            lookup.code
        }
        Ok(Err(_)) => {
            real::set_errno(libc::EIO);
            libc::EAI_SYSTEM
        }
        Err(interrupted) => {
            real::set_errno(coop::errno_of(interrupted));
            libc::EAI_SYSTEM
        }
    }
}

/// Interposes `waitpid(2)`: in a greenlet, waiting for one child parks on a
/// pidfd until it ends.
///
/// # Safety
///
/// `waitpid(2)`'s contract.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn waitpid(pid: libc::pid_t, status: *mut c_int, options: c_int) -> libc::pid_t {
    let reap = |options| {
        // SAFETY: the caller's arguments, with WNOHANG perhaps added.
        unsafe { real::waitpid(pid, status, options) }
    };
    match context().filter(|_| cooperative_wait(pid, options)) {
        Some(current) => coop::wait_child(&current, pid, options, reap),
        None => reap(options),
    }
}

/// Interposes `wait4(2)`, as `waitpid`.
///
/// # Safety
///
/// `wait4(2)`'s contract.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wait4(
    pid: libc::pid_t,
    status: *mut c_int,
    options: c_int,
    rusage: *mut libc::rusage,
) -> libc::pid_t {
    let reap = |options| {
        // SAFETY: the caller's arguments, with WNOHANG perhaps added.
        unsafe { real::wait4(pid, status, options, rusage) }
    };
    match context().filter(|_| cooperative_wait(pid, options)) {
        Some(current) => coop::wait_child(&current, pid, options, reap),
        None => reap(options),
    }
}

/// Whether a wait is for one child's end, which a pidfd can signal.
fn cooperative_wait(pid: libc::pid_t, options: c_int) -> bool {
    pid > 0 && options & (libc::WNOHANG | libc::WUNTRACED | libc::WCONTINUED) == 0
}

/// Interposes `pipe(2)`: the ends are the process's own pipes.
///
/// # Safety
///
/// `pipe(2)`'s contract.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pipe(fds: *mut c_int) -> c_int {
    // SAFETY: the caller's argument, unchanged.
    let done = unsafe { real::pipe(fds) };
    if done == 0 {
        // SAFETY: on success `fds` holds the two new descriptors.
        let ends = unsafe { [*fds, *fds.add(1)] };
        ends.into_iter().for_each(|fd| coop::piped(fd, 0));
    }
    done
}

/// Interposes `pipe2(2)`: the ends are the process's own pipes.
///
/// # Safety
///
/// `pipe2(2)`'s contract.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pipe2(fds: *mut c_int, flags: c_int) -> c_int {
    // SAFETY: the caller's arguments, unchanged.
    let done = unsafe { real::pipe2(fds, flags) };
    if done == 0 {
        // SAFETY: on success `fds` holds the two new descriptors.
        let ends = unsafe { [*fds, *fds.add(1)] };
        ends.into_iter().for_each(|fd| coop::piped(fd, flags));
    }
    done
}

/// The addresses of every definition above: calling this (as
/// [`link`](crate::link) does) makes the linker keep them all.
#[inline(never)]
pub(crate) fn table() -> usize {
    let table: [usize; 56] = [
        read as *const () as usize,
        readv as *const () as usize,
        recv as *const () as usize,
        recvfrom as *const () as usize,
        recvmsg as *const () as usize,
        write as *const () as usize,
        writev as *const () as usize,
        send as *const () as usize,
        sendto as *const () as usize,
        sendmsg as *const () as usize,
        accept as *const () as usize,
        accept4 as *const () as usize,
        connect as *const () as usize,
        poll as *const () as usize,
        ppoll as *const () as usize,
        select as *const () as usize,
        pselect as *const () as usize,
        nanosleep as *const () as usize,
        clock_nanosleep as *const () as usize,
        usleep as *const () as usize,
        sleep as *const () as usize,
        close as *const () as usize,
        dup as *const () as usize,
        dup2 as *const () as usize,
        dup3 as *const () as usize,
        fcntl as *const () as usize,
        fcntl64 as *const () as usize,
        ioctl as *const () as usize,
        setsockopt as *const () as usize,
        getsockopt as *const () as usize,
        getaddrinfo as *const () as usize,
        waitpid as *const () as usize,
        wait4 as *const () as usize,
        pipe as *const () as usize,
        pipe2 as *const () as usize,
        syscall as *const () as usize,
        epoll_wait as *const () as usize,
        epoll_pwait as *const () as usize,
        epoll_pwait2 as *const () as usize,
        pread64 as *const () as usize,
        pread as *const () as usize,
        preadv64 as *const () as usize,
        preadv as *const () as usize,
        pwrite64 as *const () as usize,
        pwrite as *const () as usize,
        pwritev64 as *const () as usize,
        pwritev as *const () as usize,
        fsync as *const () as usize,
        fdatasync as *const () as usize,
        open as *const () as usize,
        open64 as *const () as usize,
        openat as *const () as usize,
        openat64 as *const () as usize,
        creat as *const () as usize,
        creat64 as *const () as usize,
        interposed_marker as *const () as usize,
    ];
    std::hint::black_box(&table).iter().fold(0, |sum, address| sum ^ address)
}

/// Does nothing; its address tells whether the table above was linked.
extern "C" fn interposed_marker() {}

/// Whether the dynamic linker resolves `name` (NUL-terminated) to the
/// definition at `ours`.
pub(crate) fn resolves_to(name: &CStr, ours: usize) -> bool {
    // SAFETY: `name` is a C string; RTLD_DEFAULT searches the global scope,
    // as a call from any library would.
    let found = unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr()) };
    found as usize == ours
}

// ---------------------------------------------------------------------------
// `syscall(3)`: the futex operations of std's, parking_lot's and
// crossbeam's locks (see `futex`).
// ---------------------------------------------------------------------------

/// Interposes `syscall(3)`, a variadic function in C whose integer (and
/// pointer) arguments arrive in the registers (and the stack slot) of six
/// ordinary ones, on x86-64 and AArch64 Linux alike: read as such, and
/// passed on unchanged for every system call but `futex`.
///
/// # Safety
///
/// The contract of the system call `number`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn syscall(
    number: c_long,
    a1: c_long,
    a2: c_long,
    a3: c_long,
    a4: c_long,
    a5: c_long,
    a6: c_long,
) -> c_long {
    if number == libc::SYS_futex {
        // SAFETY: futex(2)'s arguments, with its contract.
        return unsafe { futex(a1, a2 as c_int, a3, a4, a5, a6) };
    }
    if FUTEX2.contains(&number) {
        // Waits the futex table cannot count: wakes stop trusting its counts.
        futex::kernel_waiters_move();
    }
    // SAFETY: the caller's arguments, unchanged.
    unsafe { real::syscall(number, a1, a2, a3, a4, a5, a6) }
}

/// The newer futex system calls (`futex_waitv`, and `futex_wake`,
/// `futex_wait`, `futex_requeue` since Linux 6.7; the same numbers on every
/// architecture): passed on as they are.
const FUTEX2: [c_long; 4] = [libc::SYS_futex_waitv, 454, 455, 456];

/// `futex(2)`: waits of greenlets park them (`futex::wait`), wakes reach
/// the greenlets as well as the kernel's waiters.
///
/// # Safety
///
/// futex(2)'s contract for these arguments.
unsafe fn futex(uaddr: c_long, op: c_int, val: c_long, timeout: c_long, uaddr2: c_long, val3: c_long) -> c_long {
    // SAFETY: the caller's arguments, unchanged.
    let forward =
        |val: c_long| unsafe { real::syscall(libc::SYS_futex, uaddr, op as c_long, val, timeout, uaddr2, val3) };
    let address = uaddr as usize;
    let aligned = address != 0 && address % align_of::<AtomicU32>() == 0;
    let cmd = op & !(libc::FUTEX_PRIVATE_FLAG | libc::FUTEX_CLOCK_REALTIME);
    let private = op & libc::FUTEX_PRIVATE_FLAG != 0;
    match cmd {
        libc::FUTEX_WAIT | libc::FUTEX_WAIT_BITSET => {
            let bitset = if cmd == libc::FUTEX_WAIT { u32::MAX } else { val3 as u32 };
            // While the thread is panicking (in a panic hook, or a greenlet
            // of it parked mid-unwind) the thread waits: a greenlet parked in
            // the panic hook (for std's backtrace or stderr lock, held by
            // another thread) would let another greenlet of the thread
            // panic meanwhile, which aborts the process.
            let Some(current) = context().filter(|_| aligned && bitset != 0 && !std::thread::panicking()) else {
                // The thread waits in the kernel (counted, so that wakes
                // know whether to go there).
                return futex::kernel_wait(address, private && aligned, || forward(val));
            };
            let limit = if timeout == 0 {
                None
            } else {
                // SAFETY: futex(2)'s contract: a non-null timeout points to a
                // timespec.
                match duration_of(unsafe { &*(timeout as *const libc::timespec) }) {
                    Some(limit) => Some(limit),
                    None => return forward(val), // EINVAL
                }
            };
            let realtime = op & libc::FUTEX_CLOCK_REALTIME != 0;
            let deadline = limit.map(|limit| futex::deadline_of(limit, cmd == libc::FUTEX_WAIT_BITSET, realtime));
            let shared = !private;
            let load = || {
                // SAFETY: futex(2)'s contract: `uaddr` points to an aligned
                // 32-bit word (checked above) that lives while the call
                // waits, which other threads change atomically.
                unsafe { (*(address as *const AtomicU32)).load(Ordering::SeqCst) }
            };
            let errno = match futex::wait(&current, address, val as u32, bitset, shared, deadline, load) {
                futex::Waited::Woken => return 0,
                futex::Waited::Changed => libc::EAGAIN,
                futex::Waited::TimedOut => libc::ETIMEDOUT,
                // A timed wait ends as timed out (std's `wait_timeout`
                // returns then); an untimed one looks interrupted.
                futex::Waited::Interrupted(_) if deadline.is_some() => libc::ETIMEDOUT,
                futex::Waited::Interrupted(_) => libc::EINTR,
            };
            real::set_errno(errno);
            -1
        }
        libc::FUTEX_WAKE | libc::FUTEX_WAKE_BITSET => {
            let bitset = if cmd == libc::FUTEX_WAKE { u32::MAX } else { val3 as u32 };
            // An `int` argument: the register's upper half is not part of it.
            let count = val as c_int;
            let futex::Woke { greenlets: ours, local, kernel } = if aligned && bitset != 0 {
                futex::wake(address, count, bitset, private)
            } else {
                futex::Woke { greenlets: 0, local: false, kernel: true } // EINVAL from the kernel
            };
            let woken = if !kernel {
                ours.into()
            } else {
                let theirs = forward((count - ours).into());
                if ours > 0 { c_long::from(ours) + theirs.max(0) } else { theirs }
            };
            if local {
                futex::hand_off(|| {
                    // SAFETY: an aligned 32-bit word (checked above), alive:
                    // read before the hand-off, while a greenlet of this
                    // thread just woken from a wait on it has not run yet, so
                    // is still inside that wait (futex(2)'s contract keeps
                    // the word alive until it returns).
                    unsafe { (*(address as *const AtomicU32)).load(Ordering::Relaxed) }
                });
            }
            woken
        }
        _ => {
            // Requeues and wake-ops: every greenlet on either word wakes (a
            // spurious wake-up, which futex callers expect). Kernel waiters
            // may move to another word: wakes stop trusting their counts.
            futex::kernel_waiters_move();
            if aligned {
                futex::wake_all(address);
            }
            if matches!(cmd, libc::FUTEX_REQUEUE | libc::FUTEX_CMP_REQUEUE | libc::FUTEX_WAKE_OP) && uaddr2 != 0 {
                futex::wake_all(uaddr2 as usize);
            }
            forward(val)
        }
    }
}

// ---------------------------------------------------------------------------
// `epoll_wait(2)` and its variants: event loops embedded in a greenlet (mio,
// a tokio `current_thread` runtime) park it on their epoll descriptor.
// ---------------------------------------------------------------------------

/// Interposes `epoll_wait(2)`.
///
/// # Safety
///
/// `epoll_wait(2)`'s contract.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn epoll_wait(
    epfd: c_int,
    events: *mut libc::epoll_event,
    maxevents: c_int,
    timeout: c_int,
) -> c_int {
    let Some(current) = context().filter(|_| timeout != 0) else {
        // SAFETY: the caller's arguments, unchanged.
        return unsafe { real::epoll_wait(epfd, events, maxevents, timeout) };
    };
    let timeout = u64::try_from(timeout).ok().map(Duration::from_millis);
    coop::epoll_wait(&current, epfd, timeout, || {
        // SAFETY: the caller's arguments, with a zero timeout.
        unsafe { real::epoll_wait(epfd, events, maxevents, 0) }
    })
}

/// Interposes `epoll_pwait(2)`. In a greenlet the signal mask applies only
/// while the events are collected, not while the greenlet is parked.
///
/// # Safety
///
/// `epoll_pwait(2)`'s contract.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn epoll_pwait(
    epfd: c_int,
    events: *mut libc::epoll_event,
    maxevents: c_int,
    timeout: c_int,
    sigmask: *const libc::sigset_t,
) -> c_int {
    let Some(current) = context().filter(|_| timeout != 0) else {
        // SAFETY: the caller's arguments, unchanged.
        return unsafe { real::epoll_pwait(epfd, events, maxevents, timeout, sigmask) };
    };
    let timeout = u64::try_from(timeout).ok().map(Duration::from_millis);
    coop::epoll_wait(&current, epfd, timeout, || {
        // SAFETY: the caller's arguments, with a zero timeout.
        unsafe { real::epoll_pwait(epfd, events, maxevents, 0, sigmask) }
    })
}

/// Interposes `epoll_pwait2(2)` (a `timespec` timeout), as `epoll_pwait`.
///
/// # Safety
///
/// `epoll_pwait2(2)`'s contract.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn epoll_pwait2(
    epfd: c_int,
    events: *mut libc::epoll_event,
    maxevents: c_int,
    timeout: *const libc::timespec,
    sigmask: *const libc::sigset_t,
) -> c_int {
    let limit = if timeout.is_null() {
        Some(None)
    } else {
        // SAFETY: `epoll_pwait2(2)`'s contract: a non-null timeout points to
        // a timespec.
        duration_of(unsafe { &*timeout }).map(Some)
    };
    let context = context().filter(|_| limit.is_some_and(|limit| limit.is_none_or(|limit| !limit.is_zero())));
    let (Some(current), Some(limit)) = (context, limit) else {
        // SAFETY: the caller's arguments, unchanged.
        return unsafe { real::epoll_pwait2(epfd, events, maxevents, timeout, sigmask) };
    };
    let zero = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    coop::epoll_wait(&current, epfd, limit, || {
        // SAFETY: the caller's arguments, with a zero timeout.
        unsafe { real::epoll_pwait2(epfd, events, maxevents, &zero, sigmask) }
    })
}

// ---------------------------------------------------------------------------
// Regular files: reads the page cache answers stay inline, the rest (and
// large writes, `fsync`, `fdatasync`) run on the blocking pool (see `files`).
// ---------------------------------------------------------------------------

/// The total length of `iovcnt` iovecs (0 for a bad count).
///
/// # Safety
///
/// `iov` points to `iovcnt` iovecs when `iovcnt` is positive.
unsafe fn iov_len(iov: *const libc::iovec, iovcnt: c_int) -> usize {
    if iov.is_null() || iovcnt <= 0 {
        return 0;
    }
    // SAFETY: the caller's contract.
    let iovs = unsafe { std::slice::from_raw_parts(iov, iovcnt as usize) };
    iovs.iter().fold(0usize, |sum, v| sum.saturating_add(v.iov_len))
}

/// `read` on a regular file from a greenlet: `None` for any other call.
///
/// # Safety
///
/// `read(2)`'s contract.
unsafe fn files_read(fd: c_int, buf: *mut c_void, count: usize) -> Option<isize> {
    let iov = libc::iovec { iov_base: buf, iov_len: count };
    // SAFETY: one iovec for the caller's buffer; the offset -1 is the file
    // position, as `read` uses (and `readv` on the pool, the same call).
    unsafe { files_readv(fd, &iov, 1, -1) }
}

/// `readv` (offset -1) or `preadv` on a regular file from a greenlet: `None`
/// for any other call.
///
/// # Safety
///
/// `preadv(2)`'s contract (`iov` holds `iovcnt` iovecs of writable memory).
unsafe fn files_readv(fd: c_int, iov: *const libc::iovec, iovcnt: c_int, offset: libc::off64_t) -> Option<isize> {
    let current = files::greenlet_on_file(fd)?;
    if iovcnt <= 0 || iov.is_null() {
        return None;
    }
    // The pool needs the iovecs themselves, which may live in a temporary
    // of the caller (as `files_read`'s does): copied.
    // SAFETY: the caller's contract.
    let copied: Vec<(usize, usize)> = unsafe { std::slice::from_raw_parts(iov, iovcnt as usize) }
        .iter()
        .map(|v| (v.iov_base as usize, v.iov_len))
        .collect();
    // SAFETY: the caller's contract.
    let len = unsafe { iov_len(iov, iovcnt) };
    files::read(
        &current,
        fd,
        len,
        || {
            // SAFETY: the caller's iovecs, with RWF_NOWAIT.
            unsafe { real::preadv64v2(fd, iov, iovcnt, offset, libc::RWF_NOWAIT) }
        },
        move || {
            let iovs: Vec<libc::iovec> =
                copied.iter().map(|&(base, len)| libc::iovec { iov_base: base as *mut c_void, iov_len: len }).collect();
            // SAFETY: the caller's buffers, valid until the call returns
            // (`files::offload` waits for it).
            unsafe {
                if offset == -1 {
                    real::readv(fd, iovs.as_ptr(), iovcnt)
                } else {
                    real::preadv64(fd, iovs.as_ptr(), iovcnt, offset)
                }
            }
        },
    )
}

/// Interposes `pread64(2)` (and `pread`, its other name).
///
/// # Safety
///
/// `pread(2)`'s contract.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pread64(fd: c_int, buf: *mut c_void, count: usize, offset: libc::off64_t) -> isize {
    if offset >= 0 {
        let iov = libc::iovec { iov_base: buf, iov_len: count };
        // SAFETY: one iovec for the caller's buffer.
        if let Some(n) = unsafe { files_readv(fd, &iov, 1, offset) } {
            return n;
        }
    }
    // SAFETY: the caller's arguments, unchanged.
    unsafe { real::pread64(fd, buf, count, offset) }
}

/// Interposes `pread(2)`.
///
/// # Safety
///
/// `pread(2)`'s contract.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pread(fd: c_int, buf: *mut c_void, count: usize, offset: libc::off_t) -> isize {
    // SAFETY: the same function with a 64-bit offset (off_t is 64 bits here).
    unsafe { pread64(fd, buf, count, offset) }
}

/// Interposes `preadv64(2)` (and `preadv`).
///
/// # Safety
///
/// `preadv(2)`'s contract.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn preadv64(fd: c_int, iov: *const libc::iovec, iovcnt: c_int, offset: libc::off64_t) -> isize {
    if offset >= 0 {
        // SAFETY: the caller's arguments.
        if let Some(n) = unsafe { files_readv(fd, iov, iovcnt, offset) } {
            return n;
        }
    }
    // SAFETY: the caller's arguments, unchanged.
    unsafe { real::preadv64(fd, iov, iovcnt, offset) }
}

/// Interposes `preadv(2)`.
///
/// # Safety
///
/// `preadv(2)`'s contract.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn preadv(fd: c_int, iov: *const libc::iovec, iovcnt: c_int, offset: libc::off_t) -> isize {
    // SAFETY: the same function with a 64-bit offset.
    unsafe { preadv64(fd, iov, iovcnt, offset) }
}

/// Interposes `pwrite64(2)` (and `pwrite`).
///
/// # Safety
///
/// `pwrite(2)`'s contract.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pwrite64(fd: c_int, buf: *const c_void, count: usize, offset: libc::off64_t) -> isize {
    if let Some(current) = files::greenlet_on_file(fd) {
        let buf = buf as usize;
        // SAFETY: as in `write`.
        return files::write(&current, count, move || unsafe {
            real::pwrite64(fd, buf as *const c_void, count, offset)
        });
    }
    // SAFETY: the caller's arguments, unchanged.
    unsafe { real::pwrite64(fd, buf, count, offset) }
}

/// Interposes `pwrite(2)`.
///
/// # Safety
///
/// `pwrite(2)`'s contract.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pwrite(fd: c_int, buf: *const c_void, count: usize, offset: libc::off_t) -> isize {
    // SAFETY: the same function with a 64-bit offset.
    unsafe { pwrite64(fd, buf, count, offset) }
}

/// Interposes `pwritev64(2)` (and `pwritev`).
///
/// # Safety
///
/// `pwritev(2)`'s contract.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pwritev64(fd: c_int, iov: *const libc::iovec, iovcnt: c_int, offset: libc::off64_t) -> isize {
    if let Some(current) = files::greenlet_on_file(fd) {
        // SAFETY: `pwritev(2)`'s contract: `iov` holds `iovcnt` iovecs.
        let len = unsafe { iov_len(iov, iovcnt) };
        let iov = iov as usize;
        // SAFETY: as in `write`.
        return files::write(&current, len, move || unsafe {
            real::pwritev64(fd, iov as *const libc::iovec, iovcnt, offset)
        });
    }
    // SAFETY: the caller's arguments, unchanged.
    unsafe { real::pwritev64(fd, iov, iovcnt, offset) }
}

/// Interposes `pwritev(2)`.
///
/// # Safety
///
/// `pwritev(2)`'s contract.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pwritev(fd: c_int, iov: *const libc::iovec, iovcnt: c_int, offset: libc::off_t) -> isize {
    // SAFETY: the same function with a 64-bit offset.
    unsafe { pwritev64(fd, iov, iovcnt, offset) }
}

/// The mode argument of an open with `flags`: read only when `O_CREAT` or
/// `O_TMPFILE` is set (as glibc does), 0 otherwise.
fn open_mode(flags: c_int, mode: c_uint) -> c_uint {
    let needs_mode = flags & libc::O_CREAT != 0 || flags & libc::O_TMPFILE == libc::O_TMPFILE;
    if needs_mode { mode } else { 0 }
}

/// An open: `call(path)` makes it (libc's, with the caller's other
/// arguments), from a greenlet on the pool (`files::open`, with a copy of
/// the path) where it should run there, else inline.
///
/// # Safety
///
/// `open(2)`'s contract for `path`, and `call` is safe to make with it or
/// a copy of it.
unsafe fn open_with(
    path: *const c_char,
    flags: c_int,
    call: impl FnOnce(*const c_char) -> c_int + Send + 'static,
) -> c_int {
    let current = context().filter(|_| !path.is_null() && !std::thread::panicking());
    if let Some(current) = current {
        // SAFETY: the caller's contract: a non-null path is a C string; the
        // reference ends with this call (`files::open` copies the path).
        let name = unsafe { CStr::from_ptr(path) };
        if files::open_offloads(name, flags) {
            return files::open(&current, name, move |copy| call(copy.as_ptr()));
        }
    }
    call(path)
}

/// Interposes `open(2)`, a variadic function in C whose optional mode
/// arrives in the register a third argument uses (as `fcntl`'s): from a
/// greenlet, the call runs on the pool (see `files`).
///
/// # Safety
///
/// `open(2)`'s contract.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn open(path: *const c_char, flags: c_int, mode: c_uint) -> c_int {
    let mode = open_mode(flags, mode);
    // SAFETY: `open(2)`'s contract, for the caller's path or a copy of it,
    // with the caller's flags and (where used) mode.
    let call = move |path| unsafe { real::open(path, flags, mode) };
    // SAFETY: the caller's contract.
    unsafe { open_with(path, flags, call) }
}

/// Interposes `open64`, glibc's name of `open` for 64-bit offsets (std's
/// `File::open`), as `open`.
///
/// # Safety
///
/// `open(2)`'s contract.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn open64(path: *const c_char, flags: c_int, mode: c_uint) -> c_int {
    let mode = open_mode(flags, mode);
    // SAFETY: as in `open`.
    let call = move |path| unsafe { real::open64(path, flags, mode) };
    // SAFETY: the caller's contract.
    unsafe { open_with(path, flags, call) }
}

/// Interposes `openat(2)` (variadic in C, as `open`), as `open`; a
/// relative path's directory descriptor serves the pool's call as well
/// (the descriptor table is the process's).
///
/// # Safety
///
/// `openat(2)`'s contract.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn openat(dirfd: c_int, path: *const c_char, flags: c_int, mode: c_uint) -> c_int {
    let mode = open_mode(flags, mode);
    // SAFETY: as in `open`, with the caller's directory.
    let call = move |path| unsafe { real::openat(dirfd, path, flags, mode) };
    // SAFETY: the caller's contract.
    unsafe { open_with(path, flags, call) }
}

/// Interposes `openat64`, as `openat`.
///
/// # Safety
///
/// `openat(2)`'s contract.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn openat64(dirfd: c_int, path: *const c_char, flags: c_int, mode: c_uint) -> c_int {
    let mode = open_mode(flags, mode);
    // SAFETY: as in `openat`.
    let call = move |path| unsafe { real::openat64(dirfd, path, flags, mode) };
    // SAFETY: the caller's contract.
    unsafe { open_with(path, flags, call) }
}

/// Interposes `creat(2)`, as `open`.
///
/// # Safety
///
/// `creat(2)`'s contract.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn creat(path: *const c_char, mode: libc::mode_t) -> c_int {
    let flags = libc::O_CREAT | libc::O_WRONLY | libc::O_TRUNC;
    // SAFETY: `creat(2)`'s contract, for the caller's path or a copy of it.
    let call = move |path| unsafe { real::creat(path, mode) };
    // SAFETY: the caller's contract.
    unsafe { open_with(path, flags, call) }
}

/// Interposes `creat64`, as `creat`.
///
/// # Safety
///
/// `creat(2)`'s contract.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn creat64(path: *const c_char, mode: libc::mode_t) -> c_int {
    let flags = libc::O_CREAT | libc::O_WRONLY | libc::O_TRUNC;
    // SAFETY: as in `creat`.
    let call = move |path| unsafe { real::creat64(path, mode) };
    // SAFETY: the caller's contract.
    unsafe { open_with(path, flags, call) }
}

/// Interposes `fsync(2)`: on the pool from a greenlet.
///
/// # Safety
///
/// None beyond `fsync(2)`'s.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fsync(fd: c_int) -> c_int {
    // SAFETY: an integer argument.
    let call = move || unsafe { real::fsync(fd) };
    match files::greenlet_on_file(fd) {
        Some(current) => files::sync(&current, call),
        None => call(),
    }
}

/// Interposes `fdatasync(2)`: on the pool from a greenlet.
///
/// # Safety
///
/// None beyond `fdatasync(2)`'s.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fdatasync(fd: c_int) -> c_int {
    // SAFETY: an integer argument.
    let call = move || unsafe { real::fdatasync(fd) };
    match files::greenlet_on_file(fd) {
        Some(current) => files::sync(&current, call),
        None => call(),
    }
}
