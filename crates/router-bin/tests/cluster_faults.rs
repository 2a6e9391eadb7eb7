//! Faults under load on a router fleet on a NATS cluster (`support/fleet/`):
//!
//! - a NATS node killed under load: every request retried once is answered, the node
//!   rejoins;
//! - a router killed under load: the others take over; only requests in flight on it fail.
//!
//! Everything runs on loopback with bounded counts and durations. The tests take turns (one
//! cluster at a time), so that a 2-core machine is not asked to run two clusters at once.

mod support;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use router_bin::fleet::buckets;
use support::fleet::client::{connect, decide, policy_store, request};
use support::fleet::load::{busiest_node, steady_load, summary, under_load};
use support::fleet::{wait_all, Fleet, Kind, NODES, SERIAL};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nats_node_killed_under_load_loses_no_retried_request() -> anyhow::Result<()> {
    let _turn = SERIAL.lock().await;
    let mut fleet = Fleet::start(Kind::InProcess).await?;
    let fault_at = Arc::new(std::sync::Mutex::new(None));
    let (tally, handles) =
        steady_load(&fleet.cluster, 4, Duration::from_secs(10), fault_at.clone()).await?;
    under_load(&tally, 200).await;
    let victim = tokio::task::block_in_place(|| busiest_node(&fleet.cluster));
    tokio::task::block_in_place(|| fleet.cluster.kill_node(victim))?;
    if let Ok(mut at) = fault_at.lock() {
        *at = Some(Instant::now());
    }
    let sent_at_kill = tally.sent.load(Ordering::Relaxed);

    // A policy change while the node is down still reaches every router.
    let admin = connect(&fleet.cluster, Some((victim + 1) % NODES)).await?;
    let kv = policy_store(&admin).await?;
    buckets::put_policy(
        &kv,
        "acme",
        "during-fault",
        r#"{"providers": [{"name": "one", "weight": 1}]}"#,
    )
    .await?;
    let applied_at = Instant::now();
    let applied = wait_all(&fleet.routers, Duration::from_secs(20), |r| {
        r.metric_sum("router_policies_loaded", "") == 2.0
    })
    .await;
    eprintln!(
        "policy put with node n{} down: applied everywhere = {applied} after {:?}",
        victim + 1,
        applied_at.elapsed()
    );

    for handle in handles {
        handle.await?;
    }
    let report = summary(&tally);
    eprintln!(
        "node n{} killed after {sent_at_kill} requests: {report}",
        victim + 1
    );
    assert_eq!(tally.lost.load(Ordering::Relaxed), 0, "{report}");
    assert!(
        tally.answered_after_fault.load(Ordering::Relaxed) >= 50,
        "{report}"
    );
    assert!(
        applied,
        "a policy put while a node is down reaches every router"
    );

    let rejoin = Instant::now();
    tokio::task::block_in_place(|| fleet.cluster.start_node(victim))?;
    eprintln!("node n{} rejoined in {:?}", victim + 1, rejoin.elapsed());
    let routes = nats_harness::monitor::get_json(
        fleet.cluster.monitor_port(victim),
        "/routez",
        Duration::from_secs(2),
    )?;
    assert!(routes["num_routes"].as_u64().unwrap_or(0) >= 2, "{routes}");
    // The rejoined node serves requests again.
    let client = connect(&fleet.cluster, Some(victim)).await?;
    decide(
        &client,
        request("after-rejoin", "default", None),
        Duration::from_secs(10),
    )
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_router_killed_under_load_is_taken_over() -> anyhow::Result<()> {
    let _turn = SERIAL.lock().await;
    // Processes: one is killed with SIGKILL.
    let mut fleet = Fleet::start(Kind::Processes).await?;
    const TASKS: usize = 4;
    let fault_at = Arc::new(std::sync::Mutex::new(None));
    let (tally, handles) = steady_load(
        &fleet.cluster,
        TASKS,
        Duration::from_secs(8),
        fault_at.clone(),
    )
    .await?;
    under_load(&tally, 200).await;
    let before = fleet.decisions();
    let victim = before
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map_or(0, |(i, _)| i);
    fleet.routers[victim].kill();
    if let Ok(mut at) = fault_at.lock() {
        *at = Some(Instant::now());
    }
    for handle in handles {
        handle.await?;
    }
    let report = summary(&tally);
    eprintln!(
        "router {victim} (busiest, {} decisions) killed: {report}",
        before[victim]
    );
    // Each requester has one request in flight at a time: at most TASKS can have been on the
    // killed router when it died.
    assert!(
        tally.first_try_failed.load(Ordering::Relaxed) <= TASKS as u64,
        "{report}"
    );
    assert_eq!(tally.lost.load(Ordering::Relaxed), 0, "{report}");
    assert!(
        tally.answered_after_fault.load(Ordering::Relaxed) >= 50,
        "{report}"
    );
    let survivors: f64 = tokio::task::block_in_place(|| {
        fleet
            .routers
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != victim)
            .map(|(i, r)| r.decisions() - before[i])
            .sum()
    });
    assert!(
        survivors >= 50.0,
        "the other routers answered {survivors} after the kill"
    );
    Ok(())
}
