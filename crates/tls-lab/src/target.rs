//! Who dials where: a client certificate and a server to dial.

use std::path::PathBuf;

/// A client certificate and its key.
#[derive(Debug, Clone)]
pub struct ClientCert {
    /// Certificate (PEM).
    pub cert: PathBuf,
    /// Private key (PEM).
    pub key: PathBuf,
}

/// A server to dial on 127.0.0.1.
#[derive(Debug, Clone, Copy)]
pub struct Target {
    /// Client port.
    pub port: u16,
    /// Name in the log.
    pub label: &'static str,
}
