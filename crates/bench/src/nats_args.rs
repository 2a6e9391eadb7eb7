//! Where NATS is and how to reach it: the options `router-bench` and `router-scenario` share.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use router_bin::transport::nats::ClientTls;

/// The NATS URL and the TLS files.
#[derive(Debug, Clone, clap::Args)]
pub struct NatsArgs {
    /// NATS server URL (`tls://host:port` for TLS; the host must match the server certificate).
    #[arg(long, default_value = "nats://127.0.0.1:4222")]
    pub nats_url: String,
    /// CA certificate (PEM) that signed the server certificate; turns TLS on.
    #[arg(long)]
    pub tls_ca: Option<PathBuf>,
    /// Client certificate (PEM) for mutual TLS; needs --tls-key and --tls-ca.
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// Client private key (PEM) for mutual TLS; needs --tls-cert and --tls-ca.
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
}

impl NatsArgs {
    /// The TLS files, each checked to be a readable file; `None` without `--tls-ca`.
    pub fn client_tls(&self) -> anyhow::Result<Option<ClientTls>> {
        match (&self.tls_ca, &self.tls_cert, &self.tls_key) {
            (None, None, None) => Ok(None),
            (None, Some(_), _) | (None, _, Some(_)) => {
                bail!("--tls-cert/--tls-key need --tls-ca too (the CA that signed the server certificate)")
            }
            (Some(ca), cert, key) => {
                check_file(ca, "--tls-ca")?;
                let client = match (cert, key) {
                    (Some(cert), Some(key)) => {
                        check_file(cert, "--tls-cert")?;
                        check_file(key, "--tls-key")?;
                        Some((cert.clone(), key.clone()))
                    }
                    _ => None,
                };
                Ok(Some(ClientTls {
                    ca: Some(ca.clone()),
                    client,
                }))
            }
        }
    }
}

fn check_file(path: &Path, option: &str) -> anyhow::Result<()> {
    let meta = std::fs::metadata(path).with_context(|| {
        format!(
            "{option} {}: cannot read it (run `cargo xtask certs` to create the certificates)",
            path.display()
        )
    })?;
    if !meta.is_file() {
        bail!("{option} {} is not a file", path.display());
    }
    Ok(())
}
