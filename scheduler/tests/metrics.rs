//! `runtime::metrics` and `Handle::metrics`: what a hub counts (tokio's
//! `RuntimeMetrics`; gevent's monitoring thread and `events`).

mod util;

use std::rc::Rc;
use std::time::{Duration, Instant};

use runtime_scheduler::sync::Event;
use runtime_scheduler::{Builder, Handle, Metrics, blocking, metrics, run, sleep, spawn, yield_now};
use util::ms;

#[test]
fn outside_a_runtime_every_value_is_zero() {
    let m = metrics();
    assert_eq!(m, Metrics::default());
    assert_eq!(
        (m.greenlets_alive(), m.greenlets_spawned(), m.switches(), m.polls(), m.runnable(), m.timers()),
        (0, 0, 0, 0, 0, 0)
    );
    assert_eq!((m.busy_time(), m.stack_resident_bytes()), (Duration::ZERO, 0));
}

#[test]
fn greenlets_are_counted_while_alive_and_once_spawned() {
    run(|| {
        assert_eq!((metrics().greenlets_alive(), metrics().greenlets_spawned()), (1, 1)); // the main greenlet
        let gate = std::rc::Rc::new(Event::new());
        let waiters: Vec<_> = (0..10)
            .map(|_| {
                let gate = gate.clone();
                spawn(move || gate.wait())
            })
            .collect();
        assert_eq!((metrics().greenlets_alive(), metrics().greenlets_spawned()), (11, 11));
        yield_now(); // they all park
        assert_eq!(metrics().greenlets_alive(), 11);
        gate.set();
        for waiter in waiters {
            waiter.join().unwrap();
        }
        let m = metrics();
        assert_eq!((m.greenlets_alive(), m.greenlets_spawned()), (1, 11), "{m:?}");
    });
}

#[test]
fn every_resumed_greenlet_is_a_switch() {
    run(|| {
        let before = metrics().switches();
        for _ in 0..5 {
            yield_now(); // the hub resumes this greenlet again each time
        }
        assert_eq!(metrics().switches() - before, 5);
    });
}

#[test]
fn the_run_queue_depth_is_what_waits_to_run() {
    run(|| {
        assert_eq!(metrics().runnable(), 0);
        let spawned: Vec<_> = (0..5).map(|_| spawn(|| ())).collect();
        assert_eq!(metrics().runnable(), 5); // spawned, not started
        for handle in spawned {
            handle.join().unwrap();
        }
        assert_eq!(metrics().runnable(), 0);
    });
}

#[test]
fn sleepers_and_timeouts_are_pending_timers() {
    run(|| {
        let sleepers: Vec<_> = (0..3).map(|_| spawn(|| sleep(Duration::from_secs(60)))).collect();
        yield_now(); // they park with a deadline each
        assert_eq!(metrics().timers(), 3);
        for sleeper in sleepers {
            sleeper.kill();
            assert!(sleeper.join().unwrap_err().is_killed());
        }
        assert_eq!(metrics().timers(), 0);
    });
}

#[test]
fn a_park_ended_by_its_deadline_or_before_it_leaves_no_timer() {
    run(|| {
        // Ended by their deadlines: the wheel fired and dropped the timers.
        let sleepers: Vec<_> = (0..3).map(|_| spawn(|| sleep(ms(1)))).collect();
        let event = Rc::new(Event::new());
        assert!(!event.wait_timeout(ms(1)));
        for sleeper in sleepers {
            sleeper.join().unwrap();
        }
        assert_eq!(metrics().timers(), 0);
        // Woken before its deadline: the park disarms its timer.
        let setter = spawn({
            let event = event.clone();
            move || event.set()
        });
        assert!(event.wait_timeout(Duration::from_secs(60)));
        setter.join().unwrap();
        assert_eq!(metrics().timers(), 0);
        // And a deadline that passes after the wake-up came, before the
        // woken greenlet ran: its timer is disarmed all the same.
        event.clear();
        let late = spawn({
            let event = event.clone();
            move || event.wait_timeout(ms(5))
        });
        yield_now(); // `late` parks
        event.set();
        std::thread::sleep(ms(10)); // its deadline passes while it is runnable
        assert!(late.join().unwrap());
        assert_eq!(metrics().timers(), 0);
    });
}

#[test]
fn waiting_for_time_to_pass_polls_the_os() {
    run(|| {
        let before = metrics().polls();
        sleep(ms(1));
        assert!(metrics().polls() > before);
    });
}

#[test]
fn busy_greenlets_without_io_make_no_polls_yet_see_other_threads_work() {
    run(|| {
        // No socket is registered: between batches of runnable greenlets the
        // hub has nothing to ask the OS, so it asks at most once a
        // millisecond (a poll between every batch of 61 would be 65 polls
        // here, in well under a millisecond on a machine of today).
        let spinner = spawn(|| (0..2_000).for_each(|_| yield_now()));
        let (before, start) = (metrics(), Instant::now());
        (0..2_000).for_each(|_| yield_now());
        let (after, elapsed) = (metrics(), start.elapsed());
        let (polls, switches) = (after.polls() - before.polls(), after.switches() - before.switches());
        assert!(switches >= 4_000, "{switches} switches");
        let allowed = elapsed.as_millis() as u64 + 1;
        assert!(polls <= allowed, "{polls} polls in {elapsed:?} ({switches} switches), with nothing registered");
        spinner.join().unwrap();
        // Work posted by another thread still runs while the hub is busy:
        // the remote queue is read at every turn, poll or no poll.
        let handle = Handle::current();
        let posted = std::thread::spawn(move || handle.spawn(|| 7).expect("the hub runs"));
        let ran = Rc::new(std::cell::Cell::new(false));
        let busy = spawn({
            let ran = ran.clone();
            move || {
                while !ran.get() {
                    yield_now();
                }
            }
        });
        let remote = posted.join().unwrap();
        assert_eq!(remote.join().unwrap(), 7);
        ran.set(true);
        busy.join().unwrap();
    });
}

#[test]
fn busy_time_includes_what_greenlets_run() {
    run(|| {
        let before = metrics().busy_time();
        let spin = Duration::from_millis(5);
        let start = Instant::now();
        while start.elapsed() < spin {
            std::hint::spin_loop();
        }
        assert!(metrics().busy_time() - before >= spin);
        // Also once the hub has moved on (a turn closes the count).
        let worker = spawn(move || {
            let start = Instant::now();
            while start.elapsed() < spin {
                std::hint::spin_loop();
            }
        });
        let before = Handle::current().metrics().busy_time();
        worker.join().unwrap();
        sleep(ms(1));
        assert!(Handle::current().metrics().busy_time() - before >= spin);
    });
}

#[test]
fn a_hub_measures_its_stacks_memory() {
    run(|| {
        sleep(ms(1)); // a turn of the loop: the first one measures
        assert!(metrics().stack_resident_bytes() > 0, "the main greenlet's stack is in use");
    });
}

#[test]
fn another_thread_reads_a_running_hub() {
    run(|| {
        let gate = std::rc::Rc::new(Event::new());
        let parked: Vec<_> = (0..3)
            .map(|_| {
                let gate = gate.clone();
                spawn(move || gate.wait())
            })
            .collect();
        sleep(ms(1)); // they park; a turn publishes the levels
        let handle = Handle::current();
        // The job runs on a thread of the pool.
        let m = blocking(move || handle.metrics());
        assert_eq!((m.greenlets_alive(), m.greenlets_spawned()), (4, 4), "{m:?}");
        assert!(m.switches() >= 4 && m.polls() >= 1, "{m:?}");
        gate.set();
        parked.into_iter().for_each(|p| p.join().unwrap());
    });
}

#[test]
fn a_handle_keeps_the_final_values_of_a_stopped_hub() {
    let handle = run(|| {
        spawn(|| sleep(ms(1))).join().unwrap();
        Handle::current()
    });
    let m = std::thread::spawn(move || handle.metrics()).join().unwrap();
    assert_eq!((m.greenlets_alive(), m.greenlets_spawned()), (0, 2), "{m:?}");
    assert!(m.switches() >= 2 && m.polls() >= 1, "{m:?}");
}

#[test]
fn each_hub_of_run_each_counts_its_own() {
    let spawned = Builder::new().hubs(2).run_each(|i| {
        for _ in 0..20 * i {
            spawn(|| ()).join().unwrap();
        }
        metrics().greenlets_spawned()
    });
    assert_eq!(spawned, [1, 21]);
}
