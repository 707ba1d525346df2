//! `JoinableQueue`, `LifoQueue` and `PriorityQueue`, ported from gevent's
//! `test__queue.py` (and CPython's `Queue.shutdown` cases it carries): FIFO
//! service of waiters, timeouts, joins, shutdown, and that no value is ever
//! lost, also across hubs and plain threads.

mod util;

use std::sync::Arc;
use std::thread;
use std::time::Duration;

use runtime_scheduler::sync::{
    GetTimeoutError, JoinableQueue, LifoQueue, PriorityQueue, PutTimeoutError, ShutDown, TaskDoneError, TryGetError,
    TryPutError,
};
use runtime_scheduler::{self as rt, spawn, yield_now};
use util::{Counter, Log, ms};

#[test]
fn queues_are_send_and_sync() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<JoinableQueue<String>>();
    send_sync::<LifoQueue<String>>();
    send_sync::<PriorityQueue<String>>();
}

#[test]
fn put_then_get_returns_the_value_without_switching() {
    // gevent test__queue.py TestQueue.test_peek_empty / test_send_first: put
    // then get on a queue with room never parks.
    rt::run(|| {
        let queue = JoinableQueue::new(None);
        let ran = Counter::new();
        let r = ran.clone();
        drop(spawn(move || r.bump()));
        queue.put("hi").unwrap();
        assert_eq!(queue.get(), Ok("hi"));
        assert_eq!(ran.get(), 0, "neither put nor get switched");
    });
}

#[test]
fn try_put_on_a_size_one_queue_fills_it() {
    // gevent test__queue.py TestPutNowait.test_put_nowait_simple.
    rt::run(|| {
        let queue = JoinableQueue::new(Some(1));
        assert_eq!(queue.try_put(1), Ok(()));
        assert!(queue.is_full());
        assert_eq!(queue.try_put(2), Err(TryPutError::Full(2)));
        assert_eq!(queue.try_put(2).unwrap_err().into_inner(), 2);
        assert_eq!(queue.len(), 1);
    });
}

#[test]
fn a_blocked_getter_gets_a_value_put_later() {
    // gevent test__queue.py TestQueue.test_get_wakes_on_put (and
    // TestPutNowait.test_put_nowait_unlock).
    rt::run(|| {
        let queue = Arc::new(JoinableQueue::new(None));
        let q = queue.clone();
        let getter = spawn(move || q.get().unwrap());
        yield_now();
        assert!(!getter.is_finished());
        queue.try_put("later").unwrap();
        assert_eq!(getter.join().unwrap(), "later");
        assert!(queue.is_empty(), "handed over, never stored");
    });
}

#[test]
fn try_get_twice_on_one_value_and_it_unblocks_a_putter() {
    // gevent test__queue.py TestGetNowait.test_get_nowait_simple and
    // test_get_nowait_unlock.
    rt::run(|| {
        let queue = Arc::new(JoinableQueue::new(Some(1)));
        queue.put(1).unwrap();
        let q = queue.clone();
        let putter = spawn(move || q.put(2).unwrap());
        yield_now();
        assert!(!putter.is_finished(), "the queue is full");
        assert_eq!(queue.try_get(), Ok(1));
        assert_eq!(queue.try_get(), Ok(2), "the waiting putter's value moved in");
        assert_eq!(queue.try_get(), Err(TryGetError::Empty));
        putter.join().unwrap();
    });
}

#[test]
fn a_putter_blocks_on_a_full_queue_until_a_get_makes_room() {
    // gevent test__queue.py TestQueue.test_max_size.
    let log = rt::run(|| {
        let queue = Arc::new(JoinableQueue::new(Some(2)));
        let log = Log::new();
        let (q, l) = (queue.clone(), log.clone());
        let putter = spawn(move || {
            for item in ["a", "b", "c"] {
                q.put(item).unwrap();
                l.push(format!("put {item}"));
            }
        });
        yield_now();
        log.push("checking".to_string());
        for _ in 0..3 {
            let item = queue.get().unwrap();
            log.push(format!("got {item}"));
        }
        putter.join().unwrap();
        log.get()
    });
    assert_eq!(log, ["put a", "put b", "checking", "got a", "got b", "got c", "put c"]);
}

#[test]
fn blocked_getters_each_get_one_value_in_fifo_order() {
    // gevent test__queue.py TestQueue.test_multiple_waiters.
    rt::run(|| {
        let queue = Arc::new(JoinableQueue::new(None));
        let getters: Vec<_> = (0..4)
            .map(|_| {
                let q = queue.clone();
                spawn(move || q.get().unwrap())
            })
            .collect();
        yield_now();
        for i in 0..4 {
            queue.put(i).unwrap();
        }
        let got: Vec<i32> = getters.into_iter().map(|g| g.join().unwrap()).collect();
        assert_eq!(got, [0, 1, 2, 3]);
    });
}

#[test]
fn a_getter_that_timed_out_does_not_take_a_later_value() {
    // gevent test__queue.py TestQueue.test_waiters_that_cancel.
    rt::run(|| {
        let queue = JoinableQueue::new(None);
        assert_eq!(queue.get_timeout(Duration::ZERO), Err(GetTimeoutError::Timeout));
        assert_eq!(queue.get_timeout(ms(1)), Err(GetTimeoutError::Timeout));
        queue.put("hi").unwrap();
        assert_eq!(queue.get(), Ok("hi"));
    });
}

#[test]
fn when_one_of_two_getters_times_out_the_other_gets_the_value() {
    // gevent test__queue.py TestQueue.test_two_waiters_one_dies.
    rt::run(|| {
        let queue = Arc::new(JoinableQueue::new(None));
        let q = queue.clone();
        let quitter = spawn(move || q.get_timeout(ms(1)));
        let q = queue.clone();
        let waiter = spawn(move || q.get().unwrap());
        assert_eq!(quitter.join().unwrap(), Err(GetTimeoutError::Timeout));
        queue.put("hi").unwrap();
        assert_eq!(waiter.join().unwrap(), "hi");
    });
}

#[test]
fn a_getter_killed_after_the_hand_off_gives_the_value_back() {
    // As test_waiters_that_cancel, for a kill: the value handed to a getter
    // that is killed before it ran again goes back to the front.
    rt::run(|| {
        let queue = Arc::new(JoinableQueue::new(None));
        let q = queue.clone();
        let doomed = spawn(move || q.get().unwrap());
        yield_now();
        queue.put("precious").unwrap();
        queue.put("next").unwrap();
        doomed.kill();
        assert!(doomed.join().unwrap_err().is_killed());
        assert_eq!(queue.try_get(), Ok("precious"));
        assert_eq!(queue.try_get(), Ok("next"));
    });
}

#[test]
fn put_timeout_on_a_full_queue_gives_the_value_back() {
    // gevent test__queue.py TestTimeouts (put with a timeout raises Full).
    rt::run(|| {
        let queue = JoinableQueue::new(Some(1));
        queue.put(1).unwrap();
        let err = queue.put_timeout(2, ms(1)).unwrap_err();
        assert!(err.is_timeout());
        assert_eq!(err, PutTimeoutError::Timeout(2));
        assert_eq!(queue.len(), 1);
        assert_eq!(queue.unfinished_tasks(), 1, "a failed put is not a task");
    });
}

#[test]
fn some_zero_is_unbounded_as_in_gevent() {
    let queue = JoinableQueue::new(Some(0));
    for i in 0..100 {
        queue.try_put(i).unwrap();
    }
    assert_eq!(queue.maxsize(), None);
    assert!(!queue.is_full());
}

#[test]
fn task_done_counts_down_unfinished_tasks() {
    // gevent test__queue.py TestJoinableQueue.test_task_done.
    let queue = JoinableQueue::new(None);
    queue.put(1).unwrap();
    queue.put(2).unwrap();
    assert_eq!(queue.unfinished_tasks(), 2);
    queue.get().unwrap();
    assert_eq!(queue.unfinished_tasks(), 2, "a get is not a done");
    queue.task_done().unwrap();
    assert_eq!(queue.unfinished_tasks(), 1);
}

#[test]
fn task_done_called_too_often_is_an_error() {
    // CPython test_queue: "task_done() called too many times" is a ValueError.
    let queue = JoinableQueue::new(None);
    assert_eq!(queue.task_done(), Err(TaskDoneError));
    queue.put(()).unwrap();
    queue.get().unwrap();
    assert_eq!(queue.task_done(), Ok(()));
    assert_eq!(queue.task_done(), Err(TaskDoneError));
    assert!(TaskDoneError.to_string().contains("task_done"));
}

#[test]
fn join_on_a_fresh_queue_returns_without_switching() {
    // gevent test__queue.py TestJoinableQueue.test_join_without_put
    // (no switch).
    rt::run(|| {
        let queue = JoinableQueue::<u8>::new(None);
        let ran = Counter::new();
        let r = ran.clone();
        drop(spawn(move || r.bump()));
        queue.join();
        assert!(queue.join_timeout(Duration::ZERO));
        assert_eq!(ran.get(), 0);
    });
}

#[test]
fn join_waits_until_every_value_is_done() {
    // CPython test_queue.BaseQueueTestMixin.queue_join_test.
    rt::run(|| {
        let queue = Arc::new(JoinableQueue::new(Some(3)));
        let done = Log::new();
        let workers: Vec<_> = (0..2)
            .map(|_| {
                let (q, d) = (queue.clone(), done.clone());
                spawn(move || {
                    while let Ok(n) = q.get() {
                        rt::sleep(ms(1));
                        d.push(n);
                        q.task_done().unwrap();
                    }
                })
            })
            .collect();
        for n in 0..10 {
            queue.put(n).unwrap();
        }
        assert!(!queue.join_timeout(Duration::ZERO), "the workers are still at it");
        queue.join();
        assert_eq!(done.len(), 10);
        assert_eq!(queue.unfinished_tasks(), 0);
        queue.shutdown(false);
        rt::joinall(workers);
    });
}

#[test]
fn shutdown_refuses_puts_lets_the_rest_be_got_then_refuses_gets() {
    // gevent test__queue.py TestShutdown (non-immediate): puts raise
    // ShutDown; what is left can still be got and marked done; join returns;
    // then gets raise ShutDown, blocking, non-blocking and with a timeout.
    rt::run(|| {
        let queue = JoinableQueue::new(None);
        queue.put(1).unwrap();
        queue.put(2).unwrap();
        queue.shutdown(false);
        assert!(queue.is_shut_down());
        assert_eq!(queue.put(3), Err(ShutDown(3)));
        assert_eq!(queue.try_put(3), Err(TryPutError::ShutDown(3)));
        assert!(queue.put_timeout(3, ms(1)).unwrap_err().is_shut_down());
        assert_eq!(queue.get(), Ok(1));
        assert_eq!(queue.try_get(), Ok(2));
        queue.task_done().unwrap();
        queue.task_done().unwrap();
        queue.join();
        assert_eq!(queue.get(), Err(ShutDown(())));
        assert_eq!(queue.try_get(), Err(TryGetError::ShutDown));
        assert_eq!(queue.get_timeout(ms(1)), Err(GetTimeoutError::ShutDown));
    });
}

#[test]
fn shutdown_wakes_blocked_getters_and_putters_with_an_error() {
    // Python 3.13 Queue.shutdown: "All blocked callers of put() and get()
    // will be unblocked" and raise ShutDown; a putter gets its value back.
    rt::run(|| {
        let empty = Arc::new(JoinableQueue::<&str>::new(None));
        let full = Arc::new(JoinableQueue::new(Some(1)));
        full.put("stored").unwrap();
        let q = empty.clone();
        let getter = spawn(move || q.get());
        let q = full.clone();
        let putter = spawn(move || q.put("waiting"));
        yield_now();
        empty.shutdown(false);
        full.shutdown(false);
        assert_eq!(getter.join().unwrap(), Err(ShutDown(())));
        assert_eq!(putter.join().unwrap().unwrap_err().into_inner(), "waiting");
        assert_eq!(full.try_get(), Ok("stored"), "a non-immediate shutdown keeps what was put");
    });
}

#[test]
fn immediate_shutdown_drops_the_rest_and_releases_join() {
    // gevent test__queue.py TestShutdown (immediate): gets raise at once,
    // task_done raises ValueError, join returns.
    rt::run(|| {
        let queue = std::rc::Rc::new(JoinableQueue::new(None));
        let drops = util::Drops::new();
        queue.put(drops.guard()).unwrap();
        queue.put(drops.guard()).unwrap();
        let q = queue.clone();
        let joiner = spawn(move || q.join());
        yield_now();
        assert!(!joiner.is_finished());
        queue.shutdown(true);
        assert_eq!(drops.count(), 2, "the values left were dropped");
        joiner.join().unwrap();
        assert_eq!(queue.unfinished_tasks(), 0);
        assert!(queue.try_get().unwrap_err().is_shut_down());
        assert_eq!(queue.task_done(), Err(TaskDoneError));
    });
}

#[test]
fn lifo_queue_hands_out_the_last_value_first() {
    // gevent test__queue.py (LifoQueue through the generic cases).
    rt::run(|| {
        let stack = Arc::new(LifoQueue::new(Some(2)));
        stack.put(1).unwrap();
        stack.put(2).unwrap();
        let s = stack.clone();
        let putter = spawn(move || s.put(3).unwrap());
        yield_now();
        assert!(!putter.is_finished(), "full");
        assert_eq!(stack.get(), Ok(2));
        putter.join().unwrap();
        assert_eq!(stack.try_get(), Ok(3));
        assert_eq!(stack.try_get(), Ok(1));
        assert_eq!(stack.try_get(), Err(TryGetError::Empty));
        let s = stack.clone();
        let getter = spawn(move || s.get().unwrap());
        yield_now();
        stack.put(4).unwrap();
        assert_eq!(getter.join().unwrap(), 4);
        assert!(stack.is_empty());
        stack.shutdown(false);
        assert_eq!(stack.put(5), Err(ShutDown(5)));
    });
}

#[test]
fn priority_queue_hands_out_the_smallest_value_first() {
    // gevent test__queue.py (PriorityQueue through the generic cases).
    rt::run(|| {
        let queue = Arc::new(PriorityQueue::new(None));
        for n in [5, 1, 4, 2, 3] {
            queue.put(n).unwrap();
        }
        assert_eq!(queue.len(), 5);
        let got: Vec<i32> = (0..5).map(|_| queue.get().unwrap()).collect();
        assert_eq!(got, [1, 2, 3, 4, 5]);
        let q = queue.clone();
        let getter = spawn(move || q.get().unwrap());
        yield_now();
        queue.put(9).unwrap();
        assert_eq!(getter.join().unwrap(), 9);
        queue.shutdown(true);
        assert_eq!(queue.get(), Err(ShutDown(())));
    });
}

#[test]
fn a_queue_between_two_hubs_and_a_plain_thread_loses_nothing() {
    // gevent test__queue.py has no threads; this is the sync module's promise
    // (see threads.rs): producers on a hub and a plain thread, consumers on
    // another hub and a plain thread, a small bound, join at the end.
    const N: usize = 2_000;
    let queue = Arc::new(JoinableQueue::new(Some(4)));
    let total = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let consumer = |queue: Arc<JoinableQueue<usize>>, total: Arc<std::sync::atomic::AtomicUsize>| {
        move || {
            while let Ok(n) = queue.get() {
                total.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
                queue.task_done().unwrap();
            }
        }
    };
    let hub_consumer = thread::spawn({
        let consume = consumer(queue.clone(), total.clone());
        move || rt::run(consume)
    });
    let thread_consumer = thread::spawn(consumer(queue.clone(), total.clone()));
    let q = queue.clone();
    let thread_producer = thread::spawn(move || {
        for n in 0..N {
            q.put(n).unwrap();
        }
    });
    let q = queue.clone();
    rt::run(move || {
        for n in N..2 * N {
            q.put(n).unwrap();
        }
    });
    thread_producer.join().unwrap();
    queue.join();
    queue.shutdown(false);
    hub_consumer.join().unwrap();
    thread_consumer.join().unwrap();
    assert_eq!(total.load(std::sync::atomic::Ordering::Relaxed), (0..2 * N).sum::<usize>());
}

#[test]
fn errors_debug_without_the_value_and_display() {
    assert_eq!(format!("{:?}", ShutDown(5)), "ShutDown(..)");
    assert_eq!(format!("{:?}", TryPutError::Full(5)), "Full(..)");
    assert_eq!(format!("{:?}", PutTimeoutError::Timeout(5)), "Timeout(..)");
    assert_eq!(format!("{:?}", TryGetError::Empty), "Empty");
    assert_eq!(format!("{:?}", GetTimeoutError::ShutDown), "ShutDown");
    assert_eq!(ShutDown(()).to_string(), "the queue was shut down");
    assert!(TryPutError::Full(()).to_string().contains("full"));
    assert_eq!(TryGetError::from(ShutDown(())), TryGetError::ShutDown);
    assert_eq!(PutTimeoutError::from(ShutDown(1)), PutTimeoutError::ShutDown(1));
    let _: &dyn std::error::Error = &GetTimeoutError::Timeout;
}
