//! [`OutcomeSlot`]: a greenlet's result, written once by the greenlet and
//! taken once by its [`JoinHandle`](crate::JoinHandle), without a lock.
//!
//! A spawn and join on one hub is among the commonest things a program does;
//! a mutex around the result cost two lock round trips of it. The slot needs
//! none: a state word says who may touch the value, and each step moves it
//! forward once.

#![allow(unsafe_code)]

use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicU8, Ordering};

/// No value yet.
const EMPTY: u8 = 0;
/// `put` is writing the value.
const WRITING: u8 = 1;
/// The value is there.
const FULL: u8 = 2;
/// `take` has moved it out (or is reading it).
const TAKEN: u8 = 3;

/// A value put once and taken at most once, from any threads.
pub(crate) struct OutcomeSlot<T> {
    state: AtomicU8,
    value: UnsafeCell<Option<T>>,
}

// SAFETY: the value moves from the thread that puts it to the thread that
// takes it, so `T: Send` is needed and enough. Shared access never touches the
// value concurrently: `put` writes it only after winning EMPTY -> WRITING (no
// one else may touch it before FULL), `take` reads it only after winning
// FULL -> TAKEN (once, or for the length of a `peek`).
unsafe impl<T: Send> Sync for OutcomeSlot<T> {}

impl<T> OutcomeSlot<T> {
    pub(crate) const fn new() -> OutcomeSlot<T> {
        OutcomeSlot { state: AtomicU8::new(EMPTY), value: UnsafeCell::new(None) }
    }

    /// Stores `value` unless one was stored already; returns whether it was
    /// stored (a value refused is dropped by the caller).
    pub(crate) fn put(&self, value: T) -> Result<(), T> {
        if self.state.compare_exchange(EMPTY, WRITING, Ordering::Acquire, Ordering::Relaxed).is_err() {
            return Err(value);
        }
        // SAFETY: winning EMPTY -> WRITING gives this call sole access to the
        // value until it publishes FULL below: `take` waits for FULL, and no
        // other `put` can win the exchange.
        unsafe { *self.value.get() = Some(value) };
        // SeqCst: the joiners' "register, then look" (see `JoinShared`) pairs
        // with "publish, then look for registered waiters".
        self.state.store(FULL, Ordering::SeqCst);
        Ok(())
    }

    /// Whether a value was stored (taken or not).
    pub(crate) fn is_set(&self) -> bool {
        self.state.load(Ordering::SeqCst) >= FULL
    }

    /// Moves the stored value out, once; `None` if there is none yet or it
    /// was taken.
    pub(crate) fn take(&self) -> Option<T> {
        if self.state.compare_exchange(FULL, TAKEN, Ordering::Acquire, Ordering::Relaxed).is_err() {
            return None;
        }
        // SAFETY: winning FULL -> TAKEN (possible once) gives this call sole
        // access: `put` finished writing before publishing FULL (the Acquire
        // above sees its write), and nothing else reads or writes the value
        // in state TAKEN.
        unsafe { (*self.value.get()).take() }
    }

    /// Looks at the stored value, if there is one and it was not taken. A
    /// `take` racing with it finds nothing (the owner of a join handle is the
    /// only one who takes, and it does not race with itself).
    pub(crate) fn peek<R>(&self, f: impl FnOnce(&T) -> R) -> Option<R> {
        if self.state.compare_exchange(FULL, TAKEN, Ordering::Acquire, Ordering::Relaxed).is_err() {
            return None;
        }
        // SAFETY: as in `take`, winning FULL -> TAKEN gives sole access until
        // FULL is stored again below; the value is only borrowed.
        let result = unsafe { (*self.value.get()).as_ref().map(f) };
        self.state.store(FULL, Ordering::Release);
        result
    }

    /// Empties the slot for reuse (exclusive access); drops a value nobody
    /// took.
    pub(crate) fn reset(&mut self) {
        *self.value.get_mut() = None;
        *self.state.get_mut() = EMPTY;
    }
}

#[cfg(test)]
mod tests {
    use super::OutcomeSlot;
    use std::sync::Arc;

    #[test]
    fn a_value_is_put_once_and_taken_once() {
        let slot = OutcomeSlot::new();
        assert!(!slot.is_set());
        assert_eq!(slot.take(), None);
        assert_eq!(slot.put(1), Ok(()));
        assert_eq!(slot.put(2), Err(2));
        assert!(slot.is_set());
        assert_eq!(slot.take(), Some(1));
        assert_eq!(slot.take(), None);
        assert!(slot.is_set());
    }

    #[test]
    fn reset_drops_an_untaken_value_and_empties_the_slot() {
        let value = Arc::new(());
        let mut slot = OutcomeSlot::new();
        slot.put(value.clone()).expect("empty");
        assert_eq!(slot.peek(Arc::strong_count), Some(2));
        slot.reset();
        assert_eq!(Arc::strong_count(&value), 1);
        assert!(!slot.is_set());
        slot.put(value).expect("empty again");
    }

    #[test]
    fn racing_threads_take_the_value_exactly_once() {
        for _ in 0..200 {
            let slot = Arc::new(OutcomeSlot::new());
            let takers: Vec<_> = (0..3)
                .map(|_| {
                    let slot = slot.clone();
                    std::thread::spawn(move || {
                        loop {
                            let was_set = slot.is_set();
                            if let Some(v) = slot.take() {
                                return Some(v);
                            }
                            if was_set {
                                return None; // another thread took it
                            }
                            std::hint::spin_loop();
                        }
                    })
                })
                .collect();
            slot.put(String::from("done")).expect("empty");
            let taken: Vec<String> = takers.into_iter().filter_map(|t| t.join().expect("taker")).collect();
            assert_eq!(taken, vec![String::from("done")]);
        }
    }
}
