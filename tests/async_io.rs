//! The async side of the sockets, without any feature: `poll_accept` and
//! `Source`'s polls inside `runtime::block_on`, waking only the waiting
//! greenlet, sharing readiness with the blocking calls.

mod util;

use std::cell::Cell;
use std::future::poll_fn;
use std::io::{ErrorKind, Read, Write};
use std::rc::Rc;
use std::task::Poll;

use runtime::io::Source;
use runtime::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use util::{TempDir, ms};

/// Counts while the test waits, to show that only one greenlet was parked.
fn ticker() -> (Rc<Cell<u32>>, runtime::JoinHandle<()>) {
    let ticks = Rc::new(Cell::new(0));
    let t = ticks.clone();
    let handle = runtime::spawn(move || {
        loop {
            runtime::sleep(ms(2));
            t.set(t.get() + 1);
        }
    });
    (ticks, handle)
}

#[test]
fn poll_accept_inside_block_on_waits_for_a_connection() {
    util::run(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let (ticks, ticker) = ticker();
        let client = runtime::spawn(move || {
            runtime::sleep(ms(20));
            let mut stream = TcpStream::connect(addr).unwrap();
            stream.write_all(b"hello").unwrap();
            stream
        });
        let (mut stream, peer) = runtime::block_on(poll_fn(|cx| listener.poll_accept(cx))).unwrap();
        assert!(ticks.get() > 0, "the hub ran other greenlets while block_on waited");
        let client = client.join().unwrap();
        assert_eq!(peer, client.local_addr().unwrap());
        // The accepted stream is an ordinary, registered stream.
        let mut buf = [0; 5];
        stream.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"hello");
        // Several connections already queued: each poll takes one at once.
        let clients: Vec<_> = (0..3).map(|_| TcpStream::connect(addr).unwrap()).collect();
        for _ in &clients {
            runtime::block_on(poll_fn(|cx| listener.poll_accept(cx))).unwrap();
        }
        // And blocking accept still works on the same listener afterwards.
        runtime::spawn(move || TcpStream::connect(addr));
        listener.accept().unwrap();
        ticker.kill();
    });
}

#[test]
fn poll_accept_on_a_unix_listener() {
    let dir = TempDir::new();
    let path = dir.join("async.sock");
    util::run(move || {
        let listener = UnixListener::bind(&path).unwrap();
        let client = runtime::spawn(move || {
            runtime::sleep(ms(10));
            UnixStream::connect(&path).unwrap()
        });
        let (stream, _) = runtime::block_on(poll_fn(|cx| listener.poll_accept(cx))).unwrap();
        let mut client = client.join().unwrap();
        (&stream).write_all(b"hi").unwrap();
        let mut buf = [0; 2];
        client.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"hi");
    });
}

#[test]
fn source_polls_wait_for_readiness_and_share_it_with_blocking_calls() {
    util::run(|| {
        let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        let (a, b) = (Source::new(a).unwrap(), Source::new(b).unwrap());
        let (ticks, ticker) = ticker();
        let writer = runtime::spawn(move || {
            runtime::sleep(ms(20));
            b.write_with(|mut stream| stream.write(b"first")).unwrap();
            b
        });
        let mut buf = [0; 16];
        let read = poll_fn(|cx| a.poll_read_with(cx, |mut stream| stream.read(&mut buf)));
        let n = runtime::block_on(read).unwrap();
        assert_eq!(&buf[..n], b"first");
        assert!(ticks.get() > 0, "the hub ran other greenlets while block_on waited");
        let b = writer.join().unwrap();
        // Drained through the poll: the blocking side knows, and waits.
        let again = a.try_read_with(|mut stream| stream.read(&mut buf)).unwrap_err();
        assert_eq!(again.kind(), ErrorKind::WouldBlock);
        runtime::block_on(poll_fn(|cx| {
            assert!(a.poll_readable(cx).is_pending(), "nothing to read yet");
            Poll::Ready(())
        }));
        // A blocking write, then a poll: ready at once.
        b.write_with(|mut stream| stream.write(b"second")).unwrap();
        runtime::block_on(poll_fn(|cx| a.poll_readable(cx))).unwrap();
        let n = a.read_with(|mut stream| stream.read(&mut buf)).unwrap();
        assert_eq!(&buf[..n], b"second");
        // Writable from the start.
        let n = runtime::block_on(poll_fn(|cx| b.poll_write_with(cx, |mut stream| stream.write(b"x")))).unwrap();
        assert_eq!(n, 1);
        ticker.kill();
    });
}

#[test]
fn block_on_poll_accept_can_be_timed_out() {
    util::run(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let accept = runtime::timeout(ms(30), || runtime::block_on(poll_fn(|cx| listener.poll_accept(cx))));
        assert!(accept.is_err(), "nobody connected");
        // The listener is fine afterwards.
        let addr = listener.local_addr().unwrap();
        runtime::spawn(move || TcpStream::connect(addr));
        runtime::block_on(poll_fn(|cx| listener.poll_accept(cx))).unwrap();
    });
}
