//! `RLock`, `BoundedSemaphore` and `Semaphore::release` / waiting on a
//! semaphore, ported from gevent's `test__lock.py`, `test__semaphore.py` and
//! the CPython-derived `lock_tests.py`: re-entrance, ownership, FIFO
//! hand-off, over-release, and use from several hubs and plain threads.

mod util;

use std::cell::{Cell, RefCell};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use runtime_scheduler::sync::{BoundedSemaphore, Event, OverRelease, RLock, Semaphore, wait_any};
use runtime_scheduler::{self as rt, spawn, yield_now};
use util::{Log, ms};

#[test]
fn locks_are_send_and_sync() {
    fn send_sync<T: Send + Sync>() {}
    // A `RefCell` is not `Sync`, but one owner at a time uses it.
    send_sync::<RLock<RefCell<Vec<u8>>>>();
    send_sync::<BoundedSemaphore>();
}

#[test]
fn rlock_is_reentrant_in_its_greenlet() {
    // lock_tests.py RLockTests.test_reacquire / test_release_save_unacquired.
    rt::run(|| {
        let lock = RLock::new(Cell::new(0));
        let a = lock.lock();
        let b = lock.lock();
        let c = lock.try_lock().expect("the owner takes it again");
        c.set(3);
        assert!(lock.is_owned() && lock.is_locked());
        drop((a, b));
        assert!(lock.is_owned(), "one hold is left");
        drop(c);
        assert!(!lock.is_owned() && !lock.is_locked());
        assert_eq!(lock.into_inner().get(), 3);
    });
}

#[test]
fn rlock_makes_other_greenlets_wait_for_the_last_hold() {
    // lock_tests.py RLockTests.test_different_thread, with greenlets: a
    // non-owner neither owns it nor gets it until every hold is dropped.
    let log = rt::run(|| {
        let lock = Arc::new(RLock::new(()));
        let log = Log::new();
        let outer = lock.lock();
        let inner = lock.lock();
        let tried = Arc::new(Event::new());
        let (l, g, t) = (lock.clone(), log.clone(), tried.clone());
        let other = spawn(move || {
            g.push("other: not owned".to_string());
            assert!(!l.is_owned());
            assert!(l.try_lock().is_none());
            assert!(l.lock_timeout(ms(1)).is_none());
            t.set();
            let _hold = l.lock();
            g.push("other: locked".to_string());
        });
        tried.wait();
        log.push("main: drops one".to_string());
        drop(inner);
        yield_now();
        log.push("main: drops the last".to_string());
        drop(outer);
        other.join().unwrap();
        log.get()
    });
    assert_eq!(log, ["other: not owned", "main: drops one", "main: drops the last", "other: locked"]);
}

#[test]
fn rlock_waiters_get_it_in_fifo_order() {
    // sync/mod.rs docs; gevent test__semaphore.py TestSemaphoreFair, for RLock.
    let order = rt::run(|| {
        let lock = Arc::new(RLock::new(()));
        let log = Log::new();
        let held = lock.lock();
        let handles: Vec<_> = (0..4)
            .map(|i| {
                let (lock, log) = (lock.clone(), log.clone());
                spawn(move || {
                    let _outer = lock.lock();
                    let _inner = lock.lock();
                    log.push(i);
                    yield_now(); // the next waiters stay queued meanwhile
                })
            })
            .collect();
        yield_now();
        drop(held);
        rt::joinall(handles);
        log.get()
    });
    assert_eq!(order, [0, 1, 2, 3]);
}

#[test]
fn rlock_handed_to_a_killed_waiter_goes_to_the_next() {
    // As the channel's kill cases: a hand-off is never lost.
    rt::run(|| {
        let lock = Arc::new(RLock::new(()));
        let held = lock.lock();
        let l = lock.clone();
        let doomed = spawn(move || drop(l.lock()));
        let l = lock.clone();
        let next = spawn(move || l.lock_timeout(Duration::from_secs(5)).is_some());
        yield_now();
        drop(held); // handed to `doomed`, which has not run yet
        doomed.kill();
        assert!(doomed.join().unwrap_err().is_killed());
        assert!(next.join().unwrap(), "the lock went on to the next waiter");
        assert!(!lock.is_locked());
    });
}

#[test]
fn rlock_owned_by_a_plain_thread_and_greenlets_of_two_hubs() {
    // gevent test__lock.py TestLockThread / lock_tests.py: two threads
    // hammering acquire/release (here a plain thread and two hubs, each
    // re-entering once) make progress and lose no update.
    const N: u64 = 500;
    let lock = Arc::new(RLock::new(Cell::new(0u64)));
    let work = |lock: Arc<RLock<Cell<u64>>>| {
        move || {
            for _ in 0..N {
                let outer = lock.lock();
                let inner = lock.lock();
                assert!(lock.is_owned());
                inner.set(inner.get() + 1);
                drop(inner);
                outer.set(outer.get() + 1);
            }
        }
    };
    let plain = thread::spawn(work(lock.clone()));
    let hubs: Vec<_> = (0..2)
        .map(|_| {
            let w = work(lock.clone());
            thread::spawn(move || rt::run(w))
        })
        .collect();
    plain.join().unwrap();
    for hub in hubs {
        hub.join().unwrap();
    }
    assert!(!lock.is_owned() && !lock.is_locked());
    assert_eq!(lock.lock().get(), 2 * 3 * N);
}

#[test]
fn bounded_semaphore_refuses_a_release_past_its_initial_count() {
    // lock_tests.py BoundedSemaphoreTests.test_release_unacquired (ValueError).
    let semaphore = BoundedSemaphore::new(2);
    assert_eq!(semaphore.release(), Err(OverRelease));
    assert_eq!(semaphore.available(), 2, "nothing changed");
    semaphore.acquire().forget();
    semaphore.try_acquire().expect("a second permit").forget();
    assert!(semaphore.try_acquire().is_none());
    assert_eq!(semaphore.release(), Ok(()));
    assert_eq!(semaphore.release(), Ok(()));
    assert_eq!(semaphore.release(), Err(OverRelease));
    assert_eq!(semaphore.available(), 2);
    assert_eq!(OverRelease.to_string(), "semaphore released too many times");
}

#[test]
fn bounded_semaphore_counts_like_a_semaphore() {
    // lock_tests.py BaseSemaphoreTests.test_try_acquire_contended: 3
    // successes, 7 failures; then a timed acquire gives up.
    rt::run(|| {
        let semaphore = BoundedSemaphore::new(3);
        let taken: Vec<_> = (0..10).filter_map(|_| semaphore.try_acquire()).collect();
        assert_eq!(taken.len(), 3);
        assert!(semaphore.acquire_timeout(ms(1)).is_none());
        drop(taken);
        assert_eq!(semaphore.available(), 3);
    });
}

#[test]
fn bounded_semaphore_release_wakes_a_waiter_even_at_the_limit() {
    // A waiter queued on a fully taken semaphore gets the permit a `release`
    // hands over (the count never exceeds the limit).
    rt::run(|| {
        let semaphore = Arc::new(BoundedSemaphore::new(1));
        semaphore.acquire().forget();
        let s = semaphore.clone();
        let waiter = spawn(move || s.acquire().forget());
        yield_now();
        assert_eq!(semaphore.release(), Ok(()));
        waiter.join().unwrap();
        assert_eq!(semaphore.available(), 0);
        assert_eq!(semaphore.release(), Ok(()));
        assert_eq!(semaphore.release(), Err(OverRelease));
    });
}

#[test]
fn bounded_semaphore_acquired_in_one_thread_released_in_another() {
    // gevent test__semaphore.py TestSemaphoreMultiThread
    // .test_acquire_in_one_then_another (release from another thread).
    let semaphore = Arc::new(BoundedSemaphore::new(1));
    semaphore.acquire().forget();
    let s = semaphore.clone();
    let releaser = thread::spawn(move || {
        thread::sleep(ms(5));
        s.release()
    });
    rt::run({
        let semaphore = semaphore.clone();
        move || semaphore.acquire().forget()
    });
    assert_eq!(releaser.join().unwrap(), Ok(()));
    assert_eq!(semaphore.available(), 0);
}

#[test]
fn semaphore_release_without_a_guard_may_go_past_the_initial_count() {
    // lock_tests.py SemaphoreTests.test_release_unacquired: an unbounded
    // semaphore allows it.
    let semaphore = Semaphore::new(1);
    semaphore.release();
    assert_eq!(semaphore.available(), 2);
    semaphore.acquire().forget();
    semaphore.acquire().forget();
    semaphore.release();
    assert_eq!(semaphore.available(), 1);
}

#[test]
fn waiting_on_a_semaphore_is_ready_when_a_permit_is_free_and_takes_none() {
    // gevent test__semaphore.py test_rawlink_on_unacquired_runs_notifiers
    // (ready at once, no LoopExit) and Semaphore.wait (takes no permit).
    rt::run(|| {
        let semaphore = Arc::new(Semaphore::new(1));
        assert_eq!(wait_any(&[&*semaphore], Some(Duration::ZERO)), Some(0));
        assert_eq!(semaphore.available(), 1, "waiting took no permit");
        semaphore.acquire().forget();
        assert_eq!(wait_any(&[&*semaphore], Some(ms(1))), None);
        let s = semaphore.clone();
        let releaser = spawn(move || s.release());
        assert_eq!(wait_any(&[&*semaphore], Some(Duration::from_secs(5))), Some(0));
        releaser.join().unwrap();
        assert_eq!(semaphore.available(), 1);
        let bounded = BoundedSemaphore::new(1);
        assert_eq!(wait_any(&[&bounded], Some(Duration::ZERO)), Some(0));
    });
}
