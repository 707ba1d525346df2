//! Reads the current stack of a hub's thread from another thread, as
//! profilers do: a signal (`SIGURG`) to that thread, whose handler records
//! the return addresses of the interrupted code and a few facts about the
//! greenlet running there, into static buffers, without allocating or
//! locking. The caller resolves the addresses afterwards (see
//! [`util::frames`](crate::util::frames)).
//!
//! `SIGURG` is ignored by default and only sent for out-of-band socket data
//! to a process that asked for it (Go's scheduler takes it for the same
//! reason): the handler passes a signal it did not ask for on to whatever
//! handler was installed before. A program that installs its own `SIGURG`
//! handler later only loses the stacks in the blocking monitor's reports.
//!
//! The handler walks the stack with the system unwinder
//! (`_Unwind_Backtrace`), which reads unwind tables but neither allocates
//! nor takes a lock that the interrupted code could hold, except while a
//! shared library is being loaded or unloaded; the caller waits for it a
//! bounded time (the unwinder's own symbols are bound when the handler is
//! installed, so it does not enter the dynamic linker). It runs on an
//! alternate signal stack ([`SignalStack`], 64 KiB, for as long as the hub
//! runs), so that a greenlet near the end of its stack does not overflow.
//!
//! One sample at a time, process-wide: only the monitor thread asks.

use std::panic::Location;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicI32, AtomicPtr, AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::hub::counters::Counters;
use crate::hub::record::Task;
use crate::util::frames::MAX_FRAMES;

const SIGNAL: libc::c_int = libc::SIGURG;

const IDLE: u8 = 0;
const REQUESTED: u8 = 1;
const CAPTURING: u8 = 2;
const DONE: u8 = 3;

static STATE: AtomicU8 = AtomicU8::new(IDLE);
/// The thread asked for (its kernel id).
static TARGET: AtomicI32 = AtomicI32::new(0);
/// The counters of the hub on that thread.
static COUNTERS: AtomicPtr<Counters> = AtomicPtr::new(std::ptr::null_mut());
/// The greenlet expected to run there.
static EXPECTED: AtomicU64 = AtomicU64::new(0);

static FRAMES: [AtomicUsize; MAX_FRAMES] = [const { AtomicUsize::new(0) }; MAX_FRAMES];
static COUNT: AtomicUsize = AtomicUsize::new(0);
/// The interrupted instruction.
static PC: AtomicUsize = AtomicUsize::new(0);
/// Whether the expected greenlet was still running.
static STILL_RUNNING: AtomicU8 = AtomicU8::new(0);
const NAME_MAX: usize = 120;
static NAME: [AtomicU8; NAME_MAX] = [const { AtomicU8::new(0) }; NAME_MAX];
static NAME_LEN: AtomicUsize = AtomicUsize::new(0);
static SPAWNED_AT: AtomicPtr<Location<'static>> = AtomicPtr::new(std::ptr::null_mut());

/// The handler that was installed before ours, to pass foreign signals on.
static PREVIOUS: OnceLock<libc::sigaction> = OnceLock::new();

/// What the handler saw of the greenlet running on the sampled thread.
#[derive(Debug)]
pub(crate) struct Sample {
    /// Return addresses, innermost first, starting at the interrupted code.
    pub(crate) ips: Vec<usize>,
    pub(crate) name: Option<String>,
    pub(crate) spawned_at: Option<&'static Location<'static>>,
}

/// The thread a hub runs on, as the sampler needs it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct HubThread {
    pthread: libc::pthread_t,
    tid: libc::pid_t,
}

impl HubThread {
    /// The calling thread.
    pub(crate) fn current() -> HubThread {
        // SAFETY: neither call has preconditions.
        unsafe { HubThread { pthread: libc::pthread_self(), tid: libc::gettid() } }
    }
}

/// An alternate signal stack for the calling thread, large enough for the
/// handler, for as long as this value lives; the thread's previous one is
/// put back on drop. Must be dropped on the thread that made it.
#[derive(Debug)]
pub(crate) struct SignalStack {
    base: usize,
    len: usize,
    previous: libc::stack_t,
}

impl SignalStack {
    const SIZE: usize = 64 * 1024;

    /// `None` if the thread's stack is large enough already, or none can be
    /// had (the handler then runs on the interrupted stack).
    pub(crate) fn ensure() -> Option<SignalStack> {
        // SAFETY: `sigaltstack` with a null new stack only reads the current
        // one into a valid `stack_t`.
        let mut previous: libc::stack_t = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        if unsafe { libc::sigaltstack(std::ptr::null(), &mut previous) } != 0 {
            return None;
        }
        if previous.ss_flags & libc::SS_DISABLE == 0 && previous.ss_size >= Self::SIZE {
            return None;
        }
        let len = Self::SIZE;
        // SAFETY: a fresh anonymous mapping aliases nothing.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return None;
        }
        let stack = libc::stack_t { ss_sp: base, ss_flags: 0, ss_size: len };
        // SAFETY: the mapping stays until `drop` has put the previous stack
        // back.
        if unsafe { libc::sigaltstack(&stack, std::ptr::null_mut()) } != 0 {
            // SAFETY: our mapping, used by nothing.
            unsafe { libc::munmap(base, len) };
            return None;
        }
        Some(SignalStack { base: base as usize, len, previous })
    }
}

impl Drop for SignalStack {
    fn drop(&mut self) {
        // SAFETY: on the thread that installed it (the hub's), where no
        // handler is running: the previous stack goes back first, then ours
        // is unmapped.
        unsafe {
            libc::sigaltstack(&self.previous, std::ptr::null_mut());
            libc::munmap(self.base as *mut libc::c_void, self.len);
        }
    }
}

/// Installs the handler, once per process; false if it cannot be.
pub(crate) fn install() -> bool {
    static INSTALLED: OnceLock<bool> = OnceLock::new();
    *INSTALLED.get_or_init(|| {
        // SAFETY: `sigaction` is given valid pointers to initialised values;
        // the handler is an `extern "C"` function that never unwinds.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = handler as *const () as usize;
            action.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART | libc::SA_ONSTACK;
            libc::sigemptyset(&mut action.sa_mask);
            let mut previous: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(SIGNAL, &action, &mut previous) != 0 {
                return false;
            }
            let _ = PREVIOUS.set(previous);
        }
        // Binds the unwinder's lazily bound symbols now, rather than in the
        // handler (the dynamic linker is neither async-signal-safe nor frugal
        // with stack).
        backtrace::trace(|_| false);
        true
    })
}

/// Samples the stack of `thread`, on which the hub with `counters` runs
/// greenlet `expected`. `None` if the handler did not answer within `wait`,
/// or that greenlet no longer ran when it did.
///
/// The caller must keep `thread` alive (its hub running) until this returns,
/// and `counters` alive.
pub(crate) fn sample(thread: HubThread, counters: &Counters, expected: u64, wait: Duration) -> Option<Sample> {
    if !install() || STATE.load(Ordering::Acquire) != IDLE {
        return None;
    }
    TARGET.store(thread.tid, Ordering::Relaxed);
    COUNTERS.store(std::ptr::from_ref(counters).cast_mut(), Ordering::Relaxed);
    EXPECTED.store(expected, Ordering::Relaxed);
    STATE.store(REQUESTED, Ordering::Release);
    // SAFETY: the caller keeps the thread alive; a failure (it has exited
    // after all) only means no answer comes.
    if unsafe { libc::pthread_kill(thread.pthread, SIGNAL) } != 0 {
        STATE.store(IDLE, Ordering::Release);
        return None;
    }
    let deadline = Instant::now() + wait;
    loop {
        match STATE.load(Ordering::Acquire) {
            DONE => break,
            // Not delivered yet (or the signal is blocked there): give up,
            // unless the handler starts meanwhile.
            REQUESTED if Instant::now() >= deadline => {
                if STATE.compare_exchange(REQUESTED, IDLE, Ordering::AcqRel, Ordering::Acquire).is_ok() {
                    return None;
                }
            }
            // A capture in progress always finishes.
            _ => std::thread::sleep(Duration::from_micros(200)),
        }
    }
    let sample = (STILL_RUNNING.load(Ordering::Relaxed) == 1).then(|| {
        let count = COUNT.load(Ordering::Relaxed);
        let mut ips: Vec<usize> = FRAMES[..count].iter().map(|ip| ip.load(Ordering::Relaxed)).collect();
        // Drop the handler's own frames: the stack starts at the interrupted
        // instruction (the unwinder may report it one byte on).
        let pc = PC.load(Ordering::Relaxed);
        if let Some(at) = ips.iter().position(|&ip| ip.abs_diff(pc) <= 1) {
            ips.drain(..at);
            // Resolved as a return address (one byte back), it must stay in
            // its instruction's function.
            ips[0] = pc + 1;
        }
        let name_len = NAME_LEN.load(Ordering::Relaxed);
        let name: Vec<u8> = NAME[..name_len].iter().map(|b| b.load(Ordering::Relaxed)).collect();
        let spawned_at = SPAWNED_AT.load(Ordering::Relaxed);
        Sample {
            ips,
            name: (name_len > 0).then(|| String::from_utf8_lossy(&name).into_owned()),
            // SAFETY: only ever set from a `&'static Location<'static>`.
            spawned_at: (!spawned_at.is_null()).then(|| unsafe { &*spawned_at }),
        }
    });
    STATE.store(IDLE, Ordering::Release);
    sample
}

/// The signal handler: see the module docs. Async-signal-safe: it reads
/// memory, calls the unwinder and `gettid`, and writes atomics.
extern "C" fn handler(signal: libc::c_int, info: *mut libc::siginfo_t, context: *mut libc::c_void) {
    // SAFETY: `gettid` has no preconditions.
    let ours = unsafe { libc::gettid() } == TARGET.load(Ordering::Relaxed)
        && STATE.compare_exchange(REQUESTED, CAPTURING, Ordering::AcqRel, Ordering::Acquire).is_ok();
    if !ours {
        pass_on(signal, info, context);
        return;
    }
    // SAFETY: reading `errno` of this thread.
    let errno = unsafe { *libc::__errno_location() };
    // SAFETY: the sampler keeps the counters alive until the state is DONE;
    // they are only read here.
    let counters = unsafe { &*COUNTERS.load(Ordering::Relaxed) };
    let expected = EXPECTED.load(Ordering::Relaxed);
    let still = counters.running.load(Ordering::Relaxed) == expected;
    STILL_RUNNING.store(u8::from(still), Ordering::Relaxed);
    if still {
        let task = counters.running_task.load(Ordering::Relaxed).cast_const().cast::<Task>();
        // SAFETY: the hub publishes the running task before it resumes it
        // and keeps it alive (as its current task) until it has cleared
        // `running`; this handler runs on the hub's thread, in between, so
        // nothing changes the task while it reads it.
        let task = unsafe { &*task };
        let name = task.name().map_or(&[][..], |name| name.as_bytes());
        let len = name.len().min(NAME_MAX);
        for (slot, byte) in NAME.iter().zip(&name[..len]) {
            slot.store(*byte, Ordering::Relaxed);
        }
        NAME_LEN.store(len, Ordering::Relaxed);
        SPAWNED_AT.store(std::ptr::from_ref(task.spawned_at()).cast_mut(), Ordering::Relaxed);
        PC.store(interrupted_pc(context), Ordering::Relaxed);
        let mut count = 0;
        // SAFETY: the closure neither panics nor allocates, and the walk
        // happens on this thread's own stack; see the module docs about
        // the unwinder in a signal handler.
        unsafe {
            backtrace::trace_unsynchronized(|frame| {
                FRAMES[count].store(frame.ip() as usize, Ordering::Relaxed);
                count += 1;
                count < MAX_FRAMES
            });
        }
        COUNT.store(count, Ordering::Relaxed);
    }
    STATE.store(DONE, Ordering::Release);
    // SAFETY: restoring this thread's `errno`.
    unsafe { *libc::__errno_location() = errno };
}

/// The instruction the signal interrupted.
fn interrupted_pc(context: *mut libc::c_void) -> usize {
    let context = context.cast::<libc::ucontext_t>();
    // SAFETY: the kernel passes a valid `ucontext_t` to an `SA_SIGINFO`
    // handler.
    #[cfg(target_arch = "x86_64")]
    let pc = unsafe { (*context).uc_mcontext.gregs[libc::REG_RIP as usize] as usize };
    // SAFETY: as above.
    #[cfg(target_arch = "aarch64")]
    let pc = unsafe { (*context).uc_mcontext.pc as usize };
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    let pc = {
        let _ = context;
        0
    };
    pc
}

/// Hands a signal that was not ours to the handler installed before.
fn pass_on(signal: libc::c_int, info: *mut libc::siginfo_t, context: *mut libc::c_void) {
    let Some(previous) = PREVIOUS.get() else { return };
    let handler = previous.sa_sigaction;
    if handler == libc::SIG_DFL || handler == libc::SIG_IGN {
        return; // SIGURG's default is to be ignored
    }
    if previous.sa_flags & libc::SA_SIGINFO != 0 {
        // SAFETY: the previous handler was installed for this signal with
        // this signature.
        let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
            unsafe { std::mem::transmute(handler) };
        f(signal, info, context);
    } else {
        // SAFETY: as above, with the one-argument signature.
        let f: extern "C" fn(libc::c_int) = unsafe { std::mem::transmute(handler) };
        f(signal);
    }
}
