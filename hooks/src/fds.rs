//! What the hooks know about each descriptor number of the process: one
//! atomic word per number, shared by all threads.
//!
//! The low byte holds flags, the rest a generation, bumped whenever the
//! number is closed or handed out anew (by `accept`, `pipe`, `dup`...), so
//! that a hub's registration made for an earlier descriptor of the same
//! number is recognised as stale. A word of zero flags means "not looked at
//! yet": on a plain thread the call simply goes to libc; in a greenlet the
//! descriptor is classified first (see `coop::classify`).

use std::os::fd::RawFd;
use std::sync::atomic::{AtomicU32, Ordering};

/// Descriptor numbers tracked: Linux's default ceiling (`fs.nr_open`).
/// Higher numbers pass through to libc untouched.
const TRACKED: usize = 1 << 20;

static TABLE: [AtomicU32; TRACKED] = [const { AtomicU32::new(0) }; TRACKED];

/// Classified: the other flags say what it is.
pub(crate) const KNOWN: u32 = 1;
/// A blocking socket that cooperates per call, without a change of mode:
/// `MSG_DONTWAIT` on each call, or readiness first for `accept`.
pub(crate) const DONTWAIT: u32 = 1 << 1;
/// The hooks put it in non-blocking mode while its user wants it blocking
/// (a listener or a pipe this process made): calls on it cooperate in a
/// greenlet and are emulated elsewhere.
pub(crate) const OURS: u32 = 1 << 2;
/// Its user put it in non-blocking mode: calls pass through.
pub(crate) const USER_NB: u32 = 1 << 3;
/// A byte stream (a stream socket or a pipe): a short read means drained.
pub(crate) const STREAM: u32 = 1 << 4;
/// Made by this process through the hooks (`socket`, `socketpair`,
/// `accept`, `pipe`) and not handed to another process since: the hooks may
/// change its mode.
pub(crate) const OWN: u32 = 1 << 5;
/// `SO_RCVTIMEO` is set.
pub(crate) const RCVTIMEO: u32 = 1 << 6;
/// `SO_SNDTIMEO` is set.
pub(crate) const SNDTIMEO: u32 = 1 << 7;

const FLAGS: u32 = 0xff;
const GEN_ONE: u32 = 1 << 8;

/// A snapshot of one descriptor's word.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Entry(pub(crate) u32);

impl Entry {
    #[inline]
    pub(crate) fn has(self, flag: u32) -> bool {
        self.0 & flag != 0
    }

    pub(crate) fn generation(self) -> u32 {
        self.0 >> 8
    }

    pub(crate) fn flags(self) -> u32 {
        self.0 & FLAGS
    }
}

fn slot(fd: RawFd) -> Option<&'static AtomicU32> {
    TABLE.get(usize::try_from(fd).ok()?)
}

/// The word of `fd` (zero for untracked numbers).
#[inline]
pub(crate) fn get(fd: RawFd) -> Entry {
    slot(fd).map_or(Entry(0), |slot| Entry(slot.load(Ordering::Acquire)))
}

/// Replaces the flags of `fd` if its word is still `seen`; returns the word
/// it has now.
pub(crate) fn replace(fd: RawFd, seen: Entry, flags: u32) -> Entry {
    let Some(slot) = slot(fd) else { return Entry(0) };
    let new = (seen.0 & !FLAGS) | (flags & FLAGS);
    match slot.compare_exchange(seen.0, new, Ordering::AcqRel, Ordering::Acquire) {
        Ok(_) => Entry(new),
        Err(now) => Entry(now),
    }
}

/// Sets and clears flags of `fd`, keeping its generation.
pub(crate) fn update(fd: RawFd, set: u32, clear: u32) {
    if let Some(slot) = slot(fd) {
        let _ = slot.fetch_update(Ordering::AcqRel, Ordering::Acquire, |word| Some((word & !clear) | set));
    }
}

/// `fd` was closed (or is about to be): a new generation, no flags.
pub(crate) fn closed(fd: RawFd) {
    fresh(fd, 0);
}

/// `fd` is a new descriptor with `flags`: a new generation.
pub(crate) fn fresh(fd: RawFd, flags: u32) {
    if let Some(slot) = slot(fd) {
        let _ = slot.fetch_update(Ordering::AcqRel, Ordering::Acquire, |word| {
            Some(((word & !FLAGS).wrapping_add(GEN_ONE)) | (flags & FLAGS))
        });
    }
}

/// `new` is a duplicate of `old` (same open file description, so the same
/// mode): a new generation with `old`'s flags.
pub(crate) fn duplicated(old: RawFd, new: RawFd) {
    fresh(new, get(old).flags());
}
