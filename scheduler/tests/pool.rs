//! `Pool`, `Group` and `joinall`, ported from gevent's `test__pool.py` and
//! `test__greenletset.py`.

mod util;

use std::cell::Cell;
use std::panic;
use std::rc::Rc;
use std::time::Duration;

use runtime_scheduler::sync::Event;
use runtime_scheduler::{self as rt, Elapsed, Group, Pool, sleep, spawn, timeout, yield_now};
use util::{Counter, Drops, Log, ms};

// ---------------------------------------------------------------------------
// Pool

#[test]
fn pool_spawn_parks_the_caller_while_the_pool_is_full() {
    // gevent test__pool.py TestSpawn.test ("this spawn blocks until the old
    // one finishes") and PoolBasicTests.test_add_method (add on a full pool
    // blocks).
    let log = rt::run(|| {
        let pool = Pool::new(1);
        let log = Log::new();
        let l = log.clone();
        let first = pool.spawn(move || {
            l.push("first runs");
            sleep(ms(5));
            l.push("first done");
        });
        let l = log.clone();
        log.push("spawning second");
        let second = pool.spawn(move || l.push("second runs"));
        log.push("second spawned");
        rt::joinall([first, second]);
        log.get()
    });
    assert_eq!(log, ["spawning second", "first runs", "first done", "second spawned", "second runs"]);
}

#[test]
fn free_count_drops_on_spawn_and_recovers_when_done() {
    // gevent test__pool.py PoolBasicTests.test_execute_async: free_count drops
    // on spawn and recovers once the greenlet finished.
    rt::run(|| {
        let pool = Pool::new(2);
        assert_eq!((pool.size(), pool.free_count()), (2, 2));
        let ran = Log::new();
        let r = ran.clone();
        let first = pool.spawn(move || r.push(1));
        assert_eq!(pool.free_count(), 1);
        assert_eq!(pool.len(), 1);
        first.join().unwrap();
        assert_eq!(ran.get(), [1]);
        assert_eq!(pool.free_count(), 2);
        assert!(pool.is_empty());
    });
}

#[test]
fn consumer_and_producer_in_a_pool_of_two_interleave() {
    // gevent test__pool.py TestCoroutinePool.test_multiple_coros: cons1,
    // prod, cons2.
    let results = rt::run(|| {
        let event = Rc::new(Event::new());
        let results = Log::new();
        let pool = Pool::new(2);
        let (e, r) = (event.clone(), results.clone());
        let consumer = pool.spawn(move || {
            r.push("cons1");
            e.wait();
            r.push("cons2");
        });
        let (e, r) = (event.clone(), results.clone());
        drop(pool.spawn(move || {
            sleep(ms(1));
            r.push("prod");
            e.set();
        }));
        consumer.join().unwrap();
        results.get()
    });
    assert_eq!(results, ["cons1", "prod", "cons2"]);
}

#[test]
fn try_spawn_on_a_full_pool_gives_the_closure_back() {
    // gevent test__pool.py PoolBasicTests.test_add_method_non_blocking
    // (non-blocking add raises PoolFull).
    rt::run(|| {
        let pool = Pool::new(1);
        let first = pool.try_spawn(|| sleep(ms(5))).unwrap_or_else(|_| panic!("room for one"));
        let refused = pool.try_spawn(|| "never ran");
        let f = refused.expect_err("the pool is full");
        assert_eq!(f(), "never ran");
        first.join().unwrap();
        assert!(pool.try_spawn(|| ()).is_ok());
    });
}

#[test]
fn spawn_on_a_full_pool_can_be_interrupted_by_a_timeout() {
    // gevent test__pool.py PoolBasicTests.test_add_method_timeout /
    // test_start_method_timeout (add/start with timeout give up after it) and
    // test_add_method (a blocked add is interrupted by a Timeout).
    rt::run(|| {
        let pool = Pool::new(1);
        let busy = pool.spawn(|| sleep(Duration::from_secs(30)));
        let ran = Counter::new();
        let r = ran.clone();
        assert!(timeout(ms(5), || drop(pool.spawn(move || r.bump()))).is_err());
        assert_eq!(pool.free_count(), 0);
        assert_eq!(pool.len(), 1);
        busy.kill();
        drop(busy.join());
        yield_now();
        assert_eq!(ran.get(), 0);
        assert_eq!(pool.free_count(), 1);
    });
}

#[test]
fn pool_of_size_zero_is_always_full() {
    // gevent test__pool.py TestPool0.test_wait_full (a size-0 pool is always
    // full and wait_available(timeout) returns 0).
    rt::run(|| {
        let pool = Pool::new(0);
        assert_eq!(pool.free_count(), 0);
        assert!(pool.try_spawn(|| ()).is_err());
        assert_eq!(timeout(ms(2), || drop(pool.spawn(|| ()))), Err(Elapsed));
    });
}

#[test]
fn joining_an_empty_pool_returns_without_switching() {
    // gevent test__pool.py TestJoinEmpty.test (an empty pool's join() returns
    // True without switching).
    rt::run(|| {
        let pool = Pool::new(3);
        let ran = Counter::new();
        let r = ran.clone();
        drop(spawn(move || r.bump()));
        pool.join();
        assert_eq!(ran.get(), 0);
    });
}

#[test]
fn pool_join_waits_for_every_member() {
    // gevent test__pool.py TestSpawn.test / TestJoinSleep (join waits for the
    // members and the pool empties).
    rt::run(|| {
        let pool = Pool::new(3);
        let finished = Counter::new();
        for delay in [5u64, 1, 3, 2] {
            let f = finished.clone();
            drop(pool.spawn(move || {
                sleep(ms(delay));
                f.bump();
            }));
        }
        pool.join();
        assert_eq!(finished.get(), 4);
        assert!(pool.is_empty());
        assert_eq!(pool.free_count(), 3);
    });
}

#[test]
fn pool_join_can_be_cut_short_by_a_timeout() {
    // gevent test__pool.py TestJoinSleep (join(timeout) on a pool with a long
    // task returns after the timeout; the task stays).
    rt::run(|| {
        let pool = Pool::new(2);
        drop(pool.spawn(|| sleep(Duration::from_secs(30))));
        assert_eq!(timeout(ms(5), || pool.join()), Err(Elapsed));
        assert_eq!(pool.len(), 1);
        pool.kill();
        pool.join();
        assert!(pool.is_empty());
    });
}

#[test]
fn pool_kill_kills_every_member_and_frees_the_slots() {
    // gevent test__pool.py TestPool.test_terminate (kill() of a pool returns
    // quickly) and test__greenletset.py Test.test_kill_block.
    rt::run(|| {
        let pool = Pool::new(3);
        let drops = Drops::new();
        let handles: Vec<_> = (0..3)
            .map(|_| {
                let guard = drops.guard();
                pool.spawn(move || {
                    let _guard = guard;
                    sleep(Duration::from_secs(30));
                })
            })
            .collect();
        yield_now();
        pool.kill();
        pool.join();
        assert_eq!(drops.count(), 3);
        assert_eq!(pool.free_count(), 3);
        assert!(rt::joinall(handles).iter().all(|outcome| outcome.as_ref().unwrap_err().is_killed()));
    });
}

#[test]
fn pool_member_killed_before_it_ran_frees_its_slot() {
    // gevent test__pool.py PoolBasicTests.test_discard (the slot is freed) with
    // test__greenlet.py TestKill (never started): the slot goes back with the
    // dropped closure.
    rt::run(|| {
        let pool = Pool::new(1);
        let ran = Counter::new();
        let r = ran.clone();
        let h = pool.spawn(move || r.bump());
        assert_eq!(pool.free_count(), 0);
        h.kill();
        assert_eq!(pool.free_count(), 1);
        yield_now();
        assert_eq!(ran.get(), 0);
    });
}

#[test]
fn failing_member_frees_its_slot() {
    // gevent test__pool.py TestCoroutinePool.test_stderr_raising (a failing
    // worker does not make the pool lose a member).
    rt::run(|| {
        let pool = Pool::new(1);
        let failed = pool.spawn(|| -> u8 { panic!("worker failed") });
        assert!(failed.join().unwrap_err().is_panic());
        assert_eq!(pool.free_count(), 1);
        assert_eq!(pool.spawn(|| 3).join().unwrap(), 3);
    });
}

#[test]
fn all_queued_work_runs_with_bounded_concurrency() {
    // gevent test__pool.py PoolBasicTests.test_execute_async ("all queued work
    // eventually runs") for the sizes of TestPool, TestPool2, TestPool3 and
    // TestPool10: never more than `size` at once.
    rt::run(|| {
        for size in [1usize, 2, 3, 10] {
            let pool = Pool::new(size);
            let (running, peak, done) = (Rc::new(Cell::new(0)), Rc::new(Cell::new(0)), Counter::new());
            for i in 0..12u64 {
                let (running, peak, done) = (running.clone(), peak.clone(), done.clone());
                drop(pool.spawn(move || {
                    running.set(running.get() + 1);
                    peak.set(peak.get().max(running.get()));
                    sleep(ms(i % 3));
                    running.set(running.get() - 1);
                    done.bump();
                }));
            }
            pool.join();
            assert_eq!(done.get(), 12);
            assert_eq!(peak.get(), size.min(12));
        }
    });
}

#[test]
fn pool_spawn_and_join_give_values_and_panics() {
    // gevent test__pool.py TestCoroutinePool.test_apply / test_apply_raises
    // (apply returns its value and re-raises its exception), as spawn + join.
    rt::run(|| {
        let pool = Pool::new(2);
        assert_eq!(pool.spawn(|| 40 + 2).join().unwrap(), 42);
        let err = pool.spawn(|| -> u8 { panic::panic_any(7u32) }).join().unwrap_err();
        assert_eq!(*err.into_panic().downcast::<u32>().unwrap(), 7);
    });
}

// ---------------------------------------------------------------------------
// Group

#[test]
fn group_members_leave_as_they_finish() {
    // gevent test__greenletset.py Test.test_basic (a Group's length tracks its
    // running members and drops as they finish).
    rt::run(|| {
        let group = Group::new();
        for delay in [1u64, 10, 20] {
            drop(group.spawn(move || sleep(ms(delay))));
        }
        assert_eq!(group.len(), 3);
        sleep(ms(5));
        assert!(group.len() < 3);
        group.join();
        assert!(group.is_empty());
    });
}

#[test]
fn group_join_waits_for_the_longest_member() {
    // gevent test__greenletset.py Test.test_waitall (join(raise_error=True)
    // waits for the longest member).
    rt::run(|| {
        let group = Group::new();
        let finished = Log::new();
        for delay in [15u64, 1, 5] {
            let f = finished.clone();
            drop(group.spawn(move || {
                sleep(ms(delay));
                f.push(delay);
            }));
        }
        group.join();
        assert_eq!(finished.get(), [1, 5, 15]);
    });
}

#[test]
fn group_join_includes_members_added_meanwhile() {
    // group.rs docs ("including ones added meanwhile").
    rt::run(|| {
        let group = Rc::new(Group::new());
        let done = Counter::new();
        let (g, d) = (group.clone(), done.clone());
        drop(group.spawn(move || {
            sleep(ms(1));
            let d2 = d.clone();
            drop(g.spawn(move || {
                sleep(ms(5));
                d2.bump();
            }));
            d.bump();
        }));
        group.join();
        assert_eq!(done.get(), 2);
    });
}

#[test]
fn group_kill_empties_the_group() {
    // gevent test__greenletset.py Test.test_kill_block / test_kill_noblock:
    // after kill (never blocking here) and a join the group is empty.
    rt::run(|| {
        let group = Group::new();
        let drops = Drops::new();
        for _ in 0..3 {
            let guard = drops.guard();
            drop(group.spawn(move || {
                let _guard = guard;
                sleep(Duration::from_secs(30));
            }));
        }
        yield_now();
        group.kill();
        assert_eq!(drops.count(), 0, "kill does not wait");
        group.join();
        assert!(group.is_empty());
        assert_eq!(drops.count(), 3);
    });
}

#[test]
fn group_kill_before_members_started_means_they_never_run() {
    // gevent test__greenletset.py
    // Test.test_killall_iterable_argument_timeout_not_started (killed before
    // they started: all dead, none ran).
    rt::run(|| {
        let group = Group::new();
        let ran = Counter::new();
        let handles: Vec<_> = (0..3)
            .map(|_| {
                let r = ran.clone();
                group.spawn(move || r.bump())
            })
            .collect();
        group.kill();
        assert!(group.is_empty());
        group.join();
        yield_now();
        assert_eq!(ran.get(), 0);
        assert!(rt::joinall(handles).iter().all(|outcome| outcome.as_ref().unwrap_err().is_killed()));
    });
}

#[test]
fn group_kill_with_a_failed_and_a_sleeping_member() {
    // gevent test__greenletset.py Test.test_killall_subclass (killing a group
    // holding a failed greenlet and a sleeping one works).
    rt::run(|| {
        let group = Group::new();
        let failed = group.spawn(|| -> () { panic!("failed member") });
        let sleeper = group.spawn(|| sleep(Duration::from_secs(30)));
        yield_now();
        group.kill();
        group.join();
        assert!(failed.join().unwrap_err().is_panic());
        assert!(sleeper.join().unwrap_err().is_killed());
    });
}

#[test]
fn member_that_swallows_the_kill_keeps_the_group_busy() {
    // gevent test__greenletset.py Test.test_kill_fires_once (a blocking kill
    // under an outer timeout returns the timeout value and leaves the group
    // intact) and test_killall_iterable_argument_timeout_started: a member
    // that catches the kill and sleeps on still counts.
    rt::run(|| {
        let group = Group::new();
        let caught = Counter::new();
        let c = caught.clone();
        let stubborn = group.spawn(move || {
            if panic::catch_unwind(|| sleep(Duration::from_secs(30))).is_err() {
                c.bump();
            }
            sleep(Duration::from_secs(30));
        });
        yield_now();
        group.kill();
        assert_eq!(timeout(ms(5), || group.join()), Err(Elapsed));
        assert_eq!(caught.get(), 1);
        assert_eq!(group.len(), 1);
        stubborn.kill();
        group.join();
        assert!(group.is_empty());
    });
}

#[test]
fn group_add_takes_an_already_spawned_greenlet_once() {
    // gevent test__greenletset.py Test.test_kill_fires_once (Group([p1, p2])
    // takes greenlets spawned elsewhere): adding twice keeps one entry and
    // finished greenlets are not added.
    rt::run(|| {
        let group = Group::new();
        let h = spawn(|| sleep(ms(5)));
        group.add(&h);
        group.add(&h);
        assert_eq!(group.len(), 1);
        let done = spawn(|| ());
        yield_now();
        group.add(&done);
        assert_eq!(group.len(), 1);
        group.join();
        assert!(h.is_finished());
    });
}

#[test]
fn joinall_waits_for_everything_in_order() {
    // gevent test__greenlet.py TestStuff.test_wait_noerrors (joinall returns
    // every value), over greenlets of a group.
    rt::run(|| {
        let group = Group::new();
        let handles: Vec<_> = (0..4u64)
            .map(|i| {
                group.spawn(move || {
                    sleep(ms(4 - i));
                    i
                })
            })
            .collect();
        let results: Vec<u64> = rt::joinall(handles).into_iter().map(Result::unwrap).collect();
        assert_eq!(results, [0, 1, 2, 3]);
        assert!(group.is_empty());
    });
}

// ---------------------------------------------------------------------------
// Timed joins, membership, unbounded pools and waiting for room (what
// StreamServer builds on)

#[test]
fn group_join_timeout_gives_up_and_keeps_the_running_members() {
    // gevent test__pool.py TestJoinSleep (join(timeout) returns False while a
    // member runs; the member stays).
    rt::run(|| {
        let group = Group::new();
        let quick = group.spawn(|| sleep(ms(1)));
        let slow = group.spawn(|| sleep(Duration::from_secs(30)));
        let started = std::time::Instant::now();
        assert!(!group.join_timeout(ms(20)));
        assert!(started.elapsed() >= ms(20));
        assert!(quick.is_finished());
        assert_eq!(group.len(), 1);
        assert!(group.contains(slow.id()));
        slow.kill();
        assert!(group.join_deadline(std::time::Instant::now() + Duration::from_secs(30)));
        assert!(group.is_empty());
    });
}

#[test]
fn group_join_timeout_waits_for_members_added_meanwhile() {
    rt::run(|| {
        let group = Rc::new(Group::new());
        let done = Counter::new();
        let (g, d) = (group.clone(), done.clone());
        drop(group.spawn(move || {
            sleep(ms(1));
            let d2 = d.clone();
            drop(g.spawn(move || {
                sleep(ms(5));
                d2.bump();
            }));
            d.bump();
        }));
        assert!(group.join_timeout(Duration::from_secs(30)));
        assert_eq!(done.get(), 2);
        // Empty: returns at once, also with a deadline in the past.
        assert!(group.join_deadline(std::time::Instant::now()));
    });
}

#[test]
fn contains_knows_running_members_only() {
    // gevent test__greenletset.py (`greenlet in group`, and finished members
    // leave).
    rt::run(|| {
        let pool = Pool::new(2);
        let member = pool.spawn(rt::greenlet_id);
        let outsider = spawn(|| sleep(ms(1)));
        assert!(pool.contains(member.id()));
        assert!(!pool.contains(outsider.id()));
        let id = member.id();
        assert_eq!(member.join().unwrap(), id);
        assert!(!pool.contains(id));
        outsider.join().unwrap();
    });
}

#[test]
fn unbounded_pool_never_parks_the_spawner() {
    // gevent test__pool.py (Pool(size=None) behaves as a Group).
    rt::run(|| {
        let pool = Pool::unbounded();
        assert_eq!(pool.size(), usize::MAX);
        let handles: Vec<_> = (0..1000).map(|i| pool.try_spawn(move || i).ok().unwrap()).collect();
        assert_eq!(pool.len(), 1000);
        pool.wait_available(); // returns at once
        assert_eq!(pool.free_count(), usize::MAX - 1000);
        let sum: u64 = rt::joinall(handles).into_iter().map(Result::unwrap).sum();
        assert_eq!(sum, 999 * 1000 / 2);
        assert_eq!(pool.free_count(), usize::MAX);
    });
}

#[test]
fn wait_available_parks_until_a_member_finishes_and_takes_no_slot() {
    // gevent test__pool.py TestPool0/test_wait_available (wait_available
    // returns once a greenlet of a full pool finishes).
    rt::run(|| {
        let pool = Rc::new(Pool::new(1));
        let release = Rc::new(Event::new());
        let member = pool.spawn({
            let release = release.clone();
            move || release.wait()
        });
        let waited = Counter::new();
        let waiter = spawn({
            let (pool, waited) = (pool.clone(), waited.clone());
            move || {
                pool.wait_available();
                waited.bump();
            }
        });
        yield_now();
        yield_now();
        assert_eq!(waited.get(), 0, "wait_available returned while the pool was full");
        release.set();
        member.join().unwrap();
        waiter.join().unwrap();
        assert_eq!(waited.get(), 1);
        // The room is still there for the next spawn.
        assert_eq!(pool.free_count(), 1);
        assert!(pool.try_spawn(|| ()).is_ok());
    });
}

#[test]
fn pool_join_timeout_then_kill_is_a_graceful_stop() {
    // gevent's StreamServer.stop: pool.join(timeout=grace), then kill.
    rt::run(|| {
        let pool = Pool::new(3);
        let finished = Counter::new();
        let drops = Drops::new();
        for delay in [1u64, 2, 30_000] {
            let (finished, guard) = (finished.clone(), drops.guard());
            drop(pool.spawn(move || {
                let _guard = guard;
                sleep(ms(delay));
                finished.bump();
            }));
        }
        assert!(!pool.join_timeout(ms(50)));
        assert_eq!((finished.get(), pool.len()), (2, 1));
        pool.kill();
        pool.join();
        assert_eq!((finished.get(), drops.count()), (2, 3));
        assert_eq!(pool.free_count(), 3);
    });
}

#[test]
fn members_are_reported_as_spawned_where_the_group_or_pool_was_asked() {
    // runtime::dump and deadlock reports say where a greenlet was spawned:
    // for a member, the caller of Group::spawn or Pool::spawn, not the
    // group's own code.
    rt::run(|| {
        let group = Group::new();
        let pool = Pool::new(2);
        let handles = [
            group.spawn(|| sleep(Duration::from_secs(30))),
            pool.spawn(|| sleep(Duration::from_secs(30))),
            pool.try_spawn(|| sleep(Duration::from_secs(30))).ok().unwrap(),
        ];
        yield_now();
        let dump = rt::dump();
        for handle in &handles {
            let info = dump.greenlets().iter().find(|info| info.id() == handle.id()).unwrap();
            assert_eq!(info.spawned_at().file(), file!(), "{info}");
            handle.kill();
        }
    });
}

#[test]
fn kill_timeout_kills_and_waits_for_cleanup() {
    rt::run(|| {
        let pool = rt::Pool::new(4);
        let cleaned = std::rc::Rc::new(std::cell::Cell::new(0));
        for _ in 0..3 {
            let cleaned = cleaned.clone();
            pool.spawn(move || {
                struct Cleanup(std::rc::Rc<std::cell::Cell<u32>>);
                impl Drop for Cleanup {
                    fn drop(&mut self) {
                        rt::sleep(Duration::from_millis(5)); // cleanup may park
                        self.0.set(self.0.get() + 1);
                    }
                }
                let _cleanup = Cleanup(cleaned);
                rt::sleep(Duration::from_secs(60));
            });
        }
        rt::yield_now();
        assert!(pool.kill_timeout(Duration::from_secs(5)));
        assert_eq!(cleaned.get(), 3);
        assert!(pool.is_empty());
        // A member that refuses to die makes it give up.
        pool.spawn(|| {
            loop {
                let _ = std::panic::catch_unwind(|| rt::sleep(Duration::from_secs(60)));
            }
        });
        rt::yield_now();
        assert!(!pool.kill_timeout(Duration::from_millis(20)));
        assert_eq!(pool.len(), 1);
    });
}
