//! Cleanup that parks: a killed greenlet unwinds, and its destructors can
//! still write to sockets (parking while the peer catches up) before the
//! sockets close, so no buffered data and no goodbye is lost.

mod util;

use std::cell::Cell;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::rc::Rc;
use std::time::Duration;

use runtime::net::TcpStream;
use util::tcp_pair;

const MIB: usize = 1 << 20;

#[test]
fn a_killed_greenlets_bufwriter_flushes_everything_it_buffered() {
    util::run(|| {
        let (client, server) = tcp_pair();
        // A small, fixed send buffer: 1 MiB cannot leave without the peer
        // reading, so the flush has to park.
        socket2::SockRef::from(&server).set_send_buffer_size(16 * 1024).unwrap();
        let data = util::random_bytes(MIB, 42);
        let buffered = Rc::new(Cell::new(false));
        let writer = runtime::spawn({
            let (data, buffered) = (data.clone(), buffered.clone());
            move || {
                // Twice the data: all of it stays in the buffer, nothing is
                // written before the kill.
                let mut out = BufWriter::with_capacity(2 << 20, server);
                out.write_all(&data).unwrap();
                buffered.set(true);
                runtime::sleep(Duration::from_secs(3600)); // killed here
            }
        });
        util::wait_until("the writer to buffer its data", || buffered.get());
        // Nothing reached the peer yet.
        client.set_nonblocking(true).unwrap();
        let mut probe = [0; 1];
        assert_eq!((&client).read(&mut probe).unwrap_err().kind(), std::io::ErrorKind::WouldBlock);
        client.set_nonblocking(false).unwrap();
        let writer_id = writer.id();
        writer.kill();
        // The BufWriter's drop flushes 1 MiB, more than the socket buffers
        // hold: it parks, while the greenlet unwinds, until this one reads.
        util::wait_until("the unwinding writer to park in its flush", || {
            runtime::dump().greenlets().iter().any(|info| {
                info.id() == writer_id && info.waiting_on().is_some_and(|on| on.starts_with("TcpStream::write"))
            })
        });
        let received = util::read_all(&client).unwrap();
        assert_eq!(received.len(), data.len());
        assert!(received == data, "the flushed bytes differ from the buffered ones");
        assert!(writer.join().unwrap_err().is_killed());
    });
}

/// Sends a goodbye line on its stream when dropped.
struct Goodbye(Rc<TcpStream>);

impl Drop for Goodbye {
    fn drop(&mut self) {
        let _ = (&*self.0).write_all(b"goodbye\n");
    }
}

#[test]
fn a_killed_greenlet_says_goodbye_from_a_drop_guard() {
    util::run(|| {
        let (client, server) = tcp_pair();
        let handler = runtime::spawn(move || {
            let stream = Rc::new(server);
            let _goodbye = Goodbye(stream.clone());
            (&*stream).write_all(b"hello\n").unwrap();
            // Parks until killed: the client never writes.
            let mut buf = [0; 16];
            let _ = (&*stream).read(&mut buf); // killed here
        });
        let mut lines = BufReader::new(&client);
        let mut line = String::new();
        lines.read_line(&mut line).unwrap();
        assert_eq!(line, "hello\n");
        handler.kill();
        line.clear();
        lines.read_line(&mut line).unwrap();
        assert_eq!(line, "goodbye\n");
        // Then the stream closes with the greenlet.
        line.clear();
        assert_eq!(lines.read_line(&mut line).unwrap(), 0);
        assert!(handler.join().unwrap_err().is_killed());
    });
}
