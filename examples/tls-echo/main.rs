//! A TLS echo server: rustls over `runtime::net::TcpStream`, one greenlet per
//! connection, all on one thread.
//!
//! ```text
//! cargo run --release --example tls-echo                 # listens on 127.0.0.1:7443
//! cargo run --release --example tls-echo -- --save-cert /tmp/echo.pem
//! openssl s_client -connect 127.0.0.1:7443 -CAfile /tmp/echo.pem -servername localhost
//! cargo run --release --example tls-echo -- --cert cert.pem --key key.pem --addr 0.0.0.0:7443
//! scripts/check-tls-echo.sh                              # 200 Python ssl clients, and openssl
//! ```
//!
//! Without `--cert` and `--key` (PEM files: a certificate chain and its
//! private key) it makes a self-signed certificate for `localhost` and
//! `127.0.0.1` at start-up; `--save-cert FILE` writes that certificate out,
//! for clients to trust. TLS 1.2 and 1.3, with rustls's `ring` provider.
//!
//! Ctrl-C (SIGINT) or SIGTERM stops it: it stops accepting, gives open
//! connections a second to finish, then closes them.

mod tls;

#[path = "../common/cli.rs"]
mod cli;
#[path = "../common/serve.rs"]
mod serve;

use std::path::PathBuf;

use runtime::net::StreamServer;

/// Connection greenlets' stacks: a TLS handshake needs more than the default
/// (the memory is only touched as used).
const STACK_SIZE: usize = 256 * 1024;

struct Args {
    addr: String,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    save_cert: Option<PathBuf>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args { addr: "127.0.0.1:7443".into(), cert: None, key: None, save_cert: None };
    let mut argv = std::env::args().skip(1);
    while let Some(arg) = argv.next() {
        let mut value = || argv.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--addr" => args.addr = value()?,
            "--cert" => args.cert = Some(value()?.into()),
            "--key" => args.key = Some(value()?.into()),
            "--save-cert" => args.save_cert = Some(value()?.into()),
            "-h" | "--help" => {
                println!("usage: tls-echo [--addr HOST:PORT] [--cert CERT.pem --key KEY.pem | --save-cert FILE]");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument: {other} (try --help)")),
        }
    }
    match (&args.cert, &args.key, &args.save_cert) {
        (Some(_), Some(_), None) | (None, None, _) => Ok(args),
        (Some(_), Some(_), Some(_)) => Err("--save-cert is for the generated certificate, not with --cert".into()),
        _ => Err("--cert and --key go together".into()),
    }
}

fn main() {
    let args = cli::start("tls-echo", parse_args);
    let identity = match (&args.cert, &args.key) {
        (Some(cert), Some(key)) => tls::from_pem_files(cert, key),
        _ => tls::self_signed().map_err(|err| err.to_string()).and_then(|(identity, pem)| {
            if let Some(path) = &args.save_cert {
                std::fs::write(path, pem).map_err(|err| format!("{}: {err}", path.display()))?;
            }
            Ok(identity)
        }),
    };
    let config = identity.and_then(|identity| tls::server_config(identity).map_err(|err| err.to_string()));
    let config = config.unwrap_or_else(|message| {
        eprintln!("tls-echo: {message}");
        std::process::exit(1);
    });
    serve::until_signal(
        "tls-echo",
        move || Ok(StreamServer::bind(args.addr.as_str())?.nodelay(true).name("tls").stack_size(STACK_SIZE)),
        move |server| server.start(move |stream, peer| tls::serve(stream, peer, config.clone())),
        |addr| format!("TLS echo server listening on {addr}"),
    );
}
