//! The live console of [`Builder::console`](crate::Builder::console): every
//! hub's [`dump`](crate::dump) and [`Metrics`] served as JSON lines on a Unix
//! socket, from a plain thread, so that a busy hub never blocks it.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use crate::dump::{Dump, GreenletInfo};
use crate::hub::counters::Counters;
use crate::hub::metrics::Metrics;
use crate::hub::remote::{Message, Remote};
use crate::{dump, hub, task};

/// How long a request waits for a hub's dump before it reports the hub as
/// not answering (it is blocked, or flooded).
const DUMP_WAIT: Duration = Duration::from_secs(1);

/// What the console knows of one hub: enough to post work to it and to read
/// its counters, without a [`Handle`](crate::Handle) (which would keep the
/// hub's deadlock detection quiet).
struct Slot {
    remote: Arc<Remote>,
    counters: Arc<Counters>,
}

/// The hubs the console covers, by index; filled in as they start.
pub(crate) struct Registry {
    hubs: Mutex<Vec<Option<Slot>>>,
}

impl Registry {
    /// Records the current hub as hub `index`.
    pub(crate) fn register(&self, index: usize) {
        let hub = hub::expect();
        let slot = Slot { remote: hub.remote().clone(), counters: hub.counters().clone() };
        let mut hubs = self.hubs.lock().unwrap_or_else(|e| e.into_inner());
        if hubs.len() <= index {
            hubs.resize_with(index + 1, || None);
        }
        hubs[index] = Some(slot);
    }

    /// Each hub's remote and counters, by index (`None` before it started).
    fn snapshot(&self) -> Vec<Option<(Arc<Remote>, Arc<Counters>)>> {
        let hubs = self.hubs.lock().unwrap_or_else(|e| e.into_inner());
        hubs.iter().map(|slot| slot.as_ref().map(|s| (s.remote.clone(), s.counters.clone()))).collect()
    }
}

/// The running console: its listening thread (which serves each client on
/// a thread of its own), and the socket file it removes when dropped.
pub(crate) struct Console {
    path: PathBuf,
    /// Wakes the accepting thread to stop.
    waker: Arc<mio::Waker>,
    registry: Arc<Registry>,
    stopping: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

/// The open client connections (duplicates), to end them at exit; each
/// client's thread takes its own out when it hangs up.
#[derive(Default)]
struct Connections {
    next: AtomicU64,
    open: Mutex<HashMap<u64, UnixStream>>,
}

impl Connections {
    fn open(&self) -> std::sync::MutexGuard<'_, HashMap<u64, UnixStream>> {
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Console {
    /// Binds `path` (replacing a stale socket file there) with permissions
    /// 0600 and starts serving `hubs` hubs.
    pub(crate) fn start(path: &Path, hubs: usize) -> io::Result<Console> {
        if let Ok(meta) = std::fs::symlink_metadata(path)
            && meta.file_type().is_socket()
        {
            std::fs::remove_file(path)?;
        }
        let listener = UnixListener::bind(path)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
        let registry = Arc::new(Registry { hubs: Mutex::new((0..hubs).map(|_| None).collect()) });
        let stopping = Arc::new(AtomicBool::new(false));
        let connections = Arc::new(Connections::default());
        listener.set_nonblocking(true)?;
        let mut listener = mio::net::UnixListener::from_std(listener);
        let poll = mio::Poll::new()?;
        poll.registry().register(&mut listener, LISTENER, mio::Interest::READABLE)?;
        let waker = Arc::new(mio::Waker::new(poll.registry(), WAKER)?);
        let accept = thread::Builder::new().name("runtime-console".into()).spawn({
            let (registry, stopping) = (registry.clone(), stopping.clone());
            move || accept_loop(poll, &listener, &registry, &stopping, &connections)
        })?;
        Ok(Console { path: path.to_owned(), waker, registry, stopping, accept: Some(accept) })
    }

    pub(crate) fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }
}

impl Drop for Console {
    fn drop(&mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        // Wake the accepting thread (a connection would not do: the socket
        // file may be gone); it ends the clients' connections.
        let _ = self.waker.wake();
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

const LISTENER: mio::Token = mio::Token(0);
const WAKER: mio::Token = mio::Token(1);

/// Accepts clients until the console stops, serving each on a thread of its
/// own.
fn accept_loop(
    mut poll: mio::Poll,
    listener: &mio::net::UnixListener,
    registry: &Arc<Registry>,
    stopping: &AtomicBool,
    connections: &Arc<Connections>,
) {
    let mut served: Vec<JoinHandle<()>> = Vec::new();
    let mut events = mio::Events::with_capacity(4);
    while !stopping.load(Ordering::SeqCst) {
        // Readiness is edge-triggered: take every queued client each turn.
        loop {
            let stream = match listener.accept() {
                Ok((stream, _)) => stream,
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => break,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => {
                    // Out of descriptors, say: let them free up.
                    thread::sleep(Duration::from_millis(100));
                    break;
                }
            };
            let stream = UnixStream::from(std::os::fd::OwnedFd::from(stream));
            if stream.set_nonblocking(false).is_err() {
                continue;
            }
            let Ok(clone) = stream.try_clone() else { continue };
            let key = connections.next.fetch_add(1, Ordering::Relaxed);
            connections.open().insert(key, clone);
            let (registry, connections) = (registry.clone(), connections.clone());
            let spawned = thread::Builder::new().name("runtime-console-client".into()).spawn(move || {
                serve(stream, &registry);
                connections.open().remove(&key);
            });
            if let Ok(thread) = spawned {
                served.push(thread);
            }
            served.retain(|thread| !thread.is_finished());
        }
        if let Err(err) = poll.poll(&mut events, None)
            && err.kind() != io::ErrorKind::Interrupted
        {
            break;
        }
    }
    // No client is added any more: end their connections, and their
    // threads return.
    for (_, connection) in connections.open().drain() {
        let _ = connection.shutdown(std::net::Shutdown::Both);
    }
    for thread in served {
        let _ = thread.join();
    }
}

/// Answers one client's requests until it hangs up.
fn serve(stream: UnixStream, registry: &Registry) {
    let Ok(writer) = stream.try_clone() else { return };
    let mut writer = io::BufWriter::new(writer);
    for line in BufReader::new(stream).lines() {
        let Ok(line) = line else { return };
        let reply = respond(line.trim(), registry);
        if writer.write_all(reply.as_bytes()).and_then(|()| writer.flush()).is_err() {
            return;
        }
    }
}

/// The reply to one request line, its final empty line included.
fn respond(request: &str, registry: &Registry) -> String {
    let mut out = String::new();
    match request {
        "dump" => {
            for (index, hub) in registry.snapshot().into_iter().enumerate() {
                match hub.ok_or("hub not started").and_then(|(remote, _)| dump_of(&remote)) {
                    Ok((me, dump)) => {
                        dump.greenlets().iter().filter(|g| g.id() != me).for_each(|g| greenlet_json(&mut out, index, g))
                    }
                    Err(error) => error_json(&mut out, Some(index), error),
                }
            }
        }
        "metrics" => {
            for (index, hub) in registry.snapshot().into_iter().enumerate() {
                match hub {
                    Some((_, counters)) => metrics_json(&mut out, index, &Metrics::read(&counters)),
                    None => error_json(&mut out, Some(index), "hub not started"),
                }
            }
        }
        other => error_json(&mut out, None, &format!("unknown request {other:?}; try \"dump\" or \"metrics\"")),
    }
    out.push('\n');
    out
}

/// Runs [`dump`] on the hub in a greenlet of its own (left out of the dump),
/// waiting at most [`DUMP_WAIT`] for it.
fn dump_of(remote: &Remote) -> Result<(u64, Dump), &'static str> {
    let (tx, rx) = mpsc::sync_channel(1);
    let work = Box::new(move || {
        let builder = task::Builder::new().name("console");
        drop(builder.spawn(move || {
            let _ = tx.send((crate::hub::greenlet_id(), dump()));
        }));
    });
    remote.post(Message::Run(work)).map_err(|_| "hub stopped")?;
    rx.recv_timeout(DUMP_WAIT).map_err(|err| match err {
        mpsc::RecvTimeoutError::Timeout => "hub did not answer",
        mpsc::RecvTimeoutError::Disconnected => "hub stopped",
    })
}

fn greenlet_json(out: &mut String, hub: usize, g: &GreenletInfo) {
    let _ = write!(out, "{{\"hub\":{hub},\"id\":{},\"name\":", g.id());
    opt_str(out, g.name());
    out.push_str(",\"state\":");
    string(out, g.state());
    out.push_str(",\"waiting_on\":");
    opt_str(out, g.waiting_on());
    out.push_str(",\"parked_for_ms\":");
    match g.parked_for() {
        Some(d) => _ = write!(out, "{:.3}", d.as_secs_f64() * 1000.0),
        None => out.push_str("null"),
    }
    out.push_str(",\"spawned_at\":");
    string(out, &g.spawned_at().to_string());
    out.push_str(",\"backtrace\":");
    opt_str(out, g.backtrace());
    out.push_str("}\n");
}

fn metrics_json(out: &mut String, hub: usize, m: &Metrics) {
    let _ = writeln!(
        out,
        "{{\"hub\":{hub},\"greenlets_alive\":{},\"greenlets_spawned\":{},\"switches\":{},\"polls\":{},\
         \"busy_time\":{},\"runnable\":{},\"timers\":{},\"stack_resident_bytes\":{}}}",
        m.greenlets_alive(),
        m.greenlets_spawned(),
        m.switches(),
        m.polls(),
        m.busy_time().as_nanos(),
        m.runnable(),
        m.timers(),
        m.stack_resident_bytes(),
    );
}

fn error_json(out: &mut String, hub: Option<usize>, error: &str) {
    out.push('{');
    if let Some(hub) = hub {
        let _ = write!(out, "\"hub\":{hub},");
    }
    out.push_str("\"error\":");
    string(out, error);
    out.push_str("}\n");
}

fn opt_str(out: &mut String, value: Option<&str>) {
    match value {
        Some(value) => string(out, value),
        None => out.push_str("null"),
    }
}

/// `value` as a JSON string: quotes, backslashes and control characters
/// escaped (so that a reply line never contains a raw newline).
fn string(out: &mut String, value: &str) {
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => _ = write!(out, "\\u{:04x}", c as u32),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::string;

    #[test]
    fn strings_are_escaped() {
        let mut out = String::new();
        string(&mut out, "a\"b\\c\nd\te\u{1}");
        assert_eq!(out, r#""a\"b\\c\nd\te\u0001""#);
    }
}
