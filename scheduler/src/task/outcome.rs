//! [`OutcomeSlot`]: a greenlet's result, written once by its hub and taken
//! once by its [`JoinHandle`](crate::JoinHandle), without a lock.
//!
//! A spawn and join on one hub is among the commonest things a program does,
//! so the slot costs one atomic read-modify-write on each side. One state
//! word holds three flags: the value is there (`FULL`), somebody waits for it
//! (`WAITED`), it was taken (`TAKEN`). Setting `FULL` and setting `WAITED`
//! are read-modify-writes of that one word, so whichever comes second sees
//! the other: the putter learns it must wake the waiters, or the waiter
//! learns it need not wait.

#![allow(unsafe_code)]

use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicU8, Ordering};

use crate::hub;

/// The value is there (taken or not).
const FULL: u8 = 1;
/// Somebody registered to be woken when it comes.
const WAITED: u8 = 2;
/// `take` moved it out (or `peek` is reading it).
const TAKEN: u8 = 4;

/// A value put once by the thread of one hub and taken at most once, from
/// any thread.
pub(crate) struct OutcomeSlot<T> {
    state: AtomicU8,
    /// The hub (its reactor id) whose thread alone may `put`.
    writer: u64,
    value: UnsafeCell<Option<T>>,
}

// SAFETY: the value moves from the thread that puts it to the thread that
// takes it, so `T: Send` is needed and enough. Shared access never touches the
// value concurrently: `put` writes it only on the writer hub's thread (one
// thread, checked on every call) and only before it sets FULL, which no one
// else sets; `take` and `peek` read it only after seeing FULL (with Acquire,
// so after the write) and after winning the one TAKEN flag.
unsafe impl<T: Send> Sync for OutcomeSlot<T> {}

impl<T> OutcomeSlot<T> {
    /// An empty slot that only the thread running the hub with reactor id
    /// `writer` may fill.
    pub(crate) const fn new(writer: u64) -> OutcomeSlot<T> {
        OutcomeSlot { state: AtomicU8::new(0), writer, value: UnsafeCell::new(None) }
    }

    /// Stores `value` unless one was stored already. `Ok(true)` if it was
    /// stored and somebody waits (see [`wait`](OutcomeSlot::wait)): wake
    /// them.
    ///
    /// # Errors
    ///
    /// The value back if one was stored already.
    ///
    /// # Panics
    ///
    /// Off the writer hub's thread.
    pub(crate) fn put(&self, value: T) -> Result<bool, T> {
        assert_eq!(hub::reactor_id(), self.writer, "a greenlet's outcome is stored on its own hub");
        // Only this thread sets FULL, so this look cannot go stale.
        if self.state.load(Ordering::Relaxed) & FULL != 0 {
            return Err(value);
        }
        // SAFETY: nobody reads the value before FULL is set below (`take` and
        // `peek` check it), and the only writer is this thread (asserted
        // above), which is not inside another `put` (nothing here calls out
        // before the write: the old value is `None`).
        unsafe { *self.value.get() = Some(value) };
        let before = self.state.fetch_or(FULL, Ordering::AcqRel);
        Ok(before & WAITED != 0)
    }

    /// Whether a value was stored (taken or not).
    pub(crate) fn is_set(&self) -> bool {
        self.state.load(Ordering::Acquire) & FULL != 0
    }

    /// Registers that somebody waits; returns whether the value is there
    /// already (then nobody will be woken for it: do not wait). Call it
    /// with the waiters' queue locked, and queue the waiter before unlocking:
    /// a `put` that sees the mark then finds the waiter queued.
    pub(crate) fn wait(&self) -> bool {
        self.state.fetch_or(WAITED, Ordering::AcqRel) & FULL != 0
    }

    /// Moves the stored value out, once; `None` if there is none yet or it
    /// was taken (or a `peek` is looking at it).
    pub(crate) fn take(&self) -> Option<T> {
        if !self.claim() {
            return None;
        }
        // SAFETY: `claim` saw FULL (Acquire: after `put`'s write) and won
        // TAKEN, which nobody clears again: sole access from here on.
        unsafe { (*self.value.get()).take() }
    }

    /// Looks at the stored value, if it is there and not taken. A `take`
    /// racing with it finds nothing (the owner of a join handle is the only
    /// one who takes, and it does not race with itself).
    pub(crate) fn peek<R>(&self, f: impl FnOnce(&T) -> R) -> Option<R> {
        if !self.claim() {
            return None;
        }
        // SAFETY: as in `take`, sole access until TAKEN is cleared below; the
        // value is only borrowed.
        let result = unsafe { (*self.value.get()).as_ref().map(f) };
        self.state.fetch_and(!TAKEN, Ordering::Release);
        result
    }

    /// Sets TAKEN if the value is there and TAKEN was clear; returns whether
    /// this call did.
    fn claim(&self) -> bool {
        let mut state = self.state.load(Ordering::Acquire);
        loop {
            if state & FULL == 0 || state & TAKEN != 0 {
                return false;
            }
            match self.state.compare_exchange_weak(state, state | TAKEN, Ordering::Acquire, Ordering::Acquire) {
                Ok(_) => return true,
                Err(now) => state = now,
            }
        }
    }

    /// Empties the slot for reuse by the hub `writer` (exclusive access);
    /// drops a value nobody took.
    pub(crate) fn reset(&mut self, writer: u64) {
        *self.value.get_mut() = None;
        *self.state.get_mut() = 0;
        self.writer = writer;
    }
}

#[cfg(test)]
mod tests {
    use super::OutcomeSlot;
    use std::sync::Arc;

    /// Outside a hub, `reactor_id` is 0: tests write as "hub 0".
    const HERE: u64 = 0;

    #[test]
    fn a_value_is_put_once_and_taken_once() {
        let slot = OutcomeSlot::new(HERE);
        assert!(!slot.is_set());
        assert_eq!(slot.take(), None);
        assert_eq!(slot.put(1), Ok(false));
        assert_eq!(slot.put(2), Err(2));
        assert!(slot.is_set());
        assert_eq!(slot.take(), Some(1));
        assert_eq!(slot.take(), None);
        assert!(slot.is_set());
    }

    #[test]
    fn a_waiter_registered_first_is_reported_to_the_putter() {
        let slot = OutcomeSlot::new(HERE);
        assert!(!slot.wait(), "nothing there yet: wait");
        assert_eq!(slot.put("v"), Ok(true), "somebody waits: wake them");
        assert!(slot.wait(), "there now: do not wait");
    }

    #[test]
    fn peek_looks_without_taking_and_reset_empties() {
        let value = Arc::new(());
        let mut slot = OutcomeSlot::new(HERE);
        assert_eq!(slot.peek(Arc::strong_count), None);
        slot.put(value.clone()).expect("empty");
        assert_eq!(slot.peek(Arc::strong_count), Some(2));
        slot.reset(HERE);
        assert_eq!(Arc::strong_count(&value), 1, "reset drops the value nobody took");
        assert!(!slot.is_set());
        assert_eq!(slot.put(value), Ok(false));
    }

    #[test]
    #[should_panic(expected = "stored on its own hub")]
    fn only_the_writer_hub_puts() {
        OutcomeSlot::new(HERE + 1).put(1).ok();
    }

    #[test]
    fn racing_threads_take_the_value_exactly_once() {
        for _ in 0..200 {
            let slot = Arc::new(OutcomeSlot::new(HERE));
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
