//! A panic hook that names the greenlet a panic happened in.
//!
//! Rust's default hook says `thread 'main' panicked at ...`, which for a
//! greenlet names only the hub's thread. The runtime chains its own hook once
//! per process, in front of whatever hook was installed before (the default
//! one or the user's). Without a `tracing` subscriber it writes one line to
//! stderr naming the greenlet and where it was spawned, then defers to the
//! previous hook; with a subscriber, the hub reports the panic through
//! `tracing` instead (an `error` event with the greenlet's id and name).
//!
//! While the hook runs, the thread is marked (see [`is_running`]): a greenlet
//! must not park then, since another greenlet's panic during the park would
//! start on a thread whose panic hook is still running, and Rust aborts the
//! process for that. The `hooks` feature's interposed calls ask, and block
//! the thread instead of parking.

use std::cell::Cell;
use std::panic;
use std::sync::Once;

use crate::hub;

/// Chains the hook, once per process.
pub(crate) fn install() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            let _running = Running::enter();
            if !tracing::dispatcher::has_been_set() {
                if let Some((label, spawned_at)) = hub::current_task_label() {
                    eprintln!("runtime: greenlet {label} (spawned at {spawned_at}) panicked:");
                }
            }
            previous(info);
        }));
    });
}

thread_local! {
    static RUNNING: Cell<bool> = const { Cell::new(false) };
}

/// Marks the thread as running the panic hook until dropped.
struct Running(bool);

impl Running {
    fn enter() -> Running {
        Running(RUNNING.try_with(|running| running.replace(true)).unwrap_or(true))
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = RUNNING.try_with(|running| running.set(self.0));
    }
}

/// Whether this thread is running the runtime's panic hook (and the hooks
/// it chains to: the user's, installed before the runtime started, or std's
/// default).
#[inline]
pub(crate) fn is_running() -> bool {
    RUNNING.try_with(Cell::get).unwrap_or(false)
}
