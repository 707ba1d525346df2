//! Small tools with no knowledge of hubs or greenlets: the generational
//! [`slab`] every table of the hub is stored in, a drop [`guard`],
//! [`report`], which prints a diagnostic with or without a `tracing`
//! subscriber, and [`frames`], call stacks as text.
//!
//! # What it must not know
//!
//! Anything else in this crate: every file here imports only `std` and
//! external crates, so that any module may use it.

pub(crate) mod frames;
pub(crate) mod guard;
pub(crate) mod report;
pub(crate) mod slab;
