//! Work sent to a hub from other threads through a `Handle`: what happens
//! when the hub stops meanwhile, and how a flood of spawns is held back.

mod util;

use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use runtime_scheduler::{self as rt, Builder, Closed, Handle, JoinHandle};

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
/// its greenlet runs, or it is joined as killed: no join waits forever, also
/// when the last `Handle` (and with it the hub's queue) is dropped on the
/// spawning thread.
#[test]
fn spawns_racing_the_close_fail_run_or_are_killed_and_every_join_ends() {
    for round in 0..200u32 {
        let grace = Duration::from_micros(u64::from(round % 5) * 200);
        let (handle, hub) = hub_on_thread(Builder::new().shutdown_grace(grace), move || {
            for _ in 0..round % 13 {
                rt::yield_now();
            }
        });
        let mut joins: Vec<JoinHandle<u32>> = Vec::new();
        loop {
            match handle.spawn(move || round) {
                Ok(join) => joins.push(join),
                Err(Closed) => break,
            }
        }
        drop(handle);
        hub.join().expect("the hub stops");
        for join in joins {
            match join.join_timeout(Duration::from_secs(10)) {
                Ok(Ok(value)) => assert_eq!(value, round),
                Ok(Err(err)) => assert!(err.is_killed(), "round {round}: {err}"),
                Err(_) => panic!("round {round}: a spawn accepted while the hub closed is never joined"),
            }
        }
    }
}
