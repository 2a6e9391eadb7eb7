//! Overload with the shipped configuration: a burst far beyond what one router answers at
//! once. Every request gets exactly one reply (`ok` or `overloaded`), the status subject says
//! `active` during the burst, the transition is counted, and the status is `inactive` again
//! within 2 s of the last reply.
//!
//! The figures (counts, peak queue, peak arrival → reply p95, time to clear) are printed on
//! stderr: `cargo test -p router-bin --test overload -- --nocapture`.

mod support;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use router_core::Identity;
use serde_json::{json, Value};
use support::{RouterArgs, DECIDE};

/// Requests in the burst.
const BURST: usize = 50_000;
/// Status subject of the default prefix.
const STATUS: &str = "beamline.router.v1.status.backpressure";

/// What the status subject said while the burst ran.
#[derive(Debug, Default)]
struct StatusLog {
    samples: usize,
    seen_active: bool,
    peak_pending: u64,
    peak_p95_ms: f64,
    /// (time, status) of every sample.
    timeline: Vec<(Instant, String)>,
}

/// Asks the status subject every 20 ms until `stop` flips.
async fn watch_status(client: async_nats::Client, stop: Arc<AtomicBool>) -> StatusLog {
    let mut log = StatusLog::default();
    while !stop.load(Ordering::Relaxed) {
        let asked = tokio::time::timeout(
            Duration::from_millis(500),
            client.request(STATUS, "".into()),
        )
        .await;
        if let Ok(Ok(reply)) = asked {
            if let Ok(status) = serde_json::from_slice::<Value>(&reply.payload) {
                let name = status["status"].as_str().unwrap_or("?").to_owned();
                log.samples += 1;
                log.seen_active |= name == "active";
                let metrics = &status["metrics"];
                log.peak_pending = log
                    .peak_pending
                    .max(metrics["pending_messages"].as_u64().unwrap_or(0));
                log.peak_p95_ms = log
                    .peak_p95_ms
                    .max(metrics["latency_p95_ms"].as_f64().unwrap_or(0.0));
                log.timeline.push((Instant::now(), name));
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    log
}

fn body(i: usize) -> Vec<u8> {
    json!({
        "version": "1",
        "request_id": format!("burst-{i}"),
        "tenant_id": if i % 2 == 0 { "acme" } else { "default_tenant" },
        "task": {"type": "text.generate", "payload": {"prompt": "hello world"}},
        "constraints": {"user_id": format!("u-{}", i % 500)},
    })
    .to_string()
    .into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_far_beyond_capacity_gets_one_reply_each_and_recovers() {
    // Owns its server: the burst would disturb other suites sharing one.
    let server = support::owned_tls_server();
    let policies = support::repo_policies();
    let router = support::start_router(&server, RouterArgs::new(&policies, &[]))
        .await
        .expect("router starts with the shipped configuration");
    let activations_before = router
        .metric("router_backpressure_active_total")
        .unwrap_or(0.0);

    // Replies come back on one wildcard subscription, each to its own subject.
    let receiver = support::options_as(&server, &Identity::operator())
        .subscription_capacity(4 * BURST)
        .connect(server.client_url())
        .await
        .expect("receiver connects");
    let mut replies = receiver
        .subscribe("_INBOX.operator.burst.>")
        .await
        .expect("subscribe to the replies");
    receiver.flush().await.expect("flush");

    let watcher_client = support::client(&server).await;
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = tokio::spawn(watch_status(watcher_client, stop.clone()));

    // The burst: published without waiting for anything.
    let publisher = support::client(&server).await;
    let bodies: Vec<Vec<u8>> = (0..BURST).map(body).collect();
    let started = Instant::now();
    for (i, body) in bodies.into_iter().enumerate() {
        publisher
            .publish_with_reply(DECIDE, format!("_INBOX.operator.burst.{i}"), body.into())
            .await
            .expect("publish");
    }
    publisher.flush().await.expect("flush the burst");
    let published = started.elapsed();

    // Every reply, counted by request and by code.
    let mut per_request = vec![0u8; BURST];
    let mut codes: BTreeMap<String, usize> = BTreeMap::new();
    let mut received = 0;
    let mut last_reply = started;
    while received < BURST {
        let Ok(Some(message)) = tokio::time::timeout(Duration::from_secs(30), replies.next()).await
        else {
            break;
        };
        last_reply = Instant::now();
        received += 1;
        let index = message
            .subject
            .as_str()
            .rsplit('.')
            .next()
            .and_then(|i| i.parse::<usize>().ok())
            .filter(|i| *i < BURST);
        if let Some(i) = index {
            per_request[i] = per_request[i].saturating_add(1);
        }
        let reply: Value = serde_json::from_slice(&message.payload).unwrap_or(Value::Null);
        let code = if reply["ok"] == true {
            "ok".to_owned()
        } else {
            reply["error"]["code"]
                .as_str()
                .unwrap_or("not JSON")
                .to_owned()
        };
        *codes.entry(code).or_default() += 1;
    }
    // A moment more: a reply beyond one per request would show up now.
    while let Ok(Some(message)) =
        tokio::time::timeout(Duration::from_millis(300), replies.next()).await
    {
        if let Some(i) = message
            .subject
            .as_str()
            .rsplit('.')
            .next()
            .and_then(|i| i.parse::<usize>().ok())
            .filter(|i| *i < BURST)
        {
            per_request[i] = per_request[i].saturating_add(1);
        }
    }
    let cleared = last_reply.duration_since(started);

    // Recovery: the status subject says inactive within 2 s of the last reply.
    let asker = support::client(&server).await;
    let mut status_after = Value::Null;
    let deadline = last_reply + Duration::from_secs(2);
    while Instant::now() < deadline {
        if let Ok(Ok(reply)) =
            tokio::time::timeout(Duration::from_millis(200), asker.request(STATUS, "".into())).await
        {
            status_after = serde_json::from_slice(&reply.payload).unwrap_or(Value::Null);
            if status_after["status"] == "inactive" {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let recovered = status_after["status"] == "inactive";
    let recovered_after = last_reply.elapsed();
    stop.store(true, Ordering::Relaxed);
    let log = watcher.await.expect("watcher");

    let missing = per_request.iter().filter(|n| **n == 0).count();
    let doubled = per_request.iter().filter(|n| **n > 1).count();
    let activations = router
        .metric("router_backpressure_active_total")
        .unwrap_or(0.0)
        - activations_before;
    let dropped = router
        .metric("router_dropped_total{reason=\"slow_consumer\"}")
        .unwrap_or(0.0);
    eprintln!(
        "burst of {BURST}: published in {:.2} s, last reply after {:.2} s; replies by code \
         {codes:?}; missing {missing}, answered twice {doubled}; status samples {}, active seen \
         {}, peak pending {}, peak p95 {:.1} ms; transitions into active {activations}; \
         dropped by the client library {dropped}; status {} {:.2} s after the last reply",
        published.as_secs_f64(),
        cleared.as_secs_f64(),
        log.samples,
        log.seen_active,
        log.peak_pending,
        log.peak_p95_ms,
        status_after["status"],
        recovered_after.as_secs_f64(),
    );

    assert_eq!(missing, 0, "requests without a reply");
    assert_eq!(doubled, 0, "requests answered twice");
    let ok = codes.get("ok").copied().unwrap_or(0);
    let overloaded = codes.get("overloaded").copied().unwrap_or(0);
    assert_eq!(
        ok + overloaded,
        BURST,
        "every reply is ok or overloaded: {codes:?}"
    );
    assert!(overloaded > 0, "a burst this size must be refused in part");
    assert!(
        log.seen_active,
        "the status subject said active during the burst"
    );
    assert!(activations >= 1.0, "router_backpressure_active_total grew");
    assert!(
        recovered,
        "not inactive 2 s after the last reply: {status_after}"
    );
    assert_eq!(dropped, 0.0, "the client library dropped requests");
}
