//! The `hooks` feature: unmodified blocking code (`std::net`,
//! `std::thread::sleep`, `std::process::Command`, DNS) parks only its
//! greenlet. Real sockets on 127.0.0.1. Timing checks only ever say
//! "concurrent, not serial": a bound far above the concurrent time and below
//! the serial one.

mod util;

use std::cell::{Cell, RefCell};
use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream, ToSocketAddrs};
use std::rc::Rc;
use std::time::{Duration, Instant};

use util::{ms, ticker};

/// A connected pair of `std::net` streams on 127.0.0.1: `(client, server)`.
/// Made in a greenlet, the accept and connect already ran through the hooks.
fn std_pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    (client, server)
}

/// The number of open descriptors of this process.
fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

#[test]
fn the_libc_functions_are_interposed() {
    // Fails if the hooks silently stopped being linked in (or interposing):
    // every other test here would then block the hub instead.
    assert!(runtime::hooks::is_interposed(), "the executable does not define the hooked libc functions");
    assert!(runtime::hooks::is_enabled_for_current_thread());
}

#[test]
fn a_hundred_thread_sleeps_run_concurrently_on_one_hub() {
    let elapsed = util::run(|| {
        let start = Instant::now();
        let sleepers: Vec<_> = (0..100).map(|_| runtime::spawn(|| std::thread::sleep(ms(200)))).collect();
        for sleeper in sleepers {
            sleeper.join().unwrap();
        }
        start.elapsed()
    });
    assert!(elapsed >= ms(200));
    // Serially: 100 × 200 ms = 20 s.
    assert!(elapsed < Duration::from_secs(5), "the sleeps ran one after another: {elapsed:?}");
}

#[test]
fn a_std_net_echo_server_serves_500_std_net_clients_on_one_thread() {
    const CLIENTS: usize = 500;
    let thread = std::thread::current().id();
    let served = util::run(move || {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let threads_seen = Rc::new(RefCell::new(Vec::new()));
        let seen = threads_seen.clone();
        let server = runtime::spawn(move || {
            for _ in 0..CLIENTS {
                let (mut stream, _) = listener.accept().unwrap();
                let seen = seen.clone();
                runtime::spawn(move || {
                    seen.borrow_mut().push(std::thread::current().id());
                    let mut buf = [0; 4096];
                    loop {
                        match stream.read(&mut buf).unwrap() {
                            0 => break,
                            n => stream.write_all(&buf[..n]).unwrap(),
                        }
                    }
                });
            }
        });
        let clients: Vec<_> = (0..CLIENTS)
            .map(|i| {
                runtime::spawn(move || {
                    let mut stream = TcpStream::connect(addr).unwrap();
                    // Several round trips of different sizes, every byte checked.
                    for round in 0..3usize {
                        let message: Vec<u8> = (0..100 + 37 * round + i).map(|b| (b * 7 + i + round) as u8).collect();
                        stream.write_all(&message).unwrap();
                        let mut echo = vec![0; message.len()];
                        stream.read_exact(&mut echo).unwrap();
                        assert_eq!(echo, message);
                    }
                    stream.shutdown(std::net::Shutdown::Write).unwrap();
                    let mut rest = Vec::new();
                    stream.read_to_end(&mut rest).unwrap();
                    assert!(rest.is_empty());
                    std::thread::current().id()
                })
            })
            .collect();
        let client_threads: Vec<_> = clients.into_iter().map(|client| client.join().unwrap()).collect();
        server.join().unwrap();
        assert!(client_threads.iter().all(|&t| t == std::thread::current().id()));
        let seen = threads_seen.borrow();
        assert!(seen.iter().all(|&t| t == std::thread::current().id()));
        seen.len()
    });
    assert_eq!(served, CLIENTS);
    assert_eq!(std::thread::current().id(), thread);
}

#[test]
fn a_read_timeout_expires_while_the_other_greenlets_run() {
    util::run(|| {
        let (mut client, _server) = std_pair();
        client.set_read_timeout(Some(ms(100))).unwrap();
        assert_eq!(client.read_timeout().unwrap(), Some(ms(100)));
        let (ticks, _ticker) = ticker();
        let start = Instant::now();
        let before = ticks.get();
        let err = client.read(&mut [0; 8]).unwrap_err();
        assert!(matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut), "{err:?}");
        assert!(start.elapsed() >= ms(100));
        assert!(ticks.get() > before, "the hub was blocked during the read");
        // The write side has its own timeout.
        client.set_write_timeout(Some(ms(50))).unwrap();
        assert!(client.write_timeout().unwrap().is_some());
    });
}

#[test]
fn a_socket_the_user_made_nonblocking_says_would_block_at_once() {
    util::run(|| {
        let (mut client, mut server) = std_pair();
        client.set_nonblocking(true).unwrap();
        let (ticks, _ticker) = ticker();
        let before = ticks.get();
        assert_eq!(client.read(&mut [0; 8]).unwrap_err().kind(), ErrorKind::WouldBlock);
        assert_eq!(ticks.get(), before, "a non-blocking read must not park");
        // And blocking again when asked to.
        client.set_nonblocking(false).unwrap();
        runtime::spawn(move || {
            runtime::sleep(ms(20));
            server.write_all(b"late").unwrap();
        });
        let mut buf = [0; 4];
        client.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"late");
    });
}

#[test]
fn a_hooked_socket_handed_to_a_plain_thread_blocks_there() {
    util::run(|| {
        let (mut client, mut server) = std_pair();
        // Used cooperatively first: the hooks made it non-blocking underneath.
        client.write_all(b"ping").unwrap();
        let mut buf = [0; 4];
        server.read_exact(&mut buf).unwrap();
        let thread = std::thread::spawn(move || {
            // Nothing there yet: a plain thread blocks (no WouldBlock).
            let mut buf = [0; 5];
            server.read_exact(&mut buf).unwrap();
            assert_eq!(&buf, b"hello");
            server.write_all(&vec![7; 1 << 20]).unwrap(); // more than the buffers hold: blocks too
            server.set_read_timeout(Some(ms(50))).unwrap();
            let err = server.read(&mut buf).unwrap_err();
            assert!(matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut), "{err:?}");
            server
        });
        runtime::sleep(ms(50));
        client.write_all(b"hello").unwrap();
        runtime::sleep(ms(50));
        let mut all = vec![0; 1 << 20];
        client.read_exact(&mut all).unwrap();
        assert!(all.iter().all(|&b| b == 7));
        let server = runtime::blocking(move || thread.join().unwrap());
        drop(server);
    });
}

#[test]
fn a_kill_ends_a_greenlet_parked_in_a_std_read() {
    runtime::Builder::new().cancel_grace(ms(20)).run(|| {
        let before = open_fds();
        let (client, server) = std_pair();
        let outcome = Rc::new(RefCell::new(None));
        let seen = outcome.clone();
        let reader = runtime::spawn(move || {
            let mut client = client;
            let result = client.read(&mut [0; 8]);
            *seen.borrow_mut() = Some(result.map_err(|err| err.raw_os_error()));
            // Runs on after the failed read; the next park lasts at most
            // until the end of the grace, where the kill is raised.
            runtime::sleep(Duration::from_secs(60));
            unreachable!("the kill is delivered at the park above");
        });
        runtime::sleep(ms(20));
        reader.kill();
        assert!(reader.join().unwrap_err().is_killed());
        assert_eq!(*outcome.borrow(), Some(Err(Some(libc::ECANCELED))));
        drop(server);
        assert_eq!(open_fds(), before, "a descriptor leaked");
    });
}

#[test]
fn a_killed_greenlet_whose_closure_returns_still_ends_as_killed() {
    util::run(|| {
        let (client, _server) = std_pair();
        let reader = runtime::spawn(move || {
            let mut client = client;
            let first = client.read(&mut [0; 8]).map_err(|err| err.raw_os_error());
            // A later hooked call fails at the end of the grace.
            let second = client.read(&mut [0; 8]).map_err(|err| err.raw_os_error());
            (first, second)
        });
        runtime::sleep(ms(20));
        reader.kill();
        assert!(reader.join().unwrap_err().is_killed());
    });
}

#[test]
fn a_timeout_around_a_std_read_that_never_completes_elapses() {
    util::run(|| {
        let (mut client, _server) = std_pair();
        let start = Instant::now();
        let result = runtime::timeout(ms(50), || client.read(&mut [0; 8]));
        assert_eq!(result.unwrap_err(), runtime::Elapsed);
        assert!(start.elapsed() >= ms(50));
        // The socket still works afterwards, and nothing stays pending.
        let mut buf = [0; 2];
        runtime::spawn({
            let mut server = _server.try_clone().unwrap();
            move || server.write_all(b"ok").unwrap()
        });
        client.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"ok");
    });
}

#[test]
fn a_timeout_reports_etimedout_to_the_call() {
    util::run(|| {
        let (mut client, _server) = std_pair();
        let seen = Rc::new(Cell::new(None));
        let s = seen.clone();
        let result = runtime::timeout(ms(20), move || {
            let err = client.read(&mut [0; 8]).unwrap_err();
            s.set(err.raw_os_error());
        });
        assert!(result.is_err());
        assert_eq!(seen.get(), Some(libc::ETIMEDOUT));
    });
}

#[test]
fn twenty_command_outputs_run_concurrently() {
    let elapsed = util::run(|| {
        let start = Instant::now();
        let children: Vec<_> = (0..20)
            .map(|_| {
                runtime::spawn(|| std::process::Command::new("sh").args(["-c", "sleep 0.3; echo hi"]).output().unwrap())
            })
            .collect();
        for child in children {
            let output = child.join().unwrap();
            assert!(output.status.success());
            assert_eq!(String::from_utf8(output.stdout).unwrap(), "hi\n");
        }
        start.elapsed()
    });
    // Serially: 20 × 0.3 s = 6 s.
    assert!(elapsed < Duration::from_secs(4), "the children were waited for one after another: {elapsed:?}");
}

#[test]
fn a_child_wait_parks_only_its_greenlet() {
    util::run(|| {
        let (ticks, _ticker) = ticker();
        let mut child = std::process::Command::new("sleep").arg("0.1").spawn().unwrap();
        let before = ticks.get();
        assert!(child.wait().unwrap().success());
        assert!(ticks.get() > before, "the hub was blocked while waiting for the child");
    });
}

#[test]
fn a_dns_lookup_does_not_stall_the_hub() {
    util::run(|| {
        let (ticks, _ticker) = ticker();
        runtime::sleep(ms(5));
        // A greenlet spawned now first runs when this one parks: if it ran
        // by the end of the lookup, the lookup parked (on the blocking pool)
        // instead of holding the hub.
        let ran = Rc::new(Cell::new(false));
        let flag = ran.clone();
        runtime::spawn(move || flag.set(true));
        let before = ticks.get();
        let addrs: Vec<_> = ("localhost", 80).to_socket_addrs().unwrap().collect();
        assert!(addrs.iter().any(|addr| addr.ip().is_loopback()), "{addrs:?}");
        assert!(ran.get(), "the lookup held the hub");
        // The ticker goes on meanwhile.
        runtime::sleep(ms(5));
        assert!(ticks.get() > before);
    });
}

#[test]
fn the_off_switch_blocks_the_thread() {
    util::run(|| {
        let (ticks, _ticker) = ticker();
        runtime::sleep(ms(5));
        let before = ticks.get();
        runtime::hooks::blocking_scope(|| std::thread::sleep(ms(30)));
        assert_eq!(ticks.get(), before, "the sleep parked the greenlet");
        runtime::hooks::disable_for_current_thread();
        std::thread::sleep(ms(10));
        assert_eq!(ticks.get(), before);
        runtime::hooks::enable_for_current_thread();
        std::thread::sleep(ms(10));
        assert!(ticks.get() > before);
    });
}

#[test]
fn plain_threads_and_the_hub_loop_see_libc() {
    // No hub on this thread: a sleep is a sleep, a socket blocks as usual.
    let start = Instant::now();
    std::thread::sleep(ms(20));
    assert!(start.elapsed() >= ms(20));
    let (mut client, mut server) = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        (client, listener.accept().unwrap().0)
    };
    client.write_all(b"x").unwrap();
    let mut buf = [0; 1];
    server.read_exact(&mut buf).unwrap();
    // Its mode is the kernel's: not made non-blocking behind its back.
    // SAFETY: F_GETFL on an open descriptor.
    let mode = unsafe { libc::fcntl(std::os::fd::AsRawFd::as_raw_fd(&server), libc::F_GETFL) };
    assert_eq!(mode & libc::O_NONBLOCK, 0);
}

#[test]
fn the_mode_a_greenlet_sees_is_the_one_it_asked_for() {
    util::run(|| {
        let (mut client, _server) = std_pair();
        client.write_all(b"x").unwrap(); // cooperative, its mode untouched
        let fd = std::os::fd::AsRawFd::as_raw_fd(&client);
        // SAFETY: F_GETFL on an open descriptor.
        let mode = unsafe { libc::fcntl(fd, libc::F_GETFL) };
        assert_eq!(mode & libc::O_NONBLOCK, 0, "the user asked for a blocking socket");
        client.set_nonblocking(true).unwrap();
        // SAFETY: as above.
        let mode = unsafe { libc::fcntl(fd, libc::F_GETFL) };
        assert_ne!(mode & libc::O_NONBLOCK, 0);
    });
}

#[test]
fn poll_and_a_plain_file_pass_through() {
    util::run(|| {
        // A regular file is never made non-blocking.
        let path = std::env::temp_dir().join(format!("runtime-hooks-{}", std::process::id()));
        std::fs::write(&path, b"data").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"data");
        std::fs::remove_file(&path).unwrap();
        // poll(2) in a greenlet parks it until a descriptor is ready.
        let (client, mut server) = std_pair();
        let (ticks, _ticker) = ticker();
        let writer = runtime::spawn(move || {
            runtime::sleep(ms(30));
            server.write_all(b"x").unwrap();
            server // kept open: no end of file to report
        });
        let before = ticks.get();
        let mut fds = [libc::pollfd { fd: std::os::fd::AsRawFd::as_raw_fd(&client), events: libc::POLLIN, revents: 0 }];
        // SAFETY: a valid array of one pollfd.
        let ready = unsafe { libc::poll(fds.as_mut_ptr(), 1, 5000) };
        assert_eq!(ready, 1);
        assert_ne!(fds[0].revents & libc::POLLIN, 0);
        assert!(ticks.get() > before, "poll blocked the hub");
        // And times out.
        let mut buf = [0; 1];
        (&client).read_exact(&mut buf).unwrap();
        // SAFETY: as above.
        let ready = unsafe { libc::poll(fds.as_mut_ptr(), 1, 20) };
        assert_eq!(ready, 0);
        drop(writer.join().unwrap());
    });
}

#[test]
fn select_and_ppoll_park_the_greenlet() {
    util::run(|| {
        let (client, mut server) = std_pair();
        let fd = std::os::fd::AsRawFd::as_raw_fd(&client);
        let (ticks, _ticker) = ticker();
        let writer = runtime::spawn(move || {
            runtime::sleep(ms(30));
            server.write_all(b"x").unwrap();
            server
        });
        // select(2): parks until readable.
        let before = ticks.get();
        // SAFETY: an fd_set on the stack, FD_ZERO'd before use.
        let mut set: libc::fd_set = unsafe { std::mem::zeroed() };
        // SAFETY: `fd` is below FD_SETSIZE in a test process.
        unsafe { libc::FD_SET(fd, &mut set) };
        let mut timeout = libc::timeval { tv_sec: 5, tv_usec: 0 };
        // SAFETY: valid set and timeout.
        let ready = unsafe { libc::select(fd + 1, &mut set, std::ptr::null_mut(), std::ptr::null_mut(), &mut timeout) };
        assert_eq!(ready, 1);
        // SAFETY: as above.
        assert!(unsafe { libc::FD_ISSET(fd, &set) });
        assert!(ticks.get() > before, "select blocked the hub");
        let mut byte = [0; 1];
        (&client).read_exact(&mut byte).unwrap();
        // ppoll(2): times out, parking meanwhile.
        let before = ticks.get();
        let mut fds = [libc::pollfd { fd, events: libc::POLLIN, revents: 0 }];
        let wait = libc::timespec { tv_sec: 0, tv_nsec: 30_000_000 };
        // SAFETY: a valid array, timeout, and no signal mask.
        let ready = unsafe { libc::ppoll(fds.as_mut_ptr(), 1, &wait, std::ptr::null()) };
        assert_eq!(ready, 0);
        assert!(ticks.get() > before, "ppoll blocked the hub");
        drop(writer.join().unwrap());
    });
}
