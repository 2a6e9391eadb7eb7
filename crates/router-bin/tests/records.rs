//! Decision records on JetStream, end to end: `router explain` on a decision taken under an
//! open breaker and a cooldown names both and prints the reply's plan; `router tail` follows
//! decisions by tenant; a tenant's certificate cannot read the stream; and neither a full
//! stream nor a stream deleted under load delays or fails a decision — what was not written
//! is counted.

mod support;

use std::time::Duration;

use futures::future::join_all;
use router_core::Identity;
use serde_json::{json, Value};
use support::cli::{router_cli, run};
use support::{client, policy_dir, request, start_router, wait_until, RouterArgs};

/// acme's `records`: openai and anthropic first, local_llm and mistral behind.
fn policy() -> Value {
    json!({
        "version": "2.3",
        "providers": [
            {"name": "openai", "weight": 60},
            {"name": "anthropic", "weight": 40},
            {"name": "local_llm", "weight": 10, "priority": 2},
            {"name": "mistral", "weight": 5, "priority": 3}
        ],
        "circuit_breaker": {"enabled": true, "failure_threshold": 5, "success_threshold": 2,
                            "timeout_ms": 60000, "half_open_max_calls": 1}
    })
}

/// A prefix and a stream of this test run only (a shared server outlives a test).
fn names(test: &str) -> (String, String) {
    let unique = format!("{test}{}", std::process::id());
    (format!("beamline.{unique}"), format!("REC_{unique}"))
}

async fn ask(nats: &async_nats::Client, subject: String, body: Value) -> Value {
    let reply = tokio::time::timeout(
        Duration::from_secs(10),
        nats.request(subject, body.to_string().into()),
    )
    .await
    .expect("answered in time")
    .expect("answered");
    serde_json::from_slice(&reply.payload).expect("JSON reply")
}

fn records_request(id: &str, tenant: &str) -> Value {
    let mut body = request(id, tenant, json!({"max_latency_ms": 900}));
    body["policy_id"] = json!("records");
    body
}

#[tokio::test]
async fn explain_names_the_open_breaker_the_cooldown_and_the_plan() {
    let server = support::tls_server();
    let (prefix, stream) = names("explain");
    let dir = policy_dir(&[
        ("acme", "records", policy()),
        ("globex", "records", policy()),
    ]);
    let args = RouterArgs::new(
        dir.path(),
        &[
            "--subject-prefix",
            &prefix,
            "--queue-group",
            &prefix,
            "--record-sample-ratio",
            "1",
            "--record-stream",
            &stream,
        ],
    );
    let router = start_router(&server, args).await.expect("router starts");
    let nats = client(&server).await;
    let feedback = format!("{prefix}.v1.feedback");
    for _ in 0..5 {
        let body = json!({"tenant_id": "acme", "policy_id": "records", "provider_id": "openai",
                          "outcome": "failure"});
        ask(&nats, feedback.clone(), body).await;
    }
    let body = json!({"tenant_id": "acme", "policy_id": "records", "provider_id": "anthropic",
                      "outcome": "rate_limited", "retry_after_s": 30});
    ask(&nats, feedback.clone(), body).await;
    let reply = ask(
        &nats,
        format!("{prefix}.v1.decide"),
        records_request("r-1", "acme"),
    )
    .await;
    let decision = &reply["decision"];
    assert_eq!(decision["provider_id"], "local_llm", "{reply}");
    let id = decision["decision_id"].as_str().expect("a decision id");
    let plan: Vec<&str> = decision["fallbacks"]
        .as_array()
        .expect("a plan")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(plan, ["mistral"]);

    let explain = |identity: Identity, extra: &[&str]| {
        let mut args = vec![
            "--subject-prefix",
            &prefix,
            "--record-stream",
            &stream,
            "explain",
            id,
        ];
        args.extend_from_slice(extra);
        run(router_cli(&server, &identity, &args))
    };
    let mut found = None;
    let mut last = String::new();
    for _ in 0..40 {
        let (code, out, err, _) = explain(Identity::operator(), &[]);
        if code == Some(0) {
            found = Some(out);
            break;
        }
        // 1: not recorded yet; 2: the stream is not created yet.
        assert!(matches!(code, Some(1 | 2)), "{out}{err}");
        last = format!("{out}{err}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let table = found.unwrap_or_else(|| panic!("the record is written within 10 s: {last}"));
    let row = |name: &str| {
        table
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("a row for {name} in\n{table}"))
            .to_owned()
    };
    assert!(row("openai").contains("open ("), "{table}");
    assert!(
        row("openai").contains("excluded: circuit breaker"),
        "{table}"
    );
    assert!(row("anthropic").contains("s left"), "{table}");
    assert!(
        row("anthropic").contains("excluded: rate-limit cooldown"),
        "{table}"
    );
    assert!(row("local_llm").contains("chosen (weighted)"), "{table}");
    assert!(row("mistral").contains("plan #1"), "{table}");
    assert!(row("plan").ends_with(&plan.join(" > ")), "{table}");
    assert!(row("policy").contains("records (version 2.3)"), "{table}");

    let (code, out, _, _) = explain(Identity::operator(), &["--raw"]);
    assert_eq!(code, Some(0));
    let record: Value = serde_json::from_str(&out).expect("the record as JSON");
    assert_eq!(
        record["plan"], decision["fallbacks"],
        "the plan is the reply's"
    );

    let (code, _, err, _) = explain(Identity::tenant("acme").expect("tenant"), &[]);
    assert_eq!(code, Some(2), "a tenant cannot read the records: {err}");

    // `router tail --tenant acme` shows acme's next decisions, not globex's.
    let mut tail = router_cli(
        &server,
        &Identity::operator(),
        &[
            "--subject-prefix",
            &prefix,
            "--record-stream",
            &stream,
            "tail",
            "--tenant",
            "acme",
            "--count",
            "2",
        ],
    );
    let mut tail = tail
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("router tail runs");
    // Decisions for globex and acme by turns, until `tail` has shown two (it follows only
    // what is written once it is subscribed, which may take a moment on a loaded machine).
    let mut ended = false;
    for i in 0..60 {
        for tenant in ["globex", "acme"] {
            let id = format!("r-{tenant}-{i}");
            ask(
                &nats,
                format!("{prefix}.v1.decide"),
                records_request(&id, tenant),
            )
            .await;
        }
        if tail.try_wait().expect("tail's status").is_some() {
            ended = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    if !ended {
        let _ = tail.kill();
    }
    let output = tail.wait_with_output().expect("tail's output");
    assert!(
        ended,
        "router tail did not end after two acme decisions in 15 s"
    );
    let text = String::from_utf8_lossy(&output.stdout);
    let lines: Vec<&str> = text.lines().skip(1).collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(lines.iter().all(|l| l.contains(" acme ")), "{text}");
    router.stop().await.expect("router stops");
}

#[tokio::test]
async fn a_full_or_deleted_stream_never_holds_up_a_decision() {
    let server = support::owned_tls_server();
    let (prefix, stream) = names("full");
    let dir = policy_dir(&[("acme", "records", policy())]);
    let args = RouterArgs::new(
        dir.path(),
        &[
            "--subject-prefix",
            &prefix,
            "--queue-group",
            &prefix,
            "--record-sample-ratio",
            "1",
            "--record-stream",
            &stream,
            "--record-max-bytes",
            "8192",
        ],
    );
    let router = start_router(&server, args).await.expect("router starts");
    let nats = client(&server).await;
    let decide = format!("{prefix}.v1.decide");
    let series = |result: &str| format!("router_decision_records_total{{result=\"{result}\"}}");
    let total = |router: &support::TestRouter| -> f64 {
        ["written", "dropped", "failed"]
            .iter()
            .map(|r| router.metric(&series(r)).unwrap_or(0.0))
            .sum()
    };
    let mut answered = 0;
    for round in 0..4 {
        if round == 2 {
            // JetStream loses the stream under load: records fail, decisions go on.
            let js = async_nats::jetstream::new(nats.clone());
            js.delete_stream(&stream)
                .await
                .expect("the operator deletes the stream");
        }
        let batch = (0..250).map(|i| {
            let id = format!("r-{round}-{i}");
            ask(&nats, decide.clone(), records_request(&id, "acme"))
        });
        for reply in join_all(batch).await {
            assert_eq!(reply["ok"], true, "{reply}");
            answered += 1;
        }
    }
    assert_eq!(answered, 1000);
    let counted = wait_until(Duration::from_secs(10), || total(&router) >= 1000.0).await;
    assert!(
        counted,
        "every record is written or counted: {}",
        total(&router)
    );
    assert_eq!(total(&router), 1000.0);
    assert!(router.metric(&series("written")).unwrap_or(0.0) > 0.0);
    assert!(
        router.metric(&series("failed")).unwrap_or(0.0) > 0.0,
        "the deleted stream's records are counted as failed"
    );
    let info = async_nats::jetstream::new(nats.clone())
        .get_stream(&stream)
        .await;
    assert!(
        info.is_err(),
        "the router does not bring a deleted stream back while running"
    );
    router.stop().await.expect("router stops");
}
