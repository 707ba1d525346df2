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
//! The queue is generic over how a waiter is woken: hub-local queues (the
//! reactor's, joins, selects of hub-local things) hold an [`Unparker`];
//! queues of the `sync` types, which other threads reach, hold a `Send`
//! `Wakeup` (see `park::wait`).

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
    pub(crate) fn push(&mut self, waiter: W, data: T) -> WaitKey {
        let key = self.nodes.insert(Node { link: Link::Waiting { prev: self.tail, next: NIL }, waiter, data });
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
        self.complete(self.head, f).wake();
        true
    }

    /// Completes and unparks every waiter, front to back.
    pub(crate) fn complete_all(&mut self, mut f: impl FnMut(&mut T)) {
        while self.head != NIL {
            self.complete(self.head, &mut f).wake();
        }
    }

    fn complete(&mut self, index: u32, f: impl FnOnce(&mut T)) -> &W {
        self.unlink(index);
        let node = self.nodes.at_mut(index);
        node.link = Link::Completed;
        f(&mut node.data);
        &node.waiter
    }

    /// Takes back a node from `push`: returns whether it was completed, and
    /// its data. Must be called exactly once per key.
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
            let index = self.head;
            self.unlink(index);
            let node = self.nodes.at_mut(index);
            node.link = Link::Completed;
            woken.push(node.waiter.clone());
        }
    }
}
