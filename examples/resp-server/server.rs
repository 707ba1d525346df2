//! The connection loop: read what the client sent, answer every complete
//! request in it, write all the replies at once.

use std::cell::RefCell;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::rc::{Rc, Weak};
use std::time::{Duration, Instant};

use runtime::net::{ServerHandle, StreamServer, TcpStream};

use crate::commands::{self, Db, Flow};
use crate::protocol::{self, Parsed, Parser};

/// The read buffer's usual size; it grows for a request that does not fit,
/// and shrinks back once the connection has caught up.
const BUF_SIZE: usize = 16 * 1024;
/// The most bytes one request may take (Redis's `client-query-buffer-limit`).
const MAX_REQUEST: usize = 1 << 30;
/// Replies are written out once this many bytes have piled up, even in the
/// middle of a batch of requests.
const FLUSH_AT: usize = 64 * 1024;
/// How often keys whose time to live ran out are looked for.
const SWEEP_EVERY: Duration = Duration::from_millis(100);
/// The most expired keys removed in one go before letting other greenlets
/// run.
const SWEEP_BATCH: usize = 1000;

/// Serves the Redis protocol on `server`'s connections, all sharing one
/// in-memory database, and removes expired keys in the background.
///
/// # Panics
///
/// Outside a runtime.
pub fn start(server: StreamServer) -> io::Result<ServerHandle> {
    let db = Rc::new(RefCell::new(Db::new()));
    let sweeper = Rc::downgrade(&db);
    runtime::task::Builder::new().name("resp-expire").spawn(move || sweep(&sweeper));
    server.start(move |stream, peer| serve(stream, peer, &db))
}

/// Removes expired keys every [`SWEEP_EVERY`], until the database is gone.
fn sweep(db: &Weak<RefCell<Db>>) {
    loop {
        runtime::sleep(SWEEP_EVERY);
        loop {
            let Some(db) = db.upgrade() else { return };
            let more = db.borrow_mut().sweep(Instant::now(), SWEEP_BATCH);
            if !more {
                break;
            }
            runtime::yield_now();
        }
    }
}

fn serve(stream: TcpStream, peer: SocketAddr, db: &Rc<RefCell<Db>>) {
    tracing::debug!(%peer, "connected");
    match Connection::new(&stream).run(db) {
        Ok(()) => tracing::debug!(%peer, "closed"),
        Err(err) => tracing::debug!(%peer, "closed: {err}"),
    }
}

struct Connection<'s> {
    stream: &'s TcpStream,
    /// `buf[start..end]` holds bytes read and not yet parsed; `start` is
    /// where the parser's current request begins.
    buf: Vec<u8>,
    start: usize,
    end: usize,
    parser: Parser,
    out: Vec<u8>,
}

impl<'s> Connection<'s> {
    fn new(stream: &'s TcpStream) -> Connection<'s> {
        Connection {
            stream,
            buf: vec![0; BUF_SIZE],
            start: 0,
            end: 0,
            parser: Parser::new(),
            out: Vec::with_capacity(BUF_SIZE),
        }
    }

    fn run(mut self, db: &RefCell<Db>) -> io::Result<()> {
        loop {
            let n = self.stream.read(&mut self.buf[self.end..])?;
            if n == 0 {
                return Ok(());
            }
            self.end += n;
            let outcome = self.answer(db);
            if !self.out.is_empty() {
                self.flush()?;
            }
            match outcome {
                Ok(Flow::Continue) => {}
                Ok(Flow::Close) => return self.close(),
                Err(error) => {
                    tracing::debug!("protocol error: {error}");
                    return self.close();
                }
            }
        }
    }

    /// Answers every complete request buffered, then makes room for the next
    /// read.
    fn answer(&mut self, db: &RefCell<Db>) -> Result<Flow, String> {
        loop {
            match self.parser.parse(&self.buf[self.start..self.end]) {
                Parsed::Request(len) => {
                    let args = self.parser.args(&self.buf[self.start..self.end]);
                    let flow = if args.is_empty() {
                        Flow::Continue
                    } else {
                        commands::execute(&mut db.borrow_mut(), &args, &mut self.out)
                    };
                    self.start += len;
                    if flow == Flow::Close {
                        return Ok(flow);
                    }
                    if self.out.len() >= FLUSH_AT {
                        self.flush().map_err(|err| err.to_string())?;
                    }
                }
                Parsed::Incomplete(need) => {
                    self.make_room(need)?;
                    return Ok(Flow::Continue);
                }
                Parsed::Error(error) => {
                    let message = format!("ERR Protocol error: {error}");
                    protocol::error(&mut self.out, &message);
                    return Err(message);
                }
            }
        }
    }

    /// Moves the unfinished request to the front of the buffer, and grows the
    /// buffer if the request needs more room (`need` bytes, when known), or
    /// shrinks it back once it is empty.
    fn make_room(&mut self, need: usize) -> Result<(), String> {
        let pending = self.end - self.start;
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.start = 0;
            self.end = pending;
        }
        if pending == 0 && self.buf.len() > BUF_SIZE {
            self.buf.truncate(BUF_SIZE);
            self.buf.shrink_to_fit();
        }
        if self.end == self.buf.len() || need > self.buf.len() {
            if need > MAX_REQUEST || self.buf.len() >= MAX_REQUEST {
                let message = "ERR Protocol error: too big request".to_string();
                protocol::error(&mut self.out, &message);
                return Err(message);
            }
            self.buf.resize(need.max(2 * self.buf.len()).min(MAX_REQUEST), 0);
        }
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        let result = self.stream.write_all(&self.out);
        self.out.clear();
        result
    }

    /// Closes after the last replies: stop sending, then read and drop what
    /// the client still sends for up to a second, so that closing with
    /// unread input does not reset the connection before the client has read
    /// the replies.
    fn close(self) -> io::Result<()> {
        let mut stream = self.stream;
        stream.shutdown(Shutdown::Write)?;
        let _ = runtime::timeout(Duration::from_secs(1), || {
            let mut sink = [0; 4096];
            while let Ok(1..) = stream.read(&mut sink) {}
        });
        Ok(())
    }
}
