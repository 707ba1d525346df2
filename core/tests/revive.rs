//! `Greenlet::revive`: a dead greenlet made pending again, for schedulers
//! that keep a greenlet with each task record. A revived greenlet must be
//! indistinguishable from a new one, and only a greenlet nobody else can
//! reach may be revived.

mod util;

use greenlet::{Greenlet, getcurrent, live_greenlets, stack};
use util::{Drops, catch, leak_check, panic_text, suspend, take, unit, val};

#[test]
fn a_revived_greenlet_runs_its_new_closure_with_a_new_id_and_the_same_parent() {
    leak_check(|| {
        let parent = Greenlet::new(|v| v);
        let mut g = Greenlet::builder().name("worker").stack_size(32 * 1024).parent(&parent).build(|_| val(1));
        // Started from main; finished into its parent, which starts with the
        // value and returns it to main.
        assert_eq!(take::<i32>(g.switch(unit())), 1);
        assert!(g.is_dead());
        let (first, live) = (g.id(), live_greenlets());
        let stacks = stack::stats().in_use;

        assert!(g.revive(|v| val(take::<i32>(v) * 10)).is_ok());
        assert!(!g.is_started() && !g.is_dead());
        assert_ne!(g.id(), first);
        assert_eq!((g.name(), g.stack_size()), (Some("worker"), 32 * 1024));
        assert_eq!(g.parent(), Some(parent.clone()));
        assert_eq!(live_greenlets(), live, "the same greenlet, not a new one");
        assert_eq!(stack::stats().in_use, stacks, "a pending greenlet holds no stack");

        // The parent is dead by now, so the result goes to main.
        assert_eq!(take::<i32>(g.switch(val(4))), 40);
        assert!(g.is_dead());
    });
}

#[test]
fn a_revived_greenlet_suspends_and_panics_like_a_new_one() {
    leak_check(|| {
        let mut g = Greenlet::new(|v| v);
        g.switch(unit());
        g.revive(|_| {
            let back = suspend(val("inside"));
            panic!("revived: {}", take::<&str>(back));
        })
        .unwrap_or_else(|_| panic!("a dead greenlet nobody else holds revives"));
        assert_eq!(take::<&str>(g.switch(unit())), "inside");
        assert!(g.is_active());
        let err = catch(|| g.switch(val("bye")));
        assert_eq!(panic_text(err), "revived: bye");
        assert!(g.is_dead());
    });
}

#[test]
fn only_a_dead_greenlet_nobody_else_holds_revives() {
    leak_check(|| {
        let drops = Drops::new();
        let closure = |drops: &Drops| {
            let token = drops.token();
            move |v| {
                drop(token);
                v
            }
        };

        // Pending: its own closure would be lost.
        let mut pending = Greenlet::new(|v| v);
        assert!(pending.revive(closure(&drops)).is_err());
        // Suspended.
        let mut suspended = Greenlet::new(|_| suspend(unit()));
        suspended.switch(unit());
        assert!(suspended.revive(closure(&drops)).is_err());
        // The main greenlet, which is never dead.
        assert!(getcurrent().revive(closure(&drops)).is_err());
        // Dead, but reachable through another handle or a weak one.
        let mut dead = Greenlet::new(|v| v);
        dead.switch(unit());
        let other = dead.clone();
        assert!(dead.revive(closure(&drops)).is_err());
        drop(other);
        let weak = dead.downgrade();
        assert!(dead.revive(closure(&drops)).is_err());
        drop(weak);
        // Every refused closure came back and was dropped unrun.
        assert_eq!(drops.count(), 5);
        assert!(dead.revive(closure(&drops)).is_ok());
        assert_eq!(drops.count(), 5, "kept to run");
        dead.switch(unit());
        assert_eq!(drops.count(), 6);
        drop(suspended);
    });
}

#[test]
fn reviving_a_greenlet_killed_before_it_ran_drops_its_closure() {
    leak_check(|| {
        let drops = Drops::new();
        let token = drops.token();
        let mut g = Greenlet::new(move |v| {
            drop(token);
            v
        });
        // Killed before it started: dead, its closure never ran.
        let _ = g.throw(Box::new(greenlet::GreenletExit));
        assert!(g.is_dead());
        assert!(g.revive(|v| v).is_ok());
        assert_eq!(drops.count(), 1, "the closure that never ran is dropped, not kept");
        g.switch(unit());
        assert!(g.is_dead());
    });
}
