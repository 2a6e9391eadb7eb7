//! The validate-tls lab: positive and negative mutual-TLS cases, then the authorization
//! cases (who may do what once connected), against a real nats-server running the shipped
//! `config/nats_tls.conf` and the real router. `cargo xtask validate-tls` runs it as the
//! suite `tests/validate_tls.rs` of this crate ([`suite::main`]).
//!
//! The lab ([`lab::run_all`]) starts a nats-server with mutual TLS (`verify_and_map: true`
//! and the per-role permissions, nats-harness) and the router against it, issues the
//! certificates of every case from the server's CA into `<out>/certs/` (the certs library),
//! then tries each case with a real NATS client. The suite prints a table (case, expected,
//! observed, verdict, [`report`]) and writes `report.json`.
//!
//! A refused case passes only when the client is refused *for the expected reason* (the TLS
//! alert or verification error named in the case), so a broken setup cannot make refusals
//! pass; and the accepted case must get a decision (`ok: true`) through the router
//! ([`result`]).
//!
//! The wrong-SAN case needs a server presenting a certificate without the dialled name: a
//! second nats-server is started with a certificate from the same CA whose only SAN is
//! `wrong.example`, and the client dials it as `127.0.0.1`. Dialling another name for the
//! first server was not an option: every name that resolves to loopback here (`localhost`,
//! `127.0.0.1`, `::1`) is in its certificate. A control case proves the second server
//! accepts the same client when it verifies the name `wrong.example`, so the refusal is due
//! to the name alone.
//!
//! Everything started is stopped when the run ends, on error too (Drop guards). Logs
//! (`validate-tls.log`, `router.log`, both nats-server logs and configs) and `report.json`
//! stay in the output folder; the certificates and keys are deleted at the end unless
//! `--keep-artifacts` is given.
//!
//! Modules depend one way: [`suite`] → [`lab`] → [`tls_cases`], [`authz`] →
//! [`case_certs`], [`log`], [`target`], [`result`]; [`report`] reads [`result`] only.

#![forbid(unsafe_code)]

pub mod authz;
pub mod case_certs;
pub mod lab;
pub mod log;
pub mod report;
pub mod result;
pub mod suite;
pub mod target;
pub mod tls_cases;

use std::path::{Path, PathBuf};

/// The workspace root (two levels above this crate): `config/policies` and `_artifacts/`.
pub fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}
