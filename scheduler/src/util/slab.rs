//! One generational slab: the storage of every table the hub keeps (tasks,
//! I/O sources, timers, wait-queue nodes).
//!
//! A [`Key`] is an index plus the generation of the slot when the value went
//! in. Removing a value bumps its slot's generation, so a stale key (kept by a
//! timer that already fired, a registration whose hub moved on, a waiter that
//! was reclaimed) finds nothing instead of somebody else's value. Freed slots
//! form a LIFO free list threaded through the vacant entries, so inserting
//! never searches and a steady state never allocates.
//!
//! Intrusive lists (the timer wheel's slots, a wait queue's FIFO) link
//! occupied entries by bare index and reach them with [`Slab::at`] and
//! [`Slab::at_mut`]: a linked index is always occupied.

/// Marks the end of the free list.
const NIL: u32 = u32::MAX;

/// Names one value in a [`Slab`] for as long as it is there.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Key {
    index: u32,
    generation: u32,
}

impl Key {
    /// The slot's index, for intrusive links.
    pub(crate) fn index(self) -> u32 {
        self.index
    }

    /// The key as one number (for an atomic); never `u64::MAX`, since no
    /// slot has the index `u32::MAX`.
    pub(crate) fn to_bits(self) -> u64 {
        (u64::from(self.generation) << 32) | u64::from(self.index)
    }

    /// The key [`to_bits`](Key::to_bits) made.
    pub(crate) fn from_bits(bits: u64) -> Key {
        Key { index: bits as u32, generation: (bits >> 32) as u32 }
    }
}

#[derive(Debug)]
enum Entry<T> {
    Occupied(T),
    Vacant { next_free: u32 },
}

#[derive(Debug)]
struct Slot<T> {
    generation: u32,
    entry: Entry<T>,
}

/// See the module docs.
#[derive(Debug)]
pub(crate) struct Slab<T> {
    slots: Vec<Slot<T>>,
    /// Head of the free list.
    free: u32,
    len: usize,
}

impl<T> Default for Slab<T> {
    fn default() -> Self {
        Slab::new()
    }
}

impl<T> Slab<T> {
    pub(crate) const fn new() -> Slab<T> {
        Slab { slots: Vec::new(), free: NIL, len: 0 }
    }

    /// Values stored.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Slots, occupied or not: one past the highest index ever used.
    pub(crate) fn slots(&self) -> u32 {
        self.slots.len() as u32
    }

    /// Stores `value`, reusing the most recently freed slot.
    // Inlined: `value` is then written into its slot where it is made,
    // rather than stored on the stack and copied (the copy's loads stall on
    // the stores just made).
    #[inline(always)]
    pub(crate) fn insert(&mut self, value: T) -> Key {
        self.len += 1;
        if self.free == NIL {
            let index = u32::try_from(self.slots.len()).ok().filter(|&i| i != NIL).expect("slab is full");
            self.slots.push(Slot { generation: 0, entry: Entry::Occupied(value) });
            return Key { index, generation: 0 };
        }
        let index = self.free;
        let slot = &mut self.slots[index as usize];
        let Entry::Vacant { next_free } = slot.entry else { unreachable!("the free list points at a value") };
        self.free = next_free;
        slot.entry = Entry::Occupied(value);
        Key { index, generation: slot.generation }
    }

    /// Stores the value `make` returns, made where it goes (see `insert`).
    #[inline(always)]
    pub(crate) fn insert_with(&mut self, make: impl FnOnce() -> T) -> Key {
        if self.free == NIL {
            return self.insert(make());
        }
        self.len += 1;
        let index = self.free;
        let slot = &mut self.slots[index as usize];
        let Entry::Vacant { next_free } = slot.entry else { unreachable!("the free list points at a value") };
        self.free = next_free;
        slot.entry = Entry::Occupied(make());
        Key { index, generation: slot.generation }
    }

    /// Takes the value out; `None` if the key is stale.
    pub(crate) fn remove(&mut self, key: Key) -> Option<T> {
        let slot = self.slots.get_mut(key.index as usize)?;
        if slot.generation != key.generation || matches!(slot.entry, Entry::Vacant { .. }) {
            return None;
        }
        let Entry::Occupied(value) = std::mem::replace(&mut slot.entry, Entry::Vacant { next_free: self.free }) else {
            unreachable!("checked above")
        };
        slot.generation = slot.generation.wrapping_add(1);
        self.free = key.index;
        self.len -= 1;
        Some(value)
    }

    pub(crate) fn get(&self, key: Key) -> Option<&T> {
        match self.slots.get(key.index as usize) {
            Some(Slot { generation, entry: Entry::Occupied(value) }) if *generation == key.generation => Some(value),
            _ => None,
        }
    }

    /// The value at a linked index.
    ///
    /// # Panics
    ///
    /// If the slot is vacant: a link to a freed entry is a bug.
    pub(crate) fn at(&self, index: u32) -> &T {
        match &self.slots[index as usize].entry {
            Entry::Occupied(value) => value,
            Entry::Vacant { .. } => panic!("slab link to a vacant slot"),
        }
    }

    /// The value at an index that may be vacant or out of range (for
    /// lookups by a bare index from outside, such as a mio token).
    pub(crate) fn try_at(&self, index: u32) -> Option<&T> {
        match self.slots.get(index as usize) {
            Some(Slot { entry: Entry::Occupied(value), .. }) => Some(value),
            _ => None,
        }
    }

    /// The value at a linked index, mutably. Panics as [`Slab::at`].
    pub(crate) fn at_mut(&mut self, index: u32) -> &mut T {
        match &mut self.slots[index as usize].entry {
            Entry::Occupied(value) => value,
            Entry::Vacant { .. } => panic!("slab link to a vacant slot"),
        }
    }

    /// The key of the value at a linked index.
    pub(crate) fn key_at(&self, index: u32) -> Key {
        Key { index, generation: self.slots[index as usize].generation }
    }

    /// Every stored value with its key, in index order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (Key, &T)> {
        self.slots.iter().enumerate().filter_map(|(index, slot)| match &slot.entry {
            Entry::Occupied(value) => Some((Key { index: index as u32, generation: slot.generation }, value)),
            Entry::Vacant { .. } => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_keys_find_nothing() {
        let mut slab = Slab::new();
        let a = slab.insert("a");
        assert_eq!(slab.remove(a), Some("a"));
        let b = slab.insert("b");
        assert_eq!(a.index(), b.index(), "the slot is reused");
        assert_eq!(slab.get(a), None);
        assert_eq!(slab.remove(a), None);
        assert_eq!(slab.get(b), Some(&"b"));
        assert_eq!(slab.len(), 1);
    }

    #[test]
    fn iterates_over_values_only() {
        let mut slab = Slab::new();
        let keys: Vec<Key> = (0..5).map(|i| slab.insert(i)).collect();
        slab.remove(keys[1]);
        slab.remove(keys[3]);
        let values: Vec<i32> = slab.iter().map(|(_, v)| *v).collect();
        assert_eq!(values, [0, 2, 4]);
        assert!(slab.iter().all(|(key, v)| slab.get(key) == Some(v)));
    }
}
