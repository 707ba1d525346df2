//! `runtime::io::copy_bidirectional` and `copy_bidirectional_timeout`: a
//! proxy on a `StreamServer` in front of a server, over real sockets on
//! 127.0.0.1; every byte checked both ways, half-closes passed on, the idle
//! timeout, errors ending both directions, and TCP and Unix sockets mixed.

mod util;

use std::cell::RefCell;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::rc::Rc;
use std::time::Duration;

use runtime::io::{copy_bidirectional, copy_bidirectional_timeout};
use runtime::net::{ServerHandle, StreamServer, TcpListener, TcpStream, UnixListener, UnixStream};
use util::{PATIENCE, ms};

/// What each proxied connection's copy returned.
type Outcomes = Rc<RefCell<Vec<io::Result<(u64, u64)>>>>;

/// A proxy in front of `upstream`: each client gets a connection to
/// `upstream`, and the two are joined by `copy_bidirectional` (or its timed
/// form with `idle`). The copy's result of each connection lands in the
/// returned list when it ends.
fn start_proxy(upstream: SocketAddr, idle: Option<Duration>) -> (ServerHandle, Outcomes) {
    let outcomes: Outcomes = Rc::default();
    let server = StreamServer::bind("127.0.0.1:0")
        .unwrap()
        .name("proxy")
        .start({
            let outcomes = outcomes.clone();
            move |client, _| {
                let upstream = TcpStream::connect(upstream).unwrap();
                let outcome = match idle {
                    None => copy_bidirectional(&client, &upstream),
                    Some(idle) => copy_bidirectional_timeout(&client, &upstream, idle),
                };
                outcomes.borrow_mut().push(outcome);
            }
        })
        .unwrap();
    (server, outcomes)
}

/// An echo server on 127.0.0.1: echoes each connection until end-of-file,
/// then closes it.
fn start_echo() -> ServerHandle {
    StreamServer::bind("127.0.0.1:0")
        .unwrap()
        .name("echo")
        .start(|stream, _| {
            let _ = util::echo(&stream);
        })
        .unwrap()
}

#[test]
fn a_hundred_clients_each_send_and_get_back_a_mebibyte_through_the_proxy() {
    const CLIENTS: u64 = 100;
    const LEN: usize = 1 << 20;
    util::run(|| {
        let echo = start_echo();
        let (proxy, outcomes) = start_proxy(echo.local_addr().unwrap(), None);
        let addr = proxy.local_addr().unwrap();
        let clients: Vec<_> = (0..CLIENTS)
            .map(|seed| {
                runtime::spawn(move || {
                    let stream = Rc::new(TcpStream::connect(addr).unwrap());
                    stream.set_read_timeout(Some(PATIENCE)).unwrap();
                    let data = Rc::new(util::random_bytes(LEN, seed));
                    // Writes and reads at once, so both directions of the
                    // proxy carry data at the same time.
                    let writer = runtime::spawn({
                        let (stream, data) = (stream.clone(), data.clone());
                        move || {
                            for chunk in data.chunks(50_000) {
                                (&*stream).write_all(chunk).unwrap();
                            }
                            stream.shutdown(Shutdown::Write).unwrap();
                        }
                    });
                    let echoed = util::read_all(&*stream).unwrap();
                    writer.join().unwrap();
                    assert_eq!(echoed.len(), LEN, "client {seed}: echoed length");
                    assert!(echoed == *data, "client {seed}: the echo differs from what was sent");
                })
            })
            .collect();
        for client in clients {
            client.join().unwrap();
        }
        util::wait_until("every copy to end", || outcomes.borrow().len() == CLIENTS as usize);
        for outcome in outcomes.borrow_mut().drain(..) {
            assert_eq!(outcome.unwrap(), (LEN as u64, LEN as u64));
        }
        proxy.stop(ms(100));
        echo.stop(ms(100));
    });
}

#[test]
fn a_half_close_reaches_the_server_which_can_still_reply() {
    util::run(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let (proxy, outcomes) = start_proxy(listener.local_addr().unwrap(), None);
        let server = runtime::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            stream.set_read_timeout(Some(PATIENCE)).unwrap();
            // End-of-file arrives: the client's shutdown went through.
            let request = util::read_all(&stream).unwrap();
            (&stream).write_all(b"reply to ").unwrap();
            (&stream).write_all(&request).unwrap();
            request
        });
        let client = TcpStream::connect(proxy.local_addr().unwrap()).unwrap();
        client.set_read_timeout(Some(PATIENCE)).unwrap();
        (&client).write_all(b"request").unwrap();
        client.shutdown(Shutdown::Write).unwrap();
        assert_eq!(server.join().unwrap(), b"request");
        assert_eq!(util::read_all(&client).unwrap(), b"reply to request");
        util::wait_until("the copy to end", || outcomes.borrow().len() == 1);
        assert_eq!(outcomes.borrow_mut().pop().unwrap().unwrap(), (7, 16));
        proxy.stop(ms(100));
    });
}

#[test]
fn the_server_half_closing_first_leaves_the_client_free_to_talk() {
    util::run(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let (proxy, outcomes) = start_proxy(listener.local_addr().unwrap(), None);
        let server = runtime::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            stream.set_read_timeout(Some(PATIENCE)).unwrap();
            (&stream).write_all(b"banner").unwrap();
            stream.shutdown(Shutdown::Write).unwrap();
            util::read_all(&stream).unwrap()
        });
        let client = TcpStream::connect(proxy.local_addr().unwrap()).unwrap();
        client.set_read_timeout(Some(PATIENCE)).unwrap();
        assert_eq!(util::read_all(&client).unwrap(), b"banner");
        (&client).write_all(b"still talking").unwrap();
        client.shutdown(Shutdown::Write).unwrap();
        assert_eq!(server.join().unwrap(), b"still talking");
        util::wait_until("the copy to end", || outcomes.borrow().len() == 1);
        assert_eq!(outcomes.borrow_mut().pop().unwrap().unwrap(), (13, 6));
        proxy.stop(ms(100));
    });
}

#[test]
fn the_idle_timeout_fires_when_nobody_talks() {
    util::run(|| {
        let echo = start_echo();
        let (proxy, outcomes) = start_proxy(echo.local_addr().unwrap(), Some(ms(50)));
        let client = TcpStream::connect(proxy.local_addr().unwrap()).unwrap();
        client.set_read_timeout(Some(PATIENCE)).unwrap();
        assert_eq!(round_trip(&client, b"hello"), b"hello");
        // Then silence: the proxy gives up and closes both connections.
        assert!(util::read_all(&client).unwrap().is_empty());
        util::wait_until("the copy to end", || outcomes.borrow().len() == 1);
        let err = outcomes.borrow_mut().pop().unwrap().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TimedOut, "{err}");
        util::wait_until("the echo connection to close", || echo.connections() == 0);
        proxy.stop(ms(100));
        echo.stop(ms(100));
    });
}

#[test]
fn the_idle_timeout_does_not_fire_while_data_flows_one_way() {
    const IDLE: Duration = Duration::from_millis(300);
    const TICKS: usize = 100;
    util::run(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let (proxy, outcomes) = start_proxy(listener.local_addr().unwrap(), Some(IDLE));
        // The server streams a byte every 10 ms for several idle periods,
        // while the client never says a word.
        let server = runtime::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            for _ in 0..TICKS {
                (&stream).write_all(b".").unwrap();
                runtime::sleep(ms(10));
            }
        });
        let client = TcpStream::connect(proxy.local_addr().unwrap()).unwrap();
        client.set_read_timeout(Some(PATIENCE)).unwrap();
        let received = util::read_all(&client).unwrap();
        server.join().unwrap();
        assert_eq!(received.len(), TICKS, "the stream was cut short");
        drop(client);
        util::wait_until("the copy to end", || outcomes.borrow().len() == 1);
        assert_eq!(outcomes.borrow_mut().pop().unwrap().unwrap(), (0, TICKS as u64));
        proxy.stop(ms(100));
    });
}

#[test]
fn an_error_in_one_direction_ends_both() {
    util::run(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let (proxy, outcomes) = start_proxy(listener.local_addr().unwrap(), None);
        let client = TcpStream::connect(proxy.local_addr().unwrap()).unwrap();
        client.set_read_timeout(Some(PATIENCE)).unwrap();
        let (stream, _) = listener.accept().unwrap();
        // The server resets its connection (RST, not FIN): the proxy's read
        // from it fails, while the client side has nothing to say.
        socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO)).unwrap();
        drop(stream);
        util::wait_until("the copy to end", || outcomes.borrow().len() == 1);
        let err = outcomes.borrow_mut().pop().unwrap().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ConnectionReset, "{err}");
        // The other direction (reading the silent client) ended too, and the
        // client's connection was closed.
        assert!(util::read_all(&client).unwrap().is_empty());
        assert_eq!(proxy.connections(), 0);
        proxy.stop(ms(100));
    });
}

#[test]
fn tcp_and_unix_sockets_mix() {
    util::run(|| {
        let dir = util::TempDir::new();
        let path = dir.join("upstream.sock");
        let listener = UnixListener::bind(&path).unwrap();
        let outcomes: Outcomes = Rc::default();
        let proxy = StreamServer::bind("127.0.0.1:0")
            .unwrap()
            .start({
                let outcomes = outcomes.clone();
                move |client, _| {
                    let upstream = UnixStream::connect(&path).unwrap();
                    outcomes.borrow_mut().push(copy_bidirectional(&client, &upstream));
                }
            })
            .unwrap();
        let server = runtime::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            util::echo(&stream).unwrap()
        });
        let client = TcpStream::connect(proxy.local_addr().unwrap()).unwrap();
        client.set_read_timeout(Some(PATIENCE)).unwrap();
        assert_eq!(round_trip(&client, b"mixed"), b"mixed");
        client.shutdown(Shutdown::Write).unwrap();
        assert!(util::read_all(&client).unwrap().is_empty());
        assert_eq!(server.join().unwrap(), 5);
        util::wait_until("the copy to end", || outcomes.borrow().len() == 1);
        assert_eq!(outcomes.borrow_mut().pop().unwrap().unwrap(), (5, 5));
        proxy.stop(ms(100));
    });
}

#[test]
fn a_zero_idle_timeout_is_invalid() {
    util::run(|| {
        let (a, b) = UnixStream::pair().unwrap();
        let err = copy_bidirectional_timeout(&a, &b, Duration::ZERO).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
    });
}

/// Sends `message` and reads as many bytes back.
fn round_trip(stream: &TcpStream, message: &[u8]) -> Vec<u8> {
    let mut stream = stream;
    stream.write_all(message).unwrap();
    let mut reply = vec![0; message.len()];
    stream.read_exact(&mut reply).unwrap();
    reply
}
