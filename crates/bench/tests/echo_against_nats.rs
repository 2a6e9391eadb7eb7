//! router-bench against a real nats-server (mutual TLS), started by nats-harness.
//!
//! These runs are short (about one second each) and check that the bench works and
//! reports honestly; they assert no performance figure.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use nats_harness::NatsServer;
use serde_json::Value;

fn bench() -> Command {
    Command::new(env!("CARGO_BIN_EXE_router-bench"))
}

/// `--nats-url` and the TLS options for `server`.
fn connection_args(server: &NatsServer) -> Vec<String> {
    let mut args = vec!["--nats-url".to_owned(), server.client_url()];
    if let Some(tls) = server.tls() {
        for (flag, path) in [
            ("--tls-ca", &tls.ca_cert),
            ("--tls-cert", &tls.client_cert),
            ("--tls-key", &tls.client_key),
        ] {
            args.push(flag.to_owned());
            args.push(path.to_string_lossy().into_owned());
        }
    }
    args
}

/// Short, light run settings.
const SHORT: [&str; 9] = [
    "--duration",
    "1s",
    "--warmup",
    "200ms",
    "--concurrency",
    "8",
    "--connections",
    "2",
    "--quiet",
];

fn run(args: &[String], out: &Path) -> (Output, Value) {
    let output = bench()
        .args(args)
        .args(SHORT)
        .arg("--out")
        .arg(out)
        .output()
        .expect("router-bench starts");
    let text = std::fs::read_to_string(out).unwrap_or_else(|err| {
        panic!(
            "router-bench wrote no candidate ({err}); stderr:\n{}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    let value = serde_json::from_str(&text).expect("the candidate is JSON");
    (output, value)
}

fn out_file(dir: &tempfile::TempDir, name: &str) -> PathBuf {
    dir.path().join(name)
}

#[test]
fn echo_only_over_mutual_tls() {
    let server = NatsServer::from_env_or_start_tls().expect("nats-server starts");
    let dir = tempfile::tempdir().expect("temp dir");
    let out = out_file(&dir, "perf_echo.json");
    let mut args = connection_args(&server);
    args.push("--echo-only".to_owned());
    let (output, c) = run(&args, &out);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "exit {:?}: {stderr}",
        output.status
    );

    assert_eq!(c["status"], "ok", "{c:#}");
    assert_eq!(c["exit_status"], 0);
    assert!(c["echo_rps"].as_f64().unwrap_or(0.0) > 0.0, "{c:#}");
    assert_eq!(c["echo_errors_total"], 0, "{c:#}");
    let requests = c["echo_requests_total"].as_u64().unwrap_or(0);
    assert!(requests > 0);
    for p in ["p50", "p95", "p99", "p999"] {
        let v = c[format!("echo_latency_{p}_ms")].as_f64();
        assert!(v.is_some_and(|v| v > 0.0), "echo {p} is measured: {c:#}");
    }
    // Echo-only measures no router: its metrics stay null, never 0.
    assert!(c["rps"].is_null());
    assert!(c["errors_total"].is_null());

    let env = &c["environment"];
    assert_eq!(env["mode"], "echo");
    assert_eq!(env["tls"], server.tls().is_some());
    assert_eq!(env["concurrency"], 8);
    assert_eq!(env["connections"], 2);
    assert!(env["nats_server_version"]
        .as_str()
        .is_some_and(|v| v.starts_with('2')));
    assert!(env["cpu_count"].as_u64().unwrap_or(0) >= 1);
    assert!(env["timestamp"].as_str().is_some());

    // The Markdown summary sits beside the JSON, and the table went to stdout.
    let md = std::fs::read_to_string(dir.path().join("perf_echo.md")).expect("summary");
    assert!(md.contains("| rps |"));
    assert!(String::from_utf8_lossy(&output.stdout).contains("| latency p99 (ms) |"));
}

#[test]
fn echo_through_a_micro_service_endpoint() {
    let server = NatsServer::from_env_or_start_tls().expect("nats-server starts");
    let dir = tempfile::tempdir().expect("temp dir");
    let out = out_file(&dir, "perf_echo_service.json");
    let mut args = connection_args(&server);
    args.push("--echo-only".to_owned());
    args.push("--echo-service".to_owned());
    let (output, c) = run(&args, &out);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(c["status"], "ok", "{c:#}");
    assert_eq!(c["echo_errors_total"], 0, "{c:#}");
    assert!(c["echo_rps"].as_f64().unwrap_or(0.0) > 0.0, "{c:#}");
}

#[test]
fn echo_then_router_without_a_router_fails_with_the_reason() {
    let server = NatsServer::from_env_or_start_tls().expect("nats-server starts");
    let dir = tempfile::tempdir().expect("temp dir");
    let out = out_file(&dir, "perf_norouter.json");
    let mut args = connection_args(&server);
    // A prefix no router serves, even on a shared external server.
    let prefix = format!("bench.test.absent{}", std::process::id());
    args.extend([
        "--echo".to_owned(),
        "--subject-prefix".to_owned(),
        prefix.clone(),
        "--wait-for-responders".to_owned(),
        "300ms".to_owned(),
    ]);
    let (output, c) = run(&args, &out);
    assert_eq!(output.status.code(), Some(1), "a run without router fails");
    assert_eq!(c["status"], "failed");
    assert_eq!(c["exit_status"], 1);
    let reason = c["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("no responders"), "{reason}");
    assert!(reason.contains(&format!("{prefix}.v1.decide")), "{reason}");
    // The echo phase that did run is kept.
    assert!(c["echo_rps"].as_f64().unwrap_or(0.0) > 0.0, "{c:#}");
    assert!(c["rps"].is_null());
}

#[test]
fn open_loop_sends_on_schedule() {
    let server = NatsServer::from_env_or_start_tls().expect("nats-server starts");
    let dir = tempfile::tempdir().expect("temp dir");
    let out = out_file(&dir, "perf_open.json");
    let mut args = connection_args(&server);
    args.extend([
        "--echo-only".to_owned(),
        "--rate".to_owned(),
        "2000".to_owned(),
    ]);
    let (output, c) = run(&args, &out);
    assert!(output.status.success(), "{c:#}");
    assert_eq!(c["environment"]["load"], "open");
    assert_eq!(c["environment"]["rate"], 2000.0);
    // 2000 req/s for the 1 s measured window: 2000 scheduled, every one accounted for.
    let total = c["echo_requests_total"].as_u64().unwrap_or(0);
    assert!((1990..=2010).contains(&total), "requests {total}: {c:#}");
    assert_eq!(c["echo_errors_total"], 0, "{c:#}");
}

#[test]
fn no_server_is_a_failed_run_with_a_hint() {
    // A port that was free a moment ago: nothing listens there.
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    let dir = tempfile::tempdir().expect("temp dir");
    let out = out_file(&dir, "perf_noserver.json");
    let args = vec![
        "--nats-url".to_owned(),
        format!("nats://127.0.0.1:{port}"),
        "--echo-only".to_owned(),
    ];
    let (output, c) = run(&args, &out);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(c["status"], "failed");
    let reason = c["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("nats-start"), "{reason}");
    assert!(c["environment"]["nats_server_version"].is_null());
}

#[test]
fn bad_options_exit_2() {
    let output = bench()
        .args(["--concurrency", "0", "--quiet"])
        .output()
        .expect("router-bench starts");
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--concurrency"));
}
