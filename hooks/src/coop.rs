//! What the hooks do with a call, in safe code: the real call is a closure
//! (made in `exports`, the only place that handles the caller's pointers).
//!
//! A call on a descriptor goes one of three ways:
//!
//! - *through*: straight to libc, when the descriptor is not one the hooks
//!   manage (a file, a tty, a standard stream, an inherited pipe, one its
//!   user made non-blocking), or the caller is not a greenlet and the
//!   descriptor is blocking as its user expects (any socket but this
//!   process's listeners);
//! - *cooperative*: in a greenlet of a hub, on a socket (tried with
//!   `MSG_DONTWAIT`, its mode untouched) or on a listener or pipe this
//!   process made (non-blocking underneath): on `EAGAIN` the greenlet parks
//!   until the hub sees the descriptor ready (or its
//!   `SO_RCVTIMEO`/`SO_SNDTIMEO` passes);
//! - *emulated*: anywhere else (a plain thread, the blocking pool, the hub's
//!   loop, a thread whose hooks are off) on a descriptor the hooks made
//!   non-blocking: tried, and on `EAGAIN` the thread blocks in `poll(2)`, so
//!   its user still sees a blocking descriptor.
//!
//! A kill or timeout that is pending for the greenlet, or that arrives while
//! it is parked in a hook, makes the call fail with `ECANCELED` or
//! `ETIMEDOUT`, once; then the grace (see `runtime_scheduler::foreign`).

use std::cell::Cell;
use std::ffi::c_int;
use std::os::fd::RawFd;
use std::rc::Rc;
use std::time::{Duration, Instant};

use runtime_scheduler::foreign::{Current, Interrupted};
use runtime_scheduler::{Direction, Registration};

use crate::fds::{self, DONTWAIT, Entry, KNOWN, OURS, OWN, RCVTIMEO, SNDTIMEO, STREAM, USER_NB};
use crate::{fork, real, slots};

/// How often a greenlet waiting on something the hub cannot poll (a
/// descriptor registered with the hub by other means, a child without a
/// pidfd) looks again.
const RETRY_INTERVAL: Duration = Duration::from_millis(1);

thread_local! {
    /// `runtime::hooks::disable_for_current_thread`.
    static DISABLED: Cell<bool> = const { Cell::new(false) };
}

pub(crate) fn set_disabled(disabled: bool) {
    let _ = DISABLED.try_with(|cell| cell.set(disabled));
}

pub(crate) fn is_disabled() -> bool {
    DISABLED.try_with(Cell::get).unwrap_or(true)
}

/// The greenlet making the call, if the call should cooperate: a greenlet of
/// this thread's hub (not the parent's copy, in a forked child), the hooks
/// on for the thread.
#[inline(always)]
pub(crate) fn context() -> Option<Current> {
    // The cheapest test first, inline in every hook: no hub on this thread
    // (one thread-local word), the case of every plain thread's call.
    let hub = runtime_scheduler::foreign::hub_id()?;
    context_on(hub)
}

/// [`context`] on a thread running the hub `hub`.
#[inline(never)]
fn context_on(hub: u64) -> Option<Current> {
    if fork::is_parents_hub(hub) || is_disabled() || runtime_scheduler::foreign::in_panic_hook() {
        return None;
    }
    Current::get()
}

/// Fails the call for `interrupted`: -1 with `errno` set.
pub(crate) fn fail(interrupted: Interrupted) -> c_int {
    real::set_errno(errno_of(interrupted));
    -1
}

/// The `errno` a hooked call fails with when interrupted.
pub(crate) fn errno_of(interrupted: Interrupted) -> c_int {
    match interrupted {
        Interrupted::Killed => libc::ECANCELED,
        Interrupted::TimedOut => libc::ETIMEDOUT,
    }
}

/// Looks at a descriptor used in a greenlet for the first time. Its user
/// made it non-blocking: it passes through. A blocking socket cooperates per
/// call (`DONTWAIT`), its mode untouched, but for a listening socket this
/// process made, which becomes the hooks' (non-blocking underneath, `OURS`,
/// as `accept` has no per-call flag), as does a pipe this process made. The
/// standard streams and anything else pass through for good (until closed).
pub(crate) fn classify(fd: RawFd) -> Entry {
    let seen = fds::get(fd);
    if seen.has(KNOWN) {
        return seen;
    }
    let kept = seen.flags() & (OWN | RCVTIMEO | SNDTIMEO);
    if (0..=2).contains(&fd) {
        // Shared with other processes, and written to under std's stdout
        // and stderr locks, where a park would let another greenlet of the
        // thread into the (reentrant) lock's buffer: never parks.
        return fds::replace(fd, seen, kept | KNOWN);
    }
    let Some(kind) = real::file_type(fd) else { return seen };
    let socket = kind == libc::S_IFSOCK;
    let pipe = kind == libc::S_IFIFO && seen.has(OWN);
    if !socket && !pipe {
        return fds::replace(fd, seen, kept | KNOWN);
    }
    let mode = real::fcntl_int(fd, libc::F_GETFL, 0);
    if mode < 0 {
        return seen;
    }
    let stream = pipe || real::socket_int(fd, libc::SO_TYPE) == Some(libc::SOCK_STREAM);
    let mut flags = kept | KNOWN | if stream { STREAM } else { 0 };
    if mode & libc::O_NONBLOCK != 0 {
        flags |= USER_NB;
    } else if socket && !(seen.has(OWN) && real::socket_int(fd, libc::SO_ACCEPTCONN) == Some(1)) {
        flags |= DONTWAIT;
    } else {
        if real::fcntl_int(fd, libc::F_SETFL, mode | libc::O_NONBLOCK) < 0 {
            return seen;
        }
        flags |= OURS;
    }
    fds::replace(fd, seen, flags)
}

/// How a call on `fd` goes: `None` through, `Some(Some(_))` cooperative,
/// `Some(None)` emulated (only for `OURS`: a `DONTWAIT` socket is blocking,
/// so outside a greenlet its calls go through).
#[inline(always)]
fn route(fd: RawFd) -> Option<(Entry, Option<Current>)> {
    let entry = fds::get(fd);
    if entry.has(OURS) {
        return Some((entry, context()));
    }
    if entry.has(DONTWAIT) {
        return Some((entry, Some(context()?)));
    }
    if entry.has(KNOWN) {
        return None;
    }
    let current = context()?;
    let entry = classify(fd);
    (entry.has(OURS) || entry.has(DONTWAIT)).then_some((entry, Some(current)))
}

/// A blocking I/O call on `fd` in `direction`: `call(dontwait)` makes the
/// real call, told whether it must not block by itself (`MSG_DONTWAIT`, on a
/// blocking socket). `len` is the byte count asked for, for a call on a
/// stream whose short result means the descriptor is drained. `op` names the
/// wait in `runtime::dump`.
#[inline]
pub(crate) fn io(
    fd: RawFd,
    direction: Direction,
    op: &'static str,
    len: Option<usize>,
    mut call: impl FnMut(bool) -> isize,
) -> isize {
    match route(fd) {
        None => call(false),
        Some((entry, Some(current))) => cooperate(&current, fd, entry, direction, op, len, call),
        Some((_, None)) => emulate(fd, direction, || call(false)),
    }
}

fn cooperate(
    current: &Current,
    fd: RawFd,
    entry: Entry,
    direction: Direction,
    op: &'static str,
    len: Option<usize>,
    mut call: impl FnMut(bool) -> isize,
) -> isize {
    if let Err(interrupted) = current.check().and_then(|()| current.cooperate()) {
        return fail(interrupted) as isize;
    }
    let registration = slots::get(current.hub_id(), fd, entry.generation());
    let mut deadline = None;
    loop {
        if registration.as_ref().is_none_or(|r| r.is_ready(direction)) {
            let n = call(entry.has(DONTWAIT));
            if n >= 0 {
                if let (Some(r), Some(len)) = (&registration, len) {
                    let short = (n as usize) < len && (direction == Direction::Write || n > 0);
                    if short && entry.has(STREAM) {
                        r.clear_ready(direction);
                    }
                }
                return n;
            }
            if real::errno() != libc::EAGAIN {
                return n;
            }
            if let Some(r) = &registration {
                r.clear_would_block(direction);
            }
        }
        let deadline = *deadline.get_or_insert_with(|| timeout_deadline(fd, direction));
        match wait(current, registration.as_deref(), direction, op, deadline) {
            Ok(true) => {}
            Ok(false) => {
                // The socket's timeout passed: what the kernel says then.
                real::set_errno(libc::EAGAIN);
                return -1;
            }
            Err(interrupted) => return fail(interrupted) as isize,
        }
        // Another greenlet may have closed the descriptor meanwhile (its
        // number may be another descriptor's already), or made it
        // non-blocking (or handed it to another process).
        let now = fds::get(fd);
        if now.generation() != entry.generation() {
            real::set_errno(libc::EBADF);
            return -1;
        }
        if !now.has(OURS) && !now.has(DONTWAIT) {
            return call(false);
        }
    }
}

/// Parks until `registration` may be ready in `direction` (`Ok(true)`) or
/// `deadline` (`Ok(false)`); without a registration, for a while.
fn wait(
    current: &Current,
    registration: Option<&Registration>,
    direction: Direction,
    op: &'static str,
    deadline: Option<Instant>,
) -> Result<bool, Interrupted> {
    match registration {
        Some(registration) => current.wait(registration, direction, op, deadline),
        None => {
            let now = Instant::now();
            if deadline.is_some_and(|deadline| now >= deadline) {
                return Ok(false);
            }
            let next = now + RETRY_INTERVAL;
            current.sleep_until(deadline.map_or(next, |deadline| deadline.min(next)))?;
            Ok(true)
        }
    }
}

/// When the socket timeout of `direction` (`SO_RCVTIMEO`, `SO_SNDTIMEO`) set
/// on `fd` passes, counting from now.
fn timeout_deadline(fd: RawFd, direction: Direction) -> Option<Instant> {
    let (flag, name) = match direction {
        Direction::Read => (RCVTIMEO, libc::SO_RCVTIMEO),
        Direction::Write => (SNDTIMEO, libc::SO_SNDTIMEO),
    };
    if !fds::get(fd).has(flag) {
        return None;
    }
    real::socket_timeout(fd, name).map(|timeout| Instant::now() + timeout)
}

fn events_of(direction: Direction) -> i16 {
    match direction {
        Direction::Read => libc::POLLIN,
        Direction::Write => libc::POLLOUT,
    }
}

/// Blocking for a thread, on a descriptor the hooks made non-blocking:
/// `call` until it does not say `EAGAIN`, blocking in `poll(2)` in between,
/// for at most the socket's timeout.
fn emulate(fd: RawFd, direction: Direction, mut call: impl FnMut() -> isize) -> isize {
    let mut deadline = None;
    loop {
        let n = call();
        if n >= 0 || real::errno() != libc::EAGAIN {
            return n;
        }
        let deadline = *deadline.get_or_insert_with(|| timeout_deadline(fd, direction));
        if block_until(fd, events_of(direction), deadline) == 0 {
            real::set_errno(libc::EAGAIN);
            return -1;
        }
    }
}

/// Blocks the thread until `fd` has one of `events` (1), `deadline` passes
/// (0), or `poll` fails (-1; `EINTR` is retried).
fn block_until(fd: RawFd, events: i16, deadline: Option<Instant>) -> c_int {
    loop {
        let timeout = match deadline {
            None => -1,
            Some(deadline) => {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return 0;
                }
                c_int::try_from(left.as_nanos().div_ceil(1_000_000)).unwrap_or(c_int::MAX)
            }
        };
        let mut pollfd = [libc::pollfd { fd, events, revents: 0 }];
        match real::poll_slice(&mut pollfd, timeout) {
            -1 if real::errno() == libc::EINTR => continue,
            -1 => return -1,
            0 => continue, // the deadline is checked above
            _ => return 1,
        }
    }
}

/// Whether `fd` is ready for `events` right now.
fn ready_now(fd: RawFd, events: i16) -> bool {
    let mut pollfd = [libc::pollfd { fd, events, revents: 0 }];
    real::poll_slice(&mut pollfd, 0) > 0
}

/// The outcome of a connection in progress: `SO_ERROR`.
fn connected(fd: RawFd) -> c_int {
    match real::socket_int(fd, libc::SO_ERROR) {
        Some(0) => 0,
        Some(error) => {
            real::set_errno(error);
            -1
        }
        None => -1,
    }
}

/// Runs `call` with `fd` non-blocking for its duration (keeping `errno`).
fn nonblocking_for(fd: RawFd, call: &mut impl FnMut() -> c_int) -> c_int {
    let mode = real::fcntl_int(fd, libc::F_GETFL, 0);
    if mode < 0 || real::fcntl_int(fd, libc::F_SETFL, mode | libc::O_NONBLOCK) < 0 {
        return call();
    }
    let done = call();
    let error = real::errno();
    real::fcntl_int(fd, libc::F_SETFL, mode);
    real::set_errno(error);
    done
}

/// `connect(2)`: `call` makes the real call. A blocking socket this process
/// made is non-blocking for the call only (nobody else has it yet); an
/// inherited one connects as libc's would.
pub(crate) fn connect(fd: RawFd, mut call: impl FnMut() -> c_int) -> c_int {
    let Some((entry, current)) = route(fd) else { return call() };
    if entry.has(DONTWAIT) && !entry.has(OWN) {
        return call();
    }
    let dontwait = entry.has(DONTWAIT);
    let mut call = move || if dontwait { nonblocking_for(fd, &mut call) } else { call() };
    if let Some(Err(interrupted)) = current.as_ref().map(Current::check) {
        return fail(interrupted);
    }
    let done = call();
    let mut error = real::errno();
    if done == 0 || (error != libc::EINPROGRESS && error != libc::EAGAIN) {
        return done;
    }
    let deadline = timeout_deadline(fd, Direction::Write);
    let Some(current) = current else {
        // A thread: block until the connection is made (or refused).
        loop {
            if block_until(fd, libc::POLLOUT, deadline) != 1 {
                real::set_errno(error);
                return -1;
            }
            if error == libc::EINPROGRESS {
                return connected(fd);
            }
            // EAGAIN (a Unix socket's full backlog): try again.
            let done = call();
            error = real::errno();
            if done == 0 || (error != libc::EINPROGRESS && error != libc::EAGAIN) {
                return done;
            }
        }
    };
    let registration = slots::get(current.hub_id(), fd, fds::get(fd).generation());
    loop {
        if let Some(r) = &registration {
            r.clear_would_block(Direction::Write);
        }
        match wait(&current, registration.as_deref(), Direction::Write, "connect", deadline) {
            Ok(true) => {}
            Ok(false) => {
                // SO_SNDTIMEO passed: what the kernel says then.
                real::set_errno(error);
                return -1;
            }
            Err(interrupted) => return fail(interrupted),
        }
        if !ready_now(fd, libc::POLLOUT) {
            continue;
        }
        if error == libc::EINPROGRESS {
            return connected(fd);
        }
        let done = call();
        error = real::errno();
        if done == 0 || (error != libc::EINPROGRESS && error != libc::EAGAIN) {
            return done;
        }
    }
}

/// After a successful `accept` on `listener` with the caller's `flags`: what
/// is known of the new descriptor, one of this process's own (a blocking one
/// cooperates per call).
pub(crate) fn accepted(listener: RawFd, fd: RawFd, flags: c_int) {
    let inherited = fds::get(listener);
    let timeouts = inherited.flags() & (RCVTIMEO | SNDTIMEO);
    let flags = if !inherited.has(KNOWN) {
        OWN | timeouts // looked at on its first use in a greenlet
    } else if flags & libc::SOCK_NONBLOCK != 0 {
        KNOWN | OWN | timeouts | (inherited.flags() & STREAM) | USER_NB
    } else {
        KNOWN | OWN | timeouts | (inherited.flags() & STREAM) | DONTWAIT
    };
    fds::fresh(fd, flags);
}

/// `accept(2)` with the caller's `flags`: `call` makes the real call. On a
/// blocking listener (one this process did not make) it runs only once the
/// listener is readable: nothing else of the thread can take the connection
/// in between, another thread or process could.
pub(crate) fn accept(listener: RawFd, flags: c_int, mut call: impl FnMut(c_int) -> c_int) -> c_int {
    let fd = io(listener, Direction::Read, "accept", None, |dontwait| {
        if dontwait && !ready_now(listener, libc::POLLIN) {
            real::set_errno(libc::EAGAIN);
            return -1;
        }
        call(flags) as isize
    }) as c_int;
    if fd >= 0 {
        accepted(listener, fd, flags);
    }
    fd
}

/// The user sets (`true`) or clears `O_NONBLOCK` on `fd`. Returns whether
/// the change goes to the kernel: a descriptor the hooks manage stays
/// non-blocking underneath when its user wants it blocking.
pub(crate) fn set_nonblocking(fd: RawFd, nonblocking: bool) -> bool {
    let entry = fds::get(fd);
    if nonblocking {
        // The hub's registration goes, so that the descriptor can be
        // registered by its user (`runtime::io::Source::new`).
        slots::remove(fd, entry.generation());
        // Known from now on: its calls pass through without a look at the
        // descriptor (also from a signal handler writing to a self-pipe).
        fds::update(fd, USER_NB | KNOWN, OURS | DONTWAIT);
        true
    } else if entry.has(OURS) {
        false
    } else {
        // Looked at again on its next use in a greenlet.
        fds::update(fd, 0, USER_NB | KNOWN | DONTWAIT);
        true
    }
}

/// `old` is about to be duplicated onto `new` (`dup2`, `dup3`): handed over
/// if `new` is a standard stream, or this is a forked child (which sets up
/// descriptors for an `exec`).
pub(crate) fn duplicating(old: RawFd, new: RawFd) {
    if (0..=2).contains(&new) || fork::in_child() {
        handed_over(old);
    }
}

/// `fcntl(F_GETFL)`'s result as the user should see it.
pub(crate) fn user_mode(fd: RawFd, mode: c_int) -> c_int {
    if mode >= 0 && fds::get(fd).has(OURS) { mode & !libc::O_NONBLOCK } else { mode }
}

/// `fd` is about to be closed (or replaced by `dup2`): out of the hub's
/// poller first, then forgotten.
pub(crate) fn closing(fd: RawFd) {
    slots::remove(fd, fds::get(fd).generation());
    fds::closed(fd);
}

/// A `setsockopt` on `fd` succeeded: notes a read or write timeout.
pub(crate) fn socket_option_set(fd: RawFd, level: c_int, name: c_int) {
    if level != libc::SOL_SOCKET {
        return;
    }
    let (flag, name) = match name {
        libc::SO_RCVTIMEO | libc::SO_RCVTIMEO_NEW => (RCVTIMEO, libc::SO_RCVTIMEO),
        libc::SO_SNDTIMEO | libc::SO_SNDTIMEO_NEW => (SNDTIMEO, libc::SO_SNDTIMEO),
        _ => return,
    };
    if real::socket_timeout(fd, name).is_some() {
        fds::update(fd, flag, 0);
    } else {
        fds::update(fd, 0, flag);
    }
}

/// A pipe this process made.
pub(crate) fn piped(fd: RawFd, flags: c_int) {
    let nonblocking = if flags & libc::O_NONBLOCK != 0 { USER_NB } else { 0 };
    fds::fresh(fd, OWN | STREAM | nonblocking);
}

/// A socket this process made (`socket`, `socketpair`) with the type's
/// flags.
pub(crate) fn socket_made(fd: RawFd, kind: c_int) {
    let nonblocking = if kind & libc::SOCK_NONBLOCK != 0 { KNOWN | USER_NB } else { 0 };
    fds::fresh(fd, OWN | nonblocking);
}

/// `fd` is handed to another process (`dup2` onto a standard stream, a
/// child's `posix_spawn` file action, a `dup2` in a forked child): blocking
/// again if the hooks made it non-blocking, and never switched again, since
/// its mode is the other process's too. In a greenlet it cooperates on as an
/// inherited descriptor would.
pub(crate) fn handed_over(fd: RawFd) {
    let entry = fds::get(fd);
    if entry.has(OURS) {
        let mode = real::fcntl_int(fd, libc::F_GETFL, 0);
        if mode >= 0 {
            real::fcntl_int(fd, libc::F_SETFL, mode & !libc::O_NONBLOCK);
        }
    }
    fds::update(fd, 0, OWN | OURS | DONTWAIT | KNOWN);
}

/// Sleeps in a greenlet: `Ok` once `duration` has passed.
pub(crate) fn sleep(current: &Current, duration: Duration) -> Result<(), Interrupted> {
    if duration.is_zero() {
        // Nothing to wait for (and a retry with nothing left must end).
        return Ok(());
    }
    current.sleep_until(Instant::now() + duration)
}

/// The directions a `poll` event mask waits for.
fn directions(events: i16) -> [Option<Direction>; 2] {
    let write = events & (libc::POLLOUT | libc::POLLWRNORM | libc::POLLWRBAND) != 0;
    let read = events & (libc::POLLIN | libc::POLLPRI | libc::POLLRDNORM | libc::POLLRDBAND | libc::POLLRDHUP) != 0;
    // Only errors and hang-ups asked for: they wake the read side.
    [(read || !write).then_some(Direction::Read), write.then_some(Direction::Write)]
}

/// `poll(2)` in a greenlet: parks until one of `fds` is ready or `timeout`
/// passes (`None`: no limit). `check(fds)` polls without waiting.
pub(crate) fn poll(
    current: &Current,
    fds: &mut [libc::pollfd],
    timeout: Option<Duration>,
    mut check: impl FnMut(&mut [libc::pollfd]) -> c_int,
) -> c_int {
    if let Err(interrupted) = current.check() {
        return fail(interrupted);
    }
    let ready = check(fds);
    if ready != 0 || timeout.is_some_and(|timeout| timeout.is_zero()) {
        return ready;
    }
    let deadline = timeout.map(|timeout| Instant::now() + timeout);
    let hub = current.hub_id();
    let mut sources: Vec<(Rc<Registration>, Direction)> = Vec::with_capacity(fds.len());
    let mut unpolled = false;
    for pollfd in fds.iter().filter(|pollfd| pollfd.fd >= 0) {
        let Some(registration) = slots::get(hub, pollfd.fd, fds::get(pollfd.fd).generation()) else {
            unpolled = true;
            continue;
        };
        for direction in directions(pollfd.events).into_iter().flatten() {
            sources.push((registration.clone(), direction));
        }
    }
    loop {
        // `check` found none ready: wait for the next events.
        for (registration, direction) in &sources {
            registration.clear_would_block(*direction);
        }
        let refs: Vec<(&Registration, Direction)> = sources.iter().map(|(r, d)| (&**r, *d)).collect();
        let until = if unpolled {
            let next = Instant::now() + RETRY_INTERVAL;
            Some(deadline.map_or(next, |deadline| deadline.min(next)))
        } else {
            deadline
        };
        if let Err(interrupted) = current.wait_any(&refs, "poll", until) {
            return fail(interrupted);
        }
        let ready = check(fds);
        if ready != 0 || deadline.is_some_and(|deadline| Instant::now() >= deadline) {
            return ready;
        }
    }
}

/// `waitpid`/`wait4` for the child `pid` in a greenlet: parks on a pidfd
/// until the child ends. `reap(options)` makes the real call.
pub(crate) fn wait_child(
    current: &Current,
    pid: libc::pid_t,
    options: c_int,
    mut reap: impl FnMut(c_int) -> libc::pid_t,
) -> libc::pid_t {
    if let Err(interrupted) = current.check() {
        return fail(interrupted);
    }
    let reaped = reap(options | libc::WNOHANG);
    if reaped != 0 {
        return reaped;
    }
    let pidfd = real::pidfd_open(pid);
    let registration = pidfd.and_then(|fd| real::register(fd).ok());
    let outcome = loop {
        let reaped = reap(options | libc::WNOHANG);
        if reaped != 0 {
            break reaped;
        }
        if let Some(r) = &registration {
            r.clear_would_block(Direction::Read);
        }
        if let Err(interrupted) = wait(current, registration.as_ref(), Direction::Read, "waitpid", None) {
            break fail(interrupted);
        }
    };
    let errno = real::errno();
    drop(registration);
    if let Some(fd) = pidfd {
        fds::closed(fd);
        real::close_own(fd);
    }
    real::set_errno(errno);
    outcome
}

/// The longest a greenlet's `epoll_wait` parks before it returns with no
/// events (as `epoll_wait` may, for a signal): an event loop embedded in a
/// greenlet may be woken by another greenlet of the same thread in a way
/// that never reaches its epoll descriptor (tokio's waker, seeing the thread
/// inside its runtime, only marks it woken), and looks again then.
const EPOLL_RECHECK: Duration = Duration::from_millis(10);

/// `epoll_wait(2)` and its variants in a greenlet: parks until the epoll
/// descriptor `epfd` is readable (it is while events are pending) or
/// `timeout` passes (`None`: no limit), for at most [`EPOLL_RECHECK`].
/// `check` collects events without waiting and returns their number (or -1
/// with `errno`).
pub(crate) fn epoll_wait(
    current: &Current,
    epfd: RawFd,
    timeout: Option<Duration>,
    mut check: impl FnMut() -> c_int,
) -> c_int {
    let collected = Cell::new(0);
    let mut pollfd = [libc::pollfd { fd: epfd, events: libc::POLLIN, revents: 0 }];
    let timeout = Some(timeout.map_or(EPOLL_RECHECK, |timeout| timeout.min(EPOLL_RECHECK)));
    let ready = poll(current, &mut pollfd, timeout, |_| {
        let n = check();
        collected.set(n);
        n.signum()
    });
    if ready <= 0 {
        // The timeout (0), or a kill or timeout of the greenlet (-1).
        return ready;
    }
    collected.get()
}
