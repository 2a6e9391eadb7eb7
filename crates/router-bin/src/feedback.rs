//! The feedback subject: provider outcomes reported by callers, applied to the circuit
//! breakers (every router sees all feedback).

use std::sync::Arc;

use anyhow::Context;
use async_nats::Client;
use bytes::Bytes;
use futures::StreamExt;
use tokio::sync::watch;

use router_core::{FeedbackEffect, Router};

use crate::metrics::Metrics;
use crate::readiness::Readiness;
use crate::{clock, shutdown};

/// Applies feedback messages on `subject` until `shutdown` flips.
pub async fn serve(
    client: Client,
    subject: String,
    router: Arc<Router>,
    metrics: Arc<Metrics>,
    readiness: Arc<Readiness>,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let subscribe = async {
        let subscription = client
            .subscribe(subject)
            .await
            .context("cannot subscribe to the feedback subject")?;
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
        match router.feedback(&message.payload, clock::now_ms()) {
            Ok(effect) => {
                metrics.feedback_applied.increment(1);
                if let FeedbackEffect::Recorded(Some(transition)) = effect {
                    tracing::info!(from = ?transition.from, to = ?transition.to, "circuit breaker changed state");
                }
            }
            Err(err) => {
                metrics.feedback_rejected.increment(1);
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
