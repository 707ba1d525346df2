//! Model-based randomized test of the hub: random programs of spawn, yield,
//! sleep, channel, semaphore and kill operations run on the hub, and the trace
//! of what they observed is checked against a small sequential model of the
//! documented semantics.
//!
//! The model knows: the run queue is FIFO and `yield_now` goes to its back;
//! `spawn` only schedules; waiters of channels and semaphores are served in
//! FIFO order by direct hand-off; a `bounded(0)` send that hands its value to
//! a waiting receiver then yields, so the receiver runs before the send
//! returns; `unpark` never switches; a kill is raised at
//! the target's park point the next time the hub runs it (a greenlet killed
//! before it ran never runs), and the unwinding releases its permits and gives
//! back what was handed to it; `run` kills whatever is left when `f` returns.
//!
//! Two properties:
//!
//! - without sleeps the hub is deterministic, so the whole trace (up to the
//!   end of the main greenlet) must equal the model's, and the end state
//!   (outcomes, channel contents, permits, fate of every value) must match;
//! - with sleeps, ordering depends on the clock, so only order-insensitive
//!   invariants are checked: every value is received exactly once, still in
//!   its channel, or given back to its own sender (a failed `try_send`, or a
//!   sender killed while blocked); a killed greenlet does nothing after the
//!   kill but unwind; every permit comes back.
//!
//! `PROPTEST_CASES` overrides the number of programs per property (64).

mod util;

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::rc::Rc;
use std::time::Duration;

use proptest::prelude::*;
use proptest::strategy::Union;
use proptest::test_runner::Config;
use runtime_scheduler::sync::channel::{self, Receiver, Sender};
use runtime_scheduler::sync::{OwnedSemaphorePermit, Semaphore};
use runtime_scheduler::{self as rt, JoinHandle, greenlet_id, sleep, spawn, yield_now};

/// Task 0 is the main greenlet (`run`'s closure); workers are 1..=n.
type TaskId = usize;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Yield,
    /// Milliseconds; only in the timing-tolerant property.
    Sleep(u64),
    Spawn(TaskId),
    Kill(TaskId),
    Send(usize),
    TrySend(usize),
    Recv(usize),
    TryRecv(usize),
    Acquire(usize),
    TryAcquire(usize),
    Release(usize),
}

#[derive(Clone, Debug)]
struct Program {
    /// Capacity of each channel (`None`: unbounded).
    channels: Vec<Option<usize>>,
    /// Initial permits of each semaphore.
    semaphores: Vec<usize>,
    /// The main greenlet's script: never blocks on a channel or semaphore, so
    /// the program cannot deadlock.
    root: Vec<Op>,
    /// Worker `i + 1`'s script.
    workers: Vec<Vec<Op>>,
}

impl Program {
    fn script(&self, task: TaskId) -> &[Op] {
        if task == 0 { &self.root } else { &self.workers[task - 1] }
    }
}

/// What a greenlet observed, in trace order.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Event {
    Spawned {
        by: TaskId,
        task: TaskId,
    },
    KillIssued {
        by: TaskId,
        task: TaskId,
    },
    Yielded(TaskId),
    Slept(TaskId),
    Sent {
        by: TaskId,
        chan: usize,
        value: u32,
    },
    TrySent {
        by: TaskId,
        chan: usize,
        value: u32,
        ok: bool,
    },
    Received {
        by: TaskId,
        chan: usize,
        value: u32,
    },
    TryReceived {
        by: TaskId,
        chan: usize,
        value: Option<u32>,
    },
    Acquired {
        by: TaskId,
        sem: usize,
    },
    TryAcquired {
        by: TaskId,
        sem: usize,
        ok: bool,
    },
    Released {
        by: TaskId,
        sem: usize,
    },
    /// A worker's script ran to its end.
    Done(TaskId),
    /// A worker unwound from a kill.
    Unwound(TaskId),
    /// The main greenlet's script ran to its end: `run` shuts down next.
    RootEnd,
}

impl Event {
    fn task(&self) -> TaskId {
        match *self {
            Event::Spawned { by, .. }
            | Event::KillIssued { by, .. }
            | Event::Sent { by, .. }
            | Event::TrySent { by, .. }
            | Event::Received { by, .. }
            | Event::TryReceived { by, .. }
            | Event::Acquired { by, .. }
            | Event::TryAcquired { by, .. }
            | Event::Released { by, .. } => by,
            Event::Yielded(task) | Event::Slept(task) | Event::Done(task) | Event::Unwound(task) => task,
            Event::RootEnd => 0,
        }
    }

    fn received(&self) -> Option<u32> {
        match *self {
            Event::Received { value, .. } | Event::TryReceived { value: Some(value), .. } => Some(value),
            _ => None,
        }
    }
}

/// How a spawned worker ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Finished,
    Killed,
    Panicked,
}

/// What became of a value.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Fate {
    Received(TaskId),
    /// Still in its channel after `run`.
    Remaining,
    /// Given back by a failed `try_send`.
    Returned,
    /// Dropped with its sender, killed while blocked in `send`.
    Unsent,
    /// Anything else: a bug.
    Lost(String),
}

/// The observable result of running a program, on the hub or in the model.
#[derive(Debug, PartialEq)]
struct Results {
    /// Events up to and including `RootEnd`, in order.
    main: Vec<Event>,
    /// Events of the shutdown of `run`, sorted (their order is not specified).
    shutdown: Vec<Event>,
    /// Per worker, `None` if never spawned.
    outcomes: Vec<Option<Outcome>>,
    /// Per channel, the values left in it, sorted.
    remaining: Vec<Vec<u32>>,
    /// Per semaphore, permits available after `run`.
    permits: Vec<usize>,
    fates: BTreeMap<u32, Fate>,
}

fn split_trace(trace: Vec<Event>) -> (Vec<Event>, Vec<Event>) {
    let end = trace.iter().position(|event| *event == Event::RootEnd).map_or(trace.len(), |i| i + 1);
    let mut main = trace;
    let mut shutdown = main.split_off(end);
    shutdown.sort();
    (main, shutdown)
}

// ---------------------------------------------------------------------------
// Running a program on the hub

#[derive(Debug)]
struct DropRecord {
    value: u32,
    sender: TaskId,
    greenlet: u64,
    panicking: bool,
}

/// A value sent over the channels; it records who dropped it.
struct Token {
    value: u32,
    sender: TaskId,
    drops: Rc<RefCell<Vec<DropRecord>>>,
    armed: bool,
}

impl Drop for Token {
    fn drop(&mut self) {
        if self.armed {
            self.drops.borrow_mut().push(DropRecord {
                value: self.value,
                sender: self.sender,
                greenlet: greenlet_id(),
                panicking: std::thread::panicking(),
            });
        }
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Token({})", self.value)
    }
}

/// Everything the greenlets of one execution share.
struct World {
    program: Program,
    trace: RefCell<Vec<Event>>,
    senders: Vec<Sender<Token>>,
    receivers: Vec<Receiver<Token>>,
    semaphores: Vec<std::sync::Arc<Semaphore>>,
    /// Indexed by task; slot 0 (the main greenlet) stays empty.
    handles: RefCell<Vec<Option<JoinHandle<()>>>>,
    next_value: Cell<u32>,
    drops: Rc<RefCell<Vec<DropRecord>>>,
    root_greenlet: Cell<u64>,
}

type Held = Vec<(usize, OwnedSemaphorePermit)>;

impl World {
    fn log(&self, event: Event) {
        self.trace.borrow_mut().push(event);
    }

    fn token(&self, sender: TaskId) -> Token {
        let value = self.next_value.get();
        self.next_value.set(value + 1);
        Token { value, sender, drops: self.drops.clone(), armed: true }
    }
}

/// Runs `task`'s script in the current greenlet.
fn run_script(world: &Rc<World>, task: TaskId) {
    struct Exit<'a>(&'a World, TaskId);
    impl Drop for Exit<'_> {
        fn drop(&mut self) {
            if std::thread::panicking() {
                self.0.log(Event::Unwound(self.1));
            }
        }
    }
    let _exit = Exit(world, task);
    // Declared after `_exit`: released (in acquisition order) before the
    // unwinding is logged.
    let mut held: Held = Vec::new();
    for op in world.program.script(task) {
        step(world, task, *op, &mut held);
    }
    world.log(if task == 0 { Event::RootEnd } else { Event::Done(task) });
}

fn step(world: &Rc<World>, me: TaskId, op: Op, held: &mut Held) {
    match op {
        Op::Yield => {
            yield_now();
            world.log(Event::Yielded(me));
        }
        Op::Sleep(ms) => {
            sleep(Duration::from_millis(ms));
            world.log(Event::Slept(me));
        }
        Op::Spawn(task) => {
            if world.handles.borrow()[task].is_none() {
                let w = world.clone();
                let handle = spawn(move || run_script(&w, task));
                world.handles.borrow_mut()[task] = Some(handle);
                world.log(Event::Spawned { by: me, task });
            }
        }
        Op::Kill(task) => {
            let handles = world.handles.borrow();
            if let Some(handle) = &handles[task] {
                world.log(Event::KillIssued { by: me, task });
                // Unwinds right here if `task` is `me`.
                handle.kill();
            }
        }
        Op::Send(chan) => {
            let token = world.token(me);
            let value = token.value;
            world.senders[chan].send(token).expect("the receivers live as long as the world");
            world.log(Event::Sent { by: me, chan, value });
        }
        Op::TrySend(chan) => {
            let token = world.token(me);
            let value = token.value;
            let ok = world.senders[chan].try_send(token).map_err(|err| drop(err.into_inner())).is_ok();
            world.log(Event::TrySent { by: me, chan, value, ok });
        }
        Op::Recv(chan) => {
            let token = world.receivers[chan].recv().expect("the senders live as long as the world");
            world.log(Event::Received { by: me, chan, value: token.value });
        }
        Op::TryRecv(chan) => {
            let token = world.receivers[chan].try_recv().ok();
            world.log(Event::TryReceived { by: me, chan, value: token.as_ref().map(|t| t.value) });
        }
        Op::Acquire(sem) => {
            let permit = world.semaphores[sem].acquire_owned();
            held.push((sem, permit));
            world.log(Event::Acquired { by: me, sem });
        }
        Op::TryAcquire(sem) => {
            let permit = world.semaphores[sem].try_acquire_owned();
            let ok = permit.is_some();
            held.extend(permit.map(|permit| (sem, permit)));
            world.log(Event::TryAcquired { by: me, sem, ok });
        }
        Op::Release(sem) => {
            if let Some(at) = held.iter().position(|(s, _)| *s == sem) {
                let (_, permit) = held.remove(at);
                world.log(Event::Released { by: me, sem });
                drop(permit);
            }
        }
    }
}

/// Runs `program` on a fresh hub.
fn execute(program: &Program) -> Results {
    let (senders, receivers) = program
        .channels
        .iter()
        .map(|capacity| match capacity {
            Some(capacity) => channel::bounded(*capacity),
            None => channel::unbounded(),
        })
        .unzip();
    let world = Rc::new(World {
        program: program.clone(),
        trace: RefCell::new(Vec::new()),
        senders,
        receivers,
        semaphores: program.semaphores.iter().map(|permits| std::sync::Arc::new(Semaphore::new(*permits))).collect(),
        handles: RefCell::new((0..=program.workers.len()).map(|_| None).collect()),
        next_value: Cell::new(0),
        drops: Rc::new(RefCell::new(Vec::new())),
        root_greenlet: Cell::new(0),
    });
    let w = world.clone();
    rt::run(move || {
        w.root_greenlet.set(greenlet_id());
        run_script(&w, 0);
    });

    // Who is who, by greenlet id.
    let mut task_of: BTreeMap<u64, TaskId> = BTreeMap::new();
    task_of.insert(world.root_greenlet.get(), 0);
    let outcomes = world
        .handles
        .borrow_mut()
        .iter_mut()
        .enumerate()
        .skip(1)
        .map(|(task, handle)| {
            let handle = handle.take()?;
            task_of.insert(handle.id(), task);
            // Every greenlet is finished once `run` returned: no waiting.
            Some(match handle.join() {
                Ok(()) => Outcome::Finished,
                Err(err) if err.is_killed() => Outcome::Killed,
                Err(_) => Outcome::Panicked,
            })
        })
        .collect();

    let remaining: Vec<Vec<u32>> = world
        .receivers
        .iter()
        .map(|receiver| {
            let mut values: Vec<u32> = receiver
                .try_iter()
                .map(|mut token| {
                    token.armed = false;
                    token.value
                })
                .collect();
            values.sort_unstable();
            values
        })
        .collect();
    for semaphore in &world.semaphores {
        assert_eq!(semaphore.waiters(), 0, "a semaphore still has waiters after `run`");
    }
    let permits = world.semaphores.iter().map(|semaphore| semaphore.available()).collect();

    let trace = world.trace.borrow().clone();
    let fates = classify_fates(&trace, world.next_value.get(), &remaining, &world.drops.borrow(), &task_of);
    let (main, shutdown) = split_trace(trace);
    Results { main, shutdown, outcomes, remaining, permits, fates }
}

/// Works out what became of every value the hub's run created.
fn classify_fates(
    trace: &[Event],
    values: u32,
    remaining: &[Vec<u32>],
    drops: &[DropRecord],
    task_of: &BTreeMap<u64, TaskId>,
) -> BTreeMap<u32, Fate> {
    let mut fates = BTreeMap::new();
    for value in 0..values {
        let receivers: Vec<TaskId> =
            trace.iter().filter(|event| event.received() == Some(value)).map(Event::task).collect();
        let left = remaining.iter().flatten().filter(|v| **v == value).count();
        let dropped: Vec<&DropRecord> = drops.iter().filter(|record| record.value == value).collect();
        let fate = match (receivers.as_slice(), left) {
            ([by], 0) => Fate::Received(*by),
            ([], 1) => Fate::Remaining,
            ([], 0) => match dropped.as_slice() {
                [record] if task_of.get(&record.greenlet) == Some(&record.sender) => {
                    if record.panicking {
                        Fate::Unsent
                    } else {
                        Fate::Returned
                    }
                }
                [record] => Fate::Lost(format!(
                    "dropped unreceived by {:?} (sent by {})",
                    task_of.get(&record.greenlet),
                    record.sender
                )),
                _ => Fate::Lost(format!("{} drop records", dropped.len())),
            },
            _ => Fate::Lost(format!("received by {receivers:?}, {left} left in the channels")),
        };
        fates.insert(value, fate);
    }
    fates
}

// ---------------------------------------------------------------------------
// The model

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    NotSpawned,
    Scheduled,
    Running,
    Parked,
    Done,
}

/// What a greenlet parked in, and whether that wait was completed for it.
#[derive(Clone, Copy, Debug)]
enum Wait {
    Yield,
    Recv { chan: usize, got: Option<u32> },
    Send { chan: usize, value: u32, taken: bool },
    Acquire { sem: usize, granted: bool },
}

#[derive(Debug)]
struct Task {
    pc: usize,
    state: State,
    started: bool,
    kill_requested: bool,
    wait: Option<Wait>,
    held: Vec<usize>,
    outcome: Option<Outcome>,
}

#[derive(Debug)]
struct Chan {
    capacity: Option<usize>,
    queue: VecDeque<u32>,
    recv_waiters: VecDeque<TaskId>,
    send_waiters: VecDeque<TaskId>,
}

#[derive(Debug)]
struct Sem {
    permits: usize,
    waiters: VecDeque<TaskId>,
}

/// How running one operation ended.
enum Flow {
    Continue,
    Parked,
    Unwound,
}

struct Model<'p> {
    program: &'p Program,
    tasks: Vec<Task>,
    run_queue: VecDeque<TaskId>,
    chans: Vec<Chan>,
    sems: Vec<Sem>,
    trace: Vec<Event>,
    next_value: u32,
    /// Values that were dropped unreceived, and why.
    dropped: BTreeMap<u32, Fate>,
}

impl<'p> Model<'p> {
    fn new(program: &'p Program) -> Model<'p> {
        Model {
            program,
            tasks: (0..=program.workers.len())
                .map(|_| Task {
                    pc: 0,
                    state: State::NotSpawned,
                    started: false,
                    kill_requested: false,
                    wait: None,
                    held: Vec::new(),
                    outcome: None,
                })
                .collect(),
            run_queue: VecDeque::new(),
            chans: program
                .channels
                .iter()
                .map(|capacity| Chan {
                    capacity: *capacity,
                    queue: VecDeque::new(),
                    recv_waiters: VecDeque::new(),
                    send_waiters: VecDeque::new(),
                })
                .collect(),
            sems: program
                .semaphores
                .iter()
                .map(|permits| Sem { permits: *permits, waiters: VecDeque::new() })
                .collect(),
            trace: Vec::new(),
            next_value: 0,
            dropped: BTreeMap::new(),
        }
    }

    /// Puts `task` at the back of the run queue.
    fn schedule(&mut self, task: TaskId) {
        self.tasks[task].state = State::Scheduled;
        self.run_queue.push_back(task);
    }

    /// Makes a parked task runnable; never switches.
    fn unpark(&mut self, task: TaskId) {
        if self.tasks[task].state == State::Parked {
            self.schedule(task);
        }
    }

    fn try_send(&mut self, chan: usize, value: u32) -> bool {
        if let Some(receiver) = self.chans[chan].recv_waiters.pop_front() {
            self.tasks[receiver].wait = Some(Wait::Recv { chan, got: Some(value) });
            self.unpark(receiver);
            return true;
        }
        let chan = &mut self.chans[chan];
        if chan.capacity.is_none_or(|capacity| chan.queue.len() < capacity) {
            chan.queue.push_back(value);
            true
        } else {
            false
        }
    }

    fn try_recv(&mut self, chan: usize) -> Option<u32> {
        let popped = self.chans[chan].queue.pop_front();
        let moved = self.chans[chan].send_waiters.pop_front().map(|sender| {
            let Some(Wait::Send { value, taken, .. }) = &mut self.tasks[sender].wait else {
                unreachable!("a send waiter waits in send")
            };
            *taken = true;
            let value = *value;
            self.unpark(sender);
            value
        });
        match (popped, moved) {
            (Some(value), Some(next)) => {
                self.chans[chan].queue.push_back(next);
                Some(value)
            }
            (Some(value), None) | (None, Some(value)) => Some(value),
            (None, None) => None,
        }
    }

    /// A value handed to a receiver that unwound goes to the next receiver or
    /// back to the front of the queue.
    fn give_back(&mut self, chan: usize, value: u32) {
        match self.chans[chan].recv_waiters.pop_front() {
            Some(receiver) => {
                self.tasks[receiver].wait = Some(Wait::Recv { chan, got: Some(value) });
                self.unpark(receiver);
            }
            None => self.chans[chan].queue.push_front(value),
        }
    }

    fn release(&mut self, sem: usize) {
        match self.sems[sem].waiters.pop_front() {
            Some(waiter) => {
                self.tasks[waiter].wait = Some(Wait::Acquire { sem, granted: true });
                self.unpark(waiter);
            }
            None => self.sems[sem].permits += 1,
        }
    }

    fn park(&mut self, me: TaskId, wait: Wait) -> Flow {
        self.tasks[me].wait = Some(wait);
        self.tasks[me].state = State::Parked;
        Flow::Parked
    }

    fn exec(&mut self, me: TaskId, op: Op) -> Flow {
        match op {
            Op::Yield => {
                self.tasks[me].wait = Some(Wait::Yield);
                self.schedule(me);
                Flow::Parked
            }
            Op::Sleep(_) => unreachable!("the exact model runs programs without sleeps"),
            Op::Spawn(task) => {
                if self.tasks[task].state == State::NotSpawned {
                    self.schedule(task);
                    self.trace.push(Event::Spawned { by: me, task });
                }
                Flow::Continue
            }
            Op::Kill(task) => {
                if self.tasks[task].state == State::NotSpawned {
                    return Flow::Continue;
                }
                self.trace.push(Event::KillIssued { by: me, task });
                match self.tasks[task].state {
                    State::Done | State::NotSpawned => {}
                    _ if !self.tasks[task].started => {
                        // Never ran: finished at once; its queue entry is stale.
                        self.tasks[task].state = State::Done;
                        self.tasks[task].outcome = Some(Outcome::Killed);
                    }
                    State::Running => {
                        assert_eq!(task, me, "only the current task runs");
                        self.unwind(me);
                        return Flow::Unwound;
                    }
                    State::Parked => {
                        self.tasks[task].kill_requested = true;
                        self.schedule(task);
                    }
                    State::Scheduled => self.tasks[task].kill_requested = true,
                }
                Flow::Continue
            }
            Op::Send(chan) => {
                let value = self.new_value();
                let rendezvous = self.chans[chan].capacity == Some(0) && !self.chans[chan].recv_waiters.is_empty();
                if self.try_send(chan, value) {
                    if rendezvous {
                        // Handed to a waiting receiver: the sender yields, so
                        // the receiver runs before its send returns.
                        self.tasks[me].wait = Some(Wait::Send { chan, value, taken: true });
                        self.schedule(me);
                        return Flow::Parked;
                    }
                    self.trace.push(Event::Sent { by: me, chan, value });
                    Flow::Continue
                } else {
                    self.chans[chan].send_waiters.push_back(me);
                    self.park(me, Wait::Send { chan, value, taken: false })
                }
            }
            Op::TrySend(chan) => {
                let value = self.new_value();
                let ok = self.try_send(chan, value);
                if !ok {
                    self.dropped.insert(value, Fate::Returned);
                }
                self.trace.push(Event::TrySent { by: me, chan, value, ok });
                Flow::Continue
            }
            Op::Recv(chan) => match self.try_recv(chan) {
                Some(value) => {
                    self.trace.push(Event::Received { by: me, chan, value });
                    Flow::Continue
                }
                None => {
                    self.chans[chan].recv_waiters.push_back(me);
                    self.park(me, Wait::Recv { chan, got: None })
                }
            },
            Op::TryRecv(chan) => {
                let value = self.try_recv(chan);
                self.trace.push(Event::TryReceived { by: me, chan, value });
                Flow::Continue
            }
            Op::Acquire(sem) => {
                if self.sems[sem].permits > 0 {
                    self.sems[sem].permits -= 1;
                    self.tasks[me].held.push(sem);
                    self.trace.push(Event::Acquired { by: me, sem });
                    Flow::Continue
                } else {
                    self.sems[sem].waiters.push_back(me);
                    self.park(me, Wait::Acquire { sem, granted: false })
                }
            }
            Op::TryAcquire(sem) => {
                let ok = self.sems[sem].permits > 0;
                if ok {
                    self.sems[sem].permits -= 1;
                    self.tasks[me].held.push(sem);
                }
                self.trace.push(Event::TryAcquired { by: me, sem, ok });
                Flow::Continue
            }
            Op::Release(sem) => {
                if let Some(at) = self.tasks[me].held.iter().position(|s| *s == sem) {
                    self.tasks[me].held.remove(at);
                    self.trace.push(Event::Released { by: me, sem });
                    self.release(sem);
                }
                Flow::Continue
            }
        }
    }

    fn new_value(&mut self) -> u32 {
        self.next_value += 1;
        self.next_value - 1
    }

    /// The operation a resumed task was parked in completes.
    fn complete_wait(&mut self, me: TaskId) {
        let event = match self.tasks[me].wait.take() {
            Some(Wait::Yield) => Event::Yielded(me),
            Some(Wait::Recv { chan, got: Some(value) }) => Event::Received { by: me, chan, value },
            Some(Wait::Send { chan, value, taken: true }) => Event::Sent { by: me, chan, value },
            Some(Wait::Acquire { sem, granted: true }) => {
                self.tasks[me].held.push(sem);
                Event::Acquired { by: me, sem }
            }
            other => panic!("model: task {me} resumed without its wait completed: {other:?}"),
        };
        self.trace.push(event);
        self.tasks[me].pc += 1;
    }

    /// Runs `me`'s script until it parks, finishes or unwinds.
    fn run_script(&mut self, me: TaskId) {
        loop {
            let script = self.program.script(me);
            let Some(op) = script.get(self.tasks[me].pc).copied() else {
                self.trace.push(if me == 0 { Event::RootEnd } else { Event::Done(me) });
                for sem in std::mem::take(&mut self.tasks[me].held) {
                    self.release(sem);
                }
                self.tasks[me].state = State::Done;
                self.tasks[me].outcome = Some(Outcome::Finished);
                return;
            };
            match self.exec(me, op) {
                Flow::Continue => self.tasks[me].pc += 1,
                Flow::Parked | Flow::Unwound => return,
            }
        }
    }

    /// A kill lands: the wait node is reclaimed (giving back what it was
    /// handed), then the held permits are released, in acquisition order.
    fn unwind(&mut self, me: TaskId) {
        match self.tasks[me].wait.take() {
            Some(Wait::Recv { chan, got: Some(value) }) => self.give_back(chan, value),
            Some(Wait::Recv { chan, got: None }) => self.chans[chan].recv_waiters.retain(|t| *t != me),
            Some(Wait::Send { chan, value, taken: false }) => {
                self.chans[chan].send_waiters.retain(|t| *t != me);
                self.dropped.insert(value, Fate::Unsent);
            }
            Some(Wait::Acquire { sem, granted: true }) => self.release(sem),
            Some(Wait::Acquire { sem, granted: false }) => self.sems[sem].waiters.retain(|t| *t != me),
            Some(Wait::Send { taken: true, .. } | Wait::Yield) | None => {}
        }
        for sem in std::mem::take(&mut self.tasks[me].held) {
            self.release(sem);
        }
        self.trace.push(Event::Unwound(me));
        self.tasks[me].state = State::Done;
        self.tasks[me].outcome = Some(Outcome::Killed);
    }

    /// The hub loop until the main greenlet is done, then `run`'s shutdown.
    fn run(mut self) -> Results {
        self.schedule(0);
        while let Some(task) = self.run_queue.pop_front() {
            if self.tasks[task].state != State::Scheduled {
                continue; // killed before it ran
            }
            self.tasks[task].state = State::Running;
            if std::mem::take(&mut self.tasks[task].kill_requested) {
                self.unwind(task);
            } else {
                if self.tasks[task].started {
                    self.complete_wait(task);
                } else {
                    self.tasks[task].started = true;
                }
                self.run_script(task);
            }
            if self.tasks[0].state == State::Done {
                break;
            }
        }
        let main = std::mem::take(&mut self.trace);

        // Shutdown: every worker left is killed; in which order is not
        // specified, so only the multiset of events and the end state count.
        for task in 1..self.tasks.len() {
            match self.tasks[task].state {
                State::NotSpawned | State::Done => {}
                _ if !self.tasks[task].started => {
                    self.tasks[task].state = State::Done;
                    self.tasks[task].outcome = Some(Outcome::Killed);
                }
                _ => self.unwind(task),
            }
        }
        let mut shutdown = std::mem::take(&mut self.trace);
        shutdown.sort();

        let remaining: Vec<Vec<u32>> = self
            .chans
            .iter()
            .map(|chan| {
                let mut values: Vec<u32> = chan.queue.iter().copied().collect();
                values.sort_unstable();
                values
            })
            .collect();
        let mut fates = BTreeMap::new();
        for event in &main {
            if let Some(value) = event.received() {
                fates.insert(value, Fate::Received(event.task()));
            }
        }
        for value in remaining.iter().flatten() {
            fates.insert(*value, Fate::Remaining);
        }
        fates.extend(self.dropped.iter().map(|(value, fate)| (*value, fate.clone())));
        assert_eq!(fates.len(), self.next_value as usize, "model: a value with no fate");
        Results {
            main,
            shutdown,
            outcomes: self.tasks[1..].iter().map(|task| task.outcome).collect(),
            remaining,
            permits: self.sems.iter().map(|sem| sem.permits).collect(),
            fates,
        }
    }
}

// ---------------------------------------------------------------------------
// Order-insensitive invariants (both properties)

fn check_invariants(program: &Program, results: &Results) -> Result<(), TestCaseError> {
    // Every value has a legitimate fate.
    for (value, fate) in &results.fates {
        prop_assert!(!matches!(fate, Fate::Lost(_)), "value {} was lost or duplicated: {:?}", value, fate);
    }
    let trace: Vec<&Event> = results.main.iter().chain(&results.shutdown).collect();
    for event in &trace {
        match **event {
            // A completed send is never undone.
            Event::Sent { value, .. } | Event::TrySent { value, ok: true, .. } => prop_assert!(
                matches!(results.fates[&value], Fate::Received(_) | Fate::Remaining),
                "value {} was sent but is {:?}",
                value,
                results.fates[&value]
            ),
            Event::TrySent { value, ok: false, .. } => prop_assert_eq!(&results.fates[&value], &Fate::Returned),
            _ => {}
        }
    }
    // A value dropped with its sender belongs to a killed sender.
    for (value, fate) in &results.fates {
        if *fate == Fate::Unsent {
            let sent = trace.iter().any(|event| {
                matches!(**event, Event::Sent { value: v, .. } | Event::TrySent { value: v, .. } if v == *value)
            });
            prop_assert!(!sent, "value {} has a completed send yet was dropped unsent", value);
        }
    }
    // A killed greenlet does nothing after the kill but unwind.
    for (i, event) in results.main.iter().enumerate() {
        if let Event::KillIssued { task, .. } = *event {
            let later: Vec<&Event> = results.main[i + 1..]
                .iter()
                .chain(&results.shutdown)
                .filter(|e| e.task() == task && **e != Event::Unwound(task))
                .collect();
            prop_assert!(later.is_empty(), "task {} ran after it was killed: {:?}", task, later);
        }
    }
    // Outcomes agree with the trace; every permit came back.
    for (i, outcome) in results.outcomes.iter().enumerate() {
        let task = i + 1;
        let done = trace.iter().any(|e| **e == Event::Done(task));
        let unwound = trace.iter().any(|e| **e == Event::Unwound(task));
        match outcome {
            None => prop_assert!(!done && !unwound),
            Some(Outcome::Finished) => prop_assert!(done && !unwound, "task {} finished without Done", task),
            Some(Outcome::Killed) => prop_assert!(!done, "task {} killed after Done", task),
            Some(Outcome::Panicked) => prop_assert!(false, "task {} panicked", task),
        }
    }
    prop_assert_eq!(&results.permits, &program.semaphores, "permits were leaked or duplicated");
    Ok(())
}

// ---------------------------------------------------------------------------
// Program generation

fn weighted(options: Vec<(u32, BoxedStrategy<Op>)>) -> BoxedStrategy<Op> {
    Union::new_weighted(options.into_iter().filter(|(weight, _)| *weight > 0).collect()).boxed()
}

fn worker_op(workers: usize, chans: usize, sems: usize, sleeps: bool) -> BoxedStrategy<Op> {
    weighted(vec![
        (3, Just(Op::Yield).boxed()),
        (if sleeps { 3 } else { 0 }, (0u64..=3).prop_map(Op::Sleep).boxed()),
        (1, (1..=workers).prop_map(Op::Spawn).boxed()),
        (1, (1..=workers).prop_map(Op::Kill).boxed()),
        (3, (0..chans).prop_map(Op::Send).boxed()),
        (1, (0..chans).prop_map(Op::TrySend).boxed()),
        (3, (0..chans).prop_map(Op::Recv).boxed()),
        (1, (0..chans).prop_map(Op::TryRecv).boxed()),
        (2, (0..sems).prop_map(Op::Acquire).boxed()),
        (1, (0..sems).prop_map(Op::TryAcquire).boxed()),
        (2, (0..sems).prop_map(Op::Release).boxed()),
    ])
}

/// The main greenlet never blocks on a channel or a semaphore.
fn root_op(workers: usize, chans: usize, sems: usize, sleeps: bool) -> BoxedStrategy<Op> {
    weighted(vec![
        (8, Just(Op::Yield).boxed()),
        (if sleeps { 2 } else { 0 }, (0u64..=3).prop_map(Op::Sleep).boxed()),
        (3, (1..=workers).prop_map(Op::Spawn).boxed()),
        (1, (1..=workers).prop_map(Op::Kill).boxed()),
        (1, (0..chans).prop_map(Op::TrySend).boxed()),
        (1, (0..chans).prop_map(Op::TryRecv).boxed()),
        (1, (0..sems).prop_map(Op::TryAcquire).boxed()),
        (1, (0..sems).prop_map(Op::Release).boxed()),
    ])
}

fn program(sleeps: bool) -> impl Strategy<Value = Program> {
    (2usize..=4, 1usize..=2, 1usize..=2).prop_flat_map(move |(workers, chans, sems)| {
        let capacity = prop_oneof![Just(None), (0usize..=2).prop_map(Some)];
        (
            proptest::collection::vec(capacity, chans),
            proptest::collection::vec(0usize..=2, sems),
            proptest::collection::vec(root_op(workers, chans, sems, sleeps), 8..40),
            proptest::collection::vec(
                proptest::collection::vec(worker_op(workers, chans, sems, sleeps), 1..14),
                workers,
            ),
        )
            .prop_map(|(channels, semaphores, root, workers)| Program { channels, semaphores, root, workers })
    })
}

fn config() -> Config {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|cases| cases.parse().ok()).unwrap_or(64);
    Config { cases, failure_persistence: None, ..Config::default() }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn hub_matches_the_model_exactly_without_sleeps(program in program(false)) {
        let expected = Model::new(&program).run();
        check_invariants(&program, &expected)?;
        let actual = execute(&program);
        prop_assert_eq!(&actual.main, &expected.main, "main-phase traces differ");
        prop_assert_eq!(actual, expected);
    }

    #[test]
    fn hub_keeps_the_invariants_with_sleeps(program in program(true)) {
        let actual = execute(&program);
        check_invariants(&program, &actual)?;
    }
}

#[test]
fn model_and_hub_agree_on_a_hand_written_program() {
    // A fixed program exercising hand-offs, a kill of a receiver that was
    // handed a value, and a permit handed to a killed waiter.
    let program = Program {
        channels: vec![Some(1)],
        semaphores: vec![1],
        root: vec![
            Op::Spawn(1),
            Op::Spawn(2),
            Op::Spawn(3),
            Op::Yield,
            Op::TrySend(0),
            Op::Kill(1),
            Op::Yield,
            Op::Yield,
            Op::Release(0),
            Op::Yield,
        ],
        workers: vec![
            vec![Op::Recv(0), Op::Send(0)],
            vec![Op::Acquire(0), Op::Yield, Op::Recv(0), Op::Release(0)],
            vec![Op::Acquire(0), Op::Send(0), Op::Send(0)],
        ],
    };
    let expected = Model::new(&program).run();
    let actual = execute(&program);
    assert_eq!(actual, expected);
    assert!(actual.main.contains(&Event::Unwound(1)));
}
