//! Generators built out of greenlets ("genlets"): iterating switches into the
//! generator with the consumer as its parent, and yielding switches to the
//! parent, possibly several levels up. Ports cases of Python greenlet's test
//! suite (test_generator.py and test_generator_nested.py).

mod util;

use std::cell::RefCell;
use std::collections::HashMap;

use greenlet::{Greenlet, GreenletExit, Value, WeakGreenlet, getcurrent};
use util::{Log, TestError, catch, leak_check, panic_payload, raise, take, unit, val};

/// Genlets are told apart from other greenlets by their name (Python tests
/// use a subclass).
const GENLET: &str = "genlet";

thread_local! {
    /// The `child` attribute of nested genlets: which genlet a `next` call
    /// resumes directly after a multi-level yield. Weak, so that it keeps
    /// nothing alive.
    static CHILDREN: RefCell<HashMap<u64, WeakGreenlet>> = RefCell::new(HashMap::new());
}

fn is_genlet(g: &Greenlet) -> bool {
    g.name() == Some(GENLET)
}

fn set_child(genlet: &Greenlet, child: &Greenlet) {
    CHILDREN.with(|c| c.borrow_mut().insert(genlet.id(), child.downgrade()));
}

fn clear_child(genlet: &Greenlet) {
    CHILDREN.with(|c| c.borrow_mut().remove(&genlet.id()));
}

/// The genlet's child, if it is still active (Python tests its truth value).
fn child_of(genlet: &Greenlet) -> Option<Greenlet> {
    CHILDREN.with(|c| c.borrow().get(&genlet.id()).and_then(WeakGreenlet::upgrade)).filter(Greenlet::is_active)
}

/// A generator greenlet; each `next` switches into it and returns what it
/// yields, until it finishes.
struct Genlet {
    greenlet: Greenlet,
}

impl Genlet {
    fn new(body: impl FnOnce() + 'static) -> Genlet {
        let greenlet = Greenlet::builder().name(GENLET).build(move |_| {
            body();
            unit()
        });
        Genlet { greenlet }
    }

    /// The yielded values, unboxed.
    fn of<T: 'static>(self) -> impl Iterator<Item = T> {
        self.map(take::<T>)
    }
}

impl Drop for Genlet {
    /// Closes a generator dropped before it finished, as Python's
    /// `generator.close()` does. Without it an unfinished genlet would leak:
    /// its stack holds the genlets it iterates, whose parent links (strong,
    /// as in Python) point back to it, a cycle through suspended stacks.
    fn drop(&mut self) {
        if self.greenlet.is_active() {
            self.greenlet.set_parent(&getcurrent()).expect("the generator is not an ancestor of its consumer");
            let exit = self.greenlet.throw(Box::new(GreenletExit));
            assert!(exit.is::<GreenletExit>() && self.greenlet.is_dead(), "the generator ignored GreenletExit");
        }
    }
}

impl Iterator for Genlet {
    type Item = Value;

    fn next(&mut self) -> Option<Value> {
        let result = match child_of(&self.greenlet) {
            // A deeper genlet yielded past this one: resume it directly.
            Some(mut child) => {
                while let Some(grandchild) = child_of(&child) {
                    clear_child(&child);
                    child = grandchild;
                }
                child.switch(unit())
            }
            None => {
                self.greenlet.set_parent(&getcurrent()).expect("the consumer is not inside the generator");
                self.greenlet.switch(unit())
            }
        };
        self.greenlet.is_active().then_some(result)
    }
}

/// test_generator.py's `Yield`: walks up from the current greenlet to the
/// nearest genlet and switches `value` to that genlet's parent.
fn yield_to_consumer(value: Value) {
    let mut g = getcurrent();
    while !is_genlet(&g) {
        match g.parent() {
            Some(parent) => g = parent,
            None => raise(TestError("yield outside a genlet")),
        }
    }
    // No handle to the genlet may stay on its own stack while it is
    // suspended, or dropping the generator could not kill it.
    let consumer = g.parent().expect("a genlet has a parent");
    drop(g);
    consumer.switch(value);
}

/// test_generator_nested.py's `Yield(value, level)`: yields `level` genlets
/// up, recording on each genlet skipped which child to resume next time.
fn yield_level(value: Value, level: usize) {
    let mut g = getcurrent();
    for remaining in (1..=level).rev() {
        if !is_genlet(&g) {
            raise(TestError("yield outside a genlet"));
        }
        let parent = g.parent().expect("a genlet has a parent");
        if remaining > 1 {
            set_child(&parent, &g);
        }
        g = parent;
    }
    g.switch(value);
}

// greenlet catalogue #79 (test_generator, test_generator.py)
#[test]
fn greenlet_generator_yields_to_whoever_iterates_it() {
    leak_check(|| {
        let seen = Log::new();
        let generator = |n: i32, seen: Log<i32>| {
            Genlet::new(move || {
                for i in 0..n {
                    seen.push(i);
                    yield_to_consumer(val(i));
                }
            })
        };
        for _ in 0..3 {
            for j in generator(5, seen.clone()).of::<i32>() {
                seen.push(j);
            }
        }
        assert_eq!(seen.get(), [0, 0, 1, 1, 2, 2, 3, 3, 4, 4].repeat(3));
    });
}

// greenlet catalogue #80 (test_layered_genlets)
#[test]
fn inner_generator_can_yield_past_its_consumer() {
    fn gr1(n: i32) -> Genlet {
        Genlet::new(move || {
            for ii in 1..n {
                yield_level(val(ii), 1);
                // Straight to the consumer of the generator consuming us.
                yield_level(val(ii * ii), 2);
            }
        })
    }

    fn gr2(n: i32, seen: Log<i32>) -> Genlet {
        Genlet::new(move || {
            for ii in gr1(n).of::<i32>() {
                seen.push(ii);
            }
        })
    }

    leak_check(|| {
        let seen = Log::new();
        for ii in gr2(5, seen.clone()).of::<i32>() {
            seen.push(ii);
        }
        assert_eq!(seen.get(), [1, 1, 2, 4, 3, 9, 4, 16]);
    });
}

/// A recursive generator of the permutations of `items`, one genlet per
/// level of recursion.
fn perms(items: Vec<i32>) -> Genlet {
    Genlet::new(move || {
        if items.len() > 1 {
            for &e in &items {
                let rest: Vec<i32> = items.iter().copied().filter(|&x| x != e).collect();
                let mut yielded = 0;
                for p in perms(rest).of::<Vec<i32>>() {
                    let mut permutation = vec![e];
                    permutation.extend(p);
                    yield_level(val(permutation), 1);
                    yielded += 1;
                }
                assert!(yielded > 0);
            }
        } else {
            yield_level(val(items), 1);
        }
    })
}

// greenlet catalogue #81 (test_permutations)
#[test]
fn recursive_generators_produce_every_permutation_and_interleave() {
    leak_check(|| {
        let permutations: Vec<Vec<i32>> = perms(vec![0, 1, 2, 3]).of().collect();
        assert_eq!(permutations.len(), 4 * 3 * 2);
        assert!(permutations.contains(&vec![0, 1, 2, 3]));
        assert!(permutations.contains(&vec![3, 2, 1, 0]));
        let mut unique = permutations.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), 24);

        // Two instances iterated in lockstep. The second is left suspended
        // after its last value (zip stops at the first's end) and is closed
        // when dropped, with the genlets it was iterating.
        let pairs: Vec<(Vec<i32>, Vec<i32>)> =
            perms(vec![0, 1, 2]).of::<Vec<i32>>().zip(perms(vec![0, 1, 2]).of::<Vec<i32>>()).collect();
        let expected: Vec<Vec<i32>> =
            vec![vec![0, 1, 2], vec![0, 2, 1], vec![1, 0, 2], vec![1, 2, 0], vec![2, 0, 1], vec![2, 1, 0]];
        assert_eq!(pairs, expected.iter().map(|p| (p.clone(), p.clone())).collect::<Vec<_>>());
    });
}

// greenlet catalogue #82 (test_genlet_simple)
#[test]
fn genlets_and_native_iterators_give_the_same_sequence() {
    type Factory = fn(i32, Log<i32>) -> Box<dyn Iterator<Item = i32>>;

    fn native(n: i32, seen: Log<i32>) -> Box<dyn Iterator<Item = i32>> {
        Box::new((0..n).inspect(move |i| seen.push(i + 1)))
    }

    fn genlet(n: i32, seen: Log<i32>) -> Box<dyn Iterator<Item = i32>> {
        Box::new(
            Genlet::new(move || {
                for i in 0..n {
                    seen.push(i + 1);
                    yield_level(val(i), 1);
                }
            })
            .of(),
        )
    }

    fn genlet_yielding_from_a_helper(n: i32, seen: Log<i32>) -> Box<dyn Iterator<Item = i32>> {
        #[inline(never)]
        fn nested(i: i32) {
            yield_level(val(i), 1);
        }
        Box::new(
            Genlet::new(move || {
                for i in 0..n {
                    seen.push(i + 1);
                    nested(i);
                }
            })
            .of(),
        )
    }

    leak_check(|| {
        let factories: [Factory; 3] = [native, genlet, genlet_yielding_from_a_helper];
        for factory in factories {
            let seen = Log::new();
            for _ in 0..3 {
                for j in factory(5, seen.clone()) {
                    seen.push(j);
                }
            }
            assert_eq!(seen.get(), [1, 0, 2, 1, 3, 2, 4, 3, 5, 4].repeat(3));
        }
    });
}

// greenlet catalogue #83 (test_genlet_bad)
#[test]
fn yield_outside_any_generator_panics() {
    leak_check(|| {
        let caught = panic_payload::<TestError, _>(catch(|| yield_level(val(10), 1)));
        assert_eq!(caught, TestError("yield outside a genlet"));
        let caught = panic_payload::<TestError, _>(catch(|| yield_to_consumer(val(10))));
        assert_eq!(caught, TestError("yield outside a genlet"));
        // From a plain greenlet the walk reaches the root too; the panic
        // kills that greenlet and reaches its parent.
        let plain = Greenlet::new(|_| {
            yield_to_consumer(val(10));
            unit()
        });
        let caught = panic_payload::<TestError, _>(catch(|| plain.switch(unit())));
        assert_eq!(caught, TestError("yield outside a genlet"));
        assert!(plain.is_dead());
    });
}

// greenlet catalogue #84 (test_nested_genlets)
#[test]
fn recursively_nested_generators_run_to_completion() {
    fn ax(n: i32) -> Genlet {
        Genlet::new(move || {
            if n == 0 {
                return;
            }
            for ii in ax(n - 1).of::<i32>() {
                yield_level(val(ii), 1);
            }
            yield_level(val(n), 1);
        })
    }

    leak_check(|| {
        let seen: Vec<i32> = ax(5).of().collect();
        assert_eq!(seen, [1, 2, 3, 4, 5]);
    });
}
