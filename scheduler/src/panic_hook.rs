//! A panic hook that names the greenlet a panic happened in.
//!
//! Rust's default hook says `thread 'main' panicked at ...`, which for a
//! greenlet names only the hub's thread. The runtime chains its own hook once
//! per process, in front of whatever hook was installed before (the default
//! one or the user's). Without a `tracing` subscriber it writes one line to
//! stderr naming the greenlet and where it was spawned, then defers to the
//! previous hook; with a subscriber, the hub reports the panic through
//! `tracing` instead (an `error` event with the greenlet's id and name).

use std::panic;
use std::sync::Once;

use crate::hub;

/// Chains the hook, once per process.
pub(crate) fn install() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if !tracing::dispatcher::has_been_set() {
                if let Some((label, spawned_at)) = hub::current_task_label() {
                    eprintln!("runtime: greenlet {label} (spawned at {spawned_at}) panicked:");
                }
            }
            previous(info);
        }));
    });
}
