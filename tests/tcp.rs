//! TCP on the hub, with real sockets on 127.0.0.1: bulk echo over many
//! concurrent connections, half-close, connection errors, timeouts, sharing
//! one stream between greenlets, fairness, and the `std::net`-shaped API.

mod util;

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::time::{Duration, Instant};

use runtime::net::{StreamServer, TcpListener, TcpStream};
use runtime::sync::channel;
use util::{ms, tcp_pair};

const CONNECTIONS: usize = 1000;
const BYTES_PER_CONNECTION: usize = 1 << 20;

/// Where connection `i`'s bytes start in the shared random buffer: distinct
/// for every connection (4099 is odd, so `i * 4099` differs modulo a power of
/// two for distinct `i`), so bytes delivered to the wrong connection or out of
/// order do not match.
fn pattern_offset(i: usize) -> usize {
    (i * 4099) % BYTES_PER_CONNECTION
}

/// How far one connection of the bulk test got, for the report when it does
/// not finish.
#[derive(Clone, Copy, Debug, Default)]
struct Progress {
    /// The client's descriptor, to ask the kernel what is queued on it.
    fd: i32,
    sent: usize,
    writer_done: bool,
    received: usize,
    server_read: usize,
    server_written: usize,
    server_done: bool,
}

type Table = Rc<RefCell<Vec<Progress>>>;

/// One client of the bulk test: a writer greenlet sends the connection's
/// pattern in odd-sized chunks and then shuts down writing, while this
/// greenlet reads the echo concurrently and checks every byte.
fn bulk_client(i: usize, addr: SocketAddr, source: Rc<Vec<u8>>, table: Table, ports: Rc<RefCell<HashMap<u16, usize>>>) {
    let stream = Rc::new(TcpStream::connect(addr).unwrap_or_else(|err| panic!("connection {i}: connect: {err}")));
    ports.borrow_mut().insert(stream.local_addr().unwrap().port(), i);
    table.borrow_mut()[i].fd = stream.as_raw_fd();
    let offset = pattern_offset(i);
    let range = offset..offset + BYTES_PER_CONNECTION;
    // Half the writers share the stream through `&TcpStream`, the other half
    // use a duplicated descriptor.
    let writer = {
        let (source, range, table) = (source.clone(), range.clone(), table.clone());
        if i % 2 == 0 {
            let stream = stream.clone();
            runtime::spawn(move || write_pattern(i, &stream, &source[range], &table))
        } else {
            let clone = stream.try_clone().unwrap();
            runtime::spawn(move || write_pattern(i, &clone, &source[range], &table))
        }
    };
    let expected = &source[range];
    let mut buf = vec![0; 1000 + (i % 7) * 9000];
    let mut received = 0;
    loop {
        let n = (&*stream).read(&mut buf).unwrap_or_else(|err| panic!("connection {i}: read at {received}: {err}"));
        if n == 0 {
            break;
        }
        assert!(received + n <= BYTES_PER_CONNECTION, "connection {i}: more than {BYTES_PER_CONNECTION} bytes echoed");
        if buf[..n] != expected[received..received + n] {
            let bad = (0..n).find(|&k| buf[k] != expected[received + k]).unwrap();
            panic!("connection {i}: wrong byte at offset {}", received + bad);
        }
        received += n;
        table.borrow_mut()[i].received = received;
    }
    assert_eq!(received, BYTES_PER_CONNECTION, "connection {i}: short echo");
    writer.join().unwrap_or_else(|err| panic!("connection {i}: writer failed: {err}"));
}

fn write_pattern(i: usize, mut stream: &TcpStream, data: &[u8], table: &Table) {
    let mut sent = 0;
    let mut step = 0;
    while sent < data.len() {
        // Chunk sizes from 1 byte to 64 KiB, different per connection.
        let len = (1 + (i * 7919 + step * 104_729) % 65_536).min(data.len() - sent);
        let n = stream.write(&data[sent..sent + len]).unwrap_or_else(|err| panic!("connection {i}: write: {err}"));
        assert!(n > 0, "connection {i}: write returned 0");
        sent += n;
        step += 1;
        table.borrow_mut()[i].sent = sent;
    }
    stream.shutdown(Shutdown::Write).unwrap();
    table.borrow_mut()[i].writer_done = true;
}

/// The server side of the bulk test: an echo loop that records its progress.
fn bulk_echo(stream: &TcpStream, progress: impl Fn(&mut dyn FnMut(&mut Progress))) {
    let mut buf = vec![0; 64 * 1024];
    loop {
        let n = (&*stream).read(&mut buf).expect("server side of a connection failed");
        if n == 0 {
            progress(&mut |p| p.server_done = true);
            return;
        }
        progress(&mut |p| p.server_read += n);
        (&*stream).write_all(&buf[..n]).expect("server side of a connection failed");
        progress(&mut |p| p.server_written += n);
    }
}

/// Bytes queued for reading on `fd` (`FIONREAD`).
fn bytes_readable(fd: i32) -> i64 {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one `c_int` through the pointer.
    let rc = unsafe { libc::ioctl(fd, libc::FIONREAD, &mut n) };
    if rc == 0 { i64::from(n) } else { -1 }
}

#[test]
fn thousand_connections_each_echo_one_mib() {
    // Client and server end of every connection, half the clients duplicated,
    // plus slack for the runtime and the test harness.
    util::ensure_nofile((2 * CONNECTIONS + CONNECTIONS / 2 + 256) as u64);
    let started = Instant::now();
    util::run(|| {
        let source = Rc::new(util::random_bytes(2 * BYTES_PER_CONNECTION, 0x5eed));
        let table: Table = Rc::new(RefCell::new(vec![Progress::default(); CONNECTIONS]));
        let ports = Rc::new(RefCell::new(HashMap::new()));
        let server = StreamServer::bind("127.0.0.1:0")
            .unwrap()
            .start({
                let (table, ports) = (table.clone(), ports.clone());
                move |stream, peer| {
                    // Looked up at each update: the first one comes after the
                    // client wrote, so after it recorded its port.
                    bulk_echo(&stream, |update| {
                        let i = ports.borrow()[&peer.port()];
                        update(&mut table.borrow_mut()[i]);
                    });
                }
            })
            .unwrap();
        let addr = server.local_addr().unwrap();
        let clients: Vec<_> = (0..CONNECTIONS)
            .map(|i| {
                let (source, table, ports) = (source.clone(), table.clone(), ports.clone());
                runtime::spawn(move || bulk_client(i, addr, source, table, ports))
            })
            .collect();
        let deadline = Instant::now() + util::PATIENCE;
        while !clients.iter().all(|client| client.is_finished()) {
            if Instant::now() > deadline {
                let table = table.borrow();
                let stuck: Vec<String> = clients
                    .iter()
                    .enumerate()
                    .filter(|(_, client)| !client.is_finished())
                    .take(10)
                    .map(|(i, _)| format!("{i}: {:?}, {} bytes readable", table[i], bytes_readable(table[i].fd)))
                    .collect();
                let unfinished = clients.iter().filter(|client| !client.is_finished()).count();
                panic!("{unfinished} connections did not finish; the first ones:\n{}", stuck.join("\n"));
            }
            runtime::sleep(ms(10));
        }
        for client in clients {
            client.join().unwrap_or_else(|err| panic!("a client failed: {err}"));
        }
        util::wait_until("the server to finish every connection", || server.connections() == 0);
        server.stop(ms(100));
        let table = table.borrow();
        assert!(table.iter().all(|p| p.server_done && p.server_written == BYTES_PER_CONNECTION));
    });
    eprintln!("{CONNECTIONS} connections x {} KiB echoed in {:?}", BYTES_PER_CONNECTION / 1024, started.elapsed());
}

#[test]
fn half_close_then_reply_then_eof() {
    util::run(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = runtime::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            // Reads to end-of-file: only the client's write shutdown ends this.
            let request = util::read_all(&stream).unwrap();
            (&stream).write_all(format!("got {} bytes", request.len()).as_bytes()).unwrap();
            request
        });
        let mut client = TcpStream::connect(addr).unwrap();
        client.write_all(b"the whole request").unwrap();
        client.shutdown(Shutdown::Write).unwrap();
        assert_eq!(client.write(b"more").unwrap_err().kind(), ErrorKind::BrokenPipe);
        let reply = util::read_all(&client).unwrap();
        assert_eq!(reply, b"got 17 bytes");
        // End-of-file stays end-of-file.
        assert_eq!(client.read(&mut [0; 8]).unwrap(), 0);
        assert_eq!(server.join().unwrap(), b"the whole request");
    });
}

/// Data and the peer's FIN that arrive before anyone reads come in one
/// readiness event; the read of the data is short, and the end-of-file after
/// it must still be seen (no further event will announce it).
#[test]
fn data_and_eof_that_arrive_together_are_both_read() {
    util::run(|| {
        for close in [false, true] {
            let (client, server) = tcp_pair();
            (&client).write_all(b"last words").unwrap();
            if close {
                drop(client);
            } else {
                client.shutdown(Shutdown::Write).unwrap();
            }
            // Let the data and the FIN arrive (and the hub see their event)
            // before reading.
            runtime::sleep(ms(50));
            // A watchdog, so that a lost end-of-file fails instead of hanging.
            server.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let mut buf = [0; 64];
            assert_eq!((&server).read(&mut buf).unwrap(), 10);
            assert_eq!(&buf[..10], b"last words");
            let eof = (&server).read(&mut buf);
            assert_eq!(eof.unwrap(), 0, "end-of-file after a short read (peer closed: {close})");
        }
    });
}

/// See `util::short_read_during_budget_yield`.
#[test]
fn a_short_read_during_the_budget_yield_keeps_later_readiness() {
    util::run(|| util::short_read_during_budget_yield(tcp_pair));
}

#[test]
fn connecting_where_nothing_listens_is_refused() {
    util::run(|| {
        let addr = util::unused_addr();
        let err = TcpStream::connect(addr).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ConnectionRefused, "{err}");
        let err = TcpStream::connect_timeout(&addr, Duration::from_secs(10)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ConnectionRefused, "{err}");
    });
}

/// A listener whose accept queue is full drops further SYNs, so connecting
/// to it hangs: `connect_timeout` must give up with `TimedOut`.
#[test]
fn connect_timeout_to_a_listener_with_a_full_backlog_times_out() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    // SAFETY: listen(2) on a descriptor we own; listening again only changes
    // the backlog (0: one queued connection at most).
    let rc = unsafe { libc::listen(std::os::fd::AsRawFd::as_raw_fd(&listener), 0) };
    assert_eq!(rc, 0, "listen: {}", std::io::Error::last_os_error());
    util::run(move || {
        // Fill the accept queue (nobody accepts); attempts that time out here
        // mean it is full already.
        let fillers: Vec<_> = (0..4).filter_map(|_| TcpStream::connect_timeout(&addr, ms(100)).ok()).collect();
        assert!(!fillers.is_empty(), "not even one connection was queued");
        let timeout = ms(200);
        let started = Instant::now();
        let err = TcpStream::connect_timeout(&addr, timeout).expect_err("connected past a full accept queue");
        assert_eq!(err.kind(), ErrorKind::TimedOut, "{err}");
        assert!(started.elapsed() >= timeout, "timed out after only {:?}", started.elapsed());
        assert_eq!(TcpStream::connect_timeout(&addr, Duration::ZERO).unwrap_err().kind(), ErrorKind::InvalidInput);
        drop(listener);
    });
}

/// The classic check against a non-routable address. Networks differ: some
/// refuse at once, and some sandboxes answer every connection themselves, so
/// only a `TimedOut` result is checked strictly.
#[test]
fn connect_timeout_to_an_unroutable_address() {
    util::run(|| {
        let addr: SocketAddr = "10.255.255.1:9".parse().unwrap();
        let timeout = ms(200);
        let started = Instant::now();
        match TcpStream::connect_timeout(&addr, timeout) {
            Err(err) if err.kind() == ErrorKind::TimedOut => {
                assert!(started.elapsed() >= timeout, "timed out after only {:?}", started.elapsed());
            }
            Err(err) => eprintln!("skipping: connecting to {addr} failed at once: {err}"),
            Ok(stream) => eprintln!("skipping: this network accepted a connection to {addr}: {stream:?}"),
        }
        // A connection that succeeds has no write timeout left over.
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let stream = TcpStream::connect_timeout(&listener.local_addr().unwrap(), Duration::from_secs(10)).unwrap();
        assert_eq!(stream.write_timeout().unwrap(), None);
    });
}

#[test]
fn read_timeout_expires_when_the_peer_sends_nothing() {
    util::run(|| {
        let (client, mut server) = tcp_pair();
        server.set_read_timeout(Some(ms(50))).unwrap();
        assert_eq!(server.read_timeout().unwrap(), Some(ms(50)));
        let started = Instant::now();
        let err = server.read(&mut [0; 16]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TimedOut, "{err}");
        assert!(started.elapsed() >= ms(50), "timed out after only {:?}", started.elapsed());
        // The stream is still usable afterwards.
        (&client).write_all(b"late").unwrap();
        let mut buf = [0; 4];
        server.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"late");
        // `None` waits again without a limit.
        server.set_read_timeout(None).unwrap();
        let writer = runtime::spawn(move || {
            runtime::sleep(ms(80));
            (&client).write_all(b"x").unwrap();
        });
        assert_eq!(server.read(&mut buf).unwrap(), 1);
        writer.join().unwrap();
    });
}

#[test]
fn zero_timeouts_are_rejected() {
    util::run(|| {
        let (client, _server) = tcp_pair();
        assert_eq!(client.set_read_timeout(Some(Duration::ZERO)).unwrap_err().kind(), ErrorKind::InvalidInput);
        assert_eq!(client.set_write_timeout(Some(Duration::ZERO)).unwrap_err().kind(), ErrorKind::InvalidInput);
        assert_eq!(client.read_timeout().unwrap(), None);
        assert_eq!(client.write_timeout().unwrap(), None);
    });
}

#[test]
fn write_timeout_expires_when_the_peer_never_reads() {
    util::run(|| {
        let (client, server) = tcp_pair();
        client.set_write_timeout(Some(ms(50))).unwrap();
        let chunk = vec![7; 256 * 1024];
        let mut written = 0_usize;
        let err = loop {
            let started = Instant::now();
            match (&client).write(&chunk) {
                Ok(n) => written += n,
                Err(err) => break (err, started.elapsed()),
            }
            assert!(written < 1 << 30, "wrote 1 GiB to a peer that never reads");
        };
        assert_eq!(err.0.kind(), ErrorKind::TimedOut, "{}", err.0);
        assert!(err.1 >= ms(50), "the write timed out after only {:?}", err.1);
        assert!(written > 0);
        // Once the peer reads, writing works again.
        let reader = runtime::spawn(move || util::read_all(&server).unwrap().len());
        (&client).write_all(b"tail").unwrap();
        client.shutdown(Shutdown::Write).unwrap();
        assert_eq!(reader.join().unwrap(), written + 4);
    });
}

/// A ping-pong over one stream: greenlet A sits in `read` while greenlet B
/// writes the same socket, through `&TcpStream`.
#[test]
fn a_reader_and_a_writer_greenlet_share_one_stream() {
    const ROUNDS: usize = 200;
    util::run(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let echo = runtime::spawn(move || util::echo(&listener.accept().unwrap().0).unwrap());
        let stream = Rc::new(TcpStream::connect(addr).unwrap());
        let (got_tx, got_rx) = channel::unbounded::<usize>();
        let reader = runtime::spawn({
            let stream = stream.clone();
            move || {
                for round in 0..ROUNDS {
                    let mut buf = [0; 8];
                    (&*stream).read_exact(&mut buf).unwrap();
                    assert_eq!(u64::from_le_bytes(buf), round as u64);
                    got_tx.send(round).unwrap();
                }
            }
        });
        let writer = runtime::spawn({
            let stream = stream.clone();
            move || {
                for round in 0..ROUNDS {
                    (&*stream).write_all(&(round as u64).to_le_bytes()).unwrap();
                    // The next ping only after the reader saw this one: the
                    // reader is always parked in `read` when we write.
                    assert_eq!(got_rx.recv().unwrap(), round);
                }
                stream.shutdown(Shutdown::Write).unwrap();
            }
        });
        writer.join().unwrap();
        reader.join().unwrap();
        assert_eq!(echo.join().unwrap(), 8 * ROUNDS as u64);
    });
}

/// A greenlet whose reads always succeed at once (its peer, another thread,
/// floods it) must still let the other greenlets of the hub run: both one that
/// yields and one that sleeps keep ticking while it reads.
#[test]
fn a_flooded_reader_does_not_starve_the_hub() {
    const TICKS: u64 = 20;
    const MAX_READS: u64 = 2_000_000;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let flooder = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let chunk = vec![b'f'; 64 * 1024];
        // Until the reader closes its end.
        while stream.write_all(&chunk).is_ok() {}
    });
    util::run(move || {
        let mut stream = TcpStream::connect(addr).unwrap();
        let yields = Rc::new(Cell::new(0_u64));
        let sleeps = Rc::new(Cell::new(0_u64));
        let _yielder = runtime::spawn({
            let yields = yields.clone();
            move || loop {
                yields.set(yields.get() + 1);
                runtime::yield_now();
            }
        });
        let _sleeper = runtime::spawn({
            let sleeps = sleeps.clone();
            move || loop {
                sleeps.set(sleeps.get() + 1);
                runtime::sleep(ms(1));
            }
        });
        // Let the flooder fill the socket buffers.
        runtime::sleep(ms(100));
        let (yields0, sleeps0) = (yields.get(), sleeps.get());
        let mut buf = [0; 64];
        let mut reads = 0;
        while (yields.get() - yields0 < TICKS || sleeps.get() - sleeps0 < TICKS) && reads < MAX_READS {
            assert!(stream.read(&mut buf).unwrap() > 0, "the flooder stopped");
            reads += 1;
        }
        assert!(
            yields.get() - yields0 >= TICKS && sleeps.get() - sleeps0 >= TICKS,
            "after {reads} reads the other greenlets ticked only {} (yielding) and {} (sleeping) times",
            yields.get() - yields0,
            sleeps.get() - sleeps0
        );
    });
    flooder.join().unwrap();
}

#[test]
fn addresses_of_both_ends_match() {
    util::run(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        assert!(addr.ip().is_loopback() && addr.port() != 0);
        let client = TcpStream::connect(addr).unwrap();
        let (server, peer) = listener.accept().unwrap();
        assert_eq!(client.peer_addr().unwrap(), addr);
        assert_eq!(server.local_addr().unwrap(), addr);
        assert_eq!(server.peer_addr().unwrap(), client.local_addr().unwrap());
        assert_eq!(peer, client.local_addr().unwrap());
        let debug = format!("{client:?}");
        assert!(debug.contains("TcpStream") && debug.contains(&addr.to_string()), "{debug}");
    });
}

#[test]
fn try_clone_shares_the_socket() {
    util::run(|| {
        let (client, server) = tcp_pair();
        client.set_read_timeout(Some(ms(500))).unwrap();
        let clone = client.try_clone().unwrap();
        assert_ne!(std::os::fd::AsRawFd::as_raw_fd(&clone), std::os::fd::AsRawFd::as_raw_fd(&client));
        assert_eq!(clone.local_addr().unwrap(), client.local_addr().unwrap());
        assert_eq!(clone.peer_addr().unwrap(), client.peer_addr().unwrap());
        // Timeouts are copied, then belong to each handle.
        assert_eq!(clone.read_timeout().unwrap(), Some(ms(500)));
        clone.set_read_timeout(None).unwrap();
        assert_eq!(client.read_timeout().unwrap(), Some(ms(500)));
        // Writing through either handle reaches the same peer; data from the
        // peer can be read through either.
        (&clone).write_all(b"from the clone ").unwrap();
        (&client).write_all(b"and the original").unwrap();
        (&server).write_all(b"hi both").unwrap();
        let mut buf = [0; 7];
        (&clone).read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"hi both");
        // Dropping one handle keeps the socket open; shutting down through
        // one shuts the socket down.
        drop(clone);
        client.shutdown(Shutdown::Write).unwrap();
        assert_eq!(util::read_all(&server).unwrap(), b"from the clone and the original");
        // The listener clones too.
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let listener2 = listener.try_clone().unwrap();
        assert_eq!(listener2.local_addr().unwrap(), listener.local_addr().unwrap());
        let _c = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        listener2.accept().unwrap();
    });
}

#[test]
fn socket_options_round_trip() {
    util::run(|| {
        let (client, _server) = tcp_pair();
        client.set_nodelay(true).unwrap();
        assert!(client.nodelay().unwrap());
        client.set_nodelay(false).unwrap();
        assert!(!client.nodelay().unwrap());
        client.set_ttl(42).unwrap();
        assert_eq!(client.ttl().unwrap(), 42);
        assert!(client.take_error().unwrap().is_none());
        // StreamServer's `nodelay` reaches accepted connections.
        let server = StreamServer::bind("127.0.0.1:0")
            .unwrap()
            .nodelay(true)
            .start(|stream, _| {
                (&stream).write_all(&[u8::from(stream.nodelay().unwrap())]).unwrap();
            })
            .unwrap();
        let mut c = TcpStream::connect(server.local_addr().unwrap()).unwrap();
        let mut flag = [9];
        c.read_exact(&mut flag).unwrap();
        assert_eq!(flag, [1]);
        server.stop(ms(100));
    });
}

#[test]
fn incoming_yields_accepted_streams() {
    util::run(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let clients = runtime::spawn(move || {
            for i in 0..3_u8 {
                let mut stream = TcpStream::connect(addr).unwrap();
                stream.write_all(&[i]).unwrap();
            }
        });
        let mut seen = Vec::new();
        for stream in listener.incoming().take(3) {
            let mut stream = stream.unwrap();
            let mut byte = [0];
            stream.read_exact(&mut byte).unwrap();
            seen.push(byte[0]);
        }
        assert_eq!(seen, [0, 1, 2]);
        clients.join().unwrap();
    });
}

#[test]
fn bind_and_connect_resolve_host_names() {
    util::run(|| {
        let listener = TcpListener::bind("localhost:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        assert!(listener.local_addr().unwrap().ip().is_loopback());
        let mut stream = TcpStream::connect(("localhost", port)).unwrap();
        let (mut server, _) = listener.accept().unwrap();
        stream.write_all(b"hello").unwrap();
        let mut buf = [0; 5];
        server.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"hello");
        assert_eq!(TcpStream::connect("no port here").unwrap_err().kind(), ErrorKind::InvalidInput);
    });
}

#[test]
fn peek_leaves_data_queued() {
    util::run(|| {
        let (client, server) = tcp_pair();
        let writer = runtime::spawn(move || {
            runtime::sleep(ms(20));
            (&client).write_all(b"peekaboo").unwrap();
            client
        });
        // Parks until data arrives.
        let mut buf = [0; 4];
        assert_eq!(server.peek(&mut buf).unwrap(), 4);
        assert_eq!(&buf, b"peek");
        let _client = writer.join().unwrap();
        let mut all = [0; 8];
        (&server).read_exact(&mut all).unwrap();
        assert_eq!(&all, b"peekaboo");
    });
}

#[test]
fn nonblocking_mode_returns_would_block() {
    util::run(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        assert_eq!(listener.accept().unwrap_err().kind(), ErrorKind::WouldBlock);
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        // The connection is queued by now (connect returned), so a
        // non-blocking accept finds it.
        let (server, _) = listener.accept().unwrap();
        server.set_nonblocking(true).unwrap();
        assert_eq!((&server).read(&mut [0; 8]).unwrap_err().kind(), ErrorKind::WouldBlock);
        (&client).write_all(b"now").unwrap();
        // Back to blocking style: parks until the data is there.
        server.set_nonblocking(false).unwrap();
        let mut buf = [0; 3];
        (&server).read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"now");
        listener.set_nonblocking(false).unwrap();
        listener.set_accept_timeout(Some(ms(30))).unwrap();
        assert_eq!(listener.accept().unwrap_err().kind(), ErrorKind::TimedOut);
    });
}

#[test]
fn from_std_takes_over_std_sockets() {
    util::run(|| {
        let listener = TcpListener::from_std(std::net::TcpListener::bind("127.0.0.1:0").unwrap()).unwrap();
        let addr = listener.local_addr().unwrap();
        let std_client = std::net::TcpStream::connect(addr).unwrap();
        let client = TcpStream::from_std(std_client).unwrap();
        let (server, _) = listener.accept().unwrap();
        (&client).write_all(b"std").unwrap();
        let mut buf = [0; 3];
        (&server).read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"std");
    });
}

#[test]
fn readable_after_a_nonblocking_would_block_waits_for_data() {
    util::run(|| {
        let (client, server) = tcp_pair();
        server.set_nonblocking(true).unwrap();
        assert_eq!((&server).read(&mut [0; 8]).unwrap_err().kind(), ErrorKind::WouldBlock);
        let written = Rc::new(Cell::new(false));
        let writer = runtime::spawn({
            let written = written.clone();
            move || {
                runtime::sleep(ms(20));
                written.set(true);
                (&client).write_all(b"data").unwrap();
                client
            }
        });
        // The WouldBlock told the stream it is drained: readable waits for
        // the data instead of returning at once.
        server.readable().unwrap();
        assert!(written.get(), "readable returned before anything was written");
        let mut buf = [0; 8];
        assert_eq!((&server).read(&mut buf).unwrap(), 4);
        drop(writer.join().unwrap());
    });
}

/// Buffer sizes set on a connected stream are what the kernel then reports
/// (Linux doubles them), and they bound what a writer gets in before a peer
/// that does not read makes it wait.
#[test]
fn buffer_sizes_set_on_a_connected_stream_bound_what_is_in_flight() {
    util::run(|| {
        let (client, server) = tcp_pair();
        client.set_send_buffer_size(8 * 1024).unwrap();
        server.set_recv_buffer_size(8 * 1024).unwrap();
        let (send, recv) = (client.send_buffer_size().unwrap(), server.recv_buffer_size().unwrap());
        assert!((8 * 1024..=64 * 1024).contains(&send), "send buffer {send}");
        assert!((8 * 1024..=64 * 1024).contains(&recv), "receive buffer {recv}");
        // A larger value reads back larger (up to the system's maximum).
        client.set_recv_buffer_size(128 * 1024).unwrap();
        assert!(client.recv_buffer_size().unwrap() > recv);
        server.set_send_buffer_size(128 * 1024).unwrap();
        assert!(server.send_buffer_size().unwrap() > send);

        let chunk = [7; 1024];
        let mut in_flight = 0;
        loop {
            match client.try_write(&chunk) {
                Ok(n) => in_flight += n,
                Err(err) if err.kind() == ErrorKind::WouldBlock => break,
                Err(err) => panic!("write failed: {err}"),
            }
            assert!(in_flight < 16 << 20, "16 MiB went in without the peer reading");
        }
        assert!(in_flight <= 512 * 1024, "{in_flight} bytes went in with {send} and {recv} byte buffers");
        // And all of it arrives.
        drop(client);
        assert_eq!(util::read_all(&server).unwrap().len(), in_flight);
    });
}

/// Like `a_flooded_reader_does_not_starve_the_hub`, for a reader that waits
/// with `readable()` and reads with `try_read` (tokio's pattern): a
/// `readable()` that returns at once spends the I/O budget too, so the loop
/// yields now and then.
#[test]
fn a_flooded_readable_try_read_loop_does_not_starve_the_hub() {
    const TICKS: u64 = 20;
    const MAX_READS: u64 = 2_000_000;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let flooder = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let chunk = vec![b'f'; 64 * 1024];
        while stream.write_all(&chunk).is_ok() {}
    });
    util::run(move || {
        let stream = TcpStream::connect(addr).unwrap();
        let ticks = Rc::new(Cell::new(0_u64));
        let _ticker = runtime::spawn({
            let ticks = ticks.clone();
            move || loop {
                ticks.set(ticks.get() + 1);
                runtime::yield_now();
            }
        });
        runtime::sleep(ms(100)); // let the flooder fill the buffers
        let ticks0 = ticks.get();
        let mut buf = [0; 64];
        let mut reads = 0;
        while ticks.get() - ticks0 < TICKS && reads < MAX_READS {
            stream.readable().unwrap();
            match stream.try_read(&mut buf) {
                Ok(n) => assert!(n > 0, "the flooder stopped"),
                Err(err) if err.kind() == ErrorKind::WouldBlock => {}
                Err(err) => panic!("read failed: {err}"),
            }
            reads += 1;
        }
        assert!(ticks.get() - ticks0 >= TICKS, "after {reads} reads the ticker ticked {} times", ticks.get() - ticks0);
    });
    flooder.join().unwrap();
}

/// A relay whose source always has data ready and whose destination always
/// has room (both ends are other threads, reading and writing flat out)
/// still lets a ticker greenlet run: its reads and writes spend the I/O
/// budget.
#[test]
fn a_busy_relay_does_not_starve_a_ticker() {
    const TICKS: u64 = 20;
    const MAX_CHUNKS: u64 = 2_000_000;
    let source = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let sink = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let (source_addr, sink_addr) = (source.local_addr().unwrap(), sink.local_addr().unwrap());
    let flooder = std::thread::spawn(move || {
        let (mut stream, _) = source.accept().unwrap();
        let chunk = vec![b'r'; 64 * 1024];
        while stream.write_all(&chunk).is_ok() {}
    });
    let drainer = std::thread::spawn(move || {
        let (mut stream, _) = sink.accept().unwrap();
        let mut buf = vec![0; 256 * 1024];
        while matches!(stream.read(&mut buf), Ok(1..)) {}
    });
    util::run(move || {
        let from = TcpStream::connect(source_addr).unwrap();
        let to = TcpStream::connect(sink_addr).unwrap();
        let ticks = Rc::new(Cell::new(0_u64));
        let _ticker = runtime::spawn({
            let ticks = ticks.clone();
            move || loop {
                ticks.set(ticks.get() + 1);
                runtime::yield_now();
            }
        });
        runtime::sleep(ms(100));
        let ticks0 = ticks.get();
        let mut buf = [0; 64];
        let mut chunks = 0;
        while ticks.get() - ticks0 < TICKS && chunks < MAX_CHUNKS {
            let n = (&from).read(&mut buf).unwrap();
            assert!(n > 0, "the flooder stopped");
            (&to).write_all(&buf[..n]).unwrap();
            chunks += 1;
        }
        assert!(
            ticks.get() - ticks0 >= TICKS,
            "after {chunks} chunks the ticker ticked {} times",
            ticks.get() - ticks0
        );
    });
    flooder.join().unwrap();
    drainer.join().unwrap();
}
