//! Resource accounting: values passed between greenlets are dropped exactly
//! once, stacks are held only while greenlets are active, and running many
//! greenlets neither leaks greenlets nor grows the stack pool. Ports cases of
//! Python greenlet's test suite (test_leaks.py, test_stack_saved.py and
//! test_cpp.py).

mod util;

use std::collections::HashMap;
use std::rc::Rc;

use greenlet::{Greenlet, GreenletExit, getcurrent, live_greenlets, stack};
use util::{Drops, SyncDrops, TestError, catch, leak_check, panic_payload, raise, suspend, take, unit, val};

// greenlet catalogue #94 (test_stack_saved). There is no saved-bytes metric
// (stacks are not copied); the Rust counterpart is the stack a greenlet holds
// from its start until it finishes. The main greenlet uses the thread's own.
#[test]
fn stack_is_held_only_while_a_greenlet_is_active() {
    leak_check(|| {
        let base = stack::stats().in_use;
        let g = Greenlet::new(|_| {
            let inside = stack::stats().in_use;
            suspend(unit());
            val(inside)
        });
        assert_eq!(stack::stats().in_use, base, "a pending greenlet has no stack");
        g.switch(unit());
        assert_eq!(stack::stats().in_use, base + 1, "a suspended greenlet keeps its stack");
        assert_eq!(take::<usize>(g.switch(unit())), base + 1, "the running greenlet's stack is in use");
        assert!(g.is_dead());
        assert_eq!(stack::stats().in_use, base, "a finished greenlet has given its stack back");
        assert!(getcurrent().is_main());
    });
}

// greenlet catalogue #114 (test_arg_refs): passing the same value through 100
// round trips leaves no reference behind.
#[test]
fn values_switched_back_and_forth_leave_no_references_behind() {
    leak_check(|| {
        let args = Rc::new(("a", "b", "c"));
        let echo = Greenlet::new(|first| {
            let mut value = first;
            loop {
                value = suspend(value);
            }
        });
        for _ in 0..100 {
            let back = echo.switch(val(args.clone()));
            assert!(Rc::ptr_eq(&take::<Rc<(&str, &str, &str)>>(back), &args));
            assert_eq!(Rc::strong_count(&args), 1);
        }
        drop(echo);
        assert_eq!(Rc::strong_count(&args), 1);
    });
}

// greenlet catalogue #115 (test_kwarg_refs). No keyword arguments in Rust; the
// same accounting for values on every other path: ignored by the receiver,
// returned by `run`, bounced off a dead greenlet, thrown as a panic payload,
// and sent to a greenlet that is then killed.
#[test]
fn values_on_every_path_are_dropped_exactly_once() {
    leak_check(|| {
        let drops = Drops::new();
        let map = |drops: &Drops| HashMap::from([("a", drops.token())]);

        // Ignored by the receiver.
        let ignorer = Greenlet::new(|first| {
            drop(first);
            loop {
                suspend(unit());
            }
        });
        for _ in 0..10 {
            ignorer.switch(val(map(&drops)));
        }
        assert_eq!(drops.count(), 10);

        // Passed to `run` and returned by it.
        let identity = Greenlet::new(|v| v);
        let returned = identity.switch(val(map(&drops)));
        assert_eq!(drops.count(), 10);
        drop(returned);
        assert_eq!(drops.count(), 11);

        // Bounced off a dead greenlet.
        let bounced = identity.switch(val(map(&drops)));
        assert_eq!(drops.count(), 11);
        drop(bounced);
        assert_eq!(drops.count(), 12);

        // Thrown in, caught and dropped by the receiver; thrown at a dead
        // greenlet and caught by the thrower. (Panic payloads are `Send`.)
        let thrown = SyncDrops::new();
        let catcher = Greenlet::new(|_| {
            let caught = catch(|| suspend(unit()));
            drop(caught);
            unit()
        });
        catcher.switch(unit());
        catcher.throw(Box::new(thrown.token()));
        assert_eq!(thrown.count(), 1);
        let thrown_back = catch(|| catcher.throw(Box::new(thrown.token())));
        assert_eq!(thrown.count(), 1);
        drop(thrown_back);
        assert_eq!(thrown.count(), 2);

        // Sent to a greenlet that holds it when it is killed.
        let holder = Greenlet::new(|_| {
            let held = suspend(unit());
            suspend(unit());
            held
        });
        holder.switch(unit());
        holder.switch(val(map(&drops)));
        assert_eq!(drops.count(), 12);
        drop(holder);
        assert_eq!(drops.count(), 13);

        drop(ignorer);
        assert_eq!(drops.count(), 13);
    });
}

// greenlet catalogue #123 (test_untracked_memory_doesnt_increase). Instead of
// process memory: greenlets started and finished round after round reuse the
// pooled stacks; the pool's reservations stop growing after the first round.
#[test]
fn running_many_greenlets_does_not_grow_the_stack_pool() {
    const ROUND: usize = 1_000;
    leak_check(|| {
        let mut reserved = Vec::new();
        for _ in 0..5 {
            // Many alive at once, then all finished.
            let greenlets: Vec<Greenlet> = (0..ROUND)
                .map(|i| {
                    let g = Greenlet::new(move |_| {
                        suspend(unit());
                        val(i)
                    });
                    g.switch(unit());
                    g
                })
                .collect();
            for (i, g) in greenlets.iter().enumerate() {
                assert_eq!(take::<usize>(g.switch(unit())), i);
            }
            drop(greenlets);
            // And many one after the other.
            for i in 0..ROUND {
                assert_eq!(take::<usize>(Greenlet::new(|v| v).switch(val(i))), i);
            }
            let stats = stack::stats();
            assert_eq!(stats.in_use, 0);
            reserved.push((stats.chunks, stats.reserved_bytes));
        }
        assert!(reserved.windows(2).all(|w| w[0] == w[1]), "the pool kept growing: {reserved:?}");
        // Idle stacks stay resident up to the recent peak (ROUND at once)...
        let idle = stack::stats();
        assert!(idle.idle_warm <= ROUND, "idle stacks beyond the recent peak are discarded: {idle:?}");
        // ...and beyond the idle limit once the peak is forgotten.
        stack::set_idle_limit(256);
        let idle = stack::stats();
        assert!(idle.idle_warm <= 256, "idle stacks beyond the limit are discarded: {idle:?}");
    });
}

// greenlet catalogue #143 (test_leak_test_exception_switch_and_do_in_g2,
// test_cpp.py): 1,000 rounds of a child panicking into its parent, which
// catches it and switches on, leak no greenlet and no stack.
#[test]
fn panicking_children_leak_nothing_over_many_rounds() {
    leak_check(|| {
        let live = live_greenlets();
        for _ in 0..1_000 {
            let g1 = Greenlet::new(|_| {
                let g2 = Greenlet::new(|_| raise(TestError("from g2")));
                let caught = panic_payload::<TestError, _>(catch(|| g2.switch(unit())));
                assert!(g2.is_dead());
                drop(g2);
                suspend(val(caught));
                unit()
            });
            assert_eq!(take::<TestError>(g1.switch(unit())), TestError("from g2"));
            assert_eq!(live_greenlets(), live + 1);
            // Killed while suspended.
            assert_eq!(take::<GreenletExit>(g1.throw(Box::new(GreenletExit))), GreenletExit);
        }
    });
}
