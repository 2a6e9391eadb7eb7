//! Policies from the JetStream key-value bucket `router_policies` (`policy_source = "kv"`).
//!
//! At start the watcher reads the bucket's current contents (one entry per key), builds a
//! whole policy set and swaps it in at once: until then the store is empty and `/readyz`
//! says not ready, so a router never serves half a snapshot. Afterwards every change is
//! applied as it arrives, one atomic upsert or removal per key. A value that cannot be read
//! or fails validation is logged and counted (`router_policy_kv_updates_total{result=
//! "rejected"}`), and the policy already served for that key stays. If the watch breaks, it
//! resumes after the last revision applied, so no change is skipped.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::kv::{self, Operation};
use async_nats::Client;
use futures::StreamExt;
use metrics::Counter;
use tokio::sync::watch;

use router_core::policy::PolicySet;
use router_core::Router;

use crate::fleet::bucket_watch::{self, bucket_state, WatchStart, RETRY_DELAY};
use crate::fleet::buckets;
use crate::runtime::shutdown::sleep_or_stop;
use crate::telemetry::metrics::{Metrics, Registry};
use crate::transport::readiness::Readiness;

/// How long to wait for the first entry before asking the bucket whether it is empty.
const SNAPSHOT_PROBE: Duration = Duration::from_secs(1);

struct Counters {
    applied: Counter,
    removed: Counter,
    rejected: Counter,
}

impl Counters {
    fn register(registry: &Registry) -> Self {
        const NAME: &str = "router_policy_kv_updates_total";
        registry.describe_counter(
            NAME,
            None,
            "Policy changes read from the router_policies bucket, by result",
        );
        Counters {
            applied: registry.counter(NAME, &[("result", "applied")]),
            removed: registry.counter(NAME, &[("result", "removed")]),
            rejected: registry.counter(NAME, &[("result", "rejected")]),
        }
    }
}

/// What the policy task updates.
pub struct PolicyTarget {
    /// The router whose policy store is replaced and updated.
    pub router: Arc<Router>,
    /// `router_policies_loaded` and the registry for this task's counters.
    pub metrics: Arc<Metrics>,
    /// Told when the policy count changes.
    pub readiness: Arc<Readiness>,
}

/// Watches the policy bucket until `shutdown` flips. Never returns an error: a failure to
/// reach the bucket is logged and retried, and the policies already served stay.
pub async fn run(
    client: Client,
    target: PolicyTarget,
    replicas: usize,
    mut shutdown: watch::Receiver<bool>,
) {
    let counters = Counters::register(&target.metrics.registry);
    let js = bucket_watch::jetstream(client);
    let Some(store) = bucket_watch::open_when_reachable(
        &js,
        buckets::policy_bucket(replicas),
        "policy",
        &mut shutdown,
    )
    .await
    else {
        return;
    };
    let last_revision = loop {
        match load_snapshot(&store, &target, &counters).await {
            Ok(revision) => break revision,
            Err(err) => {
                tracing::warn!(error = %format!("{err:#}"), "cannot read the policy bucket; retrying")
            }
        }
        if sleep_or_stop(&mut shutdown, RETRY_DELAY).await {
            return;
        }
    };
    bucket_watch::follow(
        &store,
        "policy",
        WatchStart::After(last_revision),
        &mut shutdown,
        |entry| apply(&target, &counters, entry),
    )
    .await;
}

/// Reads the current value of every key, swaps the whole set in, and returns the highest
/// revision seen (where the live watch resumes).
async fn load_snapshot(
    store: &kv::Store,
    target: &PolicyTarget,
    counters: &Counters,
) -> anyhow::Result<u64> {
    let mut set = PolicySet::default();
    let mut last_revision = 0;
    let mut refused = 0usize;
    let mut watch = store.watch_with_history(">").await?;
    loop {
        let entry = match tokio::time::timeout(SNAPSHOT_PROBE, watch.next()).await {
            Ok(Some(entry)) => entry?,
            Ok(None) => anyhow::bail!("the watch ended during the snapshot"),
            Err(_) => {
                // Nothing yet: an empty bucket delivers nothing at all.
                let (messages, last) = bucket_state(store).await?;
                if messages == 0 || last <= last_revision {
                    break;
                }
                continue;
            }
        };
        last_revision = last_revision.max(entry.revision);
        let Some((tenant, policy_id)) = buckets::parse_policy_key(&entry.key) else {
            counters.rejected.increment(1);
            refused += 1;
            tracing::error!(key = %entry.key, "policy bucket key is not <tenant>.<policy>; ignored");
            if entry.delta == 0 {
                break;
            }
            continue;
        };
        match entry.operation {
            Operation::Put => match buckets::parse_policy(&entry.value, tenant, policy_id) {
                Ok(policy) => set.insert(policy),
                Err(reason) => {
                    counters.rejected.increment(1);
                    refused += 1;
                    tracing::error!(tenant, policy = policy_id, %reason, "policy in the bucket refused");
                }
            },
            Operation::Delete | Operation::Purge => {
                set.remove(tenant, policy_id);
            }
        }
        if entry.delta == 0 {
            break;
        }
    }
    let loaded = set.len();
    target.router.policies().replace(set);
    target.metrics.policies_loaded.set(loaded as f64);
    target.readiness.touch();
    counters.applied.increment(loaded as u64);
    tracing::info!(
        loaded,
        refused,
        revision = last_revision,
        bucket = buckets::POLICY_BUCKET,
        "policies loaded from the key-value bucket"
    );
    if loaded == 0 {
        tracing::warn!("the policy bucket holds no valid policy: not ready until one is put");
    }
    Ok(last_revision)
}

/// Applies one live change atomically; a refused value keeps the policy already served.
fn apply(target: &PolicyTarget, counters: &Counters, entry: &kv::Entry) {
    let Some((tenant, policy_id)) = buckets::parse_policy_key(&entry.key) else {
        counters.rejected.increment(1);
        tracing::error!(key = %entry.key, "policy bucket key is not <tenant>.<policy>; ignored");
        return;
    };
    let policies = target.router.policies();
    match entry.operation {
        Operation::Put => match buckets::parse_policy(&entry.value, tenant, policy_id) {
            Ok(policy) => {
                policies.upsert(policy);
                counters.applied.increment(1);
                tracing::info!(
                    tenant,
                    policy = policy_id,
                    revision = entry.revision,
                    "policy updated from the bucket"
                );
            }
            Err(reason) => {
                counters.rejected.increment(1);
                let kept = policies.get(tenant, policy_id).is_some();
                tracing::error!(tenant, policy = policy_id, revision = entry.revision, %reason, kept_previous = kept, "policy in the bucket refused");
            }
        },
        Operation::Delete | Operation::Purge => {
            if policies.remove(tenant, policy_id) {
                counters.removed.increment(1);
                tracing::info!(tenant, policy = policy_id, "policy removed from the bucket");
            }
        }
    }
    target
        .metrics
        .policies_loaded
        .set(policies.snapshot().len() as f64);
    target.readiness.touch();
}
