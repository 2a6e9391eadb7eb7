//! The operator's subcommands of the `router` binary (`decide`, `feedback`, `status`, `top`)
//! against routers started in this process, over mutual TLS, with their error paths: no
//! router, no server, a certificate the server refuses.

mod support;

use std::process::{Command, Stdio};
use std::time::Duration;

use nats_harness::NatsServer;
use router_core::Identity;
use support::cli::{router_cli, run};
use support::{policy_dir, RouterArgs};

async fn default_router(server: &NatsServer) -> (tempfile::TempDir, support::TestRouter) {
    let dir = policy_dir(&[]);
    let router = support::start_router(server, RouterArgs::new(dir.path(), &[]))
        .await
        .expect("router starts");
    (dir, router)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decide_prints_the_reply_and_exits_by_its_outcome() {
    let server = support::tls_server();
    let (_dir, _router) = default_router(&server).await;
    let router = Identity::router();

    let (code, out, err, _) = run(router_cli(
        &server,
        &router,
        &["decide", "--tenant", "acme", "--user", "u-42"],
    ));
    assert_eq!(code, Some(0), "{out}{err}");
    let reply: serde_json::Value = serde_json::from_str(&out).expect("pretty JSON");
    assert_eq!(reply["ok"], true, "{out}");
    assert!(out.contains("\n  \"decision\""), "pretty-printed: {out}");

    // An unknown policy is an error reply: exit 1, printed on one line with --raw.
    let (code, out, _, _) = run(router_cli(
        &server,
        &router,
        &["decide", "--tenant", "acme", "--policy", "nope", "--raw"],
    ));
    assert_eq!(code, Some(1), "{out}");
    assert_eq!(out.trim().lines().count(), 1, "{out}");
    assert!(out.contains("policy_not_found"), "{out}");

    // A tenant's certificate decides on its own subject, for its own tenant by default.
    let (code, out, err, _) = run(router_cli(
        &server,
        &Identity::tenant("acme").expect("acme"),
        &["decide"],
    ));
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("\"tenant_id\": \"acme\""), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decide_reads_a_request_file_and_feedback_names_the_policies_it_fed() {
    let server = support::tls_server();
    let (dir, _router) = default_router(&server).await;
    let request = dir.path().join("request.json");
    std::fs::write(
        &request,
        support::request("ops-file-1", "default_tenant", serde_json::json!({})).to_string(),
    )
    .expect("write the request");
    let router = Identity::router();
    let path = request.to_string_lossy().into_owned();
    let (code, out, err, _) = run(router_cli(&server, &router, &["decide", "--json", &path]));
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("\"request_id\": \"ops-file-1\""), "{out}");

    let (code, out, err, _) = run(router_cli(
        &server,
        &router,
        &[
            "feedback",
            "--tenant",
            "acme",
            "--provider",
            "openai",
            "--outcome",
            "success",
            "--latency-ms",
            "120",
        ],
    ));
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("\"policies\""), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_lists_every_router_and_top_redraws_with_rates() {
    // Owns its server: the table must list exactly the routers of this test.
    let server = support::owned_tls_server();
    let dir = policy_dir(&[]);
    let mut routers = Vec::new();
    for _ in 0..3 {
        routers.push(
            support::start_router(&server, RouterArgs::new(dir.path(), &[]))
                .await
                .expect("router starts"),
        );
    }
    let nats = support::client(&server).await;
    for i in 0..30 {
        let body = support::request(&format!("ops-status-{i}"), "acme", serde_json::json!({}));
        support::decide(&nats, &body).await;
    }
    let router = Identity::router();
    let (code, out, err, _) = run(router_cli(&server, &router, &["status"]));
    assert_eq!(code, Some(0), "{out}{err}");
    let rows: Vec<&str> = out.lines().skip(1).collect();
    assert_eq!(rows.len(), 3, "{out}");
    let decided: u64 = rows
        .iter()
        .filter_map(|row| row.split_whitespace().nth(3)?.parse::<u64>().ok())
        .sum();
    assert_eq!(decided, 30, "{out}");
    assert!(out.contains("inactive"), "{out}");

    let (code, out, err, _) = run(router_cli(
        &server,
        &router,
        &["top", "--count", "2", "--interval", "500ms"],
    ));
    assert_eq!(code, Some(0), "{out}{err}");
    assert_eq!(out.matches("router top: 3 router(s)").count(), 2, "{out}");
    assert!(out.contains("decisions/s"), "{out}");
    assert!(out.contains("breakers: all closed"), "{out}");
    assert!(
        !out.contains('\x1b'),
        "no terminal codes into a pipe: {out:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_router_every_command_exits_2_saying_what_to_check() {
    // Owns its server: no router may be listening on it.
    let server = support::owned_tls_server();
    let router = Identity::router();
    for (args, says) in [
        (
            &["decide", "--tenant", "acme", "--timeout", "1s"][..],
            "no router is subscribed",
        ),
        (&["status", "--timeout", "500ms"][..], "no router answered"),
    ] {
        let (code, out, err, took) = run(router_cli(&server, &router, args));
        assert_eq!(code, Some(2), "{args:?}: {out}{err}");
        assert!(err.contains(says), "{args:?}: {err}");
        assert!(took < Duration::from_secs(5), "{args:?} took {took:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_server_or_a_refused_certificate_exits_2_with_the_reason() {
    let server = support::owned_tls_server();
    let tls = server.tls().expect("TLS files").clone();
    let ca = tls.authority().expect("CA");
    let negative = certs::negative::write_negative_set(&tls.dir, &ca).expect("negative set");
    // The router's role, but from another CA.
    let mut refused = Command::new(env!("CARGO_BIN_EXE_router"));
    refused
        .args(["--config", "/dev/null", "--nats-url"])
        .arg(server.client_url())
        .arg("--tls-ca")
        .arg(&tls.ca_cert)
        .arg("--tls-cert")
        .arg(&negative.other_client_cert)
        .arg("--tls-key")
        .arg(&negative.other_client_key)
        .arg("status")
        .stdin(Stdio::null());
    let (code, out, err, took) = run(refused);
    assert_eq!(code, Some(2), "{out}{err}");
    assert!(err.contains("cannot connect to NATS"), "{err}");
    assert!(
        err.contains("UnknownCA") || err.contains("unknown"),
        "{err}"
    );
    assert!(took < Duration::from_secs(10), "took {took:?}");

    let port = server.port();
    drop(server);
    let mut gone = Command::new(env!("CARGO_BIN_EXE_router"));
    gone.args(["--config", "/dev/null", "--nats-url"])
        .arg(format!("nats://127.0.0.1:{port}"))
        .args(["decide", "--tenant", "acme"])
        .stdin(Stdio::null());
    let (code, out, err, took) = run(gone);
    assert_eq!(code, Some(2), "{out}{err}");
    assert!(
        err.contains("cannot connect to NATS") && err.contains("nats-status"),
        "{err}"
    );
    assert!(took < Duration::from_secs(10), "took {took:?}");
}
