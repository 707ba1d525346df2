//! What every example's `main` starts with: logging, and its command line.

/// Logs through `tracing-subscriber` (`RUST_LOG`, `info` by default) and
/// parses the command line with `parse`; on an error, prints it after the
/// program's name and exits with status 2.
pub fn start<A>(program: &str, parse: impl FnOnce() -> Result<A, String>) -> A {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
    parse().unwrap_or_else(|message| {
        eprintln!("{program}: {message}");
        std::process::exit(2);
    })
}
