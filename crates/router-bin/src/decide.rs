//! The decide path: queue subscriptions on the decide subject, each served by a worker that
//! reads its messages into a bounded queue of its own (stamping each on arrival), hands them
//! to router-core one at a time and publishes the reply; and the drain at shutdown. Bytes in,
//! router-core decides, bytes out.
//!
//! Between two requests a worker reads everything its subscription already holds (up to
//! [`READ_BATCH`] at a time), so a request is stamped within one request's processing of
//! reaching the router, and the arrival → reply latency includes the time it waited. A
//! request that finds the queue full, or arrives while backpressure is `active`, is answered
//! `overloaded` at once, without the decision path; one whose `deadline` passed while it
//! waited gets `deadline_exceeded` without a decision. Every request read gets exactly one
//! reply, also when shutdown cuts the drain short.

use std::collections::VecDeque;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use async_nats::{Client, Message, Subject};
use bytes::Bytes;
use futures::{FutureExt, StreamExt};
use tokio::sync::watch;

use router_core::{Handled, IntakeErrorCode, Outcome, Reason, Router};

use crate::backpressure::Backpressure;
use crate::config::subject_tenant;
use crate::dlq::Dlq;
use crate::fleet_idempotency::FleetIdempotency;
use crate::metrics::Metrics;
use crate::micro::EndpointCounters;
use crate::readiness::Readiness;
use crate::scoped::Scoped;
use crate::sticky_sync::StickySync;
use crate::{clock, nats, shutdown};

/// Most messages read off the subscription between two requests processed.
pub const READ_BATCH: usize = 256;

/// What answers a decide request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Responder {
    /// router-core validates and decides (the service).
    #[default]
    Decide,
    /// A fixed success reply without reading the request: the same process, connections,
    /// subscriptions, queue and publish path as the service, minus the decision. The
    /// benchmark's raw-NATS reference (`cargo xtask bench`).
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
    /// What `$SRV.STATS` reports of the decide endpoint.
    pub counters: Arc<EndpointCounters>,
    /// Settles idempotency keys with the fleet (`idempotency_store = "kv"`).
    pub fleet_idempotency: Option<Arc<FleetIdempotency>>,
    /// The tenant-scoped decide subject (`<prefix>.v1.decide.tenant.*`): a request that came
    /// by it is decided only for the tenant its subject names.
    pub scoped_subject: String,
}

/// Where and how many workers subscribe.
pub struct Intake {
    /// The decide subject.
    pub subject: String,
    /// Its tenant-scoped twin (`<prefix>.v1.decide.tenant.*`).
    pub scoped_subject: String,
    /// Its queue group.
    pub queue_group: String,
    /// Workers, each with its own queue subscription: the most requests processed at once.
    pub workers: usize,
    /// Most requests waiting in the router, all workers together.
    pub queue_capacity: usize,
    /// Longest time to answer what was received once shutdown starts; what is still queued
    /// then is answered `overloaded`.
    pub drain_timeout: Duration,
}

/// A request read off the subscription, with when.
struct Arrival {
    message: Message,
    at: Instant,
}

/// Serves decide requests with `intake.workers` workers until `shutdown` flips, then drains:
/// stops taking requests, answers those already received, flushes.
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
            let subscription = Scoped::subscribe(
                &client,
                &intake.subject,
                &intake.scoped_subject,
                Some(&intake.queue_group),
            )
            .await
            .context("cannot subscribe to the decide subjects")?;
            subscriptions.push(subscription);
        }
        if readiness.mark_subscribed(&client).await {
            // The server's answer arrived on the decide connection but is no decide request.
            path.backpressure.intake.received_elsewhere(1);
        }
        anyhow::Ok(subscriptions)
    };
    let Some(subscriptions) = shutdown::unless_requested(subscribe_all, &mut shutdown).await else {
        tracing::info!("stopped before the decide subscriptions were registered");
        return Ok(());
    };
    let capacity = intake.queue_capacity.div_ceil(intake.workers).max(1);
    let (hurry_tx, hurry) = watch::channel(false);
    let tasks: Vec<_> = subscriptions?
        .into_iter()
        .map(|subscription| {
            let worker = Worker {
                client: client.clone(),
                path: path.clone(),
                queue: VecDeque::new(),
                capacity,
                idle: AtomicBool::new(false),
            };
            tokio::spawn(worker.run(subscription, shutdown.clone(), hurry.clone()))
        })
        .collect();
    tracing::info!(
        subject = %intake.subject,
        scoped = %intake.scoped_subject,
        workers = intake.workers,
        queue_capacity = intake.queue_capacity,
        responder = ?path.responder,
        "serving decide requests"
    );
    let all = futures::future::join_all(tasks);
    tokio::pin!(all);
    let results = tokio::select! {
        results = &mut all => results,
        _ = shutdown.changed() => match tokio::time::timeout(intake.drain_timeout, &mut all).await {
            Ok(results) => results,
            Err(_) => {
                tracing::warn!(
                    inflight = path.backpressure.intake.inflight(),
                    "drain timeout: answering what is still queued with overloaded"
                );
                let _ = hurry_tx.send(true);
                all.await
            }
        },
    };
    // Requests handed to a task of their own (idempotency keys settled with the fleet) are
    // answered within a few seconds; wait for them before the final flush.
    let settled = tokio::time::timeout(Duration::from_secs(5), async {
        while path.backpressure.intake.inflight() > 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    if settled.is_err() {
        tracing::warn!(
            inflight = path.backpressure.intake.inflight(),
            "requests still in flight after the drain"
        );
    }
    let mut answered_while_draining = 0;
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

/// One worker: its subscription, its bounded queue, the path that answers.
struct Worker {
    client: Client,
    path: Arc<DecidePath>,
    queue: VecDeque<Arrival>,
    capacity: usize,
    idle: AtomicBool,
}

impl Worker {
    /// Serves until shutdown, then drains: unsubscribes, answers every request received.
    /// Returns how many requests it answered while draining.
    async fn run(
        mut self,
        mut subscription: Scoped,
        mut shutdown: watch::Receiver<bool>,
        hurry: watch::Receiver<bool>,
    ) -> u64 {
        self.path.backpressure.intake.worker_started();
        let mut open = true;
        while open {
            if *shutdown.borrow() {
                break;
            }
            open = self.read_available(&mut subscription).await;
            if let Some(arrival) = self.queue.pop_front() {
                self.process(arrival).await;
                continue;
            }
            self.set_idle(true);
            tokio::select! {
                biased;
                _ = shutdown.changed() => break,
                message = subscription.next() => match message {
                    Some(message) => self.admit(message).await,
                    None => open = false,
                },
            }
            self.set_idle(false);
        }
        self.set_idle(false);
        self.drain(subscription, hurry).await
    }

    fn set_idle(&self, idle: bool) {
        self.path.backpressure.intake.set_idle(&self.idle, idle);
    }

    /// Reads what the subscription already holds (at most [`READ_BATCH`]); false when the
    /// subscription has ended.
    async fn read_available(&mut self, subscription: &mut Scoped) -> bool {
        for _ in 0..READ_BATCH {
            match subscription.next().now_or_never() {
                Some(Some(message)) => self.admit(message).await,
                Some(None) => return false,
                None => break,
            }
        }
        true
    }

    /// Stamps a request and queues it, or answers `overloaded` at once when backpressure is
    /// active or the queue is full.
    async fn admit(&mut self, message: Message) {
        let at = Instant::now();
        let backpressure = &self.path.backpressure;
        backpressure.intake.read_one();
        if backpressure.monitor.is_active() || self.queue.len() >= self.capacity {
            self.refuse(&message).await;
            return;
        }
        backpressure.intake.queued_one();
        self.queue.push_back(Arrival { message, at });
    }

    /// Answers `overloaded` without the decision path.
    async fn refuse(&self, message: &Message) {
        let started = Instant::now();
        let monitor = &self.path.backpressure.monitor;
        let handled = self
            .path
            .router
            .overloaded(&message.payload, monitor.retry_after_seconds());
        self.reply(message, handled, started).await;
    }

    async fn process(&self, arrival: Arrival) {
        let backpressure = &self.path.backpressure;
        backpressure.intake.start_one();
        backpressure.classify();
        let taken = Instant::now();
        let mut handled = respond(&self.path, &arrival.message);
        if let Some(sync) = &self.path.sticky_sync {
            sync.offer(&handled);
        }
        if let (Some(ours), Some(fleet)) = (handled.idempotent.take(), &self.path.fleet_idempotency)
        {
            // The key is settled with the fleet off this worker; the reply follows from there.
            let (client, path, fleet) = (self.client.clone(), self.path.clone(), fleet.clone());
            tokio::spawn(async move {
                let handled = fleet.settle(&path.router, ours, handled).await;
                finish(&client, &path, &arrival, handled, taken).await;
            });
            return;
        }
        finish(&self.client, &self.path, &arrival, handled, taken).await;
    }

    /// Publishes the reply and counts it (its processing from `started`); intake rejections
    /// also go to the DLQ.
    async fn reply(&self, message: &Message, handled: Handled, started: Instant) {
        reply(&self.client, &self.path, message, handled, started).await;
    }

    /// After shutdown: unsubscribes, then answers what was queued and what the server had
    /// already routed here; once `hurry` flips (the drain timeout), the rest is answered
    /// `overloaded`. Returns how many it answered.
    async fn drain(mut self, mut subscription: Scoped, mut hurry: watch::Receiver<bool>) -> u64 {
        let mut answered = 0;
        let connected = nats::is_connected(&self.client);
        if connected {
            // UNSUB + PING: once the PONG is back every message the server routed to this
            // subscription has arrived, and the stream ends after yielding them.
            if let Err(err) = subscription.drain().await {
                tracing::warn!(%err, "unsubscribe failed while draining");
            }
        }
        loop {
            let hurried = *hurry.borrow();
            if let Some(arrival) = self.queue.pop_front() {
                if hurried || !connected {
                    self.path.backpressure.intake.start_one();
                    self.refuse(&arrival.message).await;
                    self.path.backpressure.intake.finish_one();
                } else {
                    self.process(arrival).await;
                }
                answered += 1;
                continue;
            }
            if !connected {
                // No answer could be delivered and no PONG would come back.
                return answered;
            }
            tokio::select! {
                biased;
                _ = hurry.changed(), if !hurried => {}
                message = tokio::time::timeout(Duration::from_secs(5), subscription.next()) => match message {
                    Ok(Some(message)) => self.admit(message).await,
                    Ok(None) | Err(_) => return answered,
                },
            }
        }
    }
}

/// The end of a request taken off the queue: the reply, the service time, the arrival →
/// reply latency (decided requests only: `overloaded` replies do not feed the signal), and
/// the request leaves the in-flight count.
async fn finish(
    client: &Client,
    path: &DecidePath,
    arrival: &Arrival,
    handled: Handled,
    taken: Instant,
) {
    let decided = !matches!(
        handled.outcome,
        Outcome::Rejected {
            code: router_core::ErrorCode::Overloaded,
            ..
        }
    );
    reply(client, path, &arrival.message, handled, taken).await;
    let metrics = &path.metrics;
    metrics.decide_service.record(taken.elapsed().as_secs_f64());
    let backpressure = &path.backpressure;
    if decided {
        let latency = arrival.at.elapsed().as_secs_f64();
        metrics.decide_latency.record(latency);
        backpressure
            .monitor
            .record_latency(latency * 1000.0, clock::monotonic_ms());
    }
    backpressure.intake.finish_one();
}

/// Publishes the reply and counts it (its processing from `started`); intake rejections
/// also go to the DLQ.
async fn reply(
    client: &Client,
    path: &DecidePath,
    message: &Message,
    handled: Handled,
    started: Instant,
) {
    let reply_to = match &message.reply {
        Some(reply) => reply.clone(),
        None => path.default_reply.clone(),
    };
    if let Err(err) = client.publish(reply_to, Bytes::from(handled.reply)).await {
        tracing::warn!(%err, "cannot publish a decide reply");
    }
    let metrics = &path.metrics;
    let error = match &handled.outcome {
        Outcome::Decided { .. } => None,
        Outcome::Rejected { code, .. } => Some(code.as_str()),
    };
    path.counters.record(started.elapsed(), error);
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
                dlq.publish(client, message, intake.as_str(), why, tenant_id.as_deref())
                    .await;
            }
        }
    }
}

/// The reply to one request taken off the queue, and what it says.
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
            idempotent: None,
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
            let scope = subject_tenant(&path.scoped_subject, &message.subject);
            let decide = || {
                path.router.handle_scoped(
                    &message.payload,
                    version,
                    scope,
                    clock::now_ms(),
                    &mut rand::rng(),
                )
            };
            let handled = std::panic::catch_unwind(std::panic::AssertUnwindSafe(decide))
                .unwrap_or_else(|_| {
                    tracing::error!("decide panicked; answered internal");
                    path.router.internal_error(&message.payload)
                });
            if let (
                Some(scope),
                Outcome::Rejected {
                    intake, tenant_id, ..
                },
            ) = (scope, &handled.outcome)
            {
                if *intake == Some(IntakeErrorCode::TenantForbidden)
                    && tenant_id.as_deref() != Some(scope)
                {
                    path.metrics.scope_refused_decide.increment(1);
                    tracing::debug!(subject_tenant = scope, tenant_id = ?tenant_id, "decide for another tenant refused");
                }
            }
            handled
        }
    }
}
