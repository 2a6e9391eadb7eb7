//! Shared test support: a real nats-server (via nats-harness), the real `router` binary, and a
//! TLS client.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use nats_harness::NatsServer;
use serde_json::{json, Value};

/// The decide subject with the default prefix.
pub const DECIDE: &str = "beamline.router.v1.decide";

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

/// A started TLS nats-server.
pub fn tls_server() -> NatsServer {
    NatsServer::start_tls().expect("start TLS nats-server")
}

/// The running `router` binary.
pub struct RouterProcess {
    child: Child,
    /// Bound HTTP address.
    pub http: SocketAddr,
    /// Its log (JSON lines).
    pub log: PathBuf,
    _dir: tempfile::TempDir,
}

/// How to start a router.
pub struct RouterArgs<'a> {
    /// Policy directory.
    pub policy_dir: &'a Path,
    /// More flags.
    pub extra: Vec<String>,
}

impl RouterProcess {
    /// Starts the router against `server` with TLS and waits until `/readyz` is 200.
    pub fn start(server: &NatsServer, args: RouterArgs<'_>) -> anyhow::Result<Self> {
        let router = RouterProcess::spawn(server, args)?;
        router.wait_ready(Duration::from_secs(15))?;
        Ok(router)
    }

    /// Starts the router without waiting for readiness.
    pub fn spawn(server: &NatsServer, args: RouterArgs<'_>) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let log = dir.path().join("router.log");
        let log_file = std::fs::File::create(&log)?;
        let mut command = Command::new(env!("CARGO_BIN_EXE_router"));
        command
            .arg("--config")
            .arg("/dev/null")
            .arg("--nats-url")
            .arg(server.client_url())
            .arg("--policy-dir")
            .arg(args.policy_dir)
            .arg("--metrics-addr")
            .arg("127.0.0.1:0")
            .arg("--log-format")
            .arg("json")
            .arg("--log-level")
            .arg("info");
        if let Some(tls) = server.tls() {
            command
                .arg("--tls-ca")
                .arg(&tls.ca_cert)
                .arg("--tls-cert")
                .arg(&tls.client_cert)
                .arg("--tls-key")
                .arg(&tls.client_key);
        }
        command.args(&args.extra);
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .context("spawn router")?;
        let http = wait_for_http_addr(&log, Duration::from_secs(15))?;
        Ok(RouterProcess {
            child,
            http,
            log,
            _dir: dir,
        })
    }

    /// Polls `/readyz` until 200.
    pub fn wait_ready(&self, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok((200, _)) = self.get("/readyz") {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "router not ready after {timeout:?}; log:\n{}",
                    self.log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// GET on the router's HTTP listener: (status, body).
    pub fn get(&self, path: &str) -> anyhow::Result<(u16, String)> {
        let url = format!("http://{}{path}", self.http);
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(5)))
            .build()
            .new_agent();
        let mut response = agent.get(&url).call()?;
        let status = response.status().as_u16();
        let body = response.body_mut().read_to_string()?;
        Ok((status, body))
    }

    /// The value of one Prometheus sample line (name with labels, exactly as rendered).
    pub fn metric(&self, series: &str) -> Option<f64> {
        let (_, body) = self.get("/metrics").ok()?;
        body.lines()
            .find(|line| line.starts_with(series) && line[series.len()..].starts_with(' '))
            .and_then(|line| line.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
    }

    /// Sends a signal.
    pub fn signal(&self, signal: nix::sys::signal::Signal) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, signal);
    }

    /// Waits for the process to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// The log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for RouterProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_for_http_addr(log: &Path, timeout: Duration) -> anyhow::Result<SocketAddr> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(file) = std::fs::File::open(log) {
            for line in BufReader::new(file).lines().map_while(Result::ok) {
                let Ok(event) = serde_json::from_str::<Value>(&line) else {
                    continue;
                };
                if let Some(addr) = event["fields"]["addr"].as_str() {
                    if let Ok(addr) = addr.parse() {
                        return Ok(addr);
                    }
                }
            }
        }
        if Instant::now() > deadline {
            bail!(
                "router never reported its HTTP address; log:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A NATS client connected like the router (TLS + client certificate when the server has TLS).
pub async fn client(server: &NatsServer) -> async_nats::Client {
    let mut options = async_nats::ConnectOptions::new();
    if let Some(tls) = server.tls() {
        options = options
            .add_root_certificates(tls.ca_cert.clone())
            .add_client_certificate(tls.client_cert.clone(), tls.client_key.clone())
            .require_tls(true);
    }
    options
        .connect(server.client_url())
        .await
        .expect("test client connects")
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
