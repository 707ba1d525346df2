//! Lifetimes and cancellation: `catch_panic` lets kills and timeouts through,
//! `kill_on_drop` ties a helper to its owner, `JoinSet` joins in completion
//! order, and diagnostics reach stderr without a `tracing` subscriber.

mod util;

use std::panic::{self, AssertUnwindSafe};
use std::time::Duration;

use runtime_scheduler::sync::channel;
use runtime_scheduler::{
    self as rt, JoinSet, Pool, catch_panic, is_cancellation, sleep, spawn, task, timeout, yield_now,
};
use util::{Drops, Log, ms};

#[test]
fn catch_panic_in_a_pool_worker_loop_lets_kill_and_join_through() {
    rt::run(|| {
        let pool = Pool::new(4);
        let caught = Log::new();
        for worker in 0..4 {
            let caught = caught.clone();
            drop(pool.spawn(move || {
                for job in 0u32.. {
                    let outcome = catch_panic(|| {
                        if job == 0 && worker == 0 {
                            panic!("job failed");
                        }
                        sleep(ms(2));
                    });
                    if let Err(payload) = outcome {
                        caught.push(util::message(&payload));
                    }
                }
            }));
        }
        sleep(ms(20));
        pool.kill();
        pool.join(); // hangs if the kills were swallowed
        assert!(pool.is_empty());
        assert_eq!(caught.get(), ["job failed"]);
    });
}

#[test]
fn catch_panic_inside_a_timeout_lets_the_timeout_through() {
    rt::run(|| {
        let result = timeout(ms(10), || {
            loop {
                let _ = catch_panic(|| sleep(ms(2)));
            }
        });
        assert_eq!(result, Err(rt::Elapsed));
    });
}

#[test]
fn catch_panic_returns_a_real_panic_and_the_greenlet_goes_on() {
    rt::run(|| {
        let payload = catch_panic(|| -> u8 { panic!("boom") }).unwrap_err();
        assert!(!is_cancellation(&*payload));
        assert_eq!(util::message(&payload), "boom");
        assert_eq!(catch_panic(|| 5).ok(), Some(5));
        // Still an ordinary greenlet: it parks, and a timeout still works.
        sleep(ms(1));
        assert!(timeout(ms(5), || sleep(Duration::from_secs(5))).is_err());
    });
}

#[test]
fn is_cancellation_recognises_kills_and_timeouts() {
    rt::run(|| {
        let (tx, rx) = channel::unbounded();
        let victim = spawn(move || {
            let payload = panic::catch_unwind(AssertUnwindSafe(|| sleep(Duration::from_secs(60)))).unwrap_err();
            tx.send(is_cancellation(&*payload)).unwrap();
            panic::resume_unwind(payload);
        });
        yield_now();
        victim.kill();
        assert!(victim.join().unwrap_err().is_killed());
        assert_eq!(rx.recv(), Ok(true));
        let recognised = Log::new();
        let r = recognised.clone();
        let inner = timeout(ms(5), move || {
            let payload = panic::catch_unwind(AssertUnwindSafe(|| sleep(Duration::from_secs(60)))).unwrap_err();
            r.push(is_cancellation(&*payload));
            panic::resume_unwind(payload)
        });
        assert!(inner.is_err());
        assert_eq!(recognised.get(), [true]);
    });
}

#[test]
fn dropping_a_kill_on_drop_guard_kills_the_greenlet() {
    rt::run(|| {
        let drops = Drops::new();
        let guard = drops.guard();
        let helper = spawn(move || {
            let _guard = guard;
            sleep(Duration::from_secs(60));
        })
        .kill_on_drop();
        yield_now();
        assert!(!helper.is_finished());
        drop(helper);
        yield_now();
        assert_eq!(drops.count(), 1, "the helper unwound and its destructors ran");
    });
}

#[test]
fn a_kill_on_drop_guard_can_still_be_joined_or_detached() {
    rt::run(|| {
        assert_eq!(spawn(|| 7).kill_on_drop().join().unwrap(), 7);
        let detached = spawn(|| {
            sleep(ms(5));
            8
        })
        .kill_on_drop()
        .detach();
        yield_now();
        assert_eq!(detached.join().unwrap(), 8, "detached: not killed");
    });
}

#[test]
fn a_helper_tied_with_kill_on_drop_dies_with_its_killed_owner() {
    rt::run(|| {
        let drops = Drops::new();
        let guard = drops.guard();
        let owner = spawn(move || {
            let _helper = spawn(move || {
                let _guard = guard;
                sleep(Duration::from_secs(60));
            })
            .kill_on_drop();
            sleep(Duration::from_secs(60));
        });
        yield_now();
        owner.kill();
        assert!(owner.join().unwrap_err().is_killed());
        yield_now();
        assert_eq!(drops.count(), 1);
    });
}

#[test]
fn a_helper_joined_through_kill_on_drop_dies_with_its_owner_killed_in_the_join() {
    rt::run(|| {
        let drops = Drops::new();
        let guard = drops.guard();
        let owner = spawn(move || {
            let helper = spawn(move || {
                let _guard = guard;
                sleep(Duration::from_secs(60));
            })
            .kill_on_drop();
            let _ = helper.join(); // killed here
        });
        yield_now();
        owner.kill();
        assert!(owner.join().unwrap_err().is_killed());
        yield_now();
        assert_eq!(drops.count(), 1, "the helper was killed with its owner");
        // The same for an owner whose `timeout` expires during the join.
        let guard = drops.guard();
        let outcome = timeout(ms(5), move || {
            spawn(move || {
                let _guard = guard;
                sleep(Duration::from_secs(60));
            })
            .kill_on_drop()
            .join()
        });
        assert!(outcome.is_err());
        yield_now();
        assert_eq!(drops.count(), 2, "the helper was killed when the timeout expired");
    });
}

#[test]
fn join_set_yields_results_in_completion_order() {
    rt::run(|| {
        let mut set = JoinSet::new();
        for (i, delay) in [40u64, 5, 25, 15].into_iter().enumerate() {
            set.spawn(move || {
                sleep(ms(delay));
                i
            });
        }
        assert_eq!(set.len(), 4);
        let mut order = Vec::new();
        while let Some(result) = set.join_next() {
            order.push(result.unwrap());
        }
        assert_eq!(order, [1, 3, 2, 0]);
        assert!(set.is_empty());
        assert!(set.join_next().is_none());
    });
}

#[test]
fn join_set_reports_panics_and_kill_all_kills_the_rest() {
    rt::run(|| {
        let mut set = JoinSet::new();
        set.spawn(|| -> u8 { panic!("member failed") });
        set.spawn_with(task::Builder::new().name("quick"), || 1);
        for _ in 0..3 {
            set.spawn(|| {
                sleep(Duration::from_secs(60));
                2
            });
        }
        let first_two: Vec<_> = (0..2).map(|_| set.join_next().unwrap()).collect();
        assert!(first_two.iter().any(|r| r.as_ref().is_err_and(|e| e.is_panic())));
        assert!(first_two.iter().any(|r| matches!(r, Ok(1))));
        set.kill_all();
        let rest = set.join_all();
        assert_eq!(rest.len(), 3);
        assert!(rest.iter().all(|r| r.as_ref().is_err_and(|e| e.is_killed())));
    });
}

#[test]
fn dropping_a_join_set_kills_its_greenlets() {
    rt::run(|| {
        let drops = Drops::new();
        let mut set = JoinSet::new();
        for _ in 0..3 {
            let guard = drops.guard();
            set.spawn(move || {
                let _guard = guard;
                sleep(Duration::from_secs(60));
            });
        }
        set.spawn(|| ()); // killed before it ever runs
        yield_now();
        drop(set);
        yield_now();
        assert_eq!(drops.count(), 3);
    });
}

#[test]
fn the_blocking_monitor_speaks_without_a_subscriber() {
    const TEST: &str = "the_blocking_monitor_speaks_without_a_subscriber";
    if !util::is_child(TEST) {
        let output = util::rerun_in_child(TEST, &[(rt::MAX_BLOCKING_TIME_ENV, "50ms")]);
        let text = util::output_text(&output);
        assert!(output.status.success(), "{text}");
        let warnings: Vec<&str> = text.lines().filter(|line| line.contains("has held the hub")).collect();
        assert_eq!(warnings.len(), 1, "one line: {text}");
        util::assert_contains(warnings[0], &["'sleepy' (#", "spawned at", "lifetimes.rs"]);
        return;
    }
    rt::run(|| {
        let sleepy = task::Builder::new().name("sleepy").spawn(|| std::thread::sleep(ms(300)));
        sleepy.join().unwrap();
    });
}

#[test]
fn a_greenlet_panic_names_the_greenlet_without_a_subscriber() {
    const TEST: &str = "a_greenlet_panic_names_the_greenlet_without_a_subscriber";
    if !util::is_child(TEST) {
        let output = util::rerun_in_child(TEST, &[]);
        let text = util::output_text(&output);
        assert!(output.status.success(), "{text}");
        util::assert_contains(&text, &["greenlet 'handler' (#", "spawned at", "panicked", "handler bug"]);
        return;
    }
    rt::run(|| {
        let handler = task::Builder::new().name("handler").spawn(|| panic!("handler bug"));
        assert!(handler.join().unwrap_err().is_panic());
    });
}

#[test]
fn misuse_panics_point_at_the_callers_line() {
    // The deadlock report is raised at the blocking call of the user's code,
    // and so is the panic of a blocking call outside a runtime.
    const TEST: &str = "misuse_panics_point_at_the_callers_line";
    if !util::is_child(TEST) {
        let output = util::rerun_in_child(TEST, &[("RUST_BACKTRACE", "0")]);
        let text = util::output_text(&output);
        let here = "panicked at scheduler/tests/lifetimes.rs:";
        let deadlock = text.find("deadlock: the main greenlet").expect("a deadlock report");
        assert!(text[..deadlock].trim_end().ends_with(':') && text[..deadlock].contains(here), "{text}");
        let outside = text.find("must run in a greenlet of the runtime").expect("a misuse report");
        assert!(text[..outside].rfind(here).is_some_and(|at| at > deadlock), "{text}");
        return;
    }
    let _ = panic::catch_unwind(|| {
        rt::Builder::new().strict_deadlocks(true).run(|| {
            let (_tx, rx) = channel::bounded::<u8>(1);
            rx.recv()
        })
    });
    let _ = panic::catch_unwind(|| sleep(ms(1)));
}

#[test]
fn scoped_greenlets_borrow_locals_and_are_all_joined() {
    rt::run(|| {
        let data = [1u64, 2, 3, 4];
        let mut counter = 0u64;
        let finished = Log::new();
        let total = rt::scope(|s| {
            let sums: Vec<_> = data
                .chunks(2)
                .map(|chunk| {
                    let finished = finished.clone();
                    s.spawn(move || {
                        sleep(ms(5));
                        finished.push("sum");
                        chunk.iter().sum::<u64>()
                    })
                })
                .collect();
            let counter = &mut counter;
            let f = finished.clone();
            drop(s.spawn(move || {
                sleep(ms(10));
                *counter += 1;
                f.push("count");
            }));
            sums.into_iter().map(|h| h.join().unwrap()).sum::<u64>()
        });
        assert_eq!(total, 10);
        assert_eq!(counter, 1, "the unjoined child finished before `scope` returned");
        assert_eq!(finished.len(), 3);
    });
}

#[test]
fn killing_the_owner_of_a_scope_kills_and_joins_its_children_first() {
    rt::run(|| {
        let log = Log::new();
        let l = log.clone();
        let owner = spawn(move || {
            let local = String::from("borrowed");
            let _after = OnDrop(Some({
                let l = l.clone();
                move || l.push("owner unwound past the scope".to_string())
            }));
            rt::scope(|s| {
                for i in 0..3 {
                    let (l, local) = (l.clone(), &local);
                    drop(s.spawn(move || {
                        let _cleanup = OnDrop(Some(move || {
                            sleep(ms(5)); // cleanup may park; the owner waits
                            l.push(format!("child {i} unwound, still reading {local}"));
                        }));
                        sleep(Duration::from_secs(60));
                    }));
                }
                sleep(Duration::from_secs(60));
            });
        });
        yield_now();
        owner.kill();
        assert!(owner.join().unwrap_err().is_killed());
        let log = log.get();
        assert_eq!(log.len(), 4, "{log:?}");
        assert_eq!(log[3], "owner unwound past the scope");
        assert!(log[..3].iter().all(|line| line.ends_with("still reading borrowed")));
    });
}

#[test]
fn a_stubborn_child_keeps_the_scope_waiting() {
    rt::run(|| {
        let log = Log::new();
        let l = log.clone();
        let owner = spawn(move || {
            let _after = OnDrop(Some({
                let l = l.clone();
                move || l.push("owner done")
            }));
            rt::scope(|s| {
                let l = l.clone();
                drop(s.spawn(move || {
                    // Survives its kill once, then takes its time.
                    let _ = panic::catch_unwind(AssertUnwindSafe(|| sleep(Duration::from_secs(60))));
                    sleep(ms(30));
                    l.push("child done");
                }));
                sleep(Duration::from_secs(60));
            });
        });
        yield_now();
        owner.kill();
        yield_now();
        owner.kill(); // a second kill does not cut the scope's wait short
        assert!(owner.join().unwrap_err().is_killed());
        assert_eq!(log.get(), ["child done", "owner done"]);
    });
}

#[test]
fn a_panic_in_an_unjoined_scoped_greenlet_panics_the_scope() {
    rt::run(|| {
        let outcome = panic::catch_unwind(AssertUnwindSafe(|| {
            rt::scope(|s| drop(s.spawn(|| panic!("child failed"))));
        }));
        let payload = outcome.unwrap_err();
        assert!(util::message(&payload).contains("spawned in a `runtime::scope` panicked"));
        // A joined panic is the joiner's business.
        rt::scope(|s| assert!(s.spawn(|| panic!("joined")).join().unwrap_err().is_panic()));
    });
}

/// Runs its closure when dropped.
struct OnDrop<F: FnOnce()>(Option<F>);

impl<F: FnOnce()> Drop for OnDrop<F> {
    fn drop(&mut self) {
        if let Some(f) = self.0.take() {
            f();
        }
    }
}
