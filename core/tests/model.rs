//! Model-based randomized test of the greenlet core: random programs run on
//! real greenlets, and the trace of what they observed is compared with the
//! trace of a model of greenlet semantics running the same program.
//!
//! A program is a script for the main greenlet: create greenlets (each with a
//! script of its own and a random parent), switch to them, throw panics or
//! `GreenletExit` into them, reparent them, and drop the last handle to them
//! (which kills a suspended one). A greenlet's script switches, throws and
//! reparents too; at each switch point it either catches what is thrown at it
//! or lets it unwind. It ends by returning (possibly a value whose destructor
//! panics) or panicking, and it may own a greenlet-local value whose
//! destructor panics (possibly with a payload whose destructor panics too),
//! or switches (from inside the greenlet's end, or from inside a kill).
//!
//! The model is written from the documented semantics, in direct style: each
//! model greenlet is an OS thread, and exactly one of them runs at a time. It
//! knows that a switch to a pending greenlet starts it, that a finished
//! greenlet hands its result (or its panic; a `GreenletExit` as a value) to
//! its first live ancestor, starting a pending one or killing it unrun if what
//! arrives is a panic; that a throw into a pending greenlet kills it unrun; the
//! parent cycle checks; the kill protocol (the dropper as temporary parent,
//! `GreenletExit` thrown, a refusal leaked with a warning, a panic other than
//! the greenlet's own dying one raised in the killer and the kill resumed at
//! the next switch); how the drops at a greenlet's end combine, and where a
//! value or payload that cannot be delivered is dropped.
//!
//! Dropping a handle is only done when it is the last one (the model knows
//! who holds handles: main's registry, children's parent links, greenlets
//! suspended in a switch to it); the model decides, and the real run follows.
//!
//! `PROPTEST_CASES` overrides the number of programs (256).

use std::any::Any;
use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt::{self, Write as _};
use std::panic::{self, AssertUnwindSafe};
use std::rc::Rc;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use greenlet::{Greenlet, GreenletExit, Value, getcurrent, greenlet_local};
use proptest::prelude::*;
use proptest::test_runner::Config;

// ---------------------------------------------------------------------------
// Programs

/// Greenlet 0 is main; greenlet `j >= 1` is the one made by the `j`-th
/// `Create`.
type Gid = usize;

/// Whom an operation is aimed at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Target {
    Main,
    /// The `j`-th greenlet created, if main still holds its handle.
    G(Gid),
    /// The current greenlet's parent (nothing, for main).
    Parent,
    /// The current greenlet.
    Own,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Payload {
    Exit,
    Error,
}

#[derive(Clone, Copy, Debug)]
enum Step {
    Switch(Target),
    Throw(Target, Payload),
    /// `child.set_parent(parent)`.
    SetParent(Target, Target),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum End {
    Return,
    Panic,
    /// Returns a value whose destructor panics, unless a receiver disarmed
    /// it (every receiver in the program does).
    ReturnBomb,
}

/// The greenlet-local value a greenlet creates when it starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Local {
    None,
    /// Its destructor panics.
    Panics,
    /// Its destructor panics with a payload whose own destructor panics,
    /// unless a receiver disarmed it.
    PanicsWithBomb,
    /// Its destructor switches to the target.
    Switches(Target),
}

#[derive(Clone, Debug)]
struct Script {
    steps: Vec<Step>,
    end: End,
    local: Local,
    /// Whether a panic arriving at a switch point is caught (the script goes
    /// on) or unwinds the greenlet.
    catches: bool,
}

#[derive(Clone, Debug)]
enum Op {
    Create {
        parent: Target,
        script: Script,
    },
    Switch(Target),
    Throw(Target, Payload),
    SetParent(Target, Target),
    /// Drop main's handle to a greenlet, if it is the last handle.
    Drop(Gid),
    /// Switch to main itself: runs deferred kills.
    Flush,
}

#[derive(Clone, Debug)]
struct Program {
    ops: Vec<Op>,
}

impl Program {
    /// The script of every greenlet, by id (index 0 is main's, unused).
    fn scripts(&self) -> Vec<Option<Script>> {
        let mut scripts = vec![None];
        for op in &self.ops {
            if let Op::Create { script, .. } = op {
                scripts.push(Some(script.clone()));
            }
        }
        scripts
    }

    /// The id of the greenlet made by the `Create` at `op`.
    fn created_by(&self, op: usize) -> Gid {
        1 + self.ops[..op].iter().filter(|op| matches!(op, Op::Create { .. })).count()
    }
}

/// What the model decided for the real run: which `Drop`s drop the last
/// handle, and the closing operations (flushes and drops) it appended.
#[derive(Clone, Debug, Default)]
struct Plan {
    allowed_drops: Vec<usize>,
    epilogue: Vec<Op>,
}

// ---------------------------------------------------------------------------
// Traces

/// Value ids: step `i` of greenlet `g` sends `g * 1000 + i`; these mark the
/// other things a greenlet sends or raises.
const END: usize = 999;
const LOCAL_SWITCH: usize = 998;
const LOCAL_PANIC: usize = 997;
/// Added to a bomb's id for the panic of its destructor.
const EXPLODED: u32 = 500_000_000;
/// The `at` of events of the local value's destructor.
const LOCAL: usize = usize::MAX;

fn step_id(g: Gid, at: usize) -> u32 {
    u32::try_from(g * 1000 + at).expect("small ids")
}

fn op_id(op: usize) -> u32 {
    1_000_000 + u32::try_from(op).expect("small ids")
}

/// A value that arrived.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Val {
    Tag(u32),
    Bomb(u32),
    Exit,
    Unit,
    /// Anything else (only the real run can produce it).
    Other,
}

/// A panic that arrived.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Pan {
    Error(u32),
    Bomb(u32),
    Exit,
    /// Anything else, with its message (only the real run can produce it).
    Other(String),
}

type Got = Result<Val, Pan>;

/// A delivery in flight, in the model.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Delivery {
    Value(Val),
    Panic(Pan),
}

impl Delivery {
    fn is_value(&self) -> bool {
        matches!(self, Delivery::Value(_))
    }

    /// A `GreenletExit` that nobody caught becomes a plain value.
    fn exit_to_value(self) -> Delivery {
        match self {
            Delivery::Panic(Pan::Exit) => Delivery::Value(Val::Exit),
            other => other,
        }
    }

    fn into_got(self) -> Got {
        match self {
            Delivery::Value(value) => Ok(value),
            Delivery::Panic(payload) => Err(payload),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Pending,
    Active,
    Dead,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SetParentError {
    Cyclic,
    Main,
}

/// What the program observed, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Event {
    /// Main starts operation `i`.
    Op(usize),
    /// A step (or op, for main) whose target main no longer holds.
    Skipped {
        by: Gid,
        at: usize,
    },
    Started {
        g: Gid,
        arg: Got,
    },
    /// What the switch or throw of step (or op) `at` returned or raised.
    Resumed {
        g: Gid,
        at: usize,
        got: Got,
    },
    SetParent {
        by: Gid,
        at: usize,
        result: Result<(), SetParentError>,
    },
    Returning(Gid),
    Panicking(Gid),
    LocalPanics(Gid),
    LocalSwitch(Gid),
    LocalResumed {
        g: Gid,
        got: Got,
    },
    Dropped(Gid),
    /// The warning for a greenlet that refused to die and was leaked.
    Leaked,
    /// The error for a greenlet that died of another panic while killed.
    KillPanicked,
    /// The error for a panic dropping what a finished greenlet could not
    /// deliver.
    UndeliveredPanicked,
    /// Another `tracing` warning or error.
    OtherLog(String),
    /// After each op: state and parent of every greenlet main holds.
    States(Vec<Option<(State, Gid)>>),
    /// At the end: greenlets alive on the thread.
    Live(usize),
}

// ---------------------------------------------------------------------------
// The real run

/// A value sent by a switch.
#[derive(Debug)]
struct Tag(u32);

/// A panic payload thrown or raised.
#[derive(Debug)]
struct Boom(u32);

/// A value or panic payload whose destructor panics (with `Boom(id +
/// EXPLODED)`) while armed. Receivers disarm it. It never panics while the
/// thread unwinds: that would abort.
#[derive(Debug)]
struct Bomb {
    id: u32,
    armed: std::cell::Cell<bool>,
}

impl Bomb {
    fn new(id: u32) -> Bomb {
        Bomb { id, armed: std::cell::Cell::new(true) }
    }

    fn disarm(&self) -> u32 {
        self.armed.set(false);
        self.id
    }
}

impl Drop for Bomb {
    fn drop(&mut self) {
        if self.armed.get() && !std::thread::panicking() {
            panic::resume_unwind(Box::new(Boom(self.id + EXPLODED)));
        }
    }
}

fn describe_value(value: &Value) -> Val {
    if let Some(tag) = value.downcast_ref::<Tag>() {
        Val::Tag(tag.0)
    } else if let Some(bomb) = value.downcast_ref::<Bomb>() {
        Val::Bomb(bomb.disarm())
    } else if value.is::<GreenletExit>() {
        Val::Exit
    } else if value.is::<()>() {
        Val::Unit
    } else {
        Val::Other
    }
}

fn describe_panic(payload: &(dyn Any + Send)) -> Pan {
    if let Some(boom) = payload.downcast_ref::<Boom>() {
        Pan::Error(boom.0)
    } else if let Some(bomb) = payload.downcast_ref::<Bomb>() {
        Pan::Bomb(bomb.disarm())
    } else if payload.is::<GreenletExit>() {
        Pan::Exit
    } else {
        Pan::Other(greenlet::panic_message(payload))
    }
}

fn describe(result: &Result<Value, Box<dyn Any + Send>>) -> Got {
    match result {
        Ok(value) => Ok(describe_value(value)),
        Err(payload) => Err(describe_panic(&**payload)),
    }
}

fn payload(kind: Payload, id: u32) -> Box<dyn Any + Send> {
    match kind {
        Payload::Exit => Box::new(GreenletExit),
        Payload::Error => Box::new(Boom(id)),
    }
}

fn catch<R>(f: impl FnOnce() -> R) -> Result<R, Box<dyn Any + Send>> {
    panic::catch_unwind(AssertUnwindSafe(f))
}

/// The state of one real run, shared by main and the greenlets' bodies.
struct Real {
    scripts: Vec<Option<Script>>,
    /// Main's handles, by greenlet id.
    registry: RefCell<Vec<Option<Greenlet>>>,
    /// Greenlet id by `Greenlet::id`.
    ids: RefCell<HashMap<u64, Gid>>,
    main: Greenlet,
    trace: Arc<Mutex<Vec<Event>>>,
}

impl Real {
    fn log(&self, event: Event) {
        self.trace.lock().unwrap_or_else(PoisonError::into_inner).push(event);
    }

    fn handle(&self, me: Gid, target: Target) -> Option<Greenlet> {
        match target {
            Target::Main => Some(self.main.clone()),
            Target::G(j) => self.registry.borrow().get(j).cloned().flatten(),
            Target::Parent if me == 0 => None,
            Target::Parent => getcurrent().parent(),
            Target::Own => Some(getcurrent()),
        }
    }

    fn gid(&self, greenlet: &Greenlet) -> Gid {
        *self.ids.borrow().get(&greenlet.id()).expect("a greenlet of this run")
    }

    fn set_parent(&self, by: Gid, at: usize, child: Target, parent: Target) {
        match (self.handle(by, child), self.handle(by, parent)) {
            (Some(child), Some(parent)) => {
                let result = child.set_parent(&parent).map_err(|err| match err {
                    greenlet::Error::CyclicParent => SetParentError::Cyclic,
                    greenlet::Error::MainHasNoParent => SetParentError::Main,
                    other => panic!("unexpected error {other:?}"),
                });
                self.log(Event::SetParent { by, at, result });
            }
            _ => self.log(Event::Skipped { by, at }),
        }
    }

    fn states(&self) -> Event {
        let registry = self.registry.borrow();
        Event::States(
            registry[1..]
                .iter()
                .map(|handle| {
                    handle.as_ref().map(|g| {
                        let state = if g.is_dead() {
                            State::Dead
                        } else if g.is_active() {
                            State::Active
                        } else {
                            State::Pending
                        };
                        (state, self.gid(&g.parent().expect("not main")))
                    })
                })
                .collect(),
        )
    }
}

/// A greenlet-local value with a destructor that panics or switches.
struct LocalValue(RefCell<Option<(Rc<Real>, Gid, Local)>>);

greenlet_local! {
    static LOCAL_VALUE: LocalValue = LocalValue(RefCell::new(None));
}

impl Drop for LocalValue {
    fn drop(&mut self) {
        let Some((real, g, local)) = self.0.get_mut().take() else { return };
        match local {
            Local::None => {}
            Local::Panics => {
                real.log(Event::LocalPanics(g));
                drop(real);
                panic::resume_unwind(Box::new(Boom(step_id(g, LOCAL_PANIC))));
            }
            Local::PanicsWithBomb => {
                real.log(Event::LocalPanics(g));
                drop(real);
                panic::resume_unwind(Box::new(Bomb::new(step_id(g, LOCAL_PANIC))));
            }
            Local::Switches(target) => {
                let Some(handle) = real.handle(g, target) else {
                    real.log(Event::Skipped { by: g, at: LOCAL });
                    return;
                };
                real.log(Event::LocalSwitch(g));
                let got = catch(|| handle.switch(Box::new(Tag(step_id(g, LOCAL_SWITCH)))));
                drop(handle);
                real.log(Event::LocalResumed { g, got: describe(&got) });
                if let Err(payload) = got {
                    drop(real);
                    panic::resume_unwind(payload);
                }
            }
        }
    }
}

/// The `run` of greenlet `g`.
fn real_body(real: Rc<Real>, g: Gid, arg: Value) -> Value {
    let script = real.scripts[g].clone().expect("a created greenlet has a script");
    real.log(Event::Started { g, arg: Ok(describe_value(&arg)) });
    drop(arg);
    if script.local != Local::None {
        LOCAL_VALUE.with(|local| *local.0.borrow_mut() = Some((real.clone(), g, script.local)));
    }
    for (at, step) in script.steps.iter().enumerate() {
        let (target, throw) = match *step {
            Step::Switch(target) => (target, None),
            Step::Throw(target, kind) => (target, Some(kind)),
            Step::SetParent(child, parent) => {
                real.set_parent(g, at, child, parent);
                continue;
            }
        };
        let Some(handle) = real.handle(g, target) else {
            real.log(Event::Skipped { by: g, at });
            continue;
        };
        let got = catch(|| match throw {
            None => handle.switch(Box::new(Tag(step_id(g, at)))),
            Some(kind) => handle.throw(payload(kind, step_id(g, at))),
        });
        drop(handle);
        real.log(Event::Resumed { g, at, got: describe(&got) });
        if let Err(payload) = got {
            if !script.catches {
                drop(real);
                panic::resume_unwind(payload);
            }
        }
    }
    match script.end {
        End::Return => {
            real.log(Event::Returning(g));
            Box::new(Tag(step_id(g, END)))
        }
        End::Panic => {
            real.log(Event::Panicking(g));
            drop(real);
            panic::resume_unwind(Box::new(Boom(step_id(g, END))));
        }
        End::ReturnBomb => {
            real.log(Event::Returning(g));
            Box::new(Bomb::new(step_id(g, END)))
        }
    }
}

/// Runs `op` (number `at`) as main.
fn real_op(real: &Rc<Real>, program: &Program, plan: &Plan, at: usize, op: &Op) {
    let send = |target: Target, throw: Option<Payload>| {
        let Some(handle) = real.handle(0, target) else {
            real.log(Event::Skipped { by: 0, at });
            return;
        };
        let got = catch(|| match throw {
            None => handle.switch(Box::new(Tag(op_id(at)))),
            Some(kind) => handle.throw(payload(kind, op_id(at))),
        });
        drop(handle);
        real.log(Event::Resumed { g: 0, at, got: describe(&got) });
    };
    match *op {
        Op::Create { parent, .. } => {
            let Some(parent) = real.handle(0, parent) else {
                real.log(Event::Skipped { by: 0, at });
                return;
            };
            let g = program.created_by(at);
            let body = real.clone();
            let greenlet = Greenlet::builder().parent(&parent).build(move |arg| real_body(body, g, arg));
            real.ids.borrow_mut().insert(greenlet.id(), g);
            real.registry.borrow_mut()[g] = Some(greenlet);
        }
        Op::Switch(target) => send(target, None),
        Op::Throw(target, kind) => send(target, Some(kind)),
        Op::Flush => send(Target::Main, None),
        Op::SetParent(child, parent) => real.set_parent(0, at, child, parent),
        Op::Drop(g) => {
            if !plan.allowed_drops.contains(&at) {
                real.log(Event::Skipped { by: 0, at });
                return;
            }
            let handle = real.registry.borrow_mut()[g].take();
            real.log(Event::Dropped(g));
            if let Err(payload) = catch(move || drop(handle)) {
                real.log(Event::Resumed { g: 0, at, got: Err(describe_panic(&*payload)) });
            }
        }
    }
}

/// Runs `program` on real greenlets, on a thread of its own.
fn execute(program: &Program, plan: &Plan) -> Vec<Event> {
    let (program, plan) = (program.clone(), plan.clone());
    std::thread::spawn(move || {
        let trace = Arc::new(Mutex::new(Vec::new()));
        let subscriber = LogToTrace(trace.clone());
        tracing::subscriber::with_default(subscriber, || {
            let scripts = program.scripts();
            let real = Rc::new(Real {
                registry: RefCell::new(vec![None; scripts.len()]),
                scripts,
                ids: RefCell::new(HashMap::new()),
                main: getcurrent(),
                trace: trace.clone(),
            });
            real.ids.borrow_mut().insert(real.main.id(), 0);
            let ops = program.ops.iter().chain(&plan.epilogue);
            for (at, op) in ops.enumerate() {
                real.log(Event::Op(at));
                real_op(&real, &program, &plan, at, op);
                real.log(real.states());
            }
            // What the model could not drop is held elsewhere too (by a
            // leaked greenlet, at the end of the chain): dropping it does
            // nothing.
            let handles = std::mem::take(&mut *real.registry.borrow_mut());
            drop(handles);
            real.log(Event::Live(greenlet::live_greenlets()));
        });
        std::mem::take(&mut *trace.lock().unwrap_or_else(PoisonError::into_inner))
    })
    .join()
    .unwrap_or_else(|payload| panic::resume_unwind(payload))
}

/// A `tracing` subscriber that puts the warnings and errors of the greenlet
/// core into the trace.
struct LogToTrace(Arc<Mutex<Vec<Event>>>);

struct Message(String);

impl tracing::field::Visit for Message {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn fmt::Debug) {
        let _ = write!(self.0, "{}={:?} ", field.name(), value);
    }
}

impl tracing::Subscriber for LogToTrace {
    fn enabled(&self, metadata: &tracing::Metadata<'_>) -> bool {
        *metadata.level() <= tracing::Level::WARN
    }

    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }

    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}

    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}

    fn event(&self, event: &tracing::Event<'_>) {
        let mut message = Message(String::new());
        event.record(&mut message);
        let text = message.0;
        let event = if text.contains("did not kill") {
            Event::Leaked
        } else if text.contains("while being killed") {
            Event::KillPanicked
        } else if text.contains("after it finished") {
            Event::UndeliveredPanicked
        } else {
            Event::OtherLog(text)
        };
        self.0.lock().unwrap_or_else(PoisonError::into_inner).push(event);
    }

    fn enter(&self, _: &tracing::span::Id) {}

    fn exit(&self, _: &tracing::span::Id) {}
}

// ---------------------------------------------------------------------------
// The model

/// One model greenlet.
#[derive(Clone, Debug)]
struct Mg {
    created: bool,
    state: State,
    parent: Option<Gid>,
    /// Main holds a handle to it.
    registry: bool,
    /// Its last handle went: it no longer exists. (One that refused to die
    /// is leaked, and never freed.)
    freed: bool,
    /// A kill of it was interrupted; the next one resumes it with `()`.
    kill_interrupted: bool,
    /// Handles held by suspended calls (a greenlet switching to it, a kill
    /// holding it as the victim's original parent).
    holders: usize,
    /// Its greenlet-local value exists.
    local: bool,
}

impl Mg {
    fn exists(&self) -> bool {
        self.created && !self.freed
    }
}

/// Why a model thread stops: the run is over.
struct Shutdown;

struct World {
    /// The greenlet that runs (holds the baton).
    running: Gid,
    /// What each greenlet receives when it next runs.
    inbox: Vec<Option<Delivery>>,
    shutdown: bool,
    gl: Vec<Mg>,
    /// Victims of interrupted kills, to kill at the next switch (last in,
    /// first out, as the implementation's queue).
    deferred: Vec<Gid>,
    trace: Vec<Event>,
    /// Bombs a receiver has seen, and so disarmed.
    disarmed: Vec<u32>,
}

struct Sim {
    scripts: Vec<Option<Script>>,
    world: Mutex<World>,
    baton: Condvar,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

/// How long a model greenlet waits for the baton before the model counts as
/// stuck (a bug in the model).
const STUCK: Duration = Duration::from_secs(30);

impl Sim {
    fn w(&self) -> MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn log(&self, event: Event) {
        self.w().trace.push(event);
    }

    /// A receiver saw `got`: a bomb in it is disarmed.
    fn receive(&self, got: &Got) {
        if let Ok(Val::Bomb(id)) | Err(Pan::Bomb(id)) = *got {
            self.w().disarmed.push(id);
        }
    }

    fn armed(&self, id: u32) -> bool {
        !self.w().disarmed.contains(&id)
    }

    fn slow(&self) -> bool {
        !self.w().deferred.is_empty()
    }

    fn script(&self, g: Gid) -> Script {
        self.scripts[g].clone().expect("a created greenlet has a script")
    }

    /// The greenlet `target` names for `me`, if it can be had.
    fn available(&self, me: Gid, target: Target) -> Option<Gid> {
        let w = self.w();
        match target {
            Target::Main => Some(0),
            Target::G(j) => (j < w.gl.len() && w.gl[j].registry).then_some(j),
            Target::Parent => w.gl[me].parent,
            Target::Own => Some(me),
        }
    }

    /// Waits for the baton; returns what arrived with it.
    fn wait(&self, me: Gid) -> Delivery {
        let mut w = self.w();
        loop {
            if w.shutdown {
                drop(w);
                panic::resume_unwind(Box::new(Shutdown));
            }
            if w.running == me {
                if let Some(delivery) = w.inbox[me].take() {
                    return delivery;
                }
            }
            let (next, timeout) = self.baton.wait_timeout(w, STUCK).unwrap_or_else(PoisonError::into_inner);
            assert!(!timeout.timed_out(), "the model is stuck waiting in greenlet {me}");
            w = next;
        }
    }

    /// Hands the baton and `delivery` to `to`, starting its thread first if
    /// it was just started.
    fn hand_over(self: &Arc<Sim>, to: Gid, delivery: Delivery, start: bool) {
        {
            let mut w = self.w();
            w.inbox[to] = Some(delivery);
            w.running = to;
        }
        if start {
            let sim = self.clone();
            let thread = std::thread::spawn(move || {
                let arg = sim.wait(to);
                sim.body(to, arg);
            });
            self.threads.lock().unwrap_or_else(PoisonError::into_inner).push(thread);
        }
        self.baton.notify_all();
    }

    /// Where a delivery to `target` goes: a dead greenlet passes it to its
    /// parent (a `GreenletExit` becoming a value), a pending one is started
    /// by a value and killed unrun by a panic.
    fn resolve(w: &mut World, mut target: Gid, mut delivery: Delivery) -> (Gid, Delivery, bool) {
        loop {
            match w.gl[target].state {
                State::Active => return (target, delivery, false),
                State::Pending if delivery.is_value() => {
                    w.gl[target].state = State::Active;
                    return (target, delivery, true);
                }
                State::Pending => {
                    w.gl[target].state = State::Dead;
                    delivery = delivery.exit_to_value();
                }
                State::Dead => delivery = delivery.exit_to_value(),
            }
            target = w.gl[target].parent.expect("a dead or pending greenlet has a parent");
        }
    }

    /// `me` switches to (or throws into) `target`; returns what comes back.
    fn transfer(self: &Arc<Sim>, me: Gid, target: Gid, delivery: Delivery) -> Got {
        if target == me {
            self.run_deferred(me)?;
            return delivery.into_got();
        }
        if self.slow() {
            self.run_deferred(me)?;
        }
        let (to, delivery, start) = Sim::resolve(&mut self.w(), target, delivery);
        let got = if to == me {
            delivery
        } else {
            self.hand_over(to, delivery, start);
            self.wait(me)
        };
        if self.slow() {
            self.run_deferred(me)?;
        }
        got.into_got()
    }

    /// Kills the queued victims, last queued first.
    fn run_deferred(self: &Arc<Sim>, me: Gid) -> Result<(), Pan> {
        loop {
            let Some(victim) = self.w().deferred.pop() else { return Ok(()) };
            self.kill(me, victim)?;
        }
    }

    /// The kill protocol, run by `me` on the suspended `victim` whose last
    /// handle went.
    fn kill(self: &Arc<Sim>, me: Gid, victim: Gid) -> Result<(), Pan> {
        let (saved, resume) = {
            let mut w = self.w();
            let saved = w.gl[victim].parent.replace(me).expect("a victim has a parent");
            w.gl[saved].holders += 1;
            let resume = std::mem::take(&mut w.gl[victim].kill_interrupted);
            (saved, resume)
        };
        let delivery = if resume { Delivery::Value(Val::Unit) } else { Delivery::Panic(Pan::Exit) };
        let got = self.transfer(me, victim, delivery);
        let mut w = self.w();
        let at_end = w.gl[victim].parent.replace(saved);
        w.gl[saved].holders -= 1;
        let state = w.gl[victim].state;
        let from_its_death = state == State::Dead && at_end == Some(me);
        // Only the kill holds the victim: no parent link or suspended call
        // refers to a greenlet whose last handle went (see `parent_target`).
        let held = w.gl[victim].holders > 0 || w.gl.iter().any(|g| g.exists() && g.parent == Some(victim));
        assert!(!held, "model limit: greenlet {victim} is referenced while being killed");
        // What came back is dropped here: an armed bomb explodes in the
        // killer, once the kill is over.
        let exploded = match got {
            Err(payload) if !from_its_death => {
                if state == State::Active {
                    w.gl[victim].kill_interrupted = true;
                    w.deferred.push(victim);
                } else {
                    w.gl[victim].freed = true;
                }
                return Err(payload);
            }
            Err(payload) => {
                w.trace.push(Event::KillPanicked);
                match payload {
                    Pan::Bomb(id) => Some(id),
                    _ => None,
                }
            }
            Ok(Val::Bomb(id)) => Some(id),
            Ok(_) => None,
        };
        if state == State::Active {
            w.trace.push(Event::Leaked);
        } else {
            w.gl[victim].freed = true;
        }
        drop(w);
        match exploded {
            Some(id) if self.armed(id) => Err(Pan::Error(id + EXPLODED)),
            _ => Ok(()),
        }
    }

    fn set_parent(&self, by: Gid, at: usize, child: Target, parent: Target) {
        let (Some(child), Some(parent)) = (self.available(by, child), self.available(by, parent)) else {
            self.log(Event::Skipped { by, at });
            return;
        };
        let mut w = self.w();
        let result = if child == 0 {
            Err(SetParentError::Main)
        } else {
            let mut ancestor = Some(parent);
            let mut cyclic = false;
            while let Some(a) = ancestor {
                if a == child {
                    cyclic = true;
                    break;
                }
                ancestor = w.gl[a].parent;
            }
            if cyclic {
                Err(SetParentError::Cyclic)
            } else {
                w.gl[child].parent = Some(parent);
                Ok(())
            }
        };
        w.trace.push(Event::SetParent { by, at, result });
    }

    /// `me`'s switch or throw to `target` as step (or op) `at`, logged.
    fn call(self: &Arc<Sim>, me: Gid, at: usize, target: Target, delivery: Delivery) -> Option<Got> {
        let Some(target) = self.available(me, target) else {
            self.log(Event::Skipped { by: me, at });
            return None;
        };
        self.w().gl[target].holders += 1;
        let got = self.transfer(me, target, delivery);
        self.w().gl[target].holders -= 1;
        self.receive(&got);
        self.log(Event::Resumed { g: me, at, got: got.clone() });
        Some(got)
    }

    /// Greenlet `g`'s life, from its start with `arg`.
    fn body(self: &Arc<Sim>, g: Gid, arg: Delivery) {
        let script = self.script(g);
        let outcome = (|| -> Got {
            self.run_deferred(g)?;
            let arg = arg.into_got();
            self.receive(&arg);
            self.log(Event::Started { g, arg });
            self.w().gl[g].local = true;
            for (at, step) in script.steps.iter().enumerate() {
                let (target, delivery) = match *step {
                    Step::Switch(target) => (target, Delivery::Value(Val::Tag(step_id(g, at)))),
                    Step::Throw(target, Payload::Exit) => (target, Delivery::Panic(Pan::Exit)),
                    Step::Throw(target, Payload::Error) => (target, Delivery::Panic(Pan::Error(step_id(g, at)))),
                    Step::SetParent(child, parent) => {
                        self.set_parent(g, at, child, parent);
                        continue;
                    }
                };
                if let Some(Err(payload)) = self.call(g, at, target, delivery) {
                    if !script.catches {
                        return Err(payload);
                    }
                }
            }
            match script.end {
                End::Return => {
                    self.log(Event::Returning(g));
                    Ok(Val::Tag(step_id(g, END)))
                }
                End::Panic => {
                    self.log(Event::Panicking(g));
                    Err(Pan::Error(step_id(g, END)))
                }
                End::ReturnBomb => {
                    self.log(Event::Returning(g));
                    Ok(Val::Bomb(step_id(g, END)))
                }
            }
        })();
        // The local value's destructor, in the greenlet.
        let local = if self.w().gl[g].local { script.local } else { Local::None };
        let dropped = match local {
            Local::None => Ok(()),
            Local::Panics => {
                self.log(Event::LocalPanics(g));
                Err(Pan::Error(step_id(g, LOCAL_PANIC)))
            }
            Local::PanicsWithBomb => {
                self.log(Event::LocalPanics(g));
                Err(Pan::Bomb(step_id(g, LOCAL_PANIC)))
            }
            Local::Switches(target) => match self.available(g, target) {
                None => {
                    self.log(Event::Skipped { by: g, at: LOCAL });
                    Ok(())
                }
                Some(target) => {
                    self.log(Event::LocalSwitch(g));
                    self.w().gl[target].holders += 1;
                    let got = self.transfer(g, target, Delivery::Value(Val::Tag(step_id(g, LOCAL_SWITCH))));
                    self.w().gl[target].holders -= 1;
                    self.receive(&got);
                    self.log(Event::LocalResumed { g, got: got.clone() });
                    got.map(drop)
                }
            },
        };
        // The first panic wins; a value is lost to a panic after it. What is
        // lost is dropped in the greenlet, and a bomb's panic reported.
        let (result, lost) = match (outcome, dropped) {
            (Ok(value), Ok(())) => (Delivery::Value(value), None),
            (Ok(value), Err(payload)) => (Delivery::Panic(payload), Some(Ok(value))),
            (Err(payload), Err(second)) => (Delivery::Panic(payload), Some(Err(second))),
            (Err(payload), Ok(())) => (Delivery::Panic(payload), None),
        };
        if let Some(Ok(Val::Bomb(id)) | Err(Pan::Bomb(id))) = lost {
            if self.armed(id) {
                self.log(Event::UndeliveredPanicked);
            }
        }
        let (to, delivery, start) = {
            let mut w = self.w();
            w.gl[g].state = State::Dead;
            let parent = w.gl[g].parent.expect("a greenlet has a parent");
            Sim::resolve(&mut w, parent, result.exit_to_value())
        };
        self.hand_over(to, delivery, start);
    }

    /// Whether main's handle to `g` is the last one.
    fn droppable(&self, g: Gid) -> bool {
        let w = self.w();
        let has_child = w.gl.iter().any(|other| other.exists() && other.parent == Some(g));
        w.gl[g].registry && w.gl[g].holders == 0 && !has_child
    }

    fn states(&self) -> Event {
        let w = self.w();
        Event::States(w.gl[1..].iter().map(|g| g.registry.then(|| (g.state, g.parent.expect("not main")))).collect())
    }

    /// Runs main's op `op` (number `at`); returns whether a `Drop` dropped.
    fn main_op(self: &Arc<Sim>, program: &Program, at: usize, op: &Op) -> bool {
        match *op {
            Op::Create { parent, .. } => {
                let Some(parent) = self.available(0, parent) else {
                    self.log(Event::Skipped { by: 0, at });
                    return false;
                };
                let g = program.created_by(at);
                let mut w = self.w();
                let new = &mut w.gl[g];
                new.created = true;
                new.registry = true;
                new.parent = Some(parent);
            }
            Op::Switch(target) => {
                self.call(0, at, target, Delivery::Value(Val::Tag(op_id(at))));
            }
            Op::Flush => {
                self.call(0, at, Target::Main, Delivery::Value(Val::Tag(op_id(at))));
            }
            Op::Throw(target, kind) => {
                let payload = match kind {
                    Payload::Exit => Pan::Exit,
                    Payload::Error => Pan::Error(op_id(at)),
                };
                self.call(0, at, target, Delivery::Panic(payload));
            }
            Op::SetParent(child, parent) => self.set_parent(0, at, child, parent),
            Op::Drop(g) => {
                if self.available(0, Target::G(g)).is_none() || !self.droppable(g) {
                    self.log(Event::Skipped { by: 0, at });
                    return false;
                }
                let state = {
                    let mut w = self.w();
                    w.gl[g].registry = false;
                    w.trace.push(Event::Dropped(g));
                    w.gl[g].state
                };
                if state == State::Active {
                    if let Err(payload) = self.kill(0, g) {
                        self.log(Event::Resumed { g: 0, at, got: Err(payload) });
                    }
                } else {
                    self.w().gl[g].freed = true;
                }
                return true;
            }
        }
        false
    }
}

/// Runs `program` on the model: the expected trace, and the plan the real
/// run follows.
fn model(program: &Program) -> (Vec<Event>, Plan) {
    let scripts = program.scripts();
    let count = scripts.len();
    let blank = Mg {
        created: false,
        state: State::Pending,
        parent: None,
        registry: false,
        freed: false,
        kill_interrupted: false,
        holders: 0,
        local: false,
    };
    let mut gl = vec![blank; count];
    gl[0].created = true;
    gl[0].state = State::Active;
    let sim = Arc::new(Sim {
        scripts,
        world: Mutex::new(World {
            running: 0,
            inbox: vec![None; count],
            shutdown: false,
            gl,
            deferred: Vec::new(),
            trace: Vec::new(),
            disarmed: Vec::new(),
        }),
        baton: Condvar::new(),
        threads: Mutex::new(Vec::new()),
    });
    let mut plan = Plan::default();
    let run = |at: usize, op: &Op, plan: &mut Plan| {
        sim.log(Event::Op(at));
        if sim.main_op(program, at, op) {
            plan.allowed_drops.push(at);
        }
        sim.log(sim.states());
    };
    for (at, op) in program.ops.iter().enumerate() {
        run(at, op, &mut plan);
    }
    // Close: run queued kills and drop every handle that is the last one,
    // until nothing changes.
    for _ in 0..100 {
        let at = program.ops.len() + plan.epilogue.len();
        let next = if sim.slow() {
            Op::Flush
        } else if let Some(g) = (1..count).find(|&g| sim.droppable(g)) {
            Op::Drop(g)
        } else {
            break;
        };
        run(at, &next, &mut plan);
        plan.epilogue.push(next);
    }
    let live = {
        let w = sim.w();
        w.gl.iter().filter(|g| g.exists()).count()
    };
    sim.log(Event::Live(live));
    // Stop the threads of greenlets that never finished.
    sim.w().shutdown = true;
    sim.baton.notify_all();
    let threads = std::mem::take(&mut *sim.threads.lock().unwrap_or_else(PoisonError::into_inner));
    for thread in threads {
        if let Err(payload) = thread.join() {
            if !payload.is::<Shutdown>() {
                panic::resume_unwind(payload);
            }
        }
    }
    let trace = std::mem::take(&mut sim.w().trace);
    (trace, plan)
}

// ---------------------------------------------------------------------------
// Strategies

fn target(slots: usize) -> impl Strategy<Value = Target> {
    prop_oneof![
        2 => Just(Target::Main),
        6 => (1..=slots).prop_map(Target::G),
        1 => Just(Target::Parent),
        1 => Just(Target::Own),
    ]
}

/// A new parent: one main holds a handle to. (A greenlet whose last handle
/// went, which `Own` or `Parent` can name, never gains children: its kill
/// would not be its last handle going.)
fn parent_target(slots: usize) -> impl Strategy<Value = Target> {
    prop_oneof![1 => Just(Target::Main), 3 => (1..=slots).prop_map(Target::G)]
}

fn payload_kind() -> impl Strategy<Value = Payload> {
    prop_oneof![Just(Payload::Exit), Just(Payload::Error)]
}

fn step(slots: usize) -> impl Strategy<Value = Step> {
    prop_oneof![
        5 => target(slots).prop_map(Step::Switch),
        2 => (target(slots), payload_kind()).prop_map(|(t, p)| Step::Throw(t, p)),
        1 => (target(slots), parent_target(slots)).prop_map(|(c, p)| Step::SetParent(c, p)),
    ]
}

fn script(slots: usize) -> impl Strategy<Value = Script> {
    let end = prop_oneof![3 => Just(End::Return), 1 => Just(End::Panic), 1 => Just(End::ReturnBomb)];
    let local = prop_oneof![
        3 => Just(Local::None),
        1 => Just(Local::Panics),
        1 => Just(Local::PanicsWithBomb),
        2 => target(slots).prop_map(Local::Switches),
    ];
    (proptest::collection::vec(step(slots), 0..5), end, local, any::<bool>())
        .prop_map(|(steps, end, local, catches)| Script { steps, end, local, catches })
}

fn create(slots: usize) -> impl Strategy<Value = Op> {
    (parent_target(slots), script(slots)).prop_map(|(parent, script)| Op::Create { parent, script })
}

fn op(slots: usize) -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => create(slots),
        5 => target(slots).prop_map(Op::Switch),
        2 => (target(slots), payload_kind()).prop_map(|(t, p)| Op::Throw(t, p)),
        1 => (target(slots), parent_target(slots)).prop_map(|(c, p)| Op::SetParent(c, p)),
        2 => (1..=slots).prop_map(Op::Drop),
    ]
}

fn program() -> impl Strategy<Value = Program> {
    (2usize..=6).prop_flat_map(|slots| {
        (proptest::collection::vec(create(slots), 1..=3), proptest::collection::vec(op(slots), 4..24)).prop_map(
            |(mut ops, more)| {
                ops.extend(more);
                Program { ops }
            },
        )
    })
}

fn config() -> Config {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|cases| cases.parse().ok()).unwrap_or(256);
    Config { cases, failure_persistence: None, ..Config::default() }
}

/// Both traces, side by side from the first difference, for a failure
/// message.
fn first_difference(expected: &[Event], actual: &[Event]) -> String {
    let at = expected.iter().zip(actual).take_while(|(e, a)| e == a).count();
    let mut text = format!("traces differ at event {at}\n");
    for i in at.saturating_sub(3)..(at + 6).min(expected.len().max(actual.len())) {
        let _ = writeln!(text, "  {i:4}  model: {:?}\n        real:  {:?}", expected.get(i), actual.get(i));
    }
    text
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn greenlets_match_the_model(program in program()) {
        let (expected, plan) = model(&program);
        let actual = execute(&program, &plan);
        prop_assert!(expected == actual, "{}", first_difference(&expected, &actual));
    }
}

// ---------------------------------------------------------------------------
// Fixed programs: each of the features the random ones combine, checked on
// its own so that the model itself is known to say the right thing.

fn script_of(steps: Vec<Step>, end: End, local: Local, catches: bool) -> Script {
    Script { steps, end, local, catches }
}

fn check(program: Program) -> Vec<Event> {
    let (expected, plan) = model(&program);
    let actual = execute(&program, &plan);
    assert!(expected == actual, "{}", first_difference(&expected, &actual));
    actual
}

fn resumed(trace: &[Event], g: Gid, at: usize) -> Vec<Got> {
    trace
        .iter()
        .filter_map(|e| match e {
            Event::Resumed { g: who, at: when, got } if *who == g && *when == at => Some(got.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn model_a_child_finishing_returns_its_value_to_main() {
    let trace = check(Program {
        ops: vec![
            Op::Create { parent: Target::Main, script: script_of(vec![], End::Return, Local::None, false) },
            Op::Switch(Target::G(1)),
        ],
    });
    assert_eq!(resumed(&trace, 0, 1), [Ok(Val::Tag(step_id(1, END)))]);
}

#[test]
fn model_a_local_that_panics_after_run_returned_reaches_the_parent() {
    let trace = check(Program {
        ops: vec![
            Op::Create { parent: Target::Main, script: script_of(vec![], End::Return, Local::Panics, false) },
            Op::Switch(Target::G(1)),
        ],
    });
    assert_eq!(resumed(&trace, 0, 1), [Err(Pan::Error(step_id(1, LOCAL_PANIC)))]);
}

#[test]
fn model_a_local_that_switches_during_a_kill_can_be_interrupted_by_a_throw_at_the_killer() {
    // Greenlet 1 parks in main; its local switches to greenlet 2 when it is
    // killed; greenlet 2 throws at main, the killer.
    let trace = check(Program {
        ops: vec![
            Op::Create {
                parent: Target::Main,
                script: script_of(vec![Step::Switch(Target::Main)], End::Return, Local::Switches(Target::G(2)), false),
            },
            Op::Create {
                parent: Target::Main,
                script: script_of(vec![Step::Throw(Target::Main, Payload::Error)], End::Return, Local::None, false),
            },
            Op::Switch(Target::G(1)),
            Op::Drop(1),
            Op::Flush,
        ],
    });
    assert_eq!(resumed(&trace, 0, 3), [Err(Pan::Error(step_id(2, 0)))], "the throw reached the killer");
    assert!(trace.contains(&Event::LocalResumed { g: 1, got: Ok(Val::Unit) }), "the kill went on: {trace:?}");
    assert!(!trace.contains(&Event::Leaked));
}

#[test]
fn model_a_greenlet_that_catches_the_kill_and_switches_back_is_leaked() {
    let trace = check(Program {
        ops: vec![
            Op::Create {
                parent: Target::Main,
                script: script_of(
                    vec![Step::Switch(Target::Main), Step::Switch(Target::Main)],
                    End::Return,
                    Local::None,
                    true,
                ),
            },
            Op::Switch(Target::G(1)),
            Op::Drop(1),
        ],
    });
    assert!(trace.contains(&Event::Resumed { g: 1, at: 0, got: Err(Pan::Exit) }));
    assert!(trace.contains(&Event::Leaked));
    assert_eq!(trace.last(), Some(&Event::Live(2)));
}

#[test]
fn model_a_result_lost_to_a_panicking_local_is_dropped_in_the_greenlet_and_reported() {
    let trace = check(Program {
        ops: vec![
            Op::Create { parent: Target::Main, script: script_of(vec![], End::ReturnBomb, Local::Panics, false) },
            Op::Switch(Target::G(1)),
        ],
    });
    assert_eq!(resumed(&trace, 0, 1), [Err(Pan::Error(step_id(1, LOCAL_PANIC)))]);
    assert!(trace.contains(&Event::UndeliveredPanicked), "{trace:?}");
}
