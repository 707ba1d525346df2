//! The `sync` types across threads: between two hubs (each on its own
//! thread) and between a hub and a plain thread. A greenlet parks, a plain
//! thread blocks, and nothing is lost.

mod util;

use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use runtime_scheduler::sync::{AsyncResult, Condvar, Event, Mutex, Semaphore, channel};
use runtime_scheduler::{self as rt, sleep, spawn, yield_now};
use util::ms;

/// Runs `a` and `b` each on its own hub, on two threads, and returns both
/// results.
fn two_hubs<A, B>(a: impl FnOnce() -> A + Send + 'static, b: impl FnOnce() -> B + Send + 'static) -> (A, B)
where
    A: Send + 'static,
    B: Send + 'static,
{
    let other = thread::spawn(move || rt::run(b));
    let mine = thread::spawn(move || rt::run(a)).join().expect("hub A");
    (mine, other.join().expect("hub B"))
}

#[test]
fn sync_types_are_send_and_sync() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<channel::Sender<u8>>();
    send_sync::<channel::Receiver<u8>>();
    send_sync::<Event>();
    send_sync::<AsyncResult<u8>>();
    send_sync::<Semaphore>();
    send_sync::<Mutex<u8>>();
    send_sync::<Condvar>();
    send_sync::<rt::JoinHandle<u8>>();
    send_sync::<rt::Handle>();
}

#[test]
fn a_channel_between_two_hubs_loses_nothing_and_keeps_order() {
    const N: u32 = 20_000;
    let (tx, rx) = channel::bounded::<u32>(16);
    let (back_tx, back_rx) = channel::unbounded::<u32>();
    let (sum, ()) = two_hubs(
        move || {
            let mut expected = 0;
            for value in rx.iter() {
                assert_eq!(value, expected, "in order");
                expected += 1;
                back_tx.send(value).unwrap();
            }
            expected
        },
        move || {
            // Greenlets of hub B send; the bounded channel parks them while
            // hub A is behind.
            for i in 0..N {
                tx.send(i).unwrap();
            }
            drop(tx);
            let echoed: Vec<u32> = back_rx.iter().collect();
            assert_eq!(echoed.len(), N as usize);
        },
    );
    assert_eq!(sum, N);
}

#[test]
fn a_plain_thread_and_a_greenlet_talk_both_ways() {
    let (to_hub, from_thread) = channel::bounded::<u32>(0);
    let (to_thread, from_hub) = channel::bounded::<u32>(0);
    let thread = thread::spawn(move || {
        // A plain thread blocks in `send` and `recv`.
        for i in 0..1000 {
            to_hub.send(i).unwrap();
            assert_eq!(from_hub.recv(), Ok(i * 2));
        }
        assert_eq!(from_hub.recv_timeout(ms(20)), Err(channel::RecvTimeoutError::Timeout));
        drop(to_hub);
        assert_eq!(from_hub.recv(), Err(channel::RecvError), "the hub's sender is gone");
    });
    rt::run(move || {
        let ticker = spawn(|| {
            loop {
                sleep(ms(1));
            }
        });
        while let Ok(i) = from_thread.recv() {
            to_thread.send(i * 2).unwrap();
        }
        drop(to_thread);
        ticker.kill();
    });
    thread.join().unwrap();
}

#[test]
fn events_results_and_semaphores_cross_threads() {
    let event = Arc::new(Event::new());
    let result = Arc::new(AsyncResult::new());
    let semaphore = Arc::new(Semaphore::new(0));
    let taken = Arc::new(Event::new());
    let (e, r, s, t) = (event.clone(), result.clone(), semaphore.clone(), taken.clone());
    let hub_semaphore = semaphore.clone();
    let thread = thread::spawn(move || {
        thread::sleep(ms(10));
        e.set();
        r.set("from a thread");
        s.add_permits(3);
        t.wait(); // a plain thread blocks until the hub has them
        // A thread waits for a permit the hub hands back.
        let permit = s.acquire_timeout(Duration::from_secs(5)).expect("released by a greenlet");
        permit.forget();
    });
    rt::run(move || {
        event.wait();
        assert_eq!(result.get(), "from a thread");
        let permits: Vec<_> = (0..3).map(|_| hub_semaphore.acquire()).collect();
        taken.set();
        sleep(ms(5));
        drop(permits); // the thread gets one
    });
    thread.join().unwrap();
    assert_eq!(semaphore.available(), 2);
}

#[test]
fn a_mutex_and_condvar_shared_by_hubs_and_a_thread() {
    let state = Arc::new((Mutex::new(0u32), Condvar::new()));
    let mut threads = Vec::new();
    for _ in 0..2 {
        let state = state.clone();
        threads.push(thread::spawn(move || {
            rt::run(move || {
                let handles: Vec<_> = (0..10)
                    .map(|_| {
                        let state = state.clone();
                        spawn(move || {
                            for _ in 0..50 {
                                let mut n = state.0.lock();
                                yield_now(); // held across a park
                                *n += 1;
                                state.1.notify_all();
                            }
                        })
                    })
                    .collect();
                rt::joinall(handles);
            });
        }));
    }
    let (lock, changed) = &*state;
    let mut n = lock.lock();
    while *n < 1000 {
        let (guard, _timed_out) = changed.wait_timeout(n, Duration::from_secs(5));
        n = guard;
    }
    assert_eq!(*n, 1000);
    drop(n);
    for thread in threads {
        thread.join().unwrap();
    }
}

#[test]
fn killing_a_greenlet_waiting_on_a_thread_loses_nothing() {
    let (tx, rx) = channel::bounded::<u32>(0);
    let rx2 = rx.clone();
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    let thread = thread::spawn(move || {
        // Sends once the first receiver was killed in its wait: the value must
        // go to the receiver that is left, not to the dead one's node.
        go_rx.recv().unwrap();
        tx.send(7).unwrap();
    });
    rt::run(move || {
        let victim = spawn(move || rx2.recv());
        yield_now(); // it waits in `recv`
        victim.kill();
        assert!(victim.join().unwrap_err().is_killed());
        go_tx.send(()).unwrap();
        assert_eq!(rx.recv(), Ok(7), "the value went to the receiver that was left");
    });
    thread.join().unwrap();
}

#[test]
fn a_wait_another_thread_ends_later_is_not_called_a_deadlock() {
    // Without `strict_deadlocks`, the hub cannot tell that a plain thread will
    // set the event: it must not panic, only warn after a while.
    const TEST: &str = "a_wait_another_thread_ends_later_is_not_called_a_deadlock";
    if !util::is_child(TEST) {
        let output = util::rerun_in_child(TEST, &[]);
        let text = util::output_text(&output);
        assert!(output.status.success(), "{text}");
        util::assert_contains(&text, &["possible deadlock", "Event::wait", "Another thread may still wake it"]);
        return;
    }
    let event = Arc::new(Event::new());
    let setter = event.clone();
    let thread = thread::spawn(move || {
        thread::sleep(Duration::from_secs(6));
        setter.set();
    });
    let start = Instant::now();
    rt::run(move || event.wait());
    assert!(start.elapsed() >= Duration::from_secs(6));
    thread.join().unwrap();
}

#[test]
fn busy_hubs_passing_values_between_them_are_never_called_deadlocked() {
    // Ping-pong pairs whose two ends are on different hubs: every wake
    // crosses threads, and a hub's main greenlet waits in `join` meanwhile.
    // A wake-up of the hub that finds nothing to run (a late eventfd write
    // for a message already taken) is not a deadlock that lasted: no warning.
    const TEST: &str = "busy_hubs_passing_values_between_them_are_never_called_deadlocked";
    if !util::is_child(TEST) {
        let output = util::rerun_in_child(TEST, &[]);
        let text = util::output_text(&output);
        assert!(output.status.success(), "{text}");
        assert!(!text.contains("possible deadlock"), "a false warning: {text}");
        return;
    }
    const HUBS: usize = 4;
    const PAIRS: usize = 32;
    let mut ends: Vec<Vec<_>> = (0..HUBS).map(|_| Vec::new()).collect();
    for pair in 0..PAIRS {
        let (ping_tx, ping_rx) = channel::bounded::<u32>(1);
        let (pong_tx, pong_rx) = channel::bounded::<u32>(1);
        ends[pair % HUBS].push((true, ping_tx, pong_rx));
        ends[(pair + 1) % HUBS].push((false, pong_tx, ping_rx));
    }
    let ends: Vec<_> = ends.into_iter().map(std::sync::Mutex::new).collect();
    rt::Builder::new().hubs(HUBS).run_each(move |hub| {
        let players: Vec<_> = std::mem::take(&mut *ends[hub].lock().unwrap())
            .into_iter()
            .map(|(pinger, tx, rx)| {
                spawn(move || {
                    for round in 0..1500 {
                        if pinger {
                            tx.send(round).unwrap();
                            assert_eq!(rx.recv(), Ok(round));
                        } else {
                            tx.send(rx.recv().unwrap()).unwrap();
                        }
                    }
                })
            })
            .collect();
        players.into_iter().for_each(|player| player.join().unwrap());
    });
}

#[test]
fn run_each_runs_every_hub_and_returns_results_in_order() {
    for hubs in [2, 4] {
        let results = rt::Builder::new().hubs(hubs).run_each(|i| {
            assert_eq!(rt::hub_index(), Some(i));
            // Each hub runs greenlets of its own.
            let handles: Vec<_> = (0..10).map(|j| spawn(move || i * 100 + j)).collect();
            rt::joinall(handles).into_iter().map(Result::unwrap).sum::<usize>()
        });
        let expected: Vec<usize> = (0..hubs).map(|i| i * 1000 + 45).collect();
        assert_eq!(results, expected);
    }
    assert_eq!(rt::hub_index(), None);
}

#[test]
fn a_panic_in_one_hub_is_raised_after_every_hub_stopped() {
    let stopped = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let s = stopped.clone();
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
        rt::Builder::new().hubs(3).run_each(move |i| {
            if i == 1 {
                panic!("hub 1 failed");
            }
            sleep(ms(50)); // the others are still running when hub 1 fails
            s.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        })
    }));
    let payload = outcome.unwrap_err();
    assert_eq!(util::message(&payload), "hub 1 failed");
    assert_eq!(stopped.load(std::sync::atomic::Ordering::SeqCst), 2, "the other hubs ran to their end");
}

#[test]
fn pinned_hubs_run_too() {
    let cores = rt::Builder::new().hubs(2).pin_cores(true).run_each(|i| i);
    assert_eq!(cores, [0, 1]);
}

#[test]
fn a_join_handle_is_joined_from_another_hub_and_killed_from_a_plain_thread() {
    let (handles_tx, handles_rx) = channel::bounded::<rt::JoinHandle<u32>>(2);
    let (_, ()) = two_hubs(
        move || {
            // Hub A spawns two greenlets and hands their handles over.
            handles_tx
                .send(spawn(|| {
                    sleep(ms(20));
                    42
                }))
                .unwrap();
            handles_tx
                .send(spawn(|| {
                    sleep(Duration::from_secs(60));
                    0
                }))
                .unwrap();
            // Both end before hub A's root returns (one killed from a thread).
            while rt::dump().greenlets().len() > 1 {
                sleep(ms(5));
            }
        },
        move || {
            let quick = handles_rx.recv().unwrap();
            let slow = handles_rx.recv().unwrap();
            // Joined from a greenlet of hub B.
            assert_eq!(quick.join().unwrap(), 42);
            // Killed from a plain thread, which then blocks in `join`.
            let killer = thread::spawn(move || {
                slow.kill();
                slow.join()
            });
            let joined = rt::blocking(move || killer.join().unwrap());
            assert!(joined.unwrap_err().is_killed());
        },
    );
}

#[test]
fn a_handle_spawns_from_a_thread_and_the_thread_joins() {
    let (handle_tx, handle_rx) = std::sync::mpsc::channel();
    let thread = thread::spawn(move || {
        let hub: rt::Handle = handle_rx.recv().unwrap();
        let greenlet = hub.spawn(rt::greenlet_id).unwrap();
        let id = greenlet.join().unwrap();
        assert!(id > 0);
        // A kill sent before the hub even created the greenlet still lands.
        let doomed = hub.spawn(|| sleep(Duration::from_secs(60))).unwrap();
        doomed.kill();
        assert!(doomed.join().unwrap_err().is_killed());
    });
    rt::run(move || {
        handle_tx.send(rt::Handle::current()).unwrap();
        rt::blocking(move || thread.join().unwrap());
    });
}

/// Randomized programs of channel and semaphore operations spread over two
/// hubs (several greenlets each) and a plain thread, some greenlets killed
/// while they wait: checked against the order-insensitive model of the
/// single-hub property test (`model.rs`, "with sleeps"): every value sent is
/// received exactly once (by a receiver, or left in its channel), each
/// receiver sees one sender's values in the order they were sent (when no
/// receiver is killed), a failed send keeps its value, and every permit comes
/// back. `PROPTEST_CASES`
/// overrides the number of programs (24).
mod cross_thread_model {
    use std::collections::HashMap;
    use std::sync::Arc;
    use std::sync::Mutex as StdMutex;
    use std::time::Duration;

    use proptest::prelude::*;
    use proptest::test_runner::Config;
    use runtime_scheduler::sync::{Semaphore, channel};
    use runtime_scheduler::{self as rt, sleep, spawn, yield_now};

    #[derive(Clone, Copy, Debug)]
    enum Op {
        Send(usize),
        TrySend(usize),
        Recv(usize),
        TryRecv(usize),
        Hold(usize),
        Pause,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0..2usize).prop_map(Op::Send),
            (0..2usize).prop_map(Op::TrySend),
            (0..2usize).prop_map(Op::Recv),
            (0..2usize).prop_map(Op::TryRecv),
            (0..2usize).prop_map(Op::Hold),
            Just(Op::Pause),
        ]
    }

    /// Scripts for 2 hubs × 3 greenlets and one plain thread, the capacity
    /// of the two channels, and which greenlets get killed.
    fn program() -> impl Strategy<Value = (Vec<Vec<Op>>, [usize; 2], Vec<bool>)> {
        (
            proptest::collection::vec(proptest::collection::vec(op(), 1..12), 7),
            [0..3usize, 0..3usize],
            proptest::collection::vec(any::<bool>(), 6),
        )
    }

    /// What the actors observed.
    #[derive(Default)]
    struct Log {
        /// Values sent successfully, per channel.
        sent: Vec<Vec<u64>>,
        /// The value each actor is sending right now, if any (a sender killed
        /// after its value was taken, but before it could log the send).
        sending: HashMap<usize, u64>,
        /// Values received, per channel, with the receiver.
        received: Vec<Vec<(usize, u64)>>,
    }

    const TIMEOUT: Duration = Duration::from_millis(20);

    /// Runs one actor's script. Values are `actor << 32 | n`, so each
    /// sender's values are increasing.
    fn act(
        actor: usize,
        script: &[Op],
        chans: &[(channel::Sender<u64>, channel::Receiver<u64>)],
        sems: &[Arc<Semaphore>],
        log: &StdMutex<Log>,
        on_hub: bool,
    ) {
        let mut n = 0u64;
        for op in script {
            match *op {
                Op::Send(c) | Op::TrySend(c) => {
                    n += 1;
                    let value = ((actor as u64) << 32) | n;
                    log.lock().unwrap().sending.insert(actor, value);
                    let sent = match op {
                        Op::Send(_) => chans[c].0.send_timeout(value, TIMEOUT).is_ok(),
                        _ => chans[c].0.try_send(value).is_ok(),
                    };
                    let mut log = log.lock().unwrap();
                    log.sending.remove(&actor);
                    if sent {
                        log.sent[c].push(value);
                    }
                }
                Op::Recv(c) | Op::TryRecv(c) => {
                    let got = match op {
                        Op::Recv(_) => chans[c].1.recv_timeout(TIMEOUT).ok(),
                        _ => chans[c].1.try_recv().ok(),
                    };
                    if let Some(value) = got {
                        log.lock().unwrap().received[c].push((actor, value));
                    }
                }
                Op::Hold(s) => {
                    if let Some(permit) = sems[s].acquire_timeout(TIMEOUT) {
                        if on_hub {
                            sleep(Duration::from_millis(1)); // held across a park
                        } else {
                            std::thread::sleep(Duration::from_millis(1));
                        }
                        drop(permit);
                    }
                }
                Op::Pause => {
                    if on_hub {
                        yield_now();
                    } else {
                        std::thread::yield_now();
                    }
                }
            }
        }
    }

    fn check(scripts: Vec<Vec<Op>>, capacities: [usize; 2], kills: Vec<bool>) {
        let chans: Arc<Vec<_>> = Arc::new(capacities.iter().map(|&c| channel::bounded::<u64>(c + 1)).collect());
        let sems: Arc<Vec<_>> = Arc::new(vec![Arc::new(Semaphore::new(1)), Arc::new(Semaphore::new(2))]);
        let log = Arc::new(StdMutex::new(Log {
            sent: vec![Vec::new(); 2],
            sending: HashMap::new(),
            received: vec![Vec::new(); 2],
        }));
        let scripts = Arc::new(scripts);
        let any_killed = kills.iter().any(|&killed| killed);
        let kills = Arc::new(kills);
        let thread = {
            let (chans, sems, log, scripts) = (chans.clone(), sems.clone(), log.clone(), scripts.clone());
            std::thread::spawn(move || act(6, &scripts[6], &chans, &sems, &log, false))
        };
        {
            let (chans, sems, log, scripts) = (chans.clone(), sems.clone(), log.clone(), scripts.clone());
            rt::Builder::new().hubs(2).run_each(move |hub| {
                let handles: Vec<_> = (0..3)
                    .map(|i| {
                        let actor = hub * 3 + i;
                        let (chans, sems, log, scripts) = (chans.clone(), sems.clone(), log.clone(), scripts.clone());
                        spawn(move || act(actor, &scripts[actor], &chans, &sems, &log, true))
                    })
                    .collect();
                yield_now();
                for (i, handle) in handles.iter().enumerate() {
                    if kills[hub * 3 + i] {
                        handle.kill(); // wherever it waits: nothing may be lost
                    }
                }
                rt::joinall(handles);
            });
        }
        thread.join().unwrap();
        let mut log = Arc::try_unwrap(log).ok().expect("every actor is done").into_inner().unwrap();
        for (c, (_, rx)) in chans.iter().enumerate() {
            while let Ok(value) = rx.try_recv() {
                log.received[c].push((usize::MAX, value)); // left in the channel
            }
        }
        for c in 0..2 {
            let mut received: Vec<u64> = log.received[c].iter().map(|&(_, v)| v).collect();
            received.sort_unstable();
            let unique = received.len();
            received.dedup();
            assert_eq!(unique, received.len(), "channel {c}: no value arrives twice");
            for value in &log.sent[c] {
                assert!(received.binary_search(value).is_ok(), "channel {c}: value {value:#x} was sent but lost");
            }
            for value in &received {
                let in_flight = log.sending.get(&((value >> 32) as usize)) == Some(value);
                assert!(
                    log.sent[c].contains(value) || in_flight,
                    "channel {c}: value {value:#x} arrived but its send failed"
                );
            }
            // A value handed to a receiver killed before it could take it
            // goes back to the front of the channel, possibly behind later
            // values another receiver already took: order holds without
            // kills.
            if any_killed {
                continue;
            }
            let mut last: HashMap<(usize, u64), u64> = HashMap::new();
            for &(receiver, value) in &log.received[c] {
                let sender = value >> 32;
                let previous = last.insert((receiver, sender), value).unwrap_or(0);
                assert!(previous < value, "channel {c}: receiver {receiver} got sender {sender}'s values out of order");
            }
        }
        assert_eq!(sems[0].available(), 1, "every permit came back");
        assert_eq!(sems[1].available(), 2, "every permit came back");
    }

    proptest! {
        #![proptest_config(Config {
            cases: std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(24),
            failure_persistence: None,
            ..Config::default()
        })]

        #[test]
        fn two_hubs_and_a_thread_lose_nothing((scripts, capacities, kills) in program()) {
            check(scripts, capacities, kills);
        }
    }
}

/// Busy polling (the hub polls before it sleeps) sees the hub's waker fire
/// and must act on it: a wake-up from another thread that arrives as a busy
/// poll gives up would otherwise be consumed and leave the hub asleep for
/// good. Budgets from none to long, with wake-ups at every spacing.
#[test]
fn busy_polling_loses_no_wake_up_from_another_thread() {
    const MESSAGES: u32 = 20_000;
    for limit in [Duration::ZERO, Duration::from_nanos(1), Duration::from_micros(3), Duration::from_micros(50)] {
        let (to_hub, from_thread) = channel::unbounded::<u32>();
        let (done, finished) = std::sync::mpsc::channel();
        thread::spawn(move || {
            let sum = rt::Builder::new().busy_poll(limit).run(move || {
                // An armed timer: the hub would sleep until it, not give up
                // after the possible-deadlock warning's 5 seconds.
                let timer = spawn(|| sleep(Duration::from_secs(3_600)));
                let mut sum = 0u64;
                while let Ok(n) = from_thread.recv() {
                    sum += u64::from(n);
                }
                timer.kill();
                sum
            });
            done.send(sum).expect("the test waits");
        });
        for n in 0..MESSAGES {
            // Spacing from nothing to a few microseconds, so that wake-ups
            // land before, during and after the hub's busy polls.
            let spin = Instant::now();
            while spin.elapsed() < Duration::from_nanos(u64::from(n % 16) * 250) {
                std::hint::spin_loop();
            }
            to_hub.send(n).expect("the hub receives");
        }
        drop(to_hub);
        let sum = finished
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("busy poll {limit:?}: the hub never woke for the last messages"));
        assert_eq!(sum, u64::from(MESSAGES) * u64::from(MESSAGES - 1) / 2, "busy poll {limit:?}");
    }
}

/// `Select` looks at its arms, then watches them, then parks: a value sent
/// from another thread between the look and the watch finds no watcher, so
/// the select must look again once it watches, or it sleeps with a value
/// waiting. The sender sends each value as soon as the previous one is
/// acknowledged, to land in that window often.
#[test]
fn select_sees_a_value_sent_from_another_thread_while_it_starts_watching() {
    use std::sync::atomic::{AtomicU32, Ordering};
    const ROUNDS: u32 = 20_000;
    let (to_hub, from_thread) = channel::bounded::<u32>(1);
    let acked = Arc::new(AtomicU32::new(0));
    let (done, finished) = std::sync::mpsc::channel();
    let hub_acked = acked.clone();
    thread::spawn(move || {
        rt::run(move || {
            // An armed timer: a lost wake-up hangs instead of ending in the
            // possible-deadlock warning's timeout.
            let timer = spawn(|| sleep(Duration::from_secs(3_600)));
            loop {
                let mut select = rt::sync::Select::new();
                select.recv(&from_thread);
                select.ready();
                match from_thread.try_recv() {
                    Ok(n) => hub_acked.store(n + 1, Ordering::Release),
                    Err(channel::TryRecvError::Disconnected) => break,
                    Err(channel::TryRecvError::Empty) => {}
                }
            }
            timer.kill();
        });
        done.send(()).expect("the test waits");
    });
    for n in 0..ROUNDS {
        to_hub.send(n).expect("the hub receives");
        let spin = Instant::now();
        while acked.load(Ordering::Acquire) != n + 1 {
            assert!(spin.elapsed() < Duration::from_secs(30), "value {n} was never seen by the select");
            std::hint::spin_loop();
        }
    }
    drop(to_hub);
    finished.recv_timeout(Duration::from_secs(30)).expect("the hub stops");
}

/// A spawn through a `Handle` whose work is still queued when the hub stops
/// never runs; its join handle must say so rather than wait forever.
#[test]
fn a_spawn_the_hub_stopped_before_running_is_joined_as_killed() {
    let (done, joined) = std::sync::mpsc::channel();
    thread::spawn(move || {
        // Queued on the hub's own remote queue; the main greenlet returns
        // before the hub looks at it.
        let handle = rt::run(|| rt::Handle::current().spawn(|| 7).expect("the hub runs"));
        done.send(handle.join()).expect("the test waits");
    });
    let outcome = joined.recv_timeout(Duration::from_secs(30)).expect("the join ends");
    match outcome {
        Ok(value) => assert_eq!(value, 7, "if it ran, it finished"),
        Err(err) => assert!(err.is_killed(), "{err}"),
    }
}

/// Two blocking jobs submitted back to back while one pool thread is idle:
/// the second must get a thread of its own (the pool may grow), not wait
/// behind the first, which here waits for it.
#[test]
fn a_blocking_job_submitted_right_after_another_does_not_wait_behind_it() {
    let got = rt::run(|| {
        rt::blocking(|| ()); // one pool thread, idle from now on
        let (tx, rx) = std::sync::mpsc::channel::<u32>();
        // Both greenlets submit in the same turn of the hub, microseconds
        // apart, before the idle thread has woken for the first job.
        let waits = spawn(move || rt::blocking(move || rx.recv_timeout(Duration::from_secs(5))));
        let sends = spawn(move || rt::blocking(move || tx.send(7)));
        let got = waits.join().expect("the receiver ran");
        let _ = sends.join().expect("the sender ran"); // fails if the receiver gave up
        got
    });
    assert_eq!(got, Ok(7), "the second job ran only after the first gave up waiting for it");
}

/// Runs `f` when dropped (here: cleanup that waits, run by a killed greenlet).
struct OnDrop<F: FnMut()>(F);

impl<F: FnMut()> Drop for OnDrop<F> {
    fn drop(&mut self) {
        (self.0)();
    }
}

/// A hub that stops leaks the greenlets whose cleanup still waits after the
/// grace. Those that wait on a `Mutex`, a channel or a `Semaphore` shared
/// with other threads must take nothing with them: the lock, the value and
/// the permit released later go to whoever comes next.
#[test]
fn a_greenlet_leaked_while_waiting_takes_no_lock_value_or_permit_with_it() {
    let mutex = Arc::new(Mutex::new(0u32));
    let semaphore = Arc::new(Semaphore::new(0));
    let (tx, rx) = channel::unbounded::<u32>();
    let next = rx.clone();
    let held = mutex.try_lock().expect("unlocked");
    let hub = {
        let (mutex, semaphore) = (mutex.clone(), semaphore.clone());
        thread::spawn(move || {
            rt::Builder::new().shutdown_grace(ms(50)).run(move || {
                spawn(move || {
                    let _cleanup = OnDrop(move || drop(mutex.lock()));
                    sleep(Duration::from_secs(3600));
                });
                spawn(move || {
                    let _cleanup = OnDrop(move || {
                        let _ = rx.recv();
                    });
                    sleep(Duration::from_secs(3600));
                });
                spawn(move || {
                    let _cleanup = OnDrop(move || semaphore.acquire().forget());
                    sleep(Duration::from_secs(3600));
                });
                yield_now(); // each is asleep; returning kills them
            });
        })
    };
    hub.join().expect("the hub stops, leaking the three");
    drop(held);
    assert!(mutex.try_lock().is_some(), "the lock went to a leaked greenlet");
    tx.send(5).expect("a receiver is alive");
    assert_eq!(next.try_recv().ok(), Some(5), "the value went to a leaked greenlet");
    semaphore.add_permits(1);
    assert!(semaphore.try_acquire().is_some(), "the permit went to a leaked greenlet");
}
