//! Regular files in greenlets, in one run, each figure the median of
//! alternated rounds:
//!
//! - the largest gap of a 1 ms ticker greenlet while another greenlet
//!   writes 256 MiB (1 MiB writes), `fsync`s and reads it back: through the
//!   hooks (large writes, `fsync` and uncached reads on the blocking pool)
//!   against the same calls inline (`blocking_scope`, as before the hooks
//!   handled files). The gap is broken down by what the writing greenlet was doing when it
//!   ended, next to the largest gap of the same ticker with nothing else to
//!   run (what the machine's load alone causes);
//! - cached `read` throughput (64 KiB reads of a 64 MiB file in the page
//!   cache) through the hooks (`RWF_NOWAIT`, inline) against libc's inline;
//! - the cost of a `File::open` (and close) of a cached file through the
//!   hooks (on the blocking pool) against libc's inline.
//!
//! ```text
//! cargo bench -p runtime-hooks --bench files
//! ```

use std::cell::Cell;
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant};

const BIG: usize = 256 << 20;
const CACHED: usize = 64 << 20;
const CHUNK: usize = 1 << 20;
const READ: usize = 64 << 10;

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// What the writing greenlet is doing, for the ticker's breakdown.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Phase {
    Create,
    Write,
    Fsync,
    Close,
    Open,
    Read,
}

const PHASES: [Phase; 6] = [Phase::Create, Phase::Write, Phase::Fsync, Phase::Close, Phase::Open, Phase::Read];

/// Writes, fsyncs and reads back `BIG` bytes at `path`, noting its phase.
fn write_sync_read(path: &Path, phase: &Cell<Phase>) {
    let chunk = vec![0x5a; CHUNK];
    phase.set(Phase::Create);
    let mut file = File::create(path).unwrap();
    phase.set(Phase::Write);
    for _ in 0..BIG / CHUNK {
        file.write_all(&chunk).unwrap();
    }
    phase.set(Phase::Fsync);
    file.sync_all().unwrap();
    phase.set(Phase::Close);
    drop(file);
    phase.set(Phase::Open);
    let mut file = File::open(path).unwrap();
    phase.set(Phase::Read);
    let mut buf = vec![0; CHUNK];
    let mut total = 0;
    loop {
        let n = file.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        total += n;
    }
    assert_eq!(total, BIG);
    phase.set(Phase::Close);
}

/// The ticker's largest gap (ms) while a greenlet runs `write_sync_read`,
/// `inline` or through the hooks, and the largest per phase the gap ended
/// in.
fn ticker_gap(path: &Path, inline: bool) -> (f64, [f64; PHASES.len()]) {
    let path = path.to_path_buf();
    runtime_scheduler::run(move || {
        let largest = Rc::new(Cell::new([Duration::ZERO; PHASES.len()]));
        let stop = Rc::new(Cell::new(false));
        let phase = Rc::new(Cell::new(Phase::Create));
        let ticker = runtime_scheduler::spawn({
            let (largest, stop, phase) = (largest.clone(), stop.clone(), phase.clone());
            move || {
                let mut last = Instant::now();
                while !stop.get() {
                    runtime_scheduler::sleep(Duration::from_millis(1));
                    let now = Instant::now();
                    let mut by_phase = largest.get();
                    let index = PHASES.iter().position(|p| *p == phase.get()).unwrap();
                    by_phase[index] = by_phase[index].max(now - last);
                    largest.set(by_phase);
                    last = now;
                }
            }
        });
        runtime_scheduler::sleep(Duration::from_millis(5));
        if inline {
            runtime_hooks::blocking_scope(|| write_sync_read(&path, &phase));
        } else {
            write_sync_read(&path, &phase);
        }
        stop.set(true);
        ticker.join().unwrap();
        std::fs::remove_file(&path).unwrap();
        let by_phase = largest.get().map(|gap| gap.as_secs_f64() * 1e3);
        (by_phase.iter().copied().fold(0.0, f64::max), by_phase)
    })
}

/// The ticker's largest gap (ms) over `period` with nothing else to run:
/// what the machine's load alone makes of it.
fn idle_gap(period: Duration) -> f64 {
    runtime_scheduler::run(move || {
        let end = Instant::now() + period;
        let (mut last, mut largest) = (Instant::now(), Duration::ZERO);
        while last < end {
            runtime_scheduler::sleep(Duration::from_millis(1));
            let now = Instant::now();
            largest = largest.max(now - last);
            last = now;
        }
        largest.as_secs_f64() * 1e3
    })
}

/// MB/s of 64 KiB reads of the cached file at `path`, in a greenlet,
/// `inline` or through the hooks.
fn cached_read(path: &Path, inline: bool) -> f64 {
    let path = path.to_path_buf();
    runtime_scheduler::run(move || {
        let read_all = || {
            let mut file = File::open(&path).unwrap();
            let mut buf = vec![0; READ];
            let start = Instant::now();
            let mut total = 0;
            loop {
                let n = file.read(&mut buf).unwrap();
                if n == 0 {
                    break;
                }
                total += n;
            }
            assert_eq!(total, CACHED);
            total as f64 / start.elapsed().as_secs_f64() / 1e6
        };
        if inline { runtime_hooks::blocking_scope(read_all) } else { read_all() }
    })
}

/// Microseconds per `File::open` and close of the file at `path`, in a
/// greenlet, `inline` or through the hooks (on the pool).
fn open_close(path: &Path, inline: bool) -> f64 {
    const OPENS: u32 = 2000;
    let path = path.to_path_buf();
    runtime_scheduler::run(move || {
        let open_all = || {
            let start = Instant::now();
            for _ in 0..OPENS {
                drop(File::open(&path).unwrap());
            }
            start.elapsed().as_secs_f64() * 1e6 / f64::from(OPENS)
        };
        if inline { runtime_hooks::blocking_scope(open_all) } else { open_all() }
    })
}

fn main() {
    assert!(runtime_hooks::is_interposed(), "the hooks are not linked in");
    let dir: PathBuf = std::env::var_os("BENCH_DIR").map_or_else(std::env::temp_dir, PathBuf::from);
    let big = dir.join(format!("runtime-hooks-bench-big-{}", std::process::id()));
    let cached = dir.join(format!("runtime-hooks-bench-cached-{}", std::process::id()));
    std::fs::write(&cached, vec![0xa5; CACHED]).unwrap();
    let _ = std::fs::read(&cached).unwrap(); // in the page cache

    const GAP_ROUNDS: usize = 5;
    const READ_ROUNDS: usize = 21;
    let (mut gap_hooked, mut gap_inline) = (Vec::new(), Vec::new());
    let mut by_phase: Vec<Vec<f64>> = vec![Vec::new(); PHASES.len()];
    let mut gap_idle = Vec::new();
    for _ in 0..GAP_ROUNDS {
        let start = Instant::now();
        let (gap, phases) = ticker_gap(&big, false);
        gap_hooked.push(gap);
        for (all, gap) in by_phase.iter_mut().zip(phases) {
            all.push(gap);
        }
        let hooked = start.elapsed();
        gap_idle.push(idle_gap(hooked));
        gap_inline.push(ticker_gap(&big, true).0);
    }
    let (mut read_hooked, mut read_inline) = (Vec::new(), Vec::new());
    cached_read(&cached, false);
    for _ in 0..READ_ROUNDS {
        read_hooked.push(cached_read(&cached, false));
        read_inline.push(cached_read(&cached, true));
    }
    let (mut open_hooked, mut open_inline) = (Vec::new(), Vec::new());
    for _ in 0..READ_ROUNDS {
        open_hooked.push(open_close(&cached, false));
        open_inline.push(open_close(&cached, true));
    }
    std::fs::remove_file(&cached).unwrap();
    let (gap_hooked, gap_inline, gap_idle) = (median(&mut gap_hooked), median(&mut gap_inline), median(&mut gap_idle));
    let (read_hooked, read_inline) = (median(&mut read_hooked), median(&mut read_inline));
    println!(
        "largest 1 ms ticker gap while a greenlet writes 256 MiB, fsyncs and reads it back (median of {GAP_ROUNDS}):"
    );
    println!("  nothing else running: {gap_idle:8.1} ms (as long as the hooked round)");
    println!("  inline (libc):        {gap_inline:8.1} ms");
    println!("  through the hooks:    {gap_hooked:8.1} ms");
    for (phase, gaps) in PHASES.iter().zip(&mut by_phase) {
        println!("    in {:<18}{:8.1} ms", format!("{phase:?}:"), median(gaps));
    }
    println!("cached 64 KiB reads of a 64 MiB file in a greenlet (median of {READ_ROUNDS}):");
    println!("  inline (libc):        {read_inline:8.0} MB/s");
    println!("  through the hooks:    {read_hooked:8.0} MB/s ({:.2}x)", read_hooked / read_inline);
    let (open_hooked, open_inline) = (median(&mut open_hooked), median(&mut open_inline));
    println!("File::open and close of a cached file in a greenlet (median of {READ_ROUNDS}):");
    println!("  inline (libc):        {open_inline:8.1} us");
    println!("  through the hooks:    {open_hooked:8.1} us (on the blocking pool)");
}
