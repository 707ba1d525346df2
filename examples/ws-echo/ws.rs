//! A WebSocket echo handler: tungstenite over our `TcpStream`, whose
//! blocking-style `Read` and `Write` park only the connection's greenlet.

use std::io::Write;
use std::net::{Shutdown, SocketAddr};

use runtime::net::TcpStream;
use tungstenite::{Error, Message};

/// Serves one connection: the opening handshake, then echo until the close
/// handshake.
pub fn serve(stream: TcpStream, peer: SocketAddr) {
    tracing::debug!(%peer, "connected");
    match echo(stream) {
        Ok(messages) => tracing::debug!(%peer, messages, "closed"),
        Err(err) => tracing::debug!(%peer, "closed: {err}"),
    }
}

/// Echoes text and binary messages back until the client closes; returns
/// how many were echoed. Pings are answered with pongs (tungstenite queues
/// them; the flush sends them), and a close frame is answered with one.
pub fn echo(stream: TcpStream) -> Result<u64, Error> {
    // A second handle, to answer a request that is not a WebSocket handshake
    // (tungstenite gives up on it without a reply).
    let raw = stream.try_clone()?;
    let mut ws = match tungstenite::accept(stream) {
        Ok(ws) => ws,
        Err(tungstenite::HandshakeError::Failure(err)) => {
            if matches!(err, Error::Protocol(_)) {
                let _ = (&raw).write_all(b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
                let _ = raw.shutdown(Shutdown::Write);
            }
            return Err(err);
        }
        // Only non-blocking streams are interrupted; ours parks instead.
        Err(tungstenite::HandshakeError::Interrupted(_)) => unreachable!("a blocking-style stream"),
    };
    let mut echoed = 0;
    loop {
        match ws.read() {
            Ok(message @ (Message::Text(_) | Message::Binary(_))) => {
                ws.send(message)?;
                echoed += 1;
            }
            Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_)) => ws.flush()?,
            // The reply is queued: the next read sends it and then reports
            // the connection closed.
            Ok(Message::Close(_)) => {}
            Err(Error::ConnectionClosed) => return Ok(echoed),
            Err(err) => return Err(err),
        }
    }
}
