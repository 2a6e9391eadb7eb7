//! The dead-letter stream: a JetStream stream that keeps what the router publishes on the DLQ
//! subject, so an intake rejection outlives the moment nobody is subscribed.

use std::time::Duration;

use async_nats::jetstream::{self, stream};
use async_nats::Client;

/// Name of the stream capturing the DLQ subject.
pub const STREAM: &str = "BEAMLINE_DLQ";
/// How long dead letters are kept.
const MAX_AGE: Duration = Duration::from_secs(7 * 24 * 3600);
/// Most bytes kept; the oldest letters go first.
const MAX_BYTES: i64 = 256 * 1024 * 1024;

/// Creates the stream (or finds it) for `subject`, waiting at most 2 s. Without JetStream the DLQ still publishes
/// on core NATS, and the router says so once.
pub async fn ensure_stream(client: &Client, subject: &str) {
    let context = jetstream::new(client.clone());
    let config = stream::Config {
        name: STREAM.to_owned(),
        subjects: vec![subject.to_owned()],
        max_age: MAX_AGE,
        max_bytes: MAX_BYTES,
        storage: stream::StorageType::File,
        ..Default::default()
    };
    match tokio::time::timeout(Duration::from_secs(2), context.get_or_create_stream(config)).await {
        Ok(Ok(_)) => tracing::info!(stream = STREAM, subject, "DLQ kept in JetStream"),
        Ok(Err(err)) => tracing::warn!(
            %err,
            subject,
            "cannot create the DLQ stream; dead letters are published but not kept (is JetStream enabled?)"
        ),
        Err(_) => tracing::warn!(
            subject,
            "JetStream did not answer; dead letters are published but not kept"
        ),
    }
}
