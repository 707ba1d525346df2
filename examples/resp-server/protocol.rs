//! RESP2, the Redis protocol: a resumable request parser (multibulk and
//! inline requests) and the reply encoders.
//!
//! The parser never copies a multibulk request: it records where each
//! argument lies in the caller's buffer. It keeps its place inside a request
//! that has not fully arrived, so a large request read in many pieces is
//! parsed once, not once per piece.

use std::fmt;
use std::ops::Range;

/// The longest argument a request may carry (Redis's `proto-max-bulk-len`).
pub const MAX_BULK_LEN: usize = 512 << 20;
/// The longest inline request, or `*`/`$` header line, without its line end.
pub const MAX_LINE_LEN: usize = 64 << 10;
/// The most arguments a request may announce.
pub const MAX_ARGS: usize = 1 << 20;

/// Why a request was refused; the connection is closed after the reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProtocolError {
    TooBigInline,
    TooBigCount,
    TooBigBulkCount,
    InvalidMultibulkLength,
    InvalidBulkLength,
    ExpectedDollar(u8),
    UnbalancedQuotes,
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Redis's wording.
        match self {
            ProtocolError::TooBigInline => f.write_str("too big inline request"),
            ProtocolError::TooBigCount => f.write_str("too big mbulk count string"),
            ProtocolError::TooBigBulkCount => f.write_str("too big bulk count string"),
            ProtocolError::InvalidMultibulkLength => f.write_str("invalid multibulk length"),
            ProtocolError::InvalidBulkLength => f.write_str("invalid bulk length"),
            ProtocolError::ExpectedDollar(got) => write!(f, "expected '$', got '{}'", char::from(*got)),
            ProtocolError::UnbalancedQuotes => f.write_str("unbalanced quotes in request"),
        }
    }
}

/// What [`Parser::parse`] found at the start of the buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// A whole request of this many bytes; its arguments are in
    /// [`Parser::args`] (none for an empty request, which is ignored).
    Request(usize),
    /// The request has not fully arrived. The number is how many bytes (from
    /// the request's start) the buffer must hold before the parser can go
    /// on, when known (a bulk argument's end), or 0.
    Incomplete(usize),
    /// Malformed or over-long input.
    Error(ProtocolError),
}

/// Parses requests one at a time. Feed it the buffered bytes from the start
/// of the current request (the same start until it returns
/// [`Parsed::Request`], more bytes each time).
#[derive(Debug, Default)]
pub struct Parser {
    /// Arguments the current multibulk request announced; 0 between requests.
    expected: usize,
    /// Where (from the request's start) the next argument's header begins.
    pos: usize,
    /// The arguments: ranges of the buffer, or of `inline` for an inline
    /// request.
    args: Vec<Range<usize>>,
    /// The unescaped arguments of an inline request.
    inline: Vec<u8>,
    is_inline: bool,
}

impl Parser {
    pub fn new() -> Parser {
        Parser::default()
    }

    /// Parses the request at the start of `buf`.
    pub fn parse(&mut self, buf: &[u8]) -> Parsed {
        if self.expected == 0 {
            self.args.clear();
            self.is_inline = false;
            let Some(&first) = buf.first() else { return Parsed::Incomplete(0) };
            if first != b'*' {
                return self.parse_inline(buf);
            }
            let Some(line_end) = find_crlf(buf, 1) else {
                return if buf.len() > MAX_LINE_LEN + 1 {
                    Parsed::Error(ProtocolError::TooBigCount)
                } else {
                    Parsed::Incomplete(0)
                };
            };
            let count = match parse_i64(&buf[1..line_end]) {
                Some(n) if n <= MAX_ARGS as i64 => n,
                _ => return Parsed::Error(ProtocolError::InvalidMultibulkLength),
            };
            if count <= 0 {
                // `*0` and `*-1`: an empty request, skipped.
                return Parsed::Request(line_end + 2);
            }
            self.expected = count as usize;
            self.pos = line_end + 2;
            self.args.reserve(self.expected.min(1024));
        }
        while self.args.len() < self.expected {
            let header = self.pos;
            let Some(&first) = buf.get(header) else { return Parsed::Incomplete(0) };
            if first != b'$' {
                return self.fail(ProtocolError::ExpectedDollar(first));
            }
            let Some(line_end) = find_crlf(buf, header + 1) else {
                return if buf.len() - header > MAX_LINE_LEN + 1 {
                    self.fail(ProtocolError::TooBigBulkCount)
                } else {
                    Parsed::Incomplete(0)
                };
            };
            let len = match parse_i64(&buf[header + 1..line_end]) {
                Some(n) if (0..=MAX_BULK_LEN as i64).contains(&n) => n as usize,
                _ => return self.fail(ProtocolError::InvalidBulkLength),
            };
            let start = line_end + 2;
            let end = start + len;
            if buf.len() < end + 2 {
                return Parsed::Incomplete(end + 2);
            }
            self.args.push(start..end);
            self.pos = end + 2;
        }
        self.expected = 0;
        Parsed::Request(self.pos)
    }

    fn fail(&mut self, error: ProtocolError) -> Parsed {
        self.expected = 0;
        Parsed::Error(error)
    }

    /// The arguments of the request [`parse`](Parser::parse) last returned,
    /// given the same buffer.
    pub fn args<'a>(&'a self, buf: &'a [u8]) -> Args<'a> {
        let src = if self.is_inline { &self.inline[..] } else { buf };
        Args { src, ranges: &self.args }
    }

    /// An inline request: one line of space-separated arguments, quoted as
    /// `redis-cli` quotes them.
    fn parse_inline(&mut self, buf: &[u8]) -> Parsed {
        let Some(newline) = buf.iter().position(|&b| b == b'\n') else {
            return if buf.len() > MAX_LINE_LEN {
                Parsed::Error(ProtocolError::TooBigInline)
            } else {
                Parsed::Incomplete(0)
            };
        };
        if newline > MAX_LINE_LEN {
            return Parsed::Error(ProtocolError::TooBigInline);
        }
        let line = buf[..newline].strip_suffix(b"\r").unwrap_or(&buf[..newline]);
        self.is_inline = true;
        self.inline.clear();
        match split_args(line, &mut self.inline, &mut self.args) {
            Ok(()) => Parsed::Request(newline + 1),
            Err(error) => Parsed::Error(error),
        }
    }
}

/// The index of the `\r` of the first `\r\n` at or after `from`.
fn find_crlf(buf: &[u8], from: usize) -> Option<usize> {
    let cr = from + buf.get(from..)?.iter().position(|&b| b == b'\r')?;
    // Redis does not check what follows the `\r` either; it needs to be there.
    (cr + 1 < buf.len()).then_some(cr)
}

/// Splits an inline request line as Redis's `sdssplitargs` does: arguments
/// separated by white space, in double quotes (with C escapes and `\xHH`) or
/// single quotes (with `\'`).
fn split_args(line: &[u8], out: &mut Vec<u8>, args: &mut Vec<Range<usize>>) -> Result<(), ProtocolError> {
    let mut i = 0;
    loop {
        while i < line.len() && line[i].is_ascii_whitespace() {
            i += 1;
        }
        if i == line.len() {
            return Ok(());
        }
        let start = out.len();
        match line[i] {
            b'"' => {
                i += 1;
                loop {
                    match line.get(i) {
                        None => return Err(ProtocolError::UnbalancedQuotes),
                        Some(b'\\') if i + 3 < line.len() && line[i + 1] == b'x' => {
                            match (hex(line[i + 2]), hex(line[i + 3])) {
                                (Some(high), Some(low)) => {
                                    out.push(high << 4 | low);
                                    i += 4;
                                }
                                _ => {
                                    out.push(b'x');
                                    i += 2;
                                }
                            }
                        }
                        Some(b'\\') if i + 1 < line.len() => {
                            out.push(match line[i + 1] {
                                b'n' => b'\n',
                                b'r' => b'\r',
                                b't' => b'\t',
                                b'b' => 8,
                                b'a' => 7,
                                other => other,
                            });
                            i += 2;
                        }
                        Some(b'"') => {
                            // The closing quote must end the argument.
                            if line.get(i + 1).is_some_and(|b| !b.is_ascii_whitespace()) {
                                return Err(ProtocolError::UnbalancedQuotes);
                            }
                            i += 1;
                            break;
                        }
                        Some(&b) => {
                            out.push(b);
                            i += 1;
                        }
                    }
                }
            }
            b'\'' => {
                i += 1;
                loop {
                    match line.get(i) {
                        None => return Err(ProtocolError::UnbalancedQuotes),
                        Some(b'\\') if line.get(i + 1) == Some(&b'\'') => {
                            out.push(b'\'');
                            i += 2;
                        }
                        Some(b'\'') => {
                            if line.get(i + 1).is_some_and(|b| !b.is_ascii_whitespace()) {
                                return Err(ProtocolError::UnbalancedQuotes);
                            }
                            i += 1;
                            break;
                        }
                        Some(&b) => {
                            out.push(b);
                            i += 1;
                        }
                    }
                }
            }
            _ => {
                while i < line.len() && !line[i].is_ascii_whitespace() {
                    out.push(line[i]);
                    i += 1;
                }
            }
        }
        args.push(start..out.len());
    }
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// Parses a decimal integer as strictly as Redis's `string2ll`: an optional
/// `-`, no `+`, no leading zeros, no spaces, within `i64`.
pub fn parse_i64(s: &[u8]) -> Option<i64> {
    let (negative, digits) = match s {
        b"0" => return Some(0),
        [b'-', rest @ ..] => (true, rest),
        _ => (false, s),
    };
    match digits.first() {
        Some(b'1'..=b'9') if digits.len() <= 19 => {}
        _ => return None,
    }
    let mut value: u64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        value = value.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
    }
    if negative { 0_i64.checked_sub_unsigned(value) } else { i64::try_from(value).ok() }
}

/// The arguments of one request.
#[derive(Debug, Clone, Copy)]
pub struct Args<'a> {
    src: &'a [u8],
    ranges: &'a [Range<usize>],
}

impl<'a> Args<'a> {
    pub fn len(&self) -> usize {
        self.ranges.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// Argument `i` (the command name is argument 0).
    pub fn get(&self, i: usize) -> &'a [u8] {
        &self.src[self.ranges[i].clone()]
    }

    /// Arguments from `from` on.
    pub fn iter_from(&self, from: usize) -> impl Iterator<Item = &'a [u8]> + 'a {
        let src = self.src;
        self.ranges[from..].iter().map(move |r| &src[r.clone()])
    }
}

// Reply encoders: each appends one RESP2 value to `out`.

pub fn ok(out: &mut Vec<u8>) {
    out.extend_from_slice(b"+OK\r\n");
}

pub fn simple(out: &mut Vec<u8>, s: &[u8]) {
    out.push(b'+');
    out.extend_from_slice(s);
    out.extend_from_slice(b"\r\n");
}

/// An error reply; `message` starts with its code (`ERR`, `WRONGTYPE`).
pub fn error(out: &mut Vec<u8>, message: &str) {
    out.push(b'-');
    out.extend_from_slice(message.as_bytes());
    out.extend_from_slice(b"\r\n");
}

pub fn integer(out: &mut Vec<u8>, n: i64) {
    out.push(b':');
    push_decimal(out, n);
    out.extend_from_slice(b"\r\n");
}

pub fn bulk(out: &mut Vec<u8>, s: &[u8]) {
    out.push(b'$');
    push_decimal(out, s.len() as i64);
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(s);
    out.extend_from_slice(b"\r\n");
}

pub fn null(out: &mut Vec<u8>) {
    out.extend_from_slice(b"$-1\r\n");
}

pub fn null_array(out: &mut Vec<u8>) {
    out.extend_from_slice(b"*-1\r\n");
}

pub fn array(out: &mut Vec<u8>, len: usize) {
    out.push(b'*');
    push_decimal(out, len as i64);
    out.extend_from_slice(b"\r\n");
}

/// Appends `n` in decimal.
pub fn push_decimal(out: &mut Vec<u8>, n: i64) {
    let mut digits = [0; 20];
    let mut i = digits.len();
    let mut rest = n.unsigned_abs();
    loop {
        i -= 1;
        digits[i] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    if n < 0 {
        out.push(b'-');
    }
    out.extend_from_slice(&digits[i..]);
}
