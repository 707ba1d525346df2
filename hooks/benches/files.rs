//! Regular files in greenlets, in one run, each figure the median of
//! alternated rounds:
//!
//! - the largest gap of a 1 ms ticker greenlet while another greenlet
//!   writes 256 MiB (1 MiB writes), `fsync`s and reads it back: through the
//!   hooks (large writes, `fsync` and uncached reads on the blocking pool)
//!   against the same calls inline (`blocking_scope`, as before the hooks
//!   handled files);
//! - cached `read` throughput (64 KiB reads of a 64 MiB file in the page
//!   cache) through the hooks (`RWF_NOWAIT`, inline) against libc's inline.
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

/// Writes, fsyncs and reads back `BIG` bytes at `path`.
fn write_sync_read(path: &Path) {
    let chunk = vec![0x5a; CHUNK];
    let mut file = File::create(path).unwrap();
    for _ in 0..BIG / CHUNK {
        file.write_all(&chunk).unwrap();
    }
    file.sync_all().unwrap();
    drop(file);
    let mut file = File::open(path).unwrap();
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
}

/// The ticker's largest gap (ms) while a greenlet runs `write_sync_read`,
/// `inline` or through the hooks.
fn ticker_gap(path: &Path, inline: bool) -> f64 {
    let path = path.to_path_buf();
    runtime_scheduler::run(move || {
        let largest = Rc::new(Cell::new(Duration::ZERO));
        let stop = Rc::new(Cell::new(false));
        let ticker = runtime_scheduler::spawn({
            let (largest, stop) = (largest.clone(), stop.clone());
            move || {
                let mut last = Instant::now();
                while !stop.get() {
                    runtime_scheduler::sleep(Duration::from_millis(1));
                    let now = Instant::now();
                    largest.set(largest.get().max(now - last));
                    last = now;
                }
            }
        });
        runtime_scheduler::sleep(Duration::from_millis(5));
        if inline {
            runtime_hooks::blocking_scope(|| write_sync_read(&path));
        } else {
            write_sync_read(&path);
        }
        stop.set(true);
        ticker.join().unwrap();
        std::fs::remove_file(&path).unwrap();
        largest.get().as_secs_f64() * 1e3
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

fn main() {
    assert!(runtime_hooks::is_interposed(), "the hooks are not linked in");
    let dir: PathBuf = std::env::var_os("BENCH_DIR").map_or_else(std::env::temp_dir, PathBuf::from);
    let big = dir.join(format!("runtime-hooks-bench-big-{}", std::process::id()));
    let cached = dir.join(format!("runtime-hooks-bench-cached-{}", std::process::id()));
    std::fs::write(&cached, vec![0xa5; CACHED]).unwrap();
    let _ = std::fs::read(&cached).unwrap(); // in the page cache

    const GAP_ROUNDS: usize = 3;
    const READ_ROUNDS: usize = 15;
    let (mut gap_hooked, mut gap_inline) = (Vec::new(), Vec::new());
    for _ in 0..GAP_ROUNDS {
        gap_hooked.push(ticker_gap(&big, false));
        gap_inline.push(ticker_gap(&big, true));
    }
    let (mut read_hooked, mut read_inline) = (Vec::new(), Vec::new());
    cached_read(&cached, false);
    for _ in 0..READ_ROUNDS {
        read_hooked.push(cached_read(&cached, false));
        read_inline.push(cached_read(&cached, true));
    }
    std::fs::remove_file(&cached).unwrap();
    let (gap_hooked, gap_inline) = (median(&mut gap_hooked), median(&mut gap_inline));
    let (read_hooked, read_inline) = (median(&mut read_hooked), median(&mut read_inline));
    println!(
        "largest 1 ms ticker gap while a greenlet writes 256 MiB, fsyncs and reads it back (median of {GAP_ROUNDS}):"
    );
    println!("  inline (libc):        {gap_inline:8.1} ms");
    println!("  through the hooks:    {gap_hooked:8.1} ms");
    println!("cached 64 KiB reads of a 64 MiB file in a greenlet (median of {READ_ROUNDS}):");
    println!("  inline (libc):        {read_inline:8.0} MB/s");
    println!("  through the hooks:    {read_hooked:8.0} MB/s ({:.2}x)", read_hooked / read_inline);
}
