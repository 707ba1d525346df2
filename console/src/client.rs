//! The console's socket protocol (see `runtime::Builder::console`): one
//! request per line, a reply of JSON objects, one per line, ended by an
//! empty line.

use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use serde_json::Value;

/// One hub's counters, as `metrics` reports them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HubMetrics {
    /// The hub's index.
    pub hub: usize,
    /// Greenlets alive.
    pub greenlets_alive: u64,
    /// Times the hub resumed a greenlet (a total).
    pub switches: u64,
    /// Time spent running greenlets, in nanoseconds (a total).
    pub busy_nanos: u64,
    /// Greenlets in the run queue now.
    pub runnable: u64,
    /// Pending timers now.
    pub timers: u64,
    /// Resident bytes of the hub's stacks.
    pub stack_resident_bytes: u64,
}

/// One greenlet, as `dump` reports it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Greenlet {
    /// Its hub's index.
    pub hub: usize,
    /// Its id.
    pub id: u64,
    /// Its name, if it has one.
    pub name: Option<String>,
    /// `running`, `runnable`, `parked` or `delayed`.
    pub state: String,
    /// What it is parked on.
    pub waiting_on: Option<String>,
    /// How long it has been parked, in milliseconds.
    pub parked_for_ms: Option<f64>,
    /// Where it was spawned.
    pub spawned_at: String,
    /// Its stack, innermost frame first, if it is parked.
    pub backtrace: Option<String>,
}

/// What one poll of the console returned.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Snapshot {
    /// Every hub's metrics, by index.
    pub hubs: Vec<HubMetrics>,
    /// Every greenlet of every hub that answered.
    pub greenlets: Vec<Greenlet>,
    /// The errors reported (a hub that did not answer, say).
    pub errors: Vec<String>,
}

/// A connection to a program's console.
#[derive(Debug)]
pub struct Client {
    reader: BufReader<UnixStream>,
}

impl Client {
    /// Connects to the console socket at `path`.
    pub fn connect(path: &Path) -> io::Result<Client> {
        let stream = UnixStream::connect(path)?;
        // The program answers within about a second (it bounds its wait for
        // a blocked hub); more means it is gone or stuck.
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        Ok(Client { reader: BufReader::new(stream) })
    }

    /// Sends `request` and reads the reply's objects.
    pub fn request(&mut self, request: &str) -> io::Result<Vec<Value>> {
        self.reader.get_mut().write_all(format!("{request}\n").as_bytes())?;
        let mut objects = Vec::new();
        loop {
            let mut line = String::new();
            if self.reader.read_line(&mut line)? == 0 {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the program closed the console"));
            }
            let line = line.trim_end();
            if line.is_empty() {
                return Ok(objects);
            }
            objects.push(serde_json::from_str(line).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?);
        }
    }

    /// Asks for `metrics`, then `dump`.
    pub fn poll(&mut self) -> io::Result<Snapshot> {
        let mut snapshot = Snapshot::default();
        for object in self.request("metrics")? {
            match error_of(&object) {
                Some(error) => snapshot.errors.push(error),
                None => snapshot.hubs.push(HubMetrics {
                    hub: uint(&object, "hub") as usize,
                    greenlets_alive: uint(&object, "greenlets_alive"),
                    switches: uint(&object, "switches"),
                    busy_nanos: uint(&object, "busy_time"),
                    runnable: uint(&object, "runnable"),
                    timers: uint(&object, "timers"),
                    stack_resident_bytes: uint(&object, "stack_resident_bytes"),
                }),
            }
        }
        for object in self.request("dump")? {
            match error_of(&object) {
                Some(error) => snapshot.errors.push(error),
                None => snapshot.greenlets.push(Greenlet {
                    hub: uint(&object, "hub") as usize,
                    id: uint(&object, "id"),
                    name: text(&object, "name"),
                    state: text(&object, "state").unwrap_or_default(),
                    waiting_on: text(&object, "waiting_on"),
                    parked_for_ms: object["parked_for_ms"].as_f64(),
                    spawned_at: text(&object, "spawned_at").unwrap_or_default(),
                    backtrace: text(&object, "backtrace"),
                }),
            }
        }
        Ok(snapshot)
    }
}

fn error_of(object: &Value) -> Option<String> {
    let error = object.get("error")?.as_str().unwrap_or("error");
    Some(match object["hub"].as_u64() {
        Some(hub) => format!("hub {hub}: {error}"),
        None => error.to_owned(),
    })
}

fn uint(object: &Value, key: &str) -> u64 {
    object[key].as_u64().unwrap_or(0)
}

fn text(object: &Value, key: &str) -> Option<String> {
    object[key].as_str().map(str::to_owned)
}
