//! TLS checks made before connecting: the client certificate's validity and role, and what
//! the server demands (read from its INFO line), so misconfigurations fail with a sentence,
//! not a hang.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use router_core::{Identity, Role};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use serde::Deserialize;
use tokio::io::AsyncBufReadExt;

/// Warn when the client certificate expires within this many days.
pub const EXPIRY_WARNING_DAYS: i64 = 30;

/// Days until the certificate in `path` expires (negative once expired). Fails, naming the
/// file, when it is unreadable, not PEM or not X.509.
pub fn days_until_expiry(path: &Path) -> anyhow::Result<f64> {
    let der = read_certificate(path)?;
    let not_after = parse(&der, path)?.validity().not_after.timestamp();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    Ok((not_after - now) as f64 / 86_400.0)
}

/// The first certificate of the PEM file `path`, as DER.
fn read_certificate(path: &Path) -> anyhow::Result<CertificateDer<'static>> {
    CertificateDer::pem_file_iter(path)
        .with_context(|| format!("cannot read certificate file {}", path.display()))?
        .next()
        .with_context(|| format!("{} holds no PEM certificate", path.display()))?
        .with_context(|| format!("{} is not a readable PEM certificate", path.display()))
}

fn parse<'a>(
    der: &'a CertificateDer<'_>,
    path: &Path,
) -> anyhow::Result<x509_parser::certificate::X509Certificate<'a>> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).map_err(|err| {
        anyhow::anyhow!("{} is not a valid X.509 certificate: {err}", path.display())
    })?;
    Ok(cert)
}

/// The identity the certificate in `path` carries (its subject's OU and CN).
pub fn certificate_identity(path: &Path) -> anyhow::Result<Identity> {
    let der = read_certificate(path)?;
    let cert = parse(&der, path)?;
    let subject = cert.subject();
    let unit = subject
        .iter_organizational_unit()
        .find_map(|v| v.as_str().ok());
    let common_name = subject.iter_common_name().find_map(|v| v.as_str().ok());
    Identity::from_subject(unit, common_name)
        .with_context(|| format!("certificate {}", path.display()))
}

/// Refuses a client certificate that is not a router's: nats-server would give it another
/// role's permissions (or none), and the router would fail on its first subscription.
pub fn check_router_certificate(path: &Path) -> anyhow::Result<()> {
    let certificate_for_router = "the router needs a router certificate (OU=router): \
        _artifacts/certs/router-cert.pem and router-key.pem (made by cargo xtask certs)";
    match certificate_identity(path) {
        Ok(identity) if identity.role() == Role::Router => Ok(()),
        Ok(identity) => bail!(
            "client certificate {} carries the role {} (CN={}); {certificate_for_router}",
            path.display(),
            identity.role().unit(),
            identity.name()
        ),
        Err(err) => bail!("{err:#}; {certificate_for_router}"),
    }
}

/// Refuses an expired client certificate; warns when it expires soon. Returns days left.
pub fn check_client_certificate(path: &Path) -> anyhow::Result<f64> {
    let days = days_until_expiry(path)?;
    if days <= 0.0 {
        bail!(
            "client certificate {} has expired; renew it (cargo xtask certs --force) and restart",
            path.display()
        );
    }
    if days < EXPIRY_WARNING_DAYS as f64 {
        tracing::warn!(
            file = %path.display(),
            days_left = days.floor(),
            "client certificate expires soon; renew it with `cargo xtask certs --force`"
        );
    }
    Ok(days)
}

#[derive(Debug, Default, Deserialize)]
struct ServerInfo {
    #[serde(default)]
    tls_required: bool,
    #[serde(default)]
    tls_verify: bool,
}

/// What the first reachable server of `urls` requires, or `None` when none answered in time.
async fn probe(urls: &str) -> Option<ServerInfo> {
    for url in urls.split(',').map(str::trim).filter(|u| !u.is_empty()) {
        let host_port = url.rsplit("://").next().unwrap_or(url);
        let host_port = host_port.rsplit('@').next().unwrap_or(host_port);
        let attempt = async {
            let stream = tokio::net::TcpStream::connect(host_port).await.ok()?;
            let mut line = String::new();
            tokio::io::BufReader::new(stream)
                .read_line(&mut line)
                .await
                .ok()?;
            let json = line.trim().strip_prefix("INFO")?.trim();
            serde_json::from_str::<ServerInfo>(json).ok()
        };
        if let Ok(Some(info)) = tokio::time::timeout(Duration::from_secs(2), attempt).await {
            return Some(info);
        }
    }
    None
}

/// Fails with an explanation when the server requires TLS (or a client certificate) that the
/// configuration does not provide. An unreachable server is not an error here: the router
/// keeps retrying and reports not-ready meanwhile.
pub async fn preflight(
    urls: &str,
    tls_configured: bool,
    client_cert_configured: bool,
) -> anyhow::Result<()> {
    let Some(info) = probe(urls).await else {
        tracing::warn!(urls, "nats-server not reachable yet; will keep retrying");
        return Ok(());
    };
    if info.tls_required && !tls_configured {
        bail!(
            "nats-server at {urls} requires TLS, but the router is configured for plaintext; \
             use a tls:// URL and set nats.ca, nats.cert and nats.key (or --tls-ca/--tls-cert/--tls-key)"
        );
    }
    if info.tls_verify && !client_cert_configured {
        bail!(
            "nats-server at {urls} requires a client certificate; set nats.cert and nats.key \
             (or --tls-cert/--tls-key)"
        );
    }
    Ok(())
}
