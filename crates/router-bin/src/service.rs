//! The NATS side of the router: decide, status, feedback subscriptions, the DLQ, and the
//! micro service registration. Bytes in, router-core decides, bytes out.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use async_nats::service::ServiceExt;
use async_nats::{Client, HeaderMap, Message, Statistics, Subscriber};
use bytes::Bytes;
use futures::StreamExt;
use tokio::sync::watch;

use router_core::{BackpressureMonitor, FeedbackEffect, Outcome, Router};

use crate::config::Subjects;
use crate::memory;
use crate::metrics::Metrics;
use crate::nats;

/// How often backpressure is re-evaluated and gauges refreshed when idle.
const EVALUATION_PERIOD: Duration = Duration::from_millis(50);

/// Runs a start-up step unless shutdown is requested first: while NATS has never been
/// reachable, subscribing waits for the connection, and SIGTERM must still stop the router.
async fn unless_shutdown<T>(
    step: impl std::future::Future<Output = T>,
    shutdown: &mut watch::Receiver<bool>,
) -> Option<T> {
    tokio::select! {
        value = step => Some(value),
        _ = shutdown.changed() => None,
    }
}

/// Waits at most this long for a flush while stopping; NATS may be gone.
const STOP_FLUSH_TIMEOUT: Duration = Duration::from_secs(2);

/// Flushes pending publications, giving up after [`STOP_FLUSH_TIMEOUT`]; skipped while the
/// connection is down, as nothing could be delivered.
pub async fn flush_before_stop(client: &Client, what: &str) {
    if !nats::is_connected(client) {
        tracing::warn!("{what} skipped: not connected to NATS");
        return;
    }
    match tokio::time::timeout(STOP_FLUSH_TIMEOUT, client.flush()).await {
        Ok(Ok(())) => {}
        Ok(Err(err)) => tracing::warn!(%err, "{what} failed"),
        Err(_) => tracing::warn!("{what} timed out: NATS did not answer"),
    }
}

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
    /// Statistics of the decide connection: messages it received.
    pub decide_stats: Arc<Statistics>,
    /// The NATS connections (control, decide), for readiness.
    pub connections: Vec<Client>,
    /// Subscriptions (decide, feedback, status) registered with the server; `/readyz`
    /// waits for all of them.
    pub subscribed: AtomicU64,
    /// Decide messages taken by a worker.
    pub taken: AtomicU64,
    /// Being processed.
    pub inflight: AtomicU64,
    /// Shares new sticky mappings with other routers (`sticky_store = "kv"`).
    pub sticky_sync: Option<crate::sticky_sync::StickySync>,
}

/// Current time in epoch milliseconds.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Subscriptions that must be registered before the router reports ready.
pub const SUBSCRIPTIONS: u64 = 3;

impl Shared {
    /// Records that one subscription is registered on the server (after a flush).
    async fn mark_subscribed(&self, client: &Client) {
        if let Err(err) = client.flush().await {
            tracing::warn!(%err, "flush after subscribing failed");
        }
        self.subscribed.fetch_add(1, Ordering::SeqCst);
    }

    /// True once every subscription is registered.
    pub fn subscriptions_ready(&self) -> bool {
        self.subscribed.load(Ordering::SeqCst) >= SUBSCRIPTIONS
    }

    /// True while every NATS connection is up.
    pub fn nats_connected(&self) -> bool {
        self.connections.iter().all(nats::is_connected)
    }

    /// (pending, in flight). Pending is what the decide connection received and no worker
    /// has taken yet: the decide subscriptions are the only ones on that connection.
    fn counts(&self) -> (u64, u64) {
        let received = self.decide_stats.in_messages.load(Ordering::Relaxed);
        let taken = self.taken.load(Ordering::Relaxed);
        (
            received.saturating_sub(taken),
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

/// Serves decide requests with `workers` tasks until `shutdown` flips, then drains: stops
/// taking requests, answers those already received, flushes.
///
/// Each worker owns a queue subscription on the decide connection and handles its messages
/// inline: no task per message, which measured about a third cheaper in CPU per request than
/// spawning one (docs/OPERATIONS.md, performance). In flight is therefore at most `workers`.
pub async fn serve_decide(
    client: Client,
    shared: Arc<Shared>,
    queue_group: String,
    workers: usize,
    drain_timeout: Duration,
    shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let mut shutdown = shutdown;
    let subscribe_all = async {
        let mut subscriptions = Vec::with_capacity(workers);
        for _ in 0..workers {
            let subscription = client
                .queue_subscribe(shared.subjects.decide.clone(), queue_group.clone())
                .await
                .context("cannot subscribe to the decide subject")?;
            subscriptions.push(subscription);
        }
        shared.mark_subscribed(&client).await;
        anyhow::Ok(subscriptions)
    };
    let Some(subscriptions) = unless_shutdown(subscribe_all, &mut shutdown).await else {
        tracing::info!("stopped before the decide subscriptions were registered");
        return Ok(());
    };
    let tasks: Vec<_> = subscriptions?
        .into_iter()
        .map(|subscription| {
            tokio::spawn(decide_worker(
                client.clone(),
                shared.clone(),
                subscription,
                shutdown.clone(),
            ))
        })
        .collect();
    tracing::info!(subject = %shared.subjects.decide, workers, "serving decide requests");
    let mut answered_while_draining = 0;
    let all = futures::future::join_all(tasks);
    tokio::pin!(all);
    let results = tokio::select! {
        results = &mut all => results,
        _ = shutdown.changed() => match tokio::time::timeout(drain_timeout, &mut all).await {
            Ok(results) => results,
            Err(_) => {
                tracing::warn!(
                    inflight = shared.inflight.load(Ordering::Relaxed),
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
    flush_before_stop(&client, "flush while draining").await;
    tracing::info!(answered_while_draining, "drained");
    Ok(())
}

/// One worker: handles its subscription's messages until shutdown, then drains it. Returns
/// how many requests it answered while draining.
async fn decide_worker(
    client: Client,
    shared: Arc<Shared>,
    mut subscription: Subscriber,
    mut shutdown: watch::Receiver<bool>,
) -> u64 {
    loop {
        tokio::select! {
            biased;
            _ = shutdown.changed() => break,
            message = subscription.next() => match message {
                Some(message) => process(&client, &shared, message).await,
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
        process(&client, &shared, message).await;
        answered += 1;
    }
    answered
}

async fn process(client: &Client, shared: &Shared, message: Message) {
    let received = Instant::now();
    shared.taken.fetch_add(1, Ordering::Relaxed);
    shared.inflight.fetch_add(1, Ordering::Relaxed);
    shared.classify();
    handle_decide(client, shared, message, received).await;
    shared.inflight.fetch_sub(1, Ordering::Relaxed);
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
        // A panic here is a bug in the router, never the caller's fault: answer `internal`
        // and keep the worker serving.
        let decide = || {
            shared
                .router
                .handle(&message.payload, version, now_ms(), &mut rand::rng())
        };
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(decide)).unwrap_or_else(|_| {
            tracing::error!("decide panicked; answered internal");
            shared.router.internal_error(&message.payload)
        })
    };
    crate::sticky_sync::offer(&shared.sticky_sync, &handled);
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
    let subscribe = async {
        let subscription = client
            .subscribe(shared.subjects.feedback.clone())
            .await
            .context("cannot subscribe to the feedback subject")?;
        shared.mark_subscribed(&client).await;
        anyhow::Ok(subscription)
    };
    let Some(subscription) = unless_shutdown(subscribe, &mut shutdown).await else {
        return Ok(());
    };
    let mut subscription = subscription?;
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
    let register = async {
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
        let endpoint = service
            .endpoint_builder()
            .name("backpressure-status")
            .add(shared.subjects.backpressure_status.clone())
            .await
            .map_err(|err| anyhow::anyhow!("cannot add the status endpoint: {err}"))?;
        shared.mark_subscribed(&client).await;
        anyhow::Ok((service, endpoint))
    };
    let Some(registered) = unless_shutdown(register, &mut shutdown).await else {
        return Ok(());
    };
    let (service, mut endpoint) = registered?;
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
    let (mut last_taken, mut idle_ticks) = (0, 0u32);
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            _ = tick.tick() => {}
        }
        let taken = shared.taken.load(Ordering::Relaxed);
        if taken == last_taken {
            idle_ticks = idle_ticks.saturating_add(1);
            if idle_ticks == memory::IDLE_TICKS_BEFORE_TRIM {
                memory::trim();
            }
        } else {
            (last_taken, idle_ticks) = (taken, 0);
        }
        shared.monitor.refresh_latency();
        shared.classify();
        let (pending, inflight) = shared.counts();
        shared.metrics.pending.set(pending as f64);
        let connected = if shared.nats_connected() { 1.0 } else { 0.0 };
        shared.metrics.nats_connected.set(connected);
        shared.metrics.inflight.set(inflight as f64);
        shared
            .metrics
            .breakers_not_closed
            .set(shared.router.engine().breakers().not_closed() as f64);
    }
}
