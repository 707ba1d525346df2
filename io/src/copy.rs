//! Proxying: [`copy_bidirectional`] and [`copy_bidirectional_timeout`] copy
//! between two stream sockets both ways at once, one scoped greenlet per
//! direction, and pass a half-close on.

use std::cell::Cell;
use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::time::{Duration, Instant};

use runtime_scheduler::sync::channel::{self, RecvTimeoutError};
use runtime_scheduler::task;

use crate::net::{TcpStream, UnixStream};

/// Bytes read at a time by each direction, in a buffer on the heap: the
/// copying greenlets run on small stacks.
const BUF_SIZE: usize = 32 * 1024;

/// A connected stream socket that [`copy_bidirectional`] can proxy:
/// [`TcpStream`] or [`UnixStream`] (sealed: the copy needs to read and write
/// the socket from two greenlets at once and to shut down its write side).
pub trait StreamSocket: sealed::Sealed {}

mod sealed {
    use std::io;

    /// What the copy needs of a socket, out of reach of other crates.
    pub trait Sealed {
        fn read_some(&self, buf: &mut [u8]) -> io::Result<usize>;
        fn write_some(&self, buf: &[u8]) -> io::Result<usize>;
        fn shutdown_write(&self) -> io::Result<()>;
    }
}

macro_rules! stream_socket {
    ($stream:ty) => {
        impl StreamSocket for $stream {}

        impl sealed::Sealed for $stream {
            fn read_some(&self, buf: &mut [u8]) -> io::Result<usize> {
                Read::read(&mut &*self, buf)
            }

            fn write_some(&self, buf: &[u8]) -> io::Result<usize> {
                Write::write(&mut &*self, buf)
            }

            fn shutdown_write(&self) -> io::Result<()> {
                self.shutdown(Shutdown::Write)
            }
        }
    };
}

stream_socket!(TcpStream);
stream_socket!(UnixStream);

/// Copies between `a` and `b` in both directions at once until both
/// directions have ended, and returns the bytes copied from `a` to `b` and
/// from `b` to `a` (tokio's `copy_bidirectional`, for this crate's sockets).
///
/// Each direction runs in its own greenlet, spawned in a
/// [`runtime::scope`](runtime_scheduler::scope) (so they borrow `a` and `b`,
/// and cannot outlive this call). When one side reaches end-of-file, the write
/// side of the other is shut down (`shutdown(Write)`, so its peer sees
/// end-of-file too), and the other direction goes on until it ends as well:
/// a half-close goes through the proxy. An error in either direction ends
/// both, and is returned.
///
/// If the calling greenlet is killed or times out (a [`StreamServer`] being
/// stopped, a `runtime::timeout` around the call), both copying greenlets are
/// killed and have unwound before it goes on unwinding, so nothing holds the
/// sockets after the caller drops them.
///
/// The sockets' own read and write timeouts apply to the copy: one that
/// expires is an error. For a limit on silence, use
/// [`copy_bidirectional_timeout`].
///
/// ```
/// use std::io::{Read, Write};
/// use std::net::Shutdown;
/// use runtime::net::UnixStream;
///
/// runtime::run(|| {
///     // client <-> (a | proxy | b) <-> server
///     let (mut client, a) = UnixStream::pair()?;
///     let (b, mut server) = UnixStream::pair()?;
///     let proxy = runtime::spawn(move || runtime::io::copy_bidirectional(&a, &b));
///     client.write_all(b"ping")?;
///     client.shutdown(Shutdown::Write)?; // the server sees end-of-file...
///     let mut request = Vec::new();
///     server.read_to_end(&mut request)?;
///     server.write_all(b"pong")?; // ...and can still answer
///     drop(server);
///     let mut reply = Vec::new();
///     client.read_to_end(&mut reply)?;
///     assert_eq!((&request[..], &reply[..]), (&b"ping"[..], &b"pong"[..]));
///     assert_eq!(proxy.join().unwrap()?, (4, 4));
///     Ok::<_, std::io::Error>(())
/// })?;
/// # Ok::<_, std::io::Error>(())
/// ```
///
/// [`StreamServer`]: crate::net::StreamServer
///
/// # Errors
///
/// The first error of either direction: of a read, a write, or of the
/// shutdown that passes a half-close on (except `NotConnected`, which only
/// says the far side is gone already).
///
/// # Panics
///
/// Outside a greenlet of the runtime.
#[track_caller]
pub fn copy_bidirectional<A, B>(a: &A, b: &B) -> io::Result<(u64, u64)>
where
    A: StreamSocket,
    B: StreamSocket,
{
    copy_both(a, b, None)
}

/// Like [`copy_bidirectional`], but ends with a `TimedOut` error once `idle`
/// has passed with no traffic in either direction: nothing read from either
/// socket and nothing written to either. Traffic in one direction alone
/// keeps both going (a download while the client says nothing).
///
/// ```
/// use std::io::ErrorKind;
/// use std::time::Duration;
/// use runtime::net::UnixStream;
///
/// runtime::run(|| {
///     let (_client, a) = UnixStream::pair()?;
///     let (b, _server) = UnixStream::pair()?;
///     // Nobody says anything.
///     let err = runtime::io::copy_bidirectional_timeout(&a, &b, Duration::from_millis(20)).unwrap_err();
///     assert_eq!(err.kind(), ErrorKind::TimedOut);
///     Ok::<_, std::io::Error>(())
/// })?;
/// # Ok::<_, std::io::Error>(())
/// ```
///
/// # Errors
///
/// `TimedOut` after `idle` without traffic; `InvalidInput` for a zero
/// `idle`; otherwise as [`copy_bidirectional`].
///
/// # Panics
///
/// Outside a greenlet of the runtime.
#[track_caller]
pub fn copy_bidirectional_timeout<A, B>(a: &A, b: &B, idle: Duration) -> io::Result<(u64, u64)>
where
    A: StreamSocket,
    B: StreamSocket,
{
    if idle.is_zero() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "cannot set a 0 duration idle timeout"));
    }
    copy_both(a, b, Some(idle))
}

/// Which way a copying greenlet goes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Way {
    AToB,
    BToA,
}

#[track_caller]
fn copy_both<A, B>(a: &A, b: &B, idle: Option<Duration>) -> io::Result<(u64, u64)>
where
    A: StreamSocket,
    B: StreamSocket,
{
    let last_traffic = Cell::new(Instant::now());
    runtime_scheduler::scope(|s| {
        let (tx, rx) = channel::bounded::<(Way, io::Result<u64>)>(2);
        let builder = task::Builder::new().name("copy_bidirectional");
        let to_b = {
            let (tx, last_traffic) = (tx.clone(), &last_traffic);
            s.spawn_with(builder.clone(), move || {
                let _ = tx.send((Way::AToB, copy_one_way(a, b, last_traffic)));
            })
        };
        let to_a = {
            let last_traffic = &last_traffic;
            s.spawn_with(builder, move || {
                let _ = tx.send((Way::BToA, copy_one_way(b, a, last_traffic)));
            })
        };
        let (mut a_to_b, mut b_to_a) = (None, None);
        while a_to_b.is_none() || b_to_a.is_none() {
            let received = match idle {
                None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
                Some(idle) => rx.recv_deadline(last_traffic.get() + idle),
            };
            let (way, result) = match received {
                Ok(done) => done,
                Err(RecvTimeoutError::Timeout) => {
                    let idle = idle.expect("only a timed wait times out");
                    if last_traffic.get().elapsed() < idle {
                        continue; // traffic came meanwhile: wait on from it
                    }
                    to_b.kill();
                    to_a.kill();
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("no traffic in either direction for {idle:?}"),
                    ));
                }
                // A copying greenlet ended without a word: it panicked, which
                // the scope reports once both are joined.
                Err(RecvTimeoutError::Disconnected) => {
                    to_b.kill();
                    to_a.kill();
                    return Err(io::Error::other("a copying greenlet panicked"));
                }
            };
            match result {
                Ok(n) if way == Way::AToB => a_to_b = Some(n),
                Ok(n) => b_to_a = Some(n),
                Err(err) => {
                    // An error in one direction ends the other; the scope
                    // waits for it to unwind.
                    to_b.kill();
                    to_a.kill();
                    return Err(err);
                }
            }
        }
        Ok((a_to_b.unwrap_or(0), b_to_a.unwrap_or(0)))
    })
}

/// Copies from `from` to `to` until end-of-file, then shuts down the write
/// side of `to`; notes the time of every read and write in `last_traffic`.
fn copy_one_way<R, W>(from: &R, to: &W, last_traffic: &Cell<Instant>) -> io::Result<u64>
where
    R: StreamSocket,
    W: StreamSocket,
{
    let mut buf = vec![0; BUF_SIZE];
    let mut total = 0;
    loop {
        let n = match from.read_some(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(err),
        };
        last_traffic.set(Instant::now());
        let mut written = 0;
        while written < n {
            match to.write_some(&buf[written..n]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(m) => {
                    written += m;
                    last_traffic.set(Instant::now());
                }
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) => return Err(err),
            }
        }
        total += n as u64;
    }
    match to.shutdown_write() {
        Err(err) if err.kind() != io::ErrorKind::NotConnected => Err(err),
        _ => Ok(total),
    }
}
