//! OpenTelemetry traces: with `tracing.otlp_endpoint` set, each decide or feedback request
//! gets a span, a child of the caller's when its NATS headers carry a W3C `traceparent`
//! (and `tracestate`), and the reply carries the router's `traceparent`. Spans are sampled
//! parent-based (the caller's sampled flag decides for its trace, `tracing.sample_ratio` for
//! new ones) and exported with OTLP (gRPC or HTTP/protobuf) by a batch processor on its own
//! thread, off the request path: a slow or stopped collector costs spans, never a decision.
//! Without an endpoint nothing here is built.

use std::time::Duration;

use anyhow::Context as _;
use async_nats::HeaderMap;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{
    Span as _, SpanKind, Status, TraceContextExt as _, Tracer as _, TracerProvider as _,
};
use opentelemetry::{Array, Context, KeyValue, StringValue, Value};
use opentelemetry_otlp::{Protocol, WithExportConfig as _};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, Sampler, SdkTracer, SdkTracerProvider, Span,
};
use opentelemetry_sdk::Resource;

use router_core::DecisionRecord;

use crate::config::{OtlpProtocol, TracingConfig};

/// How long one export may take before it is abandoned.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(3);
/// Most spans waiting for export; beyond, new spans are dropped (the SDK counts them).
const QUEUE: usize = 16_384;
/// Most spans in one export.
const BATCH: usize = 512;
/// Longest time a finished span waits for its batch.
const DELAY: Duration = Duration::from_millis(200);
/// Longest wait for the last batches at shutdown.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(3);

/// The tracer of a router that exports spans.
pub struct Traces {
    provider: SdkTracerProvider,
    tracer: SdkTracer,
    propagator: TraceContextPropagator,
}

/// One request's span, ended when dropped.
pub struct RequestSpan {
    span: Span,
}

impl Traces {
    /// The tracer `config` asks for, or `None` when no endpoint is set. Call inside the
    /// runtime (the gRPC exporter needs its reactor).
    pub fn start(config: &TracingConfig) -> anyhow::Result<Option<Traces>> {
        let Some(endpoint) = config.endpoint() else {
            return Ok(None);
        };
        let exporter = match config.otlp_protocol {
            OtlpProtocol::Grpc => opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .with_endpoint(endpoint)
                .with_timeout(EXPORT_TIMEOUT)
                .build(),
            OtlpProtocol::Http => opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_protocol(Protocol::HttpBinary)
                .with_endpoint(http_traces_url(endpoint))
                .with_timeout(EXPORT_TIMEOUT)
                .build(),
        }
        .with_context(|| format!("cannot set up the OTLP exporter for {endpoint}"))?;
        let batches = BatchConfigBuilder::default()
            .with_max_queue_size(QUEUE)
            .with_max_export_batch_size(BATCH)
            .with_scheduled_delay(DELAY)
            .build();
        let provider = SdkTracerProvider::builder()
            .with_span_processor(
                BatchSpanProcessor::builder(exporter)
                    .with_batch_config(batches)
                    .build(),
            )
            .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
                config.sample_ratio,
            ))))
            .with_resource(
                Resource::builder()
                    .with_service_name(config.service_name.clone())
                    .build(),
            )
            .build();
        let tracer = provider.tracer("beamline-router");
        tracing::info!(
            endpoint,
            protocol = ?config.otlp_protocol,
            ratio = config.sample_ratio,
            "exporting traces with OTLP"
        );
        Ok(Some(Traces {
            provider,
            tracer,
            propagator: TraceContextPropagator::new(),
        }))
    }

    /// A span for a request that arrived on `subject` with `headers`: a child of the
    /// caller's span when the headers carry a valid `traceparent`, else a new trace.
    pub fn request_span(
        &self,
        operation: &'static str,
        subject: &str,
        headers: Option<&HeaderMap>,
        body_size: usize,
    ) -> RequestSpan {
        let parent = match headers {
            Some(headers) => self
                .propagator
                .extract_with_context(&Context::new(), &Incoming(headers)),
            None => Context::new(),
        };
        let span = self
            .tracer
            .span_builder(format!("{operation} {subject}"))
            .with_kind(SpanKind::Consumer)
            .with_attributes([
                KeyValue::new("messaging.system", "nats"),
                KeyValue::new("messaging.operation.type", "process"),
                KeyValue::new("messaging.operation.name", operation),
                KeyValue::new("messaging.destination.name", subject.to_owned()),
                KeyValue::new("messaging.message.body.size", body_size as i64),
            ])
            .start_with_context(&self.tracer, &parent);
        RequestSpan { span }
    }

    /// Exports what is queued and stops, waiting at most [`SHUTDOWN_WAIT`] (off the
    /// runtime's workers: the SDK blocks).
    pub async fn shutdown(&self) {
        let provider = self.provider.clone();
        let stopped =
            tokio::task::spawn_blocking(move || provider.shutdown_with_timeout(SHUTDOWN_WAIT))
                .await;
        if let Ok(Err(err)) = stopped {
            tracing::warn!(%err, "the last spans may not have been exported");
        }
    }
}

impl RequestSpan {
    /// True when the span is sampled (recorded and exported).
    pub fn is_recording(&self) -> bool {
        self.span.is_recording()
    }

    /// The `traceparent` (and `tracestate`) of this span, for the reply's headers.
    pub fn reply_headers(&self) -> HeaderMap {
        let mut headers = HeaderMap::new();
        let context = Context::new().with_remote_span_context(self.span.span_context().clone());
        TraceContextPropagator::new().inject_context(&context, &mut Outgoing(&mut headers));
        headers
    }

    /// Names the decision: tenant, policy and version, the chosen provider, the reason, the
    /// plan, and each excluded provider with why. Takes the record, whose strings become the
    /// attributes without a copy.
    pub fn decided(&mut self, record: DecisionRecord) {
        let excluded: Vec<StringValue> = record
            .candidates
            .iter()
            .filter_map(|c| Some(format!("{}:{}", c.provider_id, c.excluded.as_deref()?).into()))
            .collect();
        let plan: Vec<StringValue> = record.plan.into_iter().map(StringValue::from).collect();
        self.span.set_attributes([
            KeyValue::new("messaging.message.id", record.request_id),
            KeyValue::new("gen_ai.provider.name", record.provider_id),
            KeyValue::new("beamline.tenant_id", record.tenant_id),
            KeyValue::new("beamline.policy.id", record.policy_id),
            KeyValue::new("beamline.policy.version", record.policy_version),
            KeyValue::new("beamline.decision.id", record.decision_id),
            KeyValue::new("beamline.decision.reason", record.reason.as_str()),
            KeyValue::new("beamline.decision.plan", Value::Array(Array::String(plan))),
            KeyValue::new(
                "beamline.decision.excluded",
                Value::Array(Array::String(excluded)),
            ),
        ]);
    }

    /// Marks the span failed with the reply's error code (`error.type`).
    pub fn failed(&mut self, code: &'static str, tenant_id: Option<&str>) {
        self.span.set_attribute(KeyValue::new("error.type", code));
        if let Some(tenant) = tenant_id {
            self.span
                .set_attribute(KeyValue::new("beamline.tenant_id", tenant.to_owned()));
        }
        self.span.set_status(Status::error(code));
    }

    /// Adds one attribute.
    pub fn set(&mut self, key: &'static str, value: impl Into<Value>) {
        self.span.set_attribute(KeyValue::new(key, value));
    }
}

/// An HTTP endpoint with no path gets the OTLP traces path (`/v1/traces`).
fn http_traces_url(endpoint: &str) -> String {
    let trimmed = endpoint.trim_end_matches('/');
    let after_scheme = trimmed.split_once("://").map_or(trimmed, |(_, rest)| rest);
    if after_scheme.contains('/') {
        trimmed.to_owned()
    } else {
        format!("{trimmed}/v1/traces")
    }
}

/// A request's NATS headers, read by the propagator.
struct Incoming<'a>(&'a HeaderMap);

impl Extractor for Incoming<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(|value| value.as_str())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.iter().map(|(name, _)| name.as_ref()).collect()
    }
}

/// A reply's NATS headers, written by the propagator.
struct Outgoing<'a>(&'a mut HeaderMap);

impl Injector for Outgoing<'_> {
    fn set(&mut self, key: &str, value: String) {
        self.0.insert(key, value.as_str());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_http_endpoint_without_a_path_gets_the_traces_path() {
        assert_eq!(
            http_traces_url("http://127.0.0.1:4318"),
            "http://127.0.0.1:4318/v1/traces"
        );
        assert_eq!(
            http_traces_url("http://collector:4318/"),
            "http://collector:4318/v1/traces"
        );
        assert_eq!(
            http_traces_url("https://otel.example/custom/traces"),
            "https://otel.example/custom/traces"
        );
    }
}
