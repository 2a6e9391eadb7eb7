//! The router phase's accounting, end to end over a real nats-server: a stand-in responder
//! on the decide subject answers most requests `ok` and some with an error reply, and a
//! small HTTP endpoint serves router metrics. The bench must count every error reply by its
//! code, keep those requests in the latency figures, and read the metrics.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use futures::StreamExt;
use nats_harness::NatsServer;
use serde_json::Value;

const METRICS: &str = "# TYPE router_backpressure_active_total counter\n\
router_backpressure_active_total{subject=\"x\"} 0\n\
# TYPE router_process_peak_rss_bytes gauge\n\
router_process_peak_rss_bytes 20971520\n";

/// Serves `METRICS` to every HTTP request until `stop` is set (at most 60 s).
fn serve_metrics(listener: TcpListener, stop: Arc<AtomicBool>) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(60);
        if listener.set_nonblocking(true).is_err() {
            return;
        }
        while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
            let Ok((stream, _)) = listener.accept() else {
                std::thread::sleep(Duration::from_millis(20));
                continue;
            };
            let _ = stream.set_nonblocking(false);
            let mut reader = BufReader::new(&stream);
            let mut line = String::new();
            // Read the request head up to the blank line.
            while reader.read_line(&mut line).map(|n| n > 2).unwrap_or(false) {
                line.clear();
            }
            let mut stream = &stream;
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{METRICS}",
                METRICS.len()
            );
        }
    })
}

/// A stand-in router: every fifth request gets `overloaded`, the rest `ok`.
async fn stand_in_router(
    server_url: String,
    tls: Option<(std::path::PathBuf, std::path::PathBuf, std::path::PathBuf)>,
    subject: String,
    ready: std::sync::mpsc::Sender<()>,
) -> anyhow::Result<()> {
    let mut options = async_nats::ConnectOptions::new();
    if let Some((ca, cert, key)) = tls {
        options = options
            .add_root_certificates(ca)
            .add_client_certificate(cert, key)
            .require_tls(true);
    }
    let client = options.connect(server_url).await?;
    let mut requests = client.subscribe(subject).await?;
    client.flush().await?;
    let _ = ready.send(());
    let mut n = 0u64;
    while let Some(message) = requests.next().await {
        n += 1;
        let body: &'static [u8] = if n % 5 == 0 {
            br#"{"ok":false,"error":{"code":"overloaded","message":"busy","details":{"retry_after_seconds":30}},"context":{"request_id":null}}"#
        } else {
            br#"{"ok":true,"decision":{"provider_id":"openai","reason":"weighted","priority":50},"context":{}}"#
        };
        if let Some(reply) = message.reply {
            client.publish(reply, body.into()).await?;
        }
    }
    Ok(())
}

#[test]
fn error_replies_are_counted_by_code_and_metrics_are_read() {
    let server = NatsServer::from_env_or_start_tls().expect("nats-server starts");
    let prefix = format!("bench.test.standin{}", std::process::id());
    let subject = format!("{prefix}.v1.decide");
    let tls = server.tls().map(|t| {
        (
            t.ca_cert.clone(),
            t.client_cert.clone(),
            t.client_key.clone(),
        )
    });

    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let responder = runtime.spawn(stand_in_router(
        server.client_url(),
        tls.clone(),
        subject,
        ready_tx,
    ));
    ready_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the stand-in router subscribed");

    let listener = TcpListener::bind("127.0.0.1:0").expect("bind metrics port");
    let metrics_url = format!(
        "http://{}/metrics",
        listener.local_addr().expect("metrics address")
    );
    let stop = Arc::new(AtomicBool::new(false));
    let metrics = serve_metrics(listener, stop.clone());

    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("perf_standin.json");
    let mut command = Command::new(env!("CARGO_BIN_EXE_router-bench"));
    command
        .args(["--nats-url", &server.client_url()])
        .args(["--subject-prefix", &prefix])
        .args(["--duration", "1s", "--warmup", "200ms"])
        .args(["--concurrency", "8", "--connections", "2", "--quiet"])
        .args(["--metrics-url", &metrics_url])
        .arg("--out")
        .arg(&out);
    if let Some((ca, cert, key)) = &tls {
        command
            .arg("--tls-ca")
            .arg(ca)
            .arg("--tls-cert")
            .arg(cert)
            .arg("--tls-key")
            .arg(key);
    }
    let output = command.output().expect("router-bench starts");
    stop.store(true, Ordering::Relaxed);
    let _ = metrics.join();
    responder.abort();

    let text = std::fs::read_to_string(&out).unwrap_or_else(|err| {
        panic!(
            "no candidate ({err}): {}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    let c: Value = serde_json::from_str(&text).expect("candidate JSON");
    assert!(output.status.success(), "{c:#}");
    assert_eq!(c["status"], "ok");
    assert_eq!(c["environment"]["mode"], "router");

    let total = c["requests_total"].as_u64().expect("requests_total");
    let ok = c["requests_ok"].as_u64().expect("requests_ok");
    let errors = c["errors_total"].as_u64().expect("errors_total");
    let overloaded = c["errors_by_kind"]["reply.overloaded"]
        .as_u64()
        .expect("overloaded replies are counted by code");
    assert_eq!(ok + errors, total, "every request is accounted for");
    assert_eq!(errors, overloaded, "the only error kind is the error reply");
    // One in five replies is an error (the warm-up and probe shift the phase a little).
    let share = errors as f64 / total as f64;
    assert!((0.15..=0.25).contains(&share), "error share {share}: {c:#}");
    // Failed requests stay in the latency histogram: the phase recorded all of them.
    let phase = &c["phases"]["router"];
    assert_eq!(phase["requests_total"], total);
    // rps counts successes only.
    let window = phase["window_s"].as_f64().expect("window");
    let rps = c["rps"].as_f64().expect("rps");
    assert!(
        (rps - ok as f64 / window).abs() <= 0.1,
        "{rps} vs {ok}/{window}"
    );

    assert_eq!(c["backpressure_active_total"], 0.0);
    assert_eq!(c["mem_mb"], 20.0);
    assert!(
        c["warnings"]
            .as_array()
            .is_some_and(|w| w.iter().all(|w| !w.to_string().contains("metrics"))),
        "{c:#}"
    );
    let md = std::fs::read_to_string(dir.path().join("perf_standin.md")).expect("summary");
    assert!(md.contains("`reply.overloaded`"), "{md}");
}
