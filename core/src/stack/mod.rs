//! Greenlet stacks: pooled, guard-paged, and sized per greenlet.
//!
//! Every started greenlet runs on a stack of its own, taken from a pool that
//! belongs to its thread and given back when the greenlet finishes. Starting a
//! greenlet therefore costs no system call in steady state.
//!
//! Stacks are carved out of large shared reservations. Under each stack lies a
//! guard region made with `madvise(MADV_GUARD_INSTALL)` (Linux 6.13 and later),
//! which costs neither memory nor a memory mapping: a million stacks need a
//! few hundred mappings, far below the default `vm.max_map_count` of 65530.
//! Guards are installed ahead of use, up to 64 per system call
//! (`process_madvise`, Linux 6.15+), so a new stack costs its first page fault
//! and a sixty-fourth of a system call.
//! On older kernels the guard falls back to `mprotect`, at two mappings per
//! stack ([`Stats::chunks`] and [`guard_kind`] tell which is in use).
//!
//! A greenlet that overflows its stack hits the guard; a `SIGSEGV` handler
//! recognises the guard, prints which greenlet overflowed and how large its
//! stack was, and aborts the process.
//!
//! Idle stacks stay resident as long as the recent peak of stacks in use may
//! need them again (and at least 256 per stack size, unless
//! [`set_idle_limit`] sets a strict limit); beyond that their memory is handed
//! back to the kernel (after a second or two of lower load) while the address
//! range stays reserved for reuse. [`maintain`] lets an idle thread hand memory back
//! without waiting for its next greenlet to finish (the hub calls it before it
//! sleeps); [`trim`] gives back everything idle.
//!
//! A suspended greenlet keeps every page it ever touched resident, however
//! deep it went once. [`Greenlet::trim_stack`](crate::Greenlet::trim_stack)
//! gives back the pages below where it suspended (the hub does this for
//! greenlets parked for a while); they read as zeros if it goes deep again.
//!
//! ```
//! use runtime::greenlet::{Greenlet, stack};
//!
//! stack::set_default_size(128 * 1024); // for greenlets created on this thread from now on
//! let g = Greenlet::builder().stack_size(256 * 1024).build(|v| v);
//! assert_eq!(g.stack_size(), 256 * 1024);
//! ```

mod overflow;
mod pool;
mod sys;

use std::cell::{Cell, RefCell};
use std::io;

use corosensei::stack::StackPointer;

pub use pool::Stats;
pub use sys::GuardKind;
pub(crate) use sys::{discard, page_size};

/// The stack size of greenlets that do not ask for one: 64 KiB.
pub const DEFAULT_SIZE: usize = 64 * 1024;

/// The smallest usable stack, 16 KiB; smaller requests are rounded up to it
/// (unwinding a panic alone can take several KiB of stack).
pub const MIN_SIZE: usize = 16 * 1024;

const _: () = assert!(MIN_SIZE >= corosensei::stack::MIN_STACK_SIZE);

/// Per-thread state touched whenever a greenlet starts or finishes.
struct Local {
    /// The stack size of greenlets created without one.
    default_size: Cell<usize>,
    /// The stack released last, kept out of the pool so that the common
    /// "one greenlet finishes, the next one starts" pattern skips the pool's
    /// bookkeeping. Its chunk still counts it as in use.
    last: Cell<Option<pool::Slot>>,
    /// Whether the idle limit leaves room for `last`.
    last_allowed: Cell<bool>,
}

thread_local! {
    static POOL: RefCell<pool::Pool> = const { RefCell::new(pool::Pool::new()) };
    static LOCAL: Local = const {
        Local { default_size: Cell::new(DEFAULT_SIZE), last: Cell::new(None), last_allowed: Cell::new(true) }
    };
}

/// This thread's `Local`, as a plain reference (one thread-local access).
#[inline(always)]
fn local() -> &'static Local {
    // SAFETY: `LOCAL` has a constant initialiser and no destructor, so it
    // lives, unmoved, as long as its thread; the reference cannot leave the
    // thread (`Local` is not `Sync`).
    LOCAL.with(|local| unsafe { &*(local as *const Local) })
}

/// Puts the stack kept in `Local::last` back into the pool.
fn flush_last(pool: &mut pool::Pool) {
    if let Some(slot) = local().last.take() {
        pool.release(&slot);
    }
}

/// Sets the stack size for greenlets created on this thread without an
/// explicit size. Rounded up to whole pages.
///
/// # Panics
///
/// If `bytes` is too large for any address space (beyond 2^56 bytes on
/// 64-bit targets); the default is then unchanged.
#[track_caller]
pub fn set_default_size(bytes: usize) {
    local().default_size.set(round_size(bytes));
}

/// The stack size given to greenlets created on this thread without an
/// explicit size.
pub fn default_size() -> usize {
    local().default_size.get()
}

/// Sets how many idle stacks of each size this thread keeps resident at most;
/// the memory of the rest goes back to the kernel at once and from then on.
///
/// Without a limit set, a thread keeps idle stacks resident as long as the
/// recent peak of greenlets in use may need them again, and at least 256 per
/// stack size.
pub fn set_idle_limit(stacks: usize) {
    POOL.with(|p| {
        let mut pool = p.borrow_mut();
        flush_last(&mut pool);
        pool.set_idle_limit(stacks);
    });
    local().last_allowed.set(stacks > 0);
}

/// Hands back the memory of idle stacks the recent peak no longer justifies,
/// if the decay window has moved on since the last call. Cheap otherwise; meant
/// for a thread that is about to go idle.
pub fn maintain() {
    POOL.with(|p| p.borrow_mut().maintain(std::time::Instant::now()));
}

/// Hands the memory of every idle stack of this thread back to the kernel and
/// unmaps every reservation that holds no live stack.
pub fn trim() {
    POOL.with(|p| {
        let mut pool = p.borrow_mut();
        flush_last(&mut pool);
        pool.trim();
    });
}

/// Counters for this thread's stacks.
pub fn stats() -> Stats {
    let mut stats = POOL.with(|p| p.borrow().stats());
    if local().last.get().is_some() {
        stats.in_use -= 1;
        stats.idle_warm += 1;
    }
    stats
}

/// Bytes of this thread's greenlet stacks that are resident in memory: those
/// of live greenlets and the idle ones the pool keeps warm for reuse.
///
/// It asks the kernel (`mincore`) about every reservation's used part, so it
/// costs a system call per reservation and a byte of scratch memory per page:
/// about two milliseconds for ten thousand 64 KiB stacks. Meant for metrics
/// sampled now and then, not for every switch.
///
/// ```
/// use greenlet::{Greenlet, stack};
///
/// let g = Greenlet::new(|v| v);
/// g.switch(Box::new(())); // runs on a stack of its own, which it touches
/// assert!(stack::resident_bytes() > 0);
/// ```
pub fn resident_bytes() -> usize {
    thread_local! {
        static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    }
    SCRATCH.with(|buf| POOL.with(|p| p.borrow().resident_bytes(&mut buf.borrow_mut())))
}

/// How guard pages are made in this process.
pub fn guard_kind() -> GuardKind {
    sys::guard_kind()
}

/// The largest slot (guard region plus usable stack) the pool reserves:
/// 2^56 bytes, the user address space of a 64-bit Linux with 57-bit virtual
/// addresses, the largest there is (or `isize::MAX`, the largest Rust object,
/// where that is smaller). No larger stack could ever be mapped, and bounding
/// sizes here keeps the pool's arithmetic from wrapping.
pub(crate) const MAX_SLOT: usize = {
    let max = 1u64 << 56;
    if max < isize::MAX as u64 { max as usize } else { isize::MAX as usize }
};

/// Rounds a requested size up to whole pages, and to at least [`MIN_SIZE`].
///
/// # Panics
///
/// If the stack and its guard would not fit in [`MAX_SLOT`]: "stack size N
/// is too large".
#[track_caller]
pub(crate) fn round_size(bytes: usize) -> usize {
    match checked_round_size(bytes) {
        Some(rounded) => rounded,
        None => too_large(bytes),
    }
}

/// [`round_size`], or `None` for a stack too large for any address space.
fn checked_round_size(bytes: usize) -> Option<usize> {
    let page = sys::page_size();
    debug_assert!(page.is_power_of_two());
    // A mask, not `checked_next_multiple_of`: that divides, on every spawn.
    let rounded = bytes.max(MIN_SIZE).checked_add(page - 1)? & !(page - 1);
    let slot = rounded.checked_add(pool::GUARD_PAGES * page)?;
    (slot <= MAX_SLOT).then_some(rounded)
}

#[cold]
#[track_caller]
fn too_large(bytes: usize) -> ! {
    panic!("stack size {bytes} is too large: no address space can hold it")
}

/// A stack from this thread's pool, returned to it on drop.
///
/// # Invariant
///
/// `slot` describes a region of this thread's pool handed out to this value
/// alone: `[slot.base, slot.base + guard)` is a guard region and the rest up
/// to `slot.top` is readable and writable.
#[derive(Debug)]
pub(crate) struct Stack {
    slot: pool::Slot,
    /// Tells Valgrind that the usable region is a stack for as long as this
    /// value owns it, so that switching to it is not taken for a wild jump
    /// of the stack pointer.
    #[cfg(feature = "valgrind")]
    _valgrind: corosensei::stack::valgrind::ValgrindStackRegistration,
    /// The pool is per thread; stacks must not leave it.
    _not_send: std::marker::PhantomData<*mut ()>,
}

impl Stack {
    /// Takes a stack with `usable` bytes (already rounded) from this thread's
    /// pool.
    #[inline(always)]
    pub(crate) fn new(usable: usize) -> io::Result<Stack> {
        overflow::ensure_handler();
        let slot = match local().last.take() {
            Some(slot) if slot.usable() == usable => slot,
            other => Stack::from_pool(usable, other)?,
        };
        Ok(Stack {
            #[cfg(feature = "valgrind")]
            _valgrind: corosensei::stack::valgrind::ValgrindStackRegistration::new(
                std::ptr::without_provenance_mut(slot.top - slot.usable()),
                slot.usable(),
            ),
            slot,
            _not_send: std::marker::PhantomData,
        })
    }

    #[inline(never)]
    fn from_pool(usable: usize, last: Option<pool::Slot>) -> io::Result<pool::Slot> {
        POOL.with(|p| {
            let mut pool = p.borrow_mut();
            if let Some(slot) = last {
                pool.release(&slot);
            }
            pool.acquire(usable)
        })
    }

    /// The guard region under this stack, as `(start, end)` addresses.
    pub(crate) fn guard_range(&self) -> (usize, usize) {
        (self.slot.base, self.slot.base + pool::GUARD_PAGES * sys::page_size())
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        // The previous `last` goes back to the pool, which keeps room for the
        // one set aside within its idle limit. At thread exit the pool may be
        // gone; the memory is then left mapped, which is always safe.
        let local = local();
        if !local.last_allowed.get() {
            let _ = POOL.try_with(|p| p.borrow_mut().release(&self.slot));
        } else if let Some(previous) = local.last.replace(Some(self.slot)) {
            let _ = POOL.try_with(|p| p.borrow_mut().release_with_one_aside(&previous));
        }
    }
}

// SAFETY: by the type's invariant the region between `limit` and `base` is a
// guard region followed by usable memory of at least MIN_SIZE bytes (sizes are
// rounded up by `round_size`); both addresses are page aligned, which satisfies
// STACK_ALIGNMENT.
unsafe impl corosensei::stack::Stack for Stack {
    #[inline]
    fn base(&self) -> StackPointer {
        StackPointer::new(self.slot.top).expect("stack top is never null")
    }

    #[inline]
    fn limit(&self) -> StackPointer {
        StackPointer::new(self.slot.base).expect("stack base is never null")
    }
}

/// Builds the error for a stack that could not be had, naming the likely
/// cause.
pub(crate) fn describe_failure(usable: usize, err: &io::Error) -> String {
    let mut msg = format!("could not allocate a {} KiB greenlet stack: {err}", usable / 1024);
    if err.raw_os_error() == Some(libc::ENOMEM) {
        let stats = stats();
        msg.push_str(&format!(
            " ({} stacks in use on this thread, {} MiB of address space reserved for stacks). \
             The process is out of memory or address space (check `ulimit -v`), or out of memory \
             mappings",
            stats.in_use,
            stats.reserved_bytes >> 20,
        ));
        match sys::max_map_count() {
            Some(n) => {
                msg.push_str(&format!(" (vm.max_map_count is {n}; raise it with `sysctl vm.max_map_count=...`)"))
            }
            None => msg.push_str(" (see vm.max_map_count)"),
        }
    }
    msg
}
