//! Service-level behaviour: HTTP endpoints, backpressure, NATS restarts and TLS refusals
//! (routers started in this process), and what needs the `router` process itself: drain on
//! SIGTERM, reload on SIGHUP, configuration errors and exit codes.

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use nats_harness::NatsServer;
use nix::sys::signal::Signal;
use router_core::Identity;
use serde_json::{json, Value};
use support::{client, decide, policy_dir, request, tls_server, RouterArgs, TestRouter};

fn args<'a>(dir: &'a std::path::Path, extra: &[&str]) -> RouterArgs<'a> {
    RouterArgs::new(dir, extra)
}

/// A ready router in this process with the repository's policies (kept in the returned
/// directory).
async fn default_router(server: &NatsServer) -> (tempfile::TempDir, TestRouter) {
    let dir = policy_dir(&[]);
    let router = support::start_router(server, args(dir.path(), &[]))
        .await
        .expect("router starts");
    (dir, router)
}

#[tokio::test]
async fn metrics_healthz_and_readyz() {
    let server = tls_server();
    let (_dir, router) = default_router(&server).await;
    let nats = client(&server).await;
    decide(&nats, &request("m-1", "default_tenant", json!({}))).await;
    decide(&nats, &request("m-2", "nobody", json!({}))).await;
    assert_eq!(router.get("/healthz").await.expect("healthz").0, 200);
    let (status, body) = router.get("/readyz").await.expect("readyz");
    assert_eq!(status, 200);
    let ready: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(ready["nats_connected"], true);
    assert!(ready["policies_loaded"].as_u64() >= Some(3));
    let (_, metrics) = router.get("/metrics").await.expect("metrics");
    for name in [
        "router_decisions_total{reason=\"weighted\"} 1",
        "router_errors_total{code=\"policy_not_found\"} 1",
        "router_decide_latency_seconds_count",
        "router_intake_backpressure_active{subject=\"beamline.router.v1.decide\"} 0",
        "router_backpressure_active_total 0",
        "router_nats_connected 1",
        "router_process_rss_bytes",
        "router_process_peak_rss_bytes",
        "router_client_cert_days_left",
    ] {
        assert!(metrics.contains(name), "missing {name:?} in\n{metrics}");
    }
}

#[tokio::test]
async fn forced_backpressure_answers_overloaded_and_status_agrees() {
    let server = tls_server();
    let dir = policy_dir(&[]);
    let router = support::start_router(
        &server,
        args(
            dir.path(),
            &[
                "--inflight-overload",
                "0",
                "--latency-overload-ms",
                "0",
                "--retry-after-seconds",
                "7",
            ],
        ),
    )
    .await
    .expect("router starts");
    let nats = client(&server).await;
    // The first decision gives the latency signal a value above 0; every request counts
    // itself in flight while it is classified, so two signals are then over.
    decide(&nats, &request("b-0", "default_tenant", json!({}))).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    let overloaded = loop {
        let reply = decide(&nats, &request("b-1", "default_tenant", json!({}))).await;
        if reply["error"]["code"] == "overloaded" {
            break reply;
        }
        assert!(Instant::now() < deadline, "never overloaded: {reply}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(overloaded["error"]["details"]["retry_after_seconds"], 7);
    assert_eq!(overloaded["context"]["request_id"], "b-1");
    let status = nats
        .request("beamline.router.v1.status.backpressure", "".into())
        .await
        .expect("status answered");
    let status: Value = serde_json::from_slice(&status.payload).expect("json");
    assert_eq!(status["subject"], "beamline.router.v1.decide");
    assert_eq!(status["thresholds"]["inflight_overload"], 0);
    assert_eq!(status["policy"]["retry_after_seconds"], 7);
    assert!(status["metrics"]["latency_p95_ms"].as_f64() > Some(0.0));
    assert!(
        router
            .metric("router_backpressure_active_total")
            .unwrap_or(0.0)
            >= 1.0
    );
    let gauge = router
        .metric("router_intake_backpressure_active{subject=\"beamline.router.v1.decide\"}")
        .expect("gauge present");
    let active = status["status"] == "active";
    assert_eq!(
        gauge == 1.0,
        active,
        "status subject ({status}) and gauge ({gauge}) agree"
    );
}

#[tokio::test]
async fn backpressure_status_is_inactive_at_rest() {
    let server = tls_server();
    let (_dir, _router) = default_router(&server).await;
    let nats = client(&server).await;
    let status = nats
        .request("beamline.router.v1.status.backpressure", "".into())
        .await
        .expect("status answered");
    let status: Value = serde_json::from_slice(&status.payload).expect("json");
    assert_eq!(status["status"], "inactive", "{status}");
    assert_eq!(status["thresholds"]["inflight_overload"], 500);
    assert!(status["timestamp"].as_u64() > Some(1_700_000_000_000));
}

#[tokio::test]
async fn micro_service_discovery_answers() {
    let server = tls_server();
    let (_dir, _router) = default_router(&server).await;
    let nats = client(&server).await;
    for subject in [
        "$SRV.PING",
        "$SRV.INFO.beamline-router",
        "$SRV.STATS.beamline-router",
    ] {
        let reply = nats.request(subject, "".into()).await.expect("answered");
        let body: Value = serde_json::from_slice(&reply.payload).expect("json");
        assert_eq!(body["name"], "beamline-router", "{subject}: {body}");
    }
}

#[tokio::test]
async fn sigterm_while_requests_are_in_flight_loses_none() {
    let server = tls_server();
    let dir = policy_dir(&[]);
    let mut router =
        support::start_router_process(&server, args(dir.path(), &[])).expect("router starts");
    let nats = client(&server).await;
    let sender = {
        let nats = nats.clone();
        tokio::spawn(async move {
            let mut answered = 0u32;
            let mut refused = 0u32;
            let mut lost = Vec::new();
            let mut tasks = Vec::new();
            for i in 0..3_000 {
                let nats = nats.clone();
                tasks.push(tokio::spawn(async move {
                    let body = request(&format!("t-{i}"), "default_tenant", json!({}));
                    let result = tokio::time::timeout(
                        Duration::from_secs(5),
                        nats.request(support::DECIDE, body.to_string().into()),
                    )
                    .await;
                    (i, result)
                }));
                if i % 100 == 0 {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
            for task in tasks {
                let (i, result) = task.await.expect("task");
                match result {
                    Ok(Ok(_)) => answered += 1,
                    // After the drain begins the router no longer listens: NATS says so at once.
                    Ok(Err(err)) if err.kind() == async_nats::RequestErrorKind::NoResponders => {
                        refused += 1
                    }
                    other => lost.push((i, format!("{other:?}"))),
                }
            }
            (answered, refused, lost)
        })
    };
    // SIGTERM once the router is busy answering.
    let deadline = Instant::now() + Duration::from_secs(10);
    while router
        .metric("router_decisions_total{reason=\"weighted\"}")
        .unwrap_or(0.0)
        < 1.0
    {
        assert!(Instant::now() < deadline, "no decision within 10 s");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    router.signal(Signal::SIGTERM);
    let status = router
        .wait_exit(Duration::from_secs(15))
        .expect("router exits");
    let (answered, refused, lost) = sender.await.expect("sender");
    assert!(status.success(), "exit 0 after drain, got {status}");
    assert!(lost.is_empty(), "requests lost: {lost:?}");
    assert!(answered > 0, "some requests were answered before the drain");
    assert_eq!(answered + refused, 3_000);
    assert!(router.log_text().contains("drained"));
}

#[tokio::test]
async fn answers_again_after_nats_restarts() {
    // Owns its server: it restarts NATS, which an external server (heavy) does not allow.
    let mut server = support::owned_tls_server();
    let (_dir, router) = default_router(&server).await;
    server.restart().expect("restart nats-server");
    let restarted = Instant::now();
    let deadline = restarted + Duration::from_secs(5);
    // /readyz follows the connection and the router answers again within 5 s.
    loop {
        let nats = support::options_as(&server, &Identity::operator())
            .connect(server.client_url())
            .await;
        if let Ok(nats) = nats {
            let body = request("again-1", "default_tenant", json!({}));
            let reply = tokio::time::timeout(
                Duration::from_millis(500),
                nats.request(support::DECIDE, body.to_string().into()),
            )
            .await;
            if let Ok(Ok(reply)) = reply {
                let reply: Value = serde_json::from_slice(&reply.payload).expect("json");
                assert_eq!(reply["ok"], true);
                break;
            }
        }
        assert!(
            Instant::now() < deadline,
            "no answer within 5 s of the restart: {:?}",
            router.running().readiness()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(router.get("/readyz").await.expect("readyz").0, 200);
    assert!(router.metric("router_nats_connects_total").unwrap_or(0.0) >= 2.0);
}

#[tokio::test]
async fn readyz_is_not_ready_while_nats_is_down() {
    // Owns its server: it stops NATS, which an external server (heavy) does not allow.
    let mut server = support::owned_tls_server();
    let (_dir, router) = default_router(&server).await;
    server.stop().expect("stop nats-server");
    let deadline = Instant::now() + Duration::from_secs(10);
    while router.get("/readyz").await.expect("readyz").0 == 200 {
        assert!(
            Instant::now() < deadline,
            "readyz stayed ready with NATS down"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        router.get("/healthz").await.expect("healthz").0,
        200,
        "alive but not ready"
    );
}

#[tokio::test]
async fn sigterm_stops_a_router_that_never_reached_nats() {
    // Owns its server: it stops NATS before the router starts.
    let mut server = support::owned_tls_server();
    server.stop().expect("stop nats-server");
    let dir = policy_dir(&[]);
    let mut router =
        support::spawn_router_process(&server, args(dir.path(), &[])).expect("router starts");
    assert_eq!(router.get("/readyz").expect("readyz").0, 503, "not ready");
    let sent = Instant::now();
    router.signal(Signal::SIGTERM);
    let status = router
        .wait_exit(Duration::from_secs(10))
        .expect("the router exits on SIGTERM although NATS was never reachable");
    assert!(status.success(), "exit 0, got {status}");
    assert!(
        sent.elapsed() < Duration::from_secs(3),
        "took {:?} to stop",
        sent.elapsed()
    );
}

#[tokio::test]
async fn a_router_started_before_nats_serves_and_keeps_dead_letters_once_nats_is_up() {
    // Owns its server: it starts NATS after the router.
    let mut server = support::owned_tls_server();
    server.stop().expect("stop nats-server");
    let dir = policy_dir(&[]);
    let router = support::spawn_router(&server, args(dir.path(), &[]))
        .await
        .expect("router starts");
    assert_eq!(
        router.get("/healthz").await.expect("healthz").0,
        200,
        "alive"
    );
    server.restart().expect("start nats-server");
    router
        .wait_ready(Duration::from_secs(10))
        .await
        .expect("ready once NATS is up");
    let nats = client(&server).await;
    let reply = decide(&nats, &request("late-1", "default_tenant", json!({}))).await;
    assert_eq!(reply["ok"], true, "{reply}");
    let jetstream = async_nats::jetstream::new(nats.clone());
    let deadline = Instant::now() + Duration::from_secs(5);
    while jetstream.get_stream("BEAMLINE_DLQ").await.is_err() {
        assert!(
            Instant::now() < deadline,
            "the DLQ stream was not created once NATS came up: {:?}",
            router.running().readiness()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_client_without_a_certificate_cannot_reach_the_router() {
    let server = tls_server();
    let (_dir, _router) = default_router(&server).await;
    let tls = server.tls().expect("tls");
    let attempt = tokio::time::timeout(
        Duration::from_secs(5),
        async_nats::ConnectOptions::new()
            .add_root_certificates(tls.ca_cert.clone())
            .require_tls(true)
            .connect(server.client_url()),
    )
    .await;
    // The handshake fails, or the server closes the connection before any request passes.
    if let Ok(Ok(nats)) = attempt {
        let body = request("nocert", "default_tenant", json!({}));
        let reply = tokio::time::timeout(
            Duration::from_secs(2),
            nats.request(support::DECIDE, body.to_string().into()),
        )
        .await;
        assert!(
            !matches!(reply, Ok(Ok(_))),
            "a client without a certificate got an answer"
        );
    }
}

#[tokio::test]
async fn sighup_reloads_policies_and_keeps_the_old_one_when_the_new_is_bad() {
    let server = tls_server();
    let dir = policy_dir(&[(
        "reload",
        "default",
        json!({"providers": [{"name": "openai", "weight": 100}]}),
    )]);
    let router =
        support::start_router_process(&server, args(dir.path(), &[])).expect("router starts");
    let nats = client(&server).await;
    let provider = |reply: Value| {
        reply["decision"]["provider_id"]
            .as_str()
            .unwrap_or("")
            .to_owned()
    };
    assert_eq!(
        provider(decide(&nats, &request("h-1", "reload", json!({}))).await),
        "openai"
    );
    support::write_policy(
        dir.path(),
        "reload",
        "default",
        r#"{"providers": [{"name": "anthropic", "weight": 100}]}"#,
    );
    router.signal(Signal::SIGHUP);
    let deadline = Instant::now() + Duration::from_secs(5);
    while provider(decide(&nats, &request("h-2", "reload", json!({}))).await) != "anthropic" {
        assert!(Instant::now() < deadline, "reload not applied");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    support::write_policy(
        dir.path(),
        "reload",
        "default",
        r#"{"providers": "broken"}"#,
    );
    router.signal(Signal::SIGHUP);
    let refused = "router_policy_reloads_total{result=\"error\"}";
    let deadline = Instant::now() + Duration::from_secs(5);
    while router.metric(refused).unwrap_or(0.0) < 1.0 {
        assert!(Instant::now() < deadline, "the bad reload was not counted");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        provider(decide(&nats, &request("h-3", "reload", json!({}))).await),
        "anthropic"
    );
    assert!(router.log_text().contains("policy file refused"));
}

fn router_command() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_router"));
    command.arg("--config").arg("/dev/null");
    command
}

#[test]
fn a_missing_policy_directory_is_a_one_line_error_with_exit_2() {
    let output = router_command()
        .args(["--policy-dir", "/nonexistent/policies"])
        .output()
        .expect("run router");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("/nonexistent/policies"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
}

#[test]
fn a_broken_config_file_is_named_with_exit_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("router.toml");
    std::fs::write(&file, "[router]\nconcurrency = \"many\"\n").expect("write");
    let output = Command::new(env!("CARGO_BIN_EXE_router"))
        .arg("--config")
        .arg(&file)
        .output()
        .expect("run router");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("router.toml"), "{stderr}");
    let missing = Command::new(env!("CARGO_BIN_EXE_router"))
        .args(["--config", "/nonexistent/router.toml"])
        .output()
        .expect("run router");
    assert_eq!(missing.status.code(), Some(2));
}

#[test]
fn plaintext_against_a_tls_server_is_refused_with_a_reason() {
    let server = tls_server();
    let url = server.client_url().replace("tls://", "nats://");
    let output = router_command()
        .args(["--nats-url", &url, "--metrics-addr", "127.0.0.1:0"])
        .arg("--policy-dir")
        .arg(support::repo_policies())
        .output()
        .expect("run router");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("requires TLS"), "{stderr}");
}

#[test]
fn an_expired_client_certificate_is_refused_naming_the_file() {
    let server = tls_server();
    let tls = server.tls().expect("tls");
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = tls.authority().expect("load CA");
    let expired = ca
        .issue(&certs::LeafSpec::client(
            "router-client",
            certs::Validity::expired(),
        ))
        .expect("issue expired cert");
    let (cert, key) = (
        dir.path().join("expired-cert.pem"),
        dir.path().join("expired-key.pem"),
    );
    expired.write(&cert, &key).expect("write");
    let output = router_command()
        .args([
            "--nats-url",
            &server.client_url(),
            "--metrics-addr",
            "127.0.0.1:0",
        ])
        .arg("--policy-dir")
        .arg(support::repo_policies())
        .arg("--tls-ca")
        .arg(&tls.ca_cert)
        .arg("--tls-cert")
        .arg(&cert)
        .arg("--tls-key")
        .arg(&key)
        .output()
        .expect("run router");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("expired") && stderr.contains("expired-cert.pem"),
        "{stderr}"
    );
}

#[test]
fn a_busy_metrics_port_is_reported() {
    let server = tls_server();
    let busy = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = busy.local_addr().expect("addr").to_string();
    let tls = server.tls().expect("tls");
    let output = router_command()
        .args(["--nats-url", &server.client_url(), "--metrics-addr", &addr])
        .arg("--policy-dir")
        .arg(support::repo_policies())
        .arg("--tls-ca")
        .arg(&tls.ca_cert)
        .arg("--tls-cert")
        .arg(&tls.router_cert)
        .arg("--tls-key")
        .arg(&tls.router_key)
        .output()
        .expect("run router");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(&addr), "{stderr}");
}

#[test]
fn check_fails_when_a_policy_file_is_refused() {
    let dir = policy_dir(&[]);
    let ok = router_command()
        .arg("--check")
        .arg("--policy-dir")
        .arg(dir.path())
        .output()
        .expect("run router");
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    support::write_policy(dir.path(), "broken", "default", "{not json");
    let bad = router_command()
        .arg("--check")
        .arg("--policy-dir")
        .arg(dir.path())
        .output()
        .expect("run router");
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("refused"));
}
