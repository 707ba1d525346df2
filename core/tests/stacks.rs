//! Greenlet stacks: the per-thread pool, guard pages, overflow reports and
//! allocation failures, checked against what the kernel sees
//! (`/proc/self/maps`, `VmRSS`).
//!
//! Tests that crash on purpose (stack overflows, stray writes) or that starve
//! the process of address space run their scenario in a child process: the
//! test re-executes this test binary with `--exact <its own name>` and an
//! environment variable naming the scenario, and checks how the child died and
//! what it printed. Tests that measure the whole process (mappings, RSS) or
//! allocate many stacks hold [`PROCESS`] so they do not disturb each other.

use std::cell::Cell;
use std::hint::black_box;
use std::os::unix::process::ExitStatusExt;
use std::panic::{self, AssertUnwindSafe};
use std::process::Output;
use std::rc::Rc;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use greenlet::stack::{self, GuardKind, Stats};
use greenlet::{Builder, Greenlet, Value, getcurrent};
use runtime_testkit::{ChildTest, child_role, output_text};

/// The first line of the hint printed after an overflow report.
const HINT: &str = "hint: give it a larger stack with `Builder::stack_size`";

/// Serialises the tests that measure or load the whole process.
static PROCESS: Mutex<()> = Mutex::new(());

fn process_lock() -> MutexGuard<'static, ()> {
    PROCESS.lock().unwrap_or_else(PoisonError::into_inner)
}

// ---------------------------------------------------------------------------
// Helpers

/// Builds a greenlet that suspends back to its parent as soon as it starts,
/// and finishes when switched to again.
fn parker(builder: Builder) -> Greenlet {
    builder.build(|_| {
        // Bound first so that no handle to this greenlet stays on its stack.
        let parent = getcurrent().parent().expect("a greenlet has a parent");
        parent.switch(Box::new(()))
    })
}

/// Starts a [`parker`]: returns once it is suspended in its first switch.
fn park(builder: Builder) -> Greenlet {
    let g = parker(builder);
    g.switch(Box::new(()));
    assert!(g.is_active(), "a parked greenlet is active");
    g
}

/// Lets a parked greenlet run to completion.
fn finish(g: &Greenlet) {
    g.switch(Box::new(()));
    assert!(g.is_dead(), "the greenlet finished");
}

/// Runs `f` on a new thread, whose stack pool and settings start out empty,
/// and propagates its panic.
fn on_fresh_thread<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    match std::thread::spawn(f).join() {
        Ok(value) => value,
        Err(payload) => panic::resume_unwind(payload),
    }
}

/// The current stack pointer.
#[inline(always)]
fn stack_pointer() -> usize {
    let sp: usize;
    #[cfg(target_arch = "x86_64")]
    // SAFETY: reads a register; touches no memory, stack or flags.
    unsafe {
        std::arch::asm!("mov {}, rsp", out(reg) sp, options(nomem, nostack, preserves_flags))
    };
    #[cfg(target_arch = "aarch64")]
    // SAFETY: reads a register; touches no memory, stack or flags.
    unsafe {
        std::arch::asm!("mov {}, sp", out(reg) sp, options(nomem, nostack, preserves_flags))
    };
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        let here = 0u8;
        sp = black_box(&here) as *const u8 as usize;
    }
    sp
}

/// Recurses `depth` times with a 1 KiB frame that cannot be optimised away,
/// so that each level uses at least 1 KiB of stack.
#[inline(never)]
fn recurse(depth: u64) -> u64 {
    let mut frame = [0u8; 1024];
    frame[0] = depth as u8;
    black_box(&mut frame);
    if depth == 0 {
        return u64::from(frame[1]);
    }
    recurse(depth - 1).wrapping_add(u64::from(frame[2]))
}

fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(page).expect("the page size is positive")
}

/// A field of `/proc/self/status` in bytes (the file gives kB).
fn status_bytes(field: &str) -> usize {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    let line = status.lines().find(|l| l.starts_with(field)).unwrap_or_else(|| panic!("no {field} in status"));
    let kb: usize = line[field.len()..].trim().trim_end_matches("kB").trim().parse().expect("a number of kB");
    kb * 1024
}

fn rss_bytes() -> usize {
    status_bytes("VmRSS:")
}

/// Memory mappings of this process: lines of `/proc/self/maps`.
fn mappings() -> usize {
    std::fs::read_to_string("/proc/self/maps").expect("read /proc/self/maps").lines().count()
}

fn max_map_count() -> usize {
    std::fs::read_to_string("/proc/sys/vm/max_map_count").ok().and_then(|s| s.trim().parse().ok()).unwrap_or(65530)
}

/// The guard kind of this process, deciding it (by starting a greenlet) if no
/// stack was made yet.
fn decided_guard_kind() -> GuardKind {
    if stack::guard_kind() == GuardKind::Undecided {
        finish(&park(Builder::new()));
    }
    stack::guard_kind()
}

fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "<non-string panic payload>".to_owned()
    }
}

/// A re-execution of this test binary running only `test`, in the role
/// `role`. The child's backtrace setting is cleared so its reports look as
/// users see them by default.
fn child_test(test: &str, role: &str, env: &[(&str, &str)]) -> ChildTest {
    ChildTest::new(test).role(role).envs(env).env_remove("RUST_BACKTRACE")
}

fn assert_killed_by(output: &Output, signal: libc::c_int) {
    assert_eq!(output.status.signal(), Some(signal), "expected death by signal {signal}: {}", output_text(output));
}

/// A child that is about to crash on purpose: keeps it from writing a core
/// file (also when core files are piped to a collector, which ignores
/// `RLIMIT_CORE`).
fn no_core_dumps() {
    let zero = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: setrlimit and prctl only change this process's own limits and
    // flags, through a valid rlimit struct.
    unsafe {
        libc::setrlimit(libc::RLIMIT_CORE, &zero);
        libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0);
    }
}

/// In a child: starts a greenlet named `name` with a 16 KiB stack that
/// recurses until it overflows. Never returns normally.
fn overflow_named_greenlet(name: &str) -> ! {
    no_core_dumps();
    let g = Greenlet::builder().name(name).stack_size(16 * 1024).build(|_| Box::new(recurse(u64::MAX)));
    g.switch(Box::new(()));
    panic!("the greenlet returned instead of overflowing");
}

/// Checks a child that ran [`overflow_named_greenlet`].
fn assert_overflow_reported(output: &Output, name: &str) {
    assert_killed_by(output, libc::SIGABRT);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("greenlet '{name}' (#")),
        "no report naming the greenlet: {}",
        output_text(output)
    );
    assert!(stderr.contains("overflowed its 16 KiB stack"), "no stack size in the report: {}", output_text(output));
    assert!(stderr.contains(HINT), "no hint: {}", output_text(output));
    for knob in ["runtime::Builder", "StreamServer::stack_size", "set_default_size"] {
        assert!(stderr.contains(knob), "the hint names {knob}: {}", output_text(output));
    }
    assert!(!stderr.contains("has overflowed its stack"), "Rust's thread report too: {}", output_text(output));
}

/// The guard kind the child reported with `guard kind: ...`.
fn child_guard_kind(output: &Output) -> Option<&'static str> {
    let stderr = String::from_utf8_lossy(&output.stderr);
    ["Madvise", "Mprotect"].into_iter().find(|kind| stderr.contains(&format!("guard kind: {kind}")))
}

// ---------------------------------------------------------------------------
// Many parked greenlets

/// 100,000 greenlets parked at once share a few reservations; all of them
/// finish afterwards, and `trim` gives everything back.
#[test]
fn hundred_thousand_parked_greenlets() {
    let _lock = process_lock();
    let kind = decided_guard_kind();
    let start = stack::stats();
    let maps_before = mappings();
    // With mprotect guards every stack costs two mappings: stay under the limit.
    let count = match kind {
        GuardKind::Madvise => 100_000,
        _ => 100_000.min(max_map_count().saturating_sub(maps_before + 2_000) / 2),
    };

    let mut parked = Vec::with_capacity(count);
    for _ in 0..count {
        parked.push(park(Builder::new()));
    }
    let during = stack::stats();
    let maps_during = mappings();
    eprintln!("{count} parked: {during:?}, mappings {maps_before} -> {maps_during}, guards by {kind:?}");
    assert_eq!(during.in_use, start.in_use + count, "{during:?}");
    assert!(parked.iter().all(Greenlet::is_active));
    if kind == GuardKind::Madvise {
        assert!(during.chunks * 1000 < count, "{} chunks for {count} stacks", during.chunks);
        let added = maps_during.saturating_sub(maps_before);
        assert!(added < 1_000, "{added} new mappings for {count} parked greenlets ({during:?})");
    } else {
        // Each guard splits its reservation.
        assert!(maps_during >= maps_before + count, "{maps_before} -> {maps_during} mappings");
    }

    for g in &parked {
        finish(g);
    }
    let after = stack::stats();
    assert_eq!(after.in_use, start.in_use, "{after:?}");
    // Every stack is idle now; the ones idle at the start were reused first.
    let idle_before = start.idle_warm + start.idle_cold;
    assert_eq!(after.idle_warm + after.idle_cold, idle_before.max(count), "{after:?}");
    drop(parked);

    stack::trim();
    let trimmed = stack::stats();
    assert_eq!(trimmed.chunks, start.chunks, "{trimmed:?}");
    assert_eq!(trimmed.reserved_bytes, start.reserved_bytes, "{trimmed:?}");
    assert_eq!(trimmed.in_use, start.in_use, "{trimmed:?}");
    let maps_after = mappings();
    assert!(maps_after < maps_before + 100, "mappings {maps_before} -> {maps_during} -> {maps_after} after trim");
}

/// A burst of greenlets that finished in any order leaves its stacks to the
/// next burst in address order: consecutive greenlets get neighbouring
/// stacks, which the hardware's caches of page tables serve well, instead of
/// stacks scattered over the whole reservation.
#[test]
fn a_burst_reuses_idle_stacks_in_address_order() {
    const COUNT: usize = 4096;
    let _lock = process_lock();
    on_fresh_thread(|| {
        let first: Vec<Greenlet> = (0..COUNT).map(|_| park(Builder::new())).collect();
        // Finish them in a scrambled order (a stride coprime to COUNT).
        for i in 0..COUNT {
            finish(&first[i * 1531 % COUNT]);
        }
        drop(first);
        // Where each new greenlet's stack is: its stack pointer as it starts
        // (read from the register, since a sanitizer may move locals off the
        // stack).
        let spot = Rc::new(Cell::new(0usize));
        let mut second = Vec::with_capacity(COUNT);
        let mut tops = Vec::with_capacity(COUNT);
        for _ in 0..COUNT {
            let seen = spot.clone();
            let g = Greenlet::new(move |_| {
                seen.set(stack_pointer());
                let parent = getcurrent().parent().expect("a greenlet has a parent");
                parent.switch(Box::new(()))
            });
            g.switch(Box::new(()));
            tops.push(spot.get());
            second.push(g);
        }
        for g in &second {
            finish(g);
        }
        let ascending = tops.windows(2).filter(|w| w[0] < w[1]).count();
        assert!(ascending >= COUNT - 2, "only {ascending} of {} steps go up: {:x?}", COUNT - 1, &tops[..16]);
    });
}

// ---------------------------------------------------------------------------
// Overflow reports (child processes)

/// A greenlet that overflows its stack is reported by name and stack size,
/// and the process aborts.
#[test]
fn overflow_is_reported() {
    const TEST: &str = "overflow_is_reported";
    if child_role().is_some() {
        eprintln!("guard kind: {:?}", decided_guard_kind());
        overflow_named_greenlet("deep-diver");
    }
    let _lock = process_lock();
    let output = child_test(TEST, "overflow", &[]).run();
    assert_overflow_reported(&output, "deep-diver");
    // The child makes guards the way this process does.
    let parent_kind = format!("{:?}", decided_guard_kind());
    assert_eq!(child_guard_kind(&output), Some(parent_kind.as_str()), "{}", output_text(&output));
}

/// The same with guards made by `mprotect`, the fallback for kernels before
/// 6.13.
#[test]
fn overflow_is_reported_with_mprotect_guards() {
    const TEST: &str = "overflow_is_reported_with_mprotect_guards";
    if child_role().is_some() {
        eprintln!("guard kind: {:?}", decided_guard_kind());
        overflow_named_greenlet("deep-diver-mprotect");
    }
    let _lock = process_lock();
    let output = child_test(TEST, "overflow", &[("GREENLET_GUARD", "mprotect")]).run();
    assert_overflow_reported(&output, "deep-diver-mprotect");
    assert_eq!(child_guard_kind(&output), Some("Mprotect"), "{}", output_text(&output));
}

/// A revived greenlet that kept its stack (see `Greenlet::revive`) still has
/// its guard, and its overflow is reported by name and stack size.
#[test]
fn a_revived_greenlet_that_kept_its_stack_overflows_cleanly() {
    const TEST: &str = "a_revived_greenlet_that_kept_its_stack_overflows_cleanly";
    if child_role().is_some() {
        no_core_dumps();
        let mut g = Greenlet::builder().name("warm-diver").stack_size(16 * 1024).build(|v| v);
        for _ in 0..2 {
            g.switch(Box::new(()));
            assert!(g.is_dead() && g.revive(|v| v).is_ok());
        }
        let kept = stack::stats().in_use;
        g.switch(Box::new(()));
        assert!(g.revive(|_| Box::new(recurse(u64::MAX))).is_ok());
        assert_eq!(stack::stats().in_use, kept, "it runs on the stack it kept");
        g.switch(Box::new(()));
        panic!("the greenlet returned instead of overflowing");
    }
    let _lock = process_lock();
    let output = child_test(TEST, "overflow", &[]).run();
    assert_overflow_reported(&output, "warm-diver");
}

/// Guards are installed many at a time, ahead of the stacks that need them:
/// a stack well past the first ones, in the middle of such a batch, still
/// catches an overflow; so it does with one `madvise` or `mprotect` per guard.
#[test]
fn overflow_is_reported_on_a_stack_guarded_ahead() {
    const TEST: &str = "overflow_is_reported_on_a_stack_guarded_ahead";
    if child_role().is_some() {
        eprintln!("guard kind: {:?}", decided_guard_kind());
        let parked: Vec<Greenlet> = (0..100).map(|_| park(Builder::new().stack_size(16 * 1024))).collect();
        black_box(&parked);
        overflow_named_greenlet("diver-past-a-hundred");
    }
    let _lock = process_lock();
    for guard in ["", "madvise", "mprotect"] {
        let env: &[(&str, &str)] = if guard.is_empty() { &[] } else { &[("GREENLET_GUARD", guard)] };
        let output = child_test(TEST, "overflow", env).run();
        assert_overflow_reported(&output, "diver-past-a-hundred");
    }
}

/// After `MADV_DONTNEED` recycling, a reused stack still has its guard.
///
/// Eight adjacent stacks are dirtied, finished and discarded together
/// (`set_idle_limit(0)` sends every idle stack cold; adjacent slots are
/// discarded with one call whose range spans the guards between them). Eight
/// new greenlets then run on exactly those stacks, and the one highest in
/// memory, whose guard lay inside the discarded range, overflows.
#[test]
fn recycled_stack_still_overflows_cleanly() {
    const TEST: &str = "recycled_stack_still_overflows_cleanly";
    const STACKS: usize = 8;
    if child_role().is_some() {
        no_core_dumps();
        // Parks a 16 KiB greenlet that records where its stack is; when
        // resumed with `true` it recurses until it overflows, with `false`
        // it dirties a few pages and finishes.
        let spawn = |name: String| {
            let at = Rc::new(Cell::new(0usize));
            let here = at.clone();
            let g = Greenlet::builder().name(name).stack_size(16 * 1024).build(move |_| {
                let marker = 0u8;
                here.set(&marker as *const u8 as usize);
                let parent = getcurrent().parent().expect("a greenlet has a parent");
                let overflow = *parent.switch(Box::new(())).downcast::<bool>().expect("an order");
                Box::new(recurse(if overflow { u64::MAX } else { 4 }))
            });
            g.switch(Box::new(()));
            (g, at)
        };

        let first: Vec<_> = (0..STACKS).map(|i| spawn(format!("first-{i}"))).collect();
        for (g, _) in &first {
            g.switch(Box::new(false));
            assert!(g.is_dead());
        }
        stack::set_idle_limit(0);
        let s = stack::stats();
        assert_eq!((s.in_use, s.idle_warm, s.idle_cold, s.chunks), (0, 0, STACKS, 1), "all discarded: {s:?}");
        eprintln!("guard kind: {:?}", stack::guard_kind());

        let mut recycled: Vec<_> = (0..STACKS).map(|i| spawn(format!("recycled-{i}"))).collect();
        let s = stack::stats();
        assert_eq!((s.in_use, s.idle_cold, s.chunks), (STACKS, 0, 1), "only discarded stacks reused: {s:?}");
        // Same code, same depth: a stack's marker is at the same address.
        let mut old: Vec<usize> = first.iter().map(|(_, at)| at.get()).collect();
        let mut new: Vec<usize> = recycled.iter().map(|(_, at)| at.get()).collect();
        old.sort_unstable();
        new.sort_unstable();
        assert_eq!(old, new, "the same stacks");

        recycled.sort_by_key(|(_, at)| at.get());
        let (top, _) = recycled.pop().expect("eight greenlets");
        eprintln!("overflowing {} on a discarded stack", top.name().unwrap_or_default());
        top.switch(Box::new(true));
        panic!("the recycled greenlet returned instead of overflowing");
    }
    let _lock = process_lock();
    for (env, kind) in [(&[][..], None), (&[("GREENLET_GUARD", "mprotect")][..], Some("Mprotect"))] {
        let output = child_test(TEST, "recycled", env).run();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("on a discarded stack"), "{}", output_text(&output));
        let named = stderr
            .lines()
            .find_map(|l| l.strip_prefix("overflowing ").and_then(|r| r.split(' ').next()))
            .expect("the child names the greenlet")
            .to_owned();
        assert_overflow_reported(&output, &named);
        if let Some(kind) = kind {
            assert_eq!(child_guard_kind(&output), Some(kind), "{}", output_text(&output));
        }
    }
}

/// A segfault that is not a greenlet overflow goes to the previous handler:
/// the process still dies of SIGSEGV, and no greenlet is blamed. Checked both
/// inside a running greenlet and on the thread's own stack.
#[test]
fn other_segfaults_are_passed_on() {
    const TEST: &str = "other_segfaults_are_passed_on";
    if let Some(role) = child_role() {
        no_core_dumps();
        // Install the handler: it is set up when the first stack is made.
        let parked = park(Greenlet::builder().name("bystander"));
        let write_stray = || {
            // SAFETY: not safe at all, on purpose: this runs only in a child
            // process started to die of this fault. Address 0x10 is never
            // mapped, so the write raises SIGSEGV.
            unsafe { std::ptr::write_volatile(0x10 as *mut u8, 1) };
        };
        if role == "in-greenlet" {
            let g = Greenlet::builder().name("stray-writer").build(move |_| {
                write_stray();
                Box::new(())
            });
            g.switch(Box::new(()));
        } else {
            write_stray();
        }
        drop(parked);
        panic!("the stray write did not fault");
    }
    let _lock = process_lock();
    for role in ["in-greenlet", "on-thread"] {
        let output = child_test(TEST, role, &[]).run();
        assert_killed_by(&output, libc::SIGSEGV);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!stderr.contains("greenlet '"), "{role}: a greenlet was blamed: {}", output_text(&output));
        assert!(!stderr.contains("overflowed"), "{role}: reported as an overflow: {}", output_text(&output));
    }
}

/// An overflow of a thread's own stack (the main greenlet's) still gets
/// Rust's report: the greenlet handler chains to Rust's.
#[test]
fn thread_stack_overflow_gets_rusts_report() {
    const TEST: &str = "thread_stack_overflow_gets_rusts_report";
    if child_role().is_some() {
        no_core_dumps();
        // Install the greenlet handler first.
        finish(&park(Greenlet::builder().name("bystander")));
        black_box(recurse(u64::MAX));
        panic!("the thread's stack did not overflow");
    }
    let _lock = process_lock();
    let output = child_test(TEST, "thread-overflow", &[]).run();
    assert_killed_by(&output, libc::SIGABRT);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("has overflowed its stack"), "no Rust report: {}", output_text(&output));
    assert!(!stderr.contains("greenlet '"), "a greenlet was blamed: {}", output_text(&output));
}

// ---------------------------------------------------------------------------
// Running out of memory (child process)

/// When no stack can be had because the address space is exhausted, starting
/// a greenlet panics in the caller with a message naming the cause; the
/// greenlet stays pending, and everything that already runs carries on.
#[test]
fn stack_allocation_failure_panics_in_the_starter() {
    const TEST: &str = "stack_allocation_failure_panics_in_the_starter";
    if child_role().is_some() {
        run_out_of_stacks(Scarce::AddressSpace);
        return;
    }
    let _lock = process_lock();
    let output = child_test(TEST, "out-of-address-space", &[]).run();
    assert_out_of_stacks_handled(&output);
}

/// The same when memory mappings run out: with `mprotect` guards every stack
/// costs two mappings, so `vm.max_map_count` is reached after about half as
/// many stacks.
#[test]
fn mapping_exhaustion_panics_in_the_starter() {
    const TEST: &str = "mapping_exhaustion_panics_in_the_starter";
    if child_role().is_some() {
        run_out_of_stacks(Scarce::Mappings);
        return;
    }
    let limit = max_map_count();
    if limit > 262_144 {
        eprintln!("skipped: vm.max_map_count is {limit}, too many stacks to park in a test");
        return;
    }
    let _lock = process_lock();
    let output = child_test(TEST, "out-of-mappings", &[("GREENLET_GUARD", "mprotect")]).run();
    assert_out_of_stacks_handled(&output);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(&format!("vm.max_map_count is {limit}")), "{}", output_text(&output));
}

/// Once mappings are exhausted, finishing the parked greenlets must not need
/// memory: their stacks go back to the pool, and nothing else.
///
/// Currently fails: `Pool::release` pushes the stack onto the idle lists
/// (`warm`, then `cold` in `Pool::cool_down`), and once those `Vec`s must grow
/// the allocation fails, because with every mapping used malloc can neither
/// `mmap` nor move `brk`, and the process aborts with "memory allocation of
/// 524288 bytes failed". `MALLOC_ARENA_MAX=1` puts this test thread's heap in
/// the `brk` arena, as on a program's main thread; a thread with an arena of
/// its own happens to have room left.
#[test]
fn stacks_are_released_without_allocating_after_mapping_exhaustion() {
    const TEST: &str = "stacks_are_released_without_allocating_after_mapping_exhaustion";
    if child_role().is_some() {
        run_out_of_stacks(Scarce::Mappings);
        return;
    }
    let limit = max_map_count();
    if limit > 262_144 {
        eprintln!("skipped: vm.max_map_count is {limit}, too many stacks to park in a test");
        return;
    }
    let _lock = process_lock();
    let env = [("GREENLET_GUARD", "mprotect"), ("MALLOC_ARENA_MAX", "1")];
    let output = child_test(TEST, "out-of-mappings-one-arena", &env).run();
    assert_out_of_stacks_handled(&output);
}

/// Running out of stacks for lack of mappings must leave the process enough
/// mappings to report it: here the panic hook prints a backtrace, which maps
/// debug information and allocates.
///
/// Currently fails: the pool takes mappings until `vm.max_map_count` refuses
/// one, so the report itself runs out of memory; with Rust 1.95 the
/// allocation-failure handler then waits for the backtrace lock that the
/// panic hook holds, and the child hangs until it is killed.
#[test]
fn mapping_exhaustion_leaves_room_to_report_it() {
    const TEST: &str = "mapping_exhaustion_leaves_room_to_report_it";
    if child_role().is_some() {
        run_out_of_stacks(Scarce::Mappings);
        return;
    }
    let limit = max_map_count();
    if limit > 262_144 {
        eprintln!("skipped: vm.max_map_count is {limit}, too many stacks to park in a test");
        return;
    }
    let _lock = process_lock();
    let env = [("GREENLET_GUARD", "mprotect"), ("MALLOC_ARENA_MAX", "1"), ("RUST_BACKTRACE", "1")];
    let output = child_test(TEST, "out-of-mappings-backtrace", &env).deadline(Duration::from_secs(10)).run();
    assert_out_of_stacks_handled(&output);
}

fn assert_out_of_stacks_handled(output: &Output) {
    assert_eq!(output.status.code(), Some(0), "{}", output_text(output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("start failed from main: "), "the child did not get that far: {}", output_text(output));
    assert!(stderr.contains("could not allocate a 64 KiB greenlet stack"), "{}", output_text(output));
    assert!(stderr.contains("out of memory or address space"), "{}", output_text(output));
    assert!(stderr.contains("ulimit -v"), "{}", output_text(output));
    assert!(stderr.contains("vm.max_map_count"), "{}", output_text(output));
    assert!(stderr.contains("start failed from a greenlet: "), "{}", output_text(output));
    assert!(stderr.contains("all parked greenlets finished"), "{}", output_text(output));
}

/// What runs out in [`run_out_of_stacks`].
#[derive(Clone, Copy, Debug, PartialEq)]
enum Scarce {
    /// `RLIMIT_AS` is lowered a little above what is in use.
    AddressSpace,
    /// Stacks are made until `vm.max_map_count` is reached (with `mprotect`
    /// guards, which cost mappings).
    Mappings,
}

/// The child side: parks greenlets until the next one cannot get a stack,
/// then checks that the failure is reported to whoever started it and that
/// everything else still works.
fn run_out_of_stacks(scarce: Scarce) {
    let max_parked = match scarce {
        Scarce::AddressSpace => 100_000,
        Scarce::Mappings => max_map_count() / 2 + 10_000,
    };
    // Everything that needs fresh address space or mappings is set up first:
    // the pool, the signal handler, this thread's malloc arena, the vector.
    let mut parked: Vec<Greenlet> = Vec::with_capacity(max_parked);
    parked.push(park(Builder::new()));
    eprintln!("guard kind: {:?}", stack::guard_kind());
    if scarce == Scarce::Mappings {
        assert_eq!(stack::guard_kind(), GuardKind::Mprotect, "mprotect guards are needed to use up mappings");
    }

    // A greenlet that, once resumed, tries to start another one itself.
    let starter = Greenlet::builder().name("starter").build(|_| {
        let parent = getcurrent().parent().expect("a greenlet has a parent");
        parent.switch(Box::new(()));
        let target = Greenlet::builder().name("inner-target").build(|v| v);
        let caught = panic::catch_unwind(AssertUnwindSafe(|| target.switch(Box::new(()))));
        let message = caught.err().map(|payload| panic_text(&*payload));
        Box::new((message, target.is_started())) as Value
    });
    starter.switch(Box::new(()));

    let mut original = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes into the valid struct passed.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_AS, &mut original) }, 0);
    if scarce == Scarce::AddressSpace {
        let cap = (status_bytes("VmSize:") + 48 * 1024 * 1024) as libc::rlim_t;
        let capped = libc::rlimit { rlim_cur: cap, rlim_max: original.rlim_max };
        // SAFETY: lowers this process's own soft limit, through a valid struct.
        assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_AS, &capped) }, 0);
    }

    let (target, message) = loop {
        assert!(parked.len() < max_parked, "{} greenlets parked without running out of stacks", parked.len());
        let g = parker(Greenlet::builder().name("target"));
        match panic::catch_unwind(AssertUnwindSafe(|| g.switch(Box::new(())))) {
            Ok(_) => parked.push(g),
            Err(payload) => break (g, panic_text(&*payload)),
        }
    };
    eprintln!("start failed from main: {message} (after {} parked greenlets)", parked.len());
    assert!(message.contains("could not allocate a 64 KiB greenlet stack"), "{message}");
    assert!(message.contains("greenlet 'target' (#"), "{message}");
    assert!(!target.is_started() && !target.is_dead(), "the target stays pending: {target:?}");
    assert_eq!(stack::stats().in_use, parked.len() + 1, "parked plus the starter");

    // The same failure, met by a greenlet: the panic comes out of its switch.
    let result = starter.switch(Box::new(()));
    let (inner_message, inner_started) = *result.downcast::<(Option<String>, bool)>().expect("the starter's result");
    let inner_message = inner_message.expect("starting a greenlet from a greenlet failed too");
    eprintln!("start failed from a greenlet: {inner_message}");
    assert!(inner_message.contains("could not allocate a 64 KiB greenlet stack"), "{inner_message}");
    assert!(!inner_started, "the inner target stays pending");
    assert!(starter.is_dead());

    // Everything parked before the failure still runs to completion.
    for g in &parked {
        finish(g);
    }
    assert_eq!(stack::stats().in_use, 0);
    // With stacks free again, the target starts after all.
    target.switch(Box::new(()));
    finish(&target);
    eprintln!("all parked greenlets finished");

    // SAFETY: restores the limit read above, through a valid struct.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_AS, &original) }, 0);
}

// ---------------------------------------------------------------------------
// Pool behaviour (each on a fresh thread, whose pool starts empty)

/// A finished greenlet's stack goes back to the pool and is reused: creating
/// and finishing 1000 greenlets one after the other uses a single stack.
#[test]
fn finished_stacks_are_reused() {
    let _lock = process_lock();
    on_fresh_thread(|| {
        assert_eq!(stack::stats(), Stats::default());
        finish(&park(Builder::new()));
        let first = stack::stats();
        assert_eq!((first.in_use, first.chunks, first.idle_warm + first.idle_cold), (0, 1, 1), "{first:?}");
        for i in 0..1000u32 {
            let g = Greenlet::new(|v| v);
            let back = g.switch(Box::new(i));
            assert_eq!(*back.downcast::<u32>().unwrap(), i);
            assert!(g.is_dead());
        }
        let after = stack::stats();
        assert_eq!(after.in_use, 0, "{after:?}");
        assert_eq!(after.reserved_bytes, first.reserved_bytes, "{after:?}");
        assert_eq!(after.chunks, 1, "{after:?}");
        assert_eq!(after.idle_warm + after.idle_cold, 1, "one stack served them all: {after:?}");
    });
}

/// `set_idle_limit(n)` keeps `n` idle stacks of a size resident, more only
/// while the recent peak of stacks in use may need them again; setting it
/// forgets that peak, so the surplus is discarded (goes cold) at once. Reuse
/// prefers warm stacks.
#[test]
fn idle_limit_bounds_warm_stacks() {
    let _lock = process_lock();
    on_fresh_thread(|| {
        stack::set_idle_limit(5);
        let parked: Vec<Greenlet> = (0..20).map(|_| park(Builder::new())).collect();
        let s = stack::stats();
        assert_eq!((s.in_use, s.idle_warm, s.idle_cold), (20, 0, 0), "{s:?}");
        parked.iter().for_each(finish);
        let s = stack::stats();
        assert_eq!((s.in_use, s.idle_warm + s.idle_cold), (0, 20), "{s:?}");
        assert!(s.idle_warm >= 5, "at least the limit stays warm: {s:?}");

        // Setting the limit forgets the peak: the surplus goes cold at once.
        stack::set_idle_limit(5);
        let s = stack::stats();
        assert_eq!((s.in_use, s.idle_warm, s.idle_cold), (0, 5, 15), "{s:?}");
        stack::set_idle_limit(2);
        let s = stack::stats();
        assert_eq!((s.in_use, s.idle_warm, s.idle_cold), (0, 2, 18), "{s:?}");

        // Warm stacks are handed out first, then cold ones.
        let again: Vec<Greenlet> = (0..3).map(|_| park(Builder::new())).collect();
        let s = stack::stats();
        assert_eq!((s.in_use, s.idle_warm, s.idle_cold), (3, 0, 17), "{s:?}");
        again.iter().for_each(finish);
        let s = stack::stats();
        assert_eq!((s.in_use, s.idle_warm + s.idle_cold), (0, 20), "{s:?}");
        assert!((2..=3).contains(&s.idle_warm), "the limit, or the recent peak of 3: {s:?}");

        stack::set_idle_limit(0);
        let s = stack::stats();
        assert_eq!((s.in_use, s.idle_warm, s.idle_cold), (0, 0, 20), "{s:?}");
        // Cold stacks are reused: no stack is made beyond the first 20.
        let reserved = s.reserved_bytes;
        let more: Vec<Greenlet> = (0..20).map(|_| park(Builder::new())).collect();
        let s = stack::stats();
        assert_eq!((s.in_use, s.idle_cold, s.reserved_bytes), (20, 0, reserved), "{s:?}");
        more.iter().for_each(finish);
    });
}

/// Stacks of different sizes come from different size classes and never
/// stand in for each other.
#[test]
fn stack_sizes_have_their_own_classes() {
    let _lock = process_lock();
    on_fresh_thread(|| {
        finish(&park(Builder::new().stack_size(32 * 1024)));
        let s = stack::stats();
        assert_eq!((s.in_use, s.idle_warm, s.chunks), (0, 1, 1), "{s:?}");

        // A 64 KiB greenlet does not take the idle 32 KiB stack.
        let big = park(Builder::new().stack_size(64 * 1024));
        let s = stack::stats();
        assert_eq!((s.in_use, s.idle_warm, s.chunks), (1, 1, 2), "{s:?}");

        // A 32 KiB one does.
        let small = park(Builder::new().stack_size(32 * 1024));
        let s = stack::stats();
        assert_eq!((s.in_use, s.idle_warm, s.chunks), (2, 0, 2), "{s:?}");

        // And a third size makes a third class.
        let odd = park(Builder::new().stack_size(48 * 1024));
        assert_eq!(stack::stats().chunks, 3);
        for g in [&big, &small, &odd] {
            finish(g);
        }
        assert_eq!(stack::stats().idle_warm, 3);
    });
}

/// `Builder::stack_size` rounds up to whole pages (and to at least
/// `MIN_SIZE`); requests that round to the same size share a class.
#[test]
fn stack_size_rounds_up_to_pages() {
    let _lock = process_lock();
    let page = page_size();
    let size_of = |bytes: usize| Greenlet::builder().stack_size(bytes).build(|v| v).stack_size();
    assert_eq!(size_of(20_000), 20_000usize.next_multiple_of(page));
    assert_eq!(size_of(64 * 1024 + 1), 64 * 1024 + page);
    assert_eq!(size_of(64 * 1024), 64 * 1024);
    assert_eq!(size_of(1), stack::MIN_SIZE.next_multiple_of(page));
    assert_eq!(size_of(0), stack::MIN_SIZE.next_multiple_of(page));
    assert_eq!(Greenlet::new(|v| v).stack_size(), stack::DEFAULT_SIZE);

    on_fresh_thread(move || {
        let rounded = park(Builder::new().stack_size(16 * 1024 - 100));
        assert_eq!(rounded.stack_size(), 16 * 1024);
        finish(&rounded);
        let exact = park(Builder::new().stack_size(16 * 1024));
        let s = stack::stats();
        assert_eq!((s.in_use, s.idle_warm, s.chunks), (1, 0, 1), "the same class: {s:?}");
        finish(&exact);
    });
}

/// Stack sizes too large for any address space (where rounding to pages,
/// adding the guard or sizing a reservation used to wrap around, and release
/// builds then faulted) are refused with a panic that says so, and the thread
/// goes on working. Runs in a child process, since a wrapped size faults.
#[test]
fn huge_stack_sizes_are_refused_with_a_panic() {
    const TEST: &str = "huge_stack_sizes_are_refused_with_a_panic";
    let page = page_size();
    let sizes = [usize::MAX, usize::MAX - page + 1, usize::MAX - 2 * page, 1 << 60, 1 << 57];
    if child_role().is_some() {
        for bytes in sizes {
            let caught = panic::catch_unwind(|| {
                let g = Greenlet::builder().stack_size(bytes).build(|v| v);
                g.switch(Box::new(()));
            });
            let message = caught.err().map(|payload| panic_text(&*payload));
            eprintln!("stack_size({bytes}): {message:?}");
            let message = message.expect("a huge stack size panics");
            assert!(message.contains(&format!("stack size {bytes} is too large")), "{message}");
        }
        let caught = panic::catch_unwind(|| stack::set_default_size(usize::MAX)).err().map(|p| panic_text(&*p));
        eprintln!("set_default_size(usize::MAX): {caught:?}");
        assert!(caught.expect("it panics").contains(&format!("stack size {} is too large", usize::MAX)));
        assert_eq!(stack::default_size(), stack::DEFAULT_SIZE, "the default is unchanged");
        finish(&park(Builder::new()));
        eprintln!("the thread goes on");
        return;
    }
    let output = child_test(TEST, "huge", &[]).run();
    assert_eq!(output.status.code(), Some(0), "{}", output_text(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("the thread goes on"), "{}", output_text(&output));
}

/// `set_default_size` applies to greenlets created afterwards on the same
/// thread only, and the stack really has that size.
#[test]
fn default_size_is_per_thread() {
    let _lock = process_lock();
    on_fresh_thread(|| {
        let page = page_size();
        let before = Greenlet::new(|v| v);
        assert_eq!(stack::default_size(), stack::DEFAULT_SIZE);
        stack::set_default_size(256 * 1024 + 100);
        assert_eq!(stack::default_size(), (256 * 1024 + 100usize).next_multiple_of(page));
        let after = Greenlet::new(|_| {
            // About 160 KiB deep: more than the 64 KiB default could hold.
            Box::new(recurse(160))
        });
        assert_eq!(before.stack_size(), stack::DEFAULT_SIZE, "an existing greenlet keeps its size");
        assert_eq!(after.stack_size(), stack::default_size());
        // An explicit size still wins.
        assert_eq!(Greenlet::builder().stack_size(32 * 1024).build(|v| v).stack_size(), 32 * 1024);
        after.switch(Box::new(()));
        assert!(after.is_dead());

        // Another thread still gets the default.
        let elsewhere = std::thread::spawn(|| (stack::default_size(), Greenlet::new(|v| v).stack_size()))
            .join()
            .expect("the other thread");
        assert_eq!(elsewhere, (stack::DEFAULT_SIZE, stack::DEFAULT_SIZE));
        assert_eq!(stack::default_size(), (256 * 1024 + 100usize).next_multiple_of(page), "unchanged here");
    });
}

/// Python's `test_untracked_memory_doesnt_increase` (catalogue case 123):
/// rounds of 10,000 greenlets that are all parked, then run to completion;
/// resident memory levels off because the pool reuses its stacks.
#[test]
fn memory_levels_off_over_rounds() {
    const ROUNDS: usize = 10;
    const PER_ROUND: usize = 10_000;
    let _lock = process_lock();
    on_fresh_thread(|| {
        let mut rss = Vec::with_capacity(ROUNDS);
        let mut reserved = Vec::with_capacity(ROUNDS);
        let mut greenlets = Vec::with_capacity(PER_ROUND);
        for _ in 0..ROUNDS {
            greenlets.extend((0..PER_ROUND).map(|_| park(Builder::new())));
            greenlets.iter().for_each(finish);
            greenlets.clear();
            rss.push(rss_bytes());
            reserved.push(stack::stats().reserved_bytes);
        }
        let mib = |b: usize| b as f64 / (1024.0 * 1024.0);
        let report: Vec<String> = rss.iter().map(|&b| format!("{:.1}", mib(b))).collect();
        eprintln!("RSS after each round (MiB): {}", report.join(" "));
        // The pool made its stacks in the first round and reused them after.
        assert!(reserved.iter().all(|&r| r == reserved[0]), "reserved bytes per round: {reserved:?}");
        let growth = rss[ROUNDS - 1].saturating_sub(rss[4]);
        assert!(growth < 4 * 1024 * 1024, "RSS grew by {:.1} MiB over rounds 5-10: {report:?}", mib(growth));
        assert_eq!(stack::stats().in_use, 0);
    });
}

#[test]
fn resident_bytes_count_the_stack_pages_greenlets_touched() {
    // The metric behind `runtime::Metrics::stack_resident_bytes`: pages the
    // greenlets wrote are resident; a fresh thread has none.
    on_fresh_thread(|| {
        assert_eq!(stack::resident_bytes(), 0, "no stack yet on this thread");
        let deep: Vec<Greenlet> = (0..20)
            .map(|_| {
                let g = Builder::new().stack_size(128 * 1024).build(|_| {
                    black_box(recurse(32)); // writes at least 32 KiB of stack
                    let parent = getcurrent().parent().expect("a greenlet has a parent");
                    parent.switch(Box::new(()))
                });
                g.switch(Box::new(()));
                g
            })
            .collect();
        let resident = stack::resident_bytes();
        assert!(resident >= 20 * 32 * 1024, "{resident} bytes resident");
        assert!(resident <= 20 * (128 + 4 * 4) * 1024, "no more than the stacks: {resident}");
        deep.iter().for_each(finish);
        stack::set_idle_limit(0); // hands the memory of idle stacks back
        assert_eq!(stack::resident_bytes(), 0);
    });
}
