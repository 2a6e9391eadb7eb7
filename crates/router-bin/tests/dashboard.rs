//! The Grafana dashboard (`docs/grafana/beamline-router.json`) queries only metrics a running
//! router exposes: a router in this process decides, takes feedback that opens a breaker and
//! refuses a request for another tenant, then every metric name in the dashboard's queries
//! must be in its `/metrics`.

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{json, Value};
use support::{client, decide, policy_dir, request, tls_server, RouterArgs};

/// Every `router_…` name in the dashboard's PromQL expressions.
fn queried_metrics(dashboard: &Value) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for panel in dashboard["panels"].as_array().into_iter().flatten() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"].as_str().unwrap_or("");
            let mut rest = expr;
            while let Some(start) = rest.find("router_") {
                let name: String = rest[start..]
                    .chars()
                    .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                    .collect();
                rest = &rest[start + name.len()..];
                names.insert(name);
            }
        }
    }
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_the_dashboard_queries_is_exposed() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/grafana/beamline-router.json"
    );
    let text = std::fs::read_to_string(path).expect("the dashboard");
    let dashboard: Value = serde_json::from_str(&text).expect("the dashboard is JSON");
    let queried = queried_metrics(&dashboard);
    assert!(queried.len() >= 15, "too few metrics found: {queried:?}");

    let server = tls_server();
    // A provider limited to one request a minute: a second decision is refused by its quota.
    let dir = policy_dir(&[(
        "acme",
        "quota",
        json!({"providers": [{"name": "openai", "weight": 100, "rpm": 1}]}),
    )]);
    let args = RouterArgs::new(dir.path(), &["--record-sample-ratio", "1"]);
    let router = support::start_router(&server, args)
        .await
        .expect("router starts");
    let nats = client(&server).await;
    for i in 0..5 {
        let reply = decide(&nats, &request(&format!("dash-{i}"), "acme", json!({}))).await;
        assert_eq!(reply["ok"], true, "{reply}");
    }
    for i in 0..2 {
        let limited = request(&format!("dash-q{i}"), "acme", json!({"policy_id": "quota"}));
        let reply = decide(&nats, &limited).await;
        assert_eq!(reply["ok"], i == 0, "{reply}");
    }
    let gauges = support::wait_until(Duration::from_secs(5), || {
        router
            .running()
            .metrics_text()
            .contains("router_quota_limit{")
    })
    .await;
    assert!(gauges, "the quota gauges are published");
    // Five failures open acme's breaker for openai (failure_threshold 5).
    for _ in 0..5 {
        let body = json!({"tenant_id": "acme", "policy_id": "default",
                          "provider_id": "openai", "outcome": "failure"});
        nats.request("beamline.router.v1.feedback", body.to_string().into())
            .await
            .expect("feedback answered");
    }
    support::wait_until(Duration::from_secs(5), || {
        router
            .metric("router_circuit_breakers_not_closed")
            .is_some_and(|n| n >= 1.0)
    })
    .await;

    let exposed = router.running().metrics_text();
    let missing: Vec<&String> = queried
        .iter()
        .filter(|name| {
            !exposed
                .lines()
                .filter(|line| !line.starts_with('#'))
                .any(|line| {
                    line.starts_with(&format!("{name}{{")) || line.starts_with(&format!("{name} "))
                })
        })
        .collect();
    assert!(
        missing.is_empty(),
        "the dashboard queries metrics the router does not expose: {missing:?}"
    );
}
