//! examples/proxy, in process: its core in front of an echo server, over
//! real sockets on 127.0.0.1. Every byte is checked, a client's half-close
//! reaches the echo server (which only then closes), a silent connection is
//! closed after the idle timeout, and stopping closes what is left.

mod util;

#[allow(dead_code)]
#[path = "../examples/proxy/relay.rs"]
mod relay;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::rc::Rc;

use runtime::net::{ServerHandle, StreamServer, TcpStream};
use util::{PATIENCE, ms};

/// An echo server that echoes until end-of-file, then closes.
fn start_echo() -> ServerHandle {
    StreamServer::bind("127.0.0.1:0")
        .unwrap()
        .name("echo")
        .start(|stream, _| {
            let _ = util::echo(&stream);
        })
        .unwrap()
}

fn connect(addr: SocketAddr) -> Rc<TcpStream> {
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    Rc::new(stream)
}

#[test]
fn clients_get_every_byte_back_and_their_half_close_goes_through() {
    const CLIENTS: u64 = 20;
    const LEN: usize = 256 * 1024;
    util::run(|| {
        let echo = start_echo();
        let listener = StreamServer::bind("127.0.0.1:0").unwrap();
        let (proxy, stats) = relay::start(listener, echo.local_addr().unwrap(), Some(PATIENCE)).unwrap();
        let addr = proxy.local_addr().unwrap();
        let clients: Vec<_> = (0..CLIENTS)
            .map(|seed| {
                runtime::spawn(move || {
                    let stream = connect(addr);
                    let data = Rc::new(util::random_bytes(LEN, seed));
                    let writer = runtime::spawn({
                        let (stream, data) = (stream.clone(), data.clone());
                        move || {
                            (&*stream).write_all(&data).unwrap();
                            // The echo server stops only at end-of-file:
                            // the reads below end only if this half-close
                            // goes through the proxy (and the echo server's
                            // close comes back).
                            stream.shutdown(Shutdown::Write).unwrap();
                        }
                    });
                    let echoed = util::read_all(&*stream).unwrap();
                    writer.join().unwrap();
                    assert!(echoed == *data, "client {seed}: the echo differs from what was sent");
                })
            })
            .collect();
        for client in clients {
            client.join().unwrap();
        }
        util::wait_until("every relay to end", || stats.completed.get() == CLIENTS);
        assert_eq!(stats.connections.get(), CLIENTS);
        assert_eq!(stats.bytes_up.get(), CLIENTS * LEN as u64);
        assert_eq!(stats.bytes_down.get(), CLIENTS * LEN as u64);
        assert_eq!((stats.idle_timeouts.get(), stats.errors.get(), stats.connect_failures.get()), (0, 0, 0));
        proxy.stop(ms(100));
        echo.stop(ms(100));
    });
}

#[test]
fn the_client_can_keep_reading_after_its_half_close() {
    util::run(|| {
        let echo = start_echo();
        let (proxy, stats) =
            relay::start(StreamServer::bind("127.0.0.1:0").unwrap(), echo.local_addr().unwrap(), None).unwrap();
        let client = connect(proxy.local_addr().unwrap());
        (&*client).write_all(b"first").unwrap();
        let mut first = [0; 5];
        (&*client).read_exact(&mut first).unwrap();
        assert_eq!(&first, b"first");
        (&*client).write_all(b"last words").unwrap();
        client.shutdown(Shutdown::Write).unwrap();
        assert_eq!(util::read_all(&*client).unwrap(), b"last words");
        util::wait_until("the relay to end", || stats.completed.get() == 1);
        assert_eq!((stats.bytes_up.get(), stats.bytes_down.get()), (15, 15));
        proxy.stop(ms(100));
        echo.stop(ms(100));
    });
}

#[test]
fn a_silent_connection_is_closed_after_the_idle_timeout() {
    util::run(|| {
        let echo = start_echo();
        let listener = StreamServer::bind("127.0.0.1:0").unwrap();
        let (proxy, stats) = relay::start(listener, echo.local_addr().unwrap(), Some(ms(50))).unwrap();
        let client = connect(proxy.local_addr().unwrap());
        (&*client).write_all(b"hello").unwrap();
        // The echo comes back, then nothing more: the proxy closes.
        assert_eq!(util::read_all(&*client).unwrap(), b"hello");
        util::wait_until("the relay to end", || stats.idle_timeouts.get() == 1);
        util::wait_until("the upstream connection to close", || echo.connections() == 0);
        assert_eq!(proxy.connections(), 0);
        proxy.stop(ms(100));
        echo.stop(ms(100));
    });
}

#[test]
fn stopping_the_proxy_closes_open_connections() {
    util::run(|| {
        let echo = start_echo();
        let (proxy, stats) =
            relay::start(StreamServer::bind("127.0.0.1:0").unwrap(), echo.local_addr().unwrap(), None).unwrap();
        let clients: Vec<_> = (0..5).map(|_| connect(proxy.local_addr().unwrap())).collect();
        for client in &clients {
            (&**client).write_all(b"ping").unwrap();
            let mut pong = [0; 4];
            (&**client).read_exact(&mut pong).unwrap();
        }
        proxy.stop(ms(50));
        assert_eq!(proxy.connections(), 0);
        for client in &clients {
            assert!(util::read_all(&**client).unwrap().is_empty(), "the connection was left open");
        }
        util::wait_until("the upstream connections to close", || echo.connections() == 0);
        assert_eq!(stats.connections.get(), 5);
        echo.stop(ms(100));
    });
}

#[test]
fn an_unreachable_upstream_closes_the_client() {
    util::run(|| {
        let (proxy, stats) =
            relay::start(StreamServer::bind("127.0.0.1:0").unwrap(), util::unused_addr(), None).unwrap();
        let client = connect(proxy.local_addr().unwrap());
        assert!(util::read_all(&*client).unwrap().is_empty());
        util::wait_until("the failure to be counted", || stats.connect_failures.get() == 1);
        proxy.stop(ms(100));
    });
}
