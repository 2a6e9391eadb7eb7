//! The NATS connection: TLS with a client certificate, reconnect forever with backoff, and
//! connection events turned into log lines, a readiness flag and metrics.
//!
//! [`ClientTls`] and [`tls_options`] are the one way this workspace sets up TLS for
//! async-nats: the router, router-bench and the xtask commands all connect through them.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use async_nats::{Client, Event};
use tokio::sync::watch;

use crate::config::NatsConfig;
use crate::telemetry::metrics::Metrics;
use crate::transport::connect_diagnosis::ConnectDiagnosis;
pub use crate::transport::options::{base_options, server_addrs, tls_options, ClientTls};

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
