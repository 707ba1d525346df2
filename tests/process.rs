//! `runtime::process`: child processes whose waits and pipes park only the
//! calling greenlet (gevent's `subprocess`), process groups killed and
//! reaped on drop, and the errors std reports.

mod util;

use std::cell::Cell;
use std::io::{ErrorKind, Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::rc::Rc;

use runtime::process::{Command, Stdio};
use util::ms;

/// Whether process `pid` is alive: listed, and neither a zombie nor dead.
fn is_alive(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return false };
    // The state follows the command name, which is in parentheses.
    let state = stat.rsplit_once(')').and_then(|(_, rest)| rest.trim_start().chars().next());
    !matches!(state, Some('Z' | 'X'))
}

/// Whether process `pid` is gone entirely (reaped by its parent).
fn is_reaped(pid: u32) -> bool {
    !std::path::Path::new(&format!("/proc/{pid}")).exists()
}

#[test]
fn output_collects_what_echo_prints() {
    util::run(|| {
        let output = Command::new("echo").args(["hello", "world"]).output().unwrap();
        assert!(output.status.success());
        assert_eq!(output.stdout, b"hello world\n");
        assert!(output.stderr.is_empty());
    });
}

#[test]
fn status_and_output_report_the_exit_code() {
    util::run(|| {
        assert!(Command::new("true").status().unwrap().success());
        let status = Command::new("sh").args(["-c", "exit 3"]).status().unwrap();
        assert_eq!(status.code(), Some(3));
        let output = Command::new("sh").args(["-c", "echo oops >&2; exit 7"]).output().unwrap();
        assert_eq!((output.status.code(), &output.stderr[..]), (Some(7), &b"oops\n"[..]));
    });
}

/// Data goes into `cat` and comes back out, more than a pipe holds, written
/// by one greenlet while another reads: neither blocks the hub.
#[test]
fn stdin_goes_through_cat_to_stdout() {
    util::run(|| {
        let mut child = Command::new("cat").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
        let data: Vec<u8> = (0..1_000_000_u32).map(|i| (i % 251) as u8).collect();
        let mut stdin = child.stdin.take().unwrap();
        let writer = runtime::spawn({
            let data = data.clone();
            move || stdin.write_all(&data) // dropping `stdin` closes it: cat ends
        });
        let mut echoed = Vec::new();
        child.stdout.as_mut().unwrap().read_to_end(&mut echoed).unwrap();
        writer.join().unwrap().unwrap();
        assert!(echoed == data, "cat gave back {} bytes of {}", echoed.len(), data.len());
        assert!(child.wait().unwrap().success());
    });
}

/// `wait_with_output` reads both pipes at once: a child that fills standard
/// error before it writes its standard output does not deadlock.
#[test]
fn wait_with_output_drains_both_pipes_at_once() {
    util::run(|| {
        let child = Command::new("sh")
            .args(["-c", "head -c 300000 /dev/zero >&2; head -c 200000 /dev/zero"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let output = child.wait_with_output().unwrap();
        assert!(output.status.success());
        assert_eq!((output.stdout.len(), output.stderr.len()), (200_000, 300_000));
    });
}

/// gevent's `Popen.wait(timeout)`: `None` while the child runs; after a
/// kill, `wait` reports the signal.
#[test]
fn wait_timeout_returns_none_while_the_child_runs_then_kill_ends_it() {
    util::run(|| {
        let mut child = Command::new("sleep").arg("5").spawn().unwrap();
        assert!(child.try_wait().unwrap().is_none());
        assert!(child.wait_timeout(ms(50)).unwrap().is_none());
        assert!(child.try_wait().unwrap().is_none(), "the timed-out wait reaped it");
        child.kill().unwrap();
        let status = child.wait_timeout(util::PATIENCE).unwrap().expect("a killed child exits");
        assert_eq!(status.signal(), Some(libc::SIGKILL));
        // Waiting again gives the same status; killing a reaped child is fine.
        assert_eq!(child.wait().unwrap().signal(), Some(libc::SIGKILL));
        assert_eq!(child.try_wait().unwrap().unwrap().signal(), Some(libc::SIGKILL));
        child.kill().unwrap();
    });
}

/// While the main greenlet waits for the child, a ticker greenlet runs: it
/// is the ticker that feeds the child and closes its input, so a wait that
/// blocked the thread would never end.
#[test]
fn a_ticker_greenlet_runs_while_a_child_is_waited_for() {
    util::run(|| {
        let mut child = Command::new("cat").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
        let ticks = Rc::new(Cell::new(0));
        let mut stdin = child.stdin.take().unwrap();
        let ticker = runtime::spawn({
            let ticks = ticks.clone();
            move || {
                for i in 0..20_u8 {
                    runtime::sleep(ms(1));
                    stdin.write_all(&[i]).unwrap();
                    ticks.set(ticks.get() + 1);
                }
            }
        });
        let mut stdout = child.stdout.take().unwrap();
        let status = child.wait().unwrap();
        assert!(status.success());
        assert_eq!(ticks.get(), 20);
        ticker.join().unwrap();
        let mut echoed = Vec::new();
        stdout.read_to_end(&mut echoed).unwrap();
        assert_eq!(echoed, (0..20).collect::<Vec<u8>>());
    });
}

/// With `process_group(0)` and `kill_on_drop(true)`, dropping the child
/// kills its group (the shell and the `sleep` it started) and reaps the
/// shell: no zombie is left.
#[test]
fn kill_on_drop_kills_the_group_and_reaps_the_child() {
    util::run(|| {
        let mut child = Command::new("sh")
            .args(["-c", "sleep 100 & echo $!; wait"])
            .process_group(0)
            .kill_on_drop(true)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let shell = child.id();
        let mut line = String::new();
        let mut stdout = child.stdout.take().unwrap();
        let mut byte = [0];
        while !line.ends_with('\n') {
            assert_eq!(stdout.read(&mut byte).unwrap(), 1, "the shell ended before naming its child");
            line.push(char::from(byte[0]));
        }
        let grandchild: u32 = line.trim().parse().unwrap();
        assert!(is_alive(shell) && is_alive(grandchild));
        drop(child);
        util::wait_until("the grandchild to die", || !is_alive(grandchild));
        util::wait_until("the shell to be reaped", || is_reaped(shell));
    });
}

/// Without `kill_on_drop`, a dropped child runs on, as with std.
#[test]
fn a_dropped_child_runs_on_by_default() {
    util::run(|| {
        let child = Command::new("sleep").arg("30").spawn().unwrap();
        let pid = child.id();
        drop(child);
        runtime::sleep(ms(20));
        assert!(is_alive(pid));
        std::process::Command::new("kill").arg(pid.to_string()).status().unwrap();
        util::wait_until("the child to die", || !is_alive(pid));
    });
}

#[test]
fn the_environment_and_directory_reach_the_child() {
    util::run(|| {
        let output = Command::new("sh")
            .args(["-c", "echo \"$GREETING $UNSET_ME\"; pwd"])
            .env("GREETING", "hi")
            .env("UNSET_ME", "x")
            .env_remove("UNSET_ME")
            .current_dir("/")
            .output()
            .unwrap();
        assert_eq!(String::from_utf8(output.stdout).unwrap(), "hi \n/\n");
        let output = Command::new("/usr/bin/env").env_clear().envs([("ONLY", "this")]).output().unwrap();
        assert_eq!(output.stdout, b"ONLY=this\n");
    });
}

#[test]
fn errors_are_those_of_std() {
    util::run(|| {
        let err = Command::new("/no/such/program").spawn().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
        let err = Command::new("no-such-program-anywhere").output().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
        let err = Command::new("/").status().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");
        let err = Command::new("true").current_dir("/no/such/dir").spawn().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
        // Writing to a child that closed its input is a broken pipe.
        let mut child = Command::new("true").stdin(Stdio::piped()).spawn().unwrap();
        assert!(child.wait_timeout(util::PATIENCE).unwrap().is_some());
        let err = child.stdin.as_mut().unwrap().write_all(&[0; 100_000]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::BrokenPipe, "{err}");
    });
}

/// A killed greenlet stops waiting (its wait is a park like any other).
#[test]
fn a_wait_can_be_cut_short_by_a_timeout() {
    util::run(|| {
        let mut child = Command::new("sleep").arg("30").kill_on_drop(true).spawn().unwrap();
        let pid = child.id();
        assert!(runtime::timeout(ms(20), || child.wait()).is_err());
        drop(child);
        util::wait_until("the child to be reaped", || is_reaped(pid));
    });
}
