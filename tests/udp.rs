//! UDP on the hub, with real sockets on 127.0.0.1: `send_to`/`recv_from`,
//! connected `send`/`recv`, parking until a datagram arrives, timeouts and the
//! `std::net`-shaped API.

mod util;

use std::io::ErrorKind;
use std::time::Instant;

use runtime::net::UdpSocket;
use util::ms;

#[test]
fn send_to_and_recv_from_round_trip() {
    util::run(|| {
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        let (a_addr, b_addr) = (a.local_addr().unwrap(), b.local_addr().unwrap());
        assert_eq!(a.send_to(b"ping", b_addr).unwrap(), 4);
        let mut buf = [0; 64];
        let (n, from) = b.recv_from(&mut buf).unwrap();
        assert_eq!((&buf[..n], from), (&b"ping"[..], a_addr));
        b.send_to(b"pong", from).unwrap();
        let (n, from) = a.recv_from(&mut buf).unwrap();
        assert_eq!((&buf[..n], from), (&b"pong"[..], b_addr));
        // Datagram boundaries are kept.
        for message in [&b"one"[..], b"two!", b""] {
            a.send_to(message, b_addr).unwrap();
        }
        for message in [&b"one"[..], b"two!", b""] {
            let (n, _) = b.recv_from(&mut buf).unwrap();
            assert_eq!(&buf[..n], message);
        }
        // Names resolve too.
        a.send_to(b"named", ("localhost", b_addr.port())).unwrap();
        let (n, _) = b.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"named");
    });
}

#[test]
fn connected_send_and_recv_round_trip() {
    util::run(|| {
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        assert_eq!(a.peer_addr().unwrap_err().kind(), ErrorKind::NotConnected);
        a.connect(b.local_addr().unwrap()).unwrap();
        b.connect(a.local_addr().unwrap()).unwrap();
        assert_eq!(a.peer_addr().unwrap(), b.local_addr().unwrap());
        a.send(b"hello").unwrap();
        let mut buf = [0; 16];
        assert_eq!(b.peek(&mut buf).unwrap(), 5);
        assert_eq!(b.recv(&mut buf).unwrap(), 5);
        assert_eq!(&buf[..5], b"hello");
        // A connected socket ignores datagrams from anyone else.
        let stranger = UdpSocket::bind("127.0.0.1:0").unwrap();
        stranger.send_to(b"spam", a.local_addr().unwrap()).unwrap();
        b.send(b"reply").unwrap();
        let n = a.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"reply");
    });
}

#[test]
fn recv_parks_until_another_greenlet_sends() {
    util::run(|| {
        let receiver = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = receiver.local_addr().unwrap();
        let sender = runtime::spawn(move || {
            let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
            for i in 0..10_u8 {
                runtime::sleep(ms(2));
                socket.send_to(&[i], addr).unwrap();
            }
        });
        let mut buf = [0; 4];
        for i in 0..10_u8 {
            let (n, _) = receiver.recv_from(&mut buf).unwrap();
            assert_eq!(&buf[..n], &[i]);
        }
        sender.join().unwrap();
    });
}

#[test]
fn read_timeout_expires_without_datagrams() {
    util::run(|| {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.set_read_timeout(Some(ms(50))).unwrap();
        assert_eq!(socket.read_timeout().unwrap(), Some(ms(50)));
        let started = Instant::now();
        let err = socket.recv_from(&mut [0; 8]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TimedOut, "{err}");
        assert!(started.elapsed() >= ms(50), "timed out after only {:?}", started.elapsed());
        assert_eq!(socket.set_read_timeout(Some(ms(0))).unwrap_err().kind(), ErrorKind::InvalidInput);
        assert_eq!(socket.set_write_timeout(Some(ms(0))).unwrap_err().kind(), ErrorKind::InvalidInput);
        // Still usable.
        socket.send_to(b"self", socket.local_addr().unwrap()).unwrap();
        let mut buf = [0; 8];
        let (n, _) = socket.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"self");
    });
}

#[test]
fn peek_from_leaves_the_datagram_queued() {
    util::run(|| {
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        a.send_to(b"look", b.local_addr().unwrap()).unwrap();
        let mut buf = [0; 8];
        let (n, from) = b.peek_from(&mut buf).unwrap();
        assert_eq!((&buf[..n], from), (&b"look"[..], a.local_addr().unwrap()));
        let (n, _) = b.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"look");
    });
}

#[test]
fn nonblocking_mode_clone_and_options() {
    util::run(|| {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.set_nonblocking(true).unwrap();
        assert_eq!(socket.recv_from(&mut [0; 8]).unwrap_err().kind(), ErrorKind::WouldBlock);
        socket.set_nonblocking(false).unwrap();
        let clone = socket.try_clone().unwrap();
        assert_eq!(clone.local_addr().unwrap(), socket.local_addr().unwrap());
        // What is sent to the socket can be received through the clone.
        let other = UdpSocket::bind("127.0.0.1:0").unwrap();
        other.send_to(b"shared", socket.local_addr().unwrap()).unwrap();
        let mut buf = [0; 8];
        let (n, _) = clone.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"shared");
        socket.set_broadcast(true).unwrap();
        assert!(socket.broadcast().unwrap());
        socket.set_ttl(7).unwrap();
        assert_eq!(socket.ttl().unwrap(), 7);
        assert!(socket.take_error().unwrap().is_none());
        let std_socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let adopted = UdpSocket::from_std(std_socket).unwrap();
        adopted.send_to(b"std", socket.local_addr().unwrap()).unwrap();
        let (n, from) = socket.recv_from(&mut buf).unwrap();
        assert_eq!((&buf[..n], from), (&b"std"[..], adopted.local_addr().unwrap()));
    });
}
