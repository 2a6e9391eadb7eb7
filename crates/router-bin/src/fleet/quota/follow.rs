//! Following the quota buckets: what other routers write reaches this router's meters
//! (the fleet's usage, whether the window is full), and a window pushed past its limit by a
//! correction makes this router drop its unused share, so that its next decisions see the
//! true usage instead of spending a lease the fleet no longer has.

use std::sync::Arc;

use futures::StreamExt;
use tokio::sync::{watch, Notify};

use router_core::Router;

use super::record::WindowRecord;
use super::Stores;
use crate::runtime::clock;

/// Applies every record written to `stores` to `router`'s meters until `stop`; `wake`
/// wakes the sync task when a share was dropped.
pub async fn run(
    stores: Stores,
    router: Arc<Router>,
    wake: Arc<Notify>,
    mut stop: watch::Receiver<bool>,
) {
    for store in [stores.minute, stores.calendar] {
        let (router, wake, mut stop) = (router.clone(), wake.clone(), stop.clone());
        tokio::spawn(async move {
            loop {
                let mut watch = match store.watch_all().await {
                    Ok(watch) => watch,
                    Err(err) => {
                        tracing::warn!(%err, "cannot watch a quota bucket; retrying");
                        tokio::select! {
                            _ = stop.changed() => return,
                            _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => continue,
                        }
                    }
                };
                loop {
                    tokio::select! {
                        _ = stop.changed() => return,
                        entry = watch.next() => match entry {
                            Some(Ok(entry)) => apply(&router, &entry.value, &wake),
                            Some(Err(err)) => {
                                tracing::debug!(%err, "quota watch error; watching again");
                                break;
                            }
                            None => break,
                        },
                    }
                }
            }
        });
    }
    let _ = stop.changed().await;
}

fn apply(router: &Router, value: &[u8], wake: &Notify) {
    let Ok(record) = serde_json::from_slice::<WindowRecord>(value) else {
        return;
    };
    let Some(key) = record.meter_key() else {
        return;
    };
    let Some(meter) = router.engine().quota().find(&key) else {
        return;
    };
    let (start, _) = meter.window_ms(clock::now_ms());
    if start != record.window_start_ms {
        return;
    }
    meter.set_fleet(start, record.used(), record.leased >= record.limit);
    if record.leased > record.limit {
        // Real usage (a correction) went past the limit: nothing is left for anyone this
        // window, so this router drops its unused share (the record keeps counting it: the
        // window is over-full either way) and its next decisions refuse.
        let dropped = meter.shrink_lease();
        if dropped > 0 {
            tracing::debug!(key = ?meter.key(), dropped, "quota window over its limit; unused share dropped");
            wake.notify_one();
        }
    }
}
