//! Parks a million greenlets at once, then runs them all to completion, and
//! reports what that cost: memory (resident and per greenlet), memory
//! mappings, the stack pool's counters, and time.
//!
//! ```text
//! cargo run --release --example million [-- --count N] [--stack-size BYTES]
//! ```
//!
//! Each greenlet is started and suspends at once in a switch back to main, so
//! all of them hold a stack at the same time. Defaults: 1,000,000 greenlets of
//! 64 KiB. Stacks are carved out of shared reservations with guard pages that
//! cost no mapping (Linux 6.13+), so the mapping count stays far below the
//! default `vm.max_map_count` of 65530; on older kernels each stack costs two
//! mappings and parking stops with an error near 32,000 greenlets unless
//! `vm.max_map_count` is raised.
//!
//! The same run measures the floor: a bare loop that first-touches one page
//! per 64 KiB of a fresh mapping, as many pages as greenlets, a tenth of them
//! before each tenth of the greenlets. On a virtual machine a first touch costs what the host charges
//! for backing the page, which can dwarf the guest's own work; the ratio of
//! the two, printed beside the goals, is what the runtime adds.

#[path = "common/proc_status.rs"]
mod proc_status;

use std::panic::{self, AssertUnwindSafe};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use greenlet::{Greenlet, getcurrent, stack};

const USAGE: &str = "usage: million [--count N] [--stack-size BYTES]";

struct Args {
    count: usize,
    stack_size: usize,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args { count: 1_000_000, stack_size: stack::DEFAULT_SIZE };
    let mut words = std::env::args().skip(1);
    while let Some(word) = words.next() {
        let value = |name: &str, v: Option<String>| -> Result<usize, String> {
            let v = v.ok_or_else(|| format!("{name} needs a value"))?;
            v.replace('_', "").parse().map_err(|e| format!("{name} {v}: {e}"))
        };
        match word.as_str() {
            "--count" => args.count = value("--count", words.next())?,
            "--stack-size" => args.stack_size = value("--stack-size", words.next())?,
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(args)
}

/// Memory mappings of this process: lines of `/proc/self/maps`.
fn mappings() -> usize {
    std::fs::read_to_string("/proc/self/maps").map(|m| m.lines().count()).unwrap_or(0)
}

/// The floor: fresh 64 KiB slots (without transparent huge pages, like
/// greenlet stacks), one page of each first-touched by [`Bare::touch`].
struct Bare {
    base: *mut u8,
    len: usize,
}

const BARE_SLOT: usize = 64 * 1024;

impl Bare {
    fn new(pages: usize) -> Bare {
        let len = pages.max(1) * BARE_SLOT;
        // SAFETY: a fresh anonymous mapping at an address the kernel picks
        // aliases nothing; it is only written through `base`, and unmapped
        // by `drop`.
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
        assert_ne!(base, libc::MAP_FAILED, "mmap of {len} bytes failed: {}", std::io::Error::last_os_error());
        // SAFETY: the range was just mapped; failure only leaves huge pages on.
        unsafe { libc::madvise(base, len, libc::MADV_NOHUGEPAGE) };
        Bare { base: base.cast(), len }
    }

    /// First-touches the top page of the slots in `range` and returns how long
    /// that took; then gives the pages back (untimed), so that they do not
    /// count in the greenlets' resident memory.
    fn touch(&self, range: std::ops::Range<usize>) -> Duration {
        let started = Instant::now();
        for i in range.clone() {
            // SAFETY: `(i + 1) * BARE_SLOT - 1 < len` for the slots `new`
            // mapped; volatile so that the touch is not optimised away.
            unsafe { std::ptr::write_volatile(self.base.add((i + 1) * BARE_SLOT - 1), 1) };
        }
        let took = started.elapsed();
        let start = range.start * BARE_SLOT;
        let len = (range.end * BARE_SLOT).min(self.len) - start;
        // SAFETY: inside the mapping; nothing reads those pages again.
        unsafe { libc::madvise(self.base.add(start).cast(), len, libc::MADV_DONTNEED) };
        took
    }
}

impl Drop for Bare {
    fn drop(&mut self) {
        // SAFETY: the whole mapping from `new`; nothing points into it any more.
        unsafe { libc::munmap(self.base.cast(), self.len) };
    }
}

/// Nanoseconds per item.
fn ns_per(d: Duration, items: usize) -> f64 {
    d.as_nanos() as f64 / items.max(1) as f64
}

fn mib(bytes: usize) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
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

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            if !message.is_empty() {
                eprintln!("million: {message}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    // The floor is measured in tenths interleaved with the greenlets'
    // tenths, so that both see the same load on the machine and the host.
    let bare = Bare::new(args.count);
    let tenth = |t: usize| t * args.count / 10..(t + 1) * args.count / 10;

    // The parked greenlets' handles; allocated up front so that growing the
    // vector does not show in the timings.
    let mut parked: Vec<Greenlet> = Vec::with_capacity(args.count);
    let rss_before = proc_status::rss_bytes();
    let maps_before = mappings();

    println!(
        "parking {} greenlets with {} KiB stacks, each tenth after as many bare first touches...",
        args.count,
        args.stack_size / 1024
    );
    let mut failure = None;
    let mut park_tenths = [Duration::ZERO; 10];
    let mut bare_tenths = [Duration::ZERO; 10];
    for t in 0..10 {
        bare_tenths[t] = bare.touch(tenth(t));
        let started = Instant::now();
        for _ in tenth(t) {
            let g = Greenlet::builder().stack_size(args.stack_size).build(|_| {
                let main = getcurrent().parent().expect("a greenlet has a parent");
                main.switch(Box::new(()))
            });
            match panic::catch_unwind(AssertUnwindSafe(|| g.switch(Box::new(())))) {
                Ok(_) => parked.push(g),
                Err(payload) => {
                    failure = Some(panic_text(&*payload));
                    break;
                }
            }
        }
        park_tenths[t] = started.elapsed();
        let n = tenth(t).len();
        println!(
            "  {:>9} parked  {:>6.0} ns each, bare touch {:>6.0} ns  RSS {:>8.1} MiB",
            parked.len(),
            ns_per(park_tenths[t], n),
            ns_per(bare_tenths[t], n),
            mib(proc_status::rss_bytes())
        );
        if failure.is_some() {
            break;
        }
    }
    drop(bare);
    let park_time: Duration = park_tenths.iter().sum();
    let bare_time: Duration = bare_tenths.iter().sum();
    let bare_ns = ns_per(bare_time, args.count);
    let (first, last) = (tenth(0).len(), tenth(9).len());
    let (park_first, park_last) = (ns_per(park_tenths[0], first), ns_per(park_tenths[9], last));
    let (bare_first, bare_last) = (ns_per(bare_tenths[0], first), ns_per(bare_tenths[9], last));
    let rss_parked = proc_status::rss_bytes();
    let maps_parked = mappings();
    let stats_parked = stack::stats();

    if let Some(message) = &failure {
        println!("parking stopped after {} greenlets: {message}", parked.len());
    }

    println!("resuming them all to completion...");
    let started = Instant::now();
    for g in &parked {
        g.switch(Box::new(()));
    }
    let resume_time = started.elapsed();
    let finished = parked.iter().filter(|g| g.is_dead()).count();
    let rss_finished = proc_status::rss_bytes();
    let stats_finished = stack::stats();
    let stack_size = parked.first().map_or(args.stack_size, Greenlet::stack_size);
    let count = parked.len();
    drop(parked);
    let live_after_drop = greenlet::live_greenlets();
    stack::trim();
    let rss_trimmed = proc_status::rss_bytes();
    let maps_trimmed = mappings();

    let per = |bytes: usize| if count == 0 { 0.0 } else { bytes as f64 / count as f64 };
    println!();
    println!("greenlets parked        {count}");
    println!("stack size              {} KiB ({stack_size} bytes)", stack_size / 1024);
    println!("guard kind              {:?}", stack::guard_kind());
    println!("RSS before              {:.1} MiB", mib(rss_before));
    println!("RSS while parked        {:.1} MiB", mib(rss_parked));
    println!("RSS per greenlet        {:.0} bytes", per(rss_parked.saturating_sub(rss_before)));
    println!("RSS after finishing     {:.1} MiB (the dead greenlets' handles still held)", mib(rss_finished));
    println!("RSS after drop + trim   {:.1} MiB (freed heap that malloc keeps counts here)", mib(rss_trimmed));
    println!("live greenlets          {live_after_drop} after dropping the handles (the main greenlet)");
    println!("mappings                {maps_before} before, {maps_parked} while parked, {maps_trimmed} after trim");
    println!("stack stats, parked     {stats_parked:?}");
    println!("stack stats, finished   {stats_finished:?}");
    println!("stack stats, trimmed    {:?}", stack::stats());
    println!(
        "create + park           {:.3} s ({:.0} ns per greenlet)",
        park_time.as_secs_f64(),
        per(park_time.as_nanos() as usize)
    );
    println!(
        "resume to completion    {:.3} s ({:.0} ns per greenlet, {finished} finished)",
        resume_time.as_secs_f64(),
        per(resume_time.as_nanos() as usize)
    );
    let per_greenlet = per(park_time.as_nanos() as usize);
    println!();
    println!("goal                                         result");
    println!(
        "create + park / bare first touch   <= 1.30   {:.2}  ({per_greenlet:.0} ns / {bare_ns:.0} ns)",
        per_greenlet / bare_ns
    );
    println!(
        "last tenth / first tenth           <= 1.20   {:.2}  ({park_last:.0} ns / {park_first:.0} ns; bare {:.2})",
        park_last / park_first,
        bare_last / bare_first
    );
    println!(
        "RSS per parked greenlet            <= 4.5 KB {:.2} KB",
        per(rss_parked.saturating_sub(rss_before)) / 1000.0
    );
    if failure.is_some() || finished != count { ExitCode::FAILURE } else { ExitCode::SUCCESS }
}
