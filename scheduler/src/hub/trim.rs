//! Gives back the stack memory of greenlets parked for a long time.
//!
//! A connection's greenlet that once went deep (a burst of parsing, a large
//! response) keeps every stack page it touched resident while it waits for the
//! next request, which may be minutes away. When the hub is about to sleep, it
//! looks at a batch of its tasks and trims the stack of each one parked for
//! longer than the threshold ([`Builder::stack_trim_after`], one second by
//! default) with [`Greenlet::trim_stack`](greenlet::Greenlet::trim_stack):
//! the pages below where the greenlet suspended go back to the kernel.
//!
//! Busy greenlets never pay: the scan runs only when the hub goes idle, looks
//! at [`BATCH`] tasks at most each time, and starts a new pass over all tasks
//! at most once per half threshold. A greenlet is trimmed at most once per
//! park (the greenlet remembers whether it was trimmed since it last
//! switched out); one that runs again faults its deep pages back in, as zeros,
//! only if it goes deep again. Go shrinks goroutine stacks in a similar spirit,
//! but by copying them to a smaller stack at garbage collection.
//!
//! [`Builder::stack_trim_after`]: crate::Builder::stack_trim_after

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::hub::record::{State, Task};
use crate::util::slab::Slab;

/// Default for [`Builder::stack_trim_after`](crate::Builder::stack_trim_after).
pub(crate) const DEFAULT_TRIM_AFTER: Duration = Duration::from_secs(1);

/// Tasks looked at per idle turn of the hub.
const BATCH: u32 = 4096;

/// Where the incremental scan stands.
#[derive(Debug)]
pub(crate) struct Trimmer {
    /// Greenlets parked longer than this are trimmed; `None` turns trimming off.
    after: Option<Duration>,
    /// The slab index the next batch starts at; 0 starts a new pass.
    cursor: Cell<u32>,
    /// When the current pass started.
    pass_started: Cell<Option<Instant>>,
}

impl Trimmer {
    pub(crate) fn new(after: Option<Duration>) -> Trimmer {
        Trimmer { after, cursor: Cell::new(0), pass_started: Cell::new(None) }
    }

    /// Called when the hub is about to sleep: trims the stacks of a batch of
    /// tasks parked since before `now - after`.
    pub(crate) fn on_idle(&self, tasks: &Slab<Rc<Task>>, now: Instant) {
        let Some(after) = self.after else { return };
        let mut index = self.cursor.get();
        if index == 0 {
            if self.pass_started.get().is_some_and(|started| now.saturating_duration_since(started) < after / 2) {
                return;
            }
            self.pass_started.set(Some(now));
        }
        let end = tasks.slots().min(index.saturating_add(BATCH));
        while index < end {
            if let Some(task) = tasks.try_at(index) {
                if task.state() == State::Parked && now.saturating_duration_since(task.waiting().1) >= after {
                    if let Some(greenlet) = task.greenlet() {
                        greenlet.trim_stack();
                    }
                }
            }
            index += 1;
        }
        self.cursor.set(if index >= tasks.slots() { 0 } else { index });
    }
}
