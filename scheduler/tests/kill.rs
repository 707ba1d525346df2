//! Killing greenlets: the kill matrix of gevent's `test__greenlet.py`
//! (`TestKill*`) and `test__greenletset.py`, adapted to `JoinHandle::kill`.

mod util;

use std::cell::RefCell;
use std::panic::{self, AssertUnwindSafe};
use std::rc::Rc;
use std::sync::mpsc;
use std::time::Duration;

use greenlet::GreenletExit;
use runtime_scheduler::sync::{Event, channel};
use runtime_scheduler::{self as rt, JoinHandle, sleep, spawn, spawn_later, yield_now};
use util::{Counter, Drops, Log, ms};

#[test]
fn killed_before_it_ran_the_body_never_runs() {
    // gevent test__greenlet.py TestKill / TestKillAfterStart (test_block,
    // test_non_block): the function never runs, the greenlet is dead and
    // killed, its closure is dropped.
    rt::run(|| {
        let ran = Counter::new();
        let drops = Drops::new();
        let (r, guard) = (ran.clone(), drops.guard());
        let h = spawn(move || {
            let _guard = guard;
            r.bump();
        });
        h.kill();
        assert!(h.is_finished(), "a greenlet killed before it ran is finished at once");
        assert_eq!(drops.count(), 1, "its closure was dropped");
        yield_now();
        sleep(ms(1));
        assert_eq!(ran.get(), 0);
        assert!(h.join().unwrap_err().is_killed());
    });
}

#[test]
fn killed_spawn_later_greenlet_never_runs() {
    // gevent test__greenlet.py TestKillAfterStartLater: killing it before its
    // delay passes means it never runs (and its timer no longer matters).
    rt::run(|| {
        let ran = Counter::new();
        let r = ran.clone();
        let h = spawn_later(ms(5), move || r.bump());
        h.kill();
        sleep(ms(20));
        assert_eq!(ran.get(), 0);
        assert!(h.join().unwrap_err().is_killed());
    });
}

#[test]
fn kill_unwinds_a_sleeping_greenlet_running_its_destructors() {
    // gevent test__greenlet.py TestKillWhileRunning: the kill is raised inside
    // the sleep, the greenlet unwinds (destructors run) and join reports it.
    rt::run(|| {
        let drops = Drops::new();
        let log = Log::new();
        let (guard, l) = (drops.guard(), log.clone());
        let h = spawn(move || {
            let _guard = guard;
            l.push("before");
            sleep(Duration::from_secs(30));
            l.push("after");
        });
        yield_now();
        assert_eq!(log.get(), ["before"]);
        h.kill();
        let err = h.join().unwrap_err();
        assert!(err.is_killed());
        assert!(!err.is_panic());
        assert_eq!(drops.count(), 1);
        assert_eq!(log.get(), ["before"]);
    });
}

#[test]
fn kill_is_raised_as_greenlet_exit_at_the_park_point() {
    // gevent test__api.py Test.test_killing_dormant: the dormant greenlet
    // observes the kill inside its sleep and runs its handler; here the parked
    // call unwinds with a GreenletExit payload that the greenlet can observe.
    rt::run(|| {
        let log = Log::new();
        let l = log.clone();
        let h = spawn(move || {
            let (_tx, rx) = channel::bounded::<u8>(1);
            let caught = panic::catch_unwind(AssertUnwindSafe(|| rx.recv())).unwrap_err();
            l.push(if caught.is::<GreenletExit>() { "GreenletExit" } else { "other" });
            panic::resume_unwind(caught);
        });
        yield_now();
        h.kill();
        assert!(h.join().unwrap_err().is_killed());
        assert_eq!(log.get(), ["GreenletExit"]);
    });
}

#[test]
fn kill_does_not_wait_for_the_target_to_unwind() {
    // gevent test__greenlet.py TestKill test_block vs test_non_block: gevent's
    // kill blocks by default; ours never does (JoinHandle::kill docs): the
    // unwinding happens when the hub next runs the target, which `join` waits for.
    rt::run(|| {
        let drops = Drops::new();
        let guard = drops.guard();
        let h = spawn(move || {
            let _guard = guard;
            sleep(Duration::from_secs(30));
        });
        yield_now();
        h.kill();
        assert_eq!(drops.count(), 0, "kill must not switch to the target");
        assert!(!h.is_finished());
        assert!(h.join().unwrap_err().is_killed());
        assert_eq!(drops.count(), 1);
    });
}

#[test]
fn killing_twice_changes_nothing() {
    // gevent test__greenlet.py TestKill (assertKilled, "kill second time must
    // not hurt", then spinning the loop changes nothing).
    rt::run(|| {
        let drops = Drops::new();
        let guard = drops.guard();
        let h = spawn(move || {
            let _guard = guard;
            sleep(Duration::from_secs(30));
        });
        yield_now();
        h.kill();
        h.kill();
        yield_now();
        assert!(h.is_finished());
        h.kill();
        sleep(ms(1));
        assert_eq!(drops.count(), 1);
        assert!(h.join().unwrap_err().is_killed());
    });
}

#[test]
fn killing_a_finished_greenlet_keeps_its_result() {
    // gevent test__greenlet.py TestStart.test_start ("cannot start again") and
    // TestKill's second kill: acting on a finished greenlet changes nothing.
    rt::run(|| {
        let h = spawn(|| 5);
        yield_now();
        assert!(h.is_finished());
        h.kill();
        assert_eq!(h.join().unwrap(), 5);

        let failed = spawn(|| -> i32 { panic!("failed first") });
        yield_now();
        failed.kill();
        assert!(failed.join().unwrap_err().is_panic());
    });
}

#[test]
fn greenlet_that_swallows_kills_gets_one_exit_per_kill() {
    // gevent test__greenletset.py Test.test_kill_fires_once: a greenlet that
    // swallows kill exceptions gets exactly one per kill (non-blocking kills
    // are not duplicated).
    rt::run(|| {
        let caught = Counter::new();
        let c = caught.clone();
        let h = spawn(move || {
            while c.get() < 2 {
                if panic::catch_unwind(|| sleep(Duration::from_secs(30))).is_err() {
                    c.bump();
                }
            }
            "survived"
        });
        yield_now();
        // Two kills before it runs again are one request.
        h.kill();
        h.kill();
        yield_now();
        assert_eq!(caught.get(), 1);
        assert!(!h.is_finished());
        h.kill();
        assert_eq!(h.join().unwrap(), "survived");
        assert_eq!(caught.get(), 2);
    });
}

#[test]
fn killing_itself_unwinds_at_once() {
    // JoinHandle::kill docs ("killing the current greenlet unwinds it at
    // once"), after gevent's getcurrent().kill().
    rt::run(|| {
        let slot: Rc<RefCell<Option<JoinHandle<()>>>> = Rc::new(RefCell::new(None));
        let log = Log::new();
        let (s, l) = (slot.clone(), log.clone());
        let drops = Drops::new();
        let guard = drops.guard();
        let h = spawn(move || {
            let _guard = guard;
            l.push("start");
            s.borrow().as_ref().expect("handle stored before it runs").kill();
            l.push("after self-kill");
        });
        *slot.borrow_mut() = Some(h);
        yield_now();
        assert_eq!(log.get(), ["start"]);
        assert_eq!(drops.count(), 1);
        let h = slot.borrow_mut().take().expect("handle still stored");
        assert!(h.join().unwrap_err().is_killed());
    });
}

#[test]
fn killed_greenlet_never_runs_again() {
    // gevent test__greenlet.py TestKillWhileRunning (the code after the sleep
    // never runs): what it waited for happening later does not revive it.
    rt::run(|| {
        let ready = Rc::new(Event::new());
        let log = Log::new();
        let (r, l) = (ready.clone(), log.clone());
        let h = spawn(move || {
            r.wait();
            l.push("woke");
        });
        yield_now();
        h.kill();
        yield_now();
        ready.set();
        yield_now();
        sleep(ms(1));
        assert!(log.is_empty());
        assert!(h.join().unwrap_err().is_killed());
    });
}

#[test]
fn kill_of_a_greenlet_woken_but_not_yet_run_still_lands() {
    // gevent test__greenlet.py TestKillAfterStart for an already started
    // greenlet: woken by an event, then killed before it ran again; the kill wins.
    rt::run(|| {
        let ready = Rc::new(Event::new());
        let log = Log::new();
        let (r, l) = (ready.clone(), log.clone());
        let h = spawn(move || {
            r.wait();
            l.push("woke");
        });
        yield_now();
        ready.set();
        h.kill();
        assert!(h.join().unwrap_err().is_killed());
        assert!(log.is_empty());
    });
}

#[test]
fn greenlet_can_kill_another() {
    // gevent test__greenlet.py TestKill, with the kill coming from a greenlet
    // other than the main one.
    rt::run(|| {
        let victim = spawn(|| sleep(Duration::from_secs(30)));
        yield_now();
        let victim = Rc::new(victim);
        let v = victim.clone();
        let killer = spawn(move || v.kill());
        killer.join().unwrap();
        let victim = Rc::try_unwrap(victim).expect("killer finished");
        assert!(victim.join().unwrap_err().is_killed());
    });
}

#[test]
fn kill_passes_through_a_timeout_scope() {
    // gevent test__greenlet.py TestKillWhileRunning with an enclosing Timeout:
    // the kill is not mistaken for the timeout's expiry.
    rt::run(|| {
        let log = Log::new();
        let l = log.clone();
        let h = spawn(move || {
            let outcome = rt::timeout(Duration::from_secs(30), || sleep(Duration::from_secs(60)));
            l.push(format!("timeout returned {outcome:?}"));
        });
        yield_now();
        h.kill();
        assert!(h.join().unwrap_err().is_killed());
        assert!(log.is_empty());
    });
}

#[test]
fn killed_caller_of_blocking_lets_the_job_finish() {
    // blocking.rs docs ("If the caller is killed while waiting, f still runs to
    // completion and its result is dropped"); gevent kills a greenlet waiting
    // on a threadpool result the same way.
    let (done_tx, done_rx) = mpsc::channel();
    rt::run(move || {
        let (started_tx, started_rx) = mpsc::channel();
        let h = spawn(move || {
            rt::blocking(move || {
                started_tx.send(()).unwrap();
                std::thread::sleep(ms(30));
                done_tx.send("job finished").unwrap();
            })
        });
        rt::blocking(move || started_rx.recv().unwrap());
        h.kill();
        assert!(h.join().unwrap_err().is_killed());
    });
    assert_eq!(done_rx.recv().unwrap(), "job finished");
}

#[test]
fn killed_greenlet_releases_what_it_held() {
    // gevent test__greenlet.py TestKillWhileRunning + lock_tests.py: a killed
    // holder's lock is released by its unwinding, so the next waiter gets it.
    rt::run(|| {
        let lock = Rc::new(rt::sync::Mutex::new(0));
        let l = lock.clone();
        let holder = spawn(move || {
            let _held = l.lock();
            sleep(Duration::from_secs(30));
        });
        yield_now();
        assert!(lock.is_locked());
        let l = lock.clone();
        let waiter = spawn(move || *l.lock() += 1);
        yield_now();
        holder.kill();
        waiter.join().unwrap();
        assert!(holder.join().unwrap_err().is_killed());
        assert_eq!(*lock.lock(), 1);
    });
}
