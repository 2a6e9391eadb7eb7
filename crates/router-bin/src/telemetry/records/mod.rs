//! Decision records on JetStream: each sampled decision ([`router_core::DecisionRecord`])
//! goes to a bounded queue on the request path (never waiting) and from there, written by
//! one task, to the stream `records.stream` on `<prefix>.v1.decisions.<provider>`.
//!
//! A full queue, a missing stream, a full stream or NATS trouble never delays or fails a
//! decision: the record is dropped and counted (`router_decision_records_total{result}`).
//! `router explain` and `router tail` read the stream back ([`read`]).

pub mod read;
mod writer;

use std::time::Duration;

use async_nats::jetstream::stream;
use tokio::sync::mpsc;

use router_core::{DecisionRecord, Handled};

use crate::config::RecordsConfig;
use metrics::Counter;

use crate::telemetry::metrics::Registry;

pub use writer::run;

/// The records counter, by result: `written`, `dropped` (the queue was full), `failed`
/// (NATS or JetStream refused or did not answer).
const COUNTER: &str = "router_decision_records_total";

/// How long JetStream keeps a record's id to drop a repeat of it.
const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);

/// The subject of the records of decisions for `provider`, under `prefix`.
pub fn subject(prefix: &str, provider: &str) -> String {
    format!("{prefix}.v1.decisions.{provider}")
}

/// Every records subject under `prefix` (`<prefix>.v1.decisions.>`).
pub fn subjects(prefix: &str) -> String {
    format!("{prefix}.v1.decisions.>")
}

/// The stream of records under `prefix`: file storage, the oldest records dropped first once
/// `max_bytes` or `max_age_seconds` is reached, repeats of a decision id dropped.
pub fn stream_config(config: &RecordsConfig, prefix: &str) -> stream::Config {
    stream::Config {
        name: config.stream.clone(),
        description: Some("Beamline Router decision records".to_owned()),
        subjects: vec![subjects(prefix)],
        max_age: Duration::from_secs(config.max_age_seconds),
        max_bytes: config.max_bytes,
        discard: stream::DiscardPolicy::Old,
        storage: stream::StorageType::File,
        num_replicas: config.replicas.max(1),
        duplicate_window: DUPLICATE_WINDOW,
        ..Default::default()
    }
}

/// The request path's end of the queue: offers a sampled decision's record, never waiting.
#[derive(Clone)]
pub struct RecordSink {
    queue: mpsc::Sender<Box<DecisionRecord>>,
    dropped: Counter,
}

/// Both ends of the records queue.
pub struct Channel {
    /// For the decide workers.
    pub sink: RecordSink,
    /// For the writer task ([`run`]).
    pub records: mpsc::Receiver<Box<DecisionRecord>>,
    /// The writer's counters.
    pub written: Written,
}

/// What the writer counts: records acknowledged by the stream, and records lost to NATS.
pub struct Written {
    /// `result="written"`.
    pub written: Counter,
    /// `result="failed"`.
    pub failed: Counter,
}

/// The records queue, holding at most `capacity` records, with its counters registered.
pub fn channel(registry: &Registry, capacity: usize) -> Channel {
    registry.describe_counter(
        COUNTER,
        None,
        "Decision records by result: written to the stream, dropped (queue full) or failed (NATS)",
    );
    let (queue, records) = mpsc::channel(capacity.max(1));
    Channel {
        sink: RecordSink {
            queue,
            dropped: registry.counter(COUNTER, &[("result", "dropped")]),
        },
        records,
        written: Written {
            written: registry.counter(COUNTER, &[("result", "written")]),
            failed: registry.counter(COUNTER, &[("result", "failed")]),
        },
    }
}

impl RecordSink {
    /// Queues the record `handled` carries, if it was sampled for keeping; when the queue
    /// is full it is dropped and counted.
    pub fn offer(&self, handled: &mut Handled) {
        if !handled.keep_record {
            return;
        }
        if let Some(record) = handled.record.take() {
            if self.queue.try_send(record).is_err() {
                self.dropped.increment(1);
            }
        }
    }
}
