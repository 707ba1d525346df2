//! The cooperative I/O budget: how many operations the running greenlet has
//! completed without parking since the hub last resumed it.

use std::cell::Cell;

/// Consecutive I/O operations a greenlet may complete without parking before
/// it is made to yield, so that a greenlet whose peer always has data ready
/// cannot starve the others (tokio's cooperative budget is 128 too).
pub(crate) const IO_BUDGET: u32 = 128;

thread_local! {
    static SPENT: Cell<u32> = const { Cell::new(0) };
    /// Whether the running greenlet is polling a future in `block_on`, which
    /// yields when a poll answered `Pending` for lack of budget. Any other
    /// executor might poll again at once, forever: its polls are not held
    /// back.
    static IN_BLOCK_ON: Cell<bool> = const { Cell::new(false) };
}

/// Resets the budget; the hub calls it whenever it resumes a greenlet (a
/// greenlet resumed in the middle of a poll then polls unchecked until the
/// poll returns, which only costs it some fairness).
pub(crate) fn reset() {
    SPENT.with(|spent| spent.set(0));
    IN_BLOCK_ON.with(|polling| polling.set(false));
}

/// Counts one completed operation.
pub(crate) fn spend() {
    SPENT.with(|spent| spent.set(spent.get() + 1));
}

/// Whether the budget is spent.
pub(crate) fn is_spent() -> bool {
    SPENT.with(Cell::get) >= IO_BUDGET
}

/// Marks the running greenlet as polling in `block_on` (or no longer).
pub(crate) fn set_in_block_on(polling: bool) {
    IN_BLOCK_ON.with(|cell| cell.set(polling));
}

/// Whether a poll should answer `Pending` (waking its task) because the
/// budget is spent: only inside `block_on`, which then yields.
pub(crate) fn should_defer_poll() -> bool {
    IN_BLOCK_ON.with(Cell::get) && is_spent()
}
