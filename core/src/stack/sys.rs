//! The system calls behind stacks: reserving address space, installing guard
//! pages and handing memory back to the kernel.
//!
//! Everything here is a thin wrapper over `mmap`, `madvise` and `mprotect` that
//! turns `-1` into an [`io::Error`]. The pool in `pool.rs` decides when to call
//! what.

use std::io;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};

/// `madvise` advice that turns a range into guard pages without creating a VMA
/// (Linux 6.13+). The `libc` release in use (0.2.191) does not export it
/// yet; the value is Linux's (`include/uapi/asm-generic/mman-common.h`),
/// which is why the crate refuses to build for other systems (see `lib.rs`).
/// Older kernels answer `EINVAL`, and guards fall back to `mprotect`.
const MADV_GUARD_INSTALL: libc::c_int = 102;

/// How guard pages are made on this machine, decided on first use.
static GUARD_MODE: AtomicU8 = AtomicU8::new(MODE_UNKNOWN);
const MODE_UNKNOWN: u8 = 0;
const MODE_MADVISE: u8 = 1;
const MODE_MPROTECT: u8 = 2;

/// How a guard page is installed; reported in [`crate::stack::Stats`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GuardKind {
    /// `madvise(MADV_GUARD_INSTALL)`: a page-table marker inside the shared
    /// reservation, costing no extra memory mapping.
    Madvise,
    /// `mprotect(PROT_NONE)`: the fallback for kernels older than 6.13; each
    /// guard splits the reservation, so every stack costs two mappings.
    Mprotect,
    /// No stack has been created yet on this machine, so nothing was decided.
    Undecided,
}

/// The guard kind in use by this process.
pub(crate) fn guard_kind() -> GuardKind {
    match GUARD_MODE.load(Ordering::Relaxed) {
        MODE_MADVISE => GuardKind::Madvise,
        MODE_MPROTECT => GuardKind::Mprotect,
        _ => GuardKind::Undecided,
    }
}

/// With `mprotect` guards every stack costs mappings; this many are left to the
/// rest of the program (malloc, thread stacks, the panic report when stacks
/// run out) below `vm.max_map_count`.
const MAPPING_HEADROOM: usize = 1000;

/// `mprotect` guards installed and reservations made, to estimate the
/// process's mappings without reading `/proc/self/maps` each time.
static GUARDS: AtomicUsize = AtomicUsize::new(0);
static RESERVATIONS: AtomicUsize = AtomicUsize::new(0);

/// The system page size.
pub(crate) fn page_size() -> usize {
    static PAGE: OnceLock<usize> = OnceLock::new();
    // SAFETY: sysconf has no preconditions.
    *PAGE.get_or_init(|| match unsafe { libc::sysconf(libc::_SC_PAGESIZE) } {
        n if n > 0 => n as usize,
        _ => 4096,
    })
}

fn check(ret: libc::c_int) -> io::Result<()> {
    if ret == -1 { Err(io::Error::last_os_error()) } else { Ok(()) }
}

/// Reserves `len` bytes of private, readable and writable address space that
/// is only backed by memory once touched.
pub(crate) fn reserve(len: usize) -> io::Result<usize> {
    // SAFETY: an anonymous mapping at an address of the kernel's choosing
    // cannot alias any existing Rust object.
    let ptr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE | libc::MAP_STACK,
            -1,
            0,
        )
    };
    if ptr == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    RESERVATIONS.fetch_add(1, Ordering::Relaxed);
    // Transparent huge pages would make a touched stack cost 2 MiB; a failure
    // here only costs memory, so it is ignored.
    // SAFETY: the range was just mapped by us.
    unsafe { libc::madvise(ptr, len, libc::MADV_NOHUGEPAGE) };
    Ok(ptr as usize)
}

/// Returns a reservation made by [`reserve`], holding `guards` guard regions,
/// to the kernel.
///
/// # Safety
///
/// `[base, base + len)` must be a whole reservation from [`reserve`] that no
/// live stack or reference points into.
pub(crate) unsafe fn unreserve(base: usize, len: usize, guards: usize) {
    // SAFETY: guaranteed by the caller.
    unsafe { libc::munmap(base as *mut libc::c_void, len) };
    RESERVATIONS.fetch_sub(1, Ordering::Relaxed);
    if GUARD_MODE.load(Ordering::Relaxed) == MODE_MPROTECT {
        GUARDS.fetch_sub(guards, Ordering::Relaxed);
    }
}

/// Refuses an `mprotect` guard that would bring the process close to
/// `vm.max_map_count` (each splits its reservation into two more mappings).
fn check_mapping_budget() -> io::Result<()> {
    static LIMIT: OnceLock<usize> = OnceLock::new();
    let limit = *LIMIT.get_or_init(|| {
        let max = max_map_count().map_or(65530, |n| n as usize);
        let existing = std::fs::read_to_string("/proc/self/maps").map_or(0, |maps| maps.lines().count());
        // What the process had besides our reservations, plus headroom.
        let others = existing.saturating_sub(RESERVATIONS.load(Ordering::Relaxed));
        max.saturating_sub(others + MAPPING_HEADROOM)
    });
    let ours = RESERVATIONS.load(Ordering::Relaxed) + 2 * GUARDS.load(Ordering::Relaxed);
    if ours + 2 > limit {
        return Err(io::Error::from_raw_os_error(libc::ENOMEM));
    }
    Ok(())
}

/// Makes `[addr, addr + len)` a guard region: any access raises SIGSEGV.
///
/// # Safety
///
/// The range must lie inside a reservation from [`reserve`] and hold no live
/// data.
pub(crate) unsafe fn install_guard(addr: usize, len: usize) -> io::Result<()> {
    let mode = match GUARD_MODE.load(Ordering::Relaxed) {
        MODE_UNKNOWN => decide_mode(),
        mode => mode,
    };
    if mode == MODE_MADVISE {
        loop {
            // SAFETY: the caller guarantees the range is ours and unused.
            match check(unsafe { libc::madvise(addr as *mut libc::c_void, len, MADV_GUARD_INSTALL) }) {
                Ok(()) => return Ok(()),
                Err(e) if matches!(e.raw_os_error(), Some(libc::EINTR | libc::EAGAIN)) => continue,
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                    // The kernel does not know the advice: fall back for good.
                    GUARD_MODE.store(MODE_MPROTECT, Ordering::Relaxed);
                    break;
                }
                Err(e) => return Err(e),
            }
        }
    }
    check_mapping_budget()?;
    // SAFETY: the caller guarantees the range is ours and unused.
    check(unsafe { libc::mprotect(addr as *mut libc::c_void, len, libc::PROT_NONE) })?;
    GUARDS.fetch_add(1, Ordering::Relaxed);
    Ok(())
}

/// `process_madvise`'s stand-in for a pidfd naming the calling thread (and so
/// its address space), Linux 6.14+ (`PIDFD_SELF` in `linux/pidfd.h`, which
/// the `libc` release in use does not export). Unlike a pidfd of our own
/// process, it still means "this process" in a child after `fork`.
const PIDFD_SELF: libc::c_int = -10000;

/// Guards per `process_madvise` call: 1 KiB of `iovec`s, small enough for the
/// stack of a greenlet that starts others.
const GUARD_BATCH: usize = 64;

/// Whether `process_madvise` installs guards here; cleared for good when the
/// kernel (or a seccomp filter) refuses it.
static VECTORED: AtomicBool = AtomicBool::new(true);

/// Makes guard regions of `len` bytes at `first`, `first + stride`, ... for
/// at most `count` (at least 1) of them, and returns how many it made: with
/// `MADV_GUARD_INSTALL` through `process_madvise` (Linux 6.15+) all of them,
/// up to 64 per system call (fewer if a call fails part way); otherwise one,
/// by `madvise` or, before Linux 6.13, `mprotect`.
///
/// # Safety
///
/// Every range must lie inside a reservation from [`reserve`] and hold no
/// live data.
pub(crate) unsafe fn install_guards(first: usize, stride: usize, count: usize, len: usize) -> io::Result<usize> {
    debug_assert!(count > 0);
    let mode = match GUARD_MODE.load(Ordering::Relaxed) {
        MODE_UNKNOWN => decide_mode(),
        mode => mode,
    };
    let mut done = 0;
    if mode == MODE_MADVISE && VECTORED.load(Ordering::Relaxed) {
        while done < count {
            let n = (count - done).min(GUARD_BATCH);
            let mut iov = [libc::iovec { iov_base: std::ptr::null_mut(), iov_len: len }; GUARD_BATCH];
            for (i, v) in iov[..n].iter_mut().enumerate() {
                v.iov_base = std::ptr::without_provenance_mut(first + (done + i) * stride);
            }
            // SAFETY: `iov` holds `n` initialised entries, each a range the
            // caller guarantees is ours and unused; the kernel only reads them.
            let ret =
                unsafe { libc::syscall(libc::SYS_process_madvise, PIDFD_SELF, iov.as_ptr(), n, MADV_GUARD_INSTALL, 0) };
            if ret > 0 {
                // Whole ranges are advised in order; a partial count stops
                // before the range that failed, which the next call reports.
                done += ret as usize / len;
                continue;
            }
            let err = io::Error::last_os_error();
            match err.raw_os_error() {
                Some(libc::EINTR | libc::EAGAIN) if ret == -1 => continue,
                // No PIDFD_SELF, no guard advice through it, no such call, or
                // a filter forbids it (or nothing was advised, which no kernel
                // answers): one `madvise` per guard from now on.
                Some(libc::EBADF | libc::EINVAL | libc::ENOSYS | libc::EPERM) => {
                    VECTORED.store(false, Ordering::Relaxed);
                    break;
                }
                _ if ret == 0 => {
                    VECTORED.store(false, Ordering::Relaxed);
                    break;
                }
                // The guards made so far serve; the next call reports it.
                _ if done > 0 => break,
                _ => return Err(err),
            }
        }
    }
    if done > 0 {
        return Ok(done);
    }
    // One at a time: making guards ahead saves nothing without batches.
    // SAFETY: the caller guarantees the range is ours and unused.
    unsafe { install_guard(first, len)? };
    Ok(1)
}

/// Picks the guard mode once: `madvise` unless `GREENLET_GUARD=mprotect` asks
/// for the fallback, or `GREENLET_GUARD=madvise` for one `madvise` per guard
/// (kernels 6.13 and 6.14); both are there to test them on new kernels.
fn decide_mode() -> u8 {
    let wanted = match std::env::var("GREENLET_GUARD").as_deref() {
        Ok("mprotect") => MODE_MPROTECT,
        Ok("madvise") => {
            VECTORED.store(false, Ordering::Relaxed);
            MODE_MADVISE
        }
        _ => MODE_MADVISE,
    };
    match GUARD_MODE.compare_exchange(MODE_UNKNOWN, wanted, Ordering::Relaxed, Ordering::Relaxed) {
        Ok(_) => wanted,
        Err(current) => current,
    }
}

/// Gives the memory behind `[addr, addr + len)` back to the kernel; the range
/// stays reserved and reads as zeros when touched again. Guard regions made
/// with `MADV_GUARD_INSTALL` survive this.
///
/// # Safety
///
/// The range must lie inside a reservation from [`reserve`] and hold no live
/// data.
pub(crate) unsafe fn discard(addr: usize, len: usize) {
    // SAFETY: guaranteed by the caller. Failure only means the memory stays
    // resident, so it is ignored.
    unsafe { libc::madvise(addr as *mut libc::c_void, len, libc::MADV_DONTNEED) };
}

/// Bytes of `[addr, addr + len)` resident in memory, by `mincore`; `buf` is
/// scratch space (one byte per page), kept by the caller between calls. A
/// range the kernel refuses to describe counts as not resident.
pub(crate) fn resident(addr: usize, len: usize, buf: &mut Vec<u8>) -> usize {
    let page = page_size();
    let pages = len.div_ceil(page);
    buf.clear();
    buf.resize(pages, 0);
    // SAFETY: `mincore` only reads the page tables of the range and writes
    // one byte per page into `buf`, which holds `pages` bytes; a range that
    // is not mapped is an error (`ENOMEM`), not undefined behaviour.
    let ret = unsafe { libc::mincore(addr as *mut libc::c_void, len, buf.as_mut_ptr()) };
    if ret == -1 {
        return 0;
    }
    buf.iter().filter(|&&b| b & 1 != 0).count() * page
}

/// The process's `vm.max_map_count`, for error messages.
pub(crate) fn max_map_count() -> Option<u64> {
    std::fs::read_to_string("/proc/sys/vm/max_map_count").ok()?.trim().parse().ok()
}
