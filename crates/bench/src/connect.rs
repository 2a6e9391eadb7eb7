//! NATS connections made the way the router makes them (TLS through
//! [`router_bin::transport::nats::tls_options`]: one CA file and a client certificate).

use std::time::Duration;

use anyhow::Context;
use async_nats::{Client, ConnectOptions};

use crate::cli::Plan;

/// How long one connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Connection options for `plan`, named `name` in the server's connection list.
pub fn options(plan: &Plan, name: &str) -> ConnectOptions {
    let options = ConnectOptions::new()
        .name(name)
        .connection_timeout(CONNECT_TIMEOUT)
        .request_timeout(Some(plan.request_timeout))
        .ignore_discovered_servers();
    router_bin::transport::nats::tls_options(options, plan.tls.as_ref())
}

/// Opens one connection; the error names the URL and what to check.
pub async fn connect(plan: &Plan, name: &str) -> anyhow::Result<Client> {
    let hint = if plan.tls.is_some() {
        "is nats-server running with TLS there (`cargo xtask nats-start --tls`), and do the \
         certificates match it (`cargo xtask certs`)?"
    } else {
        "is nats-server running there (`cargo xtask nats-start`)? If it requires TLS, pass \
         --tls-ca/--tls-cert/--tls-key and a tls:// URL"
    };
    options(plan, name)
        .connect(plan.nats_url.as_str())
        .await
        .with_context(|| format!("connecting to {}: {hint}", plan.nats_url))
}

/// Opens `plan.connections` requester connections.
pub async fn connect_requesters(plan: &Plan) -> anyhow::Result<Vec<Client>> {
    let mut clients = Vec::with_capacity(plan.connections);
    for i in 0..plan.connections {
        clients.push(connect(plan, &format!("router-bench-{i}")).await?);
    }
    Ok(clients)
}

/// Waits (bounded by `plan.wait_for_responders`) until something answers on `subject`.
///
/// Sends probe requests with the first corpus body; returns `Ok(())` on any reply (even an
/// error reply: the subject has a responder) or on a timeout (a responder exists but is slow;
/// the phase will measure that). Fails only when every probe met "no responders".
pub async fn wait_for_responder(
    client: &Client,
    subject: &str,
    probe: bytes::Bytes,
    wait: Duration,
) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match client.request(subject.to_owned(), probe.clone()).await {
            Ok(_) => return Ok(()),
            Err(err) if err.kind() == async_nats::RequestErrorKind::NoResponders => {
                if tokio::time::Instant::now() >= deadline {
                    anyhow::bail!(
                        "no responders on {subject} after {:.1}s: is the router running and \
                         connected to this nats-server (and using the same --subject-prefix)?",
                        wait.as_secs_f64()
                    );
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(err) if err.kind() == async_nats::RequestErrorKind::TimedOut => return Ok(()),
            Err(err) => {
                return Err(err).with_context(|| format!("probing {subject}"));
            }
        }
    }
}
