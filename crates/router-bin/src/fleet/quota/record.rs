//! The shared record of one quota window in the buckets `router_quota_minute` and
//! `router_quota_calendar`: the limit, what the fleet has leased, and each router's share.
//!
//! Invariant (docs/ROUTING.md "Quotas"): `leased` ≥ Σ granted ≥ Σ used. A router admits
//! only within its granted share, and `leased` only grows past the limit by corrections of
//! real usage, so the requests admitted in a window never exceed the limit.

use std::collections::BTreeMap;
use std::time::Duration;

use async_nats::jetstream::{kv, stream::StorageType};
use serde::{Deserialize, Serialize};

use router_core::quota::{Kind, MeterKey, Scope, Window};

use crate::fleet::buckets::hex_into;

/// Bucket of per-minute windows (`rpm`, `tpm`).
pub const MINUTE_BUCKET: &str = "router_quota_minute";
/// Bucket of calendar windows (`budget.day`, `budget.month`).
pub const CALENDAR_BUCKET: &str = "router_quota_calendar";

/// One router's share of a window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Share {
    /// Leased to it.
    pub granted: u64,
    /// Admitted by it, with corrections.
    pub used: u64,
}

/// One window of one quota, as the fleet shares it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WindowRecord {
    /// The tenant.
    pub tenant_id: String,
    /// The policy, for a provider's quota.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_id: Option<String>,
    /// The provider, for a provider's quota.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_id: Option<String>,
    /// `rpm`, `tpm`, `budget_day`, `budget_month`.
    pub kind: String,
    /// Window start, epoch ms.
    pub window_start_ms: u64,
    /// Window end (exclusive), epoch ms.
    pub window_end_ms: u64,
    /// The limit (millionths of the currency for budgets).
    pub limit: u64,
    /// Leased to routers, plus corrections beyond their leases.
    pub leased: u64,
    /// Each router's share, by router id.
    pub routers: BTreeMap<String, Share>,
}

impl WindowRecord {
    /// A new record for `key`'s window.
    pub fn new(key: &MeterKey, (start, end): (u64, u64), limit: u64) -> Self {
        let (policy_id, provider_id) = match &key.scope {
            Scope::Tenant { .. } => (None, None),
            Scope::Provider {
                policy_id,
                provider_id,
                ..
            } => (Some(policy_id.clone()), Some(provider_id.clone())),
        };
        WindowRecord {
            tenant_id: key.scope.tenant_id().to_owned(),
            policy_id,
            provider_id,
            kind: key.kind.as_str().to_owned(),
            window_start_ms: start,
            window_end_ms: end,
            limit,
            ..WindowRecord::default()
        }
    }

    /// What the fleet admitted in the window.
    pub fn used(&self) -> u64 {
        self.routers.values().map(|s| s.used).sum()
    }

    /// The meter this record is about.
    pub fn meter_key(&self) -> Option<MeterKey> {
        let kind = Kind::parse(&self.kind)?;
        Some(match (&self.policy_id, &self.provider_id) {
            (Some(policy), Some(provider)) => {
                MeterKey::provider(&self.tenant_id, policy, provider, kind)
            }
            _ => MeterKey::tenant(&self.tenant_id, kind),
        })
    }
}

/// The bucket a kind's windows live in.
pub fn bucket_of(kind: Kind) -> &'static str {
    match kind.window() {
        Window::Minute => MINUTE_BUCKET,
        Window::Day | Window::Month => CALENDAR_BUCKET,
    }
}

/// The key of `key`'s window starting at `start`:
/// `<kind>.<start>.<hex tenant>[.<hex policy>.<hex provider>]`.
pub fn record_key(key: &MeterKey, start: u64) -> String {
    let mut out = format!("{}.{start}.", key.kind.as_str());
    hex_into(&mut out, key.scope.tenant_id().as_bytes());
    if let Scope::Provider {
        policy_id,
        provider_id,
        ..
    } = &key.scope
    {
        out.push('.');
        hex_into(&mut out, policy_id.as_bytes());
        out.push('.');
        hex_into(&mut out, provider_id.as_bytes());
    }
    out
}

fn bucket(name: &str, description: &str, max_age: Duration, replicas: usize) -> kv::Config {
    kv::Config {
        bucket: name.to_owned(),
        description: description.to_owned(),
        history: 1,
        max_age,
        max_value_size: 64 * 1024,
        // Usage is what a bill is made of: on disk, `replicas` copies, so neither a restart
        // nor the loss of a node resets it.
        storage: StorageType::File,
        num_replicas: replicas.max(1),
        ..kv::Config::default()
    }
}

/// `router_quota_minute`: windows of a minute, kept 10 minutes.
pub fn minute_bucket(replicas: usize) -> kv::Config {
    bucket(
        MINUTE_BUCKET,
        "Beamline Router quota windows of a minute (rpm, tpm)",
        Duration::from_secs(600),
        replicas,
    )
}

/// `router_quota_calendar`: day and month windows, kept 40 days.
pub fn calendar_bucket(replicas: usize) -> kv::Config {
    bucket(
        CALENDAR_BUCKET,
        "Beamline Router quota windows of a UTC day or month (budgets)",
        Duration::from_secs(40 * 86_400),
        replicas,
    )
}
