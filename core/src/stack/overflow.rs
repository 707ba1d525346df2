//! Stack overflow reporting.
//!
//! A greenlet that overflows its stack touches the guard region beneath it and
//! the kernel raises `SIGSEGV`. The handler installed here runs on an
//! alternate signal stack (the overflowed one is unusable), checks whether the
//! faulting address lies in the running greenlet's guard region, and if so
//! prints
//!
//! ```text
//! greenlet 'conn' (#42) overflowed its 64 KiB stack
//! ```
//!
//! with a hint, then aborts. Every other fault is passed to the handler that
//! was installed before ours (normally Rust's own, which reports overflows of
//! thread stacks), so nothing else changes behaviour.
//!
//! Everything the handler does is async-signal-safe: it reads plain memory and
//! calls `write`, `sigaction` and `abort`.

use std::cell::Cell;
use std::sync::{Once, OnceLock};

use super::sys;

/// Installs our handler once per process.
static INSTALL: Once = Once::new();

/// The disposition of `SIGSEGV` before ours, to chain to: what `sigaction`
/// returned when it installed ours.
static PREVIOUS: OnceLock<libc::sigaction> = OnceLock::new();

/// The disposition of `SIGSEGV` read just before ours was installed. A fault
/// on another thread can reach our handler as soon as it is installed, before
/// `PREVIOUS` is stored; the handler then chains to this one, which is the
/// same unless some other code changed the disposition in between.
static QUERIED: OnceLock<libc::sigaction> = OnceLock::new();

/// Size of the alternate signal stack we give threads that have none.
const ALTSTACK_SIZE: usize = 64 * 1024;

thread_local! {
    /// Whether this thread was checked for an alternate signal stack.
    static ALTSTACK_READY: Cell<bool> = const { Cell::new(false) };
    /// The alternate signal stack we installed for this thread, if any.
    static ALTSTACK: AltStack = const { AltStack { base: Cell::new(0) } };
}

/// Installs the `SIGSEGV` handler (once per process) and makes sure this
/// thread has an alternate signal stack to run it on.
#[inline(always)]
pub(crate) fn ensure_handler() {
    if !ready().get() {
        prepare_thread();
    }
}

/// Whether this thread was prepared, as a plain reference.
#[inline(always)]
fn ready() -> &'static Cell<bool> {
    // SAFETY: a constant-initialised thread-local without destructor lives as
    // long as its thread; the reference stays on it (`Cell` is not `Sync`).
    ALTSTACK_READY.with(|ready| unsafe { &*(ready as *const Cell<bool>) })
}

#[cold]
fn prepare_thread() {
    INSTALL.call_once(install);
    ALTSTACK.with(AltStack::ensure);
    ready().set(true);
}

fn install() {
    // SAFETY: sigaction structs are plain data; zeroed is a valid "no flags,
    // empty mask, SIG_DFL" value.
    let mut queried: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: a null new action only queries, into a valid struct.
    if unsafe { libc::sigaction(libc::SIGSEGV, std::ptr::null(), &mut queried) } == 0 {
        let _ = QUERIED.set(queried);
    }
    // SAFETY: as above; filled in below.
    let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
    action.sa_sigaction = on_fault as *const () as libc::sighandler_t;
    action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
    // SAFETY: as above.
    let mut previous: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers are to valid sigaction structs; `on_fault` has the
    // signature SA_SIGINFO requires and is async-signal-safe.
    let installed = unsafe {
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaction(libc::SIGSEGV, &action, &mut previous)
    };
    if installed == 0 {
        let _ = PREVIOUS.set(previous);
    }
}

/// An alternate signal stack owned by this thread, freed at thread exit.
struct AltStack {
    base: Cell<usize>,
}

impl AltStack {
    fn ensure(&self) {
        // SAFETY: querying the current alternate stack only writes `current`.
        let mut current: libc::stack_t = unsafe { std::mem::zeroed() };
        // SAFETY: as above; a null new stack means "query only".
        if unsafe { libc::sigaltstack(std::ptr::null(), &mut current) } != 0 {
            return;
        }
        if current.ss_flags & libc::SS_DISABLE == 0 {
            return; // The thread already has one (Rust's runtime gives its threads one).
        }
        let page = sys::page_size();
        let Ok(base) = sys::reserve(page + ALTSTACK_SIZE) else { return };
        // SAFETY: the first page of our fresh reservation holds nothing.
        if unsafe { sys::install_guard(base, page) }.is_err() {
            // SAFETY: the reservation was just made and is unused.
            unsafe { sys::unreserve(base, page + ALTSTACK_SIZE, 0) };
            return;
        }
        let stack = libc::stack_t { ss_sp: (base + page) as *mut libc::c_void, ss_flags: 0, ss_size: ALTSTACK_SIZE };
        // SAFETY: `stack` describes memory we own for the life of the thread.
        if unsafe { libc::sigaltstack(&stack, std::ptr::null_mut()) } == 0 {
            self.base.set(base);
        } else {
            // SAFETY: not installed, so unused.
            unsafe { sys::unreserve(base, page + ALTSTACK_SIZE, 1) };
        }
    }
}

impl Drop for AltStack {
    fn drop(&mut self) {
        let base = self.base.get();
        if base == 0 {
            return;
        }
        let disable = libc::stack_t { ss_sp: std::ptr::null_mut(), ss_flags: libc::SS_DISABLE, ss_size: 0 };
        // SAFETY: disabling the alternate stack before unmapping it; the
        // mapping is ours and no signal handler runs on it now.
        unsafe {
            libc::sigaltstack(&disable, std::ptr::null_mut());
            sys::unreserve(base, sys::page_size() + ALTSTACK_SIZE, 1);
        }
    }
}

/// The `SIGSEGV` handler.
extern "C" fn on_fault(signal: libc::c_int, info: *mut libc::siginfo_t, context: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo for SA_SIGINFO handlers.
    let addr = unsafe { (*info).si_addr() } as usize;
    if crate::switch::describe_guard_fault(addr, report) {
        // SAFETY: abort is async-signal-safe.
        unsafe { libc::abort() };
    }
    chain(signal, info, context);
}

/// Prints the overflow report to stderr.
fn report(id: u64, name: Option<&str>, stack_size: usize) {
    let mut msg = Message::new();
    msg.push("\ngreenlet '");
    msg.push(name.unwrap_or("<unnamed>"));
    msg.push("' (#");
    msg.push_u64(id);
    msg.push(") overflowed its ");
    msg.push_u64((stack_size / 1024) as u64);
    msg.push(
        " KiB stack\nhint: give it a larger stack with `Builder::stack_size` (greenlet::Builder, \
         runtime::task::Builder or runtime::Builder for every greenlet of a runtime), \
         `StreamServer::stack_size` for connection handlers, or \
         `greenlet::stack::set_default_size` for this thread; large arrays belong on the heap\n",
    );
    // SAFETY: writing our own buffer to stderr; write is async-signal-safe.
    unsafe { libc::write(2, msg.buf.as_ptr().cast(), msg.len) };
}

/// Passes a fault that is not a greenlet overflow to the previous handler.
fn chain(signal: libc::c_int, info: *mut libc::siginfo_t, context: *mut libc::c_void) {
    let Some(previous) = PREVIOUS.get().or_else(|| QUERIED.get()) else { return reset_to_default(signal) };
    match previous.sa_sigaction {
        libc::SIG_DFL | libc::SIG_IGN => reset_to_default(signal),
        handler if previous.sa_flags & libc::SA_SIGINFO != 0 => {
            // SAFETY: the previous handler was registered with SA_SIGINFO, so
            // this is its real signature.
            let handler: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                unsafe { std::mem::transmute(handler) };
            handler(signal, info, context);
        }
        handler => {
            // SAFETY: without SA_SIGINFO a handler takes only the signal number.
            let handler: extern "C" fn(libc::c_int) = unsafe { std::mem::transmute(handler) };
            handler(signal);
        }
    }
}

/// Restores the default action; returning from the handler then re-executes
/// the faulting instruction, which now kills the process with the usual
/// signal (and core dump).
fn reset_to_default(signal: libc::c_int) {
    // SAFETY: zeroed is SIG_DFL with no flags and an empty mask.
    let action: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: a valid sigaction; sigaction is async-signal-safe.
    unsafe { libc::sigaction(signal, &action, std::ptr::null_mut()) };
}

/// A message assembled without allocating.
struct Message {
    buf: [u8; 512],
    len: usize,
}

impl Message {
    fn new() -> Message {
        Message { buf: [0; 512], len: 0 }
    }

    fn push(&mut self, s: &str) {
        let n = s.len().min(self.buf.len() - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
    }

    fn push_u64(&mut self, mut n: u64) {
        let mut digits = [0u8; 20];
        let mut i = digits.len();
        loop {
            i -= 1;
            digits[i] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        let s = std::str::from_utf8(&digits[i..]).unwrap_or("?");
        self.push(s);
    }
}
