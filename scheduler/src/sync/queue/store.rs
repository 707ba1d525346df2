//! The order a queue hands its values out in: first in first out, last in
//! first out, or smallest first.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

/// Where a queue keeps the values nobody waits for yet.
pub(crate) trait Store<T>: Default {
    fn push(&mut self, value: T);
    fn pop(&mut self) -> Option<T>;
    /// Puts back a value that was taken by a getter which then unwound: it
    /// is the next one out again.
    fn give_back(&mut self, value: T);
    fn len(&self) -> usize;
}

/// `JoinableQueue`'s order.
pub(crate) struct Fifo<T>(VecDeque<T>);

/// `LifoQueue`'s order.
pub(crate) struct Lifo<T>(Vec<T>);

/// `PriorityQueue`'s order: the smallest value first (a min-heap).
pub(crate) struct Smallest<T>(BinaryHeap<Reverse<T>>);

impl<T> Default for Fifo<T> {
    fn default() -> Self {
        Fifo(VecDeque::new())
    }
}

impl<T> Store<T> for Fifo<T> {
    fn push(&mut self, value: T) {
        self.0.push_back(value);
    }
    fn pop(&mut self) -> Option<T> {
        self.0.pop_front()
    }
    fn give_back(&mut self, value: T) {
        self.0.push_front(value);
    }
    fn len(&self) -> usize {
        self.0.len()
    }
}

impl<T> Default for Lifo<T> {
    fn default() -> Self {
        Lifo(Vec::new())
    }
}

impl<T> Store<T> for Lifo<T> {
    fn push(&mut self, value: T) {
        self.0.push(value);
    }
    fn pop(&mut self) -> Option<T> {
        self.0.pop()
    }
    fn give_back(&mut self, value: T) {
        self.0.push(value);
    }
    fn len(&self) -> usize {
        self.0.len()
    }
}

impl<T: Ord> Default for Smallest<T> {
    fn default() -> Self {
        Smallest(BinaryHeap::new())
    }
}

impl<T: Ord> Store<T> for Smallest<T> {
    fn push(&mut self, value: T) {
        self.0.push(Reverse(value));
    }
    fn pop(&mut self) -> Option<T> {
        self.0.pop().map(|Reverse(value)| value)
    }
    fn give_back(&mut self, value: T) {
        self.push(value);
    }
    fn len(&self) -> usize {
        self.0.len()
    }
}
