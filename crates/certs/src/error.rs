//! The one error type of this crate.

use std::path::PathBuf;

/// What can go wrong while generating, reading or writing certificates.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    /// rcgen refused to build a key or certificate.
    #[error("could not generate {what}: {source}")]
    Generate {
        /// What was being generated, e.g. "the CA certificate".
        what: String,
        /// The rcgen error.
        #[source]
        source: rcgen::Error,
    },
    /// A PEM file could not be read or holds no item of the expected kind.
    #[error("could not read {kind} from {path}: {source}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// "certificate" or "private key".
        kind: &'static str,
        /// The PEM (or I/O) error.
        #[source]
        source: rustls_pki_types::pem::Error,
    },
    /// DER bytes that are not a valid X.509 certificate.
    #[error("{what} is not a valid X.509 certificate: {reason}")]
    Parse {
        /// Which certificate.
        what: String,
        /// The parser's message.
        reason: String,
    },
    /// A private key that rcgen cannot use (not PKCS#8, unsupported algorithm).
    #[error("{what} is not a usable private key: {source}")]
    Key {
        /// Which key.
        what: String,
        /// The rcgen error.
        #[source]
        source: rcgen::Error,
    },
    /// A file or directory could not be written.
    #[error("could not write {path}: {source}")]
    Write {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Requested validity that makes no sense (e.g. zero days).
    #[error("invalid validity: {0}")]
    Validity(String),
}

/// Result alias of this crate.
pub type Result<T, E = CertError> = std::result::Result<T, E>;
