//! Cleanup may park: a greenlet that is unwinding (killed, timed out,
//! panicking) can block in its destructors; a second kill or timeout ends the
//! wait it is in instead of unwinding it again; shutdown gives cleanup a grace
//! period and leaks greenlets that refuse to die.

mod util;

use std::cell::Cell;
use std::panic::{self, AssertUnwindSafe};
use std::rc::Rc;
use std::time::{Duration, Instant};

use runtime_scheduler::sync::{Mutex, channel};
use runtime_scheduler::{self as rt, Group, sleep, spawn, task, timeout, yield_now};
use util::{Log, ms};

/// Runs `f` when dropped.
struct OnDrop<F: FnMut()>(F);

impl<F: FnMut()> Drop for OnDrop<F> {
    fn drop(&mut self) {
        (self.0)();
    }
}

#[test]
fn a_killed_greenlet_may_park_in_its_destructors() {
    rt::run(|| {
        let (tx, rx) = channel::unbounded();
        let victim = spawn(move || {
            let _goodbye = OnDrop(move || {
                let start = Instant::now();
                sleep(ms(20));
                tx.send(start.elapsed()).unwrap();
            });
            sleep(Duration::from_secs(60));
        });
        yield_now();
        victim.kill();
        assert!(victim.join().unwrap_err().is_killed());
        let slept = rx.recv().expect("the destructor ran to its end");
        assert!(slept >= ms(20), "the destructor's sleep parked for its duration: {slept:?}");
    });
}

#[test]
fn a_panicking_greenlet_may_park_in_its_destructors() {
    rt::run(|| {
        let (tx, rx) = channel::unbounded();
        let victim = spawn(move || {
            let _goodbye = OnDrop(move || {
                sleep(ms(5));
                tx.send("flushed").unwrap();
            });
            panic!("handler bug");
        });
        assert!(victim.join().unwrap_err().is_panic());
        assert_eq!(rx.recv(), Ok("flushed"));
    });
}

#[test]
fn group_join_in_a_destructor_of_a_killed_greenlet_completes() {
    // It used to spin at 100 % CPU: joining refused to park while unwinding
    // and `Group::join` retried at once. Run in a child, killed if it hangs.
    const TEST: &str = "group_join_in_a_destructor_of_a_killed_greenlet_completes";
    if !util::is_child(TEST) {
        let output = runtime_testkit::ChildTest::new(TEST).deadline(Duration::from_secs(30)).run();
        assert!(output.status.success(), "{}", util::output_text(&output));
        return;
    }
    rt::run(|| {
        let log = Log::new();
        let l = log.clone();
        let owner = spawn(move || {
            let group = Rc::new(Group::new());
            for i in 0..3 {
                let l = l.clone();
                drop(group.spawn(move || {
                    let _note = OnDrop(move || l.push(format!("member {i} unwound")));
                    sleep(Duration::from_secs(60));
                }));
            }
            let g = group.clone();
            let _stop_members = OnDrop(move || {
                g.kill();
                g.join();
            });
            sleep(Duration::from_secs(60));
        });
        yield_now();
        owner.kill();
        assert!(owner.join().unwrap_err().is_killed());
        let mut unwound = log.get();
        unwound.sort();
        assert_eq!(unwound, ["member 0 unwound", "member 1 unwound", "member 2 unwound"]);
    });
}

#[test]
fn a_second_kill_ends_the_wait_of_an_unwinding_greenlet() {
    rt::run(|| {
        let log = Log::new();
        let l = log.clone();
        let (_tx, rx) = channel::unbounded::<u8>();
        let victim = spawn(move || {
            let _cleanup = OnDrop(move || {
                // Waits for a goodbye acknowledgement that never comes.
                l.push(format!("{:?}", rx.recv_timeout(Duration::from_secs(60))));
                l.push(format!("sleep returned after {:?}", {
                    let start = Instant::now();
                    sleep(Duration::from_secs(60));
                    start.elapsed() < Duration::from_secs(60)
                }));
            });
            sleep(Duration::from_secs(60));
        });
        yield_now();
        victim.kill(); // unwinds it; its cleanup parks in `recv_timeout`
        yield_now();
        assert!(!victim.is_finished());
        victim.kill(); // ends that wait as a timeout
        yield_now();
        assert!(!victim.is_finished(), "parked again, in `sleep`");
        victim.kill(); // ends the sleep early
        assert!(victim.join().unwrap_err().is_killed());
        assert_eq!(log.get(), ["Err(Timeout)", "sleep returned after true"]);
    });
}

#[test]
fn an_expired_timeout_ends_the_wait_of_an_unwinding_greenlet() {
    rt::run(|| {
        let log = Log::new();
        let l = log.clone();
        let victim = spawn(move || {
            let (_tx, rx) = channel::unbounded::<u8>();
            let result = timeout(ms(30), move || {
                let _cleanup = OnDrop(move || l.push(format!("{:?}", rx.recv_timeout(Duration::from_secs(60)))));
                sleep(Duration::from_secs(60));
            });
            assert!(result.is_err(), "unreachable: the kill unwinds through the scope");
        });
        yield_now();
        victim.kill(); // the cleanup parks; then the scope's deadline passes
        assert!(victim.join().unwrap_err().is_killed());
        assert_eq!(log.get(), ["Err(Timeout)"]);
    });
}

#[test]
fn a_lock_taken_in_cleanup_waits_for_its_holder_even_after_a_second_kill() {
    rt::run(|| {
        let mutex = Rc::new(Mutex::new(0));
        let held = mutex.lock();
        let m = mutex.clone();
        let victim = spawn(move || {
            let _cleanup = OnDrop(move || *m.lock() += 1);
            sleep(Duration::from_secs(60));
        });
        yield_now();
        victim.kill();
        yield_now();
        victim.kill(); // a lock cannot time out: it waits on
        yield_now();
        assert!(!victim.is_finished());
        drop(held);
        assert!(victim.join().unwrap_err().is_killed());
        assert_eq!(*mutex.lock(), 1);
    });
}

#[test]
fn greenlets_alive_at_the_end_of_run_finish_their_cleanup() {
    let flushed = Rc::new(Cell::new(false));
    let f = flushed.clone();
    rt::run(move || {
        drop(spawn(move || {
            let _flush = OnDrop(move || {
                sleep(ms(10));
                f.set(true);
            });
            sleep(Duration::from_secs(60));
        }));
        yield_now();
    });
    assert!(flushed.get(), "the killed greenlet's cleanup parked and finished before `run` returned");
}

#[test]
fn run_returns_after_the_grace_period_when_a_greenlet_refuses_to_die() {
    // A greenlet that catches its kill and goes on would keep `run` from
    // returning. After the grace period it is reported by name and leaked.
    const TEST: &str = "run_returns_after_the_grace_period_when_a_greenlet_refuses_to_die";
    if !util::is_child(TEST) {
        let output = runtime_testkit::ChildTest::new(TEST).deadline(Duration::from_secs(30)).run();
        let text = util::output_text(&output);
        assert!(output.status.success(), "{text}");
        util::assert_contains(&text, &["shutting down", "'stubborn'", "leaked", "returned after"]);
        return;
    }
    let start = Instant::now();
    rt::Builder::new().shutdown_grace(ms(200)).run(|| {
        drop(task::Builder::new().name("stubborn").spawn(|| {
            loop {
                let _ = panic::catch_unwind(AssertUnwindSafe(|| sleep(Duration::from_secs(60))));
            }
        }));
        sleep(ms(10));
    });
    let took = start.elapsed();
    assert!(took >= ms(200), "it waited for the grace period: {took:?}");
    println!("returned after {took:?}");
}

#[test]
fn dump_lists_every_greenlet_with_what_it_waits_on() {
    rt::run(|| {
        let mutex = Rc::new(Mutex::new(()));
        let held = mutex.lock();
        let (tx, rx) = channel::bounded::<u8>(1);
        let sleeper = task::Builder::new().name("sleeper").spawn(|| sleep(Duration::from_secs(30)));
        let m = mutex.clone();
        let locker = task::Builder::new().name("locker").spawn(move || drop(m.lock()));
        let receiver = task::Builder::new().name("receiver").spawn(move || rx.recv().ok());
        let sleeper_id = sleeper.id();
        let joiner = task::Builder::new().name("joiner").spawn(move || sleeper.join().is_ok());
        yield_now(); // the four park
        let runnable = task::Builder::new().name("runnable").spawn(|| ());

        let dump = rt::dump();
        let text = dump.to_string();
        let find = |name: &str| {
            dump.greenlets().iter().find(|g| g.name() == Some(name)).unwrap_or_else(|| panic!("{name} in {text}"))
        };
        assert_eq!(find("main").state(), "running");
        assert_eq!(find("runnable").state(), "runnable");
        for name in ["sleeper", "locker", "receiver", "joiner"] {
            assert_eq!(find(name).state(), "parked", "{text}");
            assert!(find(name).parked_for().is_some());
            assert!(find(name).spawned_at().file().ends_with("cleanup.rs"), "{text}");
        }
        let sleeping = find("sleeper").waiting_on().unwrap();
        assert!(sleeping.starts_with("sleep, ") && sleeping.ends_with(" s left"), "{sleeping}");
        assert_eq!(find("locker").waiting_on(), Some("Mutex::lock"));
        assert_eq!(find("receiver").waiting_on(), Some("Receiver::recv"));
        assert_eq!(find("joiner").waiting_on(), Some(format!("join #{sleeper_id}").as_str()));
        util::assert_contains(&text, &["6 greenlet(s):", "'locker' parked for ", "on Mutex::lock (spawned at "]);

        drop(held);
        tx.send(1).unwrap();
        assert_eq!(receiver.join().unwrap(), Some(1));
        locker.join().unwrap();
        runnable.join().unwrap();
        drop(joiner);
    });
    assert!(rt::dump().greenlets().is_empty(), "outside a runtime the dump is empty");
}
