//! `Event` and `AsyncResult`, ported from gevent's `test__event.py`.

mod util;

use std::cell::RefCell;
use std::panic::{self, AssertUnwindSafe};
use std::rc::Rc;
use std::time::{Duration, Instant};

use runtime_scheduler::sync::{AsyncResult, Event};
use runtime_scheduler::{self as rt, Elapsed, Handle, blocking, sleep, spawn, spawn_later, timeout, yield_now};
use util::{Counter, Log, message, ms};

#[test]
fn event_wait_timeout_returns_false_after_the_timeout() {
    // gevent test__event.py TestEventWait / "wait(timeout) obeys the
    // wait-timing contract": returns False after at least the timeout.
    rt::run(|| {
        let event = Event::new();
        let start = Instant::now();
        assert!(!event.wait_timeout(ms(15)));
        assert!(start.elapsed() >= ms(15));
        let start = Instant::now();
        assert!(!event.wait_deadline(start + ms(5)));
        assert!(start.elapsed() >= ms(5));
    });
}

#[test]
fn async_result_wait_and_get_timeouts() {
    // gevent test__event.py TestAsyncResultWait / TestAsyncResultGet: wait
    // returns False and get raises Timeout after at least the timeout.
    rt::run(|| {
        let result = AsyncResult::<u8>::new();
        let start = Instant::now();
        assert!(!result.wait_timeout(ms(10)));
        assert!(start.elapsed() >= ms(10));
        let start = Instant::now();
        assert_eq!(result.get_timeout(ms(10)), Err(Elapsed));
        assert!(start.elapsed() >= ms(10));
        assert!(!result.ready());
    });
}

#[test]
fn set_wakes_every_waiter_and_wait_returns_true() {
    // gevent test__event.py TestGeventWaitOnEvent.test_set_during_wait (a
    // waiter woken by set returns True) and TestEvent_SetThenClear.
    rt::run(|| {
        let event = Rc::new(Event::new());
        let handles: Vec<_> = (0..5)
            .map(|_| {
                let event = event.clone();
                spawn(move || event.wait_timeout(Duration::from_secs(30)))
            })
            .collect();
        yield_now();
        assert!(!event.is_set());
        event.set();
        assert!(event.is_set());
        assert!(rt::joinall(handles).into_iter().all(|woke| woke.unwrap()));
    });
}

#[test]
fn set_then_clear_still_wakes_every_current_waiter() {
    // gevent test__event.py TestEvent_SetThenClear, TestEvent_SetThenClear100
    // and TestEvent_SetThenClear1000: set then immediate clear still wakes
    // every waiter.
    rt::run(|| {
        for waiters in [1usize, 100, 1000] {
            let event = Rc::new(Event::new());
            let woken = Counter::new();
            let handles: Vec<_> = (0..waiters)
                .map(|_| {
                    let (event, woken) = (event.clone(), woken.clone());
                    spawn(move || {
                        event.wait();
                        woken.bump();
                    })
                })
                .collect();
            yield_now();
            event.set();
            event.clear();
            rt::joinall(handles);
            assert_eq!(woken.get(), waiters);
            assert!(!event.is_set());
        }
    });
}

#[test]
fn new_wait_after_clear_times_out() {
    // gevent test__event.py TestGeventWaitOnEvent.test_set_during_wait: after
    // the woken waiter clears the event, a new timed wait times out (the
    // notification must not re-wake new waiters of a now-cleared event).
    rt::run(|| {
        let event = Rc::new(Event::new());
        let e = event.clone();
        let waiter = spawn(move || {
            let first = e.wait_timeout(Duration::from_secs(30));
            e.clear();
            let second = e.wait_timeout(ms(10));
            (first, second)
        });
        yield_now();
        event.set();
        assert_eq!(waiter.join().unwrap(), (true, false));
    });
}

#[test]
fn waiter_arriving_during_notification_does_not_park() {
    // gevent test__event.py TestEventBasics.test_wait_while_notifying: gevent
    // logs [1, 2, 3] because a wait() on a set event that is still notifying
    // lets the notified waiters run first. Ours returns at once without
    // parking (waiting on a set event never switches), so the late waiter
    // logs first; the woken ones follow in FIFO order, with no extra turn of
    // the hub (nothing else runs in between).
    let order = rt::run(|| {
        let event = Rc::new(Event::new());
        let log = Log::new();
        for i in 1..=2 {
            let (event, log) = (event.clone(), log.clone());
            drop(spawn(move || {
                event.wait();
                log.push(i);
            }));
        }
        yield_now();
        event.set();
        // A greenlet made runnable after the set runs after the woken ones.
        let l = log.clone();
        drop(spawn(move || l.push(4)));
        event.wait();
        log.push(3);
        yield_now();
        log.get()
    });
    assert_eq!(order, [3, 1, 2, 4]);
}

#[test]
fn wait_on_a_set_event_returns_at_once_without_switching() {
    // gevent.md 5.2 Event case "wait([event]) twice on an already-set event
    // returns [event] both times", here without any switch to the hub.
    rt::run(|| {
        let event = Event::new();
        event.set();
        let ran = Counter::new();
        let r = ran.clone();
        drop(spawn(move || r.bump()));
        event.wait();
        event.wait();
        assert!(event.wait_timeout(Duration::ZERO));
        assert_eq!(ran.get(), 0, "waiting on a set event must not park");
    });
}

#[test]
fn async_result_hands_a_clone_to_every_getter() {
    // gevent test__event.py TestAsyncResultAsLinkTarget.test_set and
    // test__greenlet.py TestLink.test_link_to_asyncresult: every getter
    // receives the value, also those arriving after completion.
    rt::run(|| {
        let result = Rc::new(AsyncResult::new());
        let handles: Vec<_> = (0..3)
            .map(|_| {
                let result = result.clone();
                spawn(move || result.get())
            })
            .collect();
        yield_now();
        assert!(!result.ready());
        assert_eq!(result.try_get(), None);
        result.set(String::from("value"));
        assert!(rt::joinall(handles).into_iter().all(|got| got.unwrap() == "value"));
        assert_eq!(result.get(), "value");
        assert_eq!(result.get_timeout(Duration::ZERO), Ok(String::from("value")));
    });
}

#[test]
fn async_result_set_replaces_the_value() {
    // async_result.rs docs ("replacing any earlier one").
    rt::run(|| {
        let result = AsyncResult::new();
        result.set(1);
        result.set(2);
        assert_eq!(result.get(), 2);
    });
}

#[derive(Debug, PartialEq)]
struct Failure(u32);

#[test]
fn async_result_panic_is_raised_in_the_getter() {
    // gevent test__event.py TestAsyncResult.test_set_exc: set_exception wakes
    // a getter that raises exactly that object (later getters: a panic with
    // the same message, payloads cannot be cloned).
    rt::run(|| {
        let result = Rc::new(AsyncResult::<u8>::new());
        let r = result.clone();
        let getter = spawn(move || r.get());
        yield_now();
        result.set_panic(Box::new(Failure(7)));
        let payload = getter.join().unwrap_err().into_panic();
        assert_eq!(*payload.downcast::<Failure>().expect("the very payload"), Failure(7));

        let second = Rc::new(AsyncResult::<u8>::new());
        second.set_panic(Box::new("broken"));
        let first = panic::catch_unwind(AssertUnwindSafe(|| second.get())).unwrap_err();
        assert_eq!(message(&first), "broken");
        let again = panic::catch_unwind(AssertUnwindSafe(|| second.get())).unwrap_err();
        assert_eq!(message(&again), "broken");
        assert!(second.ready());
    });
}

#[test]
fn zero_timeout_interrupts_get_before_a_delayed_set() {
    // gevent test__event.py TestAsyncResult.test_set (a zero Timeout
    // interrupts get() before a delayed set).
    rt::run(|| {
        let result = Rc::new(AsyncResult::new());
        let r = result.clone();
        drop(spawn_later(ms(5), move || r.set(1)));
        assert_eq!(timeout(Duration::ZERO, || result.get()), Err(Elapsed));
        assert_eq!(result.get(), 1);
    });
}

#[test]
fn with_timeout_get_gives_the_default_when_nothing_is_set() {
    // gevent test__event.py TestAsyncResult.test_set_with_timeout
    // (with_timeout(get, timeout_value=X) returns X).
    rt::run(|| {
        let result = AsyncResult::<&str>::new();
        assert_eq!(timeout(ms(5), || result.get()).unwrap_or("X"), "X");
    });
}

#[test]
fn non_blocking_get_on_an_empty_result_fails() {
    // gevent test__event.py TestAsyncResult.test_nonblocking_get (get(block=
    // False) and get_nowait() on an empty AsyncResult raise Timeout): here
    // try_get is None and a zero-timeout get is Elapsed.
    rt::run(|| {
        let result = AsyncResult::<u8>::new();
        assert_eq!(result.try_get(), None);
        assert_eq!(result.get_timeout(Duration::ZERO), Err(Elapsed));
    });
}

thread_local! {
    static SHARED_EVENT: RefCell<Option<Rc<Event>>> = const { RefCell::new(None) };
}

#[test]
fn event_set_on_behalf_of_another_thread_wakes_a_timed_waiter() {
    // gevent.md 5.2 Event cross-thread case ("setting it from a background
    // thread while the main greenlet waits with a timeout also works,
    // repeatably"). Events are not `Send`: the thread asks the hub to set it
    // through a Handle.
    rt::run(|| {
        for _ in 0..3 {
            let event = Rc::new(Event::new());
            SHARED_EVENT.with(|slot| *slot.borrow_mut() = Some(event.clone()));
            let handle = Handle::current();
            let thread = std::thread::spawn(move || {
                std::thread::sleep(ms(5));
                handle
                    .spawn(|| SHARED_EVENT.with(|slot| slot.borrow().as_ref().expect("event installed").set()))
                    .unwrap();
            });
            assert!(event.wait_timeout(Duration::from_secs(30)));
            blocking(move || thread.join().unwrap());
            SHARED_EVENT.with(|slot| slot.borrow_mut().take());
        }
    });
}

#[test]
fn waiters_that_time_out_leave_no_trace() {
    // gevent test__semaphore.py TestSemaphoreMultiThread
    // .test_acquire_in_one_then_another_timed (a waiter that gave up leaves
    // nothing pending), for an Event.
    rt::run(|| {
        let event = Rc::new(Event::new());
        let e = event.clone();
        let gave_up = spawn(move || e.wait_timeout(ms(2)));
        assert!(!gave_up.join().unwrap());
        let e = event.clone();
        let patient = spawn(move || {
            e.wait();
            "woken"
        });
        sleep(ms(1));
        event.set();
        assert_eq!(patient.join().unwrap(), "woken");
        assert!(format!("{event:?}").contains("waiters: 0"));
    });
}
