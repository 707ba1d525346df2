//! examples/tls-echo, in process: rustls clients on our `TcpStream`, many at
//! once, verifying the server's certificate and every byte echoed, and a
//! clean close (close_notify both ways).

mod util;

#[allow(dead_code)]
#[path = "../examples/tls-echo/tls.rs"]
mod tls;

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;

use runtime::net::{StreamServer, TcpStream};
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

/// Stacks for the greenlets doing TLS (handshakes in debug builds are deep).
const STACK_SIZE: usize = 256 * 1024;

fn client_config(trusted: CertificateDer<'static>) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    roots.add(trusted).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(config)
}

/// Starts the example's server on a free port; returns its address.
fn start_server(identity: tls::Identity) -> SocketAddr {
    let config = tls::server_config(identity).unwrap();
    let server = StreamServer::bind("127.0.0.1:0").unwrap().stack_size(STACK_SIZE);
    let addr = server.local_addr().unwrap();
    server.start(move |stream, peer| tls::serve(stream, peer, config.clone())).unwrap();
    addr
}

/// One client: `rounds` messages of varied sizes, each read back and
/// compared, then close_notify and the server's close_notify in return.
fn exchange(addr: SocketAddr, config: Arc<ClientConfig>, name: &'static str, seed: usize, rounds: usize) -> u64 {
    let connection = ClientConnection::new(config, ServerName::try_from(name).unwrap()).unwrap();
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(util::PATIENCE)).unwrap();
    let mut tls = StreamOwned::new(connection, stream);
    let mut total = 0;
    for round in 0..rounds {
        let size = [1, 100, 1500, 16_384, 16_385, 40_000][(seed + round) % 6];
        let message: Vec<u8> = (0..size).map(|i| (i * 7 + seed * 13 + round) as u8).collect();
        tls.write_all(&message).unwrap();
        let mut echoed = vec![0; size];
        tls.read_exact(&mut echoed).unwrap();
        assert!(echoed == message, "client {seed}, round {round}: {size} bytes echoed wrong");
        total += size as u64;
    }
    assert!(tls.conn.negotiated_cipher_suite().is_some());
    tls.conn.send_close_notify();
    tls.flush().unwrap();
    let mut rest = Vec::new();
    // A clean close from the server: its close_notify, then end-of-file (a
    // close without close_notify would be an `UnexpectedEof` error here).
    tls.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty());
    total
}

#[test]
fn many_concurrent_clients_get_every_byte_back() {
    util::run(|| {
        let (identity, _pem) = tls::self_signed().unwrap();
        let trusted = identity.certs[0].clone();
        let addr = start_server(identity);
        let config = client_config(trusted);
        let clients: Vec<_> = (0..100)
            .map(|n| {
                let config = config.clone();
                let name = if n % 2 == 0 { "localhost" } else { "127.0.0.1" };
                runtime::task::Builder::new().stack_size(STACK_SIZE).spawn(move || exchange(addr, config, name, n, 6))
            })
            .collect();
        let total: u64 = clients.into_iter().map(|c| c.join().unwrap()).sum();
        assert_eq!(total, 100 * (1 + 100 + 1500 + 16_384 + 16_385 + 40_000));
    });
}

#[test]
fn a_client_that_does_not_trust_the_certificate_fails_and_the_server_carries_on() {
    util::run(|| {
        let (identity, _) = tls::self_signed().unwrap();
        let trusted = identity.certs[0].clone();
        let addr = start_server(identity);
        let (stranger, _) = tls::self_signed().unwrap();
        let wrong = client_config(stranger.certs[0].clone());
        let refused = runtime::task::Builder::new().stack_size(STACK_SIZE).spawn(move || {
            let connection = ClientConnection::new(wrong, ServerName::try_from("localhost").unwrap()).unwrap();
            let mut tls = StreamOwned::new(connection, TcpStream::connect(addr).unwrap());
            tls.write_all(b"hello").and_then(|()| tls.flush()).and_then(|()| tls.read(&mut [0; 16]))
        });
        let err = refused.join().unwrap().expect_err("the handshake must fail");
        assert!(err.to_string().contains("certificate"), "{err}");
        let config = client_config(trusted);
        let ok = runtime::task::Builder::new()
            .stack_size(STACK_SIZE)
            .spawn(move || exchange(addr, config, "localhost", 0, 3));
        assert_eq!(ok.join().unwrap(), 1 + 100 + 1500);
    });
}

#[test]
fn certificate_and_key_from_pem_files() {
    let rcgen::CertifiedKey { cert, key_pair } = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let dir = std::env::temp_dir().join(format!("tls-echo-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert_path, cert.pem()).unwrap();
    std::fs::write(&key_path, key_pair.serialize_pem()).unwrap();
    let identity = tls::from_pem_files(&cert_path, &key_path).unwrap();
    assert!(tls::from_pem_files(&key_path, &key_path).is_err(), "a key is not a certificate");
    std::fs::remove_dir_all(&dir).unwrap();
    let trusted = cert.der().clone();
    util::run(move || {
        let addr = start_server(identity);
        let config = client_config(trusted);
        let client = runtime::task::Builder::new()
            .stack_size(STACK_SIZE)
            .spawn(move || exchange(addr, config, "localhost", 3, 6));
        assert!(client.join().unwrap() > 0);
    });
}
