//! The measured operations, shared by the criterion benchmark
//! (`benches/switch.rs`) and the ratio report (`examples/switch_ratios.rs`) so
//! that both time exactly the same code.
//!
//! Each workload is set up by its constructor (stacks allocated, greenlets
//! started) and then runs `iters` operations per [`run`](MainChild::run) call;
//! only `run` is meant to be timed.

use std::hint::black_box;

use corosensei::stack::DefaultStack;
use corosensei::{Coroutine, CoroutineResult, Yielder};
use greenlet::{Greenlet, GreenletExit, getcurrent};

/// The stack size of the corosensei baselines: the greenlet default.
const STACK_SIZE: usize = greenlet::stack::DEFAULT_SIZE;

/// `greenlet/roundtrip_main_child`: main switches to a suspended child, which
/// switches straight back.
pub struct MainChild {
    child: Greenlet,
}

impl MainChild {
    pub fn new() -> MainChild {
        let child = Greenlet::new(|_| {
            let main = getcurrent().parent().expect("a child has a parent");
            loop {
                black_box(main.switch(Box::new(())));
            }
        });
        child.switch(Box::new(()));
        MainChild { child }
    }

    #[inline]
    pub fn run(&mut self, iters: u64) {
        for _ in 0..iters {
            black_box(self.child.switch(black_box(Box::new(()))));
        }
    }
}

impl Drop for MainChild {
    fn drop(&mut self) {
        // Unwinds the child's loop; it dies and main gets the exit back.
        self.child.throw(Box::new(GreenletExit));
    }
}

/// `greenlet/roundtrip_child_child`: two children ping-pong, A -> B -> A; one
/// operation is one round trip. Main hands A the iteration count and gets
/// control back when A is done, so each `run` adds one main -> A -> main round
/// trip, which is negligible against the batch.
pub struct ChildChild {
    a: Greenlet,
    b: Greenlet,
}

impl ChildChild {
    pub fn new() -> ChildChild {
        let b = Greenlet::new(|first| {
            let a = *first.downcast::<Greenlet>().expect("B is started with A's handle");
            loop {
                black_box(a.switch(Box::new(())));
            }
        });
        let a = {
            let b = b.clone();
            Greenlet::new(move |_| {
                let main = getcurrent().parent().expect("a child has a parent");
                // Start B, which switches straight back.
                b.switch(Box::new(getcurrent()));
                let mut order = main.switch(Box::new(()));
                loop {
                    let iters = *order.downcast::<u64>().expect("main sends the iteration count");
                    for _ in 0..iters {
                        black_box(b.switch(black_box(Box::new(()))));
                    }
                    order = main.switch(Box::new(()));
                }
            })
        };
        a.switch(Box::new(()));
        ChildChild { a, b }
    }

    #[inline]
    pub fn run(&mut self, iters: u64) {
        black_box(self.a.switch(Box::new(iters)));
    }
}

impl Drop for ChildChild {
    fn drop(&mut self) {
        // B holds a handle to A on its stack: kill both explicitly.
        self.b.throw(Box::new(GreenletExit));
        self.a.throw(Box::new(GreenletExit));
    }
}

/// `greenlet/create_start_finish`: a new greenlet, its first switch, which
/// runs it to completion, and its drop; the stack comes from the warm pool.
pub struct CreateStartFinish;

impl CreateStartFinish {
    pub fn new() -> CreateStartFinish {
        // Warm the pool so the first timed greenlet does not reserve a chunk.
        Greenlet::new(|v| v).switch(Box::new(()));
        CreateStartFinish
    }

    #[inline]
    pub fn run(&mut self, iters: u64) {
        for _ in 0..iters {
            let g = Greenlet::new(|v| v);
            black_box(g.switch(black_box(Box::new(()))));
        }
    }
}

/// `corosensei/resume_suspend`: a raw corosensei resume + suspend round trip,
/// `u64` in and out.
pub struct ResumeSuspend {
    coroutine: Coroutine<u64, u64, (), DefaultStack>,
}

impl ResumeSuspend {
    pub fn new() -> ResumeSuspend {
        let stack = DefaultStack::new(STACK_SIZE).expect("a corosensei stack");
        let coroutine = Coroutine::with_stack(stack, |yielder: &Yielder<u64, u64>, mut x: u64| {
            loop {
                x = yielder.suspend(x.wrapping_add(1));
            }
        });
        ResumeSuspend { coroutine }
    }

    #[inline]
    pub fn run(&mut self, iters: u64) {
        for i in 0..iters {
            match self.coroutine.resume(black_box(i)) {
                CoroutineResult::Yield(v) => {
                    black_box(v);
                }
                CoroutineResult::Return(()) => unreachable!("the coroutine loops forever"),
            }
        }
    }
}

/// `corosensei/create_on_reused_stack`: `Coroutine::with_stack` on one stack
/// that is taken back with `into_stack` each time, resumed to completion.
pub struct CreateOnReusedStack {
    stack: Option<DefaultStack>,
}

impl CreateOnReusedStack {
    pub fn new() -> CreateOnReusedStack {
        CreateOnReusedStack { stack: Some(DefaultStack::new(STACK_SIZE).expect("a corosensei stack")) }
    }

    #[inline]
    pub fn run(&mut self, iters: u64) {
        for i in 0..iters {
            let stack = self.stack.take().expect("the stack is back after each run");
            let mut coroutine = Coroutine::with_stack(stack, |_: &Yielder<u64, ()>, x: u64| x.wrapping_mul(3));
            black_box(coroutine.resume(black_box(i)));
            self.stack = Some(coroutine.into_stack());
        }
    }
}
