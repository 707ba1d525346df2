//! examples/resp-server, in process: a small RESP client written here talks
//! to the server over real sockets on 127.0.0.1 and checks each command
//! family, Redis's error replies, pipelining, inline requests, and that
//! malformed or over-long input closes only the connection that sent it.

mod util;

#[allow(dead_code)]
#[path = "../examples/resp-server/commands.rs"]
mod commands;
#[allow(dead_code)]
#[path = "../examples/resp-server/protocol.rs"]
mod protocol;
#[allow(dead_code)]
#[path = "../examples/resp-server/server.rs"]
mod server;

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::SocketAddr;

use runtime::net::{StreamServer, TcpStream};
use util::{PATIENCE, ms};

/// A RESP2 reply.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Reply {
    Simple(String),
    Error(String),
    Int(i64),
    Bulk(Option<Vec<u8>>),
    Array(Option<Vec<Reply>>),
}

fn ok() -> Reply {
    Reply::Simple("OK".into())
}

fn bulk(s: &str) -> Reply {
    Reply::Bulk(Some(s.as_bytes().to_vec()))
}

fn nil() -> Reply {
    Reply::Bulk(None)
}

fn err(s: &str) -> Reply {
    Reply::Error(s.into())
}

fn array(items: &[&str]) -> Reply {
    Reply::Array(Some(items.iter().map(|s| bulk(s)).collect()))
}

/// A minimal blocking RESP client over our `TcpStream`.
struct Client {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Client {
    fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(PATIENCE)).unwrap();
        Client { writer: stream.try_clone().unwrap(), reader: BufReader::new(stream) }
    }

    /// Encodes a request as a multibulk array.
    fn encode(args: &[&[u8]], out: &mut Vec<u8>) {
        out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
        for arg in args {
            out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
            out.extend_from_slice(arg);
            out.extend_from_slice(b"\r\n");
        }
    }

    fn send_raw(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).unwrap();
    }

    /// Sends one command and reads its reply.
    fn cmd(&mut self, args: &[&str]) -> Reply {
        let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        self.cmd_bytes(&args)
    }

    fn cmd_bytes(&mut self, args: &[&[u8]]) -> Reply {
        let mut request = Vec::new();
        Client::encode(args, &mut request);
        self.send_raw(&request);
        self.read().expect("a reply")
    }

    fn line(&mut self) -> std::io::Result<String> {
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            return Err(ErrorKind::UnexpectedEof.into());
        }
        assert!(line.ends_with("\r\n"), "a reply line ends with CRLF: {line:?}");
        line.truncate(line.len() - 2);
        Ok(line)
    }

    fn read(&mut self) -> std::io::Result<Reply> {
        let line = self.line()?;
        let (kind, rest) = line.split_at(1);
        Ok(match kind {
            "+" => Reply::Simple(rest.into()),
            "-" => Reply::Error(rest.into()),
            ":" => Reply::Int(rest.parse().unwrap()),
            "$" => match rest.parse::<i64>().unwrap() {
                -1 => Reply::Bulk(None),
                len => {
                    let mut data = vec![0; len as usize + 2];
                    self.reader.read_exact(&mut data)?;
                    assert_eq!(&data[len as usize..], b"\r\n");
                    data.truncate(len as usize);
                    Reply::Bulk(Some(data))
                }
            },
            "*" => match rest.parse::<i64>().unwrap() {
                -1 => Reply::Array(None),
                len => Reply::Array(Some((0..len).map(|_| self.read()).collect::<Result<_, _>>()?)),
            },
            _ => panic!("not a RESP reply: {line:?}"),
        })
    }

    /// Whether the server closed the connection (after any replies already
    /// read).
    fn closed(&mut self) -> bool {
        let mut rest = Vec::new();
        match self.reader.read_to_end(&mut rest) {
            Ok(_) => rest.is_empty(),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => true,
            Err(e) => panic!("expected the connection to be closed: {e}"),
        }
    }
}

/// Runs `test` against a fresh server.
fn with_server(test: impl FnOnce(SocketAddr) + 'static) {
    util::run(|| {
        let server = server::start(StreamServer::bind("127.0.0.1:0").unwrap()).unwrap();
        test(server.local_addr().unwrap());
        server.stop(ms(100));
    });
}

#[test]
fn strings_and_counters() {
    with_server(|addr| {
        let mut c = Client::connect(addr);
        assert_eq!(c.cmd(&["PING"]), Reply::Simple("PONG".into()));
        assert_eq!(c.cmd(&["ping", "hi"]), bulk("hi"));
        assert_eq!(c.cmd(&["ECHO", "hello world"]), bulk("hello world"));
        assert_eq!(c.cmd(&["GET", "k"]), nil());
        assert_eq!(c.cmd(&["SET", "k", "v1"]), ok());
        assert_eq!(c.cmd(&["get", "k"]), bulk("v1"));
        assert_eq!(c.cmd(&["SET", "k", "v2", "NX"]), nil());
        assert_eq!(c.cmd(&["SET", "k", "v2", "XX"]), ok());
        assert_eq!(c.cmd(&["SET", "other", "x", "XX"]), nil());
        assert_eq!(c.cmd(&["SET", "other", "x", "nx"]), ok());
        assert_eq!(c.cmd(&["SET", "k", "v3", "GET"]), bulk("v2"));
        assert_eq!(c.cmd(&["GET", "k"]), bulk("v3"));
        // Binary-safe values.
        let binary: Vec<u8> = (0..=255).collect();
        assert_eq!(c.cmd_bytes(&[b"SET", b"bin", &binary]), ok());
        assert_eq!(c.cmd(&["GET", "bin"]), Reply::Bulk(Some(binary)));
        assert_eq!(c.cmd(&["EXISTS", "k", "k", "missing", "other"]), Reply::Int(3));
        assert_eq!(c.cmd(&["DEL", "k", "missing", "other"]), Reply::Int(2));
        assert_eq!(c.cmd(&["EXISTS", "k"]), Reply::Int(0));

        assert_eq!(c.cmd(&["INCR", "n"]), Reply::Int(1));
        assert_eq!(c.cmd(&["INCRBY", "n", "41"]), Reply::Int(42));
        assert_eq!(c.cmd(&["DECR", "n"]), Reply::Int(41));
        assert_eq!(c.cmd(&["DECRBY", "n", "-9"]), Reply::Int(50));
        assert_eq!(c.cmd(&["GET", "n"]), bulk("50"));
        assert_eq!(c.cmd(&["SET", "max", &i64::MAX.to_string()]), ok());
        assert_eq!(c.cmd(&["INCR", "max"]), err("ERR increment or decrement would overflow"));

        assert_eq!(c.cmd(&["MSET", "a", "1", "b", "2"]), ok());
        assert_eq!(c.cmd(&["MGET", "a", "missing", "b"]), Reply::Array(Some(vec![bulk("1"), nil(), bulk("2")])));
        assert_eq!(c.cmd(&["DBSIZE"]), Reply::Int(5));
        assert_eq!(c.cmd(&["FLUSHALL"]), ok());
        assert_eq!(c.cmd(&["DBSIZE"]), Reply::Int(0));
    });
}

#[test]
fn lists() {
    with_server(|addr| {
        let mut c = Client::connect(addr);
        assert_eq!(c.cmd(&["LPUSH", "l", "b", "a"]), Reply::Int(2));
        assert_eq!(c.cmd(&["RPUSH", "l", "c", "d", "e"]), Reply::Int(5));
        assert_eq!(c.cmd(&["LLEN", "l"]), Reply::Int(5));
        assert_eq!(c.cmd(&["LRANGE", "l", "0", "-1"]), array(&["a", "b", "c", "d", "e"]));
        assert_eq!(c.cmd(&["LRANGE", "l", "-2", "100"]), array(&["d", "e"]));
        assert_eq!(c.cmd(&["LRANGE", "l", "3", "1"]), array(&[]));
        assert_eq!(c.cmd(&["LPOP", "l"]), bulk("a"));
        assert_eq!(c.cmd(&["RPOP", "l"]), bulk("e"));
        assert_eq!(c.cmd(&["LPOP", "l", "2"]), array(&["b", "c"]));
        assert_eq!(c.cmd(&["RPOP", "l", "5"]), array(&["d"]));
        // The last pop removed the key.
        assert_eq!(c.cmd(&["EXISTS", "l"]), Reply::Int(0));
        assert_eq!(c.cmd(&["LPOP", "l"]), nil());
        assert_eq!(c.cmd(&["LPOP", "l", "2"]), Reply::Array(None));
        assert_eq!(c.cmd(&["LLEN", "l"]), Reply::Int(0));
        assert_eq!(c.cmd(&["LRANGE", "l", "0", "-1"]), array(&[]));
    });
}

#[test]
fn expiry() {
    with_server(|addr| {
        let mut c = Client::connect(addr);
        assert_eq!(c.cmd(&["SET", "k", "v", "EX", "100"]), ok());
        let Reply::Int(ttl) = c.cmd(&["TTL", "k"]) else { panic!("TTL is an integer") };
        assert!((1..=100).contains(&ttl), "TTL {ttl}");
        assert_eq!(c.cmd(&["SET", "k", "v"]), ok());
        assert_eq!(c.cmd(&["TTL", "k"]), Reply::Int(-1), "SET without options clears the time to live");
        assert_eq!(c.cmd(&["TTL", "missing"]), Reply::Int(-2));
        assert_eq!(c.cmd(&["EXPIRE", "k", "100"]), Reply::Int(1));
        assert_eq!(c.cmd(&["EXPIRE", "k", "50", "GT"]), Reply::Int(0));
        assert_eq!(c.cmd(&["EXPIRE", "missing", "100"]), Reply::Int(0));
        assert_eq!(c.cmd(&["PERSIST", "k"]), Reply::Int(1));
        assert_eq!(c.cmd(&["TTL", "k"]), Reply::Int(-1));
        // A key expires when its time is up, read or not.
        assert_eq!(c.cmd(&["SET", "short", "v", "PX", "20"]), ok());
        util::wait_until("the key to expire", || c.cmd(&["GET", "short"]) == nil());
        for i in 0..100 {
            assert_eq!(c.cmd(&["SET", &format!("tmp{i}"), "v", "PX", "20"]), ok());
        }
        assert_eq!(c.cmd(&["EXPIRE", "k", "0"]), Reply::Int(1), "a past deadline deletes");
        util::wait_until("the sweeper to remove unread expired keys", || c.cmd(&["DBSIZE"]) == Reply::Int(0));
    });
}

#[test]
fn server_queries_and_quit() {
    with_server(|addr| {
        let mut c = Client::connect(addr);
        assert_eq!(
            c.cmd(&["CONFIG", "GET", "save"]),
            Reply::Array(Some(vec![bulk("save"), bulk("")])),
            "what redis-benchmark asks first"
        );
        assert_eq!(c.cmd(&["CONFIG", "GET", "append*"]), array(&["appendonly", "no"]));
        assert!(matches!(c.cmd(&["COMMAND", "COUNT"]), Reply::Int(n) if n > 20));
        assert_eq!(c.cmd(&["COMMAND", "DOCS"]), array(&[]));
        assert_eq!(c.cmd(&["SELECT", "0"]), ok());
        assert_eq!(c.cmd(&["QUIT"]), ok());
        assert!(c.closed());
    });
}

#[test]
fn errors_match_redis() {
    with_server(|addr| {
        let mut c = Client::connect(addr);
        assert_eq!(c.cmd(&["FOO"]), err("ERR unknown command 'FOO', with args beginning with: "));
        assert_eq!(
            c.cmd(&["frob", "a", "b c"]),
            err("ERR unknown command 'frob', with args beginning with: 'a' 'b c' ")
        );
        assert_eq!(c.cmd(&["GET"]), err("ERR wrong number of arguments for 'get' command"));
        assert_eq!(c.cmd(&["set", "k"]), err("ERR wrong number of arguments for 'set' command"));
        assert_eq!(c.cmd(&["MSET", "a", "1", "b"]), err("ERR wrong number of arguments for 'mset' command"));
        assert_eq!(c.cmd(&["CONFIG", "GET"]), err("ERR wrong number of arguments for 'config|get' command"));
        assert_eq!(c.cmd(&["RPUSH", "list", "x"]), Reply::Int(1));
        let wrongtype = err("WRONGTYPE Operation against a key holding the wrong kind of value");
        assert_eq!(c.cmd(&["GET", "list"]), wrongtype);
        assert_eq!(c.cmd(&["INCR", "list"]), wrongtype);
        assert_eq!(c.cmd(&["SET", "s", "hello"]), ok());
        assert_eq!(c.cmd(&["LPUSH", "s", "x"]), wrongtype);
        assert_eq!(c.cmd(&["LRANGE", "s", "0", "1"]), wrongtype);
        let not_integer = err("ERR value is not an integer or out of range");
        assert_eq!(c.cmd(&["INCR", "s"]), not_integer);
        assert_eq!(c.cmd(&["INCRBY", "n", "1.5"]), not_integer);
        assert_eq!(c.cmd(&["SET", "n", "01"]), ok());
        assert_eq!(c.cmd(&["INCR", "n"]), not_integer, "no leading zeros, as in Redis");
        assert_eq!(c.cmd(&["LRANGE", "list", "a", "1"]), not_integer);
        assert_eq!(c.cmd(&["EXPIRE", "s", "soon"]), not_integer);
        assert_eq!(c.cmd(&["SET", "k", "v", "EX", "ten"]), not_integer);
        assert_eq!(c.cmd(&["SET", "k", "v", "EX", "0"]), err("ERR invalid expire time in 'set' command"));
        let syntax = err("ERR syntax error");
        assert_eq!(c.cmd(&["SET", "k", "v", "NX", "XX"]), syntax);
        assert_eq!(c.cmd(&["SET", "k", "v", "EX"]), syntax);
        assert_eq!(c.cmd(&["SET", "k", "v", "BOGUS"]), syntax);
        // Errors leave the connection usable.
        assert_eq!(c.cmd(&["GET", "s"]), bulk("hello"));
    });
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    with_server(|addr| {
        let mut c = Client::connect(addr);
        let mut batch = Vec::new();
        for i in 0..1000 {
            let value = i.to_string();
            Client::encode(&[b"INCR", b"counter"], &mut batch);
            Client::encode(&[b"SET", format!("key{i}").as_bytes(), value.as_bytes()], &mut batch);
            Client::encode(&[b"GET", format!("key{i}").as_bytes()], &mut batch);
            Client::encode(&[b"NOPE"], &mut batch);
        }
        c.send_raw(&batch); // one write of about 60 KiB
        for i in 0..1000 {
            assert_eq!(c.read().unwrap(), Reply::Int(i + 1));
            assert_eq!(c.read().unwrap(), ok());
            assert_eq!(c.read().unwrap(), bulk(&i.to_string()));
            assert_eq!(c.read().unwrap(), err("ERR unknown command 'NOPE', with args beginning with: "));
        }
        // A value larger than the read buffer, arriving in many reads.
        let big = vec![b'x'; 3 << 20];
        assert_eq!(c.cmd_bytes(&[b"SET", b"big", &big]), ok());
        assert_eq!(c.cmd(&["GET", "big"]), Reply::Bulk(Some(big)));
        assert_eq!(c.cmd(&["GET", "key999"]), bulk("999"));
    });
}

#[test]
fn inline_requests() {
    with_server(|addr| {
        let mut c = Client::connect(addr);
        c.send_raw(b"PING\r\nset greeting \"hello world\\n\"\r\nGET greeting\nset 'it''s' x\r\n\r\nRPUSH l a b\r\n");
        assert_eq!(c.read().unwrap(), Reply::Simple("PONG".into()));
        assert_eq!(c.read().unwrap(), ok());
        assert_eq!(c.read().unwrap(), bulk("hello world\n"));
        assert_eq!(c.read().unwrap(), err("ERR Protocol error: unbalanced quotes in request"));
        assert!(c.closed(), "a protocol error closes the connection");
        let mut c = Client::connect(addr);
        c.send_raw(b"  RPUSH l a 'b c' \r\nLRANGE   l 0 -1\r\n");
        assert_eq!(c.read().unwrap(), Reply::Int(2));
        assert_eq!(c.read().unwrap(), array(&["a", "b c"]));
    });
}

#[test]
fn bad_input_closes_only_that_connection() {
    with_server(|addr| {
        let mut bystander = Client::connect(addr);
        assert_eq!(bystander.cmd(&["SET", "k", "v"]), ok());
        let cases: &[(&[u8], &str)] = &[
            (b"*1\r\n$536870913\r\n", "invalid bulk length"),
            (b"*1\r\n$-1\r\n", "invalid bulk length"),
            (b"*2\r\n$3\r\nGET\r\n$x\r\n", "invalid bulk length"),
            (b"*1\r\nGET\r\n", "expected '$', got 'G'"),
            (b"*abc\r\n", "invalid multibulk length"),
            (b"*3000000000\r\n", "invalid multibulk length"),
        ];
        for (input, error) in cases {
            let mut c = Client::connect(addr);
            c.send_raw(input);
            assert_eq!(c.read().unwrap(), err(&format!("ERR Protocol error: {error}")), "{input:?}");
            assert!(c.closed(), "{input:?}");
        }
        // Over-long lines: the server refuses them after 64 KiB, whatever
        // follows (the client may still be sending when it closes).
        let long_lines: &[(Vec<u8>, &str)] = &[
            ([&b"*1\r\n$"[..], &[b'1'; 100_000]].concat(), "too big bulk count string"),
            ([&b"*"[..], &[b'1'; 100_000]].concat(), "too big mbulk count string"),
            (vec![b'x'; 100_000], "too big inline request"),
        ];
        for (input, error) in long_lines {
            let mut c = Client::connect(addr);
            let writer = c.writer.try_clone().unwrap();
            let input = input.clone();
            let sender = runtime::spawn(move || (&writer).write_all(&input));
            assert_eq!(c.read().unwrap(), err(&format!("ERR Protocol error: {error}")));
            assert!(c.closed());
            let _ = sender.join();
        }
        // The others are still served, old and new.
        assert_eq!(bystander.cmd(&["GET", "k"]), bulk("v"));
        assert_eq!(Client::connect(addr).cmd(&["GET", "k"]), bulk("v"));
    });
}

#[test]
fn many_connections_share_one_store() {
    with_server(|addr| {
        let clients: Vec<_> = (0..50)
            .map(|i| {
                runtime::spawn(move || {
                    let mut c = Client::connect(addr);
                    for _ in 0..100 {
                        assert!(matches!(c.cmd(&["INCR", "shared"]), Reply::Int(_)));
                        assert!(matches!(c.cmd(&["RPUSH", "log", &i.to_string()]), Reply::Int(_)));
                    }
                })
            })
            .collect();
        for client in clients {
            client.join().unwrap();
        }
        let mut c = Client::connect(addr);
        assert_eq!(c.cmd(&["GET", "shared"]), bulk("5000"));
        assert_eq!(c.cmd(&["LLEN", "log"]), Reply::Int(5000));
    });
}
