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

mod answer;
mod worker;

use std::collections::VecDeque;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use async_nats::{Client, Message, Subject};
use tokio::sync::watch;

use router_core::Router;

use crate::config::Responder;
use crate::fleet::idempotency::FleetIdempotency;
use crate::fleet::sticky::StickySync;
use crate::service::backpressure::Backpressure;
use crate::service::dlq::Dlq;
use crate::service::micro::EndpointCounters;
use crate::telemetry::metrics::Metrics;
use crate::telemetry::records::RecordSink;
use crate::telemetry::traces::{RequestSpan, Traces};
use crate::transport::readiness::Readiness;
use crate::transport::scoped::Scoped;
use crate::{runtime::shutdown, transport::nats};

pub use answer::ECHO_REPLY;
use worker::Worker;

/// Most messages read off the subscription between two requests processed.
pub const READ_BATCH: usize = 256;

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
    /// Where sampled decisions' records go (`records.sample_ratio` above 0).
    pub records: Option<RecordSink>,
    /// The tracer, when spans are exported (`tracing.otlp_endpoint`).
    pub traces: Option<Arc<Traces>>,
    /// Where a reply goes when the request has no reply subject.
    pub default_reply: Subject,
    /// What `$SRV.STATS` reports of the decide endpoint.
    pub counters: Arc<EndpointCounters>,
    /// Settles idempotency keys with the fleet (`idempotency_store = "kv"`).
    pub fleet_idempotency: Option<Arc<FleetIdempotency>>,
    /// The tenant-scoped decide subject (`<prefix>.v1.decide.tenant.*`): a request that came
    /// by it is decided only for the tenant its subject names.
    pub scoped_subject: String,
    /// Woken when the quota sync wrote its leases (`quota_store = "kv"`): a decision whose
    /// meter ran dry waits for it, at most [`LEASE_WAIT`], off the worker.
    pub quota_leased: Option<Arc<tokio::sync::Notify>>,
}

/// Longest a decision waits for a quota lease before its meter refuses.
pub const LEASE_WAIT: std::time::Duration = std::time::Duration::from_millis(500);

/// A request read off the subscription, with when, and its span when traces are on (boxed:
/// a span is large, and an arrival is moved through the queue).
struct Arrival {
    message: Message,
    at: Instant,
    span: Option<Box<RequestSpan>>,
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
