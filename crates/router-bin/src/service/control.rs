//! The control plane on NATS: the backpressure status subject, and the `beamline-router`
//! micro service discovery (`$SRV.PING`, `$SRV.INFO`, `$SRV.STATS`, see [`crate::service::micro`]).

use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use async_nats::Client;
use futures::StreamExt;
use tokio::sync::watch;

use crate::service::backpressure::Backpressure;
use crate::service::micro::{self, EndpointCounters, Service};
use crate::transport::readiness::Readiness;
use crate::{runtime::clock, runtime::shutdown, service::supervisor};
use router_core::{BreakerState, Router};

/// Name of the micro service every router registers.
pub const SERVICE_NAME: &str = "beamline-router";

/// The subjects and groups the router serves, as discovery lists them.
pub struct ControlSubjects {
    /// The decide subject (the status is about it).
    pub decide: String,
    /// The feedback subject (no queue group: every router receives all feedback).
    pub feedback: String,
    /// The backpressure status subject.
    pub status: String,
    /// Queue group of the decide and status subjects.
    pub queue_group: String,
}

/// The counters of what discovery reports per endpoint.
#[derive(Default)]
pub struct Counters {
    /// Decide requests.
    pub decide: Arc<EndpointCounters>,
    /// Feedback messages.
    pub feedback: Arc<EndpointCounters>,
    /// Status requests.
    pub status: Arc<EndpointCounters>,
}

/// Serves the status subject and discovery until shutdown.
pub async fn serve(
    client: Client,
    subjects: ControlSubjects,
    counters: Counters,
    router: Arc<Router>,
    backpressure: Arc<Backpressure>,
    readiness: Arc<Readiness>,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let stats_backpressure = backpressure.clone();
    let service = Service {
        name: SERVICE_NAME,
        id: micro::instance_id(),
        version: env!("CARGO_PKG_VERSION"),
        description: "Beamline Router: routing decisions for AI workloads",
        started: rfc3339_now(),
        endpoints: vec![
            micro::Endpoint {
                name: "decide",
                subject: subjects.decide.clone(),
                queue_group: subjects.queue_group.clone(),
                counters: counters.decide,
            },
            micro::Endpoint {
                name: "feedback",
                subject: subjects.feedback.clone(),
                queue_group: String::new(),
                counters: counters.feedback,
            },
            micro::Endpoint {
                name: "backpressure-status",
                subject: subjects.status.clone(),
                queue_group: subjects.queue_group.clone(),
                counters: counters.status.clone(),
            },
        ],
        data: Box::new(move || {
            let (pending, inflight) = stats_backpressure.intake.counts();
            let breakers: Vec<serde_json::Value> = supervisor::breaker_states(&router)
                .into_iter()
                .filter(|(_, state)| *state != BreakerState::Closed)
                .map(|(key, state)| {
                    serde_json::json!({"tenant": key.tenant, "policy": key.policy,
                                       "provider": key.provider, "state": state.as_str()})
                })
                .collect();
            serde_json::json!({
                "backpressure": stats_backpressure.monitor.status().as_str(),
                "pending": pending,
                "inflight": inflight,
                "breakers": breakers,
            })
        }),
    };
    let register = async {
        let status = client
            .queue_subscribe(subjects.status.clone(), subjects.queue_group.clone())
            .await
            .context("cannot subscribe to the status subject")?;
        let discovery = micro::subscribe(&client, &service).await?;
        readiness.mark_subscribed(&client).await;
        anyhow::Ok((status, discovery))
    };
    let Some(registered) = shutdown::unless_requested(register, &mut shutdown).await else {
        return Ok(());
    };
    let (mut status, mut discovery) = registered?;
    tracing::info!(id = %service.id, name = SERVICE_NAME, "micro service registered");
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            request = status.next() => match request {
                Some(request) => {
                    let started = Instant::now();
                    let report = backpressure.report(&subjects.decide, clock::now_ms());
                    let body = serde_json::to_vec(&report).unwrap_or_default();
                    if let Some(reply) = request.reply {
                        if let Err(err) = client.publish(reply, body.into()).await {
                            tracing::debug!(%err, "cannot answer a status request");
                        }
                    }
                    counters.status.record(started.elapsed(), None);
                }
                None => break,
            },
            request = discovery.next() => match request {
                Some(request) => micro::answer(&client, &service, request).await,
                None => break,
            },
        }
    }
    Ok(())
}

/// Now as RFC 3339 UTC (the micro protocol's `started`).
fn rfc3339_now() -> String {
    let now = time::OffsetDateTime::now_utc();
    now.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| now.unix_timestamp().to_string())
}
