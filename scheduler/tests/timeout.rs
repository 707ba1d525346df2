//! `timeout` / `timeout_at` scopes, ported from gevent's `test__timeout.py` and
//! `test__api_timeout.py` (`with_timeout` and the scoped `Timeout`).

mod util;

use std::panic::{self, AssertUnwindSafe};
use std::time::{Duration, Instant};

use runtime_scheduler::sync::channel;
use runtime_scheduler::{self as rt, Elapsed, sleep, spawn, timeout, timeout_at, yield_now};
use util::{Drops, Log, message, ms};

/// Busy-waits without parking, so no timer can be delivered meanwhile.
fn hold_the_hub(duration: Duration) {
    std::thread::sleep(duration);
}

#[test]
fn timeout_returns_the_value_when_f_finishes_first() {
    // gevent test__timeout.py Test.test_with_timeout (returns the function's
    // result when it finishes first).
    rt::run(|| {
        assert_eq!(timeout(Duration::from_secs(30), || 7), Ok(7));
        let slept = timeout(Duration::from_secs(30), || {
            sleep(ms(1));
            "slept"
        });
        assert_eq!(slept, Ok("slept"));
    });
}

#[test]
fn timeout_elapses_when_f_outlasts_it_and_unwinds_f() {
    // gevent test__timeout.py Test.test_with_timeout (raises Timeout when the
    // function outlasts it) and test__api_timeout.py Test.test_api.
    rt::run(|| {
        let drops = Drops::new();
        let log = Log::new();
        let start = Instant::now();
        let outcome = timeout(ms(10), || {
            let _guard = drops.guard();
            sleep(Duration::from_secs(30));
            log.push("finished sleeping");
        });
        assert_eq!(outcome, Err(Elapsed));
        assert!(start.elapsed() >= ms(10));
        assert_eq!(drops.count(), 1);
        assert!(log.is_empty());
    });
}

#[test]
fn elapsed_can_be_replaced_by_a_default_value() {
    // gevent test__timeout.py Test.test_with_timeout (timeout_value=X: X).
    rt::run(|| {
        let (_tx, rx) = channel::bounded::<&str>(1);
        let value = timeout(ms(5), || rx.recv().unwrap()).unwrap_or("timeout value");
        assert_eq!(value, "timeout value");
        assert_eq!(Elapsed.to_string(), "deadline has elapsed");
    });
}

#[test]
fn finished_scope_never_fires_later() {
    // gevent test__api_timeout.py Test.test_api ("nothing happens if the
    // with-block finishes before the timeout expires") and test__timeout.py
    // Test.test_cancel.
    rt::run(|| {
        assert_eq!(timeout(ms(5), || 1), Ok(1));
        assert_eq!(timeout(ms(5), yield_now), Ok(()));
        sleep(ms(20));
        yield_now();
    });
}

#[test]
fn timeout_fires_at_the_first_park_after_the_deadline() {
    // gevent test__timeout.py Test.test_expires (a started Timeout interrupts
    // the next switch to the hub): code that does not park runs on past the
    // deadline, and the expiry is raised at the next blocking call.
    rt::run(|| {
        let log = Log::new();
        let outcome = timeout(ms(5), || {
            hold_the_hub(ms(20));
            log.push("still running past the deadline");
            sleep(ms(1));
            log.push("after the park");
        });
        assert_eq!(outcome, Err(Elapsed));
        assert_eq!(log.get(), ["still running past the deadline"]);
    });
}

#[test]
fn greenlet_that_never_parks_is_not_interrupted() {
    // lib.rs "Cancellation": code that never parks cannot be interrupted; the
    // scope's expiry is dropped with the scope.
    rt::run(|| {
        let outcome = timeout(ms(1), || {
            hold_the_hub(ms(15));
            42
        });
        assert_eq!(outcome, Ok(42));
        // Nothing stale is raised at later parks.
        sleep(ms(2));
        yield_now();
    });
}

#[test]
fn zero_timeout_fires_at_the_first_park() {
    // gevent test__event.py TestAsyncResult.test_set (a zero Timeout
    // interrupts get() before a delayed set) and test__queue.py
    // TestQueue.test_waiters_that_cancel.
    rt::run(|| {
        let (tx, rx) = channel::unbounded::<u8>();
        drop(spawn(move || {
            sleep(ms(5));
            tx.send(1).unwrap();
        }));
        let log = Log::new();
        let outcome = timeout(Duration::ZERO, || {
            log.push("entered");
            rx.recv().unwrap()
        });
        assert_eq!(outcome, Err(Elapsed));
        assert_eq!(log.get(), ["entered"]);
        // The value sent later was not consumed by the interrupted recv.
        assert_eq!(rx.recv().unwrap(), 1);
    });
}

#[test]
fn zero_timeout_does_not_preempt_a_value_already_on_its_way() {
    // As in gevent (callbacks run before timers): a greenlet that was already
    // runnable and hands over a value before the hub looks at its timers wins.
    rt::run(|| {
        let (tx, rx) = channel::unbounded::<u8>();
        drop(spawn(move || tx.send(1).unwrap()));
        assert_eq!(timeout(Duration::ZERO, || rx.recv().unwrap()), Ok(1));
    });
}

#[test]
fn deadline_in_the_past_fires_at_the_first_park() {
    // timeout_at docs: a deadline already passed acts as a zero timeout.
    rt::run(|| {
        let past = Instant::now();
        hold_the_hub(ms(2));
        assert_eq!(timeout_at(past, || sleep(Duration::from_secs(30))), Err(Elapsed));
    });
}

#[test]
fn nested_inner_expiry_is_caught_by_the_inner_scope_only() {
    // gevent test__api_timeout.py Test.test_nested_timeout (third case, inner
    // shorter): the inner is raised, the outer stays pending and fires later.
    rt::run(|| {
        let log = Log::new();
        let outer = timeout(ms(60), || {
            let inner = timeout(ms(5), || sleep(Duration::from_secs(30)));
            log.push(format!("inner: {inner:?}"));
            // The outer scope is still armed.
            sleep(Duration::from_secs(30));
            log.push("outer body finished".to_string());
        });
        assert_eq!(outer, Err(Elapsed));
        assert_eq!(log.get(), ["inner: Err(Elapsed)"]);
    });
}

#[test]
fn nested_outer_expiry_passes_through_the_inner_scope() {
    // gevent test__api_timeout.py Test.test_nested_timeout (second case, outer
    // shorter) and test__api.py Test.test_nested_with_timeout (the outer
    // expiry propagates even though the inner has a timeout_value).
    rt::run(|| {
        let log = Log::new();
        let outer = timeout(ms(5), || {
            let inner = timeout(Duration::from_secs(30), || {
                sleep(Duration::from_secs(60));
                "inner finished"
            })
            .unwrap_or("inner timed out");
            log.push(format!("inner returned {inner}"));
        });
        assert_eq!(outer, Err(Elapsed));
        assert!(log.is_empty(), "the inner scope swallowed the outer expiry: {:?}", log.get());
    });
}

#[test]
fn when_both_scopes_expired_the_outer_one_wins() {
    // gevent test__api_timeout.py Test.test_nested_timeout (first case, silent
    // scopes: the outer fires, the inner does not leak), with both deadlines
    // passed before the next park.
    rt::run(|| {
        let log = Log::new();
        let outer = timeout(ms(5), || {
            let inner = timeout(ms(1), || {
                hold_the_hub(ms(15));
                sleep(ms(1));
            });
            log.push(format!("inner returned {inner:?}"));
            sleep(ms(1));
        });
        assert_eq!(outer, Err(Elapsed));
        assert!(log.is_empty(), "{:?}", log.get());
        // And nothing is left pending afterwards.
        sleep(ms(1));
    });
}

#[test]
fn scope_can_fire_again_after_being_caught() {
    // gevent test__timeout.py Test.test_expires (restarted after firing, it
    // fires again).
    rt::run(|| {
        for _ in 0..3 {
            assert_eq!(timeout(ms(2), || sleep(Duration::from_secs(30))), Err(Elapsed));
        }
        assert_eq!(timeout(ms(50), || sleep(ms(1))), Ok(()));
    });
}

#[test]
fn panics_inside_the_scope_propagate_unchanged() {
    // gevent test__api_timeout.py Test.test_api (other exceptions raised in
    // the block go through the Timeout unchanged).
    rt::run(|| {
        let caught = panic::catch_unwind(AssertUnwindSafe(|| {
            timeout(Duration::from_secs(30), || -> () { panic!("not a timeout") })
        }))
        .unwrap_err();
        assert_eq!(message(&caught), "not a timeout");
        // The scope was disarmed by the unwinding.
        sleep(ms(2));
    });
}

#[test]
fn scopes_belong_to_their_greenlet() {
    // gevent.md 1.10 (a Timeout is raised in the greenlet that started it):
    // other greenlets are not interrupted.
    rt::run(|| {
        let victim = spawn(|| timeout(ms(5), || sleep(Duration::from_secs(30))));
        let bystander = spawn(|| {
            sleep(ms(20));
            "undisturbed"
        });
        assert_eq!(victim.join().unwrap(), Err(Elapsed));
        assert_eq!(bystander.join().unwrap(), "undisturbed");
    });
}

#[test]
fn timeout_interrupts_a_blocked_send_without_sending() {
    // gevent.md 5.2 Queues ("put with timeout on every queue kind raises Full
    // after the timeout"): the item is not added.
    rt::run(|| {
        let (tx, rx) = channel::bounded::<u8>(1);
        tx.send(1).unwrap();
        assert_eq!(timeout(ms(5), || tx.send(2).unwrap()), Err(Elapsed));
        assert_eq!(rx.try_iter().collect::<Vec<_>>(), [1]);
    });
}

#[test]
fn timeout_in_a_tight_yield_loop_fires() {
    // gevent test__sleep0.py: a tight sleep(0) loop is broken by a Timeout
    // (timers are serviced despite constant yielding), with another greenlet
    // yielding too.
    rt::run(|| {
        let other = spawn(|| {
            for _ in 0..1000 {
                yield_now();
            }
        });
        let outcome = timeout(ms(2), || {
            loop {
                yield_now();
            }
        });
        assert_eq!(outcome, Err::<(), _>(Elapsed));
        other.kill();
        drop(other.join());
    });
}

#[test]
fn blocking_in_a_destructor_of_a_killed_greenlet_with_an_expired_scope_does_not_abort() {
    // lib.rs "Cancellation": while a greenlet unwinds, blocking calls fail at
    // once. Here the greenlet is killed while the expiry of its `timeout` scope
    // is still pending; a destructor inside the scope then makes a blocking
    // call, which must not raise the expiry (a panic escaping a destructor
    // during unwinding aborts the process, hence the child process).
    const TEST: &str = "blocking_in_a_destructor_of_a_killed_greenlet_with_an_expired_scope_does_not_abort";
    if !util::is_child(TEST) {
        let output = util::rerun_in_child(TEST, &[]);
        assert!(output.status.success(), "{}", util::output_text(&output));
        return;
    }
    struct SleepsOnDrop(Log<&'static str>);
    impl Drop for SleepsOnDrop {
        fn drop(&mut self) {
            sleep(ms(1));
            self.0.push("destructor finished");
        }
    }
    rt::run(|| {
        let log = Log::new();
        let l = log.clone();
        let victim = spawn(move || {
            timeout(ms(1), || {
                let _guard = SleepsOnDrop(l);
                sleep(Duration::from_secs(30));
            })
        });
        yield_now();
        hold_the_hub(ms(10));
        // A full batch of runnable greenlets ahead of this one makes the hub
        // fire the expired scope (marking it pending on the parked victim)
        // before this greenlet runs again and kills the victim.
        for _ in 0..64 {
            drop(spawn(|| ()));
        }
        yield_now();
        victim.kill();
        assert!(victim.join().unwrap_err().is_killed());
        assert_eq!(log.get(), ["destructor finished"]);
    });
}
