//! A router fleet on a NATS cluster: three nodes with JetStream and mutual TLS (clients and
//! routes), three `router` processes with `policy_source = "kv"` and `sticky_store = "kv"`.
//!
//! - requests spread over every router (each answers a share, read from its /metrics);
//! - a policy put into `router_policies` is applied by all three within one second, and an
//!   invalid value in the bucket leaves the previous policy served;
//! - a session gets the same provider whichever router answers;
//! - a NATS node killed under load: every request retried once is answered, the node
//!   rejoins;
//! - a router killed under load: the others take over; only requests in flight on it fail.
//!
//! Everything runs on loopback with bounded counts and durations. The tests take turns (one
//! cluster at a time), so that a 2-core machine is not asked to run three clusters at once.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Parser;
use nats_harness::cluster::NatsCluster;
use nats_harness::{RouterOptions, RouterProcess};
use router_bin::fleet::buckets;
use router_core::Identity;
use serde_json::{json, Value};

mod support;

const DECIDE: &str = "beamline.router.v1.decide";
const ROUTERS: usize = 3;
const NODES: usize = 3;
/// How long a router may take to become ready on a loaded machine.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// First try of a request under load; a retry gets `RETRY_TIMEOUT`.
const FIRST_TIMEOUT: Duration = Duration::from_secs(2);
const RETRY_TIMEOUT: Duration = Duration::from_secs(6);

/// One cluster at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const BASE_POLICY: &str = r#"{"providers": [{"name": "alpha", "weight": 50},
    {"name": "beta", "weight": 30}, {"name": "gamma", "weight": 20}],
    "sticky": {"enabled": true, "session_key": "user_id", "ttl": "10m"}}"#;

/// A router of the fleet: in this process, or a `router` process of its own for the test
/// that kills one.
enum Member {
    InProcess(Box<support::TestRouter>),
    Process(RouterProcess),
}

/// How the fleet's routers run.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    InProcess,
    Processes,
}

/// The flags every fleet router runs with: policies and sticky sessions in the buckets.
fn fleet_flags(name: &str) -> Vec<String> {
    [
        "--policy-source",
        "kv",
        "--sticky-store",
        "kv",
        "--kv-replicas",
        "3",
        "--concurrency",
        "2",
        "--nats-name",
        name,
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect()
}

impl Member {
    async fn start(
        cluster: &NatsCluster,
        name: &str,
        kind: Kind,
        dir: &Path,
    ) -> anyhow::Result<Self> {
        let tls = cluster.tls().context("the cluster has TLS")?;
        match kind {
            Kind::InProcess => {
                let mut flags = vec!["router".to_owned()];
                flags.extend(support::connection_flags(&cluster.client_urls(), Some(tls)));
                flags.extend(fleet_flags(name));
                let config = router_bin::Cli::try_parse_from(flags)?.load_config()?;
                let router = support::start_config(config).await?;
                router.wait_ready(READY_TIMEOUT).await?;
                Ok(Member::InProcess(Box::new(router)))
            }
            Kind::Processes => {
                let options = RouterOptions {
                    binary: PathBuf::from(env!("CARGO_BIN_EXE_router")),
                    policy_dir: dir.to_path_buf(),
                    log: dir.join(format!("{name}.log")),
                    extra_args: fleet_flags(name),
                };
                let router = tokio::task::block_in_place(|| {
                    let router =
                        RouterProcess::spawn_at(&cluster.client_urls(), Some(tls), &options)?;
                    router.wait_ready(READY_TIMEOUT)?;
                    anyhow::Ok(router)
                })?;
                Ok(Member::Process(router))
            }
        }
    }

    fn metrics_text(&self) -> String {
        match self {
            Member::InProcess(router) => router.running().metrics_text(),
            Member::Process(router) => {
                tokio::task::block_in_place(|| router.get("/metrics").map(|(_, body)| body))
                    .unwrap_or_default()
            }
        }
    }

    /// The sum of every series of `name` whose labels contain `labels` (all when empty).
    fn metric_sum(&self, name: &str, labels: &str) -> f64 {
        self.metrics_text()
            .lines()
            .filter(|line| {
                line.strip_prefix(name)
                    .is_some_and(|rest| rest.starts_with(['{', ' ']) && rest.contains(labels))
            })
            .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    fn decisions(&self) -> f64 {
        self.metric_sum("router_decisions_total", "")
    }

    /// SIGKILL (a process only).
    fn kill(&mut self) {
        if let Member::Process(router) = self {
            tokio::task::block_in_place(|| router.stop(Duration::ZERO));
        }
    }
}

/// Three nodes, the base policy in the bucket, three ready routers.
struct Fleet {
    // Fields drop in order: the routers stop before the cluster.
    routers: Vec<Member>,
    cluster: NatsCluster,
    _logs: tempfile::TempDir,
}

impl Fleet {
    async fn start(kind: Kind) -> anyhow::Result<Fleet> {
        let cluster = tokio::task::block_in_place(|| NatsCluster::start(NODES, true))?;
        let kv = policy_store(&connect(&cluster, None).await?).await?;
        buckets::put_policy(&kv, "acme", "default", BASE_POLICY).await?;
        let logs = tempfile::Builder::new().prefix("router-fleet-").tempdir()?;
        let mut routers = Vec::with_capacity(ROUTERS);
        for i in 0..ROUTERS {
            routers.push(Member::start(&cluster, &format!("router-{i}"), kind, logs.path()).await?);
        }
        Ok(Fleet {
            routers,
            cluster,
            _logs: logs,
        })
    }

    fn decisions(&self) -> Vec<f64> {
        self.routers.iter().map(Member::decisions).collect()
    }
}

/// Waits until the load has had `answers` requests sent (at most 30 s): the fault comes
/// under load, not before it.
async fn under_load(tally: &Tally, answers: u64) {
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

/// A client of the cluster: of node `node` only, or of any node (it then fails over).
async fn connect(cluster: &NatsCluster, node: Option<usize>) -> anyhow::Result<async_nats::Client> {
    let tls = cluster.tls().context("the cluster has TLS")?;
    let urls = match node {
        Some(i) => cluster.client_url(i),
        None => cluster.client_urls(),
    };
    let servers: Vec<async_nats::ServerAddr> = urls
        .split(',')
        .map(|u| u.parse().context("URL"))
        .collect::<anyhow::Result<_>>()?;
    async_nats::ConnectOptions::new()
        .add_root_certificates(tls.ca_cert.clone())
        .add_client_certificate(tls.operator_cert.clone(), tls.operator_key.clone())
        .custom_inbox_prefix(Identity::operator().inbox_prefix())
        .require_tls(true)
        .max_reconnects(None)
        .connect(servers)
        .await
        .context("test client connects")
}

async fn policy_store(
    client: &async_nats::Client,
) -> anyhow::Result<async_nats::jetstream::kv::Store> {
    let js = async_nats::jetstream::new(client.clone());
    buckets::open(&js, buckets::policy_bucket(3)).await
}

fn request(id: &str, policy: &str, user: Option<&str>) -> Vec<u8> {
    let mut constraints = json!({"policy_id": policy});
    if let Some(user) = user {
        constraints["user_id"] = json!(user);
    }
    json!({
        "version": "1",
        "request_id": id,
        "tenant_id": "acme",
        "task": {"type": "text.generate", "payload": {"prompt": "hello world"}},
        "constraints": constraints,
    })
    .to_string()
    .into_bytes()
}

/// One decide request; the reply's decision, or why there is none.
async fn decide(
    client: &async_nats::Client,
    body: Vec<u8>,
    timeout: Duration,
) -> anyhow::Result<Value> {
    let reply = tokio::time::timeout(timeout, client.request(DECIDE, body.into()))
        .await
        .context("timed out")??;
    let reply: Value = serde_json::from_slice(&reply.payload)?;
    if reply["ok"] != json!(true) {
        bail!("error reply: {reply}");
    }
    Ok(reply["decision"].clone())
}

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

/// Polls `check` on every router until all pass or `timeout` ends.
async fn wait_all(routers: &[Member], timeout: Duration, check: impl Fn(&Member) -> bool) -> bool {
    support::wait_until(timeout, || routers.iter().all(&check)).await
}

/// What steady load saw.
#[derive(Debug, Default)]
struct Tally {
    sent: AtomicU64,
    first_try_failed: AtomicU64,
    answered_on_retry: AtomicU64,
    lost: AtomicU64,
    /// Answered (first try or retry) after the fault.
    answered_after_fault: AtomicU64,
}

/// `tasks` requesters, each with its own client of any node, sending one request at a time
/// for `duration`; a request without an answer is retried once with the same id.
async fn steady_load(
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

fn summary(tally: &Tally) -> String {
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
fn busiest_node(cluster: &NatsCluster) -> usize {
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
