//! The perf gate's judgement: a candidate's figures against the rules of the policies
//! under `perf/` (CP1 floor, this router's baseline), as a [`evaluate::Report`] rendered
//! by [`table::render`]. `cargo xtask perf-gate` finds the files, runs the bench when
//! asked and turns the report into an exit status.

pub mod evaluate;
pub mod policy;
pub mod table;
