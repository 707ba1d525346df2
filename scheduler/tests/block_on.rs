//! `block_on`: futures awaited in blocking style, parking only the greenlet.

mod util;

use std::cell::Cell;
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use runtime_scheduler::{self as rt, block_on, sleep, spawn, timeout, yield_now};
use util::{Drops, ms};

#[test]
fn a_oneshot_completed_by_a_thread_parks_only_the_waiting_greenlet() {
    rt::run(|| {
        let (tx, rx) = futures_channel::oneshot::channel::<&str>();
        // The thread completes the future only once the ticker has ticked a
        // few times: that can happen only if the hub runs while `block_on`
        // waits.
        let ticks = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
        let seen = ticks.clone();
        let thread = std::thread::spawn(move || {
            while seen.load(std::sync::atomic::Ordering::SeqCst) < 3 {
                std::thread::sleep(ms(5));
            }
            std::thread::sleep(ms(20));
            tx.send("from a thread").unwrap();
        });
        let t = ticks.clone();
        let ticker = spawn(move || {
            loop {
                sleep(ms(5));
                t.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
        });
        let start = Instant::now();
        assert_eq!(block_on(rx), Ok("from a thread"));
        assert!(start.elapsed() >= ms(20));
        assert!(ticks.load(std::sync::atomic::Ordering::SeqCst) >= 3);
        ticker.kill();
        thread.join().unwrap();
    });
}

#[test]
fn a_future_that_wakes_itself_inside_poll_completes() {
    rt::run(|| {
        let mut polls = 0;
        let output = block_on(poll_fn(|cx| {
            polls += 1;
            if polls < 5 {
                cx.waker().wake_by_ref();
                Poll::Pending
            } else {
                Poll::Ready(polls)
            }
        }));
        assert_eq!(output, 5);
    });
}

#[test]
fn a_waker_used_by_another_greenlet_of_the_hub_wakes_the_waiter() {
    rt::run(|| {
        let slot: Rc<Cell<Option<std::task::Waker>>> = Rc::new(Cell::new(None));
        let ready = Rc::new(Cell::new(false));
        let (s, r) = (slot.clone(), ready.clone());
        spawn(move || {
            sleep(ms(5));
            r.set(true);
            s.take().expect("the waiter registered its waker").wake();
        });
        block_on(poll_fn(|cx| {
            if ready.get() {
                return Poll::Ready(());
            }
            slot.set(Some(cx.waker().clone()));
            Poll::Pending
        }));
    });
}

/// A future that never completes and counts its drop.
struct Forever(#[allow(dead_code)] util::DropGuard);

impl Future for Forever {
    type Output = ();

    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
        Poll::Pending
    }
}

#[test]
fn killing_a_greenlet_parked_in_block_on_drops_the_future() {
    rt::run(|| {
        let drops = Drops::new();
        let future = Forever(drops.guard());
        let waiter = spawn(move || block_on(future));
        yield_now();
        assert_eq!(drops.count(), 0);
        waiter.kill();
        assert!(waiter.join().unwrap_err().is_killed());
        assert_eq!(drops.count(), 1);
    });
}

#[test]
fn timeout_around_block_on_gives_up_and_drops_the_future() {
    rt::run(|| {
        let drops = Drops::new();
        let future = Forever(drops.guard());
        assert!(timeout(ms(20), || block_on(future)).is_err());
        assert_eq!(drops.count(), 1);
        assert_eq!(timeout(ms(20), || block_on(async { 7 })), Ok(7));
    });
}

#[test]
fn outside_a_runtime_block_on_blocks_the_thread() {
    let (tx, rx) = futures_channel::oneshot::channel();
    let thread = std::thread::spawn(move || {
        std::thread::sleep(ms(20));
        tx.send(5).unwrap();
    });
    assert_eq!(block_on(rx), Ok(5));
    thread.join().unwrap();
    assert_eq!(block_on(async { Duration::from_secs(1) }), Duration::from_secs(1));
}

#[test]
fn poll_ready_wakes_a_future_when_the_descriptor_becomes_readable() {
    use runtime_scheduler::{Direction, Registration};
    use std::io::{Read, Write};
    rt::run(|| {
        let (a, mut b) = mio::net::UnixStream::pair().unwrap();
        let registration = Registration::new(&a).unwrap();
        registration.clear_ready(Direction::Read);
        spawn(move || {
            sleep(ms(10));
            b.write_all(b"ping").unwrap();
            sleep(Duration::from_secs(1)); // keep the peer open
        });
        let mut buf = [0; 4];
        let n = block_on(poll_fn(|cx| {
            loop {
                match registration.poll_ready(Direction::Read, cx) {
                    Poll::Ready(Ok(())) => {}
                    Poll::Ready(Err(err)) => return Poll::Ready(Err(err)),
                    Poll::Pending => return Poll::Pending,
                }
                match (&a).read(&mut buf) {
                    Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => {
                        registration.clear_ready(Direction::Read)
                    }
                    other => return Poll::Ready(other),
                }
            }
        }))
        .unwrap();
        assert_eq!(&buf[..n], b"ping");
    });
}
