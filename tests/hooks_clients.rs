//! The `hooks` feature with unmodified blocking client crates, which know
//! nothing of the runtime and do their I/O through `std::net`: many
//! greenlets at once on one hub, each against a server of this project on
//! 127.0.0.1 running on the same hub.
//!
//! - `ureq` against examples/http-hello's server logic;
//! - `tungstenite`, client and server both over `std::net`;
//! - `redis` (the crate) against examples/resp-server.

mod util;

#[allow(dead_code)]
#[path = "../examples/http-hello/hello.rs"]
mod hello;

#[allow(dead_code)]
#[path = "../examples/resp-server/commands.rs"]
mod commands;
#[allow(dead_code)]
#[path = "../examples/resp-server/protocol.rs"]
mod protocol;
#[allow(dead_code)]
#[path = "../examples/resp-server/server.rs"]
mod server;

use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use runtime::net::StreamServer;
use tungstenite::Message;

/// Greenlets making requests at once.
const CLIENTS: usize = 50;
/// Requests each makes.
const REQUESTS: usize = 10;

/// Stack size of the client greenlets: the crates were written for threads'
/// stacks (ureq's request path takes more than the default 64 KiB in a debug
/// build).
const STACK: usize = 1 << 20;

/// Runs `CLIENTS` greenlets of `client(i)` at once and joins them all; all
/// on this thread.
fn in_parallel(client: impl Fn(usize) + Clone + 'static) {
    let thread = std::thread::current().id();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let client = client.clone();
            runtime::task::Builder::new().stack_size(STACK).spawn(move || {
                client(i);
                std::thread::current().id()
            })
        })
        .collect();
    for client in clients {
        assert_eq!(client.join().unwrap(), thread);
    }
}

#[test]
fn ureq_against_http_hello() {
    util::run(|| {
        let server = StreamServer::bind("127.0.0.1:0").unwrap().name("http");
        let addr = server.local_addr().unwrap();
        let server = server.start(hello::serve).unwrap();
        in_parallel(move |i| {
            let agent = ureq::Agent::new_with_defaults();
            for request in 0..REQUESTS {
                let url = format!("http://{addr}/client/{i}/request/{request}");
                let mut response = agent.get(&url).call().unwrap();
                assert_eq!(response.status(), 200);
                assert_eq!(response.body_mut().read_to_string().unwrap(), "Hello, world!\n");
            }
        });
        server.stop(Duration::from_secs(1));
    });
}

#[test]
fn tungstenite_client_and_server_over_std_net() {
    util::run(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        // The server: tungstenite's `accept` on std::net, one greenlet per
        // connection, echoing until the close handshake.
        let acceptor = runtime::spawn(move || {
            for _ in 0..CLIENTS {
                let (stream, _) = listener.accept().unwrap();
                runtime::spawn(move || {
                    let mut ws = tungstenite::accept(stream).unwrap();
                    loop {
                        match ws.read() {
                            Ok(message @ (Message::Text(_) | Message::Binary(_))) => ws.send(message).unwrap(),
                            Ok(_) => {}
                            Err(tungstenite::Error::ConnectionClosed) => break,
                            Err(err) => panic!("server: {err}"),
                        }
                    }
                });
            }
        });
        in_parallel(move |i| {
            let stream = TcpStream::connect(addr).unwrap();
            let (mut ws, response) = tungstenite::client(format!("ws://{addr}/echo/{i}"), stream).unwrap();
            assert_eq!(response.status(), 101);
            for round in 0..REQUESTS {
                let text = format!("greenlet {i} round {round}");
                ws.send(Message::text(text.clone())).unwrap();
                assert_eq!(ws.read().unwrap(), Message::text(text));
                let data: Vec<u8> = (0..1000 + i * 10 + round).map(|b| (b ^ i) as u8).collect();
                ws.send(Message::binary(data.clone())).unwrap();
                assert_eq!(ws.read().unwrap(), Message::binary(data));
            }
            ws.close(None).unwrap();
            loop {
                match ws.read() {
                    Ok(_) => {}
                    Err(tungstenite::Error::ConnectionClosed) => break,
                    Err(err) => panic!("client: {err}"),
                }
            }
        });
        acceptor.join().unwrap();
    });
}

#[test]
fn redis_against_resp_server() {
    util::run(|| {
        let server = StreamServer::bind("127.0.0.1:0").unwrap().name("resp");
        let addr = server.local_addr().unwrap();
        let server = server::start(server).unwrap();
        in_parallel(move |i| {
            let client = redis::Client::open(format!("redis://{addr}/")).unwrap();
            let mut connection = client.get_connection().unwrap();
            for request in 0..REQUESTS {
                let key = format!("key:{i}:{request}");
                let value = format!("value {i} {request}");
                let () = redis::cmd("SET").arg(&key).arg(&value).query(&mut connection).unwrap();
                let got: String = redis::cmd("GET").arg(&key).query(&mut connection).unwrap();
                assert_eq!(got, value);
                let count: i64 = redis::cmd("INCR").arg(format!("counter:{i}")).query(&mut connection).unwrap();
                assert_eq!(count, request as i64 + 1);
            }
            let (a, b): (String, i64) = redis::pipe()
                .cmd("GET")
                .arg(format!("key:{i}:0"))
                .cmd("GET")
                .arg(format!("counter:{i}"))
                .query(&mut connection)
                .unwrap();
            assert_eq!((a.as_str(), b), (format!("value {i} 0").as_str(), REQUESTS as i64));
        });
        server.stop(Duration::from_secs(1));
    });
}
