//! Greenlets and a gevent-style hub for Rust: write servers in plain blocking
//! style and hold thousands of connections on one thread.
//!
//! ```no_run
//! use std::io::{Read, Write};
//! use runtime::net::TcpListener;
//!
//! runtime::run(|| {
//!     let listener = TcpListener::bind("127.0.0.1:7000").unwrap();
//!     for stream in listener.incoming() {
//!         let mut stream = stream.unwrap();
//!         runtime::spawn(move || {
//!             let mut buf = [0; 1024];
//!             loop {
//!                 match stream.read(&mut buf) {
//!                     Ok(0) | Err(_) => break,
//!                     Ok(n) => stream.write_all(&buf[..n]).unwrap(),
//!                 }
//!             }
//!         });
//!     }
//! });
//! ```
//!
//! # Architecture
//!
//! Three crates, re-exported here (four with the `hooks` feature):
//!
//! - [`greenlet`]: symmetric stackful coroutines (Python's `greenlet`) on
//!   `corosensei`, with pooled, guard-paged stacks.
//! - the hub (`runtime-scheduler`): [`run`] makes the calling thread a hub: a
//!   loop on the thread's main greenlet that runs a FIFO queue of greenlets,
//!   timers, `mio` readiness and work from other threads. Every blocking call
//!   parks the calling greenlet on the hub instead of blocking the thread. Its
//!   primitives are in [`sync`] and at the top level ([`spawn`], [`sleep`],
//!   [`timeout`], [`blocking`], [`Pool`], ...).
//! - blocking-style networking (`runtime-io`): [`net`] mirrors `std::net`
//!   (plus Unix sockets and gevent's [`StreamServer`](net::StreamServer) and
//!   [`DatagramServer`](net::DatagramServer)), so code ports by changing an
//!   import; [`io`] brings any other file descriptor onto the hub;
//!   [`process`] runs child processes whose waits and pipes park only the
//!   greenlet; [`signal`] delivers Unix signals to a greenlet.
//! - cooperative std (`runtime-hooks`, as `runtime::hooks` with the `hooks`
//!   feature): libc's blocking functions, interposed, so that unmodified
//!   code (`std::net`, `std::thread::sleep`, child processes, DNS, blocking
//!   client crates) parks only its greenlet; see the README's "Cooperative
//!   std".
//!
//! Futures run in blocking style too: [`block_on`] parks only the calling
//! greenlet until its future is done (outside a runtime it blocks the
//! thread). With the `futures-io` and `tokio-io` features, [`net::TcpStream`]
//! and [`net::UnixStream`] implement the async I/O traits of `futures` and of
//! tokio, so async crates (hyper, through `hyper_util::rt::TokioIo`) run on
//! the hub's sockets; see the README's "Using async crates".
//!
//! Greenlets never leave the thread of their hub, so thread-locals stay
//! sound; [`Builder::run_each`] runs one hub per core ([`hub_index`] tells
//! which), each typically with its own listener on a shared port
//! ([`net::TcpSocket`] with `SO_REUSEPORT`), sharing work through the
//! [`sync`] types, which cross hubs and threads. [`dump`] lists a hub's
//! greenlets and what each is parked on (`TcpStream::read fd 7, read timeout
//! 5s`), for a debugging endpoint or a signal handler.

#![forbid(unsafe_code)]
// Every doc test of this crate (the README's examples included) compiles
// without warnings.
#![doc(test(attr(deny(warnings))))]

pub use greenlet;
#[cfg(feature = "hooks")]
pub use runtime_hooks as hooks;

/// Keeps the hooks in every executable that links this crate with the
/// `hooks` feature: the linker would otherwise be free to leave out an
/// object whose symbols (libc's names) are all defined in libc already.
/// `tests/hooks.rs` checks that the interposition happens.
#[cfg(feature = "hooks")]
#[used]
static LINK_HOOKS: fn() -> usize = runtime_hooks::link;
pub use runtime_io::{net, process, signal};
pub use runtime_scheduler::{
    Builder, Closed, Dump, Elapsed, GreenletInfo, Group, Handle, JoinError, JoinHandle, JoinSet, KillOnDrop, LinkId,
    MAX_BLOCKING_TIME_ENV, Metrics, Pool, PoolFull, Scope, ScopedJoinHandle, Timeout, block_on, blocking, catch_panic,
    dump, greenlet_id, hub_index, is_cancellation, is_timeout, joinall, joinall_timeout, killall, metrics, run, scope,
    select, sleep, sleep_until, spawn, spawn_later, sync, task, timeout, timeout_at, try_joinall, wait_any, wait_idle,
    yield_now,
};

/// Any file descriptor on the hub, for integrating libraries that do their
/// own non-blocking I/O: [`Source`](io::Source) owns one and runs its
/// operations in blocking style; [`wait_readable`](io::wait_readable) and
/// [`wait_writable`](io::wait_writable) wait on one without taking it over.
/// [`copy_bidirectional`](io::copy_bidirectional) proxies between two stream
/// sockets, both ways at once.
///
/// ```
/// use std::io::{Read, Write};
/// use std::os::unix::net::UnixStream;
///
/// runtime::run(|| {
///     let (a, b) = UnixStream::pair()?;
///     let (mut a, mut b) = (runtime::io::Source::new(a)?, runtime::io::Source::new(b)?);
///     runtime::spawn(move || b.write_all(b"hello"));
///     let mut buf = [0; 5];
///     a.read_exact(&mut buf)?; // parks until the other greenlet wrote
///     assert_eq!(&buf, b"hello");
///     Ok::<_, std::io::Error>(())
/// })?;
/// # Ok::<_, std::io::Error>(())
/// ```
pub mod io {
    pub use runtime_io::{
        Source, StreamSocket, copy_bidirectional, copy_bidirectional_timeout, wait_readable, wait_writable,
    };
    pub use runtime_scheduler::{Direction, Registration};
}

/// The README's examples, compiled and run as doc tests (with the
/// `tokio-io` feature, which its hyper example needs: `.ci/run` tests with
/// the async I/O features too).
#[cfg(all(doctest, feature = "tokio-io"))]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
