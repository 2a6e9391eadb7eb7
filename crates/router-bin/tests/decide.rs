//! Decide requests over a real TLS nats-server against a router started in this process.

mod support;

use std::collections::HashMap;
use std::time::Duration;

use futures::StreamExt;
use serde_json::{json, Value};
use support::{client, decide, decide_raw, policy_dir, request, tls_server, RouterArgs};

async fn start(
    server: &nats_harness::NatsServer,
    dir: &std::path::Path,
    extra: &[&str],
) -> support::TestRouter {
    support::start_router(server, RouterArgs::new(dir, extra))
        .await
        .expect("router starts")
}

#[tokio::test]
async fn happy_path_uses_the_default_policy_and_echoes_the_context() {
    let server = tls_server();
    let dir = policy_dir(&[]);
    let _router = start(&server, dir.path(), &[]).await;
    let nats = client(&server).await;
    let mut body = request("r-1", "default_tenant", json!({}));
    body["trace_id"] = json!("4bf92f3577b34da6a3ce929d0e0e4736");
    let reply = decide(&nats, &body).await;
    assert_eq!(reply["ok"], true, "{reply}");
    let decision = &reply["decision"];
    assert_eq!(decision["reason"], "weighted");
    assert_eq!(decision["priority"], 50);
    assert_eq!(decision["policy_id"], "default");
    assert_eq!(decision["metadata"]["tenant_id"], "default_tenant");
    let provider = decision["provider_id"].as_str().expect("provider");
    assert!(
        provider == "openai" || provider == "anthropic",
        "{provider}"
    );
    let expected_latency = if provider == "openai" { 850.0 } else { 920.0 };
    assert_eq!(
        decision["expected_latency_ms"].as_f64(),
        Some(expected_latency)
    );
    assert_eq!(reply["context"]["request_id"], "r-1");
    assert_eq!(
        reply["context"]["trace_id"],
        "4bf92f3577b34da6a3ce929d0e0e4736"
    );
}

#[tokio::test]
async fn weighted_split_is_70_30_over_10000_requests() {
    let server = tls_server();
    let dir = policy_dir(&[]);
    let _router = start(&server, dir.path(), &[]).await;
    let nats = client(&server).await;
    let replies = futures::stream::iter(0..10_000)
        .map(|i| {
            let nats = nats.clone();
            async move {
                decide(
                    &nats,
                    &request(&format!("r-{i}"), "default_tenant", json!({})),
                )
                .await
            }
        })
        .buffer_unordered(64)
        .collect::<Vec<Value>>()
        .await;
    let mut counts: HashMap<String, u32> = HashMap::new();
    for reply in &replies {
        assert_eq!(reply["ok"], true, "{reply}");
        *counts
            .entry(
                reply["decision"]["provider_id"]
                    .as_str()
                    .unwrap_or("?")
                    .to_owned(),
            )
            .or_default() += 1;
    }
    let openai = f64::from(counts.get("openai").copied().unwrap_or(0)) / 100.0;
    assert!(
        (openai - 70.0).abs() <= 2.0,
        "openai share {openai}% ({counts:?})"
    );
    assert_eq!(counts.values().sum::<u32>(), 10_000);
}

#[tokio::test]
async fn sticky_by_user_id() {
    let server = tls_server();
    let dir = policy_dir(&[]);
    let _router = start(&server, dir.path(), &[]).await;
    let nats = client(&server).await;
    let first = decide(
        &nats,
        &request("r-0", "default_tenant", json!({"user_id": "u-42"})),
    )
    .await;
    assert_eq!(first["decision"]["reason"], "weighted");
    assert_eq!(first["decision"]["metadata"]["sticky_key"], "user_id");
    let provider = first["decision"]["provider_id"].clone();
    for i in 1..50 {
        let reply = decide(
            &nats,
            &request(
                &format!("r-{i}"),
                "default_tenant",
                json!({"user_id": "u-42"}),
            ),
        )
        .await;
        assert_eq!(reply["decision"]["reason"], "sticky", "{reply}");
        assert_eq!(reply["decision"]["priority"], 100);
        assert_eq!(reply["decision"]["provider_id"], provider);
    }
}

#[tokio::test]
async fn unknown_policy_is_policy_not_found() {
    let server = tls_server();
    let dir = policy_dir(&[]);
    let _router = start(&server, dir.path(), &[]).await;
    let nats = client(&server).await;
    let mut body = request("r-1", "default_tenant", json!({}));
    body["policy_id"] = json!("nope");
    let reply = decide(&nats, &body).await;
    assert_eq!(reply["ok"], false);
    assert_eq!(reply["error"]["code"], "policy_not_found");
    assert_eq!(reply["error"]["details"]["tenant_id"], "default_tenant");
    assert_eq!(reply["error"]["details"]["policy_id"], "nope");
    let reply = decide(&nats, &request("r-2", "stranger", json!({}))).await;
    assert_eq!(reply["error"]["code"], "policy_not_found");
}

#[tokio::test]
async fn tenant_off_the_allow_list_is_unauthorized() {
    let server = tls_server();
    let dir = policy_dir(&[]);
    let _router = start(&server, dir.path(), &["--allowed-tenants", "acme,globex"]).await;
    let nats = client(&server).await;
    let reply = decide(&nats, &request("r-1", "default_tenant", json!({}))).await;
    assert_eq!(reply["error"]["code"], "unauthorized", "{reply}");
    assert_eq!(reply["error"]["intake_error_code"], "TENANT_FORBIDDEN");
    assert_eq!(reply["context"]["request_id"], "r-1");
    let reply = decide(&nats, &request("r-2", "acme", json!({}))).await;
    assert_eq!(reply["ok"], true, "{reply}");
}

#[tokio::test]
async fn fallback_rules_retry_then_fall_back() {
    let server = tls_server();
    let dir = policy_dir(&[]);
    let _router = start(&server, dir.path(), &[]).await;
    let nats = client(&server).await;
    let failed = |attempt: u32, status: &str| {
        request(
            "r-f",
            "default_tenant",
            json!({"current_provider": "openai", "status": status, "retry_attempt": attempt}),
        )
    };
    let reply = decide(&nats, &failed(0, "timeout")).await;
    assert_eq!(reply["decision"]["reason"], "retry", "{reply}");
    assert_eq!(reply["decision"]["provider_id"], "openai");
    assert_eq!(reply["decision"]["metadata"]["retry_attempt"], 1);
    assert_eq!(reply["decision"]["metadata"]["max_retries"], 2);
    let reply = decide(&nats, &failed(2, "5xx")).await;
    assert_eq!(reply["decision"]["reason"], "fallback", "{reply}");
    assert_eq!(reply["decision"]["provider_id"], "anthropic");
    assert_eq!(reply["decision"]["priority"], 25);
    let reply = decide(&nats, &failed(0, "rate_limited")).await;
    assert_eq!(reply["decision"]["provider_id"], "local_llm", "{reply}");
    assert_eq!(reply["decision"]["reason"], "fallback");
    // A status no rule matches routes normally.
    let reply = decide(&nats, &failed(0, "ok")).await;
    assert_eq!(reply["decision"]["reason"], "weighted", "{reply}");
}

#[tokio::test]
async fn breaker_opens_on_failure_feedback_and_closes_again() {
    let server = tls_server();
    let policy = json!({
        "providers": [{"name": "openai", "weight": 50}, {"name": "anthropic", "weight": 50}],
        "circuit_breaker": {"enabled": true, "failure_threshold": 3, "success_threshold": 1,
                            "timeout_ms": 1500, "half_open_max_calls": 1}
    });
    let dir = policy_dir(&[("breaker", "default", policy)]);
    let _router = start(&server, dir.path(), &[]).await;
    let nats = client(&server).await;
    for _ in 0..3 {
        let feedback = json!({"tenant_id": "breaker", "provider_id": "openai", "outcome": "failure", "latency_ms": 12});
        nats.request("beamline.router.v1.feedback", feedback.to_string().into())
            .await
            .expect("feedback acknowledged");
    }
    for i in 0..200 {
        let reply = decide(&nats, &request(&format!("r-{i}"), "breaker", json!({}))).await;
        assert_eq!(
            reply["decision"]["provider_id"], "anthropic",
            "open breaker must be avoided: {reply}"
        );
    }
    // Once the timeout has passed one probe may go to openai; a success closes the breaker.
    let mut probed = false;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut i = 0;
    while !probed && tokio::time::Instant::now() < deadline {
        i += 1;
        let reply = decide(&nats, &request(&format!("p-{i}"), "breaker", json!({}))).await;
        probed = reply["decision"]["provider_id"] == "openai";
    }
    assert!(probed, "half-open breaker admits a probe within 10 s");
    let success = json!({"tenant_id": "breaker", "provider_id": "openai", "outcome": "success"});
    nats.request("beamline.router.v1.feedback", success.to_string().into())
        .await
        .expect("feedback acknowledged");
    let mut openai = 0;
    for i in 0..200 {
        let reply = decide(&nats, &request(&format!("c-{i}"), "breaker", json!({}))).await;
        if reply["decision"]["provider_id"] == "openai" {
            openai += 1;
        }
    }
    assert!(
        openai > 50,
        "closed breaker: openai chosen again ({openai}/200)"
    );
}

#[tokio::test]
async fn every_intake_error_code_over_the_wire() {
    let server = tls_server();
    let dir = policy_dir(&[]);
    let _router = start(&server, dir.path(), &[]).await;
    let nats = client(&server).await;
    let base = request("r-1", "default_tenant", json!({}));
    let with = |key: &str, value: Value| {
        let mut body = base.clone();
        body[key] = value;
        body
    };
    let rows: Vec<(Value, &str, &str)> = vec![
        (
            with("request_id", json!(7)),
            "SCHEMA_VALIDATION_FAILED",
            "request_id",
        ),
        (
            with("version", json!("2")),
            "VERSION_UNSUPPORTED",
            "version",
        ),
        (
            with("trace_id", json!("nope")),
            "CORRELATION_FIELDS_INVALID",
            "trace_id",
        ),
        (
            with("task", json!({"payload": {"prompt": "hello world"}})),
            "CORRELATION_FIELDS_INVALID",
            "task.type",
        ),
        (
            with("task", json!({"type": "t", "payload": {}})),
            "PAYLOAD_TOO_SMALL",
            "task.payload",
        ),
    ];
    for (body, intake, field) in rows {
        let reply = decide(&nats, &body).await;
        assert_eq!(reply["ok"], false, "{body}");
        assert_eq!(reply["error"]["code"], "invalid_request", "{body}: {reply}");
        assert_eq!(
            reply["error"]["intake_error_code"], intake,
            "{body}: {reply}"
        );
        assert_eq!(reply["error"]["details"]["field"], field, "{body}: {reply}");
    }
}

#[tokio::test]
async fn version_header_wins_over_the_body() {
    let server = tls_server();
    let dir = policy_dir(&[]);
    let _router = start(&server, dir.path(), &[]).await;
    let nats = client(&server).await;
    let send = |header: &'static str, body: Value| {
        let nats = nats.clone();
        async move {
            let mut headers = async_nats::HeaderMap::new();
            headers.insert("version", header);
            let reply = nats
                .request_with_headers(support::DECIDE, headers, body.to_string().into())
                .await
                .expect("answered");
            serde_json::from_slice::<Value>(&reply.payload).expect("json")
        }
    };
    let mut body = request("r-1", "default_tenant", json!({}));
    body["version"] = json!("2");
    let reply = send("1", body).await;
    assert_eq!(reply["ok"], true, "header 1 wins over body 2: {reply}");
    let reply = send("2", request("r-2", "default_tenant", json!({}))).await;
    assert_eq!(
        reply["error"]["intake_error_code"], "VERSION_UNSUPPORTED",
        "{reply}"
    );
}

#[tokio::test]
async fn malformed_json_gets_invalid_request() {
    let server = tls_server();
    let dir = policy_dir(&[]);
    let router = start(&server, dir.path(), &[]).await;
    let nats = client(&server).await;
    for body in [
        &b"{not json"[..],
        b"",
        b"[]",
        b"\xff\xfe",
        b"{\"request_id\": \"r\"",
    ] {
        let reply = decide_raw(&nats, body.to_vec()).await;
        assert_eq!(reply["error"]["code"], "invalid_request", "{reply}");
        assert_eq!(
            reply["error"]["intake_error_code"],
            "SCHEMA_VALIDATION_FAILED"
        );
    }
    assert_eq!(router.get("/readyz").await.expect("readyz").0, 200);
}

#[tokio::test]
async fn publish_without_reply_subject_goes_to_the_reply_subject() {
    let server = tls_server();
    let dir = policy_dir(&[]);
    let _router = start(&server, dir.path(), &[]).await;
    let nats = client(&server).await;
    let mut replies = nats
        .subscribe("beamline.router.v1.decide.reply")
        .await
        .expect("subscribe");
    nats.flush().await.expect("flush");
    let body = request("no-reply-1", "default_tenant", json!({}));
    nats.publish(support::DECIDE, body.to_string().into())
        .await
        .expect("publish");
    let message = tokio::time::timeout(Duration::from_secs(5), replies.next())
        .await
        .expect("reply within 5 s")
        .expect("message");
    let reply: Value = serde_json::from_slice(&message.payload).expect("json");
    assert_eq!(reply["ok"], true);
    assert_eq!(reply["context"]["request_id"], "no-reply-1");
}

#[tokio::test]
async fn intake_rejections_are_published_to_the_dlq() {
    let server = tls_server();
    let dir = policy_dir(&[]);
    let _router = start(&server, dir.path(), &[]).await;
    let nats = client(&server).await;
    let mut dlq = nats
        .subscribe("beamline.router.v1.decide.dlq")
        .await
        .expect("subscribe");
    nats.flush().await.expect("flush");
    let mut body = request("bad-1", "default_tenant", json!({}));
    body["trace_id"] = json!("not-a-trace");
    let reply = decide(&nats, &body).await;
    assert_eq!(
        reply["error"]["intake_error_code"],
        "CORRELATION_FIELDS_INVALID"
    );
    let message = tokio::time::timeout(Duration::from_secs(5), dlq.next())
        .await
        .expect("DLQ message within 5 s")
        .expect("message");
    let headers = message.headers.expect("DLQ headers");
    assert_eq!(
        headers
            .get("Beamline-Intake-Error-Code")
            .map(|v| v.as_str()),
        Some("CORRELATION_FIELDS_INVALID")
    );
    assert_eq!(
        headers.get("Beamline-Tenant-Id").map(|v| v.as_str()),
        Some("default_tenant")
    );
    let original: Value = serde_json::from_slice(&message.payload).expect("original body");
    assert_eq!(original, body, "the original request is kept unchanged");
    // JetStream keeps the dead letter.
    let jetstream = async_nats::jetstream::new(nats.clone());
    let mut stream = jetstream
        .get_stream("BEAMLINE_DLQ")
        .await
        .expect("DLQ stream exists");
    let kept = stream.info().await.expect("stream info").state.messages;
    assert!(kept >= 1, "dead letter kept in the stream");
    // A policy_not_found is not an intake rejection: no DLQ message.
    let mut other = request("fine-1", "nobody", json!({}));
    other["policy_id"] = json!("default");
    decide(&nats, &other).await;
    assert!(
        tokio::time::timeout(Duration::from_millis(300), dlq.next())
            .await
            .is_err(),
        "only intake rejections go to the DLQ"
    );
}

/// The DLQ stream is one per server: a router whose subject prefix it does not capture yet
/// adds its subject, so the dead letters of every prefix are kept (before, the first router's
/// prefix won and the others' dead letters were published but not kept).
#[tokio::test]
async fn dead_letters_of_every_prefix_are_kept() {
    // Owns its server: the stream must be created here by the first router below.
    let server = support::owned_tls_server();
    let dir = policy_dir(&[]);
    let other = start(
        &server,
        dir.path(),
        &[
            "--subject-prefix",
            "beamline.dlq-other",
            "--queue-group",
            "dlq-other",
        ],
    )
    .await;
    let nats = client(&server).await;
    let jetstream = async_nats::jetstream::new(nats.clone());
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while jetstream.get_stream("BEAMLINE_DLQ").await.is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "the first router made no DLQ stream"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _default = start(&server, dir.path(), &[]).await;
    let mut body = request("dlq-both-1", "default_tenant", json!({}));
    body["trace_id"] = json!("not-a-trace");
    let reply = decide(&nats, &body).await;
    assert_eq!(reply["error"]["code"], "invalid_request", "{reply}");
    let mut stream = jetstream.get_stream("BEAMLINE_DLQ").await.expect("stream");
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let info = stream.info().await.expect("stream info").clone();
        let subjects = &info.config.subjects;
        if info.state.messages >= 1 {
            assert!(
                subjects.contains(&"beamline.dlq-other.v1.decide.dlq".to_owned())
                    && subjects.contains(&"beamline.router.v1.decide.dlq".to_owned()),
                "{subjects:?}"
            );
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the default prefix's dead letter was not kept: subjects {subjects:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(other);
}

#[tokio::test]
async fn two_thousand_concurrent_requests_are_all_answered() {
    let server = tls_server();
    let dir = policy_dir(&[]);
    // Backpressure has its own tests (overload.rs): here its latency and queue signals are
    // set out of reach, so that a debug build on a busy machine still decides every request.
    let thresholds = [
        "--latency-overload-ms",
        "10000",
        "--queue-overload",
        "100000",
    ];
    let _router = start(&server, dir.path(), &thresholds).await;
    let nats = client(&server).await;
    let replies = futures::future::join_all((0..2_000).map(|i| {
        let nats = nats.clone();
        async move {
            let body = request(
                &format!("c-{i}"),
                "acme",
                json!({"user_id": format!("u-{}", i % 100)}),
            );
            decide(&nats, &body).await
        }
    }))
    .await;
    assert_eq!(replies.len(), 2_000);
    for (i, reply) in replies.iter().enumerate() {
        assert_eq!(reply["ok"], true, "{reply}");
        assert_eq!(reply["context"]["request_id"], format!("c-{i}"));
    }
}

#[tokio::test]
async fn a_body_over_one_mebibyte_is_rejected_before_parsing() {
    // The server must carry messages larger than the router's 1 MiB limit for this test, so
    // it starts its own (max_payload 4MB) even under `cargo xtask heavy`.
    let server = nats_harness::NatsServer::start(nats_harness::ServerOptions {
        tls: true,
        extra_config: "max_payload: 4MB".into(),
        ..Default::default()
    })
    .expect("start nats-server");
    let dir = policy_dir(&[]);
    let router = start(&server, dir.path(), &[]).await;
    let nats = client(&server).await;
    let mut body = request("big-1", "default_tenant", json!({}));
    body["task"]["payload"]["prompt"] = json!("x".repeat(1024 * 1024));
    let reply = decide(&nats, &body).await;
    assert_eq!(reply["error"]["code"], "invalid_request", "{reply}");
    assert_eq!(
        reply["error"]["intake_error_code"],
        "SCHEMA_VALIDATION_FAILED"
    );
    assert!(reply["error"]["message"]
        .as_str()
        .unwrap_or("")
        .contains("over the limit"));
    assert_eq!(
        reply["context"]["request_id"],
        Value::Null,
        "not parsed, so unknown"
    );
    // Still serving.
    let reply = decide(&nats, &request("small-1", "default_tenant", json!({}))).await;
    assert_eq!(reply["ok"], true);
    assert_eq!(router.get("/readyz").await.expect("readyz").0, 200);
}
