//! The NATS connection: TLS with a client certificate, reconnect forever with backoff, and
//! connection events turned into log lines, a readiness flag and metrics.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use async_nats::{Client, ConnectOptions, Event};
use tokio::sync::watch;

use crate::config::NatsConfig;
use crate::connect_diagnosis::ConnectDiagnosis;
use crate::metrics::Metrics;

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

/// Flushes pending publications, giving up after [`STOP_FLUSH_TIMEOUT`]; skipped while the
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
    let mut options = ConnectOptions::new().name(format!("{}-{role}", config.name));
    if let Some(ca) = &config.ca {
        options = options.add_root_certificates(ca.clone()).require_tls(true);
    }
    if let (Some(cert), Some(key)) = (&config.cert, &config.key) {
        options = options
            .add_client_certificate(cert.clone(), key.clone())
            .require_tls(true);
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
