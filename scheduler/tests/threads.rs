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
    let (sent_tx, sent_rx) = std::sync::mpsc::channel();
    let thread = thread::spawn(move || {
        thread::sleep(ms(30));
        tx.send(7).unwrap(); // to whichever receiver still waits
        sent_tx.send(()).unwrap();
    });
    rt::run(move || {
        let victim = spawn(move || rx2.recv());
        yield_now();
        victim.kill();
        assert!(victim.join().unwrap_err().is_killed());
        assert_eq!(rx.recv(), Ok(7), "the value went to the receiver that was left");
    });
    sent_rx.recv().unwrap();
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
