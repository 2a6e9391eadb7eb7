//! Sticky sessions shared across routers through the JetStream key-value bucket
//! `router_sticky` (`sticky_store = "kv"`).
//!
//! The request path never waits for the bucket. Decisions read and write the local sticky
//! store in router-core as with `memory`; a weighted draw for a session hands its new
//! mapping to [`StickySync::offer`], which only tries to queue it on a bounded channel
//! (a full queue drops it and counts `router_sticky_kv_total{result="dropped"}`).
//!
//! - The writer task stores each mapping with `create`: the first router to bind a session
//!   wins. A router that loses the race (another router bound the same session meanwhile)
//!   imports the winner's mapping, so all routers converge on one provider per session. An
//!   entry whose own TTL has run out is replaced with a compare-and-set `update`.
//! - The watcher task imports every mapping in the bucket (the current ones at start, then
//!   each new one) into the local store with the time it still has to live.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::kv::{self, CreateErrorKind, Operation};
use async_nats::Client;
use metrics::Counter;
use router_core::decision::StickyMapping;
use router_core::Handled;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use router_core::Router;

use crate::fleet::bucket_watch::{self, WatchStart};
use crate::fleet::buckets;
use crate::runtime::clock::now_ms;
use crate::telemetry::metrics::Registry;

/// The counter of this module, by `result`.
const COUNTER: &str = "router_sticky_kv_total";

/// Mappings queued for the writer before new ones are dropped.
const QUEUE: usize = 16_384;
/// Bucket writes in flight at once.
const WRITES_IN_FLIGHT: usize = 64;

/// The request path's handle: queues new mappings for the writer.
#[derive(Debug)]
pub struct StickySync {
    queue: mpsc::Sender<StickyMapping>,
    dropped: Counter,
}

/// What [`channel`] returns: the handle for the request path and the receiving end for the
/// writer task.
pub struct Channel {
    /// For `Shared`.
    pub sync: StickySync,
    /// For [`run`].
    pub mappings: mpsc::Receiver<StickyMapping>,
}

struct Counters {
    written: Counter,
    lost_race: Counter,
    failed: Counter,
    imported: Counter,
}

/// Creates the queue between the request path and the writer.
pub fn channel(registry: &Registry) -> Channel {
    registry.describe_counter(
        COUNTER,
        None,
        "Sticky mappings router through the router_sticky bucket, by result",
    );
    let (queue, mappings) = mpsc::channel(QUEUE);
    Channel {
        sync: StickySync {
            queue,
            dropped: registry.counter(COUNTER, &[("result", "dropped")]),
        },
        mappings,
    }
}

impl StickySync {
    /// Queues the mapping `handled` recorded, if any; never waits.
    pub fn offer(&self, handled: &Handled) {
        if let Some(mapping) = &handled.sticky {
            if self.queue.try_send(mapping.clone()).is_err() {
                self.dropped.increment(1);
            }
        }
    }
}

/// Runs the writer and the watcher until `shutdown` flips.
pub async fn run(
    client: Client,
    router: Arc<Router>,
    registry: &Registry,
    mappings: mpsc::Receiver<StickyMapping>,
    replicas: usize,
    mut shutdown: watch::Receiver<bool>,
) {
    let counters = Arc::new(Counters {
        written: registry.counter(COUNTER, &[("result", "written")]),
        lost_race: registry.counter(COUNTER, &[("result", "lost_race")]),
        failed: registry.counter(COUNTER, &[("result", "failed")]),
        imported: registry.counter(COUNTER, &[("result", "imported")]),
    });
    let js = bucket_watch::jetstream(client);
    let Some(store) = bucket_watch::open_when_reachable(
        &js,
        buckets::sticky_bucket(replicas),
        "sticky",
        &mut shutdown,
    )
    .await
    else {
        return;
    };
    tracing::info!(bucket = buckets::STICKY_BUCKET, "sticky sessions router");
    let writer = write(
        store.clone(),
        router.clone(),
        counters.clone(),
        mappings,
        shutdown.clone(),
    );
    let watcher = import(store, router, counters, shutdown);
    tokio::join!(writer, watcher);
}

/// Stores queued mappings, a bounded number at a time.
async fn write(
    store: kv::Store,
    router: Arc<Router>,
    counters: Arc<Counters>,
    mut mappings: mpsc::Receiver<StickyMapping>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut writes = JoinSet::new();
    loop {
        let mapping = tokio::select! {
            _ = shutdown.changed() => break,
            mapping = mappings.recv() => match mapping { Some(m) => m, None => break },
        };
        while writes.len() >= WRITES_IN_FLIGHT {
            writes.join_next().await;
        }
        writes.spawn(write_one(
            store.clone(),
            router.clone(),
            counters.clone(),
            mapping,
        ));
    }
    // Give the writes already started a moment to land.
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        while writes.join_next().await.is_some() {}
    })
    .await;
}

async fn write_one(
    store: kv::Store,
    router: Arc<Router>,
    counters: Arc<Counters>,
    mapping: StickyMapping,
) {
    let Some(key) = buckets::sticky_key(
        &mapping.tenant_id,
        &mapping.policy_id,
        &mapping.session_key,
        &mapping.session,
    ) else {
        return;
    };
    let Ok(value) = serde_json::to_vec(&mapping) else {
        return;
    };
    let err = match store.create(&key, value.clone().into()).await {
        Ok(_) => {
            counters.written.increment(1);
            return;
        }
        Err(err) => err,
    };
    if err.kind() != CreateErrorKind::AlreadyExists {
        counters.failed.increment(1);
        tracing::debug!(%err, "cannot store a sticky mapping");
        return;
    }
    // Another router bound this session first, or an old binding is still stored.
    let entry = match store.entry(&key).await {
        Ok(Some(entry)) if entry.operation == Operation::Put => entry,
        Ok(_) => return,
        Err(err) => {
            counters.failed.increment(1);
            tracing::debug!(%err, "cannot read a sticky mapping");
            return;
        }
    };
    let now = now_ms();
    match serde_json::from_slice::<StickyMapping>(&entry.value) {
        Ok(stored) if stored.remaining_ms(now) > 0 => {
            if stored.provider_id != mapping.provider_id {
                counters.lost_race.increment(1);
                remember(&router, &stored, now);
            }
        }
        // Expired or unreadable: replace it unless someone else does first.
        _ => match store.update(&key, value.into(), entry.revision).await {
            Ok(_) => counters.written.increment(1),
            Err(err) => tracing::debug!(%err, "sticky mapping replaced meanwhile"),
        },
    }
}

/// Imports every mapping in the bucket, then each new one, until shutdown.
async fn import(
    store: kv::Store,
    router: Arc<Router>,
    counters: Arc<Counters>,
    mut shutdown: watch::Receiver<bool>,
) {
    bucket_watch::follow(
        &store,
        "sticky",
        WatchStart::CurrentValues,
        &mut shutdown,
        |entry| {
            if entry.operation != Operation::Put {
                return;
            }
            if let Ok(record) = serde_json::from_slice::<StickyMapping>(&entry.value) {
                if remember(&router, &record, now_ms()) {
                    counters.imported.increment(1);
                }
            }
        },
    )
    .await;
}

/// Puts a stored mapping into the local store for the time it still has; false when it
/// has expired.
fn remember(router: &Router, record: &StickyMapping, now: u64) -> bool {
    let remaining = record.remaining_ms(now);
    if remaining == 0 {
        return false;
    }
    router.engine().remember_sticky(record, remaining, now);
    true
}
