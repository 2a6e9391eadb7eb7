//! Quotas over a real NATS cluster (3 nodes, 3 router processes, `--quota-store kv`): a
//! provider limit of N requests per minute and a tenant's day budget worth N requests,
//! 5 × N requests each spread over the routers, once with every router and node alive and
//! once with one router and one NATS node SIGKILLed mid-window. The bound (docs/ROUTING.md
//! "Quotas"): admitted ≤ N, and at least N − the unused leases (of the killed router, or of
//! each live router at the end of the run) − the requests lost in flight with a killed one.

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::future::join_all;
use router_bin::fleet::buckets;
use serde_json::{json, Value};
use support::fleet::client::{connect, policy_store};
use support::fleet::{Fleet, Kind, SERIAL};
use support::DECIDE;

/// The limit: requests per minute of the provider, and requests the day budget buys.
const N: usize = 240;
/// Requests in flight at once.
const CONCURRENCY: usize = 16;

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn body(id: &str, tenant: &str, policy: &str) -> Vec<u8> {
    json!({"version": "1", "request_id": id, "tenant_id": tenant,
           "task": {"type": "text.generate", "payload": {"prompt": "hello world"}},
           "constraints": {"policy_id": policy, "max_tokens": 1000}})
    .to_string()
    .into_bytes()
}

/// What became of the requests of one tenant.
#[derive(Debug, Default)]
struct Tally {
    admitted: usize,
    refused: BTreeMap<String, usize>,
    /// No answer, even after one retry.
    unanswered: usize,
}

/// Sends `count` requests (ids from `from`), `CONCURRENCY` at a time, one retry each.
async fn burst(
    client: &async_nats::Client,
    tenant: &str,
    policy: &str,
    from: usize,
    count: usize,
    tally: &mut Tally,
    window_end: u64,
) {
    for chunk in (from..from + count).collect::<Vec<_>>().chunks(CONCURRENCY) {
        let replies = join_all(chunk.iter().map(|i| async move {
            let request = body(&format!("{tenant}-{i}"), tenant, policy);
            // As a client does: a request lost with a killed router (or refused at once
            // while a router reconnects) is asked again, and so is one refused for a
            // moment (`retry_after_ms` ≤ 1 s: a lease on its way, e.g. during a JetStream
            // leader election), after that time.
            let mut last = None;
            for _ in 0..4 {
                let asked = client.request(DECIDE, request.clone().into());
                match tokio::time::timeout(Duration::from_secs(6), asked).await {
                    Ok(Ok(reply)) => {
                        let reply = serde_json::from_slice::<Value>(&reply.payload).ok()?;
                        let retry = reply["error"]["details"]["retry_after_ms"].as_u64();
                        match retry {
                            Some(ms) if ms <= 1_000 && reply["ok"] != true => {
                                last = Some(reply);
                                tokio::time::sleep(Duration::from_millis(ms)).await;
                            }
                            _ => return Some(reply),
                        }
                    }
                    Ok(Err(_)) => tokio::time::sleep(Duration::from_millis(500)).await,
                    Err(_) => {}
                }
            }
            last
        }))
        .await;
        for reply in replies {
            let Some(reply) = reply else {
                tally.unanswered += 1;
                continue;
            };
            if reply["ok"] == true {
                tally.admitted += 1;
                continue;
            }
            let error = &reply["error"];
            let details = &error["details"];
            let why = format!(
                "{}/{}",
                error["code"].as_str().unwrap_or("?"),
                details["reason"]
                    .as_str()
                    .or_else(|| details["excluded"]["alpha"].as_str())
                    .unwrap_or("-")
            );
            // Every refusal says when to come back: at the latest when the window ends.
            let retry = details["retry_after_ms"].as_u64().unwrap_or(0);
            let left = window_end.saturating_sub(now_ms());
            assert!(
                retry >= 1 && retry <= left + 5_000,
                "retry_after_ms {retry} with {left} ms left in the window: {reply}"
            );
            *tally.refused.entry(why).or_default() += 1;
        }
    }
}

/// What happens mid-window.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Faults {
    /// Every router and node stays up.
    None,
    /// The busiest router is SIGKILLed after a third of the limit, a NATS node after two.
    KillRouterAndNode,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_hold_across_the_fleet() -> anyhow::Result<()> {
    limits_hold(Faults::None).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_hold_across_the_fleet_with_a_router_and_a_node_killed() -> anyhow::Result<()> {
    limits_hold(Faults::KillRouterAndNode).await
}

async fn limits_hold(faults: Faults) -> anyhow::Result<()> {
    let _turn = SERIAL.lock().await;
    let mut fleet = Fleet::start(Kind::Processes).await?;
    let admin = connect(&fleet.cluster, None).await?;
    let kv = policy_store(&admin).await?;
    // A provider of 240 requests a minute; a tenant whose day budget buys 240 requests of
    // 1,000 tokens at 10 per million (0.01 each).
    buckets::put_policy(
        &kv,
        "acme",
        "limited",
        &json!({"providers": [{"name": "alpha", "weight": 100, "rpm": N}]}).to_string(),
    )
    .await?;
    buckets::put_policy(
        &kv,
        "spender",
        "default",
        &json!({"providers": [{"name": "alpha", "weight": 100,
                               "price": {"input_per_mtok": 10, "output_per_mtok": 10}}],
                "quota": {"budget": {"day": 2.4}}})
        .to_string(),
    )
    .await?;
    // Every router has both policies, and a minute with room for the whole run.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while fleet
        .routers
        .iter()
        .any(|r| r.metric_sum("router_policies_loaded", "") < 3.0)
    {
        anyhow::ensure!(std::time::Instant::now() < deadline, "policies not loaded");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if 60_000 - now_ms() % 60_000 < 45_000 {
        tokio::time::sleep(Duration::from_millis(60_000 - now_ms() % 60_000 + 50)).await;
    }
    let minute = now_ms() - now_ms() % 60_000;
    let minute_end = minute + 60_000;
    let day_end = (now_ms() / 86_400_000 + 1) * 86_400_000;
    // The test's own client stays on node n1: node n2 is the one killed.
    let client = connect(&fleet.cluster, Some(0)).await?;
    let (mut provider, mut tenant) = (Tally::default(), Tally::default());
    // A third of the limit, the router killed; another third, the node killed; the rest.
    let parts = [
        (0, N / 3),
        (N / 3, N / 3),
        (2 * (N / 3), 5 * N - 2 * (N / 3)),
    ];
    for (part, (from, count)) in parts.into_iter().enumerate() {
        burst(
            &client,
            "acme",
            "limited",
            from,
            count,
            &mut provider,
            minute_end,
        )
        .await;
        burst(
            &client,
            "spender",
            "default",
            from,
            count,
            &mut tenant,
            day_end,
        )
        .await;
        match part {
            _ if faults == Faults::None => {}
            0 => {
                // The busiest router dies with its leases in hand.
                let decisions = fleet.decisions();
                let victim = (0..decisions.len())
                    .max_by(|a, b| decisions[*a].total_cmp(&decisions[*b]))
                    .unwrap_or(0);
                eprintln!(
                    "killing router {victim} after {:?} decisions each",
                    decisions
                );
                fleet.routers[victim].kill();
            }
            1 => {
                // A NATS node dies: the buckets keep their replicas on the others.
                tokio::task::block_in_place(|| fleet.cluster.kill_node(1))?;
                eprintln!("killed NATS node n2");
            }
            _ => {}
        }
    }
    anyhow::ensure!(
        now_ms() < minute_end,
        "the run spilled into the next minute: the counts span two windows"
    );
    eprintln!("{faults:?}: provider rpm {N}, 5 × N sent: {provider:?}");
    eprintln!("{faults:?}: tenant day budget worth {N}, 5 × N sent: {tenant:?}");
    // Slack: a lease of ⌈N/16⌉ renewed ahead at half, unused in the killed router with what
    // it had in flight, or unused in each live router when the burst ends.
    let lease = N.div_ceil(16);
    let slack = match faults {
        Faults::KillRouterAndNode => lease + lease / 2 + CONCURRENCY,
        Faults::None => fleet.routers.len() * (lease + lease / 2),
    };
    for (what, tally) in [("provider", &provider), ("tenant", &tenant)] {
        assert!(
            tally.admitted <= N,
            "{what}: {} admitted over {N}",
            tally.admitted
        );
        assert!(
            tally.admitted + slack >= N,
            "{what}: only {} admitted (bound {} ≤ admitted ≤ {N})",
            tally.admitted,
            N - slack
        );
        assert!(tally.unanswered <= CONCURRENCY, "{what}: {tally:?}");
    }
    for why in provider.refused.keys() {
        assert!(
            why == "decision_failed/quota",
            "provider refusals name the quota: {:?}",
            provider.refused
        );
    }
    for why in tenant.refused.keys() {
        assert!(
            why.starts_with("quota_exceeded/"),
            "tenant refusals are quota_exceeded: {:?}",
            tenant.refused
        );
    }
    Ok(())
}
