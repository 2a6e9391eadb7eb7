//! The validate-tls suite: every TLS and authorization case of the lab against one real
//! nats-server (the shipped mutual-TLS permissions) and the real router, printed as a table
//! and written to `report.json`. Its own harness (`harness = false` in Cargo.toml): the
//! cases share one lab, started once, and the table is the suite's report.
//!
//! `cargo xtask validate-tls` builds the router and runs this suite as
//! `cargo test -p tls-lab --test validate_tls -- --router-binary PATH --out-dir DIR
//! [--keep-artifacts]`. Run by hand without options, it starts the `router` built beside
//! it (`cargo build -p router-bin`) and writes into `_artifacts/validate-tls/`. Exit 0 every
//! case behaved as expected, 1 a case did not, 2 the lab could not be set up.

fn main() -> std::process::ExitCode {
    tls_lab::suite::main(std::env::args().skip(1))
}
