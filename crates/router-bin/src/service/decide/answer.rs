//! Answering one request: the responder (the router's decision, or the echo reply of the
//! benchmark's reference), publishing the reply, the DLQ copy of an intake rejection, and
//! the counts and latencies each reply feeds.

use std::time::Instant;

use async_nats::{Client, Message};
use bytes::Bytes;

use router_core::{DecisionRecord, Handled, IntakeErrorCode, Outcome, Reason};

use super::{Arrival, DecidePath};
use crate::config::{subject_tenant, Responder};
use crate::runtime::clock;
use crate::telemetry::traces::RequestSpan;

/// The fixed reply of [`Responder::Echo`], shaped and sized like a real decision.
pub const ECHO_REPLY: &[u8] = br#"{"ok":true,"decision":{"provider_id":"echo","reason":"weighted","priority":50,"expected_latency_ms":0,"expected_cost":0,"policy_id":"default","metadata":{"tenant_id":"echo"}},"context":{"request_id":null}}"#;

/// The end of a request taken off the queue: the reply, the service time, the arrival →
/// reply latency (decided requests only: `overloaded` replies do not feed the signal), and
/// the request leaves the in-flight count.
pub(super) async fn finish(
    client: &Client,
    path: &DecidePath,
    arrival: Arrival,
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
    reply(client, path, &arrival.message, handled, taken, arrival.span).await;
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

/// Publishes the reply (with the `traceparent` of `span`, when there is one) and counts it
/// (its processing from `started`); intake rejections also go to the DLQ. The span ends
/// here.
pub(super) async fn reply(
    client: &Client,
    path: &DecidePath,
    message: &Message,
    handled: Handled,
    started: Instant,
    span: Option<Box<RequestSpan>>,
) {
    let reply_to = match &message.reply {
        Some(reply) => reply.clone(),
        None => path.default_reply.clone(),
    };
    let payload = Bytes::from(handled.reply);
    let published = match &span {
        Some(span) => {
            client
                .publish_with_headers(reply_to, span.reply_headers(), payload)
                .await
        }
        None => client.publish(reply_to, payload).await,
    };
    drop(span);
    if let Err(err) = published {
        tracing::warn!(%err, "cannot publish a decide reply");
    }
    let metrics = &path.metrics;
    let error = match &handled.outcome {
        Outcome::Decided { .. } => None,
        Outcome::Rejected { code, .. } => Some(code.as_str()),
        Outcome::AwaitingLease => Some("internal"),
    };
    if let Some((scope, kind)) = handled.quota_refusal {
        metrics.quota_refused(scope, kind);
    }
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
        Outcome::AwaitingLease => {
            // Never published: the worker waits for the lease and answers then.
            tracing::error!("a decision awaiting a quota lease reached the reply");
        }
    }
}

/// What a request's span says of its answer: the decision (from its record, taken unless it
/// is also to be kept in the records stream), or the error.
pub(super) fn annotate(span: &mut RequestSpan, handled: &mut Handled) {
    match &handled.outcome {
        Outcome::Decided { reason, replayed } => match handled.record.take() {
            Some(record) if handled.keep_record => {
                span.decided(DecisionRecord::clone(&record));
                handled.record = Some(record);
            }
            Some(record) => span.decided(*record),
            None => {
                span.set("beamline.decision.reason", reason.as_str());
                span.set("beamline.decision.replayed", *replayed);
            }
        },
        Outcome::Rejected {
            code, tenant_id, ..
        } => {
            span.failed(code.as_str(), tenant_id.as_deref());
        }
        Outcome::AwaitingLease => {}
    }
}

/// The reply to one request taken off the queue, and what it says. With `after_wait` the
/// request already waited for a quota lease: a meter still dry refuses. With `explain` the
/// decision's record is made for its span.
pub(super) fn respond(
    path: &DecidePath,
    message: &Message,
    after_wait: bool,
    explain: bool,
) -> Handled {
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
            quota_refusal: None,
            record: None,
            keep_record: false,
        },
        Responder::Decide => {
            crate::service::canary::burn();
            let version = message
                .headers
                .as_ref()
                .and_then(|h| h.get("version"))
                .map(|v| v.as_str());
            // A panic here is a bug in the router, never the caller's fault: answer
            // `internal` and keep the worker serving.
            let scope = subject_tenant(&path.scoped_subject, &message.subject);
            let decide = || {
                let (body, now, rng) = (&message.payload, clock::now_ms(), &mut rand::rng());
                if explain {
                    path.router
                        .handle_explained(body, version, scope, now, rng, after_wait)
                } else if after_wait {
                    path.router
                        .handle_after_wait(body, version, scope, now, rng)
                } else {
                    path.router.handle_scoped(body, version, scope, now, rng)
                }
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
