//! Shared test support: a real nats-server (via nats-harness), routers started in this
//! process through the router-bin library (or, for signals and exit codes, the `router`
//! binary), and a TLS client.

#![allow(dead_code)]

pub mod cli;
pub mod fleet;
pub mod hostile;
pub mod otlp;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use nats_harness::{NatsServer, RouterOptions, TlsFiles};
use router_bin::transport::nats::ClientTls;
use router_bin::{Cli, Config, RunningRouter};
use router_core::Identity;
use serde_json::{json, Value};
use tokio::sync::oneshot;

pub use nats_harness::RouterProcess;

/// The decide subject with the default prefix.
pub const DECIDE: &str = "beamline.router.v1.decide";

/// How long a router may take to become ready on a loaded machine.
pub const READY_TIMEOUT: Duration = Duration::from_secs(15);

/// The repository's `config/policies`.
pub fn repo_policies() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/policies")
}

/// A temporary policy directory: the repository's policies plus `extra` (tenant, policy, doc).
pub fn policy_dir(extra: &[(&str, &str, Value)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp policy dir");
    copy_dir(&repo_policies(), dir.path());
    for (tenant, policy, doc) in extra {
        write_policy(dir.path(), tenant, policy, &doc.to_string());
    }
    dir
}

/// Writes one policy file.
pub fn write_policy(dir: &Path, tenant: &str, policy: &str, text: &str) {
    let tenant_dir = dir.join(tenant);
    std::fs::create_dir_all(&tenant_dir).expect("tenant dir");
    std::fs::write(tenant_dir.join(format!("{policy}.json")), text).expect("policy file");
}

fn copy_dir(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).expect("read policies") {
        let entry = entry.expect("dir entry");
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            std::fs::create_dir_all(&target).expect("mkdir");
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy policy");
        }
    }
}

/// A TLS nats-server: the external one named by `NATS_URL` (with `NATS_CA`, `NATS_CERT`,
/// `NATS_KEY` and `NATS_MONITOR_PORT`, as `cargo xtask heavy` sets them), else a fresh one on
/// free ports. Tests sharing an external server run one at a time (`--test-threads=1`), since
/// every router joins the same decide queue group.
pub fn tls_server() -> NatsServer {
    NatsServer::from_env_or_start_tls().expect("start TLS nats-server")
}

/// A TLS nats-server this test owns, even under `cargo xtask heavy`: for tests that stop or
/// restart NATS, which an external server does not allow.
pub fn owned_tls_server() -> NatsServer {
    NatsServer::start_tls().expect("start TLS nats-server")
}

/// How to start a router in a test: its policies and more command-line flags.
pub struct RouterArgs<'a> {
    /// Policy directory.
    pub policy_dir: &'a Path,
    /// More flags, as the binary takes them.
    pub extra: Vec<String>,
}

impl<'a> RouterArgs<'a> {
    /// `policy_dir` with the flags `extra`.
    pub fn new(policy_dir: &'a Path, extra: &[&str]) -> Self {
        RouterArgs {
            policy_dir,
            extra: extra.iter().map(|s| (*s).to_owned()).collect(),
        }
    }
}

/// The flags that point a router at `server` (TLS files when it has TLS), on a free HTTP
/// port, with its policies, then `args.extra`.
fn flags(server: &NatsServer, args: &RouterArgs<'_>) -> Vec<String> {
    let mut flags = connection_flags(&server.client_url(), server.tls());
    flags.push("--policy-dir".to_owned());
    flags.push(args.policy_dir.to_string_lossy().into_owned());
    flags.extend(args.extra.iter().cloned());
    flags
}

/// No config file, `nats_url`, the router's TLS files when there are any, a free HTTP port.
pub fn connection_flags(nats_url: &str, tls: Option<&TlsFiles>) -> Vec<String> {
    let mut flags = vec![
        "--config".to_owned(),
        "/dev/null".to_owned(),
        "--nats-url".to_owned(),
        nats_url.to_owned(),
        "--metrics-addr".to_owned(),
        "127.0.0.1:0".to_owned(),
    ];
    if let Some(tls) = tls {
        for (flag, path) in [
            ("--tls-ca", &tls.ca_cert),
            ("--tls-cert", &tls.router_cert),
            ("--tls-key", &tls.router_key),
        ] {
            flags.push(flag.to_owned());
            flags.push(path.to_string_lossy().into_owned());
        }
    }
    flags
}

/// The configuration the binary would build from these flags.
pub fn config(server: &NatsServer, args: &RouterArgs<'_>) -> anyhow::Result<Config> {
    let argv = std::iter::once("router".to_owned()).chain(flags(server, args));
    let cli = Cli::try_parse_from(argv).context("router flags")?;
    cli.load_config()
}

/// A router running in this test process; it stops when dropped.
pub struct TestRouter {
    running: Option<RunningRouter>,
    stop: Option<oneshot::Sender<()>>,
    /// Its HTTP address (`/metrics`, `/healthz`, `/readyz`).
    pub http: SocketAddr,
}

/// Starts a router in this process against `server` and waits until it is ready.
pub async fn start_router(server: &NatsServer, args: RouterArgs<'_>) -> anyhow::Result<TestRouter> {
    let router = spawn_router(server, args).await?;
    router.wait_ready(READY_TIMEOUT).await?;
    Ok(router)
}

/// Starts a router in this process without waiting for readiness.
pub async fn spawn_router(server: &NatsServer, args: RouterArgs<'_>) -> anyhow::Result<TestRouter> {
    start_config(config(server, &args)?).await
}

/// Starts a router in this process from `config`, without waiting for readiness.
pub async fn start_config(config: Config) -> anyhow::Result<TestRouter> {
    let (stop, stopped) = oneshot::channel::<()>();
    let running = router_bin::start(config, async {
        let _ = stopped.await;
    })
    .await?;
    Ok(TestRouter {
        http: running.http_addr(),
        running: Some(running),
        stop: Some(stop),
    })
}

impl TestRouter {
    /// The running router (policies, breakers, readiness).
    pub fn running(&self) -> &RunningRouter {
        self.running.as_ref().expect("running until stopped")
    }

    /// Waits until the router is ready, at most `timeout`.
    pub async fn wait_ready(&self, timeout: Duration) -> anyhow::Result<()> {
        tokio::time::timeout(timeout, self.running().ready())
            .await
            .with_context(|| {
                format!(
                    "router not ready after {timeout:?}: {:?}",
                    self.running().readiness()
                )
            })
    }

    /// GET on the router's HTTP listener: (status, body).
    pub async fn get(&self, path: &str) -> anyhow::Result<(u16, String)> {
        let (addr, path) = (self.http, path.to_owned());
        let reply = tokio::task::spawn_blocking(move || {
            nats_harness::monitor::get_addr(addr, &path, Duration::from_secs(5))
        })
        .await??;
        Ok((reply.status, reply.body))
    }

    /// The value of one Prometheus series (name with labels, exactly as rendered).
    pub fn metric(&self, series: &str) -> Option<f64> {
        metric(&self.running().metrics_text(), series)
    }

    /// Waits until `series` reaches at least `value`, at most `timeout`.
    pub async fn wait_metric(&self, series: &str, value: f64, timeout: Duration) -> bool {
        wait_until(timeout, || self.metric(series).unwrap_or(0.0) >= value).await
    }

    /// Stops the router (as SIGTERM does: it drains) and waits until it has.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.running.take() {
            Some(running) => running.stopped().await,
            None => Ok(()),
        }
    }
}

impl Drop for TestRouter {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// The value of one series (name with labels, exactly as rendered) in Prometheus text.
pub fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find(|line| line.starts_with(series) && line[series.len()..].starts_with(' '))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// Polls `check` every 10 ms until it holds or `timeout` passes; true when it held.
pub async fn wait_until(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if check() {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Starts the `router` binary against `server` and waits until it is ready: for what needs
/// a process (signals, exit codes, the process's own memory). Its log goes to a temporary
/// file that lives as long as the test process.
pub fn start_router_process(
    server: &NatsServer,
    args: RouterArgs<'_>,
) -> anyhow::Result<RouterProcess> {
    RouterProcess::start(server, &process_options(args)?)
}

/// Starts the `router` binary without waiting for readiness.
pub fn spawn_router_process(
    server: &NatsServer,
    args: RouterArgs<'_>,
) -> anyhow::Result<RouterProcess> {
    RouterProcess::spawn(server, &process_options(args)?)
}

fn process_options(args: RouterArgs<'_>) -> anyhow::Result<RouterOptions> {
    let log_dir = tempfile::Builder::new()
        .prefix("router-test-")
        .tempdir()?
        .keep();
    Ok(RouterOptions {
        binary: PathBuf::from(env!("CARGO_BIN_EXE_router")),
        policy_dir: args.policy_dir.to_path_buf(),
        log: log_dir.join("router.log"),
        extra_args: args.extra,
    })
}

/// Connect options for `identity` on `server`: with TLS, its certificate (issued from the
/// server's CA when missing) and its inbox prefix.
pub fn options_as(server: &NatsServer, identity: &Identity) -> async_nats::ConnectOptions {
    let tls = server.tls().map(|files| ClientTls {
        ca: Some(files.ca_cert.clone()),
        client: Some(
            files
                .ensure_identity(identity)
                .expect("the identity's certificate"),
        ),
    });
    router_bin::transport::nats::tls_options(async_nats::ConnectOptions::new(), tls.as_ref())
}

/// A NATS client of `identity` on `server`.
pub async fn client_as(server: &NatsServer, identity: &Identity) -> async_nats::Client {
    options_as(server, identity)
        .connect(server.client_url())
        .await
        .expect("test client connects")
}

/// A NATS client with the operator's certificate (every caller subject, policies, dead
/// letters) when the server has TLS.
pub async fn client(server: &NatsServer) -> async_nats::Client {
    client_as(server, &Identity::operator()).await
}

/// Sends one decide request and parses the reply.
pub async fn decide(client: &async_nats::Client, body: &Value) -> Value {
    decide_raw(client, body.to_string().into_bytes()).await
}

/// Sends raw bytes as a decide request and parses the reply.
pub async fn decide_raw(client: &async_nats::Client, body: Vec<u8>) -> Value {
    let reply = tokio::time::timeout(Duration::from_secs(10), client.request(DECIDE, body.into()))
        .await
        .expect("reply within 10 s")
        .expect("request answered");
    serde_json::from_slice(&reply.payload).expect("reply is JSON")
}

/// A valid request for `tenant` with optional constraints.
pub fn request(id: &str, tenant: &str, constraints: Value) -> Value {
    json!({
        "version": "1",
        "request_id": id,
        "tenant_id": tenant,
        "task": {"type": "text.generate", "payload": {"prompt": "hello world"}},
        "constraints": constraints,
    })
}
