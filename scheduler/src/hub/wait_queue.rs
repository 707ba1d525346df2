//! A FIFO queue of parked greenlets with O(1) removal.
//!
//! Every blocking primitive keeps its waiters in a `WaitQueue`. The protocol
//! is the same everywhere:
//!
//! 1. The waiter checks its condition, then [`push`](WaitQueue::push)es a
//!    node carrying its [`Unparker`] and some data (for example the value a
//!    sender wants to send), and parks.
//! 2. Whoever satisfies the condition [`complete_front`](WaitQueue::complete_front)s
//!    (or `complete_all`) nodes: the node leaves the queue but keeps its slot,
//!    marked completed, with its data possibly changed (a receiver's node gets
//!    the value), and its task is unparked.
//! 3. When the waiter runs again, for whatever reason (woken, timed out,
//!    killed), it [`reclaim`](WaitQueue::reclaim)s its node, learning whether
//!    it was completed. A completion is never lost: a waiter that timed out but
//!    was completed meanwhile still gets what it was given.
//!
//! Step 3 runs from a guard's `Drop` (see `park::wait_in`), so it also happens
//! when a killed greenlet unwinds.
//!
//! A waiter may also bring a [`Slot`] of its own ([`push_slotted`](WaitQueue::push_slotted)):
//! completing such a node takes it out of the queue at once and moves its
//! data into the slot. The waiter, woken, then learns that it was completed
//! and takes its data from the slot without the queue's lock, which a queue
//! behind a `Mutex` (the `sync` types') would otherwise cost a second time
//! per wait; only a waiter that finds its slot empty (timed out, killed,
//! woken spuriously) reclaims its node.
//!
//! The queue is generic over how a waiter is woken: hub-local queues (the
//! reactor's, joins, selects of hub-local things) hold an [`Unparker`];
//! queues of the `sync` types, which other threads reach, hold a `Send`
//! `Wakeup` (see `park::wait`).

use std::cell::UnsafeCell;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::hub::unpark::Unparker;
use crate::util::slab::{Key, Slab};

const NIL: u32 = u32::MAX;

/// Identifies a node; returned by `push`, given back to `reclaim`.
pub(crate) type WaitKey = Key;

#[derive(Debug)]
enum Link {
    Waiting { prev: u32, next: u32 },
    Completed,
}

/// How a waiter is woken.
pub(crate) trait Waiter {
    /// Makes the waiter runnable (never switches).
    fn wake(&self);
}

impl Waiter for Unparker {
    fn wake(&self) {
        self.unpark();
    }
}

#[derive(Debug)]
struct Node<T, W> {
    link: Link,
    waiter: W,
    data: T,
    /// Where the data goes on completion, for a node from `push_slotted`.
    slot: Option<SlotRef<T>>,
}

/// Where a completed node's data goes: owned by its waiter, filled once by
/// the completer (under the queue's lock), read by the waiter once it sees
/// it filled (without the lock).
pub(crate) struct Slot<T> {
    filled: AtomicBool,
    data: UnsafeCell<Option<T>>,
}

impl<T> Slot<T> {
    pub(crate) const fn new() -> Slot<T> {
        Slot { filled: AtomicBool::new(false), data: UnsafeCell::new(None) }
    }

    /// The data of the completed node, if it was completed; `None` while
    /// the node may still be in its queue (then only its queue's owner can
    /// tell, under its lock).
    #[allow(unsafe_code)]
    pub(crate) fn take(&self) -> Option<T> {
        if !self.filled.load(Ordering::Acquire) {
            return None;
        }
        // SAFETY: filled, so the completer is done with the slot (`fill`
        // stores the flag last) and nobody else reads it: the waiter owns it
        // and calls this from its own frame.
        unsafe { (*self.data.get()).take() }
    }
}

impl<T> std::fmt::Debug for Slot<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Slot").field("filled", &self.filled.load(Ordering::Relaxed)).finish()
    }
}

/// A queue's pointer to a waiter's [`Slot`].
#[derive(Debug)]
struct SlotRef<T>(NonNull<Slot<T>>);

impl<T> Clone for SlotRef<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for SlotRef<T> {}

// SAFETY: the pointer is only used to move a `T` into the slot and set its
// flag (see `Slot`), which is sound from any thread for a `T: Send`.
#[allow(unsafe_code)]
unsafe impl<T: Send> Send for SlotRef<T> {}

impl<T> SlotRef<T> {
    /// Moves the completed node's data into the slot: the last use of the
    /// pointer.
    #[allow(unsafe_code)]
    fn fill(self, data: T) {
        // SAFETY: the node was in its queue until now, so its waiter has not
        // left the wait that owns the slot (the contract of `push_slotted`),
        // and does not read the data before the flag is set below.
        unsafe {
            let slot = self.0.as_ref();
            *slot.data.get() = Some(data);
            slot.filled.store(true, Ordering::Release);
        }
    }
}

/// See the module docs.
#[derive(Debug)]
pub(crate) struct WaitQueue<T, W = Unparker> {
    nodes: Slab<Node<T, W>>,
    head: u32,
    tail: u32,
    waiting: usize,
}

impl<T, W: Waiter> Default for WaitQueue<T, W> {
    fn default() -> Self {
        WaitQueue::new()
    }
}

impl<T, W: Waiter> WaitQueue<T, W> {
    pub(crate) const fn new() -> WaitQueue<T, W> {
        WaitQueue { nodes: Slab::new(), head: NIL, tail: NIL, waiting: 0 }
    }

    /// Greenlets waiting (not yet completed).
    pub(crate) fn len(&self) -> usize {
        self.waiting
    }

    /// Appends a waiter at the back.
    #[inline(always)] // see `Slab::insert`
    pub(crate) fn push(&mut self, waiter: W, data: T) -> WaitKey {
        let key =
            self.nodes.insert(Node { link: Link::Waiting { prev: self.tail, next: NIL }, waiter, data, slot: None });
        self.link_back(key)
    }

    /// Appends a waiter at the back whose completion fills `slot` (see the
    /// module docs) instead of keeping the node: the waiter learns it from
    /// [`Slot::take`], and reclaims the node only if the slot is empty.
    ///
    /// # Safety
    ///
    /// `slot` must stay where it is, alive, until the node is out of the
    /// queue: until `slot.take()` returned the data, or the node was
    /// reclaimed (with the slot still empty under this queue's lock).
    #[allow(unsafe_code)]
    #[inline(always)] // see `Slab::insert`
    pub(crate) unsafe fn push_slotted(
        &mut self,
        waiter: impl FnOnce() -> W,
        data: T,
        slot: NonNull<Slot<T>>,
    ) -> WaitKey {
        let link = Link::Waiting { prev: self.tail, next: NIL };
        let key = self.nodes.insert_with(|| Node { link, waiter: waiter(), data, slot: Some(SlotRef(slot)) });
        self.link_back(key)
    }

    /// Links the node just stored at the back.
    #[inline(always)]
    fn link_back(&mut self, key: WaitKey) -> WaitKey {
        let index = key.index();
        if self.tail == NIL {
            self.head = index;
        } else {
            self.set_next(self.tail, index);
        }
        self.tail = index;
        self.waiting += 1;
        key
    }

    /// The data of the first waiter (a channel's `peek` looks at the value
    /// of the first waiting sender).
    pub(crate) fn front(&self) -> Option<&T> {
        (self.head != NIL).then(|| &self.nodes.at(self.head).data)
    }

    /// The first waiter, if any (to learn how it will be woken).
    pub(crate) fn front_waiter(&self) -> Option<&W> {
        (self.head != NIL).then(|| &self.nodes.at(self.head).waiter)
    }

    /// Completes the first waiter (`f` may change its data) and unparks it.
    /// Returns whether there was one.
    pub(crate) fn complete_front(&mut self, f: impl FnOnce(&mut T)) -> bool {
        if self.head == NIL {
            return false;
        }
        self.complete(self.head, f, W::wake);
        true
    }

    /// Completes and unparks every waiter, front to back.
    pub(crate) fn complete_all(&mut self, mut f: impl FnMut(&mut T)) {
        while self.head != NIL {
            self.complete(self.head, &mut f, W::wake);
        }
    }

    /// Completes the waiting node at `index`, then hands its waiter to `wake`.
    fn complete(&mut self, index: u32, f: impl FnOnce(&mut T), wake: impl FnOnce(&W)) {
        self.unlink(index);
        let node = self.nodes.at_mut(index);
        match node.slot {
            None => {
                node.link = Link::Completed;
                f(&mut node.data);
                wake(&node.waiter);
            }
            Some(slot) => {
                // Out of the queue for good: the waiter finds the data in its
                // slot, and never reclaims the node.
                let key = self.nodes.key_at(index);
                let Node { waiter, mut data, .. } = self.nodes.remove(key).expect("a linked node is stored");
                f(&mut data);
                slot.fill(data);
                wake(&waiter);
            }
        }
    }

    /// Takes back a node from `push`: returns whether it was completed, and
    /// its data. Must be called exactly once per key (for a node from
    /// `push_slotted`: only while its slot is empty, see there).
    pub(crate) fn reclaim(&mut self, key: WaitKey) -> (bool, T) {
        let node = self.nodes.get(key).expect("a wait node was reclaimed twice");
        if matches!(node.link, Link::Waiting { .. }) {
            self.unlink(key.index());
        }
        let node = self.nodes.remove(key).expect("checked above");
        (matches!(node.link, Link::Completed), node.data)
    }

    fn unlink(&mut self, index: u32) {
        let Link::Waiting { prev, next } = self.nodes.at(index).link else {
            unreachable!("unlinking a node that is not waiting")
        };
        if prev == NIL {
            self.head = next;
        } else {
            self.set_next(prev, next);
        }
        if next == NIL {
            self.tail = prev;
        } else {
            self.set_prev(next, prev);
        }
        self.waiting -= 1;
    }

    fn set_next(&mut self, index: u32, to: u32) {
        match &mut self.nodes.at_mut(index).link {
            Link::Waiting { next, .. } => *next = to,
            Link::Completed => unreachable!("linking a node that is not waiting"),
        }
    }

    fn set_prev(&mut self, index: u32, to: u32) {
        match &mut self.nodes.at_mut(index).link {
            Link::Waiting { prev, .. } => *prev = to,
            Link::Completed => unreachable!("linking a node that is not waiting"),
        }
    }
}

impl<T> WaitQueue<T, Unparker> {
    /// Completes every waiter, front to back, and hands their unparkers to
    /// `woken` instead of unparking them (for the reactor, which never calls
    /// into the scheduler).
    pub(crate) fn complete_all_into(&mut self, woken: &mut Vec<Unparker>) {
        while self.head != NIL {
            self.complete(self.head, |_| {}, |waiter| woken.push(waiter.clone()));
        }
    }
}
