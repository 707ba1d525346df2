//! File descriptors: killing a greenlet closes exactly the sockets it owned,
//! and a `StreamServer` out of descriptors (`EMFILE` on accept) keeps serving
//! its connections and recovers once descriptors are freed.
//!
//! The tests here count the process's open descriptors, so they take turns
//! (`SERIAL`); the `EMFILE` scenario runs in a child process, whose limit it
//! lowers.

mod util;

use std::cell::{Cell, RefCell};
use std::io::{Read, Write};
use std::rc::Rc;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use runtime::net::{StreamServer, TcpListener, TcpStream};
use util::{ms, open_fds};

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(PoisonError::into_inner)
}

#[test]
fn killing_a_greenlet_parked_in_read_closes_the_stream_it_owned() {
    let _serial = serial();
    util::run(|| {
        let baseline = open_fds();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let mut clients = Vec::new();
        let mut readers = Vec::new();
        for _ in 0..20 {
            clients.push(TcpStream::connect(addr).unwrap());
            let (stream, _) = listener.accept().unwrap();
            // The greenlet owns the stream.
            readers.push(runtime::spawn(move || {
                let mut buf = [0; 16];
                (&stream).read(&mut buf)
            }));
        }
        assert_eq!(open_fds(), baseline + 1 + 2 * 20);
        runtime::sleep(ms(20));
        for reader in &readers {
            assert!(!reader.is_finished(), "a reader returned although nothing was sent");
            reader.kill();
        }
        for reader in readers {
            assert!(reader.join().unwrap_err().is_killed());
        }
        assert_eq!(open_fds(), baseline + 1 + 20, "the killed greenlets' streams must be closed");
        // Their peers see the close.
        for client in &clients {
            client.set_read_timeout(Some(util::PATIENCE)).unwrap();
            assert_eq!((&*client).read(&mut [0; 8]).unwrap(), 0);
        }
        drop(clients);
        drop(listener);
        assert_eq!(open_fds(), baseline);
    });
}

#[test]
fn killing_greenlets_parked_in_write_and_accept_closes_their_sockets() {
    let _serial = serial();
    util::run(|| {
        let baseline = open_fds();
        let (client, server) = util::tcp_pair();
        // A writer whose peer never reads parks once the buffers are full.
        let writer = runtime::spawn(move || {
            let chunk = vec![0; 256 * 1024];
            loop {
                (&client).write_all(&chunk).unwrap();
            }
        });
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let acceptor = runtime::spawn(move || listener.accept().map(drop));
        runtime::sleep(ms(50));
        assert!(!writer.is_finished() && !acceptor.is_finished());
        assert_eq!(open_fds(), baseline + 3);
        writer.kill();
        acceptor.kill();
        assert!(writer.join().unwrap_err().is_killed());
        assert!(acceptor.join().unwrap_err().is_killed());
        assert_eq!(open_fds(), baseline + 1);
        drop(server);
        assert_eq!(open_fds(), baseline);
    });
}

#[test]
fn killing_a_greenlet_does_not_close_a_stream_owned_by_someone_else() {
    let _serial = serial();
    util::run(|| {
        let baseline = open_fds();
        let (client, server) = util::tcp_pair();
        let server = Rc::new(server);
        // The greenlet only shares the stream.
        let reader = runtime::spawn({
            let server = server.clone();
            move || {
                let mut buf = [0; 16];
                (&*server).read(&mut buf)
            }
        });
        runtime::sleep(ms(20));
        assert!(!reader.is_finished());
        reader.kill();
        assert!(reader.join().unwrap_err().is_killed());
        assert_eq!(open_fds(), baseline + 2, "a stream the killed greenlet did not own was closed");
        // Still open and still working both ways, including a read that parks
        // on the same socket the killed greenlet was waiting on.
        let sender = runtime::spawn(move || {
            runtime::sleep(ms(20));
            (&client).write_all(b"still open").unwrap();
            client
        });
        let mut buf = [0; 10];
        (&*server).read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"still open");
        let client = sender.join().unwrap();
        (&*server).write_all(b"yes").unwrap();
        let mut reply = [0; 3];
        (&client).read_exact(&mut reply).unwrap();
        assert_eq!(&reply, b"yes");
        drop((client, server));
        assert_eq!(open_fds(), baseline);
    });
}

const EMFILE_TEST: &str = "a_server_out_of_file_descriptors_keeps_serving_and_recovers";
/// Connections the server can hold once the limit is lowered.
const SERVABLE: usize = 3;
/// Clients, all connected before the limit is lowered.
const CLIENTS: usize = 7;

#[test]
fn a_server_out_of_file_descriptors_keeps_serving_and_recovers() {
    if util::is_child(EMFILE_TEST) {
        emfile_child();
        return;
    }
    let _serial = serial();
    let output = util::rerun_in_child(EMFILE_TEST, &[]);
    assert!(output.status.success(), "the child process failed:\n{}", util::output_text(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("1 passed"), "the child did not run the scenario:\n{}", util::output_text(&output));
}

/// The soft `RLIMIT_NOFILE` that leaves exactly `free` descriptor numbers
/// available (new descriptors take the lowest free number).
fn limit_leaving(free: usize) -> u64 {
    let open = util::open_fd_numbers();
    (0_u64..).find(|&limit| limit as usize - open.iter().filter(|&&fd| (fd as u64) < limit).count() == free).unwrap()
}

/// CPU time this process has used.
fn cpu_time() -> Duration {
    // SAFETY: an all-zero `rusage` is a valid value for getrusage to fill.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `usage` is a valid, writable `rusage`.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    assert_eq!(rc, 0);
    let micros = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
    Duration::from_micros(micros(usage.ru_utime) + micros(usage.ru_stime))
}

fn emfile_child() {
    let capture = util::Capture::new();
    tracing::subscriber::set_global_default(capture.subscriber()).unwrap();
    util::run(move || {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        // Every client connects before the server accepts anything: the kernel
        // completes the handshakes and queues the connections.
        let clients: Vec<Rc<TcpStream>> = (0..CLIENTS).map(|_| Rc::new(TcpStream::connect(addr).unwrap())).collect();
        util::set_nofile_soft_limit(limit_leaving(SERVABLE));

        let accepted = Rc::new(Cell::new(0));
        let server = StreamServer::from_listener(listener)
            .start({
                let accepted = accepted.clone();
                move |stream, _| {
                    accepted.set(accepted.get() + 1);
                    let _ = util::echo(&stream);
                }
            })
            .unwrap();
        // Each client sends its number and waits, without a timeout, for the
        // echo.
        let served = Rc::new(RefCell::new(vec![false; CLIENTS]));
        let waiters: Vec<_> = clients
            .iter()
            .enumerate()
            .map(|(i, client)| {
                let (client, served) = (client.clone(), served.clone());
                runtime::spawn(move || {
                    (&*client).write_all(&[i as u8]).unwrap();
                    let mut echo = [0];
                    (&*client).read_exact(&mut echo).unwrap();
                    assert_eq!(echo[0], i as u8);
                    served.borrow_mut()[i] = true;
                })
            })
            .collect();
        let served_count = || served.borrow().iter().filter(|&&s| s).count();

        util::wait_until("the connections that fit to be served", || served_count() == SERVABLE);
        util::wait_until("accept to fail for lack of descriptors", || capture.text().contains("accept failed"));
        let log = capture.text();
        assert!(log.contains("Too many open files"), "expected EMFILE in the log:\n{log}");

        // Out of descriptors, the server neither accepts nor spins, and the
        // established connections are still served.
        let (wall, cpu) = (Instant::now(), cpu_time());
        runtime::sleep(ms(300));
        let (wall, cpu) = (wall.elapsed(), cpu_time() - cpu);
        assert!(cpu < wall / 2, "the server spins while out of descriptors: {cpu:?} of CPU in {wall:?}");
        assert_eq!(served_count(), SERVABLE, "accepted more connections than descriptors allow");
        assert_eq!(accepted.get(), SERVABLE);
        let open: Vec<usize> = (0..CLIENTS).filter(|&i| served.borrow()[i]).collect();
        for &i in &open {
            let mut client = &*clients[i];
            client.write_all(b"more").unwrap();
            let mut echo = [0; 4];
            client.read_exact(&mut echo).unwrap();
            assert_eq!(&echo, b"more");
        }

        // Closing served clients frees descriptors: the pending connections
        // get accepted and served.
        let mut to_close = open;
        let mut clients: Vec<Option<Rc<TcpStream>>> = clients.into_iter().map(Some).collect();
        while served_count() < CLIENTS {
            let before = served_count();
            let i = to_close.pop().expect("a served client to close");
            clients[i] = None;
            util::wait_until("a pending connection to be served", || served_count() > before);
            let newly_served: Vec<usize> = (0..CLIENTS)
                .filter(|&j| served.borrow()[j] && clients[j].is_some() && !to_close.contains(&j))
                .collect();
            to_close.extend(newly_served);
        }
        for waiter in waiters {
            waiter.join().unwrap();
        }
        assert_eq!(accepted.get(), CLIENTS);
        drop(clients);
        util::wait_until("every connection to end", || server.connections() == 0);
        server.stop(Duration::from_millis(100));
    });
}
