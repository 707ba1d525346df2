//! `Builder::console`: the JSON-lines protocol on the Unix socket, spoken
//! from a plain thread.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use runtime::Builder;
use runtime::sync::Event;
use serde_json::Value;

fn socket_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("runtime-console-{name}-{}.sock", std::process::id()))
}

/// A connection to the console: one request, its reply objects.
struct Client(BufReader<UnixStream>);

impl Client {
    fn connect(path: &Path) -> Client {
        let stream = UnixStream::connect(path).unwrap();
        // A hang guard, not a timing assertion.
        stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        Client(BufReader::new(stream))
    }

    fn request(&mut self, request: &str) -> Vec<Value> {
        self.0.get_mut().write_all(format!("{request}\n").as_bytes()).unwrap();
        let mut objects = Vec::new();
        loop {
            let mut line = String::new();
            assert!(self.0.read_line(&mut line).unwrap() > 0, "the reply ends with an empty line");
            let line = line.trim_end_matches('\n');
            if line.is_empty() {
                return objects;
            }
            objects.push(serde_json::from_str(line).unwrap_or_else(|e| panic!("{line:?} is not JSON: {e}")));
        }
    }
}

/// Runs `check` on a plain thread against a console of `hubs` hubs, each of
/// which has a parked greenlet named `waiter-<hub>`, waiting on an `Event`.
fn with_console(name: &str, hubs: usize, check: impl FnOnce(&Path) + Send + 'static) {
    let path = socket_path(name);
    let (ready_tx, ready_rx) = mpsc::channel::<()>();
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let done_rx = std::sync::Mutex::new(done_rx);
    let client_path = path.clone();
    let checker = std::thread::spawn(move || {
        for _ in 0..hubs {
            ready_rx.recv().unwrap();
        }
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(&client_path)));
        for _ in 0..hubs {
            done_tx.send(()).unwrap();
        }
        if let Err(panic) = result {
            std::panic::resume_unwind(panic);
        }
    });
    let ready_tx = std::sync::Mutex::new(ready_tx);
    let done_rx = std::sync::Arc::new(done_rx);
    let ready_tx = std::sync::Arc::new(ready_tx);
    Builder::new().hubs(hubs).console(&path).run_each(move |i| {
        let event = std::rc::Rc::new(Event::new());
        let waiter = runtime::task::Builder::new().name(format!("waiter-{i}")).spawn({
            let event = event.clone();
            move || event.wait()
        });
        runtime::yield_now(); // let it park
        ready_tx.lock().unwrap().send(()).unwrap();
        let done_rx = done_rx.clone();
        runtime::blocking(move || done_rx.lock().unwrap().recv().unwrap());
        event.set();
        waiter.join().unwrap();
    });
    checker.join().unwrap();
    assert!(!path.exists(), "the socket file is removed at exit");
}

#[test]
fn dump_lists_every_greenlet_of_every_hub_with_its_stack() {
    with_console("dump", 2, |path| {
        let greenlets = Client::connect(path).request("dump");
        for hub in 0..2 {
            let name = format!("waiter-{hub}");
            let waiter = greenlets
                .iter()
                .find(|g| g["name"] == name.as_str())
                .unwrap_or_else(|| panic!("no {name} in {greenlets:#?}"));
            assert_eq!(waiter["hub"], hub);
            assert_eq!(waiter["state"], "parked");
            assert!(waiter["id"].as_u64().unwrap() > 0);
            assert!(waiter["waiting_on"].as_str().unwrap().contains("Event"), "{waiter}");
            assert!(waiter["parked_for_ms"].as_f64().unwrap() >= 0.0);
            assert!(waiter["spawned_at"].as_str().unwrap().contains("console.rs"), "{waiter}");
            let stack = waiter["backtrace"].as_str().unwrap();
            assert!(stack.lines().next().unwrap().contains("wait"), "{stack}");
            // The main greenlet is listed too (parked in `blocking`), and
            // the console's own greenlet is not.
            assert!(greenlets.iter().any(|g| g["hub"] == hub && g["name"] == "main"));
            assert!(!greenlets.iter().any(|g| g["name"] == "console"));
        }
    });
}

#[test]
fn metrics_has_one_object_per_hub_keyed_by_the_metrics_methods() {
    with_console("metrics", 2, |path| {
        let mut client = Client::connect(path);
        let hubs = client.request("metrics");
        assert_eq!(hubs.len(), 2, "{hubs:#?}");
        for (i, hub) in hubs.iter().enumerate() {
            let mut keys: Vec<&str> = hub.as_object().unwrap().keys().map(String::as_str).collect();
            keys.sort_unstable();
            assert_eq!(
                keys,
                [
                    "busy_time",
                    "greenlets_alive",
                    "greenlets_spawned",
                    "hub",
                    "polls",
                    "runnable",
                    "stack_resident_bytes",
                    "switches",
                    "timers"
                ]
            );
            assert_eq!(hub["hub"], i);
            assert_eq!(hub["greenlets_alive"], 2, "main and the waiter: {hub}");
            assert!(hub["switches"].as_u64().unwrap() > 0);
        }
        // The same connection serves more requests.
        assert_eq!(client.request("metrics").len(), 2);
    });
}

#[test]
fn an_unknown_request_gets_an_error_and_the_connection_goes_on() {
    with_console("unknown", 1, |path| {
        let mut client = Client::connect(path);
        let reply = client.request("stacks please");
        assert_eq!(reply.len(), 1);
        assert!(reply[0]["error"].as_str().unwrap().contains("stacks please"), "{reply:?}");
        assert_eq!(client.request("metrics").len(), 1);
    });
}

#[test]
fn the_socket_is_private_to_its_owner() {
    with_console("mode", 1, |path| {
        let mode = std::fs::metadata(path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    });
}

#[test]
fn a_stale_socket_file_is_replaced() {
    let path = socket_path("stale");
    let stale = std::os::unix::net::UnixListener::bind(&path).unwrap();
    drop(stale); // its file stays
    assert!(path.exists());
    let client_path = path.clone();
    let reply = Builder::new()
        .console(&path)
        .run(move || runtime::blocking(move || Client::connect(&client_path).request("metrics")));
    assert_eq!(reply.len(), 1);
    assert!(!path.exists());
}

#[test]
fn a_blocked_hub_is_reported_not_waited_for() {
    let path = socket_path("blocked");
    let client_path = path.clone();
    let (tx, rx) = mpsc::channel::<()>();
    let checker = std::thread::spawn(move || {
        rx.recv().unwrap(); // the hub is blocked
        let reply = Client::connect(&client_path).request("dump");
        assert_eq!(reply.len(), 1, "{reply:?}");
        assert_eq!(reply[0]["hub"], 0);
        assert_eq!(reply[0]["error"], "hub did not answer");
    });
    Builder::new().max_blocking_time(Duration::ZERO).console(&path).run(move || {
        tx.send(()).unwrap();
        // Holds the hub without yielding until the client has its answer
        // (spinning: with the hooks, a sleep would let the hub run).
        while !checker.is_finished() {
            std::hint::spin_loop();
        }
        checker.join().unwrap();
    });
}

#[test]
fn the_runtime_returns_even_if_the_socket_file_was_removed() {
    let path = socket_path("removed");
    let (done_tx, done_rx) = mpsc::channel();
    let runtime_path = path.clone();
    std::thread::spawn(move || {
        Builder::new().console(&runtime_path).run({
            let path = runtime_path.clone();
            move || std::fs::remove_file(&path).unwrap()
        });
        done_tx.send(()).unwrap();
    });
    // A hang guard: the console's thread must stop without its file.
    done_rx.recv_timeout(Duration::from_secs(30)).expect("the runtime returns");
    assert!(!path.exists());
}

#[test]
fn a_client_that_stays_connected_does_not_keep_the_runtime_from_returning() {
    let path = socket_path("lingering");
    let (done_tx, done_rx) = mpsc::channel();
    let runtime_path = path.clone();
    std::thread::spawn(move || {
        let client = Builder::new().console(&runtime_path).run({
            let path = runtime_path.clone();
            move || {
                runtime::blocking(move || {
                    let mut client = Client::connect(&path);
                    assert_eq!(client.request("metrics").len(), 1);
                    client
                })
            }
        });
        done_tx.send(()).unwrap();
        drop(client); // only now
    });
    // A hang guard.
    done_rx.recv_timeout(Duration::from_secs(30)).expect("the runtime returns");
}
