//! hyper's HTTP/1 client (the `tokio-io` feature, through hyper-util's
//! `TokioIo`) on our `TcpStream`, inside `runtime::block_on`, against
//! examples/http-hello's server running in process on the same hub: several
//! requests on one keep-alive connection, many clients at once, and the
//! connection handed back to blocking code afterwards.

mod util;

#[allow(dead_code)]
#[path = "../examples/http-hello/hello.rs"]
mod hello;

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::{self, SendRequest};
use hyper::{Method, Request, StatusCode, header};
use hyper_util::rt::TokioIo;
use runtime::net::{ServerHandle, StreamServer, TcpStream};

/// examples/http-hello's server, on a free port of 127.0.0.1.
fn start_server() -> (ServerHandle, SocketAddr) {
    let server = StreamServer::bind("127.0.0.1:0").unwrap().name("http");
    let addr = server.local_addr().unwrap();
    (server.start(hello::serve).unwrap(), addr)
}

type Sender = SendRequest<Full<Bytes>>;

/// Connects and does hyper's handshake; the connection is driven by a
/// greenlet of its own (`spawn` + `block_on`), which finishes once the
/// sender is dropped.
fn connect(addr: SocketAddr) -> (Sender, runtime::JoinHandle<hyper::Result<()>>) {
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_nodelay(true).unwrap();
    let (sender, connection) = runtime::block_on(http1::handshake(TokioIo::new(stream))).unwrap();
    let driver = runtime::spawn(move || runtime::block_on(connection));
    (sender, driver)
}

/// Sends one request and returns the status, the `Connection` header and
/// the body.
async fn send(
    sender: &mut Sender,
    addr: SocketAddr,
    method: Method,
    body: &'static [u8],
) -> (StatusCode, String, Bytes) {
    sender.ready().await.unwrap();
    let request = Request::builder()
        .method(method)
        .uri("/hello")
        .header(header::HOST, addr.to_string())
        .body(Full::new(Bytes::from_static(body)))
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    let status = response.status();
    let connection = response.headers().get(header::CONNECTION).map_or("", |v| v.to_str().unwrap()).to_owned();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, connection, body)
}

#[test]
fn several_requests_on_one_keep_alive_connection() {
    util::run(|| {
        let (server, addr) = start_server();
        let (mut sender, driver) = connect(addr);
        runtime::block_on(async {
            for round in 0..5 {
                let (status, connection, body) = send(&mut sender, addr, Method::GET, b"").await;
                assert_eq!(status, StatusCode::OK, "request {round}");
                assert_eq!(connection, "keep-alive", "request {round}");
                assert_eq!(body, hello::BODY, "request {round}");
            }
            // A body (read and ignored by the server), and a HEAD request.
            let (status, _, body) = send(&mut sender, addr, Method::POST, b"some=data").await;
            assert_eq!((status, &body[..]), (StatusCode::OK, hello::BODY));
            let (status, _, body) = send(&mut sender, addr, Method::HEAD, b"").await;
            assert_eq!((status, body.len()), (StatusCode::OK, 0));
        });
        // All of it went over the one connection.
        assert_eq!(server.connections(), 1);
        drop(sender);
        driver.join().unwrap().unwrap();
        server.stop(Duration::from_secs(1));
    });
}

#[test]
fn fifty_hyper_clients_at_once_on_one_hub() {
    const CLIENTS: usize = 50;
    const REQUESTS: usize = 10;
    util::run(|| {
        let (server, addr) = start_server();
        let clients: Vec<_> = (0..CLIENTS)
            .map(|_| {
                runtime::spawn(move || {
                    let (mut sender, driver) = connect(addr);
                    let ok = runtime::block_on(async {
                        let mut ok = 0;
                        for _ in 0..REQUESTS {
                            let (status, _, body) = send(&mut sender, addr, Method::GET, b"").await;
                            assert_eq!(status, StatusCode::OK);
                            assert_eq!(body, hello::BODY);
                            ok += 1;
                            // Let the others interleave between requests too.
                            runtime::yield_now();
                        }
                        ok
                    });
                    drop(sender);
                    driver.join().unwrap().unwrap();
                    ok
                })
            })
            .collect();
        let ok: usize = clients.into_iter().map(|client| client.join().unwrap()).sum();
        assert_eq!(ok, CLIENTS * REQUESTS);
        server.stop(Duration::from_secs(1));
    });
}

#[test]
fn a_connection_goes_back_to_blocking_code_after_hyper() {
    util::run(|| {
        let (server, addr) = start_server();
        let stream = TcpStream::connect(addr).unwrap();
        let (mut sender, connection) = runtime::block_on(http1::handshake(TokioIo::new(stream))).unwrap();
        // Driven without shutting down, so the socket can be taken back.
        let driver = runtime::spawn(move || runtime::block_on(connection.without_shutdown()));
        runtime::block_on(async {
            let (status, _, body) = send(&mut sender, addr, Method::GET, b"").await;
            assert_eq!((status, &body[..]), (StatusCode::OK, hello::BODY));
        });
        drop(sender);
        let parts = driver.join().unwrap().unwrap();
        assert!(parts.read_buf.is_empty());
        let mut stream = parts.io.into_inner();
        // Plain blocking I/O on the same socket, same connection.
        stream.write_all(b"GET / HTTP/1.1\r\nHost: here\r\nConnection: close\r\n\r\n").unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
        assert!(response.ends_with("\r\n\r\nHello, world!\n"), "{response}");
        drop(stream);
        server.stop(Duration::from_secs(1));
    });
}
