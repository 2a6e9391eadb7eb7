//! The lease sync task: takes and returns this router's shares of each quota window in the
//! shared buckets with compare-and-set, ahead of need, so that a decision never waits on the
//! network unless its meter ran dry (then it waits for this task, off the worker).
//!
//! Per meter, on each pass (every [`PASS`], or at once when woken):
//! - a lease of `max(limit / 16, what waits)` is taken when less than half of one is left
//!   and the meter is in use, never beyond the limit (the record's `leased`);
//! - a share idle for [`IDLE_RETURN`] is given back;
//! - usage that feedback corrected beyond the lease is added to the fleet's count, so the
//!   other routers see it (and [`super::follow`] makes them drop their unused shares);
//! - this router's `used` is written when it changed, for `router quota`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use async_nats::jetstream::kv;
use bytes::Bytes;
use tokio::sync::{watch, Notify};

use router_core::quota::{Meter, MeterKey};
use router_core::Router;

use super::record::{bucket_of, record_key, WindowRecord, MINUTE_BUCKET};
use super::Stores;
use crate::runtime::clock;

/// How often the task looks at every meter.
pub const PASS: Duration = Duration::from_millis(200);
/// A share unused this long is given back to the fleet.
pub const IDLE_RETURN: Duration = Duration::from_secs(5);
/// Attempts of one compare-and-set before the pass moves on.
const ATTEMPTS: usize = 8;

/// What this task remembers of a meter between passes.
#[derive(Debug, Default)]
struct Local {
    window_start_ms: u64,
    /// Lease changes (returns, covered overuse) not yet written to the record.
    pending: i64,
    /// `used` as last written.
    written_used: u64,
}

/// The lease sync of one router.
pub struct QuotaSync {
    router: Arc<Router>,
    router_id: String,
    wake: Arc<Notify>,
    /// Woken after each pass: decisions waiting for a lease ask again.
    pub leased: Arc<Notify>,
}

impl QuotaSync {
    /// A sync for `router`'s meters under `router_id`; decisions that wait are woken
    /// through [`QuotaSync::leased`].
    pub fn new(router: Arc<Router>, router_id: String) -> Self {
        let wake = Arc::new(Notify::new());
        let waker = wake.clone();
        router
            .engine()
            .quota()
            .set_waker(Arc::new(move || waker.notify_one()));
        QuotaSync {
            router,
            router_id,
            wake,
            leased: Arc::new(Notify::new()),
        }
    }

    /// What wakes this task for a pass.
    pub fn wake(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    /// Runs passes until `stop`.
    pub async fn run(&self, stores: Stores, mut stop: watch::Receiver<bool>) {
        let mut local: HashMap<MeterKey, Local> = HashMap::new();
        loop {
            for meter in self.router.engine().quota().meters() {
                if let Err(err) = self.pass(&stores, &meter, &mut local).await {
                    tracing::warn!(error = %format!("{err:#}"), "quota lease sync failed; the meter keeps its share and retries");
                }
            }
            self.leased.notify_waiters();
            tokio::select! {
                _ = stop.changed() => return,
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(PASS) => {}
            }
        }
    }

    async fn pass(
        &self,
        stores: &Stores,
        meter: &Meter,
        local: &mut HashMap<MeterKey, Local>,
    ) -> anyhow::Result<()> {
        let now = clock::now_ms();
        let window = meter.window_ms(now);
        let state = local.entry(meter.key().clone()).or_default();
        if state.window_start_ms != window.0 {
            *state = Local {
                window_start_ms: window.0,
                ..Local::default()
            };
        }
        let limit = meter.limit();
        let chunk = (limit / 16).max(1);
        let (used, granted, wanted) = (meter.used(), meter.granted(), meter.wanted());
        let in_use = now.saturating_sub(meter.last_take_ms()) < IDLE_RETURN.as_millis() as u64;
        let left = granted.saturating_sub(used);
        let need = wanted > 0 || (in_use && left < chunk.div_ceil(2));
        state.pending += i64::try_from(meter.cover_overuse()).unwrap_or(i64::MAX);
        if !in_use && wanted == 0 && left > 0 {
            state.pending -= i64::try_from(meter.shrink_lease()).unwrap_or(i64::MAX);
        }
        let used = meter.used();
        if !need && state.pending == 0 && used == state.written_used {
            return Ok(());
        }
        let store = stores.of(bucket_of(meter.key().kind));
        let key = record_key(meter.key(), window.0);
        for _ in 0..ATTEMPTS {
            let entry = store
                .entry(key.clone())
                .await
                .with_context(|| format!("cannot read quota record {key}"))?;
            let mut record = match &entry {
                Some(entry) if !entry.value.is_empty() => serde_json::from_slice(&entry.value)
                    .with_context(|| format!("quota record {key} is not a window record"))?,
                _ => WindowRecord::new(meter.key(), window, limit),
            };
            record.limit = limit;
            let want = if need { chunk.max(wanted) } else { 0 };
            let grant = want.min(limit.saturating_sub(record.leased));
            let delta = i64::try_from(grant).unwrap_or(i64::MAX) + state.pending;
            record.leased = apply(record.leased, delta);
            let share = record.routers.entry(self.router_id.clone()).or_default();
            share.granted = apply(share.granted, delta);
            share.used = used;
            let body = Bytes::from(serde_json::to_vec(&record)?);
            let written = match &entry {
                None => store.create(&key, body).await.is_ok(),
                Some(entry) => store.update(&key, body, entry.revision).await.is_ok(),
            };
            if !written {
                // Another router wrote first (or the write failed): read again and retry.
                continue;
            }
            tracing::debug!(%key, grant, leased = record.leased, limit, wanted, "quota lease written");
            state.pending = 0;
            state.written_used = used;
            meter.add_lease(window.0, grant, clock::now_ms());
            meter.set_fleet(window.0, record.used(), record.leased >= limit);
            return Ok(());
        }
        anyhow::bail!("quota record {key} kept changing under {ATTEMPTS} attempts")
    }
}

fn apply(value: u64, delta: i64) -> u64 {
    if delta >= 0 {
        value.saturating_add(delta.unsigned_abs())
    } else {
        value.saturating_sub(delta.unsigned_abs())
    }
}

impl Stores {
    fn of(&self, bucket: &str) -> &kv::Store {
        if bucket == MINUTE_BUCKET {
            &self.minute
        } else {
            &self.calendar
        }
    }
}
