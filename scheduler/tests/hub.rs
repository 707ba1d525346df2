//! The hub itself: run-queue ordering, `run` and its clean-up, panics, deadlock
//! detection, `Handle` from other threads, the blocking pool and the blocking
//! monitor's environment switch. Ported from gevent's `test__order.py`,
//! `test__sleep0.py`, `test__hub.py`, `test__hub_join.py`, `test__threadpool.py`
//! and `test___monitor.py`, with gevent's `LoopExit` replaced by our deadlock
//! report.

mod util;

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use runtime_scheduler::sync::{AsyncResult, Condvar, Event, Mutex, Semaphore, channel};
use runtime_scheduler::{self as rt, Builder, Closed, Handle, blocking, sleep, spawn, spawn_later, task, yield_now};
use util::{Capture, Counter, Drops, Log, assert_contains, message, ms, run_catching};

// ---------------------------------------------------------------------------
// Ordering

#[test]
fn yield_interleaves_greenlets_in_fifo_order() {
    // gevent test__order.py: two greenlets doing "A, sleep(0), B" interleave
    // as 1A 2A 1B 2B (our sleep(0) for ordering is yield_now).
    let log = rt::run(|| {
        let log = Log::new();
        let handles: Vec<_> = (1..=2)
            .map(|i| {
                let log = log.clone();
                spawn(move || {
                    log.push(format!("{i}A"));
                    yield_now();
                    log.push(format!("{i}B"));
                })
            })
            .collect();
        rt::joinall(handles);
        log.get()
    });
    assert_eq!(log, ["1A", "2A", "1B", "2B"]);
}

#[test]
fn spawned_greenlets_first_run_in_spawn_order_after_the_spawner_yields() {
    // lib.rs `spawn` docs + gevent test__order.py: FIFO run queue, and
    // yield_now goes behind every greenlet already runnable.
    let log = rt::run(|| {
        let log = Log::new();
        for i in 0..5 {
            let log = log.clone();
            drop(spawn(move || log.push(i)));
        }
        log.push(100);
        yield_now();
        log.push(200);
        log.get()
    });
    assert_eq!(log, [100, 0, 1, 2, 3, 4, 200]);
}

#[test]
fn woken_greenlets_run_in_wake_order() {
    // gevent test__order.py (callbacks run in the order they were queued):
    // greenlets woken one after another run in that order.
    let log = rt::run(|| {
        let log = Log::new();
        let events: Vec<Rc<Event>> = (0..4).map(|_| Rc::new(Event::new())).collect();
        let handles: Vec<_> = events
            .iter()
            .enumerate()
            .map(|(i, event)| {
                let (event, log) = (event.clone(), log.clone());
                spawn(move || {
                    event.wait();
                    log.push(i);
                })
            })
            .collect();
        yield_now();
        for i in [2, 0, 3, 1] {
            events[i].set();
        }
        rt::joinall(handles);
        log.get()
    });
    assert_eq!(log, [2, 0, 3, 1]);
}

#[test]
fn sleep_zero_lets_runnable_greenlets_go_first() {
    // gevent test__hub.py TestSleep.test_simple (sleep(0) works) and
    // test__sleep0.py: runnable greenlets go first.
    rt::run(|| {
        let ran = Counter::new();
        let r = ran.clone();
        drop(spawn(move || r.bump()));
        sleep(Duration::ZERO);
        assert_eq!(ran.get(), 1);
    });
}

#[test]
fn tight_yield_loop_is_broken_by_a_timeout() {
    // gevent test__sleep0.py: a tight sleep(0) loop is broken by a 10 ms
    // Timeout (timers are serviced despite constant yielding).
    rt::run(|| {
        let start = Instant::now();
        let spins = Counter::new();
        let outcome = rt::timeout(ms(10), || {
            loop {
                spins.bump();
                yield_now();
            }
        });
        assert_eq!(outcome, Err::<(), _>(rt::Elapsed));
        assert!(start.elapsed() >= ms(10));
        assert!(spins.get() > 0);
    });
}

#[test]
fn sleepers_wake_in_deadline_order() {
    // gevent test__hub.py / test__core_timer.py: timers fire by deadline,
    // whatever order they were armed in.
    let log = rt::run(|| {
        let log = Log::new();
        let handles: Vec<_> = [30u64, 10, 20]
            .into_iter()
            .map(|delay| {
                let log = log.clone();
                spawn(move || {
                    sleep(ms(delay));
                    log.push(delay);
                })
            })
            .collect();
        rt::joinall(handles);
        log.get()
    });
    assert_eq!(log, [10, 20, 30]);
}

#[test]
fn sleep_lasts_its_duration_even_after_a_greenlet_panicked() {
    // gevent test__hub.py TestExceptionInMainloop.test_sleep (sleep(d) lasts d,
    // and still does after an error was reported): the hub keeps working
    // after a greenlet failed.
    rt::run(|| {
        let start = Instant::now();
        sleep(ms(15));
        assert!(start.elapsed() >= ms(15));
        let failed = spawn(|| -> () { panic!("reported error") });
        yield_now();
        assert!(failed.is_finished());
        let start = Instant::now();
        sleep(ms(15));
        assert!(start.elapsed() >= ms(15));
        assert!(failed.join().unwrap_err().is_panic());
    });
}

// ---------------------------------------------------------------------------
// Panics and the end of `run`

#[test]
fn panic_in_a_greenlet_does_not_take_the_hub_down() {
    // gevent test__hub.py / test__greenlet.py (error routing): an error in one
    // greenlet is reported and the others keep running.
    rt::run(|| {
        let progress = Counter::new();
        let p = progress.clone();
        let worker = spawn(move || {
            for _ in 0..5 {
                p.bump();
                yield_now();
            }
        });
        let failing = spawn(|| -> u8 { panic!("first greenlet failed") });
        let err = failing.join().unwrap_err();
        assert!(err.is_panic());
        assert_eq!(message(&err.into_panic()), "first greenlet failed");
        worker.join().unwrap();
        assert_eq!(progress.get(), 5);
    });
}

#[test]
fn run_returns_the_value_of_f() {
    // lib.rs `run` docs.
    assert_eq!(rt::run(|| spawn(|| 6 * 7).join().unwrap()), 42);
}

#[test]
fn run_kills_leftover_greenlets_before_returning() {
    // lib.rs `run` docs; gevent test__hub_join.py / test__destroy.py (hub
    // destruction kills what is left): destructors of every leftover greenlet
    // have run when `run` returns, and those never started never run.
    let drops = Drops::new();
    let ran = Counter::new();
    let (d, r) = (drops.clone(), ran.clone());
    let sender = rt::run(move || {
        for _ in 0..3 {
            let guard = d.guard();
            drop(spawn(move || {
                let _guard = guard;
                sleep(Duration::from_secs(30));
            }));
        }
        let guard = d.guard();
        let (tx, rx) = channel::bounded::<u8>(0);
        drop(spawn(move || {
            let _guard = guard;
            let _ = rx.recv();
        }));
        yield_now();
        let (guard, r1) = (d.guard(), r.clone());
        drop(spawn(move || {
            let _guard = guard;
            r1.bump();
        }));
        let guard = d.guard();
        drop(spawn_later(Duration::from_secs(30), move || {
            let _guard = guard;
            r.bump();
        }));
        // The receiver above stays parked: its sender outlives `f`.
        tx
    });
    assert_eq!(drops.count(), 6);
    assert_eq!(ran.get(), 0);
    drop(sender);
}

#[test]
fn no_greenlet_runs_after_f_returns() {
    // lib.rs `run` docs: "When `f` returns, the greenlets still alive are
    // killed": they are not resumed for anything but their unwinding.
    let steps = Counter::new();
    let s = steps.clone();
    let seen_by_f = rt::run(move || {
        let busy = s.clone();
        drop(spawn(move || {
            loop {
                busy.bump();
                yield_now();
            }
        }));
        for _ in 0..3 {
            yield_now();
        }
        s.get()
    });
    assert_eq!(steps.get(), seen_by_f, "a greenlet kept running after `f` returned");
}

#[test]
fn panic_in_f_resumes_after_the_leftovers_are_killed() {
    // lib.rs `run` docs ("If `f` panics, the panic resumes in the caller
    // after that clean-up").
    let drops = Drops::new();
    let d = drops.clone();
    let err = run_catching(move || {
        let guard = d.guard();
        drop(spawn(move || {
            let _guard = guard;
            sleep(Duration::from_secs(30));
        }));
        yield_now();
        panic!("main failed");
    })
    .unwrap_err();
    assert_eq!(err, "main failed");
    assert_eq!(drops.count(), 1);
}

#[test]
fn run_repeatedly_and_on_new_threads_leaks_nothing() {
    // gevent test__hub_join.py / test__hub_join_timeout.py / test__destroy*:
    // running and tearing down hubs many times, also from new threads, leaks
    // no greenlets.
    fn session() -> usize {
        rt::run(|| {
            let handles: Vec<_> = (0..4).map(|i| spawn(move || i)).collect();
            drop(spawn(|| sleep(Duration::from_secs(30))));
            drop(spawn_later(Duration::from_secs(30), || ()));
            rt::joinall(handles).into_iter().map(Result::unwrap).sum()
        })
    }
    assert_eq!(session(), 6);
    let baseline = greenlet::live_greenlets();
    for _ in 0..20 {
        assert_eq!(session(), 6);
    }
    assert_eq!(greenlet::live_greenlets(), baseline);
    let threads: Vec<_> = (0..3)
        .map(|_| {
            std::thread::spawn(|| {
                for _ in 0..5 {
                    assert_eq!(session(), 6);
                }
                greenlet::live_greenlets()
            })
        })
        .collect();
    for thread in threads {
        // Only the thread's main greenlet is left.
        assert_eq!(thread.join().unwrap(), 1);
    }
}

// ---------------------------------------------------------------------------
// Deadlock detection (gevent: LoopExit in the blocked main greenlet)

/// Runs `f`, which must deadlock, and returns the report.
fn deadlock_report<T: 'static>(f: impl FnOnce() -> T + 'static) -> String {
    // Strict: no other thread touches these programs' `sync` values.
    let strict =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| rt::Builder::new().strict_deadlocks(true).run(f)));
    let report = strict.err().map(|payload| util::message(&payload)).expect("`run` must panic with a deadlock report");
    assert_contains(&report, &["deadlock"]);
    report
}

#[test]
fn deadlock_on_recv_is_reported() {
    // gevent test__queue.py TestQueue.test_peek_empty (waiting on an empty
    // queue in the main greenlet with nothing else alive raises LoopExit).
    let report = deadlock_report(|| {
        let (tx, rx) = channel::bounded::<i32>(1);
        let _keep = tx;
        rx.recv()
    });
    assert_contains(&report, &["Receiver::recv"]);
    assert!(!report.contains("Other greenlets"), "no other greenlet to name: {report}");
}

#[test]
fn deadlock_on_send_is_reported() {
    // gevent test__queue.py (put on a full queue with nobody to get).
    let report = deadlock_report(|| {
        let (tx, rx) = channel::bounded::<i32>(0);
        let _keep = rx;
        tx.send(1)
    });
    assert_contains(&report, &["Sender::send"]);
}

#[test]
fn deadlock_on_event_wait_is_reported() {
    // gevent test__event.py (waiting on an event nobody sets -> LoopExit).
    let report = deadlock_report(|| Event::new().wait());
    assert_contains(&report, &["Event::wait"]);
}

#[test]
fn deadlock_on_async_result_is_reported() {
    // gevent test__event.py TestAsyncResult (get with nothing to set it).
    let report = deadlock_report(|| AsyncResult::<u8>::new().get());
    assert_contains(&report, &["AsyncResult::get"]);
}

#[test]
fn deadlock_on_semaphore_and_mutex_is_reported() {
    // gevent test__semaphore.py TestSemaphoreFair.test_fair_or_hangs (ends in
    // LoopExit once nobody can release): acquire with no releaser.
    let report = deadlock_report(|| {
        let semaphore = Semaphore::new(0);
        drop(semaphore.acquire());
    });
    assert_contains(&report, &["Semaphore::acquire"]);
    let report = deadlock_report(|| {
        let mutex = Mutex::new(());
        let _held = mutex.lock();
        drop(mutex.lock());
    });
    assert_contains(&report, &["Mutex::lock"]);
}

#[test]
fn deadlock_on_condvar_is_reported() {
    // lock_tests.py ConditionTests (wait with nobody to notify).
    let report = deadlock_report(|| {
        let (mutex, condvar) = (Mutex::new(()), Condvar::new());
        drop(condvar.wait(mutex.lock()));
    });
    assert_contains(&report, &["Condvar::wait"]);
}

#[test]
fn deadlock_on_join_names_the_parked_greenlets_and_unwinds_everything() {
    // gevent test__semaphore.py TestSemaphoreFair.test_fair_or_hangs (joinall
    // of greenlets that can never finish raises LoopExit): the report counts
    // names the other parked greenlets and what they wait on, and both are
    // unwound by the end of `run`.
    let drops = Drops::new();
    let d = drops.clone();
    let report = deadlock_report(move || {
        let _root_guard = d.guard();
        let (tx, rx) = channel::unbounded::<u8>();
        let guard = d.guard();
        let stuck = spawn(move || {
            let _guard = guard;
            rx.recv()
        });
        let _keep = tx;
        stuck.join()
    });
    assert_contains(&report, &["waiting on join #", "Other greenlets, all parked", "on Receiver::recv", "hub.rs"]);
    assert_eq!(drops.count(), 2);
}

#[test]
fn timeout_scope_turns_a_would_be_deadlock_into_elapsed() {
    // gevent test__queue.py TestQueue.test_peek_empty, second half (with a
    // timeout it raises Empty, not LoopExit): an armed timer can still wake it.
    rt::run(|| {
        let (_tx, rx) = channel::bounded::<i32>(1);
        assert_eq!(rt::timeout(ms(5), || rx.recv()), Err(rt::Elapsed));
        assert!(rx.recv_timeout(ms(5)).unwrap_err().is_timeout());
    });
}

#[test]
fn pending_timer_prevents_the_deadlock_report() {
    // gevent.md 5.2 Hub case (wait() stays blocked until a spawn_later
    // greenlet ran): a pending timer is not a deadlock.
    rt::run(|| {
        let (tx, rx) = channel::bounded::<i32>(1);
        drop(spawn_later(ms(10), move || tx.send(5).unwrap()));
        assert_eq!(rx.recv().unwrap(), 5);
    });
}

#[test]
fn pending_blocking_job_prevents_the_deadlock_report() {
    // hub.rs docs: a thread-pool job in flight can still wake the main greenlet.
    rt::run(|| {
        let (tx, rx) = channel::bounded::<u64>(1);
        drop(spawn(move || {
            let v = blocking(|| {
                std::thread::sleep(ms(20));
                9
            });
            tx.send(v).unwrap();
        }));
        assert_eq!(rx.recv().unwrap(), 9);
    });
}

thread_local! {
    /// Where greenlets spawned through a `Handle` report to the main greenlet
    /// (closures sent to `Handle::spawn` must be `Send`, channels are not).
    static INBOX: RefCell<Option<channel::Sender<u64>>> = const { RefCell::new(None) };
}

fn install_inbox() -> channel::Receiver<u64> {
    let (tx, rx) = channel::unbounded();
    INBOX.with(|inbox| *inbox.borrow_mut() = Some(tx));
    rx
}

fn post(value: u64) {
    let tx = INBOX.with(|inbox| inbox.borrow().clone()).expect("inbox installed on the hub thread");
    tx.send(value).unwrap();
}

fn remove_inbox() {
    INBOX.with(|inbox| inbox.borrow_mut().take());
}

#[test]
fn live_handle_on_another_thread_prevents_the_deadlock_report() {
    // hub.rs docs + gevent test__threadpool.py / test__event.py cross-thread
    // cases: while another thread may still send work, waiting is not a deadlock.
    rt::run(|| {
        let inbox = install_inbox();
        let handle = Handle::current();
        let thread = std::thread::spawn(move || {
            std::thread::sleep(ms(20));
            handle.spawn(|| post(7)).unwrap();
        });
        assert_eq!(inbox.recv().unwrap(), 7);
        remove_inbox();
        blocking(move || thread.join().unwrap());
    });
}

#[test]
fn dropping_the_last_handle_lets_the_deadlock_be_reported() {
    // hub.rs docs: the hub re-checks once the last Handle is gone.
    let report = deadlock_report(|| {
        let (tx, rx) = channel::bounded::<i32>(1);
        let _keep = tx;
        let handle = Handle::current();
        std::thread::spawn(move || {
            std::thread::sleep(ms(20));
            drop(handle);
        });
        rx.recv()
    });
    assert_contains(&report, &["Receiver::recv"]);
}

// ---------------------------------------------------------------------------
// Handle

#[test]
fn handle_is_send_sync_and_clone() {
    // remote.rs docs.
    fn check<T: Send + Sync + Clone + 'static>() {}
    check::<Handle>();
}

#[test]
fn handle_spawn_from_other_threads_runs_on_the_hub_thread() {
    // gevent test__threadpool.py / test__hub.py cross-thread wake-ups: work
    // posted from other threads runs as greenlets on the hub's thread (`post`
    // finds the inbox only there), and nothing is lost.
    rt::run(|| {
        let inbox = install_inbox();
        let handle = Handle::current();
        let threads: Vec<_> = (0..4u64)
            .map(|t| {
                let handle = handle.clone();
                std::thread::spawn(move || {
                    for i in 0..25 {
                        handle.spawn(move || post(t * 100 + i)).unwrap();
                    }
                })
            })
            .collect();
        drop(handle);
        let mut got: Vec<u64> = (0..100).map(|_| inbox.recv().unwrap()).collect();
        got.sort_unstable();
        let expected: Vec<u64> = (0..4).flat_map(|t| (0..25).map(move |i| t * 100 + i)).collect();
        assert_eq!(got, expected);
        remove_inbox();
        blocking(move || threads.into_iter().for_each(|t| t.join().unwrap()));
    });
}

#[test]
fn handle_works_from_a_blocking_job() {
    // remote.rs docs example: a pool thread spawns back onto the hub.
    rt::run(|| {
        let inbox = install_inbox();
        let handle = Handle::current();
        blocking(move || handle.spawn(|| post(1)).unwrap());
        assert_eq!(inbox.recv().unwrap(), 1);
        remove_inbox();
    });
}

#[test]
fn handle_spawn_after_run_returned_is_closed() {
    // remote.rs docs: `Closed` once the hub has stopped.
    let handle = rt::run(Handle::current);
    assert_eq!(handle.spawn(|| ()).err(), Some(Closed));
    let clone = handle.clone();
    std::thread::spawn(move || assert_eq!(clone.spawn(|| ()).err(), Some(Closed))).join().unwrap();
}

#[test]
fn handle_try_current_is_none_outside_a_runtime() {
    // remote.rs docs.
    assert!(Handle::try_current().is_none());
    rt::run(|| assert!(Handle::try_current().is_some()));
    assert!(Handle::try_current().is_none());
}

// ---------------------------------------------------------------------------
// The blocking pool (gevent's threadpool)

#[test]
fn blocking_parks_only_the_caller() {
    // gevent test__threadpool.py (apply runs the function in a worker thread
    // and only the calling greenlet waits): other greenlets make progress
    // while `f` blocks on its own thread.
    rt::run(|| {
        let progress = Arc::new(AtomicUsize::new(0));
        let stop = Rc::new(Cell::new(false));
        let (p, s) = (progress.clone(), stop.clone());
        let ticker = spawn(move || {
            while !s.get() {
                p.fetch_add(1, Ordering::SeqCst);
                sleep(ms(1));
            }
        });
        let hub_thread = std::thread::current().id();
        let seen = progress.clone();
        let (job_thread, ticks_seen) = blocking(move || {
            // Wait (on this pool thread) until the hub has run the ticker a
            // few times: proof that the hub is not blocked by this job.
            let start = Instant::now();
            while seen.load(Ordering::SeqCst) < 5 && start.elapsed() < Duration::from_secs(10) {
                std::thread::sleep(ms(1));
            }
            (std::thread::current().id(), seen.load(Ordering::SeqCst))
        });
        assert_ne!(job_thread, hub_thread);
        assert!(ticks_seen >= 5, "the hub did not run other greenlets while `blocking` waited");
        stop.set(true);
        ticker.join().unwrap();
    });
}

#[test]
fn blocking_panic_resumes_in_the_caller() {
    // gevent test__threadpool.py ("apply returns values and re-raises
    // errors"): the job's panic resumes in the greenlet that waited for it.
    rt::run(|| {
        let h = spawn(|| blocking(|| -> u8 { panic!("pool boom") }));
        let err = h.join().unwrap_err();
        assert!(err.is_panic());
        assert_eq!(message(&err.into_panic()), "pool boom");
        // The pool still works.
        assert_eq!(blocking(|| 3), 3);
    });
}

#[test]
fn blocking_jobs_from_many_greenlets_all_complete() {
    // gevent test__threadpool.py (map over the pool: every task's result).
    rt::run(|| {
        let handles: Vec<_> = (0..16u64).map(|i| spawn(move || blocking(move || i * i))).collect();
        let total: u64 = rt::joinall(handles).into_iter().map(Result::unwrap).sum();
        assert_eq!(total, (0..16).map(|i| i * i).sum());
    });
}

#[test]
fn blocking_pool_of_one_thread_queues_jobs() {
    // gevent test__threadpool.py "A size-1 pool accepts one extra queued
    // task; tasks complete in order".
    Builder::new().blocking_threads(1).run(|| {
        let order = Log::new();
        let start = Instant::now();
        let handles: Vec<_> = (0..2)
            .map(|i| {
                let order = order.clone();
                spawn(move || {
                    let thread = blocking(|| {
                        std::thread::sleep(ms(15));
                        std::thread::current().id()
                    });
                    order.push(i);
                    thread
                })
            })
            .collect();
        let threads: Vec<_> = rt::joinall(handles).into_iter().map(Result::unwrap).collect();
        assert_eq!(threads[0], threads[1], "one pool thread ran both jobs");
        assert_ne!(threads[0], std::thread::current().id());
        assert_eq!(order.get(), [0, 1]);
        assert!(start.elapsed() >= ms(30), "the jobs ran one after the other");
    });
}

#[test]
fn blocking_pool_of_zero_threads_still_runs_jobs() {
    // gevent test__threadpool.py "negative size rejected" / size validation:
    // here the size cannot be negative, and zero is raised to one thread.
    Builder::new().blocking_threads(0).run(|| assert_eq!(blocking(|| 5), 5));
}

// ---------------------------------------------------------------------------
// The blocking monitor's environment switch (the monitor itself: monitor.rs)

#[test]
fn env_var_turns_the_blocking_monitor_on() {
    // lib.rs MAX_BLOCKING_TIME_ENV; gevent test__hub.py
    // TestPeriodicMonitoringThread (the monitor turned on by configuration,
    // GEVENT_MONITOR_THREAD_ENABLE / max_blocking_time, reports a blocking
    // greenlet). The variable and the global subscriber need a process of
    // their own.
    const TEST: &str = "env_var_turns_the_blocking_monitor_on";
    if util::is_child(TEST) {
        let capture = Capture::new();
        tracing::subscriber::set_global_default(capture.subscriber()).expect("no other subscriber in the child");
        // No `max_blocking_time` on the builder: only the variable sets it.
        Builder::new().run(|| {
            let h = task::Builder::new().name("env-hog").spawn(|| std::thread::sleep(ms(200)));
            h.join().unwrap();
        });
        println!("CAPTURED:\n{}", capture.text());
        return;
    }
    let output = util::rerun_in_child(TEST, &[(rt::MAX_BLOCKING_TIME_ENV, "20ms")]);
    let text = util::output_text(&output);
    assert!(output.status.success(), "{text}");
    assert_contains(&text, &["CAPTURED", "env-hog", "held the hub"]);
}
