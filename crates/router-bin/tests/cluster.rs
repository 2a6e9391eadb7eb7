//! A router fleet on a NATS cluster: three nodes with JetStream and mutual TLS (clients and
//! routes), three routers with `policy_source = "kv"` and `sticky_store = "kv"`
//! (`support/fleet/`).
//!
//! - requests spread over every router (each answers a share, read from its /metrics);
//! - a policy put into `router_policies` is applied by all three within one second, and an
//!   invalid value in the bucket leaves the previous policy served;
//! - a session gets the same provider whichever router answers.
//!
//! Faults under load are the `cluster_faults` suite. Everything runs on loopback with
//! bounded counts and durations.

mod support;

use std::time::{Duration, Instant};

use router_bin::fleet::buckets;
use support::fleet::client::{connect, decide, policy_store, request};
use support::fleet::{wait_all, Fleet, Kind, SERIAL};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_spread_policies_apply_everywhere_and_sessions_stick() -> anyhow::Result<()> {
    let _turn = SERIAL.lock().await;
    let fleet = Fleet::start(Kind::InProcess).await?;
    let clients = [
        connect(&fleet.cluster, Some(0)).await?,
        connect(&fleet.cluster, Some(1)).await?,
        connect(&fleet.cluster, Some(2)).await?,
    ];

    // Spread: 3 clients, one per node, 100 requests each.
    let before = fleet.decisions();
    let mut sent = 0.0;
    for round in 0..100 {
        let replies = futures::future::join_all(clients.iter().enumerate().map(|(c, client)| {
            decide(
                client,
                request(&format!("spread-{c}-{round}"), "default", None),
                Duration::from_secs(10),
            )
        }))
        .await;
        for reply in replies {
            reply?;
            sent += 1.0;
        }
    }
    let shares: Vec<f64> = fleet
        .decisions()
        .iter()
        .zip(&before)
        .map(|(after, before)| after - before)
        .collect();
    assert_eq!(
        shares.iter().sum::<f64>(),
        sent,
        "every decision counted once: {shares:?}"
    );
    for (i, share) in shares.iter().enumerate() {
        assert!(
            *share >= sent * 0.05,
            "router {i} answered {share} of {sent}: {shares:?}"
        );
    }
    eprintln!("spread over the routers: {shares:?} of {sent}");

    // A policy put is applied by every router within one second.
    let admin = connect(&fleet.cluster, None).await?;
    let kv = policy_store(&admin).await?;
    let put_at = Instant::now();
    buckets::put_policy(
        &kv,
        "acme",
        "fresh",
        r#"{"providers": [{"name": "one", "weight": 1}]}"#,
    )
    .await?;
    let applied = wait_all(&fleet.routers, Duration::from_secs(1), |r| {
        r.metric_sum("router_policies_loaded", "") == 2.0
    })
    .await;
    let elapsed = put_at.elapsed();
    assert!(
        applied,
        "not every router applied the new policy within 1 s"
    );
    eprintln!("new policy applied by all routers {elapsed:?} after the put");
    for client in &clients {
        let decision = decide(
            client,
            request("fresh-1", "fresh", None),
            Duration::from_secs(10),
        )
        .await?;
        assert_eq!(decision["provider_id"], "one");
    }
    // A change to it, then an invalid value written past the validation: the change is
    // served everywhere, the invalid value nowhere.
    buckets::put_policy(
        &kv,
        "acme",
        "fresh",
        r#"{"providers": [{"name": "two", "weight": 1}]}"#,
    )
    .await?;
    let rejected_before: Vec<f64> = tokio::task::block_in_place(|| {
        fleet
            .routers
            .iter()
            .map(|r| r.metric_sum("router_policy_kv_updates_total", "rejected"))
            .collect()
    });
    kv.put(
        "acme.fresh",
        br#"{"providers": "not a list"}"#.to_vec().into(),
    )
    .await?;
    let refused = wait_all(&fleet.routers, Duration::from_secs(5), |r| {
        r.metric_sum("router_policy_kv_updates_total", "rejected") > 0.0
    })
    .await;
    assert!(
        refused,
        "every router counts the refused value ({rejected_before:?} before)"
    );
    for (c, client) in clients.iter().enumerate() {
        for n in 0..5 {
            let decision = decide(
                client,
                request(&format!("fresh-{c}-{n}"), "fresh", None),
                Duration::from_secs(10),
            )
            .await?;
            assert_eq!(
                decision["provider_id"], "two",
                "the last valid version stays served"
            );
        }
    }

    // Sticky: 30 sessions bound through client 0, then asked for through all three clients.
    let users: Vec<String> = (0..30).map(|u| format!("user-{u}")).collect();
    let mut bound = Vec::with_capacity(users.len());
    for user in &users {
        let decision = decide(
            &clients[0],
            request(&format!("bind-{user}"), "default", Some(user)),
            Duration::from_secs(10),
        )
        .await?;
        bound.push(
            decision["provider_id"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        );
    }
    let shared = wait_all(&fleet.routers, Duration::from_secs(5), |r| {
        r.metric_sum("router_sticky_kv_total", "imported") >= users.len() as f64
    })
    .await;
    assert!(shared, "every router imported the 30 mappings");
    let sticky_before: Vec<f64> = tokio::task::block_in_place(|| {
        fleet
            .routers
            .iter()
            .map(|r| r.metric_sum("router_decisions_total", "sticky"))
            .collect()
    });
    for round in 0..4 {
        for (user, provider) in users.iter().zip(&bound) {
            for (c, client) in clients.iter().enumerate() {
                let decision = decide(
                    client,
                    request(&format!("again-{user}-{c}-{round}"), "default", Some(user)),
                    Duration::from_secs(10),
                )
                .await?;
                assert_eq!(
                    decision["provider_id"].as_str(),
                    Some(provider.as_str()),
                    "{user} via client {c}"
                );
                assert_eq!(decision["reason"], "sticky");
            }
        }
    }
    let sticky_by_router: Vec<f64> = tokio::task::block_in_place(|| {
        fleet
            .routers
            .iter()
            .zip(&sticky_before)
            .map(|(r, before)| r.metric_sum("router_decisions_total", "sticky") - before)
            .collect()
    });
    let answering = sticky_by_router.iter().filter(|n| **n > 0.0).count();
    assert!(
        answering >= 2,
        "sticky answers came from {answering} router(s): {sticky_by_router:?}"
    );
    eprintln!("sticky answers by router: {sticky_by_router:?}");
    Ok(())
}
