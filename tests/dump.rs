//! `runtime::dump` names the socket operation each parked greenlet waits in,
//! with its descriptor and timeout; and a greenlet waiting for SIGUSR1 can
//! write the dump (as the echo-server example does).

mod util;

use std::cell::RefCell;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::time::Duration;

use runtime::io::Source;
use runtime::net::{TcpListener, UdpSocket, UnixStream};
use runtime::signal::{SIGUSR1, Signals};
use runtime::{Dump, GreenletInfo, JoinHandle};
use util::tcp_pair;

/// Spawns `f` as a greenlet named `name` and waits until the dump shows it
/// parked; returns its handle and what it waits on.
fn park_named<T: 'static>(name: &str, f: impl FnOnce() -> T + 'static) -> (JoinHandle<T>, String) {
    let handle = runtime::task::Builder::new().name(name).spawn(f);
    let mut waiting_on = None;
    util::wait_until(&format!("{name} to park"), || {
        waiting_on = parked(&runtime::dump(), name).and_then(|info| info.waiting_on().map(str::to_owned));
        waiting_on.is_some()
    });
    (handle, waiting_on.unwrap())
}

/// The greenlet named `name`, if the dump shows it parked.
fn parked<'a>(dump: &'a Dump, name: &str) -> Option<&'a GreenletInfo> {
    dump.greenlets().iter().find(|info| info.name() == Some(name) && info.state() == "parked")
}

#[test]
fn dump_shows_a_tcp_read_with_its_descriptor_and_read_timeout() {
    util::run(|| {
        let (client, server) = tcp_pair();
        let fd = server.as_raw_fd();
        server.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let reader = runtime::task::Builder::new().name("reader").spawn(move || {
            let mut buf = [0; 16];
            (&server).read(&mut buf)
        });
        // Another greenlet takes the dump, once the reader has parked.
        let dumper = runtime::spawn(|| {
            loop {
                let dump = runtime::dump();
                if let Some(info) = parked(&dump, "reader") {
                    return (info.waiting_on().unwrap().to_owned(), dump.to_string());
                }
                runtime::yield_now();
            }
        });
        let (waiting_on, printed) = dumper.join().unwrap();
        let expected = format!("TcpStream::read fd {fd}, read timeout 5s");
        assert!(waiting_on.starts_with(&expected), "waiting_on is {waiting_on:?}, expected {expected:?}...");
        assert!(printed.contains("'reader' parked for"), "{printed}");
        assert!(printed.contains(&expected), "{printed}");
        // The read is still going: data ends it.
        (&client).write_all(b"done").unwrap();
        assert_eq!(reader.join().unwrap().unwrap(), 4);
    });
}

#[test]
fn dump_names_accepts_receives_waits_and_source_operations() {
    util::run(|| {
        let mut expected = Vec::new();
        let mut handles = Vec::new();

        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        expected.push(format!("TcpListener::accept fd {}", listener.as_raw_fd()));
        let (handle, on) = park_named("accept", move || drop(listener.accept()));
        handles.push((handle, on));

        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        expected.push(format!("UdpSocket::recv_from fd {}", udp.as_raw_fd()));
        let (handle, on) = park_named("recv_from", move || drop(udp.recv_from(&mut [0; 8])));
        handles.push((handle, on));

        let (unix, unix_peer) = UnixStream::pair().unwrap();
        expected.push(format!("UnixStream::read fd {}", unix.as_raw_fd()));
        let (handle, on) = park_named("unix read", move || drop((&unix).read(&mut [0; 8])));
        handles.push((handle, on));

        let (_tcp_client, tcp_server) = tcp_pair();
        expected.push(format!("TcpStream::readable fd {}", tcp_server.as_raw_fd()));
        // Told "not ready" once, so readable waits.
        let _ = tcp_server.try_read(&mut [0; 8]);
        let (handle, on) = park_named("readable", move || drop(tcp_server.readable()));
        handles.push((handle, on));

        let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
        let source = Source::new(a).unwrap();
        expected.push(format!("Source::read_with fd {}", source.as_raw_fd()));
        let (handle, on) = park_named("source", move || drop(source.read_with(|mut s| s.read(&mut [0; 8]))));
        handles.push((handle, on));

        let (reader, _writer) = util::pipe();
        expected.push(format!("wait_readable fd {}", reader.as_raw_fd()));
        let (handle, on) = park_named("wait_readable", move || drop(runtime::io::wait_readable(&reader, None)));
        handles.push((handle, on));

        for ((handle, on), expected) in handles.into_iter().zip(expected) {
            assert_eq!(on, expected, "greenlet {:?}", handle.name());
            handle.kill();
        }
        drop(unix_peer);
    });
}

/// A writer into a shared buffer, for capturing what a greenlet prints.
#[derive(Clone, Default)]
struct Captured(Rc<RefCell<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.borrow()).into_owned()
    }
}

/// What `examples/echo-server.rs` does on SIGUSR1, writing to `out` instead
/// of stderr.
fn dump_on_signal(mut signals: Signals, mut out: impl Write) -> std::io::Result<()> {
    loop {
        signals.wait()?;
        write!(out, "{}", runtime::dump())?;
    }
}

#[test]
fn sigusr1_writes_the_dump_naming_a_parked_connection() {
    // In a child process: it installs a handler for SIGUSR1 and sends the
    // signal.
    const TEST: &str = "sigusr1_writes_the_dump_naming_a_parked_connection";
    if !util::is_child(TEST) {
        let output = util::rerun_in_child(TEST, &[]);
        assert!(output.status.success(), "{}", util::output_text(&output));
        return;
    }
    util::run(|| {
        let (_client, server) = tcp_pair();
        let fd = server.as_raw_fd();
        let (connection, _) = park_named("conn", move || {
            let mut buf = [0; 16];
            drop((&server).read(&mut buf));
        });
        let captured = Captured::default();
        // The handler is installed before the signal is sent.
        let signals = Signals::new([SIGUSR1]).unwrap();
        let dumper = runtime::task::Builder::new().name("sigusr1").spawn({
            let captured = captured.clone();
            move || dump_on_signal(signals, captured)
        });
        signal_hook::low_level::raise(SIGUSR1).unwrap();
        util::wait_until("the dump to be written", || captured.text().contains("'conn' parked"));
        let text = captured.text();
        assert!(text.contains(&format!("on TcpStream::read fd {fd}")), "{text}");
        // The dumping greenlet lists itself as running.
        assert!(text.contains("'sigusr1' running"), "{text}");
        // The parked one's stack follows its line: the read it is parked in,
        // then the closure that called it.
        let conn = text.split("'conn' parked").nth(1).expect("the connection's entry");
        let mut frames = conn.lines().skip(1);
        assert!(frames.next().is_some_and(|f| f.contains("TcpStream") && f.contains("read")), "{text}");
        assert!(frames.next().is_some_and(|f| f.contains("dump::")), "{text}");
        // Every signal gives one more dump.
        signal_hook::low_level::raise(SIGUSR1).unwrap();
        util::wait_until("a second dump", || captured.text().matches("greenlet(s):").count() == 2);
        dumper.kill();
        connection.kill();
    });
}
