//! The cooperative I/O budget: how many operations the running greenlet has
//! completed without parking since the hub last resumed it.

use std::cell::Cell;

/// Consecutive I/O operations a greenlet may complete without parking before
/// it is made to yield, so that a greenlet whose peer always has data ready
/// cannot starve the others (tokio's cooperative budget is 128 too).
pub(crate) const IO_BUDGET: u32 = 128;

thread_local! {
    static SPENT: Cell<u32> = const { Cell::new(0) };
}

/// Resets the budget; the hub calls it whenever it resumes a greenlet.
pub(crate) fn reset() {
    SPENT.with(|spent| spent.set(0));
}

/// Counts one completed operation.
pub(crate) fn spend() {
    SPENT.with(|spent| spent.set(spent.get() + 1));
}

/// Whether the budget is spent.
pub(crate) fn is_spent() -> bool {
    SPENT.with(Cell::get) >= IO_BUDGET
}
