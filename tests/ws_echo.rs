//! examples/ws-echo, in process: tungstenite clients on our `TcpStream`, many
//! at once, checking that text and binary messages come back unchanged,
//! pings are answered and the close handshake completes.

mod util;

#[allow(dead_code)]
#[path = "../examples/ws-echo/ws.rs"]
mod ws;

use std::io::{Read, Write};
use std::net::SocketAddr;

use runtime::net::{StreamServer, TcpStream};
use tungstenite::protocol::CloseFrame;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::{Error, Message};

/// Stacks for the greenlets doing WebSocket handshakes (deep in debug builds).
const STACK_SIZE: usize = 128 * 1024;

fn start_server() -> SocketAddr {
    let server = StreamServer::bind("127.0.0.1:0").unwrap().stack_size(STACK_SIZE);
    let addr = server.local_addr().unwrap();
    server.start(ws::serve).unwrap();
    addr
}

/// One client: text and binary messages of varied sizes, a ping after each,
/// then the close handshake. Returns the messages echoed.
fn exchange(addr: SocketAddr, seed: usize, rounds: usize) -> usize {
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(util::PATIENCE)).unwrap();
    let (mut ws, response) = tungstenite::client(format!("ws://{addr}/echo"), stream).unwrap();
    assert_eq!(response.status(), 101);
    for round in 0..rounds {
        let size = [0, 1, 125, 126, 65_535, 65_536, 100_000][(seed + round) % 7];
        let message = if round % 2 == 0 {
            Message::text("é漢🙂x".repeat(size / 10))
        } else {
            Message::binary((0..size).map(|i| (i * 31 + seed) as u8).collect::<Vec<u8>>())
        };
        ws.send(message.clone()).unwrap();
        assert_eq!(ws.read().unwrap(), message, "client {seed}, round {round}");
        let payload = format!("ping {seed} {round}");
        ws.send(Message::Ping(payload.clone().into_bytes().into())).unwrap();
        assert_eq!(ws.read().unwrap(), Message::Pong(payload.into_bytes().into()));
    }
    ws.close(Some(CloseFrame { code: CloseCode::Normal, reason: "done".into() })).unwrap();
    // The server answers the close frame, then the connection ends.
    match ws.read() {
        Ok(Message::Close(Some(frame))) => assert_eq!(frame.code, CloseCode::Normal),
        other => panic!("expected the server's close frame, got {other:?}"),
    }
    assert!(matches!(ws.read(), Err(Error::ConnectionClosed)));
    rounds
}

#[test]
fn many_concurrent_clients_echo_ping_and_close_cleanly() {
    util::run(|| {
        let addr = start_server();
        let clients: Vec<_> = (0..100)
            .map(|n| runtime::task::Builder::new().stack_size(STACK_SIZE).spawn(move || exchange(addr, n, 7)))
            .collect();
        let echoed: usize = clients.into_iter().map(|c| c.join().unwrap()).sum();
        assert_eq!(echoed, 700);
    });
}

#[test]
fn a_request_that_is_not_a_websocket_handshake_is_refused_and_the_server_carries_on() {
    util::run(|| {
        let addr = start_server();
        let mut plain = TcpStream::connect(addr).unwrap();
        plain.set_read_timeout(Some(util::PATIENCE)).unwrap();
        plain.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
        let mut answer = String::new();
        plain.read_to_string(&mut answer).unwrap();
        assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
        let client = runtime::task::Builder::new().stack_size(STACK_SIZE).spawn(move || exchange(addr, 1, 2));
        assert_eq!(client.join().unwrap(), 2);
    });
}
