//! gevent's `Pool`/`Group` API beyond spawning and joining: `killone`,
//! `apply`, `map`, `imap`, `add`, `discard`, ported from gevent's
//! `test__pool.py` and `test__greenletset.py`.

mod util;

use std::panic;
use std::time::Duration;

use runtime_scheduler::{self as rt, Group, sleep, yield_now};
use util::{Counter, ms};

/// gevent's `Undead`: a greenlet that counts the kills it swallows, until
/// `stop` of them.
fn undead(shot: Counter, stop: usize) -> impl FnOnce() -> usize + 'static {
    move || {
        while shot.get() < stop {
            if panic::catch_unwind(|| sleep(Duration::from_secs(30))).is_err() {
                shot.bump();
            }
        }
        shot.get()
    }
}

/// Cleanup that parks before it counts itself done.
struct SlowCleanup(Counter);

impl Drop for SlowCleanup {
    fn drop(&mut self) {
        sleep(ms(2));
        self.0.bump();
    }
}

#[test]
fn group_kill_delivers_one_kill_per_member() {
    // gevent test__greenletset.py Test.test_kill_fires_once: a member the
    // group killed already is not killed again, by `kill` nor by
    // `kill_timeout` (whose wait gives up on a member that swallows it).
    rt::run(|| {
        let group = Group::new();
        let shot = Counter::new();
        let h = group.spawn(undead(shot.clone(), 3));
        yield_now();
        group.kill();
        group.kill();
        yield_now();
        assert_eq!(shot.get(), 1);
        assert!(!group.kill_timeout(ms(5)), "the member swallowed its kill");
        yield_now();
        assert_eq!(shot.get(), 1, "the group kills a member once");
        assert_eq!(group.len(), 1);
        h.kill();
        h.kill();
        yield_now();
        assert_eq!(shot.get(), 2, "a kill through the handle still goes through");
        h.kill();
        assert_eq!(h.join().unwrap(), 3);
    });
}

#[test]
fn killone_kills_a_member_once() {
    // gevent test__greenletset.py Test.test_kill_fires_once: killone without
    // blocking is delivered at the next turn, and again only by another
    // path; a greenlet outside the group is left alone.
    rt::run(|| {
        let group = Group::new();
        let shot = Counter::new();
        let member = group.spawn(undead(shot.clone(), 2));
        let outsider = rt::spawn(|| sleep(Duration::from_secs(30)));
        yield_now();
        group.killone(&member, false);
        assert_eq!(shot.get(), 0, "a non-blocking kill does not wait");
        yield_now();
        assert_eq!(shot.get(), 1);
        group.killone(&member, false);
        group.kill();
        yield_now();
        assert_eq!(shot.get(), 1, "killed once by the group");
        group.killone(&outsider, true);
        assert!(!outsider.is_finished(), "not a member: not killed, not waited for");
        member.kill();
        group.killone(&member, true);
        assert!(member.is_finished(), "a blocking killone waits for the member");
        assert_eq!(member.join().unwrap(), 2);
        outsider.kill();
    });
}

#[test]
fn blocking_killone_waits_for_the_cleanup() {
    // gevent test__greenlet.py TestKill (a blocking kill of a sleeping
    // greenlet returns after it ran its handler and finished).
    rt::run(|| {
        let group = Group::new();
        let cleaned = Counter::new();
        let c = cleaned.clone();
        let h = group.spawn(move || {
            let _guard = SlowCleanup(c);
            sleep(Duration::from_secs(30));
        });
        yield_now();
        group.killone(&h, true);
        assert_eq!(cleaned.get(), 1);
        assert!(group.is_empty());
        assert!(h.join().unwrap_err().is_killed());
    });
}
