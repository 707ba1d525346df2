//! The echo server written with `std::net` only: `std::net::TcpListener`,
//! `std::net::TcpStream`, plain blocking `read` and `write_all`, one greenlet
//! per connection. With the `hooks` feature, each of those calls parks only
//! its greenlet, so the server holds every connection on one thread.
//!
//! ```text
//! cargo run --release --features hooks --example std-echo            # listens on 127.0.0.1:7000
//! cargo run --release --features hooks --example std-echo -- --addr 127.0.0.1:9000
//! nc 127.0.0.1 7000                                                  # type a line, get it back
//! ```
//!
//! It runs until killed.

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};

/// Bytes read at a time.
const BUF_SIZE: usize = 16 * 1024;

fn echo(mut stream: TcpStream) -> io::Result<()> {
    let mut buf = vec![0; BUF_SIZE];
    loop {
        match stream.read(&mut buf)? {
            0 => return Ok(()),
            n => stream.write_all(&buf[..n])?,
        }
    }
}

fn main() {
    let mut addr = "127.0.0.1:7000".to_owned();
    let mut argv = std::env::args().skip(1);
    while let Some(arg) = argv.next() {
        match arg.as_str() {
            "--addr" => addr = argv.next().expect("--addr needs a value"),
            "-h" | "--help" => {
                println!(
                    "usage: std-echo [--addr HOST:PORT]\n\nEchoes what each client sends (default 127.0.0.1:7000)."
                );
                return;
            }
            other => {
                eprintln!("std-echo: unknown argument: {other} (try --help)");
                std::process::exit(2);
            }
        }
    }
    assert!(runtime::hooks::is_interposed(), "the hooks are not linked in");
    let result = runtime::run(move || -> io::Result<()> {
        let listener = TcpListener::bind(&addr)?;
        eprintln!("std-echo listening on {} (pid {})", listener.local_addr()?, std::process::id());
        for stream in listener.incoming() {
            let stream = stream?;
            stream.set_nodelay(true)?;
            runtime::spawn(move || echo(stream));
        }
        Ok(())
    });
    if let Err(err) = result {
        eprintln!("std-echo: {err}");
        std::process::exit(1);
    }
}
