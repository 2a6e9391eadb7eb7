//! The certificates of the TLS cases, issued from the server's CA into the lab's `certs/`.

use std::path::{Path, PathBuf};

use anyhow::Context;
use certs::negative::{self, NegativeSet};
use certs::{LeafSpec, Validity};

use crate::target::ClientCert;

/// Certificate files used by the cases, all under `<artifacts>/validate-tls/certs/`.
#[derive(Debug, Clone)]
pub struct CaseCerts {
    /// Copy of the server's CA certificate (what a good client verifies the server against).
    pub ca_cert: PathBuf,
    /// A fresh certificate of the internal caller from that CA (OU `internal`, EKU
    /// clientAuth).
    pub client_cert: PathBuf,
    /// Its key.
    pub client_key: PathBuf,
    /// The deliberately bad ones.
    pub negative: NegativeSet,
    /// From the right CA, but EKU serverAuth only (no clientAuth).
    pub no_client_auth: ClientCert,
    /// From the right CA, valid from tomorrow.
    pub not_yet_valid: ClientCert,
}

impl CaseCerts {
    /// The good client certificate.
    pub fn good_client(&self) -> ClientCert {
        ClientCert {
            cert: self.client_cert.clone(),
            key: self.client_key.clone(),
        }
    }
}

/// The server's CA copied into `dir` (emptied first) next to a fresh good client certificate,
/// the negative set and the two bad certificates from the right CA.
pub fn issue(server_tls: &nats_harness::TlsFiles, dir: &Path) -> anyhow::Result<CaseCerts> {
    // Start from an empty folder so no stale key from an earlier run is ever used.
    if dir.exists() {
        std::fs::remove_dir_all(dir)
            .with_context(|| format!("could not clear {}", dir.display()))?;
    }
    std::fs::create_dir_all(dir).with_context(|| format!("could not create {}", dir.display()))?;
    let ca = server_tls
        .authority()
        .with_context(|| format!("could not load the CA from {}", server_tls.dir.display()))?;
    let ca_cert = dir.join(certs::CA_CERT);
    std::fs::copy(&server_tls.ca_cert, &ca_cert)
        .with_context(|| format!("could not copy the CA certificate to {}", ca_cert.display()))?;
    let client_cert = dir.join(certs::CLIENT_CERT);
    let client_key = dir.join(certs::CLIENT_KEY);
    ca.issue(&LeafSpec::for_identity(
        &certs::Identity::internal(),
        Validity::days_from_now(1)?,
    ))?
    .write(&client_cert, &client_key)
    .context("could not write the client certificate")?;
    let negative = negative::write_negative_set(dir, &ca).with_context(|| {
        format!(
            "could not write the negative certificates into {}",
            dir.display()
        )
    })?;
    let no_client_auth = ClientCert {
        cert: dir.join("no-client-auth-cert.pem"),
        key: dir.join("no-client-auth-key.pem"),
    };
    negative::client_without_client_auth(&ca)?
        .write(&no_client_auth.cert, &no_client_auth.key)
        .context("could not write the certificate without clientAuth")?;
    let not_yet_valid = ClientCert {
        cert: dir.join("not-yet-valid-client-cert.pem"),
        key: dir.join("not-yet-valid-client-key.pem"),
    };
    negative::not_yet_valid_client(&ca)?
        .write(&not_yet_valid.cert, &not_yet_valid.key)
        .context("could not write the not-yet-valid client certificate")?;
    Ok(CaseCerts {
        ca_cert,
        client_cert,
        client_key,
        negative,
        no_client_auth,
        not_yet_valid,
    })
}
