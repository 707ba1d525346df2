//! The `hooks` feature and std's own synchronisation: `Mutex`, `Condvar`,
//! `RwLock`, `OnceLock`, `Barrier` and `mpsc` wait in the futex system call,
//! which the hooks turn into a park of the waiting greenlet only. Without
//! that, each scenario here deadlocks its hub (or stalls it while a plain
//! thread holds a lock): every test runs on its own thread under a hang
//! guard, since a blocked hub cannot time itself out.

mod util;

use std::cell::Cell;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier, Condvar, Mutex, OnceLock, RwLock, mpsc};
use std::time::Duration;

use util::{PATIENCE, guarded, ms, ticker};

/// Spawns a greenlet that sets a flag: it runs only once the caller parks.
fn runs_when_parked() -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    let set = flag.clone();
    runtime::spawn(move || set.store(true, Ordering::SeqCst));
    flag
}

#[test]
fn a_std_mutex_held_across_a_hooked_sleep_parks_only_the_greenlet_that_wants_it() {
    let order = guarded("a std lock", || {
        let lock = Rc::new(Mutex::new(Vec::new()));
        let release = Rc::new(Cell::new(None::<Arc<AtomicBool>>));
        let holder = runtime::spawn({
            let (lock, release) = (lock.clone(), release.clone());
            move || {
                let mut guard = lock.lock().unwrap();
                guard.push("holder");
                // Hooked sleeps (parks) with the lock held, until the waiter
                // has parked on it.
                while !release.take().is_some_and(|flag: Arc<AtomicBool>| flag.load(Ordering::SeqCst)) {
                    std::thread::sleep(ms(1));
                }
                guard.push("holder done");
            }
        });
        runtime::yield_now(); // the holder has the lock
        // Runs only once this greenlet parks in `lock`.
        let parked = runs_when_parked();
        release.set(Some(parked.clone()));
        lock.lock().unwrap().push("waiter");
        assert!(parked.load(Ordering::SeqCst));
        holder.join().unwrap();
        Rc::try_unwrap(lock).unwrap().into_inner().unwrap()
    });
    assert_eq!(order, ["holder", "holder done", "waiter"]);
}

#[test]
fn many_greenlets_take_turns_at_a_std_mutex_held_across_hooked_calls() {
    let total = guarded("a std lock", || {
        let lock = Rc::new(Mutex::new(0u64));
        let workers: Vec<_> = (0..20)
            .map(|_| {
                let lock = lock.clone();
                runtime::spawn(move || {
                    for _ in 0..5 {
                        let mut guard = lock.lock().unwrap();
                        let seen = *guard;
                        std::thread::sleep(Duration::from_micros(200));
                        *guard = seen + 1;
                    }
                })
            })
            .collect();
        workers.into_iter().for_each(|w| w.join().unwrap());
        Rc::try_unwrap(lock).unwrap().into_inner().unwrap()
    });
    assert_eq!(total, 100, "an increment was lost: two greenlets held the lock at once");
}

#[test]
fn two_greenlets_taking_a_std_mutex_in_a_loop_take_turns() {
    const TURNS: usize = 40;
    let log = guarded("a std lock", || {
        let lock = Rc::new(Mutex::new(Vec::new()));
        let take_turns = |lock: Rc<Mutex<Vec<&'static str>>>, name| {
            move || {
                for _ in 0..TURNS {
                    let mut guard = lock.lock().unwrap();
                    guard.push(name);
                    // The other one runs meanwhile, and waits for the lock.
                    runtime::yield_now();
                }
            }
        };
        let b = runtime::spawn(take_turns(lock.clone(), "b"));
        take_turns(lock.clone(), "a")();
        b.join().unwrap();
        Rc::try_unwrap(lock).unwrap().into_inner().unwrap()
    });
    assert_eq!(log.len(), 2 * TURNS);
    // Each release hands the lock to the greenlet waiting for it, rather than
    // the releasing one taking it back before the other ever runs.
    let first_half = &log[..TURNS];
    let turns_of_b = first_half.iter().filter(|&&name| name == "b").count();
    assert!(turns_of_b >= TURNS / 4, "b had {turns_of_b} of the first {TURNS} turns: {log:?}");
}

#[test]
fn a_std_mutex_released_between_registering_a_wake_up_and_parking_does_not_lose_it() {
    guarded("a lost wake-up", || {
        let lock = Rc::new(Mutex::new(()));
        let guard = lock.lock().unwrap();
        let waiter = runtime::spawn({
            let lock = lock.clone();
            move || drop(lock.lock().unwrap())
        });
        runtime::yield_now(); // the waiter parks in `lock`
        // The runtime's own waits do this: register a wake-up, release a
        // lock, park. The release must not hand the thread to the waiter
        // (a yield before the park would make the registered wake-up stale).
        let current = runtime_scheduler::foreign::Current::get().unwrap();
        let waker = current.waker();
        let woken = Arc::new(AtomicBool::new(false));
        let thread = std::thread::spawn({
            let woken = woken.clone();
            move || {
                std::thread::sleep(ms(20));
                woken.store(true, Ordering::SeqCst);
                waker.wake();
            }
        });
        drop(guard);
        current.park("the test's wake-up", None).unwrap();
        assert!(woken.load(Ordering::SeqCst));
        waiter.join().unwrap();
        thread.join().unwrap();
    });
}

#[test]
fn a_condvar_shared_between_greenlets_wakes_the_waiter() {
    let got = guarded("a std lock", || {
        let pair = Rc::new((Mutex::new(None), Condvar::new()));
        let producer = runtime::spawn({
            let pair = pair.clone();
            move || {
                std::thread::sleep(ms(20));
                *pair.0.lock().unwrap() = Some(42);
                pair.1.notify_one();
            }
        });
        let (ticks, _ticker) = ticker();
        let before = ticks.get();
        let guard = pair.1.wait_while(pair.0.lock().unwrap(), |value| value.is_none()).unwrap();
        assert!(ticks.get() > before, "the hub stopped while the greenlet waited on the condvar");
        let got = guard.unwrap();
        drop(guard);
        producer.join().unwrap();
        got
    });
    assert_eq!(got, 42);
}

#[test]
fn a_condvar_wait_timeout_in_a_greenlet_times_out_and_the_hub_runs_meanwhile() {
    guarded("a std lock", || {
        let pair = (Mutex::new(false), Condvar::new());
        let (ticks, _ticker) = ticker();
        let before = ticks.get();
        let (guard, result) = pair.1.wait_timeout(pair.0.lock().unwrap(), ms(30)).unwrap();
        assert!(result.timed_out(), "nobody notified");
        assert!(!*guard);
        assert!(ticks.get() > before, "the hub stopped during the timed wait");
    });
}

#[test]
fn notify_all_wakes_every_greenlet_waiting_on_a_condvar() {
    let woken = guarded("a std lock", || {
        let pair = Rc::new((Mutex::new(false), Condvar::new()));
        let waiters: Vec<_> = (0..10)
            .map(|_| {
                let pair = pair.clone();
                runtime::spawn(move || drop(pair.1.wait_while(pair.0.lock().unwrap(), |go| !*go).unwrap()))
            })
            .collect();
        runtime::sleep(ms(10)); // they all wait
        *pair.0.lock().unwrap() = true;
        pair.1.notify_all();
        waiters.into_iter().map(|w| w.join()).filter(Result::is_ok).count()
    });
    assert_eq!(woken, 10);
}

#[test]
fn a_std_rwlock_write_held_across_a_hooked_call_parks_the_readers() {
    let seen = guarded("a std lock", || {
        let lock = Rc::new(RwLock::new(0));
        let writer = runtime::spawn({
            let lock = lock.clone();
            move || {
                let mut guard = lock.write().unwrap();
                std::thread::sleep(ms(20));
                *guard = 7;
            }
        });
        runtime::sleep(ms(2));
        let readers: Vec<_> = (0..3)
            .map(|_| {
                let lock = lock.clone();
                runtime::spawn(move || *lock.read().unwrap())
            })
            .collect();
        writer.join().unwrap();
        readers.into_iter().map(|r| r.join().unwrap()).collect::<Vec<_>>()
    });
    assert_eq!(seen, [7, 7, 7]);
}

#[test]
fn a_oncelock_initialised_by_one_greenlet_is_awaited_by_the_others() {
    let (values, runs) = guarded("a std lock", || {
        let cell: Rc<OnceLock<u32>> = Rc::new(OnceLock::new());
        let runs = Rc::new(Cell::new(0));
        let greenlets: Vec<_> = (0..4)
            .map(|i| {
                let (cell, runs) = (cell.clone(), runs.clone());
                runtime::spawn(move || {
                    *cell.get_or_init(|| {
                        runs.set(runs.get() + 1);
                        std::thread::sleep(ms(20)); // the others wait meanwhile
                        100 + i
                    })
                })
            })
            .collect();
        let values: Vec<u32> = greenlets.into_iter().map(|g| g.join().unwrap()).collect();
        (values, runs.get())
    });
    assert_eq!(runs, 1);
    assert!(values.iter().all(|v| *v == values[0]), "{values:?}");
}

#[test]
fn a_std_barrier_releases_greenlets_of_one_hub_together() {
    let leaders = guarded("a std lock", || {
        let barrier = Rc::new(Barrier::new(3));
        let greenlets: Vec<_> = (0..3)
            .map(|_| {
                let barrier = barrier.clone();
                runtime::spawn(move || barrier.wait().is_leader())
            })
            .collect();
        greenlets.into_iter().map(|g| g.join().unwrap()).filter(|leader| *leader).count()
    });
    assert_eq!(leaders, 1);
}

#[test]
fn std_mpsc_from_a_plain_thread_parks_only_the_receiving_greenlet() {
    let received = guarded("a std lock", || {
        let (tx, rx) = mpsc::channel();
        let (bounded_tx, bounded_rx) = mpsc::sync_channel(1);
        let thread = std::thread::spawn(move || {
            for i in 0..5 {
                std::thread::sleep(ms(2));
                tx.send(i).unwrap();
            }
            drop(tx);
            // Waits for room in the kernel while the greenlet is not reading.
            for i in 0..3 {
                bounded_tx.send(i).unwrap();
            }
        });
        let (ticks, _ticker) = ticker();
        let before = ticks.get();
        let first: Vec<i32> = rx.iter().collect();
        assert!(ticks.get() > before, "the hub stopped while the greenlet waited for a message");
        std::thread::sleep(ms(10)); // the thread fills the channel meanwhile
        let second: Vec<i32> = bounded_rx.iter().collect();
        (first, second, thread)
    });
    received.2.join().unwrap();
    assert_eq!((received.0, received.1), (vec![0, 1, 2, 3, 4], vec![0, 1, 2]));
}

#[test]
fn std_mpsc_between_greenlets_of_two_hubs() {
    let (tx, rx) = mpsc::sync_channel(0); // a rendezvous: both sides wait
    let receiver = std::thread::spawn(move || guarded("a std lock", move || rx.iter().take(3).collect::<Vec<u32>>()));
    guarded("a std lock", move || {
        for i in 0..3 {
            tx.send(i).unwrap();
        }
    });
    assert_eq!(receiver.join().unwrap(), [0, 1, 2]);
}

#[test]
fn a_std_mutex_and_condvar_shared_by_two_hubs_and_two_threads_lose_no_wake_up() {
    // Greenlets of two hubs and two plain threads take one std lock in turns
    // and hand a token round through a condvar: every wake-up crosses the
    // futex table in some direction (greenlet to greenlet on one hub, hub to
    // hub, thread to greenlet, greenlet to thread). A lost one hangs.
    const PARTIES: usize = 2 * 3 + 2;
    const ROUNDS: usize = 200;
    let shared = Arc::new((Mutex::new((0usize, 0usize)), Condvar::new()));
    let take_turns = |shared: Arc<(Mutex<(usize, usize)>, Condvar)>, me: usize| {
        let (lock, turn) = &*shared;
        for _ in 0..ROUNDS {
            let mut state = lock.lock().unwrap();
            while state.0 % PARTIES != me {
                state = turn.wait(state).unwrap();
            }
            state.0 += 1;
            state.1 += 1;
            turn.notify_all();
        }
    };
    let mut threads = Vec::new();
    for hub in 0..2 {
        let shared = shared.clone();
        threads.push(std::thread::spawn(move || {
            guarded("a std lock", move || {
                let greenlets: Vec<_> = (0..3)
                    .map(|i| {
                        let shared = shared.clone();
                        runtime::spawn(move || take_turns(shared, hub * 3 + i))
                    })
                    .collect();
                for greenlet in greenlets {
                    greenlet.join().unwrap();
                }
            })
        }));
    }
    for me in 6..PARTIES {
        let shared = shared.clone();
        threads.push(std::thread::spawn(move || take_turns(shared, me)));
    }
    for thread in threads {
        thread.join().unwrap();
    }
    assert_eq!(*shared.0.lock().unwrap(), (PARTIES * ROUNDS, PARTIES * ROUNDS));
}

#[test]
fn plain_threads_taking_turns_at_a_std_condvar_lose_no_wake_up() {
    // Only plain threads, waiting in the kernel: a wake goes there only
    // while the futex table counts a thread waiting on the word's bucket.
    const THREADS: usize = 4;
    const ROUNDS: usize = 2_000;
    let shared = Arc::new((Mutex::new(0usize), Condvar::new()));
    let threads: Vec<_> = (0..THREADS)
        .map(|me| {
            let shared = shared.clone();
            std::thread::spawn(move || {
                let (lock, turn) = &*shared;
                for _ in 0..ROUNDS {
                    let mut next = lock.lock().unwrap();
                    while *next % THREADS != me {
                        next = turn.wait(next).unwrap();
                    }
                    *next += 1;
                    turn.notify_all();
                }
            })
        })
        .collect();
    let (done, finished) = mpsc::channel();
    std::thread::spawn(move || {
        for thread in threads {
            thread.join().unwrap();
        }
        let _ = done.send(());
    });
    finished.recv_timeout(PATIENCE).expect("a thread was never woken");
    assert_eq!(*shared.0.lock().unwrap(), THREADS * ROUNDS);
}

#[test]
fn a_thread_requeued_to_another_futex_is_woken_there() {
    // FUTEX_CMP_REQUEUE moves a kernel waiter from one word to another,
    // where the table never counted it: a wake of the second word must
    // still reach the kernel.
    fn futex(
        word: &std::sync::atomic::AtomicU32,
        op: i32,
        val: u32,
        word2: &std::sync::atomic::AtomicU32,
        val3: u32,
    ) -> i64 {
        // SAFETY: futex(2) on two live, aligned words; no timeout.
        unsafe {
            libc::syscall(
                libc::SYS_futex,
                word.as_ptr(),
                op | libc::FUTEX_PRIVATE_FLAG,
                val,
                1usize, // FUTEX_CMP_REQUEUE: at most one requeued (in the timeout's place)
                word2.as_ptr(),
                val3,
            )
        }
    }
    use std::sync::atomic::AtomicU32;
    let words: &'static [AtomicU32; 2] = Box::leak(Box::new([AtomicU32::new(0), AtomicU32::new(0)]));
    let (from, to) = (&words[0], &words[1]);
    let waiter = std::thread::spawn(move || {
        // SAFETY: a plain wait on a live, aligned word, until woken.
        let result =
            unsafe { libc::syscall(libc::SYS_futex, from.as_ptr(), libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG, 0, 0) };
        assert_eq!(result, 0, "woken, not failed: {}", std::io::Error::last_os_error());
    });
    // Requeue until the waiter was in the kernel to be moved.
    let deadline = std::time::Instant::now() + PATIENCE;
    while futex(from, libc::FUTEX_CMP_REQUEUE, 0, to, 0) < 1 {
        assert!(std::time::Instant::now() < deadline, "the thread never waited");
        std::thread::sleep(ms(1));
    }
    to.store(1, Ordering::SeqCst);
    assert_eq!(futex(to, libc::FUTEX_WAKE, 1, to, 0), 1, "the requeued thread was not woken");
    waiter.join().unwrap();
}

#[test]
fn a_plain_thread_holding_a_std_mutex_stalls_only_the_greenlet_that_wants_it() {
    guarded("a std lock", || {
        let lock = Arc::new(Mutex::new(0));
        let held = Arc::new(AtomicBool::new(false));
        let release = Arc::new(std::sync::OnceLock::<Arc<AtomicBool>>::new());
        let thread = std::thread::spawn({
            let (lock, held, release) = (lock.clone(), held.clone(), release.clone());
            move || {
                let mut guard = lock.lock().unwrap();
                held.store(true, Ordering::SeqCst);
                // At least 100 ms, and until the waiting greenlet's hub ran
                // another greenlet.
                std::thread::sleep(ms(100));
                while !release.get().is_some_and(|flag| flag.load(Ordering::SeqCst)) {
                    std::thread::sleep(ms(1));
                }
                *guard = 1;
            }
        });
        util::wait_until("the thread holds the lock", || held.load(Ordering::SeqCst));
        let parked = runs_when_parked();
        release.set(parked.clone()).unwrap();
        assert_eq!(*lock.lock().unwrap(), 1, "got the lock before the thread released it");
        assert!(parked.load(Ordering::SeqCst));
        thread.join().unwrap();
    });
}

#[test]
fn the_only_greenlet_waiting_for_a_std_lock_a_thread_holds_is_not_a_deadlock() {
    // Nothing but the thread's release can wake the hub: no other greenlet,
    // timer or I/O. Strict deadlock detection would report one at once if
    // the hub did not count the futex wait as one that another thread ends.
    let lock = Arc::new(Mutex::new(0));
    let (held, is_held) = mpsc::channel();
    let thread = std::thread::spawn({
        let lock = lock.clone();
        move || {
            let mut guard = lock.lock().unwrap();
            held.send(()).unwrap();
            std::thread::sleep(ms(100));
            *guard = 1;
        }
    });
    is_held.recv().unwrap();
    let (done, outcome) = mpsc::channel();
    std::thread::spawn(move || {
        let got = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            runtime::Builder::new().strict_deadlocks(true).run(move || {
                let value = *lock.lock().unwrap();
                // A deadlock report would be raised here (it cannot be raised
                // inside the hooked wait).
                runtime::yield_now();
                value
            })
        }));
        let _ = done.send(got.map_err(|_| "the hub reported a deadlock"));
    });
    assert_eq!(outcome.recv_timeout(PATIENCE).expect("the hub hung"), Ok(1));
    thread.join().unwrap();
}

#[test]
fn a_plain_thread_waiting_for_a_lock_a_greenlet_holds_gets_it() {
    guarded("a std lock", || {
        let lock = Arc::new(Mutex::new(0));
        let guard = lock.lock().unwrap();
        let thread = std::thread::spawn({
            let lock = lock.clone();
            move || *lock.lock().unwrap()
        });
        std::thread::sleep(ms(20)); // hooked; the thread waits in the kernel meanwhile
        drop(guard);
        let (done, finished) = mpsc::channel();
        std::thread::spawn(move || done.send(thread.join().unwrap()));
        let value = runtime::blocking(move || finished.recv_timeout(PATIENCE));
        assert_eq!(value, Ok(0), "the thread was not woken when the greenlet unlocked");
    });
}

#[test]
fn a_condvar_wakes_a_greenlet_of_another_hub() {
    let pair = Arc::new((Mutex::new(false), Condvar::new()));
    let waiting = Arc::new(AtomicBool::new(false));
    let other = std::thread::spawn({
        let (pair, waiting) = (pair.clone(), waiting.clone());
        move || {
            guarded("a std lock", move || {
                let (ticks, _ticker) = ticker();
                let guard = pair.0.lock().unwrap();
                waiting.store(true, Ordering::SeqCst);
                let before = ticks.get();
                let guard = pair.1.wait_while(guard, |go| !*go).unwrap();
                assert!(ticks.get() > before, "the hub stopped while its greenlet waited");
                *guard
            })
        }
    });
    guarded("a std lock", move || {
        util::wait_until("the other hub's greenlet waits", || waiting.load(Ordering::SeqCst));
        *pair.0.lock().unwrap() = true;
        pair.1.notify_one();
    });
    assert!(other.join().unwrap());
}

/// Runs the ignored test `name` of this binary in a child process; its
/// stderr.
fn stderr_of_scenario(name: &str) -> String {
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--ignored", "--exact", name, "--nocapture", "--test-threads=1"])
        .output()
        .unwrap();
    assert!(output.status.success(), "the scenario failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
#[ignore = "a scenario that a_greenlet_stuck_in_thread_park_gets_a_warning_naming_mpsc runs in a child process"]
fn scenario_mpsc_between_greenlets_of_one_thread() {
    runtime::run(|| {
        let (tx, rx) = mpsc::sync_channel(1);
        let sender = runtime::spawn(move || {
            tx.send(0).unwrap();
            // The channel is full: this waits for room, which a receiver of
            // the same thread never signals (std wakes only other threads'
            // waiters); the receiver going away ends it.
            tx.send(1).is_err()
        });
        runtime::sleep(Duration::from_millis(2300)); // the sender waits meanwhile
        assert_eq!(rx.recv(), Ok(0));
        drop(rx);
        assert!(sender.join().unwrap());
    });
}

#[test]
fn a_greenlet_stuck_in_thread_park_gets_a_warning_naming_mpsc() {
    let stderr = stderr_of_scenario("scenario_mpsc_between_greenlets_of_one_thread");
    assert!(stderr.contains("waited in std::thread::park for 2 s"), "{stderr}");
    assert!(stderr.contains("std::sync::mpsc"), "{stderr}");
}

#[test]
#[ignore = "a scenario that a_panic_hook_waiting_for_a_lock_does_not_let_another_greenlet_panic runs in a child process"]
fn scenario_panic_hook_waits_for_a_lock_another_thread_holds() {
    static HOOK_LOCK: Mutex<()> = Mutex::new(());
    // A panic hook that takes a lock, as std's own does for backtraces.
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let _guard = HOOK_LOCK.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        previous(info);
    }));
    let held = Arc::new(AtomicBool::new(false));
    let holder = std::thread::spawn({
        let held = held.clone();
        move || {
            let _guard = HOOK_LOCK.lock().unwrap();
            held.store(true, Ordering::SeqCst);
            std::thread::sleep(ms(200));
        }
    });
    while !held.load(Ordering::SeqCst) {
        std::thread::yield_now();
    }
    let outcomes = runtime::run(|| {
        let first = runtime::spawn(|| panic!("first"));
        let second = runtime::spawn(|| panic!("second"));
        [first.join().is_err(), second.join().is_err()]
    });
    assert_eq!(outcomes, [true, true]);
    holder.join().unwrap();
}

#[test]
fn a_panic_hook_waiting_for_a_lock_does_not_let_another_greenlet_panic() {
    // Parked in the panic hook, the first greenlet would let the second
    // panic while the thread is still in the hook: the process aborts.
    stderr_of_scenario("scenario_panic_hook_waits_for_a_lock_another_thread_holds");
}
