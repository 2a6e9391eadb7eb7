//! The candidate JSON (what `cargo xtask perf-gate` reads) and its Markdown summary.
//!
//! Metrics sit flat at the top level so the gate reads them by name; the rounds and blocks
//! they come from are kept beside them, so that the gate can judge the spread and merge the
//! blocks of several runs. A metric that was not measured is `null`, never 0: the gate treats
//! `null` as missing and fails.
//!
//! `candidate.rs` builds the result from what a run measured (`measured.rs`), `markdown.rs`
//! writes its summary, `shape.rs` holds the second load shape (reported, not gated), and
//! `file.rs` reads and writes the two files.

mod candidate;
mod file;
mod markdown;
mod measured;
mod shape;

pub use candidate::{Candidate, Status, SCHEMA};
pub use file::markdown_path;
pub use measured::{Measured, SideTotals};
pub use shape::LoadShape;

#[cfg(test)]
mod tests;
