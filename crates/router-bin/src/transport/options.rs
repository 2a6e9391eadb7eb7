//! Connection options every NATS client of the workspace shares: the base options (name,
//! reconnects, the subscription capacity), the TLS files, and the server list.

use std::path::PathBuf;

use anyhow::Context;
use async_nats::ConnectOptions;

use crate::config::NatsConfig;

/// The connection's name (`<name>-<role>`) and TLS settings: root CA, client certificate.
pub fn base_options(config: &NatsConfig, role: &str) -> ConnectOptions {
    let options = ConnectOptions::new().name(format!("{}-{role}", config.name));
    tls_options(options, ClientTls::from_config(config).as_ref())
}

/// The TLS files of a NATS client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientTls {
    /// CA certificate (PEM) that signed the server's certificate, the only root the server
    /// is verified against; `None` leaves async-nats's default roots (the router allows a
    /// client certificate without `nats.ca`).
    pub ca: Option<PathBuf>,
    /// Client certificate and its private key (PEM), presented for mutual TLS.
    pub client: Option<(PathBuf, PathBuf)>,
}

impl ClientTls {
    /// The TLS files of the router's configuration (`nats.ca`, `nats.cert`, `nats.key`);
    /// `None` when it has neither a CA nor a client certificate with its key.
    pub fn from_config(config: &NatsConfig) -> Option<Self> {
        let client = config.cert.clone().zip(config.key.clone());
        (config.ca.is_some() || client.is_some()).then(|| ClientTls {
            ca: config.ca.clone(),
            client,
        })
    }
}

/// `options` with TLS required and set up from `tls`: its CA as root certificates, its
/// client certificate and key, and the inbox prefix of the certificate's identity
/// ([`router_core::Identity::inbox_prefix`]); unchanged when `tls` is `None`. The files are read when the
/// connection is made. Never `tls_client_config`, which loads the platform's certificate
/// store on every connect.
pub fn tls_options(options: ConnectOptions, tls: Option<&ClientTls>) -> ConnectOptions {
    let Some(tls) = tls else {
        return options;
    };
    let mut options = options.require_tls(true);
    if let Some(ca) = &tls.ca {
        options = options.add_root_certificates(ca.clone());
    }
    if let Some((cert, key)) = &tls.client {
        options = options.add_client_certificate(cert.clone(), key.clone());
        // nats-server lets each identity subscribe only below its own inbox prefix.
        if let Ok(identity) = crate::transport::tls::certificate_identity(cert) {
            options = options.custom_inbox_prefix(identity.inbox_prefix());
        }
    }
    options
}

/// The servers of a comma-separated URL list.
pub fn server_addrs(urls: &str) -> anyhow::Result<Vec<async_nats::ServerAddr>> {
    urls.split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .map(|u| u.parse().with_context(|| format!("invalid NATS URL {u:?}")))
        .collect()
}
