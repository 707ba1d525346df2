//! `TcpSocket`: options set before `bind`, `listen` and `connect`, and one
//! listener per hub on a shared port with `SO_REUSEPORT`, over real sockets
//! on 127.0.0.1.

mod util;

use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use runtime::net::{StreamServer, TcpListener, TcpSocket, TcpStream};
use runtime::sync::{AsyncResult, Event, Semaphore};
use util::PATIENCE;

fn localhost() -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, 0))
}

#[test]
fn options_read_back_as_set() {
    // No runtime needed until `listen` or `connect`.
    let socket = TcpSocket::new_v4().unwrap();
    assert!(util::is_nonblocking(std::os::fd::AsFd::as_fd(&socket)));

    socket.set_reuseaddr(true).unwrap();
    assert!(socket.reuseaddr().unwrap());
    socket.set_reuseaddr(false).unwrap();
    assert!(!socket.reuseaddr().unwrap());

    assert!(!socket.reuseport().unwrap());
    socket.set_reuseport(true).unwrap();
    assert!(socket.reuseport().unwrap());

    assert!(!socket.nodelay().unwrap());
    socket.set_nodelay(true).unwrap();
    assert!(socket.nodelay().unwrap());

    socket.set_keepalive(true).unwrap();
    assert!(socket.keepalive().unwrap());

    socket.set_linger(Some(Duration::from_secs(3))).unwrap();
    assert_eq!(socket.linger().unwrap(), Some(Duration::from_secs(3)));
    socket.set_linger(None).unwrap();
    assert_eq!(socket.linger().unwrap(), None);

    // Linux doubles the value it is given (room for its bookkeeping).
    socket.set_recv_buffer_size(32 * 1024).unwrap();
    assert!(socket.recv_buffer_size().unwrap() >= 32 * 1024, "{}", socket.recv_buffer_size().unwrap());
    socket.set_send_buffer_size(16 * 1024).unwrap();
    let send = socket.send_buffer_size().unwrap();
    assert!(send >= 16 * 1024, "{send}");
    socket.set_send_buffer_size(64 * 1024).unwrap();
    assert!(socket.send_buffer_size().unwrap() > send);

    assert!(socket.take_error().unwrap().is_none());
    assert!(format!("{socket:?}").contains("TcpSocket"));
}

#[test]
fn bind_picks_a_port_that_local_addr_reports() {
    let socket = TcpSocket::new_v4().unwrap();
    assert_eq!(socket.local_addr().unwrap(), SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)));
    socket.bind(localhost()).unwrap();
    let addr = socket.local_addr().unwrap();
    assert_eq!(addr.ip(), Ipv4Addr::LOCALHOST);
    assert_ne!(addr.port(), 0);
    // An IPv6 address does not fit an IPv4 socket.
    let other = TcpSocket::new_v4().unwrap();
    assert!(other.bind(SocketAddr::from((Ipv6Addr::LOCALHOST, 0))).is_err());
}

#[test]
fn listen_gives_a_listener_on_the_hub() {
    util::run(|| {
        let socket = TcpSocket::new_v4().unwrap();
        socket.set_reuseaddr(true).unwrap();
        socket.bind(localhost()).unwrap();
        let addr = socket.local_addr().unwrap();
        // A backlog beyond what the kernel allows is clamped, not an error.
        let listener = socket.listen(u32::MAX).unwrap();
        assert_eq!(listener.local_addr().unwrap(), addr);
        // The accept parks (the hub runs the client meanwhile).
        let client = runtime::spawn(move || {
            let stream = TcpStream::connect(addr).unwrap();
            (&stream).write_all(b"ping").unwrap();
            stream.shutdown(Shutdown::Write).unwrap();
            util::read_all(&stream).unwrap()
        });
        let (stream, peer) = listener.accept().unwrap();
        assert!(peer.ip().is_loopback());
        let mut buf = [0; 4];
        (&stream).read_exact(&mut buf).unwrap();
        (&stream).write_all(&buf).unwrap();
        drop(stream);
        assert_eq!(client.join().unwrap(), b"ping");
    });
}

#[test]
fn connect_parks_until_connected_and_keeps_the_options() {
    util::run(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = runtime::spawn(move || {
            let (stream, peer) = listener.accept().unwrap();
            util::echo(&stream).unwrap();
            peer
        });
        let socket = TcpSocket::new_v4().unwrap();
        socket.set_nodelay(true).unwrap();
        socket.set_send_buffer_size(64 * 1024).unwrap();
        // A bind before connect chooses the local address.
        socket.bind(localhost()).unwrap();
        let local = socket.local_addr().unwrap();
        let stream = socket.connect(addr).unwrap();
        assert_eq!(stream.local_addr().unwrap(), local);
        assert_eq!(stream.peer_addr().unwrap(), addr);
        assert!(stream.nodelay().unwrap());
        let data = util::random_bytes(200_000, 7);
        let writer = runtime::spawn({
            let stream = stream.try_clone().unwrap();
            let data = data.clone();
            move || {
                (&stream).write_all(&data).unwrap();
                stream.shutdown(Shutdown::Write).unwrap();
            }
        });
        assert_eq!(util::read_all(&stream).unwrap(), data);
        writer.join().unwrap();
        assert_eq!(server.join().unwrap(), local);
    });
}

#[test]
fn connect_reports_a_refused_connection() {
    util::run(|| {
        let err = TcpSocket::new_v4().unwrap().connect(util::unused_addr()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ConnectionRefused);
    });
}

#[test]
fn a_v6_socket_takes_ipv4_mapped_connections() {
    let socket = match TcpSocket::new_v6() {
        Ok(socket) => socket,
        Err(err) if err.raw_os_error() == Some(libc::EAFNOSUPPORT) => {
            eprintln!("skipped: no IPv6 on this machine");
            return;
        }
        Err(err) => panic!("new_v6: {err}"),
    };
    // 127.0.0.1, written as an IPv6 address.
    let mapped = SocketAddr::from((Ipv4Addr::LOCALHOST.to_ipv6_mapped(), 0));
    if let Err(err) = socket.bind(mapped) {
        // With `net.ipv6.bindv6only = 1`, a v6 socket takes no IPv4.
        eprintln!("skipped: cannot bind {mapped}: {err}");
        return;
    }
    let port = socket.local_addr().unwrap().port();
    util::run(move || {
        let listener = socket.listen(16).unwrap();
        let client = runtime::spawn(move || {
            let stream = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).unwrap();
            (&stream).write_all(b"v4 to v6").unwrap();
        });
        let (stream, peer) = listener.accept().unwrap();
        assert!(peer.is_ipv6(), "{peer}");
        assert_eq!(util::read_all(&stream).unwrap(), b"v4 to v6");
        client.join().unwrap();
    });
}

#[test]
fn from_std_stream_sets_options_on_a_connected_stream() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let stream = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let local = stream.local_addr().unwrap();
    let socket = TcpSocket::from_std_stream(stream);
    assert_eq!(socket.local_addr().unwrap(), local);
    socket.set_nodelay(true).unwrap();
    assert!(socket.nodelay().unwrap());
}

#[test]
fn reuseport_lets_listeners_share_a_port() {
    util::run(|| {
        let first = TcpSocket::new_v4().unwrap();
        first.set_reuseport(true).unwrap();
        first.bind(localhost()).unwrap();
        let addr = first.local_addr().unwrap();
        let first = first.listen(128).unwrap();
        // Without the option, the port is taken.
        let plain = TcpSocket::new_v4().unwrap();
        assert_eq!(plain.bind(addr).unwrap_err().kind(), ErrorKind::AddrInUse);
        // With it, a second listener shares it.
        let second = TcpSocket::new_v4().unwrap();
        second.set_reuseport(true).unwrap();
        second.bind(addr).unwrap();
        let second = second.listen(128).unwrap();
        assert_eq!(second.local_addr().unwrap(), addr);
        // Connections reach one or the other, each served by its own server.
        let hits = Arc::new([AtomicUsize::new(0), AtomicUsize::new(0)]);
        let servers: Vec<_> = [first, second]
            .into_iter()
            .enumerate()
            .map(|(i, listener)| {
                let hits = hits.clone();
                StreamServer::from_listener(listener)
                    .start(move |stream, _| {
                        hits[i].fetch_add(1, Ordering::Relaxed);
                        drop(util::echo(&stream));
                    })
                    .unwrap()
            })
            .collect();
        for n in 0..20u8 {
            let stream = TcpStream::connect(addr).unwrap();
            (&stream).write_all(&[n]).unwrap();
            stream.shutdown(Shutdown::Write).unwrap();
            assert_eq!(util::read_all(&stream).unwrap(), [n]);
        }
        assert_eq!(hits.iter().map(|h| h.load(Ordering::Relaxed)).sum::<usize>(), 20);
        for server in servers {
            server.stop(PATIENCE);
        }
    });
}

/// Sets the event when dropped, so the hubs waiting on it stop even if the
/// client hub panics.
struct SetOnDrop(Arc<Event>);

impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.set();
    }
}

#[test]
fn two_hubs_serve_one_port_with_reuseport() {
    const CLIENTS: usize = 1000;
    const IN_FLIGHT: usize = 100;
    // Hub 0 binds first; hub 1 binds the port it got.
    let first = Arc::new(AsyncResult::<SocketAddr>::new());
    // A permit per listening hub; the clients wait for both.
    let listening = Arc::new(Semaphore::new(0));
    // Connections each server hub served.
    let served = Arc::new([AtomicUsize::new(0), AtomicUsize::new(0)]);
    let done = Arc::new(Event::new());
    let verified = runtime::Builder::new().hubs(3).run_each({
        let served = served.clone();
        move |i| -> usize {
            if i == 2 {
                // The client hub.
                let _done = SetOnDrop(done.clone());
                for _ in 0..2 {
                    listening.acquire_timeout(PATIENCE).expect("both hubs listen").forget();
                }
                let addr = first.get();
                let pool = runtime::Pool::new(IN_FLIGHT);
                let clients: Vec<_> = (0..CLIENTS)
                    .map(|n| {
                        pool.spawn(move || {
                            let data = util::random_bytes(1 + n * 37 % 4096, n as u64);
                            let stream = TcpStream::connect(addr).expect("connect");
                            stream.set_read_timeout(Some(PATIENCE)).unwrap();
                            (&stream).write_all(&data).unwrap();
                            stream.shutdown(Shutdown::Write).unwrap();
                            util::read_all(&stream).unwrap() == data
                        })
                    })
                    .collect();
                return clients.into_iter().map(|client| client.join().expect("a client")).filter(|&ok| ok).count();
            }
            let socket = TcpSocket::new_v4().unwrap();
            socket.set_reuseaddr(true).unwrap();
            socket.set_reuseport(true).unwrap();
            socket.bind(if i == 0 { localhost() } else { first.get_timeout(PATIENCE).expect("hub 0 binds") }).unwrap();
            let listener = socket.listen(1024).unwrap();
            if i == 0 {
                first.set(listener.local_addr().unwrap());
            }
            let served = served.clone();
            let server = StreamServer::from_listener(listener)
                .nodelay(true)
                .start(move |stream, _| {
                    let hub = runtime::hub_index().expect("a hub of run_each");
                    served[hub].fetch_add(1, Ordering::Relaxed);
                    drop(util::echo(&stream));
                })
                .unwrap();
            listening.add_permits(1);
            done.wait();
            server.stop(PATIENCE);
            0
        }
    });
    assert_eq!(verified[2], CLIENTS, "every echo came back intact");
    let served = served.each_ref().map(|n| n.load(Ordering::Relaxed));
    assert_eq!(served.iter().sum::<usize>(), CLIENTS, "{served:?}");
    // The kernel hashes connections over the two listeners: with 1,000 of
    // them, each hub gets some.
    assert!(served.iter().all(|&n| n > 0), "both hubs served connections: {served:?}");
}
