//! What the router tells its callers and operators, over a real TLS nats-server: feedback
//! replies, breaker visibility, discovery, dead letters, the drain, idempotency across routers.

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::{json, Value};
use support::{client, decide, policy_dir, request, tls_server, RouterArgs, DECIDE};

const FEEDBACK: &str = "beamline.router.v1.feedback";

async fn ask(nats: &async_nats::Client, subject: &str, body: Value) -> Value {
    let reply = tokio::time::timeout(
        Duration::from_secs(5),
        nats.request(subject.to_owned(), body.to_string().into()),
    )
    .await
    .expect("answered within 5 s")
    .expect("answered");
    serde_json::from_slice(&reply.payload).expect("JSON reply")
}

/// Feedback with a reply subject gets the rejection when it is refused, and the policies it
/// fed when it is applied (before, it was `{"ok":true}` whatever happened).
#[tokio::test]
async fn feedback_replies_say_what_happened() {
    let server = tls_server();
    let dir = policy_dir(&[]);
    let _router = support::start_router(&server, RouterArgs::new(dir.path(), &[]))
        .await
        .expect("router starts");
    let nats = client(&server).await;
    let unknown = ask(
        &nats,
        FEEDBACK,
        json!({"tenant_id": "nobody", "provider_id": "openai", "outcome": "failure"}),
    )
    .await;
    assert_eq!(unknown["ok"], false, "{unknown}");
    assert_eq!(unknown["error"]["code"], "policy_not_found", "{unknown}");
    let invalid = ask(&nats, FEEDBACK, json!({"tenant_id": "acme"})).await;
    assert_eq!(invalid["error"]["code"], "invalid_request", "{invalid}");
    assert!(invalid["error"]["message"]
        .as_str()
        .is_some_and(|m| m.contains("provider_id")));
    let applied = ask(
        &nats,
        FEEDBACK,
        json!({"tenant_id": "default_tenant", "provider_id": "openai", "outcome": "success"}),
    )
    .await;
    assert_eq!(applied, json!({"ok": true, "policies": ["default"]}));
}

/// A breaker's state is visible by name: the gauge, the transition counter, and a
/// `decision_failed` that says when the first breaker half-opens.
#[tokio::test]
async fn breakers_are_visible_by_tenant_policy_and_provider() {
    let server = tls_server();
    let dir = policy_dir(&[(
        "shop",
        "main",
        json!({"providers": [{"name": "a", "weight": 100}],
               "circuit_breaker": {"failure_threshold": 2, "timeout_ms": 30000}}),
    )]);
    let router = support::start_router(&server, RouterArgs::new(dir.path(), &[]))
        .await
        .expect("router starts");
    let nats = client(&server).await;
    for _ in 0..2 {
        ask(
            &nats,
            FEEDBACK,
            json!({"tenant_id": "shop", "policy_id": "main", "provider_id": "a",
                   "outcome": "failure"}),
        )
        .await;
    }
    let labels = r#"tenant="shop",policy="main",provider="a""#;
    let gauge = format!("router_breaker_state{{{labels}}}");
    assert!(
        router
            .wait_metric(&gauge, 2.0, Duration::from_secs(5))
            .await,
        "gauge {gauge} never said open:\n{}",
        router.running().metrics_text()
    );
    let counted = format!("router_breaker_transitions_total{{{labels},to=\"open\"}}");
    assert_eq!(router.metric(&counted), Some(1.0), "{counted}");
    let mut body = request("cb-1", "shop", json!({}));
    body["policy_id"] = json!("main");
    let reply = decide(&nats, &body).await;
    assert_eq!(reply["error"]["code"], "decision_failed", "{reply}");
    let retry_after = reply["error"]["details"]["retry_after_ms"]
        .as_u64()
        .expect("retry_after_ms");
    assert!(
        (25_000..=30_000).contains(&retry_after),
        "half-opens 30 s after opening: {reply}"
    );
}

/// `$SRV.INFO` lists every subject the router serves, with its queue group; `$SRV.STATS`
/// counts the decide path (before, only the status endpoint was listed).
#[tokio::test]
async fn discovery_lists_decide_feedback_and_status() {
    let server = tls_server();
    let dir = policy_dir(&[]);
    let _router = support::start_router(&server, RouterArgs::new(dir.path(), &[]))
        .await
        .expect("router starts");
    let nats = client(&server).await;
    let info = ask(&nats, "$SRV.INFO.beamline-router", json!({})).await;
    let endpoints: BTreeMap<String, (String, String)> = info["endpoints"]
        .as_array()
        .expect("endpoints")
        .iter()
        .map(|e| {
            (
                e["name"].as_str().unwrap_or("?").to_owned(),
                (
                    e["subject"].as_str().unwrap_or("?").to_owned(),
                    e["queue_group"].as_str().unwrap_or("").to_owned(),
                ),
            )
        })
        .collect();
    assert_eq!(
        endpoints,
        BTreeMap::from([
            (
                "decide".to_owned(),
                (DECIDE.to_owned(), "router-decide-group".to_owned())
            ),
            ("feedback".to_owned(), (FEEDBACK.to_owned(), String::new())),
            (
                "backpressure-status".to_owned(),
                (
                    "beamline.router.v1.status.backpressure".to_owned(),
                    "router-decide-group".to_owned()
                )
            ),
        ]),
        "{info}"
    );
    for i in 0..3 {
        decide(&nats, &request(&format!("s-{i}"), "nobody", json!({}))).await;
    }
    let stats = ask(&nats, "$SRV.STATS.beamline-router", json!({})).await;
    let decide_stats = &stats["endpoints"][0];
    assert_eq!(decide_stats["name"], "decide", "{stats}");
    assert!(decide_stats["num_requests"].as_u64() >= Some(3), "{stats}");
    assert!(decide_stats["num_errors"].as_u64() >= Some(3), "{stats}");
    assert_eq!(decide_stats["data"]["backpressure"], "inactive", "{stats}");
}

/// A rejected body too large to go back out with its headers is cut, and the letter says so
/// (before, it was lost with a warning).
#[tokio::test]
async fn a_dead_letter_too_large_to_republish_is_cut_not_lost() {
    // Its own server with the default max_payload (1 MB), so the letter would not fit.
    let server = support::owned_tls_server();
    let dir = policy_dir(&[]);
    let _router = support::start_router(&server, RouterArgs::new(dir.path(), &[]))
        .await
        .expect("router starts");
    let nats = client(&server).await;
    let js = async_nats::jetstream::new(nats.clone());
    // Invalid (not JSON), just under the router's 1 MiB limit: an intake rejection.
    let body = vec![b'x'; 1024 * 1024 - 200];
    let reply = support::decide_raw(&nats, body).await;
    assert_eq!(reply["error"]["code"], "invalid_request");
    let deadline = Instant::now() + Duration::from_secs(5);
    let letter = loop {
        if let Ok(stream) = js.get_stream("BEAMLINE_DLQ").await {
            if let Ok(message) = stream
                .get_last_raw_message_by_subject("beamline.router.v1.decide.dlq")
                .await
            {
                break message;
            }
        }
        assert!(Instant::now() < deadline, "no dead letter within 5 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let headers = letter.headers;
    assert_eq!(
        headers.get("Beamline-Body-Truncated").map(|v| v.as_str()),
        Some("true"),
        "{headers:?}"
    );
    assert_eq!(
        headers.get("Beamline-Original-Size").map(|v| v.as_str()),
        Some("1048376")
    );
    assert_eq!(
        headers
            .get("Beamline-Intake-Error-Code")
            .map(|v| v.as_str()),
        Some("SCHEMA_VALIDATION_FAILED")
    );
    assert_eq!(
        letter.payload.len(),
        router_bin::service::dlq::EXCERPT_BYTES
    );
}

/// A drain cut short by its timeout answers what is still queued with `overloaded`: no
/// request read goes without a reply (before, the queued ones got nothing).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drain_timeout_answers_every_queued_request() {
    let server = support::owned_tls_server();
    let dir = policy_dir(&[]);
    let mut config = support::config(&server, &RouterArgs::new(dir.path(), &[])).expect("config");
    config.router.drain_timeout_seconds = 0;
    let router = support::start_config(config).await.expect("router starts");
    router
        .wait_ready(support::READY_TIMEOUT)
        .await
        .expect("ready");
    let nats = client(&server).await;
    let mut replies = nats
        .subscribe("_INBOX.operator.drain.>")
        .await
        .expect("subscribe");
    nats.flush().await.expect("flush");
    const SENT: usize = 5_000;
    for i in 0..SENT {
        let body = request(&format!("d-{i}"), "acme", json!({})).to_string();
        nats.publish_with_reply(DECIDE, format!("_INBOX.operator.drain.{i}"), body.into())
            .await
            .expect("publish");
    }
    nats.flush().await.expect("flush");
    // Stop once the router has read the whole burst (a request still on its way over the
    // socket when the subscription goes is dropped by the client library, not read).
    assert!(
        router
            .wait_metric(
                "router_decide_read_total",
                SENT as f64,
                Duration::from_secs(10)
            )
            .await,
        "the router read the burst"
    );
    router.stop().await.expect("stopped");
    let mut codes: BTreeMap<String, usize> = BTreeMap::new();
    let mut answered = 0;
    while let Ok(Some(message)) = tokio::time::timeout(Duration::from_secs(2), replies.next()).await
    {
        answered += 1;
        let reply: Value = serde_json::from_slice(&message.payload).unwrap_or(Value::Null);
        let code = if reply["ok"] == true {
            "ok".to_owned()
        } else {
            reply["error"]["code"].as_str().unwrap_or("?").to_owned()
        };
        *codes.entry(code).or_default() += 1;
    }
    eprintln!("drain cut short: {answered} of {SENT} answered: {codes:?}");
    assert_eq!(answered, SENT, "{codes:?}");
    assert!(
        codes.contains_key("overloaded"),
        "the cut-short drain refused the rest: {codes:?}"
    );
}

/// With the fleet store, a retry that lands on another router replays the first decision
/// (before, each router kept its own keys and decided again).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotent_retry_on_another_router_replays_the_first_decision() {
    let server = tls_server();
    let dir = policy_dir(&[]);
    let start = |prefix: &'static str| {
        let server = &server;
        let dir = dir.path().to_path_buf();
        async move {
            let args = RouterArgs::new(
                &dir,
                &[
                    "--subject-prefix",
                    prefix,
                    "--queue-group",
                    prefix,
                    "--idempotency-store",
                    "kv",
                ],
            );
            support::start_router(server, args)
                .await
                .expect("router starts")
        }
    };
    let _a = start("beamline.fleet-a").await;
    let _b = start("beamline.fleet-b").await;
    let nats = client(&server).await;
    let run = std::process::id();
    let keyed = |id: &str, key: &str| {
        let mut body = request(id, "acme", json!({"user_id": "u-1"}));
        body["idempotency_key"] = json!(format!("{key}-{run}"));
        body
    };
    let on = |prefix: &str, body: &Value| {
        let (nats, subject, body) = (
            nats.clone(),
            format!("{prefix}.v1.decide"),
            body.to_string(),
        );
        async move {
            let reply = nats.request(subject, body.into()).await.expect("answered");
            serde_json::from_slice::<Value>(&reply.payload).expect("JSON")
        }
    };
    // Wait until both routers reach the bucket (a first keyed request is settled locally
    // while it is not open yet).
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let probe = format!("probe-{}", deadline.elapsed().as_nanos());
        let first = on("beamline.fleet-a", &keyed("p-1", &probe)).await;
        let second = on("beamline.fleet-b", &keyed("p-2", &probe)).await;
        if second["replayed"] == true {
            assert_eq!(first["decision"], second["decision"]);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "router b never replayed a's decision"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A retry on the other router replays; the request's own id is in the context.
    let first = on("beamline.fleet-a", &keyed("r-1", "order-7")).await;
    assert_eq!(first["ok"], true, "{first}");
    assert!(first.get("replayed").is_none());
    let retry = on("beamline.fleet-b", &keyed("r-2", "order-7")).await;
    assert_eq!(retry["replayed"], true, "{retry}");
    assert_eq!(retry["decision"], first["decision"]);
    assert_eq!(retry["context"]["request_id"], "r-2");
    // Both at once: one decision, the other replays it.
    let (x, y) = tokio::join!(
        on("beamline.fleet-a", &keyed("c-1", "order-8")),
        on("beamline.fleet-b", &keyed("c-2", "order-8"))
    );
    assert_eq!(x["decision"], y["decision"], "{x}\n{y}");
    let replays = [&x, &y].iter().filter(|r| r["replayed"] == true).count();
    assert_eq!(replays, 1, "{x}\n{y}");

    // What a key costs: sequential requests with and without one, on router a.
    let timed = |keyed_requests: bool| {
        let on = &on;
        let keyed = &keyed;
        async move {
            let started = Instant::now();
            for i in 0..200 {
                let body = if keyed_requests {
                    keyed(&format!("t-{i}"), &format!("cost-{i}"))
                } else {
                    request(&format!("t-{i}"), "acme", json!({"user_id": "u-1"}))
                };
                on("beamline.fleet-a", &body).await;
            }
            started.elapsed() / 200
        }
    };
    let plain = timed(false).await;
    let with_key = timed(true).await;
    eprintln!(
        "round trip per request on one connection: {:?} without a key, {:?} with a key settled \
         with the fleet",
        plain, with_key
    );
}
