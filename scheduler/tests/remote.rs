//! Work sent to a hub from other threads through a `Handle`: what happens
//! when the hub stops meanwhile, and how a flood of spawns is held back.

mod util;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use runtime_scheduler::{self as rt, Builder, Handle, JoinHandle};

/// Starts a hub on its own thread whose main greenlet hands out a `Handle`
/// and then runs `main`; returns the handle and the hub's thread.
fn hub_on_thread(builder: Builder, main: impl FnOnce() + Send + 'static) -> (Handle, thread::JoinHandle<()>) {
    let (to_test, handle) = mpsc::channel();
    let hub = thread::spawn(move || {
        builder.run(move || {
            to_test.send(Handle::current()).expect("the test waits for the handle");
            main();
        });
    });
    (handle.recv().expect("the hub starts"), hub)
}

/// A `Handle::spawn` racing the hub's close either fails with `Closed`, or
/// its greenlet runs, or it is joined as killed: no join waits forever,
/// whether a `Handle` (and with it the hub's queue) outlives the join, or
/// the last one is dropped on a spawning thread before it. Several threads
/// spawn at once, more than there are cores, so that some are preempted
/// in the middle of a spawn as the hub closes.
#[test]
fn spawns_racing_the_close_fail_run_or_are_killed_and_every_join_ends() {
    const SPAWNERS: usize = 4;
    for round in 0..150u32 {
        // The hub stops once this many spawns came, while the spawners are
        // busy posting more; it closes at once, or after a short grace in
        // which it handles some.
        let stop_after = 1 + (round as usize * 37) % 256;
        let grace = Duration::from_micros(u64::from(round % 4 / 3) * 200);
        let posted = Arc::new(AtomicUsize::new(0));
        let (handle, hub) = {
            let posted = posted.clone();
            hub_on_thread(Builder::new().shutdown_grace(grace), move || {
                while posted.load(Ordering::SeqCst) < stop_after {
                    rt::yield_now(); // takes spawns off the queue
                }
            })
        };
        let spawners: Vec<_> = (0..SPAWNERS)
            .map(|_| {
                let (handle, posted) = (handle.clone(), posted.clone());
                thread::spawn(move || {
                    let mut joins: Vec<JoinHandle<u32>> = Vec::new();
                    // Until the hub refuses with `Closed`.
                    while let Ok(join) = handle.spawn(move || round) {
                        joins.push(join);
                        posted.fetch_add(1, Ordering::SeqCst);
                    }
                    joins
                })
            })
            .collect();
        let joins: Vec<JoinHandle<u32>> =
            spawners.into_iter().flat_map(|spawner| spawner.join().expect("a spawner")).collect();
        let kept = (round % 2 == 0).then_some(handle);
        hub.join().expect("the hub stops");
        for join in joins {
            match join.join_timeout(Duration::from_secs(10)) {
                Ok(Ok(value)) => assert_eq!(value, round),
                Ok(Err(err)) => assert!(err.is_killed(), "round {round}: {err}"),
                Err(_) => panic!("round {round}: a spawn accepted while the hub closed is never joined"),
            }
        }
        drop(kept);
    }
}

/// A plain thread that floods a hub with spawns while the hub is held (here
/// its main greenlet blocks the thread) gets at most
/// `Handle::MAX_QUEUED_SPAWNS` of them queued, then blocks in `spawn` until
/// the hub catches up; every spawn then runs.
#[test]
fn a_flood_of_spawns_from_a_thread_waits_while_the_hub_is_behind_then_every_one_runs() {
    const FLOOD: usize = 8 * Handle::MAX_QUEUED_SPAWNS;
    let accepted = Arc::new(AtomicUsize::new(0));
    let ran = Arc::new(AtomicUsize::new(0));
    let (queued_while_held, seen) = mpsc::channel();
    let (handle, hub) = {
        let (accepted, ran) = (accepted.clone(), ran.clone());
        hub_on_thread(Builder::new(), move || {
            // Hold the hub: nothing is taken off its queue meanwhile.
            let held = Instant::now();
            while accepted.load(Ordering::SeqCst) < FLOOD && held.elapsed() < Duration::from_millis(300) {
                thread::sleep(Duration::from_millis(1));
            }
            queued_while_held.send(accepted.load(Ordering::SeqCst)).expect("the test waits");
            while ran.load(Ordering::SeqCst) < FLOOD {
                rt::sleep(Duration::from_millis(1));
            }
        })
    };
    let flooder = thread::spawn(move || {
        for _ in 0..FLOOD {
            let ran = ran.clone();
            handle.spawn(move || ran.fetch_add(1, Ordering::SeqCst)).expect("the hub runs");
            accepted.fetch_add(1, Ordering::SeqCst);
        }
    });
    let queued = seen.recv_timeout(Duration::from_secs(30)).expect("the hub was held");
    assert!(queued <= Handle::MAX_QUEUED_SPAWNS, "{queued} spawns were queued on a hub that took none");
    flooder.join().expect("every spawn was accepted in the end");
    hub.join().expect("and ran");
}

/// A greenlet that floods another hub with spawns parks while that hub is
/// behind, rather than blocking its own hub: its neighbours keep running.
#[test]
fn a_greenlet_flooding_a_hub_that_is_behind_parks_and_its_own_hub_runs_on() {
    const FLOOD: usize = 4 * Handle::MAX_QUEUED_SPAWNS;
    let accepted = Arc::new(AtomicUsize::new(0));
    let ticks_while_held = Arc::new(AtomicUsize::new(0));
    let ran = Arc::new(AtomicUsize::new(0));
    let (report, reported) = mpsc::channel();
    let (handle, target) = {
        let (accepted, ticks, ran) = (accepted.clone(), ticks_while_held.clone(), ran.clone());
        hub_on_thread(Builder::new(), move || {
            // Held until the flooder is stuck and its hub has ticked on.
            let held = Instant::now();
            while (accepted.load(Ordering::SeqCst) < Handle::MAX_QUEUED_SPAWNS || ticks.load(Ordering::SeqCst) < 3)
                && held.elapsed() < Duration::from_secs(10)
            {
                thread::sleep(Duration::from_millis(1));
            }
            report.send((accepted.load(Ordering::SeqCst), ticks.load(Ordering::SeqCst))).expect("the test waits");
            while ran.load(Ordering::SeqCst) < FLOOD {
                rt::sleep(Duration::from_millis(1));
            }
        })
    };
    let flooding = thread::spawn(move || {
        rt::run(move || {
            let ticker = {
                let (accepted, ticks) = (accepted.clone(), ticks_while_held.clone());
                rt::spawn(move || {
                    while accepted.load(Ordering::SeqCst) < FLOOD {
                        rt::sleep(Duration::from_millis(1));
                        if accepted.load(Ordering::SeqCst) >= Handle::MAX_QUEUED_SPAWNS {
                            ticks.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                })
            };
            for _ in 0..FLOOD {
                let ran = ran.clone();
                handle.spawn(move || ran.fetch_add(1, Ordering::SeqCst)).expect("the target hub runs");
                accepted.fetch_add(1, Ordering::SeqCst);
            }
            ticker.join().expect("the ticker ends");
        });
    });
    let (queued, ticks) = reported.recv_timeout(Duration::from_secs(30)).expect("the target hub was held");
    assert!(queued <= Handle::MAX_QUEUED_SPAWNS, "{queued} spawns were queued on a hub that took none");
    assert!(ticks >= 3, "the flooding greenlet's hub stopped while it waited (ticked {ticks} times)");
    flooding.join().expect("every spawn was accepted in the end");
    target.join().expect("and ran");
}
