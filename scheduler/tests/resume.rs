//! What a greenlet woken by another one sees when the hub resumes it: its
//! turn in wake order, kills, timeouts and panics raised or reported as
//! usual, itself as the running greenlet in `dump` and in its own tracing
//! span, every resume counted as a switch, and finished greenlets gone.
//! Greenlets that keep waking each other never keep the hub from its own
//! turns for timers, I/O and other threads.

mod util;

use std::cell::Cell;
use std::rc::Rc;
use std::sync::mpsc;
use std::time::Duration;

use runtime_scheduler::sync::Event;
use runtime_scheduler::{Handle, blocking, dump, greenlet_id, metrics, run, sleep, spawn, task, timeout, yield_now};
use util::{Capture, Drops, Log, ms};

/// How long a scenario that could hang may take before it counts as hung.
const HANG_GUARD: Duration = Duration::from_secs(30);

/// Runs `f` on a new thread and returns its value, failing if it takes
/// longer than the hang guard.
fn bounded<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(HANG_GUARD).expect("the scenario ended within the hang guard")
}

#[test]
fn greenlets_woken_by_a_greenlet_run_in_wake_order_when_it_parks() {
    run(|| {
        let log = Log::new();
        let events: Vec<Rc<Event>> = (0..3).map(|_| Rc::new(Event::new())).collect();
        let waiters: Vec<_> = (0..3)
            .map(|i| {
                let (event, log) = (events[i].clone(), log.clone());
                spawn(move || {
                    event.wait();
                    log.push(i);
                })
            })
            .collect();
        yield_now(); // every waiter parks
        for i in [2, 0, 1] {
            events[i].set();
        }
        for waiter in waiters {
            waiter.join().unwrap();
        }
        assert_eq!(log.get(), [2, 0, 1]);
    });
}

#[test]
fn greenlets_that_wake_each_other_count_a_switch_each_time() {
    run(|| {
        const ROUNDS: u64 = 100;
        let (ping, pong) = (Rc::new(Event::new()), Rc::new(Event::new()));
        let ponger = spawn({
            let (ping, pong) = (ping.clone(), pong.clone());
            move || {
                for _ in 0..ROUNDS {
                    ping.wait();
                    ping.clear();
                    pong.set();
                }
            }
        });
        yield_now(); // the ponger waits
        let before = metrics().switches();
        for _ in 0..ROUNDS {
            ping.set();
            pong.wait();
            pong.clear();
        }
        // Each round resumes the ponger and this greenlet once each.
        assert!(metrics().switches() - before >= 2 * ROUNDS, "{:?}", metrics());
        ponger.join().unwrap();
        assert_eq!(metrics().greenlets_alive(), 1, "the ponger is forgotten once done");
    });
}

#[test]
fn a_woken_greenlet_is_the_running_one_in_a_dump() {
    run(|| {
        let go = Rc::new(Event::new());
        let seen = spawn({
            let go = go.clone();
            move || {
                go.wait();
                let dump = dump();
                let me = dump.greenlets().iter().find(|g| g.id() == greenlet_id()).expect("itself").state();
                let others: Vec<_> =
                    dump.greenlets().iter().filter(|g| g.id() != greenlet_id()).map(|g| g.state()).collect();
                let parked_stack = dump.greenlets().iter().any(|g| g.backtrace().is_some());
                (me, others, parked_stack)
            }
        });
        yield_now(); // it waits
        go.set();
        let (me, others, parked_stack) = seen.join().unwrap();
        assert_eq!(me, "running");
        assert_eq!(others, ["parked"]);
        assert!(parked_stack, "the joiner's stack is read from inside its park");
    });
}

#[test]
fn a_greenlet_killed_after_it_was_woken_unwinds_from_its_wait() {
    run(|| {
        let (go, drops) = (Rc::new(Event::new()), Drops::new());
        let victim = spawn({
            let (go, guard) = (go.clone(), drops.guard());
            move || {
                let _guard = guard;
                go.wait();
                unreachable!("killed in its wait");
            }
        });
        yield_now(); // it waits
        go.set(); // runnable now, then killed before it runs
        victim.kill();
        let err = victim.join().unwrap_err();
        assert!(err.is_killed(), "{err:?}");
        assert_eq!(drops.count(), 1, "its destructors ran");
    });
}

#[test]
fn a_timeout_that_expired_while_others_yield_is_raised_in_its_wait() {
    run(|| {
        let waiter = spawn(|| timeout(ms(5), || Event::new().wait()));
        while !waiter.is_finished() {
            yield_now();
        }
        assert!(waiter.join().unwrap().is_err(), "the wait timed out");
    });
}

#[test]
fn a_panic_after_a_wake_reaches_the_join() {
    run(|| {
        let go = Rc::new(Event::new());
        let panicker = spawn({
            let go = go.clone();
            move || {
                go.wait();
                panic!("after the wake-up");
            }
        });
        yield_now(); // it waits
        go.set();
        let err = panicker.join().unwrap_err();
        assert!(err.is_panic(), "{err:?}");
        assert_eq!(metrics().greenlets_alive(), 1, "the hub goes on without it");
    });
}

#[test]
fn a_woken_greenlet_runs_in_its_own_span() {
    // In a child process: a `tracing` subscriber is best global (a scoped
    // one races with the interest other tests' threads cache meanwhile).
    const TEST: &str = "a_woken_greenlet_runs_in_its_own_span";
    if util::is_child(TEST) {
        let capture = Capture::new();
        tracing::subscriber::set_global_default(capture.subscriber()).expect("the only subscriber of this process");
        run(|| {
            let go = Rc::new(Event::new());
            let woken = task::Builder::new().name("woken").spawn({
                let go = go.clone();
                move || {
                    go.wait();
                    tracing::info!("the woken greenlet speaks");
                }
            });
            yield_now(); // it waits
            go.set();
            woken.join().unwrap();
            tracing::info!("the joiner speaks");
        });
        println!("LOG:\n{}", capture.text());
        return;
    }
    let output = util::rerun_in_child(TEST, &[]);
    let text = util::output_text(&output);
    assert!(output.status.success(), "{text}");
    let line = |needle: &str| text.lines().find(|line| line.contains(needle)).unwrap_or_default().to_owned();
    let woken = line("the woken greenlet speaks");
    assert!(woken.contains("name=\"woken\""), "{text}");
    let joiner = line("the joiner speaks");
    assert!(!joiner.is_empty() && !joiner.contains("woken"), "{text}");
}

#[test]
fn greenlets_that_keep_waking_each_other_let_timers_and_other_threads_in() {
    bounded(|| {
        run(|| {
            let stop = Rc::new(Cell::new(false));
            let (ping, pong) = (Rc::new(Event::new()), Rc::new(Event::new()));
            // Two greenlets that are never both parked: one of them is
            // always runnable, until a timer and a message from another
            // thread have both come, and stopped them.
            let players: Vec<_> = [(ping.clone(), pong.clone()), (pong, ping)]
                .into_iter()
                .map(|(mine, theirs)| {
                    let stop = stop.clone();
                    spawn(move || {
                        while !stop.get() {
                            theirs.set();
                            mine.wait();
                            mine.clear();
                        }
                        theirs.set();
                    })
                })
                .collect();
            let slept = spawn(|| sleep(ms(1)));
            let handle = Handle::current();
            // From a thread of the blocking pool, a spawn through the
            // hub's remote queue, joined there.
            let from_thread = blocking(move || handle.spawn(|| 7).expect("the hub runs").join().unwrap());
            assert_eq!(from_thread, 7);
            slept.join().unwrap();
            stop.set(true);
            for player in players {
                player.join().unwrap();
            }
        });
    });
}

#[test]
fn a_greenlet_that_finished_is_gone_when_its_joiner_runs() {
    run(|| {
        for round in 0..100 {
            let worker = spawn(move || round * 2);
            assert_eq!(worker.join().unwrap(), round * 2);
            assert_eq!(metrics().greenlets_alive(), 1, "round {round}");
            assert_eq!(dump().greenlets().len(), 1, "round {round}");
        }
    });
}

#[test]
fn a_greenlet_that_finished_is_gone_when_the_next_one_starts() {
    run(|| {
        let first = spawn(|| ());
        // Starts once the first has finished.
        let second = spawn(|| (metrics().greenlets_alive(), dump().greenlets().len()));
        assert_eq!(second.join().unwrap(), (2, 2), "the main greenlet and the second one");
        assert!(first.join().is_ok());
    });
}

#[test]
fn greenlets_that_finish_one_after_another_keep_their_order_and_outcomes() {
    run(|| {
        let log = Log::new();
        let handles: Vec<_> = (0..10)
            .map(|i| {
                let log = log.clone();
                spawn(move || {
                    log.push(i);
                    if i % 3 == 0 {
                        panic!("greenlet {i} fails");
                    }
                    i
                })
            })
            .collect();
        let outcomes: Vec<_> = handles.into_iter().map(|h| h.join().ok()).collect();
        assert_eq!(log.get(), (0..10).collect::<Vec<_>>());
        let expected: Vec<_> = (0..10).map(|i| (i % 3 != 0).then_some(i)).collect();
        assert_eq!(outcomes, expected);
        assert_eq!(metrics().greenlets_alive(), 1);
    });
}
