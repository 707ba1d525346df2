//! The cross-hub scenarios, shared by the criterion benchmark
//! (`benches/cross_hub.rs`) and the ratio report (`examples/cross_hub.rs`).
//! (Kept apart from `mod.rs`, whose scenarios run on one hub and one core.)
//!
//! Each scenario comes twice: hubs started by [`Builder::run_each`], one per
//! thread, talking through `bounded(1)` channels, and tokio `current_thread`
//! runtimes, one per thread, talking through `tokio::sync::mpsc::channel(1)`.
//! The clock starts after a first exchange that has gone all the way round,
//! so thread and runtime start-up are not timed; each function returns the
//! time of `rounds` exchanges.

use std::hint::black_box;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use runtime_scheduler::sync::{Event, Semaphore, channel};
use runtime_scheduler::{Builder, blocking, spawn};

/// How the tokio side's runtimes are built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tokio {
    /// No driver: an idle runtime parks on a condition variable, the cheapest
    /// cross-thread wake tokio has.
    Bare,
    /// With the I/O driver: an idle runtime parks in `epoll_wait` and is
    /// woken through an eventfd, as a hub always is.
    Io,
}

impl Tokio {
    fn runtime(self) -> tokio::runtime::Runtime {
        let mut builder = tokio::runtime::Builder::new_current_thread();
        if self == Tokio::Io {
            builder.enable_io();
        }
        builder.build().expect("a tokio current-thread runtime")
    }
}

/// A ring of `hubs` hubs: hub `i` receives a token from hub `i - 1` and
/// passes it on to hub `i + 1` (hub 0 closes the ring); `rounds` times round
/// the ring, so `rounds * hubs` hops. With two hubs this is a ping-pong:
/// one `bounded(1)` channel each way. `pin` pins hub `i` to core `i` (modulo
/// the cores the process may use); `busy_poll` is the hubs'
/// [`Builder::busy_poll`] (`None`: the default).
pub fn ours_ring(hubs: usize, rounds: u64, pin: bool, busy_poll: Option<Duration>) -> Duration {
    assert!(hubs >= 2, "a ring has at least two hubs");
    // Channel `i` leads into hub `i`.
    let (senders, receivers): (Vec<_>, Vec<_>) = (0..hubs).map(|_| channel::bounded::<u64>(1)).unzip();
    let mut builder = Builder::new().hubs(hubs).pin_cores(pin);
    if let Some(limit) = busy_poll {
        builder = builder.busy_poll(limit);
    }
    let times = builder.run_each(move |i| {
        let (next, input) = (&senders[(i + 1) % hubs], &receivers[i]);
        if i == 0 {
            // One round untimed: every hub is up and has waited once.
            next.send(0).expect("the ring is whole");
            input.recv().expect("the token comes back");
            let start = Instant::now();
            for round in 1..=rounds {
                next.send(round).expect("the ring is whole");
                let token = input.recv().expect("the token comes back");
                assert_eq!(black_box(token), round);
            }
            start.elapsed()
        } else {
            for _ in 0..=rounds {
                let token = input.recv().expect("the token arrives");
                next.send(token).expect("the ring is whole");
            }
            Duration::ZERO
        }
    });
    times[0]
}

/// The same ring on `threads` threads, each running a tokio
/// `current_thread` runtime, passing the token through
/// `tokio::sync::mpsc::channel(1)`; `pin` pins thread `i` as `ours_ring`
/// pins hub `i`.
pub fn tokio_ring(threads: usize, rounds: u64, pin: bool, kind: Tokio) -> Duration {
    assert!(threads >= 2, "a ring has at least two threads");
    let cores = Arc::new(allowed_cores());
    let (mut senders, mut receivers): (Vec<_>, Vec<_>) =
        (0..threads).map(|_| tokio::sync::mpsc::channel::<u64>(1)).map(|(tx, rx)| (Some(tx), Some(rx))).unzip();
    let workers: Vec<_> = (0..threads)
        .map(|i| {
            let next = senders[(i + 1) % threads].take().expect("each sender once");
            let mut input = receivers[i].take().expect("each receiver once");
            let cores = cores.clone();
            thread::spawn(move || {
                if pin {
                    pin_to(cores[i % cores.len()]);
                }
                let rt = kind.runtime();
                rt.block_on(async move {
                    if i == 0 {
                        next.send(0).await.expect("the ring is whole");
                        input.recv().await.expect("the token comes back");
                        let start = Instant::now();
                        for round in 1..=rounds {
                            next.send(round).await.expect("the ring is whole");
                            let token = input.recv().await.expect("the token comes back");
                            assert_eq!(black_box(token), round);
                        }
                        start.elapsed()
                    } else {
                        for _ in 0..=rounds {
                            let token = input.recv().await.expect("the token arrives");
                            next.send(token).await.expect("the ring is whole");
                        }
                        Duration::ZERO
                    }
                })
            })
        })
        .collect();
    let times: Vec<Duration> = workers.into_iter().map(|worker| worker.join().expect("a ring thread")).collect();
    times[0]
}

/// The hub counts of the sweep (on 2 cores, 4 and 8 oversubscribe them).
pub const SWEEP_HUBS: [usize; 4] = [1, 2, 4, 8];

/// The ping-pong pairs of the sweep: enough that every hub of the largest
/// count has several.
pub const SWEEP_PAIRS: usize = 64;

/// Where the two ends of a sweep's ping-pong pair run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pairs {
    /// Both on hub `p % hubs`: independent work spread over the hubs, as a
    /// server's connections are.
    Local,
    /// The pinger on hub `p % hubs`, the ponger on the next hub: with more
    /// than one hub, every exchange crosses threads.
    Crossing,
}

/// Ping-pong pairs spread over `hubs` hubs, placed as `placement` says
/// (with one hub, every pair is local either way). Each pair exchanges
/// `rounds` round trips through two `bounded(1)` channels.
/// Returns the time from the moment every hub is ready until the last pair
/// is done: `time / (pairs * rounds)` is the cost of one round trip with the
/// whole workload spread over `hubs` hubs (a throughput figure; more hubs than
/// cores oversubscribes them).
pub fn ours_pairs(hubs: usize, placement: Pairs, pairs: usize, rounds: u64, pin: bool) -> Duration {
    type Ends = (channel::Sender<u64>, channel::Receiver<u64>);
    // Per hub, the ends it runs: (is the pinger, its sender, its receiver).
    let mut ends: Vec<Vec<(bool, Ends)>> = (0..hubs).map(|_| Vec::new()).collect();
    for pair in 0..pairs {
        let (ping_tx, ping_rx) = channel::bounded::<u64>(1);
        let (pong_tx, pong_rx) = channel::bounded::<u64>(1);
        ends[pair % hubs].push((true, (ping_tx, pong_rx)));
        let ponger = pair + usize::from(placement == Pairs::Crossing);
        ends[ponger % hubs].push((false, (pong_tx, ping_rx)));
    }
    let ends: Vec<std::sync::Mutex<Vec<(bool, Ends)>>> = ends.into_iter().map(std::sync::Mutex::new).collect();
    let gate = Arc::new(Gate::new(hubs));
    let times = Builder::new().hubs(hubs).pin_cores(pin).run_each(move |i| {
        let mine = std::mem::take(&mut *ends[i].lock().expect("not poisoned"));
        let players: Vec<_> = mine
            .into_iter()
            .map(|(pinger, (tx, rx))| {
                let gate = gate.clone();
                spawn(move || {
                    gate.wait();
                    for round in 0..rounds {
                        if pinger {
                            tx.send(round).expect("the ponger is there");
                            assert_eq!(black_box(rx.recv().expect("the pong")), round);
                        } else {
                            let ball = rx.recv().expect("the ping");
                            tx.send(ball).expect("the pinger is there");
                        }
                    }
                })
            })
            .collect();
        gate.time(i, || players.into_iter().for_each(|player| player.join().expect("a player")))
    });
    times[0]
}

/// The same pairs as [`ours_pairs`] as tasks of one tokio `multi_thread`
/// runtime with `workers` worker threads (tokio places and steals them
/// itself, so there is no placement to choose), through `tokio::sync::mpsc::channel(1)`. `pin` is not applied:
/// tokio's workers are its own.
pub fn tokio_pairs(workers: usize, pairs: usize, rounds: u64) -> Duration {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .build()
        .expect("a tokio multi-thread runtime");
    rt.block_on(async move {
        // Every player is ready before the clock starts, and none starts
        // before it: `block_on`'s thread is not a worker, and a release
        // through a barrier let the workers finish before it read the clock.
        let ready = Arc::new(tokio::sync::Barrier::new(2 * pairs + 1));
        let go = Arc::new(tokio::sync::Semaphore::new(0));
        let start = |ready: &Arc<tokio::sync::Barrier>, go: &Arc<tokio::sync::Semaphore>| {
            let (ready, go) = (ready.clone(), go.clone());
            async move {
                ready.wait().await;
                go.acquire().await.expect("never closed").forget();
            }
        };
        let mut players = Vec::with_capacity(2 * pairs);
        for _ in 0..pairs {
            let (ping_tx, mut ping_rx) = tokio::sync::mpsc::channel::<u64>(1);
            let (pong_tx, mut pong_rx) = tokio::sync::mpsc::channel::<u64>(1);
            let started = start(&ready, &go);
            players.push(tokio::spawn(async move {
                started.await;
                for round in 0..rounds {
                    ping_tx.send(round).await.expect("the ponger is there");
                    assert_eq!(black_box(pong_rx.recv().await.expect("the pong")), round);
                }
            }));
            let started = start(&ready, &go);
            players.push(tokio::spawn(async move {
                started.await;
                for _ in 0..rounds {
                    let ball = ping_rx.recv().await.expect("the ping");
                    pong_tx.send(ball).await.expect("the pinger is there");
                }
            }));
        }
        ready.wait().await;
        let start = Instant::now();
        go.add_permits(2 * pairs);
        for player in players {
            player.await.expect("a player");
        }
        start.elapsed()
    })
}

/// Greenlets per hub calling [`blocking`] in `ours_blocking`.
pub const BLOCKING_CALLERS: usize = 8;

/// `hubs` hubs share one blocking pool (as the hubs of one `run_each` do);
/// each runs [`BLOCKING_CALLERS`] greenlets that call `blocking` with an
/// empty job `calls` times each, one call after another. Returns the time
/// from the moment every hub is ready until the last call returns, so
/// `time / (hubs * BLOCKING_CALLERS * calls)` is the pool's cost per call
/// with that many hubs using it at once.
pub fn ours_blocking(hubs: usize, calls: u64, pin: bool) -> Duration {
    let gate = Arc::new(Gate::new(hubs));
    let times = Builder::new().hubs(hubs).pin_cores(pin).run_each(move |i| {
        let callers: Vec<_> = (0..BLOCKING_CALLERS)
            .map(|_| {
                let gate = gate.clone();
                spawn(move || {
                    gate.wait();
                    for call in 0..calls {
                        assert_eq!(blocking(move || black_box(call)), call);
                    }
                })
            })
            .collect();
        gate.time(i, || callers.into_iter().for_each(|caller| caller.join().expect("a caller")))
    });
    times[0]
}

/// Starts and stops the clock of a run over several hubs, so that hub and
/// greenlet start-up are not timed: each hub's greenlets wait on it before
/// their work; hub 0 starts the clock once every hub is ready and releases
/// them, and stops it once every hub's greenlets are done.
struct Gate {
    hubs: usize,
    ready: Semaphore,
    go: Event,
    done: Semaphore,
}

impl Gate {
    fn new(hubs: usize) -> Gate {
        Gate { hubs, ready: Semaphore::new(0), go: Event::new(), done: Semaphore::new(0) }
    }

    /// In a greenlet of the run: waits for the release.
    fn wait(&self) {
        self.go.wait();
    }

    /// On hub `i`, its greenlets spawned (and waiting): says the hub is
    /// ready, runs `finish` (which joins them) and says it is done. Returns
    /// the time from the release until every hub was done on hub 0, zero on
    /// the others.
    fn time(&self, i: usize, finish: impl FnOnce()) -> Duration {
        self.ready.add_permits(1);
        let start = (i == 0).then(|| {
            (0..self.hubs).for_each(|_| self.ready.acquire().forget());
            let start = Instant::now();
            self.go.set();
            start
        });
        finish();
        self.done.add_permits(1);
        start.map_or(Duration::ZERO, |start| {
            (0..self.hubs).for_each(|_| self.done.acquire().forget());
            start.elapsed()
        })
    }
}

/// The cores this process may run on.
fn allowed_cores() -> Vec<usize> {
    // SAFETY: `cpu_set_t` is a plain bit array, valid when all zeros.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is an initialised `cpu_set_t` the kernel writes into, and
    // its size is passed with it; 0 names the calling thread.
    let result = unsafe { libc::sched_getaffinity(0, size_of::<libc::cpu_set_t>(), &mut set) };
    assert_eq!(result, 0, "sched_getaffinity: {}", std::io::Error::last_os_error());
    // SAFETY: every `cpu` is below `CPU_SETSIZE`, so the bit is inside `set`.
    (0..libc::CPU_SETSIZE as usize).filter(|&cpu| unsafe { libc::CPU_ISSET(cpu, &set) }).collect()
}

/// Pins the calling thread to `core`.
fn pin_to(core: usize) {
    // SAFETY: `cpu_set_t` is a plain bit array, valid when all zeros.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `core` came from `allowed_cores`, so it is below `CPU_SETSIZE`.
    unsafe { libc::CPU_SET(core, &mut set) };
    // SAFETY: `set` is an initialised `cpu_set_t` that lives across the call,
    // and its size is passed with it; 0 names the calling thread.
    let result = unsafe { libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set) };
    assert_eq!(result, 0, "sched_setaffinity: {}", std::io::Error::last_os_error());
}
