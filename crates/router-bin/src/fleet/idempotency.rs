//! Idempotency across a fleet (`idempotency_store = "kv"`): the first decision for
//! (tenant, idempotency key) is kept in the JetStream key-value bucket `router_idempotency`
//! with the routers' TTL, written with create-if-absent. A router that loses the race (another
//! router decided the same key first) replies with the winner's decision, marked replayed, and
//! keeps it for local repeats.
//!
//! Only requests that carry an `idempotency_key` pay for it: the decide worker hands them to
//! a task of their own that settles the key with the bucket and then publishes the reply, so
//! the worker goes on with the next request meanwhile. When the bucket cannot be reached in
//! time the router answers with its own decision (as a single router would) and counts it.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::kv::{self, CreateErrorKind};
use async_nats::Client;
use metrics::Counter;
use router_core::decision::Decision;
use router_core::{Handled, IdempotentDecision, Router};
use tokio::sync::{watch, OnceCell};

use crate::fleet::bucket_watch;
use crate::fleet::buckets;
use crate::runtime::clock;
use crate::runtime::shutdown::sleep_or_stop;
use crate::telemetry::metrics::Registry;

/// Longest wait for the bucket per request; the router's own decision is the answer then.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(1);

/// Counts by result (`router_idempotency_kv_total{result}`).
struct Counters {
    won: Counter,
    lost: Counter,
    failed: Counter,
}

/// The fleet's idempotency store, opened in the background.
pub struct FleetIdempotency {
    store: Arc<OnceCell<kv::Store>>,
    counters: Counters,
}

impl FleetIdempotency {
    /// Opens (or creates) the bucket in the background, retrying until shutdown; requests
    /// answered before it is open are settled locally.
    pub fn start(
        client: Client,
        replicas: usize,
        ttl: Duration,
        registry: &Registry,
        mut shutdown: watch::Receiver<bool>,
    ) -> Arc<Self> {
        const NAME: &str = "router_idempotency_kv_total";
        registry.describe_counter(
            NAME,
            None,
            "Idempotency keys settled with the fleet's bucket, by result",
        );
        let fleet = Arc::new(FleetIdempotency {
            store: Arc::new(OnceCell::new()),
            counters: Counters {
                won: registry.counter(NAME, &[("result", "won")]),
                lost: registry.counter(NAME, &[("result", "lost")]),
                failed: registry.counter(NAME, &[("result", "failed")]),
            },
        });
        let store = fleet.store.clone();
        tokio::spawn(async move {
            let js = bucket_watch::jetstream(client);
            let config = buckets::idempotency_bucket(replicas, ttl);
            loop {
                match buckets::open(&js, config.clone()).await {
                    Ok(opened) => {
                        let _ = store.set(opened);
                        tracing::info!(
                            bucket = buckets::IDEMPOTENCY_BUCKET,
                            "idempotency keys shared"
                        );
                        return;
                    }
                    Err(err) => tracing::warn!(
                        error = %format!("{err:#}"),
                        "idempotency bucket not reachable yet; retrying"
                    ),
                }
                if sleep_or_stop(&mut shutdown, bucket_watch::RETRY_DELAY).await {
                    return;
                }
            }
        });
        fleet
    }

    /// The reply for a first decision made here: our own when we were first, the winner's
    /// (replayed) when another router decided the key first.
    pub async fn settle(
        &self,
        router: &Router,
        ours: IdempotentDecision,
        handled: Handled,
    ) -> Handled {
        let Some(store) = self.store.get() else {
            self.counters.failed.increment(1);
            return handled;
        };
        let key = buckets::idempotency_key(&ours.tenant_id, &ours.key);
        let Ok(value) = serde_json::to_vec(&ours.decision) else {
            return handled;
        };
        let created = tokio::time::timeout(SETTLE_TIMEOUT, store.create(&key, value.into())).await;
        match created {
            Ok(Ok(_)) => {
                self.counters.won.increment(1);
                handled
            }
            Ok(Err(err)) if err.kind() == CreateErrorKind::AlreadyExists => {
                match self.winner(store, &key).await {
                    Some(first) => {
                        self.counters.lost.increment(1);
                        router.remember_first(
                            &ours.tenant_id,
                            &ours.key,
                            first.clone(),
                            clock::now_ms(),
                        );
                        router.replay(&ours, &first)
                    }
                    None => {
                        self.counters.failed.increment(1);
                        handled
                    }
                }
            }
            Ok(Err(err)) => {
                self.counters.failed.increment(1);
                tracing::debug!(%err, "cannot store an idempotency key");
                handled
            }
            Err(_) => {
                self.counters.failed.increment(1);
                handled
            }
        }
    }

    async fn winner(&self, store: &kv::Store, key: &str) -> Option<Decision> {
        let entry = tokio::time::timeout(SETTLE_TIMEOUT, store.get(key))
            .await
            .ok()?
            .ok()??;
        serde_json::from_slice(&entry).ok()
    }
}
