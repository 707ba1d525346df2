//! The `hooks` feature and descriptors other processes see: the standard
//! streams, inherited sockets and descriptors handed to children keep the
//! blocking mode their users expect, and printing from many greenlets at
//! once stays whole.
//!
//! Some tests run this test binary again as a child (an ignored `child_*`
//! test, with `--ignored --exact`) whose standard streams are sockets, as
//! under systemd or inetd.

mod util;

use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::process::{Command, Stdio};

use util::ms;

/// Runs the ignored test `name` of this binary as a child with `stdin` and
/// `stdout` (sockets); returns its exit status after `feed` had the other
/// ends (`stdin`'s peer to write, `stdout`'s peer to read).
fn run_child<T>(name: &str, feed: impl FnOnce(UnixStream, UnixStream) -> T) -> (std::process::ExitStatus, T) {
    let (to_child, child_in) = UnixStream::pair().unwrap();
    let (from_child, child_out) = UnixStream::pair().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--ignored", "--exact", "--quiet", "--nocapture", "--test-threads=1", name])
        .stdin(Stdio::from(OwnedFd::from(child_in)))
        .stdout(Stdio::from(OwnedFd::from(child_out)))
        .spawn()
        .unwrap();
    let fed = feed(to_child, from_child);
    (child.wait().unwrap(), fed)
}

/// Whether this is the child run of a `child_*` test.
fn in_child() -> bool {
    std::env::args().any(|arg| arg == "--ignored")
}

/// The kernel's mode of `fd` (not the hooks' `F_GETFL`, which reports the
/// mode its user asked for).
fn kernel_nonblocking(fd: i32) -> bool {
    // SAFETY: F_GETFL through the raw system call, on any descriptor number.
    let mode = unsafe { libc::syscall(libc::SYS_fcntl, fd, libc::F_GETFL) };
    assert!(mode >= 0, "fcntl({fd}, F_GETFL) failed");
    mode as i32 & libc::O_NONBLOCK != 0
}

#[test]
#[ignore = "run as a child by standard_stream_sockets_stay_blocking_for_the_childs_children"]
fn child_prints_and_runs_tools_on_socket_stdio() {
    assert!(in_child());
    let status = util::run(|| {
        // Hooked calls on the standard streams from greenlets.
        let printer = runtime::spawn(|| println!("greenlet says hi"));
        printer.join().unwrap();
        assert!(!kernel_nonblocking(0), "stdin was made non-blocking");
        assert!(!kernel_nonblocking(1), "stdout was made non-blocking");
        // Tools that inherit the sockets and expect them blocking: `head`
        // reads stdin before its data arrives, `dd` writes more than the
        // socket holds before the parent reads.
        Command::new("sh").args(["-c", "head -c 4 && dd if=/dev/zero bs=64k count=16 status=none"]).status().unwrap()
    });
    assert!(status.success(), "head or dd failed: {status}");
}

#[test]
fn standard_stream_sockets_stay_blocking_for_the_childs_children() {
    let (status, output) = run_child("child_prints_and_runs_tools_on_socket_stdio", |mut to_child, mut from_child| {
        // Late, so that `head` finds the socket empty and `dd` fills it.
        std::thread::sleep(ms(300));
        to_child.write_all(b"abcd").unwrap();
        let mut output = Vec::new();
        from_child.read_to_end(&mut output).unwrap();
        output
    });
    let text = String::from_utf8_lossy(&output);
    assert!(status.success(), "the child failed: {status}; its output: {}", text.trim_end_matches('\0'));
    assert!(text.contains("greenlet says hi\n"));
    assert!(text.contains("abcd"));
    assert_eq!(output.iter().filter(|&&b| b == 0).count(), 16 * 65536, "dd's output is incomplete");
}

#[test]
#[ignore = "run as a child by println_from_many_greenlets_to_a_slow_socket_keeps_lines_whole"]
fn child_prints_from_many_greenlets() {
    assert!(in_child());
    util::run(|| {
        let printers: Vec<_> = (0..20)
            .map(|g| {
                runtime::spawn(move || {
                    for line in 0..200 {
                        println!("greenlet {g} line {line} {}", "x".repeat(200));
                    }
                })
            })
            .collect();
        for printer in printers {
            printer.join().unwrap();
        }
    });
}

#[test]
fn println_from_many_greenlets_to_a_slow_socket_keeps_lines_whole() {
    let (status, output) = run_child("child_prints_from_many_greenlets", |_to_child, mut from_child| {
        // Late, so that the socket is full and printing has to wait.
        std::thread::sleep(ms(300));
        let mut output = String::new();
        from_child.read_to_string(&mut output).unwrap();
        output
    });
    assert!(status.success(), "the child failed ({status}): {}", &output[output.len().saturating_sub(2000)..]);
    let lines: Vec<_> = output.lines().filter(|line| line.starts_with("greenlet ")).collect();
    assert_eq!(lines.len(), 20 * 200);
    for line in lines {
        let tail = line.rsplit(' ').next().unwrap();
        assert_eq!(tail, "x".repeat(200), "a torn line: {line}");
    }
}

#[test]
fn a_socket_the_hooks_used_works_as_a_childs_stdin() {
    let output = util::run(|| {
        let (mut ours, theirs) = UnixStream::pair().unwrap();
        // Used by a greenlet first: the hooks make it cooperative.
        ours.write_all(b"x").unwrap();
        let mut byte = [0];
        (&theirs).read_exact(&mut byte).unwrap();
        let child = Command::new("cat")
            .stdin(Stdio::from(OwnedFd::from(theirs)))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Late, so that `cat` finds its stdin empty first.
        runtime::sleep(ms(200));
        ours.write_all(b"hello").unwrap();
        drop(ours);
        child.wait_with_output().unwrap()
    });
    assert!(output.status.success(), "cat failed: {}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(output.stdout, b"hello");
}

/// `first`'s stdout, a pipe a greenlet used, becomes `cat`'s stdin (through
/// `posix_spawn`, or with `fork` when `forked`): `cat` reads it whole.
fn pipeline(forked: bool) {
    let output = util::run(move || {
        let mut first =
            Command::new("sh").args(["-c", "sleep 0.2; echo hello"]).stdout(Stdio::piped()).spawn().unwrap();
        // A hooked call on the pipe in a greenlet: the hooks make it cooperative.
        let mut pipe = first.stdout.take().unwrap();
        assert_eq!(pipe.read(&mut []).unwrap(), 0);
        let mut second = Command::new("cat");
        second.stdin(Stdio::from(pipe)).stdout(Stdio::piped()).stderr(Stdio::piped());
        if forked {
            // SAFETY: the closure does nothing.
            unsafe { std::os::unix::process::CommandExt::pre_exec(&mut second, || Ok(())) };
        }
        let output = second.spawn().unwrap().wait_with_output().unwrap();
        first.wait().unwrap();
        output
    });
    assert!(output.status.success(), "cat failed: {}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(output.stdout, b"hello\n");
}

#[test]
fn a_childs_stdout_pipe_the_hooks_used_works_as_the_next_childs_stdin() {
    pipeline(false);
}

#[test]
fn a_pipe_dup2ed_onto_stdin_in_a_forked_child_is_blocking_there() {
    pipeline(true);
}

#[test]
fn a_socket_dup2ed_onto_stdout_in_a_forked_child_is_blocking_there() {
    util::run(|| {
        let (ours, theirs) = UnixStream::pair().unwrap();
        (&ours).write_all(b"x").unwrap();
        let mut byte = [0];
        (&theirs).read_exact(&mut byte).unwrap();
        // `pre_exec` makes std fork and `dup2` in the child.
        let mut command = Command::new("sh");
        command.args(["-c", "sleep 0.2; dd if=/dev/zero bs=64k count=16 status=none"]);
        command.stdout(Stdio::from(OwnedFd::from(theirs))).stderr(Stdio::piped());
        // SAFETY: the closure does nothing.
        unsafe { std::os::unix::process::CommandExt::pre_exec(&mut command, || Ok(())) };
        let child = command.spawn().unwrap();
        drop(command); // its copy of the socket
        runtime::sleep(ms(500));
        let reader = runtime::spawn(move || {
            let mut count = 0;
            let mut buf = vec![0; 65536];
            loop {
                match (&ours).read(&mut buf).unwrap() {
                    0 => break count,
                    n => count += n,
                }
            }
        });
        let output = child.wait_with_output().unwrap();
        assert!(output.status.success(), "dd failed: {}", String::from_utf8_lossy(&output.stderr));
        assert_eq!(reader.join().unwrap(), 16 * 65536);
    });
}

/// A connected pair of Unix stream sockets made behind the hooks' back, as
/// inherited ones are.
fn inherited_pair() -> (UnixStream, UnixStream) {
    let mut fds = [0; 2];
    // SAFETY: the raw system call writes two descriptors into `fds`.
    let done = unsafe { libc::syscall(libc::SYS_socketpair, libc::AF_UNIX, libc::SOCK_STREAM, 0, fds.as_mut_ptr()) };
    assert_eq!(done, 0);
    // SAFETY: two new descriptors nobody else owns.
    unsafe { (std::os::fd::FromRawFd::from_raw_fd(fds[0]), std::os::fd::FromRawFd::from_raw_fd(fds[1])) }
}

#[test]
fn an_inherited_socket_cooperates_and_keeps_its_mode() {
    use std::os::fd::AsRawFd;
    util::run(|| {
        let (ours, theirs) = inherited_pair();
        let fd = ours.as_raw_fd();
        // A read parks only its greenlet (else the write below never runs).
        let reader = runtime::spawn(move || {
            let mut buf = vec![0; 5];
            (&ours).read_exact(&mut buf).unwrap();
            buf
        });
        runtime::sleep(ms(50));
        assert!(!kernel_nonblocking(fd), "an inherited socket was made non-blocking");
        (&theirs).write_all(b"hello").unwrap();
        assert_eq!(reader.join().unwrap(), b"hello");
        // Writes more than the socket holds park too.
        let big = vec![7u8; 4 << 20];
        let (ours, theirs) = inherited_pair();
        let writer = runtime::spawn(move || (&ours).write_all(&big).unwrap());
        let mut got = Vec::new();
        (&theirs).take(4 << 20).read_to_end(&mut got).unwrap();
        writer.join().unwrap();
        assert_eq!(got.len(), 4 << 20);
    });
}

#[test]
fn an_inherited_listener_accepts_cooperatively_and_keeps_its_mode() {
    use std::os::fd::FromRawFd;
    util::run(|| {
        // SAFETY: raw system calls on a new socket and a local address.
        let listener = unsafe {
            let fd = libc::syscall(libc::SYS_socket, libc::AF_INET, libc::SOCK_STREAM, 0) as i32;
            assert!(fd >= 0);
            let addr = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: 0,
                sin_addr: libc::in_addr { s_addr: u32::from_ne_bytes([127, 0, 0, 1]) },
                sin_zero: [0; 8],
            };
            let len = size_of::<libc::sockaddr_in>() as libc::socklen_t;
            assert_eq!(libc::syscall(libc::SYS_bind, fd, &addr as *const libc::sockaddr_in, len), 0);
            assert_eq!(libc::syscall(libc::SYS_listen, fd, 16), 0);
            std::net::TcpListener::from_raw_fd(fd)
        };
        let addr = listener.local_addr().unwrap();
        let fd = std::os::fd::AsRawFd::as_raw_fd(&listener);
        let acceptors: Vec<_> = (0..2)
            .map(|_| {
                let listener = listener.try_clone().unwrap();
                runtime::spawn(move || {
                    let (mut stream, _) = listener.accept().unwrap();
                    let mut byte = [0];
                    stream.read_exact(&mut byte).unwrap();
                    byte[0]
                })
            })
            .collect();
        runtime::sleep(ms(50));
        assert!(!kernel_nonblocking(fd), "an inherited listener was made non-blocking");
        // Each connection wakes both acceptors; the one that finds none
        // waits on (else the second connect never runs).
        for byte in [1, 2] {
            std::net::TcpStream::connect(addr).unwrap().write_all(&[byte]).unwrap();
            runtime::sleep(ms(20));
        }
        let mut got: Vec<u8> = acceptors.into_iter().map(|a| a.join().unwrap()).collect();
        got.sort();
        assert_eq!(got, [1, 2]);
    });
}

#[test]
fn sockets_this_process_made_keep_their_mode_but_its_listeners() {
    use std::os::fd::AsRawFd;
    util::run(|| {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let acceptor = runtime::spawn(move || {
            let accepted = listener.accept().unwrap().0;
            (listener, accepted)
        });
        let mut client = std::net::TcpStream::connect(addr).unwrap();
        let (listener, mut server) = acceptor.join().unwrap();
        client.write_all(b"ping").unwrap();
        let mut buf = [0; 4];
        server.read_exact(&mut buf).unwrap();
        assert!(!kernel_nonblocking(client.as_raw_fd()), "a connected socket was made non-blocking");
        assert!(!kernel_nonblocking(server.as_raw_fd()), "an accepted socket was made non-blocking");
        // A listener this process made is the hooks' (non-blocking
        // underneath, `accept` having no per-call flag), blocking to its user.
        assert!(kernel_nonblocking(listener.as_raw_fd()));
        // SAFETY: F_GETFL on an open descriptor, through the hooks.
        let mode = unsafe { libc::fcntl(listener.as_raw_fd(), libc::F_GETFL) };
        assert_eq!(mode & libc::O_NONBLOCK, 0);
    });
}
