//! Diagnostics that reach the user with or without a `tracing` subscriber.

/// Reports a warning about a greenlet: through `tracing` when a subscriber is
/// installed, otherwise as one line on stderr.
pub(crate) fn warn(message: &str, id: u64, name: Option<&str>) {
    if tracing::dispatcher::has_been_set() {
        tracing::warn!(greenlet.id = id, greenlet.name = name, "{message}");
    } else {
        eprintln!("runtime: warning: {message}");
    }
}
