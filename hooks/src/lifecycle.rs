//! Where descriptors come from and where they go, interposed: `socket` and
//! `socketpair` make descriptors of this process's own, whose mode the hooks
//! may change; `posix_spawn_file_actions_adddup2` (how std's `Command`
//! hands a descriptor to a child as its stdin, stdout or stderr) hands one
//! to another process, so it is blocking again before the child sees it.
//! (`accept`, `pipe` and `dup2` are in `exports`.)

use std::ffi::c_int;

use crate::{coop, real};

/// Interposes `socket(2)`: the socket is this process's own.
///
/// # Safety
///
/// None beyond `socket(2)`'s.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn socket(domain: c_int, kind: c_int, protocol: c_int) -> c_int {
    // SAFETY: the caller's arguments, unchanged.
    let fd = unsafe { real::socket(domain, kind, protocol) };
    if fd >= 0 {
        coop::socket_made(fd, kind);
    }
    fd
}

/// Interposes `socketpair(2)`: both ends are this process's own.
///
/// # Safety
///
/// `socketpair(2)`'s contract.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn socketpair(domain: c_int, kind: c_int, protocol: c_int, fds: *mut c_int) -> c_int {
    // SAFETY: the caller's arguments, unchanged.
    let done = unsafe { real::socketpair(domain, kind, protocol, fds) };
    if done == 0 {
        // SAFETY: on success `fds` holds the two new descriptors.
        let ends = unsafe { [*fds, *fds.add(1)] };
        ends.into_iter().for_each(|fd| coop::socket_made(fd, kind));
    }
    done
}

/// Interposes `posix_spawn_file_actions_adddup2(3)`: `fd` goes to a child.
///
/// # Safety
///
/// `posix_spawn_file_actions_adddup2(3)`'s contract.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn posix_spawn_file_actions_adddup2(
    actions: *mut libc::posix_spawn_file_actions_t,
    fd: c_int,
    new: c_int,
) -> c_int {
    coop::handed_over(fd);
    // SAFETY: the caller's arguments, unchanged.
    unsafe { real::posix_spawn_file_actions_adddup2(actions, fd, new) }
}

/// The addresses of the definitions above (see `exports::table`).
#[inline(never)]
pub(crate) fn table() -> usize {
    let table: [usize; 3] = [
        socket as *const () as usize,
        socketpair as *const () as usize,
        posix_spawn_file_actions_adddup2 as *const () as usize,
    ];
    std::hint::black_box(&table).iter().fold(0, |sum, address| sum ^ address)
}
