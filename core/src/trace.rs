//! The per-thread switch tracer.

use std::cell::{Cell, RefCell};

use crate::greenlet::Greenlet;
use crate::switch;

/// What kind of transfer a tracer is told about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TraceEvent {
    /// Control passed with a value: a switch, a start, or a finished greenlet
    /// returning to its parent.
    Switch,
    /// Control passed with a panic: a `throw`, or a greenlet that died of a
    /// panic handing it to its parent.
    Throw,
}

/// A tracer: called with the event, the greenlet that gave up control and the
/// one that received it.
pub type Tracer = Box<dyn FnMut(TraceEvent, &Greenlet, &Greenlet)>;

thread_local! {
    static TRACER: RefCell<Option<Tracer>> = const { RefCell::new(None) };
    /// Whether a tracer is installed (possibly running right now).
    static INSTALLED: Cell<bool> = const { Cell::new(false) };
    /// Bumped by every `settrace`, so a running tracer knows if it was replaced.
    static GENERATION: Cell<u64> = const { Cell::new(0) };
}

/// Installs `tracer` for this thread (or removes the current one with
/// `None`) and returns the one it replaces.
///
/// The tracer is called on every transfer of control between greenlets of
/// this thread, in the greenlet that receives control, before its `switch`
/// returns (or before its `run` starts). Transfers made by the tracer itself
/// are not traced. If the tracer panics it is removed, and the panic replaces
/// the transfer: it is raised in the receiving greenlet as if thrown there.
///
/// ```
/// use std::cell::RefCell;
/// use std::rc::Rc;
/// use runtime::greenlet::{Greenlet, TraceEvent, settrace};
///
/// let log = Rc::new(RefCell::new(Vec::new()));
/// let sink = log.clone();
/// settrace(Some(Box::new(move |event, from, to| sink.borrow_mut().push((event, from.is_main(), to.is_main())))));
/// Greenlet::new(|v| v).switch(Box::new(()));
/// settrace(None);
/// assert_eq!(*log.borrow(), [(TraceEvent::Switch, true, false), (TraceEvent::Switch, false, true)]);
/// ```
pub fn settrace(tracer: Option<Tracer>) -> Option<Tracer> {
    let installed = tracer.is_some();
    let previous = TRACER.with(|t| t.replace(tracer));
    INSTALLED.with(|i| i.set(installed));
    GENERATION.with(|g| g.set(g.get() + 1));
    switch::refresh_slow();
    previous
}

/// Whether a tracer is installed on this thread.
pub fn is_tracing() -> bool {
    installed()
}

pub(crate) fn installed() -> bool {
    INSTALLED.with(Cell::get)
}

/// Calls the tracer, unless it is already running.
pub(crate) fn call(event: TraceEvent, origin: &Greenlet, target: &Greenlet) {
    let Some(tracer) = TRACER.with(|t| t.borrow_mut().take()) else { return };
    let mut running = Running { tracer: Some(tracer), generation: GENERATION.with(Cell::get), returned: false };
    (running.tracer.as_mut().expect("just set"))(event, origin, target);
    running.returned = true;
}

/// Puts the tracer back after it ran, unless it was replaced meanwhile; if it
/// panicked, leaves it removed.
struct Running {
    tracer: Option<Tracer>,
    generation: u64,
    returned: bool,
}

impl Drop for Running {
    fn drop(&mut self) {
        if GENERATION.with(Cell::get) != self.generation {
            return;
        }
        if !self.returned {
            INSTALLED.with(|i| i.set(false));
            switch::refresh_slow();
        } else {
            TRACER.with(|t| *t.borrow_mut() = self.tracer.take());
        }
    }
}
