//! `StreamServer`: panicking handlers, read timeouts closing idle clients,
//! `max_connections`, graceful `stop` and connection counting.

mod util;

use std::cell::{Cell, RefCell};
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::rc::Rc;
use std::time::{Duration, Instant};

use runtime::net::{ServerHandle, StreamServer, TcpStream};
use util::{PATIENCE, ms};

/// Echoes what the client sends until end-of-file.
fn echo_handler(stream: TcpStream, _peer: SocketAddr) {
    let _ = util::echo(&stream);
}

/// One request-reply exchange: sends `message`, reads as many bytes back.
fn round_trip(stream: &TcpStream, message: &[u8]) -> Vec<u8> {
    let mut stream = stream;
    stream.write_all(message).unwrap();
    let mut reply = vec![0; message.len()];
    stream.read_exact(&mut reply).unwrap();
    reply
}

/// Whether the peer closed (or reset) the connection, reading with a
/// generous watchdog.
fn closed_by_peer(stream: &TcpStream) -> bool {
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut buf = [0; 16];
    match (&*stream).read(&mut buf) {
        Ok(0) => true,
        Ok(n) => panic!("expected the connection to be closed, got {n} bytes"),
        Err(err) if err.kind() == ErrorKind::ConnectionReset => true,
        Err(err) => panic!("expected the connection to be closed: {err}"),
    }
}

/// Whether anything comes back within `wait` (used to show a connection is
/// *not* being served).
fn replies_within(stream: &TcpStream, wait: Duration) -> bool {
    stream.set_read_timeout(Some(wait)).unwrap();
    let mut byte = [0];
    let outcome = stream.peek(&mut byte);
    stream.set_read_timeout(None).unwrap();
    match outcome {
        Ok(n) => n > 0,
        Err(err) if err.kind() == ErrorKind::TimedOut => false,
        Err(err) => panic!("unexpected error: {err}"),
    }
}

#[test]
fn a_panicking_handler_leaves_the_server_serving_the_others() {
    util::run(|| {
        let server = StreamServer::bind("127.0.0.1:0")
            .unwrap()
            .start(|stream, _| {
                let mut first = [0];
                if (&stream).read_exact(&mut first).is_err() {
                    return;
                }
                assert_ne!(first[0], 0xff, "this handler panics on 0xff");
                (&stream).write_all(&first).unwrap();
                let _ = util::echo(&stream);
            })
            .unwrap();
        let addr = server.local_addr().unwrap();
        // A connection established before the panic and kept open across it.
        let before = TcpStream::connect(addr).unwrap();
        assert_eq!(round_trip(&before, b"before"), b"before");
        let doomed = TcpStream::connect(addr).unwrap();
        (&doomed).write_all(&[0xff]).unwrap();
        assert!(closed_by_peer(&doomed), "the panicking connection must be closed");
        util::wait_until("the panicked connection to be forgotten", || server.connections() == 1);
        assert_eq!(round_trip(&before, b"still here"), b"still here");
        for i in 0..5_u8 {
            let after = TcpStream::connect(addr).unwrap();
            assert_eq!(round_trip(&after, &[i, i, i]), [i, i, i]);
        }
        drop(before);
        util::wait_until("every connection to end", || server.connections() == 0);
        server.stop(ms(100));
    });
}

#[test]
fn a_read_timeout_closes_silent_clients_while_active_ones_are_served() {
    const IDLE_LIMIT: Duration = Duration::from_millis(200);
    util::run(|| {
        let timeouts = Rc::new(Cell::new(0));
        let server = StreamServer::bind("127.0.0.1:0")
            .unwrap()
            .start({
                let timeouts = timeouts.clone();
                move |stream, _| {
                    stream.set_read_timeout(Some(IDLE_LIMIT)).unwrap();
                    let mut buf = [0; 1024];
                    loop {
                        match (&stream).read(&mut buf) {
                            Ok(0) => return,
                            Ok(n) => (&stream).write_all(&buf[..n]).unwrap(),
                            Err(err) if err.kind() == ErrorKind::TimedOut => {
                                timeouts.set(timeouts.get() + 1);
                                return;
                            }
                            Err(err) => panic!("handler: {err}"),
                        }
                    }
                }
            })
            .unwrap();
        let addr = server.local_addr().unwrap();
        let started = Instant::now();
        let silent: Vec<TcpStream> = (0..5).map(|_| TcpStream::connect(addr).unwrap()).collect();
        let all_closed = Rc::new(Cell::new(false));
        // Meanwhile an active client talks more often than the idle limit,
        // until the silent ones are gone (so for longer than the limit).
        let active = runtime::spawn({
            let all_closed = all_closed.clone();
            move || {
                let stream = TcpStream::connect(addr).unwrap();
                let connected = Instant::now();
                while !all_closed.get() {
                    assert_eq!(round_trip(&stream, b"keepalive"), b"keepalive");
                    runtime::sleep(IDLE_LIMIT / 10);
                }
                // Still served after the silent clients' connections ended.
                assert_eq!(round_trip(&stream, b"last"), b"last");
                connected.elapsed()
            }
        });
        for stream in &silent {
            assert!(closed_by_peer(stream));
        }
        all_closed.set(true);
        assert!(started.elapsed() >= IDLE_LIMIT, "silent clients closed after only {:?}", started.elapsed());
        let active_for = active.join().unwrap();
        assert!(active_for >= IDLE_LIMIT / 2, "the active client was not tested for long: {active_for:?}");
        util::wait_until("the active connection to end", || server.connections() == 0);
        assert_eq!(timeouts.get(), 5, "only the silent clients time out");
        server.stop(ms(100));
    });
}

#[test]
fn max_connections_holds_back_the_third_until_one_closes() {
    util::run(|| {
        let server = StreamServer::bind("127.0.0.1:0").unwrap().max_connections(2).start(echo_handler).unwrap();
        let addr = server.local_addr().unwrap();
        let first = TcpStream::connect(addr).unwrap();
        let second = TcpStream::connect(addr).unwrap();
        assert_eq!(round_trip(&first, b"1"), b"1");
        assert_eq!(round_trip(&second, b"2"), b"2");
        assert_eq!(server.connections(), 2);
        // The third is connected (the kernel completed the handshake) but not
        // accepted: its request gets no reply.
        let third = TcpStream::connect(addr).unwrap();
        (&third).write_all(b"3").unwrap();
        assert!(!replies_within(&third, ms(200)), "a third connection was served");
        assert_eq!(server.connections(), 2);
        drop(first);
        let mut reply = [0];
        (&third).read_exact(&mut reply).unwrap();
        assert_eq!(&reply, b"3");
        assert_eq!(server.connections(), 2);
        assert_eq!(round_trip(&second, b"22"), b"22");
        drop(second);
        util::wait_until("the second connection to end", || server.connections() == 1);
        drop(third);
        util::wait_until("the third connection to end", || server.connections() == 0);
        server.stop(ms(100));
    });
}

/// Starts a server whose handler reads one command byte: `s` finishes after a
/// short while, `l` would take an hour. Counts finished and unwound handlers.
fn start_slow_server(finished: &Rc<Cell<usize>>, unwound: &Rc<Cell<usize>>) -> ServerHandle {
    let (finished, unwound) = (finished.clone(), unwound.clone());
    StreamServer::bind("127.0.0.1:0")
        .unwrap()
        .start(move |mut stream, _| {
            struct Unwound(Rc<Cell<usize>>);
            impl Drop for Unwound {
                fn drop(&mut self) {
                    if std::thread::panicking() {
                        self.0.set(self.0.get() + 1);
                    }
                }
            }
            let _guard = Unwound(unwound.clone());
            let mut command = [0];
            stream.read_exact(&mut command).unwrap();
            let work = if command[0] == b's' { ms(20) } else { Duration::from_secs(3600) };
            runtime::sleep(work);
            stream.write_all(b"done").unwrap();
            finished.set(finished.get() + 1);
        })
        .unwrap()
}

#[test]
fn stop_refuses_new_connections_finishes_short_handlers_and_kills_long_ones() {
    util::run(|| {
        let (finished, unwound) = (Rc::new(Cell::new(0)), Rc::new(Cell::new(0)));
        let server = start_slow_server(&finished, &unwound);
        let addr = server.local_addr().unwrap();
        let mut short = TcpStream::connect(addr).unwrap();
        let mut long = TcpStream::connect(addr).unwrap();
        short.write_all(b"s").unwrap();
        long.write_all(b"l").unwrap();
        util::wait_until("both handlers to run", || server.connections() == 2);
        assert!(!server.is_stopped());
        let grace = ms(1000);
        let started = Instant::now();
        server.stop(grace);
        assert!(started.elapsed() >= grace, "stop returned after {:?}, before the grace period", started.elapsed());
        assert!(server.is_stopped());
        assert_eq!(server.connections(), 0);
        assert_eq!(finished.get(), 1, "the short handler finishes within the grace period");
        assert_eq!(unwound.get(), 1, "the long handler is killed");
        let mut reply = Vec::new();
        short.read_to_end(&mut reply).unwrap();
        assert_eq!(reply, b"done");
        // The killed handler's stream was closed by unwinding.
        assert!(closed_by_peer(&long));
        // Nothing listens any more.
        let err = TcpStream::connect(addr).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ConnectionRefused, "{err}");
        // Stopping again returns at once.
        server.stop(Duration::from_secs(3600));
    });
}

#[test]
fn stop_returns_when_handlers_finish_within_the_grace_period() {
    util::run(|| {
        let (finished, unwound) = (Rc::new(Cell::new(0)), Rc::new(Cell::new(0)));
        let server = start_slow_server(&finished, &unwound);
        let addr = server.local_addr().unwrap();
        let clients: Vec<TcpStream> = (0..3).map(|_| TcpStream::connect(addr).unwrap()).collect();
        for mut client in &clients {
            client.write_all(b"s").unwrap();
        }
        util::wait_until("the handlers to run", || server.connections() == 3);
        // A grace period this test could never sit out: stop must return
        // because the handlers finished, not because it expired.
        let waiter = runtime::spawn({
            let server = server.clone();
            move || server.stop(Duration::from_secs(3600))
        });
        waiter.join_timeout(PATIENCE).expect("stop waited for the grace period to pass").unwrap();
        assert_eq!((finished.get(), unwound.get()), (3, 0));
        for client in &clients {
            assert_eq!(util::read_all(client).unwrap(), b"done");
        }
    });
}

#[test]
fn connections_counts_live_handlers() {
    util::run(|| {
        let server = StreamServer::bind("127.0.0.1:0").unwrap().name("echo").start(echo_handler).unwrap();
        let addr = server.local_addr().unwrap();
        assert_eq!(server.connections(), 0);
        let mut clients = Vec::new();
        for n in 1..=4 {
            let client = TcpStream::connect(addr).unwrap();
            assert_eq!(round_trip(&client, b"hi"), b"hi");
            assert_eq!(server.connections(), n);
            clients.push(client);
        }
        let debug = format!("{server:?}");
        assert!(debug.contains("connections: 4"), "{debug}");
        for (left, client) in clients.into_iter().enumerate().map(|(i, c)| (3 - i, c)) {
            client.shutdown(Shutdown::Write).unwrap();
            assert!(util::read_all(&client).unwrap().is_empty());
            util::wait_until("a connection to end", || server.connections() == left);
        }
        server.stop(ms(100));
    });
}

#[test]
fn a_handler_can_stop_its_own_server() {
    util::run(|| {
        let server = StreamServer::bind("127.0.0.1:0").unwrap();
        let addr = server.local_addr().unwrap();
        let handle: Rc<Cell<Option<ServerHandle>>> = Rc::new(Cell::new(None));
        let client = runtime::spawn(move || {
            let mut stream = TcpStream::connect(addr).unwrap();
            stream.write_all(b"stop").unwrap();
            util::read_all(&stream).unwrap()
        });
        let started = {
            let handle = handle.clone();
            server
                .start(move |stream, _| {
                    let mut command = [0; 4];
                    (&stream).read_exact(&mut command).unwrap();
                    let server = handle.take().expect("the handle is stored before any client connects");
                    server.stop(Duration::from_secs(3600));
                    (&stream).write_all(b"stopping").unwrap();
                })
                .unwrap()
        };
        handle.set(Some(started.clone()));
        // serve_forever's wait: returns once the handler's stop completes.
        started.wait();
        assert!(started.is_stopped());
        assert_eq!(client.join().unwrap(), b"stopping");
    });
}

#[test]
fn stop_while_at_max_connections_ends_the_waiting_acceptor_and_the_handlers() {
    util::run(|| {
        let (finished, unwound) = (Rc::new(Cell::new(0)), Rc::new(Cell::new(0)));
        let (f, u) = (finished.clone(), unwound.clone());
        let server = StreamServer::bind("127.0.0.1:0")
            .unwrap()
            .max_connections(1)
            .start(move |stream, _| {
                struct Unwound(Rc<Cell<usize>>);
                impl Drop for Unwound {
                    fn drop(&mut self) {
                        self.0.set(self.0.get() + 1);
                    }
                }
                let _guard = Unwound(u.clone());
                let _ = util::echo(&stream);
                f.set(f.get() + 1);
            })
            .unwrap();
        let addr = server.local_addr().unwrap();
        let first = TcpStream::connect(addr).unwrap();
        assert_eq!(round_trip(&first, b"1"), b"1");
        // Full: the acceptor waits for room, the second stays in the backlog.
        let second = TcpStream::connect(addr).unwrap();
        (&second).write_all(b"2").unwrap();
        assert!(!replies_within(&second, ms(100)), "a second connection was served");
        server.stop(ms(50));
        assert!(server.is_stopped());
        assert_eq!(server.connections(), 0);
        assert_eq!((finished.get(), unwound.get()), (0, 1), "the one handler was killed, none finished");
        assert!(closed_by_peer(&first));
        // The never-accepted connection is reset or closed with the listener.
        assert!(closed_by_peer(&second));
    });
}

/// The length of the accept queue of the socket listening on `port`, from
/// `/proc/net/tcp` (for a listening socket, its `rx_queue` column).
fn accept_queue_len(port: u16) -> Option<usize> {
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (_, local_port) = fields.get(1)?.split_once(':')?;
        let listening = fields.get(3)? == &"0A";
        if !listening || u16::from_str_radix(local_port, 16).ok()? != port {
            return None;
        }
        let (_, rx_queue) = fields.get(4)?.split_once(':')?;
        usize::from_str_radix(rx_queue, 16).ok()
    })
}

/// The backlog of the socket listening on `port` as `ss` reports it (its
/// `Send-Q` column), or `None` without a working `ss`.
fn backlog_from_ss(port: u16) -> Option<u32> {
    let output = std::process::Command::new("ss").args(["-ltnH", &format!("sport = :{port}")]).output().ok()?;
    let text = String::from_utf8(output.stdout).ok()?;
    let line = text.lines().next()?;
    line.split_whitespace().nth(2)?.parse().ok()
}

fn somaxconn() -> u32 {
    std::fs::read_to_string("/proc/sys/net/core/somaxconn").map_or(4096, |text| text.trim().parse().unwrap())
}

#[test]
fn the_backlog_limits_the_kernel_accept_queue() {
    const BACKLOG: usize = 3;
    util::run(|| {
        let server = StreamServer::bind("127.0.0.1:0").unwrap().backlog(BACKLOG as u32);
        let addr = server.local_addr().unwrap();
        // Nothing accepts yet: the kernel completes handshakes into the
        // accept queue until it is full (Linux holds one more than the
        // backlog), then drops further SYNs, so a connect hangs.
        let mut queued = Vec::new();
        let refused = loop {
            match TcpStream::connect_timeout(&addr, ms(500)) {
                Ok(stream) => {
                    queued.push(stream);
                    // The server side takes the final ACK after the client's
                    // connect returns: wait until it is queued.
                    util::wait_until("the connection to be queued", || {
                        accept_queue_len(addr.port()) == Some(queued.len())
                    });
                    assert!(queued.len() <= BACKLOG + 1, "the kernel queued more than the backlog allows");
                }
                Err(err) => break err,
            }
        };
        assert_eq!(refused.kind(), ErrorKind::TimedOut, "{refused}");
        assert_eq!(queued.len(), BACKLOG + 1);
        if let Some(reported) = backlog_from_ss(addr.port()) {
            assert_eq!(reported, BACKLOG as u32);
        }
        // Once the server runs, every queued connection is served.
        let server = server.start(echo_handler).unwrap();
        for client in &queued {
            assert_eq!(round_trip(client, b"queued"), b"queued");
        }
        server.stop(ms(100));
    });
}

#[test]
fn the_default_backlog_is_somaxconn() {
    util::run(|| {
        let server = StreamServer::bind("127.0.0.1:0").unwrap();
        let listener = runtime::net::TcpListener::bind("127.0.0.1:0").unwrap();
        for port in [server.local_addr().unwrap().port(), listener.local_addr().unwrap().port()] {
            let Some(reported) = backlog_from_ss(port) else {
                eprintln!("`ss` is not available: the default backlog is not checked");
                return;
            };
            assert_eq!(reported, somaxconn());
        }
    });
}

/// Starts an echo server and, in front of it, a proxy whose handler is
/// `proxy(client, echo_addr)`; checks that the proxy relays, then that
/// `stop` with a short grace period closes the client's connection (the
/// client reads end-of-file) and leaves no connection behind, even though
/// each handler relays with helper greenlets.
fn stop_closes_proxied_connections(proxy: impl Fn(TcpStream, SocketAddr) + 'static) {
    util::run(move || {
        let echo = StreamServer::bind("127.0.0.1:0").unwrap().name("echo").start(echo_handler).unwrap();
        let echo_addr = echo.local_addr().unwrap();
        let server = StreamServer::bind("127.0.0.1:0")
            .unwrap()
            .name("proxy")
            .start(move |client, _| proxy(client, echo_addr))
            .unwrap();
        let addr = server.local_addr().unwrap();
        let clients: Vec<TcpStream> = (0..3).map(|_| TcpStream::connect(addr).unwrap()).collect();
        for client in &clients {
            assert_eq!(round_trip(client, b"through the proxy"), b"through the proxy");
        }
        assert_eq!(server.connections(), 3);
        server.stop(ms(50));
        assert!(server.is_stopped());
        assert_eq!(server.connections(), 0);
        for client in &clients {
            assert!(closed_by_peer(client), "the proxied connection was left open");
        }
        // The helpers let go of the upstream connections too.
        util::wait_until("the echo connections to close", || echo.connections() == 0);
        echo.stop(ms(50));
    });
}

#[test]
fn stop_closes_connections_relayed_by_kill_on_drop_helpers() {
    stop_closes_proxied_connections(|client, upstream| {
        let client = Rc::new(client);
        let upstream = Rc::new(TcpStream::connect(upstream).unwrap());
        // One direction in a helper, tied to the handler: when the handler is
        // killed, the helper goes too, and with it its share of both sockets.
        let helper = runtime::spawn({
            let (client, upstream) = (client.clone(), upstream.clone());
            move || {
                let _ = std::io::copy(&mut &*client, &mut &*upstream);
                let _ = upstream.shutdown(Shutdown::Write);
            }
        })
        .kill_on_drop();
        let _ = std::io::copy(&mut &*upstream, &mut &*client);
        let _ = client.shutdown(Shutdown::Write);
        let _ = helper.join();
    });
}

#[test]
fn stop_closes_connections_relayed_by_two_kill_on_drop_helpers() {
    stop_closes_proxied_connections(|client, upstream| {
        let client = Rc::new(client);
        let upstream = Rc::new(TcpStream::connect(upstream).unwrap());
        let relay = |from: &Rc<TcpStream>, to: &Rc<TcpStream>| {
            let (from, to) = (from.clone(), to.clone());
            runtime::spawn(move || {
                let _ = std::io::copy(&mut &*from, &mut &*to);
                let _ = to.shutdown(Shutdown::Write);
            })
            .kill_on_drop()
        };
        let (up, down) = (relay(&client, &upstream), relay(&upstream, &client));
        drop((client, upstream)); // only the helpers hold the sockets now
        let _ = up.join();
        let _ = down.join();
    });
}

#[test]
fn stop_closes_connections_relayed_by_scoped_greenlets() {
    stop_closes_proxied_connections(|client, upstream| {
        let upstream = TcpStream::connect(upstream).unwrap();
        runtime::scope(|s| {
            s.spawn(|| {
                let _ = std::io::copy(&mut &client, &mut &upstream);
                let _ = upstream.shutdown(Shutdown::Write);
            });
            let _ = std::io::copy(&mut &upstream, &mut &client);
            let _ = client.shutdown(Shutdown::Write);
        });
    });
}

#[test]
fn stop_closes_connections_relayed_by_copy_bidirectional() {
    stop_closes_proxied_connections(|client, upstream| {
        let upstream = TcpStream::connect(upstream).unwrap();
        let _ = runtime::io::copy_bidirectional(&client, &upstream);
    });
}

/// gevent runs `stop()` in a `finally` of `serve_forever`: killing the
/// greenlet that serves stops the server, so new connections are refused and
/// the running handlers end.
#[test]
fn killing_the_serve_forever_greenlet_stops_the_server() {
    util::run(|| {
        let listener = runtime::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let serving = runtime::spawn(move || StreamServer::from_listener(listener).serve_forever(echo_handler));
        let client = TcpStream::connect(addr).unwrap();
        assert_eq!(round_trip(&client, b"hi"), b"hi");
        serving.kill();
        assert!(serving.join_timeout(PATIENCE).expect("serve_forever did not end").unwrap_err().is_killed());
        assert!(closed_by_peer(&client), "the handler was not stopped");
        let err = TcpStream::connect(addr).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ConnectionRefused, "{err}");
    });
}

/// gevent's `test__server`: a server made from an address binds when it
/// starts (connections are refused before), serves, and refuses again once
/// stopped.
#[test]
fn new_binds_when_the_server_starts() {
    util::run(|| {
        let addr = util::unused_addr();
        let server = StreamServer::new(addr);
        assert_eq!(server.local_addr().unwrap_err().kind(), ErrorKind::NotConnected);
        let err = TcpStream::connect(addr).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ConnectionRefused, "listening before start: {err}");
        let server = server.start(echo_handler).unwrap();
        assert_eq!(server.local_addr(), Some(addr));
        for _ in 0..2 {
            assert_eq!(round_trip(&TcpStream::connect(addr).unwrap(), b"hi"), b"hi");
        }
        server.stop(ms(100));
        let err = TcpStream::connect(addr).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ConnectionRefused, "{err}");
    });
}

/// What `new` could not resolve or bind comes out of `start`.
#[test]
fn start_reports_why_new_could_not_bind() {
    util::run(|| {
        let taken = runtime::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let err = StreamServer::new(taken.local_addr().unwrap()).start(echo_handler).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::AddrInUse, "{err}");
        let err = StreamServer::new("no port here").start(echo_handler).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
        // The backlog set before `start` is the one it listens with.
        let server = StreamServer::new("127.0.0.1:0").backlog(3).start(echo_handler).unwrap();
        if let Some(backlog) = backlog_from_ss(server.local_addr().unwrap().port()) {
            assert_eq!(backlog, 3);
        }
        server.stop(ms(100));
    });
}

/// gevent's `test__server`: `stop_accepting` leaves new connections
/// unanswered (queued, not refused), `start_accepting` serves them, running
/// connections go on meanwhile, and `stop` refuses.
#[test]
fn stop_accepting_leaves_connections_waiting_until_start_accepting() {
    util::run(|| {
        let server = StreamServer::new("127.0.0.1:0").start(echo_handler).unwrap();
        let addr = server.local_addr().unwrap();
        let before = TcpStream::connect(addr).unwrap();
        assert_eq!(round_trip(&before, b"one"), b"one");
        assert!(server.is_accepting());
        server.stop_accepting();
        server.stop_accepting(); // twice is once
        assert!(!server.is_accepting());
        let waiting = TcpStream::connect(addr).unwrap(); // the kernel queues it
        (&waiting).write_all(b"two").unwrap();
        assert!(!replies_within(&waiting, ms(200)), "served while not accepting");
        assert_eq!(server.connections(), 1);
        assert_eq!(round_trip(&before, b"still"), b"still", "a running connection stopped");
        server.start_accepting();
        server.start_accepting();
        assert!(server.is_accepting());
        let mut reply = [0; 3];
        waiting.set_read_timeout(Some(PATIENCE)).unwrap();
        (&waiting).read_exact(&mut reply).unwrap();
        assert_eq!(&reply, b"two");
        assert_eq!(round_trip(&TcpStream::connect(addr).unwrap(), b"three"), b"three");
        // Paused again, then stopped: the socket closes.
        server.stop_accepting();
        server.stop(ms(100));
        server.start_accepting(); // a stopped server stays stopped
        assert!(!server.is_accepting());
        let err = TcpStream::connect(addr).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ConnectionRefused, "{err}");
    });
}

/// `max_accept(n)`: with connections queued, the acceptor takes `n` of them
/// before the greenlets it spawned get to run (gevent's `max_accept` per
/// readiness); by default it takes the whole queue of 10 first.
#[test]
fn max_accept_bounds_the_connections_accepted_in_a_row() {
    fn accepted_before_the_first_handler_runs(server: StreamServer) -> usize {
        let handle: Rc<RefCell<Option<ServerHandle>>> = Rc::new(RefCell::new(None));
        let seen = Rc::new(Cell::new(None));
        let served = Rc::new(Cell::new(0));
        let addr = server.local_addr().unwrap();
        let clients: Vec<TcpStream> = (0..10).map(|_| TcpStream::connect(addr).unwrap()).collect();
        let server = server
            .start({
                let (handle, seen, served) = (handle.clone(), seen.clone(), served.clone());
                move |_, _| {
                    // No handler has finished yet when the first one runs:
                    // the pool holds every connection accepted so far.
                    if seen.get().is_none() {
                        seen.set(Some(handle.borrow().as_ref().unwrap().connections()));
                    }
                    served.set(served.get() + 1);
                }
            })
            .unwrap();
        *handle.borrow_mut() = Some(server.clone());
        util::wait_until("every connection to be served", || served.get() == 10);
        server.stop(ms(100));
        drop(clients);
        seen.get().unwrap()
    }
    util::run(|| {
        let server = StreamServer::bind("127.0.0.1:0").unwrap().max_accept(3);
        assert_eq!(accepted_before_the_first_handler_runs(server), 3);
        let server = StreamServer::bind("127.0.0.1:0").unwrap();
        assert_eq!(accepted_before_the_first_handler_runs(server), 10);
    });
}

/// The `on_connect` hook sets options before the handler runs; an error
/// from it closes the connection without running the handler.
#[test]
fn on_connect_sets_options_or_refuses_before_the_handler() {
    util::run(|| {
        let handled = Rc::new(Cell::new(0));
        let server = StreamServer::new("127.0.0.1:0")
            .on_connect(|stream| {
                stream.set_send_buffer_size(16 * 1024)?;
                let mut first = [0];
                (&*stream).read_exact(&mut first)?;
                if first[0] == b'!' {
                    return Err(std::io::Error::new(ErrorKind::PermissionDenied, "go away"));
                }
                Ok(())
            })
            .start({
                let handled = handled.clone();
                move |stream, _| {
                    handled.set(handled.get() + 1);
                    let size = stream.send_buffer_size().unwrap();
                    let _ = (&stream).write_all(&size.to_be_bytes());
                }
            })
            .unwrap();
        let addr = server.local_addr().unwrap();
        let refused = TcpStream::connect(addr).unwrap();
        (&refused).write_all(b"!").unwrap();
        assert!(closed_by_peer(&refused));
        assert_eq!(handled.get(), 0);
        let served = TcpStream::connect(addr).unwrap();
        (&served).write_all(b"?").unwrap();
        let reply = util::read_all(&served).unwrap();
        let size = u32::from_be_bytes(reply.try_into().unwrap());
        assert!((16 * 1024..=64 * 1024).contains(&size), "send buffer {size}");
        assert_eq!(handled.get(), 1);
        server.stop(ms(100));
    });
}
