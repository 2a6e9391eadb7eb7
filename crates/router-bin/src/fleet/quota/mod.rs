//! Quotas shared by a fleet (docs/ROUTING.md "Quotas"): each window's record in a JetStream
//! key-value bucket ([`record`]), this router's leases taken and returned with
//! compare-and-set ([`sync`]), and what the other routers write followed ([`follow`]).

pub mod follow;
pub mod record;
pub mod sync;

use std::sync::Arc;

use anyhow::Context;
use async_nats::jetstream::{self, kv};
use async_nats::Client;
use tokio::sync::{watch, Notify};

use router_core::Router;

use crate::fleet::buckets;

/// The two quota buckets.
#[derive(Clone)]
pub struct Stores {
    /// `router_quota_minute`.
    pub minute: kv::Store,
    /// `router_quota_calendar`.
    pub calendar: kv::Store,
}

impl Stores {
    /// Opens both buckets when they exist (a reader must not create them with its own
    /// settings).
    pub async fn existing(client: &Client) -> anyhow::Result<Stores> {
        let js = jetstream::new(client.clone());
        let open = |name: &'static str| {
            let js = js.clone();
            async move {
                js.get_key_value(name)
                    .await
                    .with_context(|| format!("no key-value bucket {name}"))
            }
        };
        Ok(Stores {
            minute: open(record::MINUTE_BUCKET).await?,
            calendar: open(record::CALENDAR_BUCKET).await?,
        })
    }

    /// Opens (or creates) both buckets with `replicas` copies.
    pub async fn open(client: &Client, replicas: usize) -> anyhow::Result<Stores> {
        let js = jetstream::new(client.clone());
        let minute = buckets::open(&js, record::minute_bucket(replicas)).await?;
        let calendar = buckets::open(&js, record::calendar_bucket(replicas)).await?;
        Ok(Stores { minute, calendar })
    }
}

/// How long start-up waits for the quota buckets before it goes on without them (decisions
/// under quotas then wait and refuse `lease_unavailable` until they open).
const OPEN_AT_START: std::time::Duration = std::time::Duration::from_secs(10);

/// Opens the buckets (waiting up to [`OPEN_AT_START`], then retrying in the background
/// until `stop`), then runs the lease sync and the follow watch. Returns the notification
/// decisions waiting for a lease wait on.
pub async fn start(
    client: Client,
    router: Arc<Router>,
    router_id: String,
    replicas: usize,
    mut stop: watch::Receiver<bool>,
) -> Arc<Notify> {
    let sync = sync::QuotaSync::new(router.clone(), router_id);
    let leased = sync.leased.clone();
    let wake = sync.wake();
    let opened = tokio::time::timeout(OPEN_AT_START, Stores::open(&client, replicas)).await;
    let opened = match opened {
        Ok(Ok(stores)) => Some(stores),
        Ok(Err(err)) => {
            tracing::warn!(error = %format!("{err:#}"), "cannot open the quota buckets yet; retrying in the background");
            None
        }
        Err(_) => None,
    };
    tokio::spawn(async move {
        let stores = loop {
            if let Some(stores) = opened.clone() {
                break stores;
            }
            match Stores::open(&client, replicas)
                .await
                .context("quota buckets")
            {
                Ok(stores) => break stores,
                Err(err) => {
                    tracing::warn!(error = %format!("{err:#}"), "cannot open the quota buckets; decisions under quotas wait, then refuse; retrying");
                    tokio::select! {
                        _ = stop.changed() => return,
                        _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
                    }
                }
            }
        };
        tokio::spawn(follow::run(stores.clone(), router, wake, stop.clone()));
        sync.run(stores, stop).await;
    });
    leased
}
