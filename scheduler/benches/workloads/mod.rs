//! The measured scenarios, shared by the criterion benchmark
//! (`benches/hub.rs`) and the ratio report (`examples/hub_ratios.rs`) so that
//! both time exactly the same code.
//!
//! Every scenario comes twice: on the hub (`ours_*`) and on tokio's
//! current-thread runtime (`tokio_*`). Each function runs `iters` operations
//! and returns only the time they took: the hub is started by
//! [`runtime_scheduler::run`] and the clock starts inside it, and the tokio
//! runtime is built once by the caller and reused.

use std::hint::black_box;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use runtime_scheduler::sync::{Event, Semaphore, channel};
use runtime_scheduler::{run, sleep, spawn, yield_now};
use tokio::runtime::Runtime;

/// Sleepers in one run of the timer scenario.
pub const TIMERS: usize = 100_000;

/// The latest sleeper deadline of the timer scenario, in milliseconds.
pub const MAX_DEADLINE_MS: u64 = 100;

/// The seed of the timer deadlines, so that every run sleeps the same.
const SEED: u64 = 0x5eed_0f71_3e25;

/// A tokio current-thread runtime with its timer enabled (needed by the timer
/// scenario only; the others never touch it).
pub fn tokio_runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread().enable_time().build().expect("a tokio current-thread runtime")
}

/// A tokio current-thread runtime without any driver: the cheapest tokio
/// configuration for scenarios that need no timer.
pub fn tokio_runtime_bare() -> Runtime {
    tokio::runtime::Builder::new_current_thread().build().expect("a tokio current-thread runtime")
}

/// `spawn_join`: spawn an empty greenlet and join it, `iters` times, from the
/// root greenlet.
pub fn ours_spawn_join(iters: u64) -> Duration {
    run(move || {
        let start = Instant::now();
        for _ in 0..iters {
            spawn(|| ()).join().expect("an empty greenlet finishes");
        }
        start.elapsed()
    })
}

/// `spawn_join`: `tokio::spawn(async {}).await`, `iters` times.
pub fn tokio_spawn_join(rt: &Runtime, iters: u64) -> Duration {
    rt.block_on(async move {
        let start = Instant::now();
        for _ in 0..iters {
            tokio::spawn(async {}).await.expect("an empty task finishes");
        }
        start.elapsed()
    })
}

/// `yield_pingpong`: two greenlets alternate through `yield_now`, `iters`
/// yields in all (the first does the odd one out).
pub fn ours_yield_pingpong(iters: u64) -> Duration {
    run(move || {
        let start = Instant::now();
        let a = spawn(move || {
            for _ in 0..iters.div_ceil(2) {
                yield_now();
            }
        });
        let b = spawn(move || {
            for _ in 0..iters / 2 {
                yield_now();
            }
        });
        a.join().expect("yielder a");
        b.join().expect("yielder b");
        start.elapsed()
    })
}

/// `yield_pingpong`: two tokio tasks alternate through
/// `tokio::task::yield_now().await`, `iters` yields in all.
pub fn tokio_yield_pingpong(rt: &Runtime, iters: u64) -> Duration {
    rt.block_on(async move {
        let start = Instant::now();
        let a = tokio::spawn(async move {
            for _ in 0..iters.div_ceil(2) {
                tokio::task::yield_now().await;
            }
        });
        let b = tokio::spawn(async move {
            for _ in 0..iters / 2 {
                tokio::task::yield_now().await;
            }
        });
        a.await.expect("yielder a");
        b.await.expect("yielder b");
        start.elapsed()
    })
}

/// `channel_pingpong`: a greenlet sends a `u64` through a `bounded(1)`
/// channel, a second one sends it back incremented through another; `iters`
/// round trips.
pub fn ours_channel_pingpong(iters: u64) -> Duration {
    run(move || {
        let start = Instant::now();
        let (ping_tx, ping_rx) = channel::bounded::<u64>(1);
        let (pong_tx, pong_rx) = channel::bounded::<u64>(1);
        let pinger = spawn(move || {
            for i in 0..iters {
                ping_tx.send(i).expect("the ponger is alive");
                let back = pong_rx.recv().expect("the ponger answers");
                assert_eq!(black_box(back), i + 1);
            }
        });
        let ponger = spawn(move || {
            // Ends when the pinger drops its sender.
            for value in ping_rx.iter() {
                pong_tx.send(value + 1).expect("the pinger is alive");
            }
        });
        pinger.join().expect("pinger");
        ponger.join().expect("ponger");
        start.elapsed()
    })
}

/// `channel_pingpong`: the same with `tokio::sync::mpsc::channel(1)`.
pub fn tokio_channel_pingpong(rt: &Runtime, iters: u64) -> Duration {
    rt.block_on(async move {
        let start = Instant::now();
        let (ping_tx, mut ping_rx) = tokio::sync::mpsc::channel::<u64>(1);
        let (pong_tx, mut pong_rx) = tokio::sync::mpsc::channel::<u64>(1);
        let pinger = tokio::spawn(async move {
            for i in 0..iters {
                ping_tx.send(i).await.expect("the ponger is alive");
                let back = pong_rx.recv().await.expect("the ponger answers");
                assert_eq!(black_box(back), i + 1);
            }
        });
        let ponger = tokio::spawn(async move {
            while let Some(value) = ping_rx.recv().await {
                pong_tx.send(value + 1).await.expect("the pinger is alive");
            }
        });
        pinger.await.expect("pinger");
        ponger.await.expect("ponger");
        start.elapsed()
    })
}

/// `event_handoff`: two greenlets hand control back and forth through two
/// `Event`s, `iters` round trips (two hand-offs each): one sets the other's
/// event and waits on its own, which the other clears and sets back.
pub fn ours_event_handoff(iters: u64) -> Duration {
    run(move || {
        let (ping, pong) = (Rc::new(Event::new()), Rc::new(Event::new()));
        let start = Instant::now();
        let ponger = spawn({
            let (ping, pong) = (ping.clone(), pong.clone());
            move || {
                for _ in 0..iters {
                    ping.wait();
                    ping.clear();
                    pong.set();
                }
            }
        });
        for _ in 0..iters {
            ping.set();
            pong.wait();
            pong.clear();
        }
        ponger.join().expect("ponger");
        start.elapsed()
    })
}

/// `event_handoff`: the same with two `tokio::sync::Notify` (`notify_one`
/// keeps a permit when nobody waits, as a set event does).
pub fn tokio_event_handoff(rt: &Runtime, iters: u64) -> Duration {
    rt.block_on(async move {
        let (ping, pong) = (Arc::new(tokio::sync::Notify::new()), Arc::new(tokio::sync::Notify::new()));
        let start = Instant::now();
        let ponger = tokio::spawn({
            let (ping, pong) = (ping.clone(), pong.clone());
            async move {
                for _ in 0..iters {
                    ping.notified().await;
                    pong.notify_one();
                }
            }
        });
        for _ in 0..iters {
            ping.notify_one();
            pong.notified().await;
        }
        ponger.await.expect("ponger");
        start.elapsed()
    })
}

/// `semaphore_handoff`: two greenlets hand a permit back and forth through
/// two semaphores that start empty, `iters` round trips: one releases a
/// permit to the other's semaphore (`add_permits(1)`) and acquires one from
/// its own, which the other releases back once it acquired its own.
pub fn ours_semaphore_handoff(iters: u64) -> Duration {
    run(move || {
        let (ping, pong) = (Rc::new(Semaphore::new(0)), Rc::new(Semaphore::new(0)));
        let start = Instant::now();
        let ponger = spawn({
            let (ping, pong) = (ping.clone(), pong.clone());
            move || {
                for _ in 0..iters {
                    ping.acquire().forget();
                    pong.add_permits(1);
                }
            }
        });
        for _ in 0..iters {
            ping.add_permits(1);
            pong.acquire().forget();
        }
        ponger.join().expect("ponger");
        start.elapsed()
    })
}

/// `semaphore_handoff`: the same with two `tokio::sync::Semaphore`.
pub fn tokio_semaphore_handoff(rt: &Runtime, iters: u64) -> Duration {
    rt.block_on(async move {
        let (ping, pong) = (Arc::new(tokio::sync::Semaphore::new(0)), Arc::new(tokio::sync::Semaphore::new(0)));
        let start = Instant::now();
        let ponger = tokio::spawn({
            let (ping, pong) = (ping.clone(), pong.clone());
            async move {
                for _ in 0..iters {
                    ping.acquire().await.expect("open").forget();
                    pong.add_permits(1);
                }
            }
        });
        for _ in 0..iters {
            ping.add_permits(1);
            pong.acquire().await.expect("open").forget();
        }
        ponger.await.expect("ponger");
        start.elapsed()
    })
}

/// The sleep durations of the timer scenario: [`TIMERS`] of them, uniform in
/// `0..=MAX_DEADLINE_MS` milliseconds, always the same (SplitMix64 from a
/// fixed seed).
pub fn timer_deadlines() -> Vec<Duration> {
    let mut state = SEED;
    (0..TIMERS)
        .map(|_| {
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^= z >> 31;
            Duration::from_millis(z % (MAX_DEADLINE_MS + 1))
        })
        .collect()
}

/// `timers`: spawns one greenlet per deadline, each sleeping that long, and
/// joins them all; `rounds` times. The time includes the wait for the last
/// deadline.
pub fn ours_timers(deadlines: &[Duration], rounds: u64) -> Duration {
    let deadlines = deadlines.to_vec();
    run(move || {
        let mut total = Duration::ZERO;
        for _ in 0..rounds {
            let start = Instant::now();
            let sleepers: Vec<_> = deadlines.iter().map(|&d| spawn(move || sleep(d))).collect();
            for sleeper in sleepers {
                sleeper.join().expect("a sleeper wakes");
            }
            total += start.elapsed();
        }
        total
    })
}

/// `timers`: the same with one tokio task per deadline awaiting
/// `tokio::time::sleep`; `rt` needs its timer enabled.
pub fn tokio_timers(rt: &Runtime, deadlines: &[Duration], rounds: u64) -> Duration {
    let deadlines = deadlines.to_vec();
    rt.block_on(async move {
        let mut total = Duration::ZERO;
        for _ in 0..rounds {
            let start = Instant::now();
            let sleepers: Vec<_> = deadlines.iter().map(|&d| tokio::spawn(tokio::time::sleep(d))).collect();
            for sleeper in sleepers {
                sleeper.await.expect("a sleeper wakes");
            }
            total += start.elapsed();
        }
        total
    })
}
