//! The keyspace and the commands, answering with Redis's replies and error
//! wording.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hashbrown::HashMap;
use hashbrown::hash_map::EntryRef;

use crate::protocol::{self, Args, parse_i64};

const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";
const NOT_AN_INTEGER: &str = "ERR value is not an integer or out of range";
const SYNTAX: &str = "ERR syntax error";

/// Configuration parameters `CONFIG GET` reports (what `redis-benchmark` and
/// `redis-cli` ask for), with their fixed values.
const CONFIG: &[(&str, &str)] = &[("appendonly", "no"), ("save", ""), ("databases", "1"), ("maxmemory", "0")];

/// The commands, for `COMMAND COUNT`.
const COMMANDS: &[&str] = &[
    "ping", "echo", "set", "get", "del", "exists", "incr", "incrby", "decr", "decrby", "mget", "mset", "lpush",
    "rpush", "lpop", "rpop", "lrange", "llen", "expire", "pexpire", "ttl", "pttl", "persist", "dbsize", "flushall",
    "flushdb", "select", "quit", "config", "command",
];

/// What the connection does after a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    /// `QUIT`: send the replies so far, then close.
    Close,
}

#[derive(Debug)]
enum Value {
    Str(Vec<u8>),
    List(VecDeque<Vec<u8>>),
}

#[derive(Debug)]
struct Entry {
    value: Value,
    expires: Option<Instant>,
}

impl Entry {
    fn is_expired(&self, now: &mut Option<Instant>) -> bool {
        self.expires.is_some_and(|at| at <= *now.get_or_insert_with(Instant::now))
    }
}

/// The in-memory keyspace.
///
/// Keys with a time to live expire lazily (a command that finds an expired
/// key removes it and treats it as missing) and through [`Db::sweep`], which
/// removes those whose time has come from a heap of deadlines.
#[derive(Debug, Default)]
pub struct Db {
    map: HashMap<Box<[u8]>, Entry>,
    /// Deadlines of keys given a time to live. Stale ones (the key was
    /// deleted, overwritten or given another deadline since) are skipped when
    /// they come up.
    deadlines: BinaryHeap<Reverse<(Instant, Box<[u8]>)>>,
}

impl Db {
    pub fn new() -> Db {
        Db::default()
    }

    /// Removes up to `limit` keys whose time to live has run out; returns
    /// whether more may be due.
    pub fn sweep(&mut self, now: Instant, limit: usize) -> bool {
        for _ in 0..limit {
            match self.deadlines.peek() {
                Some(Reverse((at, _))) if *at <= now => {}
                _ => return false,
            }
            let Some(Reverse((at, key))) = self.deadlines.pop() else { return false };
            if let EntryRef::Occupied(entry) = self.map.entry_ref(&key[..]) {
                if entry.get().expires == Some(at) {
                    entry.remove();
                }
            }
        }
        true
    }

    /// The live entry under `key`, removing it if it has expired.
    fn live(&mut self, key: &[u8], now: &mut Option<Instant>) -> Option<&mut Entry> {
        match self.map.entry_ref(key) {
            EntryRef::Occupied(entry) if entry.get().is_expired(now) => {
                entry.remove();
                None
            }
            EntryRef::Occupied(entry) => Some(entry.into_mut()),
            EntryRef::Vacant(_) => None,
        }
    }

    /// The entry under `key` for writing: an expired or missing entry becomes
    /// `make()`, with no time to live.
    fn live_or_insert(&mut self, key: &[u8], now: &mut Option<Instant>, make: impl FnOnce() -> Value) -> &mut Entry {
        match self.map.entry_ref(key) {
            EntryRef::Occupied(entry) => {
                let entry = entry.into_mut();
                if entry.is_expired(now) {
                    *entry = Entry { value: make(), expires: None };
                }
                entry
            }
            EntryRef::Vacant(entry) => entry.insert(Entry { value: make(), expires: None }),
        }
    }

    fn set_deadline(&mut self, key: &[u8], at: Instant) {
        if let Some(entry) = self.map.get_mut(key) {
            entry.expires = Some(at);
            // Rebuild the heap when stale deadlines dominate it.
            if self.deadlines.len() > 2 * self.map.len() + 1024 {
                self.deadlines = self.map.iter().filter_map(|(k, e)| Some(Reverse((e.expires?, k.clone())))).collect();
            } else {
                self.deadlines.push(Reverse((at, key.into())));
            }
        }
    }

    /// Stores a string value, reusing the allocation of the one it replaces.
    fn set_string(&mut self, key: &[u8], value: &[u8], keep_ttl: bool) {
        match self.map.entry_ref(key) {
            EntryRef::Occupied(entry) => {
                let entry = entry.into_mut();
                match &mut entry.value {
                    Value::Str(old) => {
                        old.clear();
                        old.extend_from_slice(value);
                    }
                    other => *other = Value::Str(value.to_vec()),
                }
                if !keep_ttl {
                    entry.expires = None;
                }
            }
            EntryRef::Vacant(entry) => {
                entry.insert(Entry { value: Value::Str(value.to_vec()), expires: None });
            }
        }
    }
}

/// The upper-case form of a command or option name, if it is short enough to
/// be one.
fn upper<'b>(name: &[u8], buf: &'b mut [u8; 16]) -> Option<&'b [u8]> {
    let upper = buf.get_mut(..name.len())?;
    for (u, b) in upper.iter_mut().zip(name) {
        *u = b.to_ascii_uppercase();
    }
    Some(upper)
}

fn is(arg: &[u8], option: &[u8]) -> bool {
    arg.eq_ignore_ascii_case(option)
}

fn arity_error(out: &mut Vec<u8>, command: &str) {
    protocol::error(out, &format!("ERR wrong number of arguments for '{command}' command"));
}

/// Checks a command's argument count as Redis does: exactly `arity`
/// arguments (counting the name), or at least `-arity` when negative.
fn arity_ok(args: &Args<'_>, arity: i32, command: &str, out: &mut Vec<u8>) -> bool {
    let n = args.len() as i32;
    let ok = if arity >= 0 { n == arity } else { n >= -arity };
    if !ok {
        arity_error(out, command);
    }
    ok
}

/// Quotes an argument the way Redis's error messages do (`%.128s`, with line
/// breaks turned into spaces).
fn quoted(arg: &[u8], limit: usize) -> String {
    String::from_utf8_lossy(&arg[..arg.len().min(limit)]).replace(['\r', '\n'], " ")
}

fn unknown_command(args: &Args<'_>, out: &mut Vec<u8>) {
    let mut rest = String::new();
    for arg in args.iter_from(1) {
        if rest.len() >= 128 {
            break;
        }
        let room = 128 - rest.len();
        rest.push('\'');
        rest.push_str(&quoted(arg, room));
        rest.push_str("' ");
    }
    protocol::error(
        out,
        &format!("ERR unknown command '{}', with args beginning with: {rest}", quoted(args.get(0), 128)),
    );
}

fn unknown_subcommand(sub: &[u8], container: &str, out: &mut Vec<u8>) {
    protocol::error(out, &format!("ERR unknown subcommand '{}'. Try {container} HELP.", quoted(sub, 128)));
}

fn integer_arg(arg: &[u8], out: &mut Vec<u8>) -> Option<i64> {
    let n = parse_i64(arg);
    if n.is_none() {
        protocol::error(out, NOT_AN_INTEGER);
    }
    n
}

/// A deadline `ms` milliseconds from now; `None` when out of range.
fn deadline_in(ms: i64, now: &mut Option<Instant>) -> Option<Instant> {
    let now = *now.get_or_insert_with(Instant::now);
    if ms >= 0 { now.checked_add(Duration::from_millis(ms as u64)) } else { Some(now) }
}

/// The deadline of a Unix time in milliseconds.
fn deadline_at(unix_ms: i64, now: &mut Option<Instant>) -> Option<Instant> {
    let now_unix = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
    deadline_in(unix_ms.checked_sub(now_unix)?, now)
}

/// Runs one command, appending its reply to `out`.
pub fn execute(db: &mut Db, args: &Args<'_>, out: &mut Vec<u8>) -> Flow {
    let mut name_buf = [0; 16];
    let Some(name) = upper(args.get(0), &mut name_buf) else {
        unknown_command(args, out);
        return Flow::Continue;
    };
    // Read the clock at most once per command, and only if a key has a time
    // to live.
    let mut now = None;
    let now = &mut now;
    match name {
        b"GET" => {
            if arity_ok(args, 2, "get", out) {
                match db.live(args.get(1), now) {
                    Some(Entry { value: Value::Str(s), .. }) => protocol::bulk(out, s),
                    Some(_) => protocol::error(out, WRONGTYPE),
                    None => protocol::null(out),
                }
            }
        }
        b"SET" => {
            if arity_ok(args, -3, "set", out) {
                set(db, args, out, now);
            }
        }
        b"PING" => match args.len() {
            1 => protocol::simple(out, b"PONG"),
            2 => protocol::bulk(out, args.get(1)),
            _ => arity_error(out, "ping"),
        },
        b"ECHO" => {
            if arity_ok(args, 2, "echo", out) {
                protocol::bulk(out, args.get(1));
            }
        }
        b"INCR" => {
            if arity_ok(args, 2, "incr", out) {
                incr_by(db, args.get(1), 1, out, now);
            }
        }
        b"DECR" => {
            if arity_ok(args, 2, "decr", out) {
                incr_by(db, args.get(1), -1, out, now);
            }
        }
        b"INCRBY" => {
            if let Some(by) = arity_ok(args, 3, "incrby", out).then(|| integer_arg(args.get(2), out)).flatten() {
                incr_by(db, args.get(1), by, out, now);
            }
        }
        b"DECRBY" => {
            if let Some(by) = arity_ok(args, 3, "decrby", out).then(|| integer_arg(args.get(2), out)).flatten() {
                match by.checked_neg() {
                    Some(by) => incr_by(db, args.get(1), by, out, now),
                    None => protocol::error(out, "ERR decrement would overflow"),
                }
            }
        }
        b"DEL" => {
            if arity_ok(args, -2, "del", out) {
                let mut removed = 0;
                for key in args.iter_from(1) {
                    if db.live(key, now).is_some() {
                        db.map.remove(key);
                        removed += 1;
                    }
                }
                protocol::integer(out, removed);
            }
        }
        b"EXISTS" => {
            if arity_ok(args, -2, "exists", out) {
                let found = args.iter_from(1).filter(|key| db.live(key, now).is_some()).count();
                protocol::integer(out, found as i64);
            }
        }
        b"MGET" => {
            if arity_ok(args, -2, "mget", out) {
                protocol::array(out, args.len() - 1);
                for key in args.iter_from(1) {
                    match db.live(key, now) {
                        Some(Entry { value: Value::Str(s), .. }) => protocol::bulk(out, s),
                        _ => protocol::null(out),
                    }
                }
            }
        }
        b"MSET" => {
            if args.len() < 3 || args.len() % 2 == 0 {
                arity_error(out, "mset");
            } else {
                for i in (1..args.len()).step_by(2) {
                    db.set_string(args.get(i), args.get(i + 1), false);
                }
                protocol::ok(out);
            }
        }
        b"LPUSH" => {
            if arity_ok(args, -3, "lpush", out) {
                push(db, args, true, out, now);
            }
        }
        b"RPUSH" => {
            if arity_ok(args, -3, "rpush", out) {
                push(db, args, false, out, now);
            }
        }
        b"LPOP" => {
            if arity_ok(args, -2, "lpop", out) {
                pop(db, args, true, "lpop", out, now);
            }
        }
        b"RPOP" => {
            if arity_ok(args, -2, "rpop", out) {
                pop(db, args, false, "rpop", out, now);
            }
        }
        b"LLEN" => {
            if arity_ok(args, 2, "llen", out) {
                match db.live(args.get(1), now) {
                    Some(Entry { value: Value::List(list), .. }) => protocol::integer(out, list.len() as i64),
                    Some(_) => protocol::error(out, WRONGTYPE),
                    None => protocol::integer(out, 0),
                }
            }
        }
        b"LRANGE" => {
            if arity_ok(args, 4, "lrange", out) {
                lrange(db, args, out, now);
            }
        }
        b"EXPIRE" => {
            if arity_ok(args, -3, "expire", out) {
                expire(db, args, 1000, "expire", out, now);
            }
        }
        b"PEXPIRE" => {
            if arity_ok(args, -3, "pexpire", out) {
                expire(db, args, 1, "pexpire", out, now);
            }
        }
        b"TTL" | b"PTTL" => {
            let (command, unit) = if name == b"TTL" { ("ttl", 1000) } else { ("pttl", 1) };
            if arity_ok(args, 2, command, out) {
                let reply = match db.live(args.get(1), now) {
                    None => -2,
                    Some(Entry { expires: None, .. }) => -1,
                    Some(Entry { expires: Some(at), .. }) => {
                        let left = at.saturating_duration_since(now.unwrap_or_else(Instant::now)).as_millis() as i64;
                        (left + unit / 2) / unit
                    }
                };
                protocol::integer(out, reply);
            }
        }
        b"PERSIST" => {
            if arity_ok(args, 2, "persist", out) {
                let removed = db.live(args.get(1), now).and_then(|entry| entry.expires.take()).is_some();
                protocol::integer(out, i64::from(removed));
            }
        }
        b"DBSIZE" => {
            if arity_ok(args, 1, "dbsize", out) {
                // Expired keys not removed yet count, as in Redis.
                protocol::integer(out, db.map.len() as i64);
            }
        }
        b"FLUSHALL" | b"FLUSHDB" => {
            let command = if name == b"FLUSHALL" { "flushall" } else { "flushdb" };
            match args.len() {
                1 => {}
                2 if is(args.get(1), b"ASYNC") || is(args.get(1), b"SYNC") => {}
                2 => {
                    protocol::error(out, SYNTAX);
                    return Flow::Continue;
                }
                _ => {
                    arity_error(out, command);
                    return Flow::Continue;
                }
            }
            db.map.clear();
            db.deadlines.clear();
            protocol::ok(out);
        }
        b"SELECT" => {
            if let Some(index) = arity_ok(args, 2, "select", out).then(|| integer_arg(args.get(1), out)).flatten() {
                if index == 0 {
                    protocol::ok(out);
                } else {
                    protocol::error(out, "ERR DB index is out of range");
                }
            }
        }
        b"QUIT" => {
            protocol::ok(out);
            return Flow::Close;
        }
        b"CONFIG" => {
            if arity_ok(args, -2, "config", out) {
                config(args, out);
            }
        }
        b"COMMAND" => command(args, out),
        _ => unknown_command(args, out),
    }
    Flow::Continue
}

/// `SET key value [NX | XX] [GET] [EX s | PX ms | EXAT t | PXAT t | KEEPTTL]`
fn set(db: &mut Db, args: &Args<'_>, out: &mut Vec<u8>, now: &mut Option<Instant>) {
    let (mut nx, mut xx, mut get, mut keep_ttl) = (false, false, false, false);
    // (argument, milliseconds per unit, whether it is a Unix time)
    let mut expire: Option<(&[u8], i64, bool)> = None;
    let mut i = 3;
    while i < args.len() {
        let arg = args.get(i);
        let next = (i + 1 < args.len()).then(|| args.get(i + 1));
        if is(arg, b"NX") && !xx {
            nx = true;
        } else if is(arg, b"XX") && !nx {
            xx = true;
        } else if is(arg, b"GET") {
            get = true;
        } else if is(arg, b"KEEPTTL") && expire.is_none() {
            keep_ttl = true;
        } else if let Some(next) = next.filter(|_| expire.is_none() && !keep_ttl) {
            let mut buf = [0; 16];
            expire = Some(match upper(arg, &mut buf) {
                Some(b"EX") => (next, 1000, false),
                Some(b"PX") => (next, 1, false),
                Some(b"EXAT") => (next, 1000, true),
                Some(b"PXAT") => (next, 1, true),
                _ => return protocol::error(out, SYNTAX),
            });
            i += 1;
        } else {
            return protocol::error(out, SYNTAX);
        }
        i += 1;
    }
    let deadline = match expire {
        None => None,
        Some((arg, unit, absolute)) => {
            let Some(n) = integer_arg(arg, out) else { return };
            let ms = n.checked_mul(unit).filter(|_| n > 0);
            match ms.and_then(|ms| if absolute { deadline_at(ms, now) } else { deadline_in(ms, now) }) {
                Some(at) => Some(at),
                None => return protocol::error(out, "ERR invalid expire time in 'set' command"),
            }
        }
    };
    let key = args.get(1);
    let exists = match db.live(key, now) {
        Some(Entry { value: Value::Str(old), .. }) => {
            if get {
                protocol::bulk(out, old);
            }
            true
        }
        Some(_) if get => return protocol::error(out, WRONGTYPE),
        Some(_) => true,
        None => {
            if get {
                protocol::null(out);
            }
            false
        }
    };
    if (nx && exists) || (xx && !exists) {
        if !get {
            protocol::null(out);
        }
        return;
    }
    db.set_string(key, args.get(2), keep_ttl);
    if let Some(at) = deadline {
        db.set_deadline(key, at);
    }
    if !get {
        protocol::ok(out);
    }
}

fn incr_by(db: &mut Db, key: &[u8], by: i64, out: &mut Vec<u8>, now: &mut Option<Instant>) {
    let entry = db.live_or_insert(key, now, || Value::Str(b"0".to_vec()));
    let Value::Str(value) = &mut entry.value else { return protocol::error(out, WRONGTYPE) };
    let Some(current) = parse_i64(value) else { return protocol::error(out, NOT_AN_INTEGER) };
    let Some(new) = current.checked_add(by) else {
        return protocol::error(out, "ERR increment or decrement would overflow");
    };
    value.clear();
    protocol::push_decimal(value, new);
    protocol::integer(out, new);
}

fn push(db: &mut Db, args: &Args<'_>, front: bool, out: &mut Vec<u8>, now: &mut Option<Instant>) {
    let entry = db.live_or_insert(args.get(1), now, || Value::List(VecDeque::new()));
    let Value::List(list) = &mut entry.value else { return protocol::error(out, WRONGTYPE) };
    for element in args.iter_from(2) {
        if front {
            list.push_front(element.to_vec());
        } else {
            list.push_back(element.to_vec());
        }
    }
    protocol::integer(out, list.len() as i64);
}

fn pop(db: &mut Db, args: &Args<'_>, front: bool, command: &str, out: &mut Vec<u8>, now: &mut Option<Instant>) {
    let count = match args.len() {
        2 => None,
        3 => match parse_i64(args.get(2)) {
            Some(n) if n >= 0 => Some(n as usize),
            _ => return protocol::error(out, "ERR value is out of range, must be positive"),
        },
        _ => return arity_error(out, command),
    };
    let key = args.get(1);
    let list = match db.live(key, now) {
        Some(Entry { value: Value::List(list), .. }) => list,
        Some(_) => return protocol::error(out, WRONGTYPE),
        None if count.is_some() => return protocol::null_array(out),
        None => return protocol::null(out),
    };
    let take = |list: &mut VecDeque<Vec<u8>>| if front { list.pop_front() } else { list.pop_back() };
    match count {
        None => match take(list) {
            Some(element) => protocol::bulk(out, &element),
            None => protocol::null(out),
        },
        Some(count) => {
            let count = count.min(list.len());
            protocol::array(out, count);
            for _ in 0..count {
                if let Some(element) = take(list) {
                    protocol::bulk(out, &element);
                }
            }
        }
    }
    if list.is_empty() {
        db.map.remove(key);
    }
}

fn lrange(db: &mut Db, args: &Args<'_>, out: &mut Vec<u8>, now: &mut Option<Instant>) {
    let (Some(start), Some(stop)) = (parse_i64(args.get(2)), parse_i64(args.get(3))) else {
        return protocol::error(out, NOT_AN_INTEGER);
    };
    let list = match db.live(args.get(1), now) {
        Some(Entry { value: Value::List(list), .. }) => list,
        Some(_) => return protocol::error(out, WRONGTYPE),
        None => return protocol::array(out, 0),
    };
    let len = list.len() as i64;
    let start = if start < 0 { (start + len).max(0) } else { start };
    let stop = if stop < 0 { stop + len } else { stop.min(len - 1) };
    if start > stop || start >= len {
        return protocol::array(out, 0);
    }
    protocol::array(out, (stop - start + 1) as usize);
    for element in list.range(start as usize..=stop as usize) {
        protocol::bulk(out, element);
    }
}

/// `EXPIRE key seconds [NX | XX | GT | LT]` (and `PEXPIRE`, in milliseconds).
fn expire(db: &mut Db, args: &Args<'_>, unit: i64, command: &str, out: &mut Vec<u8>, now: &mut Option<Instant>) {
    let (mut nx, mut xx, mut gt, mut lt) = (false, false, false, false);
    for option in args.iter_from(3) {
        let mut buf = [0; 16];
        match upper(option, &mut buf) {
            Some(b"NX") => nx = true,
            Some(b"XX") => xx = true,
            Some(b"GT") => gt = true,
            Some(b"LT") => lt = true,
            _ => return protocol::error(out, &format!("ERR Unsupported option {}", quoted(option, 128))),
        }
    }
    if nx && (xx || gt || lt) {
        return protocol::error(out, "ERR NX and XX, GT or LT options at the same time are not compatible");
    }
    if gt && lt {
        return protocol::error(out, "ERR GT and LT options at the same time are not compatible");
    }
    let Some(n) = integer_arg(args.get(2), out) else { return };
    let Some(at) = n.checked_mul(unit).and_then(|ms| deadline_in(ms, now)) else {
        return protocol::error(out, &format!("ERR invalid expire time in '{command}' command"));
    };
    let key = args.get(1);
    let Some(entry) = db.live(key, now) else { return protocol::integer(out, 0) };
    // A key without a time to live counts as never expiring for GT and LT.
    let allowed = match entry.expires {
        Some(current) => !nx && (!gt || at > current) && (!lt || at < current),
        None => !xx && !gt,
    };
    if !allowed {
        return protocol::integer(out, 0);
    }
    if n <= 0 || at <= now.unwrap_or_else(Instant::now) {
        db.map.remove(key);
    } else {
        db.set_deadline(key, at);
    }
    protocol::integer(out, 1);
}

fn config(args: &Args<'_>, out: &mut Vec<u8>) {
    let sub = args.get(1);
    if !is(sub, b"GET") {
        return unknown_subcommand(sub, "CONFIG", out);
    }
    if args.len() < 3 {
        return arity_error(out, "config|get");
    }
    let matches: Vec<&(&str, &str)> =
        CONFIG.iter().filter(|(name, _)| args.iter_from(2).any(|pattern| glob(pattern, name.as_bytes()))).collect();
    protocol::array(out, 2 * matches.len());
    for (name, value) in matches {
        protocol::bulk(out, name.as_bytes());
        protocol::bulk(out, value.as_bytes());
    }
}

/// `COMMAND`, `COMMAND COUNT`, `COMMAND DOCS`, `COMMAND INFO`: enough for
/// clients that ask at start-up (an empty table means "no details known").
fn command(args: &Args<'_>, out: &mut Vec<u8>) {
    if args.len() == 1 {
        return protocol::array(out, 0);
    }
    let sub = args.get(1);
    if is(sub, b"COUNT") {
        if args.len() != 2 {
            return arity_error(out, "command|count");
        }
        protocol::integer(out, COMMANDS.len() as i64);
    } else if is(sub, b"DOCS") {
        protocol::array(out, 0);
    } else if is(sub, b"INFO") {
        protocol::array(out, args.len() - 2);
        for _ in 2..args.len() {
            protocol::null_array(out);
        }
    } else {
        unknown_subcommand(sub, "COMMAND", out);
    }
}

/// Glob-style matching, ignoring case (`*`, `?`), as `CONFIG GET` patterns.
/// Backtracks only to the last `*`, so it takes time proportional to the
/// pattern's length times the name's, whatever the pattern.
fn glob(pattern: &[u8], name: &[u8]) -> bool {
    let (mut p, mut n) = (0, 0);
    // The last `*` seen, and where in the name its match would end next.
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, n));
                p += 1;
            }
            Some(&c) if c == b'?' || c.eq_ignore_ascii_case(&name[n]) => {
                p += 1;
                n += 1;
            }
            _ => match star {
                Some((star_p, star_n)) => {
                    star = Some((star_p, star_n + 1));
                    p = star_p + 1;
                    n = star_n + 1;
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}
