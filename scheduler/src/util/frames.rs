//! Call stacks as text: the return addresses of a stack, resolved to
//! demangled function names (each distinct address once), with the
//! runtime's own frames around the user's code left out.
//!
//! A greenlet's stack, read from inside it, goes on past its entry into the
//! stack that last resumed it (the hub's); [`Resolver::format`] cuts it at the
//! entry, drops the machinery that started the greenlet, and of the runtime
//! frames the stack ends in (a park, say) keeps only the outermost, the call
//! the user made (`Event::wait`, `TcpStream::read`).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::rc::Rc;

/// The most frames kept of one stack.
pub(crate) const MAX_FRAMES: usize = 128;

/// The return addresses of the calling stack, innermost first (the first one
/// is this function's caller's).
#[inline(never)]
#[allow(unsafe_code)]
pub(crate) fn capture() -> Vec<usize> {
    let mut ips = Vec::with_capacity(64);
    // SAFETY: the synchronized `trace` only adds a process-wide lock, which
    // Windows' dbghelp needs; on this platform the unwinder is thread-safe.
    // That lock is a std `Mutex`: taken here, inside a parked greenlet that
    // is answering a `dump`, a contended one would park the greenlet again
    // through the hooks.
    unsafe {
        backtrace::trace_unsynchronized(|frame| {
            ips.push(frame.ip() as usize);
            ips.len() < MAX_FRAMES
        });
    }
    ips
}

/// One function of a frame (an address in inlined code has several).
#[derive(Debug)]
struct Symbol {
    name: String,
    location: Option<String>,
}

impl Symbol {
    /// The path the name starts with, without `<`, `&` or `&mut ` of a
    /// trait implementation's self type.
    fn path(&self) -> &str {
        let name = self.name.trim_start_matches(['<', '&']);
        name.strip_prefix("mut ").unwrap_or(name)
    }

    /// Code of the runtime, the standard library, or what they build on.
    fn is_internal(&self) -> bool {
        let name = self.path();
        const PREFIXES: [&str; 11] = [
            "runtime_scheduler::",
            "runtime_io::",
            "runtime_hooks::",
            "runtime::",
            "greenlet::",
            "corosensei::",
            "std::",
            "core::",
            "alloc::",
            "__rust",
            "_Unwind",
        ];
        PREFIXES.iter().any(|prefix| name.starts_with(prefix))
    }

    /// The start of a greenlet's stack: the coroutine library's entry.
    fn is_entry(&self) -> bool {
        self.path().starts_with("corosensei::")
    }

    /// Frames that only pass a call on (closures called through `FnOnce`,
    /// `catch_unwind`), left out wherever they are.
    fn is_plumbing(&self) -> bool {
        const PREFIXES: [&str; 6] = [
            "core::ops::function::",
            "core::panic::unwind_safe::",
            "alloc::boxed::Box<F,A> as core::ops::function::",
            "std::panicking::catch_unwind",
            "std::panic::catch_unwind",
            "__rust_try",
        ];
        let name = self.path();
        PREFIXES.iter().any(|prefix| name.starts_with(prefix))
    }

    /// The capture itself (what it calls lies inside it).
    fn is_capture(&self) -> bool {
        self.name == "runtime_scheduler::util::frames::capture"
    }

    /// A parked greenlet's answer to a request for its stack, which calls
    /// the capture from inside the park.
    fn is_answer(&self) -> bool {
        self.name.starts_with("runtime_scheduler::park::answer_requested_stacks")
    }
}

/// Resolves addresses to symbols, remembering each address's, so that many
/// stacks that share their frames (every greenlet parked at the same place)
/// cost one resolution per distinct address.
#[derive(Debug, Default)]
pub(crate) struct Resolver {
    cache: HashMap<usize, Rc<[Symbol]>>,
}

impl Resolver {
    pub(crate) fn new() -> Resolver {
        Resolver::default()
    }

    fn resolve(&mut self, ip: usize) -> Rc<[Symbol]> {
        self.cache
            .entry(ip)
            .or_insert_with(|| {
                let mut symbols = Vec::new();
                // A return address points after the call: look up the call.
                let addr = ip.saturating_sub(1) as *mut std::ffi::c_void;
                backtrace::resolve(addr, |symbol| {
                    let name = match symbol.name() {
                        Some(name) => format!("{name:#}"),
                        None => format!("{ip:#x}"),
                    };
                    let location = match (symbol.filename(), symbol.lineno()) {
                        (Some(file), Some(line)) => Some(format!("{}:{line}", file.display())),
                        _ => None,
                    };
                    symbols.push(Symbol { name, location });
                });
                if symbols.is_empty() {
                    symbols.push(Symbol { name: format!("{ip:#x}"), location: None });
                }
                symbols.into()
            })
            .clone()
    }

    /// The stack of return addresses `ips` (innermost first) as text, one
    /// frame per line: `function at file:line`. See the module docs for what
    /// is left out.
    pub(crate) fn format(&mut self, ips: &[usize]) -> String {
        self.format_in(ips, None)
    }

    /// [`format`](Resolver::format) for the stack of a greenlet parked in
    /// `op` (`Event::wait`): the park is inlined into the call the user made,
    /// and that call into the user's code, so without debug information for
    /// the inlined frames nothing names it; then `op` is the innermost line.
    pub(crate) fn format_parked(&mut self, ips: &[usize], op: &str) -> String {
        self.format_in(ips, Some(op))
    }

    fn format_in(&mut self, ips: &[usize], parked_in: Option<&str>) -> String {
        let resolved: Vec<Rc<[Symbol]>> = ips.iter().map(|&ip| self.resolve(ip)).collect();
        let mut symbols: Vec<&Symbol> = resolved.iter().flat_map(|frame| frame.iter()).collect();
        // The capture's own frames (and a parked greenlet's answer, which
        // called it), then what lies past the greenlet's entry.
        if let Some(capture) = symbols.iter().position(|s| s.is_capture()) {
            symbols.drain(..=capture);
        }
        let runtime = symbols.iter().take_while(|s| s.is_internal()).count();
        if let Some(answer) = symbols[..runtime].iter().rposition(|s| s.is_answer()) {
            symbols.drain(..=answer);
        }
        if let Some(entry) = symbols.iter().position(|s| s.is_entry()) {
            symbols.truncate(entry);
        }
        // The machinery that started the greenlet.
        while symbols.last().is_some_and(|s| s.is_internal()) {
            symbols.pop();
        }
        // Of the runtime frames it ends in, the call the user made.
        let inner = symbols.iter().take_while(|s| s.is_internal()).count();
        if inner > 1 && inner < symbols.len() {
            symbols.drain(..inner - 1);
        }
        let named = inner > 0;
        symbols.retain(|s| !s.is_plumbing());
        let mut text = String::new();
        if let (false, Some(op)) = (named, parked_in) {
            let _ = writeln!(text, "{op}");
        }
        for symbol in symbols {
            let _ = match &symbol.location {
                Some(location) => writeln!(text, "{} at {location}", symbol.name),
                None => writeln!(text, "{}", symbol.name),
            };
        }
        text
    }
}
