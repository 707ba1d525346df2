//! The server's logic: parse requests with `httparse`, answer each with
//! `Hello, world!`, keep connections alive. `main.rs` runs [`serve`] for each
//! connection of a `StreamServer`; tests/hyper_client.rs does too, in
//! process.

use std::cell::RefCell;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use runtime::net::TcpStream;

/// The body of every successful answer.
pub const BODY: &[u8] = b"Hello, world!\n";

/// The most bytes a request head (request line and headers) may take; the
/// connection's read buffer is this big.
const MAX_HEAD: usize = 8 * 1024;
/// The most headers a request may have.
const MAX_HEADERS: usize = 64;
/// How long a connection may stay silent (between requests or inside one).
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// What the start of the buffer holds.
#[derive(Debug)]
enum Parsed {
    /// The beginning of a request: read more.
    Partial,
    Request {
        /// Bytes taken by the request line and headers.
        head_len: usize,
        /// Bytes of body that follow (read and ignored).
        body_len: usize,
        keep_alive: bool,
        /// A `HEAD` request: the answer has no body.
        head_only: bool,
    },
    /// An error to answer with before closing the connection.
    Error(u16),
}

fn parse(bytes: &[u8]) -> Parsed {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    let head_len = match request.parse(bytes) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Parsed::Partial,
        Err(httparse::Error::TooManyHeaders) => return Parsed::Error(431),
        Err(_) => return Parsed::Error(400),
    };
    // A complete request has a method and a version.
    let http11 = request.version == Some(1);
    let (mut close, mut keep_alive_token) = (false, false);
    let mut body_len = None;
    for header in request.headers.iter() {
        let value = std::str::from_utf8(header.value).unwrap_or("");
        if header.name.eq_ignore_ascii_case("connection") {
            for token in value.split(',').map(str::trim) {
                close |= token.eq_ignore_ascii_case("close");
                keep_alive_token |= token.eq_ignore_ascii_case("keep-alive");
            }
        } else if header.name.eq_ignore_ascii_case("content-length") {
            match (value.trim().parse::<usize>(), body_len) {
                // Several Content-Length headers must agree.
                (Ok(len), None) => body_len = Some(len),
                (Ok(len), Some(previous)) if len == previous => {}
                _ => return Parsed::Error(400),
            }
        } else if header.name.eq_ignore_ascii_case("transfer-encoding") {
            // Chunked bodies are not worth the code here.
            return Parsed::Error(501);
        }
    }
    Parsed::Request {
        head_len,
        body_len: body_len.unwrap_or(0),
        keep_alive: !close && (http11 || keep_alive_token),
        head_only: request.method == Some("HEAD"),
    }
}

/// Appends a response to `out`.
fn respond(out: &mut Vec<u8>, status: u16, keep_alive: bool, head_only: bool) {
    let (reason, body): (&str, &[u8]) = match status {
        200 => ("OK", BODY),
        400 => ("Bad Request", b"Bad Request\n"),
        431 => ("Request Header Fields Too Large", b"Request Header Fields Too Large\n"),
        _ => ("Not Implemented", b"Not Implemented\n"),
    };
    let connection = if keep_alive { "keep-alive" } else { "close" };
    DATE.with_borrow_mut(|date| {
        write!(
            out,
            "HTTP/1.1 {status} {reason}\r\nDate: {}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\
             Connection: {connection}\r\n\r\n",
            date.now(),
            body.len()
        )
        .expect("writing to a Vec cannot fail");
    });
    if !head_only {
        out.extend_from_slice(body);
    }
}

/// Serves the requests of one connection until it closes.
pub fn serve(stream: TcpStream, peer: SocketAddr) {
    tracing::debug!(%peer, "connected");
    let result = stream
        .set_read_timeout(Some(IDLE_TIMEOUT))
        .and_then(|()| stream.set_write_timeout(Some(IDLE_TIMEOUT)))
        .and_then(|()| serve_requests(&stream));
    match result {
        Ok(()) => tracing::debug!(%peer, "closed"),
        Err(err) => tracing::debug!(%peer, "closed: {err}"),
    }
}

fn serve_requests(mut stream: &TcpStream) -> io::Result<()> {
    // `buf[..len]` holds what was read and not handled yet.
    let mut buf = vec![0; MAX_HEAD];
    let mut len = 0;
    // Body bytes still to skip, of a request already answered.
    let mut skip = 0;
    let mut out = Vec::with_capacity(1024);
    loop {
        // Answer every complete request in the buffer.
        let mut start = 0;
        let mut close = false;
        loop {
            let skipped = skip.min(len - start);
            start += skipped;
            skip -= skipped;
            if skip > 0 {
                break;
            }
            match parse(&buf[start..len]) {
                Parsed::Partial => break,
                Parsed::Request { head_len, body_len, keep_alive, head_only } => {
                    respond(&mut out, 200, keep_alive, head_only);
                    start += head_len;
                    skip = body_len;
                    if !keep_alive {
                        close = true;
                        break;
                    }
                }
                Parsed::Error(status) => {
                    tracing::debug!(status, "bad request");
                    respond(&mut out, status, false, false);
                    close = true;
                    break;
                }
            }
        }
        // Keep the unfinished request, at the start of the buffer.
        buf.copy_within(start..len, 0);
        len -= start;
        if !close && len == buf.len() {
            tracing::debug!("request head too large");
            respond(&mut out, 431, false, false);
            close = true;
        }
        if !out.is_empty() {
            stream.write_all(&out)?;
            out.clear();
        }
        if close {
            return close_gracefully(stream);
        }
        match stream.read(&mut buf[len..]) {
            Ok(0) => return Ok(()),
            Ok(n) => len += n,
            Err(err) if err.kind() == io::ErrorKind::TimedOut => return Ok(()), // idle
            Err(err) => return Err(err),
        }
    }
}

/// Closes after a last response. Closing a socket with unread input makes the
/// kernel send a reset, which can destroy the response before the client
/// reads it; so this stops sending, then reads and drops whatever the client
/// still sends, until it closes too (for at most a second).
fn close_gracefully(mut stream: &TcpStream) -> io::Result<()> {
    stream.shutdown(Shutdown::Write)?;
    let _ = runtime::timeout(Duration::from_secs(1), || {
        let mut sink = [0; 1024];
        while let Ok(1..) = stream.read(&mut sink) {}
    });
    Ok(())
}

/// The `Date` header's value, formatted once a second.
struct DateCache {
    second: u64,
    text: String,
}

thread_local! {
    // Per thread: all the connections of a hub share one.
    static DATE: RefCell<DateCache> = const { RefCell::new(DateCache { second: u64::MAX, text: String::new() }) };
}

impl DateCache {
    fn now(&mut self) -> &str {
        let second = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |since| since.as_secs());
        if second != self.second {
            self.second = second;
            self.text = http_date(second);
        }
        &self.text
    }
}

/// Formats seconds since the Unix epoch as an HTTP date
/// (`Sun, 06 Nov 1994 08:49:37 GMT`).
fn http_date(secs: u64) -> String {
    const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"]; // 1970-01-01 was a Thursday
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let (days, time) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's `civil_from_days`, for dates after 1970.
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z % 146_097;
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153; // 0 is March
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 { shifted_month + 2 } else { shifted_month - 10 }; // 0 is January
    let year = era * 400 + year_of_era + u64::from(month < 2);
    format!(
        "{}, {day:02} {} {year} {:02}:{:02}:{:02} GMT",
        WEEKDAYS[(days % 7) as usize],
        MONTHS[month as usize],
        time / 3600,
        time / 60 % 60,
        time % 60
    )
}
