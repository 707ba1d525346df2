//! Switching between greenlets: how control and values move, what comes back
//! out of `switch`, and how panics travel. Ports cases of Python greenlet's
//! test suite (test_greenlet.py, test_cpp.py and the docs' doctests).

mod util;

use std::collections::HashMap;
use std::hint::black_box;

use greenlet::{Greenlet, getcurrent, stack};
use util::{
    Log, Slot, TestError, UNALLOCATABLE_STACK, catch, leak_check, panic_payload, panic_text, raise, suspend, take,
    unit, val,
};

// greenlet catalogue #1 (test_simple)
#[test]
fn switches_interleave_strictly_between_parent_and_child() {
    leak_check(|| {
        let log = Log::new();
        let l = log.clone();
        let g = Greenlet::new(move |_| {
            l.push(1);
            suspend(unit());
            l.push(3);
            unit()
        });
        log.push(0);
        g.switch(unit());
        log.push(2);
        g.switch(unit());
        log.push(4);
        assert_eq!(log.get(), [0, 1, 2, 3, 4]);
        assert!(g.is_dead());
    });
}

// greenlet catalogue #6 (test_two_children)
#[test]
fn sibling_greenlets_with_the_same_body_run_independently() {
    leak_check(|| {
        let log = Log::new();
        let body = |log: Log<i32>| {
            move |_| {
                log.push(1);
                suspend(unit());
                log.push(1);
                log.push(1);
                unit()
            }
        };
        let g = Greenlet::new(body(log.clone()));
        let h = Greenlet::new(body(log.clone()));
        g.switch(unit());
        assert_eq!(log.len(), 1);
        h.switch(unit());
        assert_eq!(log.len(), 2);
        h.switch(unit());
        assert_eq!(log.len(), 4);
        assert!(h.is_dead());
        assert!(g.is_active(), "finishing h must not affect g");
        g.switch(unit());
        assert_eq!(log.len(), 6);
        assert!(g.is_dead());
    });
}

// greenlet catalogue #7 (test_two_recursive_children)
#[test]
fn nested_child_suspends_back_to_its_creator() {
    leak_check(|| {
        let log = Log::new();
        let l = log.clone();
        let outer = Greenlet::new(move |_| {
            l.push("a");
            let l2 = l.clone();
            let inner = Greenlet::new(move |_| {
                l2.push("b");
                let _killed = util::Finally(|| l2.push("inner unwound"));
                suspend(unit());
                unreachable!("nobody resumes the inner greenlet");
            });
            assert_eq!(inner.parent().as_ref(), Some(&getcurrent()));
            inner.switch(unit());
            l.push("c");
            // `inner` is dropped here, while still suspended: it is killed
            // inside this greenlet.
            unit()
        });
        outer.switch(unit());
        assert_eq!(log.get(), ["a", "b", "c", "inner unwound"]);
        assert!(outer.is_dead());
    });
}

// greenlet catalogue #15 (test_frame) [PY]; only the state flags and the
// return value carry over (there is no frame object).
#[test]
fn state_flags_follow_the_lifecycle_and_return_value_is_passed_on() {
    leak_check(|| {
        let g = Greenlet::new(|_| {
            let me = getcurrent();
            assert!(me.is_started() && me.is_active() && me.is_current() && !me.is_dead());
            drop(me);
            let back = suspend(val(1));
            val(take::<i32>(back) * 10)
        });
        assert!(!g.is_started() && !g.is_active() && !g.is_dead() && !g.is_current());
        assert_eq!(take::<i32>(g.switch(unit())), 1);
        assert!(g.is_started() && g.is_active() && !g.is_dead() && !g.is_current());
        assert_eq!(take::<i32>(g.switch(val(4))), 40);
        assert!(g.is_started() && !g.is_active() && g.is_dead());
    });
}

// greenlet catalogue #17 (test_switch_kwargs). Rust has no keyword arguments:
// what remains is that the first switch's value becomes the argument of `run`
// and the value `run` returns comes back out of that first switch.
#[test]
fn first_switch_passes_its_value_to_run_and_run_result_comes_back() {
    leak_check(|| {
        let g = Greenlet::new(|args| {
            let (a, b): (i32, i32) = take(args);
            val(a * b)
        });
        assert_eq!(take::<i32>(g.switch(val((6, 7)))), 42);
        assert!(g.is_dead());
    });
}

// greenlet catalogue #18 (test_switch_kwargs_to_parent). Python packs
// args/kwargs into tuples and dicts; a Rust `Value` is delivered as the very
// value that was sent, of any type, and a returned tuple arrives unchanged.
#[test]
fn values_of_any_type_reach_the_parent_unchanged() {
    leak_check(|| {
        let g = Greenlet::new(|_| {
            suspend(val(HashMap::from([("foo", 42)])));
            suspend(val(((42,), HashMap::from([("foo", 42)]))));
            suspend(unit());
            val((1, 2))
        });
        assert_eq!(take::<HashMap<&str, i32>>(g.switch(unit())), HashMap::from([("foo", 42)]));
        assert_eq!(take::<((i32,), HashMap<&str, i32>)>(g.switch(unit())), ((42,), HashMap::from([("foo", 42)])));
        take::<()>(g.switch(unit()));
        assert_eq!(take::<(i32, i32)>(g.switch(unit())), (1, 2));
        assert!(g.is_dead());
    });
}

// greenlet catalogue #41 (test_get_stack_with_nested_c_calls)
#[test]
fn suspending_deep_in_nested_calls_keeps_the_stack_intact() {
    // Each level keeps a buffer on its own frame and checks it after the
    // greenlet was suspended and other stacks ran.
    #[inline(never)]
    fn level(n: u64) -> u64 {
        let frame = black_box([n; 32]);
        let result = if n == 0 { take::<u64>(suspend(val("at the bottom"))) } else { n * level(n - 1) };
        assert!(black_box(frame).iter().all(|&x| x == n), "frame of level {n} was clobbered");
        result
    }

    leak_check(|| {
        let g = Greenlet::new(|_| val(level(5)));
        assert_eq!(take::<&str>(g.switch(unit())), "at the bottom");
        // Another greenlet runs deep recursion of its own meanwhile.
        let other = Greenlet::new(|_| val(level(5)));
        assert_eq!(take::<&str>(other.switch(unit())), "at the bottom");
        assert_eq!(take::<u64>(other.switch(val(1u64))), 120);
        assert_eq!(take::<u64>(g.switch(val(10u64))), 1200);
    });
}

// greenlet catalogue #61 (test_main_greenlet_is_greenlet)
#[test]
fn main_greenlet_is_an_ordinary_greenlet_handle() {
    leak_check(|| {
        let main: Greenlet = getcurrent();
        assert!(main.is_main() && main.is_started() && main.is_active() && !main.is_dead() && main.is_current());
        assert_eq!(main.name(), Some("main"));
        assert_eq!(main, getcurrent(), "handles to the same greenlet compare equal");
        let seen = Greenlet::new(|_| val(getcurrent().parent().unwrap())).switch(unit());
        let seen: Greenlet = take(seen);
        assert_eq!(seen, main);
        assert_eq!(seen.id(), main.id());
    });
}

// greenlet catalogue #63 (test_failed_to_initialstub). The Rust analogue of a
// low-level failure on the first switch is failing to get a stack: the caller
// panics with a message naming the greenlet and the cause, and the target
// stays pending.
#[test]
fn failed_start_panics_in_caller_and_leaves_target_pending() {
    leak_check(|| {
        let ran = Log::new();
        let r = ran.clone();
        let g = Greenlet::builder().name("too-big").stack_size(UNALLOCATABLE_STACK).build(move |v| {
            r.push(());
            v
        });
        let in_use = stack::stats().in_use;
        let message = panic_text(catch(|| g.switch(unit())));
        assert!(message.contains("'too-big'"), "message names the greenlet: {message}");
        assert!(message.contains("cannot start"), "message says what failed: {message}");
        assert!(message.contains("could not allocate"), "message names the cause: {message}");
        assert!(!g.is_started() && !g.is_dead());
        assert!(ran.is_empty());
        assert_eq!(stack::stats().in_use, in_use);
        // The thread goes on switching normally.
        assert_eq!(take::<i32>(Greenlet::new(|v| v).switch(val(7))), 7);
    });
}

// The value of a switch whose target cannot start is not delivered: the
// failure is raised instead. The value is dropped in a greenlet (the one
// that receives the failure), never inside the dispatcher, so its destructor
// may use greenlets.
#[test]
fn value_of_a_failed_start_is_dropped_where_greenlets_can_be_used() {
    struct UsesGreenlets(Log<bool>);

    impl Drop for UsesGreenlets {
        fn drop(&mut self) {
            self.0.push(getcurrent().is_main());
        }
    }

    leak_check(|| {
        let log = Log::new();
        let unstartable = Greenlet::builder().stack_size(UNALLOCATABLE_STACK).build(|v| v);
        let message = panic_text(catch(|| unstartable.switch(val(UsesGreenlets(log.clone())))));
        assert!(message.contains("cannot start"), "{message}");
        assert_eq!(log.get(), [true], "dropped once, in main");
        // The same from a greenlet: dropped in it, before its switch raises.
        let (l, target) = (log.clone(), unstartable.clone());
        let g = Greenlet::new(move |_| {
            let message = panic_text(catch(|| target.switch(val(UsesGreenlets(l.clone())))));
            l.push(false);
            val(message)
        });
        assert!(take::<String>(g.switch(unit())).contains("cannot start"));
        assert_eq!(log.get(), [true, false, false], "dropped in the greenlet, before its switch raised");
        assert!(!unstartable.is_started());
    });
}

// greenlet catalogue #64 (test_failed_to_switch_into_running). A switch into a
// suspended greenlet cannot fail in Rust; what can fail is a greenlet's switch
// to a pending one that cannot get a stack. The failure is raised in the
// switching greenlet, which can handle it and still be resumed and finish.
#[test]
fn failed_start_is_raised_in_the_switching_greenlet_which_can_go_on() {
    leak_check(|| {
        let unstartable = Greenlet::builder().stack_size(UNALLOCATABLE_STACK).build(|v| v);
        let target = unstartable.clone();
        let g = Greenlet::new(move |_| {
            let message = panic_text(catch(|| target.switch(unit())));
            let back = suspend(val(message));
            val(format!("finished with {}", take::<&str>(back)))
        });
        let message: String = take(g.switch(unit()));
        assert!(message.contains("cannot start"), "{message}");
        assert!(g.is_active());
        assert!(!unstartable.is_started());
        assert_eq!(take::<String>(g.switch(val("resume"))), "finished with resume");
        assert!(g.is_dead());
    });
}

// greenlet catalogue #138 (test_exception_switch, test_cpp.py)
#[test]
fn panic_caught_inside_greenlet_unwinds_only_its_own_frames() {
    #[derive(Debug)]
    struct Depth(usize);

    // Recurses `left` more levels, suspends at the bottom, then panics from
    // there when resumed. Every level logs when it is unwound.
    #[inline(never)]
    fn recurse(id: usize, left: usize, log: &Log<(usize, usize)>) {
        let _frame = util::Finally(|| log.push((id, left)));
        if left > 0 {
            recurse(id, left - 1, log);
        } else {
            suspend(unit());
            raise(Depth(id));
        }
    }

    leak_check(|| {
        let log = Log::new();
        let greenlets: Vec<Greenlet> = (0..4)
            .map(|depth| {
                let log = log.clone();
                let g = Greenlet::new(move |_| {
                    let caught = catch(|| recurse(depth, depth, &log));
                    val(panic_payload::<Depth, _>(caught).0)
                });
                g.switch(unit());
                g
            })
            .collect();
        assert!(log.is_empty(), "nothing unwinds while the greenlets are suspended");
        for (depth, g) in greenlets.iter().enumerate() {
            let before = log.len();
            assert_eq!(take::<usize>(g.switch(unit())), depth);
            let unwound: Vec<_> = log.get()[before..].to_vec();
            let expected: Vec<_> = (0..=depth).map(|left| (depth, left)).collect();
            assert_eq!(unwound, expected, "only greenlet {depth}'s own frames unwind");
        }
    });
}

// greenlet catalogue #139-#142 (test_unhandled_nonstd_exception_aborts and
// friends, test_cpp.py). A native exception escaping a greenlet aborts in
// Python; a Rust panic escaping `run` kills the greenlet and resumes
// unwinding in its parent, out of the parent's pending `switch`.
#[test]
fn uncaught_panic_resumes_in_parent() {
    leak_check(|| {
        let log = Log::new();
        let l = log.clone();
        let child = Greenlet::new(move |_| {
            let l2 = l.clone();
            let grandchild = Greenlet::new(move |_| {
                let _unwound = util::Finally(|| l2.push("grandchild unwound"));
                raise(TestError("from grandchild"))
            });
            // The grandchild's parent is this greenlet: the panic comes out
            // of this switch.
            let caught = panic_payload::<TestError, _>(catch(|| grandchild.switch(unit())));
            l.push("child caught it");
            assert!(grandchild.is_dead());
            assert_eq!(caught, TestError("from grandchild"));
            raise(TestError("from child"))
        });
        let caught = panic_payload::<TestError, _>(catch(|| child.switch(unit())));
        assert_eq!(caught, TestError("from child"));
        assert_eq!(log.get(), ["grandchild unwound", "child caught it"]);
        assert!(child.is_dead());
        // The main greenlet is unaffected and still current.
        assert!(getcurrent().is_main());
    });
}

// greenlet catalogue #150 (greenlet.rst doctest)
#[test]
fn greenlet_left_suspended_is_not_dead_when_its_partner_finishes() {
    leak_check(|| {
        let log = Log::new();
        let (gr1_slot, gr2_slot) = (Slot::new(), Slot::new());
        let (l, gr2) = (log.clone(), gr2_slot.clone());
        let gr1 = Greenlet::new(move |_| {
            l.push(12);
            gr2.get().switch(unit());
            l.push(34);
            val("test1 done")
        });
        let (l, gr1_ref) = (log.clone(), gr1_slot.clone());
        let gr2 = Greenlet::new(move |_| {
            l.push(56);
            gr1_ref.get().switch(unit());
            l.push(78);
            unit()
        });
        gr1_slot.set(&gr1);
        gr2_slot.set(&gr2);
        assert_eq!(take::<&str>(gr1.switch(unit())), "test1 done");
        assert_eq!(log.get(), [12, 56, 34]);
        assert!(gr1.is_dead());
        assert!(!gr2.is_dead() && gr2.is_active());
        gr1_slot.clear();
        gr2_slot.clear();
    });
}

// greenlet catalogue #153 (switching.rst doctest). Python's two positional
// arguments become one tuple value.
#[test]
fn values_flow_between_greenlets_that_switch_to_each_other() {
    leak_check(|| {
        let log = Log::new();
        let (gr1_slot, gr2_slot) = (Slot::new(), Slot::new());
        let (l, gr2) = (log.clone(), gr2_slot.clone());
        let gr1 = Greenlet::new(move |args| {
            let (x, y): (&str, &str) = take(args);
            let z = gr2.get().switch(val(format!("{x}{y}")));
            l.push(take::<i32>(z).to_string());
            unit()
        });
        let (l, gr1_ref) = (log.clone(), gr1_slot.clone());
        let gr2 = Greenlet::new(move |u| {
            l.push(take::<String>(u));
            gr1_ref.get().switch(val(42));
            unreachable!("gr2 is never resumed");
        });
        gr1_slot.set(&gr1);
        gr2_slot.set(&gr2);
        take::<()>(gr1.switch(val(("hello", " world"))));
        assert_eq!(log.get(), ["hello world", "42"]);
        assert!(gr1.is_dead() && gr2.is_active());
        gr1_slot.clear();
        gr2_slot.clear();
    });
}

// greenlet catalogue #154 (switching.rst doctest, "Multiple And Keyword
// Arguments"). Python's packing table has no Rust counterpart: a suspended
// greenlet receives exactly the value sent, whatever its type.
#[test]
fn resumed_greenlet_receives_exactly_the_value_sent() {
    #[derive(Clone, Debug, PartialEq)]
    enum Sent {
        Int(i32),
        Words(&'static str, &'static str, &'static str),
        Map(HashMap<&'static str, &'static str>),
        Pair((&'static str,), HashMap<&'static str, &'static str>),
    }

    leak_check(|| {
        let received = Log::new();
        let (gr1_slot, gr2_slot) = (Slot::new(), Slot::new());
        let (r, gr2) = (received.clone(), gr2_slot.clone());
        let gr1 = Greenlet::new(move |first| {
            let mut z = gr2.get().switch(first);
            while let Ok(sent) = z.downcast::<Sent>() {
                r.push(*sent);
                z = gr2.get().switch(unit());
            }
            unit()
        });
        let gr1_ref = gr1_slot.clone();
        let gr2 = Greenlet::new(move |u| {
            assert_eq!(take::<&str>(u), "hello world");
            let gr1 = gr1_ref.get();
            gr1.switch(val(Sent::Int(42)));
            gr1.switch(val(Sent::Words("how", "are", "you")));
            gr1.switch(val(Sent::Map(HashMap::from([("language", "en")]))));
            gr1.switch(val(Sent::Pair(("howdy",), HashMap::from([("language", "en_US")]))));
            gr1.switch(val("terminate"));
            unreachable!("gr2 is never resumed");
        });
        gr1_slot.set(&gr1);
        gr2_slot.set(&gr2);
        take::<()>(gr1.switch(val("hello world")));
        assert_eq!(
            received.get(),
            [
                Sent::Int(42),
                Sent::Words("how", "are", "you"),
                Sent::Map(HashMap::from([("language", "en")])),
                Sent::Pair(("howdy",), HashMap::from([("language", "en_US")])),
            ]
        );
        gr1_slot.clear();
        gr2_slot.clear();
    });
}

// greenlet catalogue #155 (switching.rst doctest, "Switching To Dead
// Greenlets"). Python hands back `()`; in Rust the value sent comes back.
#[test]
fn switching_to_a_dead_greenlet_goes_to_its_first_live_ancestor() {
    leak_check(|| {
        let log = Log::new();
        let l = log.clone();
        let outer = Greenlet::new(move |_| {
            let l2 = l.clone();
            let inner = Greenlet::new(move |_| {
                l2.push("inner ran".to_string());
                val(42)
            });
            l.push(format!("got {}", take::<i32>(inner.switch(unit()))));
            // inner is dead and its parent is this greenlet: the value comes
            // straight back.
            l.push(format!("got {}", take::<&str>(inner.switch(val("again")))));
            val(inner)
        });
        let inner: Greenlet = take(outer.switch(unit()));
        assert_eq!(log.get(), ["inner ran", "got 42", "got again"]);
        assert!(inner.is_dead() && outer.is_dead());
        // inner and its parent outer are both dead: main gets its value back.
        assert_eq!(take::<i32>(inner.switch(val(5))), 5);
        assert_eq!(log.len(), 3, "nothing runs again");
    });
}

// greenlet catalogue §1.3 ("switch() on the current greenlet itself")
#[test]
fn switching_to_the_current_greenlet_returns_the_value_at_once() {
    leak_check(|| {
        assert_eq!(take::<i32>(getcurrent().switch(val(7))), 7);
        let g = Greenlet::new(|_| {
            let me = getcurrent();
            let back = me.switch(val("to myself"));
            assert!(me.is_current());
            back
        });
        assert_eq!(take::<&str>(g.switch(unit())), "to myself");
    });
}

// ---------------------------------------------------------------------------
// Panics from the drops that end a greenlet (child processes: such a panic
// used to unwind out of the greenlet's root frame into the dispatcher, leave
// the finished greenlet as the thread's current one, and make the next switch
// jump through that greenlet's stale yielder)

/// Panics when dropped, as a greenlet-local value.
struct LocalBomb;

impl Drop for LocalBomb {
    fn drop(&mut self) {
        panic!("local");
    }
}

/// Panics when dropped, as the value a greenlet returns.
struct ValueBomb;

impl Drop for ValueBomb {
    fn drop(&mut self) {
        panic!("value");
    }
}

/// A panic payload whose own drop panics.
struct PayloadBomb;

impl Drop for PayloadBomb {
    fn drop(&mut self) {
        panic!("payload");
    }
}

greenlet::greenlet_local! {
    static LOCAL_BOMB: LocalBomb = LocalBomb;
    static PAYLOAD_LOCAL: PayloadLocal = PayloadLocal;
}

/// A greenlet-local value whose drop panics with a [`PayloadBomb`].
struct PayloadLocal;

impl Drop for PayloadLocal {
    fn drop(&mut self) {
        std::panic::panic_any(PayloadBomb);
    }
}

/// Runs `scenario` in a child process (it crashed there before) and checks
/// that it got to its end.
fn run_finishing_drops_scenario(test: &str, scenario: impl FnOnce()) {
    if runtime_testkit::is_child(test) {
        scenario();
        eprintln!("scenario finished");
        return;
    }
    let output = runtime_testkit::ChildTest::new(test).run();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stderr.contains("scenario finished"),
        "{}",
        runtime_testkit::output_text(&output)
    );
}

/// After `g` finished with panics in its last drops: main is current again,
/// `g` is dead, and switching works.
fn assert_thread_recovered(g: &Greenlet) {
    assert!(getcurrent().is_main(), "main is current again, not {:?}", getcurrent());
    assert!(g.is_dead(), "{g:?}");
    assert!(!g.is_active());
    assert_eq!(take::<i32>(Greenlet::new(|v| v).switch(val(5))), 5);
    let back = Greenlet::new(|_| suspend(val(1)));
    assert_eq!(take::<i32>(back.switch(unit())), 1);
    assert_eq!(take::<i32>(back.switch(val(2))), 2);
}

// The value `run` returned is dropped when a greenlet-local's drop panics; a
// panic from that drop must not escape the greenlet either. The parent gets
// the first panic, the second one is reported.
#[test]
fn panics_from_a_local_and_the_dropped_result_reach_the_parent_once() {
    run_finishing_drops_scenario("panics_from_a_local_and_the_dropped_result_reach_the_parent_once", || {
        leak_check(|| {
            let g = Greenlet::new(|_| {
                LOCAL_BOMB.with(|_| ());
                val(ValueBomb)
            });
            let (caught, events) = util::capture_tracing(|| catch(|| g.switch(unit())));
            assert_eq!(panic_text(caught), "local");
            assert_thread_recovered(&g);
            let errors: Vec<_> = events.iter().filter(|e| e.level == tracing::Level::ERROR).collect();
            assert_eq!(errors.len(), 1, "{events:?}");
            assert!(errors[0].text.contains("value"), "{:?}", errors[0]);
        });
    });
}

// The same when `run` panicked and a local's drop panicked too, with a
// payload whose own drop panics: the parent gets `run`'s panic.
#[test]
fn panic_payload_of_a_local_that_panics_after_run_panicked_is_not_dropped_unwinding() {
    run_finishing_drops_scenario(
        "panic_payload_of_a_local_that_panics_after_run_panicked_is_not_dropped_unwinding",
        || {
            leak_check(|| {
                let g = Greenlet::new(|_| {
                    PAYLOAD_LOCAL.with(|_| ());
                    raise(TestError("run"))
                });
                let (caught, events) = util::capture_tracing(|| catch(|| g.switch(unit())));
                assert_eq!(panic_payload::<TestError, _>(caught), TestError("run"));
                assert_thread_recovered(&g);
                assert!(events.iter().any(|e| e.level == tracing::Level::ERROR), "{events:?}");
            });
        },
    );
}

// The brief reproducer, on a greenlet that is not the first to run on the
// thread: the fast path of the dispatcher starts it.
#[test]
fn panic_escaping_a_started_greenlet_leaves_main_current() {
    run_finishing_drops_scenario("panic_escaping_a_started_greenlet_leaves_main_current", || {
        assert_eq!(take::<i32>(Greenlet::new(|v| v).switch(val(0))), 0);
        let g = Greenlet::new(|_| {
            LOCAL_BOMB.with(|_| ());
            val(ValueBomb)
        });
        let _ = catch(|| g.switch(unit()));
        assert_thread_recovered(&g);
    });
}
