//! Stacks of parked greenlets in `runtime::dump` (gevent's
//! `print_run_info`, py-spy's `dump`): each parked greenlet's stack is read
//! from inside it without disturbing its wait.

mod util;

use std::rc::Rc;
use std::time::Duration;

use runtime_scheduler::sync::{Event, channel};
use runtime_scheduler::{GreenletInfo, dump, run, sleep, spawn, task, timeout, yield_now};
use util::ms;

#[inline(never)]
fn wait_for_the_gate(gate: &Event) {
    gate.wait();
}

#[inline(never)]
fn receive_one(rx: &channel::Receiver<u32>) -> u32 {
    rx.recv().unwrap()
}

#[inline(never)]
fn nap(d: Duration) {
    sleep(d);
}

fn named<'a>(dump: &'a runtime_scheduler::Dump, name: &str) -> &'a GreenletInfo {
    dump.greenlets().iter().find(|g| g.name() == Some(name)).unwrap_or_else(|| panic!("no {name} in {dump}"))
}

#[test]
fn a_parked_greenlet_shows_where_it_waits_innermost_first() {
    run(|| {
        let gate = Rc::new(Event::new());
        let waiter = task::Builder::new().name("waiter").spawn({
            let gate = gate.clone();
            move || wait_for_the_gate(&gate)
        });
        yield_now();
        let dump = dump();
        let stack = named(&dump, "waiter").backtrace().expect("a parked greenlet has a stack");
        let lines: Vec<&str> = stack.lines().collect();
        // (`Event::wait`, or `<...::Event>::wait` with v0 symbol mangling.)
        assert!(lines[0].contains("Event") && lines[0].contains("::wait"), "the call it is parked in first:\n{stack}");
        assert!(lines[1].contains("backtrace::wait_for_the_gate"), "then the caller:\n{stack}");
        assert!(lines[1].contains("backtrace.rs:"), "with file and line:\n{stack}");
        assert!(!stack.contains("corosensei") && !stack.contains("Parker::suspend"), "no machinery:\n{stack}");
        assert!(dump.to_string().contains("backtrace::wait_for_the_gate"), "Display shows it:\n{dump}");
        gate.set();
        waiter.join().unwrap();
    });
}

#[test]
fn only_parked_greenlets_have_a_stack() {
    run(|| {
        let runnable = task::Builder::new().name("runnable").spawn(|| ());
        let delayed = task::Builder::new().name("delayed").spawn_later(Duration::from_secs(60), || ());
        let dump = dump();
        assert_eq!(named(&dump, "main").backtrace(), None, "the running one");
        assert_eq!(named(&dump, "runnable").backtrace(), None, "never started");
        assert_eq!(named(&dump, "delayed").backtrace(), None);
        runnable.join().unwrap();
        delayed.kill();
    });
}

#[test]
fn reading_stacks_does_not_disturb_the_waits() {
    // Every kind of wait, dumped twice while parked, then woken: each gets
    // the result it was waiting for, and timeouts still fire.
    run(|| {
        let gate = Rc::new(Event::new());
        let (tx, rx) = channel::unbounded::<u32>();
        let gated = spawn({
            let gate = gate.clone();
            move || {
                wait_for_the_gate(&gate);
                "opened"
            }
        });
        let receiver = spawn(move || receive_one(&rx));
        let napper = spawn(|| {
            nap(ms(20));
            "rested"
        });
        let timed = spawn(|| timeout(ms(20), || nap(Duration::from_secs(60))).is_err());
        yield_now();
        for _ in 0..2 {
            let dump = dump();
            let stacks = dump.greenlets().iter().filter(|g| g.backtrace().is_some()).count();
            assert_eq!(stacks, 4, "{dump}");
            // (Debug information limited to line tables drops the module path.)
            assert!(dump.to_string().contains("receive_one at "), "{dump}");
        }
        tx.send(7).unwrap();
        gate.set();
        assert_eq!(gated.join().unwrap(), "opened");
        assert_eq!(receiver.join().unwrap(), 7);
        assert_eq!(napper.join().unwrap(), "rested");
        assert!(timed.join().unwrap(), "the timeout fired");
    });
}

#[test]
fn a_killed_greenlet_whose_stack_was_read_unwinds_normally() {
    run(|| {
        let drops = util::Drops::new();
        let guard = drops.guard();
        let victim = spawn(move || {
            let _guard = guard;
            nap(Duration::from_secs(60));
        });
        yield_now();
        assert!(dump().to_string().contains("backtrace::nap"));
        victim.kill();
        assert!(victim.join().unwrap_err().is_killed());
        assert_eq!(drops.count(), 1);
    });
}

#[test]
fn many_parked_greenlets_share_one_resolution() {
    run(|| {
        let gate = Rc::new(Event::new());
        let waiters: Vec<_> = (0..200)
            .map(|_| {
                let gate = gate.clone();
                spawn(move || wait_for_the_gate(&gate))
            })
            .collect();
        yield_now();
        let dump = dump();
        let stacks: Vec<&str> = dump.greenlets().iter().filter_map(GreenletInfo::backtrace).collect();
        assert_eq!(stacks.len(), 200);
        assert!(stacks.iter().all(|s| s == &stacks[0]), "the same place, the same text");
        gate.set();
        waiters.into_iter().for_each(|w| w.join().unwrap());
    });
}
