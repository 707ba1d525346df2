//! `Timeout` objects and `is_timeout`, ported from gevent's
//! `test__timeout.py` and `test__api_timeout.py`.

mod util;

use std::panic::{self, AssertUnwindSafe};
use std::time::Duration;

use runtime_scheduler::{self as rt, Elapsed, Timeout, catch_panic, is_cancellation, is_timeout, sleep, yield_now};
use util::{Payload, ms};

/// Sleeps (a park) and returns the panic it raised, if any.
fn parked(duration: Duration) -> Option<Payload> {
    panic::catch_unwind(|| sleep(duration)).err()
}

#[test]
fn a_started_timeout_interrupts_the_next_park_with_elapsed() {
    // gevent test__timeout.py test_direct_raise_... / TestDirectRaise: a
    // started Timeout interrupts a switch to the hub with itself, and is no
    // longer pending then.
    rt::run(|| {
        let t = Timeout::start_new(ms(5));
        assert!(t.pending());
        let payload = parked(Duration::from_secs(30)).expect("the timeout fired");
        assert!(payload.is::<Elapsed>());
        assert!(is_timeout(&*payload, &t));
        assert!(is_cancellation(&*payload));
        assert!(!t.pending());
        t.close(); // closing after the catch is fine
        assert!(parked(ms(10)).is_none(), "it fired once");
    });
}

#[test]
fn a_timeout_can_be_restarted_after_it_fired() {
    // gevent test__timeout.py test_restart (it can be restarted after
    // firing and fires again).
    rt::run(|| {
        let t = Timeout::new(ms(2));
        assert!(!t.pending(), "not started");
        assert!(parked(ms(5)).is_none());
        for _ in 0..3 {
            t.start();
            let payload = parked(Duration::from_secs(30)).expect("fired");
            assert!(is_timeout(&*payload, &t));
        }
    });
}

#[test]
fn a_cancelled_timeout_does_not_fire() {
    // gevent test__timeout.py test_cancel (a cancelled Timeout does not fire
    // and is not pending), also when its time passed while the greenlet did
    // not park.
    rt::run(|| {
        let t = Timeout::start_new(ms(1));
        t.cancel();
        assert!(!t.pending());
        assert!(parked(ms(10)).is_none());
        let late = Timeout::start_new(ms(1));
        std::thread::sleep(ms(3)); // its time passes without a park
        late.cancel();
        assert!(parked(ms(5)).is_none());
    });
}

#[test]
fn dropping_a_timeout_cancels_it() {
    rt::run(|| {
        drop(Timeout::start_new(ms(1)));
        assert!(parked(ms(5)).is_none());
    });
}

#[test]
fn a_timeout_with_a_payload_raises_the_payload() {
    // gevent test__timeout.py (a Timeout with a custom exception instance
    // raises that instance).
    #[derive(Debug, PartialEq)]
    struct TooSlow(&'static str);
    rt::run(|| {
        let t = Timeout::with_payload(ms(2), TooSlow("query"));
        t.start();
        let payload = parked(Duration::from_secs(30)).expect("fired");
        assert_eq!(payload.downcast_ref::<TooSlow>(), Some(&TooSlow("query")));
        assert!(is_timeout(&*payload, &t));
        assert!(!is_cancellation(&*payload), "a payload of one's own is a plain panic");
        t.start();
        let again = parked(Duration::from_secs(30)).expect("fired again");
        assert!(again.is::<Elapsed>(), "the payload is raised once");
        assert!(is_timeout(&*again, &t));
    });
}

#[test]
fn is_timeout_tells_nested_timeouts_apart() {
    // gevent test__timeout.py test_nested_timeout (whichever fires raises
    // itself; handlers compare identity).
    rt::run(|| {
        let outer = Timeout::start_new(ms(2));
        let inner = Timeout::start_new(Duration::from_secs(30));
        let payload = parked(Duration::from_secs(30)).expect("the outer one fired");
        assert!(is_timeout(&*payload, &outer));
        assert!(!is_timeout(&*payload, &inner));
        assert!(inner.pending());
        inner.cancel();
        let second = Timeout::start_new(ms(1));
        let payload = parked(Duration::from_secs(30)).expect("the second one fired");
        assert!(is_timeout(&*payload, &second));
        assert!(!is_timeout(&*payload, &outer), "the outer one's raise is older");
        let kill: Payload = Box::new(greenlet::GreenletExit);
        assert!(!is_timeout(&*kill, &outer));
    });
}

#[test]
fn the_expiry_passes_through_catch_panic_and_timeout_scopes() {
    rt::run(|| {
        let t = Timeout::start_new(ms(2));
        let scoped = panic::catch_unwind(AssertUnwindSafe(|| {
            rt::timeout(Duration::from_secs(30), || {
                let _ = catch_panic(|| sleep(Duration::from_secs(30)));
                unreachable!("catch_panic lets the expiry through");
            })
        }));
        let payload = scoped.expect_err("the scope did not catch it");
        assert!(is_timeout(&*payload, &t));
    });
}

#[test]
fn a_tight_yield_loop_is_broken_by_a_timeout() {
    // gevent test__timeout.py / test__sleep0 (a tight sleep(0) loop is broken
    // by a 10 ms Timeout: timers are serviced despite constant yielding).
    rt::run(|| {
        let t = Timeout::start_new(ms(10));
        let payload = panic::catch_unwind(|| {
            loop {
                yield_now();
            }
        })
        .unwrap_err();
        assert!(is_timeout(&*payload, &t));
    });
}

#[test]
fn a_timeout_interrupts_the_greenlet_that_started_it_only() {
    rt::run(|| {
        let t = Timeout::start_new(ms(3));
        let other = rt::spawn(|| {
            sleep(ms(10));
            "undisturbed"
        });
        let payload = parked(Duration::from_secs(30)).expect("fired here");
        assert!(is_timeout(&*payload, &t));
        assert_eq!(other.join().unwrap(), "undisturbed");
    });
}

#[test]
#[should_panic(expected = "already started")]
fn starting_a_pending_timeout_again_panics() {
    rt::run(|| {
        let t = Timeout::start_new(Duration::from_secs(30));
        t.start();
    });
}
