//! The NATS connection: TLS with a client certificate, reconnect forever with backoff, and
//! connection events turned into log lines, a readiness flag and metrics.
//!
//! [`ClientTls`] and [`tls_options`] are the one way this workspace sets up TLS for
//! async-nats: the router, router-bench and the xtask commands all connect through them.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use async_nats::{Client, ConnectOptions, Event};
use tokio::sync::watch;

use crate::config::NatsConfig;
use crate::telemetry::metrics::Metrics;
use crate::transport::connect_diagnosis::ConnectDiagnosis;

/// Messages a subscription buffers in the client library before it drops them as a slow
/// consumer. The decide workers read their subscription between every two requests and
/// answer what they cannot queue at once, so the buffer only has to absorb a burst for that
/// long; a million covers any burst a publisher on this machine produces, and costs memory
/// only while it is used.
pub const SUBSCRIPTION_CAPACITY: usize = 1 << 20;

/// Longest pause between reconnect attempts.
const MAX_RECONNECT_DELAY: Duration = Duration::from_millis(1000);

/// Connects (or starts connecting, when the server is not up yet) and returns the client.
/// `role` names the connection (`<name>-<role>` on the server) and its log lines; failed
/// attempts are explained by `diagnosis`; `readiness` is signalled whenever the connection
/// comes or goes.
pub async fn connect(
    config: &NatsConfig,
    role: &'static str,
    metrics: Arc<Metrics>,
    diagnosis: Arc<ConnectDiagnosis>,
    readiness: watch::Sender<()>,
) -> anyhow::Result<Client> {
    let servers = server_addrs(&config.url)?;
    base_options(config, role)
        .retry_on_initial_connect()
        .max_reconnects(None)
        .connection_timeout(Duration::from_secs(5))
        .reconnect_delay_callback(|attempts| {
            let exp = attempts.min(10) as u32;
            (Duration::from_millis(25) * 2u32.pow(exp)).min(MAX_RECONNECT_DELAY)
        })
        .subscription_capacity(SUBSCRIPTION_CAPACITY)
        .client_capacity(65_536)
        .event_callback(move |event| {
            let metrics = metrics.clone();
            let diagnosis = diagnosis.clone();
            let readiness = readiness.clone();
            async move {
                on_event(event, role, &metrics, &diagnosis);
                readiness.send_replace(());
            }
        })
        .connect(servers)
        .await
        .with_context(|| format!("cannot connect to NATS at {}", config.url))
}

/// True while `client` is connected to a server.
pub fn is_connected(client: &Client) -> bool {
    client.connection_state() == async_nats::connection::State::Connected
}

/// Waits at most this long for a flush while stopping; NATS may be gone.
const STOP_FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

/// Flushes pending publications, giving up after `STOP_FLUSH_TIMEOUT`; skipped while the
/// connection is down, as nothing could be delivered.
pub async fn flush_before_stop(client: &Client, what: &str) {
    if !is_connected(client) {
        tracing::warn!("{what} skipped: not connected to NATS");
        return;
    }
    match tokio::time::timeout(STOP_FLUSH_TIMEOUT, client.flush()).await {
        Ok(Ok(())) => {}
        Ok(Err(err)) => tracing::warn!(%err, "{what} failed"),
        Err(_) => tracing::warn!("{what} timed out: NATS did not answer"),
    }
}

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

fn on_event(event: Event, role: &str, metrics: &Metrics, diagnosis: &Arc<ConnectDiagnosis>) {
    match event {
        Event::Connected => {
            metrics.nats_connects.increment(1);
            tracing::info!(role, "connected to NATS");
        }
        Event::Disconnected => {
            tracing::warn!(role, "disconnected from NATS; reconnecting");
        }
        Event::Closed => {
            tracing::info!(role, "NATS connection closed");
        }
        Event::SlowConsumer(sid) => {
            tracing::warn!(
                sid,
                "slow consumer: messages were dropped by the client buffer"
            )
        }
        Event::LameDuckMode => tracing::warn!("nats-server entered lame duck mode"),
        Event::Draining => tracing::info!("draining NATS connection"),
        Event::ServerError(err) => tracing::error!(%err, "nats-server error"),
        Event::ClientError(err) => {
            tracing::error!(%err, "NATS client error");
            diagnosis.on_failure();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_router_config_gives_its_tls_files() {
        let plain = NatsConfig::default();
        assert_eq!(ClientTls::from_config(&plain), None);
        let ca_only = NatsConfig {
            ca: Some("/c/ca.pem".into()),
            ..NatsConfig::default()
        };
        assert_eq!(
            ClientTls::from_config(&ca_only),
            Some(ClientTls {
                ca: Some("/c/ca.pem".into()),
                client: None,
            })
        );
        let mutual = NatsConfig {
            cert: Some("/c/client.pem".into()),
            key: Some("/c/client-key.pem".into()),
            ..ca_only
        };
        assert_eq!(
            ClientTls::from_config(&mutual),
            Some(ClientTls {
                ca: Some("/c/ca.pem".into()),
                client: Some(("/c/client.pem".into(), "/c/client-key.pem".into())),
            })
        );
        let client_only = NatsConfig { ca: None, ..mutual };
        assert!(ClientTls::from_config(&client_only).is_some_and(|tls| tls.ca.is_none()));
    }
}
