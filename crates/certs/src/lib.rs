//! Certificates for mutual TLS between the router, its clients and nats-server.
//!
//! - [`ensure`] keeps a CA, a server certificate (SAN `localhost`, `127.0.0.1`, `::1`; EKU
//!   serverAuth) and one client certificate per role (EKU clientAuth; the role is the
//!   subject's OU: router, operator, internal, tenant) in a directory, regenerating only what
//!   is missing, does not chain to the CA, has the wrong names, role or usage, or expires
//!   within 30 days. All keys are ECDSA P-256, PKCS#8 PEM, mode 0600.
//! - [`Authority`] issues further certificates; [`negative`] builds the deliberately bad ones
//!   that negative TLS tests need.
//! - [`inspect`] reads certificates back (x509-parser) and verifies signatures.
//!
//! PEM is read with `rustls-pki-types` (`PemObject`), not the unmaintained `rustls-pemfile`.

mod authority;
mod bundle;
mod error;
pub mod files;
pub mod inspect;
pub mod negative;

pub use authority::{
    cert_der_from_pem, Authority, Issued, LeafSpec, Usage, Validity, ORGANIZATION,
};
pub use bundle::{
    ensure, server_leaf, standard_identities, tenants_in, Action, BundlePaths, EnsureOptions,
    Entry, Report, CA_CERT, CA_COMMON_NAME, CA_KEY, CLIENT_CERT, CLIENT_KEY, DEFAULT_DAYS,
    DEFAULT_RENEW_BEFORE_DAYS, OPERATOR_CERT, OPERATOR_KEY, ROUTER_CERT, ROUTER_KEY, SERVER_CERT,
    SERVER_KEY, SERVER_SANS,
};
pub use error::{CertError, Result};
pub use router_core::{Identity, Role};
