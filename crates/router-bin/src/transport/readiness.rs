//! Readiness: connected to NATS, every subscription registered, at least one policy served.
//! `/readyz` reports it and [`crate::RunningRouter::ready`] waits for it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use async_nats::Client;
use tokio::sync::watch;

use router_core::Router;

use crate::transport::nats;

/// Subscriptions that must be registered before the router reports ready: decide, feedback,
/// and the control endpoints.
pub const SUBSCRIPTIONS: u64 = 3;

/// What readiness is made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadyReport {
    /// Every NATS connection is up.
    pub nats_connected: bool,
    /// Every subscription is registered with the server.
    pub subscribed: bool,
    /// Policies served.
    pub policies_loaded: usize,
}

impl ReadyReport {
    /// Ready to serve decide requests.
    pub fn ready(&self) -> bool {
        self.nats_connected && self.subscribed && self.policies_loaded > 0
    }
}

/// A readiness signal, made before the connections so that their event handlers can send on
/// it when a connection comes or goes.
pub fn signal() -> watch::Sender<()> {
    watch::Sender::new(())
}

/// The router's readiness, with a signal whenever one of its parts may have changed.
pub struct Readiness {
    router: Arc<Router>,
    connections: Vec<Client>,
    subscribed: AtomicU64,
    changed: watch::Sender<()>,
}

impl Readiness {
    /// Readiness of `router` served over `connections`; `changed` is the signal the
    /// connections' event handlers also send on (see [`signal`]).
    pub fn new(router: Arc<Router>, connections: Vec<Client>, changed: watch::Sender<()>) -> Self {
        Readiness {
            router,
            connections,
            subscribed: AtomicU64::new(0),
            changed,
        }
    }

    /// Records that one subscription is registered on the server, once a round trip through
    /// the server shows it has processed what `client` sent before. Returns whether the
    /// server's answer came back: that answer is one more message `client` received.
    pub async fn mark_subscribed(&self, client: &Client) -> bool {
        let answered = server_round_trip(client).await;
        self.subscribed.fetch_add(1, Ordering::SeqCst);
        self.touch();
        answered
    }

    /// Wakes whoever waits for readiness: a connection, subscription or policy changed.
    pub fn touch(&self) {
        self.changed.send_replace(());
    }

    /// True while every NATS connection is up.
    pub fn nats_connected(&self) -> bool {
        self.connections.iter().all(nats::is_connected)
    }

    /// The parts of readiness as of now.
    pub fn report(&self) -> ReadyReport {
        ReadyReport {
            nats_connected: self.nats_connected(),
            subscribed: self.subscribed.load(Ordering::SeqCst) >= SUBSCRIPTIONS,
            policies_loaded: self.router.policies().snapshot().len(),
        }
    }

    /// Waits until the router is ready.
    pub async fn wait_ready(&self) {
        let mut changed = self.changed.subscribe();
        while !self.report().ready() {
            // The sender lives as long as `self`: `changed` cannot fail while we hold it.
            let _ = changed.changed().await;
        }
    }
}

/// Subject of the readiness round trip: nobody subscribes to it, so nats-server itself
/// answers "no responders" (and the router's certificate may publish below `$SRV.`).
const ROUND_TRIP_SUBJECT: &str = "$SRV.PING.beamline-router-readiness";
/// Longest wait for that answer (a server without "no responders" support never gives one).
const ROUND_TRIP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// A request nats-server answers itself. A flush only writes the socket; the server handles
/// a connection's messages in order, so its answer means every SUB sent before is in place.
/// Returns whether an answer (a message on `client`) arrived.
async fn server_round_trip(client: &Client) -> bool {
    let request = client.request(ROUND_TRIP_SUBJECT, bytes::Bytes::new());
    match tokio::time::timeout(ROUND_TRIP_TIMEOUT, request).await {
        Ok(Ok(_)) => true,
        Ok(Err(err)) if err.kind() == async_nats::RequestErrorKind::NoResponders => true,
        Ok(Err(err)) => {
            tracing::debug!(%err, "readiness round trip");
            false
        }
        Err(_) => {
            tracing::debug!("no answer to the readiness round trip within 2 s");
            false
        }
    }
}
