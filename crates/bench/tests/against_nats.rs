//! router-bench against a real nats-server (mutual TLS, started by nats-harness) and real
//! routers started in this process through the router-bin library: the echo responder
//! (`responder = echo`) and the router itself; and the `raw-echo` binary as a child process.
//!
//! These runs are short (a second or two each) and check that the bench works and reports
//! honestly; they assert no performance figure.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use nats_harness::NatsServer;
use router_bin::{Config, Responder, RunningRouter};
use serde_json::Value;

fn bench() -> Command {
    Command::new(env!("CARGO_BIN_EXE_router-bench"))
}

fn repo_policies() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/policies")
}

/// A prefix no other test (or router on a shared server) uses.
fn prefix(what: &str) -> String {
    format!("beamline.bench-{what}-{}", std::process::id())
}

/// A router started in this process; it stops when this is dropped.
struct Started {
    router: RunningRouter,
    _stop: tokio::sync::oneshot::Sender<()>,
}

/// The echo responder in this process on a fresh prefix named after `what`.
async fn start_echo(server: &NatsServer, what: &str) -> (String, Started) {
    let echo_prefix = prefix(what);
    let echo = start_router(server, &echo_prefix, Responder::Echo, &repo_policies()).await;
    (echo_prefix, echo)
}

/// Starts a router (or the echo responder) in this process on `prefix`, ready.
async fn start_router(
    server: &NatsServer,
    prefix: &str,
    responder: Responder,
    policy_dir: &Path,
) -> Started {
    let (stop_tx, stop) = tokio::sync::oneshot::channel::<()>();
    let tls = server.tls().map(|t| {
        (
            t.ca_cert.as_path(),
            t.router_cert.as_path(),
            t.router_key.as_path(),
        )
    });
    let mut config = Config::for_nats(&server.client_url(), tls, policy_dir);
    config.router.subject_prefix = prefix.to_owned();
    config.router.queue_group = format!("{prefix}-group");
    config.router.responder = responder;
    config.router.dlq_enabled = false;
    let router = router_bin::start(config, async {
        let _ = stop.await;
    })
    .await
    .expect("the router starts");
    router.ready().await;
    Started {
        router,
        _stop: stop_tx,
    }
}

/// The `raw-echo` binary on `prefix`, with the router's certificate (which may subscribe to
/// `beamline.>`), replying like the router on `like`; killed when dropped.
struct RawEcho {
    child: Child,
}

impl RawEcho {
    fn start(server: &NatsServer, prefix: &str, like: &str) -> RawEcho {
        let mut command = Command::new(env!("CARGO_BIN_EXE_raw-echo"));
        command
            .args([
                "--nats-url",
                &server.client_url(),
                "--subject-prefix",
                prefix,
                "--reply-like",
                like,
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        if let Some(tls) = server.tls() {
            command.args(tls.router_tls_args());
        }
        RawEcho {
            child: command.spawn().expect("raw-echo starts"),
        }
    }

    /// SIGTERM, and how it exited (`None` when it did not within 5 s).
    fn terminate(&mut self) -> Option<ExitStatus> {
        nats_harness::process::signal(self.child.id(), nats_harness::process::Signal::SIGTERM)
            .expect("SIGTERM");
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for RawEcho {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
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
const SHORT: [&str; 17] = [
    "--duration",
    "1s",
    "--warmup",
    "200ms",
    "--round",
    "300ms",
    "--round-warmup",
    "50ms",
    "--blocks",
    "2",
    "--concurrency",
    "8",
    "--connections",
    "2",
    "--wait-for-responders",
    "2s",
    "--quiet",
];

/// Runs the bench binary (off the async runtime, which keeps serving the routers).
async fn run(args: Vec<String>, out: PathBuf) -> (Output, Value) {
    tokio::task::spawn_blocking(move || {
        let output = bench()
            .args(&args)
            .args(SHORT)
            .arg("--out")
            .arg(&out)
            .output()
            .expect("router-bench starts");
        let text = std::fs::read_to_string(&out).unwrap_or_else(|err| {
            panic!(
                "router-bench wrote no candidate ({err}); stderr:\n{}",
                String::from_utf8_lossy(&output.stderr)
            )
        });
        let value = serde_json::from_str(&text).expect("the candidate is JSON");
        (output, value)
    })
    .await
    .expect("the bench thread")
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interleaved_rounds_of_echo_and_router() {
    let server = NatsServer::from_env_or_start_tls().expect("nats-server starts");
    let (echo_prefix, _echo) = start_echo(&server, "echo").await;
    let router_prefix = prefix("router");
    let router = start_router(&server, &router_prefix, Responder::Decide, &repo_policies()).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let pid = std::process::id().to_string();
    let mut args = connection_args(&server);
    args.extend(strings(&[
        "--echo-prefix",
        &echo_prefix,
        "--subject-prefix",
        &router_prefix,
        "--router-pid",
        &pid,
        "--echo-pid",
        &pid,
        "--metrics-url",
        &format!("http://{}/metrics", router.router.http_addr()),
        "--second-shape-blocks",
        "0",
    ]));
    let (output, c) = run(args, dir.path().join("perf.json")).await;
    assert!(output.status.success(), "{c:#}");
    assert_eq!(c["status"], "ok", "{c:#}");
    assert_eq!(c["environment"]["mode"], "interleaved");
    assert_eq!(c["environment"]["blocks"], 2);

    // Two blocks of echo, router, router, echo.
    let sides: Vec<&str> = c["rounds"]
        .as_array()
        .expect("rounds")
        .iter()
        .map(|r| r["side"].as_str().unwrap_or("?"))
        .collect();
    let block = ["echo", "router", "router", "echo"];
    assert_eq!(sides, [block, block].concat(), "{c:#}");
    assert_eq!(c["blocks"].as_array().map(Vec::len), Some(2));
    for key in [
        "rps_ratio_to_echo",
        "latency_p50_ratio_to_echo",
        "latency_p99_ratio_to_echo",
        "cpu_per_request_ratio_to_echo",
        "echo_aa_ratio",
        "cpu_us_per_request",
        "echo_cpu_us_per_request",
        "mem_mb",
        "echo_mem_mb",
    ] {
        assert!(c[key].as_f64().is_some_and(|v| v > 0.0), "{key}: {c:#}");
    }
    assert!(c["ratios"]["rps_ratio_to_echo"]["high"].as_f64().is_some());
    assert_eq!(c["errors_total"], 0, "{c:#}");
    assert_eq!(c["echo_errors_total"], 0, "{c:#}");
    assert_eq!(c["backpressure_active_total"], 0.0, "{c:#}");
    assert!(c["second_shape"].is_null(), "turned off: {c:#}");

    // The router answered exactly the router rounds (plus warm-up and probe), the echo none.
    let decided: f64 = router
        .router
        .metrics_text()
        .lines()
        .filter(|l| l.starts_with("router_decisions_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    let measured = c["requests_total"].as_f64().expect("requests_total");
    assert!(
        decided >= measured,
        "{decided} decisions, {measured} measured"
    );

    let md = std::fs::read_to_string(dir.path().join("perf.md")).expect("summary");
    assert!(md.contains("| rps_ratio_to_echo |"), "{md}");
    assert!(md.contains("| 8 | 2 | echo |"), "{md}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn six_round_blocks_with_the_raw_echo() {
    let server = NatsServer::from_env_or_start_tls().expect("nats-server starts");
    let (echo_prefix, _echo) = start_echo(&server, "echo6").await;
    let router_prefix = prefix("router6");
    let router = start_router(&server, &router_prefix, Responder::Decide, &repo_policies()).await;
    let raw_prefix = prefix("raw");
    let mut raw = RawEcho::start(&server, &raw_prefix, &router_prefix);
    let dir = tempfile::tempdir().expect("temp dir");
    let pid = std::process::id().to_string();
    let raw_pid = raw.child.id().to_string();
    let mut args = connection_args(&server);
    args.extend(strings(&[
        "--echo-prefix",
        &echo_prefix,
        "--subject-prefix",
        &router_prefix,
        "--raw-echo-prefix",
        &raw_prefix,
        "--router-pid",
        &pid,
        "--echo-pid",
        &pid,
        "--raw-echo-pid",
        &raw_pid,
        "--second-shape-concurrency",
        "100",
        "--second-shape-blocks",
        "1",
        "--metrics-url",
        &format!("http://{}/metrics", router.router.http_addr()),
    ]));
    let (output, c) = run(args, dir.path().join("perf_raw.json")).await;
    assert!(output.status.success(), "{c:#}");
    assert_eq!(c["status"], "ok", "{c:#}");
    assert_eq!(
        c["environment"]["raw_echo_subject"],
        format!("{raw_prefix}.v1.decide")
    );
    let sides: Vec<&str> = c["rounds"]
        .as_array()
        .expect("rounds")
        .iter()
        .map(|r| r["side"].as_str().unwrap_or("?"))
        .collect();
    let block = ["raw_echo", "echo", "router", "router", "echo", "raw_echo"];
    assert_eq!(sides, [block, block].concat(), "{c:#}");
    assert_eq!(c["blocks"].as_array().map(Vec::len), Some(2));
    for key in [
        "rps_ratio_to_raw_echo",
        "latency_p50_ratio_to_raw_echo",
        "latency_p99_ratio_to_raw_echo",
        "cpu_per_request_ratio_to_raw_echo",
        "rps_ratio_to_echo",
        "raw_echo_rps",
        "raw_echo_cpu_us_per_request",
        "raw_echo_mem_mb",
    ] {
        assert!(c[key].as_f64().is_some_and(|v| v > 0.0), "{key}: {c:#}");
    }
    // The raw echo's reply counts as a success: every request came back ok.
    assert_eq!(c["raw_echo_errors_total"], 0, "{c:#}");
    assert_eq!(c["errors_total"], 0, "{c:#}");
    // The second shape: one more block at 100 callers, kept apart from the gated blocks.
    let shape = &c["second_shape"];
    assert_eq!(shape["concurrency"], 100, "{c:#}");
    assert_eq!(shape["rounds"].as_array().map(Vec::len), Some(6), "{c:#}");
    assert_eq!(shape["router_errors"], 0, "{c:#}");
    assert_eq!(
        shape["backpressure_active"], 0.0,
        "read before and after: {c:#}"
    );
    assert!(
        shape["router_mem_mb"].as_f64().is_some_and(|m| m > 0.0),
        "{c:#}"
    );
    assert!(shape["stopped"].is_null(), "{c:#}");
    assert!(shape["router_requests"].as_u64().is_some_and(|n| n > 0));
    for key in ["rps_ratio_to_echo", "rps_ratio_to_raw_echo"] {
        assert!(shape["ratios"][key]["median"]
            .as_f64()
            .is_some_and(|v| v > 0.0));
    }
    let md = std::fs::read_to_string(dir.path().join("perf_raw.md")).expect("summary");
    assert!(
        md.contains("Second load shape, 100 concurrent callers"),
        "{md}"
    );
    assert!(md.contains("| metric | router | echo | raw echo |"), "{md}");
    assert!(md.contains("| rps_ratio_to_raw_echo |"), "{md}");

    // SIGTERM stops it cleanly.
    let status = raw.terminate().expect("raw-echo exits on SIGTERM");
    assert!(status.success(), "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_only_over_mutual_tls() {
    let server = NatsServer::from_env_or_start_tls().expect("nats-server starts");
    let (echo_prefix, _echo) = start_echo(&server, "echoonly").await;
    let dir = tempfile::tempdir().expect("temp dir");
    let mut args = connection_args(&server);
    args.extend(strings(&["--echo-prefix", &echo_prefix, "--echo-only"]));
    let (output, c) = run(args, dir.path().join("perf_echo.json")).await;
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
    assert!(c["echo_requests_total"].as_u64().unwrap_or(0) > 0);
    for p in ["p50", "p95", "p99", "p999"] {
        let v = c[format!("echo_latency_{p}_ms")].as_f64();
        assert!(v.is_some_and(|v| v > 0.0), "echo {p} is measured: {c:#}");
    }
    // Echo-only measures no router: its metrics stay null, never 0.
    assert!(c["rps"].is_null());
    assert!(c["errors_total"].is_null());
    assert!(c["rps_ratio_to_echo"].is_null());

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_router_fails_the_run_with_the_reason() {
    let server = NatsServer::from_env_or_start_tls().expect("nats-server starts");
    let (echo_prefix, _echo) = start_echo(&server, "echonorouter").await;
    let dir = tempfile::tempdir().expect("temp dir");
    // A prefix no router serves, even on a shared external server.
    let absent = prefix("absent");
    let mut args = connection_args(&server);
    args.extend(strings(&[
        "--echo-prefix",
        &echo_prefix,
        "--subject-prefix",
        &absent,
    ]));
    let (output, c) = run(args, dir.path().join("perf_norouter.json")).await;
    assert_eq!(output.status.code(), Some(1), "a run without router fails");
    assert_eq!(c["status"], "failed");
    assert_eq!(c["exit_status"], 1);
    let reason = c["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("no responders"), "{reason}");
    assert!(reason.contains(&format!("{absent}.v1.decide")), "{reason}");
    assert!(c["rps"].is_null());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_replies_are_counted_by_code() {
    // A router without the globex policy: one request in three (the corpus cycles through
    // three tenants) gets policy_not_found.
    let server = NatsServer::from_env_or_start_tls().expect("nats-server starts");
    let policies = tempfile::tempdir().expect("policy dir");
    for tenant in ["default_tenant", "acme"] {
        let dir = policies.path().join(tenant);
        std::fs::create_dir_all(&dir).expect("tenant dir");
        std::fs::copy(
            repo_policies().join(tenant).join("default.json"),
            dir.join("default.json"),
        )
        .expect("copy policy");
    }
    let router_prefix = prefix("noglobex");
    let router = start_router(&server, &router_prefix, Responder::Decide, policies.path()).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let mut args = connection_args(&server);
    args.extend(strings(&[
        "--subject-prefix",
        &router_prefix,
        "--metrics-url",
        &format!("http://{}/metrics", router.router.http_addr()),
    ]));
    let (output, c) = run(args, dir.path().join("perf_errors.json")).await;
    assert!(output.status.success(), "{c:#}");
    assert_eq!(c["status"], "ok");
    assert_eq!(c["environment"]["mode"], "router");

    let total = c["requests_total"].as_u64().expect("requests_total");
    let ok = c["requests_ok"].as_u64().expect("requests_ok");
    let errors = c["errors_total"].as_u64().expect("errors_total");
    let not_found = c["errors_by_kind"]["reply.policy_not_found"]
        .as_u64()
        .expect("error replies are counted by code");
    assert_eq!(ok + errors, total, "every request is accounted for");
    assert_eq!(errors, not_found, "the only error kind is the error reply");
    let share = errors as f64 / total as f64;
    assert!((0.3..=0.37).contains(&share), "error share {share}: {c:#}");
    // rps counts successes only.
    let window = c["phases"]["router"]["window_s"].as_f64().expect("window");
    let rps = c["rps"].as_f64().expect("rps");
    assert!(
        (rps - ok as f64 / window).abs() <= 0.1,
        "{rps} vs {ok}/{window}"
    );
    // Read from the router's /metrics (no pid given: memory comes from there too).
    assert_eq!(c["backpressure_active_total"], 0.0);
    assert!(c["mem_mb"].as_f64().is_some_and(|m| m > 0.0), "{c:#}");
    let md = std::fs::read_to_string(dir.path().join("perf_errors.md")).expect("summary");
    assert!(md.contains("`reply.policy_not_found`"), "{md}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_loop_sends_on_schedule() {
    let server = NatsServer::from_env_or_start_tls().expect("nats-server starts");
    let (echo_prefix, _echo) = start_echo(&server, "echoopen").await;
    let dir = tempfile::tempdir().expect("temp dir");
    let mut args = connection_args(&server);
    args.extend(strings(&[
        "--echo-prefix",
        &echo_prefix,
        "--echo-only",
        "--rate",
        "2000",
    ]));
    let (output, c) = run(args, dir.path().join("perf_open.json")).await;
    assert!(output.status.success(), "{c:#}");
    assert_eq!(c["environment"]["load"], "open");
    assert_eq!(c["environment"]["rate"], 2000.0);
    // 2000 req/s for the 1 s measured window: 2000 scheduled, every one accounted for.
    let total = c["echo_requests_total"].as_u64().unwrap_or(0);
    assert!((1990..=2010).contains(&total), "requests {total}: {c:#}");
    assert_eq!(c["echo_errors_total"], 0, "{c:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_server_is_a_failed_run_with_a_hint() {
    // A port that was free a moment ago: nothing listens there.
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    let dir = tempfile::tempdir().expect("temp dir");
    let args = strings(&[
        "--nats-url",
        &format!("nats://127.0.0.1:{port}"),
        "--echo-prefix",
        "beamline.echo",
        "--echo-only",
    ]);
    let (output, c) = run(args, dir.path().join("perf_noserver.json")).await;
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(c["status"], "failed");
    let reason = c["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("nats-start"), "{reason}");
    assert!(c["environment"]["nats_server_version"].is_null());
}

#[test]
fn bad_options_exit_2() {
    for (args, needle) in [
        (vec!["--concurrency", "0", "--quiet"], "--concurrency"),
        (vec!["--router-pid", "4194304", "--quiet"], "--router-pid"),
    ] {
        let output = bench().args(&args).output().expect("router-bench starts");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(needle), "{stderr}");
    }
}
