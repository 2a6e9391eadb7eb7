//! Steady load through the cluster while a fault happens ([`steady_load`], counted in a
//! [`Tally`]), and where to aim the fault ([`busiest_node`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nats_harness::cluster::NatsCluster;

use super::client::{connect, decide, request};
use super::{FIRST_TIMEOUT, RETRY_TIMEOUT};
use crate::support;

/// Waits until the load has had `answers` requests sent (at most 30 s): the fault comes
/// under load, not before it.
pub async fn under_load(tally: &Tally, answers: u64) {
    let reached = support::wait_until(Duration::from_secs(30), || {
        tally.sent.load(Ordering::Relaxed) >= answers
    })
    .await;
    assert!(
        reached,
        "the load never reached {answers} requests: {}",
        summary(tally)
    );
}

/// What steady load saw.
#[derive(Debug, Default)]
pub struct Tally {
    pub sent: AtomicU64,
    pub first_try_failed: AtomicU64,
    pub answered_on_retry: AtomicU64,
    pub lost: AtomicU64,
    /// Answered (first try or retry) after the fault.
    pub answered_after_fault: AtomicU64,
}

/// `tasks` requesters, each with its own client of any node, sending one request at a time
/// for `duration`; a request without an answer is retried once with the same id.
pub async fn steady_load(
    cluster: &NatsCluster,
    tasks: usize,
    duration: Duration,
    fault_at: Arc<std::sync::Mutex<Option<Instant>>>,
) -> anyhow::Result<(Arc<Tally>, Vec<tokio::task::JoinHandle<()>>)> {
    let tally = Arc::new(Tally::default());
    let mut handles = Vec::with_capacity(tasks);
    for t in 0..tasks {
        let client = connect(cluster, None).await?;
        let tally = tally.clone();
        let fault_at = fault_at.clone();
        handles.push(tokio::spawn(async move {
            let end = Instant::now() + duration;
            let mut n = 0u64;
            while Instant::now() < end {
                n += 1;
                let body = request(
                    &format!("load-{t}-{n}"),
                    "default",
                    Some(&format!("u-{}", n % 50)),
                );
                tally.sent.fetch_add(1, Ordering::Relaxed);
                let mut answered = decide(&client, body.clone(), FIRST_TIMEOUT).await.is_ok();
                if !answered {
                    tally.first_try_failed.fetch_add(1, Ordering::Relaxed);
                    answered = decide(&client, body, RETRY_TIMEOUT).await.is_ok();
                    if answered {
                        tally.answered_on_retry.fetch_add(1, Ordering::Relaxed);
                    } else {
                        tally.lost.fetch_add(1, Ordering::Relaxed);
                    }
                }
                let after_fault = fault_at
                    .lock()
                    .map(|f| f.is_some_and(|at| Instant::now() > at))
                    .unwrap_or(false);
                if answered && after_fault {
                    tally.answered_after_fault.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    Ok((tally, handles))
}

/// The tally in one line, for assertion messages.
pub fn summary(tally: &Tally) -> String {
    format!(
        "sent {}, first try failed {}, answered on retry {}, lost {}, answered after the fault {}",
        tally.sent.load(Ordering::Relaxed),
        tally.first_try_failed.load(Ordering::Relaxed),
        tally.answered_on_retry.load(Ordering::Relaxed),
        tally.lost.load(Ordering::Relaxed),
        tally.answered_after_fault.load(Ordering::Relaxed)
    )
}

/// The node with the most client connections (routers and requesters), read from `/connz`.
pub fn busiest_node(cluster: &NatsCluster) -> usize {
    (0..cluster.len())
        .max_by_key(|&i| {
            nats_harness::monitor::get_json(
                cluster.monitor_port(i),
                "/connz",
                Duration::from_secs(2),
            )
            .ok()
            .and_then(|c| c["num_connections"].as_u64())
            .unwrap_or(0)
        })
        .unwrap_or(0)
}
