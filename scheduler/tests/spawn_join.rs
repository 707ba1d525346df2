//! Greenlet lifecycle and results: spawn, join, `join_timeout`, `joinall` and
//! `spawn_later`, ported from gevent's `test__greenlet.py`, `test__api.py` and
//! `test__joinall.py`.

mod util;

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use runtime_scheduler::sync::Event;
use runtime_scheduler::{self as rt, JoinHandle, greenlet_id, joinall, sleep, spawn, spawn_later, task, yield_now};
use util::{Counter, assert_contains, message, ms, panic_of};

#[test]
fn spawn_only_schedules_until_the_spawner_yields() {
    // gevent test__greenlet.py TestBasic.test_simple_exit (first part): a new
    // greenlet has not started and is not ready; it runs once the spawner yields.
    rt::run(|| {
        let ran = Counter::new();
        let r = ran.clone();
        let h = spawn(move || r.bump());
        assert_eq!(ran.get(), 0, "spawn must not switch to the new greenlet");
        assert!(!h.is_finished());
        yield_now();
        assert_eq!(ran.get(), 1);
        assert!(h.is_finished());
        h.join().unwrap();
    });
}

#[test]
fn parked_greenlet_is_started_but_not_finished() {
    // gevent test__greenlet.py TestBasic.test_simple_exit (middle part): after
    // start() and a short sleep the greenlet is started but not ready.
    rt::run(|| {
        let go = Rc::new(Event::new());
        let started = Counter::new();
        let (g, s) = (go.clone(), started.clone());
        let h = spawn(move || {
            s.bump();
            g.wait();
            7
        });
        yield_now();
        sleep(ms(1));
        assert_eq!(started.get(), 1);
        assert!(!h.is_finished());
        go.set();
        assert_eq!(h.join().unwrap(), 7);
    });
}

#[test]
fn finished_greenlet_is_ready_with_its_value() {
    // gevent test__greenlet.py TestBasic.test_simple_exit (last part): after
    // the function returns the greenlet is dead, ready and successful, with
    // the value.
    rt::run(|| {
        let h = spawn(|| String::from("result"));
        yield_now();
        assert!(h.is_finished());
        assert_eq!(h.join().unwrap(), "result");
    });
}

#[derive(Debug, PartialEq)]
struct CustomError {
    code: i32,
    detail: &'static str,
}

#[test]
fn panicking_greenlet_reports_its_payload() {
    // gevent test__greenlet.py TestBasic.test_error_exit: a raising greenlet is
    // dead, ready, not successful, and its exception keeps its attributes.
    rt::run(|| {
        let h = spawn(|| -> i32 { std::panic::panic_any(CustomError { code: 42, detail: "bad input" }) });
        yield_now();
        assert!(h.is_finished());
        let err = h.join().unwrap_err();
        assert!(err.is_panic());
        assert!(!err.is_killed());
        let payload = err.into_panic().downcast::<CustomError>().expect("the payload keeps its type");
        assert_eq!(*payload, CustomError { code: 42, detail: "bad input" });
    });
}

#[test]
fn join_error_names_the_greenlet_and_the_panic() {
    // gevent test__greenlet.py TestStr (a greenlet's description names it):
    // the error says which greenlet failed and why.
    rt::run(|| {
        let h = task::Builder::new().name("worker").spawn(|| -> () { panic!("boom {}", 7) });
        assert_eq!(h.name(), Some("worker"));
        let id = h.id();
        let err = h.join().unwrap_err();
        assert_eq!(err.id(), id);
        let text = err.to_string();
        assert_contains(&text, &["'worker'", "panicked", "boom 7"]);
        assert_eq!(message(&err.into_panic()), "boom 7");
    });
}

#[test]
fn greenlet_never_reports_finished_while_it_runs() {
    // gevent (gevent.md 5.2) "a greenlet must never report dead while it is
    // actually running", observed from inside it around its park points.
    rt::run(|| {
        let slot: Rc<RefCell<Option<JoinHandle<()>>>> = Rc::new(RefCell::new(None));
        let checks = Counter::new();
        let (s, c) = (slot.clone(), checks.clone());
        let h = spawn(move || {
            for _ in 0..3 {
                assert!(!s.borrow().as_ref().expect("handle stored").is_finished());
                c.bump();
                yield_now();
            }
        });
        *slot.borrow_mut() = Some(h);
        while checks.get() < 3 {
            yield_now();
        }
        let h = slot.borrow_mut().take().unwrap();
        h.join().unwrap();
    });
}

#[test]
fn greenlet_ids_are_unique_and_match_their_handles() {
    // gevent test__greenlet.py TestStuff.test_minimal_id: every greenlet has
    // an identity distinct from the others (here greenlet_id / JoinHandle::id).
    rt::run(|| {
        let root = greenlet_id();
        let handles: Vec<_> = (0..5).map(|_| spawn(greenlet_id)).collect();
        let expected: Vec<u64> = handles.iter().map(JoinHandle::id).collect();
        let got: Vec<u64> = joinall(handles).into_iter().map(Result::unwrap).collect();
        assert_eq!(got, expected);
        let mut unique = got.clone();
        unique.push(root);
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), 6);
    });
}

#[test]
fn join_timeout_gives_the_handle_back_while_the_greenlet_runs() {
    // gevent test__greenlet.py TestJoin / TestGet (wait-timing contract):
    // join(timeout) on a long sleeper returns after the timeout with nothing.
    rt::run(|| {
        let h = spawn(|| sleep(Duration::from_secs(30)));
        let start = Instant::now();
        let h = h.join_timeout(ms(20)).expect_err("still sleeping");
        assert!(start.elapsed() >= ms(20));
        assert!(!h.is_finished());
        h.kill();
        assert!(h.join().unwrap_err().is_killed());
    });
}

#[test]
fn join_timeout_returns_the_result_when_in_time() {
    // gevent test__greenlet.py TestJoin (the other side of the contract):
    // join(timeout) of a greenlet that finishes first returns its result.
    rt::run(|| {
        let h = spawn(|| {
            sleep(ms(1));
            5
        });
        let outcome = h.join_timeout(Duration::from_secs(30)).expect("finished in time");
        assert_eq!(outcome.unwrap(), 5);
    });
}

#[test]
fn outer_timeout_interrupts_join() {
    // gevent test__greenlet.py TestJoin / TestGet via gevent.testing.timing
    // ("an outer Timeout started by the caller is not lost"): it fires through
    // a join with a longer timeout.
    rt::run(|| {
        let h = spawn(|| sleep(Duration::from_secs(30)));
        let start = Instant::now();
        let outcome = rt::timeout(ms(10), move || h.join_timeout(Duration::from_secs(20)).is_ok());
        assert_eq!(outcome, Err(rt::Elapsed));
        assert!(start.elapsed() >= ms(10));
    });
}

#[test]
fn joinall_returns_every_result_in_handle_order() {
    // gevent test__greenlet.py TestStuff.test_wait_noerrors: joinall returns
    // the results of all greenlets when none fails.
    rt::run(|| {
        let handles: Vec<_> = [30u64, 1, 10]
            .into_iter()
            .map(|delay| {
                spawn(move || {
                    sleep(ms(delay));
                    delay
                })
            })
            .collect();
        let results: Vec<u64> = joinall(handles).into_iter().map(Result::unwrap).collect();
        assert_eq!(results, [30, 1, 10]);
    });
}

#[test]
fn joinall_reports_each_failure_at_its_position_and_waits_for_the_rest() {
    // gevent test__greenlet.py TestStuff.test_wait_error /
    // test_joinall_exception_order: our joinall has no raise_error; it waits
    // for every greenlet and reports each failure in its slot, so an early
    // failure does not cut it short.
    rt::run(|| {
        let finished = Counter::new();
        let f = finished.clone();
        let ok_late = spawn(move || {
            sleep(ms(20));
            f.bump();
            1
        });
        let failing = spawn(|| -> i32 { panic!("early failure") });
        let killed = spawn(|| {
            sleep(Duration::from_secs(30));
            2
        });
        yield_now();
        killed.kill();
        let results = joinall([ok_late, failing, killed]);
        assert_eq!(finished.get(), 1);
        assert_eq!(*results[0].as_ref().unwrap(), 1);
        assert!(results[1].as_ref().unwrap_err().is_panic());
        assert!(results[2].as_ref().unwrap_err().is_killed());
    });
}

#[test]
fn joinall_of_nothing_returns_at_once() {
    // gevent test__joinall.py / TestJoinAll0 (joinall of nothing that can
    // run): here joinall([]) returns without waiting.
    rt::run(|| {
        let none: Vec<JoinHandle<()>> = Vec::new();
        assert!(joinall(none).is_empty());
    });
}

#[test]
fn spawn_later_starts_after_its_delay() {
    // gevent.md 5.2 Hub case ("wait() returns True after the delay for a
    // spawn_later greenlet"): the greenlet starts no earlier than the delay.
    rt::run(|| {
        let start = Instant::now();
        let h = spawn_later(ms(20), move || start.elapsed());
        yield_now();
        assert!(!h.is_finished());
        assert!(h.join().unwrap() >= ms(20));
    });
}

#[test]
fn spawn_later_from_a_greenlet_runs_during_a_later_wait() {
    // gevent test__api.py TestTimers.test_timer_fired: a timer-spawned greenlet
    // created inside another greenlet runs during a later wait.
    rt::run(|| {
        let done = Rc::new(Event::new());
        let d = done.clone();
        drop(spawn(move || {
            // The handle is dropped: the delayed greenlet is detached.
            drop(spawn_later(ms(5), move || d.set()));
        }));
        done.wait();
        assert!(done.is_set());
    });
}

#[test]
fn greenlet_spawned_by_an_exited_greenlet_still_runs() {
    // gevent test__api.py TestTimers.test_spawn_is_not_cancelled: a child
    // spawned by a greenlet that exits immediately still runs.
    rt::run(|| {
        let done = Rc::new(Event::new());
        let d = done.clone();
        let parent = spawn(move || drop(spawn(move || d.set())));
        parent.join().unwrap();
        done.wait();
    });
}

#[test]
fn dropping_the_handle_detaches_the_greenlet() {
    // JoinHandle docs: dropping it does not kill the greenlet.
    rt::run(|| {
        let done = Rc::new(Event::new());
        let d = done.clone();
        drop(spawn(move || {
            sleep(ms(2));
            d.set();
        }));
        done.wait();
    });
}

#[test]
fn values_need_not_be_send_or_clone() {
    // Adapted from gevent test__greenlet.py TestBasic.test_simple_exit (value
    // = return value): the value is handed to the joiner as is (here an `Rc`,
    // neither `Send` nor cloned).
    rt::run(|| {
        let shared = Rc::new(RefCell::new(vec![1]));
        let s = shared.clone();
        let h = spawn(move || {
            s.borrow_mut().push(2);
            s
        });
        let back = h.join().unwrap();
        assert!(Rc::ptr_eq(&back, &shared));
        assert_eq!(*shared.borrow(), [1, 2]);
    });
}

#[test]
fn joining_itself_panics_in_the_joiner() {
    // Adapted from gevent's "cannot join/switch to the current greenlet"
    // checks: a greenlet that joins itself fails loudly instead of hanging.
    rt::run(|| {
        let slot: Rc<RefCell<Option<JoinHandle<()>>>> = Rc::new(RefCell::new(None));
        let seen: util::Log<String> = util::Log::new();
        let (s, log) = (slot.clone(), seen.clone());
        let h = spawn(move || {
            let me = s.borrow_mut().take().expect("handle stored before it runs");
            log.push(panic_of(move || me.join()).unwrap_or_default());
        });
        *slot.borrow_mut() = Some(h);
        yield_now();
        // The greenlet consumed its own handle, caught the panic and finished.
        assert!(slot.borrow().is_none());
        let seen = seen.get();
        assert_eq!(seen.len(), 1);
        assert_contains(&seen[0], &["join itself"]);
    });
}

#[test]
fn spawn_outside_a_runtime_panics() {
    // Adapted from gevent test__greenlet.py TestBasic.test_spawn_non_callable
    // (bad spawns fail immediately): without a hub on the thread, spawn fails
    // at once with a hint.
    let err = panic_of(|| spawn(|| ())).expect("spawn outside run must panic");
    assert_contains(&err, &["inside a runtime"]);
}

#[test]
fn blocking_call_outside_a_greenlet_panics() {
    // gevent raises LoopExit/BlockingSwitchOutError for blocking in the hub;
    // here blocking outside any runtime fails immediately.
    let err = panic_of(|| sleep(ms(1))).expect("sleep outside run must panic");
    assert_contains(&err, &["runtime"]);
}

#[test]
fn run_inside_run_panics() {
    // lib.rs `run` docs: one hub per thread; nesting is refused.
    rt::run(|| {
        let err = panic_of(|| rt::run(|| ())).expect("nested run must panic");
        assert_contains(&err, &["inside a running runtime"]);
    });
}

#[test]
fn spawns_that_take_over_a_finished_greenlet_get_their_own_id_name_and_stack_size() {
    // A spawn may run on the greenlet of a task that finished and was
    // joined (its record and greenlet are kept for reuse): nothing of the
    // old one may show through.
    rt::run(|| {
        let mut ids = std::collections::HashSet::new();
        for i in 0..60 {
            let (name, stack) = match i % 4 {
                0 => (Some(format!("worker {i}")), None),
                1 => (None, Some(256 * 1024)),
                _ => (None, None),
            };
            let mut builder = task::Builder::new();
            if let Some(name) = &name {
                builder = builder.name(name.clone());
            }
            if let Some(stack) = stack {
                builder = builder.stack_size(stack);
            }
            let handle = builder.spawn(|| {
                let me = greenlet::getcurrent();
                (greenlet_id(), me.name().map(str::to_owned), me.stack_size(), me.is_active())
            });
            let spawned_id = handle.id();
            let (id, seen_name, seen_stack, active) = handle.join().unwrap();
            assert_eq!(id, spawned_id);
            assert!(ids.insert(id), "greenlet id {id} given twice");
            assert_eq!(seen_name, name);
            assert_eq!(seen_stack, stack.unwrap_or(greenlet::stack::DEFAULT_SIZE));
            assert!(active);
        }
    });
}

#[test]
fn builder_sets_name_and_stack_size() {
    // task::Builder docs (gevent: Greenlet name / spawn options).
    rt::run(|| {
        fn depth(n: u32) -> u32 {
            let pad = std::hint::black_box([0u8; 512]);
            if n == 0 { u32::from(pad[0]) } else { depth(n - 1) + 1 }
        }
        let h = task::Builder::new().name("deep").stack_size(1 << 20).spawn(|| depth(200));
        assert_eq!(h.name(), Some("deep"));
        assert_eq!(h.join().unwrap(), 200);
    });
}
