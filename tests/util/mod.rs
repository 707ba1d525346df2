//! Helpers shared by the networking test files.
//!
//! Every test file includes this module with `mod util;` and uses only part of
//! it, hence the `dead_code` allowance.
#![allow(dead_code)]

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use runtime::net::{TcpListener, TcpStream};

/// `n` milliseconds.
pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// How long a test waits for something that should happen "soon" before it
/// fails instead of hanging. Generous: it only bounds a hang, never speed.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// How long one test's runtime may run before the test fails: a watchdog
/// that turns a hang (a lost wake-up, an ignored timeout) into a failure.
pub const WATCHDOG: Duration = Duration::from_secs(60);

/// Runs `f` on a new runtime with `runtime::run`, failing if it has not
/// finished after [`WATCHDOG`] (the main greenlet is unwound at the point
/// where it waits).
pub fn run<T: 'static>(f: impl FnOnce() -> T + 'static) -> T {
    runtime::run(move || {
        runtime::timeout(WATCHDOG, f).unwrap_or_else(|_| panic!("the test did not finish within {WATCHDOG:?}"))
    })
}

/// A connected pair of TCP streams on 127.0.0.1: `(client, server)`.
pub fn tcp_pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let client = TcpStream::connect(listener.local_addr().unwrap()).expect("connect to our own listener");
    let (server, peer) = listener.accept().expect("accept");
    assert_eq!(peer, client.local_addr().unwrap());
    (client, server)
}

/// An address on 127.0.0.1 where nothing listens (a port that was just freed).
pub fn unused_addr() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

/// Reads from `stream` until end-of-file, like `read_to_end`, but through the
/// `Read` impl of a shared reference.
pub fn read_all(mut stream: impl Read) -> io::Result<Vec<u8>> {
    let mut data = Vec::new();
    stream.read_to_end(&mut data)?;
    Ok(data)
}

/// An echo loop: reads and writes back until end-of-file or an error.
pub fn echo(mut stream: impl Read + Write) -> io::Result<u64> {
    let mut buf = vec![0; 64 * 1024];
    let mut total = 0;
    loop {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Ok(total);
        }
        stream.write_all(&buf[..n])?;
        total += n as u64;
    }
}

/// Parks (polling every few milliseconds) until `condition` holds; panics
/// naming `what` if it has not after [`PATIENCE`].
#[track_caller]
pub fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !condition() {
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        runtime::sleep(ms(2));
    }
}

/// Spawns `n` greenlets that only ever yield: they keep the run queue long,
/// so that the hub polls for I/O events between two turns of any other
/// greenlet. Kill them when done.
pub fn spawn_fillers(n: usize) -> Vec<runtime::JoinHandle<()>> {
    fn filler() {
        loop {
            runtime::yield_now();
        }
    }
    (0..n).map(|_| runtime::spawn(filler)).collect()
}

/// A regression scenario for readiness bookkeeping around the I/O budget.
///
/// A greenlet that completes many operations in a row yields to the hub in
/// the middle of one (every so many operations, so others get a turn). If that
/// operation is a short read, the stream is marked drained; data that arrives
/// while the greenlet is yielded, and the hub's record of its readiness event,
/// must survive that marking, or the next read waits for an event that came
/// already. For every position `k` of the short read up to 300 (covering the
/// budget's boundary), the reader gets `k - 1` full reads and a short one
/// queued up front; a writer adds more data only once the reader is inside
/// read `k`; many other runnable greenlets make sure the hub polls for events
/// before the reader runs again.
pub fn short_read_during_budget_yield<S: 'static>(pair: impl Fn() -> (S, S))
where
    for<'a> &'a S: Read + Write,
{
    const CHUNK: usize = 10;
    let fillers = spawn_fillers(100);
    for k in 1..=300 {
        let (writer_end, reader_end) = pair();
        let queued = (k - 1) * CHUNK + CHUNK / 2;
        (&writer_end).write_all(&vec![1; queued]).unwrap();
        let reads = std::rc::Rc::new(std::cell::Cell::new(0));
        let reader = runtime::spawn({
            let reads = reads.clone();
            move || {
                let total = queued + 7;
                let mut got = 0;
                let outcome = runtime::timeout(Duration::from_secs(10), || {
                    while got < total {
                        let mut buf = [0; CHUNK];
                        let n = (&reader_end).read(&mut buf).unwrap();
                        assert!(n > 0, "end-of-file");
                        got += n;
                        reads.set(reads.get() + 1);
                    }
                });
                assert!(outcome.is_ok(), "short read at position {k}: the data written later was never read");
            }
        });
        let writer = runtime::spawn(move || {
            while reads.get() < k - 1 {
                runtime::yield_now();
            }
            (&writer_end).write_all(b"1234567").unwrap();
            writer_end
        });
        reader.join().unwrap();
        drop(writer.join().unwrap());
    }
    for filler in fillers {
        filler.kill();
    }
}

/// `len` pseudo-random bytes (xorshift64*), the same for the same `seed`.
pub fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        out.extend_from_slice(&state.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// The number of open file descriptors of this process (entries of
/// `/proc/self/fd`, less the one used to list them).
pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").expect("/proc/self/fd").count() - 1
}

/// The open file descriptor numbers of this process, sorted.
pub fn open_fd_numbers() -> Vec<i32> {
    let listing = std::fs::read_dir("/proc/self/fd").expect("/proc/self/fd");
    let mut fds: Vec<i32> = listing.filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok()).collect();
    fds.sort_unstable();
    // One of them was the directory being listed, now closed.
    fds.retain(|&fd| fd_is_open(fd));
    fds
}

/// Whether `fd` is in non-blocking mode (`O_NONBLOCK`).
pub fn is_nonblocking(fd: std::os::fd::BorrowedFd<'_>) -> bool {
    use std::os::fd::AsRawFd;
    // SAFETY: F_GETFL only reads the flags of a descriptor the borrow keeps
    // open.
    let flags = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) };
    assert_ne!(flags, -1, "fcntl(F_GETFL): {}", io::Error::last_os_error());
    flags & libc::O_NONBLOCK != 0
}

fn fd_is_open(fd: i32) -> bool {
    // SAFETY: F_GETFD only queries the descriptor table; an unused number
    // gives EBADF.
    unsafe { libc::fcntl(fd, libc::F_GETFD) != -1 }
}

/// `RLIMIT_NOFILE` as `(soft, hard)`.
#[allow(clippy::unnecessary_cast, reason = "`rlim_t` is narrower than `u64` on some targets")]
pub fn nofile_limit() -> (u64, u64) {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: `limit` is a valid, writable `rlimit`.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
    assert_eq!(rc, 0, "getrlimit: {}", io::Error::last_os_error());
    (limit.rlim_cur as u64, limit.rlim_max as u64)
}

/// Sets the soft `RLIMIT_NOFILE`, keeping the hard limit.
#[allow(clippy::unnecessary_cast, reason = "`rlim_t` is narrower than `u64` on some targets")]
pub fn set_nofile_soft_limit(soft: u64) {
    let (_, hard) = nofile_limit();
    let limit = libc::rlimit { rlim_cur: soft as libc::rlim_t, rlim_max: hard as libc::rlim_t };
    // SAFETY: `limit` is a valid `rlimit`; lowering or raising the soft limit
    // within the hard one is always allowed.
    let rc = unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) };
    assert_eq!(rc, 0, "setrlimit({soft}): {}", io::Error::last_os_error());
}

/// Makes sure this process may open at least `needed` file descriptors,
/// raising the soft limit towards the hard one if needed; panics if even the
/// hard limit is too low.
pub fn ensure_nofile(needed: u64) {
    let (soft, hard) = nofile_limit();
    if soft >= needed {
        return;
    }
    assert!(
        hard >= needed,
        "this test needs {needed} file descriptors but RLIMIT_NOFILE's hard limit is {hard} (raise it with `ulimit -Hn`)"
    );
    set_nofile_soft_limit(needed);
}

/// A fresh directory under the system's temporary directory, removed (with
/// its contents) when dropped.
#[derive(Debug)]
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new() -> TempDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let name = format!("runtime-net-tests-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        let path = std::env::temp_dir().join(name);
        std::fs::create_dir_all(&path).expect("create a temporary directory");
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A non-blocking pipe: `(read end, write end)`.
pub fn pipe() -> (std::fs::File, std::fs::File) {
    pipe_with_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
}

/// A pipe in blocking mode (as `std` creates descriptors): `(read end, write
/// end)`.
pub fn blocking_pipe() -> (std::fs::File, std::fs::File) {
    pipe_with_flags(libc::O_CLOEXEC)
}

fn pipe_with_flags(flags: libc::c_int) -> (std::fs::File, std::fs::File) {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), flags) };
    assert_eq!(rc, 0, "pipe2: {}", io::Error::last_os_error());
    use std::os::fd::FromRawFd;
    // SAFETY: pipe2 succeeded, so both descriptors are open and owned by
    // nobody else.
    unsafe { (std::fs::File::from_raw_fd(fds[0]), std::fs::File::from_raw_fd(fds[1])) }
}

#[allow(unused_imports)] // each test file uses some of them
pub use runtime_testkit::{Capture, is_child, output_text, rerun_in_child};

/// Runs `f` on a new runtime on a new thread; fails (instead of hanging) if
/// it has not returned after [`PATIENCE`], naming `what` could have blocked
/// the hub's thread.
pub fn guarded<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (done, outcome) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| runtime::run(f)));
        let _ = done.send(result);
    });
    match outcome.recv_timeout(PATIENCE) {
        Ok(Ok(value)) => value,
        Ok(Err(panic)) => std::panic::resume_unwind(panic),
        Err(_) => panic!("the hub hung: {what} blocked its thread"),
    }
}

/// A greenlet that counts its turns (sleeping 1 ms each) until dropped: it
/// only advances while the other greenlets park.
pub fn ticker() -> (std::rc::Rc<std::cell::Cell<u64>>, runtime::task::KillOnDrop<()>) {
    let ticks = std::rc::Rc::new(std::cell::Cell::new(0));
    let counter = ticks.clone();
    let handle = runtime::spawn(move || {
        loop {
            counter.set(counter.get() + 1);
            runtime::sleep(ms(1));
        }
    });
    (ticks, handle.kill_on_drop())
}
