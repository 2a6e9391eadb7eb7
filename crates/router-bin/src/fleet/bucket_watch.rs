//! Following a JetStream key-value bucket: the watch that resumes after the last revision
//! seen whenever it breaks, ends, or silently falls behind, until shutdown. The policy and
//! sticky-session tasks both follow their bucket this way.

use std::time::Duration;

use async_nats::jetstream::{self, kv};
use async_nats::Client;
use futures::StreamExt;
use tokio::sync::watch;

use crate::fleet::buckets;
use crate::runtime::shutdown::sleep_or_stop;

/// Pause before opening a bucket or a watch again after a failure.
pub const RETRY_DELAY: Duration = Duration::from_millis(500);

/// Opens (or creates) the bucket, retrying until it answers; `None` when shutdown came
/// first. `what` names the bucket in the log.
pub async fn open_when_reachable(
    js: &jetstream::Context,
    config: kv::Config,
    what: &str,
    shutdown: &mut watch::Receiver<bool>,
) -> Option<kv::Store> {
    loop {
        match buckets::open(js, config.clone()).await {
            Ok(store) => return Some(store),
            Err(err) => {
                tracing::warn!(error = %format!("{err:#}"), "{what} bucket not reachable yet; retrying")
            }
        }
        if sleep_or_stop(shutdown, RETRY_DELAY).await {
            return None;
        }
    }
}

/// Where a watch begins.
#[derive(Debug, Clone, Copy)]
pub enum WatchStart {
    /// The current value of every key, then each change.
    CurrentValues,
    /// Every change after this revision.
    After(u64),
}

/// Hands each entry of `store` to `on_entry`, from `start` on, until `shutdown` flips. A
/// watch that fails, ends or falls behind is logged (`what` names the bucket) and resumed
/// after the last revision handed over, so no change is skipped.
pub async fn follow(
    store: &kv::Store,
    what: &str,
    start: WatchStart,
    shutdown: &mut watch::Receiver<bool>,
    mut on_entry: impl FnMut(&kv::Entry),
) {
    let mut start = start;
    loop {
        let watch = match start {
            WatchStart::CurrentValues => store.watch_with_history(">").await,
            WatchStart::After(revision) => store.watch_all_from_revision(revision + 1).await,
        };
        match watch {
            Ok(mut watch) => {
                let mut lag = LagCheck::new();
                loop {
                    let seen = match start {
                        WatchStart::CurrentValues => 0,
                        WatchStart::After(revision) => revision,
                    };
                    let entry = tokio::select! {
                        _ = shutdown.changed() => return,
                        entry = watch.next() => entry,
                        _ = lag.tick() => {
                            if lag.stalled(store, seen).await {
                                tracing::warn!(revision = seen, "{what} bucket watch fell behind; resuming");
                                break;
                            }
                            continue;
                        }
                    };
                    match entry {
                        Some(Ok(entry)) => {
                            start = WatchStart::After(seen.max(entry.revision));
                            on_entry(&entry);
                        }
                        Some(Err(err)) => {
                            tracing::warn!(%err, "{what} bucket watch failed; resuming");
                            break;
                        }
                        None => {
                            tracing::warn!("{what} bucket watch ended; resuming");
                            break;
                        }
                    }
                }
            }
            Err(err) => tracing::warn!(%err, "cannot watch the {what} bucket; retrying"),
        }
        if sleep_or_stop(shutdown, RETRY_DELAY).await {
            return;
        }
    }
}

/// How often a watch compares what it has seen with the bucket's last revision.
const LAG_CHECK_PERIOD: Duration = Duration::from_secs(1);

/// Detects a watch that silently stopped delivering: when the node holding its consumer
/// dies, the client only notices after missed heartbeats (many seconds). Once a second the
/// bucket's last revision is read; a watch that one period later has still not reached the
/// revision read before is stalled, and is resumed from the last revision it applied.
struct LagCheck {
    interval: tokio::time::Interval,
    /// The bucket's last revision at the previous check, when the watch was behind it.
    target: Option<u64>,
}

impl LagCheck {
    /// A check whose first tick is one period from now.
    fn new() -> Self {
        let start = tokio::time::Instant::now() + LAG_CHECK_PERIOD;
        let mut interval = tokio::time::interval_at(start, LAG_CHECK_PERIOD);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        LagCheck {
            interval,
            target: None,
        }
    }

    /// The next check time.
    async fn tick(&mut self) {
        self.interval.tick().await;
    }

    /// True when the watch, having applied up to `seen`, has not reached in a whole period
    /// the revision the bucket had at the previous check.
    async fn stalled(&mut self, store: &kv::Store, seen: u64) -> bool {
        if self.target.is_some_and(|target| seen < target) {
            self.target = None;
            return true;
        }
        let state = tokio::time::timeout(LAG_CHECK_PERIOD, bucket_state(store)).await;
        self.target = match state {
            Ok(Ok((_, last))) => Some(last).filter(|last| *last > seen),
            // Cannot tell now; the watch's own heartbeats still apply.
            _ => None,
        };
        false
    }
}

/// (messages, last revision) of the bucket, asked from the server (`Store::status` only
/// returns what was known when the bucket was opened).
pub async fn bucket_state(store: &kv::Store) -> anyhow::Result<(u64, u64)> {
    let mut stream = store.stream.clone();
    let info = stream.info().await?;
    Ok((info.state.messages, info.state.last_sequence))
}

/// Longest wait for a JetStream API answer. Shorter than the client's default (10 s): after
/// a node loss, a request can go unanswered while the bucket elects a new leader, and a
/// quick retry then gets through seconds earlier.
const JETSTREAM_TIMEOUT: Duration = Duration::from_secs(3);

/// The JetStream context the bucket tasks use.
pub fn jetstream(client: Client) -> async_nats::jetstream::Context {
    async_nats::jetstream::ContextBuilder::new()
        .timeout(JETSTREAM_TIMEOUT)
        .build(client)
}
