//! `JoinHandle::link`, `link_value`, `link_exception`, `unlink`,
//! `has_links` and `kill_with`, ported from gevent's `test__greenlet.py`
//! (links, the kill matrix) and `test__event.py` (links as result targets).

mod util;

use std::panic;
use std::time::Duration;

use runtime_scheduler::sync::{AsyncResult, channel};
use runtime_scheduler::{self as rt, sleep, spawn, spawn_later, yield_now};
use util::{Counter, Log, ms};

#[test]
fn links_get_the_outcome_once_in_the_order_they_were_made() {
    // gevent test__greenlet.py TestLink / test__order (links run in
    // registration order, each exactly once) and TestStuff (after the
    // function returns, each link is called exactly once).
    let log = rt::run(|| {
        let log = Log::new();
        let h = spawn(|| 7);
        for i in 0..100 {
            let l = log.clone();
            h.link(move |outcome| l.push((i, *outcome.as_ref().unwrap())));
        }
        assert_eq!(h.has_links(), 100);
        assert_eq!(h.join().unwrap(), 7);
        assert!(rt::wait_idle(Some(Duration::from_secs(30))), "the links ran");
        log.get()
    });
    assert_eq!(log, (0..100).map(|i| (i, 7)).collect::<Vec<_>>());
}

#[test]
fn links_run_after_the_greenlet_is_finished() {
    // gevent test__greenlet.py TestStuff: inside a link the greenlet is
    // dead and its join returns at once.
    rt::run(|| {
        let (tx, rx) = channel::unbounded();
        let h = std::rc::Rc::new(spawn(|| sleep(ms(1))));
        let seen = h.clone();
        h.link(move |_| tx.send(seen.is_finished()).unwrap());
        assert_eq!(rx.recv(), Ok(true));
    });
}

#[test]
fn link_value_and_link_exception_filter_on_the_outcome() {
    // gevent test__greenlet.py TestLink (for a successful greenlet link and
    // link_value fire, link_exception never; for a failing one the reverse)
    // and test__event.py TestAsyncResultAsLinkTarget.
    rt::run(|| {
        let log = Log::new();
        let ok = spawn(|| 1);
        let failed = spawn(|| -> i32 { panic!("boom") });
        for (name, h) in [("ok", &ok), ("failed", &failed)] {
            let l = log.clone();
            h.link(move |o| l.push(format!("{name} link {}", o.is_ok())));
            let l = log.clone();
            h.link_value(move |_| l.push(format!("{name} value")));
            let l = log.clone();
            h.link_exception(move |o| l.push(format!("{name} exception: {}", o.as_ref().unwrap_err())));
        }
        let result = std::rc::Rc::new(AsyncResult::new());
        let r = result.clone();
        ok.link_value(move |o| r.set(*o.as_ref().unwrap()));
        assert_eq!(result.get(), 1);
        drop((ok.join(), failed.join()));
        assert!(rt::wait_idle(Some(Duration::from_secs(30))), "the links ran");
        let got = log.get();
        assert_eq!(got.len(), 4, "{got:?}");
        assert_eq!(got[..2], ["ok link true", "ok value"]);
        assert_eq!(got[2], "failed link false");
        assert!(got[3].starts_with("failed exception: ") && got[3].ends_with("panicked: boom"), "{}", got[3]);
    });
}

#[test]
fn a_killed_greenlet_fires_link_only() {
    // gevent test__greenlet.py TestKill*: links fire exactly once for a
    // killed greenlet, also one killed before it ran (its body never runs).
    // Here a plain kill is neither a value nor a panic.
    rt::run(|| {
        let log = Log::new();
        let ran = Counter::new();
        for started in [false, true] {
            let r = ran.clone();
            let h = spawn(move || {
                r.bump();
                sleep(Duration::from_secs(30));
            });
            if started {
                yield_now();
            }
            let l = log.clone();
            h.link(move |o| l.push(format!("link killed={}", o.as_ref().unwrap_err().is_killed())));
            let l = log.clone();
            h.link_value(move |_| l.push("value".to_string()));
            let l = log.clone();
            h.link_exception(move |_| l.push("exception".to_string()));
            h.kill();
            h.kill();
            assert!(h.join().unwrap_err().is_killed());
            assert!(rt::wait_idle(Some(Duration::from_secs(30))), "the links ran");
        }
        assert_eq!(ran.get(), 1, "killed before it ran: never ran");
        assert_eq!(log.get(), ["link killed=true", "link killed=true"]);
    });
}

#[test]
fn linking_after_the_greenlet_finished_still_fires() {
    // gevent test__greenlet.py TestStuff / test__event.py (an AsyncResult
    // linked after completion still gets the value).
    rt::run(|| {
        let h = spawn(|| "done");
        yield_now();
        assert!(h.is_finished());
        let (tx, rx) = channel::unbounded();
        let tx2 = tx.clone();
        h.link(move |o| tx.send(*o.as_ref().unwrap()).unwrap());
        h.link_exception(move |_| tx2.send("never").unwrap());
        assert_eq!(rx.recv(), Ok("done"));
        assert_eq!(h.join().unwrap(), "done");
        assert_eq!(rx.recv(), Err(channel::RecvError), "link_exception did not fire");
    });
}

#[test]
fn unlink_removes_a_link_even_from_an_earlier_link() {
    // gevent test__greenlet.py TestUnlink (1 -> 0 links) and
    // test_unlink_from_within (a listener that unlinks a later listener
    // keeps it from running).
    rt::run(|| {
        let log = Log::new();
        let h = std::rc::Rc::new(spawn_later(ms(1), || ()));
        let l = log.clone();
        let dropped = h.link(move |_| l.push("unlinked"));
        assert_eq!(h.has_links(), 1);
        h.unlink(dropped);
        assert_eq!(h.has_links(), 0);
        h.unlink(dropped); // unlinking twice is fine
        let (l, me) = (log.clone(), h.clone());
        let later = std::rc::Rc::new(std::cell::Cell::new(None));
        let target = later.clone();
        h.link(move |_| {
            l.push("first");
            me.unlink(target.get().unwrap());
        });
        let l = log.clone();
        later.set(Some(h.link(move |_| l.push("second"))));
        let l = log.clone();
        h.link(move |_| l.push("third"));
        assert_eq!(h.has_links(), 3);
        assert!(rt::wait_idle(Some(Duration::from_secs(30))), "it and its links ran");
        assert_eq!(log.get(), ["first", "third"]);
        assert_eq!(h.has_links(), 0);
    });
}

#[test]
fn a_panicking_link_does_not_stop_the_others() {
    // gevent test__greenlet.py (an error in one link is reported and the
    // rest still run).
    rt::run(|| {
        let log = Log::new();
        let h = spawn(|| ());
        h.link(|_| panic!("bad link"));
        let l = log.clone();
        h.link(move |_| l.push("after"));
        h.join().unwrap();
        assert!(rt::wait_idle(Some(Duration::from_secs(30))), "the links ran");
        assert_eq!(log.get(), ["after"]);
    });
}

#[test]
fn links_are_made_on_the_greenlets_own_hub() {
    let handle = rt::run(|| spawn_later(Duration::from_secs(60), || 1));
    let refused = panic::catch_unwind(panic::AssertUnwindSafe(|| handle.link(|_| ())));
    assert!(util::message(&refused.unwrap_err()).contains("own hub"));
}

#[test]
fn kill_with_unwinds_the_greenlet_with_the_payload() {
    // gevent test__greenlet.py TestKill* with an exception instance: the
    // greenlet sees it at its park point, can catch it, and ends
    // unsuccessful with it as its exception.
    #[derive(Debug, PartialEq)]
    struct Stop(u32);
    rt::run(|| {
        let (tx, rx) = channel::unbounded();
        let h = spawn(move || {
            let payload = panic::catch_unwind(|| sleep(Duration::from_secs(30))).unwrap_err();
            tx.send(payload.downcast_ref::<Stop>().map(|s| s.0)).unwrap();
            panic::resume_unwind(payload);
        });
        yield_now();
        let failed = Counter::new();
        let f = failed.clone();
        h.link_exception(move |_| f.bump());
        h.kill_with(Stop(3));
        assert_eq!(rx.recv(), Ok(Some(3)));
        let error = h.join().unwrap_err();
        assert!(error.is_panic());
        assert_eq!(error.into_panic().downcast_ref::<Stop>(), Some(&Stop(3)));
        yield_now();
        assert_eq!(failed.get(), 1, "a kill_with counts as a panic for links");
    });
}

#[test]
fn kill_with_before_the_greenlet_ran_never_runs_it() {
    // gevent test__greenlet.py TestKillNotStarted with an exception: the
    // body never ran, and the outcome is that exception.
    rt::run(|| {
        let ran = Counter::new();
        let r = ran.clone();
        let h = spawn(move || r.bump());
        h.kill_with(String::from("never started"));
        let payload = h.join().unwrap_err().into_panic();
        assert_eq!(payload.downcast_ref::<String>().map(String::as_str), Some("never started"));
        yield_now();
        assert_eq!(ran.get(), 0);
        // A plain kill after it, before delivery, is a plain kill.
        let h = spawn(|| sleep(Duration::from_secs(30)));
        yield_now();
        h.kill_with("replaced");
        h.kill();
        assert!(h.join().unwrap_err().is_killed());
    });
}

#[test]
fn kill_with_from_another_thread_and_on_itself() {
    rt::run(|| {
        let h = spawn(|| sleep(Duration::from_secs(30)));
        yield_now();
        let from_thread = rt::blocking(move || {
            h.kill_with(7u8);
            h.join()
        });
        assert_eq!(from_thread.unwrap_err().into_panic().downcast_ref::<u8>(), Some(&7));
        let me = std::rc::Rc::new(std::cell::RefCell::new(None::<rt::JoinHandle<()>>));
        let m = me.clone();
        let h = spawn(move || {
            yield_now();
            m.borrow().as_ref().unwrap().kill_with("myself");
            unreachable!("killing itself unwinds at once");
        });
        *me.borrow_mut() = Some(h);
        sleep(ms(1));
        let h = me.borrow_mut().take().unwrap();
        assert_eq!(h.join().unwrap_err().into_panic().downcast_ref::<&str>(), Some(&"myself"));
    });
}

#[test]
fn links_of_greenlets_still_alive_at_shutdown_do_not_hold_up_the_end() {
    // A greenlet killed when `run` returns fires its links as it ends; one
    // whose cleanup outlasts the grace period is leaked, and its links with
    // it (never run): `run` returns either way.
    let fired = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let f = fired.clone();
    rt::Builder::new().shutdown_grace(ms(20)).run(move || {
        struct Stubborn;
        impl Drop for Stubborn {
            fn drop(&mut self) {
                sleep(Duration::from_secs(30));
            }
        }
        let killed = spawn(|| sleep(Duration::from_secs(30)));
        let leaked = spawn(|| {
            let _stubborn = Stubborn;
            sleep(Duration::from_secs(30));
        });
        yield_now();
        for h in [&killed, &leaked] {
            let f = f.clone();
            h.link(move |_| {
                f.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            });
        }
    });
    // The killed one's links ran as it ended; the leaked one never ends.
    assert_eq!(fired.load(std::sync::atomic::Ordering::SeqCst), 1);
}

#[test]
fn a_kill_with_is_logged_as_a_kill_not_as_a_panic() {
    let capture = util::Capture::new();
    tracing::subscriber::with_default(capture.subscriber(), || {
        rt::run(|| {
            let killed = rt::task::Builder::new().name("stopped").spawn(|| sleep(Duration::from_secs(30)));
            yield_now();
            killed.kill_with(String::from("stop"));
            assert!(killed.join().unwrap_err().is_panic());
            // Caught, then a panic of its own: that one is logged as a panic.
            let failing = rt::task::Builder::new().name("failing").spawn(|| {
                let _ = panic::catch_unwind(|| sleep(Duration::from_secs(30)));
                panic!("its own")
            });
            yield_now();
            failing.kill_with(1u32);
            assert!(failing.join().unwrap_err().is_panic());
        });
    });
    let text = capture.text();
    util::assert_contains(&text, &["killed with a payload", "greenlet panicked: its own"]);
    assert!(!text.contains("greenlet panicked: <"), "the kill_with was logged as a panic:\n{text}");
    assert_eq!(text.matches("greenlet panicked").count(), 1, "{text}");
}
