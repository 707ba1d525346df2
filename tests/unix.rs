//! Unix domain sockets on the hub: stream pairs, a listener bound in a
//! temporary directory, datagrams, and the `std::os::unix::net`-shaped API.

mod util;

use std::io::{ErrorKind, Read, Write};
use std::net::Shutdown;
use std::rc::Rc;
use std::time::{Duration, Instant};

use runtime::net::{UnixDatagram, UnixListener, UnixStream};
use util::{TempDir, ms};

#[test]
fn stream_pair_round_trip() {
    util::run(|| {
        let (a, b) = UnixStream::pair().unwrap();
        let data = util::random_bytes(3 << 20, 7);
        let expected = data.clone();
        // More than the socket buffers hold, so the writer parks while the
        // reader (another greenlet) drains.
        let writer = runtime::spawn(move || {
            (&a).write_all(&data).unwrap();
            a.shutdown(Shutdown::Write).unwrap();
            a
        });
        let got = util::read_all(&b).unwrap();
        assert!(got == expected, "{} bytes received, expected {}", got.len(), expected.len());
        let a = writer.join().unwrap();
        // The other direction.
        (&b).write_all(b"back").unwrap();
        drop(b);
        assert_eq!(util::read_all(&a).unwrap(), b"back");
    });
}

#[test]
fn listener_bound_in_a_directory_accepts_and_echoes() {
    let dir = TempDir::new();
    let path = dir.join("echo.sock");
    util::run(move || {
        let listener = UnixListener::bind(&path).unwrap();
        assert_eq!(listener.local_addr().unwrap().as_pathname(), Some(path.as_path()));
        let server = runtime::spawn(move || {
            let mut served = 0;
            for stream in listener.incoming().take(3) {
                let stream = stream.unwrap();
                drop(runtime::spawn(move || util::echo(&stream).unwrap()));
                served += 1;
            }
            served
        });
        let clients: Vec<_> = (0..3_u8)
            .map(|i| {
                let path = path.clone();
                runtime::spawn(move || {
                    let mut stream = UnixStream::connect(&path).unwrap();
                    assert_eq!(stream.peer_addr().unwrap().as_pathname(), Some(path.as_path()));
                    let message = vec![i; 100_000];
                    let reader = stream.try_clone().unwrap();
                    let echoed = runtime::spawn(move || util::read_all(&reader).unwrap());
                    stream.write_all(&message).unwrap();
                    stream.shutdown(Shutdown::Write).unwrap();
                    assert!(echoed.join().unwrap() == message, "client {i}: wrong echo");
                })
            })
            .collect();
        for client in clients {
            client.join().unwrap();
        }
        assert_eq!(server.join().unwrap(), 3);
    });
}

#[test]
fn connecting_to_a_missing_path_fails() {
    let dir = TempDir::new();
    util::run(move || {
        let err = UnixStream::connect(dir.join("nobody-home.sock")).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
        // A socket file whose listener is gone refuses.
        let path = dir.join("gone.sock");
        drop(UnixListener::bind(&path).unwrap());
        let err = UnixStream::connect(&path).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ConnectionRefused, "{err}");
        // Binding over an existing file fails.
        let err = UnixListener::bind(&path).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::AddrInUse, "{err}");
    });
}

#[test]
fn data_and_eof_that_arrive_together_are_both_read() {
    util::run(|| {
        let (a, b) = UnixStream::pair().unwrap();
        (&a).write_all(b"final").unwrap();
        drop(a);
        runtime::sleep(ms(30));
        b.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut buf = [0; 32];
        assert_eq!((&b).read(&mut buf).unwrap(), 5);
        assert_eq!((&b).read(&mut buf).unwrap(), 0, "end-of-file after a short read");
    });
}

#[test]
fn a_short_read_during_the_budget_yield_keeps_later_readiness() {
    util::run(|| util::short_read_during_budget_yield(|| UnixStream::pair().unwrap()));
}

/// The write-side twin of `util::short_read_during_budget_yield`: a short
/// write that is also the operation spending the last of the writer's I/O
/// budget marks the send buffer full; the peer draining it while the writer
/// is yielded (and the hub recording the writable event) must not be
/// forgotten. Unix sockets make the buffer accounting deterministic: `k - 1`
/// one-byte writes fit, then a large write is cut short.
#[test]
fn a_short_write_during_the_budget_yield_keeps_later_readiness() {
    // How many one-byte writes a fresh socket takes before it would block
    // (each costs far more than a byte of the send buffer).
    let capacity = {
        let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        (0..).take_while(|_| (&a).write(&[1]).is_ok()).count()
    };
    let positions = 250.min(capacity.saturating_sub(2));
    if positions < 130 {
        eprintln!(
            "note: only {positions} small writes fit in a socket here; the I/O budget's boundary may not be covered"
        );
    }
    util::run(move || {
        let fillers = util::spawn_fillers(100);
        for k in 1..=positions {
            let (writer_end, reader_end) = UnixStream::pair().unwrap();
            let tiny = Rc::new(std::cell::Cell::new(0));
            let big = vec![2; 4 << 20];
            let expected = k - 1 + big.len();
            let writer = runtime::spawn({
                let tiny = tiny.clone();
                move || {
                    for _ in 1..k {
                        assert_eq!((&writer_end).write(&[1]).unwrap(), 1);
                        tiny.set(tiny.get() + 1);
                    }
                    let outcome = runtime::timeout(Duration::from_secs(10), || {
                        let n = (&writer_end).write(&big).unwrap();
                        (&writer_end).write_all(&big[n..]).unwrap();
                    });
                    assert!(outcome.is_ok(), "short write at position {k}: the writer never saw the buffer drain");
                }
            });
            // The writer gives up the CPU only inside a write: once its small
            // writes are done, it is inside the large one.
            while tiny.get() < k - 1 {
                runtime::yield_now();
            }
            reader_end.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
            let mut got = 0;
            let mut buf = vec![0; 1 << 20];
            while got < expected {
                let n = (&reader_end).read(&mut buf).unwrap();
                assert!(n > 0, "end-of-file after {got} of {expected} bytes (position {k})");
                got += n;
            }
            writer.join().unwrap();
        }
        for filler in fillers {
            filler.kill();
        }
    });
}

#[test]
fn stream_timeouts_and_nonblocking_mode() {
    util::run(|| {
        let (a, b) = UnixStream::pair().unwrap();
        b.set_read_timeout(Some(ms(50))).unwrap();
        let started = Instant::now();
        assert_eq!((&b).read(&mut [0; 4]).unwrap_err().kind(), ErrorKind::TimedOut);
        assert!(started.elapsed() >= ms(50));
        assert_eq!(b.set_read_timeout(Some(Duration::ZERO)).unwrap_err().kind(), ErrorKind::InvalidInput);
        // The write timeout, with a peer that never reads.
        a.set_write_timeout(Some(ms(50))).unwrap();
        let chunk = vec![0; 64 * 1024];
        let err = loop {
            let started = Instant::now();
            if let Err(err) = (&a).write(&chunk) {
                break (err, started.elapsed());
            }
        };
        assert_eq!(err.0.kind(), ErrorKind::TimedOut, "{}", err.0);
        assert!(err.1 >= ms(50));
        b.set_nonblocking(true).unwrap();
        // Data is queued now: non-blocking reads succeed until it is drained.
        let mut buf = vec![0; 1 << 20];
        let mut drained = 0;
        let last = loop {
            match (&b).read(&mut buf) {
                Ok(n) => drained += n,
                Err(err) => break err,
            }
        };
        assert_eq!(last.kind(), ErrorKind::WouldBlock);
        assert!(drained > 0);
    });
}

#[test]
fn stream_clone_and_std_conversion() {
    util::run(|| {
        let (std_a, std_b) = std::os::unix::net::UnixStream::pair().unwrap();
        let a = Rc::new(UnixStream::from_std(std_a).unwrap());
        let b = UnixStream::from_std(std_b).unwrap();
        let clone = a.try_clone().unwrap();
        (&clone).write_all(b"via clone").unwrap();
        drop(clone);
        let mut buf = [0; 9];
        (&b).read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"via clone");
        // Reader and writer greenlets share one stream.
        let reader = runtime::spawn({
            let a = a.clone();
            move || util::read_all(&*a).unwrap()
        });
        (&b).write_all(b"to the reader").unwrap();
        drop(b);
        assert_eq!(reader.join().unwrap(), b"to the reader");
        assert!(a.take_error().unwrap().is_none());
    });
}

#[test]
fn datagram_pair_round_trip() {
    util::run(|| {
        let (a, b) = UnixDatagram::pair().unwrap();
        let receiver = runtime::spawn(move || {
            let mut buf = [0; 32];
            let mut got = Vec::new();
            for _ in 0..3 {
                let n = b.recv(&mut buf).unwrap();
                got.push(buf[..n].to_vec());
            }
            got
        });
        for message in [&b"alpha"[..], b"", b"gamma"] {
            runtime::sleep(ms(2));
            assert_eq!(a.send(message).unwrap(), message.len());
        }
        assert_eq!(receiver.join().unwrap(), [&b"alpha"[..], b"", b"gamma"]);
    });
}

#[test]
fn datagrams_between_bound_sockets() {
    let dir = TempDir::new();
    util::run(move || {
        let (a_path, b_path) = (dir.join("a.sock"), dir.join("b.sock"));
        let a = UnixDatagram::bind(&a_path).unwrap();
        let b = UnixDatagram::bind(&b_path).unwrap();
        assert_eq!(a.local_addr().unwrap().as_pathname(), Some(a_path.as_path()));
        a.send_to(b"to b", &b_path).unwrap();
        let mut buf = [0; 16];
        let (n, from) = b.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"to b");
        assert_eq!(from.as_pathname(), Some(a_path.as_path()));
        // An unbound sender has no name.
        let anonymous = UnixDatagram::unbound().unwrap();
        anonymous.send_to(b"anon", &b_path).unwrap();
        let (n, from) = b.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"anon");
        assert!(from.is_unnamed());
        // Connected.
        b.connect(&a_path).unwrap();
        assert_eq!(b.peer_addr().unwrap().as_pathname(), Some(a_path.as_path()));
        b.send(b"reply").unwrap();
        let n = a.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"reply");
        // Timeouts.
        a.set_read_timeout(Some(ms(30))).unwrap();
        let started = Instant::now();
        assert_eq!(a.recv(&mut buf).unwrap_err().kind(), ErrorKind::TimedOut);
        assert!(started.elapsed() >= ms(30));
        a.set_nonblocking(true).unwrap();
        assert_eq!(a.recv(&mut buf).unwrap_err().kind(), ErrorKind::WouldBlock);
    });
}
