//! The registrations the hooks made with this thread's hub: one per
//! descriptor used cooperatively, kept until the descriptor is closed (the
//! `close` hook deregisters it first), so that a blocking call costs no
//! `epoll_ctl`.
//!
//! Each remembers the generation of the descriptor's word in
//! [`fds`](crate::fds) it was made for: a registration of an older generation
//! belongs to a descriptor that was closed elsewhere (on another thread, or
//! behind the hooks' back), and is forgotten without touching the poller.
//! When another hub runs on the thread (the previous `runtime::run`
//! returned), every registration is stale.

use std::cell::RefCell;
use std::os::fd::RawFd;
use std::rc::Rc;

use runtime_scheduler::{Registration, foreign};

use crate::real;

struct Slot {
    generation: u32,
    registration: Rc<Registration>,
}

struct Slots {
    /// The hub the registrations belong to.
    hub: u64,
    slots: Vec<Option<Slot>>,
}

thread_local! {
    static SLOTS: RefCell<Slots> = const { RefCell::new(Slots { hub: 0, slots: Vec::new() }) };
}

/// Runs `f` on this thread's table for `hub` (emptied first if it held
/// another hub's), unless the table is busy or gone (thread exit).
fn with<R>(hub: u64, f: impl FnOnce(&mut Vec<Option<Slot>>) -> R) -> Option<R> {
    let mut old = Vec::new();
    let result = SLOTS
        .try_with(|slots| {
            let mut slots = slots.try_borrow_mut().ok()?;
            if slots.hub != hub {
                // A stopped hub's: dropping them does nothing.
                old = std::mem::take(&mut slots.slots);
                slots.hub = hub;
            }
            Some(f(&mut slots.slots))
        })
        .ok()
        .flatten();
    drop(old);
    result
}

/// The registration of `fd` (of `generation`) with the hub `hub`, made if
/// needed; `None` if the hub cannot poll it (a regular file) or it is
/// registered already by other means (a `runtime::net` socket).
pub(crate) fn get(hub: u64, fd: RawFd, generation: u32) -> Option<Rc<Registration>> {
    let index = usize::try_from(fd).ok()?;
    let found = with(hub, |slots| match slots.get_mut(index) {
        Some(Some(slot)) if slot.generation == generation => Ok(slot.registration.clone()),
        Some(slot) => Err(slot.take()),
        None => Err(None),
    })?;
    let stale = match found {
        Ok(registration) => return Some(registration),
        Err(stale) => stale,
    };
    if let Some(stale) = stale {
        foreign::forget_closed(&stale.registration);
    }
    let registration = Rc::new(real::register(fd).ok()?);
    let slot = Slot { generation, registration: registration.clone() };
    let displaced = with(hub, |slots| {
        if slots.len() <= index {
            slots.resize_with(index + 1, || None);
        }
        slots[index].replace(slot)
    });
    drop(displaced);
    Some(registration)
}

/// Takes `fd`'s registration off the table of this thread's hub (if it has
/// one) before the descriptor is closed or its mode changes: one of the
/// current `generation` leaves the poller now and wakes its waiters; an older
/// one is forgotten.
pub(crate) fn remove(fd: RawFd, generation: u32) {
    let Some(hub) = foreign::hub_id() else { return };
    let Ok(index) = usize::try_from(fd) else { return };
    let Some(Some(slot)) = with(hub, |slots| slots.get_mut(index).and_then(Option::take)) else { return };
    if slot.generation == generation {
        foreign::deregister(&slot.registration);
    } else {
        foreign::forget_closed(&slot.registration);
    }
}
