//! Blocking-style networking on the hub: sockets whose blocking calls park
//! only the calling greenlet, so plain sequential server code runs
//! concurrently on one thread.
//!
//! [`net`] mirrors `std::net` and `std::os::unix::net` (plus
//! [`TcpSocket`](net::TcpSocket), for options that come before `bind`, such
//! as `SO_REUSEPORT` for one listener per hub); [`Source`] brings any
//! other file descriptor onto the hub (async-io's `Async<T>`), and
//! [`wait_readable`] and [`wait_writable`] wait on one without taking it over;
//! [`copy_bidirectional`] proxies between two stream sockets;
//! [`StreamServer`](net::StreamServer) runs a handler per connection in a
//! [`runtime::Pool`](runtime_scheduler::Pool); [`signal`] delivers Unix
//! signals to a greenlet.
//!
//! ```
//! use std::io::{Read, Write};
//! use runtime::net::{TcpListener, TcpStream};
//!
//! runtime::run(|| {
//!     let listener = TcpListener::bind("127.0.0.1:0")?;
//!     let addr = listener.local_addr()?;
//!     runtime::spawn(move || -> std::io::Result<()> {
//!         let (mut conn, _) = listener.accept()?;
//!         let mut buf = [0; 5];
//!         conn.read_exact(&mut buf)?;
//!         conn.write_all(&buf)
//!     });
//!     let mut client = TcpStream::connect(addr)?;
//!     client.write_all(b"hello")?;
//!     let mut echo = [0; 5];
//!     client.read_exact(&mut echo)?;
//!     assert_eq!(&echo, b"hello");
//!     Ok::<_, std::io::Error>(())
//! })?;
//! # Ok::<_, std::io::Error>(())
//! ```
//!
//! # Async code
//!
//! The same sockets serve async code (for crates such as hyper), run with
//! [`runtime::block_on`](runtime_scheduler::block_on), which parks only the
//! calling greenlet: [`Source::poll_readable`], [`Source::poll_read_with`]
//! and their write twins, and
//! [`TcpListener::poll_accept`](net::TcpListener::poll_accept), register the
//! task's waker with the hub's reactor. Two features implement
//! the async I/O traits for [`TcpStream`](net::TcpStream) and
//! [`UnixStream`](net::UnixStream), and for references to them:
//!
//! - `futures-io`: `futures_io::AsyncRead` and `AsyncWrite`;
//! - `tokio-io`: `tokio::io::AsyncRead` and `AsyncWrite` (tokio without any
//!   of its own features: only the traits).
//!
//! `poll_flush` does nothing and `poll_close`/`poll_shutdown` shut down the
//! write half. Polls share the readiness state of the blocking calls, so a
//! stream can be used from async code and blocking code in turn. They ignore
//! read and write timeouts (put a
//! [`runtime::timeout`](runtime_scheduler::timeout) around the `block_on`
//! instead).
//!
//! # Implementation
//!
//! Each socket is a [`Source`] over a non-blocking `mio` socket, registered
//! once with the hub's poller, edge-triggered, for both directions. An
//! operation is tried while the socket may be ready; when it would block (or a
//! read comes back short), the greenlet parks until the hub sees a readiness
//! event. Reads and writes
//! of one socket wait independently, so one greenlet can read while another
//! writes. A greenlet whose operations always succeed at once yields every
//! 128 of them, so it cannot starve the others.

#![forbid(unsafe_code)]

mod copy;
pub mod net;
mod server;
pub mod signal;
mod source;
mod wait;

pub use crate::copy::{StreamSocket, copy_bidirectional, copy_bidirectional_timeout};
pub use crate::source::Source;
pub use crate::wait::{wait_readable, wait_writable};
