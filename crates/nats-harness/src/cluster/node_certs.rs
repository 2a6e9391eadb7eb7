//! The certificates of a TLS cluster: the standard set (CA, client certificates) plus a
//! node certificate that every node presents to clients and on its routes.

use std::path::Path;

use anyhow::Context;

use crate::server::TlsFiles;

/// Node certificate file names (beside the CA).
pub const NODE_CERT: &str = "node-cert.pem";
/// Node key file name.
pub const NODE_KEY: &str = "node-key.pem";

/// The standard certificate set in `dir` (kept when good) plus a fresh node certificate.
pub(super) fn node_certificates(dir: &Path) -> anyhow::Result<TlsFiles> {
    let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    let report = certs::ensure(&dir, &certs::EnsureOptions::default())
        .with_context(|| format!("could not prepare certificates in {}", dir.display()))?;
    let mut files = report.paths;
    let authority = files
        .authority()
        .with_context(|| format!("could not load the CA from {}", dir.display()))?;
    let validity = certs::Validity::days_from_now(certs::DEFAULT_DAYS)?;
    let node_cert = dir.join(NODE_CERT);
    let node_key = dir.join(NODE_KEY);
    authority
        .issue(&certs::LeafSpec::node(&certs::SERVER_SANS, validity))?
        .write(&node_cert, &node_key)
        .context("could not write the node certificate")?;
    files.server_cert = node_cert;
    files.server_key = node_key;
    Ok(files)
}
