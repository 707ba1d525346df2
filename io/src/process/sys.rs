//! The two system calls std offers no stable way to make: a pidfd for a child
//! (to wait for its exit on the hub) and a signal to a process group. The only
//! `unsafe` of this crate is here.

#![allow(unsafe_code)]

use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

/// `pidfd_open(2)`: a descriptor that becomes readable when process `pid`
/// exits (Linux 5.3+). Close-on-exec, as the kernel always makes it.
///
/// The caller must hold `pid` unreaped (it is its own child that nobody has
/// waited for), so that the number cannot name another process by now.
pub(super) fn pidfd_open(pid: u32) -> io::Result<OwnedFd> {
    let pid = libc::pid_t::try_from(pid).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: pidfd_open takes two integers by value and touches no memory of
    // ours; an error is reported as -1 with errno.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    let fd = RawFd::try_from(fd).map_err(|_| io::Error::other("pidfd_open returned an impossible descriptor"))?;
    // SAFETY: the kernel just opened `fd` for us: it is valid, and nothing
    // else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Sends `SIGKILL` to every process of group `pgid` (`kill(-pgid, SIGKILL)`).
pub(super) fn kill_group(pgid: u32) -> io::Result<()> {
    let pgid = libc::pid_t::try_from(pgid)
        .ok()
        .filter(|&pgid| pgid > 1)
        .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: kill takes two integers by value and touches no memory; a
    // negative pid names a process group (never "every process", which is
    // -1, excluded above).
    if unsafe { libc::kill(-pgid, libc::SIGKILL) } == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
