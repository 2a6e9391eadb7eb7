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

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use nats_harness::cluster::NatsCluster;
use router_bin::buckets;
use serde_json::{json, Value};

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

/// A `router` process started against the cluster.
struct RouterChild {
    name: String,
    child: Child,
    http: SocketAddr,
    log: PathBuf,
}

impl RouterChild {
    fn spawn(cluster: &NatsCluster, name: &str, dir: &Path) -> anyhow::Result<Self> {
        let log = dir.join(format!("{name}.log"));
        let log_file = std::fs::File::create(&log)
            .with_context(|| format!("cannot create {}", log.display()))?;
        let tls = cluster.tls().context("the cluster has TLS")?;
        let mut child = Command::new(env!("CARGO_BIN_EXE_router"))
            .args(["--config", "/dev/null", "--nats-url"])
            .arg(cluster.client_urls())
            .arg("--tls-ca")
            .arg(&tls.ca_cert)
            .arg("--tls-cert")
            .arg(&tls.client_cert)
            .arg("--tls-key")
            .arg(&tls.client_key)
            .args(["--policy-source", "kv", "--sticky-store", "kv"])
            .args(["--kv-replicas", "3", "--concurrency", "2"])
            .args(["--nats-name", name, "--metrics-addr", "127.0.0.1:0"])
            .args(["--log-format", "json", "--log-level", "info"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .context("cannot start the router")?;
        let deadline = Instant::now() + READY_TIMEOUT;
        let http = loop {
            if let Some(addr) = http_addr(&log) {
                break addr;
            }
            if let Ok(Some(status)) = child.try_wait() {
                bail!(
                    "router {name} exited ({status}): {}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                bail!("router {name} never reported its HTTP address");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        Ok(RouterChild {
            name: name.to_owned(),
            child,
            http,
            log,
        })
    }

    fn get(&self, path: &str) -> anyhow::Result<(u16, String)> {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(5)))
            .build()
            .new_agent();
        let mut response = agent.get(format!("http://{}{path}", self.http)).call()?;
        let status = response.status().as_u16();
        Ok((status, response.body_mut().read_to_string()?))
    }

    fn wait_ready(&self) -> anyhow::Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        while Instant::now() < deadline {
            if let Ok((200, _)) = self.get("/readyz") {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        bail!(
            "router {} not ready: {}",
            self.name,
            std::fs::read_to_string(&self.log).unwrap_or_default()
        )
    }

    /// The sum of every series of `name` whose labels contain `labels` (all when empty).
    fn metric_sum(&self, name: &str, labels: &str) -> f64 {
        let Ok((_, body)) = self.get("/metrics") else {
            return f64::NAN;
        };
        body.lines()
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

    /// Warning and error lines of its log, for the test output.
    fn warnings(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter(|line| line.contains("\"WARN\"") || line.contains("\"ERROR\""))
            .map(str::to_owned)
            .collect()
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for RouterChild {
    fn drop(&mut self) {
        self.kill();
    }
}

fn http_addr(log: &Path) -> Option<SocketAddr> {
    let file = std::fs::File::open(log).ok()?;
    BufReader::new(file)
        .lines()
        .map_while(Result::ok)
        .filter_map(|line| serde_json::from_str::<Value>(&line).ok())
        .find_map(|event| event["fields"]["addr"].as_str()?.parse().ok())
}

/// Three nodes, the base policy in the bucket, three ready routers.
struct Fleet {
    routers: Vec<RouterChild>,
    cluster: NatsCluster,
    _logs: tempfile::TempDir,
}

impl Fleet {
    async fn start() -> anyhow::Result<Fleet> {
        let cluster = tokio::task::block_in_place(|| NatsCluster::start(NODES, true))?;
        let kv = policy_store(&connect(&cluster, None).await?).await?;
        buckets::put_policy(&kv, "acme", "default", BASE_POLICY).await?;
        let logs = tempfile::Builder::new().prefix("router-fleet-").tempdir()?;
        let routers = tokio::task::block_in_place(|| {
            let routers = (0..ROUTERS)
                .map(|i| RouterChild::spawn(&cluster, &format!("router-{i}"), logs.path()))
                .collect::<anyhow::Result<Vec<_>>>()?;
            for router in &routers {
                router.wait_ready()?;
            }
            anyhow::Ok(routers)
        })?;
        Ok(Fleet {
            routers,
            cluster,
            _logs: logs,
        })
    }

    fn decisions(&self) -> Vec<f64> {
        tokio::task::block_in_place(|| self.routers.iter().map(RouterChild::decisions).collect())
    }
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
        .add_client_certificate(tls.client_cert.clone(), tls.client_key.clone())
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
    let fleet = Fleet::start().await?;
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
    let applied = tokio::task::block_in_place(|| {
        wait_all(&fleet.routers, Duration::from_secs(1), |r| {
            r.metric_sum("router_policies_loaded", "") == 2.0
        })
    });
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
    let refused = tokio::task::block_in_place(|| {
        wait_all(&fleet.routers, Duration::from_secs(5), |r| {
            r.metric_sum("router_policy_kv_updates_total", "rejected") > 0.0
        })
    });
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
    let shared = tokio::task::block_in_place(|| {
        wait_all(&fleet.routers, Duration::from_secs(5), |r| {
            r.metric_sum("router_sticky_kv_total", "imported") >= users.len() as f64
        })
    });
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
fn wait_all(
    routers: &[RouterChild],
    timeout: Duration,
    check: impl Fn(&RouterChild) -> bool,
) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if routers.iter().all(&check) {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
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
    let mut fleet = Fleet::start().await?;
    let fault_at = Arc::new(std::sync::Mutex::new(None));
    let (tally, handles) =
        steady_load(&fleet.cluster, 4, Duration::from_secs(10), fault_at.clone()).await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
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
    let applied = tokio::task::block_in_place(|| {
        wait_all(&fleet.routers, Duration::from_secs(20), |r| {
            r.metric_sum("router_policies_loaded", "") == 2.0
        })
    });
    eprintln!(
        "policy put with node n{} down: applied everywhere = {applied} after {:?}",
        victim + 1,
        applied_at.elapsed()
    );
    for router in &fleet.routers {
        for line in router.warnings() {
            eprintln!("{}: {line}", router.name);
        }
    }

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
    let mut fleet = Fleet::start().await?;
    const TASKS: usize = 4;
    let fault_at = Arc::new(std::sync::Mutex::new(None));
    let (tally, handles) = steady_load(
        &fleet.cluster,
        TASKS,
        Duration::from_secs(8),
        fault_at.clone(),
    )
    .await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let before = fleet.decisions();
    let victim = before
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map_or(0, |(i, _)| i);
    tokio::task::block_in_place(|| fleet.routers[victim].kill());
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
