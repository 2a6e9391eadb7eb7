//! The perf gate: a candidate's figures against the rules of the policies under `perf/`
//! (CP1 floor, this router's baseline). [`policy`] reads the policy and baseline files,
//! [`candidate`] finds and reads the candidate to judge, [`evaluate`] judges it into a
//! [`evaluate::Report`], [`table`] renders that report and [`verdict`] concludes it with the
//! verdict line and the [`exit::GateExit`] status; [`pooling`] adds runs until it can judge. `cargo xtask perf-gate` names the files,
//! runs the bench when asked and prints what these modules return.

pub mod candidate;
pub mod evaluate;
pub mod exit;
pub mod policy;
pub mod pooling;
pub mod table;
pub mod verdict;
