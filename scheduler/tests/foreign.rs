//! `foreign::Current`: waits that report a kill or timeout instead of
//! unwinding, the interruption staying pending for the next park outside.

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use runtime_scheduler::foreign::{self, Current, Interrupted};
use runtime_scheduler::{self as rt, Direction, Registration, sleep, spawn, timeout, yield_now};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn far() -> Instant {
    Instant::now() + Duration::from_secs(60)
}

#[test]
fn current_exists_only_in_a_greenlet_of_the_hub() {
    assert!(Current::get().is_none(), "no hub on this thread");
    assert!(foreign::hub_id().is_none());
    rt::run(|| {
        let current = Current::get().expect("the root greenlet");
        assert_eq!(Some(current.hub_id()), foreign::hub_id());
        assert_eq!(current.check(), Ok(()));
        let raw = greenlet::Greenlet::new(|_| Box::new(Current::get().is_none()));
        assert!(*raw.switch(Box::new(())).downcast::<bool>().unwrap(), "a raw greenlet is not the hub's");
    });
}

#[test]
fn a_kill_is_reported_once_then_raised_at_the_next_park_past_the_grace() {
    // A grace long enough for the steps inside it, also under Valgrind.
    rt::Builder::new().cancel_grace(ms(500)).run(|| {
        let seen = Rc::new(Cell::new(None));
        let after = Rc::new(Cell::new(false));
        let (s, a) = (seen.clone(), after.clone());
        let victim = spawn(move || {
            let current = Current::get().unwrap();
            s.set(Some(current.sleep_until(far())));
            assert_eq!(current.cancelled(), Some(Interrupted::Killed));
            // The grace: parks complete, foreign or not, up to its end.
            assert_eq!(current.check(), Ok(()));
            sleep(ms(1));
            // A `Current` is got anew after a park outside it.
            let current = Current::get().unwrap();
            assert_eq!(current.sleep_until(Instant::now() + ms(1)), Ok(()));
            assert_eq!(current.sleep_until(far()), Err(Interrupted::Killed), "a park outlasted the grace");
            // Past it, foreign waits fail at once.
            assert_eq!(current.check(), Err(Interrupted::Killed));
            assert_eq!(current.sleep_until(far()), Err(Interrupted::Killed));
            assert_eq!(current.cooperate().and(current.check()), Err(Interrupted::Killed));
            // The next runtime park unwinds the greenlet.
            sleep(ms(1));
            a.set(true);
        });
        sleep(ms(5));
        victim.kill();
        assert!(victim.join().unwrap_err().is_killed());
        assert_eq!(seen.get(), Some(Err(Interrupted::Killed)));
        assert!(!after.get(), "the kill was raised at the park outside");
    });
}

#[test]
fn a_reported_kill_ends_the_greenlet_as_killed_when_its_closure_returns() {
    rt::run(|| {
        let victim = spawn(|| Current::get().unwrap().sleep_until(far()));
        yield_now();
        victim.kill();
        let outcome = victim.join();
        assert!(outcome.unwrap_err().is_killed(), "not Ok(Err(Killed))");
    });
}

#[test]
fn a_timeout_is_reported_and_the_scope_returns_elapsed() {
    rt::run(|| {
        let reached = Rc::new(Cell::new(false));
        let r = reached.clone();
        let outcome = timeout(ms(10), move || {
            let current = Current::get().unwrap();
            let slept = current.sleep_until(far());
            r.set(true);
            slept
        });
        assert!(reached.get(), "the code after the foreign wait ran");
        assert!(outcome.is_err());
        // Nothing stays pending after the scope.
        assert_eq!(Current::get().unwrap().check(), Ok(()));
        sleep(ms(1));
    });
}

#[test]
fn a_reported_timeout_is_raised_at_the_next_park_inside_the_scope() {
    rt::Builder::new().cancel_grace(Duration::ZERO).run(|| {
        let after = Rc::new(Cell::new(false));
        let a = after.clone();
        let outcome = timeout(ms(10), move || {
            let current = Current::get().unwrap();
            assert_eq!(current.sleep_until(far()), Err(Interrupted::TimedOut));
            sleep(ms(1)); // unwinds
            a.set(true);
        });
        assert!(outcome.is_err());
        assert!(!after.get());
    });
}

#[test]
fn io_waits_and_deregistration_wake_the_waiter() {
    rt::run(|| {
        let (a, mut b) = std::os::unix::net::UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        let registration = Rc::new(Registration::new(&a).unwrap());
        registration.clear_ready(Direction::Read);
        let current = Current::get().unwrap();
        // A deadline.
        let waited = current.wait(&registration, Direction::Read, "test", Some(Instant::now() + ms(5)));
        assert_eq!(waited, Ok(false));
        // Readiness.
        std::io::Write::write_all(&mut b, b"x").unwrap();
        assert_eq!(current.wait(&registration, Direction::Read, "test", None), Ok(true));
        // Any of several.
        registration.clear_ready(Direction::Read);
        let (c, _d) = std::os::unix::net::UnixStream::pair().unwrap();
        c.set_nonblocking(true).unwrap();
        let other = Registration::new(&c).unwrap();
        other.clear_ready(Direction::Read);
        let sources = [(&*registration, Direction::Read), (&other, Direction::Read)];
        assert_eq!(current.wait_any(&sources, "poll", Some(Instant::now() + ms(5))), Ok(false));
        // Deregistration wakes a waiter in another greenlet.
        let r = registration.clone();
        let waiter = spawn(move || Current::get().unwrap().wait(&r, Direction::Read, "test", None));
        yield_now();
        foreign::deregister(&registration);
        assert_eq!(waiter.join().unwrap(), Ok(true));
    });
}

#[test]
fn blocking_runs_on_the_pool_and_a_kill_abandons_it() {
    rt::run(|| {
        let current = Current::get().unwrap();
        let value = current.blocking(|| 6 * 7).unwrap();
        assert_eq!(value.unwrap(), 42);
        let victim = spawn(|| {
            let current = Current::get().unwrap();
            current.blocking(|| std::thread::sleep(Duration::from_millis(200))).map(drop)
        });
        sleep(ms(10));
        victim.kill();
        assert!(victim.join().unwrap_err().is_killed());
    });
}
