//! Pinning a hub's thread to a core (`Builder::pin_cores`).

#![allow(unsafe_code)]

use std::io;

/// Pins the calling thread to the `index`-th core this process may use
/// (modulo their number).
pub(crate) fn pin_to_core(index: usize) -> io::Result<()> {
    let allowed = allowed_cores()?;
    if allowed.is_empty() {
        return Err(io::Error::other("no core is allowed"));
    }
    let core = allowed[index % allowed.len()];
    let mut set = new_set();
    // SAFETY: `core` is below `CPU_SETSIZE` (it came from `allowed_cores`),
    // so the bit is inside `set`.
    unsafe { libc::CPU_SET(core, &mut set) };
    // SAFETY: `set` is an initialised `cpu_set_t` that lives across the call,
    // and its size is passed with it; 0 names the calling thread.
    let result = unsafe { libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set) };
    if result == 0 { Ok(()) } else { Err(io::Error::last_os_error()) }
}

/// The cores the calling thread may run on.
fn allowed_cores() -> io::Result<Vec<usize>> {
    let mut set = new_set();
    // SAFETY: `set` is an initialised `cpu_set_t` the kernel writes into,
    // whose size is passed with it; 0 names the calling thread.
    let result = unsafe { libc::sched_getaffinity(0, size_of::<libc::cpu_set_t>(), &mut set) };
    if result != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: every `cpu` is below `CPU_SETSIZE`, so the bit is inside `set`.
    Ok((0..libc::CPU_SETSIZE as usize).filter(|&cpu| unsafe { libc::CPU_ISSET(cpu, &set) }).collect())
}

fn new_set() -> libc::cpu_set_t {
    // SAFETY: `cpu_set_t` is a plain bit array, valid when all zeros.
    unsafe { std::mem::zeroed() }
}
