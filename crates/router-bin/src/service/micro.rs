//! The NATS micro service protocol (`$SRV.PING`, `$SRV.INFO`, `$SRV.STATS`, each also
//! `.<name>` and `.<name>.<id>`): how a NATS user discovers every router of a fleet and every
//! subject it serves.
//!
//! The router answers it itself rather than through async-nats's service framework: that
//! framework lists only endpoints whose messages it delivers, and the decide subject is read
//! by the router's own workers (bounded queue, arrival stamps) and the feedback subject by
//! every router without a queue group. Here `$SRV.INFO` lists all three subjects with their
//! queue groups, and `$SRV.STATS` counts the decide path's real requests, errors and
//! processing time.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use async_nats::Client;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// The protocol's verbs.
const VERBS: [&str; 3] = ["PING", "INFO", "STATS"];

/// Counters of one endpoint.
#[derive(Debug, Default)]
pub struct EndpointCounters {
    requests: AtomicU64,
    errors: AtomicU64,
    processing_ns: AtomicU64,
    last_error: Mutex<String>,
}

impl EndpointCounters {
    /// One request answered after `processing` (an error when `error` names one).
    pub fn record(&self, processing: Duration, error: Option<&str>) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.processing_ns.fetch_add(
            u64::try_from(processing.as_nanos()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        if let Some(error) = error {
            self.errors.fetch_add(1, Ordering::Relaxed);
            if let Ok(mut last) = self.last_error.try_lock() {
                error.clone_into(&mut last);
            }
        }
    }
}

/// One endpoint the service lists.
pub struct Endpoint {
    /// Name in `$SRV.INFO` (`decide`, `feedback`, `backpressure-status`).
    pub name: &'static str,
    /// The subject.
    pub subject: String,
    /// Its queue group (empty: every router receives every message).
    pub queue_group: String,
    /// Its counters.
    pub counters: Arc<EndpointCounters>,
}

/// The service as discovery shows it.
pub struct Service {
    /// `beamline-router`.
    pub name: &'static str,
    /// This instance.
    pub id: String,
    /// The router's version.
    pub version: &'static str,
    /// What it is.
    pub description: &'static str,
    /// When it started, RFC 3339.
    pub started: String,
    /// What it serves.
    pub endpoints: Vec<Endpoint>,
    /// Extra figures for `$SRV.STATS` (`data` of the decide endpoint): backpressure.
    pub data: Box<dyn Fn() -> serde_json::Value + Send + Sync>,
}

/// What every `$SRV` reply starts with; `$SRV.PING`'s reply is exactly this.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Identity {
    /// `io.nats.micro.v1.<verb>_response`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Service name.
    pub name: String,
    /// Instance id.
    pub id: String,
    /// Version.
    pub version: String,
    /// Metadata.
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
}

/// One endpoint in `$SRV.INFO`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EndpointInfo {
    /// Name.
    pub name: String,
    /// Subject.
    pub subject: String,
    /// Queue group (empty when none).
    #[serde(default)]
    pub queue_group: String,
    /// Metadata.
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
}

/// `$SRV.INFO` reply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Info {
    /// `io.nats.micro.v1.info_response`, name, id, version, metadata.
    #[serde(flatten)]
    pub identity: Identity,
    /// What it is.
    #[serde(default)]
    pub description: String,
    /// Endpoints.
    #[serde(default)]
    pub endpoints: Vec<EndpointInfo>,
}

/// One endpoint in `$SRV.STATS`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EndpointStats {
    /// Name.
    pub name: String,
    /// Subject.
    pub subject: String,
    /// Queue group.
    #[serde(default)]
    pub queue_group: String,
    /// Requests answered.
    pub num_requests: u64,
    /// Of which errors.
    pub num_errors: u64,
    /// The last error.
    #[serde(default)]
    pub last_error: String,
    /// Total processing time, nanoseconds.
    pub processing_time: u64,
    /// Average processing time, nanoseconds.
    pub average_processing_time: u64,
    /// Extra figures.
    #[serde(default)]
    pub data: serde_json::Value,
}

/// `$SRV.STATS` reply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    /// `io.nats.micro.v1.stats_response`, name, id, version, metadata.
    #[serde(flatten)]
    pub identity: Identity,
    /// Start time, RFC 3339.
    pub started: String,
    /// Endpoints.
    #[serde(default)]
    pub endpoints: Vec<EndpointStats>,
}

impl Service {
    fn identity(&self, verb: &str) -> Identity {
        Identity {
            kind: format!("io.nats.micro.v1.{verb}_response"),
            name: self.name.to_owned(),
            id: self.id.clone(),
            version: self.version.to_owned(),
            metadata: BTreeMap::new(),
        }
    }

    fn info(&self) -> Info {
        Info {
            identity: self.identity("info"),
            description: self.description.to_owned(),
            endpoints: self
                .endpoints
                .iter()
                .map(|e| EndpointInfo {
                    name: e.name.to_owned(),
                    subject: e.subject.clone(),
                    queue_group: e.queue_group.clone(),
                    metadata: BTreeMap::new(),
                })
                .collect(),
        }
    }

    fn stats(&self) -> Stats {
        let data = (self.data)();
        Stats {
            identity: self.identity("stats"),
            started: self.started.clone(),
            endpoints: self
                .endpoints
                .iter()
                .enumerate()
                .map(|(i, e)| {
                    let c = &e.counters;
                    let requests = c.requests.load(Ordering::Relaxed);
                    let processing = c.processing_ns.load(Ordering::Relaxed);
                    EndpointStats {
                        name: e.name.to_owned(),
                        subject: e.subject.clone(),
                        queue_group: e.queue_group.clone(),
                        num_requests: requests,
                        num_errors: c.errors.load(Ordering::Relaxed),
                        last_error: c.last_error.lock().map(|l| l.clone()).unwrap_or_default(),
                        processing_time: processing,
                        average_processing_time: processing.checked_div(requests).unwrap_or(0),
                        data: if i == 0 {
                            data.clone()
                        } else {
                            serde_json::Value::Null
                        },
                    }
                })
                .collect(),
        }
    }

    /// The reply to a request on `subject` (`$SRV.<VERB>[.<name>[.<id>]]`), or `None` when
    /// it is not addressed to this instance.
    pub fn answer(&self, subject: &str) -> Option<Vec<u8>> {
        let mut parts = subject.split('.');
        if parts.next() != Some("$SRV") {
            return None;
        }
        let verb = parts.next()?;
        if let Some(name) = parts.next() {
            if name != self.name {
                return None;
            }
            if let Some(id) = parts.next() {
                if id != self.id {
                    return None;
                }
            }
        }
        let body = match verb {
            "PING" => serde_json::to_vec(&self.identity("ping")),
            "INFO" => serde_json::to_vec(&self.info()),
            "STATS" => serde_json::to_vec(&self.stats()),
            _ => return None,
        };
        body.ok()
    }

    /// The subjects this instance answers on.
    fn subjects(&self) -> Vec<String> {
        VERBS
            .iter()
            .flat_map(|verb| {
                [
                    format!("$SRV.{verb}"),
                    format!("$SRV.{verb}.{}", self.name),
                    format!("$SRV.{verb}.{}.{}", self.name, self.id),
                ]
            })
            .collect()
    }
}

/// A random instance id: 22 characters of `[0-9A-Za-z]`.
pub fn instance_id() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut rng = rand::rng();
    (0..22)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// The discovery requests addressed to this instance, as one stream.
pub type Requests = futures::stream::SelectAll<async_nats::Subscriber>;

/// Subscribes to the discovery subjects of `service`.
pub async fn subscribe(client: &Client, service: &Service) -> anyhow::Result<Requests> {
    let mut subscriptions = Vec::new();
    for subject in service.subjects() {
        subscriptions.push(
            client
                .subscribe(subject.clone())
                .await
                .with_context(|| format!("cannot subscribe to {subject}"))?,
        );
    }
    Ok(futures::stream::select_all(subscriptions))
}

/// Answers one discovery request.
pub async fn answer(client: &Client, service: &Service, request: async_nats::Message) {
    let (Some(reply), Some(body)) = (request.reply, service.answer(&request.subject)) else {
        return;
    };
    if let Err(err) = client.publish(reply, Bytes::from(body)).await {
        tracing::debug!(%err, "cannot answer a discovery request");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service() -> Service {
        let counters = Arc::new(EndpointCounters::default());
        counters.record(Duration::from_micros(10), None);
        counters.record(Duration::from_micros(30), Some("overloaded"));
        Service {
            name: "beamline-router",
            id: "ID1".to_owned(),
            version: "0.1.0",
            description: "test",
            started: "2026-11-30T00:00:00Z".to_owned(),
            endpoints: vec![
                Endpoint {
                    name: "decide",
                    subject: "b.v1.decide".to_owned(),
                    queue_group: "g".to_owned(),
                    counters,
                },
                Endpoint {
                    name: "feedback",
                    subject: "b.v1.feedback".to_owned(),
                    queue_group: String::new(),
                    counters: Arc::default(),
                },
            ],
            data: Box::new(|| serde_json::json!({"backpressure": "inactive"})),
        }
    }

    #[test]
    fn answers_what_is_addressed_to_it() {
        let s = service();
        for subject in [
            "$SRV.PING",
            "$SRV.INFO.beamline-router",
            "$SRV.STATS.beamline-router.ID1",
        ] {
            assert!(s.answer(subject).is_some(), "{subject}");
        }
        for subject in [
            "$SRV.PING.other",
            "$SRV.INFO.beamline-router.ID2",
            "$SRV.NOPE",
            "x.y",
        ] {
            assert!(s.answer(subject).is_none(), "{subject}");
        }
    }

    #[test]
    fn info_lists_every_endpoint_and_stats_count_them() {
        let s = service();
        let info: Info =
            serde_json::from_slice(&s.answer("$SRV.INFO").expect("info")).expect("json");
        assert_eq!(info.identity.kind, "io.nats.micro.v1.info_response");
        let listed: Vec<(&str, &str)> = info
            .endpoints
            .iter()
            .map(|e| (e.name.as_str(), e.queue_group.as_str()))
            .collect();
        assert_eq!(listed, [("decide", "g"), ("feedback", "")]);
        let stats: Stats =
            serde_json::from_slice(&s.answer("$SRV.STATS").expect("stats")).expect("json");
        let decide = &stats.endpoints[0];
        assert_eq!((decide.num_requests, decide.num_errors), (2, 1));
        assert_eq!(decide.average_processing_time, 20_000);
        assert_eq!(decide.last_error, "overloaded");
        assert_eq!(decide.data["backpressure"], "inactive");
    }
}
