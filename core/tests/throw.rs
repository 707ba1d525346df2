//! `Greenlet::throw`: raising a panic payload in a suspended, pending, dead or
//! running greenlet, `GreenletExit`, and where uncaught payloads go. Ports
//! cases of Python greenlet's test suite (test_throw.py, test_greenlet.py and
//! the docs' doctests).

mod util;

use greenlet::{Error, Greenlet, GreenletExit, getcurrent};
use util::{Log, TestError, catch, leak_check, panic_payload, raise, suspend, take, unit, val};

/// Python's `fmain`: suspends to the parent; logs the panic it is resumed
/// with, if any, and lets it go on.
fn fmain(seen: Log<TestError>) -> impl FnOnce(greenlet::Value) -> greenlet::Value + 'static {
    move |_| match catch(|| suspend(unit())) {
        Err(payload) => {
            if let Some(error) = payload.downcast_ref::<TestError>() {
                seen.push(error.clone());
            }
            std::panic::resume_unwind(payload)
        }
        Ok(_) => raise(TestError("fmain")),
    }
}

// greenlet catalogue #11 (test_send_exception). What `throw` does, done by
// hand: a helper greenlet whose parent is g1 panics, and the panic is raised
// in g1 at its suspension point.
#[test]
fn panic_of_a_helper_child_is_raised_in_its_suspended_parent() {
    leak_check(|| {
        let seen = Log::new();
        let g1 = Greenlet::new(fmain(seen.clone()));
        g1.switch(unit());
        let crasher = Greenlet::builder().parent(&g1).build(|error| raise(take::<TestError>(error)));
        let caught = panic_payload::<TestError, _>(catch(|| crasher.switch(val(TestError("KeyError")))));
        assert_eq!(caught, TestError("KeyError"));
        assert_eq!(seen.get(), [TestError("KeyError")]);
        assert!(g1.is_dead() && crasher.is_dead());
    });
}

// greenlet catalogue #72 (test_class)
#[test]
fn thrown_panic_caught_by_target_makes_throw_return_its_next_value() {
    leak_check(|| {
        let g = Greenlet::new(|_| {
            match catch(|| suspend(val("ok"))) {
                Err(payload) if payload.is::<TestError>() => {
                    suspend(val("ok"));
                }
                _ => {
                    suspend(val("fail"));
                }
            }
            unit()
        });
        assert_eq!(take::<&str>(g.switch(unit())), "ok");
        assert_eq!(take::<&str>(g.throw(Box::new(TestError("RuntimeError")))), "ok");
        assert!(g.is_active());
        take::<()>(g.switch(unit()));
        assert!(g.is_dead());
    });
}

// greenlet catalogue #73 (test_val). Python checks `throw(instance)` and
// `throw(Type, "ciao")`; here: the payload arrives as the very object thrown,
// whether a custom type, a `String` or a `&str`.
#[test]
fn thrown_payload_arrives_intact() {
    fn catcher() -> Greenlet {
        Greenlet::new(|_| {
            let payload = catch(|| suspend(val("ready"))).expect_err("a panic was thrown in");
            if let Some(error) = payload.downcast_ref::<TestError>() {
                return val(format!("TestError({})", error.0));
            }
            val(format!("message {}", greenlet::panic_message(&*payload)))
        })
    }

    leak_check(|| {
        let g = catcher();
        g.switch(unit());
        assert_eq!(take::<String>(g.throw(Box::new(TestError("ciao")))), "TestError(ciao)");
        let g = catcher();
        g.switch(unit());
        assert_eq!(take::<String>(g.throw(Box::new(String::from("ciao")))), "message ciao");
        let g = catcher();
        g.switch(unit());
        assert_eq!(take::<String>(g.throw(Box::new("ciao"))), "message ciao");
    });
}

// greenlet catalogue #74 (test_kill)
#[test]
fn uncaught_greenlet_exit_comes_back_as_a_value() {
    leak_check(|| {
        let g = Greenlet::new(|_| {
            suspend(val("ok"));
            suspend(val("fail"));
            unit()
        });
        assert_eq!(take::<&str>(g.switch(unit())), "ok");
        let result = g.throw(Box::new(GreenletExit));
        assert_eq!(take::<GreenletExit>(result), GreenletExit);
        assert!(g.is_dead());
        // Thrown into the dead greenlet, it is turned into a value at once.
        assert_eq!(take::<GreenletExit>(g.throw(Box::new(GreenletExit))), GreenletExit);
    });
}

// greenlet catalogue #75 (test_throw_goes_to_original_parent), part (a)
#[test]
fn throw_into_pending_greenlet_with_pending_parent_kills_both_without_running() {
    leak_check(|| {
        let ran = Log::new();
        let r = ran.clone();
        let g1 = Greenlet::new(move |_| {
            r.push("g1");
            unit()
        });
        let r = ran.clone();
        let g2 = Greenlet::builder().parent(&g1).build(move |_| {
            r.push("g2");
            unit()
        });
        let caught = panic_payload::<TestError, _>(catch(|| g2.throw(Box::new(TestError("IndexError")))));
        assert_eq!(caught, TestError("IndexError"));
        assert!(g2.is_dead() && g1.is_dead());
        assert!(g2.is_started() && g1.is_started(), "killed greenlets count as started");
        assert!(ran.is_empty(), "neither body ran");
    });
}

/// Python's `f1` for #75: waits for an `IndexError` and returns "caught".
fn f1() -> impl FnOnce(greenlet::Value) -> greenlet::Value + 'static {
    |_| {
        let main = getcurrent().parent().unwrap();
        match catch(|| main.switch(val("f1 ready to catch"))) {
            Err(payload) if payload.downcast_ref() == Some(&TestError("IndexError")) => val("caught"),
            Err(payload) => std::panic::resume_unwind(payload),
            Ok(_) => val("normal exit"),
        }
    }
}

/// Python's `f2` for #75: switches to main.
fn f2(main: &Greenlet) -> impl FnOnce(greenlet::Value) -> greenlet::Value + 'static {
    let main = main.clone();
    move |_| main.switch(val("from f2"))
}

// greenlet catalogue #75 (test_throw_goes_to_original_parent), part (b)
#[test]
fn throw_into_pending_child_goes_to_its_waiting_parent() {
    leak_check(|| {
        let main = getcurrent();
        let g1 = Greenlet::new(f1());
        let g2 = Greenlet::builder().parent(&g1).build(f2(&main));
        assert_eq!(take::<&str>(g1.switch(unit())), "f1 ready to catch");
        assert_eq!(take::<&str>(g2.throw(Box::new(TestError("IndexError")))), "caught");
        assert!(g2.is_dead() && g1.is_dead());
    });
}

// greenlet catalogue #75 (test_throw_goes_to_original_parent), part (c)
#[test]
fn throw_into_started_child_goes_to_its_parent_not_the_thrower() {
    leak_check(|| {
        let main = getcurrent();
        let g1 = Greenlet::new(f1());
        let g2 = Greenlet::builder().parent(&g1).build(f2(&main));
        assert_eq!(take::<&str>(g1.switch(unit())), "f1 ready to catch");
        assert_eq!(take::<&str>(g2.switch(unit())), "from f2");
        assert_eq!(take::<&str>(g2.throw(Box::new(TestError("IndexError")))), "caught");
        assert!(g2.is_dead() && g1.is_dead());
    });
}

// greenlet catalogue §1.7 ("Pending (never started) target"; `G(f).throw()`
// in test_throw.py)
#[test]
fn throw_into_pending_greenlet_kills_it_without_running() {
    leak_check(|| {
        let ran = Log::new();
        let r = ran.clone();
        let g = Greenlet::new(move |v| {
            r.push(());
            v
        });
        assert_eq!(take::<GreenletExit>(g.throw(Box::new(GreenletExit))), GreenletExit);
        assert!(g.is_dead());
        let r = ran.clone();
        let g = Greenlet::new(move |v| {
            r.push(());
            v
        });
        let caught = panic_payload::<TestError, _>(catch(|| g.throw(Box::new(TestError("ValueError")))));
        assert_eq!(caught, TestError("ValueError"));
        assert!(g.is_dead());
        assert!(ran.is_empty());
        // Switching to it later goes to the parent: the body never runs.
        assert_eq!(take::<i32>(g.switch(val(1))), 1);
        assert!(ran.is_empty());
    });
}

// greenlet catalogue §1.7 ("Dead target" and "Target is the current
// greenlet")
#[test]
fn throw_into_dead_or_current_greenlet_panics_in_the_caller_at_once() {
    leak_check(|| {
        let dead = Greenlet::new(|v| v);
        dead.switch(unit());
        let caught = panic_payload::<TestError, _>(catch(|| dead.throw(Box::new(TestError("KeyError")))));
        assert_eq!(caught, TestError("KeyError"));

        let caught = panic_payload::<TestError, _>(catch(|| getcurrent().throw(Box::new(TestError("self")))));
        assert_eq!(caught, TestError("self"));

        let g = Greenlet::new(|_| {
            let me = getcurrent();
            let caught = panic_payload::<TestError, _>(catch(|| me.throw(Box::new(TestError("me")))));
            assert!(me.is_current());
            val(caught)
        });
        assert_eq!(take::<TestError>(g.switch(unit())), TestError("me"));
    });
}

// greenlet catalogue #156 (creating_executing_greenlets.rst doctests)
#[test]
fn parent_set_at_creation_or_later_gets_control_and_throw_interrupts_a_greenlet() {
    leak_check(|| {
        let log = Log::new();
        let parent_body = |log: Log<&'static str>| {
            move |_| {
                log.push("in the parent");
                unit()
            }
        };
        let child_body = |log: Log<&'static str>| {
            move |_| {
                log.push("in the child");
                unit()
            }
        };

        // Parent given at creation.
        let parent = Greenlet::new(parent_body(log.clone()));
        let child = Greenlet::builder().parent(&parent).build(child_body(log.clone()));
        child.switch(unit());
        assert_eq!(log.get(), ["in the child", "in the parent"]);

        // Parent set later.
        let parent = Greenlet::new(parent_body(log.clone()));
        let child = Greenlet::new(child_body(log.clone()));
        child.set_parent(&parent).unwrap();
        child.switch(unit());
        assert_eq!(log.get(), ["in the child", "in the parent", "in the child", "in the parent"]);

        // No cycles.
        let parent = Greenlet::new(parent_body(log.clone()));
        let child = Greenlet::new(child_body(log.clone()));
        child.set_parent(&parent).unwrap();
        assert_eq!(parent.set_parent(&child), Err(Error::CyclicParent));

        // Throwing into a greenlet interrupts it.
        let run = |log: Log<&'static str>| {
            move |_| {
                let main = getcurrent().parent().unwrap();
                match catch(|| main.switch(unit())) {
                    Err(payload) if payload.downcast_ref() == Some(&TestError("MyException")) => {
                        log.push("caught exception in greenlet")
                    }
                    Err(payload) => std::panic::resume_unwind(payload),
                    Ok(_) => {}
                }
                unit()
            }
        };
        let glet = Greenlet::new(run(log.clone()));
        glet.switch(unit());
        take::<()>(glet.throw(Box::new(TestError("MyException"))));
        assert_eq!(log.get().last(), Some(&"caught exception in greenlet"));

        // Uncaught, it propagates to the parent.
        let glet = Greenlet::new(run(log.clone()));
        glet.switch(unit());
        let caught = panic_payload::<TestError, _>(catch(|| glet.throw(Box::new(TestError("ValueError")))));
        assert_eq!(caught, TestError("ValueError"));

        // Except GreenletExit, which is returned.
        let glet = Greenlet::new(run(log.clone()));
        glet.switch(unit());
        assert_eq!(take::<GreenletExit>(glet.throw(Box::new(GreenletExit))), GreenletExit);
        assert!(glet.is_dead());
        assert_eq!(log.len(), 5);
    });
}
