//! `futex(2)` for greenlets, in safe code: std's locks (`Mutex`, `RwLock`,
//! `Condvar`, `Once`, `Barrier`, `mpsc`, `thread::park`), parking_lot and
//! crossbeam all wait in `FUTEX_WAIT` and wake in `FUTEX_WAKE`, through
//! libc's `syscall`, which `exports` interposes.
//!
//! A greenlet's wait does not reach the kernel: the greenlet puts a waiter
//! in a process-wide table keyed by the futex's address, checks the value
//! (after registering, so a wake between the check and the park is not
//! lost), and parks on its hub until a wake takes the waiter out of the
//! table. A wake takes greenlets out of the table (whatever their hub) and
//! passes the rest of its count on to the kernel, for plain threads. The
//! table is only looked at while some greenlet waits in it: a plain
//! thread's wake with nobody in its bucket pays one fence and one load.
//!
//! A waiter is woken through its `foreign::WakeToken` (plain data: no
//! reference count to take per wait): directly when the wake comes from its
//! own hub's thread, through the hub's remote queue from any other.
//!
//! A futex shared between processes (no `FUTEX_PRIVATE_FLAG`) may be woken
//! by another process, which never sees this table: its waiters also look
//! at the value now and then, and return (a spurious wake-up, which futex
//! callers expect) once it changed.
//!
//! Plain threads wait in the kernel, and every thread's private futex waits
//! pass through here too, so each bucket also counts the threads waiting in
//! the kernel on its words: a private wake that finds none there makes no
//! system call. (std's `Mutex` wakes after every contended hand-off, and its
//! `Condvar` on every notification, whether anybody waits or not.) Once an
//! operation that moves kernel waiters from one word to another, or waits
//! in a way not counted here, goes by (`FUTEX_REQUEUE`, `FUTEX_CMP_REQUEUE`,
//! `FUTEX_WAKE_OP`, the PI ones, `futex_waitv` and the other futex2 calls),
//! the counts no longer tell, and every wake goes to the kernel as well.
//! (A futex wait submitted through io_uring is not seen at all: a program
//! that waits that way on a word that std or parking_lot wakes must not
//! use the hooks.)

use std::ffi::c_int;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering, fence};
use std::time::{Duration, Instant};

use runtime_scheduler::foreign::{Current, Interrupted, WakeToken};

use crate::spin::SpinLock;
use crate::{coop, real};

/// How often a waiter on a process-shared futex looks at its value, at
/// most (it starts at a tenth of this and doubles).
const SHARED_RECHECK: Duration = Duration::from_millis(10);

const BUCKETS: usize = 64;

/// The table: waiters hashed by address into buckets, each behind a lock
/// held for a few instructions.
static TABLE: [Bucket; BUCKETS] = [const { Bucket::new() }; BUCKETS];

/// A greenlet waits in at most one futex at a time, so its token also
/// names its entry.
struct Waiter {
    address: usize,
    bitset: u32,
    /// Wakes the waiter's current park.
    token: WakeToken,
}

/// A bucket's waiters, behind a [`SpinLock`] (never a futex wait), with
/// their number mirrored outside it: zero lets a wake skip the bucket
/// without taking the lock.
struct Bucket {
    waiters: SpinLock<Vec<Waiter>>,
    len: AtomicUsize,
    /// Threads waiting in the kernel on a private futex of the bucket.
    kernel: AtomicUsize,
}

impl Bucket {
    const fn new() -> Bucket {
        Bucket { waiters: SpinLock::new(Vec::new()), len: AtomicUsize::new(0), kernel: AtomicUsize::new(0) }
    }

    /// Runs `f` on the bucket's waiters under its lock. `f` only moves
    /// waiters around (nothing in it can come back here or panic).
    #[inline]
    fn with<R>(&self, f: impl FnOnce(&mut Vec<Waiter>) -> R) -> R {
        self.waiters.with(|waiters| {
            let result = f(waiters);
            // Read by wakes after their fence (see `wake`): a waiter's
            // fence comes after this store.
            self.len.store(waiters.len(), Ordering::Relaxed);
            result
        })
    }

    /// Whether no greenlet waits in the bucket. Only meaningful after a
    /// `SeqCst` fence that follows the store to the futex word.
    #[inline]
    fn is_empty(&self) -> bool {
        self.len.load(Ordering::Relaxed) == 0
    }
}

/// In a forked child's `pthread_atfork` handler: empties the table. Its
/// waiters are greenlets of the parent's hubs, which never run in the child,
/// and the threads it counted in the kernel are the parent's; a bucket that
/// another thread of the parent held at the fork would stay locked for good.
///
/// # Safety
///
/// See [`SpinLock::reset_in_child`]: only in the child, before anything else
/// runs there.
pub(crate) unsafe fn forget_parents_waiters() {
    for bucket in &TABLE {
        // SAFETY: the caller's contract.
        unsafe { bucket.waiters.reset_in_child(Vec::new()) };
        bucket.len.store(0, Ordering::Relaxed);
        bucket.kernel.store(0, Ordering::Relaxed);
    }
}

/// Set for good once an operation that moves kernel waiters between words
/// went by (see the module docs).
static KERNEL_WAITERS_MOVED: AtomicBool = AtomicBool::new(false);

/// Runs `wait`, the kernel's own `FUTEX_WAIT` of a thread on `address`,
/// counted in its bucket if the futex is `private` (see the module docs).
pub(crate) fn kernel_wait<R>(address: usize, private: bool, wait: impl FnOnce() -> R) -> R {
    if !private {
        return wait();
    }
    let bucket = bucket(address);
    bucket.kernel.fetch_add(1, Ordering::SeqCst);
    // Pairs with the fence in `wake`: either that wake sees this count, or
    // the kernel's check of the value (after this) sees the value stored
    // before the wake.
    fence(Ordering::SeqCst);
    let result = wait();
    bucket.kernel.fetch_sub(1, Ordering::Release);
    result
}

/// After the fence in [`wake`]: whether a thread may wait in the kernel on
/// the private futex at `address`, so that the wake must go there too.
fn kernel_may_wait(address: usize) -> bool {
    KERNEL_WAITERS_MOVED.load(Ordering::SeqCst) || bucket(address).kernel.load(Ordering::Relaxed) != 0
}

/// Called before an operation that may move kernel waiters between words
/// goes to the kernel.
pub(crate) fn kernel_waiters_move() {
    KERNEL_WAITERS_MOVED.store(true, Ordering::SeqCst);
}

fn bucket(address: usize) -> &'static Bucket {
    // Futex words are at least 4-byte aligned; mix the higher bits in.
    let hash = (address >> 2).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    &TABLE[hash >> (usize::BITS - BUCKETS.trailing_zeros())]
}

/// The outcome of a wait, as the system call returns it.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Waited {
    /// Woken (or spuriously): 0.
    Woken,
    /// The value was not the expected one: `EAGAIN`.
    Changed,
    /// The deadline passed: `ETIMEDOUT`.
    TimedOut,
    /// A kill or timeout of the greenlet: `EINTR` (std's callers retry).
    Interrupted(Interrupted),
}

/// Takes the waiter of `token`'s greenlet out of `address`'s bucket;
/// whether it was still there (not woken).
fn remove(address: usize, token: &WakeToken) -> bool {
    bucket(address).with(|waiters| match waiters.iter().position(|w| w.token.same_greenlet(token)) {
        Some(i) => {
            waiters.swap_remove(i);
            true
        }
        None => false,
    })
}

/// `FUTEX_WAIT` (`bitset` all ones) or `FUTEX_WAIT_BITSET` in a greenlet, on
/// the word at `address` whose value `load` reads: parks while it is
/// `expected`, until a wake for `address` matching `bitset`, or `deadline`.
#[cfg_attr(not(debug_assertions), inline(always))] // fewer call levels to return through after the switch
pub(crate) fn wait(
    current: &Current,
    address: usize,
    expected: u32,
    bitset: u32,
    shared: bool,
    deadline: Option<Instant>,
    load: impl Fn() -> u32,
) -> Waited {
    // (A pending kill or timeout is reported by the park.)
    let token = current.wake_token();
    bucket(address).with(|waiters| waiters.push(Waiter { address, bitset, token }));
    // Pairs with the fence in `wake`: either that wake sees this waiter (the
    // bucket's length, stored before this fence), or this sees the value
    // stored before the wake.
    fence(Ordering::SeqCst);
    let outcome = if load() != expected {
        Waited::Changed
    } else {
        match park(current, address, &token, expected, shared, deadline, &load) {
            // A wake took it out: nothing to remove.
            None => return Waited::Woken,
            Some(outcome) => outcome,
        }
    };
    if remove(address, &token) {
        outcome
    } else {
        // A wake took it out: it counts as woken, whatever else happened.
        Waited::Woken
    }
}

/// What `std::thread::park` waits for (its parker's `PARKED` state, which
/// no lock uses): a wait for it that lasts is worth a warning (see `park`).
const THREAD_PARKED: u32 = u32::MAX;

/// How long a greenlet waits in `std::thread::park` before the warning.
const PARK_WARNING_AFTER: Duration = Duration::from_secs(2);

static PARK_WARNED: AtomicBool = AtomicBool::new(false);

/// Parks until a wake takes the waiter of `token`'s greenlet out of the
/// table (`None`), or
/// `deadline`; a waiter on a shared futex also returns once the value
/// changed. `Some`: the waiter may still be in the table.
#[cfg_attr(not(debug_assertions), inline(always))]
fn park(
    current: &Current,
    address: usize,
    token: &WakeToken,
    expected: u32,
    shared: bool,
    deadline: Option<Instant>,
    load: &impl Fn() -> u32,
) -> Option<Waited> {
    let mut recheck = SHARED_RECHECK / 10;
    let mut warn_at = (expected == THREAD_PARKED && !PARK_WARNED.load(Ordering::Relaxed))
        .then(|| Instant::now() + PARK_WARNING_AFTER);
    loop {
        let mut until = deadline;
        if shared {
            let next = Instant::now() + recheck;
            recheck = (recheck * 2).min(SHARED_RECHECK);
            until = Some(until.map_or(next, |until| until.min(next)));
        }
        if let Some(warn_at) = warn_at {
            until = Some(until.map_or(warn_at, |until| until.min(warn_at)));
        }
        if let Err(interrupted) = current.park_for_token("futex", until) {
            return Some(Waited::Interrupted(interrupted));
        }
        // Still in the table: the next park gets the wake-ups (a wake that
        // took it out meanwhile woke the park that just ended).
        if !rearm(address, token, current) {
            return None;
        }
        let now = Instant::now();
        if deadline.is_some_and(|deadline| now >= deadline) {
            return Some(Waited::TimedOut);
        }
        if warn_at.is_some_and(|warn_at| now >= warn_at) {
            warn_at = None;
            if !PARK_WARNED.swap(true, Ordering::Relaxed) {
                real::write_stderr(PARK_WARNING);
            }
        }
        if shared && load() != expected {
            return Some(Waited::Woken);
        }
    }
}

const PARK_WARNING: &[u8] = b"runtime hooks: warning: a greenlet has waited in std::thread::park for 2 s. If it waits \
on a std::sync::mpsc (or crossbeam-channel) channel for another greenlet of the same thread (to make room in a full \
channel, or at a rendezvous), it will never wake: those channels wake such waiters only from other threads; and two \
greenlets of one thread in thread::park at once share its one parker. Use runtime::sync::channel between greenlets.\n";

/// Gives the waiter of `token`'s greenlet (if still in `address`'s bucket)
/// a token for `current`'s next park; whether it was still there.
fn rearm(address: usize, token: &WakeToken, current: &Current) -> bool {
    let bucket = bucket(address);
    // Only a wake takes the waiter out, before it wakes the park (which
    // orders its store of the length before this load); and no other thread
    // can make the length zero while the waiter is still in: an empty
    // bucket needs no lock.
    if bucket.is_empty() {
        return false;
    }
    bucket.with(|waiters| match waiters.iter_mut().find(|w| w.token.same_greenlet(token)) {
        Some(waiter) => {
            waiter.token = current.wake_token();
            true
        }
        None => false,
    })
}

/// What a [`wake`] did, and what is left for the kernel.
pub(crate) struct Woke {
    /// Greenlets woken.
    pub(crate) greenlets: c_int,
    /// Whether one of them belongs to this thread's hub (then see
    /// [`hand_off`], once the caller has woken the rest).
    pub(crate) local: bool,
    /// Whether the rest of the count must go to the kernel: a thread may
    /// wait there (or the futex is shared, or the counts no longer tell).
    pub(crate) kernel: bool,
}

/// `FUTEX_WAKE` (`bitset` all ones) or `FUTEX_WAKE_BITSET` of at most
/// `count` waiters on `address`: the greenlets among them are woken here,
/// and the result says whether the kernel must be asked for the rest.
/// Cheap when no greenlet waits in its bucket.
#[inline]
pub(crate) fn wake(address: usize, count: c_int, bitset: u32, private: bool) -> Woke {
    // Pairs with the fences in `wait` and `kernel_wait`: the caller stored
    // the new value before this call.
    fence(Ordering::SeqCst);
    if count <= 0 {
        return Woke { greenlets: 0, local: false, kernel: true };
    }
    let (greenlets, local) =
        if bucket(address).is_empty() { (0, false) } else { wake_slow(address, count as usize, bitset) };
    let kernel = greenlets < count && (!private || kernel_may_wait(address));
    Woke { greenlets, local, kernel }
}

/// Wakes up to `count` waiters on `address`; the number woken, and whether
/// one of them belongs to this thread's hub.
#[cold]
fn wake_slow(address: usize, count: usize, bitset: u32) -> (c_int, bool) {
    // The first one apart: most wakes wake one, without an allocation.
    let (mut first, mut rest): (Option<WakeToken>, Vec<WakeToken>) = (None, Vec::new());
    let here = runtime_scheduler::foreign::hub_id();
    let mut local = false;
    let mut woken = 0;
    bucket(address).with(|waiters| {
        let mut i = 0;
        while i < waiters.len() && woken < count {
            if waiters[i].address == address && waiters[i].bitset & bitset != 0 {
                let waiter = waiters.swap_remove(i);
                local |= Some(waiter.token.hub_id()) == here;
                match first {
                    None => first = Some(waiter.token),
                    Some(_) => rest.push(waiter.token),
                }
                woken += 1;
            } else {
                i += 1;
            }
        }
    });
    // Woken once the lock is released (another hub's through its queue).
    for token in first.into_iter().chain(rest) {
        token.wake();
    }
    (woken as c_int, local)
}

/// After a wake that woke a greenlet of this thread's hub: if the word
/// (which `load` reads, before any switch) is zero now, as it is once a std `Mutex` or
/// `RwLock` is released (or parking_lot unparks a thread), the greenlet
/// that released it lets the woken ones run before it goes on.
///
/// Otherwise it would take the lock back at its next `lock`, before the
/// woken greenlet ever runs (which then finds it taken again), and a std
/// `Mutex` found taken spins a while before it waits, which on one thread
/// only delays the holder. Handed the thread, the woken greenlet finds the
/// lock free; the releasing one, coming back for it, finds it contended and
/// waits without spinning. (A `Condvar`'s notification leaves its counter
/// non-zero: the notified greenlet would find the mutex still held.)
///
/// Not in the hub's loop, nor while the thread panics or runs the panic
/// hook (see `coop::context`), where nothing may park.
#[cfg_attr(not(debug_assertions), inline(always))]
pub(crate) fn hand_off(load: impl FnOnce() -> u32) {
    if load() != 0 {
        return;
    }
    let Some(current) = coop::context().filter(|_| !std::thread::panicking()) else { return };
    // A kill or timeout pending (or arriving meanwhile) is reported here,
    // where a wake has no error to return: it is raised at the greenlet's
    // next park outside the hooks, or fails its hooked waits once the grace
    // is over.
    let _ = current.yield_now();
}

/// Wakes every greenlet waiting on `address` (for the operations this
/// module does not emulate, `FUTEX_REQUEUE`, `FUTEX_WAKE_OP`...: an extra
/// wake-up is allowed, a missed one is not).
pub(crate) fn wake_all(address: usize) {
    fence(Ordering::SeqCst);
    if !bucket(address).is_empty() {
        let _ = wake_slow(address, usize::MAX, u32::MAX);
    }
}

/// The deadline of a futex timeout: relative (`FUTEX_WAIT`), or absolute on
/// `CLOCK_MONOTONIC` or, with `realtime`, `CLOCK_REALTIME`
/// (`FUTEX_WAIT_BITSET`).
pub(crate) fn deadline_of(timeout: Duration, absolute: bool, realtime: bool) -> Instant {
    let now = Instant::now();
    if !absolute {
        return now + timeout;
    }
    let clock = if realtime { libc::CLOCK_REALTIME } else { libc::CLOCK_MONOTONIC };
    now + timeout.saturating_sub(real::clock_now(clock))
}
