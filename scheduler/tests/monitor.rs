//! The blocking monitor (gevent's monitor thread, `test___monitor.py` and the
//! "appears to be blocked" case of `test__hub.py`): a greenlet that holds the
//! hub too long is named, with where it was spawned and its current stack,
//! while it still holds the hub; once per incident; on by default.
//!
//! Every scenario runs in a child process (the monitor thread serves the
//! whole process, and a `tracing` subscriber is global), and the parent reads
//! what it logged. A blocking greenlet holds the hub until the warning about
//! it has been logged (with a generous bound as a hang guard), so the warning
//! provably came while it still held the hub; it blocks inside a function of
//! its own, marked `#[inline(never)]`, so that the stack printed must be its
//! current one to name it.

mod util;

use std::hint::black_box;
use std::time::{Duration, Instant};

use runtime_scheduler::{self as rt, Builder, sleep, spawn, task};
use runtime_testkit::ChildTest;
use util::{Capture, assert_contains, ms};

/// How long a blocking greenlet waits at most for the warning about it.
const HANG_GUARD: Duration = Duration::from_secs(30);

const WARNING: &str = "has held the hub";

/// Spins on the CPU, never yielding, until the warning has been logged.
#[inline(never)]
fn spin_without_yielding(log: &Capture) {
    let start = Instant::now();
    while !log.text().contains(WARNING) {
        assert!(start.elapsed() < HANG_GUARD, "no warning came");
        for _ in 0..black_box(10_000) {
            std::hint::spin_loop();
        }
    }
}

/// A blocking call that cannot cooperate: the thread sleeps in the kernel,
/// 10 ms at a time, until the warning has been logged.
#[inline(never)]
fn sleep_in_the_kernel(log: &Capture) {
    let start = Instant::now();
    while !log.text().contains(WARNING) {
        assert!(start.elapsed() < HANG_GUARD, "no warning came");
        std::thread::sleep(ms(10));
    }
}

/// Runs a child's scenario with a log captured through `tracing`, then
/// prints the log for the parent.
fn with_log(scenario: impl FnOnce(Capture)) {
    let capture = Capture::new();
    tracing::subscriber::set_global_default(capture.subscriber()).expect("the only subscriber of this process");
    scenario(capture.clone());
    println!("LOG:\n{}", capture.text());
}

/// Runs `test` in a child with `env` and returns what it printed, checked for
/// success.
fn child(test: &str, env: &[(&str, &str)], remove: Option<&str>) -> String {
    let mut child = ChildTest::new(test).envs(env);
    if let Some(var) = remove {
        child = child.env_remove(var);
    }
    let output = child.run();
    let text = util::output_text(&output);
    assert!(output.status.success(), "{text}");
    text
}

#[test]
fn a_spinning_greenlet_is_reported_once_with_its_stack() {
    const TEST: &str = "a_spinning_greenlet_is_reported_once_with_its_stack";
    if util::is_child(TEST) {
        with_log(|log| {
            rt::run(move || {
                let polite = spawn(|| (0..3).for_each(|_| sleep(ms(1))));
                let hog = task::Builder::new().name("spinner").spawn(move || spin_without_yielding(&log));
                hog.join().unwrap();
                polite.join().unwrap();
            });
        });
        return;
    }
    let text = child(TEST, &[(rt::MAX_BLOCKING_TIME_ENV, "50ms")], None);
    assert_eq!(text.matches(WARNING).count(), 1, "one warning per incident:\n{text}");
    assert_contains(
        &text,
        &[
            "WARN",
            "greenlet 'spinner' (#",
            "spawned at",
            "monitor.rs",
            "more than 50ms",
            "its stack now:",
            // (Without the module path under debug information limited to line
            // tables.)
            "spin_without_yielding at ",
        ],
    );
}

#[test]
fn a_call_that_cannot_cooperate_is_reported_once_with_its_stack() {
    // A plain `std::thread::sleep` without the hooks: the hub's thread sleeps
    // in the kernel, and the warning still comes while it does.
    const TEST: &str = "a_call_that_cannot_cooperate_is_reported_once_with_its_stack";
    if util::is_child(TEST) {
        with_log(|log| {
            rt::run(move || {
                task::Builder::new().name("native-sleep").spawn(move || sleep_in_the_kernel(&log)).join().unwrap();
            });
        });
        return;
    }
    let text = child(TEST, &[(rt::MAX_BLOCKING_TIME_ENV, "50ms")], None);
    assert_eq!(text.matches(WARNING).count(), 1, "one warning per incident:\n{text}");
    assert_contains(&text, &["greenlet 'native-sleep' (#", "spawned at", "monitor::sleep_in_the_kernel"]);
}

#[test]
fn without_a_subscriber_the_warning_and_stack_go_to_stderr() {
    const TEST: &str = "without_a_subscriber_the_warning_and_stack_go_to_stderr";
    if util::is_child(TEST) {
        rt::run(|| {
            task::Builder::new().name("plain").spawn(|| quiet_native_sleep(ms(300))).join().unwrap();
        });
        return;
    }
    let text = child(TEST, &[(rt::MAX_BLOCKING_TIME_ENV, "50ms")], None);
    assert_eq!(text.matches(WARNING).count(), 1, "{text}");
    assert_contains(&text, &["runtime: warning: greenlet 'plain' (#", "its stack now:", "monitor::quiet_native_sleep"]);
}

/// Sleeps in the kernel for `d`.
#[inline(never)]
fn quiet_native_sleep(d: Duration) {
    std::thread::sleep(d);
    black_box(());
}

#[test]
fn the_monitor_is_on_by_default() {
    const TEST: &str = "the_monitor_is_on_by_default";
    if util::is_child(TEST) {
        with_log(|log| {
            rt::run(move || {
                task::Builder::new().name("default-hog").spawn(move || sleep_in_the_kernel(&log)).join().unwrap();
            });
        });
        return;
    }
    let text = child(TEST, &[], Some(rt::MAX_BLOCKING_TIME_ENV));
    assert_eq!(text.matches(WARNING).count(), 1, "{text}");
    assert_contains(&text, &["'default-hog'", "more than 500ms", "monitor::sleep_in_the_kernel"]);
}

#[test]
fn zero_in_the_environment_turns_the_monitor_off() {
    const TEST: &str = "zero_in_the_environment_turns_the_monitor_off";
    if util::is_child(TEST) {
        with_log(|log| {
            rt::run(|| task::Builder::new().name("unwatched").spawn(|| quiet_native_sleep(ms(300))).join().unwrap());
            // The same with the monitor on shows what the first would have said.
            Builder::new().max_blocking_time(ms(50)).run(move || {
                task::Builder::new().name("watched").spawn(move || sleep_in_the_kernel(&log)).join().unwrap();
            });
        });
        return;
    }
    let text = child(TEST, &[(rt::MAX_BLOCKING_TIME_ENV, "0")], None);
    assert_eq!(text.matches(WARNING).count(), 1, "only the hub whose builder turned it on:\n{text}");
    assert_contains(&text, &["'watched'"]);
}

#[test]
fn a_zero_limit_on_the_builder_turns_the_monitor_off() {
    const TEST: &str = "a_zero_limit_on_the_builder_turns_the_monitor_off";
    if util::is_child(TEST) {
        with_log(|log| {
            Builder::new()
                .max_blocking_time(Duration::ZERO)
                .run(|| task::Builder::new().name("unwatched").spawn(|| quiet_native_sleep(ms(300))).join().unwrap());
            rt::run(move || {
                task::Builder::new().name("watched").spawn(move || sleep_in_the_kernel(&log)).join().unwrap();
            });
        });
        return;
    }
    let text = child(TEST, &[(rt::MAX_BLOCKING_TIME_ENV, "50ms")], None);
    assert_eq!(text.matches(WARNING).count(), 1, "only the hub whose builder left it on:\n{text}");
    assert_contains(&text, &["'watched'"]);
}
