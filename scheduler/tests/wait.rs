//! `sync::wait` (gevent's `wait`/`iwait`) over events, results, handles
//! and semaphores, ported from gevent's `test__event.py` and
//! `test__iwait.py`.

mod util;

use std::sync::Arc;
use std::thread;
use std::time::Duration;

use runtime_scheduler::sync::{AsyncResult, Event, Semaphore, channel, wait};
use runtime_scheduler::{self as rt, spawn, yield_now};
use util::ms;

/// Sets the items of `events` and `results` in turn, alternating, one per
/// turn of the hub (gevent's "a sender sets one per period").
fn set_in_turn(events: &[Arc<Event>], results: &[Arc<AsyncResult<u8>>]) -> rt::JoinHandle<()> {
    let (events, results) = (events.to_vec(), results.to_vec());
    spawn(move || {
        for (event, result) in events.iter().zip(&results) {
            yield_now();
            event.set();
            yield_now();
            result.set(1);
        }
    })
}

#[test]
fn wait_returns_count_items_in_the_order_they_became_ready() {
    // gevent test__event.py TestWait_count1 / count2 / notimeout: with
    // count None, 1 and 2, wait returns that many, in the order set.
    rt::run(|| {
        for count in [None, Some(1), Some(2)] {
            let events: Vec<_> = (0..2).map(|_| Arc::new(Event::new())).collect();
            let results: Vec<_> = (0..2).map(|_| Arc::new(AsyncResult::new())).collect();
            let setter = set_in_turn(&events, &results);
            // Listed out of order: the result tells the readiness order.
            let items: [&dyn rt::sync::Waitable; 4] = [&*results[1], &*events[1], &*results[0], &*events[0]];
            let ready = wait(&items, count, None);
            let expected = [3, 2, 1, 0];
            assert_eq!(ready, expected[..count.unwrap_or(4)], "count {count:?}");
            setter.join().unwrap();
        }
    });
}

#[test]
fn wait_with_a_timeout_returns_what_became_ready_before_it() {
    // gevent test__event.py TestWait_timeout: the sender stops after two.
    rt::run(|| {
        let events: Vec<_> = (0..2).map(|_| Arc::new(Event::new())).collect();
        let results: Vec<_> = (0..2).map(|_| Arc::new(AsyncResult::new())).collect();
        set_in_turn(&events[..1], &results[..1]).join().unwrap();
        let items: [&dyn rt::sync::Waitable; 4] = [&*events[0], &*results[0], &*events[1], &*results[1]];
        assert_eq!(wait(&items, None, Some(ms(5))), [0, 1]);
        assert_eq!(wait(&items, Some(3), Some(Duration::ZERO)), [0, 1]);
    });
}

#[test]
fn waiting_twice_on_a_set_event_returns_it_twice() {
    // gevent test__event.py TestEvent.test_wait_while_notifying... /
    // test__iwait.py: wait([event]) on a set event returns [event] each time.
    rt::run(|| {
        let event = Event::new();
        event.set();
        assert_eq!(wait(&[&event], None, None), [0]);
        assert_eq!(wait(&[&event], None, None), [0]);
    });
}

#[test]
fn waiting_on_an_empty_result_times_out_with_nothing() {
    // gevent test__event.py TestAsyncResultWait (wait([AsyncResult()],
    // timeout) returns an empty list).
    rt::run(|| {
        let result = AsyncResult::<u8>::new();
        assert!(wait(&[&result], None, Some(ms(1))).is_empty());
        assert!(wait(&[], None, None).is_empty(), "nothing to wait for");
        assert!(wait(&[&result], Some(0), None).is_empty(), "nothing wanted");
    });
}

#[test]
fn wait_sees_a_result_set_by_a_plain_thread() {
    // gevent test__event.py TestAsyncResultCrossThread: set from another
    // thread while the hub waits.
    let result = Arc::new(AsyncResult::new());
    let r = result.clone();
    let setter = thread::spawn(move || {
        thread::sleep(ms(5));
        r.set("from a thread");
    });
    rt::run(move || {
        assert_eq!(wait(&[&*result], None, Some(Duration::from_secs(10))), [0]);
        assert_eq!(result.get(), "from a thread");
    });
    setter.join().unwrap();
}

#[test]
fn wait_mixes_handles_semaphores_and_receivers_and_consumes_nothing() {
    // gevent.wait over greenlets and locks; waiting takes no value or permit.
    rt::run(|| {
        let semaphore = Semaphore::new(0);
        let (tx, rx) = channel::unbounded();
        let worker = spawn(|| 7);
        tx.send("kept").unwrap();
        assert_eq!(wait(&[&semaphore, &rx, &worker], Some(2), None), [1, 2]);
        semaphore.release();
        assert_eq!(wait(&[&semaphore, &rx, &worker], None, None), [0, 1, 2]);
        assert_eq!(rx.try_recv(), Ok("kept"));
        assert_eq!(semaphore.available(), 1);
        assert_eq!(worker.join().unwrap(), 7);
    });
}
