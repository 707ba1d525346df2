//! examples/echo-server on two hubs, in a child process: 500 clients connect,
//! SIGINT arrives while they are connected, and the server stops accepting
//! but finishes every open connection without losing a byte, then returns
//! cleanly (the example's `main` then exits 0).

mod util;

#[allow(dead_code)]
#[path = "../examples/echo-server/echo.rs"]
mod echo;
#[allow(dead_code)]
#[path = "../examples/common/hubs.rs"]
mod hubs;

use std::cell::Cell;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::rc::Rc;
use std::time::Duration;

use runtime::net::TcpStream;
use runtime::signal::SIGINT;
use runtime::sync::Event;
use runtime_testkit::ChildTest;
use util::PATIENCE;

const CLIENTS: usize = 500;
/// Messages each client sends after the signal.
const MESSAGES_AFTER: usize = 20;

/// Sends `n` messages of varying sizes (seeded by `seed`) and checks each
/// echo.
fn exchange(stream: &TcpStream, seed: u64, n: usize) {
    for k in 0..n as u64 {
        let data = util::random_bytes(1 + ((seed * 131 + k * 977) % 8192) as usize, seed * 1000 + k);
        (&*stream).write_all(&data).unwrap();
        let mut back = vec![0; data.len()];
        (&*stream).read_exact(&mut back).unwrap();
        assert!(back == data, "client {seed}: message {k} came back changed");
    }
}

/// One client: a first echo, then (once the signal was sent and the server
/// refuses new connections) more of them, then the end of the stream.
fn client(addr: SocketAddr, n: u64, connected: Rc<Cell<usize>>, signalled: Rc<Event>) -> bool {
    let stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    exchange(&stream, n, 1);
    connected.set(connected.get() + 1);
    signalled.wait();
    exchange(&stream, n, MESSAGES_AFTER);
    stream.shutdown(Shutdown::Write).unwrap();
    // Nothing more comes back, and the server closes its side.
    util::read_all(&stream).unwrap().is_empty()
}

/// The clients' side, on a hub of their own: returns how many finished with
/// every byte echoed.
fn clients(addr: SocketAddr, log: &util::Capture) -> usize {
    let connected = Rc::new(Cell::new(0));
    let signalled = Rc::new(Event::new());
    let clients: Vec<_> = (0..CLIENTS as u64)
        .map(|n| {
            let (connected, signalled) = (connected.clone(), signalled.clone());
            runtime::spawn(move || client(addr, n, connected, signalled))
        })
        .collect();
    util::wait_until("every client to be connected", || connected.get() == CLIENTS);
    signal_hook::low_level::raise(SIGINT).unwrap();
    util::wait_until("both hubs to begin stopping", || log.text().matches(" stopping hub=").count() == 2);
    // Stopped servers close their listeners: new connections are refused,
    // while the open ones are still served.
    util::wait_until("the listeners to close", || match std::net::TcpStream::connect(addr) {
        Err(err) => err.kind() == ErrorKind::ConnectionRefused,
        Ok(_) => false, // not yet closed (and this probe is closed at once)
    });
    signalled.set();
    clients.into_iter().map(|client| client.join().expect("a client")).filter(|&ok| ok).count()
}

#[test]
fn two_hubs_stop_on_sigint_without_losing_a_byte() {
    const TEST: &str = "two_hubs_stop_on_sigint_without_losing_a_byte";
    if !util::is_child(TEST) {
        let output = ChildTest::new(TEST).run();
        assert!(output.status.success(), "{}", util::output_text(&output));
        return;
    }
    // In the child: it catches SIGINT, raises it, and takes a global
    // subscriber.
    util::ensure_nofile(4 * CLIENTS as u64 + 100);
    let capture = util::Capture::new();
    tracing::subscriber::set_global_default(capture.subscriber()).unwrap();
    let (ready, ready_rx) = std::sync::mpsc::channel();
    let config = echo::Config {
        addr: "127.0.0.1:0".into(),
        hubs: 2,
        // Long enough that no connection is cut short, however slow the
        // machine: the server returns as soon as the clients are done.
        grace: Duration::from_secs(60),
        ..echo::Config::default()
    };
    let server = std::thread::spawn(move || echo::run(config, move |addr| ready.send(addr).unwrap()));
    let addr = ready_rx.recv_timeout(PATIENCE).expect("the server starts");
    let verified = runtime::run({
        let capture = capture.clone();
        move || clients(addr, &capture)
    });
    let result = server.join().expect("the server thread");
    let log = capture.text();
    assert!(result.is_ok(), "the server stops cleanly: {result:?}\n{log}");
    assert_eq!(verified, CLIENTS, "every client got every byte back\n{log}");
    // Each hub logged how many connections it had open when it began to
    // stop: all of them, spread over both hubs.
    let open: Vec<usize> = log
        .lines()
        .filter(|line| line.contains(" stopping hub="))
        .map(|line| line.rsplit("connections=").next().unwrap().trim().parse().unwrap())
        .collect();
    assert_eq!(open.len(), 2, "{log}");
    assert_eq!(open.iter().sum::<usize>(), CLIENTS, "{log}");
    assert!(open.iter().all(|&n| n > 0), "both hubs served connections: {open:?}");
    println!("{CLIENTS} clients verified; connections per hub when stopping: {open:?}");
}

/// Sends `request` to the console at `path` and returns its reply lines.
fn console_request(path: &std::path::Path, request: &str) -> Vec<String> {
    use std::io::BufRead;
    let mut stream = std::os::unix::net::UnixStream::connect(path).expect("the console listens");
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    stream.write_all(format!("{request}\n").as_bytes()).unwrap();
    std::io::BufReader::new(stream).lines().map(Result::unwrap).take_while(|line| !line.is_empty()).collect()
}

#[test]
fn two_hubs_serve_a_console() {
    const TEST: &str = "two_hubs_serve_a_console";
    if !util::is_child(TEST) {
        let output = ChildTest::new(TEST).run();
        assert!(output.status.success(), "{}", util::output_text(&output));
        return;
    }
    // In the child: it raises SIGINT to stop the server.
    let path = std::env::temp_dir().join(format!("echo-console-{}.sock", std::process::id()));
    let (ready, ready_rx) = std::sync::mpsc::channel();
    let config =
        echo::Config { addr: "127.0.0.1:0".into(), hubs: 2, console: Some(path.clone()), ..echo::Config::default() };
    let server = std::thread::spawn(move || echo::run(config, move |addr| ready.send(addr).unwrap()));
    let addr = ready_rx.recv_timeout(PATIENCE).expect("the server starts");
    // A connection, echoed once, then idle: parked on its socket.
    let mut client = std::net::TcpStream::connect(addr).unwrap();
    client.set_read_timeout(Some(PATIENCE)).unwrap();
    client.write_all(b"ping").unwrap();
    let mut back = [0; 4];
    client.read_exact(&mut back).unwrap();

    let metrics = console_request(&path, "metrics");
    assert_eq!(metrics.len(), 2, "{metrics:?}");
    assert!(metrics[0].starts_with(r#"{"hub":0,"#) && metrics[1].starts_with(r#"{"hub":1,"#), "{metrics:?}");
    // On this plain thread (not a greenlet): poll with the thread's sleep. A
    // dump can come back without the hubs' part when resolving their stacks
    // outlasts the console's answer limit (a loaded machine): ask again.
    let deadline = std::time::Instant::now() + PATIENCE;
    while !console_request(&path, "dump").iter().any(|line| line.contains("TcpStream::readable")) {
        assert!(std::time::Instant::now() < deadline, "the connection's greenlet never showed in the dump");
        std::thread::sleep(Duration::from_millis(20));
    }

    drop(client);
    signal_hook::low_level::raise(SIGINT).unwrap();
    server.join().expect("the server thread").expect("the server stops cleanly");
    assert!(!path.exists(), "the console's socket is removed at exit");
}
