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

/// A greenlet that runs `f` once, then is revived once: from then on it
/// finishes warm (it keeps its stack for the next revive).
fn revived_once(g: &mut Greenlet) {
    assert!(g.revive(|v| v).is_ok());
    g.switch(unit());
    assert!(g.is_dead());
}

greenlet::greenlet_local! {
    static HELD: std::cell::RefCell<Option<util::DropToken>> = std::cell::RefCell::new(None);
}

#[test]
fn a_greenlet_revived_again_keeps_its_stack_between_runs() {
    leak_check(|| {
        let drops = Drops::new();
        let mut g = Greenlet::builder().stack_size(32 * 1024).build(|v| v);
        g.switch(unit());
        let stacks = stack::stats().in_use;
        revived_once(&mut g);
        assert_eq!(stack::stats().in_use, stacks + 1, "a revived greenlet keeps its stack when it finishes");

        for round in 0..3 {
            let token = drops.token();
            let id = g.id();
            assert!(
                g.revive(move |v| {
                    // A local of the run before would still hold its token.
                    assert!(HELD.with(|held| held.borrow_mut().replace(token).is_none()), "a new run has new locals");
                    val(take::<i32>(v) + round)
                })
                .is_ok()
            );
            assert_ne!(g.id(), id, "a new id for every revive");
            assert!(!g.is_started(), "pending, though it holds a stack");
            assert_eq!(stack::stats().in_use, stacks + 1, "no new stack for the revive");
            let value = take::<i32>(g.switch(val(100)));
            assert_eq!(value, 100 + round);
            assert!(g.is_dead());
            assert_eq!(drops.count(), round as usize + 1, "each run's closure and locals are dropped when it ends");
        }
        drop(g);
        assert_eq!(stack::stats().in_use, stacks, "dropping it gives the stack back");
    });
}

#[test]
fn a_greenlet_revived_on_its_kept_stack_switches_panics_and_revives_again() {
    leak_check(|| {
        let mut g = Greenlet::new(|v| v);
        g.switch(unit());
        revived_once(&mut g);
        g.revive(|_| {
            let back = suspend(val("inside"));
            panic!("warm: {}", take::<&str>(back));
        })
        .unwrap_or_else(|_| panic!("a dead greenlet nobody else holds revives"));
        assert_eq!(take::<&str>(g.switch(unit())), "inside");
        assert!(g.is_active() && g.is_started());
        let err = catch(|| g.switch(val("bye")));
        assert_eq!(panic_text(err), "warm: bye");
        assert!(g.is_dead());
        // A panic ends the run like a return: the next revive still works.
        assert!(g.revive(|v| val(take::<i32>(v) * 2)).is_ok());
        assert_eq!(take::<i32>(g.switch(val(21))), 42);
    });
}

#[test]
fn a_greenlet_revived_on_its_kept_stack_and_killed_before_it_ran_drops_its_closure() {
    leak_check(|| {
        let drops = Drops::new();
        let mut g = Greenlet::new(|v| v);
        g.switch(unit());
        revived_once(&mut g);
        let token = drops.token();
        assert!(
            g.revive(move |v| {
                drop(token);
                v
            })
            .is_ok()
        );
        let _ = g.throw(Box::new(greenlet::GreenletExit));
        assert!(g.is_dead());
        assert_eq!(drops.count(), 1, "the closure that never ran is dropped");
        assert!(g.revive(|_| val("ran")).is_ok());
        assert_eq!(take::<&str>(g.switch(unit())), "ran");
        // Revived and dropped before it ran: its closure and stack go.
        let token = drops.token();
        assert!(
            g.revive(move |v| {
                drop(token);
                v
            })
            .is_ok()
        );
        drop(g);
        assert_eq!(drops.count(), 2);
    });
}

#[test]
fn dead_greenlets_keep_at_most_64_stacks_per_thread() {
    leak_check(|| {
        let stacks = stack::stats().in_use;
        let mut all: Vec<Greenlet> = (0..100)
            .map(|_| {
                let mut g = Greenlet::new(|v| v);
                g.switch(unit());
                revived_once(&mut g);
                g
            })
            .collect();
        assert_eq!(stack::stats().in_use, stacks + 64, "the first 64 keep theirs");
        // Those that kept no stack revive and run all the same.
        for g in &mut all {
            assert!(g.revive(|v| val(take::<i32>(v) + 1)).is_ok());
            assert_eq!(take::<i32>(g.switch(val(1))), 2);
        }
        drop(all);
        assert_eq!(stack::stats().in_use, stacks);
    });
}

#[test]
fn a_greenlet_that_kept_its_stack_is_released_at_thread_exit() {
    thread_local! {
        static KEPT: std::cell::RefCell<Vec<Greenlet>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    let outcome = std::thread::spawn(|| {
        let mut pending = Greenlet::new(|v| v);
        pending.switch(unit());
        revived_once(&mut pending);
        assert!(pending.revive(|v| v).is_ok());
        let mut dead = Greenlet::new(|v| v);
        dead.switch(unit());
        revived_once(&mut dead);
        // Left for the thread's teardown to drop.
        KEPT.with(|kept| kept.borrow_mut().extend([pending, dead]));
        stack::stats().in_use
    })
    .join();
    assert_eq!(outcome.expect("the thread exits cleanly"), 2, "both kept their stacks");
}
