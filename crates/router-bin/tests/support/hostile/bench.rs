//! The rig the hostile suites run on ([`Bench`]): a TLS nats-server carrying large bodies,
//! the router in a process of its own, a client; sending every body with its own reply
//! subject ([`send_all`]) and judging one pass over the cases ([`Pass`]).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use nats_harness::{NatsServer, ServerOptions};
use serde_json::Value;
use tokio::sync::Semaphore;

use super::generator::{Case, Generator, SEED};
use crate::support::{self, policy_dir, RouterArgs, DECIDE};

/// Requests in flight at once.
pub const IN_FLIGHT: usize = 32;
/// Longest silence before the missing replies are declared lost.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(15);
/// Subject prefix of the replies (one subject per body: `hostile.reply.<index>`).
pub const REPLY_PREFIX: &str = "_INBOX.operator.hostile";

/// Sends every body with its own reply subject, at most `IN_FLIGHT` unanswered at a time,
/// and collects every reply per body (so a lost or a second reply shows).
pub async fn send_all(client: &async_nats::Client, bodies: Vec<Bytes>) -> Vec<Vec<Bytes>> {
    let count = bodies.len();
    let mut replies: Vec<Vec<Bytes>> = vec![Vec::new(); count];
    let mut subscription = client
        .subscribe(format!("{REPLY_PREFIX}.*"))
        .await
        .expect("subscribe to the reply subjects");
    client.flush().await.expect("flush the subscription");
    let permits = Arc::new(Semaphore::new(IN_FLIGHT));
    let sender = {
        let client = client.clone();
        let permits = permits.clone();
        tokio::spawn(async move {
            for (i, body) in bodies.into_iter().enumerate() {
                let permit = tokio::time::timeout(IDLE_TIMEOUT, permits.clone().acquire_owned())
                    .await
                    .expect("a reply frees a slot in time")
                    .expect("semaphore open");
                permit.forget();
                client
                    .publish_with_reply(DECIDE, format!("{REPLY_PREFIX}.{i}"), body)
                    .await
                    .expect("publish");
            }
            client.flush().await.expect("flush");
        })
    };
    let mut answered = 0;
    let mut deadline = IDLE_TIMEOUT;
    while let Ok(Some(message)) = tokio::time::timeout(deadline, subscription.next()).await {
        let index: usize = message
            .subject
            .rsplit('.')
            .next()
            .and_then(|i| i.parse().ok())
            .expect("reply subject ends with the body index");
        if replies[index].is_empty() {
            answered += 1;
            permits.add_permits(1);
        }
        replies[index].push(message.payload);
        if answered == count {
            // Everything is in; linger briefly to catch a second reply.
            deadline = Duration::from_millis(500);
        }
    }
    sender.await.expect("the sender finished");
    replies
}

/// Bytes as MiB with one decimal.
pub fn mib(bytes: f64) -> String {
    format!("{:.1} MiB", bytes / (1024.0 * 1024.0))
}

/// A TLS nats-server carrying bodies up to 4 MB (with JetStream, which keeps the router's
/// dead letters), the router, and a client.
pub struct Bench {
    // Fields drop in order: client, router, then the server.
    pub client: async_nats::Client,
    pub router: support::RouterProcess,
    _policies: tempfile::TempDir,
    _server: NatsServer,
}

impl Bench {
    pub async fn start() -> Bench {
        let server = NatsServer::start(ServerOptions {
            tls: true,
            extra_config: "max_payload: 4MB".into(),
            ..ServerOptions::default()
        })
        .expect("start the TLS nats-server");
        let policies = policy_dir(&[]);
        // A process of its own: the test reads the router's resident memory.
        let router = support::start_router_process(&server, RouterArgs::new(policies.path(), &[]))
            .expect("router starts");
        let client = support::client(&server).await;
        Bench {
            client,
            router,
            _policies: policies,
            _server: server,
        }
    }

    /// 500 valid requests, then a second of rest: the baseline RSS.
    pub async fn warm_up(&self) -> f64 {
        let mut warm = Generator::new(SEED ^ 1);
        let bodies: Vec<Bytes> = (0..500)
            .map(|i| {
                let tenant = if i % 2 == 0 { "acme" } else { "default_tenant" };
                Bytes::from(warm.simple(tenant).1.to_string())
            })
            .collect();
        let replies = send_all(&self.client, bodies).await;
        assert!(
            replies.iter().all(|r| r.len() == 1),
            "warm-up requests lost"
        );
        self.settled_rss().await
    }

    /// RSS after a second of rest.
    /// The lowest RSS seen over two seconds of rest, from one second on (the router gives
    /// freed memory back after half a second idle; the allocator settles in steps).
    pub async fn settled_rss(&self) -> f64 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let mut lowest = f64::MAX;
        for _ in 0..10 {
            let rss = self
                .router
                .metric("router_process_rss_bytes")
                .expect("router_process_rss_bytes in /metrics");
            lowest = lowest.min(rss);
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        lowest
    }

    /// Sends every case once and judges every reply.
    pub async fn pass(&self, cases: &[Case]) -> Pass {
        let started = Instant::now();
        let replies = send_all(&self.client, cases.iter().map(|c| c.body.clone()).collect()).await;
        let mut pass = Pass {
            elapsed: started.elapsed(),
            ..Pass::default()
        };
        for (case, replies) in cases.iter().zip(&replies) {
            match replies.len() {
                0 => pass.lost += 1,
                1 => {}
                _ => pass.doubled += 1,
            }
            let Some(payload) = replies.first() else {
                continue;
            };
            let reply: Value = match serde_json::from_slice(payload) {
                Ok(reply) => reply,
                Err(err) => {
                    pass.mismatches
                        .push(format!("[{}] reply is not JSON: {err}", case.category));
                    continue;
                }
            };
            let code = if reply["ok"] == true {
                "ok (decision)".to_owned()
            } else {
                format!(
                    "{} {}",
                    reply["error"]["code"].as_str().unwrap_or("?"),
                    reply["error"]["intake_error_code"].as_str().unwrap_or("")
                )
                .trim_end()
                .to_owned()
            };
            *pass.codes.entry(code).or_default() += 1;
            if let Some(why) = case.expect.check(&reply) {
                let shown =
                    String::from_utf8_lossy(&case.body[..case.body.len().min(160)]).into_owned();
                pass.mismatches.push(format!(
                    "[{}] {why}; body {shown:?} ({} bytes); reply {reply}",
                    case.category,
                    case.body.len()
                ));
            }
        }
        pass
    }

    pub fn assert_still_serving(&self) {
        let (ready, _) = self.router.get("/readyz").expect("readyz");
        assert_eq!(ready, 200, "router not ready after the run");
        let internal = self
            .router
            .metric("router_errors_total{code=\"internal\"}")
            .unwrap_or(0.0);
        assert_eq!(internal, 0.0, "internal errors counted");
    }
}

/// What one pass over the cases showed.
#[derive(Debug, Default)]
pub struct Pass {
    pub elapsed: Duration,
    pub lost: usize,
    pub doubled: usize,
    pub codes: BTreeMap<String, usize>,
    pub mismatches: Vec<String>,
}

impl Pass {
    pub fn assert_clean(&self, name: &str) {
        for line in self.mismatches.iter().take(20) {
            eprintln!("  MISMATCH ({name}) {line}");
        }
        assert_eq!(self.lost, 0, "{name}: replies lost");
        assert_eq!(self.doubled, 0, "{name}: bodies answered more than once");
        assert!(
            self.mismatches.is_empty(),
            "{name}: {} replies differ from their expectation",
            self.mismatches.len()
        );
    }
}
