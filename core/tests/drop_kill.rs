//! Dropping greenlets: the kill protocol for suspended greenlets whose last
//! handle goes away (`GreenletExit` thrown in, the dropper as temporary
//! parent), deferred kills, weak handles, reference cycles and greenlets that
//! refuse to die. Ports the garbage-collection cases of Python greenlet's test
//! suite (test_greenlet.py, test_gc.py, test_weakref.py and greenlet_gc.rst).

mod util;

use std::cell::RefCell;
use std::rc::Rc;

use greenlet::{Greenlet, GreenletExit, WeakGreenlet, getcurrent, live_greenlets, stack};
use util::{
    Drops, Finally, Log, Slot, TestError, capture_tracing, catch, leak_check, panic_payload, raise, suspend, take,
    unit, val,
};

/// A body that suspends once and logs what ends the suspension; a panic is
/// logged and then let through.
fn worker(log: Log<String>, name: &'static str) -> impl FnOnce(greenlet::Value) -> greenlet::Value + 'static {
    move |_| match catch(|| suspend(unit())) {
        Ok(_) => {
            log.push(format!("{name} resumed"));
            unit()
        }
        Err(payload) => {
            let what = if payload.is::<GreenletExit>() { "GreenletExit" } else { "another panic" };
            log.push(format!("{name} got {what}"));
            std::panic::resume_unwind(payload)
        }
    }
}

// greenlet catalogue #12 (test_dealloc)
#[test]
fn dropping_last_handle_kills_a_suspended_greenlet_exactly_once() {
    leak_check(|| {
        let log = Log::new();
        let g1 = Greenlet::new(worker(log.clone(), "g1"));
        let g2 = Greenlet::new(worker(log.clone(), "g2"));
        g1.switch(unit());
        g2.switch(unit());
        let g1_copy = g1.clone();
        drop(g1);
        assert!(log.is_empty(), "another handle remains: nothing happens");
        drop(g1_copy);
        assert_eq!(log.get(), ["g1 got GreenletExit"]);
        drop(g2);
        assert_eq!(log.get(), ["g1 got GreenletExit", "g2 got GreenletExit"]);
    });
}

// greenlet catalogue #13 (test_dealloc_catches_GreenletExit_throws_other).
// Python reports the other exception through its "unraisable" hook; here it
// is logged once as a `tracing` error, and the dropper is not disturbed.
#[test]
fn panic_raised_while_being_killed_is_reported_once_and_not_raised_in_the_dropper() {
    leak_check(|| {
        let drops = Drops::new();
        let ((), events) = capture_tracing(|| {
            let token = drops.token();
            let g = Greenlet::new(move |_| {
                let _token = token;
                match catch(|| suspend(unit())) {
                    Err(payload) if payload.is::<GreenletExit>() => raise(String::from("turned into another panic")),
                    _ => unit(),
                }
            });
            g.switch(unit());
            let outcome = catch(move || drop(g));
            assert!(outcome.is_ok(), "the panic must not reach the dropper");
        });
        assert_eq!(drops.count(), 1, "the greenlet unwound");
        let errors: Vec<_> = events.iter().filter(|e| e.level == tracing::Level::ERROR).collect();
        assert_eq!(errors.len(), 1, "{events:?}");
        assert!(errors[0].text.contains("turned into another panic"), "{:?}", errors[0]);
        assert!(events.iter().all(|e| e.level != tracing::Level::WARN), "it did die: {events:?}");
    });
}

// greenlet catalogue #14 (test_dealloc_other_thread). Handles cannot leave
// their thread (Greenlet is !Send), so no greenlet is ever dropped from
// another thread. The deferred kill that remains: a handle dropped while the
// thread is unwinding is not killed then and there, but at the thread's next
// switch.
#[test]
fn greenlet_dropped_during_unwinding_is_killed_at_the_next_switch() {
    leak_check(|| {
        let log = Log::new();
        let g = Greenlet::new(worker(log.clone(), "g"));
        g.switch(unit());
        let live = live_greenlets();
        let outcome = catch(move || {
            let _dropped_while_unwinding = g;
            raise(TestError("unwinding"))
        });
        assert_eq!(panic_payload::<TestError, _>(outcome), TestError("unwinding"));
        assert!(log.is_empty(), "not killed while the thread was panicking");
        assert_eq!(live_greenlets(), live);
        assert_eq!(take::<i32>(Greenlet::new(|v| v).switch(val(1))), 1);
        assert_eq!(log.get(), ["g got GreenletExit"]);
        assert_eq!(live_greenlets(), live - 1);
    });
}

// greenlet catalogue #29 (test_threaded_updatecurrent) [PY/THR]. The Rust
// analogue: a destructor that runs during deferred cleanup may itself switch
// greenlets, and the current greenlet stays right throughout.
#[test]
fn destructor_run_by_a_deferred_kill_may_switch_and_current_stays_right() {
    leak_check(|| {
        let log = Log::new();
        let l = log.clone();
        let g = Greenlet::new(move |_| {
            let my_id = getcurrent().id();
            let _finally = Finally(move || {
                l.push(format!("destructor in self: {}", getcurrent().id() == my_id));
                let helper = Greenlet::new(|v| v);
                let back = helper.switch(val("through a helper"));
                l.push(format!("{} and back in self: {}", take::<&str>(back), getcurrent().id() == my_id));
            });
            suspend(unit());
            unit()
        });
        g.switch(unit());
        catch(move || {
            let _dropped_while_unwinding = g;
            raise(TestError("unwinding"))
        })
        .unwrap_err();
        assert!(log.is_empty());
        let back = Greenlet::new(|v| v).switch(val("trigger"));
        assert_eq!(take::<&str>(back), "trigger", "the switch that ran the kill delivers its own value");
        assert!(getcurrent().is_main());
        assert_eq!(log.get(), ["destructor in self: true", "through a helper and back in self: true"]);
    });
}

// A kill interrupted by a throw at the killer. M drops its last handle to T;
// T, unwinding from the `GreenletExit`, switches to main in a destructor; main
// throws `GreenletExit` at M. The throw reaches M: it comes out of the drop of
// T's handle, M dies of it, and `throw` returns it. T, which nobody can reach
// and which is suspended in the middle of unwinding, is not leaked (that
// would leave the thread panicking for good): its kill goes on at the next
// switch, which resumes it (throwing at it again would be a panic inside a
// destructor while unwinding), and it finishes unwinding.
#[test]
fn throw_at_a_greenlet_suspended_in_killing_another_reaches_it() {
    leak_check(|| {
        let log = Log::new();
        let main = getcurrent();
        let l = log.clone();
        let m = Greenlet::builder().name("M").build(move |_| {
            let lt = l.clone();
            let t = Greenlet::builder().name("T").build(move |_| {
                let _switches_while_unwinding = Finally(move || {
                    lt.push("T unwinding");
                    main.switch(unit());
                    lt.push("T resumed");
                });
                suspend(unit());
                unit()
            });
            t.switch(unit());
            drop(t);
            l.push("M went on after dropping T");
            val("M finished normally")
        });
        m.switch(unit());
        assert_eq!(log.get(), ["T unwinding"]);
        assert!(std::thread::panicking(), "T is suspended in the middle of unwinding");
        let live = live_greenlets();
        let result = m.throw(Box::new(GreenletExit));
        match result.downcast::<&str>() {
            Ok(text) => panic!("the throw was swallowed: M returned {text:?}"),
            Err(result) => assert!(result.is::<GreenletExit>(), "the throw comes back as M's result"),
        }
        assert!(m.is_dead());
        assert_eq!(log.get(), ["T unwinding", "T resumed"], "T finished unwinding; M did not go on");
        assert!(!std::thread::panicking(), "no greenlet is left unwinding");
        assert_eq!(live_greenlets(), live - 1, "T is gone");
        assert!(getcurrent().is_main());
        assert_eq!(take::<i32>(Greenlet::new(|v| v).switch(val(3))), 3);
    });
}

// greenlet catalogue #24 (test_parent_restored_on_kill)
#[test]
fn killed_greenlet_has_the_dropper_as_parent_then_gets_its_own_back() {
    leak_check(|| {
        let main = getcurrent();
        let hub = Greenlet::new(|_| unit());
        let result: Rc<RefCell<Vec<Greenlet>>> = Rc::default();
        let (r, m, h) = (result.clone(), main.clone(), hub.clone());
        let g = Greenlet::builder().parent(&hub).build(move |_| {
            if let Err(payload) = catch(|| m.switch(unit())) {
                assert!(payload.is::<GreenletExit>());
                // Record the parent in force while being killed, and
                // resurrect by storing a handle to ourselves.
                let me = getcurrent();
                r.borrow_mut().push(me.parent().unwrap());
                r.borrow_mut().push(me);
                h.switch(unit());
            }
            unit()
        });
        g.switch(unit());
        drop(g);
        assert_eq!(result.borrow().len(), 2);
        assert_eq!(result.borrow()[0], main, "the parent while being killed is the dropper");
        let resurrected = result.borrow()[1].clone();
        assert_eq!(resurrected.parent(), Some(hub.clone()), "the original parent is back");
        assert!(resurrected.is_active(), "it resurrected itself instead of dying");
        assert!(hub.is_dead());
        // Break the cycle between the greenlet and its stack.
        drop(resurrected);
        let handles = std::mem::take(&mut *result.borrow_mut());
        drop(handles);
    });
}

// greenlet catalogue #30 (test_dealloc_switch_args_not_lost)
#[test]
fn value_sent_by_a_greenlet_that_lost_its_last_handle_still_arrives() {
    leak_check(|| {
        let seen = Log::new();
        let worker_slot = Slot::new();
        let initiator_slot = Slot::new();
        let (s, w, i) = (seen.clone(), worker_slot.clone(), initiator_slot.clone());
        let worker = Greenlet::new(move |_| {
            let value = suspend(unit());
            // Drop every handle to ourselves: the slot's, and the initiator's
            // parent link.
            w.clear();
            i.get().set_parent(&getcurrent().parent().unwrap()).unwrap();
            let _finally = Finally(|| s.push("worker unwound"));
            // The only handle left is the one the switch machinery holds
            // while we run: we are killed as we leave, but the value is
            // delivered.
            suspend(value);
            unreachable!("nobody can switch back to the worker");
        });
        worker_slot.set(&worker);
        worker.switch(unit());
        let initiator = Greenlet::builder().parent(&worker).build(|_| val(42));
        initiator_slot.set(&initiator);
        drop(worker);
        let value = initiator.switch(unit());
        assert_eq!(take::<i32>(value), 42);
        assert_eq!(seen.get(), ["worker unwound"]);
        initiator_slot.clear();
    });
}

// greenlet catalogue #70 (test_reentrant_switch_run_callable_has_del)
// [CORE/PY]. Dropping the captured state of `run` may switch greenlets: when
// the closure of a pending greenlet is discarded because the greenlet is
// killed, and when it is dropped at the end of a normal run.
#[test]
fn captured_state_of_run_may_switch_when_dropped() {
    struct SwitchesOnDrop(Log<String>, &'static str);

    impl Drop for SwitchesOnDrop {
        fn drop(&mut self) {
            let helper = Greenlet::new(|v| v);
            let back = helper.switch(val(self.1));
            self.0.push(format!("dropped {} and switched back", take::<&str>(back)));
        }
    }

    leak_check(|| {
        let log = Log::new();
        let captured = SwitchesOnDrop(log.clone(), "killed closure");
        let l = log.clone();
        let g = Greenlet::new(move |v| {
            let _keep = &captured;
            l.push("body ran".to_string());
            v
        });
        assert_eq!(take::<GreenletExit>(g.throw(Box::new(GreenletExit))), GreenletExit);
        assert_eq!(log.get(), ["dropped killed closure and switched back"]);

        let captured = SwitchesOnDrop(log.clone(), "finished closure");
        let l = log.clone();
        let g = Greenlet::new(move |v| {
            let _keep = &captured;
            l.push("body ran".to_string());
            v
        });
        assert_eq!(take::<i32>(g.switch(val(7))), 7);
        assert!(g.is_dead());
        assert_eq!(
            log.get(),
            ["dropped killed closure and switched back", "body ran", "dropped finished closure and switched back"]
        );
    });
}

// greenlet catalogue #85 (test_dead_circular_ref)
#[test]
fn finished_greenlet_that_returned_its_own_handle_is_freed() {
    leak_check(|| {
        let weak = {
            let returned: Greenlet = take(Greenlet::new(|_| val(getcurrent())).switch(unit()));
            assert!(returned.is_dead());
            returned.downgrade()
        };
        assert!(weak.upgrade().is_none());
    });
}

// greenlet catalogue #86 (test_circular_greenlet) [GC/PY]. Rc cycles are never
// collected, so a greenlet refers to itself through a weak handle.
#[test]
fn pending_greenlet_with_a_weak_handle_to_itself_is_freed() {
    leak_check(|| {
        let drops = Drops::new();
        let me: Rc<RefCell<WeakGreenlet>> = Rc::default();
        let (m, token) = (me.clone(), drops.token());
        let g = Greenlet::new(move |v| {
            let _token = token;
            let _me = m.borrow().upgrade();
            v
        });
        *me.borrow_mut() = g.downgrade();
        drop(g);
        assert!(me.borrow().upgrade().is_none());
        assert_eq!(drops.count(), 1, "the closure was dropped without running");
    });
}

// greenlet catalogue #87 (test_inactive_ref) [GC/PY]. A strong handle to itself
// in the closure of a pending greenlet is a reference cycle; it is freed
// once the cycle is broken.
#[test]
fn pending_greenlet_owning_a_strong_handle_to_itself_is_freed_once_the_cycle_is_broken() {
    leak_check(|| {
        let drops = Drops::new();
        let slot = Slot::new();
        let (s, token) = (slot.clone(), drops.token());
        let g = Greenlet::new(move |v| {
            let _token = token;
            let _me = s.get();
            v
        });
        slot.set(&g);
        let weak = g.downgrade();
        drop(g);
        assert!(weak.upgrade().is_some(), "the cycle keeps it alive");
        assert_eq!(drops.count(), 0);
        slot.clear();
        assert!(weak.upgrade().is_none());
        assert_eq!(drops.count(), 1);
    });
}

// greenlet catalogue #88 (test_finalizer_crash). Without a cycle collector,
// the cycle (the greenlet's stack holds a list that holds the greenlet) is
// broken by hand; the greenlet is then killed and its destructors run.
#[test]
fn suspended_greenlet_in_a_reference_cycle_is_killed_when_the_cycle_is_broken() {
    leak_check(|| {
        let log = Log::new();
        let list: Rc<RefCell<Vec<Greenlet>>> = Rc::default();
        let (l, lst) = (log.clone(), list.clone());
        let g = Greenlet::new(move |_| {
            let _list = lst;
            let _finally = Finally(|| l.push("finally"));
            match catch(|| suspend(unit())) {
                Err(payload) if payload.is::<GreenletExit>() => l.push("GreenletExit"),
                _ => l.push("something else"),
            }
            unit()
        });
        list.borrow_mut().push(g.clone());
        g.switch(unit());
        drop(g);
        assert!(log.is_empty(), "the list keeps the greenlet alive");
        let handles = std::mem::take(&mut *list.borrow_mut());
        drop(handles);
        assert_eq!(log.get(), ["GreenletExit", "finally"]);
    });
}

// greenlet catalogue #90 (test_cycle_in_suspended_frame, greenlet_gc.rst
// "Cycles In Suspended Frames Are Not Collected")
#[test]
fn values_on_a_suspended_stack_live_until_the_greenlet_is_killed() {
    leak_check(|| {
        let drops = Drops::new();
        let d = drops.clone();
        let outer = Greenlet::new(move |_| {
            let token = d.token();
            let inner = Greenlet::new(move |_| {
                let _on_my_stack = token;
                suspend(unit());
                unit()
            });
            inner.switch(unit());
            // Other greenlets come and go meanwhile.
            Greenlet::new(|v| v).switch(unit());
            assert_eq!(d.count(), 0, "still on the suspended stack");
            val(inner)
        });
        let inner: Greenlet = take(outer.switch(unit()));
        assert!(outer.is_dead() && inner.is_active());
        assert_eq!(drops.count(), 0, "outer finishing does not free inner's stack");
        drop(inner);
        assert_eq!(drops.count(), 1);
    });
}

// greenlet catalogue #91 (test_dead_weakref)
#[test]
fn weak_handle_to_a_finished_greenlet_dies_with_it() {
    leak_check(|| {
        let g = Greenlet::new(|v| v);
        g.switch(unit());
        let weak = g.downgrade();
        assert_eq!(weak.upgrade(), Some(g.clone()));
        drop(g);
        assert!(weak.upgrade().is_none());
    });
}

// greenlet catalogue #92 (test_inactive_weakref)
#[test]
fn weak_handle_to_a_pending_greenlet_dies_with_it() {
    leak_check(|| {
        let g = Greenlet::new(|v| v);
        let weak = g.downgrade();
        drop(g);
        assert!(weak.upgrade().is_none());
    });
}

// greenlet catalogue #93 (test_dealloc_weakref)
#[test]
fn dropping_a_child_kills_the_suspended_parent_it_alone_kept_alive() {
    leak_check(|| {
        let seen = Log::new();
        let weak_child: Rc<RefCell<WeakGreenlet>> = Rc::default();
        let (s, wc) = (seen.clone(), weak_child.clone());
        let parent = Greenlet::new(move |_| {
            let _finally = Finally(|| s.push(wc.borrow().upgrade().is_none()));
            suspend(unit());
            unit()
        });
        parent.switch(unit());
        let child = Greenlet::builder().parent(&parent).build(|v| v);
        *weak_child.borrow_mut() = child.downgrade();
        drop(parent);
        assert!(seen.is_empty(), "the child's parent link keeps the parent alive");
        drop(child);
        assert_eq!(seen.get(), [true], "the parent was killed after the child was gone");
    });
}

// greenlet catalogue #157 (greenlet_gc.rst doctest)
#[test]
fn dropping_the_last_handle_ends_a_greenlet_looping_forever() {
    leak_check(|| {
        let log = Log::new();
        let l = log.clone();
        let glet = Greenlet::new(move |_| {
            l.push("Beginning greenlet");
            let outcome = catch(|| {
                loop {
                    l.push("Switching to parent");
                    suspend(unit());
                }
            });
            if outcome.expect_err("only a panic ends the loop").is::<GreenletExit>() {
                l.push("Got GreenletExit; quitting");
            }
            unit()
        });
        glet.switch(unit());
        glet.switch(unit());
        assert_eq!(log.get(), ["Beginning greenlet", "Switching to parent", "Switching to parent"]);
        drop(glet);
        assert_eq!(log.get().last(), Some(&"Got GreenletExit; quitting"));
        assert_eq!(log.len(), 4);
    });
}

// greenlet catalogue §1.11 item 4 (GreenletExit caught and ignored). A greenlet
// that catches the exit and suspends again while unreachable can never run
// again: it is leaked with a warning, never freed while suspended.
#[test]
fn greenlet_that_refuses_to_die_is_leaked_with_a_warning() {
    // No leak check: the leak is the point. It stays confined to this test's
    // thread (every test runs on a thread of its own).
    drop(getcurrent());
    let (greenlets, stacks) = (live_greenlets(), stack::stats().in_use);
    let drops = Drops::new();
    let ((), events) = capture_tracing(|| {
        let token = drops.token();
        let g = Greenlet::builder().name("stubborn").build(move |_| {
            let _token = token;
            loop {
                let _ = catch(|| suspend(unit()));
            }
        });
        g.switch(unit());
        drop(g);
    });
    let warnings: Vec<_> = events.iter().filter(|e| e.level == tracing::Level::WARN).collect();
    assert_eq!(warnings.len(), 1, "{events:?}");
    assert!(warnings[0].text.contains("did not kill") && warnings[0].text.contains("stubborn"), "{:?}", warnings[0]);
    assert_eq!(drops.count(), 0, "a leaked greenlet's stack is never unwound");
    assert_eq!(live_greenlets(), greenlets + 1, "the greenlet is leaked");
    assert_eq!(stack::stats().in_use, stacks + 1, "and so is its stack");
    // The thread goes on working.
    assert_eq!(take::<i32>(Greenlet::new(|v| v).switch(val(5))), 5);
}

// greenlet catalogue §1.11 item 4, for a kill deferred to the next switch
// (see #14 above): the same warning and leak.
#[test]
fn greenlet_refusing_a_deferred_kill_is_leaked_with_a_warning() {
    drop(getcurrent());
    let (greenlets, stacks) = (live_greenlets(), stack::stats().in_use);
    let drops = Drops::new();
    let ((), events) = capture_tracing(|| {
        let token = drops.token();
        let g = Greenlet::builder().name("stubborn").build(move |_| {
            let _token = token;
            loop {
                let _ = catch(|| suspend(unit()));
            }
        });
        g.switch(unit());
        catch(move || {
            let _dropped_while_unwinding = g;
            raise(TestError("unwinding"))
        })
        .unwrap_err();
        assert_eq!(take::<i32>(Greenlet::new(|v| v).switch(val(5))), 5);
    });
    let warnings: Vec<_> = events.iter().filter(|e| e.level == tracing::Level::WARN).collect();
    assert_eq!(warnings.len(), 1, "{events:?}");
    assert!(warnings[0].text.contains("did not kill"), "{:?}", warnings[0]);
    assert_eq!(drops.count(), 0);
    assert_eq!(live_greenlets(), greenlets + 1);
    assert_eq!(stack::stats().in_use, stacks + 1);
}

// greenlet catalogue §1.11 ("Pending and dead greenlets are simply freed")
#[test]
fn dropping_pending_or_dead_greenlets_runs_no_code() {
    leak_check(|| {
        let log = Log::new();
        let drops = Drops::new();
        let (l, token) = (log.clone(), drops.token());
        let pending = Greenlet::new(move |v| {
            let _token = token;
            l.push("pending ran");
            v
        });
        drop(pending);
        assert_eq!(drops.count(), 1, "the closure is dropped");
        let l = log.clone();
        let dead = Greenlet::new(move |v| {
            l.push("dead ran");
            v
        });
        dead.switch(unit());
        drop(dead);
        assert_eq!(log.get(), ["dead ran"]);
    });
}
