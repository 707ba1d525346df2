//! Regular files in greenlets, in safe code: the page cache answers most
//! reads at once, the disk does not, and `fsync` waits for it.
//!
//! A read from a greenlet is first tried with `RWF_NOWAIT` (`preadv2`),
//! which returns what the page cache holds without waiting for the disk;
//! when it would wait (`EAGAIN`), or the file system cannot say
//! (`EOPNOTSUPP`), the read runs on the hub's blocking pool while the
//! greenlet parks. Writes of [`INLINE_WRITE`] bytes or more (which may wait
//! for the disk when the page cache holds too much dirty data), and every
//! `fsync` and `fdatasync`, run on the pool too; smaller writes stay inline
//! (copying them costs less than the trip to the pool). Inline calls count
//! against the greenlet's I/O budget by size, so a greenlet streaming a
//! cached file yields every 4 MiB, and the hub polls and fires its timers
//! before it runs again (about a millisecond of copying between two turns).
//!
//! A kill or timeout does not cut a call on the pool short: the caller's
//! buffer is in use until it returns, so the greenlet waits for it
//! (blocking the hub for that long) and returns its result; the kill or
//! timeout is raised at the greenlet's next park.
//!
//! Opening a file runs on the pool too: the path's lookup may read
//! directories from the disk or ask a server (NFS), `O_TRUNC` frees the
//! file's blocks, and a FIFO's open waits for its other end. The call works
//! on a copy of the path, so a kill or timeout ends the wait at once (the
//! descriptor the open returns later is closed). Paths under `/dev`,
//! `/proc` and `/sys` (nothing there waits for a disk, and
//! `/proc/thread-self` is the calling thread's) and `O_PATH` opens (no file
//! is opened) stay inline.

use std::ffi::{CStr, c_int};
use std::os::fd::RawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicIsize, AtomicU32, Ordering};
use std::time::Duration;

use runtime_scheduler::foreign::{Current, Interrupted};

use crate::coop::{self, context};
use crate::{fds, real};

/// Writes this large or larger go to the blocking pool.
pub(crate) const INLINE_WRITE: usize = 16 * 1024;

/// Descriptor numbers tracked (as in `fds`).
const TRACKED: usize = 1 << 20;

/// Per descriptor number: the `fds` generation it was looked at in (all but
/// the low two bits) and what it is (the low two bits: `REGULAR`, `OTHER`).
static KIND: [AtomicU32; TRACKED] = [const { AtomicU32::new(0) }; TRACKED];

const REGULAR: u32 = 1;
const OTHER: u32 = 2;

/// Whether `fd` is a regular file (looked at once per descriptor).
fn is_regular(fd: RawFd) -> bool {
    let Some(slot) = usize::try_from(fd).ok().and_then(|index| KIND.get(index)) else { return false };
    let generation = fds::get(fd).generation();
    let word = slot.load(Ordering::Relaxed);
    if word & 3 != 0 && word >> 2 == generation & (u32::MAX >> 2) {
        return word & 3 == REGULAR;
    }
    let Some(kind) = real::file_type(fd) else { return false };
    let kind = if kind == libc::S_IFREG { REGULAR } else { OTHER };
    slot.store((generation << 2) | kind, Ordering::Relaxed);
    kind == REGULAR
}

/// The greenlet making a call on `fd`, if `fd` is a regular file and the
/// call should cooperate: not while the thread is panicking (a panic hook
/// reading debug information for a backtrace must not park, or another
/// greenlet of the thread could start a panic meanwhile, which aborts).
#[inline]
pub(crate) fn greenlet_on_file(fd: RawFd) -> Option<Current> {
    let current = context()?;
    (is_regular(fd) && !std::thread::panicking()).then_some(current)
}

/// A read (of any form) on `fd` in a greenlet: `nowait()` tries it with
/// `RWF_NOWAIT`; `call` makes it on the pool if that would wait. `None` if
/// `fd` is no regular file after all (its number was closed and reused
/// behind the hooks' back): the caller goes on as for any descriptor.
pub(crate) fn read(
    current: &Current,
    fd: RawFd,
    len: usize,
    nowait: impl FnOnce() -> isize,
    call: impl FnOnce() -> isize + Send + 'static,
) -> Option<isize> {
    if let Err(interrupted) = spend(current, len) {
        return Some(coop::fail(interrupted) as isize);
    }
    let n = nowait();
    if n >= 0 {
        return Some(n);
    }
    match real::errno() {
        libc::EAGAIN | libc::EOPNOTSUPP => {
            if real::file_type(fd) != Some(libc::S_IFREG) {
                forget(fd);
                return None;
            }
            Some(offload(current, call))
        }
        _ => Some(n),
    }
}

/// Looks at `fd` again on its next call.
fn forget(fd: RawFd) {
    if let Some(slot) = usize::try_from(fd).ok().and_then(|index| KIND.get(index)) {
        slot.store(0, Ordering::Relaxed);
    }
}

/// A write of `len` bytes in a greenlet: inline if small, else `call` on
/// the pool.
pub(crate) fn write(current: &Current, len: usize, call: impl FnOnce() -> isize + Send + 'static) -> isize {
    if len >= INLINE_WRITE {
        return offload(current, call);
    }
    if let Err(interrupted) = spend(current, len) {
        return coop::fail(interrupted) as isize;
    }
    call()
}

/// Inline file I/O of this many bytes counts as one operation of the
/// greenlet's I/O budget: a greenlet reading a cached file yields every few
/// MiB, as one reading a socket that always has data does every so many
/// reads.
const BUDGET_BYTES: usize = 32 * 1024;

/// Counts an inline call of `len` bytes against the greenlet's I/O budget
/// (yielding once it is spent).
fn spend(current: &Current, len: usize) -> Result<(), Interrupted> {
    for _ in 0..(len / BUDGET_BYTES).clamp(1, 64) {
        current.cooperate()?;
    }
    Ok(())
}

/// The outcome of a call on the pool, shared with the greenlet.
#[derive(Default)]
struct Outcome {
    done: AtomicBool,
    result: AtomicIsize,
    errno: AtomicI32,
}

/// Runs `call` on the hub's blocking pool, parks until it returns, and
/// returns its result with its `errno`.
pub(crate) fn offload(current: &Current, call: impl FnOnce() -> isize + Send + 'static) -> isize {
    let outcome = Arc::new(Outcome::default());
    let shared = outcome.clone();
    let waited = current.blocking(move || {
        let result = call();
        shared.errno.store(real::errno(), Ordering::Relaxed);
        shared.result.store(result, Ordering::Relaxed);
        shared.done.store(true, Ordering::Release);
    });
    match waited {
        Ok(Ok(())) => {}
        Ok(Err(_panic)) => {
            // The call itself never panics; nothing ran.
            real::set_errno(libc::EIO);
            return -1;
        }
        Err(_interrupted) => {
            // The caller's buffer is in use until the call returns.
            while !outcome.done.load(Ordering::Acquire) {
                real::sleep_thread(Duration::from_micros(100));
            }
        }
    }
    debug_assert!(outcome.done.load(Ordering::Acquire));
    real::set_errno(outcome.errno.load(Ordering::Relaxed));
    outcome.result.load(Ordering::Relaxed)
}

/// `fsync`/`fdatasync` in a greenlet: on the pool.
pub(crate) fn sync(current: &Current, call: impl FnOnce() -> c_int + Send + 'static) -> c_int {
    offload(current, move || call() as isize) as c_int
}

/// Whether an open of `path` with `flags` from a greenlet runs on the pool:
/// not for `O_PATH` (it opens nothing) nor for absolute paths under `/dev`,
/// `/proc` and `/sys` (see the module docs).
pub(crate) fn open_offloads(path: &CStr, flags: c_int) -> bool {
    let path = path.to_bytes();
    let under = |dir: &[u8]| path.starts_with(dir) && matches!(path.get(dir.len()), None | Some(b'/'));
    flags & libc::O_PATH == 0 && !under(b"/dev") && !under(b"/proc") && !under(b"/sys")
}

/// A descriptor opened on the pool: closed unless its greenlet takes it
/// (the greenlet was killed or timed out meanwhile).
struct Opened {
    fd: c_int,
    errno: c_int,
}

impl Drop for Opened {
    fn drop(&mut self) {
        if self.fd >= 0 {
            coop::closing(self.fd);
            real::close_own(self.fd);
        }
    }
}

/// An open in a greenlet: `call` opens the copy of `path` it is handed on
/// the pool, while the greenlet parks. A kill or timeout meanwhile fails
/// the call at once (`ECANCELED`, `ETIMEDOUT`).
pub(crate) fn open(current: &Current, path: &CStr, call: impl FnOnce(&CStr) -> c_int + Send + 'static) -> c_int {
    let path = path.to_owned();
    let opened = current.blocking(move || {
        let fd = call(&path);
        Opened { fd, errno: real::errno() }
    });
    match opened {
        Ok(Ok(mut opened)) => {
            real::set_errno(opened.errno);
            std::mem::replace(&mut opened.fd, -1)
        }
        Ok(Err(_panic)) => {
            // The call itself never panics; nothing was opened.
            real::set_errno(libc::EIO);
            -1
        }
        Err(interrupted) => coop::fail(interrupted),
    }
}
