//! Channels (gevent's queues and `Channel`), ported from gevent's
//! `test__queue.py`: hand-off, FIFO service of waiters, timeouts, and that no
//! value is ever lost or duplicated.

mod util;

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use runtime_scheduler::sync::channel::{self, RecvTimeoutError, TryRecvError};
use runtime_scheduler::{self as rt, Elapsed, sleep, spawn, timeout, yield_now};
use util::{Drops, Log, ms};

#[test]
fn try_send_on_a_size_one_channel_fills_it() {
    // gevent test__queue.py TestQueue.test_put_nowait_simple: put_nowait into
    // a size-1 queue succeeds once, then raises Full.
    rt::run(|| {
        let (tx, rx) = channel::bounded(1);
        tx.try_send(1).unwrap();
        let err = tx.try_send(2).unwrap_err();
        assert!(err.is_full());
        assert_eq!(err.into_inner(), 2);
        assert_eq!(rx.len(), 1);
        assert_eq!(tx.capacity(), Some(1));
    });
}

#[test]
fn try_send_on_a_rendezvous_channel_needs_a_waiting_receiver() {
    // gevent test__queue.py TestChannel.test_put_nowait_simple (put_nowait on
    // a Channel fails unless a getter waits) and test_zero_max_size.
    rt::run(|| {
        let (tx, rx) = channel::bounded::<u8>(0);
        assert!(tx.try_send(1).unwrap_err().is_full());
        let getter = spawn(move || rx.recv().unwrap());
        yield_now();
        tx.try_send(2).unwrap();
        assert_eq!(getter.join().unwrap(), 2);
    });
}

#[test]
fn try_send_wakes_a_blocked_receiver() {
    // gevent test__queue.py TestQueue.test_put_nowait_unlock: put_nowait wakes
    // a greenlet blocked in get; the item is delivered once it runs.
    rt::run(|| {
        let (tx, rx) = channel::bounded(1);
        let getter = spawn(move || rx.recv().unwrap());
        yield_now();
        tx.try_send("item").unwrap();
        assert_eq!(tx.len(), 0, "handed over, not queued");
        assert_eq!(getter.join().unwrap(), "item");
    });
}

#[test]
fn blocked_receiver_gets_a_value_sent_later() {
    // gevent test__queue.py TestQueue.test_send_last: a greenlet blocked in
    // get receives an item put later.
    rt::run(|| {
        let (tx, rx) = channel::unbounded();
        let getter = spawn(move || rx.recv().unwrap());
        sleep(ms(2));
        tx.send(5).unwrap();
        assert_eq!(getter.join().unwrap(), 5);
    });
}

#[test]
fn try_recv_twice_on_one_value() {
    // gevent test__queue.py TestQueue.test_get_nowait_simple: the first
    // get_nowait returns the item, the second raises Empty.
    rt::run(|| {
        let (tx, rx) = channel::bounded(1);
        tx.send(1).unwrap();
        assert_eq!(rx.try_recv(), Ok(1));
        assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
        assert!(rx.try_recv().unwrap_err().is_empty());
    });
}

#[test]
fn try_recv_unblocks_a_blocked_sender() {
    // gevent test__queue.py TestQueue.test_get_nowait_unlock: get_nowait
    // frees room for a greenlet blocked in put on a full queue, which finishes.
    rt::run(|| {
        let (tx, rx) = channel::bounded(1);
        tx.send(1).unwrap();
        let putter = spawn(move || tx.send(2).unwrap());
        yield_now();
        assert!(!putter.is_finished());
        assert_eq!(rx.try_recv(), Ok(1));
        // The waiting sender's value moved into the freed place at once.
        assert_eq!(rx.len(), 1);
        putter.join().unwrap();
        assert_eq!(rx.try_recv(), Ok(2));
    });
}

#[test]
fn sender_blocks_on_a_full_channel_until_there_is_room() {
    // gevent test__queue.py TestQueue.test_max_size: size 2, a putter puts a,
    // b, then blocks on c until a get makes room; items come out FIFO.
    rt::run(|| {
        let (tx, rx) = channel::bounded(2);
        let log = Log::new();
        let l = log.clone();
        let putter = spawn(move || {
            for item in ["a", "b", "c"] {
                tx.send(item).unwrap();
                l.push(format!("put {item}"));
            }
        });
        yield_now();
        assert_eq!(log.get(), ["put a", "put b"]);
        assert_eq!(rx.recv().unwrap(), "a");
        yield_now();
        assert_eq!(log.get(), ["put a", "put b", "put c"]);
        assert_eq!(rx.recv().unwrap(), "b");
        assert_eq!(rx.recv().unwrap(), "c");
        putter.join().unwrap();
    });
}

#[test]
fn blocked_receivers_each_get_one_value_in_fifo_order() {
    // gevent test__queue.py TestQueue.test_multiple_waiters: four blocked
    // getters each receive exactly one of four items, first come first served.
    rt::run(|| {
        let (tx, rx) = channel::unbounded();
        let getters: Vec<_> = (0..4)
            .map(|_| {
                let rx = rx.clone();
                spawn(move || rx.recv().unwrap())
            })
            .collect();
        yield_now();
        for item in 10..14 {
            tx.send(item).unwrap();
            sleep(ms(1));
        }
        let got: Vec<i32> = rt::joinall(getters).into_iter().map(Result::unwrap).collect();
        assert_eq!(got, [10, 11, 12, 13]);
    });
}

#[test]
fn receiver_whose_zero_timeout_fired_does_not_consume_a_later_value() {
    // gevent test__queue.py TestQueue.test_waiters_that_cancel: a getter whose
    // zero timeout fires does not consume a later item; the next get gets it.
    rt::run(|| {
        let (tx, rx) = channel::bounded(1);
        assert_eq!(rx.recv_timeout(Duration::ZERO), Err(RecvTimeoutError::Timeout));
        assert_eq!(timeout(Duration::ZERO, || rx.recv().unwrap()), Err(Elapsed));
        tx.send("later").unwrap();
        assert_eq!(rx.recv().unwrap(), "later");
    });
}

#[test]
fn value_of_a_sender_that_finished_is_not_lost() {
    // gevent test__queue.py TestQueue.test_senders_that_die: a sender that
    // finishes after putting does not lose the item.
    rt::run(|| {
        let (tx, rx) = channel::bounded(1);
        let sender = spawn(move || tx.send("last words").unwrap());
        sender.join().unwrap();
        assert_eq!(rx.recv().unwrap(), "last words");
        assert!(rx.recv().is_err(), "the sender is gone");
    });
}

#[test]
fn when_one_of_two_receivers_times_out_the_other_gets_the_value() {
    // gevent test__queue.py TestQueue.test_two_waiters_one_dies.
    rt::run(|| {
        let (tx, rx) = channel::unbounded();
        let r = rx.clone();
        let quitter = spawn(move || r.recv_timeout(Duration::ZERO));
        let r = rx.clone();
        let patient = spawn(move || r.recv().unwrap());
        yield_now();
        sleep(ms(1));
        tx.send("item").unwrap();
        assert_eq!(quitter.join().unwrap(), Err(RecvTimeoutError::Timeout));
        assert_eq!(patient.join().unwrap(), "item");
    });
}

#[test]
fn when_both_receivers_time_out_the_value_stays_in_the_channel() {
    // gevent test__queue.py TestQueue.test_two_bogus_waiters: both getters
    // time out, the item stays for a later get.
    rt::run(|| {
        let (tx, rx) = channel::unbounded();
        let quitters: Vec<_> = (0..2)
            .map(|_| {
                let rx = rx.clone();
                spawn(move || rx.recv_timeout(ms(5)))
            })
            .collect();
        for outcome in rt::joinall(quitters) {
            assert_eq!(outcome.unwrap(), Err(RecvTimeoutError::Timeout));
        }
        tx.send("item").unwrap();
        assert_eq!(rx.try_recv(), Ok("item"));
    });
}

#[test]
fn rendezvous_sender_waits_for_a_receiver() {
    // gevent test__queue.py TestChannel.test_send: a send to a waiting
    // receiver returns after the receiver took the value and ran.
    let events = rt::run(|| {
        let (tx, rx) = channel::bounded(0);
        let events = Log::new();
        let e = events.clone();
        let getter = spawn(move || {
            e.push(rx.recv().unwrap());
            e.push(rx.recv().unwrap());
        });
        events.push("sending");
        tx.send("hello").unwrap();
        events.push("sent hello");
        tx.send("world").unwrap();
        events.push("sent world");
        getter.join().unwrap();
        events.get()
    });
    assert_eq!(events, ["sending", "hello", "sent hello", "world", "sent world"]);
}

#[test]
fn rendezvous_receiver_waits_for_a_sender() {
    // gevent test__queue.py TestChannel.test_wait.
    let events = rt::run(|| {
        let (tx, rx) = channel::bounded(0);
        let events = Log::new();
        let e = events.clone();
        let sender = spawn(move || {
            e.push("sending hello");
            tx.send("hello").unwrap();
            e.push("sending world");
            tx.send("world").unwrap();
            e.push("sent world");
        });
        events.push("waiting");
        events.push(rx.recv().unwrap());
        events.push(rx.recv().unwrap());
        assert!(!sender.is_finished());
        yield_now();
        sender.join().unwrap();
        events.get()
    });
    assert_eq!(events, ["waiting", "sending hello", "hello", "sending world", "world", "sent world"]);
}

#[test]
fn rendezvous_send_completes_only_with_a_receiver() {
    // gevent test__queue.py TestChannel.test_zero_max_size: a sender blocks
    // until a receiver arrives, and returns once the receiver has run: sends
    // and receives strictly alternate.
    let log = rt::run(|| {
        let (tx, rx) = channel::bounded(0);
        let log = Log::new();
        let l = log.clone();
        let sender = spawn(move || {
            for i in 0..3 {
                tx.send(i).unwrap();
                l.push(format!("sent {i}"));
            }
        });
        for _ in 0..3 {
            let value = rx.recv().unwrap();
            log.push(format!("received {value}"));
        }
        sender.join().unwrap();
        log.get()
    });
    assert_eq!(log, ["received 0", "sent 0", "received 1", "sent 1", "received 2", "sent 2"]);
}

#[test]
fn iteration_ends_once_every_sender_is_gone() {
    // gevent test__queue.py TestChannel.test_iterable (iteration stops at the
    // StopIteration sentinel): here when the last Sender is dropped.
    rt::run(|| {
        let (tx, rx) = channel::bounded(1);
        for start in [0, 10] {
            let tx = tx.clone();
            drop(spawn(move || {
                for i in start..start + 3 {
                    tx.send(i).unwrap();
                }
            }));
        }
        drop(tx);
        let mut got: Vec<i32> = rx.iter().collect();
        got.sort_unstable();
        assert_eq!(got, [0, 1, 2, 10, 11, 12]);
        assert!(rx.is_disconnected());
    });
}

#[test]
fn receivers_drain_remaining_values_after_the_senders_are_gone() {
    // channel.rs docs: remaining values first, then RecvError.
    rt::run(|| {
        let (tx, rx) = channel::unbounded();
        tx.send(1).unwrap();
        tx.send(2).unwrap();
        drop(tx);
        assert_eq!(rx.recv(), Ok(1));
        assert_eq!(rx.try_recv(), Ok(2));
        assert!(rx.recv().is_err());
        assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
        assert_eq!(rx.recv_timeout(ms(1)), Err(RecvTimeoutError::Disconnected));
    });
}

#[test]
fn blocked_receivers_wake_with_an_error_when_the_senders_are_dropped() {
    // channel.rs docs; gevent's queue shutdown wakes getters similarly.
    rt::run(|| {
        let (tx, rx) = channel::bounded::<u8>(1);
        let getters: Vec<_> = (0..3)
            .map(|_| {
                let rx = rx.clone();
                spawn(move || rx.recv())
            })
            .collect();
        yield_now();
        drop(tx);
        assert!(rt::joinall(getters).into_iter().all(|got| got.unwrap().is_err()));
    });
}

#[test]
fn send_gives_the_value_back_once_the_receivers_are_gone() {
    // channel.rs docs: SendError carries the value; blocked senders wake
    // with theirs.
    rt::run(|| {
        let (tx, rx) = channel::bounded(1);
        tx.send(String::from("queued")).unwrap();
        let t = tx.clone();
        let blocked = spawn(move || t.send(String::from("waiting")).map_err(|err| err.into_inner()));
        yield_now();
        drop(rx);
        assert_eq!(blocked.join().unwrap(), Err(String::from("waiting")));
        assert_eq!(tx.send(String::from("late")).unwrap_err().into_inner(), "late");
        assert!(tx.try_send(String::from("late")).unwrap_err().is_disconnected());
        assert!(tx.is_disconnected());
    });
}

#[test]
fn recv_and_send_timeouts_obey_the_timing_contract() {
    // gevent test__queue.py TestGetInterrupt (and the put side, gevent.md
    // 5.2: get/put with timeout raise Empty/Full after the timeout), for
    // bounded, rendezvous and unbounded channels.
    rt::run(|| {
        for capacity in [Some(0), Some(1), None] {
            let (tx, rx) = match capacity {
                Some(capacity) => channel::bounded(capacity),
                None => channel::unbounded(),
            };
            let start = Instant::now();
            assert_eq!(rx.recv_timeout(ms(5)), Err(RecvTimeoutError::Timeout));
            assert!(start.elapsed() >= ms(5));
            if let Some(capacity) = capacity {
                for i in 0..capacity {
                    tx.send(i).unwrap();
                }
                let start = Instant::now();
                let err = tx.send_timeout(99, ms(5)).unwrap_err();
                assert!(start.elapsed() >= ms(5));
                assert!(err.is_timeout());
                assert_eq!(err.into_inner(), 99);
                assert_eq!(rx.len(), capacity);
            } else {
                tx.send_timeout(1, Duration::ZERO).unwrap();
            }
        }
    });
}

#[test]
fn waiting_senders_values_move_in_in_order() {
    // channel.rs docs: "when a receiver frees room in a full channel the first
    // waiting sender's value moves in" (FIFO across queue and waiters).
    rt::run(|| {
        let (tx, rx) = channel::bounded(1);
        tx.send(0).unwrap();
        let senders: Vec<_> = (1..=3)
            .map(|i| {
                let tx = tx.clone();
                spawn(move || tx.send(i).unwrap())
            })
            .collect();
        yield_now();
        let got: Vec<i32> = (0..4).map(|_| rx.recv().unwrap()).collect();
        assert_eq!(got, [0, 1, 2, 3]);
        rt::joinall(senders);
    });
}

#[test]
fn greedy_receiver_cannot_starve_one_that_waited_first() {
    // sync/mod.rs docs (FIFO hand-off, no starvation), after gevent
    // test__semaphore.py TestSemaphoreFair for queues: a receiver that comes
    // back for more queues behind the others.
    let log = rt::run(|| {
        let (tx, rx) = channel::unbounded();
        let log = Log::new();
        let handles: Vec<_> = ["greedy", "patient"]
            .into_iter()
            .map(|name| {
                let (rx, log) = (rx.clone(), log.clone());
                spawn(move || {
                    while let Ok(value) = rx.recv() {
                        log.push(format!("{name} {value}"));
                    }
                })
            })
            .collect();
        yield_now();
        for i in 0..4 {
            tx.send(i).unwrap();
            yield_now();
            yield_now();
        }
        drop(tx);
        rt::joinall(handles);
        log.get()
    });
    assert_eq!(log, ["greedy 0", "patient 1", "greedy 2", "patient 3"]);
}

#[test]
fn many_producers_and_consumers_lose_and_duplicate_nothing() {
    // gevent test__queue.py TestQueue.test_multiple_waiters at scale (many
    // producers and consumers, yields and timeouts mixed in): every value is
    // received exactly once.
    rt::run(|| {
        let (tx, rx) = channel::bounded(3);
        let received = Rc::new(RefCell::new(Vec::new()));
        let producers: Vec<_> = (0..4u32)
            .map(|p| {
                let tx = tx.clone();
                spawn(move || {
                    for i in 0..50 {
                        tx.send(p * 1000 + i).unwrap();
                        if i % 7 == 0 {
                            yield_now();
                        }
                    }
                })
            })
            .collect();
        drop(tx);
        let consumers: Vec<_> = (0..3)
            .map(|c| {
                let (rx, received) = (rx.clone(), received.clone());
                spawn(move || {
                    let mut mine = Vec::new();
                    loop {
                        match rx.recv_timeout(if c == 0 { Duration::ZERO } else { ms(50) }) {
                            Ok(value) => mine.push(value),
                            Err(RecvTimeoutError::Timeout) => yield_now(),
                            Err(RecvTimeoutError::Disconnected) => break,
                        }
                    }
                    // Each consumer sees each producer's values in order.
                    for p in 0..4 {
                        let from_p: Vec<u32> = mine.iter().copied().filter(|v| v / 1000 == p).collect();
                        assert!(from_p.windows(2).all(|w| w[0] < w[1]), "out of order: {from_p:?}");
                    }
                    received.borrow_mut().extend(mine);
                })
            })
            .collect();
        for outcome in rt::joinall(producers).into_iter().chain(rt::joinall(consumers)) {
            outcome.unwrap();
        }
        let mut all = received.borrow().clone();
        all.sort_unstable();
        let expected: Vec<u32> = (0..4).flat_map(|p| (0..50).map(move |i| p * 1000 + i)).collect();
        assert_eq!(all, expected);
    });
}

#[test]
fn receiver_killed_after_the_hand_off_does_not_lose_the_value() {
    // channel.rs docs ("Nothing is lost or duplicated"); gevent test__queue.py
    // TestQueue.test_waiters_that_cancel applied to a kill: the value handed to
    // a receiver that is killed before it ran again stays in the channel.
    rt::run(|| {
        let (tx, rx) = channel::bounded(1);
        let r = rx.clone();
        let doomed = spawn(move || r.recv().unwrap());
        yield_now();
        tx.send("precious").unwrap();
        doomed.kill();
        assert!(doomed.join().unwrap_err().is_killed());
        assert_eq!(rx.try_recv(), Ok("precious"));
    });
}

#[test]
fn receiver_whose_deadline_just_fired_returns_the_value_handed_to_it() {
    // channel.rs docs ("Nothing is lost or duplicated"): the receiver's
    // timer fires, and before it runs again a value is handed to it; it
    // returns the value rather than a timeout.
    rt::run(|| {
        let (tx, rx) = channel::bounded(1);
        let receiver = spawn(move || rx.recv_timeout(ms(20)));
        // Blocks the hub past both deadlines below, so that one turn fires
        // both timers, this greenlet's first: it runs, and sends, before
        // the receiver runs.
        let blocker = spawn(|| std::thread::sleep(ms(40)));
        sleep(ms(10));
        tx.send("handed").unwrap();
        assert_eq!(receiver.join().unwrap(), Ok("handed"));
        blocker.join().unwrap();
    });
}

#[test]
fn receiver_killed_while_waiting_passes_its_value_to_the_next_waiter() {
    // As above, with another receiver waiting behind the killed one: FIFO
    // service goes on with the next waiter.
    rt::run(|| {
        let (tx, rx) = channel::unbounded();
        let r = rx.clone();
        let doomed = spawn(move || r.recv().unwrap());
        let r = rx.clone();
        let next = spawn(move || r.recv().unwrap());
        yield_now();
        doomed.kill();
        // The kill is pending when the value arrives.
        tx.send(1).unwrap();
        assert!(doomed.join().unwrap_err().is_killed());
        assert_eq!(next.join().unwrap(), 1);
    });
}

#[test]
fn receiver_whose_timeout_scope_expired_after_the_hand_off_keeps_the_value_in_the_channel() {
    // gevent test__queue.py TestQueue.test_waiters_that_cancel (a getter whose
    // timeout fires does not consume the item): here the value was handed
    // over and the scope's expiry is raised before the receiver ran again.
    rt::run(|| {
        let (tx, rx) = channel::bounded(1);
        let r = rx.clone();
        let receiver = spawn(move || timeout(ms(1), || r.recv().unwrap()));
        yield_now();
        std::thread::sleep(ms(10));
        // A batch of runnable greenlets makes the hub fire the expired scope
        // between the hand-off and the receiver's turn.
        for _ in 0..64 {
            drop(spawn(|| ()));
        }
        tx.send("kept").unwrap();
        let outcome = receiver.join().unwrap();
        match outcome {
            Ok(value) => assert_eq!(value, "kept"),
            Err(Elapsed) => assert_eq!(rx.try_recv(), Ok("kept")),
        }
    });
}

#[test]
fn killed_sender_drops_only_its_own_unsent_value() {
    // gevent.md 5.2 Queues / TestKillWhileRunning for a putter: the value of a
    // sender killed while blocked is dropped with it, nothing else is.
    rt::run(|| {
        let drops = Drops::new();
        let (tx, rx) = channel::bounded(1);
        tx.send(drops.guard()).unwrap();
        let (t, guard) = (tx.clone(), drops.guard());
        let blocked = spawn(move || t.send(guard).unwrap());
        yield_now();
        blocked.kill();
        assert!(blocked.join().unwrap_err().is_killed());
        assert_eq!(drops.count(), 1, "only the unsent value was dropped");
        assert_eq!(rx.len(), 1);
        drop(rx.try_recv().unwrap());
        assert_eq!(drops.count(), 2);
    });
}

#[test]
fn unbounded_channel_never_blocks_senders() {
    // gevent test__queue.py TestQueue (an unbounded Queue's put never blocks).
    rt::run(|| {
        let (tx, rx) = channel::unbounded();
        let ran = util::Counter::new();
        let r = ran.clone();
        drop(spawn(move || r.bump()));
        for i in 0..10_000 {
            tx.send(i).unwrap();
        }
        assert_eq!(ran.get(), 0, "send on an unbounded channel never parks");
        assert_eq!(rx.len(), 10_000);
        assert_eq!(rx.capacity(), None);
        assert_eq!(rx.try_iter().sum::<i32>(), (0..10_000).sum());
    });
}

#[test]
fn put_then_peek_then_get_returns_the_same_value_without_switching() {
    // gevent test__queue.py TestQueue.test_peek_empty... / test_put_peek_get.
    rt::run(|| {
        let (tx, rx) = channel::unbounded();
        let ran = util::Counter::new();
        let r = ran.clone();
        drop(spawn(move || r.bump()));
        tx.send("hi").unwrap();
        assert_eq!(rx.peek(), Ok("hi"));
        assert_eq!(rx.try_peek(), Ok("hi"));
        assert_eq!(rx.len(), 1, "peeking takes nothing");
        assert_eq!(rx.recv(), Ok("hi"));
        assert_eq!(ran.get(), 0);
    });
}

#[test]
fn peek_timeout_on_an_empty_channel_times_out() {
    // gevent test__queue.py TestQueue.test_peek_empty (peek with a timeout
    // in a greenlet raises Empty).
    rt::run(|| {
        let (tx, rx) = channel::unbounded::<u8>();
        assert_eq!(rx.try_peek(), Err(TryRecvError::Empty));
        assert_eq!(rx.peek_timeout(ms(1)), Err(RecvTimeoutError::Timeout));
        drop(tx);
        assert_eq!(rx.peek(), Err(channel::RecvError));
        assert_eq!(rx.try_peek(), Err(TryRecvError::Disconnected));
        assert_eq!(rx.peek_timeout(ms(1)), Err(RecvTimeoutError::Disconnected));
    });
}

#[test]
fn a_blocked_peek_wakes_on_a_send_and_leaves_the_value() {
    // gevent test__queue.py TestQueue.test_peek_multi_greenlet.
    rt::run(|| {
        let (tx, rx) = channel::unbounded();
        let r = rx.clone();
        let peeker = spawn(move || r.peek().unwrap());
        yield_now();
        assert!(!peeker.is_finished());
        tx.send(7).unwrap();
        assert_eq!(peeker.join().unwrap(), 7);
        assert_eq!(rx.try_recv(), Ok(7), "still there");
    });
}

#[test]
fn peek_on_a_rendezvous_channel_sees_the_waiting_senders_value() {
    // The sender keeps waiting: peeking is not receiving.
    rt::run(|| {
        let (tx, rx) = channel::bounded(0);
        let sender = spawn(move || tx.send("offered").unwrap());
        assert_eq!(rx.peek(), Ok("offered"));
        yield_now();
        assert!(!sender.is_finished(), "nobody received it yet");
        assert_eq!(rx.recv(), Ok("offered"));
        sender.join().unwrap();
    });
}

#[test]
fn a_plain_thread_peeks_at_a_value_a_greenlet_sends() {
    let (tx, rx) = channel::unbounded();
    let thread = std::thread::spawn(move || {
        assert_eq!(rx.peek(), Ok(5)); // blocks the thread
        rx.recv()
    });
    rt::run(move || {
        sleep(ms(5));
        tx.send(5).unwrap();
    });
    assert_eq!(thread.join().unwrap(), Ok(5));
}

#[test]
fn a_rendezvous_sender_killed_by_its_receiver_still_delivered_the_value() {
    // The receiver runs before the send returns, so it can act on the
    // sender (here: kill it) first; the value is delivered all the same, as
    // with gevent's `Channel.put`, which switches to the getter first.
    rt::run(|| {
        let (tx, rx) = channel::bounded(0);
        let sender_slot: Rc<RefCell<Option<rt::JoinHandle<()>>>> = Rc::new(RefCell::new(None));
        let slot = sender_slot.clone();
        let receiver = spawn(move || {
            let value = rx.recv().unwrap();
            slot.borrow().as_ref().expect("the sender was spawned").kill();
            value
        });
        yield_now();
        let sender = spawn(move || {
            tx.send("delivered").unwrap();
            unreachable!("killed before its send returned");
        });
        *sender_slot.borrow_mut() = Some(sender);
        assert_eq!(receiver.join().unwrap(), "delivered");
        let sender = sender_slot.borrow_mut().take().unwrap();
        assert!(sender.join().unwrap_err().is_killed());
    });
}
