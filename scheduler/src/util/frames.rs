//! Call stacks as text: the return addresses of a stack, resolved to
//! demangled function names (each distinct address once), with the
//! runtime's own frames around the user's code left out.
//!
//! A greenlet's stack, read from inside it, goes on past its entry into the
//! stack that last resumed it (the hub's); [`Resolver::format`] cuts it at the
//! entry, drops the machinery that started the greenlet, and of the runtime
//! frames the stack ends in (a park, say) keeps only the outermost, the call
//! the user made (`Event::wait`, `TcpStream::read`).
//!
//! Which frames are the runtime's goes by the function's module path
//! (`runtime_scheduler::`, `std::`). Debug information limited to line
//! tables (`debug = "line-tables-only"`) names inlined functions without
//! their path (`try_with<T>`, `{closure#0}`), so those go by their source
//! file instead: the standard library's, or one of the runtime's crates',
//! whose source directories the resolver learns from the functions that do
//! have a path.

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
    /// The source file and line.
    location: Option<(String, u32)>,
}

/// The crates the runtime is made of, by the paths their functions' names
/// start with.
const RUNTIME_CRATES: [&str; 6] =
    ["runtime_scheduler::", "runtime_io::", "runtime_hooks::", "runtime::", "greenlet::", "corosensei::"];

/// Source files of the standard library (remapped to `/rustc/<commit>/`
/// when it comes prebuilt).
fn is_std_source(file: &str) -> bool {
    file.starts_with("/rustc/")
        || ["/library/std/src/", "/library/core/src/", "/library/alloc/src/"].iter().any(|dir| file.contains(dir))
}

impl Symbol {
    /// The path the name starts with, without `<`, `&` or `&mut ` of a
    /// trait implementation's self type.
    fn path(&self) -> &str {
        let name = self.name.trim_start_matches(['<', '&']);
        name.strip_prefix("mut ").unwrap_or(name)
    }

    /// Whether the name has its module path (see the module docs).
    fn is_qualified(&self) -> bool {
        let path = self.path();
        path[..path.find('<').unwrap_or(path.len())].contains("::")
    }

    fn file(&self) -> Option<&str> {
        self.location.as_ref().map(|(file, _)| file.as_str())
    }

    /// The directory of the function's crate's sources: its file's path up
    /// to the crate's `src/`.
    fn source_dir(&self) -> Option<&str> {
        let file = self.file()?;
        file.rfind("/src/").map(|at| &file[..at + "/src/".len()])
    }

    /// The [`source_dir`](Self::source_dir) of a function of the runtime's
    /// own crates, to recognize the functions of those files that have no
    /// path.
    fn runtime_source_dir(&self) -> Option<&str> {
        if !self.is_qualified() || !RUNTIME_CRATES.iter().any(|prefix| self.path().starts_with(prefix)) {
            return None;
        }
        self.source_dir()
    }

    /// Code of the runtime, the standard library, or what they build on;
    /// `runtime_sources` are the runtime's source directories.
    fn is_internal(&self, runtime_sources: &[String]) -> bool {
        let name = self.path();
        const OTHERS: [&str; 5] = ["std::", "core::", "alloc::", "__rust", "_Unwind"];
        if RUNTIME_CRATES.iter().chain(&OTHERS).any(|prefix| name.starts_with(prefix)) {
            return true;
        }
        !self.is_qualified()
            && self.file().is_some_and(|file| {
                is_std_source(file) || runtime_sources.iter().any(|dir| file.starts_with(dir.as_str()))
            })
    }

    /// The start of a greenlet's stack: the coroutine library's entry.
    fn is_entry(&self) -> bool {
        self.path().starts_with("corosensei::")
    }

    /// Frames that only pass a call on (closures called through `FnOnce`,
    /// `catch_unwind`), left out wherever they are.
    fn is_plumbing(&self) -> bool {
        if !self.is_qualified() && !self.name.starts_with("__rust") {
            const FILES: [&str; 4] = [
                "core/src/ops/function.rs",
                "core/src/panic/unwind_safe.rs",
                "std/src/panicking.rs",
                "std/src/panic.rs",
            ];
            let boxed_call = self.name.starts_with("call_once") || self.name.starts_with("call_mut");
            return self.file().is_some_and(|file| {
                is_std_source(file)
                    && (FILES.iter().any(|end| file.ends_with(end)) || (boxed_call && file.contains("alloc/src/boxed")))
            });
        }
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
    fn is_answer(&self, runtime_sources: &[String]) -> bool {
        const ANSWER: &str = "runtime_scheduler::park::answer_requested_stacks";
        self.name.starts_with(ANSWER)
            || (self.name.starts_with("answer_requested_stacks") && self.is_internal(runtime_sources))
    }
}

/// Resolves addresses to symbols, remembering each address's, so that many
/// stacks that share their frames (every greenlet parked at the same place)
/// cost one resolution per distinct address.
#[derive(Debug)]
pub(crate) struct Resolver {
    cache: HashMap<usize, Rc<[Symbol]>>,
    /// The runtime's source directories (see the module docs): this
    /// crate's, the greenlet core's (whose code a greenlet's stack starts
    /// in, all of it inlined), and those learned from the stacks resolved so
    /// far.
    runtime_sources: Vec<String>,
}

impl Resolver {
    pub(crate) fn new() -> Resolver {
        Resolver { cache: HashMap::new(), runtime_sources: Vec::new() }
    }

    /// Finds the source directories of this crate and the core, once: by
    /// resolving a function of each that is never inlined. (Not in `new`:
    /// the first resolution reads the program's debug information, which
    /// the blocking monitor's resolver, made at start, may never need.)
    fn learn_own_sources(&mut self) {
        if !self.runtime_sources.is_empty() {
            return;
        }
        let known: [usize; 2] = [capture as *const () as usize, greenlet::getcurrent as *const () as usize];
        for function in known {
            // (One past the function's first byte, as for a return address;
            // the last symbol is the function itself, not one inlined in it.)
            let symbols = self.resolve(function + 1);
            self.learn_sources(symbols.last().and_then(Symbol::source_dir));
        }
    }

    /// Notes source directories of the runtime.
    fn learn_sources<'a>(&mut self, dirs: impl IntoIterator<Item = &'a str>) {
        for dir in dirs {
            if !self.runtime_sources.iter().any(|known| known == dir) {
                self.runtime_sources.push(dir.to_owned());
            }
        }
    }

    fn resolve(&mut self, ip: usize) -> Rc<[Symbol]> {
        self.cache
            .entry(ip)
            .or_insert_with(|| {
                let mut symbols = Vec::new();
                // (A return address points after the call; `resolve` looks
                // up the byte before, in the call.)
                let addr = ip as *mut std::ffi::c_void;
                backtrace::resolve(addr, |symbol| {
                    let name = match symbol.name() {
                        Some(name) => format!("{name:#}"),
                        None => format!("{ip:#x}"),
                    };
                    let location = match (symbol.filename(), symbol.lineno()) {
                        (Some(file), Some(line)) => Some((file.display().to_string(), line)),
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
        self.learn_own_sources();
        let resolved: Vec<Rc<[Symbol]>> = ips.iter().map(|&ip| self.resolve(ip)).collect();
        let mut symbols: Vec<&Symbol> = resolved.iter().flat_map(|frame| frame.iter()).collect();
        self.learn_sources(symbols.iter().filter_map(|s| s.runtime_source_dir()));
        let sources = &self.runtime_sources[..];
        // The capture's own frames (and a parked greenlet's answer, which
        // called it), then what lies past the greenlet's entry.
        if let Some(capture) = symbols.iter().position(|s| s.is_capture()) {
            symbols.drain(..=capture);
        }
        let runtime = symbols.iter().take_while(|s| s.is_internal(sources)).count();
        if let Some(answer) = symbols[..runtime].iter().rposition(|s| s.is_answer(sources)) {
            symbols.drain(..=answer);
        }
        if let Some(entry) = symbols.iter().position(|s| s.is_entry()) {
            symbols.truncate(entry);
        }
        // The machinery that started the greenlet.
        while symbols.last().is_some_and(|s| s.is_internal(sources)) {
            symbols.pop();
        }
        // Of the runtime frames it ends in, the call the user made.
        let inner = symbols.iter().take_while(|s| s.is_internal(sources)).count();
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
                Some((file, line)) => writeln!(text, "{} at {file}:{line}", symbol.name),
                None => writeln!(text, "{}", symbol.name),
            };
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn symbol(name: &str, file: &str) -> Symbol {
        Symbol { name: name.to_owned(), location: Some((file.to_owned(), 1)) }
    }

    #[test]
    fn a_new_resolver_reads_no_debug_information() {
        // The blocking monitor makes one at start, and may never report.
        let resolver = Resolver::new();
        assert!(resolver.cache.is_empty() && resolver.runtime_sources.is_empty());
    }

    #[test]
    fn functions_without_a_path_are_told_by_their_file() {
        let sources = ["/src/app/scheduler/src/".to_owned()];
        let std_fn = symbol("try_with<core::cell::RefCell<u8>>", "/rustc/0123abcd/library/std/src/thread/local.rs");
        let ours = symbol("wait_until", "/src/app/scheduler/src/sync/event.rs");
        let users = symbol("wait_for_the_gate", "/src/app/scheduler/tests/backtrace.rs");
        let closure = symbol("{closure#0}", "/home/me/server/src/main.rs");
        assert!(std_fn.is_internal(&sources) && ours.is_internal(&sources));
        assert!(!users.is_internal(&sources) && !closure.is_internal(&sources));
        // A path inside the generic arguments does not make it qualified.
        assert!(!std_fn.is_qualified());
        assert!(symbol("<runtime_io::net::TcpStream as std::io::Read>::read", "x").is_qualified());
        let call = symbol("call_once<fn()>", "/rustc/0123abcd/library/core/src/ops/function.rs");
        assert!(call.is_plumbing() && symbol("__rust_try", "").is_plumbing());
        assert!(!users.is_plumbing());
    }

    #[test]
    fn source_directories_are_learned_from_the_runtime_s_named_functions() {
        let named = symbol("runtime_io::net::tcp::TcpStream::read", "/reg/runtime-io-0.1.0/src/net/tcp.rs");
        let user = symbol("server::handle", "/home/me/server/src/main.rs");
        assert_eq!(named.runtime_source_dir(), Some("/reg/runtime-io-0.1.0/src/"));
        assert_eq!(user.runtime_source_dir(), None);
        assert_eq!(symbol("read", "/reg/runtime-io-0.1.0/src/net/tcp.rs").runtime_source_dir(), None);
    }
}
