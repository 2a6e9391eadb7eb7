//! The NATS side of the router: decide, status, feedback subscriptions, the DLQ, and the
//! micro service registration. Bytes in, router-core decides, bytes out.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use async_nats::service::ServiceExt;
use async_nats::{Client, HeaderMap, Message, Subscriber};
use bytes::Bytes;
use futures::StreamExt;
use tokio::sync::{watch, Semaphore};

use router_core::{BackpressureMonitor, FeedbackEffect, Outcome, Router};

use crate::config::Subjects;
use crate::metrics::Metrics;

/// How often backpressure is re-evaluated and gauges refreshed when idle.
const EVALUATION_PERIOD: Duration = Duration::from_millis(50);

/// Everything a request handler needs.
pub struct Shared {
    /// The request path.
    pub router: Router,
    /// Backpressure signals and classification.
    pub monitor: BackpressureMonitor,
    /// Metrics handles.
    pub metrics: Arc<Metrics>,
    /// Subjects in use.
    pub subjects: Subjects,
    /// Publish intake rejections to the DLQ.
    pub dlq_enabled: bool,
    /// Received, waiting for a worker slot.
    pub pending: AtomicU64,
    /// Being processed.
    pub inflight: AtomicU64,
}

/// Current time in epoch milliseconds.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Shared {
    fn counts(&self) -> (u64, u64) {
        (
            self.pending.load(Ordering::Relaxed),
            self.inflight.load(Ordering::Relaxed),
        )
    }

    fn classify(&self) {
        let (pending, inflight) = self.counts();
        let (status, activated) = self.monitor.classify_now(pending, inflight);
        if activated {
            self.metrics.backpressure_active_total.increment(1);
            tracing::warn!(
                pending,
                inflight,
                "backpressure active: answering overloaded"
            );
        }
        let active = status == router_core::BackpressureStatus::Active;
        self.metrics
            .backpressure_active
            .set(if active { 1.0 } else { 0.0 });
    }
}

/// Serves decide requests until `shutdown` flips, then drains: stops taking requests,
/// answers those already received and waits for workers to finish.
pub async fn serve_decide(
    client: Client,
    shared: Arc<Shared>,
    queue_group: String,
    concurrency: usize,
    drain_timeout: Duration,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let mut subscription = client
        .queue_subscribe(shared.subjects.decide.clone(), queue_group)
        .await
        .context("cannot subscribe to the decide subject")?;
    let slots = Arc::new(Semaphore::new(concurrency));
    tracing::info!(subject = %shared.subjects.decide, concurrency, "serving decide requests");
    loop {
        tokio::select! {
            biased;
            _ = shutdown.changed() => break,
            message = subscription.next() => match message {
                Some(message) => dispatch(&client, &shared, &slots, message, Instant::now()).await,
                None => break,
            },
        }
    }
    drain(
        &client,
        &shared,
        &slots,
        subscription,
        concurrency,
        drain_timeout,
    )
    .await;
    Ok(())
}

async fn dispatch(
    client: &Client,
    shared: &Arc<Shared>,
    slots: &Arc<Semaphore>,
    message: Message,
    received: Instant,
) {
    shared.pending.fetch_add(1, Ordering::Relaxed);
    shared.classify();
    let permit = match slots.clone().try_acquire_owned() {
        Ok(permit) => permit,
        Err(_) => match slots.clone().acquire_owned().await {
            Ok(permit) => permit,
            // The semaphore is never closed; answer inline rather than lose the request.
            Err(_) => {
                shared.pending.fetch_sub(1, Ordering::Relaxed);
                handle_decide(client, shared, message, received).await;
                return;
            }
        },
    };
    shared.pending.fetch_sub(1, Ordering::Relaxed);
    shared.inflight.fetch_add(1, Ordering::Relaxed);
    let client = client.clone();
    let shared = shared.clone();
    tokio::spawn(async move {
        handle_decide(&client, &shared, message, received).await;
        shared.inflight.fetch_sub(1, Ordering::Relaxed);
        drop(permit);
    });
}

async fn drain(
    client: &Client,
    shared: &Arc<Shared>,
    slots: &Arc<Semaphore>,
    mut subscription: Subscriber,
    concurrency: usize,
    drain_timeout: Duration,
) {
    tracing::info!("draining: no new decide requests are taken");
    // UNSUB + PING: once the PONG is back every message the server routed to us has
    // arrived, and the stream ends after yielding them.
    if let Err(err) = subscription.drain().await {
        tracing::warn!(%err, "unsubscribe failed while draining");
    }
    let mut answered = 0u64;
    while let Ok(Some(message)) =
        tokio::time::timeout(Duration::from_secs(5), subscription.next()).await
    {
        dispatch(client, shared, slots, message, Instant::now()).await;
        answered += 1;
    }
    // Wait until every worker has returned its slot.
    let slots_back = slots.acquire_many(concurrency as u32);
    if tokio::time::timeout(drain_timeout, slots_back)
        .await
        .is_err()
    {
        tracing::warn!(
            inflight = shared.inflight.load(Ordering::Relaxed),
            "drain timeout: some requests were still in flight"
        );
    }
    if let Err(err) = client.flush().await {
        tracing::warn!(%err, "flush failed while draining");
    }
    tracing::info!(answered_while_draining = answered, "drained");
}

async fn handle_decide(client: &Client, shared: &Shared, message: Message, received: Instant) {
    let version = message
        .headers
        .as_ref()
        .and_then(|h| h.get("version"))
        .map(|v| v.as_str());
    let handled = if shared.monitor.is_active() {
        shared
            .router
            .overloaded(&message.payload, shared.monitor.retry_after_seconds())
    } else {
        shared
            .router
            .handle(&message.payload, version, now_ms(), &mut rand::rng())
    };
    let reply_to = match &message.reply {
        Some(reply) => reply.clone(),
        None => shared.subjects.decide_reply.clone().into(),
    };
    if let Err(err) = client.publish(reply_to, Bytes::from(handled.reply)).await {
        tracing::warn!(%err, "cannot publish a decide reply");
    }
    match &handled.outcome {
        Outcome::Decided { reason, replayed } => {
            shared.metrics.decision(*reason);
            if *replayed {
                shared.metrics.replayed.increment(1);
            }
        }
        Outcome::Rejected {
            code,
            intake,
            tenant_id,
            message: why,
        } => {
            shared.metrics.error(*code);
            tracing::debug!(code = code.as_str(), reason = %why, "decide request rejected");
            if let (Some(intake), true) = (intake, shared.dlq_enabled) {
                publish_dlq(
                    client,
                    shared,
                    &message,
                    intake.as_str(),
                    why,
                    tenant_id.as_deref(),
                )
                .await;
            }
        }
    }
    let elapsed = received.elapsed().as_secs_f64();
    shared.metrics.decide_latency.record(elapsed);
    shared.monitor.record_latency(elapsed * 1000.0);
}

/// Republishes a rejected request, unchanged, on the DLQ subject with the reason in headers.
async fn publish_dlq(
    client: &Client,
    shared: &Shared,
    message: &Message,
    intake_code: &str,
    why: &str,
    tenant_id: Option<&str>,
) {
    let clean = |s: &str| -> String { s.chars().filter(|c| !c.is_control()).take(512).collect() };
    let mut headers = HeaderMap::new();
    headers.insert("Beamline-Intake-Error-Code", intake_code);
    headers.insert("Beamline-Error-Message", clean(why).as_str());
    headers.insert("Beamline-Original-Subject", message.subject.as_str());
    headers.insert("Beamline-Received-At-Ms", now_ms().to_string().as_str());
    if let Some(tenant) = tenant_id {
        headers.insert("Beamline-Tenant-Id", clean(tenant).as_str());
    }
    match client
        .publish_with_headers(
            shared.subjects.dlq.clone(),
            headers,
            message.payload.clone(),
        )
        .await
    {
        Ok(()) => shared.metrics.dlq_published.increment(1),
        Err(err) => tracing::warn!(%err, "cannot publish to the DLQ subject"),
    }
}

/// Applies feedback messages to the circuit breakers (every router sees all feedback).
pub async fn serve_feedback(
    client: Client,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let mut subscription = client
        .subscribe(shared.subjects.feedback.clone())
        .await
        .context("cannot subscribe to the feedback subject")?;
    loop {
        let message = tokio::select! {
            _ = shutdown.changed() => break,
            message = subscription.next() => match message { Some(m) => m, None => break },
        };
        match shared.router.feedback(&message.payload, now_ms()) {
            Ok(effect) => {
                shared.metrics.feedback_applied.increment(1);
                if let FeedbackEffect::Recorded(Some(transition)) = effect {
                    tracing::info!(from = ?transition.from, to = ?transition.to, "circuit breaker changed state");
                }
            }
            Err(err) => {
                shared.metrics.feedback_rejected.increment(1);
                tracing::debug!(%err, "feedback ignored");
            }
        }
        if let Some(reply) = message.reply {
            let _ = client
                .publish(reply, Bytes::from_static(b"{\"ok\":true}"))
                .await;
        }
    }
    Ok(())
}

/// Registers the `beamline-router` micro service (discovery, `$SRV.PING/INFO/STATS`) with the
/// backpressure status endpoint, and answers status requests until shutdown.
pub async fn serve_status(
    client: Client,
    shared: Arc<Shared>,
    queue_group: String,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let stats_shared = shared.clone();
    let service = client
        .service_builder()
        .description("Beamline Router: routing decisions for AI workloads")
        .queue_group(queue_group)
        .stats_handler(move |_endpoint, _stats| {
            let (pending, inflight) = stats_shared.counts();
            serde_json::json!({
                "decide_subject": stats_shared.subjects.decide,
                "backpressure": stats_shared.monitor.status().as_str(),
                "pending": pending,
                "inflight": inflight,
            })
        })
        .start("beamline-router", env!("CARGO_PKG_VERSION"))
        .await
        .map_err(|err| anyhow::anyhow!("cannot register the micro service: {err}"))?;
    let mut endpoint = service
        .endpoint_builder()
        .name("backpressure-status")
        .add(shared.subjects.backpressure_status.clone())
        .await
        .map_err(|err| anyhow::anyhow!("cannot add the status endpoint: {err}"))?;
    loop {
        let request = tokio::select! {
            _ = shutdown.changed() => break,
            request = endpoint.next() => match request { Some(r) => r, None => break },
        };
        let (pending, inflight) = shared.counts();
        let report = shared
            .monitor
            .report(&shared.subjects.decide, pending, inflight, now_ms());
        let body = serde_json::to_vec(&report).unwrap_or_default();
        if let Err(err) = request.respond(Ok(body.into())).await {
            tracing::debug!(%err, "cannot answer a status request");
        }
    }
    if let Err(err) = service.stop().await {
        tracing::debug!(%err, "micro service stop failed");
    }
    Ok(())
}

/// Re-evaluates backpressure and refreshes gauges periodically.
pub async fn supervise(shared: Arc<Shared>, mut shutdown: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(EVALUATION_PERIOD);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            _ = tick.tick() => {}
        }
        shared.monitor.refresh_latency();
        shared.classify();
        let (pending, inflight) = shared.counts();
        shared.metrics.pending.set(pending as f64);
        shared.metrics.inflight.set(inflight as f64);
        shared
            .metrics
            .breakers_not_closed
            .set(shared.router.engine().breakers().not_closed() as f64);
    }
}
