//! Greenlets and OS threads: every thread has its own main greenlet, tree,
//! tracer, locals and default stack size, and a thread that exits kills the
//! suspended greenlets it still holds. Ports the threaded cases of Python
//! greenlet's test suite (test_greenlet.py, test_leaks.py,
//! test_interpreter_shutdown.py and python_threads.rst).
//!
//! `Greenlet` is neither `Send` nor `Sync`, so the upstream cases about
//! switching to, throwing into, reparenting onto or dropping a greenlet of
//! another thread (#9, #14, #19, #27, #44-#46, #57, #118-#122, #125, #158)
//! cannot be written: they are compile errors (the crate documentation
//! carries a `compile_fail` test for it). The tests below check what users
//! rely on instead.

mod util;

use std::cell::{Cell, RefCell};
use std::collections::HashSet;
use std::sync::mpsc;
use std::sync::{Arc, Barrier, Mutex};
use std::thread;
use std::time::Duration;

use greenlet::{Greenlet, GreenletExit, TraceEvent, getcurrent, greenlet_local, live_greenlets, settrace, stack};
use util::{SyncDropToken, SyncDrops, TraceGuard, catch, leak_check, raise, suspend, take, unit, val};

/// Generous bound for waiting on another thread, so that a deadlock fails
/// the test instead of hanging it. Not a timing assertion.
const DEADLOCK: Duration = Duration::from_secs(60);

/// test_simple, returning its log.
fn simple_interleaving() -> Vec<i32> {
    let log = std::rc::Rc::new(RefCell::new(Vec::new()));
    let l = log.clone();
    let g = Greenlet::new(move |_| {
        l.borrow_mut().push(1);
        suspend(unit());
        l.borrow_mut().push(3);
        unit()
    });
    log.borrow_mut().push(0);
    g.switch(unit());
    log.borrow_mut().push(2);
    g.switch(unit());
    log.borrow_mut().push(4);
    assert!(g.is_dead());
    log.borrow().clone()
}

// greenlet catalogue #8 (test_threads)
#[test]
fn threads_run_independent_greenlet_trees_concurrently() {
    let start = Barrier::new(10);
    let logs: Vec<Vec<i32>> = thread::scope(|s| {
        let handles: Vec<_> = (0..10)
            .map(|_| {
                s.spawn(|| {
                    start.wait();
                    leak_check(simple_interleaving)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(logs.iter().all(|log| *log == [0, 1, 2, 3, 4]), "{logs:?}");
}

// greenlet catalogue #9 (test_switching_many_threads). Switching across threads
// cannot be expressed; the stress that remains is many threads parking and
// resuming greenlets at the same time, each in its own tree.
#[test]
fn many_threads_park_and_resume_their_own_greenlets() {
    const THREADS: usize = 16;
    const PER_THREAD: usize = 50;
    let parked = Barrier::new(THREADS);
    let sums: Vec<usize> = thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let parked = &parked;
                s.spawn(move || {
                    leak_check(|| {
                        let greenlets: Vec<Greenlet> = (0..PER_THREAD)
                            .map(|i| {
                                let g = Greenlet::new(move |_| {
                                    let add = take::<usize>(suspend(unit()));
                                    val(t * 1000 + i + add)
                                });
                                g.switch(unit());
                                g
                            })
                            .collect();
                        // Counts are per thread: only this thread's greenlets.
                        assert_eq!(live_greenlets(), PER_THREAD + 1);
                        assert_eq!(stack::stats().in_use, PER_THREAD);
                        parked.wait();
                        greenlets.iter().map(|g| take::<usize>(g.switch(val(1usize)))).sum::<usize>()
                    })
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (t, sum) in sums.into_iter().enumerate() {
        let expected: usize = (0..PER_THREAD).map(|i| t * 1000 + i + 1).sum();
        assert_eq!(sum, expected);
    }
}

// greenlet catalogue #16 (test_thread_bug): greenlets of two threads block at
// the same time without getting in each other's way. Each one waits, inside
// its greenlet, for the other thread's greenlet to be running.
#[test]
fn greenlets_blocking_in_two_threads_do_not_interfere() {
    let (to_b, from_a) = mpsc::channel::<&str>();
    let (to_a, from_b) = mpsc::channel::<&str>();
    let run = |name: &'static str, send: mpsc::Sender<&'static str>, recv: mpsc::Receiver<&'static str>| {
        move || {
            leak_check(|| {
                let g = Greenlet::new(move |_| {
                    send.send(name).unwrap();
                    let other = recv.recv_timeout(DEADLOCK).expect("the other thread's greenlet never ran");
                    val(other)
                });
                take::<&str>(g.switch(unit()))
            })
        }
    };
    let (a, b) = thread::scope(|s| {
        let a = s.spawn(run("a", to_b, from_b));
        let b = s.spawn(run("b", to_a, from_a));
        (a.join().unwrap(), b.join().unwrap())
    });
    assert_eq!((a, b), ("b", "a"));
}

// greenlet catalogue #19 (test_switch_to_another_thread) and #158
// (python_threads.rst). Each thread gets a main greenlet of its own, the root
// of an independent tree; main greenlets of different threads differ.
#[test]
fn each_thread_has_its_own_main_greenlet() {
    let here = getcurrent().id();
    let start = Barrier::new(4);
    let ids: Vec<u64> = thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                s.spawn(|| {
                    assert_eq!(live_greenlets(), 0, "no greenlet exists before the first API call");
                    start.wait();
                    let main = getcurrent();
                    assert!(main.is_main() && main.parent().is_none());
                    assert_eq!(main.name(), Some("main"));
                    assert_eq!(live_greenlets(), 1);
                    let child_parent =
                        take::<u64>(Greenlet::new(|_| val(getcurrent().parent().unwrap().id())).switch(unit()));
                    assert_eq!(child_parent, main.id());
                    main.id()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let distinct: HashSet<u64> = ids.iter().copied().chain([here]).collect();
    assert_eq!(distinct.len(), 5, "main greenlets of different threads differ: {ids:?} and {here}");
}

// greenlet catalogue #33 (test_implicit_parent_with_threads) and #44-#46
// (test_threaded_reparent, test_unexpected_reparenting*). Parents cannot come
// from another thread; within each thread, default parents are that thread's
// current greenlet and every chain ends at that thread's main.
#[test]
fn new_greenlets_default_to_their_own_threads_current_greenlet() {
    let start = Barrier::new(4);
    thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                leak_check(|| {
                    start.wait();
                    let main = getcurrent();
                    let child = Greenlet::new(|_| {
                        let me = getcurrent();
                        let grandchild = Greenlet::new(|v| v);
                        assert_eq!(grandchild.parent(), Some(me.clone()));
                        let other = Greenlet::new(|v| v);
                        other.set_parent(&grandchild).unwrap();
                        // Walk to the root.
                        let mut root = other.clone();
                        while let Some(parent) = root.parent() {
                            root = parent;
                        }
                        val(root.id())
                    });
                    assert_eq!(take::<u64>(child.switch(unit())), main.id());
                });
            });
        }
    });
}

// greenlet catalogue #27 (test_throw_to_dead_thread_doesnt_crash) and §1.11
// item 8. A thread's greenlets cannot outlive it: when its closure returns,
// the handles it holds are dropped and its suspended greenlets are killed,
// in that thread, with their destructors run.
#[test]
fn thread_exit_kills_its_suspended_greenlets_in_that_thread() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let spawned = thread::scope(|s| {
        s.spawn(|| {
            let sink = seen.clone();
            let g = Greenlet::builder().name("parked").build(move |_| {
                if let Err(payload) = catch(|| suspend(unit())) {
                    sink.lock().unwrap().push((
                        payload.is::<GreenletExit>(),
                        thread::current().id(),
                        getcurrent().name().unwrap_or_default().to_owned(),
                    ));
                    std::panic::resume_unwind(payload);
                }
                unit()
            });
            g.switch(unit());
            assert!(seen.lock().unwrap().is_empty());
            thread::current().id()
            // `g` is dropped as the closure returns.
        })
        .join()
        .unwrap()
    });
    assert_eq!(*seen.lock().unwrap(), [(true, spawned, "parked".to_owned())]);
}

// greenlet catalogue #146 (test_interpreter_shutdown.py, group B): thread exit
// unwinds many parked greenlets and a greenlet suspended while handling a
// panic, each destructor running exactly once, and survives a nest of depth
// 10. Each level of the nest holds its child's handle on its suspended stack
// while the child's parent link (strong, as in Python) points back: a cycle
// that is never collected, so the nest is leaked without being unwound, like
// the "cycle of greenlets" greenlet_gc.rst documents as a leak.
#[test]
fn thread_exit_unwinds_many_nested_and_recovering_greenlets() {
    fn nest(depth: usize, main: Greenlet, token: SyncDropToken, drops: SyncDrops) -> Greenlet {
        Greenlet::new(move |_| {
            let _token = token;
            let child = (depth < 10).then(|| nest(depth + 1, main.clone(), drops.token(), drops.clone()));
            match &child {
                Some(child) => child.switch(unit()),
                None => main.switch(unit()),
            };
            unit()
        })
    }

    let drops = SyncDrops::new();
    thread::scope(|s| {
        s.spawn(|| {
            let main = getcurrent();
            let parked: Vec<Greenlet> = (0..50)
                .map(|_| {
                    let token = drops.token();
                    let g = Greenlet::new(move |_| {
                        let _token = token;
                        suspend(unit());
                        unit()
                    });
                    g.switch(unit());
                    g
                })
                .collect();
            let nested = nest(1, main.clone(), drops.token(), drops.clone());
            nested.switch(unit());
            let token = drops.token();
            let recovering = Greenlet::new(move |_| {
                if catch(|| raise(TestPanic)).is_err() {
                    let _token = token;
                    suspend(unit());
                }
                unit()
            });
            recovering.switch(unit());
            assert_eq!(live_greenlets(), 1 + 50 + 10 + 1);
            assert_eq!(drops.count(), 0);
            drop(main);
            let _keep = (parked, nested, recovering);
        })
        .join()
        .unwrap();
    });
    assert_eq!(drops.count(), 50 + 1, "the parked and the recovering greenlets, not the nest");
}

/// A panic payload for tests that catch their own panics.
struct TestPanic;

// greenlet catalogue #112 (test_context_assignment_different_thread). Another
// thread's greenlet cannot be reached at all; its greenlet-local values are
// its own, and so are those of each thread's main greenlet.
#[test]
fn greenlet_locals_are_per_thread() {
    greenlet_local! {
        static VALUE: Cell<u32> = Cell::new(0);
    }

    let set = Barrier::new(2);
    let results: Vec<(u32, u32)> = thread::scope(|s| {
        let handles: Vec<_> = [1, 2]
            .map(|n| {
                let set = &set;
                s.spawn(move || {
                    leak_check(|| {
                        VALUE.with(|v| v.set(n));
                        let child = Greenlet::new(move |_| {
                            VALUE.with(|v| v.set(n * 10));
                            suspend(unit());
                            val(VALUE.with(Cell::get))
                        });
                        child.switch(unit());
                        // Both threads have set their values before either
                        // reads them back.
                        set.wait();
                        let in_child = take::<u32>(child.switch(unit()));
                        (VALUE.with(Cell::get), in_child)
                    })
                })
            })
            .into_iter()
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(results, [(1, 10), (2, 20)]);
}

// greenlet catalogue §1.14 ("There is one tracer per thread") and #98-#104
// [PY] (per-thread instrumentation stays consistent across switches).
#[test]
fn tracer_is_per_thread() {
    let installed = Barrier::new(2);
    let switched = Barrier::new(2);
    let (traced, untraced) = thread::scope(|s| {
        let traced = s.spawn(|| {
            let events = std::rc::Rc::new(RefCell::new(Vec::new()));
            let sink = events.clone();
            settrace(Some(Box::new(move |event, _, to| sink.borrow_mut().push((event, to.is_main())))));
            let _trace = TraceGuard;
            installed.wait();
            switched.wait();
            Greenlet::new(|v| v).switch(unit());
            events.borrow().clone()
        });
        let untraced = s.spawn(|| {
            installed.wait();
            assert!(!greenlet::is_tracing());
            let n = Greenlet::new(|v| v).switch(val(3));
            switched.wait();
            take::<i32>(n)
        });
        (traced.join().unwrap(), untraced.join().unwrap())
    });
    assert_eq!(untraced, 3);
    assert_eq!(traced, [(TraceEvent::Switch, false), (TraceEvent::Switch, true)], "only this thread's switches");
}

// greenlet catalogue #19 (test_switch_to_another_thread) and §1.12: state is per
// thread; here the default stack size (the tracer and locals have their own
// tests above).
#[test]
fn default_stack_size_is_per_thread() {
    let set = Barrier::new(2);
    let (big, default) = thread::scope(|s| {
        let big = s.spawn(|| {
            stack::set_default_size(256 * 1024);
            set.wait();
            let g = Greenlet::new(|v| v);
            g.stack_size()
        });
        let default = s.spawn(|| {
            set.wait();
            let g = Greenlet::new(|v| v);
            (g.stack_size(), stack::default_size())
        });
        (big.join().unwrap(), default.join().unwrap())
    });
    assert_eq!(big, 256 * 1024);
    assert_eq!(default, (stack::DEFAULT_SIZE, stack::DEFAULT_SIZE));
}

// greenlet catalogue #116 (test_threaded_leak): the main greenlet of a thread
// is freed when the thread exits (its greenlet-local values are dropped).
#[test]
fn main_greenlet_is_freed_when_its_thread_exits() {
    greenlet_local! {
        static TOKEN: RefCell<Option<SyncDropToken>> = RefCell::new(None);
    }

    let drops = SyncDrops::new();
    thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                s.spawn(|| {
                    TOKEN.with(|t| *t.borrow_mut() = Some(drops.token()));
                    assert!(getcurrent().is_main());
                })
            })
            .collect();
        // Joining waits for thread-local destructors too (the end of the
        // scope only waits for the closures).
        handles.into_iter().for_each(|h| h.join().unwrap());
    });
    assert_eq!(drops.count(), 4);
}

// greenlet catalogue #117 (test_threaded_adv_leak): the same for threads that
// also ran greenlets, some finished and some left suspended.
#[test]
fn thread_that_ran_greenlets_frees_all_of_them_at_exit() {
    greenlet_local! {
        static TOKEN: RefCell<Option<SyncDropToken>> = RefCell::new(None);
    }

    let main_drops = SyncDrops::new();
    let greenlet_drops = SyncDrops::new();
    thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                s.spawn(|| {
                    TOKEN.with(|t| *t.borrow_mut() = Some(main_drops.token()));
                    let mut suspended = Vec::new();
                    for i in 0..20 {
                        let token = greenlet_drops.token();
                        let g = Greenlet::new(move |_| {
                            let _token = token;
                            TOKEN.with(|t| *t.borrow_mut() = Some(SyncDrops::new().token()));
                            suspend(unit());
                            unit()
                        });
                        g.switch(unit());
                        if i % 2 == 0 {
                            g.switch(unit());
                        } else {
                            suspended.push(g);
                        }
                    }
                    assert_eq!(live_greenlets(), 1 + 10);
                })
            })
            .collect();
        handles.into_iter().for_each(|h| h.join().unwrap());
    });
    assert_eq!(main_drops.count(), 4);
    assert_eq!(greenlet_drops.count(), 4 * 20);
}

// greenlet catalogue #118/#119 (test_issue251_killing_cross_thread_leaks_list).
// The cross-thread drop is impossible; the parked greenlet here is reachable
// only from another suspended greenlet's stack, and thread exit still frees
// it and the objects on its stack. (Its parent is main: were it the outer
// greenlet, the two would form a cycle, see the nest above.)
#[test]
fn greenlet_reachable_only_from_another_parked_stack_is_freed_at_thread_exit() {
    let drops = SyncDrops::new();
    thread::scope(|s| {
        s.spawn(|| {
            let (outer_token, inner_token) = (drops.token(), drops.token());
            let main = getcurrent();
            let outer = Greenlet::new(move |_| {
                let _on_stack = outer_token;
                let inner = Greenlet::builder().parent(&main).build(move |_| {
                    let _on_stack = inner_token;
                    suspend(unit());
                    unit()
                });
                inner.switch(unit());
                suspend(unit());
                unit()
            });
            outer.switch(unit());
            assert_eq!(live_greenlets(), 3);
            assert_eq!(drops.count(), 0);
        })
        .join()
        .unwrap();
    });
    assert_eq!(drops.count(), 2);
}

// greenlet catalogue #120-#122 (test_issue251_issue252_need_to_collect_in_background
// and variants). Handles kept in a `thread_local!` or in the main greenlet's
// locals are dropped during thread teardown, in an order Rust does not
// specify: a greenlet dropped while the thread's greenlet state is still
// there is killed (on Linux, a thread-local created after the first greenlet
// API call), one dropped after it is gone (the main greenlet's locals, or a
// thread-local created first) is leaked without running. Either way nothing
// crashes, and no greenlet is unwound twice.
#[test]
fn greenlets_held_in_thread_locals_at_thread_exit_do_not_crash() {
    thread_local! {
        static PARKED: RefCell<Vec<Greenlet>> = const { RefCell::new(Vec::new()) };
    }
    greenlet_local! {
        static MAIN_PARKED: RefCell<Vec<Greenlet>> = RefCell::new(Vec::new());
    }

    let drops = SyncDrops::new();
    let parked = || {
        let token = drops.token();
        let g = Greenlet::new(move |_| {
            let _token = token;
            suspend(unit());
            unit()
        });
        g.switch(unit());
        g
    };
    thread::scope(|s| {
        s.spawn(|| {
            // The greenlet machinery is set up before the thread-local.
            let g = parked();
            PARKED.with(|p| p.borrow_mut().push(g));
        })
        .join()
        .unwrap();
        s.spawn(|| MAIN_PARKED.with(|p| p.borrow_mut().push(parked()))).join().unwrap();
        s.spawn(|| {
            // The thread-local is created before the greenlet machinery.
            PARKED.with(|_| {});
            PARKED.with(|p| p.borrow_mut().push(parked()));
        })
        .join()
        .unwrap();
    });
    assert!(drops.count() <= 3, "{} destructor runs for 3 greenlets", drops.count());
}

// greenlet catalogue #124
// (test_untracked_memory_doesnt_increase_unfinished_thread_dealloc_in_thread):
// a thread parks thousands of greenlets and drops them; each receives
// GreenletExit exactly once and every stack goes back to the pool.
#[test]
fn dropping_thousands_of_parked_greenlets_in_their_thread_kills_each_once() {
    const COUNT: usize = 5_000;
    let exits = SyncDrops::new();
    let stats = thread::scope(|s| {
        s.spawn(|| {
            leak_check(|| {
                let exits = &exits;
                let parked: Vec<Greenlet> = (0..COUNT)
                    .map(|_| {
                        let exits = exits.clone();
                        let g = Greenlet::builder().stack_size(32 * 1024).build(move |_| {
                            if let Err(payload) = catch(|| suspend(unit())) {
                                if payload.is::<GreenletExit>() {
                                    drop(exits.token());
                                }
                                std::panic::resume_unwind(payload);
                            }
                            unit()
                        });
                        g.switch(unit());
                        g
                    })
                    .collect();
                assert_eq!(stack::stats().in_use, COUNT);
                drop(parked);
                assert_eq!(exits.count(), COUNT);
                stack::stats()
            })
        })
        .join()
        .unwrap()
    });
    assert_eq!(exits.count(), COUNT);
    assert_eq!(stats.in_use, 0);
}
