//! OpenTelemetry traces, end to end against a real OTLP receiver: a decide or feedback
//! request with a W3C `traceparent` header gets a router span that is a child of the
//! caller's, with the decision's attributes, and the reply carries the router's
//! `traceparent`; over gRPC and over HTTP. Without an endpoint nothing is exported and the
//! reply has no trace header. A receiver stopped under load costs spans, never a decision.

mod support;

use std::time::Duration;

use async_nats::HeaderMap;
use futures::future::join_all;
use serde_json::{json, Value};
use support::otlp::{attribute, Receiver};
use support::{client, policy_dir, request, start_router, RouterArgs};

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT: &str = "00f067aa0ba902b7";

/// acme's `traced`: openai and anthropic, with a breaker.
fn policy() -> Value {
    json!({
        "version": "4.1",
        "providers": [{"name": "openai", "weight": 70}, {"name": "anthropic", "weight": 30}],
        "circuit_breaker": {"enabled": true, "failure_threshold": 5, "success_threshold": 2,
                            "timeout_ms": 60000, "half_open_max_calls": 1}
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn traced_request(id: &str) -> Value {
    let mut body = request(id, "acme", json!({}));
    body["policy_id"] = json!("traced");
    body
}

async fn ask_traced(
    nats: &async_nats::Client,
    subject: String,
    body: &Value,
    traceparent: Option<&str>,
) -> async_nats::Message {
    let mut headers = HeaderMap::new();
    if let Some(traceparent) = traceparent {
        headers.insert("traceparent", traceparent);
        headers.insert("tracestate", "vendor=1");
    }
    let asked = nats.request_with_headers(subject, headers, body.to_string().into());
    tokio::time::timeout(Duration::from_secs(10), asked)
        .await
        .expect("answered in time")
        .expect("answered")
}

fn prefix(test: &str) -> String {
    format!("beamline.{test}{}", std::process::id())
}

fn router_args<'a>(dir: &'a std::path::Path, prefix: &'a str, extra: &[&'a str]) -> RouterArgs<'a> {
    let mut flags = vec!["--subject-prefix", prefix, "--queue-group", prefix];
    flags.extend_from_slice(extra);
    RouterArgs::new(dir, &flags)
}

/// The router's span for a request the caller traced: the caller's trace and parent, the
/// decision's attributes, and the span the reply names.
async fn a_traced_decision_is_a_child_span(protocol: &str, receiver: Receiver) {
    let server = support::tls_server();
    let prefix = prefix(protocol);
    let dir = policy_dir(&[("acme", "traced", policy())]);
    let endpoint = receiver.endpoint();
    let args = router_args(
        dir.path(),
        &prefix,
        &["--otlp-endpoint", &endpoint, "--otlp-protocol", protocol],
    );
    let router = start_router(&server, args).await.expect("router starts");
    let nats = client(&server).await;
    let feedback = format!("{prefix}.v1.feedback");
    for _ in 0..5 {
        let body = json!({"tenant_id": "acme", "policy_id": "traced", "provider_id": "openai",
                          "outcome": "failure"});
        ask_traced(&nats, feedback.clone(), &body, None).await;
    }
    let caller = format!("00-{TRACE}-{PARENT}-01");
    let decide = format!("{prefix}.v1.decide");
    let reply = ask_traced(&nats, decide.clone(), &traced_request("r-1"), Some(&caller)).await;
    let body: Value = serde_json::from_slice(&reply.payload).expect("JSON reply");
    assert_eq!(body["decision"]["provider_id"], "anthropic", "{body}");
    let ours = reply
        .headers
        .as_ref()
        .and_then(|h| h.get("traceparent"))
        .map(|v| v.as_str().to_owned())
        .expect("the reply carries the router's traceparent");
    let parts: Vec<&str> = ours.split('-').collect();
    assert_eq!(parts.len(), 4, "{ours}");
    assert_eq!(
        (parts[0], parts[1], parts[3]),
        ("00", TRACE, "01"),
        "{ours}"
    );
    assert_ne!(parts[2], PARENT, "the router's own span id");

    let span = receiver
        .wait_for(Duration::from_secs(10), |s| hex(&s.span_id) == parts[2])
        .await
        .expect("the router's span reaches the receiver");
    assert_eq!(hex(&span.trace_id), TRACE);
    assert_eq!(hex(&span.parent_span_id), PARENT);
    assert_eq!(span.trace_state, "vendor=1");
    let attr = |key: &str| attribute(&span, key).unwrap_or_else(|| panic!("{key} on {span:?}"));
    assert_eq!(attr("messaging.system"), "nats");
    assert_eq!(attr("messaging.operation.name"), "decide");
    assert_eq!(attr("messaging.destination.name"), decide);
    assert_eq!(attr("beamline.tenant_id"), "acme");
    assert_eq!(attr("beamline.policy.id"), "traced");
    assert_eq!(attr("beamline.policy.version"), "4.1");
    assert_eq!(attr("gen_ai.provider.name"), "anthropic");
    assert_eq!(attr("beamline.decision.reason"), body["decision"]["reason"]);
    assert_eq!(
        attr("beamline.decision.id"),
        body["decision"]["decision_id"]
    );
    assert_eq!(attr("beamline.decision.excluded"), "openai:circuit_breaker");
    let plan: Vec<&str> = body["decision"]["fallbacks"]
        .as_array()
        .expect("a plan")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(
        attribute(&span, "beamline.decision.plan").unwrap_or_default(),
        plan.join(",")
    );
    assert_eq!(receiver.service_name().as_deref(), Some("beamline-router"));

    // Feedback too.
    let report = json!({"tenant_id": "acme", "policy_id": "traced", "provider_id": "anthropic",
                        "outcome": "success"});
    let fed = ask_traced(
        &nats,
        feedback,
        &report,
        Some(&format!("00-{TRACE}-{}-01", "1111111111111111")),
    )
    .await;
    assert!(fed
        .headers
        .as_ref()
        .and_then(|h| h.get("traceparent"))
        .is_some());
    let feedback_span = receiver
        .wait_for(Duration::from_secs(10), |s| {
            hex(&s.parent_span_id) == "1111111111111111"
        })
        .await
        .expect("the feedback span reaches the receiver");
    assert_eq!(
        attribute(&feedback_span, "messaging.operation.name").as_deref(),
        Some("feedback")
    );
    router.stop().await.expect("router stops");
    receiver.stop().await;
}

#[tokio::test]
async fn over_grpc_a_traced_decision_is_a_child_of_the_callers_span() {
    a_traced_decision_is_a_child_span("grpc", Receiver::grpc().await).await;
}

#[tokio::test]
async fn over_http_a_traced_decision_is_a_child_of_the_callers_span() {
    a_traced_decision_is_a_child_span("http", Receiver::http().await).await;
}

#[tokio::test]
async fn without_an_endpoint_nothing_is_traced_and_nothing_fails() {
    let server = support::tls_server();
    let prefix = prefix("untraced");
    let dir = policy_dir(&[("acme", "traced", policy())]);
    let receiver = Receiver::grpc().await;
    let router = start_router(&server, router_args(dir.path(), &prefix, &[]))
        .await
        .expect("router starts");
    let nats = client(&server).await;
    let caller = format!("00-{TRACE}-{PARENT}-01");
    let reply = ask_traced(
        &nats,
        format!("{prefix}.v1.decide"),
        &traced_request("r-1"),
        Some(&caller),
    )
    .await;
    let body: Value = serde_json::from_slice(&reply.payload).expect("JSON reply");
    assert_eq!(body["ok"], true, "{body}");
    assert!(reply
        .headers
        .as_ref()
        .and_then(|h| h.get("traceparent"))
        .is_none());
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(receiver.spans().is_empty());
    router.stop().await.expect("router stops");
    receiver.stop().await;
}

#[tokio::test]
async fn a_receiver_stopped_under_load_loses_no_decision() {
    let server = support::tls_server();
    let prefix = prefix("stopped");
    let dir = policy_dir(&[("acme", "traced", policy())]);
    let receiver = Receiver::http().await;
    let endpoint = receiver.endpoint();
    let args = router_args(
        dir.path(),
        &prefix,
        &["--otlp-endpoint", &endpoint, "--otlp-protocol", "http"],
    );
    let router = start_router(&server, args).await.expect("router starts");
    let nats = client(&server).await;
    let decide = format!("{prefix}.v1.decide");
    let mut receiver = Some(receiver);
    let mut answered = 0;
    for round in 0..4 {
        if round == 2 {
            let stopped = receiver.take().expect("running");
            let arrived = stopped.wait_for(Duration::from_secs(10), |_| true).await;
            assert!(arrived.is_some(), "spans arrived before the stop");
            stopped.stop().await;
        }
        let batch = (0..250).map(|i| {
            let traceparent = format!("00-{TRACE}-{:016x}-01", round * 1000 + i + 1);
            let decide = decide.clone();
            let nats = nats.clone();
            async move {
                let body = traced_request(&format!("r-{round}-{i}"));
                ask_traced(&nats, decide, &body, Some(&traceparent)).await
            }
        });
        for reply in join_all(batch).await {
            let body: Value = serde_json::from_slice(&reply.payload).expect("JSON reply");
            assert_eq!(body["ok"], true, "{body}");
            answered += 1;
        }
    }
    assert_eq!(answered, 1000);
    router
        .stop()
        .await
        .expect("router stops while the receiver is away");
}
