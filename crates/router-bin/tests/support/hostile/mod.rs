//! The hostile-input rig shared by the `hostile_input` and `hostile_memory` suites: more than
//! 10,000 bodies generated from a fixed seed, each with the reply its category calls for
//! (`generator.rs`, `expect.rs`; the categories in `malformed.rs`, `wrong_values.rs`,
//! `oversize.rs` and `right_codes.rs`), and the server, router and client they are sent
//! through (`bench.rs`).

pub mod bench;
pub mod expect;
pub mod generator;
mod malformed;
mod oversize;
mod right_codes;
mod wrong_values;
