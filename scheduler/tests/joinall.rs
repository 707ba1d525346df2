//! `killall`, `joinall_timeout`, `try_joinall` and `wait_idle`, ported from
//! gevent's `test__greenletset.py`, `test__joinall.py`, `test__greenlet.py`
//! (TestStuff.test_wait_error / joinall(raise_error=True)) and
//! `test__hub.py` (TestWaiting: `gevent.wait()` without objects).

mod util;

use std::panic;
use std::time::Duration;

use runtime_scheduler::{
    self as rt, Elapsed, joinall_timeout, killall, sleep, spawn, spawn_later, try_joinall, wait_idle, yield_now,
};
use util::{Counter, Log, ms};

#[test]
fn killall_without_blocking_kills_and_returns_at_once() {
    // gevent test__greenletset.py test_killall_iterable_argument_non_block.
    rt::run(|| {
        let handles: Vec<_> = (0..3).map(|_| spawn(|| sleep(Duration::from_secs(30)))).collect();
        yield_now();
        let refs: Vec<_> = handles.iter().collect();
        assert_eq!(killall(&refs, false, None), Ok(()));
        assert!(handles.iter().all(|h| !h.is_finished()), "not waited for");
        yield_now();
        assert!(handles.iter().all(|h| h.is_finished()));
        for h in handles {
            assert!(h.join().unwrap_err().is_killed());
        }
    });
}

#[test]
fn killall_of_greenlets_that_never_ran() {
    // gevent test__greenletset.py
    // test_killall_iterable_argument_timeout_not_started: all dead, never ran.
    rt::run(|| {
        let ran = Counter::new();
        let handles: Vec<_> = (0..3)
            .map(|_| {
                let r = ran.clone();
                spawn(move || r.bump())
            })
            .collect();
        let refs: Vec<_> = handles.iter().collect();
        assert_eq!(killall(&refs, true, Some(ms(100))), Ok(()));
        assert!(handles.iter().all(|h| h.is_finished()));
        yield_now();
        assert_eq!(ran.get(), 0);
    });
}

#[test]
fn killall_with_a_timeout_gives_up_on_greenlets_that_survive() {
    // gevent test__greenletset.py
    // test_killall_iterable_argument_timeout_started: they catch the kill and
    // sleep longer than the timeout: killall raises Timeout, they live on.
    rt::run(|| {
        let handles: Vec<_> = (0..2)
            .map(|_| {
                spawn(|| {
                    let _ = panic::catch_unwind(|| sleep(Duration::from_secs(30)));
                    sleep(Duration::from_secs(30));
                })
            })
            .collect();
        yield_now();
        let refs: Vec<_> = handles.iter().collect();
        assert_eq!(killall(&refs, true, Some(ms(5))), Err(Elapsed));
        assert!(handles.iter().all(|h| !h.is_finished()));
        assert_eq!(killall(&refs, true, None), Ok(()), "a second kill ends them");
    });
}

#[test]
fn killall_waits_for_the_cleanup_from_another_thread_too() {
    rt::run(|| {
        let cleaned = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let c = cleaned.clone();
        let h = spawn(move || {
            struct Slow(std::sync::Arc<std::sync::atomic::AtomicBool>);
            impl Drop for Slow {
                fn drop(&mut self) {
                    sleep(ms(2));
                    self.0.store(true, std::sync::atomic::Ordering::SeqCst);
                }
            }
            let _slow = Slow(c);
            sleep(Duration::from_secs(30));
        });
        yield_now();
        let result = rt::blocking(move || killall(&[&h], true, Some(Duration::from_secs(30))));
        assert_eq!(result, Ok(()));
        assert!(cleaned.load(std::sync::atomic::Ordering::SeqCst));
    });
}

#[test]
fn joinall_timeout_gives_what_finished_in_time() {
    // gevent test__joinall.py / test__greenlet.py (joinall(timeout) returns
    // the finished ones after the timeout).
    rt::run(|| {
        let handles = vec![
            spawn(|| 1),
            spawn(|| {
                sleep(Duration::from_secs(30));
                2
            }),
            spawn(|| -> i32 { panic!("third") }),
            spawn(|| {
                yield_now(); // done while the first wait parks
                4
            }),
        ];
        let results = joinall_timeout(handles, ms(20));
        assert_eq!(results.len(), 4);
        assert!(matches!(results[0], Some(Ok(1))));
        assert!(results[1].is_none());
        assert!(results[2].as_ref().unwrap().as_ref().unwrap_err().is_panic());
        assert!(matches!(results[3], Some(Ok(4))));
        assert!(joinall_timeout(Vec::<rt::JoinHandle<()>>::new(), ms(1)).is_empty());
    });
}

#[test]
fn try_joinall_gives_the_values_in_order() {
    // gevent test__greenlet.py TestStuff.test_wait_noerrors.
    rt::run(|| {
        let handles: Vec<_> = [3u64, 1, 2]
            .into_iter()
            .map(|n| {
                spawn(move || {
                    sleep(Duration::from_millis(n));
                    n
                })
            })
            .collect();
        assert_eq!(try_joinall(handles).unwrap(), [3, 1, 2]);
        assert_eq!(try_joinall(Vec::<rt::JoinHandle<u8>>::new()).unwrap(), Vec::<u8>::new());
    });
}

#[test]
fn try_joinall_fails_with_the_first_error_as_soon_as_it_happens() {
    // gevent test__greenlet.py TestStuff.test_wait_error (joinall with
    // raise_error raises the first to fail, without waiting for the rest).
    rt::run(|| {
        let log = Log::new();
        let l = log.clone();
        let slow = spawn(move || {
            sleep(Duration::from_secs(30));
            l.push("slow finished");
        });
        let late = spawn(|| {
            sleep(Duration::from_secs(30));
            panic!("second failure")
        });
        let early = spawn(|| {
            sleep(ms(1));
            panic!("first failure")
        });
        let error = try_joinall([slow, late, early]).unwrap_err();
        assert_eq!(util::message(&error.into_panic()), "first failure");
        assert!(log.is_empty(), "did not wait for the slow one");
        let killed = spawn(|| sleep(Duration::from_secs(30)));
        killed.kill();
        assert!(try_joinall([spawn(|| ()), killed]).unwrap_err().is_killed());
    });
}

#[test]
fn wait_idle_returns_once_nothing_is_left() {
    // gevent test__hub.py TestWaiting: wait() returns True at once when a
    // spawned greenlet finished, after the delay for a spawn_later one,
    // False after the timeout while a far-future one exists (which stays
    // alive), and True at once after killing it. Repeated: the state resets.
    rt::run(|| {
        for _ in 0..2 {
            let ran = Counter::new();
            let r = ran.clone();
            drop(spawn(move || r.bump()));
            assert!(wait_idle(None));
            assert_eq!(ran.get(), 1);
            let r = ran.clone();
            drop(spawn_later(ms(3), move || r.bump()));
            assert!(wait_idle(Some(Duration::from_secs(30))));
            assert_eq!(ran.get(), 2);
            let far = spawn_later(Duration::from_secs(30), || ());
            assert!(!wait_idle(Some(ms(5))));
            assert!(!far.is_finished(), "it stays alive");
            far.kill();
            assert!(wait_idle(Some(Duration::ZERO)));
        }
    });
}

#[test]
fn wait_idle_waits_for_blocking_jobs_and_live_handles() {
    rt::run(|| {
        let done = Counter::new();
        let d = done.clone();
        drop(spawn(move || {
            rt::blocking(|| std::thread::sleep(ms(3)));
            d.bump();
        }));
        assert!(wait_idle(Some(Duration::from_secs(30))));
        assert_eq!(done.get(), 1, "the greenlet waiting on its blocking job counted");
        let handle = rt::Handle::current();
        assert!(!wait_idle(Some(ms(3))), "a live Handle may still send work");
        let thread = std::thread::spawn(move || {
            std::thread::sleep(ms(2));
            drop(handle.spawn(|| ()));
        });
        assert!(wait_idle(Some(Duration::from_secs(30))));
        thread.join().unwrap();
    });
}
