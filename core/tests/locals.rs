//! Greenlet-local storage (`greenlet_local!` / `GreenletLocal`), the Rust
//! counterpart of each greenlet's own contextvars context. Ports the
//! contextvars cases of Python greenlet's test suite (test_contextvars.py).
//!
//! A new greenlet always starts with no values, as a Python greenlet starts
//! with an empty context. There is no API to copy or share one greenlet's
//! values with another (Python's `copy_context().run` and writable
//! `gr_context`), so the cases about propagating or sharing a context
//! (test_context_shared, and the propagation halves of the others) have no
//! counterpart; the isolation they also check is ported.

mod util;

use std::cell::{Cell, RefCell};
use std::collections::HashMap;

use greenlet::{Greenlet, getcurrent, greenlet_local};
use util::{DropToken, Drops, Log, leak_check, suspend, take, unit, val};

greenlet_local! {
    /// Python's `ID_VAR` context variable.
    static ID_VAR: Cell<Option<u32>> = Cell::new(None);
}

/// Python's `_increment`: reads the variable (expecting the default), sets it
/// to this greenlet's id, then twice counts the id it sees and switches to
/// main.
fn increment(greenlet_id: u32, counts: &RefCell<HashMap<u32, u32>>) {
    assert_eq!(ID_VAR.with(Cell::get), None, "a new greenlet sees the default");
    ID_VAR.with(|v| v.set(Some(greenlet_id)));
    for _ in 0..2 {
        *counts.borrow_mut().entry(ID_VAR.with(Cell::get).unwrap()).or_default() += 1;
        suspend(unit());
    }
}

/// Python's `_test_context`: main sets the variable to 0, starts four
/// greenlets that each count their own id twice while main counts 0 twice,
/// then finishes them in the given order.
fn run_counting_scenario(finish_order: &[usize]) -> HashMap<u32, u32> {
    let counts = std::rc::Rc::new(RefCell::new(HashMap::new()));
    ID_VAR.with(|v| v.set(Some(0)));
    let lets: Vec<Greenlet> = (1..=4)
        .map(|id| {
            let counts = counts.clone();
            Greenlet::new(move |_| {
                increment(id, &counts);
                unit()
            })
        })
        .collect();
    for _ in 0..2 {
        *counts.borrow_mut().entry(ID_VAR.with(Cell::get).unwrap()).or_default() += 1;
        for g in &lets {
            g.switch(unit());
        }
    }
    for &i in finish_order {
        lets[i].switch(unit());
    }
    assert!(lets.iter().all(Greenlet::is_dead));
    assert_eq!(ID_VAR.with(Cell::get), Some(0), "main's value is untouched");
    counts.take()
}

// greenlet catalogue #105 (test_context_propagated_by_context_run). Without
// `Context.run` there is nothing to propagate: each greenlet starts from the
// default rather than from a copy of main's value, and keeps its own value
// across suspensions; upstream finishes them in reverse order.
#[test]
fn each_greenlet_keeps_its_own_value_across_suspensions() {
    leak_check(|| {
        let counts = run_counting_scenario(&[3, 2, 1, 0]);
        assert_eq!(counts, HashMap::from([(0, 2), (1, 2), (2, 2), (3, 2), (4, 2)]));
    });
}

// greenlet catalogue #106 (test_context_propagated_by_setting_attribute).
// Python keeps `gr_context` after the greenlet dies; here a greenlet's
// values are dropped when it finishes, inside the greenlet itself.
#[test]
fn values_are_dropped_inside_the_greenlet_when_it_finishes() {
    struct Probe(Log<String>);

    impl Drop for Probe {
        fn drop(&mut self) {
            let current = getcurrent();
            self.0.push(format!("dropped in {}", current.name().unwrap_or_default()));
        }
    }

    greenlet_local! {
        static PROBE: RefCell<Option<Probe>> = RefCell::new(None);
    }

    leak_check(|| {
        let log = Log::new();
        let l = log.clone();
        let g = Greenlet::builder().name("owner").build(move |_| {
            PROBE.with(|p| *p.borrow_mut() = Some(Probe(l.clone())));
            suspend(unit());
            l.push("body finished".to_owned());
            unit()
        });
        g.switch(unit());
        assert!(log.is_empty(), "kept while suspended");
        g.switch(unit());
        assert_eq!(log.get(), ["body finished", "dropped in owner"]);
        // main has no value of its own.
        assert!(PROBE.with(|p| p.borrow().is_none()));
    });
}

// A value created by another value's destructor, as the greenlet finishes,
// is dropped in the greenlet too, before its result is delivered (as
// thread-local values created by a destructor at thread exit are).
#[test]
fn values_created_while_values_are_dropped_are_dropped_inside_the_greenlet() {
    struct Probe(Log<String>);

    impl Drop for Probe {
        fn drop(&mut self) {
            let current = getcurrent();
            self.0.push(format!("late value dropped in {}", current.name().unwrap_or_default()));
        }
    }

    /// Creates `LATE`'s value when dropped.
    struct Creator(Log<String>);

    impl Drop for Creator {
        fn drop(&mut self) {
            let log = self.0.clone();
            LATE.with(move |late| *late.borrow_mut() = Some(Probe(log)));
        }
    }

    greenlet_local! {
        static EARLY: RefCell<Option<Creator>> = RefCell::new(None);
        static LATE: RefCell<Option<Probe>> = RefCell::new(None);
    }

    leak_check(|| {
        let log = Log::new();
        let l = log.clone();
        let g = Greenlet::builder().name("owner").build(move |_| {
            EARLY.with(|e| *e.borrow_mut() = Some(Creator(l)));
            unit()
        });
        g.switch(unit());
        assert_eq!(log.get(), ["late value dropped in owner"]);
        assert!(LATE.with(|late| late.borrow().is_none()), "main has no value of its own");
    });
}

// greenlet catalogue #107 (test_context_not_propagated)
#[test]
fn new_greenlet_sees_the_default_not_its_creators_value() {
    leak_check(|| {
        ID_VAR.with(|v| v.set(Some(7)));
        let seen = Greenlet::new(|_| {
            let before = ID_VAR.with(Cell::get);
            ID_VAR.with(|v| v.set(Some(8)));
            val(before)
        })
        .switch(unit());
        assert_eq!(take::<Option<u32>>(seen), None);
        assert_eq!(ID_VAR.with(Cell::get), Some(7));
        // The same one level down: a grandchild does not see its parent's.
        let seen = Greenlet::new(|_| {
            ID_VAR.with(|v| v.set(Some(9)));
            let inner = Greenlet::new(|_| val(ID_VAR.with(Cell::get)));
            inner.switch(unit())
        })
        .switch(unit());
        assert_eq!(take::<Option<u32>>(seen), None);
    });
}

// greenlet catalogue #110 (test_not_broken_if_using_attribute_instead_of_context_run).
// With per-greenlet values, greenlets may switch and finish in any order.
#[test]
fn values_stay_isolated_whatever_the_switch_order() {
    leak_check(|| {
        let counts = run_counting_scenario(&[0, 2, 1, 3]);
        assert_eq!(counts, HashMap::from([(0, 2), (1, 2), (2, 2), (3, 2), (4, 2)]));

        // And interleaved arbitrarily, each finds its own value each time.
        let a = Greenlet::new(|_| {
            ID_VAR.with(|v| v.set(Some(1)));
            suspend(unit());
            suspend(val(ID_VAR.with(Cell::get)));
            val(ID_VAR.with(Cell::get))
        });
        let b = Greenlet::new(|_| {
            ID_VAR.with(|v| v.set(Some(2)));
            suspend(unit());
            val(ID_VAR.with(Cell::get))
        });
        a.switch(unit());
        b.switch(unit());
        assert_eq!(take::<Option<u32>>(a.switch(unit())), Some(1));
        assert_eq!(take::<Option<u32>>(b.switch(unit())), Some(2));
        assert_eq!(take::<Option<u32>>(a.switch(unit())), Some(1));
    });
}

// greenlet catalogue #111 (test_context_assignment_while_running). Python can
// also reset or replace a greenlet's context while it runs or is suspended;
// there is no such API here. What carries over: nothing exists until first
// use, the value is created on first access and kept across suspensions, and
// it is dropped exactly once when the greenlet finishes.
#[test]
fn value_is_created_on_first_access_kept_across_switches_and_dropped_once() {
    thread_local! {
        static INITS: Cell<u32> = const { Cell::new(0) };
        static DROPS: RefCell<Option<Drops>> = const { RefCell::new(None) };
    }

    struct Tracked {
        hits: Cell<u32>,
        _token: DropToken,
    }

    greenlet_local! {
        static TRACKED: Tracked = {
            INITS.with(|n| n.set(n.get() + 1));
            Tracked { hits: Cell::new(0), _token: DROPS.with(|d| d.borrow().as_ref().unwrap().token()) }
        };
    }

    leak_check(|| {
        let drops = Drops::new();
        DROPS.with(|d| *d.borrow_mut() = Some(drops.clone()));
        let g = Greenlet::new(|_| {
            suspend(unit());
            // First access: created now.
            TRACKED.with(|t| t.hits.set(t.hits.get() + 1));
            suspend(unit());
            TRACKED.with(|t| t.hits.set(t.hits.get() + 1));
            val(TRACKED.with(|t| t.hits.get()))
        });
        g.switch(unit());
        assert_eq!(INITS.with(Cell::get), 0, "nothing is created before first use");
        g.switch(unit());
        assert_eq!(INITS.with(Cell::get), 1);
        assert_eq!(drops.count(), 0);
        assert_eq!(take::<u32>(g.switch(unit())), 2, "one value, kept across the suspension");
        assert_eq!(INITS.with(Cell::get), 1);
        assert_eq!(drops.count(), 1, "dropped when the greenlet finished");
        drop(g);
        assert_eq!(drops.count(), 1, "and only once");
    });
}

// greenlet catalogue §1.13 (gr_context of a killed greenlet). A greenlet killed
// by dropping its last handle also drops its values, and their destructors
// may still switch.
#[test]
fn values_of_a_killed_greenlet_are_dropped_and_may_switch() {
    struct SwitchOnDrop(Log<String>);

    impl Drop for SwitchOnDrop {
        fn drop(&mut self) {
            let back = Greenlet::new(|v| v).switch(val("helper"));
            self.0.push(format!("dropped after switching to the {}", take::<&str>(back)));
        }
    }

    greenlet_local! {
        static SLOT: RefCell<Option<SwitchOnDrop>> = RefCell::new(None);
    }

    leak_check(|| {
        let log = Log::new();
        let l = log.clone();
        let g = Greenlet::new(move |_| {
            SLOT.with(|s| *s.borrow_mut() = Some(SwitchOnDrop(l)));
            suspend(unit());
            unit()
        });
        g.switch(unit());
        drop(g);
        assert_eq!(log.get(), ["dropped after switching to the helper"]);
    });
}
