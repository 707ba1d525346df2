//! `futures_io::AsyncRead`/`AsyncWrite` on our streams (the `futures-io`
//! feature), driven by `futures_util`'s extension traits inside
//! `runtime::block_on`: data of every size both ways, `Pending` and wake-ups
//! when the socket is empty or full, `close` shutting down the write half,
//! and blocking calls on the same socket before, between and after.

mod util;

use std::future::{Future, poll_fn};
use std::io::{self, IoSlice};
use std::net::Shutdown;
use std::pin::pin;
use std::rc::Rc;
use std::task::Poll;

use futures_util::io::{AsyncReadExt, AsyncWriteExt};
use runtime::net::UnixStream;

#[test]
fn read_exact_and_write_all_mixed_with_blocking_calls_on_one_tcp_stream() {
    util::run(|| {
        let (mut client, server) = util::tcp_pair();
        // The peer echoes in blocking style.
        let echo = runtime::spawn(move || util::echo(&server).unwrap());
        let mut buf = [0; 5];
        for round in 0..3 {
            // Async...
            runtime::block_on(async {
                client.write_all(b"async").await.unwrap();
                client.read_exact(&mut buf).await.unwrap();
            });
            assert_eq!(&buf, b"async", "round {round}");
            // ...then blocking, on the same socket, sharing its readiness.
            io::Write::write_all(&mut client, b"block").unwrap();
            io::Read::read_exact(&mut client, &mut buf).unwrap();
            assert_eq!(&buf, b"block", "round {round}");
        }
        // A read that has to wait: nothing is there, so its first poll is
        // Pending, until a blocking write (inside the same future) gets the
        // byte echoed and the reactor wakes the greenlet.
        runtime::block_on(async {
            let mut byte = [0];
            let mut reader = &client;
            let mut read = pin!(reader.read(&mut byte));
            assert!(poll_fn(|cx| Poll::Ready(read.as_mut().poll(cx))).await.is_pending());
            io::Write::write_all(&mut &client, b"!").unwrap();
            assert_eq!(read.await.unwrap(), 1);
            assert_eq!(&byte, b"!");
        });
        client.shutdown(Shutdown::Write).unwrap();
        assert_eq!(echo.join().unwrap(), 3 * 10 + 1);
    });
}

#[test]
fn megabytes_through_a_blocking_echo_with_an_async_writer_and_reader_on_one_stream() {
    util::run(|| {
        let (client, server) = util::tcp_pair();
        let client = Rc::new(client);
        let data = util::random_bytes(4 << 20, 11);
        let expected = data.clone();
        // More than the socket buffers hold: the writer's polls get Pending
        // and are woken when the reader makes room.
        let writer = {
            let client = client.clone();
            runtime::spawn(move || {
                runtime::block_on(async {
                    let mut stream = &*client;
                    stream.write_all(&data).await.unwrap();
                    stream.close().await.unwrap(); // the write half only
                });
            })
        };
        let echo = runtime::spawn(move || util::echo(&server).unwrap());
        // Read back asynchronously, on the same stream the other greenlet
        // writes (reads and writes wait independently).
        let mut got = Vec::new();
        runtime::block_on((&*client).read_to_end(&mut got)).unwrap();
        assert!(got == expected, "{} bytes echoed, expected {}", got.len(), expected.len());
        writer.join().unwrap();
        assert_eq!(echo.join().unwrap(), expected.len() as u64);
    });
}

#[test]
fn close_shuts_down_the_write_half_and_reading_goes_on() {
    util::run(|| {
        let (mut client, mut server) = util::tcp_pair();
        runtime::block_on(async {
            client.write_all(b"last words").await.unwrap();
            client.flush().await.unwrap();
            client.close().await.unwrap();
        });
        // The peer sees the end of the stream, and can still answer.
        let mut request = Vec::new();
        io::Read::read_to_end(&mut server, &mut request).unwrap();
        assert_eq!(request, b"last words");
        io::Write::write_all(&mut server, b"noted").unwrap();
        drop(server);
        let mut reply = String::new();
        runtime::block_on(client.read_to_string(&mut reply)).unwrap();
        assert_eq!(reply, "noted");
    });
}

#[test]
fn unix_streams_vectored_writes_and_references() {
    util::run(|| {
        let (a, b) = UnixStream::pair().unwrap();
        let reader = runtime::spawn(move || {
            let mut buf = [0; 11];
            runtime::block_on((&b).read_exact(&mut buf)).unwrap();
            buf
        });
        runtime::block_on(async {
            let mut a = &a;
            let n = a.write_vectored(&[IoSlice::new(b"hello"), IoSlice::new(b" world")]).await.unwrap();
            a.write_all(&b"hello world"[n..]).await.unwrap();
        });
        assert_eq!(&reader.join().unwrap(), b"hello world");
    });
}

#[test]
fn many_greenlets_each_awaiting_their_own_stream() {
    util::run(|| {
        let clients: Vec<_> = (0..50u8)
            .map(|i| {
                runtime::spawn(move || {
                    let (mut client, server) = util::tcp_pair();
                    runtime::spawn(move || util::echo(&server).unwrap());
                    runtime::block_on(async {
                        for round in 0..10u8 {
                            let message = [i, round, i ^ round];
                            client.write_all(&message).await.unwrap();
                            let mut echoed = [0; 3];
                            client.read_exact(&mut echoed).await.unwrap();
                            assert_eq!(echoed, message);
                        }
                    });
                })
            })
            .collect();
        for client in clients {
            client.join().unwrap();
        }
    });
}

/// A future that keeps reading a flooded socket inside one `block_on` (its
/// polls always `Ready`) still lets the other greenlets run: polls spend the
/// I/O budget as blocking reads do, and once it is spent the read says
/// `Pending` (waking itself), and `block_on` yields before polling again.
#[test]
fn a_flooded_async_reader_does_not_starve_the_hub() {
    const TICKS: u64 = 20;
    const MAX_READS: u64 = 2_000_000;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let flooder = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let chunk = vec![b'f'; 64 * 1024];
        while io::Write::write_all(&mut stream, &chunk).is_ok() {}
    });
    util::run(move || {
        let mut stream = runtime::net::TcpStream::connect(addr).unwrap();
        let ticks = Rc::new(std::cell::Cell::new(0_u64));
        let _ticker = runtime::spawn({
            let ticks = ticks.clone();
            move || loop {
                ticks.set(ticks.get() + 1);
                runtime::yield_now();
            }
        });
        runtime::sleep(std::time::Duration::from_millis(100)); // let the flooder fill the buffers
        let ticks0 = ticks.get();
        let reads = runtime::block_on(async {
            let mut buf = [0; 64];
            let mut reads = 0;
            while ticks.get() - ticks0 < TICKS && reads < MAX_READS {
                assert!(stream.read(&mut buf).await.unwrap() > 0, "the flooder stopped");
                reads += 1;
            }
            reads
        });
        assert!(ticks.get() - ticks0 >= TICKS, "after {reads} reads the ticker ticked {} times", ticks.get() - ticks0);
    });
    flooder.join().unwrap();
}

/// Only `runtime::block_on` is held back by the budget (it yields, then polls
/// again): an executor of another crate that polls in a loop inside a
/// greenlet keeps getting `Ready` from a socket that has data, however many
/// polls it makes.
#[test]
fn another_executor_polling_in_a_greenlet_is_not_held_back_by_the_budget() {
    use futures_util::io::AsyncRead;
    util::run(|| {
        let (client, server) = util::tcp_pair();
        let data = vec![7; 64 * 1024];
        io::Write::write_all(&mut &client, &data).unwrap();
        let mut server = pin!(server);
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        let mut received = 0;
        let mut buf = [0; 16];
        // A thousand polls, far past the budget, each given up after a
        // million `Pending`s (a hang guard).
        for _ in 0..1000 {
            let mut spins = 0;
            loop {
                match server.as_mut().poll_read(&mut cx, &mut buf) {
                    Poll::Ready(n) => {
                        received += n.unwrap();
                        break;
                    }
                    Poll::Pending => {
                        spins += 1;
                        assert!(spins < 1_000_000, "a ready socket polled Pending for good after {received} bytes");
                    }
                }
            }
        }
        assert_eq!(received, 16 * 1000);
    });
}
