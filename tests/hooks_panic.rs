//! The `hooks` feature and panics: a greenlet never parks inside the panic
//! hook (a second panic on the thread meanwhile would abort the process), so
//! printing and panicking from many greenlets at once, with the standard
//! streams or a panic hook's log on slow sockets, neither panics nor aborts.
//!
//! Each case runs in a child (this test binary again, an ignored `child_*`
//! test), so that an abort fails the test instead of killing the test binary.

mod util;

use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::process::{Command, Stdio};
use std::thread;

use util::ms;

const GREENLETS: usize = 20;

/// Reads `stream` to its end slowly (so that its writer finds it full).
fn drain_slowly(mut stream: UnixStream) -> thread::JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        thread::sleep(ms(200));
        let mut all = Vec::new();
        let mut buf = [0; 4096];
        loop {
            match stream.read(&mut buf) {
                Ok(0) | Err(_) => break all,
                Ok(n) => all.extend_from_slice(&buf[..n]),
            }
            thread::sleep(ms(1));
        }
    })
}

/// Runs the ignored test `name` as a child with its stdout and stderr on
/// sockets read slowly; its exit status, stdout and stderr.
fn run_child(name: &str) -> (std::process::ExitStatus, String, String) {
    let (out, child_out) = UnixStream::pair().unwrap();
    let (err, child_err) = UnixStream::pair().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--ignored", "--exact", "--nocapture", "--test-threads=1", name])
        .stdout(Stdio::from(OwnedFd::from(child_out)))
        .stderr(Stdio::from(OwnedFd::from(child_err)))
        .spawn()
        .unwrap();
    let (out, err) = (drain_slowly(out), drain_slowly(err));
    let status = child.wait().unwrap();
    let text = |bytes: Vec<u8>| String::from_utf8_lossy(&bytes).into_owned();
    (status, text(out.join().unwrap()), text(err.join().unwrap()))
}

/// Spawns `GREENLETS` greenlets that each print `lines` lines, then panic;
/// checks that each ended with its own panic.
fn print_and_panic(lines: usize) {
    let greenlets: Vec<_> = (0..GREENLETS)
        .map(|g| {
            runtime::spawn(move || {
                for line in 0..lines {
                    println!("greenlet {g} line {line} {}", "y".repeat(100));
                }
                panic!("greenlet {g} gives up");
            })
        })
        .collect();
    for greenlet in greenlets {
        assert!(greenlet.join().unwrap_err().is_panic());
    }
}

#[test]
#[ignore = "run as a child by panics_while_a_panic_hook_writes_to_a_socket_do_not_abort"]
fn child_panics_while_a_panic_hook_writes_to_a_socket() {
    let (log, peer) = UnixStream::pair().unwrap();
    let reader = drain_slowly(peer);
    // A user's hook that logs to a socket (installed before the runtime,
    // which chains its own in front).
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        for _ in 0..16 {
            let _ = (&log).write_all(&[b'x'; 4096]);
        }
        default(info);
    }));
    util::run(|| print_and_panic(0));
    drop(std::panic::take_hook()); // closes the log
    assert_eq!(reader.join().unwrap().len(), GREENLETS * 16 * 4096);
    println!("child done");
}

#[test]
fn panics_while_a_panic_hook_writes_to_a_socket_do_not_abort() {
    let (status, out, err) = run_child("child_panics_while_a_panic_hook_writes_to_a_socket");
    assert!(status.success(), "the child failed ({status}): {}", &err[err.len().saturating_sub(3000)..]);
    assert!(out.contains("child done"));
}

#[test]
#[ignore = "run as a child by printing_and_panicking_in_many_greenlets_to_slow_sockets_neither_panics_nor_aborts"]
fn child_prints_and_panics_in_many_greenlets() {
    util::run(|| print_and_panic(100));
    println!("child done");
}

#[test]
fn printing_and_panicking_in_many_greenlets_to_slow_sockets_neither_panics_nor_aborts() {
    let (status, out, err) = run_child("child_prints_and_panics_in_many_greenlets");
    assert!(status.success(), "the child failed ({status}): {}", &err[err.len().saturating_sub(3000)..]);
    assert!(out.contains("child done"));
    // (libtest writes "test child_... ... " in front of the first.)
    let lines: Vec<_> = out.lines().filter(|line| line.contains(" line ")).collect();
    assert_eq!(lines.len(), GREENLETS * 100);
    assert!(lines.iter().all(|line| line.ends_with(&"y".repeat(100))), "a torn line");
    for g in 0..GREENLETS {
        assert!(err.contains(&format!("greenlet {g} gives up")), "greenlet {g}'s panic message is missing");
    }
}
