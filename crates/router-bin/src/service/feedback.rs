//! The feedback subject: provider outcomes reported by callers, applied to the circuit
//! breakers (every router sees all feedback). A caller that asks for a reply gets
//! `{"ok":true,"policies":[...]}` (the policies whose breakers the report fed) or the
//! rejection: `{"ok":false,"error":{"code":...,"message":...}}`. Breaker state changes are
//! logged and counted by the supervisor, with the tenant, policy and provider.

use std::sync::Arc;

use anyhow::Context;
use async_nats::Client;
use bytes::Bytes;
use futures::StreamExt;
use tokio::sync::watch;

use router_core::{FeedbackEffect, FeedbackError, Router};

use crate::config::subject_tenant;
use crate::service::micro::EndpointCounters;
use crate::telemetry::metrics::Metrics;
use crate::telemetry::traces::Traces;
use crate::transport::readiness::Readiness;
use crate::transport::scoped::Scoped;
use crate::{runtime::clock, runtime::shutdown};

/// What answers feedback.
pub struct FeedbackPath {
    /// Applies the reports.
    pub router: Arc<Router>,
    /// The tracer, when spans are exported.
    pub traces: Option<Arc<Traces>>,
    /// Metric handles.
    pub metrics: Arc<Metrics>,
    /// What `$SRV.STATS` reports of the feedback endpoint.
    pub counters: Arc<EndpointCounters>,
}

/// Applies feedback messages on `[unscoped, scoped]` (the contract's subject and its
/// tenant-scoped twin) until `shutdown` flips. A report that came by a tenant's subject
/// applies only to that tenant.
pub async fn serve(
    client: Client,
    [unscoped, scoped]: [String; 2],
    path: FeedbackPath,
    readiness: Arc<Readiness>,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let FeedbackPath {
        router,
        traces,
        metrics,
        counters,
    } = path;
    let subscribe = async {
        let subscription = Scoped::subscribe(&client, &unscoped, &scoped, None)
            .await
            .context("cannot subscribe to the feedback subjects")?;
        readiness.mark_subscribed(&client).await;
        anyhow::Ok(subscription)
    };
    let Some(subscription) = shutdown::unless_requested(subscribe, &mut shutdown).await else {
        return Ok(());
    };
    let mut subscription = subscription?;
    loop {
        let message = tokio::select! {
            _ = shutdown.changed() => break,
            message = subscription.next() => match message { Some(m) => m, None => break },
        };
        let started = std::time::Instant::now();
        let mut span = traces.as_ref().map(|traces| {
            let size = message.payload.len();
            traces.request_span("feedback", &message.subject, message.headers.as_ref(), size)
        });
        let scope = subject_tenant(&scoped, &message.subject);
        let applied = router.feedback_scoped(&message.payload, scope, clock::now_ms());
        let error = applied.as_ref().err().map(|e| e.code().as_str());
        counters.record(started.elapsed(), error);
        let answer = match applied {
            Ok(effect) => {
                metrics.feedback_applied.increment(1);
                let policies: Vec<&str> = match &effect {
                    FeedbackEffect::Ignored => Vec::new(),
                    FeedbackEffect::Recorded(applied) => {
                        applied.iter().map(|a| a.policy_id.as_str()).collect()
                    }
                };
                if let Some(span) = &mut span {
                    span.set("beamline.feedback.policies", policies.len() as i64);
                }
                serde_json::json!({"ok": true, "policies": policies})
            }
            Err(err) => {
                metrics.feedback_rejected.increment(1);
                if matches!(err, FeedbackError::TenantMismatch { .. }) {
                    metrics.scope_refused_feedback.increment(1);
                }
                tracing::debug!(%err, "feedback refused");
                if let Some(span) = &mut span {
                    span.failed(err.code().as_str(), None);
                }
                serde_json::json!({"ok": false,
                                   "error": {"code": err.code().as_str(), "message": err.to_string()}})
            }
        };
        if let Some(reply) = message.reply {
            let answer = Bytes::from(answer.to_string());
            let _ = match &span {
                Some(span) => {
                    client
                        .publish_with_headers(reply, span.reply_headers(), answer)
                        .await
                }
                None => client.publish(reply, answer).await,
            };
        }
    }
    Ok(())
}
