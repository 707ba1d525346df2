//! `runtime::io::Source`: descriptors from elsewhere (`std` sockets, pipes)
//! on the hub: non-blocking mode, parking reads and writes, timeouts, waiting
//! without a buffer, and handing the descriptor back.

mod util;

use std::cell::Cell;
use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::rc::Rc;
use std::time::{Duration, Instant};

use runtime::io::{Source, wait_readable};
use util::ms;

/// A connected pair of `std` Unix stream sockets (blocking, as std makes
/// them), each wrapped in a `Source`.
fn source_pair() -> (Source<UnixStream>, Source<UnixStream>) {
    let (a, b) = UnixStream::pair().unwrap();
    (Source::new(a).unwrap(), Source::new(b).unwrap())
}

/// Writes into `source` until its send buffer is full; returns how much.
fn fill(source: &Source<UnixStream>) -> usize {
    let chunk = vec![7_u8; 64 * 1024];
    let mut written = 0;
    loop {
        match source.try_write_with(|mut stream| stream.write(&chunk)) {
            Ok(n) => written += n,
            Err(err) if err.kind() == ErrorKind::WouldBlock => return written,
            Err(err) => panic!("filling the buffer: {err}"),
        }
    }
}

#[test]
fn new_puts_a_blocking_descriptor_in_non_blocking_mode() {
    util::run(|| {
        let (a, _b) = UnixStream::pair().unwrap();
        assert!(!util::is_nonblocking(a.as_fd()));
        let a = Source::new(a).unwrap();
        assert!(util::is_nonblocking(a.as_fd()));
        // So a read with nothing there says so instead of blocking the hub.
        let err = a.try_read_with(|mut stream| stream.read(&mut [0; 8])).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::WouldBlock);
        // And the mode stays when the descriptor is handed back.
        let a = a.into_inner();
        assert!(util::is_nonblocking(a.as_fd()));
    });
}

#[test]
fn new_works_for_pipes_too() {
    util::run(|| {
        let (reader, writer) = util::blocking_pipe();
        let reader = Source::new(reader).unwrap();
        let writer = Source::new(writer).unwrap();
        assert!(util::is_nonblocking(reader.as_fd()) && util::is_nonblocking(writer.as_fd()));
        let written = Rc::new(Cell::new(false));
        let other = runtime::spawn({
            let written = written.clone();
            move || {
                runtime::sleep(ms(20));
                written.set(true);
                writer.write_with(|mut pipe| pipe.write(b"through a pipe")).unwrap()
            }
        });
        let mut buf = [0; 32];
        let n = reader.read_with(|mut pipe: &File| pipe.read(&mut buf)).unwrap();
        assert!(written.get(), "read_with returned before anything was written");
        assert_eq!(&buf[..n], b"through a pipe");
        assert_eq!(other.join().unwrap(), n);
        // The writer's source was dropped with its greenlet, closing the
        // pipe's write end: end of file.
        assert_eq!(reader.read_with(|mut pipe| pipe.read(&mut buf)).unwrap(), 0);
    });
}

#[test]
fn read_with_parks_only_the_calling_greenlet_until_data_arrives() {
    util::run(|| {
        let (a, b) = source_pair();
        let ticks = Rc::new(Cell::new(0));
        // Another greenlet keeps running while the reader waits.
        let ticker = runtime::spawn({
            let ticks = ticks.clone();
            move || {
                for _ in 0..5 {
                    ticks.set(ticks.get() + 1);
                    runtime::sleep(ms(5));
                }
                b.write_with(|mut stream| stream.write_all(b"late")).unwrap();
                b
            }
        });
        let mut buf = [0; 4];
        let n = a.read_with(|mut stream| stream.read(&mut buf)).unwrap();
        assert_eq!(&buf[..n], &b"late"[..n]);
        assert_eq!(ticks.get(), 5, "the reader came back before the writer wrote");
        drop(ticker.join().unwrap());
    });
}

#[test]
fn read_and_write_impls_park_in_both_directions() {
    util::run(|| {
        let (mut a, mut b) = source_pair();
        let data = util::random_bytes(4 << 20, 3);
        // More than the socket buffers hold: the writer parks until the reader
        // has made room, and the reader parks until there is more.
        let writer = runtime::spawn({
            let data = data.clone();
            move || {
                a.write_all(&data).unwrap();
                a.flush().unwrap();
            }
        });
        let mut received = vec![0; data.len()];
        b.read_exact(&mut received).unwrap();
        assert!(received == data, "the bytes arrived changed");
        writer.join().unwrap();
        // The writer's greenlet is over and its source dropped: the socket is
        // closed, so the peer reads end of file.
        assert_eq!(b.read(&mut [0; 1]).unwrap(), 0);
    });
}

#[test]
fn write_with_parks_while_the_send_buffer_is_full() {
    util::run(|| {
        let (a, b) = source_pair();
        let queued = fill(&a);
        assert!(queued > 0);
        let drained = Rc::new(Cell::new(0));
        let reader = runtime::spawn({
            let drained = drained.clone();
            move || {
                runtime::sleep(ms(20));
                let mut buf = vec![0; 64 * 1024];
                while drained.get() < queued {
                    let n = b.read_with(|mut stream| stream.read(&mut buf)).unwrap();
                    drained.set(drained.get() + n);
                }
                b
            }
        });
        a.write_with(|mut stream| stream.write(b"one more")).unwrap();
        assert!(drained.get() > 0, "write_with returned while the buffer was still full");
        drop(reader.join().unwrap());
    });
}

#[test]
fn readable_after_would_block_waits_for_new_data() {
    util::run(|| {
        let (a, b) = source_pair();
        // Freshly registered, the source may be ready: readable returns at
        // once, and the attempt tells it otherwise.
        a.readable().unwrap();
        let err = a.try_read_with(|mut stream| stream.read(&mut [0; 8])).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::WouldBlock);
        let written = Rc::new(Cell::new(false));
        let writer = runtime::spawn({
            let written = written.clone();
            move || {
                runtime::sleep(ms(20));
                written.set(true);
                b.write_with(|mut stream| stream.write_all(b"now")).unwrap();
                b
            }
        });
        a.readable().unwrap();
        assert!(written.get(), "readable returned before anything was written");
        let mut buf = [0; 8];
        let n = a.try_read_with(|mut stream| stream.read(&mut buf)).unwrap();
        assert_eq!(&buf[..n], b"now");
        drop(writer.join().unwrap());
    });
}

#[test]
fn timeouts_apply_per_direction() {
    util::run(|| {
        let (a, _b) = source_pair();
        assert_eq!(a.read_timeout(), None);
        a.set_read_timeout(Some(ms(50))).unwrap();
        assert_eq!(a.read_timeout(), Some(ms(50)));
        assert_eq!(a.write_timeout(), None);
        let started = Instant::now();
        let err = a.read_with(|mut stream| stream.read(&mut [0; 8])).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TimedOut, "{err}");
        assert!(started.elapsed() >= ms(50), "timed out after only {:?}", started.elapsed());
        // readable honours it too (the read above left the source not ready).
        let started = Instant::now();
        assert_eq!(a.readable().unwrap_err().kind(), ErrorKind::TimedOut);
        assert!(started.elapsed() >= ms(50));
        // Writing is not limited by the read timeout: it does not block.
        a.write_with(|mut stream| stream.write(b"x")).unwrap();
        // The write timeout, with the buffer full.
        fill(&a);
        a.set_write_timeout(Some(ms(30))).unwrap();
        let started = Instant::now();
        let err = a.write_with(|mut stream| stream.write(b"more")).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TimedOut, "{err}");
        assert!(started.elapsed() >= ms(30));
        // As in std, a zero timeout is refused, and None waits forever again.
        assert_eq!(a.set_read_timeout(Some(Duration::ZERO)).unwrap_err().kind(), ErrorKind::InvalidInput);
        a.set_read_timeout(None).unwrap();
        assert_eq!(a.read_timeout(), None);
    });
}

#[test]
fn into_inner_deregisters_the_descriptor() {
    util::run(|| {
        let (a, mut b) = UnixStream::pair().unwrap();
        let a = Source::new(a).unwrap();
        // While wrapped, the descriptor is the source's: waiting on it by
        // itself is refused.
        let err = wait_readable(a.get_ref(), Some(ms(10))).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::AlreadyExists, "{err}");
        let a = a.into_inner();
        b.write_all(b"x").unwrap();
        wait_readable(&a, Some(util::PATIENCE)).unwrap();
        // And it can be wrapped again.
        let a = Source::new(a).unwrap();
        let mut buf = [0; 1];
        a.read_with(|mut stream| stream.read(&mut buf)).unwrap();
        assert_eq!(&buf, b"x");
    });
}

#[test]
fn dropping_a_source_closes_its_descriptor() {
    util::run(|| {
        let (a, b) = source_pair();
        let reader = runtime::spawn(move || b.read_with(|mut stream| stream.read(&mut [0; 8])));
        runtime::yield_now();
        drop(a);
        assert_eq!(reader.join().unwrap().unwrap(), 0, "the peer sees end of file");
    });
}

#[test]
fn regular_files_are_refused() {
    util::run(|| {
        let dir = util::TempDir::new();
        let file = File::create(dir.join("plain")).unwrap();
        // epoll cannot wait on a regular file (it is always ready).
        let err = Source::new(file).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");
    });
}

#[test]
fn an_error_already_returned_does_not_keep_readable_from_waiting() {
    util::run(|| {
        // A connected UDP socket whose peer port is closed: the kernel's
        // "port unreachable" makes the hub see an error event on it.
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.connect(util::unused_addr()).unwrap();
        let socket = Source::new(socket).unwrap();
        socket.write_with(|socket| socket.send(b"anyone?")).unwrap();
        // Let the hub poll, so it sees the error event.
        runtime::sleep(ms(10));
        let mut buf = [0; 16];
        let err = socket.read_with(|socket| socket.recv(&mut buf)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ConnectionRefused);
        // The error was returned once; now nothing is there.
        let again = socket.try_read_with(|socket| socket.recv(&mut buf)).unwrap_err();
        assert_eq!(again.kind(), ErrorKind::WouldBlock);
        // So `readable` waits for an event instead of returning at once
        // because of the error event seen earlier.
        socket.set_read_timeout(Some(ms(50))).unwrap();
        let start = Instant::now();
        assert_eq!(socket.readable().unwrap_err().kind(), ErrorKind::TimedOut);
        assert!(start.elapsed() >= ms(50));
    });
}
