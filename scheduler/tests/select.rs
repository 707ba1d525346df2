//! `Select`, `select!` and `wait_any`: the first ready arm wins, nothing is
//! lost, timeouts fire, and every kind of arm can fire.

mod util;

use std::collections::VecDeque;
use std::io::Write;
use std::time::Duration;

use runtime_scheduler::sync::{Event, Select, channel, wait_any};
use runtime_scheduler::{self as rt, select, sleep, spawn, yield_now};
use util::{Log, ms};

/// A small deterministic generator, so the test needs no dependency.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, bound: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 33) % bound
    }
}

#[test]
fn the_first_ready_channel_wins() {
    rt::run(|| {
        let (tx1, rx1) = channel::unbounded::<u8>();
        let (_tx2, rx2) = channel::unbounded::<u8>();
        let (tx3, rx3) = channel::unbounded::<u8>();
        spawn(move || {
            sleep(ms(10));
            tx3.send(3).unwrap();
            sleep(ms(10));
            tx1.send(1).unwrap();
        });
        let mut select = Select::new();
        let (a, b, c) = (select.recv(&rx1), select.recv(&rx2), select.recv(&rx3));
        assert!(select.try_select().is_err(), "nothing is ready yet");
        let operation = select.select();
        assert_eq!(operation.index(), c);
        assert_eq!(operation.recv(&rx3), Ok(3));
        let operation = select.select();
        assert_eq!(operation.index(), a);
        assert_eq!(operation.recv(&rx1), Ok(1));
        assert_ne!(a, b);
    });
}

#[test]
fn no_message_is_lost_when_several_become_ready_at_once() {
    // 1,000 randomized rounds against a model: producers send to random
    // channels, often several before the selector runs again; the selector
    // must receive every message once, in each channel's order.
    rt::run(|| {
        let mut rng = Lcg(42);
        let channels: Vec<_> = (0..3).map(|_| channel::bounded::<u32>(2)).collect();
        let mut model: Vec<VecDeque<u32>> = vec![VecDeque::new(); 3];
        let mut next = 0u32;
        for _ in 0..1000 {
            let sends: Vec<(usize, u32)> = (0..1 + rng.next(4))
                .map(|_| {
                    next += 1;
                    (rng.next(3) as usize, next)
                })
                .collect();
            for &(channel, value) in &sends {
                model[channel].push_back(value);
            }
            let senders: Vec<_> = channels.iter().map(|(tx, _)| tx.clone()).collect();
            let spread = rng.next(2) == 0;
            spawn(move || {
                for (channel, value) in sends {
                    senders[channel].send(value).unwrap(); // may park: capacity 2
                    if spread {
                        yield_now();
                    }
                }
            });
            while model.iter().any(|queue| !queue.is_empty()) {
                let mut select = Select::new();
                let indices: Vec<usize> = channels.iter().map(|(_, rx)| select.recv(rx)).collect();
                let operation = select.select_timeout(Duration::from_secs(5)).expect("a message is pending");
                let channel = indices.iter().position(|&i| i == operation.index()).unwrap();
                let value = operation.recv(&channels[channel].1).unwrap();
                assert_eq!(Some(value), model[channel].pop_front(), "channel {channel}");
                if rng.next(4) == 0 {
                    yield_now(); // let more arrive meanwhile
                }
            }
        }
        assert!(channels.iter().all(|(_, rx)| rx.is_empty()));
    });
}

#[test]
fn the_timeout_fires_and_a_refused_select_loses_nothing() {
    rt::run(|| {
        let (tx, rx) = channel::unbounded::<u8>();
        let mut select = Select::new();
        select.recv(&rx);
        assert!(select.select_timeout(ms(10)).is_err());
        assert!(select.ready_timeout(ms(5)).is_err());
        let result = select! {
            recv(rx) -> _ => "received",
            default(ms(10)) => "timed out",
        };
        assert_eq!(result, "timed out");
        // A selector killed while waiting takes nothing with it.
        let (r2, tx2) = (rx.clone(), tx.clone());
        let selector = spawn(move || {
            let mut select = Select::new();
            select.recv(&r2);
            drop(select.select());
        });
        yield_now();
        selector.kill();
        tx2.send(9).unwrap();
        assert!(selector.join().unwrap_err().is_killed());
        assert_eq!(rx.try_recv(), Ok(9));
        drop(tx);
    });
}

#[test]
fn an_event_arm_a_join_arm_and_a_readable_arm_each_fire() {
    rt::run(|| {
        let event = std::rc::Rc::new(Event::new());
        let e = event.clone();
        spawn(move || {
            sleep(ms(5));
            e.set();
        });
        let worker = spawn(|| {
            sleep(ms(15));
            7
        });
        let (reader, mut writer) = std::os::unix::net::UnixStream::pair().unwrap();
        let (_tx, never) = channel::unbounded::<u8>();
        let writes = spawn(move || {
            sleep(ms(25));
            writer.write_all(b"x").unwrap();
            sleep(Duration::from_secs(1));
        });
        let mut fired = Vec::new();
        {
            let mut select = Select::new();
            let arms = [select.event(&event), select.join(&worker), select.readable(&reader), select.recv(&never)];
            while fired.len() < 3 {
                let index = select.ready();
                let arm = arms.iter().position(|&i| i == index).unwrap();
                if !fired.contains(&arm) {
                    fired.push(arm);
                }
                // Ready arms stay ready: wait a little for the next one.
                sleep(ms(3));
            }
        }
        assert_eq!(fired, [0, 1, 2]);
        assert_eq!(worker.join().unwrap(), 7);
        writes.kill();
    });
}

#[test]
fn send_arms_fire_when_a_send_would_not_block() {
    rt::run(|| {
        let (tx, rx) = channel::bounded::<u8>(0);
        let log = Log::new();
        let l = log.clone();
        let receiver = spawn(move || {
            sleep(ms(5));
            l.push(rx.recv().unwrap());
        });
        // A rendezvous send is ready once a receiver waits.
        let sent = select! {
            send(tx, 1) -> result => result.is_ok(),
            default(Duration::from_secs(1)) => false,
        };
        assert!(sent);
        receiver.join().unwrap();
        assert_eq!(log.get(), [1]);

        let (full_tx, full_rx) = channel::bounded::<u8>(1);
        full_tx.send(0).unwrap();
        let mut select = Select::new();
        select.send(&full_tx);
        assert!(select.try_select().is_err(), "the channel is full");
        spawn(move || {
            sleep(ms(5));
            assert_eq!(full_rx.recv(), Ok(0));
            assert_eq!(full_rx.recv(), Ok(2));
        });
        let operation = select.select();
        assert_eq!(operation.send(&full_tx, 2), Ok(()));
    });
}

#[test]
fn wait_any_returns_the_first_ready_item() {
    rt::run(|| {
        let (a, b) = (Event::new(), Event::new());
        let quick = spawn(|| sleep(ms(5)));
        assert_eq!(wait_any(&[&a, &quick, &b], Some(Duration::from_secs(1))), Some(1));
        b.set();
        assert_eq!(wait_any(&[&a, &b], None), Some(1));
        assert_eq!(wait_any(&[&a], Some(ms(5))), None);
    });
}
