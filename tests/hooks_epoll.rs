//! The `hooks` feature and event loops embedded in a greenlet: `epoll_wait`
//! parks only the greenlet (on its epoll descriptor, which the hub polls),
//! so a raw epoll loop, or a tokio `current_thread` runtime (which waits in
//! `epoll_wait` with its I/O driver, on a `Condvar` without), cooperates
//! with the other greenlets of the hub. Without the hooks each scenario
//! here blocks (or deadlocks) its hub: every test runs on its own thread
//! under a hang guard.

mod util;

#[allow(dead_code)]
#[path = "../examples/http-hello/hello.rs"]
mod hello;

use std::io::Write;
use std::os::fd::AsRawFd;
use std::time::Duration;

use util::{guarded, ms, ticker};

/// A new epoll descriptor watching `fd` for input.
fn epoll_on(fd: i32) -> i32 {
    // SAFETY: plain system calls on integers and a local event.
    unsafe {
        let epfd = libc::epoll_create1(libc::EPOLL_CLOEXEC);
        assert!(epfd >= 0);
        let mut event = libc::epoll_event { events: libc::EPOLLIN as u32, u64: 7 };
        assert_eq!(libc::epoll_ctl(epfd, libc::EPOLL_CTL_ADD, fd, &mut event), 0);
        epfd
    }
}

/// `epoll_wait` with room for four events: their tokens, or the error.
fn epoll_wait(epfd: i32, timeout_ms: i32) -> std::io::Result<Vec<u64>> {
    let mut events = [libc::epoll_event { events: 0, u64: 0 }; 4];
    // SAFETY: the array holds four events.
    let n = unsafe { libc::epoll_wait(epfd, events.as_mut_ptr(), 4, timeout_ms) };
    if n < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(events[..n as usize].iter().map(|e| e.u64).collect())
}

#[test]
fn a_raw_epoll_wait_parks_only_its_greenlet_until_an_event() {
    let tokens = guarded("an event loop", || {
        let (reader, mut writer) = util::pipe();
        let epfd = epoll_on(reader.as_raw_fd());
        let writer = runtime::spawn(move || {
            std::thread::sleep(ms(20));
            writer.write_all(b"x").unwrap();
        });
        let (ticks, _ticker) = ticker();
        let before = ticks.get();
        // A greenlet's epoll_wait may return early with no events (every
        // 10 ms): event loops wait again.
        let tokens = loop {
            let tokens = epoll_wait(epfd, 10_000).unwrap();
            if !tokens.is_empty() {
                break tokens;
            }
        };
        assert!(ticks.get() > before, "the hub stopped during epoll_wait");
        writer.join().unwrap();
        // SAFETY: closes the epoll descriptor made above.
        unsafe { libc::close(epfd) };
        tokens
    });
    assert_eq!(tokens, [7]);
}

#[test]
fn a_raw_epoll_wait_with_nothing_to_report_times_out_and_the_hub_runs_meanwhile() {
    guarded("an event loop", || {
        let (reader, _writer) = util::pipe();
        let epfd = epoll_on(reader.as_raw_fd());
        let (ticks, _ticker) = ticker();
        let before = ticks.get();
        assert_eq!(epoll_wait(epfd, 5).unwrap(), Vec::<u64>::new());
        assert!(ticks.get() > before, "the hub stopped during epoll_wait");
        // Events pending already come back at once, without parking.
        let (reader, mut writer) = util::pipe();
        let ready = epoll_on(reader.as_raw_fd());
        writer.write_all(b"x").unwrap();
        assert_eq!(epoll_wait(ready, 10_000).unwrap(), [7]);
        // SAFETY: closes the epoll descriptors made above.
        unsafe { (libc::close(epfd), libc::close(ready)) };
    });
}

#[test]
fn a_killed_greenlet_in_epoll_wait_gets_an_error_and_ends_killed() {
    let killed = guarded("an event loop", || {
        let (reader, _writer) = util::pipe();
        let epfd = epoll_on(reader.as_raw_fd());
        let waiter = runtime::spawn(move || epoll_wait(epfd, -1).map_err(|e| e.raw_os_error()));
        runtime::sleep(ms(10));
        waiter.kill();
        let outcome = waiter.join();
        // SAFETY: closes the epoll descriptor made above.
        unsafe { libc::close(epfd) };
        outcome.is_err_and(|e| e.is_killed())
    });
    assert!(killed);
}

/// A tokio `current_thread` runtime with a timer, with (`io`) or without its
/// I/O driver, inside a greenlet while a ticker ticks.
fn tokio_timer_in_a_greenlet(io: bool) {
    guarded("an event loop", move || {
        let mut builder = tokio::runtime::Builder::new_current_thread();
        builder.enable_time();
        if io {
            builder.enable_io();
        }
        let tokio = builder.build().unwrap();
        let (ticks, _ticker) = ticker();
        let before = ticks.get();
        tokio.block_on(async { tokio::time::sleep(ms(30)).await });
        assert!(ticks.get() > before, "the hub stopped while tokio waited for its timer");
    });
}

#[test]
fn a_tokio_current_thread_timer_in_a_greenlet_lets_the_hub_run() {
    tokio_timer_in_a_greenlet(true);
}

#[test]
fn a_tokio_current_thread_timer_without_io_driver_in_a_greenlet_lets_the_hub_run() {
    tokio_timer_in_a_greenlet(false);
}

/// A tokio `block_on` in a greenlet, fed over a oneshot and an mpsc channel
/// by a plain thread, while a ticker greenlet ticks.
fn tokio_fed_by_a_thread(io: bool) {
    let got = guarded("an event loop", move || {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let (more_tx, mut more_rx) = tokio::sync::mpsc::unbounded_channel();
        let feeder = std::thread::spawn(move || {
            std::thread::sleep(ms(10));
            tx.send(1).unwrap();
            for i in 2..=4 {
                std::thread::sleep(ms(2));
                more_tx.send(i).unwrap();
            }
        });
        let mut builder = tokio::runtime::Builder::new_current_thread();
        if io {
            builder.enable_io();
        }
        let tokio = builder.build().unwrap();
        let (ticks, _ticker) = ticker();
        let before = ticks.get();
        let got = tokio.block_on(async move {
            let mut got = vec![rx.await.unwrap()];
            while let Some(i) = more_rx.recv().await {
                got.push(i);
            }
            got
        });
        assert!(ticks.get() > before, "the hub stopped while tokio waited");
        feeder.join().unwrap();
        got
    });
    assert_eq!(got, [1, 2, 3, 4]);
}

#[test]
fn a_tokio_block_on_with_io_driver_is_fed_over_channels_by_another_greenlet() {
    let got = guarded("an event loop", || {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let (more_tx, mut more_rx) = tokio::sync::mpsc::unbounded_channel();
        let feeder = runtime::spawn(move || {
            std::thread::sleep(ms(10));
            tx.send(1).unwrap();
            for i in 2..=4 {
                std::thread::sleep(ms(2));
                more_tx.send(i).unwrap();
            }
        });
        let tokio = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let got = tokio.block_on(async move {
            let mut got = vec![rx.await.unwrap()];
            while let Some(i) = more_rx.recv().await {
                got.push(i);
            }
            got
        });
        feeder.join().unwrap();
        got
    });
    assert_eq!(got, [1, 2, 3, 4]);
}

#[test]
fn a_tokio_block_on_in_a_greenlet_is_fed_over_channels_by_a_thread() {
    tokio_fed_by_a_thread(true);
}

#[test]
fn a_tokio_block_on_without_io_driver_in_a_greenlet_is_fed_over_channels_by_a_thread() {
    tokio_fed_by_a_thread(false);
}

#[test]
fn a_reqwest_blocking_client_in_a_greenlet_against_http_hello_on_the_same_hub() {
    // reqwest's blocking client runs a tokio runtime on a thread of its own
    // and parks its caller (`thread::park_timeout`) until the response
    // comes: with the hooks only the calling greenlet parks, and the server,
    // on the same hub, serves meanwhile. (One such caller per thread at a
    // time: callers share the thread's parker.)
    let bodies = guarded("an event loop", || {
        let server = runtime::net::StreamServer::bind("127.0.0.1:0").unwrap().name("http");
        let addr = server.local_addr().unwrap();
        let server = server.start(hello::serve).unwrap();
        let client = runtime::task::Builder::new().stack_size(1 << 20).spawn(move || {
            let client = reqwest::blocking::Client::new();
            let bodies: Vec<String> = (0..3)
                .map(|request| {
                    let response = client.get(format!("http://{addr}/request/{request}")).send().unwrap();
                    assert_eq!(response.status(), 200);
                    response.text().unwrap()
                })
                .collect();
            // Dropping the client joins its thread (pthread_join, which is
            // not interposed): off the hub.
            runtime::blocking(move || drop(client));
            bodies
        });
        let bodies = client.join().unwrap();
        server.stop(Duration::from_secs(1));
        bodies
    });
    assert_eq!(bodies, ["Hello, world!\n"; 3]);
}
