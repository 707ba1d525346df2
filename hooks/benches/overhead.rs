//! The cost of the hooks outside any hub: a plain thread's `read(2)` of one
//! byte from a socket that always has data, through the interposed `read`
//! (what every caller of `read` in the process gets) against libc's own,
//! found with `dlsym(RTLD_NEXT)`, in the same run. Batches of the two
//! alternate; printed are the medians and minimums of each, and the median
//! of the differences between neighbouring batches (which a machine busy
//! with other work disturbs least).
//!
//! ```text
//! cargo bench -p runtime-hooks --bench overhead
//! ```

use std::ffi::c_void;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::time::Instant;

/// Reads per batch (the bytes written before each batch).
const BATCH: usize = 4 * 1024;
/// Batches of each kind.
const ROUNDS: usize = 801;

type ReadFn = unsafe extern "C" fn(i32, *mut c_void, usize) -> isize;

/// Nanoseconds per one-byte read with `read`, over one batch.
fn batch(writer: &mut UnixStream, fd: i32, read: ReadFn) -> f64 {
    writer.write_all(&[1; BATCH]).unwrap();
    let mut byte = 0u8;
    let start = Instant::now();
    for _ in 0..BATCH {
        // SAFETY: reads one byte into a local from an open socket.
        let n = unsafe { read(fd, (&raw mut byte).cast(), 1) };
        assert_eq!(n, 1);
    }
    start.elapsed().as_nanos() as f64 / BATCH as f64
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    assert!(runtime_hooks::is_interposed(), "the hooks are not linked in");
    // SAFETY: a NUL-terminated name; RTLD_NEXT from the executable finds
    // libc's definition, past ours.
    let libc_read = unsafe { libc::dlsym(libc::RTLD_NEXT, c"read".as_ptr()) };
    assert!(!libc_read.is_null());
    // SAFETY: libc's `read`, whose prototype this is.
    let libc_read: ReadFn = unsafe { std::mem::transmute::<*mut c_void, ReadFn>(libc_read) };
    let hooked_read: ReadFn = libc::read;
    // The symbol the program calls resolves to the hook.
    assert_ne!(hooked_read as usize, libc_read as usize);

    let (mut writer, reader) = UnixStream::pair().unwrap();
    writer.set_nonblocking(false).unwrap();
    let fd = reader.as_raw_fd();
    let (mut hooked, mut plain, mut differences) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..20 {
        batch(&mut writer, fd, hooked_read);
        batch(&mut writer, fd, libc_read);
    }
    for round in 0..ROUNDS {
        // Which goes first alternates too.
        let (h, p) = if round % 2 == 0 {
            let h = batch(&mut writer, fd, hooked_read);
            (h, batch(&mut writer, fd, libc_read))
        } else {
            let p = batch(&mut writer, fd, libc_read);
            (batch(&mut writer, fd, hooked_read), p)
        };
        hooked.push(h);
        plain.push(p);
        differences.push(h - p);
    }
    let (min_hooked, min_plain) = (min(&hooked), min(&plain));
    let (hooked, plain, overhead) = (median(&mut hooked), median(&mut plain), median(&mut differences));
    println!("read(2) of 1 byte on a plain thread, ready socket, {ROUNDS} batches of {BATCH} each:");
    println!("                      median      min");
    println!("  libc's read:        {plain:6.1} ns {min_plain:6.1} ns");
    println!("  interposed read:    {hooked:6.1} ns {min_hooked:6.1} ns");
    println!(
        "  overhead:           {overhead:6.1} ns (median of neighbouring batches' differences; {:.1} ns between the minimums)",
        min_hooked - min_plain
    );
}

fn min(values: &[f64]) -> f64 {
    values.iter().copied().fold(f64::INFINITY, f64::min)
}
