//! `runtime::io::wait_readable` and `wait_writable` on descriptors the runtime
//! does not own (pipes and `std` sockets): timeouts, wake-ups by another
//! greenlet, and deregistration when a waiting greenlet is killed.

mod util;

use std::cell::Cell;
use std::io::{ErrorKind, Read, Write};
use std::rc::Rc;
use std::time::{Duration, Instant};

use runtime::io::{wait_readable, wait_writable};
use util::{ms, pipe};

#[test]
fn wait_readable_times_out_when_nothing_is_written() {
    util::run(|| {
        let (reader, _writer) = pipe();
        let started = Instant::now();
        let err = wait_readable(&reader, Some(ms(50))).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TimedOut, "{err}");
        assert!(started.elapsed() >= ms(50), "timed out after only {:?}", started.elapsed());
    });
}

#[test]
fn wait_readable_returns_once_another_greenlet_writes() {
    util::run(|| {
        let (mut reader, mut writer) = pipe();
        let written = Rc::new(Cell::new(false));
        let other = runtime::spawn({
            let written = written.clone();
            move || {
                runtime::sleep(ms(30));
                written.set(true);
                writer.write_all(b"wake up").unwrap();
                writer
            }
        });
        wait_readable(&reader, None).unwrap();
        assert!(written.get(), "wait_readable returned before anything was written");
        let mut buf = [0; 7];
        reader.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"wake up");
        drop(other.join().unwrap());
        // With the writer closed, the pipe reports end-of-file: readable.
        wait_readable(&reader, Some(Duration::from_secs(30))).unwrap();
        assert_eq!(reader.read(&mut buf).unwrap(), 0);
    });
}

#[test]
fn wait_readable_returns_for_data_already_there() {
    util::run(|| {
        let (reader, mut writer) = pipe();
        writer.write_all(b"x").unwrap();
        // Generous: this must not need a wake-up that never comes.
        wait_readable(&reader, Some(Duration::from_secs(30))).unwrap();
        // Twice: nothing was consumed, and the registration of the first call
        // is gone.
        wait_readable(&reader, Some(Duration::from_secs(30))).unwrap();
    });
}

#[test]
fn wait_writable_on_a_pipe_with_room_returns_at_once() {
    util::run(|| {
        let (_reader, writer) = pipe();
        // Without help from any other greenlet: only the pipe's state can end
        // this wait.
        wait_writable(&writer, Some(Duration::from_secs(30))).unwrap();
    });
}

#[test]
fn wait_writable_on_a_full_pipe_waits_for_a_reader() {
    util::run(|| {
        let (mut reader, mut writer) = pipe();
        let chunk = [0_u8; 4096];
        let mut filled = 0;
        loop {
            match writer.write(&chunk) {
                Ok(n) => filled += n,
                Err(err) if err.kind() == ErrorKind::WouldBlock => break,
                Err(err) => panic!("filling the pipe: {err}"),
            }
        }
        assert!(filled > 0);
        let err = wait_writable(&writer, Some(ms(30))).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TimedOut, "{err}");
        let drained = Rc::new(Cell::new(0));
        let drainer = runtime::spawn({
            let drained = drained.clone();
            move || {
                runtime::sleep(ms(20));
                let mut buf = vec![0; filled];
                reader.read_exact(&mut buf).unwrap();
                drained.set(filled);
                reader
            }
        });
        wait_writable(&writer, None).unwrap();
        assert_eq!(drained.get(), filled, "wait_writable returned while the pipe was full");
        drop(drainer.join().unwrap());
    });
}

#[test]
fn killing_a_waiting_greenlet_deregisters_the_descriptor() {
    util::run(|| {
        let (reader, mut writer) = pipe();
        let reader = Rc::new(reader);
        let waiter = runtime::spawn({
            let reader = reader.clone();
            move || wait_readable(&*reader, None)
        });
        // Let it park in the wait.
        runtime::sleep(ms(20));
        assert!(!waiter.is_finished());
        // While it waits, the descriptor is registered with the hub.
        let err = wait_readable(&*reader, Some(ms(10))).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::AlreadyExists, "{err}");
        waiter.kill();
        assert!(waiter.join().unwrap_err().is_killed());
        // The kill unwound the wait and deregistered the descriptor: waiting
        // on it again works (and times out, as nothing was written) ...
        let err = wait_readable(&*reader, Some(ms(20))).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TimedOut, "{err}");
        // ... and is woken by a write.
        let other = runtime::spawn(move || {
            runtime::sleep(ms(20));
            writer.write_all(b"!").unwrap();
            writer
        });
        wait_readable(&*reader, None).unwrap();
        drop(other.join().unwrap());
    });
}

#[test]
fn a_timeout_scope_around_a_wait_deregisters_too() {
    util::run(|| {
        let (reader, _writer) = pipe();
        let outcome = runtime::timeout(ms(20), || wait_readable(&reader, None));
        assert!(outcome.is_err(), "the wait cannot have finished: {outcome:?}");
        let err = wait_readable(&reader, Some(ms(10))).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TimedOut, "{err}");
    });
}

#[test]
fn std_unix_sockets_can_be_waited_on() {
    util::run(|| {
        let (a, mut b) = std::os::unix::net::UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        b.set_nonblocking(true).unwrap();
        wait_writable(&a, Some(Duration::from_secs(30))).unwrap();
        assert_eq!(wait_readable(&a, Some(ms(20))).unwrap_err().kind(), ErrorKind::TimedOut);
        let closer = runtime::spawn(move || {
            runtime::sleep(ms(20));
            b.write_all(b"bye").unwrap();
            drop(b);
        });
        wait_readable(&a, None).unwrap();
        closer.join().unwrap();
        let mut got = Vec::new();
        (&a).read_to_end(&mut got).unwrap();
        assert_eq!(got, b"bye");
        // A hung-up peer keeps the socket readable.
        wait_readable(&a, Some(Duration::from_secs(30))).unwrap();
    });
}

#[test]
fn the_runtimes_own_sockets_are_refused() {
    util::run(|| {
        let (client, _server) = util::tcp_pair();
        let err = wait_readable(&client, Some(ms(10))).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::AlreadyExists, "{err}");
        // The failed attempt did not disturb the socket's own registration.
        let (mut a, mut b) = runtime::net::UnixStream::pair().unwrap();
        assert_eq!(wait_writable(&a, Some(ms(10))).unwrap_err().kind(), ErrorKind::AlreadyExists);
        b.write_all(b"ok").unwrap();
        let mut buf = [0; 2];
        a.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"ok");
    });
}
