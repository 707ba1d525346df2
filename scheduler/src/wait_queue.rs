//! A FIFO queue of parked greenlets with O(1) removal.
//!
//! Every blocking primitive keeps its waiters in a `WaitQueue`. The protocol
//! is the same everywhere:
//!
//! 1. The waiter checks its condition, then [`push`](WaitQueue::push)es a
//!    node carrying its task, its park sequence number and some data (for
//!    example the value a sender wants to send), and parks.
//! 2. Whoever satisfies the condition [`complete_front`](WaitQueue::complete_front)s
//!    (or `complete_all`) nodes: the node leaves the queue but keeps its slot,
//!    marked completed, with its data possibly changed (a receiver's node gets
//!    the value). The completer then unparks the task.
//! 3. When the waiter runs again, for whatever reason (woken, timed out,
//!    killed), it [`reclaim`](WaitQueue::reclaim)s its node, learning whether
//!    it was completed. A completion is never lost: a waiter that timed out but
//!    was completed meanwhile still gets what it was given.
//!
//! Step 3 runs from a guard's `Drop`, so it also happens when a killed
//! greenlet unwinds.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Instant;

use crate::park::{self, Wake};
use crate::task::Task;

const NIL: u32 = u32::MAX;

/// Identifies a node; returned by `push`, given back to `reclaim`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct WaitKey {
    index: u32,
    generation: u32,
}

#[derive(Debug)]
enum Slot<T> {
    Free { next_free: u32 },
    Waiting { waiter: Waiter<T>, prev: u32, next: u32 },
    Completed { waiter: Waiter<T> },
}

#[derive(Debug)]
struct Node<T> {
    slot: Slot<T>,
    generation: u32,
}

/// A parked greenlet waiting in a queue.
#[derive(Debug)]
pub(crate) struct Waiter<T> {
    pub(crate) task: Rc<Task>,
    pub(crate) seq: u64,
    pub(crate) data: T,
}

/// See the module docs.
#[derive(Debug)]
pub(crate) struct WaitQueue<T> {
    nodes: Vec<Node<T>>,
    free: u32,
    head: u32,
    tail: u32,
    waiting: usize,
}

impl<T> Default for WaitQueue<T> {
    fn default() -> Self {
        WaitQueue::new()
    }
}

impl<T> WaitQueue<T> {
    pub(crate) const fn new() -> WaitQueue<T> {
        WaitQueue { nodes: Vec::new(), free: NIL, head: NIL, tail: NIL, waiting: 0 }
    }

    /// Greenlets waiting (not yet completed).
    pub(crate) fn len(&self) -> usize {
        self.waiting
    }

    /// Appends a waiter at the back.
    pub(crate) fn push(&mut self, task: Rc<Task>, seq: u64, data: T) -> WaitKey {
        let slot = Slot::Waiting { waiter: Waiter { task, seq, data }, prev: self.tail, next: NIL };
        let index = if self.free != NIL {
            let index = self.free;
            let node = &mut self.nodes[index as usize];
            let Slot::Free { next_free } = node.slot else { unreachable!("free list points at a used node") };
            self.free = next_free;
            node.slot = slot;
            index
        } else {
            self.nodes.push(Node { slot, generation: 0 });
            (self.nodes.len() - 1) as u32
        };
        if self.tail == NIL {
            self.head = index;
        } else {
            self.set_next(self.tail, index);
        }
        self.tail = index;
        self.waiting += 1;
        WaitKey { index, generation: self.nodes[index as usize].generation }
    }

    /// Completes the first waiter: `f` may change its data. Returns its task
    /// and sequence number, to unpark.
    pub(crate) fn complete_front(&mut self, f: impl FnOnce(&mut T)) -> Option<(Rc<Task>, u64)> {
        if self.head == NIL {
            return None;
        }
        let index = self.head;
        Some(self.complete(index, f))
    }

    /// Completes every waiter, front to back.
    pub(crate) fn complete_all(&mut self, mut f: impl FnMut(&mut T)) -> Vec<(Rc<Task>, u64)> {
        let mut woken = Vec::with_capacity(self.waiting);
        while self.head != NIL {
            let index = self.head;
            woken.push(self.complete(index, &mut f));
        }
        woken
    }

    fn complete(&mut self, index: u32, f: impl FnOnce(&mut T)) -> (Rc<Task>, u64) {
        self.unlink(index);
        let node = &mut self.nodes[index as usize];
        let Slot::Waiting { mut waiter, .. } = std::mem::replace(&mut node.slot, Slot::Free { next_free: NIL }) else {
            unreachable!("completing a node that is not waiting")
        };
        f(&mut waiter.data);
        let woken = (waiter.task.clone(), waiter.seq);
        node.slot = Slot::Completed { waiter };
        woken
    }

    /// Takes back a node from `push`: returns whether it was completed, and
    /// its data. Must be called exactly once per key.
    pub(crate) fn reclaim(&mut self, key: WaitKey) -> (bool, T) {
        let node = &self.nodes[key.index as usize];
        assert_eq!(node.generation, key.generation, "a wait node was reclaimed twice");
        if matches!(node.slot, Slot::Waiting { .. }) {
            self.unlink(key.index);
        }
        let node = &mut self.nodes[key.index as usize];
        let slot = std::mem::replace(&mut node.slot, Slot::Free { next_free: self.free });
        node.generation = node.generation.wrapping_add(1);
        self.free = key.index;
        match slot {
            Slot::Waiting { waiter, .. } => (false, waiter.data),
            Slot::Completed { waiter } => (true, waiter.data),
            Slot::Free { .. } => unreachable!("reclaiming a free node"),
        }
    }

    fn unlink(&mut self, index: u32) {
        let (prev, next) = match self.nodes[index as usize].slot {
            Slot::Waiting { prev, next, .. } => (prev, next),
            _ => unreachable!("unlinking a node that is not waiting"),
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
        match &mut self.nodes[index as usize].slot {
            Slot::Waiting { next, .. } => *next = to,
            _ => unreachable!("linking a node that is not waiting"),
        }
    }

    fn set_prev(&mut self, index: u32, to: u32) {
        match &mut self.nodes[index as usize].slot {
            Slot::Waiting { prev, .. } => *prev = to,
            _ => unreachable!("linking a node that is not waiting"),
        }
    }
}

/// How a [`wait`] ended.
#[derive(Debug)]
pub(crate) struct Waited<T> {
    /// Whether the node was completed (its condition was met for it).
    pub(crate) completed: bool,
    /// The node's data, possibly changed by the completer.
    pub(crate) data: T,
    pub(crate) wake: Wake,
}

/// Parks the current greenlet in `queue` with `data` until its node is
/// completed, it is woken, or `deadline` passes; the node is reclaimed in
/// every case, also when the greenlet unwinds.
pub(crate) fn wait<T>(
    queue: &RefCell<WaitQueue<T>>,
    data: T,
    reason: &'static str,
    deadline: Option<Instant>,
) -> Waited<T> {
    wait_or_give_back(queue, data, reason, deadline, drop)
}

/// Like [`wait`], for queues whose completions hand the waiter something that
/// must not be lost (a channel value, a semaphore permit, a notification): if
/// the greenlet unwinds (killed, or its `timeout` scope expired) after its
/// node was completed but before it could take what it was given, `give_back`
/// receives the node's data to pass it on. Without it, the completion would be
/// dropped with the unwinding: the value lost, the permit leaked.
pub(crate) fn wait_or_give_back<T, F: FnOnce(T)>(
    queue: &RefCell<WaitQueue<T>>,
    data: T,
    reason: &'static str,
    deadline: Option<Instant>,
    give_back: F,
) -> Waited<T> {
    struct Reclaim<'a, T, F: FnOnce(T)> {
        queue: &'a RefCell<WaitQueue<T>>,
        key: Option<WaitKey>,
        give_back: Option<F>,
    }
    impl<T, F: FnOnce(T)> Drop for Reclaim<'_, T, F> {
        fn drop(&mut self) {
            // Only reached with a key when unwinding out of `park`.
            if let Some(key) = self.key.take() {
                let (completed, data) = self.queue.borrow_mut().reclaim(key);
                if let (true, Some(give_back)) = (completed, self.give_back.take()) {
                    give_back(data);
                }
            }
        }
    }
    let parker = park::parker();
    let key = queue.borrow_mut().push(parker.task().clone(), parker.seq(), data);
    let mut reclaim = Reclaim { queue, key: Some(key), give_back: Some(give_back) };
    let wake = parker.park(reason, deadline);
    let key = reclaim.key.take().expect("reclaimed once");
    let (completed, data) = queue.borrow_mut().reclaim(key);
    Waited { completed, data, wake }
}

/// Unparks what `complete_*` returned.
pub(crate) fn unpark_all(woken: impl IntoIterator<Item = (Rc<Task>, u64)>) {
    for (task, seq) in woken {
        park::unpark(&task, seq);
    }
}
