//! PostgreSQL from greenlets, the cooperative way: `tokio-postgres` over
//! `runtime::net::TcpStream` (the `tokio-io` feature), each future driven by
//! `runtime::block_on`. Every client is a greenlet with a connection of its
//! own; while one waits for the server, the others and a ticker run.
//!
//! ```text
//! scripts/check-postgres.sh       # starts a throwaway server, runs this against it
//! cargo run --release --features tokio-io --example postgres -- --addr 127.0.0.1:5432 --user postgres
//! ```
//!
//! It checks what it prints and exits with status 1 on any mismatch:
//!
//! 1. `--clients` greenlets (8 by default) each insert rows into one table
//!    and wait in `pg_sleep(0.2)` at the same time: together they take about
//!    0.2 s, not `clients` × 0.2 s, and a ticker greenlet keeps ticking;
//! 2. each reads back its own rows;
//! 3. a `runtime::timeout` of 100 ms around `pg_sleep(10)` returns
//!    `Err(Elapsed)`; a cancel request stops the query on the server.
//!
//! Why not the sync `postgres` crate: it runs each call on a tokio runtime of
//! its own inside `block_on`, and tokio refuses two such runtimes on one
//! thread, so two greenlets cannot both be in a call. With `tokio-postgres`,
//! the runtime's own `block_on` drives the futures and every greenlet may
//! wait at once.

#[path = "common/cli.rs"]
mod cli;

use std::cell::Cell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use runtime::net::TcpStream;
use tokio_postgres::{Client, Config, NoTls};

struct Args {
    addr: SocketAddr,
    user: String,
    dbname: String,
    clients: usize,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        addr: "127.0.0.1:5432".parse().unwrap(),
        user: "postgres".into(),
        dbname: "postgres".into(),
        clients: 8,
    };
    let mut argv = std::env::args().skip(1);
    while let Some(arg) = argv.next() {
        let mut value = || argv.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--addr" => {
                let text = value()?;
                args.addr = text.parse().map_err(|_| format!("bad --addr: {text}"))?;
            }
            "--user" => args.user = value()?,
            "--dbname" => args.dbname = value()?,
            "--clients" => {
                let text = value()?;
                args.clients = text.parse().ok().filter(|&n| n > 0).ok_or(format!("bad --clients: {text}"))?;
            }
            "-h" | "--help" => {
                println!(
                    "usage: postgres [--addr HOST:PORT] [--user NAME] [--dbname NAME] [--clients N]\n\n\
                     Runs N concurrent clients against a PostgreSQL server (default 127.0.0.1:5432,\n\
                     user and database postgres, trust or no password) and checks the results."
                );
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument: {other} (try --help)")),
        }
    }
    Ok(args)
}

type Error = Box<dyn std::error::Error>;

/// A client on its own connection; the connection's future runs in a
/// greenlet of its own until the client is dropped.
fn connect(args: &Args) -> Result<Client, Error> {
    let stream = TcpStream::connect(args.addr)?;
    stream.set_nodelay(true)?;
    let mut config = Config::new();
    config.user(&args.user).dbname(&args.dbname);
    let (client, connection) = runtime::block_on(config.connect_raw(stream, NoTls))?;
    runtime::spawn(move || {
        if let Err(err) = runtime::block_on(connection) {
            eprintln!("postgres: connection: {err}");
        }
    });
    Ok(client)
}

/// Client `id`: inserts `rows` rows, waits in the server for 0.2 s, reads
/// its rows back and returns their sum.
fn client_work(client: &Client, id: i32, rows: i32) -> Result<i64, Error> {
    let insert = runtime::block_on(client.prepare("INSERT INTO greenlet_demo (client, value) VALUES ($1, $2)"))?;
    for value in 1..=rows {
        runtime::block_on(client.execute(&insert, &[&id, &value]))?;
    }
    runtime::block_on(client.simple_query("SELECT pg_sleep(0.2)"))?;
    let row = runtime::block_on(
        client.query_one("SELECT COALESCE(SUM(value), 0)::BIGINT FROM greenlet_demo WHERE client = $1", &[&id]),
    )?;
    Ok(row.get(0))
}

fn demo(args: Args) -> Result<(), Error> {
    let setup = connect(&args)?;
    runtime::block_on(setup.batch_execute(
        "SET client_min_messages = warning; DROP TABLE IF EXISTS greenlet_demo; CREATE TABLE greenlet_demo (client INT NOT NULL, value INT NOT NULL)",
    ))?;

    // A ticker: it only runs while the clients' greenlets wait cooperatively.
    let ticks = Rc::new(Cell::new(0u32));
    let ticker = {
        let ticks = ticks.clone();
        runtime::spawn(move || {
            loop {
                runtime::sleep(Duration::from_millis(10));
                ticks.set(ticks.get() + 1);
            }
        })
    };

    let rows = 20;
    let started = Instant::now();
    let clients: Vec<_> = (0..args.clients)
        .map(|id| {
            let client = connect(&args);
            runtime::spawn(move || {
                client.and_then(|client| client_work(&client, id as i32, rows)).map_err(|e| e.to_string())
            })
        })
        .collect();
    let sums = runtime::joinall(clients);
    let elapsed = started.elapsed();
    ticker.kill();
    let expected = i64::from(rows * (rows + 1) / 2);
    for (id, sum) in sums.into_iter().enumerate() {
        let sum = sum.map_err(|e| format!("client {id} panicked: {e}"))??;
        if sum != expected {
            return Err(format!("client {id} read back {sum}, expected {expected}").into());
        }
    }
    let total: i64 = runtime::block_on(setup.query_one("SELECT COUNT(*) FROM greenlet_demo", &[]))?.get(0);
    if total != (args.clients as i64) * i64::from(rows) {
        return Err(format!("{total} rows in the table, expected {}", args.clients as i32 * rows).into());
    }
    println!(
        "{} clients: {} rows written and read back, each client waited 0.2 s in the server; \
         all together took {:.0} ms, and the ticker ticked {} times meanwhile",
        args.clients,
        total,
        elapsed.as_secs_f64() * 1e3,
        ticks.get()
    );
    if ticks.get() == 0 {
        return Err("the ticker never ran: the clients blocked the hub".into());
    }

    // A timeout around a long query: the greenlet unwinds out of
    // `block_on`, and a cancel request stops the query on the server.
    let slow = connect(&args)?;
    let cancel = slow.cancel_token();
    let started = Instant::now();
    let outcome =
        runtime::timeout(Duration::from_millis(100), || runtime::block_on(slow.simple_query("SELECT pg_sleep(10)")));
    if outcome.is_ok() {
        return Err("pg_sleep(10) finished within a 100 ms timeout".into());
    }
    let stream = TcpStream::connect(args.addr)?;
    runtime::block_on(cancel.cancel_query_raw(stream, NoTls))?;
    println!(
        "a 100 ms timeout around pg_sleep(10) returned Err(Elapsed) after {:.0} ms; the query was cancelled",
        started.elapsed().as_secs_f64() * 1e3
    );

    runtime::block_on(setup.batch_execute("DROP TABLE greenlet_demo"))?;
    Ok(())
}

fn main() {
    let args = cli::start("postgres", parse_args);
    let addr = args.addr;
    if let Err(err) = runtime::run(move || demo(args).map_err(|e| e.to_string())) {
        eprintln!("postgres: {err} (server {addr})");
        std::process::exit(1);
    }
}
