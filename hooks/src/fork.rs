//! `fork()`: the child starts with no hub. Its only thread is a copy of the
//! forking one, whose hub (if it had one) lives on in the parent: in the
//! child that hub's greenlets must never run, so the hooked calls of its
//! copy behave as libc's. A hub the child starts of its own cooperates as
//! usual (gevent's `reinit`).
//!
//! The `pthread_atfork` handler that tells is registered at startup, from an
//! ELF constructor, so that a `fork` before any cooperative call is covered
//! too.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use runtime_scheduler::foreign;

use crate::{futex, real};

/// In a forked child: the id of the hub the forking thread ran (0: none).
static FORKED_HUB: AtomicU64 = AtomicU64::new(0);

/// Whether this process is a forked child (of a process with the hooks).
static CHILD: AtomicBool = AtomicBool::new(false);

/// Runs at startup, before `main` (the dynamic linker runs `.init_array`).
#[used]
#[unsafe(link_section = ".init_array")]
pub(crate) static REGISTER: extern "C" fn() = register;

extern "C" fn register() {
    real::at_fork_child(forked);
}

/// The child's handler: only stores and a read of a thread-local word, as a
/// fork handler must.
extern "C" fn forked() {
    FORKED_HUB.store(foreign::hub_id().unwrap_or(0), Ordering::Relaxed);
    CHILD.store(true, Ordering::Relaxed);
    // SAFETY: in the child's handler, before anything else runs there.
    unsafe { futex::forget_parents_waiters() };
}

/// Whether `hub` is the parent's, copied into this forked child.
#[inline]
pub(crate) fn is_parents_hub(hub: u64) -> bool {
    FORKED_HUB.load(Ordering::Relaxed) == hub
}

/// Whether this process is a forked child.
pub(crate) fn in_child() -> bool {
    CHILD.load(Ordering::Relaxed)
}
