//! The switch tracer (`settrace`): which events it sees and in what order, a
//! tracer that panics, and tracers that switch greenlets themselves. Ports
//! cases of Python greenlet's test suite (test_tracing.py, test_greenlet.py
//! and tracing.rst).
//!
//! Unlike Python, transfers made while the tracer runs (by the tracer itself,
//! or by anyone while the tracer is suspended in a switch of its own) are not
//! traced: Rust cannot call the tracer's `FnMut` re-entrantly.

mod util;

use std::cell::Cell;
use std::rc::Rc;

use greenlet::{Greenlet, GreenletExit, TraceEvent, getcurrent, is_tracing, settrace};
use util::{Log, Slot, TestError, TraceGuard, catch, leak_check, panic_payload, raise, suspend, take, unit, val};

type Events = Log<(TraceEvent, String, String)>;

fn name(g: &Greenlet) -> String {
    g.name().map_or_else(|| format!("#{}", g.id()), str::to_owned)
}

/// Installs a tracer that records every event in `events`.
fn record_into(events: &Events) -> TraceGuard {
    let sink = events.clone();
    settrace(Some(Box::new(move |event, from, to| sink.push((event, name(from), name(to))))));
    TraceGuard
}

fn ev(event: TraceEvent, from: &str, to: &str) -> (TraceEvent, String, String) {
    (event, from.to_owned(), to.to_owned())
}

fn named(name: &str, run: impl FnOnce(greenlet::Value) -> greenlet::Value + 'static) -> Greenlet {
    Greenlet::builder().name(name).build(run)
}

// greenlet catalogue #95 (test_a_greenlet_tracing)
#[test]
fn tracer_sees_switches_and_a_panic_going_to_the_parent() {
    leak_check(|| {
        let events = Events::new();
        let trace = record_into(&events);
        let g1 = named("g1", |v| v);
        g1.switch(unit());
        let g2 = named("g2", |_| raise(TestError("SomeError")));
        assert_eq!(panic_payload::<TestError, _>(catch(|| g2.switch(unit()))), TestError("SomeError"));
        drop(trace);
        assert_eq!(
            events.get(),
            [
                ev(TraceEvent::Switch, "main", "g1"),
                ev(TraceEvent::Switch, "g1", "main"),
                ev(TraceEvent::Switch, "main", "g2"),
                ev(TraceEvent::Throw, "g2", "main"),
            ]
        );
    });
}

// greenlet catalogue #96 (test_b_exception_disables_tracing)
#[test]
fn panicking_tracer_is_removed_and_its_panic_replaces_the_transfer() {
    leak_check(|| {
        let g = named("g", |_| suspend(unit()));
        g.switch(unit());
        let events = Events::new();
        let sink = events.clone();
        settrace(Some(Box::new(move |event, from, to| {
            sink.push((event, name(from), name(to)));
            raise(TestError("tracer"))
        })));
        let _trace = TraceGuard;
        // The panic is raised in g at its switch point instead of the value;
        // g does not catch it, dies, and it reaches main.
        assert_eq!(panic_payload::<TestError, _>(catch(|| g.switch(val("never delivered")))), TestError("tracer"));
        assert!(!is_tracing());
        assert!(g.is_dead());
        assert_eq!(events.get(), [ev(TraceEvent::Switch, "main", "g")]);
        // Later switches are not traced.
        named("h", |v| v).switch(unit());
        assert_eq!(events.len(), 1);
    });
}

// greenlet catalogue §1.14 (test_b_exception_disables_tracing, for a greenlet
// being started): the greenlet dies before its body runs.
#[test]
fn panicking_tracer_at_a_greenlet_start_kills_it_before_its_body_runs() {
    leak_check(|| {
        let ran = Log::new();
        let r = ran.clone();
        let g = named("g", move |v| {
            r.push(());
            v
        });
        settrace(Some(Box::new(|_, _, _| raise(TestError("tracer")))));
        let _trace = TraceGuard;
        assert_eq!(panic_payload::<TestError, _>(catch(|| g.switch(unit()))), TestError("tracer"));
        assert!(ran.is_empty());
        assert!(g.is_dead());
        assert!(!is_tracing());
    });
}

// greenlet catalogue #97 (test_set_same_tracer_twice). The same boxed tracer
// cannot be installed twice at once in Rust; reinstalling the one `settrace`
// handed back is harmless, and it keeps seeing each transfer once.
#[test]
fn reinstalling_the_same_tracer_is_harmless() {
    leak_check(|| {
        let events = Events::new();
        let _trace = record_into(&events);
        let tracer = settrace(None).expect("settrace returns the tracer it replaces");
        assert!(!is_tracing());
        assert!(settrace(Some(tracer)).is_none());
        assert!(is_tracing());
        named("g", |v| v).switch(unit());
        assert_eq!(events.get(), [ev(TraceEvent::Switch, "main", "g"), ev(TraceEvent::Switch, "g", "main")]);

        // Replacing hands back the previous one, which is no longer called.
        let replaced = settrace(Some(Box::new(|_, _, _| {})));
        assert!(replaced.is_some());
        named("h", |v| v).switch(unit());
        assert_eq!(events.len(), 2);
    });
}

// greenlet catalogue #159 (tracing.rst doctest)
#[test]
fn tracer_sees_the_documented_sequence_including_a_throw() {
    leak_check(|| {
        let events = Log::new();
        let sink = events.clone();
        settrace(Some(Box::new(move |event, from, to| {
            sink.push(format!("Transfer from {} to {} with {event:?}", name(from), name(to)))
        })));
        let trace = TraceGuard;
        let target_slot = Slot::new();
        let (log, target) = (events.clone(), target_slot.clone());
        let origin = named("Origin", move |_| {
            log.push("In origin".into());
            target.get().switch(unit());
            log.push("Returned to origin".into());
            target.get().throw(Box::new(GreenletExit));
            unreachable!("origin is never resumed");
        });
        let origin_ref = origin.clone();
        let target = named("Target", move |_| origin_ref.switch(unit()));
        target_slot.set(&target);
        let result = origin.switch(unit());
        drop(trace);
        assert!(result.is::<GreenletExit>(), "the target died of GreenletExit, returned to its parent, main");
        assert_eq!(
            events.get(),
            [
                "Transfer from main to Origin with Switch",
                "In origin",
                "Transfer from Origin to Target with Switch",
                "Transfer from Target to Origin with Switch",
                "Returned to origin",
                "Transfer from Origin to Target with Throw",
                "Transfer from Target to main with Switch",
            ]
        );
        assert!(target.is_dead() && origin.is_active());
        target_slot.clear();
    });
}

// greenlet catalogue §1.14 ("A switch to self, or to a dead greenlet whose live
// ancestor is the caller, still fires with origin == target"; a throw is a
// 'throw' event)
#[test]
fn tracer_sees_switches_to_self_and_to_dead_greenlets_and_throws() {
    leak_check(|| {
        let events = Events::new();
        let trace = record_into(&events);
        take::<()>(getcurrent().switch(unit()));
        let dead = named("dead", |v| v);
        dead.switch(unit());
        take::<i32>(dead.switch(val(1)));
        let g = named("g", |_| match catch(|| suspend(unit())) {
            Err(_) => val("caught"),
            Ok(_) => val("not thrown"),
        });
        g.switch(unit());
        assert_eq!(take::<&str>(g.throw(Box::new(TestError("thrown")))), "caught");
        drop(trace);
        assert_eq!(
            events.get(),
            [
                ev(TraceEvent::Switch, "main", "main"),
                ev(TraceEvent::Switch, "main", "dead"),
                ev(TraceEvent::Switch, "dead", "main"),
                ev(TraceEvent::Switch, "main", "main"),
                ev(TraceEvent::Switch, "main", "g"),
                ev(TraceEvent::Switch, "g", "main"),
                ev(TraceEvent::Throw, "main", "g"),
                ev(TraceEvent::Switch, "g", "main"),
            ]
        );
    });
}

// greenlet catalogue #66 (test_reentrant_switch_two_greenlets). The tracer
// switches to g2 in the middle of g1's switch to main; every greenlet still
// runs to completion, and g1's value still reaches main afterwards.
#[test]
fn tracer_switching_to_another_greenlet_mid_switch_delays_but_keeps_the_value() {
    leak_check(|| {
        let log = Log::new();
        let switch_to_g2 = Rc::new(Cell::new(false));
        let g2_slot = Slot::new();
        let (l, flag, g2) = (log.clone(), switch_to_g2.clone(), g2_slot.clone());
        settrace(Some(Box::new(move |_, from, to| {
            l.push(format!("TRACE {} -> {}", name(from), name(to)));
            if flag.replace(false) {
                let back = g2.get().switch(val("g2 from tracer"));
                l.push(format!("tracer got {}", take::<&str>(back)));
            }
            l.push("LEAVE TRACE".to_owned());
        })));
        let trace = TraceGuard;
        let (l, flag) = (log.clone(), switch_to_g2.clone());
        let g1 = named("g1", move |arg| {
            l.push(format!("In g1_run with {}", take::<i32>(arg)));
            flag.set(true);
            let from_parent = suspend(val("from g1"));
            l.push(format!("g1 from parent: {}", take::<i32>(from_parent)));
            val("g1 done")
        });
        let l = log.clone();
        let g2 = named("g2", move |arg| {
            l.push(format!("g2 arg: {}", take::<&str>(arg)));
            let from_parent = suspend(val("from g2"));
            l.push(format!("g2 from parent: {}", take::<i32>(from_parent)));
            val("g2 done")
        });
        g2_slot.set(&g2);

        log.push(format!("main got {}", take::<&str>(g1.switch(val(1)))));
        log.push(format!("main got {}", take::<&str>(g1.switch(val(2)))));
        log.push(format!("main got {}", take::<&str>(g2.switch(val(3)))));
        drop(trace);
        assert!(g1.is_dead() && g2.is_dead());
        assert_eq!(
            log.get(),
            [
                "TRACE main -> g1",
                "LEAVE TRACE",
                "In g1_run with 1",
                "TRACE g1 -> main",
                // The tracer's own switches are not traced.
                "g2 arg: g2 from tracer",
                "tracer got from g2",
                "LEAVE TRACE",
                "main got from g1",
                "TRACE main -> g1",
                "LEAVE TRACE",
                "g1 from parent: 2",
                "TRACE g1 -> main",
                "LEAVE TRACE",
                "main got g1 done",
                "TRACE main -> g2",
                "LEAVE TRACE",
                "g2 from parent: 3",
                "TRACE g2 -> main",
                "LEAVE TRACE",
                "main got g2 done",
            ]
        );
        g2_slot.clear();
    });
}

// greenlet catalogue #67 (test_reentrant_switch_three_greenlets). The tracer,
// called as g1 starts, takes a detour through g2 and g3 before g1's body
// runs. Upstream proves the interrupted switch's argument is kept by a
// TypeError; here g1's `run` receives exactly that value, and every detour
// value reaches its own receiver.
#[test]
fn value_of_a_switch_interrupted_by_the_tracer_reaches_its_receiver_later() {
    leak_check(|| {
        let log = Log::new();
        let switch_to_g2 = Rc::new(Cell::new(true));
        let g2_slot = Slot::new();
        let (flag, g2) = (switch_to_g2.clone(), g2_slot.clone());
        let l = log.clone();
        settrace(Some(Box::new(move |_, from, to| {
            l.push(format!("trace {} -> {}", name(from), name(to)));
            if flag.replace(false) {
                let back = g2.get().switch(val("g2 from tracer"));
                l.push(format!("tracer got {}", take::<&str>(back)));
            }
        })));
        let trace = TraceGuard;
        let l = log.clone();
        let g1 = named("g1", move |arg| {
            l.push(format!("g1 arg {}", take::<i32>(arg)));
            val("g1 done")
        });
        let l = log.clone();
        let g2 = named("g2", move |arg| {
            l.push(format!("g2 arg {}", take::<&str>(arg)));
            let l3 = l.clone();
            let g3 = named("g3", move |arg| {
                l3.push(format!("g3 arg {}", take::<&str>(arg)));
                let back = suspend(val("g2 from g3"));
                l3.push(format!("g3 got {}", take::<&str>(back)));
                val("g3 done")
            });
            l.push(format!("g2 got {}", take::<&str>(g3.switch(val("g3 from g2")))));
            let back = suspend(val("main from g2"));
            l.push(format!("g2 got {}", take::<&str>(back)));
            l.push(format!("g2 got {}", take::<&str>(g3.switch(val("g3 from g2 again")))));
            val("g2 done")
        });
        g2_slot.set(&g2);

        // The tracer runs in g1 before its body, and detours: main gets g2's
        // value first.
        log.push(format!("main got {}", take::<&str>(g1.switch(val(1)))));
        // Resuming g1 resumes the tracer; then g1's body gets its 1.
        log.push(format!("main got {}", take::<&str>(g1.switch(val("tracer from main")))));
        log.push(format!("main got {}", take::<&str>(g2.switch(val("g2 from main")))));
        drop(trace);
        assert!(g1.is_dead() && g2.is_dead());
        assert_eq!(
            log.get(),
            [
                "trace main -> g1",
                "g2 arg g2 from tracer",
                "g3 arg g3 from g2",
                "g2 got g2 from g3",
                "main got main from g2",
                "tracer got tracer from main",
                "g1 arg 1",
                "trace g1 -> main",
                "main got g1 done",
                "trace main -> g2",
                "g2 got g2 from main",
                "trace g2 -> g3",
                "g3 got g3 from g2 again",
                "trace g3 -> g2",
                "g2 got g3 done",
                "trace g2 -> main",
                "main got g2 done",
            ]
        );
        g2_slot.clear();
    });
}

// greenlet catalogue #68 (test_reentrant_switch_three_greenlets2). The exact
// log of values and trace events when the tracer starts g2 in the middle of
// main's switch to g1. Upstream also traces the tracer's own transfers and
// everything that happens while it is suspended; here those are silent.
#[test]
fn tracer_starting_a_greenlet_mid_switch_gives_the_exact_event_order() {
    leak_check(|| {
        let results = Log::new();
        let switch_to_g2 = Rc::new(Cell::new(true));
        let g2_slot = Slot::new();
        let (r, flag, g2) = (results.clone(), switch_to_g2.clone(), g2_slot.clone());
        settrace(Some(Box::new(move |event, _, _| {
            r.push(("trace".to_owned(), format!("{event:?}")));
            if flag.replace(false) {
                let back = g2.get().switch(val("g2 from tracefunc"));
                r.push(("tracer got".to_owned(), take::<&str>(back).to_owned()));
            }
        })));
        let trace = TraceGuard;
        let r = results.clone();
        let g1 = named("g1", move |arg| {
            r.push(("g1 arg".to_owned(), take::<&str>(arg).to_owned()));
            let from_parent = suspend(val("from g1_run"));
            r.push(("g1 from parent".to_owned(), take::<&str>(from_parent).to_owned()));
            val("g1 done")
        });
        let r = results.clone();
        let g2 = named("g2", move |arg| {
            r.push(("g2 arg".to_owned(), take::<&str>(arg).to_owned()));
            let from_parent = suspend(val("from g2_run"));
            r.push(("g2 from parent".to_owned(), take::<&str>(from_parent).to_owned()));
            val("g2 done")
        });
        g2_slot.set(&g2);

        let main_got = |label: &str, value: greenlet::Value| {
            results.push((label.to_owned(), take::<&str>(value).to_owned()));
        };
        main_got("main g1", g1.switch(val("g1 from main")));
        main_got("main g2", g1.switch(val("tracer from main")));
        main_got("main g1.2", g1.switch(val("g1 from main 2")));
        main_got("main g2.2", g2.switch(val("g2 from main")));
        drop(trace);
        let expected = [
            ("trace", "Switch"),
            ("g2 arg", "g2 from tracefunc"),
            ("main g1", "from g2_run"),
            ("tracer got", "tracer from main"),
            ("g1 arg", "g1 from main"),
            ("trace", "Switch"),
            ("main g2", "from g1_run"),
            ("trace", "Switch"),
            ("g1 from parent", "g1 from main 2"),
            ("trace", "Switch"),
            ("main g1.2", "g1 done"),
            ("trace", "Switch"),
            ("g2 from parent", "g2 from main"),
            ("trace", "Switch"),
            ("main g2.2", "g2 done"),
        ];
        let expected: Vec<(String, String)> = expected.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
        assert_eq!(results.get(), expected);
        assert!(g1.is_dead() && g2.is_dead());
        g2_slot.clear();
    });
}
