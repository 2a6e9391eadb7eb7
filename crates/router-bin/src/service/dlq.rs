//! The dead-letter stream: a JetStream stream that keeps what the router publishes on the DLQ
//! subject, so an intake rejection outlives the moment nobody is subscribed.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, stream};
use async_nats::{Client, HeaderMap, Message};
use tokio::sync::watch;

use crate::runtime::clock;
use crate::telemetry::metrics::Metrics;

/// Name of the stream capturing the DLQ subject.
pub const STREAM: &str = "BEAMLINE_DLQ";
/// How long dead letters are kept.
const MAX_AGE: Duration = Duration::from_secs(7 * 24 * 3600);
/// Most bytes kept; the oldest letters go first.
const MAX_BYTES: i64 = 256 * 1024 * 1024;
/// How long one attempt waits for JetStream (it also waits for the first connection).
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(2);

/// What one attempt to create the stream found.
enum Attempt {
    /// The stream exists.
    Kept,
    /// JetStream answered with an error (e.g. it is not enabled): no point retrying.
    Refused,
    /// Nobody answered in time: NATS is not reachable yet, or JetStream is slow.
    NoAnswer,
}

/// Creates the stream (or finds it) for `subject`, waiting at most 2 s. When nobody answers
/// (the router started before NATS), it keeps trying in the background until the stream
/// exists or shutdown, so dead letters are kept from then on. Without JetStream the DLQ
/// still publishes on core NATS, and the router says so once.
pub async fn ensure_stream(client: &Client, subject: &str, mut shutdown: watch::Receiver<bool>) {
    if !matches!(attempt(client, subject).await, Attempt::NoAnswer) {
        return;
    }
    tracing::warn!(
        subject,
        "JetStream did not answer; dead letters are published but not kept until it does (retrying)"
    );
    let (client, subject) = (client.clone(), subject.to_owned());
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = tokio::time::sleep(ATTEMPT_TIMEOUT) => {}
            }
            if !matches!(attempt(&client, &subject).await, Attempt::NoAnswer) {
                return;
            }
        }
    });
}

async fn attempt(client: &Client, subject: &str) -> Attempt {
    let context = jetstream::new(client.clone());
    let config = stream::Config {
        name: STREAM.to_owned(),
        subjects: vec![subject.to_owned()],
        max_age: MAX_AGE,
        max_bytes: MAX_BYTES,
        storage: stream::StorageType::File,
        ..Default::default()
    };
    let ensure = async {
        let mut stream = context.get_or_create_stream(config).await?;
        // One stream keeps the dead letters of every subject prefix on this server: a
        // router whose prefix the stream does not capture yet adds its subject.
        let mut config = stream.info().await?.config.clone();
        if !config.subjects.iter().any(|s| s == subject) {
            config.subjects.push(subject.to_owned());
            context.update_stream(config).await?;
        }
        anyhow::Ok(())
    };
    match tokio::time::timeout(ATTEMPT_TIMEOUT, ensure).await {
        Ok(Ok(())) => {
            tracing::info!(stream = STREAM, subject, "DLQ kept in JetStream");
            Attempt::Kept
        }
        Ok(Err(err)) => {
            tracing::warn!(
                err = %format!("{err:#}"),
                subject,
                "cannot create the DLQ stream; dead letters are published but not kept (is JetStream enabled?)"
            );
            Attempt::Refused
        }
        Err(_) => Attempt::NoAnswer,
    }
}

/// What a cut dead letter keeps of the body.
pub const EXCERPT_BYTES: usize = 64 * 1024;
/// Room kept for the headers of a dead letter (reason, subject, tenant: at most ~1.5 KiB).
const HEADER_ROOM: usize = 4 * 1024;

/// True when a body of `len` bytes and its headers fit the server's `max_payload` (0 when the
/// server did not say: then only bodies up to the excerpt size are sent whole).
fn fits(len: usize, max_payload: usize) -> bool {
    let limit = if max_payload == 0 {
        EXCERPT_BYTES
    } else {
        max_payload
    };
    len.saturating_add(HEADER_ROOM) <= limit
}

/// Publishes intake rejections on the DLQ subject.
pub struct Dlq {
    subject: String,
    metrics: Arc<Metrics>,
}

impl Dlq {
    /// Publishes on `subject`, counting in `metrics`.
    pub fn new(subject: String, metrics: Arc<Metrics>) -> Self {
        Dlq { subject, metrics }
    }

    /// Republishes a rejected request with the reason in headers. A body that would not fit
    /// the server's `max_payload` with its headers is cut to its first [`EXCERPT_BYTES`]
    /// bytes, and the headers say so (`Beamline-Body-Truncated: true`,
    /// `Beamline-Original-Size`): a letter is never lost for its size.
    pub async fn publish(
        &self,
        client: &Client,
        message: &Message,
        intake_code: &str,
        why: &str,
        tenant_id: Option<&str>,
    ) {
        let clean =
            |s: &str| -> String { s.chars().filter(|c| !c.is_control()).take(512).collect() };
        let mut headers = HeaderMap::new();
        headers.insert("Beamline-Intake-Error-Code", intake_code);
        headers.insert("Beamline-Error-Message", clean(why).as_str());
        headers.insert("Beamline-Original-Subject", message.subject.as_str());
        headers.insert(
            "Beamline-Received-At-Ms",
            clock::now_ms().to_string().as_str(),
        );
        if let Some(tenant) = tenant_id {
            headers.insert("Beamline-Tenant-Id", clean(tenant).as_str());
        }
        let mut body = message.payload.clone();
        if !fits(body.len(), client.server_info().max_payload) {
            headers.insert("Beamline-Body-Truncated", "true");
            headers.insert("Beamline-Original-Size", body.len().to_string().as_str());
            body.truncate(EXCERPT_BYTES);
        }
        match client
            .publish_with_headers(self.subject.clone(), headers, body)
            .await
        {
            Ok(()) => self.metrics.dlq_published.increment(1),
            Err(err) => tracing::warn!(%err, "cannot publish to the DLQ subject"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_that_leaves_no_room_for_the_headers_is_cut() {
        let one_mib = 1024 * 1024;
        assert!(fits(1_000, one_mib));
        assert!(fits(one_mib - HEADER_ROOM, one_mib));
        assert!(!fits(one_mib - 100, one_mib), "the headers would not fit");
        assert!(!fits(one_mib, one_mib));
        assert!(fits(EXCERPT_BYTES - HEADER_ROOM, 0));
    }
}
