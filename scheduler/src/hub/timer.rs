//! The timer engine: a hierarchical timing wheel.
//!
//! Six levels of 64 slots at a resolution of one millisecond, after Varghese
//! and Lauck's hashed hierarchical wheels (as in tokio): level 0 holds timers
//! due in the current 64 ms block, level 1 those due in the current 4 s block,
//! and so on up to about two years; later timers wait in the top level and
//! are cascaded down as time advances. Each level keeps a bitmap of its
//! non-empty slots, so finding the next deadline is a few bit operations.
//!
//! Entries live in a slab and each slot is a doubly linked list through it, so
//! insertion and cancellation are O(1): timeouts are set and cancelled on
//! nearly every blocking call, and a million concurrent sleepers cost one
//! entry each.
//!
//! A timer never fires early: deadlines are rounded up to the next
//! millisecond, and "now" is rounded down.

use std::time::{Duration, Instant};

use crate::util::slab::{Key, Slab};

const LEVELS: usize = 6;
const SLOTS: usize = 64;
const SLOT_BITS: u32 = 6;
/// Timers further out than this are clamped to it (about 2.2 years).
const MAX_MS: u64 = (1 << (SLOT_BITS as u64 * LEVELS as u64)) - 1;
const NIL: u32 = u32::MAX;
/// `Entry::level` of entries in the `due` list.
const DUE: u8 = u8::MAX;

/// Identifies an armed timer, for cancellation.
pub(crate) type TimerKey = Key;

#[derive(Debug)]
struct Entry<T> {
    /// Milliseconds since `start`.
    when: u64,
    payload: T,
    prev: u32,
    /// Next in the slot's list.
    next: u32,
    level: u8,
    slot: u8,
}

#[derive(Clone, Copy, Debug)]
struct List {
    head: u32,
    tail: u32,
}

const EMPTY: List = List { head: NIL, tail: NIL };

#[derive(Debug)]
struct Level {
    occupied: u64,
    slots: [List; SLOTS],
}

/// A set of timers carrying a `T` each; see the module docs.
#[derive(Debug)]
pub(crate) struct TimerWheel<T> {
    start: Instant,
    /// Milliseconds since `start` up to which timers were processed. Every
    /// entry in a level has `when > elapsed`.
    elapsed: u64,
    levels: Box<[Level; LEVELS]>,
    /// Timers already due when inserted; fired by the next `expire`.
    due: List,
    entries: Slab<Entry<T>>,
}

impl<T> TimerWheel<T> {
    pub(crate) fn new(start: Instant) -> TimerWheel<T> {
        TimerWheel {
            start,
            elapsed: 0,
            levels: Box::new(std::array::from_fn(|_| Level { occupied: 0, slots: [EMPTY; SLOTS] })),
            due: EMPTY,
            entries: Slab::new(),
        }
    }

    /// Armed timers.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Arms a timer firing at `deadline` (or as soon as possible, if it has
    /// passed).
    pub(crate) fn insert(&mut self, deadline: Instant, payload: T) -> TimerKey {
        let when = self.ms_ceil(deadline);
        let key = self.entries.insert(Entry { when, payload, prev: NIL, next: NIL, level: 0, slot: 0 });
        self.place(key.index());
        key
    }

    /// Disarms a timer, returning its payload if it had not fired yet.
    pub(crate) fn cancel(&mut self, key: TimerKey) -> Option<T> {
        self.entries.get(key)?;
        self.unlink(key.index());
        Some(self.release(key.index()))
    }

    /// The earliest deadline of an armed timer.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        if self.due.head != NIL {
            return Some(self.start + Duration::from_millis(self.elapsed));
        }
        self.next_expiration().map(|(_, _, ms)| self.start + Duration::from_millis(ms))
    }

    /// Fires every timer due at `now`, oldest deadline first (timers due in the
    /// same millisecond fire in no particular order).
    pub(crate) fn expire(&mut self, now: Instant, mut fire: impl FnMut(T)) {
        let now_ms = self.ms_floor(now);
        let due = std::mem::replace(&mut self.due, EMPTY);
        self.fire_list(due, &mut fire);
        while let Some((level, slot, deadline)) = self.next_expiration() {
            if deadline > now_ms {
                break;
            }
            let list = std::mem::replace(&mut self.levels[level].slots[slot], EMPTY);
            self.levels[level].occupied &= !(1 << slot);
            self.elapsed = deadline;
            // Fire what is due; move the rest down to finer levels.
            let mut index = list.head;
            while index != NIL {
                let next = self.entries.at(index).next;
                if self.entries.at(index).when <= deadline {
                    fire(self.release(index));
                } else {
                    self.place(index);
                }
                index = next;
            }
        }
        self.elapsed = self.elapsed.max(now_ms);
    }

    fn fire_list(&mut self, list: List, fire: &mut impl FnMut(T)) {
        let mut index = list.head;
        while index != NIL {
            let next = self.entries.at(index).next;
            fire(self.release(index));
            index = next;
        }
    }

    /// Links entry `index` into the list its `when` belongs to.
    fn place(&mut self, index: u32) {
        let when = self.entries.at(index).when;
        let (level, slot) = if when <= self.elapsed {
            (DUE, 0)
        } else {
            let level = level_for(self.elapsed, when);
            (level as u8, ((when >> (SLOT_BITS as usize * level)) as usize % SLOTS) as u8)
        };
        let list = if level == DUE {
            &mut self.due
        } else {
            self.levels[level as usize].occupied |= 1 << slot;
            &mut self.levels[level as usize].slots[slot as usize]
        };
        let old_tail = list.tail;
        if old_tail == NIL {
            list.head = index;
        }
        list.tail = index;
        if old_tail != NIL {
            self.entries.at_mut(old_tail).next = index;
        }
        let entry = self.entries.at_mut(index);
        entry.prev = old_tail;
        entry.next = NIL;
        entry.level = level;
        entry.slot = slot;
    }

    fn unlink(&mut self, index: u32) {
        let &Entry { prev, next, level, slot, .. } = self.entries.at(index);
        if prev != NIL {
            self.entries.at_mut(prev).next = next;
        }
        if next != NIL {
            self.entries.at_mut(next).prev = prev;
        }
        let list = if level == DUE { &mut self.due } else { &mut self.levels[level as usize].slots[slot as usize] };
        if list.head == index {
            list.head = next;
        }
        if list.tail == index {
            list.tail = prev;
        }
        if level != DUE && list.head == NIL {
            self.levels[level as usize].occupied &= !(1 << slot);
        }
    }

    /// Frees an unlinked entry and returns its payload.
    fn release(&mut self, index: u32) -> T {
        let key = self.entries.key_at(index);
        self.entries.remove(key).expect("releasing a linked timer entry").payload
    }

    /// The earliest non-empty slot: `(level, slot, deadline in ms)`. The lowest
    /// non-empty level holds the earliest timers.
    fn next_expiration(&self) -> Option<(usize, usize, u64)> {
        for (level_index, level) in self.levels.iter().enumerate() {
            if level.occupied == 0 {
                continue;
            }
            let slot_range = 1u64 << (SLOT_BITS as usize * level_index);
            let level_range = slot_range << SLOT_BITS;
            let now_slot = (self.elapsed / slot_range) as u32;
            let slot = (level.occupied.rotate_right(now_slot).trailing_zeros() + now_slot) as usize % SLOTS;
            let level_start = self.elapsed & !(level_range - 1);
            let mut deadline = level_start + slot as u64 * slot_range;
            if deadline <= self.elapsed && level_index == LEVELS - 1 {
                // The top level wraps around: a slot "before" now is in the
                // next rotation.
                deadline += level_range;
            }
            return Some((level_index, slot, deadline.max(self.elapsed)));
        }
        None
    }

    fn ms_ceil(&self, deadline: Instant) -> u64 {
        let since = deadline.saturating_duration_since(self.start);
        let ms = since.as_millis() as u64 + u64::from(since.subsec_nanos() % 1_000_000 != 0);
        ms.min(self.elapsed + MAX_MS)
    }

    fn ms_floor(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.start).as_millis() as u64
    }
}

/// The level a timer due at `when` belongs to: the highest 6-bit digit in
/// which it differs from `elapsed`.
fn level_for(elapsed: u64, when: u64) -> usize {
    let masked = ((elapsed ^ when) | (SLOTS as u64 - 1)).min(MAX_MS);
    let significant = 63 - masked.leading_zeros() as usize;
    significant / SLOT_BITS as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// A small deterministic generator, so the test needs no dependency.
    struct Lcg(u64);

    impl Lcg {
        fn next(&mut self, bound: u64) -> u64 {
            self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (self.0 >> 33) % bound
        }
    }

    #[test]
    fn fires_in_deadline_order_and_never_early() {
        let start = Instant::now();
        let mut wheel = TimerWheel::new(start);
        let mut rng = Lcg(7);
        let mut model: BTreeMap<(u64, u32), TimerKey> = BTreeMap::new();
        let mut now = 0u64;
        for round in 0..2000u32 {
            for _ in 0..rng.next(8) {
                let delay = match rng.next(4) {
                    0 => rng.next(70),
                    1 => rng.next(5000),
                    2 => rng.next(300_000),
                    _ => rng.next(20_000_000),
                };
                let id = round * 100 + model.len() as u32;
                let key = wheel.insert(start + Duration::from_millis(now + delay), (now + delay, id));
                model.insert((now + delay, id), key);
            }
            if rng.next(3) == 0 && !model.is_empty() {
                let nth = rng.next(model.len() as u64) as usize;
                let (&k, &key) = model.iter().nth(nth).unwrap();
                assert_eq!(wheel.cancel(key), Some(k));
                assert_eq!(wheel.cancel(key), None, "cancelling twice");
                model.remove(&k);
            }
            assert_eq!(wheel.len(), model.len());
            let expected_next = model.keys().next().map(|&(when, _)| when);
            let next = wheel.next_deadline().map(|d| (d - start).as_millis() as u64);
            if let (Some(expected), Some(next)) = (expected_next, next) {
                assert!(next <= expected, "next deadline {next} after the earliest timer {expected}");
            }
            now += match rng.next(3) {
                0 => rng.next(3),
                1 => rng.next(200),
                _ => rng.next(100_000),
            };
            let mut fired = Vec::new();
            wheel.expire(start + Duration::from_millis(now), |t| fired.push(t));
            let mut expected: Vec<(u64, u32)> = model.range(..(now + 1, 0)).map(|(&k, _)| k).collect();
            for k in &expected {
                model.remove(k);
            }
            fired.sort();
            expected.sort();
            assert_eq!(fired, expected, "at {now} ms");
            for (when, _) in &fired {
                assert!(*when <= now, "fired early");
            }
        }
    }

    #[test]
    fn a_million_timers_with_cancellations() {
        let start = Instant::now();
        let mut wheel = TimerWheel::new(start);
        let mut rng = Lcg(11);
        let keys: Vec<TimerKey> =
            (0..1_000_000u64).map(|i| wheel.insert(start + Duration::from_millis(1 + rng.next(100_000)), i)).collect();
        assert_eq!(wheel.len(), 1_000_000);
        // Timeouts are mostly cancelled before they fire.
        for key in keys.iter().step_by(2) {
            assert!(wheel.cancel(*key).is_some());
        }
        assert_eq!(wheel.len(), 500_000);
        let mut fired = 0u64;
        let mut last_now = 0;
        for now in (0..=100_000u64).step_by(997).chain([100_001]) {
            wheel.expire(start + Duration::from_millis(now), |i| {
                assert_eq!(i % 2, 1, "a cancelled timer fired");
                fired += 1;
            });
            last_now = now;
        }
        assert_eq!(last_now, 100_001);
        assert_eq!(fired, 500_000);
        assert_eq!(wheel.len(), 0);
    }

    #[test]
    fn a_past_deadline_fires_at_the_next_expire() {
        let start = Instant::now();
        let mut wheel = TimerWheel::new(start);
        wheel.expire(start + Duration::from_millis(50), |_: ()| {});
        wheel.insert(start + Duration::from_millis(10), ());
        assert_eq!(wheel.next_deadline(), Some(start + Duration::from_millis(50)));
        let mut fired = 0;
        wheel.expire(start + Duration::from_millis(50), |()| fired += 1);
        assert_eq!(fired, 1);
        assert_eq!(wheel.len(), 0);
    }

    #[test]
    fn sub_millisecond_deadlines_round_up() {
        let start = Instant::now();
        let mut wheel = TimerWheel::new(start);
        wheel.insert(start + Duration::from_micros(1500), ());
        let mut fired = 0;
        wheel.expire(start + Duration::from_micros(1999), |()| fired += 1);
        assert_eq!(fired, 0);
        wheel.expire(start + Duration::from_millis(2), |()| fired += 1);
        assert_eq!(fired, 1);
    }
}
