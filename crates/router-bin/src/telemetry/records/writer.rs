//! The task that writes the queued decision records to the stream: it creates the stream
//! when missing (retrying while JetStream does not answer), publishes each record with its
//! decision id as the message id, and keeps at most [`IN_FLIGHT`] acknowledgements
//! outstanding. Whatever goes wrong is counted and logged at most once a minute; the
//! request path never waits for it.

use std::future::IntoFuture;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, context::PublishAckFuture};
use async_nats::{Client, HeaderMap};
use futures::stream::{FuturesUnordered, StreamExt};
use metrics::Counter;
use tokio::sync::{mpsc, watch};

use router_core::DecisionRecord;

use super::{stream_config, subject, Written};
use crate::config::RecordsConfig;

/// Most records published and not yet acknowledged.
const IN_FLIGHT: usize = 512;
/// Time between two attempts to create the stream.
const RETRY: Duration = Duration::from_secs(2);
/// Longest wait for the client to take one record.
const PUBLISH_WAIT: Duration = Duration::from_secs(1);
/// Shortest time between two warnings about failed records.
const WARN_EVERY: Duration = Duration::from_secs(60);

struct Counts {
    written: Counter,
    failed: Counter,
    last_warning: Option<Instant>,
}

impl Counts {
    fn failed(&mut self, what: &str, err: &dyn std::fmt::Display) {
        self.failed.increment(1);
        if self
            .last_warning
            .is_none_or(|at| at.elapsed() >= WARN_EVERY)
        {
            self.last_warning = Some(Instant::now());
            tracing::warn!(%err, "{what}: decision records are counted as failed (router_decision_records_total{{result=\"failed\"}})");
        }
    }
}

/// Writes `records` to the stream of `config` under `prefix` until shutdown, then writes what
/// is queued for at most two seconds more.
pub async fn run(
    client: Client,
    config: RecordsConfig,
    prefix: String,
    written: Written,
    mut records: mpsc::Receiver<Box<DecisionRecord>>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut counts = Counts {
        written: written.written,
        failed: written.failed,
        last_warning: None,
    };
    let js = jetstream::new(client);
    let stream = stream_config(&config, &prefix);
    loop {
        match tokio::time::timeout(RETRY, js.get_or_create_stream(stream.clone())).await {
            Ok(Ok(_)) => {
                tracing::info!(stream = %stream.name, ratio = config.sample_ratio, "decision records on");
                break;
            }
            Ok(Err(err)) => counts.failed("cannot create the decision records stream", &err),
            Err(_) => counts.failed("JetStream did not answer", &"timeout"),
        }
        // Until the stream exists, what was queued is not kept.
        while let Ok(_record) = records.try_recv() {
            counts.failed.increment(1);
        }
        tokio::select! {
            _ = shutdown.changed() => return,
            _ = tokio::time::sleep(RETRY) => {}
        }
    }
    let mut acks = FuturesUnordered::new();
    let mut stopping = false;
    let stop_by = tokio::time::sleep(Duration::from_secs(3600 * 24 * 365));
    tokio::pin!(stop_by);
    loop {
        tokio::select! {
            biased;
            Some(acked) = acks.next(), if !acks.is_empty() => count_ack(&mut counts, acked),
            _ = shutdown.changed(), if !stopping => {
                stopping = true;
                stop_by.as_mut().reset(tokio::time::Instant::now() + Duration::from_secs(2));
            }
            _ = &mut stop_by => break,
            record = records.recv(), if acks.len() < IN_FLIGHT => match record {
                Some(record) => match publish(&js, &prefix, &record).await {
                    Ok(ack) => acks.push(ack.into_future()),
                    Err(err) => counts.failed("cannot publish a decision record", &err),
                },
                None => break,
            },
            else => break,
        }
        if stopping && records.is_empty() && acks.is_empty() {
            break;
        }
    }
    while let Ok(Some(acked)) = tokio::time::timeout(Duration::from_secs(1), acks.next()).await {
        count_ack(&mut counts, acked);
    }
}

fn count_ack(
    counts: &mut Counts,
    acked: Result<jetstream::publish::PublishAck, jetstream::context::PublishError>,
) {
    match acked {
        Ok(_) => counts.written.increment(1),
        Err(err) => counts.failed("JetStream refused a decision record", &err),
    }
}

async fn publish(
    js: &jetstream::Context,
    prefix: &str,
    record: &DecisionRecord,
) -> anyhow::Result<PublishAckFuture> {
    let body = serde_json::to_vec(record)?;
    let mut headers = HeaderMap::new();
    headers.insert("Nats-Msg-Id", record.decision_id.as_str());
    headers.insert("Beamline-Tenant-Id", record.tenant_id.as_str());
    let publish =
        js.publish_with_headers(subject(prefix, &record.provider_id), headers, body.into());
    // While NATS is away the client's buffer fills and a publish waits: give up on the record.
    let ack = tokio::time::timeout(PUBLISH_WAIT, publish)
        .await
        .map_err(|_| {
            anyhow::anyhow!("NATS took more than {PUBLISH_WAIT:?} to take the record")
        })??;
    Ok(ack)
}
