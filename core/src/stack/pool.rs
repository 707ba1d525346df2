//! The per-thread stack pool.
//!
//! Stacks are carved out of large reservations ("chunks"), one size class per
//! distinct stack size. A chunk is one `mmap`; each slot in it is a guard
//! region followed by the usable stack:
//!
//! ```text
//!  chunk base                                                    chunk end
//!  | guard | usable stack ^ | guard | usable stack ^ | ... | guard | usable ^ |
//!  ^ slot base     top ---^
//! ```
//!
//! Where the kernel takes many guards per call, a chunk installs its slots'
//! guards ahead of use, more at a time the more slots it has handed out (see
//! [`sys::install_guards`]).
//!
//! Stacks grow down from the top of their slot towards the guard. Released
//! stacks go to a "warm" list and are reused last-in first-out, so the pages a
//! greenlet touched are reused while still resident; a long warm list is
//! sorted by address now and then, so that a burst of greenlets gets
//! neighbouring stacks rather than ones scattered in the order the previous
//! burst finished. By default the pool
//! keeps as many warm stacks as the recent peak of stacks in use needs, and at
//! least 256 (once a limit is set explicitly, exactly up to it); beyond that, the oldest warm stacks (or after a sort, the highest) have their memory discarded
//! (`MADV_DONTNEED`, one call per run of adjacent slots) and move to the
//! "cold" list; their address range and guard stay, so reusing one costs page
//! faults but no system call. The recent peak decays: it covers the current
//! and the previous [`DECAY_WINDOW`], so a program whose load drops gives the
//! memory back a second or two later, while a program that keeps spawning
//! bursts of greenlets does not pay for discarding and faulting in stacks over
//! and over. [`Pool::trim`] unmaps whole chunks that hold no live stack.

use std::collections::VecDeque;
use std::io;
use std::time::{Duration, Instant};

use super::sys;

/// Slots in the first chunk of a size class; each new chunk doubles this, up
/// to [`MAX_CHUNK_SLOTS`]. Small programs then reserve little address space,
/// and a million stacks still take only a few hundred mappings.
const FIRST_CHUNK_SLOTS: usize = 16;
const MAX_CHUNK_SLOTS: usize = 4096;

/// Guard pages under every stack. Guards cost no memory (and, with
/// `MADV_GUARD_INSTALL`, no mapping), so a few pages are used to also catch
/// frames that skip past the first one.
pub(crate) const GUARD_PAGES: usize = 4;

/// Bounds on how many slots' guards a chunk installs at once, ahead of use.
const GUARD_AHEAD_MIN: usize = 8;
const GUARD_AHEAD_MAX: usize = 512;

/// Warm lists shorter than this are left in last-in first-out order, which
/// keeps the stacks most likely still in the caches first; longer ones are
/// sorted by address once half of them came back since the last sort
/// (see [`Pool::sort_warm`]).
const SORT_MIN: usize = 1024;

/// Default number of idle stacks per size class kept resident.
pub(crate) const DEFAULT_IDLE_LIMIT: usize = 256;

/// How long a peak of stacks in use keeps its idle stacks resident.
pub(crate) const DECAY_WINDOW: Duration = Duration::from_secs(1);

/// Releases between two looks at the clock for the decay.
const RELEASES_PER_CLOCK_CHECK: u32 = 1024;

/// A stack handed out by the pool.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Slot {
    /// Lowest address of the slot: the start of the guard region.
    pub(crate) base: usize,
    /// One past the highest usable address: where the stack starts.
    pub(crate) top: usize,
    /// Index of the size class in the pool.
    pub(crate) class: u32,
    /// Index of the chunk within the size class.
    pub(crate) chunk: u32,
}

impl Slot {
    /// Usable bytes.
    pub(crate) fn usable(&self) -> usize {
        self.top - self.base - GUARD_PAGES * sys::page_size()
    }
}

#[derive(Debug)]
struct Chunk {
    base: usize,
    len: usize,
    slots: usize,
    /// Slots of this chunk currently handed out.
    in_use: usize,
    /// Slots from the start handed out at least once.
    carved: usize,
    /// Slots from the start whose guard is installed (at least `carved`):
    /// guards are made ahead, many per system call.
    guarded: usize,
}

#[derive(Clone, Copy, Debug)]
struct Idle {
    base: usize,
    chunk: u32,
}

#[derive(Debug)]
struct SizeClass {
    /// Usable bytes of each stack.
    usable: usize,
    /// Guard plus usable bytes.
    slot_len: usize,
    /// `None` marks a chunk that [`Pool::trim`] unmapped.
    chunks: Vec<Option<Chunk>>,
    /// Idle stacks whose memory is (probably) resident, oldest first.
    warm: VecDeque<Idle>,
    /// Idle stacks whose memory was handed back to the kernel.
    cold: Vec<Idle>,
    /// The chunk new slots are carved from, if it has room.
    carving: Option<u32>,
    next_chunk_slots: usize,
    /// Stacks of this class handed out.
    in_use: usize,
    /// Most stacks in use at once in the current decay window, and in the
    /// previous one.
    peak: usize,
    previous_peak: usize,
    /// Warm stacks released since the warm list was last sorted.
    unsorted: usize,
}

impl SizeClass {
    /// Idle stacks to keep resident: `limit`, or if `adaptive`, enough to get
    /// back to the recent peak and at least `limit`.
    fn allowance(&self, limit: usize, adaptive: bool) -> usize {
        if adaptive { limit.max(self.peak.max(self.previous_peak).saturating_sub(self.in_use)) } else { limit }
    }
}

/// The error for a stack size whose slot the pool cannot represent (sizes
/// are checked when greenlets are built, so this is a second line of defence).
fn too_large(usable: usize) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, format!("stack size {usable} is too large"))
}

/// Makes sure `list` can hold `total` entries without allocating later.
fn reserve_total<L: Reservable>(list: &mut L, total: usize) -> io::Result<()> {
    list.reserve_total(total).map_err(|err| io::Error::new(io::ErrorKind::OutOfMemory, err))
}

trait Reservable {
    fn reserve_total(&mut self, total: usize) -> Result<(), std::collections::TryReserveError>;
}

impl<T> Reservable for Vec<T> {
    fn reserve_total(&mut self, total: usize) -> Result<(), std::collections::TryReserveError> {
        self.try_reserve(total.saturating_sub(self.len()))
    }
}

impl<T> Reservable for VecDeque<T> {
    fn reserve_total(&mut self, total: usize) -> Result<(), std::collections::TryReserveError> {
        self.try_reserve(total.saturating_sub(self.len()))
    }
}

/// Counters describing one thread's stacks; see [`crate::stack::stats`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Stacks owned by greenlets: started and unfinished ones, and those
    /// that kept theirs for a revive (see `Greenlet::revive`).
    pub in_use: usize,
    /// Idle stacks kept resident for reuse.
    pub idle_warm: usize,
    /// Idle stacks whose memory was given back to the kernel.
    pub idle_cold: usize,
    /// Reservations (memory mappings, unless guards use `mprotect`).
    pub chunks: usize,
    /// Bytes of address space reserved for stacks.
    pub reserved_bytes: usize,
}

/// One thread's stacks.
#[derive(Debug)]
pub(crate) struct Pool {
    classes: Vec<SizeClass>,
    idle_limit: usize,
    /// Whether idle stacks are also kept up to the recent peak (the default),
    /// rather than strictly up to `idle_limit` (once one is set).
    adaptive: bool,
    /// When the current decay window started (`None` before the first stack).
    window_start: Option<Instant>,
    releases: u32,
}

impl Pool {
    pub(crate) const fn new() -> Pool {
        Pool { classes: Vec::new(), idle_limit: DEFAULT_IDLE_LIMIT, adaptive: true, window_start: None, releases: 0 }
    }

    /// Keeps at most `limit` idle stacks per class from now on; the surplus
    /// goes back at once.
    pub(crate) fn set_idle_limit(&mut self, limit: usize) {
        self.idle_limit = limit;
        self.adaptive = false;
        for class in &mut self.classes {
            Self::cool_down(class, limit);
        }
    }

    /// Starts a new decay window if the current one is over, and discards what
    /// the classes no longer need.
    pub(crate) fn maintain(&mut self, now: Instant) {
        let start = *self.window_start.get_or_insert(now);
        if now.duration_since(start) < DECAY_WINDOW {
            return;
        }
        self.window_start = Some(now);
        for class in &mut self.classes {
            class.previous_peak = class.peak;
            class.peak = class.in_use;
            let allowance = class.allowance(self.idle_limit, self.adaptive);
            Self::cool_down(class, allowance);
        }
    }

    /// Hands out a stack with `usable` bytes (a multiple of the page size).
    pub(crate) fn acquire(&mut self, usable: usize) -> io::Result<Slot> {
        let class_index = match self.classes.iter().position(|c| c.usable == usable) {
            Some(i) => i,
            None => {
                let slot_len = usable
                    .checked_add(GUARD_PAGES * sys::page_size())
                    .filter(|&len| len <= super::MAX_SLOT)
                    .ok_or_else(|| too_large(usable))?;
                self.classes.push(SizeClass {
                    usable,
                    slot_len,
                    chunks: Vec::new(),
                    warm: VecDeque::new(),
                    cold: Vec::new(),
                    carving: None,
                    next_chunk_slots: FIRST_CHUNK_SLOTS,
                    in_use: 0,
                    peak: 0,
                    previous_peak: 0,
                    unsorted: 0,
                });
                self.classes.len() - 1
            }
        };
        let class = &mut self.classes[class_index];
        if class.warm.len() >= SORT_MIN && class.unsorted >= class.warm.len() / 2 {
            Self::sort_warm(class);
        }
        let idle = match class.warm.pop_back().or_else(|| class.cold.pop()) {
            Some(idle) => idle,
            None => Self::carve(class)?,
        };
        let chunk = class.chunks[idle.chunk as usize].as_mut().expect("idle slot in an unmapped chunk");
        chunk.in_use += 1;
        class.in_use += 1;
        class.peak = class.peak.max(class.in_use);
        Ok(Slot { base: idle.base, top: idle.base + class.slot_len, class: class_index as u32, chunk: idle.chunk })
    }

    /// Orders the warm list by address, the lowest last (taken first).
    ///
    /// A burst of greenlets finishes in whatever order their work ends, and
    /// the warm list takes that order: handed out last-in first-out, it
    /// scatters the next burst's stacks over the whole reservation, and every
    /// switch to one of them misses the processor's caches of page-table
    /// entries. In address order, consecutive greenlets get neighbouring
    /// stacks. The sort costs O(log n) per release; the stacks released since
    /// are still taken first.
    #[cold]
    fn sort_warm(class: &mut SizeClass) {
        class.warm.make_contiguous().sort_unstable_by_key(|idle| std::cmp::Reverse(idle.base));
        class.unsorted = 0;
    }

    /// Takes a never-used slot, reserving a new chunk if needed, and installs
    /// its guard.
    fn carve(class: &mut SizeClass) -> io::Result<Idle> {
        // Room in the idle lists for this slot, reserved now: giving a stack
        // back must never allocate, since it may happen when memory (or the
        // mappings malloc needs) has run out, and allocation failure aborts.
        let carved: usize = class.chunks.iter().flatten().map(|chunk| chunk.carved).sum::<usize>() + 1;
        reserve_total(&mut class.warm, carved)?;
        reserve_total(&mut class.cold, carved)?;
        let chunk_index = match class.carving {
            Some(i) => i,
            None => {
                let i = Self::grow(class)?;
                class.carving = Some(i);
                i
            }
        };
        let chunk = class.chunks[chunk_index as usize].as_mut().expect("carving an unmapped chunk");
        let base = chunk.base + chunk.carved * class.slot_len;
        if chunk.guarded == chunk.carved {
            // Ahead by as many as are guarded already (within bounds), so that
            // a few greenlets cost few guards and many cost few system calls.
            let ahead = chunk.guarded.clamp(GUARD_AHEAD_MIN, GUARD_AHEAD_MAX).min(chunk.slots - chunk.carved);
            // SAFETY: these slots lie inside our reservation and were never
            // handed out.
            chunk.guarded +=
                unsafe { sys::install_guards(base, class.slot_len, ahead, GUARD_PAGES * sys::page_size())? };
        }
        chunk.carved += 1;
        if chunk.carved == chunk.slots {
            class.carving = None;
        }
        Ok(Idle { base, chunk: chunk_index })
    }

    /// Reserves a new chunk, shrinking the request when address space or
    /// mappings are scarce.
    fn grow(class: &mut SizeClass) -> io::Result<u32> {
        let mut slots = class.next_chunk_slots;
        let (base, len) = loop {
            // Huge stacks get fewer slots per chunk rather than a length that
            // wraps around (`slot_len` is at most `MAX_SLOT`, so one fits).
            let attempt = match slots.checked_mul(class.slot_len) {
                Some(len) if len <= isize::MAX as usize => sys::reserve(len).map(|base| (base, len)),
                _ => Err(too_large(class.usable)),
            };
            match attempt {
                Ok(reserved) => break reserved,
                Err(_) if slots > 1 => slots /= 2,
                Err(e) => return Err(e),
            }
        };
        class.next_chunk_slots = (slots * 2).min(MAX_CHUNK_SLOTS);
        let chunk = Chunk { base, len, slots, in_use: 0, carved: 0, guarded: 0 };
        if let Err(err) = class.chunks.try_reserve(1) {
            // SAFETY: just reserved, not handed out.
            unsafe { sys::unreserve(base, len, 0) };
            return Err(io::Error::new(io::ErrorKind::OutOfMemory, err));
        }
        let index = match class.chunks.iter().position(Option::is_none) {
            Some(i) => {
                class.chunks[i] = Some(chunk);
                i
            }
            None => {
                class.chunks.push(Some(chunk));
                class.chunks.len() - 1
            }
        };
        Ok(index as u32)
    }

    /// Takes back a stack from [`Pool::acquire`].
    pub(crate) fn release(&mut self, slot: &Slot) {
        self.release_keeping(slot, self.idle_limit);
    }

    /// Like `release`, while one more idle stack of this thread is kept
    /// outside the pool (counted against the idle limit).
    pub(crate) fn release_with_one_aside(&mut self, slot: &Slot) {
        self.release_keeping(slot, self.idle_limit.saturating_sub(1));
    }

    fn release_keeping(&mut self, slot: &Slot, limit: usize) {
        let class = &mut self.classes[slot.class as usize];
        let chunk = class.chunks[slot.chunk as usize].as_mut().expect("released into an unmapped chunk");
        chunk.in_use -= 1;
        class.in_use -= 1;
        class.warm.push_back(Idle { base: slot.base, chunk: slot.chunk });
        class.unsorted += 1;
        let allowance = class.allowance(limit, self.adaptive);
        if class.warm.len() > allowance {
            Self::cool_down(class, allowance);
        }
        self.releases += 1;
        if self.releases >= RELEASES_PER_CLOCK_CHECK {
            self.releases = 0;
            self.maintain(Instant::now());
        }
    }

    /// Discards the memory of the oldest warm stacks beyond `limit`, with one
    /// system call per run of adjacent slots.
    fn cool_down(class: &mut SizeClass, limit: usize) {
        if class.warm.len() <= limit {
            return;
        }
        let excess = class.warm.len() - limit;
        // Moved to the cold list first (its room is reserved, see `carve`),
        // then sorted there to find runs of adjacent slots.
        let start = class.cold.len();
        class.cold.extend(class.warm.drain(..excess));
        let cooled = &mut class.cold[start..];
        cooled.sort_unstable_by_key(|idle| idle.base);
        let guard = GUARD_PAGES * sys::page_size();
        let mut run_start = 0;
        for i in 1..=cooled.len() {
            let adjacent = i < cooled.len()
                && cooled[i].chunk == cooled[i - 1].chunk
                && cooled[i].base == cooled[i - 1].base + class.slot_len;
            if !adjacent {
                let first = cooled[run_start].base + guard;
                let end = cooled[i - 1].base + class.slot_len;
                // SAFETY: the slots are idle (no greenlet runs on them) and
                // contiguous within one chunk; the guards between them keep
                // their markers (or protection) through a discard.
                unsafe { sys::discard(first, end - first) };
                run_start = i;
            }
        }
    }

    /// Discards every idle stack and unmaps each chunk that holds no live stack.
    pub(crate) fn trim(&mut self) {
        for class in &mut self.classes {
            Self::cool_down(class, 0);
            let chunks = &mut class.chunks;
            let empty = |c: &u32| chunks[*c as usize].as_ref().is_some_and(|chunk| chunk.in_use == 0);
            class.cold.retain(|idle| !empty(&idle.chunk));
            if class.carving.as_ref().is_some_and(empty) {
                class.carving = None;
            }
            for slot in chunks.iter_mut() {
                if slot.as_ref().is_some_and(|c| c.in_use == 0) {
                    let chunk = slot.take().expect("checked above");
                    // SAFETY: no stack of this chunk is in use and its idle
                    // slots were just forgotten.
                    unsafe { sys::unreserve(chunk.base, chunk.len, chunk.guarded) };
                }
            }
            class.next_chunk_slots = FIRST_CHUNK_SLOTS;
        }
    }

    /// Bytes of this pool's stacks resident in memory: `mincore` over the
    /// slots carved so far of each chunk (stacks in use and idle ones alike;
    /// guards and never-used slots hold no memory).
    pub(crate) fn resident_bytes(&self, buf: &mut Vec<u8>) -> usize {
        let mut bytes = 0;
        for class in &self.classes {
            for chunk in class.chunks.iter().flatten() {
                if chunk.carved > 0 {
                    bytes += sys::resident(chunk.base, chunk.carved * class.slot_len, buf);
                }
            }
        }
        bytes
    }

    pub(crate) fn stats(&self) -> Stats {
        let mut stats = Stats::default();
        for class in &self.classes {
            stats.idle_warm += class.warm.len();
            stats.idle_cold += class.cold.len();
            for chunk in class.chunks.iter().flatten() {
                stats.in_use += chunk.in_use;
                stats.chunks += 1;
                stats.reserved_bytes += chunk.len;
            }
        }
        stats
    }
}

impl Drop for Pool {
    /// At thread exit, unmaps the chunks that hold no live stack. Chunks with
    /// stacks of leaked greenlets stay mapped: something may still point there.
    fn drop(&mut self) {
        super::flush_last(self);
        self.trim();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sizes whose slot the pool cannot represent are an error, never a
    /// length that wraps around (release builds do not check overflow).
    #[test]
    fn unrepresentable_stack_sizes_are_errors() {
        let page = sys::page_size();
        let mut pool = Pool::new();
        for usable in [usize::MAX & !(page - 1), crate::stack::MAX_SLOT] {
            let err = pool.acquire(usable).expect_err("no such stack");
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
            assert_eq!(err.to_string(), format!("stack size {usable} is too large"));
        }
        assert_eq!(pool.stats(), Stats::default(), "nothing was reserved");
    }
}
