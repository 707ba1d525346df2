//! Cross-hub stress: the `sync` types shared by greenlets of 2 to 4 hubs and
//! by plain threads, with busy polling off, short and long, checked for lost
//! wake-ups (a bounded wait that runs out) and lost or doubled values.
//!
//! The suite runs a few rounds of each configuration; `scripts/stress-cross-hub.sh`
//! runs many more (`CROSS_HUB_STRESS_ROUNDS`), in release.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::thread;
use std::time::Duration;

use runtime_scheduler::sync::{Condvar, Event, Mutex, Semaphore, channel};
use runtime_scheduler::{self as rt, Builder};

/// Values each producer sends, lock rounds and permit rounds per worker.
const ITEMS: u64 = 200;
const ROUNDS: usize = 100;

/// A wait longer than this is a lost wake-up.
const HANG: Duration = Duration::from_secs(60);

/// What every worker (a greenlet on a hub, or a plain thread) shares.
struct Shared {
    workers: usize,
    values: (channel::Sender<u64>, channel::Receiver<u64>),
    received: AtomicUsize,
    sum: AtomicUsize,
    counter: Mutex<usize>,
    counted: Condvar,
    semaphore: Semaphore,
    inside: AtomicUsize,
    finished: AtomicUsize,
    all_finished: Event,
}

/// One worker's part: send and receive in turns on a `bounded(1)` channel
/// (which cannot deadlock: a worker blocked in `send` has received as much as
/// it sent), take a `Semaphore` with one permit in turns, increment a counter
/// under the `Mutex` and wait on the `Condvar` until every worker has, and
/// wait on an `Event` the last one sets.
fn work(shared: &Shared, me: usize, on_hub: bool) {
    for i in 0..ITEMS {
        shared.values.0.send(me as u64 * ITEMS + i).expect("a receiver is alive");
        let value = shared.values.1.recv().expect("a sender is alive");
        shared.sum.fetch_add(value as usize, Ordering::SeqCst);
        shared.received.fetch_add(1, Ordering::SeqCst);
    }
    for _ in 0..ROUNDS {
        let permit = shared.semaphore.acquire();
        assert_eq!(shared.inside.fetch_add(1, Ordering::SeqCst), 0, "two holders of one permit");
        if me % 2 == 0 {
            if on_hub {
                rt::yield_now();
            } else {
                thread::yield_now();
            }
        }
        shared.inside.fetch_sub(1, Ordering::SeqCst);
        drop(permit);
        *shared.counter.lock() += 1;
        shared.counted.notify_all();
    }
    let mut counter = shared.counter.lock();
    while *counter < shared.workers * ROUNDS {
        counter = shared.counted.wait(counter);
    }
    drop(counter);
    if shared.finished.fetch_add(1, Ordering::SeqCst) + 1 == shared.workers {
        shared.all_finished.set();
    }
    assert!(shared.all_finished.wait_timeout(HANG), "worker {me} waited for the end in vain");
}

/// One round: `hubs` hubs with `per_hub` worker greenlets each, and
/// `threads` plain threads, with `busy_poll`.
fn round(hubs: usize, per_hub: usize, threads: usize, busy_poll: Duration) {
    let workers = hubs * per_hub + threads;
    let shared = Arc::new(Shared {
        workers,
        values: channel::bounded(1),
        received: AtomicUsize::new(0),
        sum: AtomicUsize::new(0),
        counter: Mutex::new(0),
        counted: Condvar::new(),
        semaphore: Semaphore::new(1),
        inside: AtomicUsize::new(0),
        finished: AtomicUsize::new(0),
        all_finished: Event::new(),
    });
    let (done, ended) = mpsc::channel();
    let plain: Vec<_> = (0..threads)
        .map(|t| {
            let shared = shared.clone();
            thread::spawn(move || work(&shared, hubs * per_hub + t, false))
        })
        .collect();
    let on_hubs = {
        let shared = shared.clone();
        thread::spawn(move || {
            Builder::new().hubs(hubs).busy_poll(busy_poll).run_each(move |hub| {
                let greenlets: Vec<_> = (0..per_hub)
                    .map(|g| {
                        let shared = shared.clone();
                        rt::spawn(move || work(&shared, hub * per_hub + g, true))
                    })
                    .collect();
                greenlets.into_iter().for_each(|g| g.join().expect("a worker greenlet"));
            });
            done.send(()).expect("the test waits");
        })
    };
    let config = format!("{hubs} hubs x {per_hub} greenlets, {threads} threads, busy poll {busy_poll:?}");
    ended.recv_timeout(HANG).unwrap_or_else(|_| panic!("{config}: a wake-up was lost (the hubs never finished)"));
    on_hubs.join().expect("the hubs");
    plain.into_iter().for_each(|t| t.join().expect("a worker thread"));
    let n = (workers as u64 * ITEMS) as usize;
    assert_eq!(shared.received.load(Ordering::SeqCst), n, "{config}: values lost or doubled");
    assert_eq!(shared.sum.load(Ordering::SeqCst), n * (n - 1) / 2, "{config}: values lost or doubled");
}

#[test]
fn the_sync_types_lose_no_wake_up_across_hubs_and_threads() {
    let rounds: usize = std::env::var("CROSS_HUB_STRESS_ROUNDS").ok().and_then(|n| n.parse().ok()).unwrap_or(10);
    let busy_polls = [Duration::ZERO, Duration::from_micros(50), Duration::from_micros(5000)];
    for r in 0..rounds {
        for (i, busy_poll) in busy_polls.into_iter().enumerate() {
            for hubs in 2..=4 {
                round(hubs, 2, (r + i + hubs) % 3, busy_poll);
            }
        }
        if rounds > 1 {
            eprintln!("round {} of {rounds} passed", r + 1);
        }
    }
}
