//! A line-based chat server: every line a client sends goes to all the other
//! clients. One greenlet per connection reads, another writes, on one hub or
//! on several (`--hubs N`, one thread each, one room).
//!
//! ```text
//! cargo run --release --example chat                   # listens on 127.0.0.1:7001
//! cargo run --release --example chat -- --addr 0.0.0.0:7001 --max-line 512 --queue 64
//! cargo run --release --example chat -- --hubs 2 --console /tmp/chat.sock
//! cargo run -p runtime-console -- /tmp/chat.sock       # in another terminal: watch it live
//! nc 127.0.0.1 7001                                    # in two or more terminals
//! RUST_LOG=debug cargo run --release --example chat    # log connections
//! ```
//!
//! Commands: `/nick NAME` changes your name, `/who` lists who is here,
//! `/quit` leaves. Joins, leaves and name changes are announced to everyone.
//!
//! Design:
//!
//! - The room is a map from client id to the sending end of a bounded channel
//!   of lines, shared by the connection greenlets of every hub (`Arc<Room>`,
//!   behind a `Mutex` that is never held across a blocking call; the
//!   channels cross hubs). Each client has a writer greenlet draining its
//!   channel into its socket, so a client that reads slowly only delays
//!   itself.
//! - With `--hubs N`, each hub accepts on a listener of its own bound to the
//!   same port (`SO_REUSEPORT`: the kernel spreads the connections).
//!   `--console PATH` serves every hub's greenlets and metrics on a Unix
//!   socket (`runtime::Builder::console`).
//! - Broadcasting never blocks: it uses `try_send`. A client whose queue is
//!   full (`--queue` lines, 256 by default) has stopped reading; rather than
//!   silently losing lines in the middle of its conversation, the server
//!   disconnects it and tells the others it left. Its memory stays bounded.
//! - Lines are at most `--max-line` bytes (1024 by default). A longer line is
//!   refused as soon as the bound is crossed: the client gets an error line
//!   and the rest of that line is read and dropped, never buffered.
//!
//! Ctrl-C (SIGINT) or SIGTERM stops it: clients are told, their connections
//! are closed once their queues are flushed (for at most a few seconds).

#[path = "common/cli.rs"]
mod cli;
use std::cell::Cell;
use std::collections::BTreeMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, ToSocketAddrs};
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use runtime::net::{StreamServer, TcpListener, TcpStream};
use runtime::signal::{SIGINT, SIGTERM, Signals};
use runtime::sync::Event;
use runtime::sync::channel::{self, Receiver, Sender, TrySendError};

const USAGE: &str = "usage: chat [--addr HOST:PORT] [--max-line BYTES] [--queue LINES] [--hubs N] [--console PATH]";

/// Longest nickname, in characters.
const MAX_NICK: usize = 24;

/// How long a leaving client's writer may take to flush its queue.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

/// A line on its way to clients; one allocation shared by all their queues.
type Line = Arc<str>;

struct Client {
    nick: String,
    queue: Sender<Line>,
    /// The connection's socket (a duplicate of its descriptor), to
    /// disconnect the client from any hub when it is too slow, or at
    /// shutdown. It is in the room only while the connection is open.
    socket: std::net::TcpStream,
}

/// Who is connected, on every hub. Every method returns without blocking.
struct Room {
    clients: Mutex<BTreeMap<u64, Client>>,
    next_id: AtomicU64,
    queue_len: usize,
    /// Set at shutdown: no more leave announcements.
    closing: AtomicBool,
}

impl Room {
    fn new(queue_len: usize) -> Room {
        Room {
            clients: Mutex::new(BTreeMap::new()),
            next_id: AtomicU64::new(1),
            queue_len,
            closing: AtomicBool::new(false),
        }
    }

    fn clients(&self) -> MutexGuard<'_, BTreeMap<u64, Client>> {
        self.clients.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds a client; returns its id, its nickname and the queue its writer
    /// greenlet drains.
    fn join(&self, stream: &TcpStream) -> io::Result<(u64, String, Receiver<Line>)> {
        let socket = std::net::TcpStream::from(stream.as_fd().try_clone_to_owned()?);
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let nick = format!("guest{id}");
        let (queue, lines) = channel::bounded(self.queue_len);
        self.clients().insert(id, Client { nick: nick.clone(), queue, socket });
        Ok((id, nick, lines))
    }

    /// Removes a client, closing its queue (its writer finishes once the queue
    /// is flushed), and tells the others.
    fn leave(&self, id: u64, why: &str) {
        let Some(client) = self.clients().remove(&id) else { return };
        tracing::debug!(nick = client.nick, "left: {why}");
        if !self.closing.load(Ordering::Relaxed) {
            self.broadcast(Some(id), &format!("* {} left ({why})", client.nick));
        }
    }

    /// Queues `line` for every client but `except`.
    fn broadcast(&self, except: Option<u64>, line: &str) {
        let line: Line = line.into();
        let ids: Vec<u64> = self.clients().keys().copied().filter(|&id| Some(id) != except).collect();
        for id in ids {
            self.send(id, line.clone());
        }
    }

    /// Queues `line` for one client; disconnects the client if its queue is
    /// full.
    fn send(&self, id: u64, line: Line) {
        let full = match self.clients().get(&id) {
            Some(client) if matches!(client.queue.try_send(line), Err(TrySendError::Full(_))) => {
                tracing::info!(nick = client.nick, "disconnecting a client that does not keep up");
                // Wakes its reader (end of file) and its writer (an error).
                let _ = client.socket.shutdown(Shutdown::Both);
                true
            }
            _ => false,
        };
        if full {
            self.leave(id, "too slow");
        }
    }

    fn nick(&self, id: u64) -> String {
        self.clients().get(&id).map(|client| client.nick.clone()).unwrap_or_default()
    }

    /// Renames a client; the error is for the client.
    fn rename(&self, id: u64, new: &str) -> Result<String, String> {
        let valid = |c: char| c.is_alphanumeric() || c == '_' || c == '-';
        if new.is_empty() || new.chars().count() > MAX_NICK || !new.chars().all(valid) {
            return Err(format!("a nickname is 1 to {MAX_NICK} letters, digits, '-' or '_'"));
        }
        let mut clients = self.clients();
        if clients.iter().any(|(&other, client)| other != id && client.nick == new) {
            return Err(format!("{new} is taken"));
        }
        let client = clients.get_mut(&id).ok_or("you are not in the room")?;
        Ok(std::mem::replace(&mut client.nick, new.to_owned()))
    }

    fn who(&self) -> String {
        let clients = self.clients();
        let nicks: Vec<&str> = clients.values().map(|client| client.nick.as_str()).collect();
        format!("* {} here: {}", nicks.len(), nicks.join(", "))
    }

    /// At shutdown: tells everyone, and ends every connection once its queue
    /// is flushed.
    fn close(&self) {
        self.broadcast(None, "* the server is shutting down");
        self.closing.store(true, Ordering::Relaxed);
        for client in self.clients().values() {
            // The reader sees end of file and leaves; the writer flushes.
            let _ = client.socket.shutdown(Shutdown::Read);
        }
    }
}

/// What [`LineReader::next_line`] found.
enum Input {
    Line(String),
    /// A line longer than the bound; the rest of it will be skipped.
    TooLong,
}

/// Splits a stream into lines of at most `max` bytes, without ever holding
/// more than that.
struct LineReader<R> {
    reader: BufReader<R>,
    line: Vec<u8>,
    max: usize,
    /// Inside an over-long line: drop everything up to its newline.
    skipping: bool,
}

impl<R: Read> LineReader<R> {
    fn new(reader: R, max: usize) -> LineReader<R> {
        LineReader { reader: BufReader::with_capacity(4096, reader), line: Vec::new(), max, skipping: false }
    }

    /// The next line, without its line ending; `None` at end of file.
    fn next_line(&mut self) -> io::Result<Option<Input>> {
        loop {
            let available = self.reader.fill_buf()?;
            if available.is_empty() {
                // End of file; an unterminated last line still counts.
                let last = std::mem::take(&mut self.line);
                return Ok((!last.is_empty() && !self.skipping).then(|| Input::Line(to_text(last))));
            }
            let newline = available.iter().position(|&b| b == b'\n');
            let chunk = &available[..newline.unwrap_or(available.len())];
            let too_long = !self.skipping && self.line.len() + chunk.len() > self.max;
            if !self.skipping && !too_long {
                self.line.extend_from_slice(chunk);
            }
            let used = newline.map_or(available.len(), |at| at + 1);
            self.reader.consume(used);
            if too_long {
                self.line.clear();
                // Skip the rest unless this chunk already reached its end.
                self.skipping = newline.is_none();
                return Ok(Some(Input::TooLong));
            }
            if newline.is_some() {
                if std::mem::replace(&mut self.skipping, false) {
                    continue; // that was the end of an over-long line
                }
                return Ok(Some(Input::Line(to_text(std::mem::take(&mut self.line)))));
            }
        }
    }
}

/// Decodes a line, dropping control characters (a `\r` before the newline,
/// but also terminal escape sequences meant for the other clients).
fn to_text(line: Vec<u8>) -> String {
    String::from_utf8_lossy(&line).chars().filter(|&c| c == '\t' || !c.is_control()).collect()
}

/// A connection's reader side: runs in the greenlet the server spawned for it.
fn serve(room: &Room, stream: TcpStream, peer: SocketAddr, max_line: usize) {
    let stream = Rc::new(stream);
    let (id, nick, lines) = match room.join(&stream) {
        Ok(joined) => joined,
        Err(err) => {
            tracing::warn!(%peer, "cannot join the room: {err}");
            return;
        }
    };
    tracing::debug!(%peer, nick, "connected");
    let writer = runtime::spawn({
        let stream = stream.clone();
        move || write_lines(&stream, &lines)
    });
    // Leave the room however this greenlet ends (it is killed if the server
    // stops before it finishes).
    let why = Cell::new("connection lost");
    let leave_room = Guard(|| room.leave(id, why.get()));

    let others = room.clients().len() - 1;
    room.send(id, format!("* welcome, {nick}; {others} other(s) here. /nick NAME, /who, /quit").into());
    room.broadcast(Some(id), &format!("* {nick} joined"));

    let mut reader = LineReader::new(&*stream, max_line);
    loop {
        if !room.clients().contains_key(&id) {
            break; // disconnected for being too slow: ignore what it sent
        }
        let line = match reader.next_line() {
            Ok(Some(Input::Line(line))) => line,
            Ok(Some(Input::TooLong)) => {
                room.send(id, format!("! line too long (the limit is {max_line} bytes); dropped").into());
                continue;
            }
            Ok(None) => break,
            Err(err) => {
                tracing::debug!(%peer, "read failed: {err}");
                break;
            }
        };
        let line = line.trim_end();
        match line.split_once(' ').map_or((line, ""), |(command, rest)| (command, rest.trim())) {
            ("/quit", _) => {
                room.send(id, "* bye".into());
                why.set("quit");
                break;
            }
            ("/nick", new) => match room.rename(id, new) {
                Ok(old) => {
                    room.send(id, format!("* you are now {new}").into());
                    room.broadcast(Some(id), &format!("* {old} is now {new}"));
                }
                Err(err) => room.send(id, format!("! {err}").into()),
            },
            ("/who", _) => room.send(id, room.who().into()),
            (command, _) if command.starts_with('/') => {
                room.send(id, format!("! unknown command {command}; try /nick NAME, /who, /quit").into());
            }
            _ if line.is_empty() => {}
            _ => room.broadcast(Some(id), &format!("{}: {line}", room.nick(id))),
        }
        // Let the writers run before handling the next line. A burst of lines
        // read in one go would otherwise be queued all at once, and could
        // fill the queues of clients that read perfectly well.
        runtime::yield_now();
    }
    drop(leave_room); // closes the queue: the writer flushes it and finishes
    if let Err(writer) = writer.join_timeout(FLUSH_TIMEOUT) {
        writer.kill();
    }
    tracing::debug!(%peer, "closed");
}

/// A connection's writer greenlet: sends the lines queued for it until the
/// queue is closed, or the connection fails.
fn write_lines(mut stream: &TcpStream, lines: &Receiver<Line>) {
    let mut out = Vec::new();
    while let Ok(line) = lines.recv() {
        // Send what has piled up in one write.
        out.clear();
        for line in std::iter::once(line).chain(lines.try_iter()) {
            out.extend_from_slice(line.as_bytes());
            out.push(b'\n');
        }
        if let Err(err) = stream.write_all(&out) {
            tracing::debug!("write failed: {err}");
            // Make the reader notice too.
            let _ = stream.shutdown(Shutdown::Both);
            return;
        }
    }
}

/// Runs a closure when dropped.
struct Guard<F: FnMut()>(F);

impl<F: FnMut()> Drop for Guard<F> {
    fn drop(&mut self) {
        (self.0)();
    }
}

struct Args {
    addr: String,
    max_line: usize,
    queue: usize,
    hubs: usize,
    console: Option<PathBuf>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args { addr: "127.0.0.1:7001".into(), max_line: 1024, queue: 256, hubs: 1, console: None };
    let mut argv = std::env::args().skip(1);
    while let Some(arg) = argv.next() {
        let mut number = |name: &str| -> Result<usize, String> {
            let value = argv.next().ok_or_else(|| format!("{name} needs a value"))?;
            match value.parse() {
                Ok(n) if n > 0 => Ok(n),
                _ => Err(format!("bad {name}: {value}")),
            }
        };
        match arg.as_str() {
            "--addr" => args.addr = argv.next().ok_or("--addr needs a value")?,
            "--max-line" => args.max_line = number("--max-line")?,
            "--queue" => args.queue = number("--queue")?,
            "--hubs" => args.hubs = number("--hubs")?,
            "--console" => args.console = Some(argv.next().ok_or("--console needs a path")?.into()),
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument: {other} (try --help)")),
        }
    }
    Ok(args)
}

/// One listener per hub on `addr`, all on the same port (the first one's,
/// if `addr` asks for port 0), with `SO_REUSEPORT` when there are several.
fn bind(addr: &str, hubs: usize) -> io::Result<Vec<std::net::TcpListener>> {
    use socket2::{Domain, Socket, Type};
    let mut addr = addr
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, format!("{addr} resolves to no address")))?;
    let mut listeners = Vec::with_capacity(hubs);
    for _ in 0..hubs {
        let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
        socket.set_reuse_address(true)?;
        socket.set_reuse_port(hubs > 1)?;
        socket.bind(&addr.into())?;
        socket.listen(1024)?;
        let listener = std::net::TcpListener::from(socket);
        addr = listener.local_addr()?;
        listeners.push(listener);
    }
    Ok(listeners)
}

/// Hub `i`: serves its listener until hub 0, on SIGINT or SIGTERM, closes
/// the room and sets `stop`.
fn hub(i: usize, listener: std::net::TcpListener, room: &Arc<Room>, stop: &Event, max_line: usize) -> io::Result<()> {
    let addr = listener.local_addr()?;
    let signals = if i == 0 { Some(Signals::new([SIGINT, SIGTERM])) } else { None };
    let started = TcpListener::from_std(listener).and_then(|listener| {
        let room = room.clone();
        StreamServer::from_listener(listener)
            .nodelay(true)
            .name("chat")
            .start(move |stream, peer| serve(&room, stream, peer, max_line))
    });
    let (mut signals, server) = match (signals.transpose(), started) {
        (Ok(signals), Ok(server)) => (signals, server),
        (Err(err), _) | (_, Err(err)) => {
            stop.set(); // the other hubs stop too
            return Err(err);
        }
    };
    if let Some(signals) = &mut signals {
        tracing::info!("chat server listening on {addr}");
        match signals.wait() {
            Ok(signal) => tracing::info!(signal, clients = room.clients().len(), "stopping"),
            Err(err) => tracing::error!("cannot wait for signals: {err}; stopping"),
        }
        room.close();
        stop.set();
    } else {
        stop.wait();
    }
    server.stop(FLUSH_TIMEOUT);
    tracing::info!(hub = i, "stopped");
    Ok(())
}

fn main() {
    let args = cli::start("chat", parse_args);
    let result = bind(&args.addr, args.hubs).and_then(|listeners| {
        let listeners = Mutex::new(listeners.into_iter().map(Some).collect::<Vec<_>>());
        let room = Arc::new(Room::new(args.queue));
        let stop = Arc::new(Event::new());
        let mut builder = runtime::Builder::new().hubs(args.hubs);
        if let Some(path) = &args.console {
            builder = builder.console(path);
        }
        let max_line = args.max_line;
        builder
            .run_each(move |i| {
                let listener = listeners.lock().unwrap_or_else(PoisonError::into_inner)[i].take();
                hub(i, listener.expect("one listener per hub"), &room, &stop, max_line)
            })
            .into_iter()
            .collect::<io::Result<()>>()
    });
    if let Err(err) = result {
        eprintln!("chat: {err}");
        std::process::exit(1);
    }
}
