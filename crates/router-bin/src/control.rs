//! The control plane on NATS: the `beamline-router` micro service (`$SRV.PING`, `$SRV.INFO`,
//! `$SRV.STATS`) and the backpressure status endpoint.

use std::sync::Arc;

use async_nats::service::ServiceExt;
use async_nats::Client;
use futures::StreamExt;
use tokio::sync::watch;

use crate::backpressure::Backpressure;
use crate::readiness::Readiness;
use crate::{clock, shutdown};

/// Name of the micro service every router registers.
pub const SERVICE_NAME: &str = "beamline-router";

/// Subjects and group the control plane serves.
pub struct ControlSubjects {
    /// The decide subject the status is about.
    pub decide: String,
    /// The backpressure status subject.
    pub status: String,
    /// Queue group of the service's endpoints.
    pub queue_group: String,
}

/// Registers the micro service with the backpressure status endpoint and answers status
/// requests until shutdown.
pub async fn serve(
    client: Client,
    subjects: ControlSubjects,
    backpressure: Arc<Backpressure>,
    readiness: Arc<Readiness>,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let register = async {
        let stats_backpressure = backpressure.clone();
        let decide_subject = subjects.decide.clone();
        let service = client
            .service_builder()
            .description("Beamline Router: routing decisions for AI workloads")
            .queue_group(subjects.queue_group.clone())
            .stats_handler(move |_endpoint, _stats| {
                let (pending, inflight) = stats_backpressure.intake.counts();
                serde_json::json!({
                    "decide_subject": decide_subject,
                    "backpressure": stats_backpressure.monitor.status().as_str(),
                    "pending": pending,
                    "inflight": inflight,
                })
            })
            .start(SERVICE_NAME, env!("CARGO_PKG_VERSION"))
            .await
            .map_err(|err| anyhow::anyhow!("cannot register the micro service: {err}"))?;
        let endpoint = service
            .endpoint_builder()
            .name("backpressure-status")
            .add(subjects.status.clone())
            .await
            .map_err(|err| anyhow::anyhow!("cannot add the status endpoint: {err}"))?;
        readiness.mark_subscribed(&client).await;
        anyhow::Ok((service, endpoint))
    };
    let Some(registered) = shutdown::unless_requested(register, &mut shutdown).await else {
        return Ok(());
    };
    let (service, mut endpoint) = registered?;
    loop {
        let request = tokio::select! {
            _ = shutdown.changed() => break,
            request = endpoint.next() => match request { Some(r) => r, None => break },
        };
        let report = backpressure.report(&subjects.decide, clock::now_ms());
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
