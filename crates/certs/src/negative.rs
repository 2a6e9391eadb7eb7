//! Deliberately bad certificates for negative TLS tests.
//!
//! Each one must be refused by a correctly configured peer; the client certificates carry the
//! router's role, so that only their TLS flaw is what gets them refused:
//! - a client certificate issued by another CA (server with `verify: true` refuses it),
//! - an expired client certificate signed by the real CA,
//! - a server certificate from the real CA whose only SAN is `wrong.example`,
//! - another CA, to verify the real server against (the client refuses the server),
//! - a client certificate from the real CA without EKU clientAuth (serverAuth only),
//! - a client certificate from the real CA that is not valid yet.

use std::path::{Path, PathBuf};

use router_core::Identity;
use time::{Duration, OffsetDateTime};

use crate::authority::{Authority, Issued, LeafSpec, Usage, Validity};
use crate::error::Result;

/// Common name of the unrelated CA.
pub const OTHER_CA_COMMON_NAME: &str = "Beamline Router Other CA";
/// The only SAN of the mismatching server certificate.
pub const WRONG_SAN: &str = "wrong.example";

/// A CA unrelated to the project CA, valid for a year.
pub fn other_authority() -> Result<Authority> {
    Authority::generate(OTHER_CA_COMMON_NAME, Validity::days_from_now(365)?)
}

/// The router's certificate (OU `router`, EKU clientAuth) issued by `other`.
pub fn client_from(other: &Authority) -> Result<Issued> {
    other.issue(&LeafSpec::for_identity(
        &Identity::router(),
        Validity::days_from_now(365)?,
    ))
}

/// The router's certificate signed by the real CA, expired yesterday.
pub fn expired_client(ca: &Authority) -> Result<Issued> {
    ca.issue(&LeafSpec::for_identity(
        &Identity::router(),
        Validity::expired(),
    ))
}

/// A server certificate signed by the real CA whose only SAN is `wrong.example`.
pub fn wrong_san_server(ca: &Authority) -> Result<Issued> {
    ca.issue(&LeafSpec::server(
        &[WRONG_SAN],
        Validity::days_from_now(365)?,
    ))
}

/// The router's certificate signed by the real CA but with EKU serverAuth only: a
/// server with `verify: true` must refuse it as a client certificate.
pub fn client_without_client_auth(ca: &Authority) -> Result<Issued> {
    ca.issue(&LeafSpec {
        usage: Usage::Server,
        ..LeafSpec::for_identity(&Identity::router(), Validity::days_from_now(365)?)
    })
}

/// A client certificate signed by the real CA whose validity starts tomorrow.
pub fn not_yet_valid_client(ca: &Authority) -> Result<Issued> {
    let now = OffsetDateTime::now_utc();
    ca.issue(&LeafSpec::for_identity(
        &Identity::router(),
        Validity {
            not_before: now + Duration::days(1),
            not_after: now + Duration::days(30),
        },
    ))
}

/// Paths of the negative set written by [`write_negative_set`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NegativeSet {
    /// A CA that signed nothing the server uses (verify the server against it: must fail).
    pub other_ca_cert: PathBuf,
    /// Its key.
    pub other_ca_key: PathBuf,
    /// Client certificate issued by the other CA.
    pub other_client_cert: PathBuf,
    /// Its key.
    pub other_client_key: PathBuf,
    /// Expired client certificate from the real CA.
    pub expired_client_cert: PathBuf,
    /// Its key.
    pub expired_client_key: PathBuf,
    /// Server certificate from the real CA with SAN `wrong.example` only.
    pub wrong_san_server_cert: PathBuf,
    /// Its key.
    pub wrong_san_server_key: PathBuf,
}

/// Writes the whole negative set into `dir` (keys mode 0600), with `ca` as the real CA.
pub fn write_negative_set(dir: &Path, ca: &Authority) -> Result<NegativeSet> {
    let set = NegativeSet {
        other_ca_cert: dir.join("other-ca-cert.pem"),
        other_ca_key: dir.join("other-ca-key.pem"),
        other_client_cert: dir.join("other-client-cert.pem"),
        other_client_key: dir.join("other-client-key.pem"),
        expired_client_cert: dir.join("expired-client-cert.pem"),
        expired_client_key: dir.join("expired-client-key.pem"),
        wrong_san_server_cert: dir.join("wrong-san-server-cert.pem"),
        wrong_san_server_key: dir.join("wrong-san-server-key.pem"),
    };
    let other = other_authority()?;
    other.write(&set.other_ca_cert, &set.other_ca_key)?;
    client_from(&other)?.write(&set.other_client_cert, &set.other_client_key)?;
    expired_client(ca)?.write(&set.expired_client_cert, &set.expired_client_key)?;
    wrong_san_server(ca)?.write(&set.wrong_san_server_cert, &set.wrong_san_server_key)?;
    Ok(set)
}
