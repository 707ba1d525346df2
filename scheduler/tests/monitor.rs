//! The blocking monitor (gevent's monitor thread, `test___monitor.py` and the
//! "appears to be blocked" case of `test__hub.py`): a greenlet that holds the
//! hub too long is named in a `tracing` warning.
//!
//! The warning is logged on the monitor's own thread, so this binary installs
//! a global subscriber; it holds a single test for that reason.

mod util;

use runtime_scheduler::{Builder, sleep, spawn, task, yield_now};
use util::{Capture, assert_contains, ms};

#[test]
fn blocking_monitor_names_a_greenlet_that_holds_the_hub() {
    // gevent test__hub.py TestPeriodicMonitoringThread.test_blocking_this_thread
    // (the hub thread sleeping natively for three times the threshold is
    // reported as "appears to be blocked") and test___monitor.py.
    let capture = Capture::new();
    tracing::subscriber::set_global_default(capture.subscriber()).expect("the only subscriber of this binary");
    Builder::new().max_blocking_time(ms(20)).run(|| {
        // A well-behaved greenlet runs around it.
        let polite = spawn(|| {
            for _ in 0..5 {
                sleep(ms(1));
            }
        });
        let hog = task::Builder::new().name("busy-loop").spawn(|| std::thread::sleep(ms(200)));
        yield_now();
        hog.join().unwrap();
        polite.join().unwrap();
    });
    // (Whether the polite greenlet is never named depends on the OS never
    // descheduling the hub thread for 20 ms, so that is not asserted.)
    assert_contains(&capture.text(), &["WARN", "busy-loop", "held the hub", "without yielding"]);
}
