//! A lock for a few instructions that never waits in `futex(2)`: the futex
//! table's buckets. A std `Mutex` there could wait in the very futex the
//! hooks interpose; this one spins, then yields the thread (its holder was
//! preempted), and is released with a plain store, not a read-modify-write,
//! which is what a std `Mutex` release costs on the futex hooks' hot path.

use std::cell::UnsafeCell;
use std::hint;
use std::sync::atomic::{AtomicBool, Ordering};

/// See the module docs. `f` in [`with`](SpinLock::with) must not panic or
/// take the same lock.
pub(crate) struct SpinLock<T> {
    locked: AtomicBool,
    value: UnsafeCell<T>,
}

// SAFETY: the value is only reached through `with`, by one thread at a time
// (the one that set `locked`), so sharing the lock only ever sends the value
// between threads, which `T: Send` allows.
unsafe impl<T: Send> Sync for SpinLock<T> {}

impl<T> SpinLock<T> {
    pub(crate) const fn new(value: T) -> SpinLock<T> {
        SpinLock { locked: AtomicBool::new(false), value: UnsafeCell::new(value) }
    }

    /// Runs `f` on the value while holding the lock.
    #[inline]
    pub(crate) fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        if self.locked.compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed).is_err() {
            self.lock_contended();
        }
        // Released when dropped, also if `f` unwinds (which it must not, but
        // a poisoned-forever lock would hang every futex call of the process).
        let _unlock = Unlock(&self.locked);
        // SAFETY: `locked` was set by this thread above, so no other
        // reference to the value exists until `_unlock` clears it, after `f`.
        f(unsafe { &mut *self.value.get() })
    }

    /// In a forked child (whose only thread is the forking one): the lock
    /// released and the value replaced by `value`, whatever state the fork
    /// left them in (a thread of the parent may have held the lock, in the
    /// middle of changing the value). The old value is forgotten, not
    /// dropped: it may be half changed.
    ///
    /// # Safety
    ///
    /// No other thread may use the lock meanwhile: call it only in a child's
    /// `pthread_atfork` handler, before anything else runs there.
    pub(crate) unsafe fn reset_in_child(&self, value: T) {
        // SAFETY: the caller's contract: no other thread exists, and the
        // forking one was not inside `with` (fork is not called there), so
        // nothing refers to the value; `write` does not drop the old one.
        unsafe { self.value.get().write(value) };
        self.locked.store(false, Ordering::Relaxed);
    }

    #[cold]
    fn lock_contended(&self) {
        let mut spins = 0u32;
        loop {
            while self.locked.load(Ordering::Relaxed) {
                spins += 1;
                if spins < 64 {
                    hint::spin_loop();
                } else {
                    // The holder was preempted: let it run.
                    std::thread::yield_now();
                }
            }
            if self.locked.compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed).is_ok() {
                return;
            }
        }
    }
}

struct Unlock<'a>(&'a AtomicBool);

impl Drop for Unlock<'_> {
    #[inline]
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::SpinLock;

    #[test]
    fn threads_taking_turns_lose_no_update() {
        let lock = SpinLock::new(0u64);
        std::thread::scope(|scope| {
            for _ in 0..4 {
                scope.spawn(|| {
                    for _ in 0..100_000 {
                        lock.with(|n| *n += 1);
                    }
                });
            }
        });
        assert_eq!(lock.with(|n| *n), 400_000);
    }
}
