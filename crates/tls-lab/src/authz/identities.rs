//! The identities of the authorization cases, issued from the server's CA.

use std::path::{Path, PathBuf};

use certs::{BundlePaths, Identity};

use crate::target::ClientCert;

/// The identities' certificates, issued from the server's CA.
pub struct Identities {
    /// The server's CA certificate.
    pub ca: PathBuf,
    /// The operator (policy writes, dead-letter reads).
    pub operator: ClientCert,
    /// The internal caller (unscoped subjects, any tenant).
    pub internal: ClientCert,
    /// Tenant acme's callers.
    pub acme: ClientCert,
    /// From the CA, without a role.
    pub roleless: ClientCert,
    /// The server's certificate set (for the router certificate's file name).
    pub set: BundlePaths,
}

impl Identities {
    /// Issues (or reuses) every identity from the CA of `server_tls`; the roleless one goes
    /// to `certs_dir`.
    pub fn issue(server_tls: &BundlePaths, certs_dir: &Path) -> anyhow::Result<Self> {
        let of = |identity: &Identity| -> anyhow::Result<ClientCert> {
            let (cert, key) = server_tls.ensure_identity(identity)?;
            Ok(ClientCert { cert, key })
        };
        let roleless = ClientCert {
            cert: certs_dir.join("roleless-client-cert.pem"),
            key: certs_dir.join("roleless-client-key.pem"),
        };
        server_tls
            .authority()?
            .issue(&certs::LeafSpec::client(
                "router-client",
                certs::Validity::days_from_now(1)?,
            ))?
            .write(&roleless.cert, &roleless.key)?;
        Ok(Identities {
            ca: server_tls.ca_cert.clone(),
            operator: of(&Identity::operator())?,
            internal: of(&Identity::internal())?,
            acme: of(&Identity::tenant("acme")?)?,
            roleless,
            set: server_tls.clone(),
        })
    }
}
