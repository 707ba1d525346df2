//! `runtime-console`: a live terminal view of a running program, in the
//! spirit of `top` and tokio-console, through the socket its runtime serves
//! with `runtime::Builder::console`.
//!
//! ```text
//! cargo run -p runtime-console -- /tmp/chat.sock
//! ```
//!
//! Every hub's switches per second, busy share, run queue and resident
//! stack memory as sparklines; the greenlets, longest parked first, with a
//! `/` filter on what they wait on; Enter opens one greenlet's stack; `q`
//! quits. [`client`] speaks the protocol, [`app`] holds the state and
//! handles keys, [`ui`] draws the state.

pub mod app;
pub mod client;
pub mod ui;
