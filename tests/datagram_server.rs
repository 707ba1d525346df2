//! `DatagramServer` (gevent's): a handler greenlet per datagram answering
//! through the server's socket, concurrency limits, pausing, stopping, and
//! `serve_forever` ending with its greenlet.

mod util;

use std::cell::Cell;
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::rc::Rc;

use runtime::net::{DatagramServer, UdpSocket};
use util::{PATIENCE, ms};

/// Answers each datagram with its bytes upper-cased.
fn upper(data: &[u8], peer: SocketAddr, socket: &UdpSocket) {
    let _ = socket.send_to(&data.to_ascii_uppercase(), peer);
}

/// A client socket with a read timeout: a lost reply fails the test instead
/// of hanging it.
fn client() -> UdpSocket {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.set_read_timeout(Some(PATIENCE)).unwrap();
    socket
}

fn ask(client: &UdpSocket, server: SocketAddr, message: &[u8]) -> Vec<u8> {
    client.send_to(message, server).unwrap();
    let mut buf = vec![0; 65_536];
    let (n, from) = client.recv_from(&mut buf).unwrap();
    assert_eq!(from, server);
    buf[..n].to_vec()
}

/// Whether a reply comes within `wait` (to show nobody answers).
fn replies_within(client: &UdpSocket, wait: std::time::Duration) -> bool {
    client.set_read_timeout(Some(wait)).unwrap();
    let mut buf = [0; 2048];
    let outcome = client.recv_from(&mut buf);
    client.set_read_timeout(Some(PATIENCE)).unwrap();
    match outcome {
        Ok(_) => true,
        Err(err) if err.kind() == ErrorKind::TimedOut => false,
        Err(err) => panic!("unexpected error: {err}"),
    }
}

#[test]
fn each_datagram_is_handled_and_answered_through_the_server_socket() {
    util::run(|| {
        let server = DatagramServer::bind("127.0.0.1:0").unwrap().start(upper);
        let addr = server.local_addr().unwrap();
        let (a, b) = (client(), client());
        assert_eq!(ask(&a, addr, b"ping"), b"PING");
        assert_eq!(ask(&b, addr, b"pong"), b"PONG");
        // A datagram as large as UDP allows arrives whole.
        let big = vec![b'x'; 65_507];
        assert_eq!(ask(&a, addr, &big), vec![b'X'; 65_507]);
        server.stop(ms(100));
        assert!(server.is_stopped());
    });
}

/// Handlers run concurrently, each in its own greenlet: one that waits does
/// not hold up the next datagram's.
#[test]
fn a_slow_handler_does_not_hold_up_the_others() {
    util::run(|| {
        let server = DatagramServer::bind("127.0.0.1:0").unwrap().start(|data, peer, socket| {
            if data == b"slow" {
                runtime::sleep(PATIENCE);
            }
            let _ = socket.send_to(data, peer);
        });
        let addr = server.local_addr().unwrap();
        let c = client();
        c.send_to(b"slow", addr).unwrap();
        util::wait_until("the slow handler to start", || server.connections() == 1);
        assert_eq!(ask(&c, addr, b"fast"), b"fast");
        // Stopping kills the slow one after the grace period.
        server.stop(ms(10));
        assert_eq!(server.connections(), 0);
    });
}

/// `max_concurrency`: beyond it, datagrams wait in the socket until a handler
/// finishes.
#[test]
fn max_concurrency_holds_datagrams_back_until_a_handler_finishes() {
    util::run(|| {
        let release = Rc::new(runtime::sync::Event::new());
        let server = DatagramServer::bind("127.0.0.1:0").unwrap().max_concurrency(1).start({
            let release = release.clone();
            move |data, peer, socket| {
                if data == b"hold" {
                    release.wait();
                }
                let _ = socket.send_to(data, peer);
            }
        });
        let addr = server.local_addr().unwrap();
        let c = client();
        c.send_to(b"hold", addr).unwrap();
        util::wait_until("the first handler to run", || server.connections() == 1);
        c.send_to(b"next", addr).unwrap();
        assert!(!replies_within(&c, ms(200)), "a second handler ran beyond the limit");
        release.set();
        let mut replies = vec![ask_reply(&c), ask_reply(&c)];
        replies.sort();
        assert_eq!(replies, [b"hold".to_vec(), b"next".to_vec()]);
        server.stop(ms(100));
    });
}

fn ask_reply(client: &UdpSocket) -> Vec<u8> {
    let mut buf = [0; 64];
    let n = client.recv(&mut buf).unwrap();
    buf[..n].to_vec()
}

/// gevent's `stop_accepting`/`start_accepting` on a datagram server:
/// datagrams wait in the socket meanwhile and are handled on resuming.
#[test]
fn stop_accepting_keeps_datagrams_until_start_accepting() {
    util::run(|| {
        let server = DatagramServer::bind("127.0.0.1:0").unwrap().start(upper);
        let addr = server.local_addr().unwrap();
        let c = client();
        assert_eq!(ask(&c, addr, b"a"), b"A");
        server.stop_accepting();
        c.send_to(b"b", addr).unwrap();
        assert!(!replies_within(&c, ms(200)), "handled while not accepting");
        server.start_accepting();
        assert_eq!(ask_reply(&c), b"B");
        server.stop(ms(100));
    });
}

/// Stopping closes the socket: its port can be bound again.
#[test]
fn stop_closes_the_socket() {
    util::run(|| {
        let server = DatagramServer::bind("127.0.0.1:0").unwrap().start(upper);
        let addr = server.local_addr().unwrap();
        assert_eq!(ask(&client(), addr, b"x"), b"X");
        assert_eq!(UdpSocket::bind(addr).unwrap_err().kind(), ErrorKind::AddrInUse);
        server.stop(ms(100));
        UdpSocket::bind(addr).expect("the server's socket is still open");
    });
}

/// Killing the greenlet in `serve_forever` stops the server (gevent's
/// `finally: stop()`), closing its socket.
#[test]
fn killing_the_serve_forever_greenlet_stops_the_server() {
    util::run(|| {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = socket.local_addr().unwrap();
        let handled = Rc::new(Cell::new(0));
        let serving = runtime::spawn({
            let handled = handled.clone();
            move || {
                DatagramServer::from_socket(socket).serve_forever(move |data, peer, socket| {
                    handled.set(handled.get() + 1);
                    upper(data, peer, socket);
                })
            }
        });
        assert_eq!(ask(&client(), addr, b"y"), b"Y");
        serving.kill();
        assert!(serving.join_timeout(PATIENCE).expect("serve_forever did not end").unwrap_err().is_killed());
        UdpSocket::bind(addr).expect("the server's socket is still open");
        assert_eq!(handled.get(), 1);
    });
}
