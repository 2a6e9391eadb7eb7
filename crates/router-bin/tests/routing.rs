//! Routing that learns from outcomes, over a real TLS nats-server: priority tiers, the ranked
//! plan, the request's filters, rate-limit cooldowns fed by the feedback subject, and the
//! adaptive strategy leaving a provider that became slow.

mod support;

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{json, Value};
use support::{client, decide, policy_dir, request, tls_server, RouterArgs};

const FEEDBACK: &str = "beamline.router.v1.feedback";

async fn report(nats: &async_nats::Client, body: Value) -> Value {
    let reply = tokio::time::timeout(
        Duration::from_secs(5),
        nats.request(FEEDBACK, body.to_string().into()),
    )
    .await
    .expect("answered within 5 s")
    .expect("answered");
    serde_json::from_slice(&reply.payload).expect("JSON reply")
}

fn chosen(reply: &Value) -> String {
    assert_eq!(reply["ok"], true, "{reply}");
    reply["decision"]["provider_id"]
        .as_str()
        .expect("provider_id")
        .to_owned()
}

async fn shares(nats: &async_nats::Client, constraints: Value, n: usize) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for i in 0..n {
        let reply = decide(
            nats,
            &request(&format!("r-{i}"), "shop", constraints.clone()),
        )
        .await;
        *counts.entry(chosen(&reply)).or_default() += 1;
    }
    counts
}

fn tiered() -> Value {
    json!({"providers": [{"name": "primary_a", "weight": 50, "priority": 1},
                         {"name": "primary_b", "weight": 50, "priority": 1},
                         {"name": "backup", "weight": 100, "priority": 2}],
           "fallbacks": [{"when": {"status": ["timeout"]}, "to": "local_llm"}],
           "rate_limit": {"default_retry_after": "30s"}})
}

/// Tier 2 only when tier 1 is out; a 429 with Retry-After cools a provider on every router
/// the feedback reaches; each reply carries the plan; filters narrow the choice.
#[tokio::test]
async fn tiers_cooldowns_plan_and_filters_over_nats() {
    let server = tls_server();
    let dir = policy_dir(&[("shop", "main", tiered())]);
    let _router = support::start_router(&server, RouterArgs::new(dir.path(), &[]))
        .await
        .expect("router starts");
    let nats = client(&server).await;
    let main = json!({"policy_id": "main"});

    let before = shares(&nats, main.clone(), 200).await;
    assert_eq!(before.get("backup"), None, "tier 2 unused: {before:?}");
    let reply = decide(&nats, &request("plan", "shop", main.clone())).await;
    let first = chosen(&reply);
    let other = if first == "primary_a" {
        "primary_b"
    } else {
        "primary_a"
    };
    assert_eq!(
        reply["decision"]["fallbacks"],
        json!([other, "backup", "local_llm"]),
        "{reply}"
    );

    let applied = report(
        &nats,
        json!({"tenant_id": "shop", "policy_id": "main", "provider_id": "primary_a",
               "status": "rate_limited", "retry_after_s": 30}),
    )
    .await;
    assert_eq!(applied["ok"], true, "{applied}");
    let cooling = shares(&nats, main.clone(), 100).await;
    assert_eq!(cooling, HashMap::from([("primary_b".to_owned(), 100)]));
    report(
        &nats,
        json!({"tenant_id": "shop", "policy_id": "main", "provider_id": "primary_b",
               "status": "rate_limited"}),
    )
    .await;
    let reply = decide(&nats, &request("tier2", "shop", main.clone())).await;
    assert_eq!(chosen(&reply), "backup", "both of tier 1 cool: {reply}");
    assert_eq!(reply["decision"]["fallbacks"], json!(["local_llm"]));

    let only_backup = json!({"policy_id": "main", "only": ["backup", "nonexistent"]});
    assert_eq!(
        shares(&nats, only_backup, 20).await,
        HashMap::from([("backup".to_owned(), 20)])
    );
    let nothing = json!({"policy_id": "main", "ignore": ["backup"]});
    let refused = decide(&nats, &request("none", "shop", nothing)).await;
    assert_eq!(refused["ok"], false, "{refused}");
    assert_eq!(refused["error"]["code"], "decision_failed");
    assert_eq!(
        refused["error"]["details"]["excluded"],
        json!({"primary_a": "cooldown", "primary_b": "cooldown", "backup": "ignore"}),
        "{refused}"
    );
}

/// An adaptive policy follows the latency reported on the feedback subject.
#[tokio::test]
async fn adaptive_leaves_a_provider_that_became_slow() {
    let server = tls_server();
    let dir = policy_dir(&[(
        "shop",
        "live",
        json!({"strategy": "adaptive",
               "providers": [{"name": "fast", "weight": 50}, {"name": "slow", "weight": 50}],
               "adaptive": {"explore": 0.05}}),
    )]);
    let _router = support::start_router(&server, RouterArgs::new(dir.path(), &[]))
        .await
        .expect("router starts");
    let nats = client(&server).await;
    let live = json!({"policy_id": "live"});
    let mut counts: HashMap<String, usize> = HashMap::new();
    for i in 0..300 {
        let reply = decide(&nats, &request(&format!("r-{i}"), "shop", live.clone())).await;
        assert_eq!(reply["decision"]["reason"], "adaptive", "{reply}");
        let provider = chosen(&reply);
        let latency = if provider == "slow" { 3_000 } else { 800 };
        report(
            &nats,
            json!({"tenant_id": "shop", "decision_id": reply["decision"]["decision_id"],
                   "provider_id": provider, "outcome": "success", "latency_ms": latency}),
        )
        .await;
        if i >= 100 {
            *counts.entry(provider).or_default() += 1;
        }
    }
    let slow = counts.get("slow").copied().unwrap_or(0);
    assert!(
        slow <= 40,
        "after learning, about 5 % goes to slow: {counts:?}"
    );
}
