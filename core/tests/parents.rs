//! The parent tree: default and explicit parents, reparenting and its cycle
//! checks, and where a finished greenlet's result or panic goes (dead parents
//! are skipped, pending ones are started). Ports cases of Python greenlet's
//! test suite (test_greenlet.py and the docs' doctests).

mod util;

use greenlet::{Error, Greenlet, getcurrent};
use util::{
    Log, Slot, TestError, UNALLOCATABLE_STACK, catch, leak_check, panic_payload, panic_text, raise, suspend, take,
    unit, val,
};

/// Python's `fmain`: suspends to the parent, and when resumed logs whatever
/// panic it receives there and lets it go on; if resumed normally it panics
/// with `TestError("fmain")`.
fn fmain(seen: Log<&'static str>) -> impl FnOnce(greenlet::Value) -> greenlet::Value + 'static {
    move |_| match catch(|| suspend(unit())) {
        Err(payload) => {
            seen.push(payload.downcast_ref::<TestError>().map_or("another panic", |error| error.0));
            std::panic::resume_unwind(payload)
        }
        Ok(_) => raise(TestError("fmain")),
    }
}

// greenlet catalogue #4 (test_parent_equals_None)
#[test]
fn greenlet_built_without_a_parent_gets_the_current_greenlet() {
    leak_check(|| {
        let main = getcurrent();
        let g = Greenlet::builder().build(|v| v);
        assert_eq!(g.parent(), Some(main.clone()));
        let child = Greenlet::new(|_| {
            let inner = Greenlet::builder().name("inner").build(|v| v);
            let is_mine = inner.parent() == Some(getcurrent());
            val(is_mine)
        });
        assert!(take::<bool>(child.switch(unit())), "a greenlet created in a child has the child as parent");
        assert_eq!(child.parent(), Some(main));
    });
}

// greenlet catalogue #10 (test_exception)
#[test]
fn panic_in_reparented_child_passes_through_its_new_parent() {
    leak_check(|| {
        let seen = Log::new();
        let g1 = Greenlet::new(fmain(seen.clone()));
        let g2 = Greenlet::new(fmain(seen.clone()));
        g1.switch(unit());
        g2.switch(unit());
        g2.set_parent(&g1).unwrap();
        assert!(seen.is_empty());
        // g2 resumes normally and panics; the panic is raised in g1 at its
        // suspension point, g1 logs it and lets it go on to main.
        let caught = panic_payload::<TestError, _>(catch(|| g2.switch(unit())));
        assert_eq!(caught, TestError("fmain"));
        assert_eq!(seen.get(), ["fmain"]);
        assert!(g1.is_dead() && g2.is_dead());
        // Switching to the dead g2 goes to its first live ancestor, main.
        take::<()>(g2.switch(unit()));
        assert_eq!(take::<i32>(g2.switch(val(25))), 25);
        assert_eq!(seen.len(), 1);
    });
}

// greenlet catalogue #25 (test_parent_return_failure). Upstream's parent has no
// `run`; here the pending parent cannot start because it cannot get a stack.
// The failure reaches the next ancestor as an ordinary panic, no abort.
#[test]
fn child_finishing_into_a_parent_that_cannot_start_panics_in_the_next_ancestor() {
    leak_check(|| {
        let parent = Greenlet::builder().name("no-stack").stack_size(UNALLOCATABLE_STACK).build(|v| v);
        let child = Greenlet::builder().parent(&parent).build(|_| val("child result"));
        let message = panic_text(catch(|| child.switch(unit())));
        assert!(message.contains("'no-stack'") && message.contains("cannot start"), "{message}");
        assert!(child.is_dead());
        assert!(!parent.is_started(), "the parent stays pending");
        // The thread is not disturbed.
        assert_eq!(take::<i32>(Greenlet::new(|v| v).switch(val(3))), 3);
    });
}

// greenlet catalogue #36
// (test_falling_off_end_switches_to_unstarted_parent_raises_error). Python's
// parent takes no arguments and fails with a TypeError; here the parent's
// `run` rejects the value it is started with.
#[test]
fn pending_parent_that_rejects_the_childs_result_panics_in_main() {
    leak_check(|| {
        let parent = Greenlet::new(|arg| match arg.downcast::<()>() {
            Ok(_) => unit(),
            Err(_) => raise(TestError("run() takes no arguments")),
        });
        let child = Greenlet::builder().parent(&parent).build(|_| val(42));
        let caught = panic_payload::<TestError, _>(catch(|| child.switch(unit())));
        assert_eq!(caught, TestError("run() takes no arguments"));
        assert!(child.is_dead() && parent.is_dead());
    });
}

// greenlet catalogue #37 (test_falling_off_end_switches_to_unstarted_parent_works)
#[test]
fn pending_parent_is_started_with_the_childs_result() {
    leak_check(|| {
        let parent = Greenlet::new(|x| val((take::<i32>(x), 24)));
        let child = Greenlet::builder().parent(&parent).build(|_| val(42));
        assert_eq!(take::<(i32, i32)>(child.switch(unit())), (42, 24));
        assert!(child.is_dead() && parent.is_dead());
    });
}

// greenlet catalogue #38 (test_switch_to_dead_greenlet_with_unstarted_perverse_parent).
// Upstream's parent fails when its `run` is looked up; here it fails to get
// a stack. Each switch to the dead child tries to start the parent again.
#[test]
fn switching_to_dead_child_retries_its_unstartable_parent_without_rerunning_the_child() {
    leak_check(|| {
        let seen = Log::new();
        let parent = Greenlet::builder().stack_size(UNALLOCATABLE_STACK).build(|v| v);
        let s = seen.clone();
        let child = Greenlet::builder().parent(&parent).build(move |_| {
            s.push(42);
            unit()
        });
        let first = panic_text(catch(|| child.switch(unit())));
        assert!(first.contains("cannot start"), "{first}");
        assert_eq!(seen.get(), [42]);
        assert!(child.is_dead());
        let second = panic_text(catch(|| child.switch(unit())));
        assert!(second.contains("cannot start"), "{second}");
        assert_eq!(seen.get(), [42], "the dead child does not run again");
        assert!(!parent.is_started());
    });
}

// greenlet catalogue #39 (test_switch_to_dead_greenlet_reparent)
#[test]
fn switching_to_dead_child_starts_its_new_pending_parent() {
    leak_check(|| {
        let seen = Log::new();
        let s = seen.clone();
        let parent_never_started = Greenlet::new(move |_| {
            s.push(24);
            unit()
        });
        let s = seen.clone();
        let child = Greenlet::new(move |_| {
            s.push(42);
            unit()
        });
        child.switch(unit());
        assert_eq!(seen.get(), [42]);
        child.set_parent(&parent_never_started).unwrap();
        // The same as switching to the parent.
        take::<()>(child.switch(unit()));
        assert_eq!(seen.get(), [42, 24]);
        assert!(parent_never_started.is_dead());
    });
}

// greenlet catalogue #49 (test_main_greenlet_parent_is_none)
#[test]
fn main_greenlet_has_no_parent() {
    leak_check(|| {
        let main = getcurrent();
        assert!(main.is_main());
        assert_eq!(main.parent(), None);
    });
}

// greenlet catalogue #51 (test_trivial_cycle)
#[test]
fn greenlet_cannot_be_its_own_parent() {
    leak_check(|| {
        let g = Greenlet::new(|v| v);
        assert_eq!(g.set_parent(&g), Err(Error::CyclicParent));
        assert_eq!(Error::CyclicParent.to_string(), "cyclic parent chain");
        assert_eq!(g.parent(), Some(getcurrent()), "the parent is unchanged");
    });
}

// greenlet catalogue #52 (test_trivial_cycle_main)
#[test]
fn main_greenlet_parent_cannot_be_set() {
    leak_check(|| {
        let main = getcurrent();
        let g = Greenlet::new(|v| v);
        assert_eq!(main.set_parent(&g), Err(Error::MainHasNoParent));
        assert_eq!(main.set_parent(&main), Err(Error::MainHasNoParent));
        assert_eq!(Error::MainHasNoParent.to_string(), "cannot set the parent of a main greenlet");
        assert_eq!(main.parent(), None);
    });
}

// greenlet catalogue #53 (test_deeper_cycle)
#[test]
fn reparenting_onto_a_descendant_is_rejected() {
    leak_check(|| {
        let g1 = Greenlet::new(|v| v);
        let g2 = Greenlet::builder().parent(&g1).build(|v| v);
        let g3 = Greenlet::builder().parent(&g2).build(|v| v);
        assert_eq!(g1.set_parent(&g3), Err(Error::CyclicParent));
        assert_eq!(g1.set_parent(&g2), Err(Error::CyclicParent));
        assert_eq!(g1.parent(), Some(getcurrent()));
        // The other direction is fine.
        g3.set_parent(&g1).unwrap();
        assert_eq!(g3.parent(), Some(g1.clone()));
    });
}

// greenlet catalogue #151 (greenlet.rst doctest)
#[test]
fn only_the_main_greenlet_lacks_a_parent() {
    leak_check(|| {
        assert!(getcurrent().parent().is_none());
        let g = Greenlet::new(|_| val(getcurrent().parent().is_some()));
        assert!(take::<bool>(g.switch(unit())));
    });
}

// greenlet catalogue #152 (greenlet.rst doctest)
#[test]
fn panic_goes_to_the_parent_not_to_the_greenlet_that_switched_in() {
    leak_check(|| {
        let log = Log::new();
        let gr2_slot = Slot::new();
        let (l, gr2) = (log.clone(), gr2_slot.clone());
        let gr1 = Greenlet::new(move |_| {
            let outcome = catch(|| gr2.get().switch(unit()));
            l.push(format!("gr1 resumed with a panic: {}", outcome.is_err()));
            unit()
        });
        let gr2 = Greenlet::new(|_| raise(TestError("NameError")));
        gr2_slot.set(&gr2);
        // gr2's parent is main: the panic reaches main, not gr1.
        let caught = panic_payload::<TestError, _>(catch(|| gr1.switch(unit())));
        assert_eq!(caught, TestError("NameError"));
        assert!(log.is_empty(), "gr1 never sees the panic");
        assert!(gr2.is_dead());
        assert!(gr1.is_active(), "gr1 is still waiting in its switch");
        gr2_slot.clear();
    });
}
