//! The decide path: queue subscriptions on the decide subject, workers that hand each body to
//! router-core and publish the reply, and the drain at shutdown. Bytes in, router-core
//! decides, bytes out.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use async_nats::{Client, Message, Subject, Subscriber};
use bytes::Bytes;
use futures::StreamExt;
use tokio::sync::watch;

use router_core::{Handled, Outcome, Reason, Router};

use crate::backpressure::Backpressure;
use crate::dlq::Dlq;
use crate::metrics::Metrics;
use crate::readiness::Readiness;
use crate::sticky_sync::StickySync;
use crate::{clock, nats, shutdown};

/// What answers a decide request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Responder {
    /// router-core validates and decides (the service).
    #[default]
    Decide,
    /// A fixed success reply without reading the request: the same process, connections,
    /// subscriptions and publish path as the service, minus the decision. The benchmark's
    /// raw-NATS reference (`cargo xtask bench`).
    Echo,
}

/// The fixed reply of [`Responder::Echo`], shaped and sized like a real decision.
pub const ECHO_REPLY: &[u8] = br#"{"ok":true,"decision":{"provider_id":"echo","reason":"weighted","priority":50,"expected_latency_ms":0,"expected_cost":0,"policy_id":"default","metadata":{"tenant_id":"echo"}},"context":{"request_id":null}}"#;

/// Everything a decide worker needs.
pub struct DecidePath {
    /// The request path.
    pub router: Arc<Router>,
    /// Who answers: the router or the echo.
    pub responder: Responder,
    /// Intake counts and the overload classification.
    pub backpressure: Arc<Backpressure>,
    /// Metric handles.
    pub metrics: Arc<Metrics>,
    /// Where intake rejections go, when the DLQ is on.
    pub dlq: Option<Dlq>,
    /// Shares new sticky mappings with other routers (`sticky_store = "kv"`).
    pub sticky_sync: Option<StickySync>,
    /// Where a reply goes when the request has no reply subject.
    pub default_reply: Subject,
}

/// Where and how many workers subscribe.
pub struct Intake {
    /// The decide subject.
    pub subject: String,
    /// Its queue group.
    pub queue_group: String,
    /// Workers, each with its own queue subscription: the most requests processed at once.
    pub workers: usize,
    /// Longest time to answer what was received once shutdown starts.
    pub drain_timeout: Duration,
}

/// Serves decide requests with `intake.workers` tasks until `shutdown` flips, then drains:
/// stops taking requests, answers those already received, flushes.
///
/// Each worker owns a queue subscription on the decide connection and handles its messages
/// inline: no task per message, which measured about a third cheaper in CPU per request than
/// spawning one (docs/OPERATIONS.md, performance). In flight is therefore at most `workers`.
pub async fn serve(
    client: Client,
    path: Arc<DecidePath>,
    intake: Intake,
    readiness: Arc<Readiness>,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let subscribe_all = async {
        let mut subscriptions = Vec::with_capacity(intake.workers);
        for _ in 0..intake.workers {
            let subscription = client
                .queue_subscribe(intake.subject.clone(), intake.queue_group.clone())
                .await
                .context("cannot subscribe to the decide subject")?;
            subscriptions.push(subscription);
        }
        readiness.mark_subscribed(&client).await;
        anyhow::Ok(subscriptions)
    };
    let Some(subscriptions) = shutdown::unless_requested(subscribe_all, &mut shutdown).await else {
        tracing::info!("stopped before the decide subscriptions were registered");
        return Ok(());
    };
    let tasks: Vec<_> = subscriptions?
        .into_iter()
        .map(|subscription| {
            tokio::spawn(worker(
                client.clone(),
                path.clone(),
                subscription,
                shutdown.clone(),
            ))
        })
        .collect();
    tracing::info!(subject = %intake.subject, workers = intake.workers, responder = ?path.responder, "serving decide requests");
    let mut answered_while_draining = 0;
    let all = futures::future::join_all(tasks);
    tokio::pin!(all);
    let results = tokio::select! {
        results = &mut all => results,
        _ = shutdown.changed() => match tokio::time::timeout(intake.drain_timeout, &mut all).await {
            Ok(results) => results,
            Err(_) => {
                tracing::warn!(
                    inflight = path.backpressure.intake.inflight(),
                    "drain timeout: some requests were still in flight"
                );
                Vec::new()
            }
        },
    };
    for result in results {
        match result {
            Ok(count) => answered_while_draining += count,
            Err(err) => tracing::error!(%err, "a decide worker failed"),
        }
    }
    nats::flush_before_stop(&client, "flush while draining").await;
    tracing::info!(answered_while_draining, "drained");
    Ok(())
}

/// One worker: handles its subscription's messages until shutdown, then drains it. Returns
/// how many requests it answered while draining.
async fn worker(
    client: Client,
    path: Arc<DecidePath>,
    mut subscription: Subscriber,
    mut shutdown: watch::Receiver<bool>,
) -> u64 {
    loop {
        tokio::select! {
            biased;
            _ = shutdown.changed() => break,
            message = subscription.next() => match message {
                Some(message) => process(&client, &path, message).await,
                None => return 0,
            },
        }
    }
    if !nats::is_connected(&client) {
        // No answer could be delivered and no PONG would come back: nothing to drain.
        return 0;
    }
    // UNSUB + PING: once the PONG is back every message the server routed to this
    // subscription has arrived, and the stream ends after yielding them.
    if let Err(err) = subscription.drain().await {
        tracing::warn!(%err, "unsubscribe failed while draining");
    }
    let mut answered = 0;
    while let Ok(Some(message)) =
        tokio::time::timeout(Duration::from_secs(5), subscription.next()).await
    {
        process(&client, &path, message).await;
        answered += 1;
    }
    answered
}

async fn process(client: &Client, path: &DecidePath, message: Message) {
    let received = Instant::now();
    let backpressure = &path.backpressure;
    backpressure.intake.start_one();
    backpressure.classify();
    handle(client, path, message, received).await;
    backpressure.intake.finish_one();
}

/// The reply to one request, and what it says.
fn respond(path: &DecidePath, message: &Message) -> Handled {
    let monitor = &path.backpressure.monitor;
    if monitor.is_active() {
        return path
            .router
            .overloaded(&message.payload, monitor.retry_after_seconds());
    }
    match path.responder {
        Responder::Echo => Handled {
            reply: ECHO_REPLY.to_vec(),
            outcome: Outcome::Decided {
                reason: Reason::Weighted,
                replayed: false,
            },
            sticky: None,
        },
        Responder::Decide => {
            crate::canary::burn();
            let version = message
                .headers
                .as_ref()
                .and_then(|h| h.get("version"))
                .map(|v| v.as_str());
            // A panic here is a bug in the router, never the caller's fault: answer
            // `internal` and keep the worker serving.
            let decide = || {
                path.router
                    .handle(&message.payload, version, clock::now_ms(), &mut rand::rng())
            };
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(decide)).unwrap_or_else(|_| {
                tracing::error!("decide panicked; answered internal");
                path.router.internal_error(&message.payload)
            })
        }
    }
}

async fn handle(client: &Client, path: &DecidePath, message: Message, received: Instant) {
    let handled = respond(path, &message);
    if let Some(sync) = &path.sticky_sync {
        sync.offer(&handled);
    }
    let reply_to = match &message.reply {
        Some(reply) => reply.clone(),
        None => path.default_reply.clone(),
    };
    if let Err(err) = client.publish(reply_to, Bytes::from(handled.reply)).await {
        tracing::warn!(%err, "cannot publish a decide reply");
    }
    let metrics = &path.metrics;
    match &handled.outcome {
        Outcome::Decided { reason, replayed } => {
            metrics.decision(*reason);
            if *replayed {
                metrics.replayed.increment(1);
            }
        }
        Outcome::Rejected {
            code,
            intake,
            tenant_id,
            message: why,
        } => {
            metrics.error(*code);
            tracing::debug!(code = code.as_str(), reason = %why, "decide request rejected");
            if let (Some(intake), Some(dlq)) = (intake, &path.dlq) {
                dlq.publish(client, &message, intake.as_str(), why, tenant_id.as_deref())
                    .await;
            }
        }
    }
    let elapsed = received.elapsed().as_secs_f64();
    metrics.decide_latency.record(elapsed);
    path.backpressure.monitor.record_latency(elapsed * 1000.0);
}
