//! Shared test support: a real nats-server (via nats-harness), the real `router` binary, and a
//! TLS client.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use nats_harness::{NatsServer, RouterOptions};
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

pub use nats_harness::RouterProcess;

/// How to start a router in a test.
pub struct RouterArgs<'a> {
    /// Policy directory.
    pub policy_dir: &'a Path,
    /// More flags.
    pub extra: Vec<String>,
}

/// Starts the router binary under test against `server` and waits until it is ready. The log
/// goes to a temporary file that lives as long as the test process.
pub fn start_router(server: &NatsServer, args: RouterArgs<'_>) -> anyhow::Result<RouterProcess> {
    RouterProcess::start(server, &options(args)?)
}

/// Starts the router without waiting for readiness.
pub fn spawn_router(server: &NatsServer, args: RouterArgs<'_>) -> anyhow::Result<RouterProcess> {
    RouterProcess::spawn(server, &options(args)?)
}

fn options(args: RouterArgs<'_>) -> anyhow::Result<RouterOptions> {
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
