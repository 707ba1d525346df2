//! gevent's `Pool`/`Group` API beyond spawning and joining: `killone`,
//! `apply`, `map`, `imap`, `add`, `discard`, ported from gevent's
//! `test__pool.py` and `test__greenletset.py`.

mod util;

use std::panic;
use std::rc::Rc;
use std::time::Duration;

use runtime_scheduler::sync::Event;
use runtime_scheduler::{self as rt, Elapsed, Group, Pool, PoolFull, sleep, spawn, timeout, yield_now};
use util::{Counter, ms};

/// gevent's `Undead`: a greenlet that counts the kills it swallows, until
/// `stop` of them.
fn undead(shot: Counter, stop: usize) -> impl FnOnce() -> usize + 'static {
    move || {
        while shot.get() < stop {
            if panic::catch_unwind(|| sleep(Duration::from_secs(30))).is_err() {
                shot.bump();
            }
        }
        shot.get()
    }
}

/// Cleanup that parks before it counts itself done.
struct SlowCleanup(Counter);

impl Drop for SlowCleanup {
    fn drop(&mut self) {
        sleep(ms(2));
        self.0.bump();
    }
}

#[test]
fn group_kill_delivers_one_kill_per_member() {
    // gevent test__greenletset.py Test.test_kill_fires_once: a member the
    // group killed already is not killed again, by `kill` nor by
    // `kill_timeout` (whose wait gives up on a member that swallows it).
    rt::run(|| {
        let group = Group::new();
        let shot = Counter::new();
        let h = group.spawn(undead(shot.clone(), 3));
        yield_now();
        group.kill();
        group.kill();
        yield_now();
        assert_eq!(shot.get(), 1);
        assert!(!group.kill_timeout(ms(5)), "the member swallowed its kill");
        yield_now();
        assert_eq!(shot.get(), 1, "the group kills a member once");
        assert_eq!(group.len(), 1);
        h.kill();
        h.kill();
        yield_now();
        assert_eq!(shot.get(), 2, "a kill through the handle still goes through");
        h.kill();
        assert_eq!(h.join().unwrap(), 3);
    });
}

#[test]
fn killone_kills_a_member_once() {
    // gevent test__greenletset.py Test.test_kill_fires_once: killone without
    // blocking is delivered at the next turn, and again only by another
    // path; a greenlet outside the group is left alone.
    rt::run(|| {
        let group = Group::new();
        let shot = Counter::new();
        let member = group.spawn(undead(shot.clone(), 2));
        let outsider = rt::spawn(|| sleep(Duration::from_secs(30)));
        yield_now();
        group.killone(&member, false);
        assert_eq!(shot.get(), 0, "a non-blocking kill does not wait");
        yield_now();
        assert_eq!(shot.get(), 1);
        group.killone(&member, false);
        group.kill();
        yield_now();
        assert_eq!(shot.get(), 1, "killed once by the group");
        group.killone(&outsider, true);
        assert!(!outsider.is_finished(), "not a member: not killed, not waited for");
        member.kill();
        group.killone(&member, true);
        assert!(member.is_finished(), "a blocking killone waits for the member");
        assert_eq!(member.join().unwrap(), 2);
        outsider.kill();
    });
}

#[test]
fn blocking_killone_waits_for_the_cleanup() {
    // gevent test__greenlet.py TestKill (a blocking kill of a sleeping
    // greenlet returns after it ran its handler and finished).
    rt::run(|| {
        let group = Group::new();
        let cleaned = Counter::new();
        let c = cleaned.clone();
        let h = group.spawn(move || {
            let _guard = SlowCleanup(c);
            sleep(Duration::from_secs(30));
        });
        yield_now();
        group.killone(&h, true);
        assert_eq!(cleaned.get(), 1);
        assert!(group.is_empty());
        assert!(h.join().unwrap_err().is_killed());
    });
}

// ---------------------------------------------------------------------------
// Pool: apply, apply_async, map, imap

#[test]
fn apply_returns_the_value_and_resumes_the_panic() {
    // gevent test__pool.py TestCoroutinePool.test_apply (apply returns its
    // value and re-raises its exception).
    rt::run(|| {
        let pool = Pool::new(2);
        assert_eq!(pool.apply(|| 42), 42);
        let payload = panic::catch_unwind(panic::AssertUnwindSafe(|| pool.apply(|| -> u8 { panic!("in apply") })));
        assert_eq!(util::message(&payload.unwrap_err()), "in apply");
        assert_eq!(pool.free_count(), 2, "the slots are back");
    });
}

#[test]
fn apply_inside_apply_on_a_pool_of_one_runs_inline() {
    // gevent test__pool.py TestCoroutinePool.test_apply_inside_apply (no
    // deadlock on a size-1 pool: a member's apply runs inline).
    rt::run(|| {
        let pool = Rc::new(Pool::new(1));
        let p = pool.clone();
        let outer = pool.apply(move || {
            let me = rt::greenlet_id();
            let inner = p.apply(rt::greenlet_id);
            (me, inner)
        });
        assert_eq!(outer.0, outer.1, "ran in the member itself");
        assert_ne!(outer.0, rt::greenlet_id());
    });
}

#[test]
fn apply_async_never_parks_and_all_work_runs_within_the_limit() {
    // gevent test__pool.py PoolBasicTests.test_apply_async /
    // TestPool2.test_pool_full... (apply_async beyond capacity never blocks
    // the caller; all queued work eventually runs).
    rt::run(|| {
        let pool = Pool::new(2);
        let running = Rc::new(std::cell::Cell::new(0));
        let most = Rc::new(std::cell::Cell::new(0));
        let handles: Vec<_> = (0..6)
            .map(|i| {
                let (running, most) = (running.clone(), most.clone());
                pool.apply_async(move || {
                    running.set(running.get() + 1);
                    most.set(most.get().max(running.get()));
                    sleep(ms(2));
                    running.set(running.get() - 1);
                    i
                })
            })
            .collect();
        assert_eq!(pool.len(), 2, "the others wait outside the pool");
        let results: Vec<u32> = rt::joinall(handles).into_iter().map(Result::unwrap).collect();
        assert_eq!(results, [0, 1, 2, 3, 4, 5]);
        assert_eq!(most.get(), 2, "never more than the pool's size at once");
        assert_eq!(pool.free_count(), 2);
    });
}

#[test]
fn map_keeps_the_order_for_every_size() {
    // gevent test__pool.py TestPool{1,2,3,10,Unlimited}.test_map /
    // test_imap (order preserved, incremental next, empty input).
    for size in [1, 2, 3, 10, usize::MAX] {
        rt::run(move || {
            let pool = Pool::new(size);
            let delays = [5u64, 1, 3, 0, 2, 4];
            let got = pool.map(
                |ms: u64| {
                    sleep(Duration::from_millis(ms));
                    ms * 10
                },
                delays,
            );
            assert_eq!(got, [50, 10, 30, 0, 20, 40], "size {size}");
            assert!(pool.map(|x: u8| x, std::iter::empty()).is_empty());
            let mut it = pool.imap(|x: u32| x + 1, 0..3);
            assert_eq!(it.next().map(Result::unwrap), Some(1));
            assert_eq!(it.next().map(Result::unwrap), Some(2));
            assert_eq!(it.next().map(Result::unwrap), Some(3));
            assert!(it.next().is_none());
            assert!(it.next().is_none());
        });
    }
}

#[test]
fn map_resumes_a_panic_of_an_item() {
    rt::run(|| {
        let pool = Pool::new(2);
        let caught = panic::catch_unwind(panic::AssertUnwindSafe(|| {
            pool.map(|x: u32| if x == 2 { panic!("item {x}") } else { x }, 0..4)
        }));
        assert_eq!(util::message(&caught.unwrap_err()), "item 2");
    });
}

#[test]
fn imap_gives_a_failed_item_as_its_error_and_goes_on() {
    rt::run(|| {
        let pool = Pool::new(2);
        let got: Vec<_> = pool.imap(|x: u32| if x == 1 { panic!("bad item") } else { x }, 0..3).collect();
        assert_eq!(got.len(), 3);
        assert_eq!(*got[0].as_ref().unwrap(), 0);
        assert!(got[1].as_ref().unwrap_err().is_panic());
        assert_eq!(*got[2].as_ref().unwrap(), 2);
    });
}

#[test]
fn imap_unordered_gives_completion_order() {
    // gevent test__pool.py TestPool.test_imap_unordered_... (sleeps 10/1/2
    // come back 1, 2, 10 in parallel, in input order on a pool of one).
    // In parallel, the order is made by events rather than sleeps.
    let sleepy = |ms: u64| {
        sleep(Duration::from_millis(ms));
        ms
    };
    rt::run(move || {
        // Item k finishes once item k - 1 has (an event each, not timing):
        // given as 2, 0, 1, they finish as 0, 1, 2.
        let turns: Rc<Vec<Event>> = Rc::new((0..4).map(|_| Event::new()).collect());
        turns[0].set();
        let t = turns.clone();
        let in_turn = move |k: usize| {
            t[k].wait();
            t[k + 1].set();
            k
        };
        let parallel: Vec<usize> = Pool::new(3).imap_unordered(in_turn, [2, 0, 1]).map(Result::unwrap).collect();
        assert_eq!(parallel, [0, 1, 2]);
        let serial: Vec<u64> = Pool::new(1).imap_unordered(sleepy, [20, 1, 8]).map(Result::unwrap).collect();
        assert_eq!(serial, [20, 1, 8]);
        assert_eq!(Pool::unbounded().imap_unordered(sleepy, []).count(), 0);
        let mut got: Vec<u64> = Pool::new(4).imap_unordered(|x: u64| x, 0..50).map(Result::unwrap).collect();
        got.sort_unstable();
        assert_eq!(got, (0..50).collect::<Vec<_>>());
    });
}

#[test]
fn imap_bounded_stops_spawning_while_results_wait() {
    // gevent test__pool.py TestImapMaxsize (imap(maxsize=) spawns no more
    // than maxsize results ahead of the consumer).
    rt::run(|| {
        let pool = Pool::unbounded();
        let started = Counter::new();
        let s = started.clone();
        let mut it = pool.imap_bounded(
            move |x: u32| {
                s.bump();
                x
            },
            0..10,
            3,
        );
        sleep(ms(2));
        assert_eq!(started.get(), 3, "three results wait, no more");
        assert_eq!(it.next().map(Result::unwrap), Some(0));
        sleep(ms(2));
        assert_eq!(started.get(), 4, "one taken, one more spawned");
        assert_eq!(it.map(Result::unwrap).collect::<Vec<_>>(), (1..10).collect::<Vec<_>>());
        assert_eq!(started.get(), 10);
    });
}

#[test]
fn dropping_imap_stops_the_spawning() {
    rt::run(|| {
        let pool = Pool::new(1);
        let started = Counter::new();
        let s = started.clone();
        let mut it = pool.imap(
            move |x: u32| {
                s.bump();
                sleep(ms(1));
                x
            },
            0..1000,
        );
        assert_eq!(it.next().map(Result::unwrap), Some(0));
        drop(it);
        pool.join();
        sleep(ms(3));
        assert!(started.get() < 5, "spawning stopped ({} started)", started.get());
    });
}

// ---------------------------------------------------------------------------
// Pool: add, discard, is_full, wait_available_timeout

#[test]
fn add_parks_while_full_and_try_add_and_add_timeout_refuse() {
    // gevent test__pool.py PoolBasicTests.test_add_method (add on a full
    // pool blocks, interruptible by a Timeout), test_add_method_non_blocking
    // (PoolFull) and test_add_method_timeout (PoolFull after the timeout).
    rt::run(|| {
        let pool = Pool::new(1);
        let busy = Rc::new(pool.spawn(|| sleep(Duration::from_secs(30))));
        assert!(pool.is_full());
        let other = spawn(|| sleep(Duration::from_secs(30)));
        assert_eq!(pool.try_add(&other), Err(PoolFull));
        assert_eq!(pool.add_timeout(&other, ms(2)), Err(PoolFull));
        assert_eq!(timeout(ms(2), || pool.add(&other)), Err(Elapsed));
        assert!(!pool.contains(other.id()));
        let b = busy.clone();
        drop(spawn(move || b.kill()));
        pool.add(&other); // parks until `busy` is done
        assert!(busy.is_finished());
        assert!(pool.contains(other.id()));
        assert_eq!(pool.free_count(), 0);
        pool.add(&other); // a member already: no second slot
        assert_eq!(pool.try_add(&other), Ok(()));
        other.kill();
        pool.join();
        assert_eq!(pool.free_count(), 1, "its slot came back when it finished");
        let done = spawn(|| ());
        yield_now();
        assert_eq!(pool.try_add(&done), Ok(()), "a finished greenlet is left out");
        assert_eq!(pool.free_count(), 1);
    });
}

#[test]
fn add_timeout_takes_the_room_that_frees_in_time() {
    rt::run(|| {
        let pool = Pool::new(1);
        drop(pool.spawn(|| sleep(ms(2))));
        let other = spawn(|| sleep(Duration::from_secs(30)));
        assert_eq!(pool.add_timeout(&other, Duration::from_secs(30)), Ok(()));
        assert!(pool.contains(other.id()));
        pool.kill();
        pool.join();
        assert!(other.join().unwrap_err().is_killed());
    });
}

#[test]
fn discard_forgets_a_member_and_frees_its_slot() {
    // gevent pool.py Group.discard / Pool.discard.
    rt::run(|| {
        let pool = Pool::new(1);
        let long = pool.spawn(|| sleep(Duration::from_secs(30)));
        assert!(pool.is_full());
        pool.discard(long.id());
        assert!(!pool.is_full());
        assert!(!pool.contains(long.id()));
        assert!(pool.join_timeout(ms(1)), "the pool no longer waits for it");
        pool.kill();
        yield_now();
        assert!(!long.is_finished(), "nor kills it");
        let next = pool.spawn(|| 1);
        assert_eq!(next.join().unwrap(), 1);
        assert_eq!(pool.free_count(), 1, "discarding did not give the slot twice");
        pool.discard(12345); // not a member: nothing happens
        assert_eq!(pool.free_count(), 1);
        long.kill();
        assert!(long.join().unwrap_err().is_killed());
        assert_eq!(pool.free_count(), 1, "its finish gave nothing back again");
    });
}

#[test]
fn wait_available_timeout_gives_the_free_count() {
    // gevent test__pool.py TestPool0.test_wait_full (0 after the timeout on
    // a size-0 pool) and PoolBasicTests (wait_available returns the count).
    rt::run(|| {
        assert_eq!(Pool::new(0).wait_available_timeout(ms(2)), 0);
        assert!(Pool::new(0).is_full());
        let pool = Pool::new(2);
        let short = pool.spawn(|| sleep(ms(2)));
        assert_eq!(pool.wait_available_timeout(ms(50)), 1, "room already: at once");
        let long = pool.spawn(|| sleep(Duration::from_secs(30)));
        assert_eq!(pool.wait_available_timeout(Duration::from_secs(30)), 1, "the short member finished");
        assert!(short.is_finished());
        long.kill();
        drop(long.join());
        assert_eq!(pool.free_count(), 2);
    });
}
