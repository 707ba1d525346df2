//! A TLS echo handler: rustls's `StreamOwned` over our `TcpStream`, whose
//! blocking-style `Read` and `Write` park only the connection's greenlet.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::path::Path;
use std::sync::Arc;

use runtime::net::TcpStream;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::{ServerConfig, ServerConnection, StreamOwned};

/// Bytes read (and echoed) at a time: one TLS record's worth.
const BUF_SIZE: usize = 16 * 1024;

/// A certificate chain and its private key.
pub struct Identity {
    pub certs: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
}

/// A new self-signed certificate for `localhost` and `127.0.0.1`, with its
/// PEM text (for clients to trust).
pub fn self_signed() -> Result<(Identity, String), rcgen::Error> {
    let rcgen::CertifiedKey { cert, key_pair } =
        rcgen::generate_simple_self_signed(vec!["localhost".to_string(), "127.0.0.1".to_string()])?;
    let pem = cert.pem();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key_pair.serialize_der()));
    Ok((Identity { certs: vec![cert.der().clone()], key }, pem))
}

/// A certificate chain and key from PEM files.
pub fn from_pem_files(cert: &Path, key: &Path) -> Result<Identity, String> {
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|err| format!("{}: {err}", cert.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no certificate", cert.display()));
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|err| format!("{}: {err}", key.display()))?;
    Ok(Identity { certs, key })
}

/// A server configuration (TLS 1.2 and 1.3, ring's algorithms, no client
/// certificates).
pub fn server_config(identity: Identity) -> Result<Arc<ServerConfig>, rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(identity.certs, identity.key)?;
    Ok(Arc::new(config))
}

/// Serves one connection: the handshake, then echo until the client closes.
pub fn serve(stream: TcpStream, peer: SocketAddr, config: Arc<ServerConfig>) {
    tracing::debug!(%peer, "connected");
    match echo(stream, config) {
        Ok(bytes) => tracing::debug!(%peer, bytes, "closed"),
        Err(err) => tracing::debug!(%peer, "closed: {err}"),
    }
}

/// Echoes decrypted bytes back until the client closes; returns how many.
pub fn echo(stream: TcpStream, config: Arc<ServerConfig>) -> io::Result<u64> {
    let connection = ServerConnection::new(config).map_err(io::Error::other)?;
    // The handshake happens inside the first read.
    let mut tls = StreamOwned::new(connection, stream);
    let mut buf = vec![0; BUF_SIZE];
    let mut total = 0;
    loop {
        match tls.read(&mut buf) {
            // The client sent close_notify: answer in kind.
            Ok(0) => break,
            Ok(n) => {
                tls.write_all(&buf[..n])?;
                total += n as u64;
            }
            // The client closed the connection without close_notify (allowed
            // for a protocol that frames its own data, as echo does not).
            Err(err) if err.kind() == io::ErrorKind::UnexpectedEof => return Ok(total),
            Err(err) => return Err(err),
        }
    }
    tls.conn.send_close_notify();
    tls.flush()?;
    tls.sock.shutdown(Shutdown::Write)?;
    Ok(total)
}
