//! Helpers shared by the workspace's integration tests.
//!
//! - [`rerun_in_child`] (or [`ChildTest`], for roles, environment and
//!   deadlines) runs one test of the current test binary in a child process,
//!   for what must not happen in the shared test process: a global tracing
//!   subscriber, environment variables, lowered resource limits, or a crash.
//!   The test checks [`is_child`] or [`child_role`] to know which side it is
//!   on.
//! - [`Capture`] is a `tracing_subscriber` writer that keeps everything in
//!   memory, for checking what was logged.

mod capture;
mod child;

pub use capture::Capture;
pub use child::{CHILD_ENV, ChildTest, DEFAULT_DEADLINE, child_role, is_child, output_text, rerun_in_child};
