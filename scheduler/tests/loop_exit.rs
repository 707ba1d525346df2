//! gevent's `LoopExit` by default: a main greenlet that waits on a `sync`
//! value nothing can ever provide fails at once with the deadlock report,
//! when no other thread exists that could provide it (gevent's
//! `test__hub.py` / `test__queue.py` / `test__semaphore.py` cases that end in
//! `LoopExit`).
//!
//! The test harness keeps threads of its own, so this file runs without it
//! (`harness = false`): its `main` is the only thread, as in a program that
//! calls `runtime::run` from `main`. An alarm ends the process if a case
//! hangs (the behaviour before: a warning after 5 seconds, then a hang).

use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Duration;

use runtime_scheduler::sync::{Event, Semaphore, channel};
use runtime_scheduler::{self as rt, sleep, spawn};

/// Runs `f` on a fresh hub and returns the message of the panic `run`
/// raised.
fn deadlock_of<T: 'static>(f: impl FnOnce() -> T + 'static) -> String {
    let payload = panic::catch_unwind(AssertUnwindSafe(|| rt::run(f))).err().expect("the wait ends in a panic");
    greenlet::panic_message(&*payload)
}

fn case(name: &str, f: impl FnOnce()) {
    f();
    println!("test {name} ... ok");
}

fn main() {
    // SAFETY: `alarm` only arms a timer of this process; its default action
    // (ending the process) is the hang guard wanted here.
    unsafe { libc::alarm(30) };
    panic::set_hook(Box::new(|_| {})); // the expected panics are checked, not printed

    case("an_event_nobody_sets_is_a_deadlock_at_once", || {
        let report = deadlock_of(|| Event::new().wait());
        assert!(report.contains("deadlock") && report.contains("Event::wait"), "{report}");
    });

    case("a_channel_whose_sender_waits_too_is_a_deadlock", || {
        // gevent test__queue.py: a get on an empty queue from the main
        // greenlet with no other greenlets raises LoopExit.
        let report = deadlock_of(|| {
            let (tx, rx) = channel::unbounded::<u32>();
            let (_keep, never) = channel::bounded::<()>(0);
            let helper = spawn(move || {
                never.recv().ok();
                tx.send(1).ok();
            });
            let got = rx.recv();
            drop(helper);
            got
        });
        assert!(report.contains("deadlock") && report.contains("Other greenlets, all parked"), "{report}");
    });

    case("a_semaphore_never_released_is_a_deadlock", || {
        // gevent test__semaphore.py (a fairness run ends in LoopExit).
        let report = deadlock_of(|| drop(Semaphore::new(0).acquire()));
        assert!(report.contains("deadlock"), "{report}");
    });

    case("a_shared_value_a_thread_will_set_is_waited_for", || {
        // A thread exists that could set it: no report, the wait ends.
        let event = Arc::new(Event::new());
        let setter = event.clone();
        let thread = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            setter.set();
        });
        rt::run(move || event.wait());
        thread.join().unwrap();
    });

    case("a_value_set_by_a_greenlet_is_not_a_deadlock", || {
        let got = rt::run(|| {
            let event = std::rc::Rc::new(Event::new());
            let e = event.clone();
            spawn(move || {
                sleep(Duration::from_millis(2));
                e.set();
            });
            event.wait();
            "set"
        });
        assert_eq!(got, "set");
    });

    case("idle_blocking_threads_do_not_count", || {
        // After a blocking job, the pool's threads idle: still alone.
        let report = deadlock_of(|| {
            rt::blocking(|| ());
            Event::new().wait();
        });
        assert!(report.contains("deadlock"), "{report}");
    });

    case("a_thread_that_sends_and_ends_is_never_a_deadlock", || {
        // The thread's last send can land while the hub is deciding whether
        // it is alone; the send must win (it once lost, one run in hundreds).
        for round in 0..500 {
            let (tx, rx) = channel::unbounded();
            let producer = std::thread::spawn(move || (0..3).for_each(|i| tx.send(i).unwrap()));
            let got: Vec<i32> = rt::run(move || rx.iter().collect());
            producer.join().unwrap();
            assert_eq!(got, [0, 1, 2], "round {round}");
        }
    });
}
