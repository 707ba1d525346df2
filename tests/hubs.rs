//! Sockets that outlive their hub: a listener returned from one `runtime::run`
//! is dropped, or used, inside the next one on the same thread. Each socket
//! belongs to the hub it was created on: dropping it never touches another
//! hub's tables, and using it elsewhere is an error that says why.

mod util;

use std::io::{ErrorKind, Read, Write};

use runtime::io::Source;
use runtime::net::{TcpListener, TcpStream, UdpSocket};

/// A listener created by one runtime and returned from it.
fn listener_from_a_finished_runtime() -> TcpListener {
    runtime::run(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        // Used while its hub runs, so it has a registration to speak of.
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        drop(listener.accept().unwrap());
        drop(client);
        listener
    })
}

#[test]
fn dropping_an_old_listener_in_a_new_runtime_loses_no_wake_up() {
    let old = listener_from_a_finished_runtime();
    util::run(move || {
        // Created first, so it takes the same slot in the new hub's table as
        // the old listener had in its own: the old one's deregistration must
        // not remove it.
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(old);
        // An accept that parks first, so that only a readiness event from the
        // new hub's poller can wake it.
        // (The timeout only turns a lost wake-up into a failure, not a hang.)
        listener.set_accept_timeout(Some(util::PATIENCE)).unwrap();
        let acceptor = runtime::spawn(move || {
            let (stream, _) = listener.accept().expect("the pending connection is accepted");
            (&stream).write_all(b"accepted").unwrap();
            listener
        });
        runtime::yield_now();
        let client = TcpStream::connect(addr).unwrap();
        assert_eq!(util::read_all(&client).unwrap(), b"accepted");
        let listener = acceptor.join().unwrap();
        // And an accept with a connection already pending.
        let second = TcpStream::connect(addr).unwrap();
        let (server_side, peer) = listener.accept().unwrap();
        assert_eq!(peer, second.local_addr().unwrap());
        drop(server_side);
        // The other socket created alongside still gets its events.
        let udp_addr = udp.local_addr().unwrap();
        let receiver = runtime::spawn(move || {
            let mut buf = [0; 8];
            let (n, _) = udp.recv_from(&mut buf).unwrap();
            buf[..n].to_vec()
        });
        runtime::yield_now();
        UdpSocket::bind("127.0.0.1:0").unwrap().send_to(b"datagram", udp_addr).unwrap();
        assert_eq!(receiver.join().unwrap(), b"datagram");
    });
}

#[test]
fn an_old_listener_used_in_a_new_runtime_says_it_belongs_to_another() {
    let old = listener_from_a_finished_runtime();
    let old_addr = old.local_addr().unwrap();
    let err = util::run(move || {
        // Nothing is pending on it, so accept has to wait, which only its own
        // hub could do.
        let err = old.accept().unwrap_err();
        // The new hub's own sockets are unaffected.
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        (&client).write_all(b"ok").unwrap();
        let mut buf = [0; 2];
        (&server).read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"ok");
        drop(old);
        err
    });
    let message = err.to_string();
    assert!(
        message.contains("runtime that has stopped") || message.contains("another hub"),
        "the error should say the socket belongs to another runtime: {message}"
    );
    assert_ne!(err.kind(), ErrorKind::WouldBlock);
    // The old listener was closed when dropped: nothing listens there now.
    let refused = std::net::TcpStream::connect(old_addr).unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::ConnectionRefused);
}

#[test]
fn sockets_dropped_outside_any_runtime_leave_the_next_one_working() {
    let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
    let source = runtime::run(move || Source::new(a).unwrap());
    let listener = listener_from_a_finished_runtime();
    // Dropped on a thread with no runtime at all: nothing to deregister from.
    drop(source);
    drop(listener);
    runtime::run(|| {
        let (a, b) = runtime::net::UnixStream::pair().unwrap();
        let reader = runtime::spawn(move || {
            let mut buf = [0; 1];
            (&b).read_exact(&mut buf).unwrap();
            buf
        });
        runtime::yield_now();
        (&a).write_all(b"x").unwrap();
        assert_eq!(&reader.join().unwrap(), b"x");
    });
}
