//! `Semaphore`, `Mutex` and `Condvar`, ported from gevent's
//! `test__semaphore.py`, `test__lock.py` and the CPython-derived
//! `lock_tests.py`: FIFO hand-off, timeouts, and permits that are never leaked.

mod util;

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use runtime_scheduler::sync::{Condvar, Mutex, Semaphore};
use runtime_scheduler::{self as rt, Elapsed, sleep, spawn, timeout, yield_now};
use util::{Counter, Drops, Log, ms};

#[test]
fn acquire_timeout_on_an_empty_semaphore_returns_none() {
    // gevent test__semaphore.py TestSemaphore.test_acquire_returns_false_after_timeout.
    rt::run(|| {
        let semaphore = Semaphore::new(0);
        let start = Instant::now();
        assert!(semaphore.acquire_timeout(ms(10)).is_none());
        assert!(start.elapsed() >= ms(10));
        assert_eq!(semaphore.waiters(), 0, "the timed-out waiter left the queue");
    });
}

#[test]
fn two_releases_wake_two_waiters() {
    // gevent test__semaphore.py TestSemaphore.test_release_twice (both
    // rawlinks fire): here two parked acquirers.
    rt::run(|| {
        let semaphore = std::sync::Arc::new(Semaphore::new(0));
        let woken = Counter::new();
        let handles: Vec<_> = (0..2)
            .map(|_| {
                let (semaphore, woken) = (semaphore.clone(), woken.clone());
                spawn(move || {
                    semaphore.acquire().forget();
                    woken.bump();
                })
            })
            .collect();
        yield_now();
        assert_eq!(semaphore.waiters(), 2);
        semaphore.add_permits(1);
        semaphore.add_permits(1);
        rt::joinall(handles);
        assert_eq!(woken.get(), 2);
        assert_eq!(semaphore.available(), 0);
    });
}

#[test]
fn acquiring_an_available_semaphore_does_not_park() {
    // gevent test__semaphore.py
    // TestSemaphore.test_rawlink_on_unacquired_runs_notifiers (waiting on an
    // available semaphore fires immediately, no LoopExit).
    rt::run(|| {
        let semaphore = Semaphore::new(1);
        let ran = Counter::new();
        let r = ran.clone();
        drop(spawn(move || r.bump()));
        let permit = semaphore.acquire();
        assert_eq!(ran.get(), 0, "acquire must not switch when a permit is free");
        drop(permit);
        assert!(semaphore.acquire_timeout(Duration::ZERO).is_some());
        assert_eq!(ran.get(), 0);
    });
}

#[test]
fn released_permit_goes_to_the_first_waiter_not_the_releaser() {
    // gevent test__semaphore.py TestSemaphoreFair.test_fair_or_hangs: a waiter
    // that queued first gets the semaphore even against a holder that releases
    // and re-acquires in a loop.
    let order = rt::run(|| {
        let semaphore = std::sync::Arc::new(Semaphore::new(1));
        let log = Log::new();
        let (s, l) = (semaphore.clone(), log.clone());
        let hog = spawn(move || {
            for round in 0..3 {
                let _permit = s.acquire();
                l.push(format!("hog {round}"));
                yield_now();
            }
        });
        let (s, l) = (semaphore.clone(), log.clone());
        let waiter = spawn(move || {
            let _permit = s.acquire();
            l.push("waiter".to_string());
        });
        rt::joinall([hog, waiter]);
        log.get()
    });
    assert_eq!(order, ["hog 0", "waiter", "hog 1", "hog 2"]);
}

#[test]
fn waiters_get_permits_in_fifo_order() {
    // sync/mod.rs docs; gevent test__semaphore.py TestSemaphoreFair.
    let order = rt::run(|| {
        let semaphore = std::sync::Arc::new(Semaphore::new(0));
        let log = Log::new();
        let handles: Vec<_> = (0..5)
            .map(|i| {
                let (semaphore, log) = (semaphore.clone(), log.clone());
                spawn(move || {
                    let _permit = semaphore.acquire();
                    log.push(i);
                })
            })
            .collect();
        yield_now();
        semaphore.add_permits(1);
        rt::joinall(handles);
        log.get()
    });
    assert_eq!(order, [0, 1, 2, 3, 4]);
}

#[test]
fn try_acquire_counts() {
    // lock_tests.py BaseSemaphoreTests.test_try_acquire_contended / "try-acquire
    // counts (3 successes, 7 failures)".
    rt::run(|| {
        let semaphore = Semaphore::new(3);
        let mut held = Vec::new();
        let mut failures = 0;
        for _ in 0..10 {
            match semaphore.try_acquire() {
                Some(permit) => held.push(permit),
                None => failures += 1,
            }
        }
        assert_eq!((held.len(), failures), (3, 7));
        drop(held);
        assert_eq!(semaphore.available(), 3);
    });
}

#[test]
fn contended_acquires_follow_the_released_counts() {
    // lock_tests.py BaseSemaphoreTests.test_acquire_contended: counting
    // semantics across phases (6, then 7, then 6 acquisitions), exactly.
    rt::run(|| {
        let semaphore = std::sync::Arc::new(Semaphore::new(7));
        semaphore.acquire().forget();
        let phase = Rc::new(Cell::new(0));
        let (results1, results2) = (Log::new(), Log::new());
        let acquired = Counter::new();
        let handles: Vec<_> = (0..10)
            .map(|_| {
                let (semaphore, phase, r1, r2, acquired) =
                    (semaphore.clone(), phase.clone(), results1.clone(), results2.clone(), acquired.clone());
                spawn(move || {
                    semaphore.acquire().forget();
                    acquired.bump();
                    r1.push(phase.get());
                    semaphore.acquire().forget();
                    acquired.bump();
                    r2.push(phase.get());
                })
            })
            .collect();
        let settle = |total: usize| {
            while results1.len() + results2.len() < total {
                yield_now();
            }
            for _ in 0..3 {
                yield_now();
            }
            let mut all = results1.get();
            all.extend(results2.get());
            all.sort_unstable();
            all
        };
        assert_eq!(settle(6), [0; 6]);
        phase.set(1);
        semaphore.add_permits(7);
        assert_eq!(settle(13), [[0; 6].as_slice(), &[1; 7]].concat());
        phase.set(2);
        semaphore.add_permits(6);
        assert_eq!(settle(19), [[0; 6].as_slice(), &[1; 7], &[2; 6]].concat());
        // The semaphore is still taken.
        assert!(semaphore.try_acquire().is_none());
        // The last release lets the last greenlet finish.
        semaphore.add_permits(1);
        rt::joinall(handles);
        assert_eq!(acquired.get(), 6 + 7 + 6 + 1);
    });
}

#[test]
fn releasing_more_than_the_initial_count_is_allowed() {
    // lock_tests.py "unbounded over-release allowed" (there is no bounded
    // semaphore here).
    rt::run(|| {
        let semaphore = Semaphore::new(1);
        semaphore.add_permits(2);
        assert_eq!(semaphore.available(), 3);
    });
}

#[test]
fn killed_holder_releases_its_permit() {
    // gevent test__greenlet.py TestKillWhileRunning + lock_tests.py: a holder
    // killed while parked releases its permit, which goes to the waiter.
    rt::run(|| {
        let semaphore = std::sync::Arc::new(Semaphore::new(1));
        let s = semaphore.clone();
        let holder = spawn(move || {
            let _permit = s.acquire_owned();
            sleep(Duration::from_secs(30));
        });
        let s = semaphore.clone();
        let waiter = spawn(move || drop(s.acquire()));
        yield_now();
        assert_eq!((semaphore.available(), semaphore.waiters()), (0, 1));
        holder.kill();
        waiter.join().unwrap();
        assert_eq!(semaphore.available(), 1);
    });
}

#[test]
fn waiter_killed_after_the_hand_off_does_not_leak_the_permit() {
    // sync/mod.rs docs (permits are handed to waiters, never lost): a permit
    // handed to a waiter killed before it ran again goes back.
    rt::run(|| {
        let semaphore = std::sync::Arc::new(Semaphore::new(0));
        let s = semaphore.clone();
        let doomed = spawn(move || drop(s.acquire()));
        yield_now();
        semaphore.add_permits(1);
        doomed.kill();
        assert!(doomed.join().unwrap_err().is_killed());
        assert_eq!(semaphore.available(), 1, "the handed permit was leaked");
    });
}

#[test]
fn permit_handed_to_a_waiter_whose_deadline_just_fired_is_taken_by_it() {
    // sync/mod.rs docs (permits are handed to waiters, never lost): the
    // waiter's timer fires, and before the waiter runs again a permit is
    // handed to it; it returns with the permit rather than dropping it.
    rt::run(|| {
        let semaphore = Rc::new(Semaphore::new(0));
        let s = semaphore.clone();
        let waiter = spawn(move || s.acquire_timeout(ms(20)).map(|permit| permit.forget()).is_some());
        // Blocks the hub past both deadlines below, so that one turn fires
        // both timers, this greenlet's first: it runs, and releases, before
        // the waiter runs.
        let blocker = spawn(|| std::thread::sleep(ms(40)));
        sleep(ms(10));
        semaphore.release();
        assert!(waiter.join().unwrap(), "the waiter dropped the permit handed to it");
        blocker.join().unwrap();
        assert_eq!(semaphore.available(), 0);
    });
}

#[test]
fn permit_handed_to_a_killed_waiter_goes_to_the_next_one() {
    // As above with a second waiter queued: FIFO service continues.
    rt::run(|| {
        let semaphore = std::sync::Arc::new(Semaphore::new(0));
        let s = semaphore.clone();
        let doomed = spawn(move || drop(s.acquire()));
        let s = semaphore.clone();
        let next = spawn(move || s.acquire().forget());
        yield_now();
        doomed.kill();
        semaphore.add_permits(1);
        assert!(doomed.join().unwrap_err().is_killed());
        next.join().unwrap();
        assert_eq!(semaphore.available(), 0);
    });
}

#[test]
fn timed_out_waiter_leaves_the_queue() {
    // gevent test__semaphore.py
    // TestSemaphoreMultiThread.test_acquire_in_one_then_another_timed (a timed
    // acquire gives up and leaves nothing pending), within one thread.
    rt::run(|| {
        let semaphore = std::sync::Arc::new(Semaphore::new(0));
        let s = semaphore.clone();
        let quitter = spawn(move || s.acquire_timeout(ms(2)).is_some());
        let s = semaphore.clone();
        let patient = spawn(move || s.acquire().forget());
        assert!(!quitter.join().unwrap());
        semaphore.add_permits(1);
        patient.join().unwrap();
        assert_eq!((semaphore.available(), semaphore.waiters()), (0, 0));
    });
}

#[test]
fn acquire_is_interrupted_by_a_timeout_scope() {
    // gevent test__pool.py PoolBasicTests.test_add_method (a blocked acquire
    // is interrupted by a Timeout), on the semaphore itself.
    rt::run(|| {
        let semaphore = Semaphore::new(0);
        assert_eq!(timeout(ms(2), || semaphore.acquire().forget()), Err(Elapsed));
        assert_eq!(semaphore.waiters(), 0);
        semaphore.add_permits(1);
        assert_eq!(semaphore.available(), 1);
    });
}

#[test]
fn owned_permit_can_be_released_by_another_greenlet() {
    // lock_tests.py LockTests.test_different_thread ("lock can be released by
    // another thread"): an owned permit moves to another greenlet.
    rt::run(|| {
        let semaphore = std::sync::Arc::new(Semaphore::new(1));
        let permit = semaphore.acquire_owned();
        assert_eq!(semaphore.available(), 0);
        spawn(move || drop(permit)).join().unwrap();
        assert_eq!(semaphore.available(), 1);
        assert!(semaphore.try_acquire_owned().is_some());
    });
}

#[test]
fn acquiring_a_free_semaphore_in_a_destructor_during_a_kill_works() {
    // gevent test__semaphore.py TestSemaphore.test_semaphore_in_class_with_del
    // (acquired in a destructor during GC does not crash): here in a
    // destructor run by a kill's unwinding.
    rt::run(|| {
        struct TakesOnDrop(std::sync::Arc<Semaphore>, Counter);
        impl Drop for TakesOnDrop {
            fn drop(&mut self) {
                if let Some(permit) = self.0.try_acquire() {
                    self.1.bump();
                    drop(permit);
                }
                let _permit = self.0.acquire();
                self.1.bump();
            }
        }
        let semaphore = std::sync::Arc::new(Semaphore::new(1));
        let done = Counter::new();
        let guard = TakesOnDrop(semaphore.clone(), done.clone());
        let victim = spawn(move || {
            let _guard = guard;
            sleep(Duration::from_secs(30));
        });
        yield_now();
        victim.kill();
        assert!(victim.join().unwrap_err().is_killed());
        assert_eq!(done.get(), 2);
        assert_eq!(semaphore.available(), 1);
    });
}

// ---------------------------------------------------------------------------
// Mutex

#[test]
fn mutex_excludes_other_greenlets_across_parks() {
    // lock_tests.py BaseLockTests.test_acquire_contended: the lock is held
    // across blocking calls and others wait their turn.
    rt::run(|| {
        let mutex = Rc::new(Mutex::new(Vec::new()));
        let handles: Vec<_> = (0..3)
            .map(|i| {
                let mutex = mutex.clone();
                spawn(move || {
                    let mut entries = mutex.lock();
                    entries.push(format!("{i} in"));
                    sleep(ms(1));
                    yield_now();
                    entries.push(format!("{i} out"));
                })
            })
            .collect();
        rt::joinall(handles);
        assert_eq!(*mutex.lock(), ["0 in", "0 out", "1 in", "1 out", "2 in", "2 out"]);
    });
}

#[test]
fn try_lock_on_a_free_and_a_held_mutex() {
    // lock_tests.py BaseLockTests.test_try_acquire / test_try_acquire_contended.
    rt::run(|| {
        let mutex = Rc::new(Mutex::new(0));
        let guard = mutex.try_lock().expect("free");
        assert!(mutex.is_locked());
        let m = mutex.clone();
        assert!(spawn(move || m.try_lock().is_none()).join().unwrap());
        drop(guard);
        assert!(!mutex.is_locked());
        assert!(mutex.try_lock().is_some());
    });
}

#[test]
fn lock_timeout_gives_up_on_a_held_mutex() {
    // lock_tests.py BaseLockTests.test_timeout.
    rt::run(|| {
        let mutex = Rc::new(Mutex::new(()));
        let _held = mutex.lock();
        let m = mutex.clone();
        let start = Instant::now();
        assert!(spawn(move || m.lock_timeout(ms(5)).is_none()).join().unwrap());
        assert!(start.elapsed() >= ms(5));
    });
}

#[test]
fn every_waiter_proceeds_after_the_release() {
    // lock_tests.py BaseLockTests.test_acquire_contended ("N waiters all
    // proceed after release"), in FIFO order.
    rt::run(|| {
        let mutex = Rc::new(Mutex::new(Vec::new()));
        let held = mutex.lock();
        let handles: Vec<_> = (0..5)
            .map(|i| {
                let mutex = mutex.clone();
                spawn(move || mutex.lock().push(i))
            })
            .collect();
        yield_now();
        drop(held);
        rt::joinall(handles);
        assert_eq!(*mutex.lock(), [0, 1, 2, 3, 4]);
    });
}

#[test]
fn guard_is_released_on_normal_exit_and_on_panic() {
    // lock_tests.py BaseLockTests.test_with ("scoped acquire releases on
    // normal exit and on error").
    rt::run(|| {
        let mutex = Rc::new(Mutex::new(0));
        {
            *mutex.lock() += 1;
        }
        assert!(!mutex.is_locked());
        let m = mutex.clone();
        let failed = spawn(move || {
            let mut guard = m.lock();
            *guard += 1;
            panic!("failure while holding the lock");
        });
        assert!(failed.join().unwrap_err().is_panic());
        assert!(!mutex.is_locked());
        assert_eq!(*mutex.lock(), 2);
    });
}

#[test]
fn killed_waiter_for_a_mutex_does_not_keep_it_locked() {
    // lock_tests.py + gevent TestKillAfterStart: a waiter killed right after
    // the lock was handed to it passes the lock on.
    rt::run(|| {
        let mutex = Rc::new(Mutex::new(0));
        let held = mutex.lock();
        let m = mutex.clone();
        let doomed = spawn(move || *m.lock() += 1);
        let m = mutex.clone();
        let next = spawn(move || *m.lock() += 10);
        yield_now();
        drop(held);
        doomed.kill();
        next.join().unwrap();
        assert!(doomed.join().unwrap_err().is_killed());
        assert!(!mutex.is_locked());
        assert_eq!(*mutex.lock(), 10);
    });
}

// ---------------------------------------------------------------------------
// Condvar (lock_tests.py ConditionTests)

#[test]
fn notify_one_wakes_waiters_in_fifo_order() {
    // lock_tests.py ConditionTests.test_notify (notify(1) wakes one waiter at a
    // time), in arrival order.
    let order = rt::run(|| {
        let pair = Rc::new((Mutex::new(0), Condvar::new()));
        let log = Log::new();
        let handles: Vec<_> = (0..3)
            .map(|i| {
                let (pair, log) = (pair.clone(), log.clone());
                spawn(move || {
                    let (mutex, condvar) = &*pair;
                    let guard = condvar.wait(mutex.lock());
                    log.push(i);
                    drop(guard);
                })
            })
            .collect();
        yield_now();
        for _ in 0..3 {
            pair.1.notify_one();
            yield_now();
        }
        rt::joinall(handles);
        log.get()
    });
    assert_eq!(order, [0, 1, 2]);
}

#[test]
fn notify_all_wakes_every_waiter() {
    // lock_tests.py ConditionTests.test_notify (notify_all).
    rt::run(|| {
        let pair = Rc::new((Mutex::new(false), Condvar::new()));
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let pair = pair.clone();
                spawn(move || {
                    let (mutex, condvar) = &*pair;
                    let ready = condvar.wait_while(mutex.lock(), |ready| !*ready);
                    assert!(*ready);
                })
            })
            .collect();
        yield_now();
        *pair.0.lock() = true;
        pair.1.notify_all();
        for outcome in rt::joinall(handles) {
            outcome.unwrap();
        }
    });
}

#[test]
fn condvar_wait_timeout_reports_the_timeout_and_relocks() {
    // lock_tests.py ConditionTests.test_timeout.
    rt::run(|| {
        let (mutex, condvar) = (Mutex::new(5), Condvar::new());
        let start = Instant::now();
        let (guard, timed_out) = condvar.wait_timeout(mutex.lock(), ms(5));
        assert!(timed_out);
        assert!(start.elapsed() >= ms(5));
        assert!(mutex.is_locked());
        assert_eq!(*guard, 5);
    });
}

#[test]
fn notification_reaching_a_killed_waiter_goes_to_the_next() {
    // Condvar docs (FIFO wake-ups): a notify_one whose waiter is killed
    // before it ran again is passed on rather than lost.
    rt::run(|| {
        let pair = Rc::new((Mutex::new(()), Condvar::new()));
        let p = pair.clone();
        let doomed = spawn(move || drop(p.1.wait(p.0.lock())));
        let p = pair.clone();
        let next = spawn(move || drop(p.1.wait(p.0.lock())));
        yield_now();
        pair.1.notify_one();
        doomed.kill();
        assert!(doomed.join().unwrap_err().is_killed());
        next.join().unwrap();
    });
}

#[test]
fn waiter_killed_in_condvar_wait_does_not_hold_the_lock() {
    // lock_tests.py ConditionTests + kill: the waiter unwinds out of the
    // wait without the lock, and its destructors run.
    rt::run(|| {
        let drops = Drops::new();
        let pair = Rc::new((Mutex::new(()), Condvar::new()));
        let (p, guard) = (pair.clone(), drops.guard());
        let waiter = spawn(move || {
            let _guard = guard;
            drop(p.1.wait(p.0.lock()));
        });
        yield_now();
        waiter.kill();
        assert!(waiter.join().unwrap_err().is_killed());
        assert_eq!(drops.count(), 1);
        assert!(!pair.0.is_locked());
    });
}
